"""Weights: local .pt/.safetensors files, unsafe pickles, key matching, the hub cache and offline errors."""

from __future__ import annotations

import argparse
import os
import pickle
import urllib.error
from pathlib import Path

import pytest
import torch
from safetensors.torch import save_file

import paramviz.backbones.weights as weights_mod
from paramviz.backbones import build_backbone, cached_download, load_state_dict_file
from paramviz.backbones.weights import load_into, read_checkpoint, unwrap_state_dict
from paramviz.errors import UnsafeCheckpointError, WeightsError

RESNET18_FILE = "resnet18-f37072fd.pth"
RESNET18_URL = "https://download.pytorch.org/models/resnet18-f37072fd.pth"


@pytest.fixture(scope="module")
def lite0():
    torch.manual_seed(3)
    return build_backbone("efficientnet_lite0", "random")


@pytest.fixture(autouse=True)
def _no_downloads(monkeypatch, tmp_path):
    """Point the torch hub cache at an empty directory and make every download fail as if offline."""
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    calls = []

    def offline(url: str, dst: Path, hash_prefix: str | None = None) -> None:
        calls.append(url)
        raise urllib.error.URLError("[Errno -3] Temporary failure in name resolution")

    monkeypatch.setattr(weights_mod, "download_file", offline)
    return calls


def _logits(backbone, seed: int = 0) -> torch.Tensor:
    torch.manual_seed(seed)
    return backbone(torch.rand(2, 3, 64, 64), ["logits"])["logits"]


@pytest.mark.parametrize("suffix", [".pt", ".pth", ".bin", ".safetensors"])
def test_local_file_round_trip_gives_identical_logits(lite0, tmp_path, suffix) -> None:
    path = tmp_path / f"lite0{suffix}"
    state = lite0.model.state_dict()
    if suffix == ".safetensors":
        save_file({k: v.contiguous() for k, v in state.items()}, str(path))
    else:
        torch.save(state, path)
    loaded = build_backbone("efficientnet_lite0", str(path))
    assert loaded.weights_source == f"file {path}"
    assert torch.equal(_logits(loaded), _logits(lite0))
    assert not torch.equal(_logits(build_backbone("efficientnet_lite0", "random")), _logits(lite0))


def test_torchvision_backbone_loads_a_local_pt(tmp_path) -> None:
    torch.manual_seed(4)
    source = build_backbone("resnet18", "random")
    torch.save(
        {"epoch": 3, "state_dict": {f"module.{k}": v for k, v in source.model.state_dict().items()}},
        tmp_path / "ddp.pt",
    )
    loaded = build_backbone("resnet18", tmp_path / "ddp.pt")  # nested and DataParallel-prefixed
    assert torch.equal(_logits(loaded), _logits(source))


def test_saved_backbone_state_dict_loads(lite0, tmp_path) -> None:
    torch.save(lite0.state_dict(), tmp_path / "backbone.pt")  # keys model.*, plus mean/std buffers
    assert torch.equal(_logits(build_backbone("efficientnet_lite0", tmp_path / "backbone.pt")), _logits(lite0))


class Payload:
    """Unpickling this would run ``touch <marker>``; it must never happen."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


@pytest.mark.parametrize("writer", ["torch.save", "pickle.dump"])
def test_pickle_with_code_is_refused_and_not_executed(tmp_path, writer) -> None:
    marker = tmp_path / "pwned"
    path = tmp_path / "evil.pt"
    obj = {"conv.weight": torch.zeros(1), "payload": Payload(marker)}
    if writer == "torch.save":
        torch.save(obj, path)
    else:
        with path.open("wb") as f:
            pickle.dump(obj, f)
    assert not marker.exists()
    with pytest.raises(UnsafeCheckpointError) as info:
        load_state_dict_file(path)
    message = str(info.value)
    assert "system" in message and "--trust-checkpoint" in message and "arbitrary code" in message
    with pytest.raises(UnsafeCheckpointError):
        build_backbone("resnet18", path)
    assert not marker.exists()


def test_trusted_checkpoint_with_custom_objects_loads_only_when_trusted(lite0, tmp_path) -> None:
    path = tmp_path / "train_ckpt.pth"
    torch.save({"args": argparse.Namespace(lr=0.1), "model": lite0.model.state_dict()}, path)
    with pytest.raises(UnsafeCheckpointError, match="argparse.Namespace"):
        build_backbone("efficientnet_lite0", path)
    loaded = build_backbone("efficientnet_lite0", path, trust_checkpoint=True)
    assert torch.equal(_logits(loaded), _logits(lite0))


def test_missing_directory_and_garbage_files(tmp_path) -> None:
    with pytest.raises(WeightsError, match="nope.pt"):
        build_backbone("resnet18", tmp_path / "nope.pt")
    with pytest.raises(WeightsError, match="did you mean 'pretrained'"):
        build_backbone("resnet18", "pretrianed")
    with pytest.raises(WeightsError, match="is a directory"):
        read_checkpoint(tmp_path)
    for name, data in [("garbage.pt", b"not a checkpoint\x00\x01"), ("empty.pth", b""), ("bad.safetensors", b"xx")]:
        (tmp_path / name).write_bytes(data)
        with pytest.raises(WeightsError, match=name) as info:
            load_state_dict_file(tmp_path / name)
        assert not isinstance(info.value, UnsafeCheckpointError)


def test_keys_that_do_not_match_are_listed(tmp_path) -> None:
    source = build_backbone("resnet18", "random").model.state_dict()
    state = {k: v for k, v in source.items() if not k.startswith("fc.")}
    state["head.weight"] = torch.zeros(3)
    torch.save(state, tmp_path / "partial.pt")
    with pytest.raises(WeightsError) as info:
        build_backbone("resnet18", tmp_path / "partial.pt")
    message = str(info.value)
    assert "2 missing" in message and "'fc.weight'" in message and "'head.weight'" in message
    assert "partial.pt" in message and "'resnet18'" in message
    wide = dict(source)
    wide["fc.weight"] = torch.zeros(10, 512)
    torch.save(wide, tmp_path / "ten_classes.pt")
    with pytest.raises(WeightsError, match=r"1 shape mismatch\(es\): fc.weight \(10, 512\) vs model \(1000, 512\)"):
        build_backbone("resnet18", tmp_path / "ten_classes.pt")


def test_unwrap_state_dict_refuses_non_tensors() -> None:
    assert set(unwrap_state_dict({"model": {"a": torch.zeros(1)}})) == {"a"}
    with pytest.raises(WeightsError, match="'epoch'"):
        unwrap_state_dict({"a": torch.zeros(1), "epoch": 3})
    with pytest.raises(WeightsError, match="does not contain a state dict"):
        unwrap_state_dict([torch.zeros(1)])


def test_missing_num_batches_tracked_is_accepted() -> None:
    model = torch.nn.Sequential(torch.nn.Conv2d(3, 2, 1), torch.nn.BatchNorm2d(2))
    state = {k: v for k, v in model.state_dict().items() if not k.endswith("num_batches_tracked")}
    load_into(model, state, source="old.pth")


def test_pretrained_offline_names_file_url_cache_and_fixes(tmp_path, _no_downloads) -> None:
    with pytest.raises(WeightsError) as info:
        build_backbone("resnet18")
    message = str(info.value)
    cache = tmp_path / "torch" / "hub" / "checkpoints"
    assert "'resnet18'" in message and RESNET18_FILE in message and RESNET18_URL in message
    assert str(cache / RESNET18_FILE) in message
    assert "--weights PATH" in message and "--weights random" in message
    assert _no_downloads == [RESNET18_URL]
    assert not (cache / RESNET18_FILE).exists()


def test_pretrained_uses_the_hub_cache_without_downloading(tmp_path, _no_downloads) -> None:
    torch.manual_seed(5)
    source = build_backbone("resnet18", "random")
    cache = tmp_path / "torch" / "hub" / "checkpoints"
    cache.mkdir(parents=True)
    torch.save(source.model.state_dict(), cache / RESNET18_FILE)
    backbone = build_backbone("resnet18", "pretrained")
    assert backbone.weights_source == f"torchvision ResNet18_Weights.IMAGENET1K_V1 ({RESNET18_FILE})"
    assert torch.equal(_logits(backbone), _logits(source))
    assert _no_downloads == []
    assert cached_download(RESNET18_URL) == cache / RESNET18_FILE


def test_cached_download_writes_into_the_cache(monkeypatch, tmp_path) -> None:
    def fake(url: str, dst: Path, hash_prefix: str | None = None) -> None:
        assert hash_prefix == "f37072fd"
        dst.write_bytes(b"data")

    monkeypatch.setattr(weights_mod, "download_file", fake)
    path = cached_download(RESNET18_URL, name="backbone 'resnet18'")
    assert path == tmp_path / "torch" / "hub" / "checkpoints" / RESNET18_FILE and path.read_bytes() == b"data"


def test_timm_pretrained_offline_is_a_weights_error(monkeypatch) -> None:
    import timm.models._builder as builder

    def offline(*args, **kwargs):
        raise urllib.error.URLError("offline")

    monkeypatch.setattr(builder, "load_pretrained", offline)
    with pytest.raises(WeightsError) as info:
        build_backbone("timm:resnet18")
    message = str(info.value)
    assert "timm:resnet18" in message and "timm/resnet18" in message and "--weights random" in message


def test_efficientnet_pretrained_never_downloads(_no_downloads) -> None:
    backbone = build_backbone("efficientnet_lite0")
    assert backbone.weights_source == "bundled efficientnet-lite0-57934424.pth"
    assert _no_downloads == []


def test_timm_backbone_loads_a_local_safetensors(tmp_path) -> None:
    torch.manual_seed(6)
    source = build_backbone("timm:resnet18", "random")
    save_file(source.model.state_dict(), str(tmp_path / "timm_r18.safetensors"))
    loaded = build_backbone("timm:resnet18", tmp_path / "timm_r18.safetensors")
    assert loaded.weights_source == f"file {tmp_path / 'timm_r18.safetensors'}"
    assert torch.equal(_logits(loaded), _logits(source))
