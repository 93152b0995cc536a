"""The Ray runner against a real local Ray instance (one per test session: Ray starts slowly).

Ray workers are other processes: they do not see the backbones a test registers with monkeypatch, so the
sweeps pass :func:`register_test_backbones` as ``worker_setup`` (workers import it from this module, found
through the working directory Ray gives them).
"""

from __future__ import annotations

import functools
import json
import logging
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
import torch

from paramviz.backbones.base import Backbone
from paramviz.backbones.registry import BACKBONES, BackboneEntry
from paramviz.backbones.weights import resolve_weights
from paramviz.errors import ConfigError
from paramviz.registry import Entry
from paramviz.sweep.ray_runner import (
    RayOptions,
    execute_group,
    input_paths,
    localize,
    make_payload,
    materialize_inputs,
    read_inputs,
)
from paramviz.sweep.runner import run_sweep
from paramviz.tasks import TASKS
from tests.conftest import BASIC, TINY, TinyNet, tiny_factory

ROOT = Path(__file__).resolve().parents[2]
FILE_NET = "tiny_file_net"  # loads the weights file it is given
KILL_NET = "tiny_killing_net"  # kills its worker process mid-arm while kill tokens are left
SLOW_NET = "tiny_slow_net"  # sleeps in every forward pass


# --- backbones, registered in the driver (monkeypatch) and in the workers (worker_setup) ------------------------
def file_factory(weights: str = "pretrained", *, trust_checkpoint: bool = False) -> Backbone:
    net = TinyNet()
    source = resolve_weights(net, weights, name=FILE_NET, pretrained=lambda: ({}, "none"), trust=trust_checkpoint)
    return Backbone(net, name=FILE_NET, aliases={"stage1": "relu1"}, weights_source=source)


KILL_TOKENS = "PARAMVIZ_TEST_KILL_TOKENS"  # set by worker_setup in the workers only


class KillingNet(TinyNet):
    """From its third forward pass on, kills its own process once per kill token left in ``$KILL_TOKENS``.

    The folder is read at each pass (not kept): a worker keeps built backbones across tasks (and tests).
    """

    calls = 0

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.calls += 1
        tokens = os.environ.get(KILL_TOKENS)
        if tokens and self.calls >= 3 and take_token(tokens):
            os.kill(os.getpid(), signal.SIGKILL)
        return super().forward(x)


def take_token(folder: str) -> bool:
    """Atomically take one ``token-*`` file out of ``folder`` (False when none is left)."""
    for token in sorted(Path(folder).glob("token-*")):
        try:
            token.rename(token.with_name("taken-" + token.name))
        except FileNotFoundError:  # another process took it
            continue
        return True
    return False


def killing_factory(weights: str = "pretrained", *, trust_checkpoint: bool = False) -> Backbone:
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        net = KillingNet()
    return Backbone(net, name=KILL_NET, aliases={"stage1": "relu1"}, weights_source=weights)


SLOW = "PARAMVIZ_TEST_SLOW"  # seconds SLOW_NET sleeps in each forward pass; set by worker_setup in the workers


class SlowNet(TinyNet):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        time.sleep(float(os.environ.get(SLOW, 0)))
        return super().forward(x)


def slow_factory(weights: str = "pretrained", *, trust_checkpoint: bool = False) -> Backbone:
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        net = SlowNet()
    return Backbone(net, name=SLOW_NET, aliases={"stage1": "relu1"}, weights_source=weights)


FACTORIES = {TINY: tiny_factory, FILE_NET: file_factory, KILL_NET: killing_factory, SLOW_NET: slow_factory}


def register_test_backbones(tokens: str | None = None, slow: float = 0) -> None:
    """``worker_setup``: register this module's backbones in a Ray worker, with its kill tokens and slowness."""
    for name, factory in FACTORIES.items():
        BACKBONES._entries[name] = Entry(name, BackboneEntry(name, factory, "", "", "test"), "")
    for key, value in ((KILL_TOKENS, tokens), (SLOW, str(slow) if slow else None)):
        if value is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = value


@pytest.fixture
def registered(monkeypatch, tiny_registered):
    """The same backbones in this process (where KILL_NET never kills: no tokens here)."""
    monkeypatch.delenv(KILL_TOKENS, raising=False)
    monkeypatch.delenv(SLOW, raising=False)
    for name, factory in FACTORIES.items():
        monkeypatch.setitem(BACKBONES._entries, name, Entry(name, BackboneEntry(name, factory, "", "", "test"), ""))


@pytest.fixture(scope="session")
def ray_instance():
    ray = pytest.importorskip("ray", reason='the Ray runner tests need Ray: pip install -e ".[test]"')
    # "local": a new instance of our own, even if a cluster was started on this machine; one logical GPU (no
    # device behind it) lets the tests see how GPU fractions are reserved
    ray.init(
        address="local",
        num_cpus=2,
        num_gpus=1,
        include_dashboard=False,
        log_to_driver=False,
        logging_level=logging.WARNING,
    )
    yield ray
    ray.shutdown()


RAY = RayOptions(worker_setup=register_test_backbones)


def arms_json(out: Path) -> dict:
    return json.loads((out / "arms.json").read_text())


def metrics(out: Path, arm_id: str) -> dict:
    return json.loads((out / "arms" / arm_id / "metrics.json").read_text())


def snapshot(out: Path) -> dict[str, tuple[int, int]]:
    return {
        str(p.relative_to(out)): (p.stat().st_ino, p.stat().st_mtime_ns)
        for p in (out / "arms").rglob("*")
        if p.is_file()
    }


FILE_SWEEP = f"""
task = "visualize"
[base]
backbone = "{FILE_NET}"
weights = "weights/tiny.pt"
objectives = ["conv3:1"]
size = 24
steps = 4
transforms = "jitter:2"
device = "cpu"
[axes]
"param.name" = ["pixel", "fourier"]
seed = [0, 1]
"""


@pytest.fixture
def file_sweep(write_sweep, tmp_path, registered) -> Path:
    """The basic sweep on a backbone whose weights come from a file given by a relative path."""
    (tmp_path / "weights").mkdir()
    torch.manual_seed(3)
    torch.save(TinyNet().state_dict(), tmp_path / "weights" / "tiny.pt")
    return write_sweep(FILE_SWEEP)


# --- results -------------------------------------------------------------------------------------------------------
def record_resources(folder: str) -> None:
    """``worker_setup`` that writes what Ray reserved for the task and its torch threads into ``folder``."""
    import ray

    register_test_backbones()
    seen = {"resources": ray.get_runtime_context().get_assigned_resources(), "threads": torch.get_num_threads()}
    Path(folder, f"{os.getpid()}-{time.monotonic_ns()}.json").write_text(json.dumps(seen))


def test_ray_gives_the_arms_and_results_of_the_local_runner(ray_instance, file_sweep, tmp_path):
    local = run_sweep(file_sweep, tmp_path / "local", max_batch=2)
    events = []
    (tmp_path / "seen").mkdir()
    setup = functools.partial(record_resources, str(tmp_path / "seen"))
    options = RayOptions(cpus_per_arm=1, gpus_per_arm=0.5, worker_setup=setup)
    remote = run_sweep(
        file_sweep, tmp_path / "ray", max_batch=2, runner="ray", runner_options=options, on_progress=events.append
    )
    assert remote.groups == local.groups == 2 and remote.count("done") == 4
    # --cpus-per-arm/--gpus-per-arm are what Ray reserves for each task (the fixture's GPU is logical only)
    seen = [json.loads(p.read_text()) for p in (tmp_path / "seen").iterdir()]
    assert len(seen) == 2 and all(s == {"resources": {"CPU": 1.0, "GPU": 0.5}, "threads": 1} for s in seen)
    a, b = arms_json(tmp_path / "local"), arms_json(tmp_path / "ray")
    assert [(x["id"], x["status"], x["attempts"], x["batched_with"]) for x in b["arms"]] == [
        (x["id"], x["status"], x["attempts"], x["batched_with"]) for x in a["arms"]
    ]
    assert {k: v for k, v in b.items() if k != "arms"} == {k: v for k, v in a.items() if k != "arms"}
    weights = str(tmp_path / "weights" / "tiny.pt")
    for arm in a["arms"]:
        left, right = tmp_path / "local" / "arms" / arm["id"], tmp_path / "ray" / "arms" / arm["id"]
        assert sorted(p.name for p in right.iterdir()) == sorted(p.name for p in left.iterdir())
        # the config names the driver's weights file, not the worker's copy
        assert (right / "config.toml").read_text() == (left / "config.toml").read_text()
        assert weights in (right / "config.toml").read_text()
        m_local, m_ray = metrics(tmp_path / "local", arm["id"]), metrics(tmp_path / "ray", arm["id"])
        assert m_ray["backbone_weights"] == m_local["backbone_weights"] == f"file {weights}"
        assert m_ray["final_loss"] == pytest.approx(m_local["final_loss"], rel=1e-4, abs=1e-6)
        assert m_ray["batched_with"] == 2
        assert "paramviz-ray-inputs" not in (right / "metrics.json").read_text()
    # progress: both groups submitted (in flight), then the arms bar counts finished arms
    assert [e.in_flight for e in events if not e.finished][:2] == [2, 4]
    assert [e.done for e in events][-1] == 4 and events[-1].finished and events[-1].in_flight == 0


def test_an_arm_that_fails_by_itself_is_recorded_as_locally_and_not_retried(
    ray_instance, write_sweep, tiny_registered, tmp_path
):
    sweep = write_sweep(
        f"""
        task = "visualize"
        [base]
        backbone = "{TINY}"
        size = 24
        steps = 2
        device = "cpu"
        [axes]
        objectives = [["nolayer:1"], ["conv3:1"]]
        """
    )
    local = run_sweep(sweep, tmp_path / "local")
    remote = run_sweep(sweep, tmp_path / "ray", runner="ray", runner_options=RAY)
    assert [(s.status, s.error, s.attempts) for s in remote.states] == [
        (s.status, s.error, s.attempts) for s in local.states
    ]
    assert remote.states[0].status == "failed" and "nolayer" in remote.states[0].error
    assert remote.states[0].attempts == 1  # an error of the arm itself, not of Ray: no retry


def test_inputs_travel_with_the_task_not_by_path(file_sweep, tmp_path):
    """The worker's side, called directly: it needs the bytes, not the driver's file."""
    from paramviz.sweep.spec import expand, load_sweep

    task = TASKS.get("visualize")
    arms = expand(load_sweep(file_sweep))[:2]
    configs = [arm.config for arm in arms]
    weights = str(tmp_path / "weights" / "tiny.pt")
    assert input_paths(task, configs) == [weights]
    files = read_inputs(task, configs)
    payload = make_payload(task, configs, RayOptions(), {path: key for path, (key, _) in files.items()})
    local = run_sweep(file_sweep, tmp_path / "local", max_batch=2)
    Path(weights).unlink()  # a worker without a shared filesystem does not have it
    returned = execute_group(payload, *(files[item.path][1] for item in payload.inputs))
    assert [item[0] for item in returned] == ["done", "done"]
    for arm, (_, outputs, batched_with) in zip(arms, returned, strict=True):
        assert batched_with == 2 and {"image.png", "config.toml", "metrics.json"} <= set(outputs)
        expected = tmp_path / "local" / "arms" / arm.id
        assert outputs["config.toml"] == (expected / "config.toml").read_bytes()
        got = json.loads(outputs["metrics.json"])
        assert got["backbone_weights"] == f"file {weights}"
        assert got["final_loss"] == pytest.approx(metrics(tmp_path / "local", arm.id)["final_loss"], rel=1e-4)
    assert local.count("done") == 4


def test_style_inputs_are_sent_once_each_and_mapped_per_item(tmp_path):
    from paramviz.tasks.stylize import StyleConfig

    task = TASKS.get("style")
    for folder, data in (("a", b"content"), ("b", b"style b")):
        (tmp_path / folder).mkdir()
        (tmp_path / folder / "x.png").write_bytes(data)
    content, style_b = str(tmp_path / "a" / "x.png"), str(tmp_path / "b" / "x.png")
    config = StyleConfig(content=content, styles=(style_b, content, "sample:chelsea"), device="auto")
    assert input_paths(task, [config, config]) == [content, style_b]  # each file once; samples are no files
    files = read_inputs(task, [config])
    payload = make_payload(task, [config], RayOptions(), {p: k for p, (k, _) in files.items()})
    located = materialize_inputs(payload.inputs, [files[i.path][1] for i in payload.inputs], tmp_path / "worker")
    run, originals = localize(task, config, located, cpu_only=payload.cpu_only)
    assert Path(run.content).read_bytes() == b"content" and Path(run.styles[0]).read_bytes() == b"style b"
    assert run.styles[1] == run.content and run.styles[2] == "sample:chelsea"
    assert run.content != content and Path(run.content).suffix == ".png"  # same name stem, different folders
    assert run.device == "cpu"  # no GPU reserved: device auto runs on the CPU
    assert originals == {"content": content, "styles": config.styles, "device": "auto"}
    gpu = make_payload(task, [config], RayOptions(gpus_per_arm=0.25), {})
    assert localize(task, config, {}, cpu_only=gpu.cpu_only)[0].device == "auto"


# --- loss-free: dead workers, Ctrl-C ---------------------------------------------------------------------------
KILL_SWEEP = f"""
task = "visualize"
[base]
backbone = "{KILL_NET}"
objectives = ["conv3:1"]
size = 24
steps = 6
transforms = "none"
device = "cpu"
[axes]
seed = [0, 1]
"""


def kill_tokens(folder: Path, count: int) -> str:
    folder.mkdir()
    for i in range(count):
        (folder / f"token-{i}").touch()
    return str(folder)


def test_a_worker_killed_mid_arm_is_retried_and_the_sweep_completes(ray_instance, write_sweep, registered, tmp_path):
    sweep = write_sweep(KILL_SWEEP)
    tokens = kill_tokens(tmp_path / "tokens", 1)
    options = RayOptions(worker_setup=functools.partial(register_test_backbones, tokens))
    summary = run_sweep(sweep, tmp_path / "ray", runner="ray", runner_options=options)
    assert not list(Path(tokens).glob("token-*"))  # the worker did die once
    assert summary.count("done") == 2 and summary.groups == 1  # both seeds in one batch, run twice
    assert [(a["status"], a["attempts"], a["batched_with"]) for a in arms_json(tmp_path / "ray")["arms"]] == [
        ("done", 2, 2),
        ("done", 2, 2),
    ]
    run_sweep(sweep, tmp_path / "local")
    for arm in summary.states:
        assert metrics(tmp_path / "ray", arm.arm.id)["final_loss"] == pytest.approx(
            metrics(tmp_path / "local", arm.arm.id)["final_loss"], rel=1e-4, abs=1e-6
        )


def test_a_worker_that_keeps_dying_fails_its_arms_with_the_reason_and_a_rerun_resumes(
    ray_instance, write_sweep, registered, tmp_path
):
    sweep = write_sweep(KILL_SWEEP)
    setup = functools.partial(register_test_backbones, kill_tokens(tmp_path / "tokens", 1))
    out = tmp_path / "ray"
    summary = run_sweep(sweep, out, runner="ray", runner_options=RayOptions(max_retries=0, worker_setup=setup))
    assert summary.count("failed") == 2 and not list(out.glob("arms/*"))
    for entry in arms_json(out)["arms"]:
        assert entry["status"] == "failed" and entry["attempts"] == 1
        assert entry["error"].startswith("Ray could not run this arm (1 try: WorkerCrashedError: The worker died")
        assert "\n" not in entry["error"]
    again = run_sweep(sweep, out, runner="ray", runner_options=RayOptions(worker_setup=setup))  # no tokens left
    assert again.count("done") == 2 and [a["attempts"] for a in arms_json(out)["arms"]] == [2, 2]


SLOW_SWEEP = BASIC.replace(f'"{TINY}"', f'"{SLOW_NET}"')


def test_ctrl_c_cancels_the_rest_keeps_finished_arms_and_a_rerun_resumes(
    ray_instance, write_sweep, registered, tmp_path
):
    sweep = write_sweep(SLOW_SWEEP)
    out = tmp_path / "ray"
    slow = RayOptions(worker_setup=functools.partial(register_test_backbones, slow=0.2))  # some 4 s an arm
    started = time.monotonic()
    arm_seconds = []

    def interrupt_after_the_first_arm(event):
        if event.done >= 1:
            arm_seconds.append(time.monotonic() - started)
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        run_sweep(sweep, out, max_batch=1, runner="ray", runner_options=slow, on_progress=interrupt_after_the_first_arm)

    # cancelled: both CPUs are free well before the 2nd to 4th arm could have finished
    interrupted = time.monotonic()
    while ray_instance.available_resources().get("CPU", 0) < 2 and time.monotonic() - interrupted < 60:
        time.sleep(0.02)
    freed = time.monotonic() - interrupted
    assert freed < 0.5 * arm_seconds[0], (freed, arm_seconds)
    statuses = [a["status"] for a in arms_json(out)["arms"]]
    finished = sorted(p.parent.name for p in out.glob("arms/*/metrics.json"))
    assert statuses.count("done") == len(finished) >= 1 and "failed" not in statuses and "pending" in statuses
    before = snapshot(out)
    summary = run_sweep(sweep, out, max_batch=1, runner="ray", runner_options=RAY)
    assert summary.count("done") == 4 and sorted(summary.skipped) == finished
    assert not set(summary.ran) & set(finished)
    assert all(snapshot(out)[name] == value for name, value in before.items())
    print(f"arm: {arm_seconds[0]:.1f} s, CPUs free {freed:.2f} s after Ctrl-C")


# --- settings and errors ------------------------------------------------------------------------------------
def test_an_arm_that_fits_no_node_is_refused(ray_instance, basic_sweep, tmp_path):
    with pytest.raises(ConfigError, match=r"no node of the Ray cluster has the 8 CPUs .*2 CPUs/1 GPUs"):
        run_sweep(basic_sweep, tmp_path / "out", runner="ray", runner_options=RayOptions(cpus_per_arm=8))
    assert not list((tmp_path / "out").glob("arms/*"))


def test_cuda_arms_need_gpus_per_arm(basic_sweep, tmp_path):
    pytest.importorskip("ray")
    with pytest.raises(ConfigError, match="--gpus-per-arm"):
        run_sweep(basic_sweep, tmp_path / "out", device="cuda", runner="ray")
    cuda = basic_sweep.read_text().replace('device = "cpu"', 'device = "cuda"')
    basic_sweep.write_text(cuda)
    with pytest.raises(ConfigError, match=r"arm 0 \(.*\) has device 'cuda', but --gpus-per-arm is 0"):
        run_sweep(basic_sweep, tmp_path / "out", runner="ray")
    assert not (tmp_path / "out").exists()  # refused before the directory is made


@pytest.mark.parametrize(
    ("options", "match"),
    [
        ({"cpus_per_arm": 0}, "cpus_per_arm must be a number of CPUs above 0"),
        ({"gpus_per_arm": -1}, "gpus_per_arm must be 0 or a number"),
        ({"gpus_per_arm": 1.5}, "whole number of GPUs"),
        ({"max_retries": -1}, "max_retries"),
        ({"address": " "}, "address must be a Ray address"),
    ],
)
def test_bad_ray_options_are_named(options, match):
    with pytest.raises(ConfigError, match=match):
        RayOptions(**options)


def test_a_worker_setup_that_cannot_be_sent_is_refused(basic_sweep, tmp_path):
    import threading

    pytest.importorskip("ray")
    lock = threading.Lock()
    options = RayOptions(worker_setup=lambda: lock.acquire())  # a lock cannot be pickled
    with pytest.raises(ConfigError, match="cannot be sent to the Ray workers"):
        run_sweep(basic_sweep, tmp_path / "out", runner="ray", runner_options=options)
    assert not (tmp_path / "out").exists()


def test_local_only_arguments_are_refused_with_ray(basic_sweep, tmp_path):
    pytest.importorskip("ray")
    with pytest.raises(ConfigError, match="step callbacks"):
        run_sweep(basic_sweep, tmp_path / "out", runner="ray", step_callbacks=[print])
    with pytest.raises(ConfigError, match="takes no runner options"):
        run_sweep(basic_sweep, tmp_path / "out", runner_options=RAY)


def test_without_ray_the_ray_runner_says_how_to_install_it(basic_sweep, tmp_path, monkeypatch):
    from click.testing import CliRunner

    from paramviz.cli import main

    monkeypatch.setitem(sys.modules, "ray", None)  # import ray -> ImportError
    with pytest.raises(ConfigError, match=r'pip install "paramviz\[ray\]"'):
        run_sweep(basic_sweep, tmp_path / "out", runner="ray")
    result = CliRunner().invoke(
        main, ["sweep", "run", str(basic_sweep), "--out", str(tmp_path / "o"), "--runner", "ray"]
    )
    assert result.exit_code != 0 and 'pip install "paramviz[ray]"' in result.output
    assert "Traceback" not in result.output and len(result.output.strip().splitlines()) == 1
    assert not (tmp_path / "out").exists() and not (tmp_path / "o").exists()


NO_RAY_IMPORT = """
import sys
sys.path.insert(0, {root!r})
import paramviz, paramviz.sweep, paramviz.sweep.runner, paramviz.sweep.ray_runner, paramviz.cli, paramviz.cli.sweep
from paramviz.backbones.registry import BACKBONES, BackboneEntry
from paramviz.registry import Entry
from tests.conftest import TINY, tiny_factory
BACKBONES._entries[TINY] = Entry(TINY, BackboneEntry(TINY, tiny_factory, "", "", "t"), "")
summary = paramviz.sweep.run_sweep({sweep!r}, {out!r})
assert summary.count("done") == 4, summary
print("ray imported:", "ray" in sys.modules)
"""


def test_paramviz_and_the_local_runner_never_import_ray(basic_sweep, tmp_path):
    script = NO_RAY_IMPORT.format(root=str(ROOT), sweep=str(basic_sweep), out=str(tmp_path / "out"))
    done = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(script)], capture_output=True, text=True, cwd=ROOT, timeout=120
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip().splitlines()[-1] == "ray imported: False"


LITE0_SWEEP = """
task = "visualize"
[base]
backbone = "efficientnet_lite0"
objectives = ["stage3:0"]
size = 32
steps = 2
transforms = "none"
device = "cpu"
metrics.names = ["hf_energy"]
[axes]
seed = [0, 1]
"""


def test_the_cli_runs_a_real_backbone_on_ray_and_a_rerun_resumes(ray_instance, write_sweep, tmp_path):
    """No worker_setup: the workers import every registry backbone themselves (Lite0, bundled weights)."""
    from click.testing import CliRunner

    from paramviz.cli import main

    sweep, out = write_sweep(LITE0_SWEEP), tmp_path / "out"
    args = ["sweep", "run", str(sweep), "--out", str(out), "--runner", "ray", "--cpus-per-arm", "1", "-q"]
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 0, result.output
    assert "2 of 2 arms done (2 run now, 0 already done), 0 failed" in result.output
    for arm in arms_json(out)["arms"]:
        m = metrics(out, arm["id"])
        assert m["backbone"] == "efficientnet_lite0" and m["steps"] == 2 and "hf_energy" in m["metrics"]
    again = CliRunner().invoke(main, args)
    assert "2 of 2 arms done (0 run now, 2 already done)" in again.output


def test_images_inside_objective_specs_travel_with_the_task(tmp_path):
    from paramviz.sweep.ray_runner import input_paths, localize
    from paramviz.tasks import TASKS
    from paramviz.tasks.visualize import VisualizeConfig

    image = tmp_path / "target.png"
    image.write_bytes(b"png")
    config = VisualizeConfig(objectives=("conv3:1", f"0.5*input_diff:{image}"), device="cpu")
    task = TASKS.get("visualize")
    assert input_paths(task, [config]) == [str(image)]
    local, originals = localize(task, config, {str(image): "/worker/abc/input.png"}, cpu_only=True)
    assert local.objectives == ("conv3:1", "0.5*input_diff:/worker/abc/input.png")
    assert originals["objectives"] == config.objectives
