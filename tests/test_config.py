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


@dataclass(frozen=True)
class Typed(ConfigBase):
    flag: bool = False
    count: int = 1
    rate: float = 0.5
    name: str = "x"
    steps: tuple[int, ...] = ()


@pytest.mark.parametrize(
    "data,needle",
    [
        ({"flag": "false"}, "Typed.flag: expected true or false, got 'false'"),
        ({"count": True}, "expected a whole number"),
        ({"count": 1.5}, "expected a whole number"),
        ({"rate": "0.1"}, "expected a number"),
        ({"name": 5}, "expected a string"),
        ({"steps": [1.5]}, r"steps\[0\]: expected a whole number"),
    ],
)
def test_values_of_the_wrong_type_are_refused(data, needle):
    with pytest.raises(ConfigError, match=needle):
        Typed.from_dict(data, where="Typed")


def test_a_string_false_cannot_turn_on_trusted_unpickling(tmp_path):
    from paramviz.tasks.visualize import VisualizeConfig

    path = tmp_path / "c.toml"
    path.write_text('objectives = ["stage4:1"]\ntrust_checkpoint = "false"\n')
    with pytest.raises(ConfigError, match="trust_checkpoint: expected true or false"):
        VisualizeConfig.from_toml(path)


def test_config_file_that_is_not_text(tmp_path):
    path = tmp_path / "c.toml"
    path.write_bytes(b"\xff\xfe\x00")
    with pytest.raises(ConfigError, match="not UTF-8"):
        Outer.from_toml(path)
    with pytest.raises(ConfigError, match="cannot read config file"):
        Outer.from_toml(tmp_path)


@pytest.mark.parametrize("seed", [-1, 2**63, 99999999999999999999, True, 1.0])
def test_seeds_outside_torchs_range_are_refused(seed):
    from paramviz.config import check_seed
    from paramviz.tasks.visualize import VisualizeConfig

    with pytest.raises(ConfigError, match="seed must be a whole number"):
        check_seed(seed)
    with pytest.raises(ConfigError, match="seed must be a whole number"):
        VisualizeConfig(objectives=("stage4:1",), seed=seed)


@pytest.mark.parametrize("size", [128, (128, 192)])
def test_task_sizes_round_trip_as_an_int_or_a_height_width_list(tmp_path, size):
    from paramviz.tasks.robustness import RobustnessConfig
    from paramviz.tasks.stylize import StyleConfig
    from paramviz.tasks.visualize import VisualizeConfig

    robustness = RobustnessConfig(backbones=("vgg19",), size=size)
    for config in (VisualizeConfig(size=size), StyleConfig(size=size), robustness):
        path = tmp_path / f"{type(config).__name__}.toml"
        path.write_text(config.to_toml())
        text = path.read_text()
        assert ("size = 128\n" in text) if size == 128 else ("size = [\n    128,\n    192,\n]" in text)
        back = type(config).from_toml(path)
        assert back == config and back.size == size and type(back.size) is type(size)
    written = tmp_path / "hand.toml"
    written.write_text("size = [24, 40]\n")
    assert VisualizeConfig.from_toml(written).size == (24, 40)
    written.write_text("size = [24, 40, 1]\n")
    with pytest.raises(ConfigError, match=r"size must be N or HxW .*got \(24, 40, 1\)"):
        VisualizeConfig.from_toml(written)
