"""The image-metric registry: what a metric is, what it may read, and how a run's metrics are computed.

A metric scores the final images of a run, ``(B, 3, H, W)`` in [0, 1], one finite value per image. Some need
only the pixels (``hf_energy``, ``tv``); others read the run itself through a :class:`MetricContext` (the
objective and network of a visualization, the content and style images of a style transfer) or build other
real networks (``transfer``, the style referee), which the context builds once and caches across runs.

Adding a metric is one :func:`register_metric` call next to its function; the registry-parametrized contract
test (``tests/metrics/test_contract.py``) then checks it on every task it applies to. Definitions of the
built-in metrics are in ``docs/metrics.md``.

Typical use, after a run::

    context = MetricContext("visualize", objective=objective, backbone=backbone, device=device, cache=cache)
    values = compute_metrics(images, context)      # every visualize metric that applies
    data.update(values.to_json())                  # {"metrics": {...}, "metrics_per_image": {...}, ...}
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field

import torch
from torch import nn

from paramviz.backbones import BACKBONES, Backbone, build_backbone
from paramviz.backbones.composite import CompositeBackbone
from paramviz.backbones.registry import TIMM_PREFIX
from paramviz.config import check_seed
from paramviz.device import resolve_device
from paramviz.errors import ConfigError, ImageError
from paramviz.objectives.base import Objective
from paramviz.objectives.style import blend_weights
from paramviz.registry import Registry

#: The tasks metrics are written for.
METRIC_TASKS = ("visualize", "style")

#: Both tasks (for metrics that read only the pixels).
ALL_TASKS = frozenset(METRIC_TASKS)

#: Tolerance on the [0, 1] range of the images given to :func:`compute_metrics`.
_RANGE_TOLERANCE = 1e-4


@dataclass(eq=False)
class MetricContext:
    """What a metric may need beyond the image.

    Attributes:
        task: ``"visualize"`` or ``"style"``.
        objective: The run's full objective (visualize).
        backbone: The network that was optimized (a :class:`~paramviz.backbones.Backbone`, or a
            :class:`~paramviz.backbones.composite.CompositeBackbone` for style runs with two networks).
        content: Style: the content image (1, 3, H, W) in [0, 1].
        styles: Style: the style images, each (1, 3, h, w) in [0, 1].
        style_blend: Style: one blend weight per style image (empty = equal), as the run used.
        referee: Style: name of the backbone that judges the result; the style preset of the same name gives
            its layers. It must differ from the optimized backbone (else the style metrics do not apply).
        transfer_networks: Visualize: the real networks ``transfer`` measures on (any of them with the name of
            the optimized backbone is left out).
        device: Where networks run.
        seed: Seed of the metrics that draw random numbers (``transform_robustness``); torch's global RNG is
            never touched.
        cache: Built networks by name; pass the same dict to the contexts of many runs to build each once.
    """

    task: str
    objective: Objective | None = None
    backbone: nn.Module | None = None
    content: torch.Tensor | None = None
    styles: Sequence[torch.Tensor] = ()
    style_blend: Sequence[float] = ()
    referee: str = "efficientnet_lite1"
    transfer_networks: Sequence[str] = ("efficientnet_lite1", "efficientnet_lite2")
    device: torch.device | str = "cpu"
    seed: int = 0
    cache: dict = field(default_factory=dict)
    _extra: dict[str, float] = field(default_factory=dict, init=False, repr=False)

    def __post_init__(self) -> None:
        if self.task not in METRIC_TASKS:
            raise ConfigError(
                f"metric context task {self.task!r} is unknown; expected one of {', '.join(map(repr, METRIC_TASKS))}"
            )
        self.device = resolve_device(self.device)
        self.seed = check_seed(self.seed, "metric seed")
        self.transfer_networks = tuple(self.transfer_networks)
        for name in self.transfer_networks:
            if not str(name).startswith(TIMM_PREFIX):
                BACKBONES.get(name)  # UnknownNameError with close matches
        if self.task == "style":
            from paramviz.metrics.style import referee_preset  # (that module imports this one)

            referee_preset(self.referee)
        self.styles = tuple(self.styles)
        self.style_blend = tuple(float(w) for w in self.style_blend)
        if self.style_blend:
            blend_weights(self.style_blend, len(self.styles), "metric context style_blend")
        for what, image in [("content", self.content), *(("style image", s) for s in self.styles)]:
            if image is not None:
                _check_images(image, f"metric context {what}")

    def network(self, name: str) -> Backbone:
        """The pretrained backbone ``name``, built once (``build_backbone(name, "pretrained")``) and cached.

        Building does not touch torch's global RNG (timm initializes weights before loading them).
        """
        net = self.cache.get(name)
        if net is None:
            with torch.random.fork_rng(devices=[]):
                net = build_backbone(name, "pretrained")
            self.cache[name] = net
        return net.to(self.device)

    def optimized_names(self) -> set[str]:
        """Registry names of the optimized network(s): the parts of a composite, else the backbone's name."""
        if self.backbone is None:
            return set()
        parts = self.backbone.parts.values() if isinstance(self.backbone, CompositeBackbone) else [self.backbone]
        return {str(getattr(part, "name", "")) for part in parts}

    def record(self, key: str, value: float) -> None:
        """Report an additional named value (e.g. ``transfer:efficientnet_lite1``) into ``MetricValues.extra``."""
        self._extra[key] = float(value)


MetricFn = Callable[[torch.Tensor, MetricContext], torch.Tensor]


def _always(context: MetricContext) -> bool:
    return True


@dataclass(frozen=True)
class Metric:
    """A registered image metric.

    Attributes:
        name: Registry name (the key in ``metrics.json``).
        tasks: Tasks it applies to (subset of :data:`METRIC_TASKS`).
        compute: ``(images (B, 3, H, W) in [0, 1], context) -> (B,)`` finite float values. Must not modify the
            images; may call ``context.record(key, value)`` for additional values.
        applies: Whether the context has what the metric needs.
        needs: What ``applies`` checks, in words, for the error raised when the metric is asked for anyway.
        description: One line, for listings.
        on_references: For style runs, also compute it on the style and content images (reported in
            ``extra`` as ``style_image:<name>`` and ``content_image:<name>``).
    """

    name: str
    tasks: frozenset[str]
    compute: MetricFn
    applies: Callable[[MetricContext], bool] = _always
    description: str = ""
    needs: str = ""
    on_references: bool = False

    def __post_init__(self) -> None:
        unknown = set(self.tasks) - set(METRIC_TASKS)
        if not self.tasks or unknown:
            raise ValueError(f"metric {self.name!r}: tasks must be a non-empty subset of {METRIC_TASKS}")

    def why_not(self, context: MetricContext) -> str | None:
        """``None`` if the metric applies to ``context``, else the reason it does not."""
        if context.task not in self.tasks:
            return f"it is a metric of the {' and '.join(sorted(self.tasks))} task, not of {context.task!r}"
        if not self.applies(context):
            return self.needs or "the context lacks what it needs"
        return None


METRICS: Registry[Metric] = Registry("metric", hint="see docs/metrics.md or paramviz.metrics.metric_names(task)")
"""Every image metric by name, in registration order."""


def register_metric(metric: Metric) -> Metric:
    """Add ``metric`` to :data:`METRICS` (duplicate names are refused)."""
    METRICS.register(metric.name, metric, description=metric.description)
    return metric


def metric_names(task: str) -> list[str]:
    """Registered metrics for ``task``, in registration order.

    Raises:
        ConfigError: ``task`` is not one of :data:`METRIC_TASKS`.
    """
    if task not in METRIC_TASKS:
        raise ConfigError(f"unknown metric task {task!r}; expected one of {', '.join(map(repr, METRIC_TASKS))}")
    return [entry.name for entry in METRICS.entries() if task in entry.obj.tasks]


@dataclass
class MetricValues:
    """The metrics of one run.

    Attributes:
        mean: Metric name -> mean over the batch.
        per_image: Metric name -> one value per image.
        extra: Additional values: per-network transfer (``transfer:<network>``) and, for style runs, the
            metrics of the reference images (``style_image:<name>``, ``content_image:<name>``).
        skipped: Metrics of the task left out because they do not apply, with the reason (only when every
            metric was asked for).
    """

    mean: dict[str, float] = field(default_factory=dict)
    per_image: dict[str, list[float]] = field(default_factory=dict)
    extra: dict[str, float] = field(default_factory=dict)
    skipped: dict[str, str] = field(default_factory=dict)

    def to_json(self) -> dict[str, dict]:
        """JSON-safe dict for ``metrics.json``.

        ``{"metrics": {name: mean, ..., extra key: value, ...}, "metrics_per_image": {name: [v0, v1, ...]},
        "metrics_skipped": {name: reason}}``; every number is a finite float.
        """
        return {
            "metrics": {**self.mean, **self.extra},
            "metrics_per_image": {k: list(v) for k, v in self.per_image.items()},
            "metrics_skipped": dict(self.skipped),
        }


def compute_metrics(
    images: torch.Tensor, context: MetricContext, names: Iterable[str] | str | None = None
) -> MetricValues:
    """Compute image metrics of a run's final images.

    Args:
        images: (B, 3, H, W) in [0, 1]; left unchanged.
        context: The run (:class:`MetricContext`).
        names: Metric names, or ``None`` for every metric of ``context.task`` that applies (the others are
            listed in ``skipped`` with the reason).

    Raises:
        UnknownNameError: An unregistered metric name (with close matches).
        ConfigError: A named metric that does not apply to the task or the context, naming why.
        ImageError: ``images`` is not a (B, 3, H, W) float batch in [0, 1].
    """
    _check_images(images, "metric images")
    values = MetricValues()
    if names is None:
        metrics = []
        for name in metric_names(context.task):
            metric = METRICS.get(name)
            reason = metric.why_not(context)
            if reason is None:
                metrics.append(metric)
            else:
                values.skipped[name] = reason
    else:
        names = [names] if isinstance(names, str) else list(dict.fromkeys(names))
        metrics = [METRICS.get(name) for name in names]
        for metric in metrics:
            reason = metric.why_not(context)
            if reason is not None:
                raise ConfigError(f"metric {metric.name!r} does not apply to this {context.task} run: {reason}")
    images = images.detach()
    references = _references(context)
    with torch.no_grad():
        for metric in metrics:
            context._extra = {}
            per_image = _run(metric, images, context)
            values.per_image[metric.name] = per_image
            values.mean[metric.name] = math.fsum(per_image) / len(per_image)
            values.extra.update(context._extra)
            if metric.on_references:
                for key, value in _on_references(metric, references, context).items():
                    values.extra[f"{key}:{metric.name}"] = value
    context._extra = {}
    return values


def _run(metric: Metric, images: torch.Tensor, context: MetricContext) -> list[float]:
    result = metric.compute(images, context)
    batch = int(images.shape[0])
    if not isinstance(result, torch.Tensor) or tuple(result.shape) != (batch,):
        got = tuple(result.shape) if isinstance(result, torch.Tensor) else type(result).__name__
        raise RuntimeError(
            f"metric {metric.name!r} returned {got}; metrics must return one value per image, shape ({batch},)"
        )
    out = [float(v) for v in result.detach().double().cpu()]
    if not all(math.isfinite(v) for v in out):
        raise RuntimeError(f"metric {metric.name!r} returned non-finite values {out}; metric values must be finite")
    for key, value in context._extra.items():
        if not math.isfinite(value):
            raise RuntimeError(f"metric {metric.name!r} recorded a non-finite value {key}={value}")
    return out


def _references(context: MetricContext) -> dict[str, list[tuple[torch.Tensor, float]]]:
    """Style runs: ``{"style_image": [(image, blend weight)...], "content_image": [(image, 1.0)]}``."""
    if context.task != "style":
        return {}
    out: dict[str, list[tuple[torch.Tensor, float]]] = {}
    if context.styles:
        out["style_image"] = list(zip(context.styles, blend_or_equal(context), strict=True))
    if context.content is not None:
        out["content_image"] = [(context.content, 1.0)]
    return out


def blend_or_equal(context: MetricContext) -> list[float]:
    """The context's style blend weights normalized to sum 1 (equal weights when none are given)."""
    return blend_weights(context.style_blend or None, len(context.styles))


def _on_references(
    metric: Metric, references: dict[str, list[tuple[torch.Tensor, float]]], context: MetricContext
) -> dict[str, float]:
    out = {}
    for key, items in references.items():
        total = 0.0
        for image, weight in items:
            total += weight * _run(metric, image.detach(), context)[0]
        out[key] = total
    return out


def _check_images(images: object, what: str) -> None:
    if not isinstance(images, torch.Tensor) or images.dim() != 4 or images.shape[1] != 3:
        got = tuple(images.shape) if isinstance(images, torch.Tensor) else type(images).__name__
        raise ImageError(f"{what}: expected an RGB batch of shape (B, 3, H, W), got {got}")
    if not images.is_floating_point():
        raise ImageError(f"{what}: expected float values in [0, 1], got dtype {images.dtype}")
    if images.shape[0] == 0 or images.shape[2] == 0 or images.shape[3] == 0:
        raise ImageError(f"{what}: the batch is empty (shape {tuple(images.shape)})")
    if not torch.isfinite(images).all():
        raise ImageError(f"{what}: the images contain NaN or infinite values")
    low, high = float(images.min()), float(images.max())
    if low < -_RANGE_TOLERANCE or high > 1 + _RANGE_TOLERANCE:
        raise ImageError(f"{what}: values must lie in [0, 1], got [{low:.4g}, {high:.4g}]")


def module_device(module: nn.Module) -> torch.device:
    """Device of a module's first buffer or parameter (CPU for a module without tensors)."""
    for tensor in list(module.buffers()) + list(module.parameters()):
        return tensor.device
    return torch.device("cpu")
