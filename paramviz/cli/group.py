"""The root ``paramviz`` click group, and how errors become exit statuses and one-line messages.

Every error a user can cause is printed as one line ``Error: ...`` on stderr, never a traceback. The exit
status comes from one table, :data:`EXIT_CODES`, by exception class: 2 for bad input (the same status click
uses for its own usage errors), 1 for a run that failed, 130 for Ctrl-C (128 + SIGINT, as shells do).
"""

from __future__ import annotations

import contextlib
import importlib
from collections.abc import Iterator

import click

from paramviz.errors import (
    CheckpointError,
    ConfigError,
    ImageError,
    NonFiniteLossError,
    OutputExistsError,
    OutputNotWritableError,
    ParamvizError,
    RenderInterrupted,
    UnknownNameError,
    WeightsError,
)

EXIT_FAILURE = 1
EXIT_USAGE = 2
EXIT_INTERRUPTED = 130

#: Exit status by exception class; the first row that matches wins (subclasses come before their bases).
EXIT_CODES: tuple[tuple[type[BaseException], int, str], ...] = (
    (ConfigError, EXIT_USAGE, "a bad option or config value (SpecError: a malformed spec)"),
    (UnknownNameError, EXIT_USAGE, "an unknown backbone, layer, preset, ... name"),
    (ImageError, EXIT_USAGE, "an image that cannot be read or is too large"),
    (CheckpointError, EXIT_USAGE, "a weights file that does not fit, or needs --trust-checkpoint"),
    (OutputExistsError, EXIT_USAGE, "an --out that is not empty, or holds files paramviz did not write"),
    (OutputNotWritableError, EXIT_USAGE, "an --out that cannot be written"),
    (WeightsError, EXIT_FAILURE, "weights that are not available (a download that failed)"),
    (NonFiniteLossError, EXIT_FAILURE, "the loss became NaN or infinite"),
    (ParamvizError, EXIT_FAILURE, "any other failure of a run"),
    (OSError, EXIT_FAILURE, "the system refused a read or write (disk full, permissions, ...)"),
)


def exit_code(exc: BaseException) -> int:
    """The exit status for an exception, from :data:`EXIT_CODES` (1 for anything not listed)."""
    return next((code for cls, code, _ in EXIT_CODES if isinstance(exc, cls)), EXIT_FAILURE)


def exit_status_help() -> str:
    """The ``Exit status`` section of ``paramviz --help``, written from :data:`EXIT_CODES`."""
    lines = [
        "\b",
        "Exit status:",
        "  0    success",
        f"  {EXIT_USAGE}    bad input: a usage error found by click, or",
    ]
    lines += [f"         {cls.__name__}: {what}" for cls, code, what in EXIT_CODES if code == EXIT_USAGE]
    lines.append(f"  {EXIT_FAILURE}    a run that failed:")
    lines += [f"         {cls.__name__}: {what}" for cls, code, what in EXIT_CODES if code == EXIT_FAILURE]
    lines.append(f"  {EXIT_INTERRUPTED}  Ctrl-C (a render stopped part-way first writes its current image)")
    return "\n".join(lines)


class CliError(click.ClickException):
    """A one-line ``Error: ...`` on stderr with a chosen exit status."""

    def __init__(self, message: str, code: int) -> None:
        super().__init__(message)
        self.exit_code = code


@contextlib.contextmanager
def cli_errors() -> Iterator[None]:
    """Turn paramviz errors, system errors and Ctrl-C into one line on stderr and the exit status of the table.

    Used by the ``paramviz`` group and by scripts with their own click command (``examples/demo.py``).
    """
    try:
        yield
    except RenderInterrupted as exc:
        click.echo(str(exc), err=True)
        raise click.exceptions.Exit(EXIT_INTERRUPTED) from None
    except KeyboardInterrupt:
        click.echo("interrupted", err=True)
        raise click.exceptions.Exit(EXIT_INTERRUPTED) from None
    except (ParamvizError, OSError) as exc:
        message = " ".join(str(exc).split("\n")) or type(exc).__name__
        raise CliError(message, exit_code(exc)) from None


#: The commands: name -> (the module that defines it, the first sentence of its help). A command's module (and
#: torch with it) is imported only when that command runs, so ``paramviz --help`` and ``--version`` start at
#: once; tests/cli/test_group.py checks that these texts are the commands' own.
COMMANDS: dict[str, tuple[str, str]] = {
    "layers": (
        "paramviz.cli.models",
        "List the addressable layers of BACKBONE with their types and output shapes.",
    ),
    "models": (
        "paramviz.cli.models",
        "List the registered backbones and where their pretrained weights come from.",
    ),
    "robustness": (
        "paramviz.cli.robustness",
        "Measure the layer robustness ratio R(f) of each BACKBONE at the given layers.",
    ),
    "style": (
        "paramviz.cli.style",
        "Transfer the style of STYLE image(s) onto CONTENT (paths or sample:NAME, e.g. sample:chelsea).",
    ),
    "sweep": (
        "paramviz.cli.sweep",
        "Run a grid of runs from one sweep file and compare them by numbers, image grids and plots.",
    ),
    "visualize": (
        "paramviz.cli.visualize",
        "Render an image that maximizes a unit of a network (activation maximization).",
    ),
}


def _shorten(text: str, limit: int) -> str:
    if len(text) <= limit:
        return text
    cut = text[: max(limit - 3, 1)].rsplit(" ", 1)[0]
    return f"{cut}..."


class ParamvizGroup(click.Group):
    """Click group whose commands are imported on first use and report errors through :func:`cli_errors`."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(set(self.commands) | set(COMMANDS))

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name not in self.commands and cmd_name in COMMANDS:
            with cli_errors():
                importlib.import_module(COMMANDS[cmd_name][0])  # its decorators register it on this group
        return super().get_command(ctx, cmd_name)

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        names = self.list_commands(ctx)
        limit = formatter.width - 6 - max(map(len, names))
        rows = []
        for name in names:
            command = self.commands.get(name)
            text = command.get_short_help_str(limit) if command is not None else _shorten(COMMANDS[name][1], limit)
            rows.append((name, text))
        with formatter.section("Commands"):
            formatter.write_dl(rows)

    def invoke(self, ctx: click.Context) -> object:
        with cli_errors():
            return super().invoke(ctx)


@click.group(
    cls=ParamvizGroup,
    context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100},
    epilog=exit_status_help(),
)
@click.version_option(package_name="paramviz")
@click.option(
    "--threads",
    type=click.IntRange(min=1),
    default=None,
    help="CPU threads for torch (default: torch's choice).",
)
def main(threads: int | None) -> None:
    """paramviz: differentiable image parameterizations for feature visualization and style transfer."""
    if threads is not None:
        import torch  # here, not at the top: `paramviz --help` needs no torch

        torch.set_num_threads(threads)
