"""Read a sweep directory for the report: arms, their axis values, metrics, configs and R(f) annotations.

The directory is written by ``paramviz sweep run FILE --out DIR``::

    DIR/sweep.toml              the sweep file as run
    DIR/arms.json               {"task", "axes": [keys in order], "arms": [{"id", "axes", "status", "error"}]}
    DIR/arms/<id>/image.png     final image of a done arm
    DIR/arms/<id>/config.toml   the arm's resolved config
    DIR/arms/<id>/metrics.json  final_loss, wall_seconds, ..., "metrics": {name: value}, "metrics_extra": {...}

Nothing here writes a file. A malformed ``arms.json`` is an error; a done arm whose files are missing or
unreadable is not: it is reported with its problems so that a partly finished sweep still gets a report.
"""

from __future__ import annotations

import csv
import json
import math
import re
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from paramviz.errors import ConfigError

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - exercised on Python 3.10 only
    import tomli as tomllib

#: The replicate axis: the report computes spread (std over seeds) over it.
SEED_AXIS = "seed"
#: Arm states written by the runner.
STATUSES = ("done", "failed", "pending")
#: Columns of a ``paramviz robustness`` CSV that an annotation needs (see ``paramviz.tasks.robustness.COLUMNS``).
ANNOTATION_COLUMNS = ("backbone", "layer", "r")
#: Arm ids name folders under ``arms/``: no separators, no ``..``.
_ID_PATTERN = re.compile(r"[A-Za-z0-9_-][A-Za-z0-9_.-]*")
_HOW_TO_MAKE = "make one with `paramviz sweep run SWEEP.toml --out DIR`"


@dataclass
class Arm:
    """One arm of a sweep as the report sees it.

    Attributes:
        id: Folder name under ``arms/``.
        axes: ``{axis key: value}`` as in ``arms.json`` (values may be strings, numbers, booleans, lists).
        status: ``done``, ``failed`` or ``pending``.
        error: One-line error of a failed arm.
        metrics: Numeric metrics (``metrics.json``'s ``metrics`` then ``metrics_extra``), by name.
        info: The rest of ``metrics.json`` (``final_loss``, ``wall_seconds``, ``torch``, ``device``, ...).
        config: The arm's ``config.toml`` as a dict (empty when missing).
        image: Path of ``image.png`` when it exists.
        problems: Why a done arm is incomplete (missing or unreadable files).
        annotation: R(f) joined from a robustness CSV: ``{"backbone", "layer", "r", "r_std"}`` or ``None``.
    """

    id: str
    axes: dict[str, Any]
    status: str
    error: str | None = None
    metrics: dict[str, float] = field(default_factory=dict)
    info: dict[str, Any] = field(default_factory=dict)
    config: dict[str, Any] = field(default_factory=dict)
    image: Path | None = None
    problems: list[str] = field(default_factory=list)
    annotation: dict[str, Any] | None = None

    def number(self, name: str) -> float | None:
        """A finite numeric value: a metric, or a top-level ``metrics.json`` field such as ``final_loss``."""
        value = self.metrics.get(name, self.info.get(name))
        return _finite(value)


@dataclass
class Sweep:
    """A sweep directory read for the report.

    Attributes:
        path: The sweep directory.
        task: ``visualize`` or ``style`` (as written in ``arms.json``).
        axes: Swept keys in order (``seed`` is the replicate axis).
        arms: Every arm in ``arms.json`` order.
        sweep_toml: Text of ``sweep.toml`` (``None`` when missing).
        metric_names: Metric names in first-seen order over the arms (``metrics`` before ``metrics_extra``).
    """

    path: Path
    task: str
    axes: list[str]
    arms: list[Arm]
    sweep_toml: str | None
    metric_names: list[str]

    def values(self, axis: str) -> list[Any]:
        """Distinct values of ``axis`` in first-seen (grid) order."""
        seen: dict[str, Any] = {}
        for arm in self.arms:
            seen.setdefault(value_key(arm.axes[axis]), arm.axes[axis])
        return list(seen.values())

    @property
    def non_seed_axes(self) -> list[str]:
        """The axes other than the replicate axis, in order."""
        return [a for a in self.axes if a != SEED_AXIS]

    def count(self, status: str) -> int:
        """Number of arms with ``status``."""
        return sum(arm.status == status for arm in self.arms)


def value_key(value: Any) -> str:
    """A hashable key of an axis value (lists included), equal for equal values."""
    return json.dumps(value, sort_keys=True)


def _finite(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    value = float(value)
    return value if math.isfinite(value) else None


def _corrupt(path: Path, what: str) -> ConfigError:
    return ConfigError(
        f"corrupt {str(path)!r}: {what}; it is written by `paramviz sweep run`, so re-run the sweep "
        "into this directory to rewrite it"
    )


def read_sweep_dir(sweep_dir: str | Path) -> Sweep:
    """Read ``arms.json`` and every arm's files from a sweep directory.

    Raises:
        ConfigError: The directory does not exist, holds no ``arms.json``, or its ``arms.json`` is malformed.
    """
    path = Path(sweep_dir).expanduser()
    if not path.is_dir():
        what = "is a file" if path.exists() else "does not exist"
        raise ConfigError(f"sweep directory {str(path)!r} {what}; expected a sweep directory ({_HOW_TO_MAKE})")
    arms_file = path / "arms.json"
    if not arms_file.is_file():
        raise ConfigError(f"{str(path)!r} is not a sweep directory (it has no arms.json); {_HOW_TO_MAKE}")
    try:
        data = json.loads(arms_file.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"cannot read {str(arms_file)!r}: {exc}") from None
    except json.JSONDecodeError as exc:
        raise _corrupt(arms_file, f"invalid JSON ({exc})") from None
    task, axes, arms = _parse_arms(arms_file, data)
    for arm in arms:
        _read_arm_files(path / "arms" / arm.id, arm)
    metric_names: dict[str, None] = {}
    for arm in arms:
        metric_names.update(dict.fromkeys(arm.metrics))
    toml_file = path / "sweep.toml"
    try:
        sweep_toml = toml_file.read_text(encoding="utf-8") if toml_file.is_file() else None
    except (OSError, UnicodeDecodeError) as exc:
        sweep_toml = f"(sweep.toml could not be read: {exc})"
    return Sweep(path, task, axes, arms, sweep_toml, list(metric_names))


def _parse_arms(arms_file: Path, data: Any) -> tuple[str, list[str], list[Arm]]:
    if not isinstance(data, dict):
        raise _corrupt(arms_file, f"expected a JSON object, got {type(data).__name__}")
    for key in ("task", "axes", "arms"):
        if key not in data:
            raise _corrupt(arms_file, f"the key {key!r} is missing")
    task, axes, items = data["task"], data["axes"], data["arms"]
    if not isinstance(task, str):
        raise _corrupt(arms_file, f"'task' must be a string, got {task!r}")
    if not isinstance(axes, list) or not all(isinstance(a, str) and a for a in axes):
        raise _corrupt(arms_file, f"'axes' must be a list of axis keys, got {axes!r}")
    if len(set(axes)) != len(axes):
        raise _corrupt(arms_file, f"'axes' lists a key twice: {axes!r}")
    if not isinstance(items, list):
        raise _corrupt(arms_file, f"'arms' must be a list, got {type(items).__name__}")
    arms: list[Arm] = []
    seen: set[str] = set()
    for i, item in enumerate(items):
        where = f"arm {i}"
        if not isinstance(item, dict):
            raise _corrupt(arms_file, f"{where} is not an object")
        arm_id = item.get("id")
        if not isinstance(arm_id, str) or not _ID_PATTERN.fullmatch(arm_id) or arm_id in (".", ".."):
            raise _corrupt(arms_file, f"{where} has an invalid id {arm_id!r} (expected a folder name under arms/)")
        where = f"arm {arm_id!r}"
        if arm_id in seen:
            raise _corrupt(arms_file, f"{where} is listed twice")
        seen.add(arm_id)
        values = item.get("axes")
        if not isinstance(values, dict):
            raise _corrupt(arms_file, f"{where} has no 'axes' object")
        missing = [a for a in axes if a not in values]
        extra = [a for a in values if a not in axes]
        if missing or extra:
            parts = ([f"lacks axis {', '.join(map(repr, missing))}"] if missing else []) + (
                [f"has axis {', '.join(map(repr, extra))} not in 'axes'"] if extra else []
            )
            raise _corrupt(arms_file, f"{where} {' and '.join(parts)}")
        status = item.get("status")
        if status not in STATUSES:
            raise _corrupt(arms_file, f"{where} has status {status!r}; expected one of {', '.join(STATUSES)}")
        error = item.get("error")
        if error is not None and not isinstance(error, str):
            error = str(error)
        arms.append(Arm(arm_id, {a: values[a] for a in axes}, status, error))
    return task, list(axes), arms


def _read_arm_files(folder: Path, arm: Arm) -> None:
    """Fill ``arm`` from its folder; a done arm's missing or bad files become ``arm.problems``."""
    done = arm.status == "done"
    config_file = folder / "config.toml"
    if config_file.is_file():
        try:
            arm.config = tomllib.loads(config_file.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
            arm.problems.append(f"config.toml unreadable ({exc})")
    elif done:
        arm.problems.append("config.toml missing")
    image = folder / "image.png"
    if image.is_file():
        arm.image = image
    elif done:
        arm.problems.append("image.png missing")
    metrics_file = folder / "metrics.json"
    if not metrics_file.is_file():
        if done:
            arm.problems.append("metrics.json missing")
        return
    try:
        data = json.loads(metrics_file.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        arm.problems.append(f"metrics.json unreadable ({exc})")
        return
    if not isinstance(data, dict):
        arm.problems.append("metrics.json is not a JSON object")
        return
    for key in ("metrics", "metrics_extra"):
        group = data.get(key) or {}
        if not isinstance(group, dict):
            arm.problems.append(f"metrics.json {key!r} is not an object")
            continue
        for name, value in group.items():
            number = _finite(value)
            if number is not None:
                arm.metrics.setdefault(str(name), number)
    arm.info = {k: v for k, v in data.items() if k not in ("metrics", "metrics_extra")}


# --- R(f) annotations --------------------------------------------------------------------------------------
def arm_layer(task: str, config: Mapping[str, Any]) -> str | None:
    """The one layer an arm is about, for joining R(f): ``None`` when it has none or several.

    visualize: the layer its objectives read (the image penalties aside); style: its single style layer.
    """
    if task == "style":
        layers = config.get("style_layers") or ()
        if isinstance(layers, str):
            layers = [layers]
        return str(layers[0]) if len(layers) == 1 else None
    if task == "visualize":
        specs = config.get("objectives") or ()
        if isinstance(specs, str):
            specs = [specs]
        return _objective_layer([str(s) for s in specs])
    return None


def _objective_layer(specs: Sequence[str]) -> str | None:
    if not specs:
        return None
    from paramviz.errors import ParamvizError
    from paramviz.objectives import IMAGE_KEYS, parse_objectives

    try:
        layers = parse_objectives(tuple(specs)).layers() - IMAGE_KEYS
    except ParamvizError:  # fall back on the spec's first field (``LAYER:CH``)
        layers = {s.split(":", 1)[0].split("*")[-1].lstrip("-") for s in specs}
    return next(iter(layers)) if len(layers) == 1 else None


def load_annotations(path: str | Path) -> list[dict[str, Any]]:
    """Rows of a ``paramviz robustness`` CSV: ``backbone``, ``layer``, ``r`` (and ``r_std`` when present).

    Raises:
        ConfigError: The file is missing or unreadable, lacks a needed column, or has a non-numeric R.
    """
    path = Path(path).expanduser()
    hint = "pass the robustness.csv written by `paramviz robustness ... --out DIR`"
    if not path.is_file():
        what = "is a directory" if path.is_dir() else "does not exist"
        raise ConfigError(f"annotate file {str(path)!r} {what}; {hint}")
    try:
        with path.open(newline="", encoding="utf-8") as handle:
            reader = csv.DictReader(handle)
            columns = reader.fieldnames or []
            lacking = [c for c in ANNOTATION_COLUMNS if c not in columns]
            if lacking:
                raise ConfigError(
                    f"annotate file {str(path)!r} lacks the column(s) {', '.join(map(repr, lacking))} "
                    f"(it has {', '.join(map(repr, columns)) or 'none'}); {hint}"
                )
            rows = list(reader)
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise ConfigError(f"cannot read annotate file {str(path)!r}: {exc}; {hint}") from None
    out = []
    for i, row in enumerate(rows, start=2):
        r = _parse_number(row.get("r"))
        if r is None:
            raise ConfigError(f"annotate file {str(path)!r} line {i}: R(f) value {row.get('r')!r} is not a number")
        out.append(
            {
                "backbone": (row.get("backbone") or "").strip(),
                "layer": (row.get("layer") or "").strip(),
                "r": r,
                "r_std": _parse_number(row.get("r_std")),
            }
        )
    return out


def _parse_number(text: str | None) -> float | None:
    try:
        return _finite(float(text)) if text not in (None, "") else None
    except ValueError:
        return None


def annotate(sweep: Sweep, rows: Sequence[Mapping[str, Any]], source: str = "annotate file") -> int:
    """Join R(f) rows onto the sweep's arms by backbone and layer; returns how many arms got a value.

    A CSV backbone label ``NAME@WEIGHTS`` matches an arm with that ``backbone`` and ``weights``; a plain
    ``NAME`` matches any weights, an exact ``NAME@WEIGHTS`` row wins over it.

    Raises:
        ConfigError: Several rows match one arm's backbone and layer equally well, or no arm matched at all.
    """
    from paramviz.tasks.robustness import parse_backbone

    matched = 0
    wanted: set[tuple[str, str]] = set()
    for arm in sweep.arms:
        backbone = arm.config.get("backbone")
        layer = arm_layer(sweep.task, arm.config)
        if not isinstance(backbone, str) or layer is None:
            continue
        weights = str(arm.config.get("weights", "pretrained"))
        wanted.add((backbone, layer))
        exact, plain = [], []
        for row in rows:
            if row["layer"] != layer or not row["backbone"]:
                continue
            spec = parse_backbone(row["backbone"], default_weights="")
            if spec.name != backbone:
                continue
            if spec.weights == weights:
                exact.append(row)
            elif spec.weights == "":
                plain.append(row)
        best = exact or plain
        if len(best) > 1:
            labels = ", ".join(repr(r["backbone"]) for r in best)
            raise ConfigError(
                f"{source} has {len(best)} rows for backbone {backbone!r} layer {layer!r} ({labels}); keep one row "
                "per backbone and layer"
            )
        if best:
            row = best[0]
            arm.annotation = {"backbone": row["backbone"], "layer": layer, "r": row["r"], "r_std": row["r_std"]}
            matched += 1
    if not matched:
        have = sorted({(r["backbone"], r["layer"]) for r in rows})
        want = ", ".join(f"{b} {layer}" for b, layer in sorted(wanted)) or "none (no arm has a single layer)"
        raise ConfigError(
            f"no arm matched a row of {source}: the arms' backbone and layer are {want}; the file has "
            f"{', '.join(f'{b} {layer}' for b, layer in have[:12]) or 'no rows'}"
        )
    return matched
