"""Style-transfer metrics on the referee EfficientNet-Lite1 (real weights)."""

from __future__ import annotations

import pytest
import torch

from paramviz.errors import ImageError, UnknownNameError
from paramviz.metrics import MetricContext, compute_metrics, hf_energy, spectral_slope
from paramviz.metrics.style import content_distance, referee_preset, ssim_content, style_distance

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def images(photo):
    return {
        "content": photo("chelsea", (64, 96)),
        "style": photo("astronaut", (80, 80)),
        "other": photo("coffee", (64, 96)),
        "style2": photo("rocket", (72, 72)),
    }


@pytest.fixture
def referee(lite_cache):
    return lite_cache["efficientnet_lite1"], referee_preset("efficientnet_lite1")


def test_referee_preset_is_the_one_named_like_the_backbone() -> None:
    preset = referee_preset("efficientnet_lite2")
    assert preset.backbone == "efficientnet_lite2" and preset.content_layers == ("blocks.3.1.bn1",)
    with pytest.raises(UnknownNameError, match="efficientnet_lite1"):
        referee_preset("efficientnet_lite3")
    with pytest.raises(UnknownNameError, match="style referee 'gatys'"):
        referee_preset("gatys")  # a preset, but for vgg19: not a referee name


def test_style_distance_is_zero_for_the_style_itself_and_grows_for_other_images(images, referee) -> None:
    net, preset = referee
    style = images["style"]
    self_distance = style_distance(style, [style], net, preset).item()
    others = style_distance(torch.cat([images["content"], images["other"]]), [style], net, preset)
    assert self_distance < 1e-10
    assert (others > 1e-3).all() and others.dtype == torch.float64


def test_style_blend_weights_select_the_style(images, referee) -> None:
    net, preset = referee
    style, style2 = images["style"], images["style2"]
    assert style_distance(style, [style, style2], net, preset, [1.0, 0.0]).item() < 1e-10
    assert style_distance(style2, [style, style2], net, preset, [0.0, 2.0]).item() < 1e-10
    halfway = style_distance(style, [style, style2], net, preset).item()
    assert halfway > 1e-4


def test_content_distance_and_ssim(images, referee) -> None:
    net, preset = referee
    content = images["content"]
    assert content_distance(content, content, net, preset).item() < 1e-10
    assert content_distance(images["other"], content, net, preset).item() > 1e-3
    assert ssim_content(content, content).item() == pytest.approx(1.0, abs=1e-6)
    noise = torch.rand(2, 3, 64, 96, generator=torch.Generator().manual_seed(0))
    assert (ssim_content(noise, content) < 0.2).all()


def test_content_is_compared_at_the_output_size(images, referee) -> None:
    net, preset = referee
    content = images["content"]  # 64 x 96
    small = torch.nn.functional.interpolate(content, size=(32, 48), mode="bilinear", antialias=True)
    assert ssim_content(small, content).item() == pytest.approx(1.0, abs=1e-5)
    assert content_distance(small, content, net, preset).item() < 1e-8
    with pytest.raises(ImageError, match="larger than 5 px"):
        ssim_content(torch.rand(1, 3, 5, 40), torch.rand(1, 3, 5, 40))


def test_style_run_metrics_and_reference_spectra(images, tiny_backbone, lite_cache) -> None:
    content, style, style2 = images["content"], images["style"], images["style2"]
    context = MetricContext(
        "style",
        backbone=tiny_backbone,
        content=content,
        styles=[style, style2],
        style_blend=[3.0, 1.0],
        cache=lite_cache,
    )
    values = compute_metrics(content, context)
    assert list(values.mean) == [
        "hf_energy",
        "spectral_slope",
        "checkerboard",
        "tv",
        "style_distance",
        "content_distance",
        "ssim_content",
    ]
    assert values.mean["ssim_content"] == pytest.approx(1.0, abs=1e-6)
    assert values.mean["content_distance"] < 1e-10 and values.mean["style_distance"] > 1e-4
    for name, fn in (("hf_energy", hf_energy), ("spectral_slope", spectral_slope)):
        expected = 0.75 * fn(style).item() + 0.25 * fn(style2).item()
        assert values.extra[f"style_image:{name}"] == pytest.approx(expected)
        assert values.extra[f"content_image:{name}"] == pytest.approx(fn(content).item())
    assert set(values.extra) == {
        "style_image:hf_energy",
        "content_image:hf_energy",
        "style_image:spectral_slope",
        "content_image:spectral_slope",
    }


def test_referee_that_optimized_is_skipped(images, lite_cache) -> None:
    lite1 = lite_cache["efficientnet_lite1"]
    context = MetricContext("style", backbone=lite1, content=images["content"], styles=[images["style"]])
    values = compute_metrics(images["content"], context)
    assert "style_distance" in values.skipped and "content_distance" in values.skipped
    assert "referee" in values.skipped["style_distance"] and "ssim_content" in values.mean
    other = MetricContext(
        "style", backbone=lite1, content=images["content"], styles=[images["style"]], referee="efficientnet_lite2"
    )
    other.cache.update(lite_cache)
    assert compute_metrics(images["style"], other, ["style_distance"]).mean["style_distance"] < 1e-10
