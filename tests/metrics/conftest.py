"""Fixtures of the metric tests: the real referee/transfer networks, built once per session."""

from __future__ import annotations

import pytest
import skimage.data
import torch
import torch.nn.functional as F

from paramviz.backbones import build_backbone


@pytest.fixture(scope="session")
def lite_cache() -> dict:
    """A :class:`MetricContext` cache holding the real EfficientNet-Lite1 and Lite2 (bundled weights)."""
    return {name: build_backbone(name, "pretrained") for name in ("efficientnet_lite1", "efficientnet_lite2")}


def _photo(name: str, size: tuple[int, int]) -> torch.Tensor:
    x = torch.from_numpy(getattr(skimage.data, name)()).permute(2, 0, 1)[None].float() / 255
    return F.interpolate(x, size=size, mode="bilinear", antialias=True, align_corners=False).clamp(0, 1)


@pytest.fixture(scope="session")
def photo():
    """``photo(name, (H, W))``: a scikit-image photo as (1, 3, H, W) in [0, 1] (bilinear, antialiased resize)."""
    return _photo
