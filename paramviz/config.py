"""Frozen config dataclasses: the one source of truth for defaults.

The Python API, the CLI options and TOML config files all read their defaults from these classes.
:class:`ConfigBase` gives every config ``to_dict``/``from_dict`` and TOML round trips, with unknown keys
reported by name and close matches.
"""

from __future__ import annotations

import dataclasses
import sys
import types
import typing
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any, TypeVar

import tomli_w

from paramviz.errors import ConfigError, close_matches

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - exercised on Python 3.10 only
    import tomli as tomllib

C = TypeVar("C", bound="ConfigBase")


@dataclasses.dataclass(frozen=True)
class ConfigBase:
    """Mixin for frozen config dataclasses: dict and TOML conversion with validation of keys."""

    def to_dict(self) -> dict[str, Any]:
        """Plain dict (nested configs become tables, tuples become lists, ``None`` values are dropped)."""
        out: dict[str, Any] = {}
        for field in dataclasses.fields(self):
            value = getattr(self, field.name)
            if value is None:
                continue
            if isinstance(value, ConfigBase):
                value = value.to_dict()
            elif isinstance(value, tuple):
                value = [v.to_dict() if isinstance(v, ConfigBase) else v for v in value]
            out[field.name] = value
        return out

    @classmethod
    def from_dict(cls: type[C], data: Mapping[str, Any], *, where: str = "config") -> C:
        """Build from a dict, converting nested tables; unknown keys raise :class:`ConfigError`."""
        if not isinstance(data, Mapping):
            raise ConfigError(f"{where}: expected a table of options, got {type(data).__name__}")
        fields = {f.name: f for f in dataclasses.fields(cls)}
        hints = typing.get_type_hints(cls)
        kwargs: dict[str, Any] = {}
        for key, value in data.items():
            if key not in fields:
                near = close_matches(key, fields)
                hint = f"; did you mean {', '.join(map(repr, near))}?" if near else ""
                raise ConfigError(f"{where}: unknown option {key!r}{hint} (valid options: {', '.join(fields)})")
            kwargs[key] = _convert(hints[key], value, f"{where}.{key}")
        try:
            return cls(**kwargs)
        except TypeError as exc:
            raise ConfigError(f"{where}: {exc}") from None

    def replace(self: C, **changes: Any) -> C:
        """Copy with some fields changed (validation in ``__post_init__`` runs again)."""
        return dataclasses.replace(self, **changes)

    def override(self: C, changes: Mapping[str, Any]) -> C:
        """Apply dotted-key ``changes`` (``{"param.name": "pixel", "steps": 64}``), re-deriving dependent fields.

        The one path by which the CLI, ``--config`` reruns and sweep arms change a config: first the fields
        that a changed field determines are cleared (:meth:`rederive`; e.g. a style config's backbone and
        layers when its ``preset`` changes, unless they are changed too), then the changes are applied.

        Raises:
            ConfigError: An unknown key (with close matches) or an invalid value.
        """
        if not changes:
            return self
        changed = {key.split(".")[0] for key in changes}
        return apply_overrides(self.rederive(changed), changes)

    def rederive(self: C, changed: Iterable[str]) -> C:
        """Reset the fields that the ``changed`` top-level fields determine; the base class has none."""
        return self

    def to_toml(self) -> str:
        """TOML text of :meth:`to_dict`."""
        return tomli_w.dumps(self.to_dict())

    @classmethod
    def from_toml(cls: type[C], path: str | Path) -> C:
        """Read a TOML file written by :meth:`to_toml` or by hand."""
        path = Path(path)
        try:
            data = tomllib.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise ConfigError(f"config file {str(path)!r} does not exist") from None
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"config file {str(path)!r} is not valid TOML: {exc}") from None
        except UnicodeDecodeError:
            raise ConfigError(f"config file {str(path)!r} is not UTF-8 text; expected a TOML file") from None
        except OSError as exc:
            raise ConfigError(f"cannot read config file {str(path)!r}: {exc.strerror or exc}") from None
        return cls.from_dict(data, where=str(path))


def _convert(hint: Any, value: Any, where: str) -> Any:
    """Convert TOML values to the annotated type (tables -> nested configs, lists -> tuples)."""
    origin = typing.get_origin(hint)
    if origin in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(hint) if a is not type(None)]
        if value is None:
            return None
        for arg in args:
            if isinstance(arg, type) and issubclass(arg, ConfigBase) and isinstance(value, Mapping):
                return arg.from_dict(value, where=where)
        if len(args) == 1:
            return _convert(args[0], value, where)
        return tuple(value) if isinstance(value, list) else value
    if isinstance(hint, type) and issubclass(hint, ConfigBase):
        return hint.from_dict(value, where=where)
    if origin is tuple:
        if not isinstance(value, (list, tuple)):
            value = [value]
        args = typing.get_args(hint)
        inner = args[0] if args else Any
        return tuple(_convert(inner, v, f"{where}[{i}]") for i, v in enumerate(value))
    return _check_scalar(hint, value, where)


_SCALAR_NAMES = {bool: "true or false", int: "a whole number", float: "a number", str: "a string"}


def _check_scalar(hint: Any, value: Any, where: str) -> Any:
    """Refuse a value of the wrong type: TOML ``"false"`` must not become a truthy string for a bool option."""
    if hint not in _SCALAR_NAMES:
        return value
    if hint is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    ok = isinstance(value, hint) and not (hint in (int, float) and isinstance(value, bool))
    if not ok:
        raise ConfigError(
            f"{where}: expected {_SCALAR_NAMES[hint]}, got {value!r} ({type(value).__name__}); "
            f"write it without quotes for numbers and booleans, with quotes for text"
        )
    return value


def apply_overrides(config: C, overrides: Mapping[str, Any]) -> C:
    """Return ``config`` with dotted-key overrides applied, e.g. ``{"param.name": "pixel", "steps": 64}``.

    Unknown keys raise :class:`ConfigError` with close matches (the same check as :meth:`ConfigBase.from_dict`).
    """
    data = config.to_dict()
    for key, value in overrides.items():
        node = data
        parts = key.split(".")
        for part in parts[:-1]:
            child = node.get(part)
            if not isinstance(child, dict):
                child = {}
                node[part] = child
            node = child
        if value is None:
            node.pop(parts[-1], None)
        else:
            node[parts[-1]] = list(value) if isinstance(value, tuple) else value
    return type(config).from_dict(data)


#: Seeds are passed to ``torch.manual_seed`` / ``torch.Generator.manual_seed``, which take 64-bit values.
SEED_RANGE = (0, 2**63 - 1)


def check_seed(seed: object, name: str = "seed") -> int:
    """Return ``seed`` if it is an integer torch can seed with; raise :class:`ConfigError` otherwise."""
    low, high = SEED_RANGE
    if isinstance(seed, bool) or not isinstance(seed, int) or not low <= seed <= high:
        raise ConfigError(f"{name} must be a whole number from {low} to {high} (2**63 - 1), got {seed!r}")
    return seed
