"""The root ``paramviz`` click group and error translation."""

from __future__ import annotations

import click
import torch

from paramviz.errors import ParamvizError


class ParamvizGroup(click.Group):
    """Click group that turns paramviz errors into a clean one-line message and exit status 1."""

    def invoke(self, ctx: click.Context) -> object:
        try:
            return super().invoke(ctx)
        except ParamvizError as exc:
            raise click.ClickException(str(exc)) from None


@click.group(cls=ParamvizGroup, context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(package_name="paramviz")
@click.option(
    "--threads",
    type=click.IntRange(min=1),
    default=None,
    help="CPU threads for torch (default: torch's choice).",
)
def main(threads: int | None) -> None:
    """paramviz: differentiable image parameterizations for feature visualization and style transfer."""
    if threads is not None:
        torch.set_num_threads(threads)
