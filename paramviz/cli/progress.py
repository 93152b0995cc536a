"""tqdm progress bars as callbacks: one for render steps, usable for any counted work."""

from __future__ import annotations

import time

from tqdm.auto import tqdm

from paramviz.render import StepRecord

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
