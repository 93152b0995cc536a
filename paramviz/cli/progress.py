"""tqdm progress bars as callbacks: one for render steps, usable for any counted work."""

from __future__ import annotations

from tqdm.auto import tqdm

from paramviz.render import StepRecord


class ProgressBar:
    """A progress bar fed by callbacks; use as a context manager (the bar is closed on exit).

    Called with a render :class:`~paramviz.render.StepRecord` it shows the step and the current loss; other
    kinds of work call :meth:`advance` with their own counts.

    Args:
        desc: Label shown left of the bar.
        disable: Hide the bar (e.g. ``--quiet``).
    """

    def __init__(self, desc: str = "render", disable: bool = False) -> None:
        self.desc = desc
        self.disable = disable
        self.bar: tqdm | None = None

    def advance(self, done: int, total: int, postfix: str = "") -> None:
        """Move the bar to ``done`` of ``total`` and show ``postfix`` beside it."""
        if self.bar is None:
            self.bar = tqdm(total=total, desc=self.desc, unit="step", disable=self.disable, leave=True)
        if postfix:
            self.bar.set_postfix_str(postfix, refresh=False)
        self.bar.update(done - self.bar.n)

    def __call__(self, record: StepRecord) -> None:
        self.advance(record.step, record.steps, f"loss={record.loss:.4g}")

    def __enter__(self) -> ProgressBar:
        return self

    def __exit__(self, *exc: object) -> None:
        if self.bar is not None:
            self.bar.close()
            self.bar = None
