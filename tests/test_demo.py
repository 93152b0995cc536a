import importlib.util
from pathlib import Path

import pytest
from click.testing import CliRunner

from paramviz.io import read_manifest

DEMO = Path(__file__).resolve().parents[1] / "examples" / "demo.py"


def load_demo():
    spec = importlib.util.spec_from_file_location("paramviz_demo", DEMO)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.slow
def test_offline_demo_writes_the_comparison_grid_and_a_rerun_is_one_line(tmp_path):
    module = load_demo()
    out = tmp_path / "demo"
    args = ["--out", str(out), "--steps", "2", "--size", "32"]
    result = CliRunner().invoke(module.demo, args)
    assert result.exit_code == 0, result.output
    assert (out / "demo.png").stat().st_size > 1000
    runs = sorted(p.relative_to(out).as_posix() for p in out.rglob("metrics.json"))
    assert len(runs) == len(module.ARMS) * len(module.UNITS)
    manifest = read_manifest(out)
    assert manifest.kind == "demo" and "demo.png" in manifest.files and set(runs) <= set(manifest.files)

    # the README's command a second time: one line, exit 2, nothing touched
    before = sorted(p.relative_to(out).as_posix() for p in out.rglob("*"))
    again = CliRunner().invoke(module.demo, args)
    assert again.exit_code == 2 and "Traceback" not in again.output
    (line,) = again.stderr.strip().splitlines()
    assert line.startswith("Error: output directory") and "--force" in line
    assert sorted(p.relative_to(out).as_posix() for p in out.rglob("*")) == before

    forced = CliRunner().invoke(module.demo, [*args, "--force"])
    assert forced.exit_code == 0, forced.output


def test_ctrl_c_in_the_demo_is_one_line(tmp_path, monkeypatch):
    module = load_demo()

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(module, "visualize", interrupted)
    result = CliRunner().invoke(module.demo, ["--out", str(tmp_path / "d"), "--steps", "2", "--size", "32"])
    assert result.exit_code == 130 and result.stderr == "interrupted\n" and "Traceback" not in result.output
    assert list(tmp_path.iterdir()) == []
