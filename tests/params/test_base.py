"""Contract tests run for every registered parameterization x squash x decorrelation."""

from __future__ import annotations

import itertools
import math

import pytest
import torch
import torch.nn.functional as F

from paramviz.errors import ConfigError, ImageError
from paramviz.io import load_image
from paramviz.params import PARAMS, SQUASHES, ImageParam, ParamSpec, build_param
from paramviz.render import OPTIMIZERS

COMBOS = list(itertools.product(PARAMS.names(), SQUASHES.names(), [True, False]))
IDS = [f"{n}-{s}-{'decorr' if d else 'rgb'}" for n, s, d in COMBOS]
SIZE = (12, 15)  # odd width on purpose


def make(name, squash="sigmoid", decorrelate=True, batch=2, seed=0, size=SIZE) -> ImageParam:
    return build_param(ParamSpec(name, decorrelate, squash), size, batch=batch, seed=seed)


@pytest.mark.parametrize("name", PARAMS.names())
def test_declared_defaults(name):
    cls = PARAMS.get(name)
    OPTIMIZERS.get(cls.default_optimizer)
    assert isinstance(cls.default_lr, float) and math.isfinite(cls.default_lr) and cls.default_lr > 0
    assert cls.inverse in ("exact", "approximate", None)
    param = make(name)
    if cls.resolution_free:
        assert param.render(SIZE).shape == (2, 3, *SIZE)
        torch.testing.assert_close(param.render(SIZE), param())
        assert param.render((7, 9)).shape == (2, 3, 7, 9)
    else:
        with pytest.raises(ConfigError, match="cannot render at another size"):
            param.render((7, 9))


@pytest.mark.parametrize("name, squash, decorrelate", COMBOS, ids=IDS)
def test_shape_dtype_and_range(name, squash, decorrelate):
    param = make(name, squash, decorrelate)
    assert isinstance(param, ImageParam)
    assert (param.batch, param.height, param.width) == (2, *SIZE)
    before = param.latent().detach()
    with torch.no_grad():
        for p in param.parameters():
            p.mul_(3000.0)  # far outside the squash's linear range
        latent = param.latent()
        img = param()
    assert img.shape == (2, 3, *SIZE) and img.dtype == torch.float32
    assert img.min() >= 0 and img.max() <= 1
    if PARAMS.get(name).fixed_scale:  # the parameters shape the latent but do not set its scale (MACO)
        torch.testing.assert_close(latent.std(), before.std(), rtol=1e-3, atol=0)
        assert not torch.allclose(latent, before)
    else:
        assert latent.min() < -1 and latent.max() > 2  # so the range check below means something
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
    inverse = PARAMS.get(name).inverse
    if inverse is None:
        with pytest.raises(ConfigError, match="cannot start from an image"):
            param.from_image(img)
        return
    fresh = param().detach()
    assert param.from_image(img) is param
    out = param().detach()
    atol = 1e-4 if squash == "sigmoid" else 1e-6  # clamp: exact up to float rounding
    if inverse == "exact":
        torch.testing.assert_close(out, img, atol=atol, rtol=0)
    else:  # the closest image it can represent: nearer the target than where it started
        assert ((out - img) ** 2).mean() < 0.9 * ((fresh - img) ** 2).mean()
    # a single image is broadcast to the whole batch
    param.from_image(img[:1])
    out = param().detach()
    torch.testing.assert_close(out[1], out[0], atol=1e-6, rtol=0)
    if inverse == "exact":
        torch.testing.assert_close(out[0], img[0], atol=atol, rtol=0)


def test_clamp_round_trip_is_exact_for_rgb_pixels():
    img = torch.rand(1, 3, *SIZE)
    param = make("pixel", "clamp", False, batch=1).from_image(img)
    assert torch.equal(param().detach(), img)


@pytest.mark.parametrize("name", [n for n in PARAMS.names() if PARAMS.get(n).inverse is not None])
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
def test_default_optimizer_reduces_mse_to_a_target(name, squash, decorrelate):
    # a photo: every parameterization can approach it; with an exact inverse it can reach it
    photo = F.interpolate(load_image("sample:chelsea"), size=(16, 16), mode="bilinear", antialias=True)
    target = photo * 0.8 + 0.1
    param = make(name, squash, decorrelate, batch=1, size=(16, 16))
    cls = PARAMS.get(name)
    opt = OPTIMIZERS.get(cls.default_optimizer)(list(param.parameters()), cls.default_lr)
    losses = []
    for _ in range(30):

        def closure() -> torch.Tensor:
            opt.zero_grad()
            loss = ((param() - target) ** 2).mean()
            loss.backward()
            losses.append(loss.item())
            return loss

        opt.step(closure)
    # cppn and maco cannot represent every image (maco's magnitude and mean are fixed): a clear fall is enough
    assert losses[-1] < (0.5 if cls.inverse == "exact" else 0.9) * losses[0]


@pytest.mark.parametrize("name", PARAMS.names())
def test_to_dtype_moves_everything(name):
    param = make(name).to(torch.float64)
    assert all(t.dtype == torch.float64 for t in [*param.parameters(), *param.buffers()])
    assert param().dtype == torch.float64
    if PARAMS.get(name).inverse is not None:
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
