"""Layer robustness ratio R(f) measured with a PGD attack on the feature distance.

For a feature map ``f`` (one layer of a backbone, or any differentiable function of an image batch)::

    R(f) = E_x[ max_{x' in B_eps(x)} ||f(x') - f(x)||_2 ]  /  E_{x1 != x2}[ ||f(x1) - f(x2)||_2 ]

(Engstrom, Ilyas et al. 2019, Distill response to "Adversarial Examples Are Not Bugs, They Are Features").
The numerator is estimated per image with projected gradient ascent (PGD) inside the L2 or L-infinity ball of
radius ``eps`` around ``x`` intersected with the image box [0, 1]; the denominator is the mean distance over
all unordered pairs of distinct images of the set. A low R means the layer is hard to move within the ball
compared with how much it varies between natural images.

PGD follows the conventions of the MadryLab ``robustness`` library: step size ``2.5 * eps / steps`` unless
given; L2 steps along the normalized gradient, L-infinity steps along its sign; after each step the
perturbation is projected back onto the ball and the image clamped to [0, 1]; the best iterate per image is
kept. The ascent objective is the squared feature distance, whose gradient points the same way as the
distance's but is defined everywhere. At ``x`` itself that gradient is exactly zero, so without
``random_start`` the attack starts from ``x`` plus a tiny random offset of norm ``1e-3 * eps`` (the first
steps then act as power iterations towards the most sensitive direction); with ``random_start`` it starts
from a point drawn uniformly in the ball. Randomness comes only from the ``generator`` given (or torch's
global RNG).

This module does no I/O; see :mod:`paramviz.tasks.robustness` for the command-line task.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch

from paramviz.errors import ConfigError

#: Norms of the perturbation ball.
NORMS = ("l2", "linf")

#: Default radius per norm when none is given: the training radii of the most used MadryLab ImageNet
#: checkpoints (``madry_resnet50_l2_eps3`` and ``madry_resnet50_linf_eps4``), for images in [0, 1].
DEFAULT_EPS = {"l2": 3.0, "linf": 4.0 / 255.0}

#: Offset (relative to eps) of the non-random start; breaks the zero gradient at x itself.
START_OFFSET = 1e-3

FeatureFn = Callable[[torch.Tensor], torch.Tensor]
StepCallback = Callable[[int], None]


@dataclass(frozen=True)
class PGDSettings:
    """How the inner maximization of R(f) is run.

    Attributes:
        norm: ``"l2"`` or ``"linf"``.
        eps: Radius of the ball in [0, 1] pixel units (L-infinity: e.g. ``4/255``); ``None`` uses
            :data:`DEFAULT_EPS` for the norm.
        steps: PGD steps per image (0 measures nothing: the numerator is 0).
        step_size: Step length; ``None`` means ``2.5 * eps / steps`` (MadryLab convention).
        random_start: Start from a uniform random point of the ball instead of (almost) ``x``.
    """

    norm: str = "l2"
    eps: float | None = None
    steps: int = 20
    step_size: float | None = None
    random_start: bool = False

    def __post_init__(self) -> None:
        if self.norm not in NORMS:
            raise ConfigError(f"norm must be one of {', '.join(map(repr, NORMS))}, got {self.norm!r}")
        if self.eps is not None and (not math.isfinite(self.eps) or self.eps < 0):
            raise ConfigError(f"eps must be a finite number >= 0, got {self.eps!r}")
        if isinstance(self.steps, bool) or not isinstance(self.steps, int) or self.steps < 0:
            raise ConfigError(f"steps must be an integer >= 0, got {self.steps!r}")
        if self.step_size is not None and (not math.isfinite(self.step_size) or self.step_size <= 0):
            raise ConfigError(f"step_size must be a positive number, got {self.step_size!r}")
        if self.norm == "linf" and self.eps is not None and self.eps >= 1:
            raise ConfigError(
                f"an L-infinity eps of {self.eps} covers the whole [0, 1] image box; eps is in [0, 1] pixel "
                "units, e.g. 4/255 = 0.0157"
            )

    @property
    def radius(self) -> float:
        """The ball radius actually used (``eps`` or the norm's default)."""
        return DEFAULT_EPS[self.norm] if self.eps is None else float(self.eps)

    @property
    def step(self) -> float:
        """The step length actually used (``step_size`` or ``2.5 * eps / steps``)."""
        if self.step_size is not None:
            return float(self.step_size)
        return 2.5 * self.radius / max(self.steps, 1)

    def to_dict(self) -> dict[str, object]:
        """Every setting, resolved (for tables and JSON)."""
        return {
            "norm": self.norm,
            "eps": self.radius,
            "steps": self.steps,
            "step_size": self.step,
            "random_start": self.random_start,
        }


@dataclass(frozen=True)
class AttackResult:
    """Output of :func:`pgd_feature_attack`.

    Attributes:
        images: The best perturbed images found, (B, 3, H, W), inside the ball and in [0, 1].
        distance: ``||f(images) - f(x)||_2`` per image, shape (B,).
    """

    images: torch.Tensor
    distance: torch.Tensor


@dataclass(frozen=True)
class LayerRobustness:
    """R(f) of one layer over an image set.

    Attributes:
        layer: Layer name as requested.
        r: ``adversarial_distance / pairwise_distance``.
        r_std: Standard deviation over images of the per-image ratio ``d_i / pairwise_distance``.
        r_min: Smallest per-image ratio.
        r_max: Largest per-image ratio.
        adversarial_distance: Mean over images of the largest feature change found in the ball.
        pairwise_distance: Mean feature distance over all unordered pairs of distinct images.
        per_image: Per-image ratios, in image order.
        feature_numel: Number of feature values per image (C*H*W of the layer).
        settings: The resolved PGD settings.
    """

    layer: str
    r: float
    r_std: float
    r_min: float
    r_max: float
    adversarial_distance: float
    pairwise_distance: float
    per_image: tuple[float, ...]
    feature_numel: int
    settings: PGDSettings

    def to_dict(self) -> dict[str, object]:
        """Flat dict of the values and every setting (one table row)."""
        return {
            "layer": self.layer,
            "r": self.r,
            "r_std": self.r_std,
            "r_min": self.r_min,
            "r_max": self.r_max,
            "adversarial_distance": self.adversarial_distance,
            "pairwise_distance": self.pairwise_distance,
            "n_images": len(self.per_image),
            "feature_numel": self.feature_numel,
            **self.settings.to_dict(),
        }


def feature_distance(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Per-image L2 distance between two feature batches of the same shape, shape (B,)."""
    return (a - b).flatten(1).norm(dim=1)


def _per_image_norm(t: torch.Tensor) -> torch.Tensor:
    return t.flatten(1).norm(dim=1).view(-1, *([1] * (t.dim() - 1)))


def _project(delta: torch.Tensor, norm: str, eps: float) -> torch.Tensor:
    """Project a batch of perturbations onto the ball of radius ``eps``."""
    if norm == "linf":
        return delta.clamp(-eps, eps)
    norms = _per_image_norm(delta)
    return delta * (eps / norms.clamp_min(1e-12)).clamp(max=1.0)


def _start(x: torch.Tensor, settings: PGDSettings, generator: torch.Generator | None) -> torch.Tensor:
    """Initial perturbation: uniform in the ball (random start) or a tiny random offset."""
    eps = settings.radius
    noise = torch.randn(x.shape, generator=generator, dtype=torch.float32).to(x.device, x.dtype)
    if settings.random_start:
        if settings.norm == "linf":
            u = torch.rand(x.shape, generator=generator, dtype=torch.float32).to(x.device, x.dtype)
            return (2 * u - 1) * eps
        dim = x[0].numel()
        radius = torch.rand(x.shape[0], generator=generator, dtype=torch.float32).to(x.device, x.dtype)
        radius = eps * radius.pow(1.0 / dim)
        direction = noise / _per_image_norm(noise).clamp_min(1e-12)
        return direction * radius.view(-1, *([1] * (x.dim() - 1)))
    if settings.norm == "linf":
        return noise.sign() * (START_OFFSET * eps)
    return noise / _per_image_norm(noise).clamp_min(1e-12) * (START_OFFSET * eps)


def pgd_feature_attack(
    f: FeatureFn,
    x: torch.Tensor,
    settings: PGDSettings,
    *,
    reference: torch.Tensor | None = None,
    generator: torch.Generator | None = None,
    on_step: StepCallback | None = None,
) -> AttackResult:
    """Find, per image, the point of ``B_eps(x) ∩ [0, 1]`` that moves ``f`` the most (PGD, best iterate).

    Args:
        f: Differentiable map of a batch (B, 3, H, W) to features (B, ...); images are independent (e.g. a
            frozen backbone in eval mode truncated at one layer).
        x: Clean images in [0, 1], (B, 3, H, W).
        settings: Norm, radius, steps, step size, random start.
        reference: ``f(x)`` if already computed.
        generator: Source of the start's randomness (CPU generator; results do not depend on the device).
        on_step: Called with the step index (1-based) after every PGD step, e.g. to advance a progress bar.

    Returns:
        The best images found and their feature distance to ``f(x)``.
    """
    x = x.detach()
    if reference is None:
        with torch.no_grad():
            reference = f(x)
    reference = reference.detach()
    eps = settings.radius
    if eps == 0 or settings.steps == 0:
        return AttackResult(x.clone(), torch.zeros(x.shape[0], device=x.device))
    step = settings.step
    x_adv = (x + _project(_start(x, settings, generator), settings.norm, eps)).clamp(0, 1)
    best = x_adv.clone()
    best_dist = torch.full((x.shape[0],), -1.0, device=x.device)
    for i in range(settings.steps):
        x_adv = x_adv.detach().requires_grad_(True)
        with torch.enable_grad():
            feats = f(x_adv)
            sq = (feats - reference).flatten(1).pow(2).sum(dim=1)
            (grad,) = torch.autograd.grad(sq.sum(), x_adv)
        dist = sq.detach().sqrt()
        better = dist > best_dist
        best = torch.where(better.view(-1, 1, 1, 1), x_adv.detach(), best)
        best_dist = torch.where(better, dist, best_dist)
        with torch.no_grad():
            if settings.norm == "linf":
                moved = x_adv + step * grad.sign()
            else:
                moved = x_adv + step * grad / _per_image_norm(grad).clamp_min(1e-12)
            x_adv = (x + _project(moved - x, settings.norm, eps)).clamp(0, 1)
        if on_step is not None:
            on_step(i + 1)
    with torch.no_grad():
        dist = feature_distance(f(x_adv), reference)
    better = dist > best_dist
    best = torch.where(better.view(-1, 1, 1, 1), x_adv, best)
    best_dist = torch.where(better, dist, best_dist)
    return AttackResult(best.detach(), best_dist.detach())


def mean_pairwise_distance(features: torch.Tensor) -> float:
    """Mean L2 distance over all unordered pairs of distinct rows of ``features`` (N, ...), N >= 2."""
    n = features.shape[0]
    if n < 2:
        raise ConfigError(f"the pairwise feature distance needs at least 2 images, got {n}")
    flat = features.detach().flatten(1).double()
    dists = torch.cdist(flat, flat, compute_mode="donot_use_mm_for_euclid_dist")
    iu = torch.triu_indices(n, n, offset=1)
    return float(dists[iu[0], iu[1]].mean())


def count_steps(n_images: int, n_layers: int, settings: PGDSettings, batch_size: int | None = None) -> int:
    """Number of PGD steps :func:`layer_robustness` runs (for progress bars)."""
    batches = 1 if not batch_size else math.ceil(n_images / batch_size)
    eps_zero = settings.radius == 0
    return 0 if eps_zero else n_layers * batches * settings.steps


def robustness_ratio(
    f: FeatureFn,
    images: torch.Tensor,
    settings: PGDSettings,
    *,
    name: str = "f",
    batch_size: int | None = None,
    generator: torch.Generator | None = None,
    on_step: StepCallback | None = None,
) -> LayerRobustness:
    """R(f) of one feature map over an image set.

    Args:
        f: Differentiable map of an image batch to features (batch items independent).
        images: (N, 3, H, W) in [0, 1], N >= 2, all of one size.
        settings: PGD settings.
        name: Label stored in the result.
        batch_size: Images attacked at once (``None``: all).
        generator: Randomness of the PGD start.
        on_step: Called after every PGD step (see :func:`pgd_feature_attack`).
    """
    _check_images(images)
    n = images.shape[0]
    size = batch_size or n
    refs: list[torch.Tensor] = []
    dists: list[torch.Tensor] = []
    for start in range(0, n, size):
        x = images[start : start + size]
        with torch.no_grad():
            ref = f(x).detach()
        attack = pgd_feature_attack(f, x, settings, reference=ref, generator=generator, on_step=on_step)
        refs.append(ref.flatten(1).cpu())
        dists.append(attack.distance.double().cpu())
    pairwise = mean_pairwise_distance(torch.cat(refs))
    d = torch.cat(dists)
    if pairwise == 0:
        raise ConfigError(
            f"layer {name!r} gives the same features for every image (mean pairwise distance 0), so R(f) is "
            "undefined; choose another layer or check the weights"
        )
    ratios = d / pairwise
    return LayerRobustness(
        layer=name,
        r=float(d.mean() / pairwise),
        r_std=float(ratios.std(unbiased=False)),
        r_min=float(ratios.min()),
        r_max=float(ratios.max()),
        adversarial_distance=float(d.mean()),
        pairwise_distance=pairwise,
        per_image=tuple(float(v) for v in ratios),
        feature_numel=int(refs[0].shape[1]),
        settings=settings,
    )


def layer_robustness(
    backbone: torch.nn.Module,
    images: torch.Tensor,
    layers: Sequence[str],
    settings: PGDSettings,
    *,
    batch_size: int | None = None,
    generator: torch.Generator | None = None,
    on_step: StepCallback | None = None,
) -> list[LayerRobustness]:
    """R(f) for each layer of a :class:`~paramviz.backbones.base.Backbone` (one PGD attack per layer).

    Args:
        backbone: Anything with ``validate(names)`` and ``forward(x, layers) -> {name: tensor}``; the forward
            pass stops at the requested layer.
        images: (N, 3, H, W) in [0, 1], N >= 2, on the backbone's device.
        layers: Layer names or aliases; validated before any work.
        settings: PGD settings.
        batch_size: Images attacked at once (``None``: all).
        generator: Randomness of the PGD start.
        on_step: Called after every PGD step.
    """
    layers = list(layers)
    if not layers:
        raise ConfigError("no layers given; name at least one layer (see `paramviz layers BACKBONE`)")
    validate = getattr(backbone, "validate", None)
    if validate is not None:
        validate(layers)
    _check_images(images)
    results = []
    for layer in layers:

        def f(x: torch.Tensor, layer: str = layer) -> torch.Tensor:
            return backbone(x, [layer])[layer]

        results.append(
            robustness_ratio(
                f, images, settings, name=layer, batch_size=batch_size, generator=generator, on_step=on_step
            )
        )
    return results


def _check_images(images: torch.Tensor) -> None:
    if not isinstance(images, torch.Tensor) or images.dim() != 4 or images.shape[1] != 3:
        shape = tuple(images.shape) if isinstance(images, torch.Tensor) else type(images).__name__
        raise ConfigError(f"images must be a tensor of shape (N, 3, H, W), got {shape}")
    if images.shape[0] < 2:
        raise ConfigError(
            f"R(f) needs at least 2 images (its denominator is the mean distance between images), got {images.shape[0]}"
        )
    lo, hi = float(images.min()), float(images.max())
    if lo < 0 or hi > 1:
        raise ConfigError(f"images must have values in [0, 1], got range [{lo:.3g}, {hi:.3g}]")
