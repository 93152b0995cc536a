"""Render steps with the backbone's weights channels-last vs as built, in one process, interleaved.

What ``Backbone.memory_format = "auto"`` decides on each device (channels-last on the CPU; as built on CUDA until
measured there). One copy of the backbone per layout, converted before anything is timed (so no conversion is
timed); the rounds interleave as :mod:`backbone_ab` describes.

    python benchmarks/memory_format.py --backbone resnet50 --layer layer2 --size 224
    python benchmarks/memory_format.py --backbone efficientnet_lite0 --layer stage4 --batch 4 --device cuda
"""

from __future__ import annotations

import copy

import torch
from backbone_ab import ab_command  # run as a script: benchmarks/ is on the path

from paramviz.backbones import build_backbone

LAYOUTS = ("contiguous", "channels_last")


def layouts(backbone: str, weights: str, device: torch.device, size: int) -> tuple[dict, str]:
    """The backbone with contiguous weights and a copy with channels-last weights, both laid out already."""
    built = build_backbone(backbone, weights, memory_format="contiguous").to(device)
    backbones = {"contiguous": built, "channels_last": copy.deepcopy(built)}
    backbones["channels_last"].memory_format = "channels_last"
    for bb in backbones.values():
        bb.arrange(device)  # converted before anything is timed
    return backbones, ""


main = ab_command(
    layouts,
    "Print the step time of render() with channels-last weights over the time with the weights as built.",
    "ratio: channels-last step time over as-built step time, per round (median, and its range); below 1 means\n"
    "channels-last is faster here.",
)

if __name__ == "__main__":
    main()
