"""``paramviz sweep list|run|report``: parameterization ablations as a grid of runs."""

from __future__ import annotations

import json
from pathlib import Path

import click

from paramviz.cli.group import EXIT_INTERRUPTED, main
from paramviz.cli.progress import SweepProgress
from paramviz.errors import ConfigError
from paramviz.sweep.ray_runner import RayOptions
from paramviz.sweep.runner import ARMS_FILE, DEFAULT_MAX_BATCH, RUNNERS, run_sweep
from paramviz.sweep.spec import describe_arms, expand, load_sweep, parse_assignment

SWEEP_FILE_TYPE = click.Path(dir_okay=False, path_type=Path)


@main.group("sweep")
def sweep_group() -> None:
    """Run a grid of runs from one sweep file and compare them by numbers, image grids and plots.

    \b
    A sweep file (TOML):
      task = "visualize"              # or "style"
      [base]                          # any field of the task's config.toml
      objectives = ["stage4:12"]
      size = 64
      steps = 48
      [axes]                          # dotted keys; the grid is the product of the lists
      "param.name" = ["pixel", "fourier"]
      transforms = ["none", "lucid"]
      seed = [0, 1, 2]
      [[zip]]                         # optional: keys that vary together
      backbone = ["efficientnet_lite0", "efficientnet_lite1"]
      objectives = [["stage4:12"], ["stage4:12"]]
    """  # noqa: D301 (click's \b keeps the example's line breaks)


@sweep_group.command("list")
@click.argument("sweep_file", type=SWEEP_FILE_TYPE)
def list_command(sweep_file: Path) -> None:
    """Print the arms of SWEEP_FILE with their ids and axis values (every arm is checked, nothing runs)."""
    spec = load_sweep(sweep_file)
    arms = expand(spec)
    click.echo(describe_arms(arms, spec.axis_keys))
    click.echo(f"{len(arms)} arms, task {spec.task}")


@sweep_group.command("run")
@click.argument("sweep_file", type=SWEEP_FILE_TYPE)
@click.option(
    "--out",
    "-o",
    type=click.Path(file_okay=False, path_type=Path),
    required=True,
    help="Sweep directory: sweep.toml, arms.json, arms/<id>/. Run the same command again to resume.",
)
@click.option(
    "--force", is_flag=True, help="Replace a sweep directory that holds another sweep (only the files a sweep wrote)."
)
@click.option("--device", default=None, help="Run every arm on this device ('cpu', 'cuda', ...); ids do not change.")
@click.option(
    "--max-batch",
    type=click.IntRange(min=1),
    default=DEFAULT_MAX_BATCH,
    show_default=True,
    help="Most arms rendered in one optimization when they differ only in parameterization and seed "
    "(1: every arm alone).",
)
@click.option(
    "--runner",
    type=click.Choice(RUNNERS.names()),
    default="local",
    show_default=True,
    help="Where the arms run: "
    + "; ".join(f"{e.name}: {e.description}" for e in RUNNERS.entries())
    + " (docs/cluster.md).",
)
@click.option(
    "--address",
    default=None,
    help="--runner ray: the Ray cluster ('auto', 'HOST:6379', 'ray://HOST:10001'); default: RAY_ADDRESS, else a "
    "cluster started on this machine with `ray start`, else a new local instance.",
)
@click.option(
    "--cpus-per-arm",
    type=click.FloatRange(min=0, min_open=True),
    default=None,
    help=f"--runner ray: CPUs Ray reserves for each task (a batch of arms or one arm)  [default: "
    f"{RayOptions.cpus_per_arm:g}]",
)
@click.option(
    "--gpus-per-arm",
    type=click.FloatRange(min=0),
    default=None,
    help=f"--runner ray: GPUs Ray reserves for each task; a fraction shares a GPU (0.25: four per GPU); with 0 "
    f"arms run on the CPU  [default: {RayOptions.gpus_per_arm:g}]",
)
@click.option(
    "--set",
    "assignments",
    multiple=True,
    metavar="KEY=VALUE",
    help="Change a field of the sweep's [base] (repeatable), e.g. --set steps=8 --set size=64 for a quick try; "
    "values are TOML (bare words are strings). A changed sweep is another sweep: its arms get other ids.",
)
@click.option("--quiet", "-q", is_flag=True, help="No progress bars.")
def run_command(
    sweep_file: Path,
    out: Path,
    force: bool,
    device: str | None,
    max_batch: int,
    runner: str,
    address: str | None,
    cpus_per_arm: float | None,
    gpus_per_arm: float | None,
    assignments: tuple[str, ...],
    quiet: bool,
) -> None:
    """Run the arms of SWEEP_FILE into --out; finished arms are kept, failed ones are recorded.

    With --runner ray the arms run as Ray tasks on a cluster (no shared filesystem needed: inputs travel with
    the tasks, outputs come back to --out); the results folder, resume and report are the same.
    """
    ray_given = {"--address": address, "--cpus-per-arm": cpus_per_arm, "--gpus-per-arm": gpus_per_arm}
    options = None
    if runner == "ray":
        chosen = {"address": address, "cpus_per_arm": cpus_per_arm, "gpus_per_arm": gpus_per_arm}
        options = RayOptions(**{key: value for key, value in chosen.items() if value is not None})
    elif any(value is not None for value in ray_given.values()):
        given = ", ".join(name for name, value in ray_given.items() if value is not None)
        raise ConfigError(f"{given} only apply to --runner ray (the arms run with --runner {runner}); add --runner ray")
    spec = load_sweep(sweep_file).with_base(dict(parse_assignment(a) for a in assignments))
    progress = SweepProgress(disable=quiet)
    try:
        summary = run_sweep(
            spec,
            out,
            force=force,
            device=device,
            max_batch=max_batch,
            on_progress=progress.on_sweep,
            step_callbacks=[] if runner == "ray" else [progress],
            runner=runner,
            runner_options=options,
        )
    except KeyboardInterrupt:
        progress.close()
        click.echo(f"interrupted: {interrupted_summary(out)}; run the same command again to finish", err=True)
        raise click.exceptions.Exit(EXIT_INTERRUPTED) from None
    finally:
        progress.close()
    done, failed = summary.count("done"), summary.count("failed")
    click.echo(
        f"{summary.out}: {done} of {len(summary.states)} arms done ({len(summary.ran)} run now, "
        f"{len(summary.skipped)} already done), {failed} failed; report: paramviz sweep report {out}"
    )
    if failed:
        for state in summary.states:
            if state.status == "failed":
                click.echo(f"  failed {state.arm.id} ({state.arm.label()}): {state.error}", err=True)


def interrupted_summary(out: Path) -> str:
    """What an interrupted sweep left in ``out``: arms done and kept, from its ``arms.json``."""
    try:
        counts = json.loads((Path(out) / ARMS_FILE).read_text(encoding="utf-8"))["counts"]
        total = sum(counts.values())
        return f"{counts['done']} of {total} arms done and kept in {out}"
    except (OSError, ValueError, KeyError, TypeError):
        return f"no arm finished in {out}"


@sweep_group.command("report")
@click.argument("sweep_dir", type=click.Path(file_okay=False, path_type=Path))
@click.option("--rows", default=None, help="Axis key(s), comma-separated, for the rows of the image contact sheet.")
@click.option(
    "--cols",
    default=None,
    help="Axis key(s), comma-separated, for its columns (default: the axis with the most values; seeds side by side).",
)
@click.option(
    "--annotate",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="A `paramviz robustness` robustness.csv to join onto the arms by backbone and layer (shows R(f)).",
)
def report_command(sweep_dir: Path, rows: str | None, cols: str | None, annotate: Path | None) -> None:
    """Write SWEEP_DIR/metrics.csv and a self-contained SWEEP_DIR/report.html (image grid, metric table, plots)."""
    from paramviz.sweep.report import build_report

    paths = build_report(sweep_dir, rows=rows, cols=cols, annotate=annotate)
    click.echo(f"wrote {paths.metrics_csv}, {len(paths.plots)} plots and {paths.html}")
