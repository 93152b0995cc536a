from __future__ import annotations

import pytest

from paramviz.backbones import IMAGENET_CLASSES, class_index, class_name
from paramviz.errors import ConfigError, UnknownNameError


def test_thousand_unique_names() -> None:
    assert len(IMAGENET_CLASSES) == 1000 == len(set(IMAGENET_CLASSES))
    assert IMAGENET_CLASSES[0] == "tench" and IMAGENET_CLASSES[285] == "Egyptian cat"
    assert IMAGENET_CLASSES[967] == "espresso"


@pytest.mark.parametrize(
    ("label", "index"),
    [
        ("Egyptian cat", 285),
        ("egyptian CAT", 285),
        ("egyptian_cat", 285),
        ("espresso", 967),
        ("Cardigan", 264),  # the dog; "cardigan" is the sweater
        ("cardigan", 474),
        ("Egyptia", 285),  # unique substring
        (967, 967),
        ("281", 281),
        (0, 0),
    ],
)
def test_class_index(label, index) -> None:
    assert class_index(label) == index


def test_class_name_round_trip() -> None:
    assert all(class_index(class_name(i)) == i for i in range(1000))


def test_unknown_and_ambiguous_labels() -> None:
    with pytest.raises(UnknownNameError) as info:
        class_index("expresso")
    assert "'espresso'" in str(info.value)
    with pytest.raises(UnknownNameError) as info:
        class_index("cat")  # contained in many class names
    assert "classes contain 'cat'" in str(info.value) and "'tiger cat' (282)" in str(info.value)
    with pytest.raises(UnknownNameError, match="'espresso maker' \\(550\\)"):
        class_index("espress")


@pytest.mark.parametrize("label", [1000, -1, "1000"])
def test_out_of_range_index(label) -> None:
    with pytest.raises(ConfigError, match="out of range"):
        class_index(label)


def test_wrong_type() -> None:
    with pytest.raises(ConfigError):
        class_index(True)
    with pytest.raises(ConfigError):
        class_index(2.5)  # type: ignore[arg-type]
