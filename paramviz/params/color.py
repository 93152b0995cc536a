"""Colour decorrelation (Lucid's ImageNet colour matrix) and the squashes that map values into [0, 1].

The parameterizations produce an unconstrained "latent" image ``t`` of shape (B, 3, H, W). It becomes a valid
RGB image in two steps, exactly as in Lucid's ``to_valid_rgb``:

1. colour decorrelation (optional): every pixel is multiplied by the square root of ImageNet's colour
   correlation matrix, normalized by its largest column norm: ``rgb = t @ C_norm.T``;
2. a squash into [0, 1]: ``sigmoid``, or ``clamp`` (``clamp(0, 1)``; with decorrelation Lucid first adds the
   ImageNet colour mean ``[0.48, 0.46, 0.41]`` so that ``t = 0`` is a mid-tone, and so do we).

Every step has an exact inverse (:func:`from_valid_rgb`), used to start an optimization from an image.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass

import torch

from paramviz.errors import ImageError
from paramviz.registry import Registry

#: Square root of ImageNet's colour correlation matrix (from Lucid), rows = RGB output channels.
COLOR_CORRELATION_SVD_SQRT: tuple[tuple[float, float, float], ...] = (
    (0.26, 0.09, 0.02),
    (0.27, 0.00, -0.05),
    (0.27, -0.09, 0.03),
)
#: ImageNet colour mean Lucid adds to decorrelated colours before clipping (not before a sigmoid).
COLOR_MEAN: tuple[float, float, float] = (0.48, 0.46, 0.41)

_C = torch.tensor(COLOR_CORRELATION_SVD_SQRT, dtype=torch.float64)
#: Largest column norm of the matrix (0.4619524...), computed rather than hard-coded.
MAX_COLUMN_NORM: float = float(torch.linalg.vector_norm(_C, dim=0).max())
#: The normalized matrix ``C / MAX_COLUMN_NORM`` (float64); its largest column norm is 1.
COLOR_MATRIX: torch.Tensor = _C / MAX_COLUMN_NORM
#: Exact inverse of :data:`COLOR_MATRIX` (float64).
COLOR_MATRIX_INV: torch.Tensor = torch.linalg.inv(COLOR_MATRIX)

#: Default clipping for the logit: inputs are clamped to [eps, 1 - eps] before the inverse sigmoid.
LOGIT_EPS = 1e-6


@functools.lru_cache(maxsize=32)
def _constant(which: str, device: torch.device, dtype: torch.dtype) -> torch.Tensor:
    table = {"matrix": COLOR_MATRIX, "inverse": COLOR_MATRIX_INV}
    return table[which].to(device=device, dtype=dtype)


@functools.lru_cache(maxsize=32)
def _offset(values: tuple[float, ...], device: torch.device, dtype: torch.dtype) -> torch.Tensor:
    return torch.tensor(values, device=device, dtype=dtype).view(-1, 1, 1)


def _check_channels(t: torch.Tensor) -> None:
    if t.dim() < 3 or t.shape[-3] != 3:
        raise ImageError(f"expected a tensor of shape (..., 3, H, W) with 3 colour channels, got {tuple(t.shape)}")


def decorrelate_colors(t: torch.Tensor) -> torch.Tensor:
    """Map decorrelated colours to RGB: ``rgb[..., i, y, x] = sum_j C_norm[i, j] * t[..., j, y, x]``.

    Args:
        t: Tensor of shape (..., 3, H, W).
    """
    _check_channels(t)
    return _mix_channels(_constant("matrix", t.device, t.dtype), t)


def correlate_colors(rgb: torch.Tensor) -> torch.Tensor:
    """Exact inverse of :func:`decorrelate_colors`.

    Args:
        rgb: Tensor of shape (..., 3, H, W).
    """
    _check_channels(rgb)
    return _mix_channels(_constant("inverse", rgb.device, rgb.dtype), rgb)


def _mix_channels(matrix: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
    """``out[..., i, y, x] = sum_j matrix[i, j] * t[..., j, y, x]``, as one matrix product over the pixels.

    Einsum's permutes and copies cost about twice as much at 224 px, forward and backward.
    """
    return (matrix @ t.flatten(-2)).view(t.shape)


class _ClampToUnit(torch.autograd.Function):
    """``clamp(x, 0, 1)`` whose gradient never gets stuck.

    Inside [0, 1] the gradient passes unchanged. Outside, it passes only when a descent step would move the
    value back towards [0, 1] (so a saturated pixel can recover); a gradient pushing it further out is zeroed.
    """

    @staticmethod
    def forward(ctx, x: torch.Tensor) -> torch.Tensor:
        ctx.save_for_backward(x)
        return x.clamp(0.0, 1.0)

    @staticmethod
    def backward(ctx, grad: torch.Tensor) -> torch.Tensor:
        (x,) = ctx.saved_tensors
        outward = ((x > 1) & (grad < 0)) | ((x < 0) & (grad > 0))
        return grad.masked_fill(outward, 0.0)


def clamp_unit(x: torch.Tensor) -> torch.Tensor:
    """``clamp(x, 0, 1)`` with a straight gradient inside and an inward-only gradient outside."""
    return _ClampToUnit.apply(x)


def logit(x: torch.Tensor, eps: float = LOGIT_EPS) -> torch.Tensor:
    """Inverse sigmoid with clipping of ``x`` to ``[eps, 1 - eps]`` (so 0 and 1 map to finite values)."""
    return torch.logit(x, eps=eps)


def _identity(x: torch.Tensor) -> torch.Tensor:
    return x


@dataclass(frozen=True)
class Squash:
    """An elementwise map into [0, 1] with its inverse.

    Attributes:
        name: Registry name.
        fn: The squash, applied to every value.
        inverse: Its inverse on [0, 1] (exact inside the range).
        decorrelated_offset: Added to the colours after decorrelation and before ``fn`` (Lucid adds the
            ImageNet colour mean before clipping), or ``None``.
    """

    name: str
    fn: Callable[[torch.Tensor], torch.Tensor]
    inverse: Callable[[torch.Tensor], torch.Tensor]
    decorrelated_offset: tuple[float, float, float] | None = None

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        return self.fn(x)


#: Registry of squashes (``sigmoid``, ``clamp``).
SQUASHES: Registry[Squash] = Registry("squash")
SQUASHES.register(
    "sigmoid",
    Squash("sigmoid", torch.sigmoid, logit),
    description="sigmoid (Lucid's default); inverse is the logit clipped at 1e-6",
)
SQUASHES.register(
    "clamp",
    Squash("clamp", clamp_unit, _identity, COLOR_MEAN),
    description="clamp(0, 1) with a straight gradient inside (with decorrelation, after adding the ImageNet "
    "colour mean, as Lucid)",
)
SQUASHES.hint = f"choices: {', '.join(SQUASHES.names())}"


def get_squash(squash: str | Squash) -> Squash:
    """Return a :class:`Squash` given its registry name (or the squash itself)."""
    return squash if isinstance(squash, Squash) else SQUASHES.get(squash)


def to_valid_rgb(t: torch.Tensor, decorrelate: bool = True, squash: str | Squash = "sigmoid") -> torch.Tensor:
    """Latent image -> RGB in [0, 1]: optional colour decorrelation, then the squash (Lucid's ``to_valid_rgb``).

    Args:
        t: Latent image, shape (..., 3, H, W).
        decorrelate: Interpret ``t`` in the decorrelated colour space.
        squash: Squash name or object.
    """
    sq = get_squash(squash)
    if decorrelate:
        t = decorrelate_colors(t)
        if sq.decorrelated_offset is not None:
            t = t + _offset(sq.decorrelated_offset, t.device, t.dtype)
    return sq(t)


def from_valid_rgb(rgb: torch.Tensor, decorrelate: bool = True, squash: str | Squash = "sigmoid") -> torch.Tensor:
    """Exact inverse of :func:`to_valid_rgb` (for values strictly inside the squash's range).

    Args:
        rgb: Image in [0, 1], shape (..., 3, H, W).
        decorrelate: Whether the latent is in the decorrelated colour space.
        squash: Squash name or object.
    """
    sq = get_squash(squash)
    t = sq.inverse(rgb)
    if decorrelate:
        if sq.decorrelated_offset is not None:
            t = t - _offset(sq.decorrelated_offset, t.device, t.dtype)
        t = correlate_colors(t)
    return t
