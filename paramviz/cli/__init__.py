"""Command-line interface: ``paramviz COMMAND``; each command lives in its own module."""

from paramviz.cli import models, robustness, style, sweep, visualize  # noqa: F401  (importing registers the commands)
from paramviz.cli.group import main

__all__ = ["main"]
