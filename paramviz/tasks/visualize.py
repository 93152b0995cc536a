"""Feature visualization (activation maximization): config -> components -> render -> outputs."""

from __future__ import annotations

import functools
import json
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import torch

from paramviz.backbones import Backbone, parse_backbone_options
from paramviz.config import SEED_RANGE, ConfigBase, check_seed
from paramviz.device import resolve_device
from paramviz.errors import ConfigError, RenderInterrupted
from paramviz.io import OutputDir, captioned_grid, check_output_dir, image_grid, labeled_grid
from paramviz.limits import (
    available_memory,
    check_image_size,
    check_lr,
    check_memory,
    estimate_render_bytes,
    size_hw,
    size_text,
)
from paramviz.objectives import IMAGE_KEYS, Objective, parse_objectives, required_batch
from paramviz.objectives.base import images_are_independent
from paramviz.objectives.penalties import ALPHA_KEY
from paramviz.params import ImageParam, ParamBatch, ParamSpec, build_param
from paramviz.params.base import check_size
from paramviz.render import OPTIMIZERS, Callback, RenderResult, render
from paramviz.tasks.base import (
    TASKS,
    MetricsConfig,
    SharedWork,
    Task,
    backbone_seed,
    measure,
    metric_context,
    run_metrics,
    seeded_backbone,
)
from paramviz.transforms import build_transforms


@dataclass(frozen=True)
class VisualizeConfig(ConfigBase):
    """Everything a feature visualization run needs; the defaults are Lucid's.

    Attributes:
        backbone: Registry name (``paramviz models``) or ``timm:<name>``.
        backbone_options: ``KEY=VALUE`` options of the backbone, e.g. ``pool=avg`` for VGG (``paramviz models``
            lists each backbone's options).
        weights: ``"pretrained"``, ``"random"`` or a path to a weights file.
        trust_checkpoint: Allow full unpickling of a weights file that needs it.
        objectives: Objective spec strings, summed (see ``paramviz visualize --help``).
        param: The image parameterization.
        transforms: Transform preset name or spec string.
        size: Image size in pixels: ``N`` for an ``N x N`` square or ``(H, W)`` (``--size HxW``; TOML
            ``size = [H, W]``).
        batch: Images rendered at once.
        steps: Optimization steps.
        lr: Learning rate; ``None``: the parameterization's ``default_lr`` (Lucid's 0.05 for pixel, fourier
            and laplacian; 0.005 for cppn; 1.0 for maco).
        optimizer: ``adam``, ``lbfgs`` or ``nadam``; ``None``: the parameterization's ``default_optimizer``
            (nadam for maco, adam for the others).
        seed: Seed of the parameter init and the transform draws.
        device: ``auto``, ``cpu``, ``cuda``, ``cuda:N``.
        thresholds: Steps at which a snapshot image is saved (the last step always is).
        metrics: Image metrics measured on the final images (``metrics.json``'s "metrics"); an RGBA image is
            measured on its RGB part.
        unit_batch: With a whole-layer objective (``stage4:0-63``, ``stage4:*``): most units rendered at once
            (``None``: as many as fit half the free memory). The images do not depend on it.
        export_size: Also write the final image(s) drawn at this ``(H, W)`` from the same parameters
            (``image_HxW.png``); only for a resolution-free parameterization (cppn).

    :meth:`resolve` fills ``lr`` and ``optimizer``; the resolved config is what ``config.toml`` records, and
    :meth:`rederive` clears them again when ``param`` changes (unless they were set to other values).
    """

    backbone: str = "efficientnet_lite0"
    backbone_options: tuple[str, ...] = ()
    weights: str = "pretrained"
    trust_checkpoint: bool = False
    objectives: tuple[str, ...] = ()
    param: ParamSpec = field(default_factory=ParamSpec)
    transforms: str = "lucid"
    size: int | tuple[int, int] = 128
    batch: int = 1
    steps: int = 512
    lr: float | None = None
    optimizer: str | None = None
    seed: int = 0
    device: str = "auto"
    thresholds: tuple[int, ...] = ()
    metrics: MetricsConfig = field(default_factory=MetricsConfig)
    export_size: tuple[int, int] | None = None
    unit_batch: int | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "size", check_image_size(self.size, minimum=16))
        for name in ("batch", "steps"):
            value = getattr(self, name)
            if not isinstance(value, int) or value < 1:
                raise ConfigError(f"{name} must be a positive integer, got {value!r}")
        check_seed(self.seed)
        parse_backbone_options(self.backbone_options)
        if self.unit_batch is not None and (
            isinstance(self.unit_batch, bool) or not isinstance(self.unit_batch, int) or self.unit_batch < 1
        ):
            raise ConfigError(f"unit_batch must be a positive integer (or left out), got {self.unit_batch!r}")
        if not isinstance(self.trust_checkpoint, bool):
            raise ConfigError(f"trust_checkpoint must be true or false, got {self.trust_checkpoint!r}")
        bad_steps = [t for t in self.thresholds if isinstance(t, bool) or not isinstance(t, int)]
        if bad_steps:
            raise ConfigError(f"thresholds must be whole step numbers, got {bad_steps}")
        if self.lr is not None:
            check_lr(self.lr)
        if self.optimizer is not None:
            OPTIMIZERS.get(self.optimizer)
        bad = [t for t in self.thresholds if not 1 <= t <= self.steps]
        if bad:
            raise ConfigError(f"thresholds must lie in 1..steps={self.steps}, got {bad}")
        if self.export_size is not None:
            try:
                object.__setattr__(self, "export_size", check_size(tuple(self.export_size)))
            except (ConfigError, TypeError):
                raise ConfigError(
                    f"export_size must be two positive whole numbers (height, width), got {self.export_size!r}; "
                    "e.g. --export-size 512x512"
                ) from None
            if not self.param.param_class.resolution_free:
                raise ConfigError(
                    f"export_size needs a resolution-free parameterization (cppn); {self.param.name!r} is tied to "
                    f"its {size_text(size_hw(self.size))} pixel grid (render it at that size with --size instead)"
                )

    def resolve(self) -> VisualizeConfig:
        """A copy with ``optimizer`` and ``lr`` filled in from the parameterization's defaults."""
        cls = self.param.param_class
        optimizer = cls.default_optimizer if self.optimizer is None else self.optimizer
        lr = cls.default_lr if self.lr is None else self.lr
        if (optimizer, lr) == (self.optimizer, self.lr):
            return self
        return self.replace(optimizer=optimizer, lr=lr)

    def rederive(self, changed: Iterable[str]) -> VisualizeConfig:
        """Before ``param`` changes, clear ``optimizer`` and ``lr`` where they hold the old param's defaults.

        A config read back from a run's ``config.toml`` is resolved; ``--config run.toml --param cppn`` must
        pick cppn's learning rate, not keep the old parameterization's. A value other than the old default
        (set on purpose) is kept, and so is a field that is itself in ``changed``.
        """
        changed = set(changed)
        if "param" not in changed:
            return self
        cls = self.param.param_class
        clear: dict[str, None] = {}
        if "optimizer" not in changed and self.optimizer == cls.default_optimizer:
            clear["optimizer"] = None
        if "lr" not in changed and self.lr == cls.default_lr:
            clear["lr"] = None
        return self.replace(**clear) if clear else self


@dataclass
class VisualizeResult:
    """A finished visualization: the render result plus the resolved config and components.

    Attributes:
        config: The config as run (``batch`` sized from the objective when it lists one unit per image).
        render: The render result (of this run alone when it was rendered in a batch with other runs).
        objective: The objective.
        backbone: The network.
        device: Where it ran.
        measured: Image metrics of the final images (:mod:`paramviz.metrics`) as ``metrics.json`` fields:
            ``metrics`` (name -> mean over the batch), ``metrics_per_image``, ``metrics_skipped``.
        batched_with: How many runs shared the optimization (1: alone).
        exports: The final images drawn at ``config.export_size``, keyed by ``(H, W)`` (cppn only).
    """

    config: VisualizeConfig
    render: RenderResult
    objective: Objective
    backbone: Backbone
    device: str
    measured: dict[str, dict] = field(default_factory=dict)
    batched_with: int = 1

    exports: dict[tuple[int, int], torch.Tensor] = field(default_factory=dict)

    @property
    def images(self) -> torch.Tensor:
        """Final images (B, 3, H, W) in [0, 1], (B, 4, H, W) RGBA with ``param.alpha``."""
        return self.render.image

    def metrics(self) -> dict[str, object]:
        """The ``metrics.json`` content: the common run fields, the objective's terms, the image metrics."""
        r = self.render
        return {
            **run_metrics(
                "visualize", r, device=self.device, backbone=self.backbone, steps_requested=self.config.steps
            ),
            "objective": self.objective.name,
            "final_loss_per_image": list(r.final_losses),
            "terms": r.final_terms,
            "batched_with": self.batched_with,
            "metrics": {},
            "metrics_per_image": {},
            **self.measured,
        }


def build_objective(config: VisualizeConfig) -> Objective:
    """Parse the config's objective specs into one summed objective."""
    if not config.objectives:
        raise ConfigError(
            "no objective given; add at least one, e.g. --objective stage4:0 (channel 0 of layer stage4) "
            "or --objective logit:espresso (see `paramviz visualize --help`)"
        )
    return parse_objectives(config.objectives)


def sized_batch(config: VisualizeConfig, objective: Objective) -> VisualizeConfig:
    """``config`` with ``batch`` sized from an objective that lists one unit per image."""
    wanted = required_batch(objective)
    if wanted is None or wanted == config.batch:
        return config
    if config.batch != 1:
        raise ConfigError(
            f"the objective lists one unit per image for {wanted} images but batch is {config.batch}; "
            f"set --batch {wanted} or leave it at 1 to size the batch from the objective"
        )
    return config.replace(batch=wanted)


def build_network(config: VisualizeConfig, shared: SharedWork | None = None) -> Backbone:
    """The config's backbone; random weights come from the run's seed (:func:`seeded_backbone`)."""
    return seeded_backbone(
        config.backbone,
        config.weights,
        seed=config.seed,
        trust_checkpoint=config.trust_checkpoint,
        options=parse_backbone_options(config.backbone_options),
        shared=shared,
    )


def network_key(config: VisualizeConfig) -> str:
    """Runs with the same key use the same network (a sweep runs them one after the other)."""
    fields = ("backbone", "backbone_options", "weights", "trust_checkpoint", "device")
    data = {name: getattr(config, name) for name in fields}
    data["seed"] = backbone_seed(config.weights, config.seed)
    return json.dumps(data, sort_keys=True, default=str)


#: Fields in which runs rendered together in one batch may differ (each keeps its own parameterization).
BATCHED_FIELDS = ("param", "seed")

#: Optimizers whose update of a parameter depends only on that parameter's own history (no line search
#: over all of them), so runs batched together get the steps they get alone.
ELEMENTWISE_OPTIMIZERS = ("adam", "nadam")


def batch_key(config: VisualizeConfig) -> str | None:
    """A key shared by runs that can render in one batch with the results they get alone (``None``: alone).

    Batchable: one image per run, Adam or Nadam (their per-parameter steps do not mix images, L-BFGS's line
    search would), an objective whose per-image losses are independent (no diversity, no ``@I`` targeting),
    and the same everything except :data:`BATCHED_FIELDS` (the seed too, when the weights are random: it
    picks the network). The key is of the resolved config, so runs whose parameterizations have different
    default optimizers or learning rates get different keys; RGB and RGBA runs never share a batch.
    """
    config = config.resolve()
    if config.batch != 1 or config.optimizer not in ELEMENTWISE_OPTIMIZERS:
        return None
    objective = build_objective(config)
    if required_batch(objective) is not None or not images_are_independent(objective):
        return None
    data = config.to_dict()
    data["alpha"] = data.pop("param").get("alpha", False)
    data.pop("metrics", None)  # measured per run after the render
    data["size"] = list(size_hw(config.size))  # 32 and [32, 32] render the same image
    if backbone_seed(config.weights, config.seed) is None:
        data.pop("seed")
    return json.dumps(data, sort_keys=True)


def visualize(
    config: VisualizeConfig,
    callbacks: Iterable[Callback] = (),
    backbone: Backbone | None = None,
    shared: SharedWork | None = None,
) -> VisualizeResult:
    """Render an activation-maximization image as described by ``config``.

    Args:
        config: The run's settings.
        callbacks: Render callbacks (progress bars, loggers).
        backbone: An already built backbone to use instead of ``config.backbone`` (e.g. a custom module).
        shared: Work shared with other runs (a sweep): the backbone is built once for all runs that use it.
    """
    if whole_layer_spec(config) is not None:
        return visualize_units(config, callbacks, backbone=backbone, shared=shared)
    return visualize_batch([config], callbacks, backbone=backbone, shared=shared)[0]


def visualize_batch(
    configs: Sequence[VisualizeConfig],
    callbacks: Iterable[Callback] = (),
    backbone: Backbone | None = None,
    shared: SharedWork | None = None,
) -> list[VisualizeResult]:
    """Render several runs in one optimization, one image (and parameterization) each.

    Every run gets the result it would get alone (up to float rounding): its own parameterization and
    initial noise, its own transform draws (a generator per image, seeded by its ``seed``), its own Adam
    state. A single config may have any batch; several must share one :func:`batch_key`.

    Raises:
        ConfigError: Configs that cannot share a batch.
    """
    configs = [c.resolve() for c in configs]
    if not configs:
        raise ConfigError("visualize_batch needs at least one config")
    objective = build_objective(configs[0])
    if len(configs) > 1:
        keys = {batch_key(c) for c in configs}
        if None in keys or len(keys) > 1:
            raise ConfigError(
                "these runs cannot share one batch: they must differ only in "
                f"{', '.join(BATCHED_FIELDS)} and each render one image with Adam and an objective without "
                "diversity or per-image targets; render them one by one"
            )
    return _render_batch(configs, objective, callbacks, backbone, shared)


def _render_batch(
    configs: list[VisualizeConfig],
    objective: Objective,
    callbacks: Iterable[Callback],
    backbone: Backbone | None,
    shared: SharedWork | None,
    own_objectives: list[Objective] | None = None,
) -> list[VisualizeResult]:
    """Render resolved ``configs`` as one batch under ``objective`` (its images in config order).

    ``own_objectives`` are the runs' own objectives (whole layers: each unit's, while ``objective`` lists the
    units per image); each result and its metrics use its own.
    """
    if ALPHA_KEY in objective.layers() and not configs[0].param.alpha:
        raise ConfigError(
            f"the objective {objective.name!r} reads the alpha channel, but param.alpha is off; add --alpha "
            "(alpha = true in [param])"
        )
    owns = own_objectives or [objective] * len(configs)
    configs = [sized_batch(c, own) for c, own in zip(configs, owns, strict=True)]
    first = configs[0]
    device = resolve_device(first.device)
    if backbone is None:
        backbone = build_network(first, shared)
    layers = sorted(objective.layers() - IMAGE_KEYS)
    batch, size = sum(c.batch for c in configs), size_hw(first.size)
    check_memory(estimate_render_bytes([(backbone, layers)], batch, *size, optimizer=first.optimizer), device)
    params = [build_param(c.param, size, batch=c.batch, seed=c.seed) for c in configs]
    param = params[0] if len(params) == 1 else ParamBatch(params)
    seeds = first.seed if len(configs) == 1 else [c.seed for c in configs]
    contexts = [
        metric_context("visualize", c.metrics, device=device, shared=shared, objective=own, backbone=backbone)
        for c, own in zip(configs, owns, strict=True)
    ]
    try:
        result = render(
            param,
            build_transforms(first.transforms),
            backbone,
            objective,
            optimizer=first.optimizer,
            steps=first.steps,
            lr=first.lr,
            thresholds=first.thresholds,
            callbacks=callbacks,
            seed=seeds,
            device=device,
        )
    except RenderInterrupted as exc:
        if len(configs) == 1:  # a single run keeps its partial result (run_visualize writes it)
            exc.outcome = VisualizeResult(first, exc.result, objective, backbone, str(device))
        raise
    renders = [result] if len(configs) == 1 else [result.split(i) for i in range(len(configs))]
    return [
        VisualizeResult(
            c,
            r,
            own,
            backbone,
            str(device),
            measured=measure(r.image[:, :3], context, c.metrics),  # RGBA: the metrics read the RGB part
            batched_with=len(configs),
            exports=export_images(member, c.export_size),
        )
        for c, r, context, member, own in zip(configs, renders, contexts, params, owns, strict=True)
    ]


# --- whole layers: one image per unit ---------------------------------------------------------------------
#: Memory share a whole-layer run may plan for (of the free RAM or GPU memory) when ``unit_batch`` is not set.
UNIT_MEMORY_SHARE = 0.5


def _unit_token(spec: str) -> int | None:
    """Index of the ``:``-token of ``spec`` that lists units with a range (``0-63``) or ``*``, else ``None``."""
    for i, token in enumerate(spec.split(":")):
        parts = [p.strip() for p in token.split("|")]
        if any(p == "*" or re.fullmatch(r"\d+\s*-\s*\d+", p) for p in parts):
            return i
    return None


def whole_layer_spec(config: VisualizeConfig) -> int | None:
    """Index of the objective spec that renders a whole layer (``LAYER:0-63`` or ``LAYER:*``), else ``None``.

    Raises:
        ConfigError: More than one such spec, or a batch other than 1 (each unit is its own image).
    """
    found = [i for i, spec in enumerate(config.objectives) if _unit_token(spec) is not None]
    if not found:
        return None
    if len(found) > 1:
        raise ConfigError(
            f"objectives {[config.objectives[i] for i in found]}: only one objective may list a whole layer "
            "(a range such as stage4:0-63 or stage4:*); the other terms apply to every unit"
        )
    if config.batch != 1:
        raise ConfigError(
            f"a whole-layer objective renders one image per unit, so batch must be 1, got {config.batch}; "
            "leave --batch out (--unit-batch sets how many units render at once)"
        )
    return found[0]


def layer_channels(backbone: Backbone, layer: str, size: tuple[int, int]) -> int:
    """The number of channels of ``layer`` at an input of ``size`` (from the backbone's meta-device probe)."""
    info = backbone.probe(size) if hasattr(backbone, "probe") else None
    path = backbone.resolve(layer)
    shape = info[path].shape if info is not None and path in info else None
    if not shape:
        raise ConfigError(
            f"cannot count the channels of layer {layer!r} of backbone {getattr(backbone, 'name', '?')!r} (it does "
            "not run on the meta device); list them instead, e.g. LAYER:0-63"
        )
    if len(shape) == 3 and backbone.channels_last(layer):
        return int(shape[-1])
    return int(shape[-1] if len(shape) == 2 else shape[0])  # (N, C) tokens, (C, H, W) or (C,)


def _unit_plan(spec: str, backbone: Backbone, size: tuple[int, int]) -> tuple[list[str], int, list[int]]:
    """``(tokens, index, units)`` of a whole-layer spec: its ``:`` tokens, which one lists the units, and the units.

    ``*`` becomes every channel of the layer (counted with the backbone's probe); the spec is parsed once so a
    malformed list (a range that runs backwards, ...) is refused with the parser's message.
    """
    tokens = spec.split(":")
    index = _unit_token(spec)
    if index is None:
        raise ConfigError(f"objective spec {spec!r} lists no units (a range such as stage4:0-63, or stage4:*)")
    if tokens[index].strip() == "*":
        if index == 0:
            raise ConfigError(f"objective spec {spec!r}: '*' must follow a layer, e.g. stage4:*")
        layer = tokens[index - 1].split("*")[-1].strip()  # a weight prefix (0.5*stage4) is not the layer
        tokens[index] = f"0-{layer_channels(backbone, layer, size) - 1}"
    parse_objectives([":".join(tokens)])
    units: list[int] = []
    for part in tokens[index].split("|"):
        low, dash, high = part.strip().partition("-")
        units.extend(range(int(low), int(high) + 1) if dash else [int(part)])
    return tokens, index, units


def _with_units(tokens: Sequence[str], index: int, units: Sequence[int]) -> str:
    """The spec with the unit token replaced by ``units`` (one per image: ``3|4|5``)."""
    return ":".join([*tokens[:index], "|".join(map(str, units)), *tokens[index + 1 :]])


def unit_specs(spec: str, backbone: Backbone, size: tuple[int, int]) -> list[str]:
    """The specs of each unit of a whole-layer spec: ``stage4:0-2`` -> ``stage4:0``, ``stage4:1``, ``stage4:2``."""
    if _unit_token(spec) is None:
        return [spec]
    tokens, index, units = _unit_plan(spec, backbone, size)
    return [_with_units(tokens, index, [unit]) for unit in units]


def unit_configs(config: VisualizeConfig, backbone: Backbone) -> tuple[list[str], list[VisualizeConfig]]:
    """One single-image config per unit of the whole-layer spec (seed + i), with the other terms kept."""
    which = whole_layer_spec(config)
    if which is None:
        raise ConfigError("no whole-layer objective (LAYER:0-63 or LAYER:*) in this config")
    units = unit_specs(config.objectives[which], backbone, size_hw(config.size))
    others = [s for i, s in enumerate(config.objectives) if i != which]
    configs = []
    for i, unit in enumerate(units):
        objectives = tuple([*others[:which], unit, *others[which:]])
        configs.append(config.replace(objectives=objectives, seed=(config.seed + i) % (SEED_RANGE[1] + 1)))
    return units, configs


def fitting_units(config: VisualizeConfig, backbone: Backbone, objective: Objective, count: int) -> int:
    """How many units render at once: ``unit_batch``, else as many as fit :data:`UNIT_MEMORY_SHARE` of memory."""
    if config.unit_batch is not None:
        return min(count, config.unit_batch)
    free = available_memory(resolve_device(config.device))
    if free is None:
        return min(count, 8)
    layers = sorted(objective.layers() - IMAGE_KEYS)
    fits = 1
    while fits < count:
        need = estimate_render_bytes([(backbone, layers)], fits * 2, *size_hw(config.size), optimizer="adam")
        if need.total > UNIT_MEMORY_SHARE * free:
            break
        fits *= 2
    return min(fits, count)


@dataclass
class UnitsResult:
    """A whole-layer run: one :class:`VisualizeResult` per unit (rendered in batches, each on its own seed)."""

    config: VisualizeConfig
    units: list[str]
    results: list[VisualizeResult]
    unit_batch: int
    seconds: float = 0.0

    @property
    def images(self) -> torch.Tensor:
        """Every unit's final image, (N, C, H, W)."""
        return torch.cat([r.images for r in self.results])

    @functools.cached_property
    def render(self) -> RenderResult:
        """The units' render results combined: per-step mean loss over units, per-image histories."""
        parts = [r.render for r in self.results]
        steps = parts[0].steps
        image_history = [tuple(v for p in parts for v in p.image_history[s]) for s in range(len(parts[0].history))]
        common = set.intersection(*(set(p.term_history) for p in parts))
        return RenderResult(
            images={k: torch.cat([p.images[k] for p in parts]) for k in parts[0].images},
            history=[sum(losses) / len(losses) for losses in image_history],
            term_history={
                n: [sum(v) / len(v) for v in zip(*(p.term_history[n] for p in parts), strict=True)] for n in common
            },
            seconds=sum({id(r.render): r.render.seconds for r in self.results}.values()),
            steps=steps,
            final_losses=tuple(v for p in parts for v in p.final_losses),
            image_history=image_history,
        )

    def metrics(self) -> dict[str, object]:
        """``metrics.json``: the common fields, the mean of every image metric over units, and each unit's own."""
        per_unit = [r.metrics() for r in self.results]
        names = [n for n in per_unit[0]["metrics"] if all(n in m["metrics"] for m in per_unit)]
        first = per_unit[0]
        return {
            **run_metrics("visualize", self.render, device=first["device"], backbone=self.results[0].backbone),
            "units": self.units,
            "unit_batch": self.unit_batch,
            "metrics": {n: sum(m["metrics"][n] for m in per_unit) / len(per_unit) for n in names},
            "metrics_per_image": {n: [m["metrics"][n] for m in per_unit] for n in names},
            "per_unit": [
                {"unit": u, "seed": r.config.seed, "final_loss": m["final_loss"], "metrics": m["metrics"]}
                for u, r, m in zip(self.units, self.results, per_unit, strict=True)
            ],
        }


def visualize_units(
    config: VisualizeConfig,
    callbacks: Iterable[Callback] = (),
    backbone: Backbone | None = None,
    shared: SharedWork | None = None,
) -> UnitsResult:
    """Render a whole layer: one image per unit, ``unit_batch`` (or as many as fit the memory) at a time.

    Each unit is a run of its own (its spec, ``seed + i``), rendered with :func:`visualize_batch`, so an image
    is the same whatever the batches (up to float rounding) and the same as rendering that unit alone.
    """
    config = config.resolve()
    if backbone is None:
        backbone = build_network(config, shared)
    units, configs = unit_configs(config, backbone)
    which = whole_layer_spec(config)
    tokens, index, unit_values = _unit_plan(config.objectives[which], backbone, size_hw(config.size))
    own = [build_objective(c) for c in configs]
    chunk = fitting_units(config, backbone, own[0], len(configs))
    results: list[VisualizeResult] = []
    seconds = 0.0
    for start in range(0, len(configs), chunk):
        part = configs[start : start + chunk]
        # one objective for the chunk: the unit spec with one unit per image (LAYER:3|4|5), the other terms shared
        objectives = list(part[0].objectives)
        objectives[which] = _with_units(tokens, index, unit_values[start : start + chunk])
        objective = parse_objectives(objectives)
        batch = _render_batch(part, objective, callbacks, backbone, shared, own[start : start + chunk])
        seconds += batch[0].render.seconds  # the batch's wall time (each arm's split carries it)
        results += batch
    return UnitsResult(config, units, results, chunk, seconds)


def image_labels(objective: Objective, batch: int) -> list[str]:
    """One label per image of a batch: the units only that image is driven towards, else ``image I``.

    For ``stage5:3|7|11|19`` (one channel per image) the labels are ``stage5:3``, ``stage5:7``, ...; a term
    for one image (``stage4:12@1``) labels that image; terms for every image are left out.
    """
    parts: list[list[str]] = [[] for _ in range(batch)]
    for _, leaf in objective.leaves():
        name = leaf.name.removeprefix("channel:")
        tokens = name.split(":")
        lists = [i for i, t in enumerate(tokens) if "|" in t]
        if lists and len(tokens[lists[0]].split("|")) == batch:
            for i, unit in enumerate(tokens[lists[0]].split("|")):
                parts[i].append(":".join([*tokens[: lists[0]], unit, *tokens[lists[0] + 1 :]]))
        elif getattr(leaf, "batch", None) is not None and 0 <= leaf.batch < batch:
            parts[leaf.batch].append(name.removesuffix(f"@{leaf.batch}"))
    return [" + ".join(p) or f"image {i}" for i, p in enumerate(parts)]


@torch.no_grad()
def export_images(param: ImageParam, size: tuple[int, int] | None) -> dict[tuple[int, int], torch.Tensor]:
    """The final images drawn at ``size`` from the same parameters (``{}`` without a size), on the CPU."""
    if size is None:
        return {}
    return {tuple(size): param.render(size).detach().cpu()}


def write_outputs(result: VisualizeResult | UnitsResult, out: OutputDir) -> None:
    """Write image(s), snapshots, ``config.toml`` and ``metrics.json`` into an open :class:`OutputDir`."""
    if isinstance(result, UnitsResult):
        write_unit_outputs(result, out)
        return
    images = result.images
    if images.shape[0] > 1:
        labels = image_labels(result.objective, images.shape[0])
        labeled_grid([list(images)], col_labels=labels).save(out.path("image.png"))
        for i, img in enumerate(images):
            out.save_image(f"image_{i}.png", img)
    else:
        out.save_image("image.png", images[0])
    for step, snap in result.render.images.items():
        if step != result.render.steps:
            out.save_image(f"steps/step_{step:05d}.png", image_grid(snap) if snap.shape[0] > 1 else snap[0])
    for (h, w), exported in result.exports.items():
        out.save_image(f"image_{h}x{w}.png", image_grid(exported) if exported.shape[0] > 1 else exported[0])
        if exported.shape[0] > 1:
            for i, img in enumerate(exported):
                out.save_image(f"image_{i}_{h}x{w}.png", img)
    out.write_text("config.toml", result.config.to_toml())
    out.write_json("metrics.json", result.metrics())


def write_unit_outputs(result: UnitsResult, out: OutputDir) -> None:
    """A whole-layer run: ``image.png`` (contact sheet captioned by unit), ``image_N.png`` per unit, config, metrics."""
    images = result.images
    captioned_grid(list(images), result.units).save(out.path("image.png"))
    for i, image in enumerate(images):
        out.save_image(f"image_{i}.png", image)
    out.write_text("config.toml", result.config.to_toml())
    out.write_json("metrics.json", result.metrics())


def run_visualize(
    config: VisualizeConfig,
    out: str | Path,
    force: bool = False,
    callbacks: Iterable[Callback] = (),
) -> VisualizeResult:
    """Run :func:`visualize` and write its outputs to ``out`` (refuses a non-empty ``out`` unless ``force``).

    On Ctrl-C (:class:`~paramviz.errors.RenderInterrupted`) the image of the last completed step is written
    as usual, with ``"interrupted_at_step"`` in ``metrics.json``, and the exception is raised again.
    """
    check_output_dir(out, force)
    try:
        result = visualize(config, callbacks)
    except RenderInterrupted as exc:
        if exc.outcome is not None and exc.steps_done > 0:
            with OutputDir(out, force, kind="visualize") as target:
                write_outputs(exc.outcome, target)
            exc.written_to = out
        raise
    with OutputDir(out, force, kind="visualize") as target:
        write_outputs(result, target)
    return result


TASKS.register(
    "visualize",
    Task(
        "visualize",
        VisualizeConfig,
        run=visualize,
        write=write_outputs,
        path_fields=("weights", "param.spectrum"),
        spec_path_fields=("objectives",),
        description="feature visualization (activation maximization)",
        batch_key=batch_key,
        run_batch=visualize_batch,
        share_key=network_key,
    ),
)
