import math

import pytest
import torch
from torch import nn

from paramviz.errors import ConfigError, UnknownNameError
from paramviz.metrics.robustness import (
    DEFAULT_EPS,
    PGDSettings,
    count_steps,
    feature_distance,
    layer_robustness,
    mean_pairwise_distance,
    pgd_feature_attack,
    robustness_ratio,
)


def gen(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def mid_images(n: int = 4, size: int = 6, seed: int = 0) -> torch.Tensor:
    """Images in [0.3, 0.7]: small balls around them stay inside the [0, 1] box."""
    return 0.3 + 0.4 * torch.rand(n, 3, size, size, generator=gen(seed))


def small_convnet() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Conv2d(3, 6, 3, padding=1), nn.Tanh(), nn.Conv2d(6, 4, 3, stride=2), nn.ReLU()).eval()


@pytest.mark.parametrize("eps", [0.05, 0.3, 1.0])
def test_identity_layer_gives_eps_over_mean_image_distance_l2(eps):
    x = mid_images()
    result = robustness_ratio(lambda t: t, x, PGDSettings("l2", eps, steps=5), generator=gen())
    expected = eps / mean_pairwise_distance(x)
    assert result.r == pytest.approx(expected, rel=1e-5)
    assert result.per_image == pytest.approx([expected] * 4, rel=1e-5)
    assert result.r_std == pytest.approx(0, abs=1e-6)
    assert result.pairwise_distance == pytest.approx(mean_pairwise_distance(x))
    assert result.adversarial_distance == pytest.approx(eps, rel=1e-5)


def test_identity_layer_linf_reaches_the_corner_of_the_cube():
    x = mid_images()
    eps = 0.05
    result = robustness_ratio(lambda t: t, x, PGDSettings("linf", eps, steps=5), generator=gen())
    assert result.adversarial_distance == pytest.approx(eps * math.sqrt(x[0].numel()), rel=1e-5)


def test_linear_layer_matches_eps_times_largest_singular_value():
    d, m = 3 * 6 * 6, 12
    g = gen(1)
    u, _ = torch.linalg.qr(torch.randn(m, m, generator=g))
    v, _ = torch.linalg.qr(torch.randn(d, m, generator=g))
    sigma = torch.tensor([4.0, 2.0, 1.5] + [1.0] * (m - 3))
    w = u @ torch.diag(sigma) @ v.T

    def f(t: torch.Tensor) -> torch.Tensor:
        return t.flatten(1) @ w.T

    x = mid_images(n=5, seed=2)
    eps = 0.1
    result = robustness_ratio(f, x, PGDSettings("l2", eps, steps=30), generator=gen())
    bound = eps * torch.linalg.matrix_norm(w, 2).item() / mean_pairwise_distance(f(x))
    assert result.r == pytest.approx(bound, rel=0.01)
    assert result.r <= bound * (1 + 1e-6)  # nothing in the ball can beat the operator norm


@pytest.mark.parametrize("norm", ["l2", "linf"])
@pytest.mark.parametrize("random_start", [False, True])
def test_attack_never_leaves_the_ball_or_the_image_box(norm, random_start):
    net = small_convnet()
    x = torch.rand(3, 3, 10, 10, generator=gen(3))  # values near 0 and 1: the box constraint binds
    eps = 0.5 if norm == "l2" else 0.1
    settings = PGDSettings(norm, eps, steps=6, step_size=eps, random_start=random_start)
    result = pgd_feature_attack(net, x, settings, generator=gen())
    delta = (result.images - x).flatten(1)
    size = delta.norm(dim=1) if norm == "l2" else delta.abs().amax(dim=1)
    assert (size <= eps * (1 + 1e-5)).all()
    assert result.images.min() >= 0 and result.images.max() <= 1
    assert (result.distance > 0).all()
    with torch.no_grad():
        assert result.distance == pytest.approx(feature_distance(net(result.images), net(x)), rel=1e-4)


@pytest.mark.parametrize("norm", ["l2", "linf"])
def test_r_grows_with_eps(norm, tiny_backbone):
    x = torch.rand(4, 3, 12, 12, generator=gen(4))
    radii = (0.1, 0.4, 1.6) if norm == "l2" else (1 / 255, 4 / 255, 16 / 255)
    rs = [
        layer_robustness(tiny_backbone, x, ["conv3"], PGDSettings(norm, eps, steps=8), generator=gen())[0].r
        for eps in radii
    ]
    assert rs[0] < rs[1] < rs[2]


def test_more_steps_with_a_fixed_step_never_do_worse_best_iterate_is_kept():
    torch.manual_seed(0)
    proj = torch.randn(3 * 5 * 5, 8)

    def f(t: torch.Tensor) -> torch.Tensor:  # oscillating: the last iterate is often not the best
        return torch.sin(25 * t.flatten(1) @ proj)

    x = mid_images(n=3, size=5)
    previous = None
    for steps in (1, 2, 4, 8):
        settings = PGDSettings("l2", 0.5, steps=steps, step_size=0.4, random_start=True)
        d = pgd_feature_attack(f, x, settings, generator=gen()).distance
        if previous is not None:
            assert (d >= previous - 1e-6).all()
        previous = d


def test_zero_eps_gives_zero_and_step_count_matches_callbacks(tiny_backbone):
    x = torch.rand(3, 3, 8, 8, generator=gen())
    assert layer_robustness(tiny_backbone, x, ["conv2"], PGDSettings("l2", 0.0, steps=3))[0].r == 0
    calls = []
    settings = PGDSettings("l2", 0.2, steps=3)
    layer_robustness(tiny_backbone, x, ["conv2", "stage1"], settings, batch_size=2, on_step=calls.append)
    assert len(calls) == count_steps(3, 2, settings, batch_size=2) == 2 * 2 * 3


def test_random_start_is_reproducible_from_the_generator():
    net = small_convnet()
    x = torch.rand(2, 3, 8, 8, generator=gen())
    s = PGDSettings("linf", 0.05, steps=2, random_start=True)
    a = pgd_feature_attack(net, x, s, generator=gen(7)).images
    b = pgd_feature_attack(net, x, s, generator=gen(7)).images
    c = pgd_feature_attack(net, x, s, generator=gen(8)).images
    assert torch.equal(a, b) and not torch.equal(a, c)


def test_mean_pairwise_distance_is_over_distinct_pairs():
    pts = torch.tensor([[0.0, 0.0], [3.0, 4.0], [0.0, 8.0]])
    assert mean_pairwise_distance(pts) == pytest.approx((5 + 8 + 5) / 3)


def test_settings_defaults_and_resolved_values():
    s = PGDSettings("linf", steps=10)
    assert s.radius == DEFAULT_EPS["linf"] == pytest.approx(4 / 255)
    assert s.step == pytest.approx(2.5 * 4 / 255 / 10)
    assert PGDSettings("l2", 2.0, steps=4, step_size=0.1).to_dict() == {
        "norm": "l2",
        "eps": 2.0,
        "steps": 4,
        "step_size": 0.1,
        "random_start": False,
    }


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"norm": "l1"}, "norm must be one of 'l2', 'linf', got 'l1'"),
        ({"eps": -1.0}, "eps must be a finite number >= 0"),
        ({"steps": -2}, "steps must be an integer >= 0"),
        ({"step_size": 0.0}, "step_size must be a positive number"),
        ({"norm": "linf", "eps": 4.0}, "4/255"),
    ],
)
def test_settings_validation_names_the_value(kwargs, match):
    with pytest.raises(ConfigError, match=match):
        PGDSettings(**kwargs)


def test_input_errors_are_explained(tiny_backbone):
    s = PGDSettings("l2", 0.1, steps=1)
    with pytest.raises(ConfigError, match="at least 2 images"):
        robustness_ratio(lambda t: t, torch.rand(1, 3, 4, 4), s)
    with pytest.raises(ConfigError, match=r"values in \[0, 1\]"):
        robustness_ratio(lambda t: t, torch.rand(2, 3, 4, 4) * 2, s)
    with pytest.raises(ConfigError, match="same features for every image"):
        robustness_ratio(lambda t: t.sum() * 0 + torch.zeros(t.shape[0], 3), torch.rand(2, 3, 4, 4), s)
    with pytest.raises(UnknownNameError, match="conv3"):
        layer_robustness(tiny_backbone, torch.rand(2, 3, 8, 8), ["conv3", "conv33"], s)
    with pytest.raises(ConfigError, match="no layers given"):
        layer_robustness(tiny_backbone, torch.rand(2, 3, 8, 8), [], s)
