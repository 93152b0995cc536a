"""The metric registry: names per task, errors, skipped metrics, JSON output, the context's network cache."""

from __future__ import annotations

import json
import math

import pytest
import torch

from paramviz.errors import ConfigError, ImageError, UnknownNameError
from paramviz.metrics import (
    METRICS,
    Metric,
    MetricContext,
    MetricValues,
    compute_metrics,
    hf_energy,
    metric_names,
    register_metric,
)
from paramviz.objectives import Channel, ClassLogit


@pytest.fixture
def scratch_metrics(monkeypatch):
    """Registrations made by a test are undone afterwards."""
    monkeypatch.setattr(METRICS, "_entries", dict(METRICS._entries))
    return METRICS


def test_names_per_task_in_registration_order() -> None:
    pixels = ["hf_energy", "spectral_slope", "checkerboard", "tv"]
    assert metric_names("visualize") == [*pixels, "transfer", "transform_robustness"]
    assert metric_names("style") == [*pixels, "style_distance", "content_distance", "ssim_content"]
    assert set(metric_names("visualize")) | set(metric_names("style")) == set(METRICS.names())
    with pytest.raises(ConfigError, match="unknown metric task 'robustness'"):
        metric_names("robustness")


def test_every_metric_has_a_description_and_its_needs() -> None:
    for entry in METRICS.entries():
        assert entry.description and entry.obj.description == entry.description
        if entry.obj.applies is not Metric.__dataclass_fields__["applies"].default:
            assert entry.name in entry.obj.needs


def test_unknown_metric_suggests_close_names() -> None:
    context = MetricContext("visualize")
    with pytest.raises(UnknownNameError, match="unknown metric 'hf_enrgy'; did you mean 'hf_energy'"):
        compute_metrics(torch.rand(1, 3, 16, 16), context, ["hf_enrgy"])


def test_metric_of_another_task_is_refused() -> None:
    with pytest.raises(ConfigError, match="metric 'ssim_content' .* style task, not of 'visualize'"):
        compute_metrics(torch.rand(1, 3, 16, 16), MetricContext("visualize"), ["ssim_content"])


def test_metric_whose_context_is_missing_says_why(tiny_backbone) -> None:
    context = MetricContext("visualize", objective=Channel("stage1", 0), backbone=tiny_backbone)
    with pytest.raises(ConfigError, match="'transfer' does not apply .* transfer needs a class-logit objective"):
        compute_metrics(torch.rand(1, 3, 16, 16), context, "transfer")
    with pytest.raises(ConfigError, match="content_distance needs the content image"):
        compute_metrics(
            torch.rand(1, 3, 16, 16), MetricContext("style", styles=[torch.rand(1, 3, 8, 8)]), ["content_distance"]
        )


def test_default_computes_what_applies_and_lists_the_rest(tiny_backbone) -> None:
    context = MetricContext("visualize", objective=Channel("stage1", 0), backbone=tiny_backbone)
    values = compute_metrics(torch.rand(2, 3, 32, 32), context)
    assert list(values.mean) == ["hf_energy", "spectral_slope", "checkerboard", "tv", "transform_robustness"]
    assert list(values.skipped) == ["transfer"] and "class-logit" in values.skipped["transfer"]
    bare = compute_metrics(torch.rand(1, 3, 16, 16), MetricContext("style"))
    assert list(bare.mean) == ["hf_energy", "spectral_slope", "checkerboard", "tv"]
    assert list(bare.skipped) == ["style_distance", "content_distance", "ssim_content"] and not bare.extra


def test_values_and_json(tiny_backbone) -> None:
    images = torch.rand(3, 3, 24, 24, generator=torch.Generator().manual_seed(0))
    values = compute_metrics(images, MetricContext("visualize"), ["tv", "hf_energy", "tv"])
    assert list(values.mean) == ["tv", "hf_energy"]
    assert values.per_image["hf_energy"] == pytest.approx(hf_energy(images).tolist())
    assert values.mean["hf_energy"] == pytest.approx(sum(values.per_image["hf_energy"]) / 3)
    data = values.to_json()
    assert set(data) == {"metrics", "metrics_per_image", "metrics_skipped"}
    assert data["metrics"] == values.mean and data["metrics_per_image"] == values.per_image
    assert json.loads(json.dumps(data, allow_nan=False)) == data
    assert MetricValues(mean={"a": 1.0}, extra={"b:c": 2.0}).to_json()["metrics"] == {"a": 1.0, "b:c": 2.0}


@pytest.mark.parametrize(
    ("images", "match"),
    [
        (torch.rand(3, 16, 16), r"\(B, 3, H, W\)"),
        (torch.rand(1, 1, 16, 16), r"\(B, 3, H, W\)"),
        (torch.full((1, 3, 8, 8), float("nan")), "NaN"),
        (torch.rand(1, 3, 8, 8) * 255, r"\[0, 1\]"),
        (torch.zeros(1, 3, 8, 8, dtype=torch.uint8), "float"),
        (torch.zeros(0, 3, 8, 8), "empty"),
    ],
)
def test_bad_images_are_refused(images, match) -> None:
    with pytest.raises(ImageError, match=match):
        compute_metrics(images, MetricContext("visualize"), ["tv"])


def test_context_checks_its_task_and_images() -> None:
    with pytest.raises(ConfigError, match="task 'styl' is unknown"):
        MetricContext("styl")
    with pytest.raises(ImageError, match="metric context content"):
        MetricContext("style", content=torch.rand(3, 8, 8))
    with pytest.raises(ConfigError, match="unknown device"):
        MetricContext("style", device="gpu")
    with pytest.raises(ConfigError, match="metric seed must be a whole number"):
        MetricContext("visualize", seed=-1.5)
    with pytest.raises(UnknownNameError, match="unknown backbone 'efficientnet_lite3'; did you mean"):
        MetricContext("visualize", transfer_networks=("efficientnet_lite3",))
    with pytest.raises(UnknownNameError, match="unknown style referee 'vgg19'"):
        MetricContext("style", referee="vgg19")
    with pytest.raises(ConfigError, match="style_blend: got 2 weights for 1 images"):
        MetricContext("style", styles=[torch.rand(1, 3, 8, 8)], style_blend=[1.0, 2.0])
    assert MetricContext("visualize", referee="vgg19").referee == "vgg19"  # only style runs use the referee
    assert MetricContext("visualize", transfer_networks=("timm:resnet18",)).transfer_networks == ("timm:resnet18",)


def test_registering_metrics(scratch_metrics) -> None:
    def compute(images, context):
        context.record("half:mean", 0.5)
        return images.mean((1, 2, 3))

    register_metric(Metric("brightness", frozenset({"style"}), compute, description="mean pixel value"))
    assert metric_names("style")[-1] == "brightness" and "brightness" not in metric_names("visualize")
    values = compute_metrics(torch.full((2, 3, 4, 4), 0.25), MetricContext("style"), ["brightness"])
    assert values.per_image["brightness"] == [0.25, 0.25] and values.extra == {"half:mean": 0.5}
    with pytest.raises(ValueError, match="already registered"):
        register_metric(Metric("brightness", frozenset({"style"}), compute))
    with pytest.raises(ValueError, match="subset"):
        Metric("x", frozenset({"robustness"}), compute)


def test_broken_metrics_are_caught(scratch_metrics) -> None:
    register_metric(Metric("nan", frozenset({"style"}), lambda images, ctx: torch.full((images.shape[0],), math.nan)))
    register_metric(Metric("scalar", frozenset({"style"}), lambda images, ctx: images.mean()))
    with pytest.raises(RuntimeError, match="'nan' returned non-finite"):
        compute_metrics(torch.rand(1, 3, 8, 8), MetricContext("style"), ["nan"])
    with pytest.raises(RuntimeError, match=r"'scalar' returned \(\); .* shape \(1,\)"):
        compute_metrics(torch.rand(1, 3, 8, 8), MetricContext("style"), ["scalar"])


def test_optimized_names_of_a_composite(tiny_backbone, lite_cache) -> None:
    from paramviz.backbones.composite import CompositeBackbone

    both = CompositeBackbone({"style": tiny_backbone, "content": lite_cache["efficientnet_lite1"]})
    context = MetricContext("style", backbone=both, content=torch.rand(1, 3, 16, 16), styles=[torch.rand(1, 3, 16, 16)])
    assert context.optimized_names() == {"tiny", "efficientnet_lite1"}
    assert "style_distance" in compute_metrics(torch.rand(1, 3, 16, 16), context).skipped


@pytest.mark.slow
def test_network_is_built_once_without_touching_the_global_rng() -> None:
    cache: dict = {}
    context = MetricContext("visualize", objective=ClassLogit(1), cache=cache)
    torch.manual_seed(0)
    state = torch.get_rng_state()
    net = context.network("efficientnet_lite2")
    assert torch.equal(torch.get_rng_state(), state)
    assert net.name == "efficientnet_lite2" and net.weights_source.startswith("bundled")
    assert cache == {"efficientnet_lite2": net}
    assert MetricContext("visualize", cache=cache).network("efficientnet_lite2") is net
