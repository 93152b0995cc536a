"""Sweep throughput: feature-visualization arms rendered in one batch vs one by one.

Arms that differ only in parameterization and seed run as one optimization (one image per arm, each with
its own parameterization); this measures what that buys, with the real sweep runner (``run_sweep``) on
EfficientNet-Lite0, for 4 and 8 arms at 64 and 128 px. Both variants run in the same process, alternating,
and the ratio of arms per minute is printed. Target: >= 1.5x at 8 arms of 64 px on CPU.

    python benchmarks/sweep_batching.py --steps 16 --repeats 2
"""

from __future__ import annotations

import statistics

import click
import torch
from sweep_runners import sweep_text, time_sweep  # the benchmarks' shared sweep helpers (same folder)

from paramviz.tasks import SharedWork


@click.command()
@click.option("--steps", default=16, show_default=True, help="Steps per arm.")
@click.option("--repeats", default=2, show_default=True, help="Timed repeats of each variant (median kept).")
@click.option("--transforms", default="lucid", show_default=True)
@click.option("--device", default="cpu", show_default=True)
@click.option("--threads", type=int, default=None, help="torch CPU threads.")
def main(steps: int, repeats: int, transforms: str, device: str, threads: int | None) -> None:
    if threads:
        torch.set_num_threads(threads)
    shared = SharedWork()  # the backbone is built once, outside the timings
    time_sweep(sweep_text(2, 64, 2, transforms, device), 8, shared=shared)  # warm-up
    click.echo(f"{'arms':>4} {'size':>4}  {'one by one':>12} {'batched':>12}  {'arms/min':>17}  speedup")
    for arms in (4, 8):
        for size in (64, 128):
            text = sweep_text(arms, size, steps, transforms, device)
            alone, batched = [], []
            for _ in range(repeats):
                alone.append(time_sweep(text, 1, shared=shared))
                batched.append(time_sweep(text, arms, shared=shared))
            a, b = statistics.median(alone), statistics.median(batched)
            click.echo(
                f"{arms:>4} {size:>4}  {a:>10.2f} s {b:>10.2f} s  {60 * arms / a:>7.1f} -> {60 * arms / b:>7.1f}"
                f"  {a / b:.2f}x"
            )


if __name__ == "__main__":
    main()
