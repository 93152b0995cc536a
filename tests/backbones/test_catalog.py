"""Catalog specifics: VGG/AlexNet aliases and pooling, GoogLeNet input transform, EfficientNet, timm."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
import torchvision
from torch import nn

from paramviz.backbones import build_backbone
from paramviz.backbones.catalog import vgg_aliases
from paramviz.errors import ConfigError, ImageError, UnknownNameError


@pytest.fixture(scope="module")
def vgg19_avg():
    return build_backbone("vgg19", "random", pool="avg")


def _convs(aliases: dict[str, str]) -> list[str]:
    return [a for a in aliases if a.startswith("conv")]


def test_vgg16_and_vgg19_alias_blocks() -> None:
    with torch.device("meta"):
        vgg16 = vgg_aliases(torchvision.models.vgg16(weights=None))
        vgg19 = vgg_aliases(torchvision.models.vgg19(weights=None))
        vgg16_bn = vgg_aliases(torchvision.models.vgg16_bn(weights=None))
    assert len(_convs(vgg16)) == 13 and len(_convs(vgg19)) == 16
    for block in (3, 4, 5):
        assert f"relu{block}_3" in vgg16 and f"relu{block}_4" not in vgg16
        assert f"relu{block}_4" in vgg19
    assert [vgg16[f"pool{i}"] for i in range(1, 6)] == [f"features.{i}" for i in (4, 9, 16, 23, 30)]
    assert [vgg19[f"pool{i}"] for i in range(1, 6)] == [f"features.{i}" for i in (4, 9, 18, 27, 36)]
    assert vgg19["conv4_2"] == "features.21" and vgg19["relu4_2"] == "features.22"
    assert vgg19["relu5_1"] == "features.29"
    assert vgg19["fc6"] == "classifier.0" and vgg19["relu7"] == "classifier.4"
    assert vgg19["logits"] == vgg19["fc8"] == "classifier.6"
    assert vgg16_bn["conv1_2"] == "features.3" and vgg16_bn["relu5_3"] == "features.42"


def test_vgg_alias_types(vgg19_avg) -> None:
    for alias in vgg19_avg.aliases:
        module = vgg19_avg.module(alias)
        kind = alias.rstrip("0123456789_")
        expected = {"conv": nn.Conv2d, "relu": nn.ReLU, "pool": nn.AvgPool2d, "fc": nn.Linear, "logits": nn.Linear}
        assert isinstance(module, expected[kind]), alias


def test_vgg19_avg_pool_replaces_every_max_pool(vgg19_avg) -> None:
    assert not any(isinstance(m, nn.MaxPool2d) for m in vgg19_avg.modules())
    pools = [m for m in vgg19_avg.modules() if isinstance(m, nn.AvgPool2d)]
    assert len(pools) == 5 and all(p.kernel_size == 2 and p.stride == 2 for p in pools)
    out = vgg19_avg(torch.rand(1, 3, 32, 32), ["relu1_2", "pool1"])
    torch.testing.assert_close(out["pool1"], F.avg_pool2d(out["relu1_2"], 2))


def test_vgg_pool_option_is_validated() -> None:
    with pytest.raises(ConfigError, match="pool must be 'max' or 'avg'"):
        build_backbone("vgg16", "random", pool="mean")
    with pytest.raises(ConfigError, match="did you mean 'pool'"):
        build_backbone("vgg16", "random", pol="avg")
    with pytest.raises(ConfigError, match="no option 'pool'"):
        build_backbone("resnet18", "random", pool="avg")


def test_alexnet_aliases() -> None:
    backbone = build_backbone("alexnet", "random")
    aliases = backbone.aliases
    assert [aliases[f"conv{i}"] for i in range(1, 6)] == [f"features.{i}" for i in (0, 3, 6, 8, 10)]
    assert [aliases[f"relu{i}"] for i in range(1, 6)] == [f"features.{i}" for i in (1, 4, 7, 9, 11)]
    assert (aliases["pool1"], aliases["pool2"], aliases["pool5"]) == ("features.2", "features.5", "features.12")
    assert aliases["fc6"] == "classifier.1" and aliases["logits"] == "classifier.6"


def test_googlenet_feeds_the_network_inputs_scaled_to_minus_one_one() -> None:
    torch.manual_seed(0)
    backbone = build_backbone("googlenet", "random")
    assert backbone.model.transform_input and backbone.model.aux1 is None
    plain = torchvision.models.googlenet(weights=None, aux_logits=False, init_weights=False, transform_input=False)
    plain.load_state_dict(backbone.model.state_dict())
    plain.eval()
    x = torch.rand(2, 3, 64, 64)
    with torch.no_grad():
        expected = plain((x - 0.5) / 0.5)
    torch.testing.assert_close(backbone(x, ["logits"])["logits"], expected, rtol=1e-4, atol=1e-4)
    # without the in-model transform the backbone normalizes with mean = std = 0.5 itself: same map
    raw = build_backbone("googlenet", "random", transform_input=False)
    raw.model.load_state_dict(backbone.model.state_dict())
    assert torch.allclose(raw.mean, torch.tensor(0.5)) and torch.allclose(raw.std, torch.tensor(0.5))
    torch.testing.assert_close(raw(x, ["logits"])["logits"], expected, rtol=1e-4, atol=1e-4)


def test_googlenet_file_with_auxiliary_heads_loads(tmp_path) -> None:
    torch.manual_seed(1)
    full = torchvision.models.googlenet(weights=None, aux_logits=True, init_weights=False, transform_input=True)
    torch.save(full.state_dict(), tmp_path / "googlenet.pth")  # torchvision's pretrained file has aux1/aux2 too
    backbone = build_backbone("googlenet", tmp_path / "googlenet.pth")
    full.eval()
    x = torch.rand(1, 3, 64, 64)
    with torch.no_grad():
        expected = full(backbone.normalize(x))
    torch.testing.assert_close(backbone(x, ["logits"])["logits"], expected)


def test_efficientnet_lite0_aliases() -> None:
    backbone = build_backbone("efficientnet_lite0", "random")
    assert [backbone.aliases[f"stage{i}"] for i in range(7)] == [f"blocks.{i}" for i in range(7)]
    assert backbone.aliases["head"] == "bn2" and backbone.aliases["logits"] == "classifier"
    assert "conv_head" in backbone.layers()
    out = backbone(torch.rand(1, 3, 64, 64), ["stage6", "conv_head", "head"])
    assert out["stage6"].shape[1] == 320 and out["conv_head"].shape[1] == 1280
    assert (out["head"] >= 0).all() and (out["head"] <= 6).all()  # after ReLU6
    assert (out["conv_head"] < 0).any()


def test_torchvision_weights_tag_is_checked() -> None:
    with pytest.raises(UnknownNameError, match="IMAGENET1K_V2"):
        build_backbone("resnet50", "random", tag="IMAGENET1K_V3")


def test_timm_model_uses_its_pretrained_cfg_and_options() -> None:
    backbone = build_backbone("timm:tf_efficientnet_lite0", "random", num_classes=10)
    assert backbone.name == "timm:tf_efficientnet_lite0" and backbone.input_size == 224
    torch.testing.assert_close(backbone.mean.flatten(), torch.full((3,), 0.5))
    assert backbone(torch.rand(1, 3, 32, 32), ["logits"])["logits"].shape == (1, 10)
    vit = build_backbone("timm:vit_tiny_patch16_224", "random", img_size=32)
    assert vit.aliases["logits"] == "head"
    # 1 class token + 2x2 patch tokens, laid out on the patch grid (paramviz.backbones.layout)
    assert vit(torch.rand(1, 3, 32, 32), ["blocks.0", "logits"])["blocks.0"].shape == (1, 192, 2, 2)


def test_timm_transformers_take_any_size_unless_told_otherwise() -> None:
    small = {"img_size": 32, "depth": 1, "embed_dim": 16, "num_heads": 1}
    vit = build_backbone("timm:vit_tiny_patch16_224", "random", **small)
    assert vit.model.dynamic_img_size and vit.model.patch_embed.dynamic_img_pad
    # 40x56 is not a multiple of the 16 px patches: padded up to a 3x4 grid (the lucid transforms give 236 px)
    assert vit(torch.rand(2, 3, 40, 56), ["blocks.0"])["blocks.0"].shape == (2, 16, 3, 4)
    swin = build_backbone(
        "timm:swin_tiny_patch4_window7_224",
        "random",
        img_size=32,
        embed_dim=8,
        depths=(1, 1),
        num_heads=(1, 1),
        window_size=4,
    )
    assert swin.model.patch_embed.strict_img_size is False  # Swin takes dynamic_img_size but no padding option
    assert swin(torch.rand(1, 3, 40, 32), ["layers.1"])["layers.1"].shape == (1, 16, 5, 4)
    fixed = build_backbone("timm:vit_tiny_patch16_224", "random", dynamic_img_size=False, **small)
    assert not fixed.model.dynamic_img_size
    with pytest.raises(ImageError, match=r"refused an input of 48x48 px \(Input height \(48\) doesn't match model"):
        fixed(torch.rand(1, 3, 48, 48), ["blocks.0"])
    cnn = build_backbone("timm:resnet18", "random")  # takes neither option: built as before
    assert cnn(torch.rand(1, 3, 40, 56), ["layer4"])["layer4"].shape == (1, 512, 2, 2)


def test_timm_unknown_name_and_bad_options() -> None:
    with pytest.raises(UnknownNameError) as info:
        build_backbone("timm:resnet5O", "random")
    assert "'resnet50'" in str(info.value) and "timm.list_models()" in str(info.value)
    with pytest.raises(ConfigError, match="rejected options"):
        build_backbone("timm:resnet18", "random", no_such_option=3)
