"""A tqdm progress bar as a render callback."""

from __future__ import annotations

from tqdm.auto import tqdm

from paramviz.render import StepRecord


class ProgressBar:
    """Render callback showing a progress bar with the current loss; use as a context manager.

    Args:
        desc: Label shown left of the bar.
        disable: Hide the bar (e.g. ``--quiet``).
    """

    def __init__(self, desc: str = "render", disable: bool = False) -> None:
        self.desc = desc
        self.disable = disable
        self.bar: tqdm | None = None

    def __call__(self, record: StepRecord) -> None:
        if self.bar is None:
            self.bar = tqdm(total=record.steps, desc=self.desc, unit="step", disable=self.disable, leave=True)
        self.bar.update(1)
        self.bar.set_postfix(loss=f"{record.loss:.4g}", refresh=False)

    def __enter__(self) -> ProgressBar:
        return self

    def __exit__(self, *exc: object) -> None:
        if self.bar is not None:
            self.bar.close()
            self.bar = None
