"""Render steps with the backbone's BatchNorms folded into their convolutions vs as built, in one process, interleaved.

What ``Backbone.fold_batchnorm`` (default on, :mod:`paramviz.backbones.fold`) buys on each device. One copy of the
backbone each way, the pairs found and folded before anything is timed; the rounds interleave as
:mod:`backbone_ab` describes.

    python benchmarks/batchnorm_folding.py --backbone resnet50 --layer layer2 --size 224
    python benchmarks/batchnorm_folding.py --backbone efficientnet_lite0 --layer stage4 --batch 4 --device cuda
"""

from __future__ import annotations

import copy

import torch
from backbone_ab import ab_command  # run as a script: benchmarks/ is on the path

from paramviz.backbones import build_backbone


def folded_and_built(backbone: str, weights: str, device: torch.device, size: int) -> tuple[dict, str]:
    """The backbone as built and a copy that folds its BatchNorms (pairs found before the timing)."""
    built = build_backbone(backbone, weights, fold_batchnorm=False).to(device)
    backbones = {"as built": built, "folded": copy.deepcopy(built)}
    backbones["folded"].fold_batchnorm = True
    folding = backbones["folded"].folding((size, size))
    return backbones, f"{len(folding.folds) if folding else 0} BatchNorms folded "


main = ab_command(
    folded_and_built,
    "Print the step time of render() with BatchNorm folded over the time with the network as built.",
    "ratio: folded step time over as-built step time, per round (median, and its range); below 1 means folding\n"
    "is faster here.",
)

if __name__ == "__main__":
    main()
