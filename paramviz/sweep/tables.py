"""The sweep report's numbers: the per-arm ``metrics.csv`` and mean ± std over seeds per combination of axes.

Spread is the sample standard deviation (``ddof=1``, so seeds 1, 2, 3 give 2 ± 1); one seed has no spread
(``std`` is ``None``). Only finite values count; ``n`` is the number of arms that have the value.
"""

from __future__ import annotations

import csv
import io
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from paramviz.sweep.collect import SEED_AXIS, Arm, Sweep, value_key
from paramviz.sweep.spec import format_value

#: Degrees of freedom removed in the standard deviation over seeds (sample standard deviation).
DDOF = 1
#: Which direction is better for the metrics whose meaning is known; other metrics get no "best" mark.
METRIC_DIRECTIONS: dict[str, str] = {
    "hf_energy": "lower",  # high-frequency energy: noise and aliasing
    "checkerboard": "lower",  # period-2 (deconvolution / stride) artefacts
    "transform_robustness": "higher",  # the objective survives random transforms of the image
    "transfer": "higher",  # the image still drives the unit on another network
    "style_distance": "lower",
    "content_distance": "lower",
    "ssim_content": "higher",
}
#: ``metrics.json`` fields reported after the metrics, per arm.
RUN_FIELDS = ("final_loss", "wall_seconds")
#: Columns added by an R(f) annotation.
ANNOTATION_FIELDS = ("robustness_layer", "robustness_r")


def value_columns(sweep: Sweep) -> list[str]:
    """Numeric columns of the report, in order: metrics, then :data:`RUN_FIELDS`."""
    return [*sweep.metric_names, *(f for f in RUN_FIELDS if f not in sweep.metric_names)]


def csv_columns(sweep: Sweep, annotated: bool = False) -> list[str]:
    """Header of ``metrics.csv``: ``id``, ``status``, the axes, the values, (R(f) columns), ``error``."""
    fixed = ["id", "status", *sweep.axes]
    values = [c if c not in fixed else f"metric:{c}" for c in value_columns(sweep)]
    return [*fixed, *values, *(ANNOTATION_FIELDS if annotated else ()), "error"]


def metrics_csv(sweep: Sweep, annotated: bool = False) -> str:
    """``metrics.csv``: one row per arm (floats written with ``repr``, missing values empty)."""
    columns = csv_columns(sweep, annotated)
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(columns)
    for arm in sweep.arms:
        row: list[Any] = [arm.id, arm.status, *(format_value(arm.axes[a]) for a in sweep.axes)]
        row += [_cell(arm.number(name)) for name in value_columns(sweep)]
        if annotated:
            ann = arm.annotation or {}
            row += [ann.get("layer", ""), _cell(ann.get("r"))]
        problems = "; ".join(arm.problems)
        row.append(arm.error or problems or "")
        writer.writerow(row)
    return buffer.getvalue()


def _cell(value: float | None) -> str:
    return "" if value is None else repr(value)


@dataclass(frozen=True)
class Stat:
    """Mean and spread of one value over the arms of a group (``std`` is ``None`` for fewer than 2)."""

    mean: float
    std: float | None
    n: int

    @classmethod
    def of(cls, values: Sequence[float]) -> Stat | None:
        """The statistics of ``values``; ``None`` when there are none."""
        if not values:
            return None
        n = len(values)
        mean = math.fsum(values) / n
        std = math.sqrt(math.fsum((v - mean) ** 2 for v in values) / (n - DDOF)) if n > DDOF else None
        return cls(mean, std, n)


@dataclass
class Group:
    """Arms that share every non-seed axis value (the seeds of one combination).

    Attributes:
        axes: ``{axis: value}`` of the combination (the non-seed axes).
        arms: Its arms (every status).
        stats: ``{column: Stat}`` over the done arms that have the value.
    """

    axes: dict[str, Any]
    arms: list[Arm]
    stats: dict[str, Stat]

    @property
    def n_done(self) -> int:
        """Done arms in the group."""
        return sum(arm.status == "done" for arm in self.arms)


def group_arms(arms: Sequence[Arm], axes: Sequence[str]) -> dict[tuple[str, ...], list[Arm]]:
    """Arms grouped by their values of ``axes`` (keys in first-seen order)."""
    groups: dict[tuple[str, ...], list[Arm]] = {}
    for arm in arms:
        groups.setdefault(tuple(value_key(arm.axes[a]) for a in axes), []).append(arm)
    return groups


def stats_of(arms: Sequence[Arm], column: str) -> Stat | None:
    """Mean ± std of ``column`` over the done ``arms`` that have it."""
    return Stat.of([v for arm in arms if arm.status == "done" and (v := arm.number(column)) is not None])


def summarize(sweep: Sweep) -> list[Group]:
    """One :class:`Group` per combination of the non-seed axes, in grid order."""
    axes = sweep.non_seed_axes
    groups = []
    for members in group_arms(sweep.arms, axes).values():
        stats = {c: s for c in value_columns(sweep) if (s := stats_of(members, c)) is not None}
        groups.append(Group({a: members[0].axes[a] for a in axes}, members, stats))
    return groups


def best_groups(groups: Sequence[Group], column: str) -> set[int]:
    """Indices of the groups with the best mean of ``column`` (ties included).

    Empty when the direction of ``column`` is unknown (:data:`METRIC_DIRECTIONS`) or fewer than two groups
    have a value.
    """
    direction = METRIC_DIRECTIONS.get(column)
    means = {i: g.stats[column].mean for i, g in enumerate(groups) if column in g.stats}
    if direction is None or len(means) < 2:
        return set()
    best = min(means.values()) if direction == "lower" else max(means.values())
    return {i for i, m in means.items() if m == best}


def format_number(value: float | None) -> str:
    """Three decimals in the usual range, scientific notation for very small or large magnitudes."""
    if value is None:
        return "—"
    if value == 0 or 1e-3 <= abs(value) < 1e5:
        return f"{value:.3f}"
    return f"{value:.3e}"


def format_stat(stat: Stat | None) -> str:
    """``mean ± std`` (``mean`` alone for one seed, ``—`` without a value)."""
    if stat is None:
        return "—"
    if stat.std is None:
        return format_number(stat.mean)
    return f"{format_number(stat.mean)} ± {format_number(stat.std)}"


def has_seeds(sweep: Sweep) -> bool:
    """Whether the sweep has a replicate (``seed``) axis."""
    return SEED_AXIS in sweep.axes


def summary_text(sweep: Sweep, columns: Sequence[str] | None = None) -> str:
    """The metric table as plain text: one line per combination of the non-seed axes, ``mean ± std`` cells.

    Args:
        sweep: The sweep directory, read.
        columns: The value columns to show (default: every metric, then the run fields).
    """
    groups = summarize(sweep)
    columns = [c for c in (columns or value_columns(sweep)) if any(c in g.stats for g in groups)]
    axes = sweep.non_seed_axes
    header = [*axes, "n", *columns]
    rows = [
        [*(format_value(g.axes[a]) for a in axes), str(g.n_done), *(format_stat(g.stats.get(c)) for c in columns)]
        for g in groups
    ]
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
    lines = ["  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip() for row in [header, *rows]]
    return "\n".join(lines)
