"""BatchNorm folding: which pairs fold, the same function as built, a model untouched outside the forward."""

from __future__ import annotations

import pytest
import timm
import torch
import torchvision
from torch import nn

from paramviz.backbones import Backbone, build_backbone
from paramviz.backbones.fold import BatchNormFolding, find_batchnorm_pairs
from paramviz.errors import ConfigError


def _spread_statistics(model: nn.Module) -> nn.Module:
    """Random-weight BatchNorms are the identity (mean 0, var 1, gamma 1, beta 0): give them something to fold."""
    for m in model.modules():
        if isinstance(m, nn.BatchNorm2d):
            m.running_mean.uniform_(-0.5, 0.5)
            m.running_var.uniform_(0.3, 3.0)
            if m.affine:
                m.weight.data.uniform_(-1.5, 1.5)
                m.bias.data.uniform_(-0.5, 0.5)
    return model.eval()


def _resnet18() -> nn.Module:
    torch.manual_seed(0)
    return _spread_statistics(torchvision.models.resnet18())


def _lite0() -> nn.Module:  # timm's BatchNormAct2d (norm + ReLU6) after Conv2d and Conv2dSame
    torch.manual_seed(0)
    return _spread_statistics(timm.create_model("tf_efficientnet_lite0"))


class StandardizedConv(nn.Conv2d):
    """A convolution that standardizes its weight first (like timm's StdConv2d): scaling it changes nothing."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        w = self.weight
        w = (w - w.mean((1, 2, 3), keepdim=True)) / (w.std((1, 2, 3), keepdim=True) + 1e-5)
        return self._conv_forward(x, w, self.bias)


class Mixed(nn.Module):
    """One foldable pair and four that are not: a residual, a shared conv, a standardized conv, a view."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 3, padding=1)
        self.bn = nn.BatchNorm2d(4, affine=False)  # folds (no affine: gamma 1, beta 0)
        self.res_conv = nn.Conv2d(4, 4, 3, padding=1)
        self.res_bn = nn.BatchNorm2d(4)  # its conv's output is also added to the BN's output
        self.shared = nn.Conv2d(4, 4, 1)
        self.shared_bn1, self.shared_bn2 = nn.BatchNorm2d(4), nn.BatchNorm2d(4)
        self.std_conv = StandardizedConv(4, 4, 3, padding=1)
        self.std_bn = nn.BatchNorm2d(4)
        self.view_conv = nn.Conv2d(4, 4, 1)
        self.view_bn = nn.BatchNorm2d(4)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.bn(self.conv(x))
        r = self.res_conv(x)
        x = self.res_bn(r) + r
        x = self.shared_bn1(self.shared(x)) + self.shared_bn2(self.shared(x))
        x = self.std_bn(self.std_conv(x))
        y = self.view_conv(x)
        return self.view_bn(y[:, :, 1:])


@pytest.fixture
def mixed() -> Backbone:
    torch.manual_seed(0)
    return Backbone(_spread_statistics(Mixed()).double(), name="mixed")


def _both(backbone: Backbone, x: torch.Tensor, layers: list[str]) -> tuple[dict, dict]:
    """The activations and input gradients folded and as built."""
    out = []
    for fold in (True, False):
        backbone.fold_batchnorm = fold
        x = x.detach().requires_grad_()
        acts = backbone(x, layers)
        sum(a.square().mean() for a in acts.values()).backward()
        out.append({**{k: v.detach() for k, v in acts.items()}, "grad": x.grad})
    backbone.fold_batchnorm = True
    return out[0], out[1]


def test_only_a_convolution_that_feeds_nothing_but_its_batchnorm_is_folded(mixed: Backbone) -> None:
    assert find_batchnorm_pairs(mixed.model, (8, 8)) == [("conv", "bn")]
    folded, built = _both(mixed, torch.rand(2, 3, 8, 8, dtype=torch.float64), ["view_bn"])
    for key in built:
        torch.testing.assert_close(folded[key], built[key], rtol=1e-10, atol=1e-12)


def test_resnet_pairs_are_every_convolution_and_its_norm() -> None:
    pairs = find_batchnorm_pairs(_resnet18(), (64, 64))
    assert len(pairs) == 20
    assert pairs[0] == ("conv1", "bn1")
    assert ("layer2.0.downsample.0", "layer2.0.downsample.1") in pairs


@pytest.mark.parametrize(
    ("make", "layers"),
    [
        (_resnet18, ["layer1"]),
        (_resnet18, ["layer2.1.relu", "layer3"]),
        (_resnet18, ["fc"]),
        (_lite0, ["blocks.2"]),
        (_lite0, ["blocks.1.0.bn1", "blocks.3"]),
    ],
)
def test_folded_forward_and_input_gradient_are_the_network_as_built(make, layers) -> None:
    backbone = Backbone(make().double(), name="net")
    folded, built = _both(backbone, torch.rand(2, 3, 64, 64, dtype=torch.float64), layers)
    assert backbone._folding.folds
    for key in built:
        torch.testing.assert_close(folded[key], built[key], rtol=1e-9, atol=1e-12)


def test_a_requested_convolution_or_norm_gives_its_own_output() -> None:
    backbone = Backbone(_resnet18().double(), name="net")
    layers = ["layer1.0.conv1", "layer1.0.bn2", "layer2"]
    folded, built = _both(backbone, torch.rand(1, 3, 64, 64, dtype=torch.float64), layers)
    for key in layers:
        torch.testing.assert_close(folded[key], built[key], rtol=1e-9, atol=1e-12)


def test_a_hook_on_a_folded_convolution_sees_its_own_output() -> None:
    backbone = Backbone(_resnet18().double(), name="net")
    seen = []
    backbone.model.layer1[0].conv1.register_forward_hook(lambda m, i, o: seen.append(o))
    x = torch.rand(1, 3, 64, 64, dtype=torch.float64)
    with torch.no_grad():
        backbone(x, ["layer2"])
        backbone.fold_batchnorm = False
        backbone(x, ["layer2"])
    assert len(seen) == 2  # (the search for pairs on the meta device sets the user's hooks aside)
    torch.testing.assert_close(seen[0], seen[1], rtol=1e-9, atol=1e-12)  # (its input comes folded)


def test_the_model_is_unchanged_outside_the_forward_even_after_an_error() -> None:
    model = _resnet18()
    state = {k: v.clone() for k, v in model.state_dict().items()}
    modules = dict(model.named_modules())
    params = {k: id(v) for k, v in model.named_parameters()}
    backbone = Backbone(model, name="net")
    backbone(torch.rand(1, 3, 64, 64), ["layer3"])

    def fail(*_: object) -> None:
        raise ValueError("stop mid-forward")

    handle = model.layer2.register_forward_hook(fail)
    with pytest.raises(ValueError, match="stop mid-forward"):
        backbone(torch.rand(1, 3, 64, 64), ["fc"])
    handle.remove()
    assert backbone._folding.folds
    after = model.state_dict()
    assert after.keys() == state.keys()
    assert all(torch.equal(after[k], v) for k, v in state.items())
    assert dict(model.named_modules()) == modules
    assert {k: id(v) for k, v in model.named_parameters()} == params


def test_the_folded_weights_follow_changes_to_the_model() -> None:
    backbone = Backbone(_resnet18(), name="net", memory_format="contiguous")
    x = torch.rand(1, 3, 64, 64)

    def check() -> None:
        folded, built = _both(backbone, x.to(backbone.mean.dtype), ["layer2"])
        torch.testing.assert_close(folded["layer2"], built["layer2"], rtol=1e-4, atol=1e-5)

    check()
    backbone.model.load_state_dict(_spread_statistics(torchvision.models.resnet18()).state_dict())
    check()  # new weights, in place
    with torch.no_grad():
        backbone.model.layer1[0].bn1.running_var.mul_(4)
    check()  # an in-place edit of one statistic
    backbone.double()
    check()  # a dtype change (new tensors)
    backbone.memory_format = "channels_last"
    check()  # a layout change


def test_a_network_that_cannot_run_on_meta_is_not_folded() -> None:
    class DataDependent(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.conv, self.bn = nn.Conv2d(3, 2, 1), nn.BatchNorm2d(2)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            y = self.bn(self.conv(x))
            return y * float(y.mean() > 0)  # needs real data

    assert find_batchnorm_pairs(DataDependent().eval(), (4, 4)) == []
    backbone = Backbone(DataDependent(), name="dd")
    backbone(torch.rand(1, 3, 4, 4), ["bn"])
    assert backbone._folding.folds == []


def test_applied_swaps_for_the_block_only(mixed: Backbone) -> None:
    folding = BatchNormFolding(mixed.model, find_batchnorm_pairs(mixed.model, (8, 8)))
    weight = mixed.model.conv.weight
    with folding.applied():
        assert isinstance(mixed.model.bn, nn.Identity)
        assert mixed.model.conv.weight is not weight
    assert isinstance(mixed.model.bn, nn.BatchNorm2d)
    assert mixed.model.conv.weight is weight


def test_fold_batchnorm_option_is_checked_and_reaches_the_backbone() -> None:
    assert build_backbone("resnet18", "random").fold_batchnorm is True
    assert build_backbone("resnet18", "random", fold_batchnorm=False).fold_batchnorm is False
    with pytest.raises(ConfigError, match="fold_batchnorm must be true or false, got 'yes'"):
        build_backbone("resnet18", "random", fold_batchnorm="yes")
    with pytest.raises(ConfigError, match="fold_batchnorm must be true or false, got 1"):
        Backbone(nn.Conv2d(3, 2, 1), fold_batchnorm=1)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_folding_on_cuda_is_the_network_as_built(monkeypatch) -> None:
    monkeypatch.setattr(torch.backends.cudnn, "allow_tf32", False)  # TF32 rounds either side by ~1e-3
    backbone = Backbone(_resnet18(), name="net").to("cuda")
    folded, built = _both(backbone, torch.rand(2, 3, 64, 64, device="cuda"), ["layer3"])
    assert backbone._folding.folds[0].weight.is_cuda
    for key in built:
        torch.testing.assert_close(folded[key], built[key], rtol=1e-3, atol=1e-4)


def test_a_forward_folds_only_the_pairs_that_run_before_it_stops() -> None:
    backbone = Backbone(_resnet18(), name="net")
    x = torch.rand(1, 3, 64, 64)
    backbone(x, ["layer1"])
    plan = backbone.fold_plan((64, 64), ["layer1"])
    assert [f.pair.norm_path for f in plan] == ["bn1", "layer1.0.bn1", "layer1.0.bn2", "layer1.1.bn1", "layer1.1.bn2"]
    plan = backbone.fold_plan((64, 64), ["layer1.0.conv2", "layer1"])
    assert "layer1.0.bn2" not in [f.pair.norm_path for f in plan]


def test_a_failure_while_swapping_in_leaves_the_model_as_built(monkeypatch) -> None:
    model = Mixed()
    folding = BatchNormFolding(model.eval(), find_batchnorm_pairs(model, (8, 8)) * 2)  # the pair twice
    calls = []

    def refresh(self) -> None:
        calls.append(self)
        if len(calls) == 2:
            raise RuntimeError("cannot fold")
        self.weight, self.bias = self.conv.weight * 2, torch.zeros(4)

    monkeypatch.setattr(type(folding.folds[0]), "refresh", refresh)
    weight = model.conv.weight
    with pytest.raises(RuntimeError, match="cannot fold"):
        folding.swap_in()
    assert model.conv.weight is weight and isinstance(model.bn, nn.BatchNorm2d)


def test_weights_folded_under_inference_mode_serve_a_later_backward() -> None:
    backbone = Backbone(_resnet18(), name="net")
    x = torch.rand(1, 3, 64, 64)
    with torch.inference_mode():  # e.g. a target computed first: the folded weights are made here
        backbone(x, ["layer2"])
    x.requires_grad_()
    backbone(x, ["layer2"])["layer2"].square().mean().backward()
    assert x.grad is not None and x.grad.abs().sum() > 0
