import importlib.util
import json
from pathlib import Path

import pytest
from click.testing import CliRunner

DEMO = Path(__file__).resolve().parents[1] / "examples" / "demo.py"


def load_demo():
    spec = importlib.util.spec_from_file_location("paramviz_demo", DEMO)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.slow
def test_offline_demo_runs_both_ablations_reports_them_and_resumes(tmp_path):
    module = load_demo()
    out = tmp_path / "demo"
    args = ["--out", str(out), "--steps", "2", "--size", "32", "-q"]
    result = CliRunner().invoke(module.demo, args)
    assert result.exit_code == 0, result.output
    for name in module.PARTS:
        arms = json.loads((out / name / "arms.json").read_text())
        assert arms["counts"] == {"pending": 0, "done": len(arms["arms"]), "failed": 0}
        assert len({a["axes"]["seed"] for a in arms["arms"]}) >= 2
        assert (out / name / "report.html").stat().st_size > 1000
    assert result.output.strip().endswith(str(out / "style" / "report.html"))
    again = CliRunner().invoke(module.demo, args)  # the README command run twice: resumes, redoes nothing
    assert again.exit_code == 0, again.output


def test_demo_refuses_a_directory_with_other_files(tmp_path):
    module = load_demo()
    (tmp_path / "notes.txt").write_text("mine")
    result = CliRunner().invoke(module.demo, ["--out", str(tmp_path), "--steps", "1", "--size", "32"])
    assert result.exit_code == 2 and "notes.txt" in result.output and "Traceback" not in result.output
    assert sorted(p.name for p in tmp_path.iterdir()) == ["notes.txt"]
