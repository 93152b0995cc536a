import importlib.util
from pathlib import Path

import pytest
from click.testing import CliRunner

DEMO = Path(__file__).resolve().parents[1] / "examples" / "demo.py"


@pytest.mark.slow
def test_offline_demo_writes_the_comparison_grid(tmp_path):
    spec = importlib.util.spec_from_file_location("paramviz_demo", DEMO)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    out = tmp_path / "demo"
    result = CliRunner().invoke(module.demo, ["--out", str(out), "--steps", "2", "--size", "32"])
    assert result.exit_code == 0, result.output
    assert (out / "demo.png").stat().st_size > 1000
    runs = sorted(p.relative_to(out).as_posix() for p in out.rglob("metrics.json"))
    assert len(runs) == len(module.ARMS) * len(module.UNITS)
