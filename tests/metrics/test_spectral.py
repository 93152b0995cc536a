"""The pixel statistics on synthetic images whose answer is known."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from paramviz.metrics.spectral import checkerboard, hf_energy, radial_power, spectral_slope, total_variation
from paramviz.objectives import TotalVariation


def _grey3(x: torch.Tensor) -> torch.Tensor:
    return x[:, None].expand(-1, 3, -1, -1).contiguous()


def white_noise(batch: int, height: int, width: int, seed: int = 0) -> torch.Tensor:
    return torch.rand(batch, 3, height, width, generator=torch.Generator().manual_seed(seed))


def power_law_noise(alpha: float, size: int, batch: int = 4, seed: int = 0) -> torch.Tensor:
    """Grey noise with power spectrum proportional to rho ** -alpha, scaled into [0, 1]."""
    gen = torch.Generator().manual_seed(seed)
    k = torch.fft.fftfreq(size, 1 / size)
    rho = (k.view(-1, 1) ** 2 + k.view(1, -1) ** 2).sqrt()
    amplitude = rho.clamp_min(1) ** (-alpha / 2)
    amplitude[0, 0] = 0
    spectrum = torch.complex(
        torch.randn(batch, size, size, generator=gen), torch.randn(batch, size, size, generator=gen)
    )
    x = torch.fft.ifft2(spectrum * amplitude).real
    low = x.flatten(1).min(1).values.view(-1, 1, 1)
    high = x.flatten(1).max(1).values.view(-1, 1, 1)
    return _grey3((x - low) / (high - low))


def pure_checkerboard(height: int, width: int) -> torch.Tensor:
    i, j = np.indices((height, width))
    return _grey3(torch.from_numpy(((i + j) % 2).astype(np.float32))[None])


def fraction_above_half_nyquist(height: int, width: int) -> float:
    """Fraction of the non-DC frequencies with r > 0.5, counted directly."""
    ky = np.fft.fftfreq(height) * height
    kx = np.fft.fftfreq(width) * width
    r = np.sqrt(ky[:, None] ** 2 + kx[None, :] ** 2) / (min(height, width) / 2)
    return float((r > 0.5).sum()) / (height * width - 1)


@pytest.mark.parametrize(("height", "width"), [(64, 64), (48, 80), (63, 65)])
def test_white_noise_spreads_its_power_evenly(height, width) -> None:
    x = white_noise(6, height, width)
    expected = fraction_above_half_nyquist(height, width)
    hf = hf_energy(x)
    assert hf.shape == (6,) and hf.dtype == torch.float64
    assert abs(hf.mean().item() - expected) < 0.015 and (hf - expected).abs().max() < 0.03
    slope = spectral_slope(x)
    assert abs(slope.mean().item()) < 0.08 and slope.abs().max() < 0.2
    assert checkerboard(x).max() < 0.01


@pytest.mark.parametrize("alpha", [1.0, 2.0])
def test_power_law_noise_has_its_slope(alpha) -> None:
    slope = spectral_slope(power_law_noise(alpha, 128))
    assert (slope + alpha).abs().max() < 0.15
    assert hf_energy(power_law_noise(alpha, 128)).max() < fraction_above_half_nyquist(128, 128)


def test_steeper_spectra_have_less_high_frequency_energy() -> None:
    hf = [hf_energy(power_law_noise(alpha, 64)).mean().item() for alpha in (0.0, 1.0, 2.0, 3.0)]
    assert hf == sorted(hf, reverse=True) and hf[0] > 0.75 and hf[-1] < 0.05


@pytest.mark.parametrize(("height", "width"), [(32, 32), (16, 24)])
def test_pure_checkerboard(height, width) -> None:
    x = pure_checkerboard(height, width)
    assert checkerboard(x).item() == pytest.approx(1.0, abs=1e-12)
    assert hf_energy(x).item() == pytest.approx(1.0, abs=1e-12)
    assert total_variation(x).item() == pytest.approx(1.0)
    assert torch.isfinite(spectral_slope(x)).all()


def test_stripes_count_as_period_two_and_odd_sides_only_keep_existing_frequencies() -> None:
    j = torch.arange(32) % 2
    stripes = _grey3(j.float().expand(1, 31, 32))  # odd H: varies along x only, at frequency (0, W/2)
    assert checkerboard(stripes).item() == pytest.approx(1.0, abs=1e-12)
    assert checkerboard(pure_checkerboard(31, 32)).item() < 0.1  # (H/2, W/2) does not exist for odd H
    assert checkerboard(pure_checkerboard(31, 33)).item() == 0.0  # no period-2 frequency at all
    half = pure_checkerboard(32, 32) * 0.5 + white_noise(1, 32, 32) * 0.5
    assert 0.2 < checkerboard(half).item() < 1


@pytest.mark.parametrize("value", [0.0, 0.3, 1.0])
def test_constant_image_is_zero_everywhere(value) -> None:
    x = torch.full((2, 3, 24, 20), value)
    for fn in (hf_energy, spectral_slope, checkerboard, total_variation):
        assert torch.equal(fn(x), torch.zeros(2, dtype=torch.float64)), fn.__name__


def test_colour_only_image_has_a_constant_grey_and_counts_as_constant() -> None:
    x = torch.zeros(1, 3, 16, 16)
    x[:, 0, :, ::2], x[:, 1, :, 1::2] = 1.0, 1.0  # red and green alternate: the channel mean is constant
    assert hf_energy(x).item() == checkerboard(x).item() == spectral_slope(x).item() == 0.0
    assert total_variation(x).item() > 0.3


def test_spectral_metrics_ignore_brightness_and_contrast() -> None:
    x = power_law_noise(1.5, 64, batch=2)
    y = 0.2 + 0.5 * x
    for fn in (hf_energy, spectral_slope, checkerboard):
        torch.testing.assert_close(fn(y), fn(x), rtol=1e-6, atol=1e-9)


def test_radial_power_averages_each_integer_radius() -> None:
    x = white_noise(1, 16, 16)
    rho, power = radial_power(x)
    g = x.double().mean(1)[0]
    p = np.abs(np.fft.fft2((g - g.mean()).numpy())) ** 2
    k = np.fft.fftfreq(16) * 16
    bins = np.rint(np.sqrt(k[:, None] ** 2 + k[None, :] ** 2))
    for r in (0, 1, 5, 8, 11):
        assert rho[r] == r and power[0, r].item() == pytest.approx(p[bins == r].mean())


def test_slope_of_a_tiny_image_is_zero_and_finite() -> None:
    assert torch.equal(spectral_slope(white_noise(2, 5, 9)), torch.zeros(2, dtype=torch.float64))
    assert torch.isfinite(spectral_slope(white_noise(2, 6, 9))).all()


def test_tv_is_one_mean_over_every_neighbour_pair() -> None:
    x = torch.zeros(1, 3, 2, 2)
    x[..., :, 1] = 1.0  # horizontal pairs differ by 1, vertical pairs by 0
    assert total_variation(x).item() == pytest.approx(0.5)
    assert total_variation(torch.rand(2, 3, 1, 1)).tolist() == [0.0, 0.0]
    square = white_noise(3, 20, 20)
    penalty = TotalVariation()({"input": square}).double()  # mean |dx| + mean |dy|: twice ours on a square
    torch.testing.assert_close(total_variation(square), penalty / 2, rtol=1e-5, atol=1e-7)


def test_photo_is_smooth_and_steep(photo) -> None:
    x = photo("chelsea", (150, 200))
    assert hf_energy(x).item() < 0.1 and spectral_slope(x).item() < -1.5
    assert total_variation(x).item() < 0.1 and checkerboard(x).item() < 1e-3


def test_input_is_left_untouched() -> None:
    x = white_noise(2, 16, 16)
    before = x.clone()
    for fn in (hf_energy, spectral_slope, checkerboard, total_variation):
        fn(x)
    assert torch.equal(x, before)
