"""tqdm progress bars as callbacks: one for render steps (usable for any counted work), two for a sweep."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

from tqdm.auto import tqdm

from paramviz.render import StepRecord

if TYPE_CHECKING:
    from paramviz.sweep.runner import SweepEvent

#: Seconds between two readings of the loss (each reading copies it from the device: on CUDA, a sync).
LOSS_INTERVAL = 0.5


class LossReader:
    """Reads a step's loss at most every :data:`LOSS_INTERVAL` seconds (and at the last step), else ``None``."""

    def __init__(self, interval: float = LOSS_INTERVAL) -> None:
        self.interval = interval
        self.last = float("-inf")

    def __call__(self, record: StepRecord) -> float | None:
        now = time.monotonic()
        if record.step == record.steps or now - self.last >= self.interval:
            self.last = now
            return record.loss
        return None


class ProgressBar:
    """A progress bar fed by callbacks; use as a context manager (the bar is closed on exit).

    Called with a render :class:`~paramviz.render.StepRecord` it shows the step and the current loss (read a few
    times a second, :class:`LossReader`); other kinds of work call :meth:`advance` with their own counts.

    Args:
        desc: Label shown left of the bar.
        disable: Hide the bar (e.g. ``--quiet``).
    """

    def __init__(self, desc: str = "render", disable: bool = False) -> None:
        self.desc = desc
        self.disable = disable
        self.bar: tqdm | None = None
        self.read_loss = LossReader()

    def advance(self, done: int, total: int, postfix: str = "") -> None:
        """Move the bar to ``done`` of ``total`` and show ``postfix`` beside it."""
        if self.bar is None:
            self.bar = tqdm(total=total, desc=self.desc, unit="step", disable=self.disable, leave=True)
        if postfix:
            self.bar.set_postfix_str(postfix, refresh=False)
        self.bar.update(done - self.bar.n)

    def __call__(self, record: StepRecord) -> None:
        loss = self.read_loss(record) if not self.disable else None
        self.advance(record.step, record.steps, "" if loss is None else f"loss={loss:.4g}")

    def __enter__(self) -> ProgressBar:
        return self

    def __exit__(self, *exc: object) -> None:
        if self.bar is not None:
            self.bar.close()
            self.bar = None


class SweepProgress:
    """Two progress bars: arms done of all, and the steps of the arm(s) running now.

    With a remote runner (Ray) no steps are reported: the arms bar alone shows the arms in flight (queued or
    running on the cluster).
    """

    def __init__(self, disable: bool = False) -> None:
        self.disable = disable
        self.arms: tqdm | None = None
        self.steps: tqdm | None = None
        self.read_loss = LossReader()

    def on_sweep(self, event: SweepEvent) -> None:
        if self.arms is None:
            self.arms = tqdm(total=event.total, desc="arms", unit="arm", disable=self.disable, position=0)
        postfix = [f"failed={event.failed}"] if event.failed else []
        if event.in_flight and not event.finished:
            postfix.append(f"in flight={event.in_flight}")
        self.arms.set_postfix_str(", ".join(postfix), refresh=False)
        self.arms.update(event.done + event.failed - self.arms.n)
        self.arms.refresh()
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
