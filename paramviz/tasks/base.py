"""What every task shares: the ``TASKS`` registry, seeded backbones, work shared across runs, metrics.json.

A task turns a frozen config into a result and writes that result into an :class:`~paramviz.io.OutputDir`.
Sweeps, the CLI and the Python API all go through :data:`TASKS`, so a new task is one registry entry.
"""

from __future__ import annotations

import platform
from collections import OrderedDict
from collections.abc import Callable, Hashable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol, TypeVar

import torch
from torch import nn

from paramviz.backbones import Backbone, build_backbone
from paramviz.config import ConfigBase, check_seed
from paramviz.errors import ConfigError
from paramviz.registry import Registry
from paramviz.render import RenderResult

if TYPE_CHECKING:
    from paramviz.metrics import MetricContext

T = TypeVar("T")

#: Weights values under which a backbone's parameters come from the RNG (so the run's seed chooses them).
RANDOM_WEIGHTS = "random"


class TaskResult(Protocol):
    """What a task returns: its resolved config, the final images and the ``metrics.json`` content."""

    config: ConfigBase

    @property
    def images(self) -> torch.Tensor: ...

    def metrics(self) -> dict[str, object]: ...


@dataclass(frozen=True)
class Task:
    """One task: how to run a config and how to write its result.

    Attributes:
        name: Registry name, also the ``task`` of a sweep file and of ``metrics.json``.
        config_cls: The task's config dataclass (the one source of its defaults).
        run: ``run(config, callbacks=(), shared=None) -> result``.
        write: ``write(result, out)`` writes the result's files into an open :class:`~paramviz.io.OutputDir`.
        path_fields: Config keys that hold file paths (resolved against a sweep file's folder); a key whose
            value is a tuple holds one path per item.
        spec_path_fields: Config keys holding objective spec strings whose image part (``input_diff:IMAGE``,
            ``inversion:LAYER:IMAGE``, ``caricature:LAYER:IMAGE``) is a path, resolved and shipped like the others.
        path_keywords: Values of those keys that are not paths (``"pretrained"``, ``"random"``, ``sample:`` names
            are recognized by their prefix).
        sweepable: Whether ``paramviz sweep`` can run it (its result has one image per run).
        description: One line for listings.
        batch_key: ``batch_key(config) -> key | None``: runs with the same key can run together in one
            optimization with ``run_batch`` and get the results they get alone (``None``: alone).
        run_batch: ``run_batch(configs, callbacks=(), shared=None) -> [result per config]``.
        share_key: ``share_key(config) -> key``: runs with the same key share built work (networks, targets);
            a sweep runs them one after the other.
    """

    name: str
    config_cls: type[ConfigBase]
    run: Callable[..., Any]
    write: Callable[[Any, Any], None]
    path_fields: tuple[str, ...] = ()
    spec_path_fields: tuple[str, ...] = ()
    path_keywords: tuple[str, ...] = ("pretrained", "random")
    sweepable: bool = True
    description: str = ""
    batch_key: Callable[[Any], Hashable | None] | None = None
    run_batch: Callable[..., list[Any]] | None = None
    share_key: Callable[[Any], Hashable] | None = None


TASKS: Registry[Task] = Registry("task", "choices come from paramviz.tasks.TASKS")


class SharedWork:
    """Objects built once and reused by several runs (a sweep's arms): backbones, style targets, referees.

    Items are built on first use by ``build()`` and kept under ``key``; the least recently used are dropped
    beyond ``max_items`` so a long sweep does not hold every network it ever built. ``metric_cache`` is handed
    to the metrics (referee and transfer networks).

    Args:
        max_items: How many built items to keep.
    """

    def __init__(self, max_items: int = 8) -> None:
        self.max_items = max_items
        self._items: OrderedDict[Hashable, Any] = OrderedDict()
        self.metric_cache: dict[str, Any] = {}
        self.built = 0

    def get(self, key: Hashable, build: Callable[[], T]) -> T:
        """The item stored under ``key``, built with ``build()`` the first time."""
        if key in self._items:
            self._items.move_to_end(key)
            return self._items[key]
        item = build()
        self.built += 1
        self._items[key] = item
        while len(self._items) > self.max_items:
            self._items.popitem(last=False)
        return item

    def __len__(self) -> int:
        return len(self._items)


def seeded_backbone(
    name: str,
    weights: str,
    *,
    seed: int,
    trust_checkpoint: bool = False,
    options: Mapping[str, object] | None = None,
    shared: SharedWork | None = None,
) -> Backbone:
    """Build a backbone whose random parts (``weights="random"``) come from ``seed``; torch's RNG is untouched.

    Every task builds its networks through this, so the same config gives the same network and another seed
    another random network. With ``shared``, a backbone already built for the same arguments is reused (the
    seed only matters for random weights).
    """
    check_seed(seed)
    options = dict(options or {})

    def build() -> Backbone:
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            return build_backbone(name, weights, trust_checkpoint=trust_checkpoint, **options)

    if shared is None:
        return build()
    key = ("backbone", name, weights, trust_checkpoint, tuple(sorted(options.items())), backbone_seed(weights, seed))
    return shared.get(key, build)


def backbone_seed(weights: str, seed: int) -> int | None:
    """The part of a run's seed that shapes its network: the seed for random weights, else nothing."""
    return seed if weights == RANDOM_WEIGHTS else None


def run_metrics(
    task: str,
    render: RenderResult,
    *,
    device: str,
    backbone: nn.Module,
    final_loss: float | None = None,
    initial_loss: float | None = None,
    steps_requested: int | None = None,
) -> dict[str, object]:
    """The ``metrics.json`` fields every task writes (the run's own figures and its environment).

    Args:
        task: The task name.
        render: The render result.
        device: Where it ran.
        backbone: The network that was optimized (its ``name`` and ``weights_source`` are recorded).
        final_loss: The final loss if the task measures it otherwise (style: without transforms).
        initial_loss: Likewise for the initial loss.
        steps_requested: The steps the run was asked for; with an interrupted render (Ctrl-C) the fields
            ``interrupted_at_step`` and ``steps_requested`` are added.
    """
    from paramviz import __version__

    return {
        "task": task,
        "final_loss": render.history[-1] if final_loss is None else final_loss,
        "initial_loss": render.history[0] if initial_loss is None else initial_loss,
        "steps": render.steps,
        "wall_seconds": render.seconds,
        "steps_per_second": render.steps_per_second,
        "device": device,
        "backbone": getattr(backbone, "name", type(backbone).__name__),
        "backbone_weights": getattr(backbone, "weights_source", ""),
        "paramviz": __version__,
        "torch": torch.__version__,
        "python": platform.python_version(),
        **(
            {"interrupted_at_step": render.steps, "steps_requested": steps_requested or render.steps}
            if render.interrupted
            else {}
        ),
    }


@dataclass(frozen=True)
class MetricsConfig(ConfigBase):
    """Which image metrics a run measures on its final images (:mod:`paramviz.metrics`, ``docs/metrics.md``).

    Attributes:
        names: Metric names; ``None`` (the default): every metric of the task that applies to the run (e.g.
            ``transfer`` only with a class-logit objective); an empty list: none.
        referee: Style transfer: the network that judges style and content distances (not the optimized one).
        transfer_networks: Feature visualization: the networks ``transfer`` measures the target class on.
    """

    names: tuple[str, ...] | None = None
    referee: str = "efficientnet_lite1"
    transfer_networks: tuple[str, ...] = ("efficientnet_lite1", "efficientnet_lite2")

    def __post_init__(self) -> None:
        from paramviz.metrics import METRICS

        for name in self.names or ():
            METRICS.get(name)  # UnknownNameError with close matches
        if not isinstance(self.referee, str) or not self.referee:
            raise ConfigError(f"metrics.referee must be a backbone name, got {self.referee!r}")


def metric_context(
    task: str, config: MetricsConfig, *, device: object, shared: SharedWork | None = None, **parts: Any
) -> MetricContext:
    """The :class:`~paramviz.metrics.MetricContext` of a run, checked before any work.

    Raises:
        ConfigError: A metric named in ``config.names`` that cannot apply to this run (e.g. ``transfer`` without
            a class-logit objective), found before step 1 rather than after the run.
    """
    from paramviz.metrics import METRICS, MetricContext

    context = MetricContext(
        task,
        referee=config.referee,
        transfer_networks=config.transfer_networks,
        device=device,
        cache=shared.metric_cache if shared is not None else {},
        **parts,
    )
    for name in config.names or ():
        reason = METRICS.get(name).why_not(context)
        if reason is not None:
            raise ConfigError(f"metric {name!r} does not apply to this {task} run: {reason}")
    return context


def measure(images: torch.Tensor, context: MetricContext, config: MetricsConfig) -> dict[str, dict]:
    """The image metrics of ``images`` as ``metrics.json`` fields (``metrics``, ``metrics_per_image``, ...)."""
    from paramviz.metrics import MetricValues, compute_metrics

    if config.names is not None and not config.names:
        return MetricValues().to_json()
    with torch.no_grad():
        return compute_metrics(images.detach().cpu(), context, config.names).to_json()
