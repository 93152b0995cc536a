"""``paramviz robustness``: layer robustness R(f) of one or more backbones, as a table and a plot."""

from __future__ import annotations

import math
from fractions import Fraction
from pathlib import Path
from typing import Any

import click

from paramviz.cli.group import main
from paramviz.cli.options import (
    backbone_options_option,
    build_config,
    config_option,
    device_option,
    out_options,
    size_option,
    weights_options,
)
from paramviz.cli.progress import ProgressBar
from paramviz.metrics.robustness import DEFAULT_EPS, NORMS
from paramviz.tasks.robustness import RobustnessConfig, RobustnessProgress, format_table, run_robustness

D = RobustnessConfig()

DESTS = {
    "backbones": "backbones",
    "layers": "layers",
    "norm": "norm",
    "eps": "eps",
    "steps": "steps",
    "step_size": "step_size",
    "random_start": "random_start",
    "size": "size",
    "images": "images",
    "weights": "weights",
    "backbone_options": "backbone_options",
    "trust_checkpoint": "trust_checkpoint",
    "batch_size": "batch_size",
    "seed": "seed",
    "device": "device",
}


class NumberOrFraction(click.ParamType):
    """A float, also written as a fraction such as ``4/255``."""

    name = "NUMBER"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> float:
        if isinstance(value, (int, float)):
            return float(value)
        try:
            number = float(Fraction(str(value).strip()))
        except (ValueError, ZeroDivisionError, OverflowError):
            number = math.nan
        if not math.isfinite(number):
            self.fail(f"{value!r} is not a finite number or a fraction such as 4/255", param, ctx)
        return number


class PGDProgressBar(ProgressBar):
    """One bar over all PGD steps of every backbone and layer."""

    def __call__(self, event: RobustnessProgress) -> None:  # type: ignore[override]
        self.advance(event.done, event.total, f"{event.backbone} {event.layer}")


@main.command("robustness")
@click.argument("backbones", nargs=-1, metavar="BACKBONE [BACKBONE...]")
@click.option(
    "--layers",
    "-l",
    "layers",
    multiple=True,
    help="Layers, comma-separated (e.g. layer1,layer2), for every backbone; or NAME=L1,L2 for one backbone "
    "(repeatable). List them with `paramviz layers NAME`.",
)
@click.option("--norm", type=click.Choice(NORMS), default=D.norm, show_default=True, help="Perturbation ball.")
@click.option(
    "--eps",
    type=NumberOrFraction(),
    default=None,
    help=f"Ball radius in [0, 1] pixel units, a number or a fraction such as 4/255 "
    f"[default: {DEFAULT_EPS['l2']:g} for l2, 4/255 for linf].",
)
@click.option("--steps", type=int, default=D.steps, show_default=True, help="PGD steps per image and layer.")
@click.option("--step-size", type=NumberOrFraction(), default=None, help="PGD step [default: 2.5 * eps / steps].")
@click.option(
    "--random-start/--no-random-start",
    default=D.random_start,
    show_default=True,
    help="Start PGD from a uniform random point of the ball (else from the image plus a tiny offset).",
)
@size_option(D.size, "Images are resized to cover N x N (or HxW: height x width) and centre-cropped to it.")
@click.option(
    "--images",
    type=click.Path(file_okay=False, path_type=str),
    default=None,
    help="Folder of images (PNG, JPEG, ...) [default: scikit-image's photos].",
)
@weights_options(D.weights)
@backbone_options_option("fold_batchnorm=false, for every BACKBONE")
@click.option("--batch-size", type=int, default=D.batch_size, show_default=True, help="Images attacked at once.")
@click.option("--seed", type=int, default=D.seed, show_default=True, help="Seed of the PGD start and random weights.")
@device_option(D.device)
@config_option()
@out_options("out/robustness")
@click.pass_context
def robustness_command(
    ctx: click.Context,
    backbones: tuple[str, ...],
    config_file: Path | None,
    out: Path,
    force: bool,
    quiet: bool,
    **_: object,
) -> None:
    """Measure the layer robustness ratio R(f) of each BACKBONE at the given layers.

    R(f) = E_x[max_{x' in B_eps(x)} ||f(x') - f(x)||] / E_{x1!=x2}[||f(x1) - f(x2)||], with the maximum found
    by PGD (best iterate per image). BACKBONE is a name from `paramviz models` or timm:<name>, optionally
    with its own weights as NAME@WEIGHTS (resnet50@random, robust_checkpoint@file.ckpt).

    Writes robustness.csv and robustness.json (R per layer, its spread over images, every setting used),
    robustness.png (one comparison plot for all backbones) and config.toml into --out.

    \b
    Example:
      paramviz robustness resnet50 madry_resnet50_l2_eps3 --layers layer1,layer2,layer3,layer4
          --norm l2 --eps 1 --steps 20 --size 224
    """  # noqa: D301 - \b (a backspace) is click's no-rewrap marker
    if not backbones and config_file is None:
        raise click.UsageError("name at least one BACKBONE (see `paramviz models`)")
    config = build_config(ctx, RobustnessConfig, config_file, DESTS)
    with PGDProgressBar("R(f)", disable=quiet) as bar:
        result = run_robustness(config, out, force, progress=bar)
    click.echo(format_table(result))
    click.echo(f"\nwrote {out}/robustness.csv, robustness.json, robustness.png ({result.wall_seconds:.1f} s)")
