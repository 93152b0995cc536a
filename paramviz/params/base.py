"""The :class:`ImageParam` base class and the ``PARAMS`` registry of parameterizations."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import ClassVar

import torch
from torch import nn

from paramviz.errors import ConfigError, ImageError
from paramviz.params.color import Squash, from_valid_rgb, get_squash, logit, to_valid_rgb
from paramviz.registry import Registry

#: Registry of parameterization classes, each constructed as
#: ``cls(size=(H, W), batch=1, *, decorrelate=True, squash="sigmoid", generator=None, alpha=False, **kwargs)``.
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
    """Base class of image parameterizations: ``forward() -> (B, 3, H, W)`` RGB in [0, 1] (RGBA with ``alpha``).

    Subclasses hold their learnable tensors as ``nn.Parameter`` s and implement :meth:`latent` (the
    unconstrained image before colour decorrelation and squash, with :attr:`channels` channels) and
    :meth:`_load_latent` (its inverse, used by :meth:`from_image`). Every image of the batch has its own
    parameters (the first dimension of every parameter is the batch), so images never interact.

    With ``alpha=True`` the latent has a fourth channel; :meth:`forward` returns (B, 4, H, W): the RGB image
    as without alpha, and ``sigmoid(latent[:, 3])`` as the alpha channel (Lucid's ``image(..., alpha=True)``;
    the alpha channel is neither decorrelated nor clamped).

    Class attributes (the protocol every parameterization declares):
        default_optimizer: Optimizer (``paramviz.render.OPTIMIZERS``) a run uses when none is given.
        default_lr: Learning rate a run uses when none is given.
        inverse: What :meth:`from_image` does: ``"exact"`` (``forward()`` then returns the image),
            ``"approximate"`` (the closest image the parameterization can represent, see the class) or
            ``None`` (not supported: it raises :class:`~paramviz.errors.ConfigError`).
        fixed_scale: The latent's scale does not depend on the parameters (MACO optimizes only phases), so
            large parameters do not saturate the squash.
        resolution_free: :meth:`render` draws the same image at any size from the same parameters (CPPN).

    Args:
        size: ``(H, W)`` of the image (an int means a square).
        batch: Number of images.
        decorrelate: Apply Lucid's colour decorrelation to the latent image.
        squash: Name of the squash into [0, 1] (see ``SQUASHES``: ``sigmoid`` or ``clamp``).
        alpha: Add a transparency channel.
    """

    default_optimizer: ClassVar[str] = "adam"
    default_lr: ClassVar[float] = 0.05
    inverse: ClassVar[str | None] = "exact"
    fixed_scale: ClassVar[bool] = False
    resolution_free: ClassVar[bool] = False

    def __init__(
        self,
        size: int | Sequence[int],
        batch: int = 1,
        *,
        decorrelate: bool = True,
        squash: str | Squash = "sigmoid",
        alpha: bool = False,
    ) -> None:
        super().__init__()
        self.height, self.width = check_size(size)
        self.batch = check_batch(batch)
        self.decorrelate = bool(decorrelate)
        self.squash = get_squash(squash)
        if not isinstance(alpha, bool):
            raise ConfigError(f"alpha must be true or false, got {alpha!r}")
        self.alpha = alpha

    @property
    def size(self) -> tuple[int, int]:
        """``(H, W)`` of the images."""
        return self.height, self.width

    @property
    def channels(self) -> int:
        """Channels of the latent and of :meth:`forward`'s output: 3, or 4 with ``alpha``."""
        return 4 if self.alpha else 3

    @property
    def shape(self) -> tuple[int, int, int, int]:
        """``(B, C, H, W)`` of :meth:`forward`'s output (C = :attr:`channels`)."""
        return self.batch, self.channels, self.height, self.width

    def latent(self) -> torch.Tensor:
        """The unconstrained image (B, C, H, W) before colour decorrelation and squash."""
        raise NotImplementedError

    def _load_latent(self, t: torch.Tensor) -> None:
        """Set the parameters so that :meth:`latent` returns ``t`` (called under ``no_grad``)."""
        raise NotImplementedError

    def forward(self) -> torch.Tensor:
        """The images, shape (B, 3, H, W) (or (B, 4, H, W) with ``alpha``), values in [0, 1]."""
        return self.to_image(self.latent())

    def to_image(self, t: torch.Tensor) -> torch.Tensor:
        """Latent (B, C, H, W) -> image: colour decorrelation and squash, then the alpha channel's sigmoid."""
        if not self.alpha:
            return to_valid_rgb(t, self.decorrelate, self.squash)
        rgb = to_valid_rgb(t[:, :3], self.decorrelate, self.squash)
        return torch.cat([rgb, torch.sigmoid(t[:, 3:])], dim=1)

    def render(self, size: int | Sequence[int]) -> torch.Tensor:
        """The images drawn at another ``size`` from the same parameters (only ``resolution_free`` ones).

        Raises:
            ConfigError: The parameterization is tied to its pixel grid.
        """
        raise ConfigError(
            f"{type(self).__name__} cannot render at another size: its parameters are tied to its "
            f"{self.height}x{self.width} pixel grid; use a resolution-free parameterization (cppn)"
        )

    @torch.no_grad()
    def from_image(self, img: torch.Tensor) -> ImageParam:
        """Set the parameters so that :meth:`forward` returns ``img``; return ``self``.

        Args:
            img: Float tensor in [0, 1] of shape (B, 3, H, W), or (1, 3, H, W) / (3, H, W) to use the same image
                for every image of the batch. With the sigmoid squash, values are clipped to
                [1e-6, 1 - 1e-6] first (0 and 1 themselves cannot be reached). With ``alpha``, a 4-channel
                image also sets the alpha channel; a 3-channel one leaves it as it is.
        """
        img = self._check_image(img)
        t = from_valid_rgb(img[:, :3], self.decorrelate, self.squash).expand(self.batch, -1, -1, -1)
        if self.alpha:
            a = logit(img[:, 3:]).expand(self.batch, -1, -1, -1) if img.shape[1] == 4 else self.latent()[:, 3:]
            t = torch.cat([t, a], dim=1)
        self._load_latent(t.contiguous())
        return self

    def _reference(self) -> torch.Tensor:
        """A tensor with the module's dtype and device (its first parameter or buffer)."""
        for tensor in self.parameters():
            return tensor
        for tensor in self.buffers():
            return tensor
        return torch.empty(0)

    def _check_image(self, img: torch.Tensor) -> torch.Tensor:
        channels = "3 or 4" if self.alpha else "3"
        expected = f"(1 or {self.batch}, {channels}, {self.height}, {self.width})"
        if not isinstance(img, torch.Tensor):
            raise ImageError(f"expected an image tensor of shape {expected}, got {type(img).__name__}")
        if not img.is_floating_point():
            raise ImageError(
                f"expected a float image tensor with values in [0, 1], got dtype {img.dtype}; "
                "for 8-bit images use img.float() / 255"
            )
        if img.dim() == 3:
            img = img.unsqueeze(0)
        if img.dim() != 4 or img.shape[0] not in (1, self.batch) or img.shape[1] not in (3, self.channels):
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
        alpha = ", alpha=True" if self.alpha else ""
        return (
            f"batch={self.batch}, size=({self.height}, {self.width}), decorrelate={self.decorrelate}, "
            f"squash={self.squash.name!r}{alpha}"
        )
