"""Exceptions raised by paramviz.

Every error a user can trigger is a :class:`ParamvizError` that also subclasses the matching builtin, so
``except LookupError`` or ``except ValueError`` keep working. Messages name the offending value, what was
expected, and how to fix it.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable


class ParamvizError(Exception):
    """Base class of all paramviz errors."""


class UnknownNameError(ParamvizError, LookupError):
    """A name (backbone, layer, preset, objective, ...) that is not registered.

    Args:
        kind: What was looked up, e.g. ``"backbone"`` or ``"layer"``.
        name: The value the user gave.
        choices: The valid names.
        hint: How to list valid names, e.g. ``"run `paramviz models`"``.
    """

    def __init__(self, kind: str, name: str, choices: Iterable[str], hint: str = "") -> None:
        self.kind = kind
        self.name = name
        self.choices = sorted(set(choices))
        self.suggestions = close_matches(name, self.choices)
        msg = f"unknown {kind} {name!r}"
        if self.suggestions:
            msg += f"; did you mean {', '.join(repr(s) for s in self.suggestions)}?"
        elif len(self.choices) <= 12:
            msg += f"; expected one of {', '.join(repr(c) for c in self.choices)}"
        if hint:
            msg += f" ({hint})"
        super().__init__(msg)

    def __str__(self) -> str:  # LookupError would otherwise repr() the message
        return str(self.args[0])


class ConfigError(ParamvizError, ValueError):
    """An option or config value that is out of range or malformed."""


class SpecError(ConfigError):
    """A compact spec string (transforms, objectives, layer lists) that does not parse."""


class ImageError(ParamvizError, ValueError):
    """An image file that cannot be read, or an image tensor of the wrong shape or range."""


class WeightsError(ParamvizError, FileNotFoundError):
    """Model weights that are missing, unreadable, or do not match the architecture."""


class CheckpointError(ParamvizError, ValueError):
    """A checkpoint file whose layout or keys do not match what was expected."""


class UnsafeCheckpointError(CheckpointError):
    """A checkpoint that needs full unpickling (arbitrary code) and was not explicitly trusted."""


class NonFiniteLossError(ParamvizError, FloatingPointError):
    """The objective became NaN or infinite during optimization."""


class OutputExistsError(ParamvizError, FileExistsError):
    """The output directory is not empty, and replacing it was not requested or is not safe.

    ``--force`` replaces only a directory that paramviz wrote (one whose manifest lists everything in it).
    """


class OutputNotWritableError(ParamvizError, PermissionError):
    """The output directory cannot be created or written (read-only, or a file is in the way)."""


class RenderInterrupted(KeyboardInterrupt):
    """Ctrl-C during :func:`~paramviz.render.render`, carrying the work done so far.

    A subclass of :class:`KeyboardInterrupt` (not of :class:`ParamvizError`), so code that does not know about it
    still treats it as an interrupt. The tasks' ``run_*`` functions catch it, write the partial result (the
    image at the last completed step, ``metrics.json`` with ``"interrupted_at_step"``) and raise it again with
    :attr:`written_to` set.

    Attributes:
        result: The partial :class:`~paramviz.render.RenderResult`: ``steps`` completed steps, their history,
            and ``images`` with the image after the last completed step.
        total_steps: The number of steps the run was asked for.
        outcome: The task's result built from the partial render (set by the task, else ``None``).
        written_to: The output directory the partial result was written to (set by ``run_*``, else ``None``).
    """

    def __init__(self, result: object, total_steps: int) -> None:
        super().__init__()
        self.result = result
        self.total_steps = total_steps
        self.outcome: object | None = None
        self.written_to: object | None = None

    @property
    def steps_done(self) -> int:
        """Steps completed before the interrupt."""
        return int(getattr(self.result, "steps", 0))

    def __str__(self) -> str:
        text = f"interrupted at step {self.steps_done} of {self.total_steps}"
        if self.written_to is not None:
            text += (
                f"; wrote the current image to {self.written_to} "
                f'(metrics.json has "interrupted_at_step": {self.steps_done})'
            )
        elif self.steps_done == 0:
            text += "; nothing was written"
        return text


def close_matches(name: str, choices: Iterable[str], n: int = 3) -> list[str]:
    """Return up to ``n`` choices close to ``name`` (case-insensitive, substring matches first)."""
    choices = list(choices)
    lowered = {c.lower(): c for c in choices}
    matches = difflib.get_close_matches(name.lower(), list(lowered), n=n, cutoff=0.6)
    found = [lowered[m] for m in matches]
    if len(found) < n and len(name) >= 2:
        for c in choices:
            if name.lower() in c.lower() and c not in found:
                found.append(c)
                if len(found) == n:
                    break
    return found
