"""``paramviz style``: neural style transfer on any backbone from the command line."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click
from click.core import ParameterSource

from paramviz.cli.group import main
from paramviz.cli.options import (
    PARAM_DESTS,
    backbone_options_option,
    build_config,
    config_option,
    device_option,
    out_options,
    param_options,
    size_option,
    transforms_option,
    weights_options,
)
from paramviz.cli.progress import ProgressBar
from paramviz.errors import SpecError
from paramviz.objectives.style import GRAM_NORMALIZATIONS, STYLE_LOSSES, W2_REDUCTIONS
from paramviz.tasks.colors import COLOR_MODES
from paramviz.tasks.style_presets import OPTIMIZER_PRESETS, RANDOM_TRANSFORMS_OPTIMIZER, describe_presets
from paramviz.tasks.stylize import INITS, StyleConfig, parse_layer_weights, run_style

D = StyleConfig()

#: click parameter name -> StyleConfig key, for the options that map one to one.
DESTS = {
    "content": "content",
    "styles": "styles",
    "preset": "preset",
    "backbone": "backbone",
    "backbone_options": "backbone_options",
    "weights": "weights",
    "trust_checkpoint": "trust_checkpoint",
    "content_backbone": "content_backbone",
    "content_backbone_weights": "content_backbone_weights",
    "style_loss": "style_loss",
    "gram_norm": "gram_norm",
    "w2_eps": "w2_eps",
    "w2_reduction": "w2_reduction",
    "swag": "swag",
    "swag_temperature": "swag_temperature",
    "style_weight": "style_weight",
    "content_weight": "content_weight",
    "tv_weight": "tv_weight",
    **PARAM_DESTS,
    "transforms": "transforms",
    "size": "size",
    "style_scale": "style_scale",
    "init": "init",
    "original_colors": "original_colors",
    "steps": "steps",
    "optimizer": "optimizer",
    "lr": "lr",
    "seed": "seed",
    "device": "device",
    "thresholds": "thresholds",
}

PRESET_DEFAULT = "from --preset"


def _list_presets(ctx: click.Context, _param: click.Parameter, value: bool) -> None:
    if not value or ctx.resilient_parsing:
        return
    click.echo(describe_presets())
    ctx.exit(0)


def _typed(ctx: click.Context, name: str) -> bool:
    return ctx.get_parameter_source(name) in (ParameterSource.COMMANDLINE, ParameterSource.ENVIRONMENT)


def _layer_overrides(ctx: click.Context, what: str) -> dict[str, Any]:
    name = f"{what}_layers"
    if not _typed(ctx, name):
        return {}
    layers, weights = parse_layer_weights(ctx.params[name], f"--{what}-layers")
    return {name: layers, f"{what}_layer_weights": weights}


def _blend_override(ctx: click.Context) -> dict[str, Any]:
    if not _typed(ctx, "style_blend"):
        return {}
    text = ctx.params["style_blend"].strip()
    try:
        weights = tuple(float(w) for w in text.split(",")) if text else ()
    except ValueError:
        raise SpecError(
            f"--style-blend {text!r}: expected comma-separated numbers, one per style image (e.g. '0.7,0.3')"
        ) from None
    return {"style_blend": weights}


@main.command("style")
@click.argument("content", required=False)
@click.argument("styles", nargs=-1)
@click.option(
    "--list-presets",
    is_flag=True,
    expose_value=False,
    is_eager=True,
    callback=_list_presets,
    help="List the layer and optimizer presets and exit.",
)
@click.option("--preset", "-p", default=D.preset, show_default=True, help="Layer preset (see --list-presets).")
@click.option(
    "--backbone",
    "-b",
    default=None,
    show_default=PRESET_DEFAULT,
    help="Backbone of the style (and content) losses: a name (`paramviz models`) or timm:<name>.",
)
@backbone_options_option("pool=max for the gatys preset's VGG-19 (over the preset's pool=avg)")
@weights_options(D.weights)
@click.option(
    "--content-backbone",
    default=None,
    help="A separate backbone for the content loss (content on one network, style on another).",
)
@click.option(
    "--content-backbone-weights",
    default=D.content_backbone_weights,
    show_default=True,
    help="Weights of --content-backbone ('pretrained', 'random' or a file).",
)
@click.option(
    "--style-layers",
    default=None,
    show_default=PRESET_DEFAULT,
    help="Custom style layers with optional relative weights, e.g. 'relu1_1:256,relu2_1:64,relu3_1:16'.",
)
@click.option(
    "--content-layers",
    default=None,
    show_default=PRESET_DEFAULT,
    help="Custom content layers with optional relative weights, e.g. 'relu4_2'.",
)
@click.option(
    "--style-loss",
    type=click.Choice(STYLE_LOSSES),
    default=None,
    show_default=PRESET_DEFAULT,
    help="Gram matrix (Gatys) or mean+covariance Wasserstein-2 (crowsonkb).",
)
@click.option(
    "--gram-norm",
    type=click.Choice(GRAM_NORMALIZATIONS),
    default=None,
    show_default=PRESET_DEFAULT,
    help="Divide Gram matrices by H*W or by C*H*W.",
)
@click.option("--w2-eps", type=float, default=D.w2_eps, show_default=True, help="W2 covariance regularization.")
@click.option(
    "--w2-reduction",
    type=click.Choice(W2_REDUCTIONS),
    default=D.w2_reduction,
    show_default=True,
    help="W2 per channel ('mean', crowsonkb) or the exact squared distance ('sum').",
)
@click.option(
    "--swag/--no-swag",
    default=D.swag,
    show_default=True,
    help="Softmax the activations before the style statistics (SWAG, Wang et al. 2021).",
)
@click.option("--swag-temperature", type=float, default=D.swag_temperature, show_default=True, help="SWAG temperature.")
@click.option("--style-weight", type=float, default=None, show_default=PRESET_DEFAULT, help="Total style weight.")
@click.option("--content-weight", type=float, default=None, show_default=PRESET_DEFAULT, help="Total content weight.")
@click.option("--tv-weight", type=float, default=D.tv_weight, show_default=True, help="Total-variation weight.")
@click.option(
    "--style-blend", default=None, help="Blend weights of several style images, e.g. '0.7,0.3' (default equal)."
)
@param_options(D.param)
@transforms_option(D.transforms)
@size_option(
    D.size,
    "Output size: N keeps the content's aspect with a long side of N pixels; HxW (height x width, e.g. 384x512) "
    "gives exactly H x W, the content resized to cover it and centre-cropped.",
)
@click.option(
    "--style-scale",
    type=float,
    default=D.style_scale,
    show_default=True,
    help="Style images are resized to style-scale times the output's long side, on their long side.",
)
@click.option("--init", type=click.Choice(INITS), default=D.init, show_default=True, help="Start image.")
@click.option(
    "--original-colors",
    type=click.Choice(COLOR_MODES),
    default=D.original_colors,
    show_default=True,
    help="Keep the content's colours: 'luminance' (luminance-only transfer) or 'post' (recolour the result).",
)
@click.option("--steps", type=int, default=D.steps, show_default=True, help="Optimization steps.")
@click.option(
    "--optimizer",
    type=click.Choice(OPTIMIZER_PRESETS.names()),
    default=None,
    show_default=f"from --preset; {RANDOM_TRANSFORMS_OPTIMIZER} with random --transforms",
    help="Optimizer preset: "
    + "; ".join(f"{e.name}: {e.obj.description}" for e in OPTIMIZER_PRESETS.entries())
    + ". L-BFGS can diverge with random --transforms, so it is used there only when asked for.",
)
@click.option("--lr", type=float, default=None, show_default="from --optimizer", help="Learning rate.")
@click.option("--seed", type=int, default=D.seed, show_default=True, help="Seed of init and transform draws.")
@device_option(D.device)
@click.option(
    "--threshold", "thresholds", type=int, multiple=True, help="Also save a snapshot at this step (repeatable)."
)
@config_option()
@out_options("out/style")
@click.pass_context
def style_command(
    ctx: click.Context, config_file: Path | None, out: Path, force: bool, quiet: bool, **_: object
) -> None:
    """Transfer the style of STYLE image(s) onto CONTENT (paths or sample:NAME, e.g. sample:chelsea).

    Several STYLE images are blended (--style-blend). Writes image.png, steps/ snapshots, the resolved
    config.toml and metrics.json (every loss term, initial and final, and the wall time) into --out.
    """
    overrides = {**_layer_overrides(ctx, "style"), **_layer_overrides(ctx, "content"), **_blend_override(ctx)}
    config = build_config(ctx, StyleConfig, config_file, DESTS, overrides)
    with ProgressBar("style", disable=quiet) as bar:
        result = run_style(config, out, force, callbacks=[bar])
    click.echo(
        f"wrote {out}/image.png  style loss {result.initial_style_loss:.4g} -> {result.style_loss:.4g}  "
        f"content loss {result.content_loss:.4g}  ({result.render.seconds:.1f} s, "
        f"{result.render.steps_per_second:.2f} steps/s)"
    )
