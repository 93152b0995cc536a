"""Bounds on what a run may ask for: image sizes, learning rates, and the memory a run needs.

Each check raises :class:`~paramviz.errors.ConfigError` before anything is allocated, with the reason for
the bound in the message.

**Memory estimate** (:func:`estimate_render_bytes`): a *lower bound* of the bytes a render needs, in float32,
for a batch of ``B`` images of ``H x W`` pixels (``I = 4 * B * 3 * H * W`` bytes, one image batch):

- the parameterization, its gradient and the optimizer's state: ``4 I`` with Adam (value, gradient, two
  moments), ``(4 + 2 * history) I`` with L-BFGS (``history`` = 20 pairs of vectors);
- the image through the forward pass (latent, colour decorrelation, squash, transforms) and its gradient:
  ``6 I``;
- the backbone's activations up to the deepest requested layer, kept for the backward pass: the sum of the
  output sizes of the leaf modules that run up to that layer, for one image at ``H x W``, times ``B``,
  found by :meth:`~paramviz.backbones.base.Backbone.probe` on the meta device (no memory, no compute).

Real use is higher (temporaries, the allocator's slack, cuDNN workspaces), so a run refused by
:func:`check_memory` cannot fit, and one accepted may still not. Available memory is the free memory of the
CUDA device (``torch.cuda.mem_get_info``) or, on the CPU, ``MemAvailable`` from ``/proc/meminfo`` (else the
total physical memory).
"""

from __future__ import annotations

import math
import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from paramviz.errors import ConfigError

MAX_IMAGE_SIDE = 4096
"""Largest image side in pixels. The networks here were trained on ~224 px images; at 4096 px the first block of
VGG-19 alone holds 4096² x 64 x 4 B = 4.3 GB of activations per image, and a side of 100000 px would need 120 GB
for the pixels alone."""

MAX_LR = 1000.0
"""Largest learning rate. Adam moves every parameter by about ``lr`` per step whatever the gradient's scale, and
image parameters matter only within about ±10 (the sigmoid squash saturates there, the clamp cuts at 0 and 1),
so larger rates cannot help; near 1e38 they overflow float32 inside the optimizer."""

LBFGS_HISTORY = 20
"""History size of the L-BFGS optimizer (see :data:`paramviz.render.OPTIMIZERS`)."""

_FLOAT_BYTES = 4
_TYPICAL_LR = "typical values are 0.05 (Adam) and 1 (L-BFGS)"
_IMAGE_COPIES = 6


def check_image_side(value: object, name: str = "size") -> int:
    """Return ``value`` if it is a whole number of pixels from 1 to :data:`MAX_IMAGE_SIDE`.

    Raises:
        ConfigError: Not a positive whole number, or larger than :data:`MAX_IMAGE_SIDE` (with the reason).
    """
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ConfigError(f"{name} must be a positive integer number of pixels, got {value!r}")
    if value > MAX_IMAGE_SIDE:
        raise ConfigError(
            f"{name} {value} is larger than {MAX_IMAGE_SIDE} pixels per side; the networks see ~224 px images and "
            f"memory grows with the square of the side ({value} px: {_gb(value * value * 3 * _FLOAT_BYTES)} for "
            f"one image's pixels alone, many times that for the activations); use --size {MAX_IMAGE_SIDE} or less"
        )
    return value


ImageSize = int | tuple[int, int]
"""An image size as configs hold it: ``N`` (one side; what it means is the task's) or ``(H, W)``."""

_SIZE_FORMS = "N or HxW (height x width), e.g. 128 or 128x192"


def parse_size(text: str, name: str = "--size") -> ImageSize:
    """Parse ``"N"`` or ``"HxW"`` (height x width) into ``N`` or ``(H, W)``, each side checked.

    Args:
        text: The size as typed.
        name: What it is, for messages (``""``: the value alone, as in click's ``Invalid value for '--size'``).

    Raises:
        ConfigError: Not of either form (the message names the value and the forms), or a side out of
            1..:data:`MAX_IMAGE_SIDE` (:func:`check_image_side`).
    """
    what = f"{name} {text!r}" if name else repr(text)
    parts = str(text).strip().lower().split("x")
    if len(parts) not in (1, 2) or not all(p.strip().isdigit() for p in parts):
        raise ConfigError(f"{what} is not a size; expected {_SIZE_FORMS}")
    sides = [int(p) for p in parts]
    if any(s < 1 for s in sides):
        raise ConfigError(f"{what} has a side of 0 pixels; sides must be 1 or more ({_SIZE_FORMS})")
    for side in sides:
        check_image_side(side, f"{what}: side" if len(sides) == 2 else name or "size")
    return sides[0] if len(sides) == 1 else (sides[0], sides[1])


def check_image_size(value: object, name: str = "size", minimum: int = 1) -> ImageSize:
    """Return ``value`` as ``N`` or ``(H, W)`` if each side is a whole number from ``minimum`` to the bound.

    A 2-list (as TOML gives ``[H, W]``) becomes a tuple.

    Raises:
        ConfigError: Neither one whole number nor two, a side under ``minimum``, or over
            :data:`MAX_IMAGE_SIDE` (with the reason).
    """
    sides = list(value) if isinstance(value, (list, tuple)) else [value]
    if isinstance(value, (list, tuple)) and len(sides) != 2:
        raise ConfigError(f"{name} must be {_SIZE_FORMS} (in TOML: 128 or [128, 192]), got {value!r}")
    for side in sides:
        if isinstance(side, bool) or not isinstance(side, int):
            raise ConfigError(f"{name} must be {_SIZE_FORMS} (in TOML: 128 or [128, 192]), got {value!r}")
        if side < minimum:
            raise ConfigError(f"{name} must be at least {minimum} pixels per side, got {size_text(value)}")
        check_image_side(side, name)
    return sides[0] if len(sides) == 1 else (sides[0], sides[1])


def size_hw(size: ImageSize) -> tuple[int, int]:
    """``(H, W)`` of a size: ``N`` is the square ``(N, N)``."""
    return (size, size) if isinstance(size, int) else (int(size[0]), int(size[1]))


def size_text(size: object) -> str:
    """A size as typed on the command line: ``"128"`` or ``"128x192"`` (height x width)."""
    if isinstance(size, (list, tuple)) and len(size) == 2:
        return f"{size[0]}x{size[1]}"
    return str(size)


def check_lr(value: object, name: str = "lr") -> float:
    """Return ``value`` if it is a finite number in (0, :data:`MAX_LR`].

    Raises:
        ConfigError: Not a number, not finite, not positive, or above :data:`MAX_LR` (with the reason).
    """
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ConfigError(f"{name} must be a number, got {value!r}")
    if not math.isfinite(value):
        raise ConfigError(f"{name} must be a finite number, got {value!r}; {_TYPICAL_LR}")
    if value <= 0:
        raise ConfigError(f"{name} must be positive, got {value!r}; {_TYPICAL_LR}")
    if value > MAX_LR:
        raise ConfigError(
            f"{name} {value:g} is larger than {MAX_LR:g}: Adam moves each parameter by about lr per step and image "
            f"parameters only matter within about ±10, so a larger rate cannot help and overflows; {_TYPICAL_LR}"
        )
    return float(value)


@dataclass(frozen=True)
class MemoryEstimate:
    """A lower bound of the memory a run needs, by part (bytes).

    Attributes:
        image: Parameterization, optimizer state and the image through the forward pass.
        activations: Backbone activations kept for the backward pass (0 if they cannot be probed).
        what: What is being run, for messages (``"a batch of 4 images of 512x512 px"``).
    """

    image: int
    activations: int
    what: str

    @property
    def total(self) -> int:
        """Sum of the parts."""
        return self.image + self.activations


def activation_bytes(backbone: nn.Module, layers: Iterable[str], height: int, width: int) -> int:
    """Bytes of one image's leaf-module activations up to the deepest of ``layers`` at ``height x width``.

    Normalizations that the backbone folds into their convolutions (``Backbone.folded_norms``) allocate nothing
    and are not counted. Returns 0 when ``backbone`` cannot be probed (not a
    :class:`~paramviz.backbones.base.Backbone`, or its network does not run on the meta device).
    """
    probe = getattr(backbone, "probe", None)
    resolve = getattr(backbone, "resolve", None)
    layers = list(layers)
    if probe is None or resolve is None or not layers:
        return 0
    info = probe((height, width))
    if info is None:
        return 0
    paths = [resolve(layer) for layer in layers]
    deepest = max(info[p].order for p in paths if p in info)
    folded = getattr(backbone, "folded_norms", lambda size, layers: set())((height, width), layers)
    numel = sum(
        math.prod(i.shape)
        for i in info.values()
        if i.leaf and i.ran and i.shape and 0 <= i.order <= deepest and i.path not in folded
    )
    return numel * _FLOAT_BYTES


def estimate_render_bytes(
    parts: Sequence[tuple[nn.Module, Iterable[str]]],
    batch: int,
    height: int,
    width: int,
    *,
    optimizer: str = "adam",
) -> MemoryEstimate:
    """Lower bound of a render's memory (see the module docstring for the formula).

    Args:
        parts: ``(backbone, layers)`` pairs: each backbone runs up to the deepest of its layers every step.
        batch: Images rendered at once.
        height: Image height in pixels.
        width: Image width in pixels.
        optimizer: ``"adam"`` or ``"lbfgs"`` (its history is kept in memory).
    """
    image = batch * 3 * height * width * _FLOAT_BYTES
    states = 4 + (2 * LBFGS_HISTORY if optimizer == "lbfgs" else 0)
    activations = sum(activation_bytes(b, layers, height, width) for b, layers in parts) * batch
    what = f"{'a batch of ' + str(batch) + ' images' if batch > 1 else 'an image'} of {width}x{height} px"
    return MemoryEstimate((states + _IMAGE_COPIES) * image, activations, what)


def available_memory(device: torch.device | str) -> int | None:
    """Free memory of ``device`` in bytes: CUDA's free memory, or the CPU's available RAM; ``None`` if unknown."""
    device = torch.device(device)
    if device.type == "cuda":
        try:
            return int(torch.cuda.mem_get_info(device)[0])
        except (RuntimeError, AssertionError):  # pragma: no cover - no usable CUDA device
            return None
    if device.type != "cpu":
        return None
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    try:
        return int(os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE"))
    except (AttributeError, ValueError, OSError):  # pragma: no cover - not POSIX
        return None


def check_memory(estimate: MemoryEstimate, device: torch.device | str, hint: str = "") -> None:
    """Refuse a run whose lower-bound memory estimate exceeds the memory available on ``device``.

    Args:
        estimate: From :func:`estimate_render_bytes`.
        device: Where the run would happen.
        hint: How to make the run smaller (default: a smaller --size or --batch).

    Raises:
        ConfigError: The estimate exceeds the available memory; the message gives both numbers.
    """
    free = available_memory(device)
    if free is None or estimate.total <= free:
        return
    where = "free on the GPU" if torch.device(device).type == "cuda" else "of RAM available"
    raise ConfigError(
        f"{estimate.what} needs at least {_gb(estimate.total)} ({_gb(estimate.image)} for the image and optimizer, "
        f"{_gb(estimate.activations)} for the network's activations) but only {_gb(free)} is {where} on "
        f"{torch.device(device)}; {hint or 'use a smaller --size or --batch'}"
    )


def _gb(n: int) -> str:
    return f"{n / 1e9:.1f} GB" if n >= 1e8 else f"{n / 1e6:.1f} MB"
