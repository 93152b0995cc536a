"""Lucid's Laplacian pyramid parameterization (``laplacian_pyramid_image``) with captum's per-level scales.

The latent image is a sum of ``levels`` learnable tensors of decreasing resolution, each upsampled to the
image size::

    size_n = (ceil(H / 2**n), ceil(W / 2**n))                          n = 0 .. levels - 1
    scale_n = (2**n / 2**(levels - 1)) ** power                         captum's LaplacianImage, power 0.1
    t = sum_n scale_n * upsample_bilinear(p_n, (H, W))                  p_n: (B, C, size_n), N(0, sd^2)

A coarse level moves many pixels together, so Adam's per-parameter steps change low frequencies faster than
a pixel parameterization does; the finest level keeps every pixel reachable.

Anchors and deviations:

- Lucid (``lucid/optvis/param/spatial.py``): ``n_levels=4``, ``sd=0.01``, levels ``w // 2**n`` and a bilinear
  resize; we round the level sizes **up** (``ceil``) so any ``H x W`` works (Lucid's floor gives empty levels
  below ``2**(n_levels-1)`` pixels) and resize with PyTorch's half-pixel-centred bilinear interpolation
  (``align_corners=False``).
- captum (``LaplacianImage``): levels 1, 2, 4, ... 32 scaled by ``scale**0.1 / 32**0.1`` and *nearest*
  upsampling; captum multiplies the initial values by that factor, we multiply each level's contribution in
  :meth:`LaplacianParam.latent` (the coarsest level has factor 1), so the factor also sets each level's share
  of an Adam step; the upsampling is Lucid's bilinear one (nearest leaves blocks).

:meth:`LaplacianParam.from_image` is an **exact** inverse: coarse to fine, each level takes the antialiased
downsampled residual and the finest (full-resolution) level takes what is left, so ``latent()`` returns the
image up to float rounding while the coarse levels hold its low frequencies.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from paramviz.errors import ConfigError
from paramviz.params.base import ImageParam, check_std, randn
from paramviz.params.color import Squash

#: Largest number of pyramid levels accepted (2**15 px coarse cells; more would only add 1x1 levels).
MAX_LEVELS = 16


def check_levels(levels: int) -> int:
    """Validate the number of pyramid levels (a whole number from 1 to :data:`MAX_LEVELS`)."""
    if isinstance(levels, bool) or not isinstance(levels, int) or not 1 <= levels <= MAX_LEVELS:
        raise ConfigError(
            f"levels must be a whole number from 1 to {MAX_LEVELS}, got {levels!r}; Lucid uses 4 (captum 6)"
        )
    return levels


def check_power(power: float) -> float:
    """Validate captum's level-scale exponent (a finite number)."""
    if isinstance(power, bool) or not isinstance(power, (int, float)) or not math.isfinite(power):
        raise ConfigError(f"the Laplacian level power must be a finite number, got {power!r}; captum uses 0.1")
    return float(power)


def level_sizes(height: int, width: int, levels: int) -> list[tuple[int, int]]:
    """``(ceil(H / 2**n), ceil(W / 2**n))`` for ``n = 0 .. levels - 1``."""
    return [(-(-height // 2**n), -(-width // 2**n)) for n in range(check_levels(levels))]


def level_scales(levels: int, power: float = 0.1) -> list[float]:
    """The captum factors ``(2**n / 2**(levels - 1)) ** power``: 1 for the coarsest level, less for finer ones."""
    top = 2 ** (check_levels(levels) - 1)
    return [(2**n / top) ** check_power(power) for n in range(levels)]


def _resize(t: torch.Tensor, size: tuple[int, int], antialias: bool = False) -> torch.Tensor:
    if tuple(t.shape[-2:]) == size:
        return t
    return F.interpolate(t, size=size, mode="bilinear", align_corners=False, antialias=antialias)


class LaplacianParam(ImageParam):
    """A sum of upsampled low-resolution tensors (Lucid's ``laplacian_pyramid_image``).

    Args:
        size: ``(H, W)`` (an int means a square); any size, no divisibility needed.
        batch: Number of images.
        decorrelate: Apply Lucid's colour decorrelation.
        squash: ``sigmoid`` or ``clamp``.
        generator: Source of the initial noise (torch's global RNG if ``None``).
        alpha: Add a transparency channel (a fourth latent channel).
        levels: Number of pyramid levels (Lucid: 4); level ``n`` has ``ceil(H / 2**n) x ceil(W / 2**n)`` values.
        sd: Standard deviation of every level's initial N(0, sd^2) noise (Lucid: 0.01).
        power: Exponent of captum's level factors ``(2**n / 2**(levels-1)) ** power`` (captum: 0.1; 0 gives
            Lucid's plain sum).
    """

    def __init__(
        self,
        size: int | Sequence[int],
        batch: int = 1,
        *,
        decorrelate: bool = True,
        squash: str | Squash = "sigmoid",
        generator: torch.Generator | None = None,
        alpha: bool = False,
        levels: int = 4,
        sd: float = 0.01,
        power: float = 0.1,
    ) -> None:
        super().__init__(size, batch, decorrelate=decorrelate, squash=squash, alpha=alpha)
        self.levels = check_levels(levels)
        self.sd = check_std(sd)
        self.power = check_power(power)
        self.level_sizes = level_sizes(self.height, self.width, self.levels)
        self.scales = level_scales(self.levels, self.power)
        self.pyramid = nn.ParameterList(
            nn.Parameter(randn((self.batch, self.channels, h, w), self.sd, generator)) for h, w in self.level_sizes
        )

    def contributions(self) -> list[torch.Tensor]:
        """Each level's share of the latent, ``scale_n * upsample(p_n)``, (B, C, H, W) each, finest first."""
        return [scale * _resize(p, self.size) for scale, p in zip(self.scales, self.pyramid, strict=True)]

    def latent(self) -> torch.Tensor:
        """The sum of the upsampled levels, shape (B, C, H, W)."""
        out = self.scales[0] * self.pyramid[0]
        for scale, p in zip(self.scales[1:], self.pyramid[1:], strict=True):
            out = out + scale * _resize(p, self.size)
        return out

    def _load_latent(self, t: torch.Tensor) -> None:
        # Coarse to fine in float64: each level takes the downsampled residual; the full-resolution level 0
        # takes the rest, so the sum is t (exactly, up to the float rounding of the stored levels).
        residual = t.double()
        for n in range(self.levels - 1, 0, -1):
            level = _resize(residual, self.level_sizes[n], antialias=True) / self.scales[n]
            self.pyramid[n].copy_(level)
            stored = self.pyramid[n].double()
            residual = residual - self.scales[n] * _resize(stored, self.size)
        self.pyramid[0].copy_(residual / self.scales[0])

    def extra_repr(self) -> str:
        return f"{super().extra_repr()}, levels={self.levels}, power={self.power}"
