import argparse
import pathlib
import re
import urllib.error

import pytest
import torch
from torch import nn

import paramviz.backbones.weights as weights_module
from paramviz.backbones import BACKBONES, build_backbone
from paramviz.backbones.base import Backbone
from paramviz.backbones.robust import (
    ARCHS,
    HF_BASE,
    ROBUST_WEIGHTS,
    SALMAN_L2_EPS,
    SALMAN_LINF_EPS,
    build_arch,
    infer_arch,
    load_robust_backbone,
    parse_robust_checkpoint,
    read_robust_checkpoint,
)
from paramviz.errors import CheckpointError, ConfigError, UnsafeCheckpointError, WeightsError

MEAN = torch.tensor([0.40, 0.50, 0.60])
STD = torch.tensor([0.20, 0.25, 0.30])


def random_model(arch: str) -> nn.Module:
    """A random torchvision model with non-trivial batch-norm statistics, in eval mode."""
    torch.manual_seed(0)
    model = build_arch(arch)
    for module in model.modules():
        if isinstance(module, nn.BatchNorm2d):
            module.running_mean.uniform_(-0.2, 0.2)
            module.running_var.uniform_(0.5, 1.5)
            module.weight.data.uniform_(0.5, 1.5)
    return model.eval()


def robustness_state_dict(model: nn.Module, nested: bool) -> dict[str, torch.Tensor]:
    """The state dict the robustness library's DataParallel(AttackerModel) writes."""
    inner = "model.model." if nested else "model."
    sd = {
        "module.normalizer.new_mean": MEAN[:, None, None].clone(),
        "module.normalizer.new_std": STD[:, None, None].clone(),
    }
    for key, value in model.state_dict().items():
        sd[f"module.{inner}{key}"] = value
    sd["module.attacker.normalize.new_mean"] = sd["module.normalizer.new_mean"]
    sd["module.attacker.normalize.new_std"] = sd["module.normalizer.new_std"]
    for key, value in model.state_dict().items():
        sd[f"module.attacker.{inner}{key}"] = value
    return sd


def save_checkpoint(
    path: pathlib.Path, sd: dict, container: str = "model", legacy: bool = False, **extra
) -> pathlib.Path:
    obj = {container: sd, "optimizer": {"state": {}, "param_groups": [{"lr": 0.1, "momentum": 0.9}]}}
    obj.update({"schedule": None, "epoch": 90, **extra})
    # legacy=True: the pre-1.6 torch file format the 2019 MadryLab files use
    torch.save(obj, path, _use_new_zipfile_serialization=not legacy)
    return path


def reference_logits(model: nn.Module, x: torch.Tensor) -> torch.Tensor:
    with torch.no_grad():
        return model((x - MEAN.view(1, 3, 1, 1)) / STD.view(1, 3, 1, 1))


LAYOUTS = [
    # (architecture, nested module.model.model.*, top-level container, legacy torch file format,
    #  registry entry using that architecture)
    ("resnet18", False, "model", False, "salman_resnet18_l2_eps3"),
    ("resnet18", False, "state_dict", True, "salman_resnet18_linf_eps4"),
    ("mobilenet_v2", True, "model", False, "salman_mobilenet_v2_l2_eps3"),
]


@pytest.mark.parametrize(("arch", "nested", "container", "legacy", "entry"), LAYOUTS)
def test_each_layout_gives_the_source_models_logits(tmp_path, arch, nested, container, legacy, entry):
    model = random_model(arch)
    path = save_checkpoint(tmp_path / "robust.ckpt", robustness_state_dict(model, nested), container, legacy)
    x = torch.rand(2, 3, 32, 32)
    expected = reference_logits(model, x)

    ckpt = read_robust_checkpoint(path)
    assert ckpt.layout == ("robustness-torchvision" if nested else "robustness")
    assert ckpt.container_key == container and ckpt.epoch == 90
    assert ckpt.mean == pytest.approx(MEAN.tolist()) and ckpt.std == pytest.approx(STD.tolist())

    for backbone in (load_robust_backbone(path), build_backbone(entry, str(path))):
        assert isinstance(backbone, Backbone)
        assert type(backbone.model) is type(model)
        assert backbone.mean.flatten().tolist() == pytest.approx(MEAN.tolist())
        with torch.no_grad():
            logits = backbone(x, ["logits"])["logits"]
        torch.testing.assert_close(logits, expected, rtol=1e-4, atol=1e-5)
        assert str(path) in backbone.weights_source


def test_bare_state_dict_without_container_is_accepted(tmp_path):
    model = random_model("resnet18")
    path = tmp_path / "bare.pt"
    torch.save(robustness_state_dict(model, nested=False), path)
    backbone = load_robust_backbone(path, "resnet18")
    x = torch.rand(1, 3, 32, 32)
    torch.testing.assert_close(backbone(x, ["logits"])["logits"], reference_logits(model, x), rtol=1e-4, atol=1e-5)


@pytest.fixture(scope="module")
def resnet18_sd() -> dict[str, torch.Tensor]:
    return robustness_state_dict(random_model("resnet18"), nested=False)


def test_missing_network_key_is_named(resnet18_sd):
    sd = dict(resnet18_sd)
    del sd["module.model.layer1.0.conv1.weight"]
    del sd["module.attacker.model.layer1.0.conv1.weight"]
    ckpt = parse_robust_checkpoint({"model": sd}, source="f.ckpt")
    with pytest.raises(WeightsError, match=r"missing key.*'layer1\.0\.conv1\.weight'"):
        from paramviz.backbones.robust import robust_backbone_from_checkpoint

        robust_backbone_from_checkpoint(ckpt, "resnet18")
    with pytest.raises(CheckpointError, match=r"closest is 'resnet18' with 1 missing key\(s\) 'layer1\.0\.conv1"):
        infer_arch(ckpt.state_dict, source="f.ckpt")


@pytest.mark.parametrize(
    ("key", "match"),
    [
        ("module.model.extra_head.weight", r"unexpected or differently shaped key\(s\) 'extra_head\.weight'"),
        ("module.optimizer_state", r"unexpected key\(s\) 'module\.optimizer_state'"),
        ("module.attacker.foo", r"unexpected key\(s\) 'module\.attacker\.foo'"),
        ("module.normalizer.bias", r"unexpected key\(s\) 'module\.normalizer\.bias'"),
    ],
)
def test_unexpected_key_is_named(resnet18_sd, key, match):
    sd = dict(resnet18_sd)
    sd[key] = torch.zeros(3)
    with pytest.raises(CheckpointError, match=match):
        ckpt = parse_robust_checkpoint({"model": sd}, source="f.ckpt")
        infer_arch(ckpt.state_dict, source="f.ckpt")


def test_unexpected_network_key_is_named_for_a_given_architecture(resnet18_sd):
    from paramviz.backbones.robust import robust_backbone_from_checkpoint

    sd = dict(resnet18_sd)
    sd["module.model.extra_head.weight"] = torch.zeros(3)
    with pytest.raises(WeightsError, match=r"unexpected key.*'extra_head\.weight'"):
        robust_backbone_from_checkpoint(parse_robust_checkpoint({"model": sd}), "resnet18")


def test_missing_normalizer_and_foreign_layouts_are_refused(resnet18_sd):
    sd = {k: v for k, v in resnet18_sd.items() if "normaliz" not in k}
    with pytest.raises(CheckpointError, match="missing key 'module.normalizer.new_mean'"):
        parse_robust_checkpoint({"model": sd})
    with pytest.raises(CheckpointError, match="no state dict found.*'epoch'"):
        parse_robust_checkpoint({"epoch": 3, "args": "x"})
    with pytest.raises(CheckpointError, match="got list"):
        parse_robust_checkpoint([1, 2])
    with pytest.raises(CheckpointError, match=r"missing the network weights \('module.model.\*'"):
        parse_robust_checkpoint({"model": {k: v for k, v in resnet18_sd.items() if "normalizer" in k}})


class Payload:
    """Unpickling this object calls a function with a side effect (creates a marker file)."""

    def __init__(self, marker: pathlib.Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (pathlib.Path.touch, (self.marker,))


def test_malicious_pickle_is_refused_and_never_executed(tmp_path, resnet18_sd):
    marker = tmp_path / "pwned"
    path = save_checkpoint(tmp_path / "evil.ckpt", resnet18_sd, payload=Payload(marker))
    with pytest.raises(UnsafeCheckpointError, match="--trust-checkpoint"):
        read_robust_checkpoint(path)
    with pytest.raises(UnsafeCheckpointError, match="pathlib"):
        build_backbone("madry_resnet50_l2_eps3", str(path))
    with pytest.raises(UnsafeCheckpointError):
        build_backbone("robust_checkpoint", str(path))
    assert not marker.exists()


def test_files_needing_full_unpickling_load_only_when_trusted(tmp_path):
    model = random_model("resnet18")
    # Like checkpoints that also store the training arguments as an argparse.Namespace.
    path = save_checkpoint(
        tmp_path / "args.ckpt", robustness_state_dict(model, False), args=argparse.Namespace(arch="resnet18")
    )
    with pytest.raises(UnsafeCheckpointError, match="argparse.Namespace"):
        build_backbone("salman_resnet18_l2_eps3", str(path))
    backbone = build_backbone("salman_resnet18_l2_eps3", str(path), trust_checkpoint=True)
    x = torch.rand(1, 3, 32, 32)
    torch.testing.assert_close(backbone(x, ["logits"])["logits"], reference_logits(model, x), rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("name", ["madry_resnet50_l2_eps3", "madry_resnet50_linf_eps8", "salman_resnet50_linf_eps4"])
def test_offline_pretrained_names_the_url_and_the_file(tmp_path, monkeypatch, name):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))

    def offline(url, dst, hash_prefix=None):
        raise urllib.error.URLError("no network")

    monkeypatch.setattr(weights_module, "download_file", offline)
    entry = ROBUST_WEIGHTS[name]
    with pytest.raises(WeightsError) as info:
        build_backbone(name)
    message = str(info.value)
    assert entry.url in message and repr(entry.filename) in message
    assert str(tmp_path / "hub" / "checkpoints" / entry.filename) in message and "--weights PATH" in message


def test_registry_lists_every_published_file():
    names = set(ROBUST_WEIGHTS)
    assert {"madry_resnet50_l2_eps3", "madry_resnet50_linf_eps4", "madry_resnet50_linf_eps8"} <= names
    for arch in ("resnet18", "resnet50", "wide_resnet50_2", "wide_resnet50_4"):
        assert {f"salman_{arch}_l2_eps{e}" for e in SALMAN_L2_EPS} <= names
    for arch in ("resnet18", "resnet50", "wide_resnet50_2"):
        assert {f"salman_{arch}_linf_eps{e}" for e in ("0", *SALMAN_LINF_EPS)} <= names
    for arch in ("densenet161", "mobilenet_v2", "vgg16_bn", "resnext50_32x4d", "shufflenet_v2_x1_0", "mnasnet1_0"):
        assert {f"salman_{arch}_l2_eps0", f"salman_{arch}_l2_eps3"} <= names
    assert ROBUST_WEIGHTS["salman_resnet50_linf_eps4"].filename == "resnet50_linf_eps4.0.ckpt"
    assert ROBUST_WEIGHTS["salman_resnet50_linf_eps4"].eps == pytest.approx(4 / 255)
    assert ROBUST_WEIGHTS["salman_resnet50_linf_eps0"].filename == "resnet50_l2_eps0.ckpt"
    assert ROBUST_WEIGHTS["salman_densenet161_l2_eps3"].filename == "densenet_l2_eps3.ckpt"
    assert ROBUST_WEIGHTS["madry_resnet50_linf_eps8"].filename == "imagenet_linf_8.pt"


@pytest.mark.parametrize("name", sorted(ROBUST_WEIGHTS))
def test_each_entry_is_registered_with_its_source(name):
    w = ROBUST_WEIGHTS[name]
    entry = BACKBONES.get(name)
    assert entry.family == "robust"
    assert w.filename in entry.weights_source and w.url in entry.weights_source
    assert w.url.startswith("https://") and w.filename in w.url
    assert w.arch in ARCHS and w.norm in ("l2", "linf")
    if name.startswith("salman_"):
        assert w.url == HF_BASE + w.filename
        assert re.fullmatch(r"[a-z0-9_]+_(l2|linf)_eps[0-9.]+\.ckpt", w.filename)


@pytest.mark.parametrize("arch", sorted(ARCHS))
def test_each_architecture_has_valid_aliases_and_is_recognized_from_its_keys(arch):
    model = build_arch(arch, "meta")
    spec = ARCHS[arch]
    backbone = Backbone(model, name=arch, aliases=spec.aliases(model))  # raises on an alias to a missing module
    assert "logits" in backbone.aliases
    assert isinstance(backbone.module("logits"), nn.Linear)
    assert infer_arch(model.state_dict()) == arch


def test_random_weights_and_robust_checkpoint_entry(tmp_path, resnet18_sd):
    backbone = build_backbone("salman_resnet18_l2_eps3", "random")
    assert backbone.weights_source == "random" and backbone.mean.flatten().tolist() == pytest.approx(
        [0.485, 0.456, 0.406]
    )
    with pytest.raises(ConfigError, match="--weights PATH"):
        build_backbone("robust_checkpoint")
    path = save_checkpoint(tmp_path / "r.ckpt", resnet18_sd)
    assert type(build_backbone("robust_checkpoint", str(path)).model).__name__ == "ResNet"
    assert len(build_backbone("robust_checkpoint", str(path), arch="resnet18").aliases) == 1
