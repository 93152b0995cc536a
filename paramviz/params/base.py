"""The :class:`ImageParam` base class and the ``PARAMS`` registry of parameterizations."""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import nn

from paramviz.errors import ConfigError, ImageError
from paramviz.params.color import Squash, from_valid_rgb, get_squash, to_valid_rgb
from paramviz.registry import Registry

#: Registry of parameterization classes, each constructed as
#: ``cls(size=(H, W), batch=1, *, decorrelate=True, squash="sigmoid", generator=None, **kwargs)``.
PARAMS: Registry[type[ImageParam]] = Registry("parameterization")


def check_size(size: int | Sequence[int]) -> tuple[int, int]:
    """Validate an image size given as ``(H, W)`` or a single int for a square; return ``(H, W)``."""
    if isinstance(size, int) and not isinstance(size, bool):
        size = (size, size)
    ok = (
        isinstance(size, Sequence)
        and not isinstance(size, str)
        and len(size) == 2
        and all(isinstance(s, int) and not isinstance(s, bool) and s > 0 for s in size)
    )
    if not ok:
        raise ConfigError(
            f"image size must be two positive integers (height, width), got {size!r}; e.g. size=(128, 128)"
        )
    return int(size[0]), int(size[1])


def check_batch(batch: int) -> int:
    """Validate a batch size (a positive int)."""
    if not isinstance(batch, int) or isinstance(batch, bool) or batch < 1:
        raise ConfigError(f"batch must be a positive integer, got {batch!r}; e.g. batch=1")
    return batch


def check_std(sd: float) -> float:
    """Validate the standard deviation of the initial noise (finite, >= 0)."""
    if isinstance(sd, bool) or not isinstance(sd, (int, float)) or not math.isfinite(sd) or sd < 0:
        raise ConfigError(f"initial noise sd must be a finite number >= 0, got {sd!r}; Lucid uses sd=0.01")
    return float(sd)


def randn(shape: Sequence[int], sd: float, generator: torch.Generator | None = None) -> torch.Tensor:
    """``N(0, sd^2)`` noise of ``shape`` from ``generator`` (or torch's global RNG), on the generator's device."""
    device = generator.device if generator is not None else None
    return torch.randn(tuple(shape), generator=generator, device=device) * sd


class ImageParam(nn.Module):
    """Base class of image parameterizations: ``forward() -> (B, 3, H, W)`` RGB in [0, 1].

    Subclasses hold their learnable tensors as ``nn.Parameter`` s and implement :meth:`latent` (the
    unconstrained image before colour decorrelation and squash) and :meth:`_load_latent` (its inverse, used
    by :meth:`from_image`). Every image of the batch has its own parameters, so images never interact.

    Args:
        size: ``(H, W)`` of the image (an int means a square).
        batch: Number of images.
        decorrelate: Apply Lucid's colour decorrelation to the latent image.
        squash: Name of the squash into [0, 1] (see ``SQUASHES``: ``sigmoid`` or ``clamp``).
    """

    def __init__(
        self,
        size: int | Sequence[int],
        batch: int = 1,
        *,
        decorrelate: bool = True,
        squash: str | Squash = "sigmoid",
    ) -> None:
        super().__init__()
        self.height, self.width = check_size(size)
        self.batch = check_batch(batch)
        self.decorrelate = bool(decorrelate)
        self.squash = get_squash(squash)

    @property
    def size(self) -> tuple[int, int]:
        """``(H, W)`` of the images."""
        return self.height, self.width

    @property
    def shape(self) -> tuple[int, int, int, int]:
        """``(B, 3, H, W)`` of :meth:`forward`'s output."""
        return self.batch, 3, self.height, self.width

    def latent(self) -> torch.Tensor:
        """The unconstrained image (B, 3, H, W) before colour decorrelation and squash."""
        raise NotImplementedError

    def _load_latent(self, t: torch.Tensor) -> None:
        """Set the parameters so that :meth:`latent` returns ``t`` (called under ``no_grad``)."""
        raise NotImplementedError

    def forward(self) -> torch.Tensor:
        """The images, shape (B, 3, H, W), values in [0, 1]."""
        return to_valid_rgb(self.latent(), self.decorrelate, self.squash)

    @torch.no_grad()
    def from_image(self, img: torch.Tensor) -> ImageParam:
        """Set the parameters so that :meth:`forward` returns ``img``; return ``self``.

        Args:
            img: Float tensor in [0, 1] of shape (B, 3, H, W), or (1, 3, H, W) / (3, H, W) to use the same image
                for every image of the batch. With the sigmoid squash, values are clipped to
                [1e-6, 1 - 1e-6] first (0 and 1 themselves cannot be reached).
        """
        img = self._check_image(img)
        t = from_valid_rgb(img, self.decorrelate, self.squash)
        self._load_latent(t.expand(self.batch, -1, -1, -1).contiguous())
        return self

    def _reference(self) -> torch.Tensor:
        """A tensor with the module's dtype and device (its first parameter or buffer)."""
        for tensor in self.parameters():
            return tensor
        for tensor in self.buffers():
            return tensor
        return torch.empty(0)

    def _check_image(self, img: torch.Tensor) -> torch.Tensor:
        expected = f"(1 or {self.batch}, 3, {self.height}, {self.width})"
        if not isinstance(img, torch.Tensor):
            raise ImageError(f"expected an image tensor of shape {expected}, got {type(img).__name__}")
        if not img.is_floating_point():
            raise ImageError(
                f"expected a float image tensor with values in [0, 1], got dtype {img.dtype}; "
                "for 8-bit images use img.float() / 255"
            )
        if img.dim() == 3:
            img = img.unsqueeze(0)
        if img.dim() != 4 or img.shape[0] not in (1, self.batch) or img.shape[1] != 3:
            raise ImageError(f"expected an image tensor of shape {expected}, got {tuple(img.shape)}")
        if tuple(img.shape[-2:]) != (self.height, self.width):
            raise ImageError(
                f"expected an image tensor of shape {expected}, got {tuple(img.shape)}; resize the image to "
                f"{self.height}x{self.width} (H x W) first"
            )
        if not bool(torch.isfinite(img).all()):
            raise ImageError("the image tensor contains NaN or infinite values")
        lo, hi = float(img.min()), float(img.max())
        if lo < 0 or hi > 1:
            raise ImageError(
                f"expected image values in [0, 1], got values in [{lo:.4g}, {hi:.4g}]; "
                "for 8-bit images use img.float() / 255"
            )
        ref = self._reference()
        return img.to(device=ref.device, dtype=ref.dtype)

    def extra_repr(self) -> str:
        return (
            f"batch={self.batch}, size=({self.height}, {self.width}), decorrelate={self.decorrelate}, "
            f"squash={self.squash.name!r}"
        )
