"""Render steps with the backbone's weights channels-last vs as built, in one process, interleaved.

What ``Backbone.memory_format = "auto"`` decides on each device (channels-last on the CPU; as built on CUDA until
measured there). Each round renders every arm once per layout (one copy of the backbone per layout, so no
conversion is timed), and the ratio channels-last / as built is taken per round, so a drift in the machine's
speed hits both alike. Prints the median step times and the median ratio with its range over the rounds.

    python benchmarks/memory_format.py --backbone resnet50 --layer layer2 --size 224
    python benchmarks/memory_format.py --backbone efficientnet_lite0 --layer stage4 --batch 4 --device cuda
"""

from __future__ import annotations

import copy
import statistics

import click
import torch
from step_overhead import StepTimer, default_weights, network_options  # run as a script: benchmarks/ is on the path

from paramviz.backbones import build_backbone
from paramviz.device import resolve_device
from paramviz.host_memory import keep_freed_memory
from paramviz.objectives import Channel
from paramviz.params import ParamSpec, build_param
from paramviz.render import render
from paramviz.transforms import build_transforms

LAYOUTS = ("contiguous", "channels_last")


def interleaved_step_times(
    backbones: dict[str, torch.nn.Module],
    arms: tuple[str, ...],
    layer: str,
    size: int,
    batch: int,
    steps: int,
    rounds: int,
    device: torch.device,
) -> dict[tuple[str, str], list[float]]:
    """Median render() step time per round for each (arm, variant): every round renders each arm once per variant."""
    objective = Channel(layer, 0)
    skip = 3
    times: dict[tuple[str, str], list[float]] = {(arm, name): [] for arm in arms for name in backbones}
    for _ in range(rounds):
        for arm in arms:
            param_name, transforms_name = arm.split("/")
            for name, bb in backbones.items():
                param = build_param(ParamSpec(param_name), (size, size), batch=batch, seed=0)
                timer = StepTimer(device, skip)
                render(
                    param,
                    build_transforms(transforms_name),
                    bb,
                    objective,
                    steps=steps + skip,
                    callbacks=[timer],
                    device=device,
                )
                times[arm, name].append(statistics.median(timer.times))
    return times


def print_ratios(times: dict[tuple[str, str], list[float]], arms: tuple[str, ...], base: str, other: str) -> None:
    """One row per arm: median step times of both variants and the per-round ratio ``other / base``."""
    print(f"{'arm':18s} {base + ' ms':>16s} {other + ' ms':>16s} {'ratio':>7s} {'range':>13s}")
    for arm in arms:
        ratios = [a / b for a, b in zip(times[arm, other], times[arm, base], strict=True)]
        base_ms = statistics.median(times[arm, base]) * 1000
        other_ms = statistics.median(times[arm, other]) * 1000
        spread = f"{min(ratios):.3f}-{max(ratios):.3f}"
        print(f"{arm:18s} {base_ms:16.1f} {other_ms:16.1f} {statistics.median(ratios):7.3f} {spread:>13s}")


@click.command()
@network_options
@click.option("--arm", "arms", multiple=True, help="param/transforms pairs (default: fourier/lucid and pixel/none).")
@click.option("--steps", default=16, show_default=True, help="Timed steps per render call.")
@click.option("--rounds", default=8, show_default=True, help="Render calls per arm and layout (interleaved).")
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
    """Print the step time of render() with channels-last weights over the time with the weights as built."""
    keep_freed_memory()
    dev = resolve_device(device)
    torch.manual_seed(0)
    weights = default_weights(backbone, weights)
    built = build_backbone(backbone, weights, memory_format="contiguous").to(dev)
    backbones = {"contiguous": built, "channels_last": copy.deepcopy(built)}
    backbones["channels_last"].memory_format = "channels_last"
    for bb in backbones.values():
        bb.arrange(dev)  # converted before anything is timed
    arms = arms or ("fourier/lucid", "pixel/none")
    times = interleaved_step_times(backbones, arms, layer, size, batch, steps, rounds, dev)
    print(
        f"backbone={backbone} ({weights}) layer={layer} size={size} batch={batch} device={dev} "
        f"rounds={rounds}x{steps} threads={torch.get_num_threads()} torch={torch.__version__}"
    )
    print_ratios(times, arms, *LAYOUTS)
    print("ratio: channels-last step time over as-built step time, per round (median, and its range); below 1 means")
    print("channels-last is faster here.")


if __name__ == "__main__":
    main()
