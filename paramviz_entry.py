"""Console entry point of the ``paramviz`` command.

It lives outside the ``paramviz`` package on purpose: importing the package imports torch, which takes a few
seconds, and a Ctrl-C during that import would otherwise print a long ``KeyboardInterrupt`` traceback. Here it
prints one line, ``interrupted``, and exits with status 130 like any other interrupt (see ``paramviz --help``).
"""

from __future__ import annotations

import sys

EXIT_INTERRUPTED = 130  # = paramviz.cli.group.EXIT_INTERRUPTED (not imported: that would import torch)


def main() -> None:
    """Import the CLI (a Ctrl-C meanwhile is one line, exit 130), then run it."""
    try:
        from paramviz.cli import main as cli
    except KeyboardInterrupt:
        sys.stderr.write("interrupted\n")
        raise SystemExit(EXIT_INTERRUPTED) from None
    cli()


if __name__ == "__main__":
    main()
