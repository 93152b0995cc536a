"""Layer layouts: token sequences and channels-last maps reach the objectives as (B, C, H, W)."""

from __future__ import annotations

import re

import pytest
import torch
from torch import nn

from paramviz.backbones import Backbone, build_backbone, format_layers
from paramviz.backbones.layout import FeatureLayout, declared_channels_last, to_nchw, token_grid
from paramviz.errors import ConfigError
from paramviz.objectives import Channel, DeepDream, Direction, Diversity, Neuron
from paramviz.params import ParamSpec, build_param
from paramviz.render import render
from paramviz.transforms import build_transforms

VIT = "timm:vit_tiny_patch16_224"
SWIN = "timm:swin_tiny_patch4_window7_224"
#: A 2-block ViT with 8 px patches, a class token and 2 register tokens (prefix 3).
VIT_OPTIONS = {"img_size": 32, "patch_size": 8, "depth": 2, "embed_dim": 16, "num_heads": 2, "reg_tokens": 2}
SWIN_OPTIONS = {"img_size": 32, "embed_dim": 8, "depths": (1, 1), "num_heads": (1, 1), "window_size": 4}


@pytest.fixture(scope="module")
def vit() -> Backbone:
    torch.manual_seed(0)
    return build_backbone(VIT, "random", **VIT_OPTIONS)


@pytest.fixture(scope="module")
def swin() -> Backbone:
    torch.manual_seed(0)
    return build_backbone(SWIN, "random", **SWIN_OPTIONS)


def raw_output(backbone: Backbone, x: torch.Tensor, layer: str) -> torch.Tensor:
    """The module's own output, captured without the Backbone wrapper."""
    seen = {}
    handle = backbone.module(layer).register_forward_hook(lambda _m, _i, out: seen.setdefault("out", out))
    try:
        with torch.no_grad():
            backbone.model(backbone.normalize(x))
    finally:
        handle.remove()
    return seen["out"]


# --- the conversion rules --------------------------------------------------------------------------------
def test_tokens_with_prefix_go_onto_the_patch_grid_in_row_major_order():
    layout = FeatureLayout(prefix_tokens=2, patch_size=(4, 4))
    tokens = torch.randn(3, 2 + 2 * 3, 5)  # 2 prefix tokens, then a 2x3 grid of 5 channels (8x12 input)
    out = to_nchw(tokens, layer="b", layout=layout, channels_last=False, input_size=(8, 12), batch=3)
    assert out.shape == (3, 5, 2, 3)
    for t in range(6):
        torch.testing.assert_close(out[:, :, t // 3, t % 3], tokens[:, 2 + t])
    no_prefix = tokens[:, 2:]  # e.g. the patch embedding's output, before the class token is added
    again = to_nchw(no_prefix, layer="e", layout=layout, channels_last=False, input_size=(8, 12), batch=3)
    torch.testing.assert_close(again, out)


def test_token_grid_without_a_patch_size_follows_the_aspect_ratio():
    layout = FeatureLayout()
    assert token_grid(16 * 24, layout, (64, 96)) == (16, 24)  # a Swin stage: 4x downsampled
    assert token_grid(24 * 16, layout, (96, 64)) == (24, 16)
    assert token_grid(49, layout, (224, 224)) == (7, 7)
    assert token_grid(15, layout, (60, 36)) == (5, 3)
    with pytest.raises(ConfigError, match=r"sequence of 197 tokens.*224x224 input.*prefix_tokens"):
        token_grid(197, layout, (224, 224))  # a ViT class token the layout does not declare


def test_channels_last_maps_are_permuted_and_others_left_alone():
    x = torch.randn(2, 4, 5, 6)  # (B, H, W, C)
    out = to_nchw(x, layer="s", layout=FeatureLayout(), channels_last=True, input_size=(16, 20), batch=2)
    assert out.shape == (2, 6, 4, 5)
    torch.testing.assert_close(out.permute(0, 2, 3, 1), x)
    assert to_nchw(x, layer="c", layout=FeatureLayout(), channels_last=False, input_size=(4, 5), batch=2) is x
    flat = torch.randn(2, 7)
    assert to_nchw(flat, layer="fc", layout=FeatureLayout(), channels_last=True, input_size=(4, 5), batch=2) is flat


def test_a_layer_whose_first_dimension_is_not_the_batch_is_refused():
    windows = torch.randn(8, 16, 4)  # 4 windows of 16 tokens for each of 2 images
    with pytest.raises(ConfigError, match=r"'attn' of backbone 'net' has shape \(8, 16, 4\) for a batch of 2"):
        to_nchw(
            windows,
            layer="attn",
            layout=FeatureLayout(),
            channels_last=False,
            input_size=(16, 16),
            batch=2,
            backbone="net",
        )


def test_linear_and_layernorm_outputs_are_channels_last_in_any_backbone():
    class PermutingBlock(nn.Module):  # a ConvNeXt-like block: channels-last inside
        def __init__(self) -> None:
            super().__init__()
            self.conv = nn.Conv2d(3, 4, 3, padding=1)
            self.norm = nn.LayerNorm(4)
            self.fc = nn.Linear(4, 6)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.fc(self.norm(self.conv(x).permute(0, 2, 3, 1))).permute(0, 3, 1, 2)

    backbone = Backbone(PermutingBlock(), name="block")
    assert backbone.channels_last("fc") and backbone.channels_last("norm") and not backbone.channels_last("conv")
    x = torch.rand(2, 3, 5, 7)
    features = backbone(x, ["conv", "norm", "fc"])
    assert {k: tuple(v.shape) for k, v in features.items()} == {
        "conv": (2, 4, 5, 7),
        "norm": (2, 4, 5, 7),
        "fc": (2, 6, 5, 7),
    }
    torch.testing.assert_close(features["fc"], backbone.model(backbone.normalize(x)))
    assert backbone.layout.describe() == ""  # nothing declared: no layout line in `paramviz layers`


# --- timm ViT and Swin -----------------------------------------------------------------------------------
def test_vit_layout_comes_from_the_model(vit: Backbone):
    assert vit.layout.prefix_tokens == 3 and vit.layout.patch_size == (8, 8) and vit.layout.pad_to_patch
    assert "patch_embed" in vit.layout.channels_last  # dynamic_img_size: the embedding outputs (B, h, w, C)
    x = torch.rand(2, 3, 32, 48)
    raw = raw_output(vit, x, "blocks.1")
    assert raw.shape == (2, 3 + 4 * 6, 16)
    out = vit(x, ["blocks.1"])["blocks.1"]
    assert out.shape == (2, 16, 4, 6)
    torch.testing.assert_close(out, raw[:, 3:].transpose(1, 2).reshape(2, 16, 4, 6))
    embed = vit(x, ["patch_embed"])["patch_embed"]
    torch.testing.assert_close(embed, raw_output(vit, x, "patch_embed").permute(0, 3, 1, 2))


def test_swin_stages_are_nhwc_and_come_out_nchw(swin: Backbone):
    assert (
        swin.layout.prefix_tokens == 0 and swin.channels_last("layers.1") and not swin.channels_last("patch_embed.proj")
    )
    x = torch.rand(2, 3, 32, 40)
    raw = raw_output(swin, x, "layers.1")
    assert raw.shape == (2, 4, 5, 16)  # (B, H, W, C)
    features = swin(x, ["patch_embed.proj", "layers.1", "layers.1.blocks.0.mlp"])
    torch.testing.assert_close(features["layers.1"], raw.permute(0, 3, 1, 2))
    assert features["patch_embed.proj"].shape == (2, 8, 8, 10)  # a Conv2d: channels-first already
    mlp = raw_output(swin, x, "layers.1.blocks.0.mlp")  # (B, h*w, C) tokens of a downsampled stage
    torch.testing.assert_close(features["layers.1.blocks.0.mlp"], mlp.transpose(1, 2).reshape(2, 16, 4, 5))
    with pytest.raises(ConfigError, match="not the batch"):
        swin(x, ["layers.0.blocks.0.attn"])  # windows, not images


def test_declared_channels_last_needs_the_model_to_say_so():
    class Plain(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.body = nn.Identity()

    class Nhwc(Plain):
        output_fmt = "NHWC"

    assert declared_channels_last(Plain()) == frozenset()
    assert declared_channels_last(Nhwc()) == {"body"}


@pytest.mark.parametrize(
    "make",
    [
        lambda: Channel("blocks.1", 3),
        lambda: Neuron("blocks.1", 3, x=2, y=1),
        lambda: DeepDream("blocks.1"),
        lambda: Direction("blocks.1", seed=0),
        lambda: Diversity("blocks.1"),
    ],
    ids=["channel", "neuron", "direction", "deepdream", "diversity"],
)
def test_activation_objectives_read_vit_blocks_without_the_prefix_tokens(make, vit: Backbone):
    objective = make()
    x = torch.rand(2, 3, 32, 48, generator=torch.Generator().manual_seed(1)).requires_grad_(True)
    loss = objective(vit(x, objective.layers()))
    assert loss.shape == (2,) and torch.isfinite(loss).all()
    patches = raw_output(vit, x, "blocks.1")[:, 3:]  # (B, 24, C) patch tokens, row-major on the 4x6 grid
    if isinstance(objective, Channel):
        torch.testing.assert_close(loss, -patches[:, :, 3].mean(1))
    if isinstance(objective, Neuron):
        torch.testing.assert_close(loss, -patches[:, 1 * 6 + 2, 3])
    loss.sum().backward()
    assert x.grad.abs().sum() > 0


def test_neuron_token_index_is_the_row_major_patch(vit: Backbone):
    x = torch.rand(1, 3, 32, 48)
    features = vit(x, ["blocks.1"])
    by_token = Neuron("blocks.1", 5, token=13)(features)  # 13 = row 2, column 1 on the 4x6 grid
    torch.testing.assert_close(by_token, Neuron("blocks.1", 5, x=1, y=2)(features))
    torch.testing.assert_close(by_token, -raw_output(vit, x, "blocks.1")[:, 3 + 13, 5])
    with pytest.raises(ConfigError, match=r"token 24 is outside layer 'blocks.1', whose grid is 4x6"):
        Neuron("blocks.1", 5, token=24)(features)


def test_a_channel_on_a_vit_block_rises_when_rendered(vit: Backbone):
    param = build_param(ParamSpec(name="pixel"), (32, 32), seed=0)
    objective = Channel("blocks.1", 3)
    result = render(param, build_transforms("none"), vit, objective, steps=40, lr=0.05, seed=0, device="cpu")
    # the mean activation of channel 3 over the 16 patch tokens: about 0 at the start, above 1 after 40 steps
    assert abs(result.history[0]) < 0.2 and result.history[-1] < -1.0, result.history[::10]
    assert all(b <= a + 1e-3 for a, b in zip(result.history[::10], result.history[10::10], strict=False))


# --- listings --------------------------------------------------------------------------------------------
def test_layers_listing_states_the_token_layout():
    with torch.device("meta"):
        text = format_layers(build_backbone(VIT, "random"))
    assert re.search(
        r"^layout: token layers \(B, N, C\) .*16x16 px patches, skipping 1 class/register token", text, re.MULTILINE
    )
    assert re.search(r"^  blocks\.11\s+Block\b", text, re.MULTILINE)
    with torch.device("meta"):
        assert "layout:" not in format_layers(build_backbone("resnet18", "random"))
