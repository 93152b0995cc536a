"""Transparency: every registered parameterization with ``alpha=True`` (and the compositing helpers)."""

from __future__ import annotations

import pytest
import torch

from paramviz.errors import ConfigError, ImageError
from paramviz.params import PARAMS, ParamBatch, ParamSpec, build_param
from paramviz.params.alpha import composite, composite_random, random_background

SIZE = (12, 15)


def make(name, alpha=True, batch=2, seed=0):
    return build_param(ParamSpec(name, alpha=alpha), SIZE, batch=batch, seed=seed)


@pytest.mark.parametrize("name", PARAMS.names())
def test_alpha_adds_a_fourth_channel_and_leaves_rgb_as_it_was(name):
    rgba, rgb = make(name), make(name, alpha=False)
    out = rgba()
    assert out.shape == (2, 4, *SIZE) and rgba.channels == 4 and rgba.shape == (2, 4, *SIZE)
    assert rgb().shape == (2, 3, *SIZE) and rgb.channels == 3
    assert out.min() >= 0 and out.max() <= 1
    torch.testing.assert_close(out[:, 3:], torch.sigmoid(rgba.latent()[:, 3:]))
    # the alpha channel has its own parameters: a loss on alpha alone reaches the parameters
    out[:, 3].mean().backward()
    assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in rgba.parameters())


@pytest.mark.parametrize("name", [n for n in PARAMS.names() if PARAMS.get(n).inverse is not None])
def test_from_image_sets_rgb_and_keeps_or_sets_alpha(name):
    param = make(name)
    alpha_before = param()[:, 3:].detach()
    img = torch.rand(1, 3, *SIZE) * 0.9 + 0.05
    param.from_image(img)
    out = param().detach()
    torch.testing.assert_close(out[:, 3:], alpha_before, atol=1e-5, rtol=0)  # RGB input: alpha kept
    if PARAMS.get(name).inverse == "exact":
        torch.testing.assert_close(out[:, :3], img.expand(2, -1, -1, -1), atol=1e-4, rtol=0)
        rgba = torch.rand(2, 4, *SIZE) * 0.9 + 0.05
        torch.testing.assert_close(param.from_image(rgba)().detach(), rgba, atol=1e-4, rtol=0)
    with pytest.raises(ImageError, match=r"3 or 4"):
        param.from_image(torch.rand(1, 5, *SIZE))


def test_param_batch_refuses_to_mix_rgb_and_rgba():
    assert ParamBatch([make("pixel", batch=1), make("fourier", batch=1)]).channels == 4
    with pytest.raises(ConfigError, match="RGBA"):
        ParamBatch([make("pixel", batch=1), make("fourier", alpha=False, batch=1)])


def test_composite_is_alpha_blending():
    rgb = torch.rand(2, 3, 4, 5)
    background = torch.rand(2, 3, 4, 5)
    opaque = torch.cat([rgb, torch.ones(2, 1, 4, 5)], 1)
    clear = torch.cat([rgb, torch.zeros(2, 1, 4, 5)], 1)
    half = torch.cat([rgb, torch.full((2, 1, 4, 5), 0.5)], 1)
    torch.testing.assert_close(composite(opaque, background), rgb)
    torch.testing.assert_close(composite(clear, background), background)
    torch.testing.assert_close(composite(half, background), (rgb + background) / 2)
    torch.testing.assert_close(composite(clear, 1.0), torch.ones(2, 3, 4, 5))  # over white
    with pytest.raises(ImageError, match="RGBA"):
        composite(rgb, background)


def test_random_backgrounds_differ_per_draw_and_follow_the_seeds():
    g = torch.Generator().manual_seed(0)
    first, second = random_background((2, 3, 8, 8), g), random_background((2, 3, 8, 8), g)
    assert not torch.allclose(first, second)
    assert 0.4 < float(first.mean()) < 0.6 and first.min() >= 0 and first.max() <= 1  # U(0, 1)
    torch.testing.assert_close(random_background((2, 3, 8, 8), torch.Generator().manual_seed(0)), first)
    # one generator per image: image i gets what a batch of one with its own generator gets
    per_image = random_background((2, 3, 8, 8), [torch.Generator().manual_seed(s) for s in (4, 9)])
    alone = random_background((1, 3, 8, 8), torch.Generator().manual_seed(9))
    torch.testing.assert_close(per_image[1:], alone)
    clear = torch.zeros(1, 4, 8, 8)
    a = composite_random(clear, torch.Generator().manual_seed(1))
    b = composite_random(clear, torch.Generator().manual_seed(2))
    assert a.shape == (1, 3, 8, 8) and not torch.allclose(a, b)
