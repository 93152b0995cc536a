"""The optimization loop: parameterization -> transforms -> backbone -> objective -> optimizer.

:func:`render` owns only the loop. It reads no files, prints nothing and has no model-specific branches;
progress goes to callbacks that receive a :class:`StepRecord` after every step.

A steady-state step makes no host-device synchronization: transform draws are sampled ahead and moved to
the device in chunks, the step's values stay on the device until a callback reads them, a NaN/inf loss is
noted on the device and raised (naming its step) when values are read anyway and at the end, snapshots are
copied to the host at the end. (L-BFGS reads its loss on the host in every step regardless.)
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
from paramviz.device import move_ahead, resolve_device
from paramviz.errors import ConfigError, NonFiniteLossError, RenderInterrupted
from paramviz.host_memory import keep_freed_memory
from paramviz.limits import check_lr
from paramviz.objectives.base import Objective, RenderContext, total_weight_is_zero
from paramviz.objectives.penalties import ALPHA_KEY, IMAGE_KEYS, INPUT_KEY  # image keys, for penalties
from paramviz.optim import FusedAdam, fused_adam_supported
from paramviz.params.alpha import composite, random_background
from paramviz.registry import Registry
from paramviz.transforms import TransformStack


class StepRecord:
    """What a callback sees after each step.

    The step's values stay on the device until a callback reads ``loss``, ``losses`` or ``terms``: reading
    them copies them to the host (on CUDA, a synchronization), so a callback that only counts steps costs
    nothing, and a progress bar that shows the loss a few times a second costs a few copies a second.

    Attributes:
        step: 1-based step number.
        steps: Total number of steps.
        seconds: Wall time since the loop started.
        loss: Mean loss over the batch (lower is better).
        losses: Loss per image.
        terms: Mean value of each named term over the batch (they sum to ``loss``).
    """

    __slots__ = ("_terms", "_total", "_values", "seconds", "step", "steps")

    def __init__(
        self, step: int, steps: int, total: torch.Tensor, terms: dict[str, torch.Tensor], seconds: float
    ) -> None:
        self.step, self.steps, self.seconds = step, steps, seconds
        self._total, self._terms = total, terms
        self._values: tuple[float, tuple[float, ...], dict[str, float]] | None = None

    @property
    def materialized(self) -> bool:
        """Whether the values were read (copied to the host)."""
        return self._values is not None

    def _read(self) -> tuple[float, tuple[float, ...], dict[str, float]]:
        if self._values is None:
            names = list(self._terms)
            total = self._total.reshape(-1)
            means = torch.stack([total.mean(), *(self._terms[n].mean() for n in names)])
            flat = torch.cat([means, total]).tolist()  # one copy to the host
            k = len(names) + 1
            self._values = (flat[0], tuple(flat[k:]), dict(zip(names, flat[1:k], strict=True)))
        return self._values

    @property
    def loss(self) -> float:
        return self._read()[0]

    @property
    def losses(self) -> tuple[float, ...]:
        return self._read()[1]

    @property
    def terms(self) -> dict[str, float]:
        return self._read()[2]

    def __repr__(self) -> str:
        values = f"loss={self.loss:.4g}" if self.materialized else "values on the device"
        return f"StepRecord(step={self.step}/{self.steps}, {values}, seconds={self.seconds:.3f})"


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
        interrupted: True for the partial result of a run stopped by Ctrl-C (``steps`` were completed).
    """

    images: dict[int, torch.Tensor]
    history: list[float]
    term_history: dict[str, list[float]] = field(default_factory=dict)
    seconds: float = 0.0
    steps: int = 0
    final_losses: tuple[float, ...] = ()
    image_history: list[tuple[float, ...]] = field(default_factory=list)
    image_term_history: dict[str, list[tuple[float, ...]]] = field(default_factory=dict)
    interrupted: bool = False

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
            interrupted=self.interrupted,
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


def _adam(params: Sequence[nn.Parameter], lr: float) -> torch.optim.Optimizer:
    """Adam as torch's fused kernel (:class:`~paramviz.optim.FusedAdam`) where it runs, else ``torch.optim.Adam``.

    The fused update is 2x faster than the per-op one on the CPU, and on CUDA its step count stays on the device.
    """
    if fused_adam_supported(params):
        return FusedAdam(params, lr=lr)
    return torch.optim.Adam(params, lr=lr)


def _step(opt: torch.optim.Optimizer, closure: Callable[[], torch.Tensor]) -> None:
    """One optimizer step; a :class:`~paramviz.optim.FusedAdam` runs the closure and its update directly."""
    if isinstance(opt, FusedAdam):  # without torch's per-step wrapper: no hooks are registered on this optimizer
        closure()
        opt.update()
    else:
        opt.step(closure)


OPTIMIZERS: Registry[OptimizerFactory] = Registry("optimizer", "choices come from paramviz.render.OPTIMIZERS")
OPTIMIZERS.register("adam", _adam, description="Adam (Lucid default lr 0.05)")
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
            (:func:`~paramviz.params.alpha.random_background`, from the transform draws' generator, drawn ahead); its
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
        RenderInterrupted: Ctrl-C (a :class:`KeyboardInterrupt`); it carries the partial result, with the image
            after the last completed step in ``images`` and ``steps`` = the steps completed.
    """
    if steps < 1:
        raise ConfigError(f"steps must be at least 1, got {steps}")
    check_lr(lr)
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
    keep_freed_memory()  # steps reuse their blocks instead of page-faulting them in again (host_memory)
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

    with torch.no_grad():
        shape = tuple(param().shape)
    rgba = shape[1] == 4  # composited over a fresh random background every step (Lucid, captum's BlendAlpha)
    rgb_shape = (shape[0], 3, *shape[2:])
    draws = _DrawQueue(transforms if stack_draws else None, rgb_shape, steps, generator, device, rgba)
    check_each_step = optimizer == "lbfgs"  # its line search reads the loss on the host anyway
    log = _Log()
    snapshots: dict[int, torch.Tensor] = {}
    result = RenderResult(images={}, history=[], steps=steps)
    start = time.perf_counter()
    done = 0
    objective.attach(RenderContext(param, transforms, backbone, device))  # image-driven objectives: targets
    try:
        for step in range(1, steps + 1):
            last: dict[str, Any] = {}
            draw, background = draws.next()

            def closure(
                step: int = step, last: dict[str, Any] = last, draw: Any = draw, background: Any = background
            ) -> torch.Tensor:
                opt.zero_grad(set_to_none=True)
                raw = param()
                rgb = composite(raw, background) if background is not None else raw
                image = transforms(rgb, draw=draw) if draw is not None else transforms(rgb)
                features = backbone(image, layers)
                if reads_input:
                    features[INPUT_KEY] = image
                if reads_alpha:
                    features[ALPHA_KEY] = raw[:, 3:]
                total, terms = objective.evaluate(features)
                loss = total.sum()
                if check_each_step and not torch.isfinite(loss):
                    raise _non_finite(step, total.detach(), {k: v.detach() for k, v in terms.items()})
                loss.backward()
                last["total"], last["terms"] = total.detach(), {k: v.detach() for k, v in terms.items()}
                return loss

            _step(opt, closure)
            log.add(last["total"], last["terms"])
            if step in keep:
                with torch.no_grad():
                    snapshots[step] = param().detach().clone()
            done = step
            record = StepRecord(step, steps, last["total"], last["terms"], time.perf_counter() - start)
            for callback in callbacks:
                callback(record)
            if record.materialized:  # the device has caught up anyway: checking the new steps costs no extra wait
                log.check()
    except KeyboardInterrupt:
        # Ctrl-C: keep the work done so far (the image after the last completed step) for the caller to save
        result.steps, result.interrupted = done, True
        result.seconds = time.perf_counter() - start
        if done:
            if done not in snapshots:
                with torch.no_grad():
                    snapshots[done] = param().detach().clone()
            log.fill(result)
        result.images = {k: v.cpu() for k, v in snapshots.items() if k <= done}
        raise RenderInterrupted(result, steps) from None
    finally:
        objective.attach(None)  # stop replaying this loop's transforms on reference images
    result.seconds = time.perf_counter() - start
    log.check()
    log.fill(result)
    result.images = {k: v.cpu() for k, v in snapshots.items()}
    return result


#: At most this many bytes of draws (transforms, RGBA backgrounds) are made and moved to the device at once.
DRAW_AHEAD_BYTES = 64 * 2**20


class _DrawQueue:
    """The random draws of the coming steps, sampled in step order and moved to the device ahead of time.

    Each step gets a background for RGBA images (drawn first, as the step would) and a transform draw. They are
    made in chunks of at most :data:`DRAW_AHEAD_BYTES` (backgrounds and noise draws are image-sized) and moved
    with :func:`~paramviz.device.move_ahead` (asynchronous on CUDA), so a step itself copies nothing between host
    and device; the draws are exactly those step-by-step sampling would give.
    """

    def __init__(
        self,
        transforms: TransformStack | None,
        shape: tuple[int, ...],
        steps: int,
        generator: torch.Generator | list[torch.Generator] | None,
        device: torch.device,
        background: bool,
        max_bytes: int | None = None,
    ) -> None:
        self.transforms, self.shape, self.left = transforms, shape, steps
        self.generator, self.device, self.background = generator, device, background
        per_step = (transforms.draw_bytes(shape) if transforms is not None else 0) + (
            4 * math.prod(shape) if background else 0
        )
        max_bytes = DRAW_AHEAD_BYTES if max_bytes is None else max_bytes
        self.chunk = max(1, min(steps, max_bytes // max(1, per_step)))
        self.pending: list[tuple[Any, torch.Tensor | None]] = []

    def _sample(self) -> tuple[Any, torch.Tensor | None]:
        background = move_ahead(random_background(self.shape, self.generator), self.device) if self.background else None
        draw = None
        if self.transforms is not None:
            draw = self.transforms.to_device(self.transforms.sample(self.shape, self.generator), self.device)
        return draw, background

    def next(self) -> tuple[Any, torch.Tensor | None]:
        """The transform draw (``None`` without a transform stack) and background (``None`` for RGB) of a step."""
        if not self.pending:
            self.pending = [self._sample() for _ in range(min(self.chunk, self.left))][::-1]
        self.left -= 1
        return self.pending.pop()


class _Log:
    """Per-step totals and terms, kept on the device and copied to the host once (at the end, or on demand)."""

    def __init__(self) -> None:
        self.totals: list[torch.Tensor] = []
        self.terms: dict[str, list[torch.Tensor]] = {}
        self.checked = 0  # steps already checked for NaN/inf

    def check(self) -> None:
        """Raise :class:`NonFiniteLossError` for the first unchecked step whose loss was NaN or infinite.

        One copy to the host; the steps themselves compute nothing for it.
        """
        if self.checked == len(self.totals):
            return
        start, self.checked = self.checked, len(self.totals)
        bad = (~torch.isfinite(torch.stack(self.totals[start:])).all(1)).tolist()
        if True in bad:
            step = start + bad.index(True) + 1
            terms = {name: values[step - 1] for name, values in self.terms.items()}
            raise _non_finite(step, self.totals[step - 1], terms)

    def add(self, total: torch.Tensor, terms: dict[str, torch.Tensor]) -> None:
        self.totals.append(total.reshape(-1))
        batch = self.totals[-1].shape[0]
        for name, value in terms.items():
            self.terms.setdefault(name, []).append(value.reshape(-1).expand(batch))  # batch-wide: every image

    def fill(self, result: RenderResult) -> None:
        """Write the histories into ``result`` (one copy to the host)."""
        if not self.totals:
            return
        totals = torch.stack(self.totals)  # (steps, B)
        names = list(self.terms)
        terms = torch.stack([torch.stack(self.terms[n]) for n in names]) if names else totals[:0][None]
        totals_host, terms_host = totals.cpu(), terms.cpu()
        result.image_history = [tuple(row) for row in totals_host.tolist()]
        result.history = totals_host.mean(1).tolist()
        result.final_losses = result.image_history[-1]
        for i, name in enumerate(names):
            values = terms_host[i]
            result.image_term_history[name] = [tuple(row) for row in values.tolist()]
            result.term_history[name] = values.mean(1).tolist()


def _non_finite(step: int, total: torch.Tensor, terms: dict[str, torch.Tensor]) -> NonFiniteLossError:
    values = {k: float(v.float().mean()) for k, v in terms.items()}
    return NonFiniteLossError(
        f"the loss became {float(total.float().sum())} at step {step} (terms: {values}); "
        "lower --lr, use --param fourier or a sigmoid squash, or check the objective weights"
    )


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
