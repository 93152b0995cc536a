"""Exit statuses, one-line errors and Ctrl-C at the command line."""

import json
import sys

import click
import pytest
from click.testing import CliRunner

import paramviz.tasks.base
from paramviz.cli import main
from paramviz.cli.group import EXIT_CODES, ParamvizGroup, exit_code
from paramviz.cli.progress import ProgressBar
from paramviz.errors import (
    ConfigError,
    ImageError,
    NonFiniteLossError,
    OutputExistsError,
    OutputNotWritableError,
    SpecError,
    UnknownNameError,
    UnsafeCheckpointError,
    WeightsError,
)

FAST = ["--size", "32", "--steps", "3", "--device", "cpu", "--quiet"]


def invoke(*args):
    return CliRunner().invoke(main, list(args))


def assert_one_line_error(result, code, needle):
    assert result.exit_code == code, (result.exit_code, result.output)
    assert "Traceback" not in result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: ") and needle in lines[0], result.stderr


@pytest.mark.parametrize(
    "exc,code",
    [
        (ConfigError("bad value"), 2),
        (SpecError("bad spec"), 2),
        (UnknownNameError("layer", "x", ["y"]), 2),
        (ImageError("bad image"), 2),
        (UnsafeCheckpointError("needs trust"), 2),
        (OutputExistsError("not empty"), 2),
        (OutputNotWritableError("read-only"), 2),
        (WeightsError("offline"), 1),
        (NonFiniteLossError("nan at step 3"), 1),
        (OSError(28, "No space left on device"), 1),
    ],
)
def test_one_table_maps_each_error_to_an_exit_status_and_one_line(exc, code):
    @click.group(cls=ParamvizGroup)
    def group():
        pass

    @group.command()
    def fail():
        raise exc

    result = CliRunner().invoke(group, ["fail"])
    assert exit_code(exc) == code
    assert_one_line_error(result, code, str(exc).split("\n")[0][:20])


def test_root_help_documents_the_exit_statuses():
    text = invoke("--help").output
    assert "Exit status:" in text and "130  Ctrl-C" in text
    for cls, _code, _ in EXIT_CODES:
        assert f"{cls.__name__}:" in text
    assert "  2    bad input" in text and "  1    a run that failed" in text


@pytest.mark.parametrize(
    "args,needle",
    [
        (["--size", "100000"], "larger than 4096 pixels per side"),
        (["--lr", "inf"], "lr must be a finite number, got inf"),
        (["--lr", "1e38"], "lr 1e+38 is larger than 1000"),
        (["-O", "blocks.0.0.drop_path:0"], "never runs in the network's forward pass"),
    ],
)
def test_bad_values_found_by_paramviz_exit_2_before_any_work(tmp_path, args, needle):
    out = tmp_path / "never"
    result = invoke("visualize", "-O", "stage3:1", *FAST, *args, "--out", str(out))
    assert_one_line_error(result, 2, needle)
    assert not out.exists()


def test_empty_out_is_a_usage_error():
    result = invoke("visualize", "-O", "stage3:1", *FAST, "--out", "")
    assert result.exit_code == 2 and "is empty" in result.stderr and "Traceback" not in result.output


def test_unwritable_out_is_found_before_step_1(tmp_path, monkeypatch):
    (tmp_path / "file").write_text("x")
    monkeypatch.setattr(paramviz.tasks.base, "build_backbone", lambda *a, **k: pytest.fail("built a backbone"))
    result = invoke("visualize", "-O", "stage3:1", *FAST, "--out", str(tmp_path / "file" / "run"))
    assert_one_line_error(result, 2, "is a file, not a folder")


def test_force_never_deletes_a_users_files(tmp_path, monkeypatch):
    # the reproduction: paramviz visualize ... --out . --force inside a project directory
    (tmp_path / "src").mkdir()
    (tmp_path / "src" / "main.py").write_text("code")
    (tmp_path / "data.csv").write_text("d")
    monkeypatch.chdir(tmp_path)
    result = invoke("visualize", "-O", "stage4:12", *FAST, "--out", ".", "--force")
    assert_one_line_error(result, 2, "was not written by paramviz")
    assert (tmp_path / "src" / "main.py").read_text() == "code" and (tmp_path / "data.csv").read_text() == "d"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["data.csv", "src"]


def test_ctrl_c_mid_run_writes_the_current_image_and_exits_130(tmp_path, monkeypatch):
    def interrupt(self, record):
        if record.step == 2:
            raise KeyboardInterrupt

    monkeypatch.setattr(ProgressBar, "__call__", interrupt)
    out = tmp_path / "run"
    result = invoke(
        "visualize", "-O", "stage3:1", "--size", "32", "--steps", "50", "--device", "cpu", "--out", str(out)
    )
    assert result.exit_code == 130 and "Traceback" not in result.output
    assert result.stderr.strip().splitlines()[-1] == (
        f'interrupted at step 2 of 50; wrote the current image to {out} (metrics.json has "interrupted_at_step": 2)'
    )
    assert json.loads((out / "metrics.json").read_text())["interrupted_at_step"] == 2
    assert (out / "image.png").is_file() and (out / "config.toml").is_file()


def test_ctrl_c_while_loading_prints_one_line(tmp_path, monkeypatch):
    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(paramviz.tasks.base, "build_backbone", interrupted)
    result = invoke("visualize", "-O", "stage3:1", *FAST, "--out", str(tmp_path / "run"))
    assert result.exit_code == 130 and result.stderr == "interrupted\n" and "Traceback" not in result.output
    assert list(tmp_path.iterdir()) == []


def test_ctrl_c_while_importing_prints_one_line(monkeypatch, capsys):
    import builtins

    import paramviz_entry

    real_import = builtins.__import__

    def slow_torch_import(name, *args, **kwargs):
        if name == "paramviz.cli":
            raise KeyboardInterrupt
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", slow_torch_import)
    with pytest.raises(SystemExit) as info:
        paramviz_entry.main()
    assert info.value.code == 130 and capsys.readouterr().err == "interrupted\n"


def test_entry_point_runs_the_cli(monkeypatch, capsys):
    import paramviz_entry

    monkeypatch.setattr(sys, "argv", ["paramviz", "models", "--family", "vgg"])
    with pytest.raises(SystemExit) as info:
        paramviz_entry.main()
    assert info.value.code == 0 and "vgg19" in capsys.readouterr().out


@pytest.mark.parametrize(
    "args",
    [
        ["visualize", "-O", "stage3:1", "--size", "100000"],
        ["style", "sample:chelsea", "examples/images/starry_night.jpg", "--size", "100000"],
        ["robustness", "efficientnet_lite0", "--layers", "stage1", "--size", "100000"],
    ],
)
def test_huge_sizes_are_refused_by_every_command(tmp_path, args, monkeypatch):
    from pathlib import Path

    monkeypatch.chdir(Path(__file__).resolve().parents[2])
    result = invoke(*args, "--out", str(tmp_path / "never"))
    assert_one_line_error(result, 2, "larger than 4096 pixels per side")
    assert list(tmp_path.iterdir()) == []


def test_the_command_table_matches_the_commands():
    import importlib

    from paramviz.cli.group import COMMANDS

    for name, (module, text) in COMMANDS.items():
        importlib.import_module(module)
        command = main.get_command(click.Context(main), name)
        assert command is not None and command.get_short_help_str(limit=10_000) == text, name
    assert set(COMMANDS) == set(main.commands)  # every command is in the table


def test_help_version_and_import_paramviz_need_no_torch():
    import subprocess
    import sys

    script = (
        "import sys\n"
        "import paramviz, paramviz.cli\n"
        "from click.testing import CliRunner\n"
        "from paramviz.cli import main\n"
        "for args in (['--help'], ['--version']):\n"
        "    assert CliRunner().invoke(main, args).exit_code == 0\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] in ('torch', 'torchvision', 'timm', 'kornia')))\n"
    )
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_every_public_name_of_the_package_resolves():
    import paramviz

    for name in paramviz.__all__:
        assert getattr(paramviz, name) is not None, name
    with pytest.raises(AttributeError, match="no attribute 'nope'"):
        paramviz.nope  # noqa: B018
