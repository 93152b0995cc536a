"""Shared fixtures: tiny random-weight networks and components that need no download."""

from __future__ import annotations

import os

# Without this, OpenMP worker threads spin while waiting and a busy 2-core machine slows tests 20-50x.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import pytest  # noqa: E402
import torch  # noqa: E402
from torch import nn  # noqa: E402

from paramviz.backbones.base import Backbone  # noqa: E402


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
