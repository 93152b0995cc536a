"""Command-line interface: ``paramviz COMMAND``; each command lives in its own module, imported on first use.

``paramviz.cli.group.COMMANDS`` lists them; importing this package imports neither torch nor any command.
"""

from paramviz.cli.group import main

__all__ = ["main"]
