"""Contact sheet of every registered parameterization on one unit, with its image metrics.

Each parameterization runs with its own default optimizer and learning rate (``VisualizeConfig.resolve``) on
EfficientNet-Lite0 (bundled weights, offline); prints ``hf_energy`` and ``transform_robustness``
(:mod:`paramviz.metrics`) per parameterization and writes the sheet (``paramviz.io.labeled_grid``) and a JSON of
the numbers next to it.

    python benchmarks/params_sheet.py --objective stage4:12 --size 128 --steps 256 --out params_sheet.png
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import click

from paramviz.io import labeled_grid
from paramviz.metrics import MetricContext, compute_metrics
from paramviz.params import PARAMS, ParamSpec
from paramviz.tasks.visualize import VisualizeConfig, build_network, visualize

METRICS = ("hf_energy", "transform_robustness")


@click.command()
@click.option("--objective", default="stage4:12", show_default=True)
@click.option("--backbone", default="efficientnet_lite0", show_default=True)
@click.option("--size", type=int, default=128, show_default=True)
@click.option("--steps", type=int, default=256, show_default=True)
@click.option("--transforms", default="lucid", show_default=True)
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--device", default="auto", show_default=True)
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path), default="params_sheet.png", show_default=True)
def main(
    objective: str, backbone: str, size: int, steps: int, transforms: str, seed: int, device: str, out: Path
) -> None:
    """Render the unit with every parameterization; save the sheet and print the metrics."""
    base = VisualizeConfig(
        backbone=backbone,
        objectives=(objective,),
        size=size,
        steps=steps,
        transforms=transforms,
        seed=seed,
        device=device,
    )
    network = build_network(base)
    images, rows = [], {}
    for name in PARAMS.names():
        start = time.perf_counter()
        result = visualize(base.replace(param=ParamSpec(name)), backbone=network)
        context = MetricContext(
            task="visualize", objective=result.objective, backbone=network, device=result.device, seed=seed
        )
        values = compute_metrics(result.images[:, :3], context, list(METRICS))
        rows[name] = {
            "optimizer": result.config.optimizer,
            "lr": result.config.lr,
            "initial_loss": result.render.history[0],
            "final_loss": result.render.history[-1],
            **{metric: values.mean[metric] for metric in METRICS},
            "seconds": time.perf_counter() - start,
        }
        click.echo(
            f"{name:10s} "
            + "  ".join(f"{k} {v:.4g}" if isinstance(v, float) else f"{k} {v}" for k, v in rows[name].items())
        )
        images.append(result.images[0, :3])
    labels = [f"{name} ({row['optimizer']} {row['lr']:g})" for name, row in rows.items()]
    labeled_grid([images], col_labels=labels).save(out)
    out.with_suffix(".json").write_text(json.dumps(rows, indent=2) + "\n", encoding="utf-8")
    click.echo(f"wrote {out} and {out.with_suffix('.json')}")


if __name__ == "__main__":
    main()
