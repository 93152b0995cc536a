from __future__ import annotations

import math

import pytest
import torch

from paramviz.errors import ConfigError
from paramviz.objectives.penalties import INPUT_KEY, L1, L2, BlurPenalty, TotalVariation

PENALTIES = [L1, L2, TotalVariation, BlurPenalty]


def test_input_key_is_the_one_render_uses():
    from paramviz.render import INPUT_KEY as RENDER_INPUT_KEY

    assert INPUT_KEY == RENDER_INPUT_KEY == "input"


@pytest.mark.parametrize("cls", PENALTIES)
def test_penalties_read_the_image(cls):
    penalty = cls()
    assert penalty.layers() == {INPUT_KEY}
    image = torch.rand(2, 3, 8, 8)
    assert penalty({INPUT_KEY: image}).shape == (2,)


@pytest.mark.parametrize("cls", PENALTIES)
def test_each_image_is_penalized_on_its_own(cls):
    gen = torch.Generator().manual_seed(0)
    a, b, c = (torch.rand(1, 3, 8, 8, generator=gen) for _ in range(3))
    penalty = cls()
    together = penalty({INPUT_KEY: torch.cat([a, b])})
    other = penalty({INPUT_KEY: torch.cat([a, c])})
    torch.testing.assert_close(together[0], other[0])
    assert together[1] != other[1]


def test_l1_is_the_mean_absolute_deviation():
    image = torch.rand(2, 3, 5, 7)
    torch.testing.assert_close(L1()({INPUT_KEY: image}), image.abs().mean((1, 2, 3)))
    torch.testing.assert_close(L1(0.5)({INPUT_KEY: image}), (image - 0.5).abs().mean((1, 2, 3)))


def test_l2_is_the_root_mean_square_deviation():
    image = torch.rand(2, 3, 5, 7)
    expected = ((image - 0.25) ** 2).mean((1, 2, 3)).sqrt()
    torch.testing.assert_close(L2(0.25)({INPUT_KEY: image}), expected, atol=1e-6, rtol=1e-5)


def test_l2_gradient_is_finite_at_the_target():
    image = torch.full((1, 3, 4, 4), 0.5, requires_grad=True)
    L2(0.5)({INPUT_KEY: image}).sum().backward()
    assert torch.isfinite(image.grad).all()


def test_total_variation_values():
    constant = torch.full((1, 3, 6, 6), 0.3)
    assert TotalVariation()({INPUT_KEY: constant}).item() == 0
    checker = (torch.arange(6).view(6, 1) + torch.arange(6).view(1, 6)) % 2
    checker = checker.float().expand(1, 3, 6, 6)
    torch.testing.assert_close(TotalVariation()({INPUT_KEY: checker}), torch.tensor([2.0]))
    ramp = torch.linspace(0, 1, 5).view(1, 1, 1, 5).expand(1, 3, 4, 5)  # steps of 0.25 along x only
    torch.testing.assert_close(TotalVariation()({INPUT_KEY: ramp}), torch.tensor([0.25]))


def test_total_variation_of_a_one_pixel_wide_image_counts_only_rows():
    column = torch.tensor([0.0, 1.0, 1.0, 0.0]).view(1, 1, 4, 1)
    torch.testing.assert_close(TotalVariation()({INPUT_KEY: column}), torch.tensor([2.0 / 3.0]))


def test_total_variation_needs_a_spatial_map():
    with pytest.raises(ConfigError, match=r"\(B, C, H, W\)"):
        TotalVariation("fc")({"fc": torch.zeros(2, 5)})


@pytest.mark.parametrize("cls", PENALTIES)
def test_a_few_adam_steps_lower_each_penalty(cls):
    logits = torch.randn(2, 3, 12, 12, generator=torch.Generator().manual_seed(0)).requires_grad_(True)
    opt = torch.optim.Adam([logits], lr=0.1)
    penalty = cls(0.3) if cls is not TotalVariation else cls()
    losses = []
    for _ in range(5):
        loss = penalty({INPUT_KEY: torch.sigmoid(logits)})
        losses.append(loss.detach())
        opt.zero_grad()
        loss.sum().backward()
        opt.step()
    assert (losses[-1] < losses[0]).all()


def test_penalties_on_a_feature_layer():
    act = torch.randn(2, 4, 3, 3)
    penalty = L1(0.0, layer="layer3")
    assert penalty.layers() == {"layer3"}
    assert penalty.name == "l1:0:layer3"
    torch.testing.assert_close(penalty({"layer3": act}), act.abs().mean((1, 2, 3)))
    assert TotalVariation("layer3").name == "tv:layer3"


def test_names():
    assert [L1().name, L2().name, TotalVariation().name] == ["l1", "l2", "tv"]
    assert L1(0.5).name == "l1:0.5"


@pytest.mark.parametrize("target", [math.nan, math.inf, "0.5", True])
def test_bad_targets_are_refused(target):
    with pytest.raises(ConfigError, match="target"):
        L1(target)


# --- blur (Lucid's blur_input_each_step as a penalty) ---------------------------------------------------
def test_blur_penalty_is_half_the_mean_squared_distance_to_the_blurred_image():
    from paramviz.transforms.ops import gaussian_blur

    image = torch.rand(2, 3, 10, 9, generator=torch.Generator().manual_seed(0))
    expected = 0.5 * (image - gaussian_blur(image, 1.5)).pow(2).mean((1, 2, 3))
    torch.testing.assert_close(BlurPenalty(1.5)({INPUT_KEY: image}), expected)
    assert BlurPenalty()({INPUT_KEY: torch.full((1, 3, 6, 6), 0.4)}).abs().item() < 1e-12  # a flat image


def test_a_gradient_step_on_the_blur_penalty_is_lucids_blend_towards_the_blur():
    from paramviz.transforms.ops import gaussian_blur

    image = torch.rand(1, 3, 8, 8, generator=torch.Generator().manual_seed(1)).requires_grad_(True)
    BlurPenalty()({INPUT_KEY: image}).sum().backward()
    k, count = 0.3, image[0].numel()
    stepped = image.detach() - k * count * image.grad  # plain gradient descent with step k * N
    blended = (1 - k) * image.detach() + k * gaussian_blur(image.detach(), 1.0)  # Lucid: x <- (1-k) x + k blur(x)
    torch.testing.assert_close(stepped, blended)


def test_blur_penalty_names_and_checks():
    assert [BlurPenalty().name, BlurPenalty(2).name, BlurPenalty(1.0, "conv1").name] == [
        "blur",
        "blur:2",
        "blur:1:conv1",
    ]
    assert BlurPenalty().layers() == {INPUT_KEY}
    for sigma in (0, -1, math.inf, "1", True):
        with pytest.raises(ConfigError, match="sigma"):
            BlurPenalty(sigma)
    with pytest.raises(ConfigError, match=r"\(B, C, H, W\)"):
        BlurPenalty(1.0, "fc")({"fc": torch.zeros(2, 5)})


def test_adam_on_the_blur_penalty_smooths_the_image():
    from paramviz.metrics.spectral import hf_energy

    logits = torch.randn(1, 3, 24, 24, generator=torch.Generator().manual_seed(0)).requires_grad_(True)
    opt = torch.optim.Adam([logits], lr=0.05)
    before = hf_energy(torch.sigmoid(logits).detach())
    for _ in range(30):
        loss = BlurPenalty()({INPUT_KEY: torch.sigmoid(logits)})
        opt.zero_grad()
        loss.sum().backward()
        opt.step()
    assert hf_energy(torch.sigmoid(logits).detach()) < 0.5 * before
