from __future__ import annotations

import numpy as np
import pytest
import torch

from paramviz.errors import ImageError, UnknownNameError
from paramviz.params import (
    COLOR_CORRELATION_SVD_SQRT,
    COLOR_MATRIX,
    COLOR_MEAN,
    MAX_COLUMN_NORM,
    SQUASHES,
    clamp_unit,
    correlate_colors,
    decorrelate_colors,
    from_valid_rgb,
    logit,
    to_valid_rgb,
)

RAW = np.array([[0.26, 0.09, 0.02], [0.27, 0.00, -0.05], [0.27, -0.09, 0.03]])


def test_matrix_is_lucids_and_normalized_by_largest_column_norm():
    np.testing.assert_array_equal(np.array(COLOR_CORRELATION_SVD_SQRT), RAW)
    norms = np.linalg.norm(RAW, axis=0)
    assert pytest.approx(norms.max(), abs=1e-15) == MAX_COLUMN_NORM
    assert pytest.approx(0.4619524, abs=1e-7) == MAX_COLUMN_NORM
    normalized = COLOR_MATRIX.numpy()
    np.testing.assert_allclose(normalized, RAW / norms.max(), rtol=0, atol=1e-15)
    col_norms = np.linalg.norm(normalized, axis=0)
    assert col_norms.max() == pytest.approx(1.0, abs=1e-12)
    assert (col_norms <= 1 + 1e-12).all()


def test_decorrelate_matches_per_pixel_matmul_with_transpose():
    t = torch.randn(2, 3, 5, 7, dtype=torch.float64)
    expected = t.permute(0, 2, 3, 1).numpy() @ (RAW / np.linalg.norm(RAW, axis=0).max()).T
    got = decorrelate_colors(t).permute(0, 2, 3, 1).numpy()
    np.testing.assert_allclose(got, expected, atol=1e-12)


def test_correlate_is_exact_inverse():
    t = torch.randn(2, 3, 5, 7, dtype=torch.float64)
    torch.testing.assert_close(correlate_colors(decorrelate_colors(t)), t, atol=1e-12, rtol=0)
    torch.testing.assert_close(decorrelate_colors(correlate_colors(t)), t, atol=1e-12, rtol=0)


def test_decorrelate_keeps_dtype_and_rejects_wrong_channels():
    assert decorrelate_colors(torch.zeros(1, 3, 2, 2, dtype=torch.float16)).dtype == torch.float16
    with pytest.raises(ImageError, match="3 colour channels"):
        decorrelate_colors(torch.zeros(1, 4, 2, 2))


def test_logit_clips_and_inverts_sigmoid():
    x = torch.linspace(-6, 6, 101, dtype=torch.float64)
    torch.testing.assert_close(logit(torch.sigmoid(x)), x, atol=1e-9, rtol=0)
    ends = logit(torch.tensor([0.0, 1.0], dtype=torch.float64))
    assert torch.isfinite(ends).all()
    assert ends[0] == pytest.approx(np.log(1e-6 / (1 - 1e-6)))


def test_clamp_forward_and_gradient():
    x = torch.tensor([-0.5, -0.5, 0.3, 1.5, 1.5], requires_grad=True)
    y = clamp_unit(x)
    assert y.tolist() == pytest.approx([0.0, 0.0, 0.3, 1.0, 1.0])
    # Upstream grads: descent moves x by -grad. Inside: passes. Outside: only inward components pass.
    g = torch.tensor([-2.0, 3.0, 5.0, 7.0, -11.0])
    y.backward(g)
    assert x.grad.tolist() == [-2.0, 0.0, 5.0, 7.0, 0.0]


def test_clamp_decorrelated_starts_at_color_mean_sigmoid_at_half():
    zero = torch.zeros(1, 3, 2, 2)
    clamp = to_valid_rgb(zero, decorrelate=True, squash="clamp")
    torch.testing.assert_close(clamp[0, :, 0, 0], torch.tensor(COLOR_MEAN))
    assert (to_valid_rgb(zero, decorrelate=False, squash="clamp") == 0).all()
    assert (to_valid_rgb(zero, decorrelate=True, squash="sigmoid") == 0.5).all()


@pytest.mark.parametrize("squash", SQUASHES.names())
@pytest.mark.parametrize("decorrelate", [True, False])
def test_from_valid_rgb_inverts_to_valid_rgb(squash, decorrelate):
    img = torch.rand(2, 3, 6, 5, dtype=torch.float64) * 0.9 + 0.05
    t = from_valid_rgb(img, decorrelate, squash)
    torch.testing.assert_close(to_valid_rgb(t, decorrelate, squash), img, atol=1e-12, rtol=0)


def test_unknown_squash_suggests():
    with pytest.raises(UnknownNameError, match="sigmoid"):
        SQUASHES.get("sigmod")
