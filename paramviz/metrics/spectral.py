"""Pixel statistics: the power spectrum (``hf_energy``, ``spectral_slope``, ``checkerboard``) and ``tv``.

All four read only the pixels, apply to every task and are computed in float64 on the CPU. The spectrum is
that of the grey image ``g`` = mean of the three channels (H, W), with its mean removed::

    P[ky, kx] = |FFT2(g - mean(g))[ky, kx]|^2

for integer frequency indices ``ky`` in ``-H//2 .. (H-1)//2`` and ``kx`` likewise (``fftshift`` puts the zero
frequency at the centre; the sums below do not depend on the layout).

- ``hf_energy = sum_{r > 0.5} P / sum P`` with ``r = sqrt(ky^2 + kx^2) / (min(H, W) / 2)``: the fraction of
  the (non-DC) power above half the Nyquist radius. In [0, 1]; white noise gives the fraction of frequencies
  with r > 0.5 (about 0.80 for a square image), photographs a few percent.
- ``spectral_slope``: the least-squares slope of ``log10 p(rho)`` against ``log10 rho`` over the integer radii
  ``2 <= rho <= min(H, W) / 2``, where ``p(rho)`` is the mean of ``P`` over the frequencies with
  ``round(sqrt(ky^2 + kx^2)) == rho``. Natural photographs come out near -2, white noise near 0. A bin whose
  mean power is below ``1e-12`` times the mean power per frequency (``sum P / (H W)``) is raised to that floor,
  so empty bins (a pure checkerboard) give a finite slope.
- ``checkerboard``: the power at the period-2 frequencies ``(H/2, 0)``, ``(0, W/2)`` and ``(H/2, W/2)`` over
  ``sum P``; 1 for a pure checkerboard. An odd side has no period-2 frequency along it: only the frequencies
  that exist are counted (odd H: only ``(0, W/2)``; both odd: none, so the value is 0).
- ``tv``: the mean absolute difference between horizontally and vertically neighbouring pixels, over all
  pairs and all channels (one mean, not the penalty's ``mean |dx| + mean |dy|``). In [0, 1].

A **constant image** (the grey image's standard deviation is at most ``1e-6``, far below one 8-bit step) has
no spectrum: ``hf_energy``, ``spectral_slope`` and ``checkerboard`` are 0. An image too small to have two
fitted radii (``min(H, W) < 6``) has ``spectral_slope`` 0. A 1-pixel image has ``tv`` 0.
"""

from __future__ import annotations

import torch

from paramviz.metrics.registry import ALL_TASKS, Metric, MetricContext, register_metric

#: Standard deviation of the grey image at or below which it counts as constant.
CONSTANT_STD = 1e-6

#: Relative power floor of a radial bin (times the mean power per frequency).
POWER_FLOOR = 1e-12

#: The ``hf_energy`` radius threshold, as a fraction of ``min(H, W) / 2``.
HF_RADIUS = 0.5

#: The smallest radius fitted by ``spectral_slope`` (radius 1 holds too few frequencies to average).
SLOPE_MIN_RADIUS = 2


def grey(images: torch.Tensor) -> torch.Tensor:
    """Mean of the three channels in float64 on the CPU, (B, 3, H, W) -> (B, H, W)."""
    return images.detach().to("cpu", torch.float64).mean(1)


def power_spectrum(images: torch.Tensor) -> torch.Tensor:
    """``|FFT2(g - mean g)|^2`` of the grey images, (B, H, W) float64, unshifted (DC at index [0, 0])."""
    g = grey(images)
    g = g - g.mean((-2, -1), keepdim=True)
    return torch.fft.fft2(g).abs().pow(2)


def frequency_indices(height: int, width: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Integer frequency indices ``(ky (H, 1), kx (1, W))`` in the unshifted FFT layout, float64."""
    ky = torch.fft.fftfreq(height, d=1.0 / height, dtype=torch.float64).round().view(-1, 1)
    kx = torch.fft.fftfreq(width, d=1.0 / width, dtype=torch.float64).round().view(1, -1)
    return ky, kx


def _constant(images: torch.Tensor) -> torch.Tensor:
    """(B,) bool: the grey image is constant (std <= :data:`CONSTANT_STD`)."""
    return grey(images).flatten(1).std(1, unbiased=False) <= CONSTANT_STD


def hf_energy(images: torch.Tensor) -> torch.Tensor:
    """Fraction of the power at radii ``r > 0.5`` (of ``min(H, W) / 2``), (B, 3, H, W) -> (B,) float64."""
    power = power_spectrum(images)
    h, w = power.shape[-2:]
    ky, kx = frequency_indices(h, w)
    radius = (ky**2 + kx**2).sqrt() / (min(h, w) / 2)
    high = (power * (radius > HF_RADIUS)).sum((-2, -1))
    total = power.sum((-2, -1))
    return torch.where(_constant(images), torch.zeros_like(total), high / total.clamp_min(1e-300))


def radial_power(images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Radially averaged power: ``(rho (R,), mean P per bin (B, R))`` for the integer radii ``0..max``."""
    return _radial(power_spectrum(images))


def _radial(power: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    b, h, w = power.shape
    ky, kx = frequency_indices(h, w)
    bins = (ky**2 + kx**2).sqrt().round().long().flatten()
    count = torch.bincount(bins).to(torch.float64)
    sums = torch.zeros(b, count.numel(), dtype=torch.float64).index_add_(1, bins, power.reshape(b, -1))
    rho = torch.arange(count.numel(), dtype=torch.float64)
    return rho, sums / count.clamp_min(1)


def spectral_slope(images: torch.Tensor) -> torch.Tensor:
    """Slope of log10 radial power vs log10 radius over ``2 <= rho <= min(H, W) / 2``, (B,) float64."""
    h, w = images.shape[-2:]
    spectrum = power_spectrum(images)
    rho, power = _radial(spectrum)
    keep = (rho >= SLOPE_MIN_RADIUS) & (rho <= min(h, w) / 2)
    if int(keep.sum()) < 2:
        return torch.zeros(images.shape[0], dtype=torch.float64)
    floor = POWER_FLOOR * spectrum.mean((-2, -1)).unsqueeze(1)
    y = power[:, keep].maximum(floor).log10()
    x = rho[keep].log10()
    xc = x - x.mean()
    slope = ((y - y.mean(1, keepdim=True)) * xc).sum(1) / (xc**2).sum()
    return torch.where(_constant(images), torch.zeros_like(slope), slope)


def checkerboard(images: torch.Tensor) -> torch.Tensor:
    """Power at the period-2 frequencies over the total power, (B,) float64 (1 for a pure checkerboard)."""
    power = power_spectrum(images)
    h, w = power.shape[-2:]
    corners = []
    if h % 2 == 0:
        corners.append((h // 2, 0))
    if w % 2 == 0:
        corners.append((0, w // 2))
    if h % 2 == 0 and w % 2 == 0:
        corners.append((h // 2, w // 2))
    peak = sum((power[:, y, x] for y, x in corners), torch.zeros(power.shape[0], dtype=torch.float64))
    total = power.sum((-2, -1))
    return torch.where(_constant(images), torch.zeros_like(total), peak / total.clamp_min(1e-300))


def total_variation(images: torch.Tensor) -> torch.Tensor:
    """Mean absolute difference over all horizontal and vertical neighbour pairs and channels, (B,) float64."""
    x = images.detach().to("cpu", torch.float64)
    b = x.shape[0]
    dx = (x[..., :, 1:] - x[..., :, :-1]).abs().reshape(b, -1)
    dy = (x[..., 1:, :] - x[..., :-1, :]).abs().reshape(b, -1)
    pairs = dx.shape[1] + dy.shape[1]
    if pairs == 0:
        return torch.zeros(b, dtype=torch.float64)
    return (dx.sum(1) + dy.sum(1)) / pairs


def _pixels(fn):
    def compute(images: torch.Tensor, context: MetricContext) -> torch.Tensor:
        return fn(images)

    return compute


register_metric(
    Metric(
        "hf_energy",
        ALL_TASKS,
        _pixels(hf_energy),
        description="fraction of the grey image's power above half the Nyquist radius (0..1; photos: a few %)",
        on_references=True,
    )
)
register_metric(
    Metric(
        "spectral_slope",
        ALL_TASKS,
        _pixels(spectral_slope),
        description="log-log slope of the radially averaged power spectrum (photos about -2, white noise 0)",
        on_references=True,
    )
)
register_metric(
    Metric(
        "checkerboard",
        ALL_TASKS,
        _pixels(checkerboard),
        description="fraction of the power at the period-2 frequencies (1 = a pure checkerboard)",
    )
)
register_metric(
    Metric(
        "tv",
        ALL_TASKS,
        _pixels(total_variation),
        description="mean absolute difference of neighbouring pixels (0..1)",
    )
)
