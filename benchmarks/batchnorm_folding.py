"""Render steps with the backbone's BatchNorms folded into their convolutions vs as built, in one process, interleaved.

What ``Backbone.fold_batchnorm`` (default on, :mod:`paramviz.backbones.fold`) buys on each device. Each round
renders every arm once with folding and once without (one copy of the backbone each, so no folding is timed),
and the ratio folded / as built is taken per round, so a drift in the machine's speed hits both alike. Prints the
median step times and the median ratio with its range over the rounds.

    python benchmarks/batchnorm_folding.py --backbone resnet50 --layer layer2 --size 224
    python benchmarks/batchnorm_folding.py --backbone efficientnet_lite0 --layer stage4 --batch 4 --device cuda
"""

from __future__ import annotations

import copy

import click
import torch
from memory_format import interleaved_step_times, print_ratios  # run as a script: benchmarks/ is on the path
from step_overhead import default_weights, network_options

from paramviz.backbones import build_backbone
from paramviz.device import resolve_device
from paramviz.host_memory import keep_freed_memory


@click.command()
@network_options
@click.option("--arm", "arms", multiple=True, help="param/transforms pairs (default: fourier/lucid and pixel/none).")
@click.option("--steps", default=16, show_default=True, help="Timed steps per render call.")
@click.option("--rounds", default=8, show_default=True, help="Render calls per arm and variant (interleaved).")
def main(
    backbone: str,
    weights: str | None,
    layer: str,
    size: int,
    batch: int,
    device: str,
    arms: tuple[str, ...],
    steps: int,
    rounds: int,
) -> None:
    """Print the step time of render() with BatchNorm folded over the time with the network as built."""
    keep_freed_memory()
    dev = resolve_device(device)
    torch.manual_seed(0)
    weights = default_weights(backbone, weights)
    built = build_backbone(backbone, weights, fold_batchnorm=False).to(dev)
    backbones = {"as built": built, "folded": copy.deepcopy(built)}
    backbones["folded"].fold_batchnorm = True
    arms = arms or ("fourier/lucid", "pixel/none")
    times = interleaved_step_times(backbones, arms, layer, size, batch, steps, rounds, dev)
    folding = backbones["folded"].folding(torch.empty(1, 3, size, size, device=dev))
    print(
        f"backbone={backbone} ({weights}) layer={layer} size={size} batch={batch} device={dev} "
        f"{len(folding.folds) if folding else 0} BatchNorms folded "
        f"rounds={rounds}x{steps} threads={torch.get_num_threads()} torch={torch.__version__}"
    )
    print_ratios(times, arms, "as built", "folded")
    print("ratio: folded step time over as-built step time, per round (median, and its range); below 1 means")
    print("folding is faster here.")


if __name__ == "__main__":
    main()
