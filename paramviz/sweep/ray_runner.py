"""Run a sweep's arms on a Ray cluster: ``paramviz sweep run FILE --out DIR --runner ray`` (``docs/cluster.md``).

The driver (:func:`paramviz.sweep.runner.run_sweep`) is the same as for the local runner: it plans the same
groups of arms, writes ``arms.json`` and the finished arms into ``DIR``, and resumes the same way. This module
only executes the groups: one Ray task per group (a batch of arms the local runner would render together, or
one arm).

No shared filesystem is needed. A task gets the arms' configs and the bytes of every input file they name (the
task's :attr:`~paramviz.tasks.base.Task.path_fields`: weights files, content and style images); the worker
writes the inputs into a folder of its own, points the configs there, runs the group exactly as the local runner
does (:func:`~paramviz.sweep.runner.run_group`), writes each arm's outputs into a temporary
:class:`~paramviz.io.OutputDir` with the task's own ``write`` and returns them as ``{relative path: bytes}``
(or the arm's one-line error). The configs and ``metrics.json`` name the driver's paths, as with the local
runner. The driver writes the files with :func:`~paramviz.sweep.runner.write_arm_files`.

Loss-free: a task whose worker dies (killed, out of memory, its node lost) is submitted again by the driver, at
most :attr:`RayOptions.max_retries` times (Ray's own ``max_retries`` is 0, so every try is counted in the arms'
``attempts``); then its arms are recorded failed with Ray's reason and the sweep goes on. Ctrl-C cancels the
tasks that have not finished (``ray.cancel``); every arm written so far stays, the rest stay pending.

Ray is imported only when this runner is used (``pip install "paramviz[ray]"``).
"""

from __future__ import annotations

import atexit
import contextlib
import hashlib
import json
import logging
import math
import os
import shutil
import tempfile
from collections.abc import Callable, Container, Iterator, Mapping, Sequence
from dataclasses import dataclass, is_dataclass
from dataclasses import replace as dataclass_replace
from pathlib import Path
from typing import Any

import torch

from paramviz.config import ConfigBase
from paramviz.errors import ConfigError
from paramviz.io import OutputDir
from paramviz.objectives.spec import map_spec_image, spec_image
from paramviz.render import Callback
from paramviz.sweep.runner import (
    ArmFailed,
    ArmFiles,
    ArmState,
    GroupFinished,
    GroupStarted,
    one_line,
    run_group,
)
from paramviz.sweep.spec import Arm, is_path_value
from paramviz.tasks import TASKS, SharedWork, Task

INSTALL_HINT = 'pip install "paramviz[ray]"'
#: Devices an arm can name without this machine having them (the workers may).
DEVICE_TYPES = ("cpu", "cuda", "mps")
#: How much of a Ray error is kept in ``arms.json``.
MAX_REASON = 400


@dataclass(frozen=True)
class RayOptions:
    """Settings of the Ray runner.

    Attributes:
        address: The Ray cluster (``ray.init(address=...)``): ``None`` follows Ray's rules (``RAY_ADDRESS``,
            else a cluster started on this machine with ``ray start``, else a new local instance); ``"auto"``,
            ``"HOST:6379"``, ``"ray://HOST:10001"`` (Ray Client) or ``"local"``. When this process is already
            connected to Ray (``ray.init`` was called), that connection is used.
        cpus_per_arm: CPUs Ray reserves for each task (``num_cpus``); also the task's torch threads.
        gpus_per_arm: GPUs Ray reserves for each task (``num_gpus``); a fraction shares a GPU (0.25: four tasks
            per GPU). With 0, arms whose device is ``auto`` run on the CPU.
        max_retries: How often a task whose worker died is submitted again before its arms are recorded failed.
        worker_setup: Called in the worker before each task, e.g. to register custom backbones
            (:func:`~paramviz.backbones.registry.register_backbone`) that the workers do not import by
            themselves; it must be picklable (a module-level function) and may run several times.
    """

    address: str | None = None
    cpus_per_arm: float = 1
    gpus_per_arm: float = 0
    max_retries: int = 2
    worker_setup: Callable[[], None] | None = None

    def __post_init__(self) -> None:
        if self.address is not None and (not isinstance(self.address, str) or not self.address.strip()):
            raise ConfigError(
                f"address must be a Ray address such as 'auto' or 'HOST:6379', got {self.address!r}; leave it "
                "out to follow RAY_ADDRESS or start a local instance"
            )
        if not _is_number(self.cpus_per_arm) or self.cpus_per_arm <= 0:
            raise ConfigError(f"cpus_per_arm must be a number of CPUs above 0 (e.g. 1 or 4), got {self.cpus_per_arm!r}")
        if not _is_number(self.gpus_per_arm) or self.gpus_per_arm < 0:
            raise ConfigError(f"gpus_per_arm must be 0 or a number of GPUs (e.g. 0.25 or 1), got {self.gpus_per_arm!r}")
        if self.gpus_per_arm > 1 and self.gpus_per_arm != int(self.gpus_per_arm):
            raise ConfigError(
                f"gpus_per_arm above 1 must be a whole number of GPUs (Ray's rule), got {self.gpus_per_arm!r}; "
                "use e.g. 2, or a fraction up to 1 to share a GPU"
            )
        if isinstance(self.max_retries, bool) or not isinstance(self.max_retries, int) or self.max_retries < 0:
            raise ConfigError(f"max_retries must be a whole number >= 0, got {self.max_retries!r}")
        if self.worker_setup is not None and not callable(self.worker_setup):
            raise ConfigError(f"worker_setup must be a function taking no arguments, got {self.worker_setup!r}")


def _is_number(value: object) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def import_ray() -> Any:
    """The ``ray`` module.

    Raises:
        ConfigError: Ray is not installed (the message says how to install it).
    """
    try:
        import ray
    except ImportError:
        raise ConfigError(
            f"--runner ray needs Ray, which is not installed here; install it with {INSTALL_HINT}"
        ) from None
    return ray


def make_ray_executor(shared: SharedWork | None, step_callbacks: Sequence[Callback], options: Any) -> RayExecutor:
    """The ``ray`` entry of :data:`~paramviz.sweep.runner.RUNNERS`.

    Raises:
        ConfigError: Ray is not installed, options that are not :class:`RayOptions`, or local-only arguments.
    """
    if step_callbacks:
        raise ConfigError(
            "step callbacks run in this process, but the Ray runner's arms run in Ray workers that report only "
            "finished arms; drop step_callbacks (progress comes through on_progress)"
        )
    if shared is not None:
        raise ConfigError("shared work lives in this process; the Ray runner's workers build their own, drop shared")
    if options is None:
        options = RayOptions()
    elif isinstance(options, Mapping):
        options = RayOptions(**options)
    elif not isinstance(options, RayOptions):
        raise ConfigError(f"the Ray runner's options must be a RayOptions, got {type(options).__name__}")
    return RayExecutor(options)


# --- what travels to a worker ---------------------------------------------------------------------------------
@dataclass(frozen=True)
class InputFile:
    """An input file sent with a task.

    Attributes:
        path: The path as the configs name it (the driver's).
        key: The file's name on a worker: its content hash and suffix, so that the same file gets the same path
            in every task (and built work keyed by it is shared across a worker's tasks).
    """

    path: str
    key: str


@dataclass(frozen=True)
class GroupPayload:
    """One Ray task: a group of arms and what its worker needs (the inputs' bytes come as extra arguments).

    Attributes:
        task: The task name.
        configs: The arms' configs as the driver has them.
        inputs: The input files, in the order of the bytes arguments.
        threads: torch threads for the task.
        cpu_only: No GPU is reserved: configs with device ``auto`` run on the CPU.
        worker_setup: :attr:`RayOptions.worker_setup`.
    """

    task: str
    configs: tuple[ConfigBase, ...]
    inputs: tuple[InputFile, ...] = ()
    threads: int = 1
    cpu_only: bool = True
    worker_setup: Callable[[], None] | None = None


def input_paths(task: Task, configs: Sequence[ConfigBase]) -> list[str]:
    """The existing files the configs name in the task's path fields, each once, in order of appearance."""
    found: dict[str, None] = {}
    for config in configs:
        for name in task.path_fields:
            value = getattr(config, name, None)
            for item in value if isinstance(value, (list, tuple)) else (value,):
                if is_path_value(task, item) and Path(item).is_file():
                    found.setdefault(str(item), None)
        for name in task.spec_path_fields:  # images named inside objective specs
            for spec in getattr(config, name, None) or ():
                image = spec_image(spec) if isinstance(spec, str) else None
                if image is not None and is_path_value(task, image) and Path(image).is_file():
                    found.setdefault(image, None)
    return list(found)


def input_key(path: str, data: bytes) -> str:
    """The name of an input file on a worker: ``<sha256 prefix>/input<suffix>`` (the suffix picks the loader)."""
    suffix = Path(path).suffix.lower()
    if not (suffix[1:].isascii() and suffix[1:].isalnum()):
        suffix = ""
    return f"{hashlib.sha256(data).hexdigest()[:24]}/input{suffix}"


def make_payload(
    task: Task, configs: Sequence[ConfigBase], options: RayOptions, keys: Mapping[str, str]
) -> GroupPayload:
    """A group's payload; ``keys`` maps each input path that is sent to its :func:`input_key`."""
    inputs = tuple(InputFile(path, keys[path]) for path in input_paths(task, configs) if path in keys)
    return GroupPayload(
        task.name,
        tuple(configs),
        inputs,
        threads=max(1, math.floor(options.cpus_per_arm)),
        cpu_only=options.gpus_per_arm == 0,
        worker_setup=options.worker_setup,
    )


def read_inputs(task: Task, configs: Sequence[ConfigBase], skip: Container[str] = ()) -> dict[str, tuple[str, bytes]]:
    """``{path: (key, bytes)}`` of the input files the configs name (read from this machine's disk).

    Args:
        task: The task (its path fields).
        configs: The arms' configs.
        skip: Paths already read.
    """
    files: dict[str, tuple[str, bytes]] = {}
    for path in input_paths(task, configs):
        if path in skip:
            continue
        try:
            data = Path(path).read_bytes()
        except OSError:  # unreadable here: not sent, so the task reports it as it would locally
            continue
        files[path] = (input_key(path, data), data)
    return files


# --- the worker's side ---------------------------------------------------------------------------------------
_WORKER_SHARED: SharedWork | None = None
_INPUTS_DIR: Path | None = None


def _worker_shared() -> SharedWork:
    """Work shared by the tasks one worker process runs (backbones, style targets)."""
    global _WORKER_SHARED
    if _WORKER_SHARED is None:
        _WORKER_SHARED = SharedWork()
    return _WORKER_SHARED


def _inputs_dir() -> Path:
    """This process's folder of input files (removed when the process exits)."""
    global _INPUTS_DIR
    if _INPUTS_DIR is None or not _INPUTS_DIR.is_dir():
        _INPUTS_DIR = Path(tempfile.mkdtemp(prefix="paramviz-ray-inputs-"))
        atexit.register(shutil.rmtree, _INPUTS_DIR, True)
    return _INPUTS_DIR


def materialize_inputs(inputs: Sequence[InputFile], contents: Sequence[bytes], folder: Path) -> dict[str, str]:
    """Write the input files under ``folder`` (once per content); ``{driver path: worker path}``."""
    located: dict[str, str] = {}
    for item, data in zip(inputs, contents, strict=True):
        target = folder / item.key
        if not target.is_file():
            target.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(prefix=".input.", suffix=".tmp", dir=target.parent)
            with os.fdopen(fd, "wb") as handle:
                handle.write(data)
            os.replace(tmp, target)
        located[item.path] = str(target)
    return located


def localize(
    task: Task, config: ConfigBase, located: Mapping[str, str], cpu_only: bool
) -> tuple[ConfigBase, dict[str, Any]]:
    """The config to run on a worker, and the original values of the fields that were changed.

    Paths of sent inputs point to the worker's copies; with ``cpu_only``, device ``auto`` becomes ``cpu``.
    """
    changes: dict[str, Any] = {}
    for name in task.path_fields:
        value = getattr(config, name, None)
        if isinstance(value, (list, tuple)):
            mapped = type(value)(located.get(v, v) if isinstance(v, str) else v for v in value)
            if mapped != value:
                changes[name] = mapped
        elif isinstance(value, str) and value in located:
            changes[name] = located[value]
    for name in task.spec_path_fields:
        value = getattr(config, name, None)
        if isinstance(value, (list, tuple)):
            mapped = type(value)(
                map_spec_image(v, lambda p: located.get(p, p)) if isinstance(v, str) else v for v in value
            )
            if mapped != value:
                changes[name] = mapped
    if cpu_only and getattr(config, "device", None) in ("auto", "", None) and hasattr(config, "device"):
        changes["device"] = "cpu"
    originals = {name: getattr(config, name) for name in changes}
    return (config.replace(**changes) if changes else config), originals


def execute_group(payload: GroupPayload, *contents: bytes) -> list[tuple[Any, ...]]:
    """Run one group on a worker: ``[("done", {relative path: bytes}, batched_with) | ("failed", error)]``.

    This is the body of the Ray task (it needs no Ray itself, so it can also be called directly).
    """
    torch.set_num_threads(payload.threads)
    try:
        if payload.worker_setup is not None:
            payload.worker_setup()
        task = TASKS.get(payload.task)
        located = materialize_inputs(payload.inputs, contents, _inputs_dir())
        localized = [localize(task, config, located, payload.cpu_only) for config in payload.configs]
        outcomes = run_group(task, [run for run, _ in localized], _worker_shared())
    except Exception as exc:  # noqa: BLE001 - reported as every arm's error, like a failing arm locally
        return [("failed", one_line(exc))] * len(payload.configs)
    back = {worker: driver for driver, worker in located.items()}
    return [_pack(task, outcome, originals, back) for outcome, (_, originals) in zip(outcomes, localized, strict=True)]


def _pack(task: Task, outcome: Any, originals: Mapping[str, Any], back: Mapping[str, str]) -> tuple[Any, ...]:
    """A finished arm's files (its config with the driver's values again), or its error."""
    if isinstance(outcome, BaseException):
        return ("failed", one_line(outcome))
    try:
        if originals:
            config = outcome.config.replace(**originals)
            if is_dataclass(outcome):
                outcome = dataclass_replace(outcome, config=config)
            else:
                outcome.config = config
        with tempfile.TemporaryDirectory(prefix="paramviz-ray-arm-") as tmp:
            root = Path(tmp) / "arm"
            with OutputDir(root) as out:
                task.write(outcome, out)
            files = {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}
    except Exception as exc:  # noqa: BLE001 - a failing write fails this arm only, as locally
        return ("failed", one_line(exc))
    return ("done", _driver_paths(files, back), int(getattr(outcome, "batched_with", 1)))


def _driver_paths(files: dict[str, bytes], back: Mapping[str, str]) -> dict[str, bytes]:
    """``files`` with the worker's input paths in JSON files (``metrics.json``) replaced by the driver's."""
    if not back:
        return files
    pairs = [(json.dumps(w)[1:-1].encode(), json.dumps(d)[1:-1].encode()) for w, d in back.items()]
    fixed = {}
    for name, data in files.items():
        if name.endswith(".json"):
            for worker, driver in pairs:
                data = data.replace(worker, driver)
        fixed[name] = data
    return fixed


# --- the driver's side ---------------------------------------------------------------------------------------
class RayExecutor:
    """Run a sweep's groups as Ray tasks (see the module docstring).

    Args:
        options: Where and with which resources the tasks run.
    """

    remote = True

    def __init__(self, options: RayOptions) -> None:
        self.options = options
        self.ray = import_ray()
        if options.worker_setup is not None:
            try:
                self.ray.cloudpickle.dumps(options.worker_setup)
            except Exception as exc:  # noqa: BLE001 - whatever pickling raises, the fix is the same
                raise ConfigError(
                    f"worker_setup {options.worker_setup!r} cannot be sent to the Ray workers ({one_line(exc)}); "
                    "use a function defined at the top level of a module the workers can import"
                ) from None

    def check_device(self, device: str) -> None:
        """Check the device's name only: the workers, not this machine, must have it."""
        _check_device_name(device)
        self._check_gpu(device, f"--device {device}")

    def check(self, task: Task, arms: Sequence[Arm]) -> None:
        for arm in arms:
            device = getattr(arm.config, "device", None)
            if isinstance(device, str):
                _check_device_name(device)
                self._check_gpu(device, f"arm {arm.index} ({arm.label() or arm.id}) has device {device!r}")

    def _check_gpu(self, device: str, what: str) -> None:
        if device.startswith("cuda") and self.options.gpus_per_arm == 0:
            raise ConfigError(
                f"{what}, but --gpus-per-arm is 0 (the default): Ray reserves no GPU for the arms; pass "
                "--gpus-per-arm, e.g. 1, or 0.25 to run four arms per GPU"
            )

    def connect(self) -> Any:
        """Connect to Ray (unless this process already is) and check that an arm fits on some node.

        Raises:
            ConfigError: No cluster at the address, or no node has the CPUs and GPUs one arm asks for.
        """
        ray = self.ray
        if not ray.is_initialized():
            where = self.options.address or os.environ.get("RAY_ADDRESS") or "a local instance"
            try:
                ray.init(address=self.options.address, logging_level=logging.WARNING)
            except (ConnectionError, ValueError, RuntimeError, TimeoutError) as exc:
                raise ConfigError(
                    f"cannot connect to the Ray cluster at {where!r}: {one_line(exc)}; start one with `ray start "
                    "--head`, or leave --address and RAY_ADDRESS out for a local instance (a cluster with token "
                    "authentication also needs RAY_AUTH_MODE=token and its token here: docs/cluster.md)"
                ) from None
        self._check_resources()
        return ray

    def _check_resources(self) -> None:
        cpus, gpus = self.options.cpus_per_arm, self.options.gpus_per_arm
        nodes = [n.get("Resources", {}) for n in self.ray.nodes() if n.get("Alive", True)]
        if any(n.get("CPU", 0) >= cpus and n.get("GPU", 0) >= gpus for n in nodes):
            return
        shapes = ", ".join(f"{n.get('CPU', 0):g} CPUs/{n.get('GPU', 0):g} GPUs" for n in nodes[:5]) or "none"
        raise ConfigError(
            f"no node of the Ray cluster has the {cpus:g} CPUs and {gpus:g} GPUs one arm asks for (nodes: {shapes}); "
            "lower --cpus-per-arm/--gpus-per-arm or add such a node"
        )

    def run(self, task: Task, groups: Sequence[Sequence[ArmState]]) -> Iterator[GroupStarted | GroupFinished]:
        """Submit every group, then yield each as it finishes; closing the iterator cancels the rest."""
        if not groups:
            return
        ray = self.connect()
        remote = ray.remote(execute_group)
        resources = {"num_cpus": self.options.cpus_per_arm, "num_gpus": self.options.gpus_per_arm, "max_retries": 0}
        sent: dict[str, tuple[str, Any]] = {}  # input path -> (key, object ref): each file is put once
        pending: dict[Any, tuple[Sequence[ArmState], GroupPayload, list[Any], int]] = {}

        def submit(group: Sequence[ArmState], payload: GroupPayload, refs: list[Any], tries: int) -> None:
            name = f"paramviz {task.name} arm {group[0].arm.id}" + (f" +{len(group) - 1}" if len(group) > 1 else "")
            ref = remote.options(name=name, **resources).remote(payload, *refs)
            pending[ref] = (group, payload, refs, tries)

        try:
            for group in groups:
                configs = [s.arm.config for s in group]
                for path, (key, data) in read_inputs(task, configs, skip=sent).items():
                    sent[path] = (key, ray.put(data))
                payload = make_payload(task, configs, self.options, {path: key for path, (key, _) in sent.items()})
                submit(group, payload, [sent[item.path][1] for item in payload.inputs], 1)
                yield GroupStarted(group)
            while pending:
                ready, _ = ray.wait(list(pending), num_returns=1)
                group, payload, refs, tries = pending.pop(ready[0])
                try:
                    returned = ray.get(ready[0])
                except ray.exceptions.RayError as exc:
                    if tries <= self.options.max_retries:
                        submit(group, payload, refs, tries + 1)
                        continue
                    reason = one_line(exc)[:MAX_REASON]
                    counted = "1 try" if tries == 1 else f"{tries} tries, the last"
                    failure = ArmFailed(f"Ray could not run this arm ({counted}: {reason})")
                    yield GroupFinished(group, [failure] * len(group), tries)
                    continue
                yield GroupFinished(group, [_outcome(item) for item in returned], tries)
        finally:
            for ref in pending:
                with contextlib.suppress(Exception):  # finished meanwhile, or the cluster is gone
                    ray.cancel(ref)


def _outcome(item: Sequence[Any]) -> ArmFiles | ArmFailed:
    if item[0] == "done":
        return ArmFiles(item[1], item[2])
    return ArmFailed(item[1])


def _check_device_name(device: str) -> None:
    if device in ("", "auto"):
        return
    try:
        kind = torch.device(device).type
    except (RuntimeError, TypeError):
        raise ConfigError(f"unknown device {device!r}; expected 'auto', 'cpu', 'cuda' or 'cuda:N'") from None
    if kind not in DEVICE_TYPES:
        raise ConfigError(f"device {device!r} cannot run paramviz; expected 'auto', 'cpu', 'cuda', 'cuda:N' or 'mps'")
