import math

import numpy as np
import pytest
import scipy.linalg
import torch

from paramviz.errors import ConfigError, UnknownNameError
from paramviz.objectives.style import (
    TARGET_SUFFIX,
    ContentLoss,
    GramStyleLoss,
    W2StyleLoss,
    blend_weights,
    content_objective,
    covariance,
    feature_moments,
    gaussian_w2,
    gram_matrix,
    sqrtm_psd,
    style_objective,
    swag,
    trace_sqrtm_psd,
)


def gen(seed=0):
    return torch.Generator().manual_seed(seed)


def feats(b=1, c=4, h=5, w=6, seed=0, dtype=torch.float64):
    return torch.randn(b, c, h, w, generator=gen(seed), dtype=dtype)


def gaussian_features(mean, cov, n_side=8, seed=0):
    """Features (1, C, n, n) whose empirical mean and (population) covariance are exactly mean and cov."""
    c = mean.shape[0]
    z = torch.randn(c, n_side * n_side, generator=gen(seed), dtype=torch.float64)
    z = z - z.mean(1, keepdim=True)
    emp = z @ z.T / z.shape[1]
    z = torch.linalg.solve(torch.linalg.cholesky(emp), z)  # whiten: empirical covariance = I
    x = torch.linalg.cholesky(cov) @ z + mean[:, None]
    return x.reshape(1, c, n_side, n_side)


# --- statistics against direct computations -----------------------------------------------------------------
@pytest.mark.parametrize("normalize", ["hw", "chw"])
def test_gram_matrix_matches_a_direct_sum(normalize):
    x = feats(b=2)
    b, c, h, w = x.shape
    g = gram_matrix(x, normalize)
    norm = h * w if normalize == "hw" else c * h * w
    for i in range(b):
        for p in range(c):
            for q in range(c):
                direct = sum(float(x[i, p, y, z] * x[i, q, y, z]) for y in range(h) for z in range(w)) / norm
                assert g[i, p, q].item() == pytest.approx(direct, rel=1e-10)


def test_gram_matrix_rejects_unknown_normalization_and_non_spatial_layers():
    with pytest.raises(UnknownNameError, match="'chw'"):
        gram_matrix(feats(), "cwh")
    with pytest.raises(ConfigError, match="spatial"):
        gram_matrix(torch.zeros(1, 10))


def test_gram_loss_is_the_mean_squared_difference_of_gram_matrices():
    style, x = feats(seed=1), feats(b=3, seed=2, h=7, w=3)
    for normalize in ("hw", "chw"):
        loss = GramStyleLoss("l", [style], normalize=normalize)
        expected = (gram_matrix(x, normalize) - gram_matrix(style, normalize)[0]).pow(2).mean((1, 2))
        torch.testing.assert_close(loss({"l": x}), expected)
        assert loss({"l": style}).item() == pytest.approx(0.0, abs=1e-12)


def test_feature_moments_and_covariance_match_numpy():
    x = feats(c=3, seed=4)
    mean, srm = feature_moments(x)
    flat = x[0].reshape(3, -1).numpy()
    np.testing.assert_allclose(mean[0].numpy(), flat.mean(1))
    np.testing.assert_allclose(covariance(mean, srm)[0].numpy(), np.cov(flat, bias=True), atol=1e-12)


def test_content_loss_is_the_mean_squared_error_per_image():
    target, x = feats(seed=5), feats(b=2, seed=6)
    loss = ContentLoss("l", target)
    assert loss.name == "content:l"
    torch.testing.assert_close(loss({"l": x}), ((x - target) ** 2).mean((1, 2, 3)))
    # a per-step target (the content image under the same transforms) replaces the stored one
    other = feats(seed=7)
    torch.testing.assert_close(loss({"l": x, "l" + TARGET_SUFFIX: other}), ((x - other) ** 2).mean((1, 2, 3)))
    with pytest.raises(ConfigError, match="image size changed"):
        loss({"l": feats(h=4)})


# --- Wasserstein-2 -------------------------------------------------------------------------------------------
def test_w2_of_diagonal_gaussians_has_the_closed_form():
    m1, m2 = torch.tensor([0.0, 1.0, -2.0], dtype=torch.float64), torch.tensor([1.0, 1.0, 0.5], dtype=torch.float64)
    a, b = torch.tensor([1.0, 4.0, 0.25], dtype=torch.float64), torch.tensor([9.0, 1.0, 0.25], dtype=torch.float64)
    expected = ((m1 - m2) ** 2).sum() + ((a.sqrt() - b.sqrt()) ** 2).sum()
    assert gaussian_w2(m1, torch.diag(a), m2, torch.diag(b)).item() == pytest.approx(expected.item(), rel=1e-10)


def test_w2_of_commuting_covariances_is_the_frobenius_distance_of_their_roots():
    q, _ = torch.linalg.qr(torch.randn(4, 4, generator=gen(1), dtype=torch.float64))
    c1 = q @ torch.diag(torch.tensor([1.0, 2.0, 3.0, 4.0], dtype=torch.float64)) @ q.T
    c2 = q @ torch.diag(torch.tensor([0.5, 5.0, 3.0, 0.1], dtype=torch.float64)) @ q.T
    zero = torch.zeros(4, dtype=torch.float64)
    expected = torch.linalg.matrix_norm(sqrtm_psd(c1) - sqrtm_psd(c2)) ** 2
    assert gaussian_w2(zero, c1, zero, c2).item() == pytest.approx(expected.item(), rel=1e-9)


def test_w2_of_general_gaussians_matches_scipy_sqrtm():
    a = torch.randn(3, 5, 5, generator=gen(2), dtype=torch.float64)
    c1 = a @ a.mT + 0.1 * torch.eye(5, dtype=torch.float64)
    b = torch.randn(5, 5, generator=gen(3), dtype=torch.float64)
    c2 = b @ b.T + 0.1 * torch.eye(5, dtype=torch.float64)
    m1, m2 = (
        torch.randn(3, 5, generator=gen(4), dtype=torch.float64),
        torch.randn(5, generator=gen(5), dtype=torch.float64),
    )
    values = gaussian_w2(m1, c1, m2, c2)
    root2 = scipy.linalg.sqrtm(c2.numpy())
    for i in range(3):
        cross = scipy.linalg.sqrtm(root2 @ c1[i].numpy() @ root2).real
        expected = ((m1[i] - m2) ** 2).sum().item() + np.trace(c1[i].numpy() + c2.numpy() - 2 * cross)
        assert values[i].item() == pytest.approx(expected, rel=1e-8)
    assert gaussian_w2(m2, c2, m2, c2).item() == pytest.approx(0.0, abs=1e-9)


@pytest.mark.parametrize("reduction", ["sum", "mean"])
def test_w2_style_loss_on_gaussian_features_equals_the_closed_form(reduction):
    mean_s, var_s = torch.tensor([1.0, -1.0, 0.0]), torch.tensor([4.0, 1.0, 0.25])
    mean_x, var_x = torch.tensor([0.0, 0.5, 2.0]), torch.tensor([1.0, 9.0, 0.25])
    style = gaussian_features(mean_s.double(), torch.diag(var_s).double(), seed=1)
    x = gaussian_features(mean_x.double(), torch.diag(var_x).double(), seed=2)
    loss = W2StyleLoss("l", [style], eps=0.0, reduction=reduction)
    expected = ((mean_x - mean_s) ** 2).sum() + ((var_x.sqrt() - var_s.sqrt()) ** 2).sum()
    expected = expected / 3 if reduction == "mean" else expected
    assert loss({"l": x}).item() == pytest.approx(expected.item(), rel=1e-6)
    assert loss({"l": style}).item() == pytest.approx(0.0, abs=1e-6)


def test_w2_gradient_is_finite_and_correct_with_repeated_eigenvalues():
    style = feats(c=4, seed=8, dtype=torch.float32)
    loss = W2StyleLoss("l", [style])
    # constant features: zero covariance, every eigenvalue equal
    x = torch.ones(1, 4, 5, 6, requires_grad=True)
    loss({"l": x}).sum().backward()
    assert torch.isfinite(x.grad).all() and x.grad.abs().sum() > 0
    # rank-deficient features (two identical channels)
    y = feats(c=4, seed=9, dtype=torch.float32)
    y[:, 1] = y[:, 0]
    y.requires_grad_(True)
    loss({"l": y}).sum().backward()
    assert torch.isfinite(y.grad).all()


def test_trace_sqrtm_gradient_matches_finite_differences():
    a = torch.randn(4, 4, generator=gen(10), dtype=torch.float64)
    m = (a @ a.T + torch.eye(4, dtype=torch.float64)).requires_grad_(True)
    assert torch.autograd.gradcheck(lambda t: trace_sqrtm_psd(t @ t.T), (m,))
    # tr(M^1/2) of a diagonal matrix is the sum of square roots
    d = torch.diag(torch.tensor([4.0, 9.0, 0.0], dtype=torch.float64))
    assert trace_sqrtm_psd(d).item() == pytest.approx(5.0, abs=1e-5)


def test_w2_style_loss_descends_towards_the_target():
    style = feats(c=3, seed=11, dtype=torch.float32) * 2 + 1
    loss = W2StyleLoss("l", [style])
    x = feats(c=3, seed=12, dtype=torch.float32).requires_grad_(True)
    opt = torch.optim.Adam([x], lr=0.05)
    first = loss({"l": x}).item()
    for _ in range(200):
        opt.zero_grad()
        loss({"l": x}).sum().backward()
        opt.step()
    assert loss({"l": x}).item() < first / 10


# --- SWAG ----------------------------------------------------------------------------------------------------
def test_swag_is_a_softmax_over_all_activations_scaled_to_mean_one():
    x = feats(b=2, c=3, h=4, w=4)
    s = swag(x)
    n = 3 * 4 * 4
    torch.testing.assert_close(s.reshape(2, -1), torch.softmax(x.reshape(2, -1), 1) * n)
    torch.testing.assert_close(s.reshape(2, -1).sum(1), torch.full((2,), float(n), dtype=x.dtype))
    torch.testing.assert_close(swag(x, temperature=2.0), swag(x / 2.0))
    torch.testing.assert_close(swag(x + 3.0), s)  # softmax ignores a constant shift


@pytest.mark.parametrize("cls", [GramStyleLoss, W2StyleLoss])
def test_swag_option_applies_the_softmax_before_the_statistics(cls):
    style, x = feats(seed=13), feats(b=2, seed=14)
    with_swag = cls("l", [style], swag=True, temperature=0.5)
    manual = cls("l", [swag(style, 0.5)])
    torch.testing.assert_close(with_swag({"l": x}), manual({"l": swag(x, 0.5)}))
    # the softmax makes the loss blind to a constant shift of the activations; the plain loss is not
    assert with_swag({"l": x + 5}).allclose(with_swag({"l": x}))
    assert not cls("l", [style])({"l": x + 5}).allclose(cls("l", [style])({"l": x}))
    with pytest.raises(ConfigError, match="temperature"):
        cls("l", [style], swag=True, temperature=0.0)


# --- blending several style images ---------------------------------------------------------------------------
def test_gram_blend_is_the_weighted_mean_of_gram_matrices():
    a, b = feats(seed=15, h=4, w=4), feats(seed=16, h=6, w=3)  # sizes may differ
    loss = GramStyleLoss("l", [a, b], [3.0, 1.0])
    torch.testing.assert_close(loss.target, 0.75 * gram_matrix(a)[0] + 0.25 * gram_matrix(b)[0])


def test_w2_blend_is_the_moment_matched_mixture():
    a, b = feats(seed=17, h=4, w=4), feats(seed=18, h=4, w=4) * 3 + 1
    blended = W2StyleLoss("l", [a, b])  # equal weights
    pooled = W2StyleLoss("l", [torch.cat([a, b], dim=3)])  # all positions of both images
    torch.testing.assert_close(blended.mean, pooled.mean)
    torch.testing.assert_close(blended.cov, pooled.cov)
    only_a = W2StyleLoss("l", [a, b], [1.0, 0.0])
    torch.testing.assert_close(only_a.cov, W2StyleLoss("l", [a]).cov)


def test_blend_weights_are_validated_and_normalized():
    assert blend_weights(None, 4) == [0.25] * 4
    assert blend_weights([2, 6], 2) == [0.25, 0.75]
    with pytest.raises(ConfigError, match="2 weights for 3 images"):
        blend_weights([1, 1], 3)
    with pytest.raises(ConfigError, match="non-negative"):
        blend_weights([1, -1], 2)
    with pytest.raises(ConfigError, match="every weight is 0"):
        blend_weights([0, 0], 2)


# --- contract: every style loss ------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "make",
    [
        lambda t: GramStyleLoss("l", [t]),
        lambda t: GramStyleLoss("l", [t], normalize="chw"),
        lambda t: W2StyleLoss("l", [t]),
        lambda t: W2StyleLoss("l", [t], reduction="sum"),
        lambda t: GramStyleLoss("l", [t], swag=True),
        lambda t: ContentLoss("l", t),
    ],
    ids=["gram-hw", "gram-chw", "w2-mean", "w2-sum", "gram-swag", "content"],
)
def test_losses_are_per_image_zero_at_the_target_and_keep_targets_in_buffers(make):
    target = feats(seed=19, dtype=torch.float32)
    loss = make(target)
    assert loss.layers() == {"l"}
    x = torch.cat([target, feats(seed=20, dtype=torch.float32)])
    values = loss({"l": x})
    assert values.shape == (2,)
    assert values[0].item() == pytest.approx(0.0, abs=1e-4) and values[1].item() > 1e-3
    torch.testing.assert_close(values[1:], loss({"l": x[1:]}))  # images do not interact
    assert len(list(loss.buffers())) >= 1 and not list(loss.parameters())
    state = loss.state_dict()
    assert state and all(not v.requires_grad for v in state.values())
    assert loss.double()({"l": x.double()}).dtype == torch.float64  # buffers follow .to()/.double()


def test_style_loss_rejects_features_from_another_layer():
    loss = GramStyleLoss("l", [feats(c=4)])
    with pytest.raises(ConfigError, match="channels"):
        loss({"l": feats(c=5)})


# --- builders ------------------------------------------------------------------------------------------------
def test_style_objective_computes_targets_once_and_names_terms(tiny_backbone):
    style = torch.rand(1, 3, 24, 32, generator=gen(21))
    calls = []
    tiny_backbone.register_forward_hook(lambda *a: calls.append(1))
    objective = style_objective(tiny_backbone, [style], {"relu1": 0.25, "relu2": 0.75, "conv3": 0.0})
    assert len(calls) == 1  # one forward pass for the style image, no more
    assert {name for _, name in [(w, o.name) for w, o in objective.leaves()]} == {"style:relu1", "style:relu2"}
    assert sorted(w for w, _ in objective.leaves()) == [0.25, 0.75]
    feats_style = tiny_backbone(style, ["relu1", "relu2"])
    total, terms = objective.evaluate(feats_style)
    assert total.item() == pytest.approx(0.0, abs=1e-6) and set(terms) == {"style:relu1", "style:relu2"}
    assert style_objective(tiny_backbone, [style], {"relu1": 0.0}) is None


def test_builders_report_bad_layers_and_weights(tiny_backbone):
    style = torch.rand(1, 3, 16, 16, generator=gen(22))
    with pytest.raises(UnknownNameError, match="relu1"):
        style_objective(tiny_backbone, [style], {"relu9": 1.0})
    with pytest.raises(ConfigError, match="spatial"):
        style_objective(tiny_backbone, [style], {"logits": 1.0})
    with pytest.raises(ConfigError, match="non-negative"):
        content_objective(tiny_backbone, style, {"relu1": -1.0})
    with pytest.raises(UnknownNameError, match="'w2'"):
        style_objective(tiny_backbone, [style], {"relu1": 1.0}, loss="wasserstein")
    objective = content_objective(tiny_backbone, style, {"relu2": 2.0}, names={"relu2": "content:mine"})
    assert [(w, o.name) for w, o in objective.leaves()] == [(2.0, "content:mine")]
    assert math.isclose(objective.evaluate(tiny_backbone(style, ["relu2"]))[0].item(), 0.0, abs_tol=1e-7)
