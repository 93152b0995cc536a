import pytest

from paramviz.errors import UnknownNameError
from paramviz.registry import Registry


def test_register_get_and_refuse_duplicates():
    reg: Registry[int] = Registry("widget", "run `widgets`")
    reg.register("alpha", 1, description="first")

    @reg.register("beta")
    def beta():
        """Second widget."""

    assert reg.get("alpha") == 1
    assert reg.entry("beta").description == "Second widget."
    assert reg.names() == ["alpha", "beta"] and "alpha" in reg and len(reg) == 2
    with pytest.raises(ValueError, match="already registered"):
        reg.register("alpha", 2)
    assert reg.get("alpha") == 1


def test_unknown_name_suggests_close_matches_and_hint():
    reg: Registry[int] = Registry("backbone", "run `paramviz models`")
    for name in ["resnet18", "resnet50", "vgg19"]:
        reg.register(name, 0)
    with pytest.raises(UnknownNameError) as info:
        reg.get("resnet5")
    message = str(info.value)
    assert "'resnet5'" in message and "'resnet50'" in message and "paramviz models" in message
    assert isinstance(info.value, LookupError)
    assert info.value.suggestions[0] == "resnet50"


def test_unknown_name_without_close_match_lists_small_choice_sets():
    reg: Registry[int] = Registry("squash")
    reg.register("sigmoid", 0)
    reg.register("clamp", 0)
    with pytest.raises(UnknownNameError, match="expected one of 'clamp', 'sigmoid'"):
        reg.get("zzzz")
