"""Layer robustness R(f) of one or more backbones: config -> images + backbones -> PGD -> table and plot.

``compute_robustness(config)`` measures R(f) (see :mod:`paramviz.metrics.robustness`) for every requested layer
of every backbone on one image set; ``write_robustness`` writes ``robustness.csv``, ``robustness.json``,
``robustness.png`` (R per layer, one line per backbone, error bars = spread over images) and
``config.toml``; ``run_robustness`` does both into a fresh output directory.

Backbones are registry names (``paramviz models``) or ``timm:<name>``, optionally with their own weights as
``NAME@WEIGHTS`` (``resnet50@random``, ``robust_checkpoint@/data/resnet50_l2_eps3.ckpt``); the others use
``config.weights``. Layers are given as specs: ``"layer1,layer2"`` applies to every backbone without its own
list, ``"efficientnet_lite0=stage0,stage1"`` to that backbone only (by label or bare name).
"""

from __future__ import annotations

import csv
import io
import math
import platform
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from paramviz.backbones import Backbone, parse_backbone_options
from paramviz.config import ConfigBase, check_seed
from paramviz.device import resolve_device
from paramviz.errors import ConfigError, ImageError
from paramviz.host_memory import keep_freed_memory
from paramviz.io import (
    SAMPLE_IMAGES,
    SAMPLE_PREFIX,
    OutputDir,
    check_output_dir,
    load_image,
    resize_center_crop,
)
from paramviz.limits import check_image_size, check_memory, estimate_render_bytes, size_text
from paramviz.metrics.robustness import NORMS, LayerRobustness, PGDSettings, count_steps, layer_robustness
from paramviz.tasks.base import TASKS, SharedWork, Task, seeded_backbone

#: File suffixes read from an ``--images`` folder.
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp")
#: Columns of ``robustness.csv`` in order.
COLUMNS = (
    "backbone",
    "weights",
    "layer",
    "r",
    "r_std",
    "r_min",
    "r_max",
    "adversarial_distance",
    "pairwise_distance",
    "n_images",
    "feature_numel",
    "norm",
    "eps",
    "steps",
    "step_size",
    "random_start",
    "size",
    "images",
    "seed",
    "seconds",
)


@dataclass(frozen=True)
class RobustnessConfig(ConfigBase):
    """Everything an R(f) measurement needs.

    Attributes:
        backbones: Backbone names (``paramviz models``, ``timm:<name>``), each optionally ``NAME@WEIGHTS``.
        layers: Layer specs: ``"L1,L2"`` for every backbone, ``"NAME=L1,L2"`` for one backbone.
        norm: Perturbation ball, ``"l2"`` or ``"linf"``.
        eps: Ball radius in [0, 1] pixel units; ``None``: 3.0 for L2, 4/255 for L-infinity (the radii of the
            MadryLab ResNet-50 checkpoints).
        steps: PGD steps per image and layer.
        step_size: PGD step; ``None``: ``2.5 * eps / steps``.
        random_start: Start PGD from a uniform random point of the ball.
        size: Images are resized to cover ``size`` x ``size`` pixels, or ``(H, W)`` (``--size HxW``; TOML
            ``size = [H, W]``), and center-cropped to it.
        images: Folder of images (every PNG/JPEG/BMP/TIFF/WebP file in it); ``None``: scikit-image's photos
            (``paramviz.io.SAMPLE_IMAGES``).
        weights: Weights of backbones without ``@WEIGHTS``: ``pretrained``, ``random`` or a file path.
        backbone_options: ``KEY=VALUE`` options given to every backbone, e.g. ``fold_batchnorm=false`` (each must
            take them: the options every backbone takes, ``memory_format`` and ``fold_batchnorm``, suit any mix).
        trust_checkpoint: Allow full unpickling of weights files that need it.
        batch_size: Images attacked at once.
        seed: Seed of the PGD start (the same draws for every backbone and layer) and of random weights.
        device: ``auto``, ``cpu``, ``cuda``, ``cuda:N``.
    """

    backbones: tuple[str, ...] = ("efficientnet_lite0",)
    layers: tuple[str, ...] = ()
    norm: str = "l2"
    eps: float | None = None
    steps: int = 20
    step_size: float | None = None
    random_start: bool = False
    size: int | tuple[int, int] = 224
    images: str | None = None
    weights: str = "pretrained"
    backbone_options: tuple[str, ...] = ()
    trust_checkpoint: bool = False
    batch_size: int = 8
    seed: int = 0
    device: str = "auto"

    def __post_init__(self) -> None:
        if not self.backbones:
            raise ConfigError("no backbone given; name at least one (see `paramviz models`)")
        check_seed(self.seed)
        parse_backbone_options(self.backbone_options)
        for spec in self.backbones:
            parse_backbone(spec, self.weights)
        object.__setattr__(self, "size", check_image_size(self.size, minimum=16))
        for name in ("steps", "batch_size"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ConfigError(f"{name} must be a positive integer, got {value!r}")
        if self.norm not in NORMS:
            raise ConfigError(f"norm must be one of {', '.join(map(repr, NORMS))}, got {self.norm!r}")
        self.pgd_settings()
        resolve_layers(self.layers, self.backbones, self.weights)

    def pgd_settings(self) -> PGDSettings:
        """The PGD settings of this config (validated)."""
        return PGDSettings(self.norm, self.eps, self.steps, self.step_size, self.random_start)


@dataclass(frozen=True)
class BackboneSpec:
    """A parsed ``NAME[@WEIGHTS]`` backbone argument.

    Attributes:
        label: The spec as given (used in tables and plots).
        name: Registry name or ``timm:<name>``.
        weights: ``pretrained``, ``random`` or a file path.
    """

    label: str
    name: str
    weights: str


def parse_backbone(spec: str, default_weights: str = "pretrained") -> BackboneSpec:
    """Split ``NAME@WEIGHTS`` (weights optional, default ``default_weights``)."""
    name, sep, weights = spec.partition("@")
    name = name.strip()
    if not name or (sep and not weights.strip()):
        raise ConfigError(f"backbone spec {spec!r} is malformed; expected NAME or NAME@WEIGHTS (e.g. resnet50@random)")
    return BackboneSpec(spec, name, weights.strip() if sep else default_weights)


def resolve_layers(
    specs: Sequence[str], backbones: Sequence[str], default_weights: str = "pretrained"
) -> dict[str, tuple[str, ...]]:
    """Map each backbone label to its layer list.

    Args:
        specs: ``"L1,L2"`` (for every backbone without its own list) or ``"NAME=L1,L2"`` (that backbone, matched
            by label or bare registry name); several specs concatenate.
        backbones: Backbone specs (``NAME[@WEIGHTS]``).
        default_weights: Weights of backbones given without ``@``.

    Returns:
        ``{label: layers}``; a backbone without layers gets an empty tuple (an error at compute time).
    """
    parsed = [parse_backbone(b, default_weights) for b in backbones]
    general: list[str] = []
    specific: dict[str, list[str]] = {}
    for spec in specs:
        target, sep, names = spec.partition("=")
        items = [n.strip() for n in (names if sep else target).split(",") if n.strip()]
        if sep:
            target = target.strip()
            matches = [p.label for p in parsed if target in (p.label, p.name)]
            if not matches:
                raise ConfigError(
                    f"layer spec {spec!r} names backbone {target!r}, which is not among the backbones measured "
                    f"({', '.join(repr(p.label) for p in parsed)})"
                )
            for label in matches:
                specific.setdefault(label, []).extend(items)
        else:
            general.extend(items)
    return {p.label: tuple(dict.fromkeys(specific.get(p.label, general))) for p in parsed}


# --- images ------------------------------------------------------------------------------------------------
def image_sources(images: str | Path | None) -> list[str]:
    """The image files of a folder (sorted), or ``sample:NAME`` for scikit-image's photos when ``None``."""
    if images is None:
        return [f"{SAMPLE_PREFIX}{name}" for name in SAMPLE_IMAGES]
    folder = Path(images).expanduser()
    if not folder.is_dir():
        what = "is a file" if folder.exists() else "does not exist"
        raise ImageError(f"image folder {str(folder)!r} {what}; --images expects a folder of image files")
    files = sorted(str(p) for p in folder.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)
    if len(files) < 2:
        raise ImageError(
            f"image folder {str(folder)!r} holds {len(files)} image file(s) ({', '.join(IMAGE_SUFFIXES)}); R(f) "
            "needs at least 2 (its denominator is the mean feature distance between images)"
        )
    return files


def load_image_set(sources: Sequence[str], size: int | tuple[int, int]) -> torch.Tensor:
    """Load, resize and center-crop images to one (N, 3, H, W) batch in [0, 1] (``N``: ``N x N``)."""
    return torch.cat([resize_center_crop(load_image(src), size) for src in sources])


def _image_label(source: str) -> str:
    return source if source.startswith(SAMPLE_PREFIX) else Path(source).name


# --- computation -------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class RobustnessProgress:
    """Progress report: PGD steps ``done`` of ``total``, on ``layer`` of ``backbone``."""

    done: int
    total: int
    backbone: str
    layer: str


ProgressCallback = Callable[[RobustnessProgress], None]


@dataclass
class RobustnessResult:
    """R(f) of every (backbone, layer) with every setting used.

    Attributes:
        config: The config that was run.
        settings: The resolved PGD settings.
        results: ``{backbone label: [LayerRobustness per layer]}`` in the order requested.
        weights: ``{backbone label: weights source}``.
        seconds: ``{backbone label: wall seconds}``.
        images: The image sources, in order (per-image values follow this order).
        device: Device the attacks ran on.
        wall_seconds: Total wall time including loading.
    """

    config: RobustnessConfig
    settings: PGDSettings
    results: dict[str, list[LayerRobustness]]
    weights: dict[str, str]
    seconds: dict[str, float]
    images: list[str]
    device: str
    wall_seconds: float = 0.0

    def rows(self) -> list[dict[str, Any]]:
        """One flat row per (backbone, layer) with the values and every setting (the CSV table)."""
        images = self.config.images if self.config.images is not None else "scikit-image photos"
        size = self.config.size if isinstance(self.config.size, int) else size_text(self.config.size)  # "HxW"
        out = []
        for label, layers in self.results.items():
            for res in layers:
                row = {"backbone": label, "weights": self.weights[label], **res.to_dict()}
                row.update(size=size, images=images, seed=self.config.seed, seconds=self.seconds[label])
                out.append({key: row[key] for key in COLUMNS})
        return out

    def to_json(self) -> dict[str, Any]:
        """The ``robustness.json`` content: settings, rows, per-image ratios, environment."""
        return {
            "definition": "R(f) = E_x[max_{x' in B_eps(x) ∩ [0,1]} ||f(x') - f(x)||_2] / "
            "E_{x1 != x2}[||f(x1) - f(x2)||_2]",
            "settings": {
                **self.settings.to_dict(),
                "size": self.config.size,
                "images": self.config.images,
                "n_images": len(self.images),
                "batch_size": self.config.batch_size,
                "seed": self.config.seed,
                "device": self.device,
                "best_iterate": True,
                "step_size_rule": "given" if self.config.step_size is not None else "2.5 * eps / steps",
            },
            "rows": self.rows(),
            "per_image": {
                label: {res.layer: list(res.per_image) for res in layers} for label, layers in self.results.items()
            },
            "images": [_image_label(s) for s in self.images],
            "wall_seconds": self.wall_seconds,
            "torch": torch.__version__,
            "python": platform.python_version(),
        }


def compute_robustness(
    config: RobustnessConfig,
    *,
    progress: ProgressCallback | None = None,
    backbones: Mapping[str, Backbone] | None = None,
    images: torch.Tensor | None = None,
    shared: SharedWork | None = None,
) -> RobustnessResult:
    """Measure R(f) for every requested layer of every backbone in ``config``.

    All backbones are built and every layer name is checked before the first attack.

    Args:
        config: The measurement's settings.
        progress: Called after every PGD step with a :class:`RobustnessProgress`.
        backbones: Already built backbones by label, used instead of building ``config.backbones``
            (labels must match the config's backbone specs).
        images: An (N, 3, H, W) batch in [0, 1] used instead of loading ``config.images``.
        shared: Work shared with other runs: each backbone is built once.
    """
    start = time.perf_counter()
    settings = config.pgd_settings()
    device = resolve_device(config.device)
    keep_freed_memory()  # PGD steps reuse their blocks instead of page-faulting them in again (host_memory)
    layer_map = resolve_layers(config.layers, config.backbones, config.weights)
    for label, layers in layer_map.items():
        if not layers:
            raise ConfigError(
                f"no layers given for backbone {label!r}; pass --layers L1,L2 (or {label}=L1,L2), see "
                f"`paramviz layers {parse_backbone(label).name}`"
            )
    if images is None:
        sources = image_sources(config.images)
        images = load_image_set(sources, config.size)
    else:
        sources = [f"image {i}" for i in range(images.shape[0])]
    images = images.to(device)
    built: dict[str, Backbone] = {}
    for label in layer_map:
        if backbones is not None and label in backbones:
            backbone = backbones[label]
        else:
            spec = parse_backbone(label, config.weights)
            backbone = seeded_backbone(
                spec.name,
                spec.weights,
                seed=config.seed,
                trust_checkpoint=config.trust_checkpoint,
                options=parse_backbone_options(config.backbone_options),
                shared=shared,
            )
        backbone.validate(layer_map[label])
        # PGD keeps a batch of attacked images and their activations, like a render with Adam's state
        estimate = estimate_render_bytes([(backbone, layer_map[label])], config.batch_size, *images.shape[-2:])
        check_memory(estimate, device, "use a smaller --size or --batch-size")
        built[label] = backbone.to(device)
    total = sum(count_steps(images.shape[0], len(ls), settings, config.batch_size) for ls in layer_map.values())
    done = 0
    results: dict[str, list[LayerRobustness]] = {}
    seconds: dict[str, float] = {}
    for label, backbone in built.items():
        t0 = time.perf_counter()
        results[label] = []
        for layer in layer_map[label]:

            def on_step(_step: int, label: str = label, layer: str = layer) -> None:
                nonlocal done
                done += 1
                if progress is not None:
                    progress(RobustnessProgress(done, total, label, layer))

            generator = torch.Generator().manual_seed(config.seed)
            results[label] += layer_robustness(
                backbone,
                images,
                [layer],
                settings,
                batch_size=config.batch_size,
                generator=generator,
                on_step=on_step,
            )
        seconds[label] = time.perf_counter() - t0
    return RobustnessResult(
        config=config,
        settings=settings,
        results=results,
        weights={label: b.weights_source or "-" for label, b in built.items()},
        seconds=seconds,
        images=list(sources),
        device=str(device),
        wall_seconds=time.perf_counter() - start,
    )


# --- outputs -----------------------------------------------------------------------------------------------
def rows_to_csv(rows: Sequence[Mapping[str, Any]]) -> str:
    """CSV text of table rows (columns in :data:`COLUMNS` order)."""
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=list(COLUMNS), lineterminator="\n")
    writer.writeheader()
    for row in rows:
        writer.writerow({k: (repr(v) if isinstance(v, float) else v) for k, v in row.items()})
    return buffer.getvalue()


def format_table(result: RobustnessResult) -> str:
    """A plain-text table (backbone, layer, R ± spread, feature distances) with a settings line."""
    s = result.settings
    head = (
        f"R(f): PGD {s.norm.upper()} eps={s.radius:.4g}, {s.steps} steps of {s.step:.4g}, "
        f"random start {'on' if s.random_start else 'off'}, {len(result.images)} images at "
        f"{size_text(result.config.size)} px, seed {result.config.seed}"
    )
    rows = [("backbone", "layer", "R", "std", "min", "max", "E max||df||", "E||f1-f2||")]
    for row in result.rows():
        rows.append(
            (
                row["backbone"],
                row["layer"],
                f"{row['r']:.4g}",
                f"{row['r_std']:.2g}",
                f"{row['r_min']:.4g}",
                f"{row['r_max']:.4g}",
                f"{row['adversarial_distance']:.4g}",
                f"{row['pairwise_distance']:.4g}",
            )
        )
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    lines = ["  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip() for r in rows]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join([head, "", *lines])


def plot_robustness(result: RobustnessResult, path: str | Path) -> Path:
    """Plot R per layer (one line per backbone, error bars = std over images) to a PNG file.

    Uses matplotlib's Agg canvas directly (no pyplot, no global backend change).
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    layer_lists = [tuple(r.layer for r in layers) for layers in result.results.values()]
    shared = len(set(layer_lists)) == 1
    n_max = max(len(ls) for ls in layer_lists)
    fig = Figure(figsize=(max(5.0, 1.1 * n_max + 2.5), 4.2), dpi=120)
    FigureCanvasAgg(fig)
    ax = fig.add_subplot(1, 1, 1)
    values = []
    for label, layers in result.results.items():
        xs = list(range(1, len(layers) + 1))
        ys = [r.r for r in layers]
        values += [r.r for r in layers if r.r > 0]
        ax.errorbar(xs, ys, yerr=[r.r_std for r in layers], marker="o", capsize=3, label=label)
        if not shared:
            for x, r in zip(xs, layers, strict=True):
                ax.annotate(r.layer, (x, r.r), textcoords="offset points", xytext=(4, 4), fontsize=7)
    if values and max(values) / min(values) > 30:
        ax.set_yscale("log")
    ax.set_xticks(range(1, n_max + 1))
    if shared:
        ax.set_xticklabels(layer_lists[0], rotation=30 if n_max > 4 else 0, ha="right" if n_max > 4 else "center")
        ax.set_xlabel("layer")
    else:
        ax.set_xlabel("layer (position in each backbone's list)")
    ax.set_ylabel("R(f)  (mean ± std over images)")
    s = result.settings
    ax.set_title(
        f"Layer robustness: PGD {s.norm.upper()} ε={s.radius:.4g}, {s.steps} steps, "
        f"{len(result.images)} images at {size_text(result.config.size)} px",
        fontsize=9,
    )
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(str(path))
    return Path(path)


def write_robustness(result: RobustnessResult, out: OutputDir) -> None:
    """Write ``robustness.csv``, ``robustness.json``, ``robustness.png`` and ``config.toml`` into ``out``."""
    rows = result.rows()
    for row in rows:
        for key in ("r", "r_std", "adversarial_distance", "pairwise_distance"):
            if not math.isfinite(row[key]):
                raise ConfigError(f"R(f) of {row['backbone']} {row['layer']} is not finite ({key}={row[key]})")
    out.write_text("robustness.csv", rows_to_csv(rows))
    out.write_json("robustness.json", result.to_json())
    plot_robustness(result, out.path("robustness.png"))
    out.write_text("config.toml", result.config.to_toml())


def run_robustness(
    config: RobustnessConfig,
    out: str | Path,
    force: bool = False,
    *,
    progress: ProgressCallback | None = None,
    backbones: Mapping[str, Backbone] | None = None,
) -> RobustnessResult:
    """Run :func:`compute_robustness` and write its outputs to ``out`` (refused if not empty unless ``force``)."""
    check_output_dir(out, force)
    result = compute_robustness(config, progress=progress, backbones=backbones)
    with OutputDir(out, force, kind="robustness") as target:
        write_robustness(result, target)
    return result


def _run_task(
    config: RobustnessConfig, callbacks: Iterable[ProgressCallback] = (), shared: SharedWork | None = None
) -> RobustnessResult:
    callbacks = list(callbacks)

    def progress(event: RobustnessProgress) -> None:
        for callback in callbacks:
            callback(event)

    return compute_robustness(config, progress=progress if callbacks else None, shared=shared)


TASKS.register(
    "robustness",
    Task(
        "robustness",
        RobustnessConfig,
        run=_run_task,
        write=write_robustness,
        path_fields=("images", "weights"),
        sweepable=False,  # its result is a table of layers, not one image per run
        description="layer robustness R(f) under PGD",
    ),
)
