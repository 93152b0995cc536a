"""transform_robustness on hand-made networks whose answer is known."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from paramviz.backbones.base import Backbone
from paramviz.errors import ConfigError
from paramviz.metrics import MetricContext, compute_metrics
from paramviz.metrics.transform import activation_part, transform_robustness
from paramviz.objectives import L1, L2, Channel, Neuron, TotalVariation


def _backbone(*modules: nn.Module) -> Backbone:
    """A backbone without normalization, layers addressed as "0", "1", ..."""
    return Backbone(nn.Sequential(*modules), mean=(0.0, 0.0, 0.0), std=(1.0, 1.0, 1.0), name="hand-made")


def _conv(kernel: torch.Tensor, stride: int = 1) -> nn.Conv2d:
    out_ch, in_ch, kh, kw = kernel.shape
    conv = nn.Conv2d(in_ch, out_ch, (kh, kw), stride=stride, bias=False)
    conv.weight.data.copy_(kernel)
    return conv


@pytest.fixture
def brightness() -> Backbone:
    """Channel 0 = global mean of the red channel: blind to where anything is."""
    kernel = torch.zeros(1, 3, 1, 1)
    kernel[0, 0] = 1.0
    return _backbone(_conv(kernel), nn.AdaptiveAvgPool2d(1))


@pytest.fixture
def phase_detector() -> Backbone:
    """Channel 0 = mean over 2x2 cells (stride 2) of the grey checkerboard pattern in phase with the pixel grid."""
    kernel = torch.tensor([[1.0, -1.0], [-1.0, 1.0]]).expand(1, 3, 2, 2) / 12
    return _backbone(_conv(kernel, stride=2), nn.AdaptiveAvgPool2d(1))


def smooth_image(batch: int = 2, size: int = 64) -> torch.Tensor:
    y, x = torch.meshgrid(torch.linspace(0, 1, size), torch.linspace(0, 1, size), indexing="ij")
    red = 0.8 + 0.1 * torch.sin(6 * x + 3 * y)
    img = torch.stack([red, 0.5 * torch.ones_like(red), 0.3 + 0.2 * x])
    return img.expand(batch, -1, -1, -1).contiguous()


def checkerboard_image(batch: int = 2, size: int = 64) -> torch.Tensor:
    i = torch.arange(size)
    board = ((i.view(-1, 1) + i.view(1, -1)) % 2 == 0).float()
    return board.expand(batch, 3, -1, -1).contiguous()


def test_position_blind_activation_survives_the_transforms(brightness) -> None:
    value = transform_robustness(smooth_image(), Channel("1", 0), brightness)
    assert value.shape == (2,) and value.dtype == torch.float64
    assert (value > 0.85).all() and (value < 1.05).all()


def test_pixel_exact_pattern_collapses(phase_detector) -> None:
    image = checkerboard_image()
    act = phase_detector(image, ["1"])["1"][:, 0, 0, 0]
    assert (act > 0.3).all()  # the pattern excites the detector on the original
    value = transform_robustness(image, Channel("1", 0), phase_detector)
    assert (value.abs() < 0.3).all()


def test_draws_come_from_the_seed_and_leave_the_global_rng_alone(phase_detector) -> None:
    image = checkerboard_image(1) * 0.6 + smooth_image(1) * 0.4
    torch.manual_seed(123)
    state = torch.get_rng_state()
    first = transform_robustness(image, Channel("1", 0), phase_detector, seed=5)
    assert torch.equal(torch.get_rng_state(), state)
    assert torch.equal(transform_robustness(image, Channel("1", 0), phase_detector, seed=5), first)
    assert not torch.equal(transform_robustness(image, Channel("1", 0), phase_detector, seed=6), first)
    assert torch.equal(torch.get_rng_state(), state)


def test_pixel_penalties_are_left_out(brightness) -> None:
    image = smooth_image()
    plain = transform_robustness(image, Channel("1", 0), brightness)
    penalized = Channel("1", 0) + 5 * TotalVariation() + L1(0.5) + 0.1 * L2()
    torch.testing.assert_close(transform_robustness(image, penalized, brightness), plain)
    assert [leaf.name for _, leaf in activation_part(penalized).leaves()] == ["channel:1:0"]
    assert activation_part(TotalVariation() + L1()) is None
    with pytest.raises(ConfigError, match="reads a network layer"):
        transform_robustness(image, TotalVariation(), brightness)


def test_an_l1_penalty_on_a_layer_reads_the_network_and_counts(brightness) -> None:
    assert activation_part(L1(layer="1")) is not None


def test_non_positive_activation_gives_zero(brightness) -> None:
    image = smooth_image()
    image[1, 0] = 0.0  # no red: the activation of image 1 is 0
    value = transform_robustness(image, Channel("1", 0), brightness)
    assert value[1].item() == 0.0 and value[0].item() > 0.85
    minimized = transform_robustness(smooth_image(), -1 * Channel("1", 0), brightness)  # activation < 0
    assert torch.equal(minimized, torch.zeros(2, dtype=torch.float64))


def test_per_image_targets_keep_their_batch_layout(brightness) -> None:
    image = smooth_image()
    image[1, 0] = 0.0
    # image 0 is scored on channel 0 (red mean); image 1 on the same channel but its objective is @1-only
    value = transform_robustness(image, Channel("1", [0, 0]), brightness)
    assert value[0] > 0.85 and value[1] == 0
    only_first = transform_robustness(smooth_image(), Channel("1", 0, batch=0), brightness)
    assert only_first[0] > 0.85 and only_first[1] == 0


def test_a_neuron_on_a_small_spot_loses_it_under_jitter() -> None:
    kernel = torch.zeros(1, 3, 1, 1)
    kernel[0, 0] = 1.0
    local = _backbone(_conv(kernel))  # the red value at each pixel
    image = torch.zeros(1, 3, 64, 64)
    image[..., 30:34, 30:34] = 1.0  # a 4-px bright square on black; jitter up to 12 px moves it off the unit
    assert 0 <= transform_robustness(image, Neuron("0", 0, x=32, y=32), local).item() < 0.5


def test_registry_entry_uses_the_context(brightness) -> None:
    context = MetricContext("visualize", objective=Channel("1", 0) + TotalVariation(), backbone=brightness, seed=3)
    values = compute_metrics(smooth_image(), context, ["transform_robustness"])
    expected = transform_robustness(smooth_image(), Channel("1", 0), brightness, seed=3)
    assert values.per_image["transform_robustness"] == pytest.approx(expected.tolist())
    with pytest.raises(ConfigError, match="transform_robustness needs .* objective"):
        compute_metrics(smooth_image(), MetricContext("visualize", backbone=brightness), ["transform_robustness"])
    with pytest.raises(ConfigError, match="reads a network layer"):
        compute_metrics(
            smooth_image(),
            MetricContext("visualize", objective=TotalVariation(), backbone=brightness),
            ["transform_robustness"],
        )
