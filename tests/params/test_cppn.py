from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from paramviz.errors import ConfigError
from paramviz.params import CPPNParam, ParamSpec, build_param
from paramviz.params.cppn import composite_activation, cppn_coordinates


def contrasted(param: CPPNParam) -> CPPNParam:
    """Give the output layer Lucid's hidden-layer scale so the image has full contrast (not the near-grey init)."""
    gen = torch.Generator().manual_seed(1)
    with torch.no_grad():
        w = param.weights[-1]
        w.copy_(torch.randn(w.shape, generator=gen) / math.sqrt(w.shape[1]) * 3)
    return param


def test_architecture_is_lucids():
    param = CPPNParam(16, batch=2)
    shapes = [tuple(w.shape) for w in param.weights]
    assert shapes == [(2, 3, 24)] + [(2, 48, 24)] * 7 + [(2, 48, 3)]  # 8 hidden layers, x/y/r in, RGB out
    assert all(tuple(b.shape) == (2, 1, s[-1]) for b, s in zip(param.biases, shapes, strict=True))
    assert all(torch.count_nonzero(b) == 0 for b in param.biases)
    # hidden weights N(0, 1 / fan_in) (Lucid's untruncated variance scaling); output layer N(0, 0.01^2)
    big = CPPNParam(16, batch=64, generator=torch.Generator().manual_seed(0))
    assert float(big.weights[1].detach().std()) == pytest.approx(math.sqrt(1 / 48), rel=0.05)
    assert float(big.weights[0].detach().std()) == pytest.approx(math.sqrt(1 / 3), rel=0.05)
    assert float(big.weights[-1].detach().std()) == pytest.approx(0.01, rel=0.05)
    assert CPPNParam.default_optimizer == "adam" and CPPNParam.default_lr == 0.005  # Lucid/Lucent


def test_composite_activation_and_coordinates():
    z = torch.tensor([[-2.0, 0.0, 0.5]])
    a = torch.atan(z)
    torch.testing.assert_close(composite_activation(z), torch.cat([a / 0.67, a * a / 0.6], dim=-1))
    coords = cppn_coordinates(4, 6).reshape(4, 6, 3)
    r = math.sqrt(3)
    torch.testing.assert_close(coords[0, :, 0], (torch.arange(6, dtype=torch.float64) + 0.5) * 2 * r / 6 - r)
    torch.testing.assert_close(coords[:, 0, 1], (torch.arange(4, dtype=torch.float64) + 0.5) * 2 * r / 4 - r)
    torch.testing.assert_close(coords[..., 2], coords[..., 0].hypot(coords[..., 1]))
    assert float(cppn_coordinates(256, 256)[:, 0].std()) == pytest.approx(1.0, rel=0.01)  # Lucid: std 1


def test_renders_the_same_image_at_any_resolution():
    param = contrasted(build_param(ParamSpec("cppn"), 64, seed=0))
    small = param().detach()
    assert small.std() > 0.1  # a real image, not a flat one
    with torch.no_grad():
        large = param.render(128)
        other = contrasted(build_param(ParamSpec("cppn"), 64, seed=1))()
    assert large.shape == (1, 3, 128, 128)
    down = F.avg_pool2d(large, 2)  # 2x2 blocks: the same pixel centres as the 64 px grid
    error = (down - small).abs()
    assert float(error.max()) < 0.05 and float(error.mean()) < 0.005
    assert float((other - small).abs().mean()) > 20 * float(error.mean())  # another network is far away
    wide = param.render((64, 128))  # another aspect ratio samples the same square, stretched
    torch.testing.assert_close(F.avg_pool2d(wide, (1, 2)), small, atol=0.05, rtol=0)


def test_every_image_of_a_batch_has_its_own_network():
    param = contrasted(build_param(ParamSpec("cppn"), 24, batch=3, seed=0))
    images = param().detach()
    for i in range(3):
        for j in range(i):
            assert float((images[i] - images[j]).abs().mean()) > 0.05
    # image 1 is what a batch-of-one network with image 1's weights draws
    alone = CPPNParam(24, batch=1)
    with torch.no_grad():
        for dst, src in zip(alone.parameters(), param.parameters(), strict=True):
            dst.copy_(src[1:2])
    torch.testing.assert_close(alone().detach(), images[1:2])


def test_no_inverse_and_validation():
    param = CPPNParam(16)
    with pytest.raises(ConfigError, match="cannot start from an image"):
        param.from_image(torch.rand(1, 3, 16, 16))
    with pytest.raises(ConfigError, match="size"):
        param.render((0, 16))
    for field in ("hidden_channels", "num_layers"):
        with pytest.raises(ConfigError, match=f"param.{field}"):
            ParamSpec("cppn", **{field: 0})
    narrow = build_param(ParamSpec("cppn", hidden_channels=4, num_layers=2), 16)
    assert [tuple(w.shape) for w in narrow.weights] == [(1, 3, 4), (1, 8, 4), (1, 8, 3)]
