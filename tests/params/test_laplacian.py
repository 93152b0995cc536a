from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from paramviz.errors import ConfigError
from paramviz.io import load_image
from paramviz.params import LaplacianParam, ParamSpec, build_param
from paramviz.params.laplacian import level_scales, level_sizes


def high_frequency_share(t: torch.Tensor, cutoff: float = 0.25) -> float:
    """Share of the (mean-free) energy of t (..., H, W) at spatial frequencies above ``cutoff`` cycles/pixel."""
    h, w = t.shape[-2:]
    spectrum = torch.fft.rfft2(t - t.mean(dim=(-2, -1), keepdim=True)).abs() ** 2
    fy = torch.fft.fftfreq(h)[:, None]
    fx = torch.fft.rfftfreq(w)[None, :]
    high = torch.sqrt(fx**2 + fy**2) > cutoff
    return float(spectrum[..., high].sum() / spectrum.sum())


def test_level_sizes_round_up_so_any_size_works():
    assert level_sizes(13, 7, 4) == [(13, 7), (7, 4), (4, 2), (2, 1)]
    assert level_sizes(16, 16, 6)[-1] == (1, 1)  # Lucid's floor would give an empty level here
    param = build_param(ParamSpec("laplacian", levels=6), (13, 7), batch=2, seed=0)
    assert [tuple(p.shape) for p in param.pyramid] == [(2, 3, h, w) for h, w in level_sizes(13, 7, 6)]
    assert param().shape == (2, 3, 13, 7)


def test_level_scales_are_captums():
    # captum's LaplacianImage: scale_list 1, 2, 4, ..., 32, factor scale**0.1 / 32**0.1
    captum = [s**0.1 / 32**0.1 for s in (1, 2, 4, 8, 16, 32)]
    assert level_scales(6) == pytest.approx(captum)
    assert level_scales(4)[-1] == 1.0 and level_scales(4, power=0.0) == [1.0] * 4  # power 0: Lucid's plain sum


def test_latent_is_the_sum_of_scaled_upsampled_levels():
    param = LaplacianParam((10, 12), levels=3, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        for p in param.pyramid:
            p.zero_()
        param.pyramid[2].fill_(0.3)  # a constant coarse level upsamples to a constant
        param.pyramid[0][0, 1, 4, 5] = 2.0
    latent = param.latent().detach()
    expected = torch.full((1, 3, 10, 12), 0.3 * level_scales(3)[2])
    expected[0, 1, 4, 5] += 2.0 * level_scales(3)[0]
    torch.testing.assert_close(latent, expected)
    contributions = param.contributions()
    torch.testing.assert_close(sum(contributions), latent)


def test_coarse_levels_carry_low_frequencies():
    param = LaplacianParam((64, 64), levels=4, generator=torch.Generator().manual_seed(0))
    shares = [high_frequency_share(c.detach()) for c in param.contributions()]
    assert shares == sorted(shares, reverse=True)  # finest first: less high-frequency energy at every level
    assert shares[0] > 0.5 and shares[-1] < 0.02


def test_from_image_is_exact_and_puts_the_photo_s_low_frequencies_in_the_coarse_levels():
    photo = load_image("sample:astronaut")
    photo = F.interpolate(photo, size=(37, 53), mode="bilinear", antialias=True).clamp(0.02, 0.98)
    param = build_param(ParamSpec("laplacian", levels=4), (37, 53), seed=0, init=photo)
    torch.testing.assert_close(param().detach(), photo, atol=1e-4, rtol=0)
    contributions = [c.detach() for c in param.contributions()]
    shares = [high_frequency_share(c) for c in contributions]
    assert shares[-1] < shares[0]
    # the coarsest level is a blurred copy of the latent image: strongly correlated with it
    latent = param.latent().detach()
    corr = torch.corrcoef(torch.stack([contributions[-1].flatten(), latent.flatten()]))[0, 1]
    assert corr > 0.8


def test_an_adam_step_changes_low_frequencies_more_than_a_pixel_step_does():
    # One Adam step towards a photo: each pyramid cell moves a block of pixels, so the change is smoother.
    target = F.interpolate(load_image("sample:coffee"), size=(32, 32), mode="bilinear", antialias=True)
    shares = {}
    for name in ("laplacian", "pixel"):
        param = build_param(ParamSpec(name), (32, 32), seed=0)
        before = param().detach()
        opt = torch.optim.Adam(param.parameters(), lr=0.05)
        ((param() - target) ** 2).mean().backward()
        opt.step()
        shares[name] = high_frequency_share((param().detach() - before).mean(1))
    assert shares["laplacian"] < 0.5 * shares["pixel"], shares


@pytest.mark.parametrize("levels", [0, 17, "4", True, 2.0])
def test_bad_levels_are_refused(levels):
    with pytest.raises(ConfigError, match="param.levels"):
        ParamSpec("laplacian", levels=levels)
    with pytest.raises(ConfigError, match="levels"):
        LaplacianParam((8, 8), levels=levels)
