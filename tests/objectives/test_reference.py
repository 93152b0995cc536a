"""Image-driven objectives: input_diff, feature inversion and caricature, and their reference images."""

from __future__ import annotations

import math

import pytest
import torch

from paramviz.backbones.base import Backbone
from paramviz.errors import ConfigError, ImageError
from paramviz.io import save_image
from paramviz.objectives import parse_objective
from paramviz.objectives.base import RenderContext, images_are_independent
from paramviz.objectives.penalties import INPUT_KEY
from paramviz.objectives.reference import Caricature, InputDiff, Inversion, resize_image
from paramviz.params import ParamSpec, build_param
from paramviz.render import render
from paramviz.transforms import build_transforms


def reference_image(size: tuple[int, int] = (24, 24), seed: int = 3) -> torch.Tensor:
    """A smooth image (blurred noise), the kind of picture a network's features can pin down."""
    gen = torch.Generator().manual_seed(seed)
    coarse = torch.rand(1, 3, 6, 6, generator=gen)
    return torch.nn.functional.interpolate(coarse, size=size, mode="bilinear", align_corners=False)


def context(backbone: Backbone, transforms: str = "none", size: int = 24, batch: int = 1) -> RenderContext:
    param = build_param(ParamSpec(name="pixel"), (size, size), batch=batch, seed=0)
    return RenderContext(param, build_transforms(transforms), backbone, torch.device("cpu"))


class CountingBackbone(torch.nn.Module):
    """The tiny backbone, counting forward passes."""

    def __init__(self, backbone: Backbone) -> None:
        super().__init__()
        self.backbone, self.calls = backbone, 0

    def validate(self, layers):
        self.backbone.validate(layers)

    def forward(self, x, layers):
        self.calls += 1
        return self.backbone(x, layers)


# --- feature inversion -------------------------------------------------------------------------------------
def test_inversion_is_the_relative_squared_error_to_the_target():
    act = torch.randn(2, 4, 3, 3)
    target = torch.randn(1, 4, 3, 3)
    loss = Inversion("a", target=target)({"a": act})
    expected = ((act - target) ** 2).mean((1, 2, 3)) / (target**2).mean()
    torch.testing.assert_close(loss, expected)
    assert Inversion("a", target=target)({"a": torch.zeros(1, 4, 3, 3)}).item() == pytest.approx(1.0)
    assert Inversion("a", target=target)({"a": target}).item() == 0


def test_inversion_from_noise_matches_the_image_features(tiny_backbone, tmp_path):
    path = save_image(reference_image((30, 20)), tmp_path / "ref.png")  # another size: resized to 24x24
    objective = Inversion("conv2", str(path))
    param = build_param(ParamSpec(name="pixel"), (24, 24), seed=0)
    start = param().detach()
    result = render(param, build_transforms("none"), tiny_backbone, objective, steps=100, lr=0.05, seed=0, device="cpu")
    target = resize_image(objective.reference.load(), (24, 24))
    with torch.no_grad():
        goal = tiny_backbone(target, ["conv2"])["conv2"]
        before = (tiny_backbone(start, ["conv2"])["conv2"] - goal).pow(2).mean()
        after = (tiny_backbone(result.image, ["conv2"])["conv2"] - goal).pow(2).mean()
    assert after < before / 8, (before, after)
    assert result.history[-1] < result.history[0] / 8


def test_the_reference_goes_through_the_same_transform_draw(tiny_backbone):
    image = reference_image()
    objective = Inversion("conv2", image)
    ctx = context(tiny_backbone, "pad:2,jitter:3:crop,rotate:10", batch=2)
    objective.attach(ctx)
    x = torch.rand(2, 3, 24, 24, generator=torch.Generator().manual_seed(1))
    seen = ctx.transforms(x, generator=torch.Generator().manual_seed(0))
    draw = ctx.transforms.last_draw
    features = tiny_backbone(seen, ["conv2"])
    loss = objective(features)
    with torch.no_grad():
        view = ctx.transforms(image.expand(2, -1, -1, -1), draw=draw)
        goal = tiny_backbone(view, ["conv2"])["conv2"]
    expected = (features["conv2"] - goal).pow(2).mean((1, 2, 3)) / goal.pow(2).mean((1, 2, 3))
    torch.testing.assert_close(loss, expected)
    assert ctx.transforms.last_draw is draw  # the replay leaves the loop's draw in place
    assert (draw[1]["offset"][0] != draw[1]["offset"][1]).any()  # two different crops of the reference...
    assert not torch.allclose(goal[0], goal[1])  # ...give two different targets


def test_deterministic_transforms_compute_the_target_once(tiny_backbone):
    counting = CountingBackbone(tiny_backbone)
    objective = Inversion("conv2", reference_image())
    param = build_param(ParamSpec(name="pixel"), (24, 24), seed=0)
    render(param, build_transforms("pad:2"), counting, objective, steps=5, seed=0, device="cpu")
    # one pass per step for the image, one at attach (untransformed target), one for the padded target
    assert counting.calls == 5 + 2
    counting.calls = 0
    render(param, build_transforms("jitter:2"), counting, objective, steps=5, seed=0, device="cpu")
    assert counting.calls == 5 + 1 + 5  # a random draw each step: the target is replayed each step


def test_after_the_loop_the_untransformed_target_is_used_at_any_size(tiny_backbone):
    image = reference_image()
    objective = Inversion("conv2", image)
    param = build_param(ParamSpec(name="pixel"), (24, 24), seed=0)
    render(param, build_transforms("jitter:2"), tiny_backbone, objective, steps=2, seed=0, device="cpu")
    assert objective.reference.context is None  # render() called attach(None)
    with torch.no_grad():
        features = tiny_backbone(image, ["conv2"])
        assert objective(features).item() == pytest.approx(0.0, abs=1e-6)  # the image matches itself
        padded = tiny_backbone(torch.nn.functional.pad(image, (4, 4, 4, 4), value=0.5), ["conv2"])
    assert padded["conv2"].shape[-1] == 16 and torch.isfinite(objective(padded)).all()  # target resized to 16x16


def test_an_image_objective_needs_a_render_or_a_target():
    objective = Inversion("conv2", reference_image())
    with pytest.raises(ConfigError, match=r"render\(\) computes before step 1.*target="):
        objective({"conv2": torch.zeros(1, 16, 12, 12)})
    with pytest.raises(ConfigError, match="exactly one of image= and target="):
        Inversion("conv2")
    with pytest.raises(ConfigError, match="exactly one of image= and target="):
        Inversion("conv2", reference_image(), target=torch.zeros(1, 16, 2, 2))
    with pytest.raises(ConfigError, match="same channels"):
        Inversion("a", target=torch.zeros(1, 5, 2, 2))({"a": torch.zeros(1, 4, 2, 2)})
    with pytest.raises(ConfigError, match=r"\(1, 3, H, W\)"):
        Inversion("a", torch.zeros(2, 3, 4, 4))


def test_a_missing_reference_file_fails_before_step_1(tiny_backbone, tmp_path):
    objective = parse_objective(f"inversion:conv2:{tmp_path / 'missing.png'}")
    param = build_param(ParamSpec(name="pixel"), (16, 16), seed=0)
    steps = []
    with pytest.raises(ImageError, match="missing.png"):
        render(param, build_transforms("none"), tiny_backbone, objective, steps=3, callbacks=[steps.append])
    assert steps == []


def test_per_image_targeting_and_independence(tiny_backbone):
    target = torch.rand(1, 16, 8, 8)
    x = torch.rand(3, 3, 16, 16, requires_grad=True)
    loss = Inversion("conv2", target=target, batch=1)(tiny_backbone(x, ["conv2"]))
    assert loss[0] == 0 and loss[2] == 0 and loss[1] > 0
    loss.sum().backward()
    assert x.grad[0].abs().sum() == 0 and x.grad[1].abs().sum() > 0
    assert images_are_independent(Inversion("conv2", target=target) + Caricature("conv2", target=target))
    assert not images_are_independent(Inversion("conv2", target=target, batch=0))


# --- caricature --------------------------------------------------------------------------------------------
def torch_dreams_caricature(x: torch.Tensor, y: torch.Tensor, power: float) -> torch.Tensor:
    """torch_dreams.losses.CaricatureLoss.cosine_dissimilarity, for one image (sums over all entries)."""
    numerator = (x * y).sum()
    cossim = torch.maximum(torch.tensor(0.1), numerator / (torch.sqrt((y**2).sum()) + 1e-6))
    return -(cossim * numerator**power)


@pytest.mark.parametrize("power", [1.0, 1.5, 3.0])
def test_caricature_is_torch_dreams_loss_with_means(power):
    gen = torch.Generator().manual_seed(0)
    act, target = torch.rand(2, 4, 3, 3, generator=gen), torch.rand(1, 4, 3, 3, generator=gen)
    loss = Caricature("a", target=target, power=power)({"a": act})
    count = act[0].numel()
    for i in range(2):
        expected = torch_dreams_caricature(act[i], target[0], power) * count ** -(power + 0.5)
        torch.testing.assert_close(loss[i], expected)
    assert Caricature("a", target=target).power == 1.0  # torch-dreams' default


def test_caricature_with_a_negative_dot_product_stays_finite_and_rises():
    target = torch.ones(1, 2, 2, 2)
    act = (-torch.ones(1, 2, 2, 2)).requires_grad_(True)
    loss = Caricature("a", target=target, power=1.5)({"a": act})
    assert torch.isfinite(loss).all() and loss.item() > 0  # torch-dreams: NaN for a fractional power
    loss.sum().backward()
    assert (act.grad < 0).all()  # descending raises the dot product
    for power in (0, -1, math.nan, True):
        with pytest.raises(ConfigError, match="power"):
            Caricature("a", target=target, power=power)


def test_caricature_raises_the_dot_product_with_the_image_features(tiny_backbone):
    image = reference_image()
    objective = Caricature("relu2", image, power=1.0)
    param = build_param(ParamSpec(name="pixel"), (24, 24), seed=0)
    start = param().detach()
    result = render(param, build_transforms("jitter:2"), tiny_backbone, objective, steps=100, lr=0.05, seed=0)
    with torch.no_grad():
        goal = tiny_backbone(image, ["relu2"])["relu2"]
        before = (tiny_backbone(start, ["relu2"])["relu2"] * goal).mean()
        after = (tiny_backbone(result.image, ["relu2"])["relu2"] * goal).mean()
        itself = (goal * goal).mean()
    assert after > 4 * before and after > itself  # exaggerated: more than the image itself gives
    assert result.history[-1] < result.history[0]


# --- input_diff --------------------------------------------------------------------------------------------
def test_input_diff_is_the_rms_distance_to_the_resized_image():
    reference = reference_image((30, 40))
    x = torch.rand(2, 3, 12, 16)
    loss = InputDiff(reference)({INPUT_KEY: x})
    expected = ((x - resize_image(reference, (12, 16))) ** 2).mean((1, 2, 3)).sqrt()
    torch.testing.assert_close(loss, expected, atol=1e-6, rtol=1e-5)
    assert InputDiff("sample:chelsea").name == "input_diff:sample:chelsea"
    assert InputDiff(reference).layers() == {INPUT_KEY}


def test_input_diff_under_random_transforms_recovers_the_image(tiny_backbone):
    image = reference_image()
    spec = "pad:4,jitter:4:crop,rotate:10"

    class Unreplayable(torch.nn.Module):  # the same random transforms, hidden from the objective
        def __init__(self) -> None:
            super().__init__()
            self.stack = build_transforms(spec)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.stack(x)

    finals = {}
    for name, transforms in [("replayed", build_transforms(spec)), ("fixed", Unreplayable())]:
        param = build_param(ParamSpec(name="pixel"), (24, 24), seed=0)
        start = (param().detach() - image).pow(2).mean().sqrt()
        render(param, transforms, tiny_backbone, InputDiff(image), steps=100, lr=0.1, seed=0)
        finals[name] = (param().detach() - image).pow(2).mean().sqrt()
    # the reference went through each step's draw, so the image converges to it; a fixed reference that the
    # transformed image is compared with leaves a blur of shifted copies
    assert finals["replayed"] < start / 5, (start, finals)
    assert finals["replayed"] < finals["fixed"] / 3, finals


def test_input_diff_reads_sample_images_at_the_render_size(tiny_backbone):
    objective = parse_objective("input_diff:sample:chelsea")
    objective.attach(context(tiny_backbone, size=20))
    assert objective.reference.reference.shape == (1, 3, 20, 20)
    assert objective.reference.image.shape == (1, 3, 300, 451)  # loaded once, kept at its own size
