from dataclasses import dataclass, field

import pytest

from paramviz.config import ConfigBase, apply_overrides
from paramviz.errors import ConfigError


@dataclass(frozen=True)
class Inner(ConfigBase):
    name: str = "fourier"
    power: float = 1.0


@dataclass(frozen=True)
class Outer(ConfigBase):
    steps: int = 10
    layers: tuple[str, ...] = ()
    inner: Inner = field(default_factory=Inner)
    weights: str | None = None


def test_dict_and_toml_round_trip(tmp_path):
    config = Outer(steps=3, layers=("a", "b"), inner=Inner("pixel", 2.0), weights="w.pt")
    path = tmp_path / "c.toml"
    path.write_text(config.to_toml())
    assert Outer.from_toml(path) == config
    assert Outer.from_dict(config.to_dict()) == config


def test_int_in_toml_becomes_float_and_list_becomes_tuple():
    config = Outer.from_dict({"inner": {"power": 2}, "layers": ["x"]})
    assert config.inner.power == 2.0 and isinstance(config.inner.power, float)
    assert config.layers == ("x",)


def test_unknown_key_names_it_and_suggests():
    with pytest.raises(ConfigError, match=r"unknown option 'stpes'.*'steps'"):
        Outer.from_dict({"stpes": 3})
    with pytest.raises(ConfigError, match=r"config.inner: unknown option 'nam'"):
        Outer.from_dict({"inner": {"nam": "x"}})


def test_bad_toml_file_errors(tmp_path):
    with pytest.raises(ConfigError, match="does not exist"):
        Outer.from_toml(tmp_path / "missing.toml")
    bad = tmp_path / "bad.toml"
    bad.write_text("steps = = 3")
    with pytest.raises(ConfigError, match="not valid TOML"):
        Outer.from_toml(bad)


def test_apply_overrides_dotted_keys():
    config = apply_overrides(Outer(), {"inner.name": "pixel", "steps": 5, "layers": ("q",)})
    assert config == Outer(steps=5, layers=("q",), inner=Inner("pixel", 1.0))
    with pytest.raises(ConfigError, match="unknown option 'bogus'"):
        apply_overrides(Outer(), {"inner.bogus": 1})
