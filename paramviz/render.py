"""The optimization loop: parameterization -> transforms -> backbone -> objective -> optimizer.

:func:`render` owns only the loop. It reads no files, prints nothing and has no model-specific branches;
progress goes to callbacks that receive a frozen :class:`StepRecord` after every step.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn

from paramviz.config import check_seed
from paramviz.device import resolve_device
from paramviz.errors import ConfigError, NonFiniteLossError
from paramviz.objectives.base import Objective, total_weight_is_zero
from paramviz.objectives.penalties import ALPHA_KEY, IMAGE_KEYS, INPUT_KEY  # image keys, for penalties
from paramviz.params.alpha import composite_random
from paramviz.registry import Registry
from paramviz.transforms import TransformStack


@dataclass(frozen=True)
class StepRecord:
    """What a callback sees after each step.

    Attributes:
        step: 1-based step number.
        steps: Total number of steps.
        loss: Mean loss over the batch (lower is better).
        losses: Loss per image.
        terms: Mean value of each named term over the batch (they sum to ``loss``).
        seconds: Wall time since the loop started.
    """

    step: int
    steps: int
    loss: float
    losses: tuple[float, ...]
    terms: dict[str, float]
    seconds: float


@dataclass
class RenderResult:
    """The outcome of :func:`render`.

    Attributes:
        images: Snapshot images (B, 3, H, W), or (B, 4, H, W) RGBA, on the CPU, keyed by step (the last step
            always included).
        history: Mean loss per step.
        term_history: Per-term mean value per step.
        seconds: Total wall time of the loop.
        steps: Number of steps run.
        final_losses: Loss per image at the last step.
        image_history: Loss of each image per step (``image_history[step - 1][i]``).
        image_term_history: Each term's value per image per step.
    """

    images: dict[int, torch.Tensor]
    history: list[float]
    term_history: dict[str, list[float]] = field(default_factory=dict)
    seconds: float = 0.0
    steps: int = 0
    final_losses: tuple[float, ...] = ()
    image_history: list[tuple[float, ...]] = field(default_factory=list)
    image_term_history: dict[str, list[tuple[float, ...]]] = field(default_factory=dict)

    def split(self, index: int) -> RenderResult:
        """The result of image ``index`` alone, as if it had been rendered in a batch of one.

        A batched sweep renders several arms in one optimization; each arm's outputs come from its split.
        Wall time is the batch's.
        """
        return RenderResult(
            images={step: images[index : index + 1] for step, images in self.images.items()},
            history=[losses[index] for losses in self.image_history],
            term_history={name: [v[index] for v in values] for name, values in self.image_term_history.items()},
            seconds=self.seconds,
            steps=self.steps,
            final_losses=(self.final_losses[index],),
            image_history=[(losses[index],) for losses in self.image_history],
            image_term_history={
                name: [(v[index],) for v in values] for name, values in self.image_term_history.items()
            },
        )

    @property
    def image(self) -> torch.Tensor:
        """The final images (B, 3, H, W)."""
        return self.images[max(self.images)]

    @property
    def final_terms(self) -> dict[str, float]:
        """Each term's mean value at the last step."""
        return {name: values[-1] for name, values in self.term_history.items()}

    @property
    def steps_per_second(self) -> float:
        """Optimization speed."""
        return self.steps / self.seconds if self.seconds > 0 else float("inf")


Callback = Callable[[StepRecord], None]
OptimizerFactory = Callable[[Sequence[nn.Parameter], float], torch.optim.Optimizer]

OPTIMIZERS: Registry[OptimizerFactory] = Registry("optimizer", "choices come from paramviz.render.OPTIMIZERS")
OPTIMIZERS.register(
    "adam", lambda params, lr: torch.optim.Adam(params, lr=lr), description="Adam (Lucid default lr 0.05)"
)
OPTIMIZERS.register(
    "lbfgs",
    # the loop decides the number of steps: no early stop on tiny gradients (small losses would never move)
    lambda params, lr: torch.optim.LBFGS(
        params, lr=lr, max_iter=1, history_size=20, tolerance_grad=0.0, tolerance_change=0.0
    ),
    description="L-BFGS, one iteration per step (as Gatys/Nakano); lr 1 is usual",
)
OPTIMIZERS.register("nadam", lambda params, lr: torch.optim.NAdam(params, lr=lr), description="Nadam (MACO's, lr 1.0)")


def render(
    param: nn.Module,
    transforms: nn.Module,
    backbone: nn.Module,
    objective: Objective,
    *,
    optimizer: str = "adam",
    steps: int = 512,
    lr: float = 0.05,
    thresholds: Iterable[int] | None = None,
    callbacks: Iterable[Callback] = (),
    seed: int | Sequence[int] | None = 0,
    device: str | torch.device | None = None,
) -> RenderResult:
    """Optimize ``param`` so that ``objective(backbone(transforms(param())))`` decreases.

    Args:
        param: Image parameterization: ``param()`` returns (B, 3, H, W) in [0, 1], or (B, 4, H, W) RGBA,
            which is composited over a new random background every step before the transforms
            (:func:`~paramviz.params.alpha.composite_random`, from the transform draws' generator); its
            alpha channel is passed to the objective under ``ALPHA_KEY`` (``"alpha"``).
        transforms: Random differentiable transforms applied to the image every step.
        backbone: Frozen network; ``backbone(x, layers)`` returns ``{layer: activation}``.
        objective: Loss per image (lower is better); ``objective.layers()`` is validated before step 1.
        optimizer: Name in :data:`OPTIMIZERS` (``"adam"``, ``"lbfgs"``, ``"nadam"``).
        steps: Number of optimization steps.
        lr: Learning rate.
        thresholds: Steps at which to keep a snapshot of the images (the last step is always kept).
        callbacks: Called with a :class:`StepRecord` after every step.
        seed: Seed of the transform draws (a private CPU generator; torch's global RNG is also seeded with it,
            for plugins that draw from it). A sequence of seeds, one per image, gives image ``i`` exactly the
            draws a batch of one seeded with ``seed[i]`` gets (batched sweep arms). ``None``: draws come from
            torch's global RNG, left as it is.
        device: Where to run (``None``/``"auto"``: CUDA if present, else CPU). Modules are moved there.

    Raises:
        ConfigError: Bad steps/lr/thresholds or an objective with only zero weights.
        UnknownNameError: An unknown optimizer or a layer the backbone does not have.
        NonFiniteLossError: The loss became NaN or infinite (names the step).
    """
    if steps < 1:
        raise ConfigError(f"steps must be at least 1, got {steps}")
    if not (lr > 0 and math.isfinite(lr)):
        raise ConfigError(f"learning rate must be a positive number, got {lr}")
    make_optimizer = OPTIMIZERS.get(optimizer)
    keep = sorted(set(thresholds or ()) | {steps})
    bad = [t for t in keep if not 1 <= t <= steps]
    if bad:
        raise ConfigError(f"thresholds must be steps between 1 and {steps}, got {bad}")
    if total_weight_is_zero(objective):
        raise ConfigError(f"every term of the objective {objective.name!r} has weight 0; nothing to optimize")
    layers = sorted(objective.layers() - IMAGE_KEYS)
    backbone.validate(layers)
    reads_alpha = ALPHA_KEY in objective.layers()
    if reads_alpha and getattr(param, "channels", 3) != 4:
        raise ConfigError(
            f"the objective {objective.name!r} reads the alpha channel but the parameterization has none; "
            "build it with alpha=True (--alpha)"
        )

    device = resolve_device(device)
    param.to(device)
    transforms.to(device)
    backbone.to(device)
    objective.to(device)
    generator = _generators(seed, getattr(param, "batch", None))
    stack_draws = isinstance(transforms, TransformStack)  # any other module draws (or not) as it likes

    params = [p for p in param.parameters() if p.requires_grad]
    if not params:
        raise ConfigError("the parameterization has no trainable parameters")
    opt = make_optimizer(params, lr)
    callbacks = list(callbacks)
    reads_input = INPUT_KEY in objective.layers()

    result = RenderResult(images={}, history=[], steps=steps)
    start = time.perf_counter()
    for step in range(1, steps + 1):
        last: dict[str, Any] = {}

        def closure(step: int = step, last: dict[str, Any] = last) -> torch.Tensor:
            opt.zero_grad(set_to_none=True)
            raw = param()
            rgb = composite_random(raw, generator) if raw.shape[1] == 4 else raw
            image = transforms(rgb, generator=generator) if stack_draws else transforms(rgb)
            features = backbone(image, layers)
            if reads_input:
                features[INPUT_KEY] = image
            if reads_alpha:
                features[ALPHA_KEY] = raw[:, 3:]
            total, terms = objective.evaluate(features)
            loss = total.sum()
            if not torch.isfinite(loss):
                raise NonFiniteLossError(
                    f"the loss became {loss.item()} at step {step} (terms: "
                    f"{ {k: float(v.detach().mean()) for k, v in terms.items()} }); "
                    "lower --lr, use --param fourier or a sigmoid squash, or check the objective weights"
                )
            loss.backward()
            last["total"], last["terms"] = total.detach(), {k: v.detach() for k, v in terms.items()}
            return loss

        opt.step(closure)
        record = StepRecord(
            step=step,
            steps=steps,
            loss=float(last["total"].mean()),
            losses=tuple(float(v) for v in last["total"].cpu()),
            terms={k: float(v.mean()) for k, v in last["terms"].items()},
            seconds=time.perf_counter() - start,
        )
        result.history.append(record.loss)
        result.image_history.append(record.losses)
        for name, value in record.terms.items():
            result.term_history.setdefault(name, []).append(value)
        for name, value in last["terms"].items():
            per_image = value.detach().reshape(-1).cpu().tolist()
            if len(per_image) == 1 and len(record.losses) > 1:  # a batch-wide term: same value for every image
                per_image = per_image * len(record.losses)
            result.image_term_history.setdefault(name, []).append(tuple(per_image))
        if step in keep:
            with torch.no_grad():
                result.images[step] = param().detach().cpu()
        for callback in callbacks:
            callback(record)
    result.seconds = time.perf_counter() - start
    result.final_losses = record.losses
    return result


def _generators(seed: int | Sequence[int] | None, batch: int | None) -> torch.Generator | list[torch.Generator] | None:
    """The generator(s) of the transform draws; also seeds torch's global RNG (with the first seed)."""
    if seed is None:
        return None
    if isinstance(seed, Sequence):
        seeds = [check_seed(s) for s in seed]
        if not seeds:
            raise ConfigError("seed: got an empty list of seeds; give one seed per image")
        if batch is not None and len(seeds) != batch:
            raise ConfigError(f"got {len(seeds)} seeds for a batch of {batch} images; give one seed per image")
        torch.manual_seed(seeds[0])
        return [torch.Generator().manual_seed(s) for s in seeds]
    torch.manual_seed(check_seed(seed))
    return torch.Generator().manual_seed(seed)
