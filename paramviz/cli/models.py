"""``paramviz models`` and ``paramviz layers``: what can be used, and where its weights come from."""

from __future__ import annotations

import click

from paramviz.backbones import build_backbone, format_backbone_table, format_layers
from paramviz.cli.group import main
from paramviz.cli.options import weights_options


@main.command("models")
def models_command() -> None:
    """List the registered backbones and where their weights come from."""
    click.echo(format_backbone_table())
    click.echo("\nAny timm model: timm:<name> (e.g. timm:resnet50). Layers of one: paramviz layers NAME")


@main.command("layers")
@click.argument("backbone")
@weights_options("random")
def layers_command(backbone: str, weights: str, trust_checkpoint: bool) -> None:
    """List the addressable layers of BACKBONE: aliases first, then dotted module paths.

    Layer names do not depend on the weights, so random weights are used unless --weights is given.
    """
    click.echo(format_layers(build_backbone(backbone, weights, trust_checkpoint=trust_checkpoint)))
