"""The backbone contract, checked for every registry entry (random weights) and for two timm models.

Static properties (frozen, eval after ``train()``, aliases listed and resolving, ``logits`` alias) are checked
for every entry on a cheap ``meta``-device build. The forward contract (requested keys, aliases equal to
their modules' outputs, the entry's normalization, gradients to the input, truncation, no hook left behind)
needs real tensors: it runs once per distinct architecture (same module tree, tensor shapes and aliases), so
the many robust-checkpoint entries that share an architecture cost one forward, not one each.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest
import torch
from torch import nn

from paramviz.backbones import BACKBONES, Backbone, build_backbone

IMAGENET = ((0.485, 0.456, 0.406), (0.229, 0.224, 0.225))
#: Normalization of entries that do not use ImageNet mean/std.
EXPECTED_STATS = {
    **{f"efficientnet_lite{i}": ((0.5,) * 3, (0.5,) * 3) for i in range(3)},
    "timm:tf_efficientnet_lite0": ((0.5,) * 3,) * 2,
}
#: Options an entry needs to be built with random weights.
RANDOM_OPTIONS = {"robust_checkpoint": {"arch": "resnet18"}}
#: Input side per entry: 32 px unless the network needs more (AlexNet's pools need 63 px).
SIZES = {"alexnet": 64}
NAMES = [*BACKBONES.names(), "timm:resnet18", "timm:tf_efficientnet_lite0"]


def _build(name: str, device: str | None = None) -> Backbone:
    torch.manual_seed(0)
    if device is None:
        return build_backbone(name, "random", **RANDOM_OPTIONS.get(name, {}))
    with torch.device(device):
        return build_backbone(name, "random", **RANDOM_OPTIONS.get(name, {}))


def _signature(name: str) -> object:
    try:
        backbone = _build(name, "meta")
    except Exception as exc:  # reported by the tests of this entry
        return ("error", name, repr(exc))
    modules = tuple((p, type(m).__qualname__) for p, m in backbone.model.named_modules())
    tensors = tuple((k, tuple(v.shape)) for k, v in backbone.model.state_dict().items())
    return type(backbone).__qualname__, modules, tensors, tuple(backbone.aliases.items()), backbone.input_size


def _architecture_groups() -> dict[str, list[str]]:
    groups: dict[object, list[str]] = {}
    for name in NAMES:
        groups.setdefault(_signature(name), []).append(name)
    return {names[0]: names for names in groups.values()}


GROUPS = _architecture_groups()


@pytest.mark.parametrize("name", NAMES)
def test_entry_contract(name: str) -> None:
    backbone = _build(name, "meta")
    assert isinstance(backbone, Backbone)
    assert not any(p.requires_grad for p in backbone.parameters())
    backbone.train()
    assert not backbone.training and not any(m.training for m in backbone.modules())
    assert backbone.weights_source == "random"
    layers = backbone.layers()
    modules = dict(backbone.model.named_modules())
    assert "logits" in backbone.aliases
    assert isinstance(modules[backbone.aliases["logits"]], nn.Linear | nn.Conv2d) or any(
        isinstance(m, nn.Linear) for m in modules[backbone.aliases["logits"]].modules()
    )
    for alias, path in backbone.aliases.items():
        assert alias in layers and path in layers
        assert backbone.resolve(alias) == path
        assert backbone.module(alias) is modules[path]


def _hook_all(model: nn.Module, record: Callable[[str, object], None]) -> list:
    return [
        module.register_forward_hook(lambda m, i, o, p=path: record(p, o))
        for path, module in model.named_modules()
        if path
    ]


@pytest.mark.parametrize("name", list(GROUPS), ids=[f"{k} (+{len(v) - 1} alike)" for k, v in GROUPS.items()])
def test_forward_contract(name: str) -> None:
    backbone = _build(name)
    model = backbone.model
    size = SIZES.get(name, 32)

    # one full forward: reference outputs from our own hooks, call order of every module
    order: list[str] = []
    reference: dict[str, torch.Tensor] = {}
    inputs: list[torch.Tensor] = []

    def record(path: str, output: object) -> None:
        order.append(path)
        if path not in reference and isinstance(output, torch.Tensor):
            reference[path] = output.detach().clone()

    handles = _hook_all(model, record)
    handles.append(model.register_forward_pre_hook(lambda m, args: inputs.append(args[0].detach().clone())))
    x = torch.rand(2, 3, size, size, requires_grad=True)
    logits_path = backbone.aliases["logits"]
    requested = [*backbone.aliases, logits_path]
    try:
        out = backbone(x, requested)
    finally:
        for handle in handles:
            handle.remove()

    assert list(out) == list(dict.fromkeys(requested))
    assert out["logits"].shape == (2, 1000)
    assert out[logits_path] is out["logits"]
    for alias, path in backbone.aliases.items():
        torch.testing.assert_close(out[alias], reference[path], rtol=0, atol=0, msg=f"{alias} != {path}")

    # normalization with the entry's statistics: the network sees normalized input
    mean, std = EXPECTED_STATS.get(name, IMAGENET)
    expected = (x.detach() - torch.tensor(mean).view(1, 3, 1, 1)) / torch.tensor(std).view(1, 3, 1, 1)
    torch.testing.assert_close(inputs[0], expected)

    # gradients reach the input through every requested layer
    sum(t.float().mean() for t in out.values()).backward()
    assert x.grad is not None and torch.isfinite(x.grad).all() and x.grad.abs().sum() > 0

    # truncation: an early layer runs exactly the prefix of the full forward up to it, never the classifier
    target = next(p for p in order[len(order) // 3 :] if p in reference)
    ran: list[str] = []
    handles = _hook_all(model, lambda p, o: ran.append(p))
    try:
        with torch.no_grad():
            early = backbone(x.detach(), [target])
    finally:
        for handle in handles:
            handle.remove()
    assert ran == order[: order.index(target) + 1]
    assert logits_path not in ran
    torch.testing.assert_close(early[target], reference[target])

    # no hook is left behind
    assert not any(m._forward_hooks or m._forward_pre_hooks for m in backbone.modules())


def test_every_entry_is_in_an_architecture_group() -> None:
    grouped = [n for names in GROUPS.values() for n in names]
    assert sorted(grouped) == sorted(NAMES)
