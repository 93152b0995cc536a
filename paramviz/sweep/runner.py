"""Run a sweep's arms into a results folder, loss-free and resumable.

Layout of ``DIR``::

    DIR/sweep.toml          the sweep file as run
    DIR/arms.json           one entry per arm: id, axis values, status done/failed/pending, error (a zip
                            group is one axis: its value is the table of its keys' values)
    DIR/arms/<id>/          image.png, config.toml, metrics.json, as a single run writes them

An arm is written atomically (:class:`~paramviz.io.OutputDir`) and is done when its ``metrics.json`` exists;
``arms.json`` is replaced atomically after every arm. Killing a sweep (Ctrl-C or ``kill -9``) and running the
same command again runs only the arms that are not done; finished arms are neither redone nor touched. A
failing arm is recorded with its error and the sweep goes on (it is tried again by the next run).

Work is shared: backbones and style targets are built once for all arms that use them
(:class:`~paramviz.tasks.base.SharedWork`), arms that share them run one after the other, and arms that the
task can batch (feature visualizations that differ only in parameterization and seed) run as one
optimization, each with its own parameterization.

One driver, pluggable execution: :func:`run_sweep` prepares the directory, reads and writes ``arms.json``,
reports progress and writes finished arms; *how* the planned groups of arms run is an :class:`Executor` from
:data:`RUNNERS`: ``local`` (:class:`LocalExecutor`, in this process, one group after the other) or ``ray``
(:class:`paramviz.sweep.ray_runner.RayExecutor`, one Ray task per group, ``docs/cluster.md``). Both get the
same groups from :func:`plan_groups`, so the arm ids, ``arms.json`` and the results are the same.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any, Protocol

from paramviz.device import resolve_device
from paramviz.errors import ConfigError, OutputExistsError
from paramviz.io import MANIFEST, OutputDir, add_to_manifest, is_temporary_name, prepare_output_dir, write_text_atomic
from paramviz.registry import Registry
from paramviz.render import Callback
from paramviz.sweep.spec import Arm, SweepSpec, expand, load_sweep
from paramviz.tasks import TASKS, SharedWork, Task

SWEEP_FILE = "sweep.toml"
ARMS_FILE = "arms.json"
ARMS_DIR = "arms"
DONE_FILE = "metrics.json"
#: What a sweep directory may hold besides the files above: the report's outputs.
REPORT_ENTRIES = ("metrics.csv", "report.html", "plots")
STATUSES = ("pending", "done", "failed")

#: Default number of arms rendered in one optimization when the task can batch them.
DEFAULT_MAX_BATCH = 8


@dataclass
class ArmState:
    """An arm's entry in ``arms.json``."""

    arm: Arm
    status: str = "pending"
    error: str | None = None
    attempts: int = 0
    batched_with: int = 1

    def to_json(self, spec: SweepSpec) -> dict[str, Any]:
        return {
            "id": self.arm.id,
            "index": self.arm.index,
            "axes": spec.grouped(self.arm.axes),
            "values": self.arm.axes,
            "status": self.status,
            "error": self.error,
            "attempts": self.attempts,
            "batched_with": self.batched_with,
        }


@dataclass
class SweepEvent:
    """What a sweep progress callback sees: arms done, failed and to do, and the arm(s) starting now.

    Attributes:
        done: Arms done (found done or finished now).
        failed: Arms that failed.
        total: All arms of the sweep.
        current: The arm(s) starting now (the local runner) or just submitted (a remote runner).
        finished: The last event of the call.
        in_flight: Arms handed to a remote runner (Ray) that have not finished: queued or running there. The
            local runner runs ``current`` in this process and reports 0.
    """

    done: int
    failed: int
    total: int
    current: Sequence[Arm] = ()
    finished: bool = False
    in_flight: int = 0


SweepCallback = Callable[[SweepEvent], None]


@dataclass
class SweepSummary:
    """The outcome of :func:`run_sweep`.

    Attributes:
        out: The sweep directory.
        states: Every arm's state, in grid order.
        ran: Ids of the arms run by this call (not those found done).
        skipped: Ids of the arms that were already done.
        groups: How many optimizations this call ran (a batch of arms counts once).
    """

    out: Path
    states: list[ArmState]
    ran: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    groups: int = 0

    def count(self, status: str) -> int:
        """Number of arms with ``status``."""
        return sum(s.status == status for s in self.states)


def run_sweep(
    spec: SweepSpec | str | Path,
    out: str | Path,
    *,
    force: bool = False,
    device: str | None = None,
    max_batch: int = DEFAULT_MAX_BATCH,
    on_progress: SweepCallback | None = None,
    step_callbacks: Iterable[Callback] = (),
    shared: SharedWork | None = None,
    runner: str = "local",
    runner_options: Any = None,
) -> SweepSummary:
    """Run every arm of a sweep that is not done yet into ``out``.

    Args:
        spec: A parsed sweep, or the path of a sweep file.
        out: The sweep directory (created; an existing one of the same sweep is resumed).
        force: Replace a directory that holds another sweep (only the files a sweep writes there).
        device: Run every arm on this device (not part of the arms' ids).
        max_batch: Most arms rendered in one optimization (1: every arm alone).
        on_progress: Called when a group of arms starts (or is submitted), after each group and once at the end.
        step_callbacks: Render callbacks for the steps of the current arm(s) (local runner only).
        shared: Work shared across arms (a fresh one by default; local runner only).
        runner: Where the arms run: a name of :data:`RUNNERS` (``"local"``: this process; ``"ray"``: a Ray
            cluster, see ``docs/cluster.md``).
        runner_options: The runner's options (``"ray"``: a :class:`~paramviz.sweep.ray_runner.RayOptions`;
            ``None``: its defaults).

    Raises:
        ConfigError: An invalid sweep or runner setting (before any arm runs).
        OutputExistsError: ``out`` holds something else than this sweep.
        KeyboardInterrupt: Interrupted; every finished arm is written, the rest stay pending.
    """
    if not isinstance(spec, SweepSpec):
        spec = load_sweep(spec)
    if isinstance(max_batch, bool) or not isinstance(max_batch, int) or max_batch < 1:
        raise ConfigError(f"max_batch must be a positive whole number, got {max_batch!r}")
    make_executor = RUNNERS.get(runner)
    executor = make_executor(shared, list(step_callbacks), runner_options)
    arms = expand(spec)
    if device is not None:
        executor.check_device(device)
        arms = [Arm(a.id, a.index, a.axes, a.config.replace(device=device)) for a in arms]
    task = TASKS.get(spec.task)
    executor.check(task, arms)
    out = prepare_sweep_dir(spec, out, force=force)
    states = [ArmState(arm) for arm in arms]
    previous = _read_states(out)
    for state in states:
        old = previous.get(state.arm.id, {})
        state.attempts = int(old.get("attempts", 0) or 0)
        if arm_done(out, state.arm.id):
            state.status, state.batched_with = "done", int(old.get("batched_with", 1) or 1)
        elif old.get("status") == "failed":
            state.status, state.error = "failed", old.get("error")
    summary = SweepSummary(out, states, skipped=[s.arm.id for s in states if s.status == "done"])
    write_arms_json(out, spec, states)
    todo = [s for s in states if s.status != "done"]
    in_flight = 0

    def report(current: Sequence[Arm] = (), finished: bool = False) -> None:
        if on_progress is not None:
            on_progress(
                SweepEvent(
                    summary.count("done"),
                    summary.count("failed"),
                    len(states),
                    tuple(current),
                    finished,
                    in_flight if executor.remote else 0,
                )
            )

    updates = executor.run(task, plan_groups(task, todo, max_batch))
    try:
        for update in updates:
            if isinstance(update, GroupStarted):
                summary.groups += 1
                in_flight += len(update.group)
                report([s.arm for s in update.group])
                continue
            in_flight -= len(update.group)
            for state, outcome in zip(update.group, update.outcomes, strict=True):
                _record(out, task, state, outcome, update.tries)
                summary.ran.append(state.arm.id)
                write_arms_json(out, spec, states)
            report()
    finally:
        close = getattr(updates, "close", None)
        if close is not None:
            close()  # a remote runner cancels what is still queued or running
    report(finished=True)
    return summary


def _record(out: Path, task: Task, state: ArmState, outcome: Any, tries: int) -> None:
    """Write a finished arm (a task result or :class:`ArmFiles`) or record its failure in ``state``."""
    state.attempts += tries
    if isinstance(outcome, ArmFiles):
        try:
            write_arm_files(out, state.arm, outcome.files, kind=task.name)
        except ValueError as exc:  # a runner that returned no complete arm
            outcome = exc
    elif not isinstance(outcome, BaseException):
        write_arm(out, state.arm, task, outcome)
    if isinstance(outcome, BaseException):
        state.status, state.error = "failed", one_line(outcome)
        return
    state.status, state.error = "done", None
    state.batched_with = int(getattr(outcome, "batched_with", 1))


# --- execution: how the planned groups run ----------------------------------------------------------------
@dataclass(frozen=True)
class ArmFiles:
    """An arm's outputs as files, as a remote worker returns them.

    Attributes:
        files: ``{relative path: bytes}``, e.g. ``image.png``, ``config.toml``, ``metrics.json``, ``steps/...``.
        batched_with: How many arms shared the optimization.
    """

    files: Mapping[str, bytes]
    batched_with: int = 1


class ArmFailed(Exception):  # noqa: N818 - an outcome, not an error of the driver
    """An arm's failure as the executor that ran it reports it (already one line; recorded as it is)."""


@dataclass(frozen=True)
class GroupStarted:
    """A group of arms starts (local) or was submitted (remote)."""

    group: Sequence[ArmState]


@dataclass(frozen=True)
class GroupFinished:
    """A group of arms finished: one outcome per arm, each a task result, :class:`ArmFiles` or an exception.

    Attributes:
        group: The arms, in the order of ``outcomes``.
        outcomes: What each arm gave.
        tries: How often the group was run (a remote runner retries a group whose worker died).
    """

    group: Sequence[ArmState]
    outcomes: Sequence[Any]
    tries: int = 1


class Executor(Protocol):
    """How the planned groups of a sweep run (see :data:`RUNNERS`).

    Attributes:
        remote: Whether the arms run outside this process (no step callbacks; progress counts arms in flight).
    """

    remote: bool

    def check_device(self, device: str) -> None:
        """Raise :class:`ConfigError` for a ``--device`` this executor cannot run arms on."""

    def check(self, task: Task, arms: Sequence[Arm]) -> None:
        """Raise :class:`ConfigError` for arms this executor cannot run, before the directory is touched."""

    def run(self, task: Task, groups: Sequence[Sequence[ArmState]]) -> Iterator[GroupStarted | GroupFinished]:
        """Run the groups; yield :class:`GroupStarted` and, as each one ends, :class:`GroupFinished`.

        The driver closes the iterator when it stops early (Ctrl-C): a remote executor then cancels the groups
        that have not finished.
        """
        ...


class LocalExecutor:
    """Run the groups in this process, one after the other, sharing built work across them.

    Args:
        shared: Work shared across arms (a fresh :class:`SharedWork` by default).
        step_callbacks: Render callbacks for the steps of the running arm(s).
    """

    remote = False

    def __init__(self, shared: SharedWork | None = None, step_callbacks: Iterable[Callback] = ()) -> None:
        self.shared = shared if shared is not None else SharedWork()
        self.step_callbacks = list(step_callbacks)

    def check_device(self, device: str) -> None:
        resolve_device(device)

    def check(self, task: Task, arms: Sequence[Arm]) -> None:
        return None

    def run(self, task: Task, groups: Sequence[Sequence[ArmState]]) -> Iterator[GroupStarted | GroupFinished]:
        for group in groups:
            yield GroupStarted(group)
            configs = [s.arm.config for s in group]
            yield GroupFinished(group, run_group(task, configs, self.shared, self.step_callbacks))


def _local_executor(shared: SharedWork | None, step_callbacks: list[Callback], options: Any) -> LocalExecutor:
    if options is not None:
        raise ConfigError(f"the local runner takes no runner options, got {options!r}; use runner='ray' for them")
    return LocalExecutor(shared, step_callbacks)


def _ray_executor(shared: SharedWork | None, step_callbacks: list[Callback], options: Any) -> Executor:
    from paramviz.sweep.ray_runner import make_ray_executor  # imports ray only when it is used

    return make_ray_executor(shared, step_callbacks, options)


#: Sweep runners: ``factory(shared, step_callbacks, options) -> Executor``.
RUNNERS: Registry[Callable[[SharedWork | None, list[Callback], Any], Executor]] = Registry(
    "sweep runner", "choices come from paramviz.sweep.runner.RUNNERS"
)
RUNNERS.register("local", _local_executor, description="in this process, one group of arms after the other")
RUNNERS.register(
    "ray", _ray_executor, description="one Ray task per group of arms, on a Ray cluster (pip install 'paramviz[ray]')"
)


def plan_groups(task: Task, todo: Sequence[ArmState], max_batch: int) -> list[list[ArmState]]:
    """The order and batching of the arms to run.

    Arms the task can batch together (same :attr:`Task.batch_key`) form groups of at most ``max_batch``;
    groups that share work (same :attr:`Task.share_key`) run one after the other, in grid order otherwise.
    """
    batches: dict[object, list[list[ArmState]]] = {}
    order: list[tuple[object, object]] = []
    for state in todo:
        key = task.batch_key(state.arm.config) if task.batch_key is not None and max_batch > 1 else None
        if key is None:
            order.append((None, [[state]]))
            continue
        chunks = batches.setdefault(key, [])
        if not chunks or len(chunks[-1]) >= max_batch:
            chunks.append([])
            order.append((key, len(chunks) - 1))
        chunks[-1].append(state)
    groups = [item[0] if k is None else batches[k][item] for k, item in order]
    if task.share_key is None:
        return groups
    first_seen: dict[str, int] = {}
    keyed = []
    for position, group in enumerate(groups):
        share = task.share_key(group[0].arm.config)
        first_seen.setdefault(share, position)
        keyed.append((first_seen[share], position, group))
    return [group for _, _, group in sorted(keyed, key=lambda item: (item[0], item[1]))]


def run_group(
    task: Task, configs: Sequence[Any], shared: SharedWork | None, callbacks: Sequence[Callback] = ()
) -> list[Any]:
    """Run a planned group: each config's result, or the exception that failed it.

    A group of several configs runs as one optimization (:attr:`Task.run_batch`); a failed batch is retried
    config by config, so that one bad arm fails alone.
    """
    callbacks = list(callbacks)
    if len(configs) > 1 and task.run_batch is not None:
        try:
            return list(task.run_batch(configs, callbacks, shared=shared))
        except Exception:  # noqa: BLE001 - find out which arm fails by running them alone
            pass
    outcomes: list[Any] = []
    for config in configs:
        try:
            outcomes.append(task.run(config, callbacks, shared=shared))
        except Exception as exc:  # noqa: BLE001 - one failing arm must not stop the sweep
            outcomes.append(exc)
    return outcomes


def one_line(exc: BaseException) -> str:
    """An arm's error for ``arms.json``: one line, with the exception type unless it is a user error."""
    text = " ".join(str(exc).split()) or type(exc).__name__
    return text if isinstance(exc, (ConfigError, OutputExistsError, ArmFailed)) else f"{type(exc).__name__}: {text}"


def arm_done(out: Path, arm_id: str) -> bool:
    """Whether the arm's outputs are complete (its ``metrics.json`` exists)."""
    return (out / ARMS_DIR / arm_id / DONE_FILE).is_file()


def write_arm(out: Path, arm: Arm, task: Task, result: Any) -> Path:
    """Write an arm's outputs atomically into ``out/arms/<id>``."""
    target = out / ARMS_DIR / arm.id
    if target.exists():  # a leftover without metrics.json (never a finished arm): ours to replace
        shutil.rmtree(target)
    with OutputDir(target, kind=task.name, record_in=out) as arm_out:
        task.write(result, arm_out)
    return target


def write_arm_files(out: Path, arm: Arm, files: Mapping[str, bytes], kind: str = "arm") -> Path:
    """Write an arm's outputs given as ``{relative path: bytes}`` atomically into ``out/arms/<id>``.

    A manifest among the files (a worker's own) is left out: the arm's folder gets its own, listed in the
    sweep's (``kind`` is the task).

    Raises:
        ValueError: No ``metrics.json`` among the files (the arm would not count as done), or a path that is
            absolute or leaves the arm's folder.
    """
    if DONE_FILE not in files:
        raise ValueError(f"the runner returned no {DONE_FILE} for arm {arm.id} (files: {', '.join(sorted(files))})")
    names = []
    for name in files:
        if name == MANIFEST:
            continue
        rel = PurePosixPath(name)
        if not rel.parts or rel.is_absolute() or ".." in rel.parts:
            raise ValueError(f"the runner returned the file {name!r} for arm {arm.id}; expected a relative path")
        names.append((name, str(rel)))
    target = out / ARMS_DIR / arm.id
    if target.exists():  # a leftover without metrics.json (never a finished arm): ours to replace
        shutil.rmtree(target)
    with OutputDir(target, kind=kind, record_in=out) as arm_out:
        for name, rel in names:
            arm_out.path(rel).write_bytes(files[name])
    return target


def prepare_sweep_dir(spec: SweepSpec, out: str | Path, *, force: bool = False) -> Path:
    """Create the sweep directory, or check that an existing one holds this sweep (then it is resumed).

    The directory is paramviz's (its manifest lists every file a sweep and its report wrote), so ``force``
    replaces another sweep there without touching anything else.

    Raises:
        OutputExistsError: ``out`` is a file, holds files that are not a sweep's, or holds another sweep and
            ``force`` is not given.
    """
    if str(out).strip() == "":
        raise ConfigError("the sweep directory is empty (''); give a directory path such as --out out/sweep")
    out = Path(out).expanduser().resolve()
    if out.exists() and not out.is_dir():
        raise OutputExistsError(f"sweep directory {str(out)!r} exists and is a file; choose a directory path")
    if out.is_dir() and any(out.iterdir()):
        known = (SWEEP_FILE, ARMS_FILE, ARMS_DIR, MANIFEST, *REPORT_ENTRIES)
        foreign = [p.name for p in out.iterdir() if p.name not in known and not is_temporary_name(p.name)]
        if foreign or not (out / ARMS_FILE).is_file():
            shown = ", ".join(sorted(foreign)[:5])
            what = (
                f"holds files a sweep did not write ({shown})"
                if (out / ARMS_FILE).is_file()
                else f"is not empty and is not a sweep directory ({shown or 'no arms.json'})"
            )
            raise OutputExistsError(
                f"{str(out)!r} {what}; paramviz only resumes or replaces directories a sweep wrote, and never "
                "deletes other files: move them out, or choose an empty or new --out"
            )
        previous = _read_sweep_text(out)
        if previous is not None and _same_sweep(previous, spec):
            _remove_leftovers(out)
            return out
        if not force:
            raise OutputExistsError(
                f"{str(out)!r} holds another sweep (its {SWEEP_FILE} differs from {spec.source}); choose another "
                "--out, or pass --force to replace it"
            )
    out = prepare_output_dir(out, force, kind="sweep")  # with force: removes only the files its manifest lists
    (out / ARMS_DIR).mkdir(exist_ok=True)
    write_text_atomic(out / SWEEP_FILE, spec.text or _spec_text(spec))
    add_to_manifest(out, [SWEEP_FILE, ARMS_FILE])
    return out


def _same_sweep(previous_text: str, spec: SweepSpec) -> bool:
    from paramviz.sweep.spec import parse_sweep

    try:
        previous = parse_sweep(previous_text, folder=spec.folder, source=SWEEP_FILE)
    except ConfigError:
        return False
    return previous.canonical() == spec.canonical()


def _read_sweep_text(out: Path) -> str | None:
    try:
        return (out / SWEEP_FILE).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError):
        return None


def _remove_leftovers(out: Path) -> None:
    """Delete temporary files and folders left by an earlier run that was killed while writing them."""
    for child in out.iterdir():
        if is_temporary_name(child.name) and child.is_file():
            child.unlink(missing_ok=True)
    arms = out / ARMS_DIR
    if not arms.is_dir():
        arms.mkdir()
        return
    for child in arms.iterdir():
        if is_temporary_name(child.name):
            shutil.rmtree(child, ignore_errors=True)


def _read_states(out: Path) -> dict[str, Mapping[str, Any]]:
    try:
        data = json.loads((out / ARMS_FILE).read_text(encoding="utf-8"))
        return {entry["id"]: entry for entry in data.get("arms", []) if isinstance(entry, dict) and "id" in entry}
    except (OSError, ValueError, AttributeError, TypeError):
        return {}


def write_arms_json(out: Path, spec: SweepSpec, states: Sequence[ArmState]) -> None:
    """Replace ``arms.json`` atomically with the current state of every arm."""
    data = {
        "task": spec.task,
        "axes": [name for name, _ in spec.axis_groups],
        "keys": spec.axis_keys,
        "sweep_file": spec.source,
        "folder": str(spec.folder),
        "counts": {status: sum(s.status == status for s in states) for status in STATUSES},
        "arms": [s.to_json(spec) for s in states],
    }
    write_text_atomic(out / ARMS_FILE, json.dumps(data, indent=2, default=str) + "\n")


def _spec_text(spec: SweepSpec) -> str:
    import tomli_w

    data: dict[str, Any] = {"task": spec.task, "base": spec.base, "axes": spec.axes}
    if spec.zips:
        data["zip"] = list(spec.zips)
    return tomli_w.dumps(data)
