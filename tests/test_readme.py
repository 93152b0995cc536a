"""The README's commands run as written: Quickstart as in .ci/run, every CLI example, the Python examples."""

import re
import shlex
from pathlib import Path

import click
import pytest
from click.testing import CliRunner

import paramviz.backbones.weights as weights
from paramviz.cli import main

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text(encoding="utf-8")
#: Appended to the commands that optimize (the last value of an option wins), so that each takes a second or two.
SMALL = {
    "visualize": ["--steps", "2", "--size", "32", "--device", "cpu", "--quiet"],
    "style": ["--steps", "2", "--size", "32", "--device", "cpu", "--quiet"],
    "robustness": ["--steps", "2", "--size", "32", "--device", "cpu", "--quiet"],
    "sweep run": ["--set", "steps=2", "--set", "size=32", "--device", "cpu", "--quiet"],
}
WEIGHTS_FILE = re.compile(r"'?[\w.-]+\.(pth|pt|ckpt|safetensors|bin)'?")


def bash_blocks(text: str) -> list[str]:
    return re.findall(r"```bash\n(.*?)```", text, re.S)


def python_blocks(text: str) -> list[str]:
    return re.findall(r"```python\n(.*?)```", text, re.S)


def cli_examples() -> list[tuple[str, str]]:
    """(command, comment) for every `paramviz ...` line of the README, continuation lines joined."""
    examples = []
    for block in bash_blocks(README):
        joined = re.sub(r"\\\n\s*", " ", block)
        for line in joined.splitlines():
            if line.startswith("paramviz "):
                command, _, comment = line.partition("  #")
                examples.append((command.strip(), comment.strip()))
    return examples


def test_quickstart_has_the_two_commands_and_ci_runs_the_test_one():
    quickstart = README.split("## Quickstart", 1)[1].split("\n## ", 1)[0]
    demo, tests = (block.strip() for block in bash_blocks(quickstart)[:2])
    assert "examples/demo.py" in demo and "pip install" in demo
    assert "pytest" in tests and "pip install" in tests
    assert tests in (ROOT / ".ci" / "run").read_text(encoding="utf-8")
    assert "--index-url https://download.pytorch.org/whl/cpu" in quickstart  # CPU-only wheels
    assert "GB" in quickstart and "the demo takes" in quickstart and "test suite" in quickstart


@pytest.mark.parametrize("line", [line for line, _ in cli_examples()])
def test_cli_examples_use_real_commands_and_options(line):
    words = shlex.split(line)[1:]
    command = main.get_command(click.Context(main), words[0])
    assert command is not None, f"README uses unknown command {words[0]!r}"
    if isinstance(command, click.Group):  # e.g. `paramviz sweep run`: the options are the subcommand's
        command, words = command.get_command(click.Context(command), words[1]), words[1:]
        assert command is not None, f"README uses unknown subcommand in {line!r}"
    known = {opt for param in command.params for opt in (*param.opts, *param.secondary_opts)}
    for word in words[1:]:
        if word.startswith("--"):
            assert word.split("=")[0] in known, f"README: {line!r} uses unknown option {word!r}"


# --- every command runs as written ----------------------------------------------------------------------------
@pytest.fixture(scope="module")
def readme_runs(tmp_path_factory):
    """Runs README lines (outputs under a temporary folder), each once; lines reading another's output run it first."""
    out_root = tmp_path_factory.mktemp("readme")
    done: dict[str, object] = {}
    examples = cli_examples()

    def run(line: str, monkeypatch: pytest.MonkeyPatch) -> object:
        if line in done:
            return done[line]
        words = shlex.split(line)[1:]
        for i, word in enumerate(words):
            if word == "--config":  # produced by the line that wrote that directory
                producer = Path(words[i + 1]).parent.as_posix()
                for other, _ in examples:
                    other_words = shlex.split(other)
                    if other != line and any(
                        a == "--out" and b == producer for a, b in zip(other_words, other_words[1:], strict=False)
                    ):
                        run(other, monkeypatch)
            if words[:2] == ["sweep", "report"] and i == 2:  # the report of the sweep another line runs
                for other, _ in examples:
                    other_words = shlex.split(other)
                    if other_words[1:3] == ["sweep", "run"] and word in other_words:
                        run(other, monkeypatch)
            if (i and words[i - 1] in ("--out", "--config") or words[:2] == ["sweep", "report"] and i == 2) and (
                word.startswith("out/")
            ):
                words[i] = str(out_root / word)
        monkeypatch.chdir(ROOT)
        key = " ".join(words[:2]) if words[0] == "sweep" else words[0]
        done[line] = CliRunner().invoke(main, [*words, *SMALL.get(key, [])])
        return done[line]

    return run


@pytest.fixture
def offline(monkeypatch, tmp_path):
    """No cached weights and no network: a download fails at once (and never fetches hundreds of MB in CI)."""
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch_home"))

    def no_network(url, *args, **kwargs):
        raise OSError(f"no network in the README test ({url})")

    monkeypatch.setattr(weights, "download_file", no_network)


@pytest.mark.parametrize("line,comment", cli_examples())
def test_each_readme_command_runs_as_written(line, comment, readme_runs, offline, monkeypatch):
    result = readme_runs(line, monkeypatch)
    assert "Traceback" not in result.output, result.output
    if comment.startswith("needs") and "weights" in comment:
        # offline: the clean weights error, one line naming the weights file and how to get past it
        assert result.exit_code == 1, (line, result.exit_code, result.output)
        (error,) = result.stderr.strip().splitlines()[-1:]
        assert error.startswith("Error: ") and WEIGHTS_FILE.search(error), error
        assert "random" in error, error  # every weights error offers random weights (or the right file) as a fix
    else:
        assert result.exit_code == 0, (line, result.output)


def test_python_examples_run_and_save_an_image(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    for block in python_blocks(README):
        assert "save_image(" in block and "steps=256" in block
        exec(compile(block.replace("steps=256", "steps=2"), "README.md", "exec"), {})
    saved = sorted(p.name for p in tmp_path.glob("*.png"))
    assert saved == ["stage4_12.png", "stage4_12_tv.png"]
