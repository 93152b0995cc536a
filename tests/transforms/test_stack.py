from __future__ import annotations

import pytest
import torch

from paramviz.errors import ImageError, SpecError
from paramviz.transforms import (
    LUCID_ANGLES,
    LUCID_SCALES,
    TRANSFORM_PRESETS,
    Jitter,
    Pad,
    Rotate,
    Scale,
    TransformStack,
    build_transforms,
)

LINEAR = "jitter:4,scale:0.8-1.2,rotate:15,jitter:3:crop,pad:2:reflect"  # linear in the input


@pytest.mark.parametrize(
    "spec, canonical",
    [
        ("pad:12", "pad:12"),
        ("pad:12:constant", "pad:12"),
        ("pad:12:0.5", "pad:12"),
        ("pad:3:0.25", "pad:3:0.25"),
        ("pad:12:reflect", "pad:12:reflect"),
        ("pad:2:Replicate", "pad:2:replicate"),
        ("jitter:8:shift", "jitter:8"),
        ("jitter:8:crop", "jitter:8:crop"),
        ("scale:0.9-1.1", "scale:0.9-1.1"),
        ("scale:0.9|0.95|1.1", "scale:0.9|0.95|1.1"),
        ("scale:1.05", "scale:1.05"),
        ("rotate:10", "rotate:10"),
        ("rotate:-10-10", "rotate:10"),
        ("rotate:-5-10", "rotate:-5-10"),
        ("rotate:-10--5", "rotate:-10--5"),
        ("rotate:-5|0|5", "rotate:-5|0|5"),
        ("noise:0.02", "noise:0.02"),
        ("blur:1", "blur:1"),
        ("blur:0.50", "blur:0.5"),
        (" PAD:12 , jitter:8,scale:0.9-1.1, rotate:10,jitter:4 ", "pad:12,jitter:8,scale:0.9-1.1,rotate:10,jitter:4"),
        ("none", "none"),
        ("jitter", "jitter:8"),
        ("pad:4,jitter", "pad:4,jitter:8"),
    ],
)
def test_spec_round_trip(spec, canonical):
    stack = build_transforms(spec)
    assert stack.spec == canonical
    assert stack.describe() == canonical
    again = build_transforms(stack.spec)
    assert again.spec == canonical
    assert [type(op) for op in again.ops] == [type(op) for op in stack.ops]


def test_spec_follows_an_op_changed_after_it_was_read():
    # the spec text of a value set is kept between steps; it must not outlive the values it was made from
    stack = build_transforms("scale:0.9|1.1,rotate:5")
    assert stack.spec == "scale:0.9|1.1,rotate:5"
    stack.ops[0].choices, stack.ops[0].low, stack.ops[0].high = (0.8, 1.2), 0.8, 1.2
    stack.ops[1].low, stack.ops[1].high = -3.0, 3.0
    assert stack.spec == "scale:0.8|1.2,rotate:3"


@pytest.mark.parametrize(
    "spec, token",
    [
        ("pad:-3", "pad:-3"),
        ("pad:x", "pad:x"),
        ("pad:1.5", "pad:1.5"),
        ("pad:4:blue", "pad:4:blue"),
        ("pad:4:1.5", "pad:4:1.5"),
        ("pad", "pad"),
        ("jitter:8,jiter:4", "jiter:4"),
        ("jitter:-1", "jitter:-1"),
        ("jitter:2:wobble", "jitter:2:wobble"),
        ("scale:1.1-0.9", "scale:1.1-0.9"),
        ("scale:0-1", "scale:0-1"),
        ("scale:0.9|x", "scale:0.9|x"),
        ("scale:", "scale:"),
        ("rotate:-10", "rotate:-10"),
        ("rotate:10:20", "rotate:10:20"),
        ("rotate:nan", "rotate:nan"),
        ("noise:-0.1", "noise:-0.1"),
        ("blur:0", "blur:0"),
        ("blur", "blur"),
        ("blur:x", "blur:x"),
        ("blur:1:2", "blur:1:2"),
        ("pad:12,,jitter:8", "pad:12,,jitter:8"),
        ("pad:12,", "pad:12,"),
    ],
)
def test_malformed_spec_names_token_expected_and_example(spec, token):
    with pytest.raises(SpecError) as info:
        build_transforms(spec)
    message = str(info.value)
    assert repr(token) in message
    assert "expected" in message and "e.g." in message


def test_empty_spec_and_non_string():
    for spec in ["", "   "]:
        with pytest.raises(SpecError, match="empty transform spec"):
            build_transforms(spec)
    with pytest.raises(SpecError, match="string"):
        build_transforms(None)


def test_unknown_op_lists_close_matches():
    with pytest.raises(SpecError, match="did you mean 'jitter'"):
        build_transforms("jiter:8")
    with pytest.raises(SpecError, match="did you mean 'lucid'"):
        build_transforms("lucd")
    with pytest.raises(SpecError, match="rotate"):
        build_transforms("rotat:5")


def test_presets_registered():
    assert TRANSFORM_PRESETS.names() == ["none", "jitter", "lucid"]
    assert build_transforms("lucid").preset == "lucid"
    assert build_transforms("pad:1").preset is None


def test_lucid_preset_has_lucids_exact_values():
    assert tuple(1 + (i - 5) / 50.0 for i in range(11)) == LUCID_SCALES
    assert tuple(float(a) for a in list(range(-10, 11)) + 5 * [0]) == LUCID_ANGLES
    ops = list(build_transforms("lucid").ops)
    assert [type(op) for op in ops] == [Pad, Jitter, Scale, Rotate, Jitter]
    pad, jitter8, scale, rotate, jitter4 = ops
    assert (pad.size, pad.mode, pad.value) == (12, "constant", 0.5)
    assert (jitter8.d, jitter8.mode) == (8, "crop")
    assert scale.choices == tuple(1 + (i - 5) / 50.0 for i in range(11))
    assert rotate.choices == tuple(float(a) for a in list(range(-10, 11)) + 5 * [0])
    assert len(rotate.choices) == 26 and rotate.choices.count(0.0) == 6
    assert (jitter4.d, jitter4.mode) == (4, "crop")
    assert build_transforms("lucid").output_size((128, 128)) == (128 + 24 - 8 - 4,) * 2


def test_none_is_identity():
    stack = build_transforms("none")
    assert len(stack.ops) == 0
    x = torch.rand(2, 3, 8, 8)
    assert torch.equal(stack(x), x)


def test_same_seed_same_output_other_seed_differs():
    x = torch.rand(3, 3, 24, 24)
    stack = build_transforms("lucid")
    torch.manual_seed(0)
    a = stack(x)
    torch.manual_seed(0)
    b = stack(x)
    torch.manual_seed(1)
    c = stack(x)
    assert torch.equal(a, b)
    assert a.shape == c.shape and not torch.equal(a, c)


def test_each_image_gets_its_own_draw():
    torch.manual_seed(0)
    draw = build_transforms("lucid").sample((16, 3, 32, 32))
    for params in draw.params:
        for values in params.values():
            assert len({tuple(v.reshape(-1).tolist()) for v in values}) > 1
    x = torch.rand(1, 3, 20, 20).expand(4, -1, -1, -1)
    out = build_transforms("rotate:30")(x)
    assert not torch.allclose(out[0], out[1])


def test_replay_is_exact_and_applies_same_geometry_to_another_batch():
    torch.manual_seed(0)
    stack = build_transforms(LINEAR)
    x, z = torch.rand(2, 3, 20, 20), torch.rand(2, 3, 20, 20)
    y = stack(x)
    draw = stack.last_draw
    assert draw is not None and draw.shape == (2, 3, 20, 20)
    assert torch.equal(stack(x.clone(), draw=draw), y)
    assert stack.last_draw is draw
    # the same geometry: the stack is linear in its input, so replay must be additive
    torch.testing.assert_close(stack(x + z, draw=draw), y + stack(z, draw=draw), atol=1e-5, rtol=0)
    # a fresh draw would not be
    assert not torch.allclose(stack(x + z), y + stack(z, draw=draw), atol=1e-3)


def test_replay_validates_draw():
    stack = build_transforms("jitter:2")
    stack(torch.rand(2, 3, 8, 8))
    with pytest.raises(ImageError, match="same shape"):
        stack(torch.rand(3, 3, 8, 8), draw=stack.last_draw)
    with pytest.raises(SpecError, match="replay"):
        build_transforms("jitter:3")(torch.rand(2, 3, 8, 8), draw=stack.last_draw)


def test_sample_without_images_then_apply():
    stack = build_transforms("lucid,noise:0.01")
    torch.manual_seed(4)
    draw = stack.sample((2, 3, 32, 32))
    torch.manual_seed(4)
    x = torch.rand(2, 3, 32, 32)
    assert torch.equal(stack(x, draw=draw), stack(x, draw=draw))
    torch.manual_seed(4)
    assert torch.equal(stack(x), stack(x, draw=draw))  # sample() consumes the RNG as forward() does


def test_gradient_reaches_input():
    x = torch.rand(2, 3, 32, 32, requires_grad=True)
    build_transforms("lucid")(x).square().sum().backward()
    assert x.grad is not None and torch.isfinite(x.grad).all()
    assert (x.grad[:, :, 12:20, 12:20] != 0).all()  # the centre is always seen


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_output_dtype_device_and_size(dtype):
    for spec in ["none", "jitter", "lucid", "pad:3:reflect,noise:0.1"]:
        stack = build_transforms(spec)
        out = stack(torch.rand(2, 3, 30, 28, dtype=dtype))
        assert out.dtype == dtype and out.device.type == "cpu"
        assert tuple(out.shape[-2:]) == stack.output_size((30, 28))


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cuda_matches_cpu_for_the_same_draw():
    stack = build_transforms("lucid")
    x = torch.rand(2, 3, 32, 32)
    y = stack(x)
    y_gpu = stack(x.cuda(), draw=stack.last_draw)
    assert y_gpu.device.type == "cuda"
    torch.testing.assert_close(y_gpu.cpu(), y, atol=1e-5, rtol=0)


def test_rejects_non_image_input():
    stack = build_transforms("jitter")
    with pytest.raises(ImageError, match=r"\(B, C, H, W\)"):
        stack(torch.rand(3, 8, 8))
    with pytest.raises(ImageError):
        stack(torch.zeros(1, 3, 8, 8, dtype=torch.uint8))


def test_stack_is_a_module():
    assert isinstance(build_transforms("lucid"), TransformStack)
    assert isinstance(build_transforms("lucid"), torch.nn.Module)
    assert "lucid" in repr(build_transforms("lucid"))


def test_adjacent_scale_and_rotate_are_one_warp_equal_to_the_composed_affine():
    import torch

    from paramviz.transforms import build_transforms
    from paramviz.transforms.ops import affine_about_centre

    torch.manual_seed(3)
    x = torch.rand(2, 3, 20, 20)
    stack = build_transforms("scale:0.8-1.2,rotate:30")
    out = stack(x)
    scale = stack.last_draw[0]["scale"]
    angle = stack.last_draw[1]["angle"]
    assert torch.allclose(out, affine_about_centre(x, angle, scale), atol=1e-6)
    # two separate warps would interpolate twice: the fused result is sharper, not equal
    twice = affine_about_centre(affine_about_centre(x, torch.zeros(2), scale), angle, torch.ones(2))
    assert not torch.allclose(out, twice, atol=1e-3)


@pytest.mark.parametrize("spec", ["lucid", "scale:0.8-1.2,jitter:2,rotate:15,scale:0.9|1.1,pad:3"])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_a_placed_draw_carries_each_warp_and_transforms_exactly_as_the_sampled_one(spec, dtype):
    stack = build_transforms(spec)
    draw = stack.sample((3, 3, 30, 26), torch.Generator().manual_seed(5))
    placed = stack.to_device(draw, "cpu")
    runs = [i for i, op in enumerate(stack.ops) if isinstance(op, (Scale, Rotate))]
    starts = [i for i in runs if i - 1 not in runs]
    assert [i for i, w in enumerate(placed.warps) if w is not None] == starts
    assert all(placed.warps[i].shape == (3, 2, 2) for i in starts)
    assert not draw.warps and placed == draw  # the warps are derived: draws compare by their params
    x = torch.rand(3, 3, 30, 26, dtype=dtype, requires_grad=True)
    out, out_placed = stack(x, draw=draw), stack(x, draw=placed)  # float64: recomputed in the image's dtype
    assert torch.equal(out_placed, out)
    weights = torch.rand_like(out)
    (grad,) = torch.autograd.grad((out * weights).sum(), x)
    (grad_placed,) = torch.autograd.grad((out_placed * weights).sum(), x)
    assert torch.equal(grad_placed, grad)
