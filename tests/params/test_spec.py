from __future__ import annotations

import pytest

from paramviz.errors import ConfigError, UnknownNameError
from paramviz.params import PARAMS, ParamSpec


def test_defaults():
    spec = ParamSpec()
    assert (spec.name, spec.decorrelate, spec.squash, spec.decay_power) == ("fourier", True, "sigmoid", 1.0)


def test_unknown_names_suggest_close_matches():
    with pytest.raises(UnknownNameError, match="did you mean 'fourier'"):
        ParamSpec(name="fourir")
    with pytest.raises(UnknownNameError, match="choices: pixel, fourier"):
        ParamSpec(name="xyz")
    with pytest.raises(UnknownNameError, match="clamp"):
        ParamSpec(squash="clam")


@pytest.mark.parametrize("value", [-0.1, float("nan"), float("inf"), "1", True])
def test_bad_decay_power(value):
    with pytest.raises(ConfigError, match="decay_power"):
        ParamSpec(decay_power=value)


def test_bad_types():
    with pytest.raises(ConfigError, match="decorrelate"):
        ParamSpec(decorrelate="yes")
    with pytest.raises(ConfigError, match="name"):
        ParamSpec(name=3)


def test_int_decay_power_becomes_float_and_dict_toml_round_trip(tmp_path):
    spec = ParamSpec("pixel", False, "clamp", 2)
    assert spec.decay_power == 2.0 and isinstance(spec.decay_power, float)
    assert ParamSpec.from_dict(spec.to_dict()) == spec
    path = tmp_path / "p.toml"
    path.write_text(spec.to_toml())
    assert ParamSpec.from_toml(path) == spec
    with pytest.raises(ConfigError, match="decay_power"):
        spec.replace(decay_power=-1)


def test_registry_lists_params_in_order():
    assert PARAMS.names()[:2] == ["pixel", "fourier"]
    assert PARAMS.hint.startswith("choices: pixel, fourier")
