"""Lucid's scaled Fourier parameterization (Mordvintsev et al. 2018, "Differentiable Image Parameterizations").

The learnable tensor is the half spectrum of the latent image, ``spectrum`` of shape (B, 3, H, W // 2 + 1, 2)
(real and imaginary parts), initialized N(0, 0.01^2). The latent image is::

    f     = sqrt(fx^2 + fy^2),  fy = fftfreq(H)[:, None],  fx = rfftfreq(W)
    scale = 1 / max(f, 1 / max(H, W)) ** decay_power
    t     = irfft2(scale * spectrum, s=(H, W), norm="ortho") / 4

followed by the colour decorrelation and the squash (see :mod:`paramviz.params.color`). Lucid uses a
non-orthonormal inverse FFT and multiplies ``scale`` by ``sqrt(H * W)``; with ``norm="ortho"`` the factor is
already included, so the images are the same.

Odd widths: Lucid keeps ``fftfreq(W)[: W // 2 + 2]`` frequencies for odd ``W`` (one extra column), inverts to a
``W + 1`` wide image and crops one column. We use ``torch.fft.rfftfreq(W)`` (``W // 2 + 1`` columns, the exact
half spectrum of a width-``W`` signal) and ``irfft2(..., s=(H, W))``, so no crop is needed and
:meth:`FourierParam.from_image` is an exact inverse. The frequencies of the columns both conventions share are
identical (``|fftfreq(W)[k]| == rfftfreq(W)[k]``).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import nn

from paramviz.errors import ConfigError
from paramviz.params.base import ImageParam, check_size, check_std, randn
from paramviz.params.color import Squash


def rfft2d_freqs(height: int, width: int) -> torch.Tensor:
    """Frequency magnitudes ``sqrt(fx^2 + fy^2)`` of the half spectrum, shape (H, W // 2 + 1), float64."""
    height, width = check_size((height, width))
    fy = torch.fft.fftfreq(height, dtype=torch.float64)[:, None]
    fx = torch.fft.rfftfreq(width, dtype=torch.float64)[None, :]
    return torch.sqrt(fx * fx + fy * fy)


def check_decay_power(decay_power: float) -> float:
    """Validate the spectrum decay exponent (finite, >= 0)."""
    if (
        isinstance(decay_power, bool)
        or not isinstance(decay_power, (int, float))
        or not math.isfinite(decay_power)
        or decay_power < 0
    ):
        raise ConfigError(
            f"decay_power must be a finite number >= 0, got {decay_power!r}; Lucid uses 1.0 "
            "(1.5 and 0.85 are also common)"
        )
    return float(decay_power)


def spectrum_scale(height: int, width: int, decay_power: float = 1.0) -> torch.Tensor:
    """Lucid's spectrum scale ``1 / max(f, 1 / max(H, W)) ** decay_power``, shape (H, W // 2 + 1), float64."""
    freqs = rfft2d_freqs(height, width)
    floor = 1.0 / max(height, width)
    return 1.0 / freqs.clamp(min=floor) ** check_decay_power(decay_power)


class FourierParam(ImageParam):
    """Decorrelated Fourier image (Lucid's ``fft_image``): a scaled half spectrum per image and channel.

    Args:
        size: ``(H, W)`` (an int means a square); odd sizes are fine.
        batch: Number of images.
        decorrelate: Apply Lucid's colour decorrelation.
        squash: ``sigmoid`` or ``clamp``.
        generator: Source of the initial noise (torch's global RNG if ``None``).
        alpha: Add a transparency channel (a fourth latent channel).
        decay_power: Exponent of the 1/f spectrum scale (Lucid: 1.0).
        sd: Standard deviation of the initial N(0, sd^2) spectrum (Lucid: 0.01).
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
        decay_power: float = 1.0,
        sd: float = 0.01,
    ) -> None:
        super().__init__(size, batch, decorrelate=decorrelate, squash=squash, alpha=alpha)
        self.decay_power = check_decay_power(decay_power)
        self.sd = check_std(sd)
        dtype = torch.get_default_dtype()
        # Derived from size and decay_power, so not saved in state_dict; still moved by .to(). Lucid's division
        # of the image by 4 is folded into it (one image-sized op less, forward and backward).
        scale = (spectrum_scale(self.height, self.width, self.decay_power) / 4).to(dtype)
        if not torch.isfinite(scale).all():
            raise ConfigError(
                f"decay_power {self.decay_power:g} overflows the Fourier scale at {self.height}x{self.width} "
                f"(1/f**{self.decay_power:g} exceeds {dtype} range); use a decay power of about 0.5 to 2"
            )
        self.register_buffer("scale", scale, persistent=False)
        shape = (self.batch, self.channels, self.height, self.width // 2 + 1, 2)
        self.spectrum = nn.Parameter(randn(shape, self.sd, generator))

    def latent(self) -> torch.Tensor:
        """``irfft2(spectrum_scale * spectrum, s=(H, W), norm="ortho") / 4``, shape (B, C, H, W)."""
        spectrum = torch.view_as_complex(self.spectrum)
        return torch.fft.irfft2(self.scale * spectrum, s=(self.height, self.width), norm="ortho")

    def _load_latent(self, t: torch.Tensor) -> None:
        spectrum = torch.fft.rfft2(t, s=(self.height, self.width), norm="ortho") / self.scale
        self.spectrum.copy_(torch.view_as_real(spectrum))

    def _apply(self, fn, recurse=True):  # type: ignore[no-untyped-def]
        # After a dtype change (e.g. .double()), recompute the scale from its float64 values instead of
        # keeping the float32-rounded copy.
        dtype = self.scale.dtype
        super()._apply(fn, recurse)
        if self.scale.dtype != dtype and self.scale.is_floating_point():
            exact = spectrum_scale(self.height, self.width, self.decay_power) / 4
            self.scale = exact.to(device=self.scale.device, dtype=self.scale.dtype)
        return self

    def extra_repr(self) -> str:
        return f"{super().extra_repr()}, decay_power={self.decay_power}"
