"""Plots of the sweep report: one figure per metric, one panel per non-seed axis.

In the panel of axis ``A`` the x positions are ``A``'s values (in grid order) and the points are means over
seeds with error bars of one standard deviation (``ddof=1``; no bar for a single seed). There is one line per
combination of the other non-seed axes when there are at most :data:`MAX_LINES` of them, else one line pooled
over them (its spread then covers seeds and the pooled axes). Figures use matplotlib's Agg canvas directly (no
pyplot, no global backend change).
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from paramviz.sweep.collect import Sweep, value_key
from paramviz.sweep.spec import axis_label, format_value
from paramviz.sweep.tables import METRIC_DIRECTIONS, group_arms, stats_of, value_columns

if TYPE_CHECKING:
    from matplotlib.axes import Axes

#: Most lines per panel before the other axes are pooled into one.
MAX_LINES = 6
#: Panels per figure row.
PANELS_PER_ROW = 3


def plot_filename(name: str, taken: set[str]) -> str:
    """A safe, unique PNG file name for metric ``name`` (``style_image:hf_energy`` -> ``style_image_hf_energy``)."""
    stem = re.sub(r"[^A-Za-z0-9_.-]+", "_", name).strip("._") or "metric"
    candidate, i = f"{stem}.png", 2
    while candidate.lower() in taken:
        candidate, i = f"{stem}_{i}.png", i + 1
    taken.add(candidate.lower())
    return candidate


def plot_metric(sweep: Sweep, column: str, path: str | Path) -> bool:
    """Plot ``column`` against every non-seed axis into a PNG at ``path``.

    Returns:
        False (and writes nothing) when the sweep has no non-seed axis or no arm has a value of ``column``.
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    axes = sweep.non_seed_axes
    done = [arm for arm in sweep.arms if arm.status == "done" and arm.number(column) is not None]
    if not axes or not done:
        return False
    ncols = min(len(axes), PANELS_PER_ROW)
    nrows = math.ceil(len(axes) / ncols)
    fig = Figure(figsize=(4.6 * ncols, 3.9 * nrows), dpi=110)
    FigureCanvasAgg(fig)
    direction = METRIC_DIRECTIONS.get(column)
    title = column + (f"  ({direction} is better)" if direction else "")
    fig.suptitle(f"{title}: mean ± std over seeds", fontsize=10)
    for k, axis in enumerate(axes):
        ax = fig.add_subplot(nrows, ncols, k + 1)
        _panel(ax, sweep, column, axis, [a for a in axes if a != axis])
    fig.tight_layout()
    fig.savefig(str(path))
    return True


def _panel(ax: Axes, sweep: Sweep, column: str, axis: str, others: Sequence[str]) -> None:
    values = sweep.values(axis)
    keys = [value_key(v) for v in values]
    groups = group_arms(sweep.arms, others)
    pooled = len(groups) > MAX_LINES
    if pooled:
        groups = {(): list(sweep.arms)}
    width = 0.3 if len(groups) > 1 else 0.0
    for j, (_, members) in enumerate(groups.items()):
        by_value = group_arms(members, [axis])
        xs, ys, errs = [], [], []
        for i, key in enumerate(keys):
            stat = stats_of(by_value.get((key,), []), column)
            if stat is None:
                continue
            offset = (j / (len(groups) - 1) - 0.5) * width if len(groups) > 1 else 0.0
            xs.append(i + offset)
            ys.append(stat.mean)
            errs.append(stat.std or 0.0)
        if not xs:
            continue
        if pooled:
            label = f"pooled over {', '.join(others)}"
        elif others:
            label = ", ".join(axis_label(a, members[0].axes[a], "=") for a in others)
        else:
            label = None
        ax.errorbar(xs, ys, yerr=errs, marker="o", capsize=3, linewidth=1.2, label=label)
    labels = [format_value(v) for v in values]
    ax.set_xticks(range(len(values)))
    long = sum(len(s) for s in labels) > 40
    ax.set_xticklabels(labels, rotation=30 if long else 0, ha="right" if long else "center", fontsize=8)
    ax.set_xlim(-0.5, len(values) - 0.5)
    ax.set_xlabel(axis)
    ax.set_ylabel(column, fontsize=8)
    ax.tick_params(axis="y", labelsize=8)
    ax.grid(True, alpha=0.3)
    if ax.get_legend_handles_labels()[1]:
        ax.legend(fontsize=7)


def write_plots(sweep: Sweep, folder: str | Path) -> dict[str, Path]:
    """Write one PNG per value column (metrics, final loss, wall time) into ``folder``; ``{column: path}``."""
    folder = Path(folder)
    taken: set[str] = set()
    written = {}
    for column in value_columns(sweep):
        path = folder / plot_filename(column, taken)
        if plot_metric(sweep, column, path):
            written[column] = path
    return written
