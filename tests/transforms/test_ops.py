from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from paramviz.errors import ImageError
from paramviz.transforms import Jitter, Noise, Pad, Rotate, Scale, build_transforms


def dot_image(batch: int, h: int, w: int, y: int, x: int) -> torch.Tensor:
    img = torch.zeros(batch, 1, h, w)
    img[:, :, y, x] = 1.0
    return img


def brightest(img: torch.Tensor) -> list[tuple[int, int]]:
    flat = img.flatten(1).argmax(dim=1)
    w = img.shape[-1]
    return [(int(i) // w, int(i) % w) for i in flat]


@pytest.mark.parametrize("d", [1, 3, 8])
def test_jitter_shift_moves_a_pixel_by_the_draw_at_most_d(d):
    torch.manual_seed(d)
    op = Jitter(d)
    x = dot_image(64, 24, 24, 11, 12)
    params = op.sample(x.shape)
    out = op.apply(x, params)
    assert out.shape == x.shape
    shift = params["shift"]
    assert shift.abs().max() <= d
    assert shift.min() == -d and shift.max() == d  # the whole range is used
    for (y, xx), (dy, dx) in zip(brightest(out), shift.tolist(), strict=True):
        assert (y, xx) == (11 + dy, 12 + dx)
    assert torch.equal(out.sum(dim=(1, 2, 3)), torch.ones(64))  # moved, not interpolated


def test_jitter_shift_fills_by_reflection():
    x = torch.arange(6.0).view(1, 1, 1, 6).expand(1, 1, 2, 6).contiguous()
    out = Jitter(2).apply(x, {"shift": torch.tensor([[0, 2]])})
    assert out[0, 0, 0].tolist() == [2.0, 1.0, 0.0, 1.0, 2.0, 3.0]


@pytest.mark.parametrize("d", [2, 5])
def test_jitter_crop_is_lucids_random_crop(d):
    torch.manual_seed(0)
    op = Jitter(d, "crop")
    x = dot_image(64, 20, 20, 10, 9)
    params = op.sample(x.shape)
    out = op.apply(x, params)
    assert out.shape == (64, 1, 20 - d, 20 - d)
    offset = params["offset"]
    assert offset.min() == 0 and offset.max() == d
    for (y, xx), (oy, ox) in zip(brightest(out), offset.tolist(), strict=True):
        assert (y, xx) == (10 - oy, 9 - ox)
    with pytest.raises(ImageError, match="larger than 5"):
        Jitter(5, "crop").sample((1, 3, 5, 8))


@pytest.mark.parametrize("batch", [1, 3])  # one image: a view of the input; more: per-image copies
def test_jitter_crop_gradient_is_that_of_slicing_each_image(batch):
    x = torch.rand(batch, 2, 9, 11, dtype=torch.float64, requires_grad=True)
    offsets = torch.tensor([[0, 3], [2, 0], [3, 1]])[:batch]
    out = Jitter(3, "crop").apply(x, {"offset": offsets})
    reference = torch.cat([x[i : i + 1, :, dy : dy + 6, dx : dx + 8] for i, (dy, dx) in enumerate(offsets.tolist())])
    assert torch.equal(out, reference)
    weights = torch.rand_like(out)
    (grad,) = torch.autograd.grad((out * weights).sum(), x)
    (expected,) = torch.autograd.grad((reference * weights).sum(), x)
    assert torch.equal(grad, expected)
    assert torch.autograd.gradcheck(lambda t: Jitter(3, "crop").apply(t, {"offset": offsets}), (x,))


def test_pad_modes():
    x = torch.rand(2, 3, 5, 6)
    const = Pad(3).apply(x, {})
    assert const.shape == (2, 3, 11, 12)
    assert torch.equal(const[:, :, 3:-3, 3:-3], x)
    border = const.clone()
    border[:, :, 3:-3, 3:-3] = 0.5
    assert (border == 0.5).all()
    assert (Pad(2, value=0.1).apply(x, {})[:, :, 0] == 0.1).all()
    torch.testing.assert_close(Pad(3, "reflect").apply(x, {}), F.pad(x, (3, 3, 3, 3), mode="reflect"))
    torch.testing.assert_close(Pad(3, "replicate").apply(x, {}), F.pad(x, (3, 3, 3, 3), mode="replicate"))
    # wider than the image: repeated reflection, as numpy does
    big = Pad(7, "reflect").apply(x, {}).numpy()
    np.testing.assert_array_equal(big, np.pad(x.numpy(), ((0, 0), (0, 0), (7, 7), (7, 7)), mode="reflect"))


@pytest.mark.parametrize("op, key", [(Scale((1.0,)), "scale"), (Rotate((0.0,)), "angle")])
def test_identity_affine(op, key):
    x = torch.rand(3, 3, 9, 12, dtype=torch.float64)
    params = op.sample(x.shape)
    assert (params[key] == op.choices[0]).all()
    torch.testing.assert_close(op.apply(x, params), x, atol=1e-12, rtol=0)


def test_rotate_is_counter_clockwise_about_the_centre():
    x = dot_image(1, 9, 9, 4, 7)  # right of the centre (4, 4)
    out = Rotate((90.0,)).apply(x, {"angle": torch.tensor([90.0], dtype=torch.float64)})
    assert out.shape == x.shape
    assert brightest(out) == [(1, 4)]  # now above the centre


def test_scale_zooms_about_the_centre():
    x = dot_image(1, 9, 9, 4, 6)  # 2 px right of the centre
    out = Scale((2.0,)).apply(x, {"scale": torch.tensor([2.0], dtype=torch.float64)})
    assert brightest(out) == [(4, 8)]  # 4 px right of the centre


def test_rotate_draws_stay_in_range_and_set():
    torch.manual_seed(0)
    angles = Rotate(None, -10, 10).sample((4000, 3, 8, 8))["angle"]
    assert angles.min() >= -10 and angles.max() <= 10
    assert angles.min() < -9.5 and angles.max() > 9.5
    stack = build_transforms("rotate:-5|0|5|5")
    angles = stack.sample((4000, 3, 8, 8))[0]["angle"]
    assert set(angles.tolist()) == {-5.0, 0.0, 5.0}
    assert (angles == 5).float().mean() == pytest.approx(0.5, abs=0.05)  # repeats weight the choice
    lucid = build_transforms("lucid").sample((4000, 3, 32, 32))
    assert set(lucid[3]["angle"].tolist()) == set(range(-10, 11))
    assert (lucid[3]["angle"] == 0).float().mean() == pytest.approx(6 / 26, abs=0.03)


def test_scale_draws_stay_in_range_and_set():
    torch.manual_seed(0)
    scales = build_transforms("scale:0.8-1.25").sample((4000, 3, 8, 8))[0]["scale"]
    assert scales.min() >= 0.8 and scales.max() <= 1.25
    assert scales.min() < 0.82 and scales.max() > 1.23
    lucid = build_transforms("lucid").sample((4000, 3, 32, 32))[2]["scale"]
    assert set(lucid.tolist()) == {1 + (i - 5) / 50.0 for i in range(11)}


def test_affine_keeps_size_and_is_differentiable():
    x = torch.rand(2, 3, 10, 13, requires_grad=True)
    out = Rotate(None, -20, 20)(Scale(None, 0.8, 1.2)(x))
    assert out.shape == x.shape
    out.sum().backward()
    assert x.grad.abs().sum() > 0


def test_noise_draw_and_replay():
    torch.manual_seed(0)
    op = Noise(0.1)
    x = torch.full((4, 3, 32, 32), 0.5)
    params = op.sample(x.shape)
    out = op.apply(x, params)
    assert (out - x).std().item() == pytest.approx(0.1, rel=0.05)
    assert torch.equal(op.apply(x, params), out)
    with pytest.raises(ImageError, match="shape"):
        op.apply(torch.zeros(4, 3, 16, 16), params)


def test_draw_for_wrong_batch_is_refused():
    params = Rotate((5.0,)).sample((2, 3, 8, 8))
    with pytest.raises(ImageError, match="batch of 2"):
        Rotate((5.0,)).apply(torch.rand(3, 3, 8, 8), params)


def test_the_affine_warp_equals_kornias():
    from kornia.geometry.transform import get_rotation_matrix2d, warp_affine

    from paramviz.transforms.ops import affine_about_centre

    torch.manual_seed(0)
    for h, w in [(32, 32), (24, 40), (41, 17)]:
        x = torch.rand(3, 3, h, w)
        angle, scale = torch.tensor([10.0, -7.0, 33.0]), torch.tensor([1.1, 0.9, 1.0])
        centre = torch.tensor([(w - 1) / 2, (h - 1) / 2]).expand(3, 2)
        matrix = get_rotation_matrix2d(centre, angle, scale[:, None].expand(3, 2))
        expected = warp_affine(x, matrix, (h, w), mode="bilinear", padding_mode="reflection", align_corners=True)
        torch.testing.assert_close(affine_about_centre(x, angle, scale), expected, atol=2e-5, rtol=0)


@pytest.mark.parametrize("batch", [1, 2])
@pytest.mark.parametrize(("h", "w"), [(160, 128), (151, 133)])
def test_the_affine_warp_does_not_depend_on_the_thread_count(batch, h, w):
    # On the CPU a small batch of large images is sampled in bands of rows, one per thread: every pixel and
    # the input gradient must be those of one plain sampling (1 thread), for rows that split evenly and not
    from paramviz.transforms.ops import affine_about_centre

    torch.manual_seed(0)
    x = torch.rand(batch, 3, h, w)
    angle, scale = torch.tensor([10.0, -7.0])[:batch], torch.tensor([1.1, 0.9])[:batch]
    weights = torch.rand(batch, 3, h, w)
    threads = torch.get_num_threads()
    results = {}
    try:
        for n in (1, 2, 3, 4, 8):
            torch.set_num_threads(n)
            leaf = x.clone().requires_grad_(True)
            out = affine_about_centre(leaf, angle, scale)
            (out * weights).sum().backward()
            results[n] = out.detach(), leaf.grad
    finally:
        torch.set_num_threads(threads)
    image, grad = results[1]
    for n, (out, g) in results.items():
        assert out.shape == (batch, 3, h, w)
        assert torch.equal(out, image), n
        torch.testing.assert_close(g, grad, atol=1e-5, rtol=1e-5)


def test_blur_is_a_normalized_separable_gaussian():
    from paramviz.transforms import Blur
    from paramviz.transforms.ops import gaussian_blur

    op = Blur(1.0)
    assert op.sample((2, 3, 9, 9)) == {}  # deterministic: nothing to draw or replay
    flat = torch.full((1, 3, 9, 9), 0.3)
    torch.testing.assert_close(op(flat), flat)  # the kernel sums to 1, borders replicated
    dot = dot_image(1, 15, 15, 7, 7)
    out = op(dot)
    taps = torch.exp(-0.5 * torch.arange(-3.0, 4.0) ** 2)
    taps = taps / taps.sum()
    torch.testing.assert_close(out[0, 0, 4:11, 4:11], taps[:, None] * taps[None, :])  # radius ceil(3 sigma) = 3
    assert out.sum().item() == pytest.approx(1.0)
    x = torch.rand(2, 3, 12, 10, requires_grad=True)
    gaussian_blur(x, 0.7).sum().backward()
    assert torch.isfinite(x.grad).all() and x.grad.abs().sum() > 0
    assert gaussian_blur(x, 0) is x
