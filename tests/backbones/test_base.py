"""The Backbone wrapper around any nn.Module: normalization, names, truncation, hook hygiene."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from paramviz.backbones import Backbone, build_backbone
from paramviz.errors import UnknownNameError


class UserNet(nn.Module):
    """A user's network with an in-place ReLU and an in-place residual add."""

    def __init__(self) -> None:
        super().__init__()
        self.stem = nn.Conv2d(3, 4, 3, padding=1)
        self.act = nn.ReLU(inplace=True)
        self.body = nn.Sequential(nn.Conv2d(4, 4, 3, padding=1), nn.BatchNorm2d(4))
        self.head = nn.Linear(4, 5)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.act(self.stem(x))
        y = self.body(x)
        y += x  # in place on body's output
        return self.head(y.mean((2, 3)))


@pytest.fixture
def user_backbone() -> Backbone:
    torch.manual_seed(0)
    return Backbone(UserNet(), mean=(0.1, 0.2, 0.3), std=(0.5, 0.25, 2.0), name="user", aliases={"logits": "head"})


def test_custom_mean_std_normalizes_input(user_backbone: Backbone) -> None:
    seen = []
    user_backbone.model.register_forward_pre_hook(lambda m, args: seen.append(args[0]))
    x = torch.rand(1, 3, 8, 8)
    user_backbone(x, ["logits"])
    expected = torch.stack([(x[:, 0] - 0.1) / 0.5, (x[:, 1] - 0.2) / 0.25, (x[:, 2] - 0.3) / 2.0], 1)
    torch.testing.assert_close(seen[0], expected)


def test_user_module_is_frozen_and_stays_eval(user_backbone: Backbone) -> None:
    assert not any(p.requires_grad for p in user_backbone.parameters())
    user_backbone.train(True)
    assert not user_backbone.model.body[1].training
    x = torch.rand(2, 3, 8, 8)
    a = user_backbone(x, ["body.1"])["body.1"]
    b = user_backbone(x[:1], ["body.1"])["body.1"]
    torch.testing.assert_close(a[:1], b)  # eval-mode BatchNorm: no batch statistics


def test_captured_layers_are_not_changed_by_later_inplace_ops(user_backbone: Backbone) -> None:
    x = torch.rand(1, 3, 8, 8)
    alone = {k: user_backbone(x, [k])[k] for k in ["stem", "body.1"]}
    together = user_backbone(x, ["stem", "body.1", "logits"])
    # stem's output is later overwritten by the in-place ReLU, body.1's by ``y += x``
    assert (alone["stem"] < 0).any()
    torch.testing.assert_close(together["stem"], alone["stem"])
    torch.testing.assert_close(together["body.1"], alone["body.1"])


def test_modules_after_the_deepest_layer_never_run(user_backbone: Backbone) -> None:
    calls = []
    user_backbone.model.body.register_forward_hook(lambda *a: calls.append("body"))

    def explode(*args: object) -> None:
        raise AssertionError("head ran although only 'stem' was requested")

    user_backbone.model.head.forward = explode
    out = user_backbone(torch.rand(1, 3, 8, 8), ["stem"])
    assert set(out) == {"stem"} and calls == []
    with pytest.raises(AssertionError, match="head ran"):
        user_backbone(torch.rand(1, 3, 8, 8), ["logits"])


def test_resnet_truncation_counts_calls_and_removes_hooks() -> None:
    backbone = build_backbone("resnet18", "random")
    model = backbone.model
    counts = {name: 0 for name in ["layer2", "layer3", "layer4", "avgpool", "fc"]}
    handles = [
        getattr(model, name).register_forward_hook(lambda *a, n=name: counts.__setitem__(n, counts[n] + 1))
        for name in counts
    ]
    out = backbone(torch.rand(1, 3, 32, 32), ["layer1", "layer2.0.conv1"])
    assert counts == {"layer2": 0, "layer3": 0, "layer4": 0, "avgpool": 0, "fc": 0}
    assert out["layer2.0.conv1"].shape == (1, 128, 4, 4)
    for handle in handles:
        handle.remove()
    assert not any(m._forward_hooks for m in backbone.modules())


def test_hooks_are_removed_when_the_forward_fails(user_backbone: Backbone) -> None:
    def broken(*args: object) -> None:
        raise RuntimeError("boom")

    user_backbone.model.body.forward = broken
    with pytest.raises(RuntimeError, match="boom"):
        user_backbone(torch.rand(1, 3, 8, 8), ["stem", "logits"])
    assert not any(m._forward_hooks for m in user_backbone.modules())


def test_unknown_layer_lists_close_match_and_layers_hint(user_backbone: Backbone) -> None:
    with pytest.raises(UnknownNameError) as info:
        user_backbone(torch.rand(1, 3, 8, 8), ["body.O"])
    message = str(info.value)
    assert "'body.0'" in message and "paramviz layers user" in message
    with torch.device("meta"):
        vgg = build_backbone("vgg16", "random")
    with pytest.raises(UnknownNameError, match="relu4_2"):
        vgg.validate(["relu1_1", "relu4_22"])


def test_names_given_twice_and_alias_with_path_share_one_capture(user_backbone: Backbone) -> None:
    out = user_backbone(torch.rand(1, 3, 8, 8), ["logits", "head", "logits"])
    assert list(out) == ["logits", "head"] and out["logits"] is out["head"]
    assert user_backbone(torch.rand(1, 3, 8, 8), []) == {}


def test_alias_to_a_missing_module_is_refused() -> None:
    with pytest.raises(ValueError, match="missing module 'nope'"):
        Backbone(UserNet(), aliases={"x": "nope"})


def test_input_too_small_for_the_network_is_a_clear_error():
    import torch
    from torch import nn

    from paramviz.backbones.base import Backbone
    from paramviz.errors import ImageError

    net = nn.Sequential(nn.Conv2d(3, 4, 3), nn.MaxPool2d(4), nn.Conv2d(4, 4, 3))
    backbone = Backbone(net, name="small")
    with pytest.raises(ImageError, match=r"6x6 px is too small for backbone 'small'.*--size"):
        backbone(torch.rand(1, 3, 6, 6), ["2"])


# --- modules that exist but never run -------------------------------------------------------------------------
class Block(nn.Module):
    """A block with a drop-path that its forward never calls (as EfficientNet's first blocks)."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 3, padding=1)
        self.drop_path = nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(x).relu()


class SkipsAModule(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.block = Block()
        self.head = nn.Conv2d(4, 2, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.block(x))


def test_a_layer_that_never_runs_is_refused_before_any_work():
    from paramviz.errors import ConfigError

    torch.manual_seed(0)
    backbone = Backbone(SkipsAModule(), name="skips")
    weight = backbone.model.head.weight.detach().clone()
    backbone.validate(["block", "head"])
    message = r"'block.drop_path' of backbone 'skips' \(a Identity module\) exists but never runs"
    with pytest.raises(ConfigError, match=message):
        backbone.validate(["head", "block.drop_path"])
    with pytest.raises(ConfigError, match="use 'block' \\(the module around it\\)"):
        backbone(torch.rand(1, 3, 8, 8), ["block.drop_path"])
    # the probe ran on the meta device: the real weights are untouched
    assert backbone.model.head.weight.device.type == "cpu" and torch.equal(backbone.model.head.weight, weight)


def test_efficientnet_lite0_drop_paths_are_refused():
    from paramviz.errors import ConfigError

    with torch.device("meta"):
        backbone = build_backbone("efficientnet_lite0", "random")
    never = sorted(path for path, info in backbone.probe().items() if not info.ran)
    assert never == [f"blocks.{i}.0.drop_path" for i in range(7)]
    with pytest.raises(ConfigError, match="blocks.0.0.drop_path.*use 'blocks.0.0'"):
        backbone.validate(["stage3", "blocks.0.0.drop_path"])


def test_probe_reports_output_shapes_and_call_order(user_backbone: Backbone):
    info = user_backbone.probe(16)
    assert info["stem"].shape == (4, 16, 16) and info["head"].shape == (5,)
    assert info["stem"].order < info["body.0"].order < info["head"].order
    assert info["body"].leaf is False and info["body.0"].leaf is True and info["body"].kind == "Sequential"
    assert user_backbone.probe(16) is info  # cached per size
    assert user_backbone.probe((16, 24))["stem"].shape == (4, 16, 24)


def test_a_network_that_cannot_run_on_meta_skips_the_probe():
    class DataDependent(SkipsAModule):
        def forward(self, x: torch.Tensor) -> torch.Tensor:
            if x.mean().item() > 100:  # needs real values
                return x
            return super().forward(x)

    backbone = Backbone(DataDependent(), name="dd")
    assert backbone.probe() is None
    backbone.validate(["block.drop_path"])  # cannot tell here ...
    from paramviz.errors import ConfigError

    with pytest.raises(ConfigError, match="never runs"):  # ... so the forward reports it cleanly
        backbone(torch.rand(1, 3, 8, 8), ["block.drop_path"])


class FlatNet(nn.Module):
    """A network that flattens a feature map with ``view``: it cannot run channels-last."""

    def __init__(self) -> None:
        super().__init__()
        self.stem = nn.Conv2d(3, 4, 3, padding=1)
        self.head = nn.Linear(4 * 8 * 8, 2)
        self.calls = 0

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.calls += 1
        x = self.stem(x)
        return self.head(x.view(x.shape[0], -1))


def _channels_last(backbone: Backbone) -> bool:
    return backbone.model.stem.weight.is_contiguous(memory_format=torch.channels_last)


@pytest.mark.parametrize("memory_format", ["auto", "channels_last", "contiguous"])
def test_memory_format_lays_out_the_weights_and_keeps_the_activations(user_backbone, memory_format) -> None:
    torch.manual_seed(0)
    x = torch.rand(2, 3, 12, 12, requires_grad=True)
    expected = user_backbone(x, ["body.1"])["body.1"]  # auto: channels-last on the CPU
    assert _channels_last(user_backbone)
    (grad,) = torch.autograd.grad(expected.square().sum(), x)
    user_backbone.memory_format = memory_format
    got = user_backbone(x, ["body.1"])["body.1"]
    assert _channels_last(user_backbone) == (memory_format != "contiguous")
    torch.testing.assert_close(got, expected, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(torch.autograd.grad(got.square().sum(), x)[0], grad, rtol=1e-5, atol=1e-6)
    assert user_backbone.arrange("cpu") == (memory_format != "contiguous")


def test_auto_runs_a_network_that_cannot_be_channels_last_as_built_from_then_on() -> None:
    torch.manual_seed(0)
    net = FlatNet()
    backbone = Backbone(net, name="flat")
    x = torch.rand(1, 3, 8, 8)
    expected = Backbone(net, name="flat", memory_format="contiguous")(x, ["head"])["head"]
    net.calls = 0
    torch.testing.assert_close(backbone(x, ["head"])["head"], expected)
    assert not _channels_last(backbone) and net.calls == 2  # one failed channels-last run, then as built
    backbone(x, ["head"])
    assert net.calls == 3 and not backbone.arrange("cpu")


def test_forced_channels_last_on_such_a_network_is_a_clear_error() -> None:
    from paramviz.errors import ConfigError

    backbone = Backbone(FlatNet(), name="flat", memory_format="channels_last")
    with pytest.raises(ConfigError, match="'flat' failed to run with channels-last weights .*'contiguous'"):
        backbone(torch.rand(1, 3, 8, 8), ["head"])


def test_unknown_memory_format_is_refused() -> None:
    from paramviz.errors import ConfigError

    with pytest.raises(ConfigError, match="one of auto, channels_last, contiguous, got 'nhwc'"):
        Backbone(UserNet(), memory_format="nhwc")


def test_torchvision_shufflenet_runs_under_auto() -> None:
    torch.manual_seed(0)
    backbone = build_backbone("salman_shufflenet_v2_x1_0_l2_eps0", "random")
    x = torch.rand(1, 3, 64, 64)
    got = backbone(x, ["logits"])["logits"]
    backbone.memory_format = "contiguous"
    torch.testing.assert_close(got, backbone(x, ["logits"])["logits"], rtol=1e-4, atol=1e-4)


def test_the_layout_is_read_from_the_weights_so_wrappers_can_share_a_network(user_backbone) -> None:
    # two wrappers around one module, and a module converted by hand: each forward runs in its own layout
    other = Backbone(user_backbone.model, name="other", memory_format="contiguous")
    x = torch.rand(1, 3, 8, 8)
    user_backbone(x, ["logits"])
    assert _channels_last(user_backbone)
    other(x, ["head"])
    assert not _channels_last(user_backbone)
    user_backbone(x, ["logits"])
    assert _channels_last(user_backbone)
    user_backbone.model.to(memory_format=torch.contiguous_format)
    assert user_backbone.arrange("cpu") and _channels_last(user_backbone)
    linear = Backbone(nn.Sequential(nn.Flatten(), nn.Linear(3 * 8 * 8, 2)), name="linear")
    assert not linear.arrange("cpu")  # nothing whose layout matters
