import contextlib
import math

import pytest
import torch
from host_reads import DEVICES, HostRead, no_sync_between
from objective_examples import EXAMPLES as OBJECTIVE_EXAMPLES
from torch import nn

import paramviz.render
from paramviz.errors import ConfigError, NonFiniteLossError, RenderInterrupted, UnknownNameError
from paramviz.objectives.base import Objective
from paramviz.params import PARAMS
from paramviz.render import INPUT_KEY, OPTIMIZERS, StepRecord, render
from paramviz.transforms.ops import TRANSFORM_OPS
from paramviz.transforms.stack import TRANSFORM_PRESETS


class FreePixels(nn.Module):
    def __init__(self, batch=1, size=16):
        super().__init__()
        self.raw = nn.Parameter(torch.zeros(batch, 3, size, size))

    def forward(self):
        return torch.sigmoid(self.raw)


class MeanOf(Objective):
    """-mean of a layer (maximize it)."""

    def __init__(self, layer, sign=-1.0):
        super().__init__(f"mean:{layer}")
        self.layer, self.sign = layer, sign

    def layers(self):
        return {self.layer}

    def forward(self, features):
        return self.sign * features[self.layer].flatten(1).mean(1)


class Exploding(MeanOf):
    def forward(self, features):
        value = super().forward(features)
        return value / 0.0 if self.calls_left() else value

    count = 0

    def calls_left(self):
        type(self).count += 1
        return type(self).count >= 3


@pytest.mark.parametrize("optimizer,lr", [("adam", 0.1), ("lbfgs", 0.5)])
def test_loss_falls_and_records_are_complete(tiny_backbone, optimizer, lr):
    records: list[StepRecord] = []
    objective = MeanOf("stage1") + 0.5 * MeanOf("conv3")
    result = render(
        FreePixels(batch=2),
        nn.Identity(),
        tiny_backbone,
        objective,
        optimizer=optimizer,
        steps=8,
        lr=lr,
        thresholds=[2, 4],
        callbacks=[records.append],
        device="cpu",
    )
    assert result.history[-1] < result.history[0]
    assert [r.step for r in records] == list(range(1, 9)) and records[-1].steps == 8
    assert set(result.images) == {2, 4, 8} and result.image.shape == (2, 3, 16, 16)
    assert set(records[0].terms) == {"mean:stage1", "mean:conv3"}
    assert math.isclose(sum(records[-1].terms.values()), records[-1].loss, rel_tol=1e-5)
    assert len(records[-1].losses) == 2 and result.final_losses == records[-1].losses
    assert result.seconds > 0 and result.steps_per_second > 0


def test_same_seed_same_result_with_random_transforms(tiny_backbone):
    class RandomShift(nn.Module):
        def forward(self, x):
            return torch.roll(x, int(torch.randint(-3, 4, ())), dims=-1) + 0.01 * torch.randn_like(x)

    def run(seed):
        return render(FreePixels(), RandomShift(), tiny_backbone, MeanOf("conv3"), steps=5, seed=seed).image

    assert torch.equal(run(1), run(1))
    assert not torch.equal(run(1), run(2))


@pytest.mark.parametrize("param", ["fourier", "pixel"])
def test_the_backbones_memory_format_gives_the_same_images_within_tolerance(tiny_backbone, param):
    # channels-last weights (the CPU default) change only how convolutions round
    from paramviz.params import ParamSpec, build_param
    from paramviz.transforms import build_transforms

    def run(memory_format):
        tiny_backbone.memory_format = memory_format
        image = build_param(ParamSpec(param), (48, 48), seed=0)
        return render(image, build_transforms("lucid"), tiny_backbone, MeanOf("conv3"), steps=12, seed=0).image

    contiguous, channels_last = run("contiguous"), run("channels_last")
    assert tiny_backbone.model.conv1.weight.is_contiguous(memory_format=torch.channels_last)
    torch.testing.assert_close(channels_last, contiguous, rtol=0, atol=1e-4)
    assert torch.equal(run("auto"), channels_last)


def test_batchnorm_folding_gives_the_same_images():
    # in float64 the folded network is the network as built; in float32 both round differently, and Adam's
    # normalized steps amplify that on small-gradient coefficients (as a change of memory format does)
    from paramviz.backbones import build_backbone
    from paramviz.params import ParamSpec, build_param
    from paramviz.transforms import build_transforms

    torch.manual_seed(0)
    backbone = build_backbone("resnet18", "random").double()
    for m in backbone.modules():
        if isinstance(m, torch.nn.BatchNorm2d):  # random weights make each BatchNorm the identity
            m.running_var.uniform_(0.3, 3.0)
            m.weight.data.uniform_(0.5, 1.5)

    def run(fold):
        backbone.fold_batchnorm = fold
        image = build_param(ParamSpec("fourier"), (48, 48), seed=0).double()
        return render(image, build_transforms("lucid"), backbone, MeanOf("layer2"), steps=12, seed=0).image

    folded, built = run(True), run(False)
    assert len(backbone._folding.folds) == 20 and folded.dtype == torch.float64
    torch.testing.assert_close(folded, built, rtol=0, atol=1e-12)
    start = build_param(ParamSpec("fourier"), (48, 48), seed=0).double()().detach()
    assert (folded - start).abs().max() > 0.01  # it moved


def test_objective_reading_input_gets_the_transformed_image(tiny_backbone):
    seen = {}

    class InputProbe(MeanOf):
        def layers(self):
            return {INPUT_KEY, "conv1"}

        def forward(self, features):
            seen["shape"] = features[INPUT_KEY].shape
            return features[INPUT_KEY].flatten(1).mean(1) - features["conv1"].flatten(1).mean(1)

    pad = nn.ZeroPad2d(2)
    render(FreePixels(), pad, tiny_backbone, InputProbe("conv1"), steps=1)
    assert seen["shape"] == (1, 3, 20, 20)


def test_unknown_layer_is_reported_before_the_first_step(tiny_backbone):
    param = FreePixels()
    with pytest.raises(UnknownNameError, match=r"'stage2'.*paramviz layers tiny"):
        render(param, nn.Identity(), tiny_backbone, MeanOf("stage2"), steps=3)
    assert torch.equal(param.raw, torch.zeros_like(param.raw))


def test_non_finite_loss_names_the_step(tiny_backbone):
    Exploding.count = 0
    with pytest.raises(NonFiniteLossError, match="at step 3"):
        render(FreePixels(), nn.Identity(), tiny_backbone, Exploding("conv3"), steps=10)


@pytest.mark.parametrize(
    "kwargs,match",
    [
        ({"steps": 0}, "steps must be at least 1"),
        ({"lr": -1.0}, "lr must be positive"),
        ({"lr": math.inf}, "lr must be a finite number, got inf"),
        ({"lr": math.nan}, "lr must be a finite number"),
        ({"lr": 1e38}, "lr 1e\\+38 is larger than 1000"),
        ({"thresholds": [0, 99]}, "thresholds"),
        ({"optimizer": "adma"}, "'adam'"),
    ],
)
def test_bad_settings_raise_clear_errors(tiny_backbone, kwargs, match):
    with pytest.raises((ConfigError, UnknownNameError), match=match):
        render(FreePixels(), nn.Identity(), tiny_backbone, MeanOf("conv3"), **{"steps": 3, **kwargs})


def test_zero_weight_objective_is_refused(tiny_backbone):
    with pytest.raises(ConfigError, match="weight 0"):
        render(FreePixels(), nn.Identity(), tiny_backbone, 0 * MeanOf("conv3"), steps=3)


def test_lbfgs_does_not_stop_early_on_tiny_gradients(tiny_backbone):
    # torch's default tolerance_grad (1e-7) would return before the first update at this loss scale
    param = FreePixels()
    render(param, nn.Identity(), tiny_backbone, 1e-7 * MeanOf("conv3"), optimizer="lbfgs", steps=3, lr=1.0)
    assert param.raw.abs().max() > 0


def interrupt_at(step):
    def callback(record):
        if record.step == step:
            raise KeyboardInterrupt

    return callback


@pytest.mark.parametrize("optimizer", ["adam", "lbfgs"])
def test_ctrl_c_keeps_the_image_of_the_last_completed_step(tiny_backbone, optimizer):
    torch.manual_seed(0)
    full = render(FreePixels(), nn.Identity(), tiny_backbone, MeanOf("conv3"), steps=4, optimizer=optimizer)
    param = FreePixels()
    with pytest.raises(RenderInterrupted) as info:
        render(
            param,
            nn.Identity(),
            tiny_backbone,
            MeanOf("conv3"),
            steps=9,
            optimizer=optimizer,
            thresholds=[2, 7],
            callbacks=[interrupt_at(4)],
        )
    exc = info.value
    assert isinstance(exc, KeyboardInterrupt)  # generic code still sees an interrupt
    partial = exc.result
    assert partial.interrupted and partial.steps == 4 == exc.steps_done and exc.total_steps == 9
    assert sorted(partial.images) == [2, 4] and len(partial.history) == 4
    # the same run up to step 4: same losses and the same image
    assert partial.history == pytest.approx(full.history)
    torch.testing.assert_close(partial.images[4], full.images[4])
    assert partial.final_losses == full.final_losses
    assert str(exc) == "interrupted at step 4 of 9"


def test_ctrl_c_before_the_first_step_completes_has_no_image(tiny_backbone):
    class Interrupting(MeanOf):
        def forward(self, features):
            raise KeyboardInterrupt

    with pytest.raises(RenderInterrupted) as info:
        render(FreePixels(), nn.Identity(), tiny_backbone, Interrupting("conv3"), steps=5)
    assert info.value.result.steps == 0 and info.value.result.images == {}
    assert "nothing was written" in str(info.value)


def test_a_layer_that_never_runs_is_refused_before_step_1():
    from paramviz.backbones.base import Backbone

    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv = nn.Conv2d(3, 4, 3)
            self.unused = nn.ReLU()

        def forward(self, x):
            return self.conv(x)

    param = FreePixels()
    with pytest.raises(ConfigError, match="'unused'.*never runs"):
        render(param, nn.Identity(), Backbone(Net(), name="n"), MeanOf("unused"), steps=3)
    assert torch.equal(param.raw, torch.zeros_like(param.raw))


def test_a_nan_is_found_when_a_callback_reads_the_values(tiny_backbone):
    Exploding.count = 0
    seen = []
    with pytest.raises(NonFiniteLossError, match="at step 3"):
        render(
            FreePixels(),
            nn.Identity(),
            tiny_backbone,
            Exploding("conv3"),
            steps=50,
            callbacks=[lambda r: seen.append(r.loss)],
        )
    assert len(seen) == 3  # not all 50 steps: reading the values found it at once
    assert not math.isfinite(seen[-1])


def test_records_stay_on_the_device_until_read(tiny_backbone):
    records = []
    result = render(FreePixels(), nn.Identity(), tiny_backbone, MeanOf("conv3"), steps=4, callbacks=[records.append])
    assert not any(r.materialized for r in records)  # nobody read them: nothing was copied to the host
    assert [r.loss for r in records] == pytest.approx(result.history)
    assert records[0].terms == {"mean:conv3": pytest.approx(result.history[0])}
    assert all(r.materialized for r in records)


def test_drawing_ahead_gives_the_draws_of_step_by_step_sampling():
    from paramviz.transforms import build_transforms

    stack = build_transforms("lucid")
    shape = (3, 3, 32, 32)
    ahead = stack.plan(shape, 5, [torch.Generator().manual_seed(s) for s in (0, 1, 2)])
    gens = [torch.Generator().manual_seed(s) for s in (0, 1, 2)]
    for planned in ahead:
        one = stack.sample(shape, gens)
        for a, b in zip(planned.params, one.params, strict=True):
            assert a.keys() == b.keys() and all(torch.equal(a[k].cpu(), b[k]) for k in a)


# --- no host-device synchronization in a steady-state step (CUDA's sync-debug mode; on CPU, HostReadGuard) ---
STEPS, WARM_UP = 8, 3
STACKS = [
    *TRANSFORM_PRESETS.names(),
    *(TRANSFORM_OPS.get(name).example for name in TRANSFORM_OPS.names()),
    "jitter:3:crop",  # crop offsets stay on the host: slicing by them must not read the device
    "pad:4,jitter:3,noise:0.01",
]


def steady_render(
    backbone, device, *, param=None, transforms="lucid", objective=None, optimizer="adam", steps=STEPS, guard=True
):
    from paramviz.params import ParamSpec, build_param
    from paramviz.transforms import build_transforms

    param = param or build_param(ParamSpec("fourier"), (32, 32), batch=3, seed=0)
    objective = objective or (MeanOf("conv3") + 0.1 * MeanOf("stage1"))
    checked = no_sync_between(WARM_UP, steps, device) if guard else contextlib.nullcontext(lambda record: None)
    with checked as callback:
        result = render(
            param,
            build_transforms(transforms),
            backbone,
            objective,
            optimizer=optimizer,
            steps=steps,
            callbacks=[callback],
            device=device,
        )
    assert len(result.history) == steps and all(map(math.isfinite, result.history))
    return result


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("transforms", STACKS)
def test_a_steady_state_step_makes_no_host_device_sync_with_any_transform(tiny_backbone, device, transforms):
    result = steady_render(tiny_backbone, device, transforms=transforms)
    assert result.history[-1] < result.history[0]


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("alpha", [False, True], ids=["rgb", "rgba"])
@pytest.mark.parametrize("name", PARAMS.names())
def test_a_steady_state_step_makes_no_host_device_sync_with_any_parameterization(tiny_backbone, device, name, alpha):
    from paramviz.params import ParamSpec, build_param

    steady_render(tiny_backbone, device, param=build_param(ParamSpec(name, alpha=alpha), (32, 32), batch=2, seed=0))


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("name", OBJECTIVE_EXAMPLES)
def test_a_steady_state_step_makes_no_host_device_sync_with_any_objective(tiny_backbone, device, name):
    steady_render(tiny_backbone, device, objective=OBJECTIVE_EXAMPLES[name]())


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("optimizer", [name for name in OPTIMIZERS.names() if name != "lbfgs"])
def test_a_steady_state_step_makes_no_host_device_sync_with_any_first_order_optimizer(tiny_backbone, device, optimizer):
    steady_render(tiny_backbone, device, optimizer=optimizer)


@pytest.mark.parametrize("device", DEVICES)
def test_draws_made_ahead_in_small_chunks_are_the_draws_of_one_chunk(tiny_backbone, monkeypatch, device):
    from paramviz.params import ParamSpec, build_param

    def run():
        param = build_param(ParamSpec("fourier", alpha=True), (32, 32), batch=2, seed=0)
        # CUDA: the later chunks reach the device asynchronously, inside the guarded steps. The CPU stand-in
        # would see their moves (CPU has no asynchronous copy), so there only the draws are compared.
        guard = device == "cuda"
        return steady_render(tiny_backbone, device, param=param, transforms="lucid,noise:0.01", steps=10, guard=guard)

    whole = run()  # every draw made at step 1
    from paramviz.transforms import build_transforms

    shape = (2, 3, 32, 32)  # per step: an RGBA background and the stack's draws (a noise image among them)
    per_step = 4 * math.prod(shape) + build_transforms("lucid,noise:0.01").draw_bytes(shape)
    monkeypatch.setattr(paramviz.render, "DRAW_AHEAD_BYTES", 2 * per_step + 100)  # a chunk every 2 steps
    made = []
    monkeypatch.setattr(paramviz.render._DrawQueue, "_sample", counting(paramviz.render._DrawQueue._sample, made))
    chunked = run()
    torch.testing.assert_close(chunked.image, whole.image, rtol=0, atol=0)
    assert chunked.history == whole.history
    assert made == [10, 10, 8, 8, 6, 6, 4, 4, 2, 2]  # steps left when each draw was made: two at a time


def counting(sample, made):
    def wrapper(queue):
        made.append(queue.left)
        return sample(queue)

    return wrapper


def test_the_cpu_guard_sees_a_step_that_reads_the_loss(tiny_backbone):
    # L-BFGS checks finiteness on the host every step (its line search reads the loss anyway): the guard
    # must see that read, or it could not see any.
    with pytest.raises(HostRead, match="_local_scalar_dense"):
        steady_render(tiny_backbone, "cpu", optimizer="lbfgs")


def test_objectives_are_attached_before_step_1_and_detached_after_the_loop(tiny_backbone):
    from paramviz.objectives.base import RenderContext

    events = []

    class Recording(MeanOf):
        def attach(self, context):
            events.append(("attach", context))

        def forward(self, features):
            events.append(("forward", None))
            return super().forward(features)

    param, transforms = FreePixels(size=12), nn.Identity()
    objective = Recording("conv3") + 0.5 * Recording("conv2")  # a weighted sum attaches every term
    render(param, transforms, tiny_backbone, objective, steps=2, device="cpu")
    kinds = [kind for kind, _ in events]
    assert kinds == ["attach", "attach"] + ["forward"] * 4 + ["attach", "attach"]
    context = events[0][1]
    assert isinstance(context, RenderContext)
    assert context.param is param and context.transforms is transforms and context.backbone is tiny_backbone
    assert context.device.type == "cpu" and context.size == (12, 12)  # FreePixels has no height/width: one param()
    assert events[-1] == ("attach", None)


class Recording(nn.Module):
    """An identity 'transform' that keeps what the network is shown."""

    def __init__(self):
        super().__init__()
        self.seen: list[torch.Tensor] = []

    def forward(self, x):
        self.seen.append(x.detach().clone())
        return x


def test_rgba_images_are_composited_over_a_new_random_background_each_step(tiny_backbone):
    from paramviz.objectives import L1
    from paramviz.params import ParamSpec, build_param

    param = build_param(ParamSpec("pixel", alpha=True), 16, seed=0)
    seen = Recording()
    objective = MeanOf("conv3") + 0.1 * L1(0.0, "alpha")
    result = render(param, seen, tiny_backbone, objective, steps=3, lr=1e-6, seed=0)
    assert [tuple(x.shape) for x in seen.seen] == [(1, 3, 16, 16)] * 3  # the network sees RGB
    assert result.image.shape == (1, 4, 16, 16)  # the snapshots keep the alpha channel
    image = param().detach()
    # the parameters barely moved (lr 1e-6), so the steps differ by their backgrounds: alpha is ~0.5
    first, second = seen.seen[0], seen.seen[1]
    assert float((first - second).abs().mean()) > 0.1
    background = (first - image[:, 3:] * image[:, :3]) / (1 - image[:, 3:])
    assert 0.4 < float(background.mean()) < 0.6 and float(background.std()) > 0.2  # U(0, 1) noise
    assert "l1:0:alpha" in result.term_history
    # same seed, same backgrounds
    again = Recording()
    render(build_param(ParamSpec("pixel", alpha=True), 16, seed=0), again, tiny_backbone, objective, steps=1, seed=0)
    torch.testing.assert_close(again.seen[0], first)


def test_an_alpha_term_needs_an_alpha_channel(tiny_backbone):
    from paramviz.objectives import L1

    with pytest.raises(ConfigError, match="alpha channel"):
        render(FreePixels(), nn.Identity(), tiny_backbone, MeanOf("conv3") + L1(0.0, "alpha"), steps=1)
