import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from paramviz.errors import OutputExistsError
from paramviz.io import is_temporary_name, read_manifest
from paramviz.sweep.runner import run_sweep, write_arm_files
from paramviz.sweep.spec import expand, load_sweep

ROOT = Path(__file__).resolve().parents[2]


def snapshot(out: Path) -> dict[str, tuple[int, int]]:
    """(inode, mtime) of every file under arms/: a finished arm must never be touched again."""
    return {
        str(p.relative_to(out)): (p.stat().st_ino, p.stat().st_mtime_ns)
        for p in (out / "arms").rglob("*")
        if p.is_file()
    }


def arms_json(out: Path) -> dict:
    return json.loads((out / "arms.json").read_text())


def test_sweep_writes_every_arm_and_a_rerun_redoes_nothing(basic_sweep, tmp_path):
    out = tmp_path / "results"
    summary = run_sweep(basic_sweep, out)
    assert summary.count("done") == 4 and len(summary.ran) == 4
    assert summary.groups == 1  # pixel/fourier x 2 seeds differ only in param and seed: one batch
    data = arms_json(out)
    assert data["task"] == "visualize" and data["axes"] == ["param.name", "seed"]
    assert {a["status"] for a in data["arms"]} == {"done"}
    assert (out / "sweep.toml").read_text() == basic_sweep.read_text()
    for arm in data["arms"]:
        folder = out / "arms" / arm["id"]
        files = sorted(p.name for p in folder.iterdir())
        assert files == [".paramviz.json", "config.toml", "image.png", "metrics.json"]
        assert f"arms/{arm['id']}/metrics.json" in read_manifest(out).files  # the sweep's manifest lists it
        metrics = json.loads((folder / "metrics.json").read_text())
        assert metrics["task"] == "visualize" and metrics["batched_with"] == 4
    before = snapshot(out)
    again = run_sweep(basic_sweep, out)
    assert again.ran == [] and len(again.skipped) == 4
    assert snapshot(out) == before


def test_batched_arms_give_the_results_of_arms_run_alone(basic_sweep, tmp_path):
    run_sweep(basic_sweep, tmp_path / "batched")
    alone = run_sweep(basic_sweep, tmp_path / "alone", max_batch=1)
    assert alone.groups == 4
    for arm in arms_json(tmp_path / "alone")["arms"]:
        a = json.loads((tmp_path / "alone" / "arms" / arm["id"] / "metrics.json").read_text())
        b = json.loads((tmp_path / "batched" / "arms" / arm["id"] / "metrics.json").read_text())
        assert a["batched_with"] == 1
        assert b["final_loss"] == pytest.approx(a["final_loss"], rel=1e-4, abs=1e-6)


def test_the_backbone_is_built_once_for_all_arms(basic_sweep, tmp_path, tiny_registered):
    run_sweep(basic_sweep, tmp_path / "out", max_batch=1)
    assert tiny_registered.built == 1


def test_a_failing_arm_is_recorded_and_the_sweep_goes_on(write_sweep, tiny_registered, tmp_path):
    path = write_sweep(
        """
        task = "visualize"
        [base]
        backbone = "tiny_sweep_net"
        size = 24
        steps = 2
        device = "cpu"
        [axes]
        objectives = [["nolayer:1"], ["conv3:1"]]
        """
    )
    out = tmp_path / "out"
    summary = run_sweep(path, out)
    failed, done = summary.states
    assert failed.status == "failed" and "nolayer" in failed.error and "\n" not in failed.error
    assert done.status == "done"
    entry = arms_json(out)["arms"][0]
    assert entry["status"] == "failed" and entry["attempts"] == 1
    assert not (out / "arms" / failed.arm.id).exists()
    again = run_sweep(path, out)  # failed arms are tried again, done ones are not
    assert again.ran == [failed.arm.id] and arms_json(out)["arms"][0]["attempts"] == 2


def test_ctrl_c_keeps_finished_arms_and_a_rerun_finishes(basic_sweep, tmp_path):
    out = tmp_path / "out"
    seen = []

    def interrupt_in_the_third_arm(record):
        seen.append(record.step)
        if len(seen) == 2 * 4 + 2:  # 4 steps per arm; two arms finished
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        run_sweep(basic_sweep, out, max_batch=1, step_callbacks=[interrupt_in_the_third_arm])
    statuses = [a["status"] for a in arms_json(out)["arms"]]
    assert statuses == ["done", "done", "pending", "pending"]
    before = snapshot(out)
    summary = run_sweep(basic_sweep, out, max_batch=1)
    assert len(summary.ran) == 2 and summary.count("done") == 4
    assert all(snapshot(out)[name] == value for name, value in before.items())


KILLED_RUN = """
import sys, time
sys.path.insert(0, {root!r})
import torch
from paramviz.backbones.base import Backbone
from paramviz.backbones.registry import BACKBONES, BackboneEntry
from paramviz.registry import Entry
from paramviz.sweep.runner import run_sweep, write_arm_files
from torch import nn

def factory(weights="pretrained", *, trust_checkpoint=False):
    torch.manual_seed(0)
    net = nn.Sequential(nn.Conv2d(3, 4, 3), nn.ReLU(), nn.Conv2d(4, 4, 3))
    return Backbone(net, name="tiny_sweep_net", aliases={{"conv3": "2"}})

entry = BackboneEntry("tiny_sweep_net", factory, "", "", "t")
BACKBONES._entries["tiny_sweep_net"] = Entry("tiny_sweep_net", entry, "")
run_sweep({sweep!r}, {out!r}, max_batch=1, step_callbacks=[lambda r: time.sleep(0.3)])
"""


def finished_arms(out: Path) -> list[str]:
    """The arms whose outputs were committed (an arm still being written sits in a temporary folder beside)."""
    return sorted(p.parent.name for p in out.glob("arms/*/metrics.json") if not is_temporary_name(p.parent.name))


def test_kill_9_mid_sweep_then_the_same_command_finishes_without_redoing(basic_sweep, tmp_path, tiny_registered):
    out = tmp_path / "out"
    script = tmp_path / "run.py"
    script.write_text(textwrap.dedent(KILLED_RUN.format(root=str(ROOT), sweep=str(basic_sweep), out=str(out))))
    process = subprocess.Popen([sys.executable, str(script)], env={**os.environ, "OMP_NUM_THREADS": "1"})
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and len(finished_arms(out)) < 1:
            time.sleep(0.05)
            assert process.poll() is None, "the sweep ended before it could be killed"
        os.kill(process.pid, signal.SIGKILL)
    finally:
        process.wait()
    finished = finished_arms(out)
    assert 1 <= len(finished) < 4
    before = snapshot(out)
    summary = run_sweep(basic_sweep, out, max_batch=1)
    assert summary.count("done") == 4 and sorted(summary.skipped) == finished
    assert not set(summary.ran) & set(finished)
    assert all(snapshot(out)[name] == value for name, value in before.items())
    assert not [p for p in (out / "arms").iterdir() if p.name.startswith(".")]  # no leftovers


def test_a_directory_of_another_sweep_or_of_other_files_is_refused(basic_sweep, write_sweep, tmp_path):
    out = tmp_path / "out"
    run_sweep(basic_sweep, out)
    other = write_sweep(basic_sweep.read_text().replace("steps = 4", "steps = 3"), name="other.toml")
    with pytest.raises(OutputExistsError, match="holds another sweep"):
        run_sweep(other, out)
    assert len(list(out.glob("arms/*/metrics.json"))) == 4  # nothing touched
    summary = run_sweep(other, out, force=True)
    assert summary.count("done") == 4 and {a.id for a in expand(load_sweep(other))} == {
        p.name for p in (out / "arms").iterdir()
    }
    foreign = tmp_path / "mine"
    foreign.mkdir()
    (foreign / "data.csv").write_text("keep me")
    with pytest.raises(OutputExistsError, match="not a sweep directory"):
        run_sweep(basic_sweep, foreign, force=True)
    assert (foreign / "data.csv").read_text() == "keep me" and sorted(os.listdir(foreign)) == ["data.csv"]


def test_a_real_sweep_gives_a_report_with_every_arm(basic_sweep, tmp_path):
    from paramviz.sweep.report import build_report

    out = tmp_path / "out"
    summary = run_sweep(basic_sweep, out)
    paths = build_report(out)
    rows = paths.metrics_csv.read_text().strip().splitlines()
    assert len(rows) == 1 + len(summary.states)
    html = paths.html.read_text()
    assert html.count("data:image/png;base64,") >= len(summary.states)
    summary = run_sweep(basic_sweep, out)  # the report's files do not stop a resume
    assert summary.ran == []


def test_a_zip_group_is_one_axis_in_arms_json(write_sweep, tiny_registered, tmp_path):
    path = write_sweep(
        """
        task = "visualize"
        [base]
        backbone = "tiny_sweep_net"
        objectives = ["conv3:1"]
        size = 24
        steps = 1
        [axes]
        seed = [0, 1]
        [[zip]]
        "param.name" = ["pixel", "fourier"]
        "param.decorrelate" = [false, true]
        """
    )
    run_sweep(path, tmp_path / "out")
    data = arms_json(tmp_path / "out")
    assert data["axes"] == ["seed", "param.name + param.decorrelate"]
    assert data["keys"] == ["seed", "param.name", "param.decorrelate"]
    first = data["arms"][0]
    assert first["axes"]["param.name + param.decorrelate"] == {"param.name": "pixel", "param.decorrelate": False}
    assert first["values"] == {"seed": 0, "param.name": "pixel", "param.decorrelate": False}


def test_write_arm_files_writes_an_arm_atomically_and_refuses_what_is_not_one(basic_sweep, tmp_path):
    arm = expand(load_sweep(basic_sweep))[0]
    out = tmp_path / "out"
    (out / "arms" / arm.id).mkdir(parents=True)
    (out / "arms" / arm.id / "image.png").write_bytes(b"leftover of a killed run")
    files = {"image.png": b"png", "steps/step_00002.png": b"snap", "metrics.json": b"{}"}
    target = write_arm_files(out, arm, files)
    written = {str(p.relative_to(target)): p.read_bytes() for p in target.rglob("*") if p.is_file()}
    assert {name: data for name, data in written.items() if name != ".paramviz.json"} == files
    assert read_manifest(target).files == tuple(sorted(files))
    for bad, match in (
        ({"image.png": b""}, "no metrics.json"),
        ({**files, "../escape.txt": b""}, "expected a relative path"),
        ({**files, "/etc/x": b""}, "expected a relative path"),
    ):
        with pytest.raises(ValueError, match=match):
            write_arm_files(out, arm, bad)
    assert (target / "image.png").read_bytes() == b"png"  # refused before anything is replaced
    assert not (tmp_path / "escape.txt").exists() and sorted(os.listdir(out / "arms")) == [arm.id]


def test_a_sweep_directory_with_a_foreign_file_is_refused_and_the_file_kept(basic_sweep, write_sweep, tmp_path):
    out = tmp_path / "out"
    run_sweep(basic_sweep, out)
    (out / "notes.txt").write_text("mine")
    other = write_sweep(basic_sweep.read_text().replace("steps = 4", "steps = 3"), name="other.toml")
    with pytest.raises(OutputExistsError, match=r"holds files a sweep did not write \(notes.txt\)"):
        run_sweep(other, out, force=True)
    assert (out / "notes.txt").read_text() == "mine" and len(list(out.glob("arms/*/metrics.json"))) == 4
