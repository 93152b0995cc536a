"""Shared fixtures: tiny random-weight networks and components that need no download."""

from __future__ import annotations

import os

# Without this, OpenMP worker threads spin while waiting and a busy 2-core machine slows tests 20-50x.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import textwrap  # noqa: E402
from pathlib import Path  # noqa: E402

import pytest  # noqa: E402
import torch  # noqa: E402
from torch import nn  # noqa: E402

from paramviz.backbones.base import Backbone  # noqa: E402
from paramviz.backbones.registry import BACKBONES, BackboneEntry  # noqa: E402
from paramviz.registry import Entry  # noqa: E402


class TinyNet(nn.Module):
    """Three conv stages and a linear head; small enough for any test."""

    def __init__(self) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(3, 8, 3, padding=1)
        self.relu1 = nn.ReLU()
        self.conv2 = nn.Conv2d(8, 16, 3, stride=2, padding=1)
        self.relu2 = nn.ReLU()
        self.conv3 = nn.Conv2d(16, 16, 3, stride=2, padding=1)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(16, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.relu1(self.conv1(x))
        x = self.relu2(self.conv2(x))
        x = self.conv3(x)
        return self.fc(self.pool(x).flatten(1))


@pytest.fixture
def tiny_backbone() -> Backbone:
    torch.manual_seed(0)
    return Backbone(TinyNet(), name="tiny", aliases={"stage1": "relu1", "logits": "fc"})


@pytest.fixture(autouse=True)
def _few_threads() -> None:
    torch.set_num_threads(2)


# --- sweep fixtures (tests/sweep, tests/cli) ---

TINY = "tiny_sweep_net"


def tiny_factory(weights: str = "pretrained", *, trust_checkpoint: bool = False) -> Backbone:
    if weights == "pretrained":  # fixed weights, like a real pretrained network
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(0)
            net = TinyNet()
    else:
        net = TinyNet()
    tiny_factory.built += 1
    return Backbone(net, name=TINY, aliases={"stage1": "relu1", "logits": "fc"}, weights_source=weights)


tiny_factory.built = 0


@pytest.fixture
def tiny_registered(monkeypatch):
    """Register :func:`tiny_factory` as the backbone ``tiny_sweep_net`` for one test."""
    entry = BackboneEntry(TINY, tiny_factory, "tiny test network", "", "test")
    monkeypatch.setitem(BACKBONES._entries, TINY, Entry(TINY, entry, "tiny test network"))
    tiny_factory.built = 0
    return tiny_factory


@pytest.fixture
def write_sweep(tmp_path):
    def write(body: str, name: str = "sweep.toml") -> Path:
        path = tmp_path / name
        path.write_text(textwrap.dedent(body), encoding="utf-8")
        return path

    return write


BASIC = f"""
task = "visualize"
[base]
backbone = "{TINY}"
objectives = ["conv3:1"]
size = 24
steps = 4
transforms = "jitter:2"
device = "cpu"
[axes]
"param.name" = ["pixel", "fourier"]
seed = [0, 1]
"""


@pytest.fixture
def basic_sweep(write_sweep, tiny_registered) -> Path:
    """Two parameterizations x two seeds on the tiny network (4 arms that can run as one batch)."""
    return write_sweep(BASIC)


@pytest.fixture(autouse=True)
def _private_cache(tmp_path_factory, monkeypatch) -> None:
    """paramviz's disk cache (MACO spectra) goes to one temporary folder per test session, never to ~/.cache."""
    monkeypatch.setenv("PARAMVIZ_CACHE", str(tmp_path_factory.getbasetemp() / "paramviz-cache"))
