"""``ParamBatch``: several independent parameterizations optimized as one batch."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from paramviz.errors import ConfigError
from paramviz.params.base import ImageParam


class ParamBatch(nn.Module):
    """Concatenate the images of several parameterizations (same size) into one batch.

    Each member keeps its own parameters, so an optimizer with per-parameter state (Adam) treats each image
    exactly as it would alone; a sweep renders arms that differ only in parameterization or seed this way.

    Args:
        members: The parameterizations, each ``forward() -> (b_i, C, H, W)``; all of the same ``C, H, W``.

    Raises:
        ConfigError: No members, or members of different image sizes or channels (RGB and RGBA).
    """

    def __init__(self, members: Sequence[ImageParam]) -> None:
        super().__init__()
        if not members:
            raise ConfigError("ParamBatch needs at least one parameterization")
        sizes = {(int(m.height), int(m.width)) for m in members}
        if len(sizes) != 1:
            raise ConfigError(f"ParamBatch members must share one image size, got {sorted(sizes)}")
        channels = {int(getattr(m, "channels", 3)) for m in members}
        if len(channels) != 1:
            raise ConfigError("ParamBatch members must all be RGB or all RGBA (alpha), got both")
        self.members = nn.ModuleList(members)
        self.channels = channels.pop()
        self.height, self.width = sizes.pop()
        self.batch = sum(int(m.batch) for m in members)

    def forward(self) -> torch.Tensor:
        return torch.cat([member() for member in self.members])
