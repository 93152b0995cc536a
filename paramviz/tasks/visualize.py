"""Feature visualization (activation maximization): config -> components -> render -> outputs."""

from __future__ import annotations

import platform
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

import torch

from paramviz.backbones import Backbone, build_backbone, parse_backbone_options
from paramviz.config import ConfigBase, check_seed
from paramviz.device import resolve_device
from paramviz.errors import ConfigError, RenderInterrupted
from paramviz.io import OutputDir, check_output_dir, image_grid, labeled_grid
from paramviz.limits import check_image_side, check_lr, check_memory, estimate_render_bytes
from paramviz.objectives import INPUT_KEY, Objective, parse_objectives, required_batch
from paramviz.params import ParamSpec, build_param
from paramviz.render import OPTIMIZERS, Callback, RenderResult, render
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
        size: Image side in pixels (square).
        batch: Images rendered at once.
        steps: Optimization steps.
        lr: Learning rate.
        optimizer: ``adam`` or ``lbfgs``.
        seed: Seed of the parameter init and the transform draws.
        device: ``auto``, ``cpu``, ``cuda``, ``cuda:N``.
        thresholds: Steps at which a snapshot image is saved (the last step always is).
    """

    backbone: str = "efficientnet_lite0"
    backbone_options: tuple[str, ...] = ()
    weights: str = "pretrained"
    trust_checkpoint: bool = False
    objectives: tuple[str, ...] = ()
    param: ParamSpec = field(default_factory=ParamSpec)
    transforms: str = "lucid"
    size: int = 128
    batch: int = 1
    steps: int = 512
    lr: float = 0.05
    optimizer: str = "adam"
    seed: int = 0
    device: str = "auto"
    thresholds: tuple[int, ...] = ()

    def __post_init__(self) -> None:
        for name in ("size", "batch", "steps"):
            value = getattr(self, name)
            if not isinstance(value, int) or value < 1:
                raise ConfigError(f"{name} must be a positive integer, got {value!r}")
        check_seed(self.seed)
        parse_backbone_options(self.backbone_options)
        if not isinstance(self.trust_checkpoint, bool):
            raise ConfigError(f"trust_checkpoint must be true or false, got {self.trust_checkpoint!r}")
        bad_steps = [t for t in self.thresholds if isinstance(t, bool) or not isinstance(t, int)]
        if bad_steps:
            raise ConfigError(f"thresholds must be whole step numbers, got {bad_steps}")
        if self.size < 16:
            raise ConfigError(f"size must be at least 16 pixels, got {self.size}")
        check_image_side(self.size)
        check_lr(self.lr)
        OPTIMIZERS.get(self.optimizer)
        bad = [t for t in self.thresholds if not 1 <= t <= self.steps]
        if bad:
            raise ConfigError(f"thresholds must lie in 1..steps={self.steps}, got {bad}")


@dataclass
class VisualizeResult:
    """A finished visualization: the render result plus the resolved config and components."""

    config: VisualizeConfig
    render: RenderResult
    objective: Objective
    backbone: Backbone
    device: str

    @property
    def images(self) -> torch.Tensor:
        """Final images (B, 3, H, W) in [0, 1]."""
        return self.render.image

    def metrics(self) -> dict[str, object]:
        """The ``metrics.json`` content: final objective, per-term values, timing, environment."""
        r = self.render
        return {
            "objective": self.objective.name,
            "final_loss": r.history[-1],
            "final_loss_per_image": list(r.final_losses),
            "terms": r.final_terms,
            "initial_loss": r.history[0],
            "steps": r.steps,
            "wall_seconds": r.seconds,
            "steps_per_second": r.steps_per_second,
            "device": self.device,
            "backbone_weights": self.backbone.weights_source,
            "torch": torch.__version__,
            "python": platform.python_version(),
            **({"interrupted_at_step": r.steps, "steps_requested": self.config.steps} if r.interrupted else {}),
        }


def build_objective(config: VisualizeConfig) -> Objective:
    """Parse the config's objective specs into one summed objective."""
    if not config.objectives:
        raise ConfigError(
            "no objective given; add at least one, e.g. --objective stage4:0 (channel 0 of layer stage4) "
            "or --objective logit:espresso (see `paramviz visualize --help`)"
        )
    return parse_objectives(config.objectives)


def visualize(
    config: VisualizeConfig, callbacks: Iterable[Callback] = (), backbone: Backbone | None = None
) -> VisualizeResult:
    """Render an activation-maximization image as described by ``config``.

    Args:
        config: The run's settings.
        callbacks: Render callbacks (progress bars, loggers).
        backbone: An already built backbone to use instead of ``config.backbone`` (e.g. a custom module).
    """
    objective = build_objective(config)
    wanted = required_batch(objective)
    if wanted is not None and wanted != config.batch:
        if config.batch != 1:
            raise ConfigError(
                f"the objective lists one unit per image for {wanted} images but batch is {config.batch}; "
                f"set --batch {wanted} or leave it at 1 to size the batch from the objective"
            )
        config = config.replace(batch=wanted)
    device = resolve_device(config.device)
    if backbone is None:
        backbone = build_backbone(
            config.backbone,
            config.weights,
            trust_checkpoint=config.trust_checkpoint,
            **parse_backbone_options(config.backbone_options),
        )
    layers = sorted(objective.layers() - {INPUT_KEY})
    side, optimizer = config.size, config.optimizer
    check_memory(estimate_render_bytes([(backbone, layers)], config.batch, side, side, optimizer=optimizer), device)
    param = build_param(config.param, (config.size, config.size), batch=config.batch, seed=config.seed)
    transforms = build_transforms(config.transforms)
    try:
        result = render(
            param,
            transforms,
            backbone,
            objective,
            optimizer=config.optimizer,
            steps=config.steps,
            lr=config.lr,
            thresholds=config.thresholds,
            callbacks=callbacks,
            seed=config.seed,
            device=device,
        )
    except RenderInterrupted as exc:
        exc.outcome = VisualizeResult(config, exc.result, objective, backbone, str(device))
        raise
    return VisualizeResult(config, result, objective, backbone, str(device))


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


def write_outputs(result: VisualizeResult, out: OutputDir) -> None:
    """Write image(s), snapshots, ``config.toml`` and ``metrics.json`` into an open :class:`OutputDir`."""
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
