"""Shared by the backbone A/B benchmarks (memory_format.py, batchnorm_folding.py): render() steps of two variants of
one backbone, in one process, interleaved.

Each round renders every arm once per variant (one copy of the backbone each, prepared before anything is timed),
and the ratio variant / base is taken per round, so a drift in the machine's speed hits both alike. Prints the
median step times and the median ratio with its range over the rounds.
"""

from __future__ import annotations

import statistics
from collections.abc import Callable

import click
import torch
from step_overhead import StepTimer, default_weights, network_options  # run as a script: benchmarks/ is on the path

from paramviz.device import resolve_device
from paramviz.host_memory import keep_freed_memory
from paramviz.objectives import Channel
from paramviz.params import ParamSpec, build_param
from paramviz.render import render
from paramviz.transforms import build_transforms

#: Builds the two variants: (backbone name, weights, device, input side) -> ({name: backbone}, base first; a note
#: for the header line).
Variants = Callable[[str, str, torch.device, int], tuple[dict[str, torch.nn.Module], str]]


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


def ab_command(variants: Variants, summary: str, explanation: str) -> click.Command:
    """A click command that times render() with the two backbones ``variants`` builds and prints their ratio.

    Args:
        variants: Builds the base and the other variant.
        summary: The command's one-line help.
        explanation: Printed under the table (what the ratio means).
    """

    @click.command(help=summary)
    @network_options
    @click.option("--arm", "arms", multiple=True, help="param/transforms pairs (default: fourier/lucid, pixel/none).")
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
        keep_freed_memory()
        dev = resolve_device(device)
        torch.manual_seed(0)
        weights = default_weights(backbone, weights)
        backbones, note = variants(backbone, weights, dev, size)
        arms = arms or ("fourier/lucid", "pixel/none")
        times = interleaved_step_times(backbones, arms, layer, size, batch, steps, rounds, dev)
        print(
            f"backbone={backbone} ({weights}) layer={layer} size={size} batch={batch} device={dev} {note}"
            f"rounds={rounds}x{steps} threads={torch.get_num_threads()} torch={torch.__version__}"
        )
        print_ratios(times, arms, *backbones)
        print(explanation)

    return main
