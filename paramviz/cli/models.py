"""``paramviz models`` and ``paramviz layers``: what can be used, and where its weights come from."""

from __future__ import annotations

import click
import torch

from paramviz.backbones import backbone_families, build_backbone, format_backbone_table, format_layers
from paramviz.backbones.listing import pretrained_source
from paramviz.cli.group import main
from paramviz.cli.options import weights_options


@main.command("models")
@click.option("--family", type=click.Choice(backbone_families()), default=None, help="Only this family.")
def models_command(family: str | None) -> None:
    """List the registered backbones and where their pretrained weights come from."""
    click.echo(format_backbone_table(family))
    click.echo("Layers of a backbone: paramviz layers NAME")


@main.command("layers")
@click.argument("backbone")
@weights_options("pretrained")
def layers_command(backbone: str, weights: str, trust_checkpoint: bool) -> None:
    """List the addressable layers of BACKBONE with their types and output shapes.

    Aliases come first, then every dotted module path; shapes are channels x height x width at the native
    input size, and modules that never run in the forward pass are marked. Layers and shapes do not depend on
    the weights, so for 'pretrained' (the weights line then says where they come from) and 'random' the
    network is built on PyTorch's meta device (structure only: no download, no memory). Give --weights FILE
    to load and check a particular file.
    """
    if weights in ("pretrained", "random"):
        with torch.device("meta"):
            built = build_backbone(backbone, "random")
        source = pretrained_source(backbone) if weights == "pretrained" else "random"
        click.echo(format_layers(built, weights=source))
    else:
        built = build_backbone(backbone, weights, trust_checkpoint=trust_checkpoint)
        click.echo(format_layers(built))
