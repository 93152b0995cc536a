"""Contract tests run for every registered parameterization x squash x decorrelation."""

from __future__ import annotations

import itertools

import pytest
import torch

from paramviz.errors import ConfigError, ImageError
from paramviz.params import PARAMS, SQUASHES, ImageParam, ParamSpec, build_param

COMBOS = list(itertools.product(PARAMS.names(), SQUASHES.names(), [True, False]))
IDS = [f"{n}-{s}-{'decorr' if d else 'rgb'}" for n, s, d in COMBOS]
SIZE = (12, 15)  # odd width on purpose


def make(name, squash="sigmoid", decorrelate=True, batch=2, seed=0, size=SIZE) -> ImageParam:
    return build_param(ParamSpec(name, decorrelate, squash), size, batch=batch, seed=seed)


@pytest.mark.parametrize("name, squash, decorrelate", COMBOS, ids=IDS)
def test_shape_dtype_and_range(name, squash, decorrelate):
    param = make(name, squash, decorrelate)
    assert isinstance(param, ImageParam)
    assert (param.batch, param.height, param.width) == (2, *SIZE)
    with torch.no_grad():
        for p in param.parameters():
            p.mul_(3000.0)  # far outside the squash's linear range
        latent = param.latent()
        img = param()
    assert latent.min() < -1 and latent.max() > 2  # so the range check below means something
    assert img.shape == (2, 3, *SIZE) and img.dtype == torch.float32
    assert img.min() >= 0 and img.max() <= 1
    assert ((img == 0) | (img == 1)).any()


@pytest.mark.parametrize("name, squash, decorrelate", COMBOS, ids=IDS)
def test_gradient_reaches_every_parameter(name, squash, decorrelate):
    param = make(name, squash, decorrelate)
    target = torch.rand(2, 3, *SIZE)
    ((param() - target) ** 2).sum().backward()
    params = list(param.parameters())
    assert params
    for p in params:
        assert p.grad is not None and torch.isfinite(p.grad).all() and p.grad.abs().sum() > 0


@pytest.mark.parametrize("name, squash, decorrelate", COMBOS, ids=IDS)
def test_from_image_round_trip(name, squash, decorrelate):
    torch.manual_seed(3)
    img = torch.rand(2, 3, *SIZE) * 0.96 + 0.02  # in [0.02, 0.98]
    param = make(name, squash, decorrelate)
    assert param.from_image(img) is param
    out = param().detach()
    atol = 1e-4 if squash == "sigmoid" else 1e-6  # clamp: exact up to float rounding
    torch.testing.assert_close(out, img, atol=atol, rtol=0)
    # a single image is broadcast to the whole batch
    param.from_image(img[:1])
    out = param().detach()
    torch.testing.assert_close(out[0], img[0], atol=atol, rtol=0)
    torch.testing.assert_close(out[1], img[0], atol=atol, rtol=0)


def test_clamp_round_trip_is_exact_for_rgb_pixels():
    img = torch.rand(1, 3, *SIZE)
    param = make("pixel", "clamp", False, batch=1).from_image(img)
    assert torch.equal(param().detach(), img)


@pytest.mark.parametrize("name", PARAMS.names())
def test_from_image_rejects_bad_images(name):
    param = make(name)
    expected = f"(1 or 2, 3, {SIZE[0]}, {SIZE[1]})"
    for bad in (torch.rand(3, 3, *SIZE), torch.rand(1, 3, SIZE[0], SIZE[1] + 1), torch.rand(1, 4, *SIZE)):
        with pytest.raises(ImageError, match=__import__("re").escape(expected)):
            param.from_image(bad)
    with pytest.raises(ImageError, match=r"\[0, 1\]"):
        param.from_image(torch.rand(1, 3, *SIZE) + 1)
    with pytest.raises(ImageError, match="255"):
        param.from_image(torch.zeros(1, 3, *SIZE, dtype=torch.uint8))
    with pytest.raises(ImageError, match="NaN"):
        param.from_image(torch.full((1, 3, *SIZE), float("nan")))


@pytest.mark.parametrize("name", PARAMS.names())
def test_batch_images_are_independent(name):
    param = make(name, batch=2)
    img = param()
    assert (img[0] - img[1]).abs().max() > 1e-4  # different noise per image
    ((img[0] - 0.7) ** 2).sum().backward()
    for p in param.parameters():
        assert p.grad[0].abs().sum() > 0
        assert torch.count_nonzero(p.grad[1]) == 0


@pytest.mark.parametrize("name", PARAMS.names())
def test_seeding(name):
    a, b, c = make(name, seed=5), make(name, seed=5), make(name, seed=6)
    assert torch.equal(a(), b())
    assert not torch.allclose(a(), c())
    torch.manual_seed(1)
    d = make(name, seed=None)
    torch.manual_seed(1)
    e = make(name, seed=None)
    assert torch.equal(d(), e())


@pytest.mark.parametrize("name, squash, decorrelate", COMBOS, ids=IDS)
def test_adam_steps_reduce_mse_to_a_target(name, squash, decorrelate):
    torch.manual_seed(0)
    target = torch.rand(1, 3, 16, 16) * 0.8 + 0.1
    param = make(name, squash, decorrelate, batch=1, size=(16, 16))
    opt = torch.optim.Adam(param.parameters(), lr=0.05)
    losses = []
    for _ in range(30):
        opt.zero_grad()
        loss = ((param() - target) ** 2).mean()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert losses[-1] < 0.5 * losses[0]


@pytest.mark.parametrize("name", PARAMS.names())
def test_to_dtype_moves_everything(name):
    param = make(name).to(torch.float64)
    assert all(t.dtype == torch.float64 for t in [*param.parameters(), *param.buffers()])
    assert param().dtype == torch.float64
    param.from_image(torch.rand(1, 3, *SIZE, dtype=torch.float32))  # converted to the module's dtype
    meta = make(name).to("meta")
    assert all(t.device.type == "meta" for t in [*meta.parameters(), *meta.buffers()])


def test_build_param_options_and_validation():
    fourier = build_param(ParamSpec("fourier", decay_power=1.5), (8, 8))
    assert fourier.decay_power == 1.5
    pixel = build_param(ParamSpec("pixel", decay_power=1.5), 8)  # decay_power ignored, int size = square
    assert pixel.size == (8, 8)
    assert build_param("pixel", (4, 6), batch=3).shape == (3, 3, 4, 6)
    init = torch.rand(1, 3, 8, 8) * 0.9 + 0.05
    torch.testing.assert_close(build_param(ParamSpec(), (8, 8), init=init)().detach(), init, atol=1e-4, rtol=0)
    with pytest.raises(ImageError, match=r"\(1 or 1, 3, 9, 9\)"):
        build_param(ParamSpec(), (9, 9), init=init)
    for size in [(0, 8), (8,), "8x8", (8.0, 8)]:
        with pytest.raises(ConfigError, match="size"):
            build_param(ParamSpec(), size)
    with pytest.raises(ConfigError, match="batch"):
        build_param(ParamSpec(), (8, 8), batch=0)
    with pytest.raises(ConfigError, match="seed"):
        build_param(ParamSpec(), (8, 8), seed="1")
