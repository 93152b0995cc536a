"""Sweep throughput: the local runner vs the Ray runner (a local Ray instance) on the same small sweep.

EfficientNet-Lite0 feature visualizations at 64 px (pixel/Fourier x 4 seeds = 8 arms, few steps, no image
metrics), run with ``run_sweep`` into a fresh directory each time:

- local: in this process, one arm after the other with all torch threads;
- ray, 1 task at a time: ``--cpus-per-arm`` = all cores, so each arm gets the same threads as locally; the
  difference in time per arm is the Ray runner's overhead (scheduling, sending the config and inputs, the
  worker writing the outputs to bytes and the driver writing them into the sweep directory);
- ray, 1 CPU per arm: as many arms at once as there are cores (what ``--runner ray`` does by default).

Every variant has one warm-up run, reported apart: for Ray it starts the workers (each imports torch and
builds the backbone once per process, as the local runner builds it once per sweep), and the first one also
starts the local Ray instance. The variants run one after the other, not alternating: Ray keeps a pool of
workers per resource shape, and a real sweep uses one shape.

    python benchmarks/sweep_runners.py --steps 16 --repeats 2
"""

from __future__ import annotations

import os
import shutil
import statistics
import tempfile
import time
from pathlib import Path

import click
import torch

from paramviz.sweep.ray_runner import RayOptions
from paramviz.sweep.runner import run_sweep
from paramviz.sweep.spec import parse_sweep
from paramviz.tasks import SharedWork

PARAMS = ("pixel", "fourier")


def sweep_text(arms: int, size: int, steps: int, transforms: str, device: str = "cpu") -> str:
    seeds = list(range(arms // len(PARAMS)))
    return (
        'task = "visualize"\n[base]\nobjectives = ["stage4:12"]\n'
        f'size = {size}\nsteps = {steps}\ntransforms = "{transforms}"\ndevice = "{device}"\n'
        f'metrics.names = []\n[axes]\n"param.name" = {list(PARAMS)!r}\nseed = {seeds!r}\n'
    ).replace("'", '"')


def time_sweep(text: str, max_batch: int, **runner: object) -> float:
    folder = Path(tempfile.mkdtemp(prefix="pv-bench-"))
    try:
        spec = parse_sweep(text, folder=folder)
        start = time.perf_counter()
        summary = run_sweep(spec, folder / "out", max_batch=max_batch, **runner)
        seconds = time.perf_counter() - start
        if summary.count("done") != len(summary.states):
            raise SystemExit(f"arms failed: {[s.error for s in summary.states if s.status == 'failed']}")
        return seconds
    finally:
        shutil.rmtree(folder, ignore_errors=True)


@click.command()
@click.option("--arms", default=8, show_default=True, help="Arms of the sweep (pixel/Fourier x arms/2 seeds).")
@click.option("--size", default=64, show_default=True)
@click.option("--steps", default=16, show_default=True, help="Steps per arm.")
@click.option("--repeats", default=2, show_default=True, help="Timed repeats of each variant (median kept).")
@click.option("--max-batch", default=1, show_default=True, help="As --max-batch of `paramviz sweep run`.")
@click.option("--transforms", default="lucid", show_default=True)
def main(arms: int, size: int, steps: int, repeats: int, max_batch: int, transforms: str) -> None:
    import ray

    cores = os.cpu_count() or 1
    torch.set_num_threads(cores)
    load = os.getloadavg()[0]
    click.echo(f"{cores} cores, load average {load:.2f}; {arms} arms, {size} px, {steps} steps, max_batch {max_batch}")
    text = sweep_text(arms, size, steps, transforms)
    warm = sweep_text(2, size, 2, transforms)
    shared = SharedWork()
    variants = {
        "local": {"shared": shared},
        f"ray, 1 task at a time ({cores} CPUs)": {
            "runner": "ray",
            "runner_options": RayOptions(address="local", cpus_per_arm=cores),
        },
        f"ray, 1 CPU per arm ({cores} at once)": {"runner": "ray", "runner_options": RayOptions(address="local")},
    }
    times: dict[str, list[float]] = {}
    for name, runner in variants.items():
        # one variant after the other (not alternating): Ray keeps a pool of workers per resource shape, and a
        # real sweep uses one shape; the warm-up starts the workers (the first Ray one, the instance too)
        seconds = time_sweep(warm, max_batch, **runner)
        click.echo(f"warm-up, {name}: {seconds:.1f} s (2 arms of 2 steps)")
        times[name] = [time_sweep(text, max_batch, **runner) for _ in range(repeats)]
    local = statistics.median(times["local"])
    click.echo(f"{'runner':<36} {'seconds':>8} {'arms/min':>9} {'s/arm':>7} {'vs local':>9}")
    for name, values in times.items():
        seconds = statistics.median(values)
        extra = "" if name == "local" else f"{(seconds - local) / arms:>+8.2f}s"
        click.echo(f"{name:<36} {seconds:>8.2f} {60 * arms / seconds:>9.1f} {seconds / arms:>7.2f} {extra:>9}")
    same_threads = statistics.median(list(times.values())[1])
    click.echo(f"Ray overhead per arm (same threads as local): {(same_threads - local) / arms:+.2f} s")
    ray.shutdown()


if __name__ == "__main__":
    main()
