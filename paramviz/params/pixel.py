"""The naive pixel parameterization: one learnable value per pixel and channel."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from paramviz.params.base import ImageParam, check_std, randn
from paramviz.params.color import Squash


class PixelParam(ImageParam):
    """RGB pixels (Lucid's ``pixel_image``): one learnable value per pixel and channel.

    The learnable tensor ``pixels`` (B, C, H, W) is the latent image: with ``decorrelate=True`` it lives in the
    decorrelated colour space; with ``decorrelate=False`` and the sigmoid squash, pixel = sigmoid(value).

    Args:
        size: ``(H, W)`` (an int means a square).
        batch: Number of images.
        decorrelate: Apply Lucid's colour decorrelation.
        squash: ``sigmoid`` or ``clamp``.
        generator: Source of the initial noise (torch's global RNG if ``None``).
        alpha: Add a transparency channel (a fourth latent channel).
        sd: Standard deviation of the initial N(0, sd^2) noise (Lucid: 0.01).
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
        sd: float = 0.01,
    ) -> None:
        super().__init__(size, batch, decorrelate=decorrelate, squash=squash, alpha=alpha)
        self.sd = check_std(sd)
        self.pixels = nn.Parameter(randn(self.shape, self.sd, generator))

    def latent(self) -> torch.Tensor:
        """The learnable pixels themselves (before colour decorrelation and squash)."""
        return self.pixels

    def _load_latent(self, t: torch.Tensor) -> None:
        self.pixels.copy_(t)
