"""``paramviz sweep list|run|report``: parameterization ablations as a grid of runs."""

from __future__ import annotations

from pathlib import Path

import click
from tqdm.auto import tqdm

from paramviz.cli.group import main
from paramviz.cli.progress import LossReader
from paramviz.render import StepRecord
from paramviz.sweep.runner import DEFAULT_MAX_BATCH, SweepEvent, run_sweep
from paramviz.sweep.spec import describe_arms, expand, load_sweep

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


class SweepProgress:
    """Two progress bars: arms done of all, and the steps of the arm(s) running now."""

    def __init__(self, disable: bool = False) -> None:
        self.disable = disable
        self.arms: tqdm | None = None
        self.steps: tqdm | None = None
        self.read_loss = LossReader()

    def on_sweep(self, event: SweepEvent) -> None:
        if self.arms is None:
            self.arms = tqdm(total=event.total, desc="arms", unit="arm", disable=self.disable, position=0)
        self.arms.update(event.done + event.failed - self.arms.n)
        self.arms.set_postfix_str(f"failed={event.failed}" if event.failed else "", refresh=True)
        if self.steps is not None:
            self.steps.close()
            self.steps = None
        if event.current and not event.finished:
            label = event.current[0].label() or event.current[0].id
            if len(event.current) > 1:
                label = f"{len(event.current)} arms batched, {label}, ..."
            self.steps_label = label[:60]

    def __call__(self, record: StepRecord) -> None:
        if self.steps is None:
            self.steps = tqdm(
                total=record.steps,
                desc=getattr(self, "steps_label", "steps"),
                unit="step",
                disable=self.disable,
                position=1,
                leave=False,
            )
        loss = self.read_loss(record) if not self.disable else None
        if loss is not None:
            self.steps.set_postfix_str(f"loss={loss:.4g}", refresh=False)
        self.steps.update(record.step - self.steps.n)

    def close(self) -> None:
        for bar in (self.steps, self.arms):
            if bar is not None:
                bar.close()
        self.steps = self.arms = None


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
@click.option("--quiet", "-q", is_flag=True, help="No progress bars.")
def run_command(sweep_file: Path, out: Path, force: bool, device: str | None, max_batch: int, quiet: bool) -> None:
    """Run the arms of SWEEP_FILE into --out; finished arms are kept, failed ones are recorded."""
    progress = SweepProgress(disable=quiet)
    try:
        summary = run_sweep(
            sweep_file,
            out,
            force=force,
            device=device,
            max_batch=max_batch,
            on_progress=progress.on_sweep,
            step_callbacks=[progress],
        )
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
