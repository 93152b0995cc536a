"""The metric contract, checked for every registered metric on every task it applies to.

A context fixture per task gives every metric what it needs (objective and backbone for visualize; content,
styles and the referee for style). A new metric needs no new test code: if it needs more than these
contexts hold, ``test_context_fixture_satisfies_every_metric`` says so.
"""

from __future__ import annotations

import json
import math

import pytest
import torch

from paramviz.metrics import METRICS, MetricContext, compute_metrics
from paramviz.objectives import Channel, ClassLogit, TotalVariation

CASES = [(entry.name, task) for entry in METRICS.entries() for task in sorted(entry.obj.tasks)]
BATCH, HEIGHT, WIDTH = 2, 40, 48


@pytest.fixture
def make_context(tiny_backbone, lite_cache):
    gen = torch.Generator().manual_seed(1)

    def make(task: str) -> MetricContext:
        if task == "visualize":
            objective = ClassLogit([1, 2]) + Channel("stage1", 3) + 0.1 * TotalVariation()
            return MetricContext(task, objective=objective, backbone=tiny_backbone, cache=lite_cache)
        return MetricContext(
            task,
            backbone=tiny_backbone,
            content=torch.rand(1, 3, HEIGHT, WIDTH, generator=gen),
            styles=[torch.rand(1, 3, 36, 36, generator=gen), torch.rand(1, 3, 44, 40, generator=gen)],
            style_blend=[2.0, 1.0],
            cache=lite_cache,
        )

    return make


def _images(kind: str) -> torch.Tensor:
    if kind == "random":
        return torch.rand(BATCH, 3, HEIGHT, WIDTH, generator=torch.Generator().manual_seed(0))
    return torch.full((BATCH, 3, HEIGHT, WIDTH), {"grey": 0.5, "black": 0.0, "white": 1.0}[kind])


@pytest.mark.parametrize(("name", "task"), CASES)
def test_context_fixture_satisfies_every_metric(make_context, name, task) -> None:
    assert METRICS.get(name).why_not(make_context(task)) is None


@pytest.mark.slow
@pytest.mark.parametrize("kind", ["random", "grey", "black", "white"])
@pytest.mark.parametrize(("name", "task"), CASES)
def test_metric_returns_finite_values_and_leaves_images_and_rng_untouched(make_context, name, task, kind) -> None:
    context = make_context(task)
    images = _images(kind)
    before = images.clone()
    content = None if context.content is None else context.content.clone()
    rng = torch.get_rng_state()
    value = METRICS.get(name).compute(images, context)
    assert torch.equal(torch.get_rng_state(), rng)  # seeded metrics use private draws
    assert isinstance(value, torch.Tensor) and value.shape == (BATCH,) and value.is_floating_point()
    assert torch.isfinite(value).all()
    assert torch.equal(images, before)
    assert content is None or torch.equal(context.content, content)


@pytest.mark.slow
@pytest.mark.parametrize("task", sorted({task for _, task in CASES}))
def test_a_run_gives_finite_json(make_context, task) -> None:
    values = compute_metrics(_images("random"), make_context(task))
    assert not values.skipped and set(values.mean) == {name for name, t in CASES if t == task}
    data = json.loads(json.dumps(values.to_json(), allow_nan=False))
    assert all(math.isfinite(v) for v in data["metrics"].values())
    assert all(len(v) == BATCH for v in data["metrics_per_image"].values())


def test_metrics_are_deterministic(make_context) -> None:
    first = compute_metrics(_images("random"), make_context("visualize"), ["transform_robustness", "tv"])
    second = compute_metrics(_images("random"), make_context("visualize"), ["transform_robustness", "tv"])
    assert first == second
