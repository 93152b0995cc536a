"""Style transfer on EfficientNet-Lite0: RGB pixels vs decorrelated Fourier, with and without Lucid's transforms.

For each of the four arms (pixel / fourier x transforms none / lucid) this runs ``stylize`` with the
``efficientnet_lite0`` preset (its optimizer, weights and layers; content init) on the same content photo and
painting, and prints the final style and content losses and the wall time. The losses are measured on the
final image **without** transforms (``StyleResult.final_terms``), so the four arms are compared on the same
footing; "style x" is the factor by which the style loss fell from the initial image.

    python benchmarks/style_compare.py                       # 256 px, 200 steps, chelsea + Starry Night
    python benchmarks/style_compare.py --steps 100 --out out/style_compare   # also save the images

"pixel" is raw RGB pixels (no colour decorrelation); "fourier" is Lucid's decorrelated Fourier
parameterization; both with the sigmoid squash.
"""

from __future__ import annotations

import platform
from pathlib import Path

import click
import torch

from paramviz.io import OutputDir, check_output_dir, image_grid
from paramviz.params import ParamSpec
from paramviz.tasks.stylize import StyleConfig, StyleResult, stylize, write_outputs

HERE = Path(__file__).resolve().parent
DEFAULT_STYLE = str(HERE.parent / "examples" / "images" / "starry_night.jpg")
ARMS = {
    ("pixel", "none"): dict(param=ParamSpec("pixel", decorrelate=False), transforms="none"),
    ("pixel", "lucid"): dict(param=ParamSpec("pixel", decorrelate=False), transforms="lucid"),
    ("fourier", "none"): dict(param=ParamSpec("fourier"), transforms="none"),
    ("fourier", "lucid"): dict(param=ParamSpec("fourier"), transforms="lucid"),
}


def format_table(results: dict[tuple[str, str], StyleResult]) -> str:
    """Markdown table of the arms."""
    lines = [
        "| param | transforms | optimizer | style loss (initial -> final) | style x | content loss | wall s "
        "| steps/s |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for (param, transforms), r in results.items():
        lines.append(
            f"| {param} | {transforms} | {r.config.optimizer} (lr {r.config.lr:g}) "
            f"| {r.initial_style_loss:.4g} -> {r.style_loss:.4g} | "
            f"{r.initial_style_loss / max(r.style_loss, 1e-30):.1f} | {r.content_loss:.4g} | "
            f"{r.render.seconds:.1f} | {r.render.steps_per_second:.2f} |"
        )
    return "\n".join(lines)


@click.command()
@click.option("--content", default="sample:chelsea", show_default=True, help="Content image (path or sample:NAME).")
@click.option("--style", default=DEFAULT_STYLE, show_default=True, help="Style image.")
@click.option("--size", default=256, show_default=True, help="Long side of the output.")
@click.option("--steps", default=200, show_default=True, help="Optimization steps per arm.")
@click.option("--optimizer", default=None, help="Optimizer preset (lbfgs, adam, adam-lucid); default: the preset's.")
@click.option("--seed", default=0, show_default=True)
@click.option("--device", default="cpu", show_default=True)
@click.option("--threads", type=int, default=None, help="torch CPU threads (default: torch's choice).")
@click.option("--out", type=click.Path(file_okay=False, path_type=Path), default=None, help="Also save images here.")
@click.option("--force", is_flag=True, help="Replace a non-empty --out.")
def main(
    content: str,
    style: str,
    size: int,
    steps: int,
    optimizer: str | None,
    seed: int,
    device: str,
    threads: int | None,
    out: Path | None,
    force: bool,
) -> None:
    """Print the comparison table (and optionally save each arm's outputs and a grid)."""
    if threads:
        torch.set_num_threads(threads)
    if out is not None:
        check_output_dir(out, force)
    base = StyleConfig(
        content=content,
        styles=(style,),
        preset="efficientnet_lite0",
        size=size,
        steps=steps,
        optimizer=optimizer,
        seed=seed,
        device=device,
    )
    results: dict[tuple[str, str], StyleResult] = {}
    for arm, changes in ARMS.items():
        results[arm] = stylize(base.replace(**changes))
        click.echo(f"done {arm[0]}/{arm[1]}", err=True)
    resolved = results["pixel", "none"].config
    click.echo(
        f"EfficientNet-Lite0 ({resolved.preset} preset: {resolved.style_loss} loss), {size} px, {steps} steps, "
        f"content {content}, style {Path(style).name}, "
        f"device {device}, torch {torch.__version__}, {platform.machine()} with {torch.get_num_threads()} threads"
    )
    click.echo(format_table(results))
    if out is not None:
        with OutputDir(out, force) as target:
            target.save_image("grid.png", image_grid([r.image for r in results.values()], ncol=2))
            target.write_text("table.md", format_table(results) + "\n")
            for (param, transforms), r in results.items():
                with OutputDir(target.path(f"{param}_{transforms}")) as run_dir:
                    write_outputs(r, run_dir)


if __name__ == "__main__":
    main()
