"""Sweep files: parse, validate and expand a TOML grid of runs ("arms") before any of them runs.

A sweep file::

    task = "visualize"              # a sweepable task of paramviz.tasks.TASKS
    [base]                          # any field of the task's config.toml, as a single run writes it
    objectives = ["stage4:12"]
    [axes]                          # dotted keys; the grid is the product of the lists
    "param.name" = ["pixel", "fourier"]
    seed = [0, 1, 2]
    [[zip]]                         # optional: keys that vary together, one axis as a whole
    backbone = ["efficientnet_lite0", "efficientnet_lite1"]
    objectives = [["stage4:12"], ["stage4:12"]]

Every arm's config is ``base.override(axis values)`` (so fields an axis determines are re-derived, as on the
command line). Relative paths (content and style images, weights files) resolve against the file's folder.
Each arm gets a stable id: a hash of its config as written (paths as in the file, ``device`` left out), so
the same arm keeps its id across runs, machines and devices.
"""

from __future__ import annotations

import dataclasses
import hashlib
import itertools
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from paramviz.config import ConfigBase, tomllib
from paramviz.errors import ConfigError, ParamvizError, close_matches
from paramviz.io import SAMPLE_PREFIX
from paramviz.objectives.spec import map_spec_image
from paramviz.tasks import TASKS, Task

#: Top-level keys of a sweep file.
SWEEP_KEYS = ("task", "base", "axes", "zip", "description")

#: Config fields left out of an arm's id: where it runs does not change what it is.
ID_EXCLUDED = ("device",)

#: Length of an arm id (hex digits of a SHA-256).
ID_LENGTH = 12

#: How the keys of a ``[[zip]]`` group are joined into the name of the one axis they form.
ZIP_JOIN = " + "


@dataclass(frozen=True)
class Arm:
    """One run of a sweep.

    Attributes:
        id: Stable id (hash of the config as written, without ``device``).
        index: Position in the grid (0-based).
        axes: The axis values of this arm, ``{dotted key: value}``, in axis order.
        config: The config to run (paths resolved against the sweep file's folder).
    """

    id: str
    index: int
    axes: dict[str, Any]
    config: ConfigBase

    def label(self) -> str:
        """``key=value`` pairs of the axis values, for listings and errors."""
        return ", ".join(f"{key}={format_value(value)}" for key, value in self.axes.items())


@dataclass(frozen=True)
class SweepSpec:
    """A parsed sweep file.

    Attributes:
        task: The task name.
        base: The ``[base]`` table as written.
        axes: ``[axes]``: dotted key -> list of values.
        zips: The ``[[zip]]`` groups: each maps keys to equally long lists.
        folder: The folder relative paths resolve against.
        text: The file's text (copied into the sweep directory as ``sweep.toml``).
        source: Where it was read from (for messages).
        description: Optional free text.
    """

    task: str
    base: dict[str, Any]
    axes: dict[str, list[Any]]
    zips: tuple[dict[str, list[Any]], ...] = ()
    folder: Path = field(default_factory=Path.cwd)
    text: str = ""
    source: str = "sweep file"
    description: str = ""

    @property
    def axis_keys(self) -> list[str]:
        """Every swept key in order: the ``[axes]`` keys, then each zip group's keys."""
        return [*self.axes, *(key for group in self.zips for key in group)]

    @property
    def axis_groups(self) -> list[tuple[str, tuple[str, ...]]]:
        """The axes of the grid as ``(name, keys)``: each ``[axes]`` key alone, each zip group as one axis.

        A zip group's axis is named by its keys joined with :data:`ZIP_JOIN` (``"param.name + param.decorrelate"``).
        """
        groups = [(key, (key,)) for key in self.axes]
        groups += [(ZIP_JOIN.join(group), tuple(group)) for group in self.zips]
        return groups

    def grouped(self, values: Mapping[str, Any]) -> dict[str, Any]:
        """An arm's axis values by axis: a zip group's value is the table ``{key: value}`` of its keys."""
        return {
            name: values[keys[0]] if len(keys) == 1 else {key: values[key] for key in keys}
            for name, keys in self.axis_groups
        }

    def with_base(self, changes: Mapping[str, Any]) -> SweepSpec:
        """This sweep with fields of ``[base]`` changed (dotted keys set nested tables: ``"param.name"``).

        The changed sweep is a different sweep (its arms get other ids); the ``sweep.toml`` a run copies into its
        directory is written from the parsed content, since the file's text no longer describes it.
        """
        if not changes:
            return self
        base = json.loads(json.dumps(self.base))  # a deep copy of plain TOML values
        for key, value in changes.items():
            node = base
            *parents, last = key.split(".")
            for part in parents:
                child = node.get(part)
                if not isinstance(child, dict):
                    child = node[part] = {}
                node = child
            node[last] = value
        return dataclasses.replace(self, base=base, text="")

    def canonical(self) -> str:
        """A text that is equal for two files describing the same sweep (formatting and comments aside)."""
        data = {"task": self.task, "base": self.base, "axes": self.axes, "zip": list(self.zips)}
        return json.dumps(data, sort_keys=True, default=str)


def format_value(value: Any) -> str:
    """An axis value as a label: lists joined with ``", "``, booleans as TOML writes them."""
    if isinstance(value, (list, tuple)):
        return ", ".join(format_value(v) for v in value)
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        return "none"
    if isinstance(value, dict):  # a zip group's values
        return ", ".join(f"{key}={format_value(v)}" for key, v in value.items())
    return str(value)


def parse_assignment(text: str, what: str = "--set") -> tuple[str, Any]:
    """``KEY=VALUE`` with the value read as TOML (``steps=64``, ``transforms="lucid"``, bare words as strings).

    Raises:
        ConfigError: No ``=`` or an empty key.
    """
    key, sep, raw = text.partition("=")
    key = key.strip()
    if not sep or not key:
        raise ConfigError(f"{what} {text!r}: expected KEY=VALUE, e.g. {what} steps=64 or {what} param.name=pixel")
    try:
        value = tomllib.loads(f"v = {raw.strip()}")["v"]
    except tomllib.TOMLDecodeError:
        value = raw.strip()  # a bare word such as lucid
    return key, value


def axis_label(key: str, value: Any, sep: str = " = ") -> str:
    """``key = value`` for an axis value; a zip group's table names its keys itself (``param.name=pixel, ...``)."""
    return format_value(value) if isinstance(value, dict) else f"{key}{sep}{format_value(value)}"


def load_sweep(path: str | Path) -> SweepSpec:
    """Read and check the shape of a sweep file (its values are checked by :func:`expand`).

    Raises:
        ConfigError: A missing or unreadable file, invalid TOML, unknown keys, or malformed tables.
    """
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(f"sweep file {str(path)!r} does not exist") from None
    except IsADirectoryError:
        raise ConfigError(f"{str(path)!r} is a directory; expected a sweep file (TOML)") from None
    except UnicodeDecodeError:
        raise ConfigError(f"sweep file {str(path)!r} is not UTF-8 text; expected TOML") from None
    except OSError as exc:
        raise ConfigError(f"cannot read sweep file {str(path)!r}: {exc.strerror or exc}") from None
    return parse_sweep(text, folder=path.resolve().parent, source=str(path))


def parse_sweep(text: str, *, folder: str | Path = ".", source: str = "sweep file") -> SweepSpec:
    """Parse the text of a sweep file (see the module docstring for the format)."""
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{source} is not valid TOML: {exc}") from None
    for key in data:
        if key not in SWEEP_KEYS:
            near = close_matches(key, SWEEP_KEYS)
            hint = f"; did you mean {', '.join(map(repr, near))}?" if near else ""
            raise ConfigError(f"{source}: unknown key {key!r}{hint} (a sweep file has {', '.join(SWEEP_KEYS)})")
    if "task" not in data:
        sweepable = [name for name in TASKS if TASKS.get(name).sweepable]
        raise ConfigError(f"{source}: no task given; add e.g. task = {sweepable[0]!r} (one of {', '.join(sweepable)})")
    task = _sweepable_task(data["task"], source)
    base = data.get("base", {})
    if not isinstance(base, dict):
        raise ConfigError(f"{source}: [base] must be a table of config fields, got {type(base).__name__}")
    axes = data.get("axes", {})
    if not isinstance(axes, dict):
        raise ConfigError(f"{source}: [axes] must be a table of 'key = [values]', got {type(axes).__name__}")
    for key, values in axes.items():
        _check_values(f"{source}: axis {key!r}", values)
    zips = data.get("zip", [])
    if isinstance(zips, dict):
        zips = [zips]
    if not isinstance(zips, list) or not all(isinstance(group, dict) for group in zips):
        raise ConfigError(f"{source}: zip groups must be [[zip]] tables of 'key = [values]'")
    seen = set(axes)
    for number, group in enumerate(zips, start=1):
        if not group:
            raise ConfigError(f"{source}: [[zip]] group {number} is empty; give it keys with lists of values")
        lengths = set()
        for key, values in group.items():
            _check_values(f"{source}: [[zip]] group {number}, key {key!r}", values)
            lengths.add(len(values))
            if key in seen:
                raise ConfigError(f"{source}: key {key!r} is swept twice; sweep each key in one place only")
            seen.add(key)
        if len(lengths) > 1:
            detail = ", ".join(f"{k}: {len(v)}" for k, v in group.items())
            raise ConfigError(
                f"{source}: the lists of [[zip]] group {number} must have the same length (they vary together); "
                f"got {detail}"
            )
    description = data.get("description", "")
    if not isinstance(description, str):
        raise ConfigError(f"{source}: description must be a string")
    return SweepSpec(
        task.name,
        dict(base),
        {k: list(v) for k, v in axes.items()},
        tuple({k: list(v) for k, v in g.items()} for g in zips),
        Path(folder),
        text,
        source,
        description,
    )


def _sweepable_task(name: object, source: str) -> Task:
    if not isinstance(name, str):
        raise ConfigError(f"{source}: task must be a string such as 'visualize', got {name!r}")
    task = TASKS.get(name)
    if not task.sweepable:
        sweepable = [n for n in TASKS if TASKS.get(n).sweepable]
        raise ConfigError(
            f"{source}: task {name!r} cannot be swept ({task.description} writes a table, not one image per "
            f"run); sweepable tasks: {', '.join(sweepable)}"
        )
    return task


def _check_values(where: str, values: object) -> None:
    if not isinstance(values, list):
        raise ConfigError(f"{where}: expected a list of values, got {values!r}; write key = [value1, value2]")
    if not values:
        raise ConfigError(f"{where}: the list of values is empty; give at least one value")


def expand(spec: SweepSpec) -> list[Arm]:
    """Every arm of the grid, each validated: the product of the axes and zip groups, applied to the base.

    Raises:
        ConfigError: An invalid base (naming the key) or an arm whose values are invalid (naming the arm and
            its axis values), or two arms with the same config.
    """
    task = TASKS.get(spec.task)
    base_written = _base_config(task, spec, resolve_paths=False)
    base = _base_config(task, spec, resolve_paths=True)
    dimensions: list[list[dict[str, Any]]] = [[{key: value} for value in values] for key, values in spec.axes.items()]
    for group in spec.zips:
        length = len(next(iter(group.values())))
        dimensions.append([{key: values[i] for key, values in group.items()} for i in range(length)])
    arms: list[Arm] = []
    ids: dict[str, Arm] = {}
    for index, combination in enumerate(itertools.product(*dimensions)):
        values: dict[str, Any] = {}
        for part in combination:
            values.update(part)
        label = ", ".join(f"{key}={format_value(value)}" for key, value in values.items()) or "the base config"
        try:
            written = base_written.override(values)
            config = base.override(_resolve_paths(task, values, spec.folder))
        except ParamvizError as exc:
            raise ConfigError(f"{spec.source}: arm {index} ({label}): {exc}") from None
        arm = Arm(arm_id(spec.task, written), index, values, config)
        if arm.id in ids:
            raise ConfigError(
                f"{spec.source}: arms {ids[arm.id].index} ({ids[arm.id].label()}) and {index} ({label}) have the "
                "same config; remove the duplicate axis value"
            )
        ids[arm.id] = arm
        arms.append(arm)
    return arms


def _base_config(task: Task, spec: SweepSpec, *, resolve_paths: bool) -> ConfigBase:
    base = _resolve_paths(task, spec.base, spec.folder) if resolve_paths else spec.base
    try:
        return task.config_cls.from_dict(base, where=f"{spec.source} [base]")
    except ParamvizError as exc:
        message = str(exc)
        prefix = "" if message.startswith(spec.source) else f"{spec.source} [base]: "
        raise ConfigError(prefix + message) from None


def arm_id(task: str, config: ConfigBase) -> str:
    """The stable id of a run: a hash of its task and config (without :data:`ID_EXCLUDED` fields)."""
    data = {key: value for key, value in config.to_dict().items() if key not in ID_EXCLUDED}
    text = json.dumps({"task": task, "config": data}, sort_keys=True, default=str)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:ID_LENGTH]


def _resolve_paths(task: Task, values: Mapping[str, Any], folder: Path) -> dict[str, Any]:
    """``values`` with relative file paths in the task's path fields made absolute against ``folder``."""
    out = dict(values)
    for key in task.spec_path_fields:  # images named inside objective specs (input_diff:IMAGE, ...)
        if key in out and isinstance(out[key], (list, tuple)):
            out[key] = [
                map_spec_image(s, lambda p: _resolve_one(task, p, folder)) if isinstance(s, str) else s
                for s in out[key]
            ]
    for key in task.path_fields:
        node, name = out, key
        if key not in out and "." in key:  # a nested table of the base: [param] spectrum = "..."
            head, name = key.split(".", 1)
            if not isinstance(out.get(head), dict) or name not in out[head]:
                continue
            node = out[head] = dict(out[head])
        if name in node:
            value = node[name]
            if isinstance(value, list | tuple):
                node[name] = [_resolve_one(task, v, folder) for v in value]
            else:
                node[name] = _resolve_one(task, value, folder)
    return out


def is_path_value(task: Task, value: Any) -> bool:
    """Whether a value of one of the task's :attr:`~Task.path_fields` names a file (not a keyword or sample)."""
    return (
        isinstance(value, str)
        and bool(value)
        and value not in task.path_keywords
        and not value.startswith(SAMPLE_PREFIX)
    )


def _resolve_one(task: Task, value: Any, folder: Path) -> Any:
    if not is_path_value(task, value):
        return value
    path = Path(value).expanduser()
    return str(path if path.is_absolute() else (folder / path))


def describe_arms(arms: Sequence[Arm], axis_keys: Sequence[str]) -> str:
    """A plain-text table of the arms: index, id and one column per axis."""
    header = ["#", "id", *axis_keys]
    rows = [[str(arm.index), arm.id, *(format_value(arm.axes.get(k, "")) for k in axis_keys)] for arm in arms]
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
    lines = ["  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip() for row in [header, *rows]]
    return "\n".join(lines)
