import json

from click.testing import CliRunner

from paramviz.cli import main


def test_list_prints_every_arm(basic_sweep):
    result = CliRunner().invoke(main, ["sweep", "list", str(basic_sweep)])
    assert result.exit_code == 0, result.output
    assert "4 arms, task visualize" in result.output and "fourier" in result.output


def test_run_writes_the_sweep_and_says_how_to_report(basic_sweep, tmp_path):
    out = tmp_path / "out"
    result = CliRunner().invoke(main, ["sweep", "run", str(basic_sweep), "--out", str(out), "-q"])
    assert result.exit_code == 0, result.output
    assert "4 of 4 arms done" in result.output and "paramviz sweep report" in result.output
    assert json.loads((out / "arms.json").read_text())["counts"]["done"] == 4


def test_a_bad_sweep_file_is_one_line_without_traceback(write_sweep, tmp_path):
    path = write_sweep('task = "visualize"\n[axes]\nseed = 3\n')
    result = CliRunner().invoke(main, ["sweep", "run", str(path), "--out", str(tmp_path / "o")])
    assert result.exit_code != 0 and "Traceback" not in result.output
    assert "axis 'seed': expected a list" in result.output
    assert not (tmp_path / "o").exists()
