"""The README's commands must match the code: Quickstart as in .ci/run, CLI examples with real options."""

import re
import shlex
from pathlib import Path

import click
import pytest

from paramviz.cli import main

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text(encoding="utf-8")


def bash_blocks(text: str) -> list[str]:
    return re.findall(r"```bash\n(.*?)```", text, re.S)


def cli_examples() -> list[str]:
    commands = []
    for block in bash_blocks(README):
        joined = re.sub(r"\\\n\s*", " ", block)
        commands += [line.split("  #")[0].strip() for line in joined.splitlines() if line.startswith("paramviz ")]
    return commands


def test_quickstart_has_the_two_commands_and_ci_runs_the_test_one():
    quickstart = README.split("## Quickstart", 1)[1].split("\n## ", 1)[0]
    demo, tests = (block.strip() for block in bash_blocks(quickstart))
    assert "examples/demo.py" in demo and "pip install" in demo
    assert "pytest" in tests and "pip install" in tests
    assert tests in (ROOT / ".ci" / "run").read_text(encoding="utf-8")


@pytest.mark.parametrize("line", cli_examples())
def test_cli_examples_use_real_commands_and_options(line):
    words = shlex.split(line)[1:]
    command = main.get_command(click.Context(main), words[0])
    assert command is not None, f"README uses unknown command {words[0]!r}"
    known = {opt for param in command.params for opt in (*param.opts, *param.secondary_opts)}
    for word in words[1:]:
        if word.startswith("--"):
            assert word.split("=")[0] in known, f"README: {line!r} uses unknown option {word!r}"
