import re

import pytest

from paramviz.errors import ConfigError
from paramviz.limits import check_image_size, parse_size, size_hw, size_text


@pytest.mark.parametrize(
    "text,expected",
    [("128", 128), ("128x192", (128, 192)), (" 24X40 ", (24, 40)), ("4096x1", (4096, 1))],
)
def test_parse_size_reads_n_and_height_by_width(text, expected):
    assert parse_size(text) == expected
    assert size_text(expected) == text.strip().lower()


@pytest.mark.parametrize(
    "text,needle",
    [
        ("abc", "--size 'abc' is not a size; expected N or HxW"),
        ("1x2x3", "'1x2x3' is not a size"),
        ("-3", "'-3' is not a size"),
        ("", "'' is not a size"),
        ("0x5", "--size '0x5' has a side of 0 pixels"),
        ("0", "'0' has a side of 0 pixels"),
        ("100000x2", "--size '100000x2': side 100000 is larger than 4096 pixels per side"),
        ("5000", "--size 5000 is larger than 4096 pixels per side"),
    ],
)
def test_parse_size_names_the_value_and_the_forms(text, needle):
    with pytest.raises(ConfigError, match=re.escape(needle)):
        parse_size(text)


def test_check_image_size_takes_an_int_or_two_and_checks_each_side():
    assert check_image_size(32) == 32
    assert check_image_size([24, 40]) == (24, 40)  # a TOML list becomes a tuple
    assert check_image_size((24, 40), minimum=16) == (24, 40)
    with pytest.raises(ConfigError, match="size must be at least 16 pixels per side, got 8x40"):
        check_image_size((8, 40), minimum=16)
    with pytest.raises(ConfigError, match="size 5000 is larger than 4096"):
        check_image_size((24, 5000))
    for bad in ([1, 2, 3], [24], "24x40", True, 2.5, (24, "40")):
        with pytest.raises(ConfigError, match=r"size must be N or HxW .*in TOML: 128 or \[128, 192\]"):
            check_image_size(bad)


def test_size_hw():
    assert size_hw(32) == (32, 32)
    assert size_hw((24, 40)) == (24, 40)


def test_activation_bytes_leave_out_the_batchnorms_that_are_folded_away():
    from torch import nn

    from paramviz.backbones import Backbone
    from paramviz.limits import activation_bytes

    net = nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.BatchNorm2d(4), nn.ReLU(), nn.Conv2d(4, 2, 1))
    backbone = Backbone(net, name="net")
    one_map = 4 * 8 * 8 * 4  # bytes of a 4-channel 8x8 float32 map
    assert activation_bytes(backbone, ["2"], 8, 8) == 2 * one_map  # conv and ReLU; the BatchNorm is folded
    assert activation_bytes(backbone, ["1"], 8, 8) == 2 * one_map  # a requested BatchNorm runs as built
    assert activation_bytes(backbone, ["0", "2"], 8, 8) == 3 * one_map  # so does one whose conv is requested
    backbone.fold_batchnorm = False
    assert activation_bytes(backbone, ["2"], 8, 8) == 3 * one_map
