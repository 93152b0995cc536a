"""``paramviz visualize``: activation maximization from the command line."""

from __future__ import annotations

from pathlib import Path

import click

from paramviz.cli.group import main
from paramviz.cli.options import (
    IMAGE_SIZE,
    PARAM_DEFAULT,
    PARAM_DESTS,
    backbone_options_option,
    build_config,
    config_option,
    device_option,
    optimizer_option,
    out_options,
    param_options,
    size_option,
    transforms_option,
    weights_options,
)
from paramviz.cli.progress import ProgressBar
from paramviz.limits import ImageSize, size_hw
from paramviz.objectives.spec import SPEC_HELP
from paramviz.tasks.visualize import VisualizeConfig, run_visualize

D = VisualizeConfig()

DESTS = {
    "backbone": "backbone",
    "backbone_options": "backbone_options",
    "weights": "weights",
    "trust_checkpoint": "trust_checkpoint",
    "objectives": "objectives",
    **PARAM_DESTS,
    "transforms": "transforms",
    "size": "size",
    "batch": "batch",
    "steps": "steps",
    "lr": "lr",
    "optimizer": "optimizer",
    "seed": "seed",
    "device": "device",
    "thresholds": "thresholds",
    "export_size": "export_size",
    "unit_batch": "unit_batch",
}


def _export_size(_ctx: click.Context, _param: click.Parameter, value: ImageSize | None) -> tuple[int, int] | None:
    """``--export-size N|HxW`` -> ``(H, W)`` (``N``: a square)."""
    return None if value is None else size_hw(value)


@main.command("visualize", epilog="\b\n" + SPEC_HELP)
@click.option(
    "--backbone",
    "-b",
    default=D.backbone,
    show_default=True,
    help="Backbone name (`paramviz models`) or timm:<name>.",
)
@backbone_options_option("pool=avg for vgg16/vgg19")
@weights_options(D.weights)
@click.option(
    "--objective",
    "-O",
    "objectives",
    multiple=True,
    help="Objective spec, repeatable (terms are summed), e.g. 'stage4:12', 'layer3:5:3:3', 'logit:espresso'.",
)
@param_options(D.param)
@transforms_option(D.transforms)
@size_option(D.size, "Image size in pixels: N (an N x N square) or HxW (height x width), e.g. 128x192.")
@click.option("--batch", type=int, default=D.batch, show_default=True, help="Images rendered at once.")
@click.option("--steps", type=int, default=D.steps, show_default=True, help="Optimization steps.")
@click.option("--lr", type=float, default=None, show_default=PARAM_DEFAULT, help="Learning rate.")
@optimizer_option(None, show_default=PARAM_DEFAULT)
@click.option("--seed", type=int, default=D.seed, show_default=True, help="Seed of init and transform draws.")
@device_option(D.device)
@click.option(
    "--unit-batch",
    type=click.IntRange(min=1),
    default=None,
    help="With a whole-layer objective (LAYER:0-63 or LAYER:*): most units rendered at once "
    "[default: as many as fit half the free memory]; the images do not depend on it.",
)
@click.option(
    "--threshold",
    "thresholds",
    type=int,
    multiple=True,
    help="Also save a snapshot at this step (repeatable).",
)
@click.option(
    "--export-size",
    type=IMAGE_SIZE,
    default=None,
    callback=_export_size,
    metavar="N|HxW",
    help="Also write the final image drawn at this size from the same parameters (image_HxW.png); "
    "resolution-free parameterizations only (cppn).",
)
@config_option()
@out_options("out/visualize")
@click.pass_context
def visualize_command(
    ctx: click.Context, config_file: Path | None, out: Path, force: bool, quiet: bool, **_: object
) -> None:
    """Render an image that maximizes a unit of a network (activation maximization).

    Writes image.png (a grid when --batch > 1, plus image_N.png; RGBA with --alpha), steps/ snapshots,
    config.toml (with the learning rate and optimizer the parameterization chose) and metrics.json into --out.
    """
    config = build_config(ctx, VisualizeConfig, config_file, DESTS)
    with ProgressBar("visualize", disable=quiet) as bar:
        result = run_visualize(config, out, force, callbacks=[bar])
    click.echo(
        f"wrote {out}/image.png  loss {result.render.history[0]:.4g} -> {result.render.history[-1]:.4g}  "
        f"({result.render.seconds:.1f} s, {result.render.steps_per_second:.2f} steps/s)"
    )
