"""The sweep report: ``metrics.csv``, a self-contained ``report.html`` and ``plots/`` from a sweep directory.

:func:`build_report` reads a finished or partly finished sweep directory (see :mod:`paramviz.sweep.collect`)
and writes, next to ``arms/``:

- ``metrics.csv``: one row per arm (id, status, axis values, metrics, final loss, wall time);
- ``plots/<metric>.png``: each metric against each non-seed axis (:mod:`paramviz.sweep.plots`);
- ``report.html``: provenance, an image contact sheet, mean ± std tables, the plots and the failures. Images
  are embedded as data URIs and the CSS is inline, so the file opens offline and can be mailed alone; a
  content security policy forbids the page every network and script resource.

Everything is built in a temporary folder inside the sweep directory and moved into place at the end
(``os.replace``), so an interrupted report leaves the previous files whole. Only those three outputs are
ever replaced; ``arms/``, ``arms.json`` and ``sweep.toml`` are only read.
"""

from __future__ import annotations

import base64
import datetime as _dt
import html
import io
import os
import shutil
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from paramviz.errors import ConfigError, ImageError, UnknownNameError
from paramviz.io import add_to_manifest, read_manifest
from paramviz.sweep.collect import SEED_AXIS, Arm, Sweep, load_annotations, read_sweep_dir
from paramviz.sweep.collect import annotate as join_annotations
from paramviz.sweep.plots import write_plots
from paramviz.sweep.spec import axis_label, format_value
from paramviz.sweep.tables import (
    DDOF,
    METRIC_DIRECTIONS,
    Group,
    best_groups,
    format_number,
    format_stat,
    group_arms,
    has_seeds,
    metrics_csv,
    summarize,
    value_columns,
)

#: Output names inside the sweep directory.
CSV_NAME = "metrics.csv"
HTML_NAME = "report.html"
PLOTS_DIR = "plots"
#: Images with a longer side are embedded downscaled to this many pixels (the full image is linked).
THUMB_SIZE = 384
#: Width of an image in the contact sheet, in CSS pixels.
SHEET_IMAGE_PX = 160

#: ``progress(done, total, what)``: called after each arm's image is embedded (the same signature as
#: ``paramviz.cli.progress.ProgressBar.advance``).
Progress = Callable[[int, int, str], None]


@dataclass(frozen=True)
class ReportPaths:
    """Files written by :func:`build_report`.

    Attributes:
        metrics_csv: ``DIR/metrics.csv``.
        html: ``DIR/report.html``.
        plots_dir: ``DIR/plots``.
        plots: ``{column: DIR/plots/<column>.png}`` for every plotted value.
    """

    metrics_csv: Path
    html: Path
    plots_dir: Path
    plots: dict[str, Path]


@dataclass(frozen=True)
class Layout:
    """How the contact sheet is laid out: axes combined into rows, into columns, and shown side by side."""

    rows: tuple[str, ...]
    cols: tuple[str, ...]
    inner: tuple[str, ...]


def _parse_axes(option: str, value: str | Sequence[str] | None, sweep: Sweep) -> list[str] | None:
    if value is None:
        return None
    items = value.split(",") if isinstance(value, str) else list(value)
    keys = [str(k).strip() for k in items]
    if not keys or any(not k for k in keys):
        raise ConfigError(
            f"--{option} {value!r} is malformed; expected axis keys separated by commas, e.g. "
            f"{', '.join(sweep.axes[:2]) or 'param.name'}"
        )
    for key in keys:
        if key not in sweep.axes:
            raise UnknownNameError(
                "axis",
                key,
                sweep.axes,
                f"--{option} takes axis keys of this sweep: {', '.join(sweep.axes) or 'it has none'}",
            )
    if len(set(keys)) != len(keys):
        raise ConfigError(f"--{option} {value!r} names an axis twice")
    return keys


def resolve_layout(
    sweep: Sweep, rows: str | Sequence[str] | None = None, cols: str | Sequence[str] | None = None
) -> Layout:
    """Choose the contact sheet's rows and columns.

    Defaults: the columns are the non-seed axis with the most values (the later one on a tie, as the grid
    varies later axes fastest), the rows combine the other non-seed axes, and the seeds sit side by side in
    each cell. Given ``rows`` or ``cols`` (comma-separated axis keys) are used as they are; non-seed axes named
    in neither join the rows; ``seed`` may be named to take it out of the cells.

    Raises:
        UnknownNameError: A key that is not an axis of the sweep (with close matches and the axes).
        ConfigError: A malformed list, or an axis both in rows and in columns.
    """
    row_keys = _parse_axes("rows", rows, sweep)
    col_keys = _parse_axes("cols", cols, sweep)
    if row_keys is not None and col_keys is not None:
        both = [k for k in row_keys if k in col_keys]
        if both:
            raise ConfigError(f"axis {both[0]!r} is given both as --rows and as --cols; give it to one of them")
    taken = set(row_keys or ()) | set(col_keys or ())
    free = [a for a in sweep.non_seed_axes if a not in taken]
    if col_keys is None:
        col_keys = []
        if free:
            counts = [len(sweep.values(a)) for a in free]
            best = max(counts)
            col_keys = [free[len(counts) - 1 - counts[::-1].index(best)]]
        free = [a for a in free if a not in col_keys]
    row_keys = [*(row_keys or ()), *free]
    used = set(row_keys) | set(col_keys)
    inner = [a for a in sweep.axes if a not in used]
    return Layout(tuple(row_keys), tuple(col_keys), tuple(inner))


def build_report(
    sweep_dir: str | Path,
    *,
    rows: str | None = None,
    cols: str | None = None,
    annotate: str | Path | None = None,
    progress: Progress | None = None,
) -> ReportPaths:
    """Write ``metrics.csv``, ``report.html`` and ``plots/`` into a sweep directory.

    Args:
        sweep_dir: Directory written by ``paramviz sweep run`` (it must hold ``arms.json``); pending and
            failed arms are shown as such.
        rows: Axis keys (comma-separated) combined into the contact sheet's rows; see :func:`resolve_layout`.
        cols: Axis keys combined into its columns.
        annotate: A ``paramviz robustness`` CSV; its R(f) is joined onto the arms by backbone and layer and
            shown under each image, in the table and in ``metrics.csv``.
        progress: Called as ``progress(done, total, what)`` while images are embedded.

    Returns:
        The paths written.

    Raises:
        ConfigError: Not a sweep directory, a corrupt ``arms.json``, a bad ``annotate`` file, or a report that
            cannot be written there.
        UnknownNameError: ``rows`` or ``cols`` names an axis the sweep does not have.
    """
    sweep = read_sweep_dir(sweep_dir)
    layout = resolve_layout(sweep, rows, cols)
    annotated = annotate is not None
    if annotate is not None:
        join_annotations(sweep, load_annotations(annotate), source=f"annotate file {str(annotate)!r}")
    final = sweep.path
    plots_target = final / PLOTS_DIR
    if plots_target.is_symlink() or (plots_target.exists() and not plots_target.is_dir()):
        raise ConfigError(
            f"{str(plots_target)!r} exists and is not a folder; move it away so the report can write its plots there"
        )
    try:
        tmp = Path(tempfile.mkdtemp(prefix=".report.tmp-", dir=final))
    except OSError as exc:
        raise ConfigError(f"cannot write the report into {str(final)!r}: {exc}") from None
    try:
        plots = write_plots(sweep, _mkdir(tmp / PLOTS_DIR))
        page = render_html(sweep, layout, plots, annotated=annotated, progress=progress)
        (tmp / HTML_NAME).write_text(page, encoding="utf-8")
        # after the page: embedding the images finds unreadable ones, which the CSV's error column reports
        (tmp / CSV_NAME).write_text(metrics_csv(sweep, annotated), encoding="utf-8")
        _commit(tmp, final)
    except OSError as exc:
        raise ConfigError(f"cannot write the report into {str(final)!r}: {exc}") from None
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return ReportPaths(
        metrics_csv=final / CSV_NAME,
        html=final / HTML_NAME,
        plots_dir=final / PLOTS_DIR,
        plots={column: final / PLOTS_DIR / p.name for column, p in plots.items()},
    )


def _mkdir(path: Path) -> Path:
    path.mkdir()
    return path


def _commit(tmp: Path, final: Path) -> None:
    """Move the finished outputs into ``final``: the CSV, then the plots folder (swapped whole), the HTML last."""
    os.replace(tmp / CSV_NAME, final / CSV_NAME)
    target = final / PLOTS_DIR
    if target.is_dir():  # a real folder (build_report refused anything else)
        target.rename(tmp / "plots.old")  # removed with tmp: stale plots of metrics no longer present go too
    (tmp / PLOTS_DIR).rename(target)
    os.replace(tmp / HTML_NAME, final / HTML_NAME)
    if read_manifest(final) is not None:  # a sweep directory paramviz owns: list the report's files in it
        plots = [f"{PLOTS_DIR}/{p.name}" for p in target.iterdir()]
        add_to_manifest(final, [CSV_NAME, HTML_NAME, *plots])


# --- HTML ---------------------------------------------------------------------------------------------------
_CSS = """
body { font-family: system-ui, -apple-system, "Segoe UI", Roboto, "DejaVu Sans", sans-serif; margin: 1.5em;
       color: #1d1d1f; background: #fff; line-height: 1.35; }
h1 { font-size: 1.5em; margin: 0 0 .3em; } h2 { font-size: 1.2em; margin-top: 1.8em; border-bottom: 1px solid #ddd; }
h3 { font-size: 1em; margin: 1.2em 0 .4em; }
nav { margin-bottom: 1em; } nav a { margin-right: 1em; }
code, pre { font-family: ui-monospace, "DejaVu Sans Mono", Menlo, monospace; }
pre { background: #f6f8fa; padding: .8em; overflow-x: auto; font-size: .85em; border-radius: 4px; }
.scroll { overflow-x: auto; }
table { border-collapse: collapse; font-size: .88em; }
th, td { border: 1px solid #d0d7de; padding: .3em .55em; vertical-align: top; }
thead th { background: #f6f8fa; position: sticky; top: 0; }
table.kv th { text-align: left; background: #f6f8fa; font-weight: 600; }
table.numbers td.num { text-align: right; font-variant-numeric: tabular-nums; white-space: nowrap; }
td.best { background: #d8f5d0; font-weight: 700; }
table.sheet th.rowlabel, table.sheet th.collabel { background: #f6f8fa; text-align: left; font-weight: 600;
       white-space: nowrap; }
table.sheet td { padding: .35em; }
.cell { display: flex; gap: .4em; align-items: flex-start; }
figure { margin: 0; width: %(w)dpx; }
figure img, .placeholder { width: %(w)dpx; height: auto; display: block; border: 1px solid #ccc;
       box-sizing: border-box; }
img.small { image-rendering: pixelated; }
.placeholder { height: %(w)dpx; box-sizing: border-box; display: flex; align-items: center;
       justify-content: center; text-align: center; font-size: .8em; padding: .5em; overflow: hidden;
       background: #f3f3f3; color: #555; }
.placeholder.failed { background: #fde8e8; color: #8a1c1c; border-color: #e5a3a3; }
figcaption { font-size: .74em; color: #333; margin-top: .2em; overflow-wrap: anywhere; }
figcaption .rf { color: #0b5394; font-weight: 600; }
.muted { color: #666; } .legend { font-size: .85em; color: #444; margin: .4em 0; }
.plots figure { width: auto; margin: 0 0 1.2em; } .plots img { width: auto; max-width: 100%%; border: none; }
.status-failed { color: #8a1c1c; font-weight: 600; } .status-pending { color: #666; }
"""


def _e(text: object) -> str:
    return html.escape(str(text), quote=True)


def _axes_label(arm_or_axes: Arm | dict, keys: Sequence[str], sep: str = "<br>") -> str:
    axes = arm_or_axes.axes if isinstance(arm_or_axes, Arm) else arm_or_axes
    return sep.join(_e(axis_label(k, axes[k])) for k in keys)


def render_html(
    sweep: Sweep,
    layout: Layout,
    plots: dict[str, Path],
    *,
    annotated: bool = False,
    progress: Progress | None = None,
    built: _dt.datetime | None = None,
) -> str:
    """The report page as one self-contained HTML string (plots are read from ``plots`` and embedded)."""
    built = built or _dt.datetime.now(_dt.timezone.utc)
    name = sweep.path.resolve().name
    sections = [
        _provenance(sweep, built),
        _contact_sheet(sweep, layout, annotated, progress),
        _metrics_table(sweep, annotated),
        _plots_section(sweep, plots),
        _failures(sweep),
    ]
    return (
        '<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n'
        '<meta http-equiv="Content-Security-Policy" content="default-src \'none\'; img-src data:; '
        "style-src 'unsafe-inline'\">\n"
        '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
        f"<title>Sweep report: {_e(name)}</title>\n"
        '<link rel="icon" href="data:,">\n'
        f"<style>{_CSS % {'w': SHEET_IMAGE_PX}}</style>\n</head>\n<body>\n"
        f"<h1>Sweep report: <code>{_e(name)}</code></h1>\n"
        '<nav><a href="#images">Images</a><a href="#metrics">Metrics</a><a href="#plots">Plots</a>'
        '<a href="#failures">Failures and pending</a></nav>\n' + "\n".join(sections) + "\n</body>\n</html>\n"
    )


def _distinct(sweep: Sweep, key: str) -> str:
    values: dict[str, None] = {}
    for arm in sweep.arms:
        value = arm.info.get(key)
        if value is None and key == "backbone":
            value = arm.config.get("backbone")
        if value not in (None, ""):
            values[str(value)] = None
    return ", ".join(values) or "—"


def _provenance(sweep: Sweep, built: _dt.datetime) -> str:
    from paramviz import __version__

    done, failed, pending = (sweep.count(s) for s in ("done", "failed", "pending"))
    rows = [
        ("sweep directory", f"<code>{_e(sweep.path.resolve())}</code>"),
        ("task", _e(sweep.task)),
        (
            "axes",
            _e(", ".join(f"{a} ({len(sweep.values(a))})" for a in sweep.axes) or "none")
            + (f' <span class="muted">(spread over <code>{SEED_AXIS}</code>)</span>' if has_seeds(sweep) else ""),
        ),
        (
            "arms",
            f"{len(sweep.arms)}: {done} done, "
            f'<span class="{"status-failed" if failed else ""}">{failed} failed</span>, {pending} pending',
        ),
        ("paramviz (runs)", _e(_distinct(sweep, "paramviz"))),
        ("torch", _e(_distinct(sweep, "torch"))),
        ("device", _e(_distinct(sweep, "device"))),
        ("backbone", _e(_distinct(sweep, "backbone"))),
        ("report built", f"{_e(built.strftime('%Y-%m-%d %H:%M:%S %Z'))} by paramviz {_e(__version__)}"),
    ]
    table = "".join(f"<tr><th>{k}</th><td>{v}</td></tr>" for k, v in rows)
    toml = sweep.sweep_toml if sweep.sweep_toml is not None else "(sweep.toml not found in the sweep directory)"
    return (
        f'<section id="provenance">\n<table class="kv">{table}</table>\n'
        f"<h3>sweep.toml</h3>\n<pre>{_e(toml)}</pre>\n</section>"
    )


def _image_tag(arm: Arm) -> tuple[str, str | None]:
    """The ``<img>`` of a done arm (data URI), or a placeholder; and a problem to report, if any."""
    if arm.status != "done":
        text = "pending" if arm.status == "pending" else f"failed: {arm.error or 'no error message'}"
        return f'<div class="placeholder {arm.status}">{_e(text)}</div>', None
    if arm.image is None:
        return '<div class="placeholder failed">no image.png</div>', None
    from paramviz.io import load_image, tensor_to_pil

    try:
        image = load_image(arm.image)
        h, w = image.shape[-2:]
        if max(h, w) > THUMB_SIZE:
            buffer = io.BytesIO()
            tensor_to_pil(load_image(arm.image, size=THUMB_SIZE)).save(buffer, format="PNG")
            data = buffer.getvalue()
        else:
            data = arm.image.read_bytes()
    except (ImageError, OSError) as exc:
        return '<div class="placeholder failed">image.png unreadable</div>', f"image.png unreadable ({exc})"
    uri = "data:image/png;base64," + base64.b64encode(data).decode("ascii")
    small = ' class="small"' if max(h, w) < SHEET_IMAGE_PX else ""
    alt = ", ".join(axis_label(k, v, "=") for k, v in arm.axes.items())
    return f'<img src="{uri}"{small} width="{w}" height="{h}" alt="{_e(alt)}" title="arm {_e(arm.id)}">', None


def _rf_text(arm: Arm, with_name: bool = True) -> str:
    """``R(f) LAYER = r ± std`` of an annotated arm (``LAYER: r ± std`` without the name), else ``""``."""
    ann = arm.annotation
    if not ann:
        return ""
    spread = f" ± {format_number(ann['r_std'])}" if ann.get("r_std") is not None else ""
    return f"{'R(f) ' if with_name else ''}{ann['layer']}{' =' if with_name else ':'} {format_number(ann['r'])}{spread}"


def _contact_sheet(sweep: Sweep, layout: Layout, annotated: bool, progress: Progress | None) -> str:
    head = ['<section id="images">\n<h2>Images</h2>']
    if not sweep.arms:
        return head[0] + "\n<p>The sweep has no arms.</p>\n</section>"
    describe = [
        f"rows: <code>{_e(', '.join(layout.rows))}</code>" if layout.rows else "",
        f"columns: <code>{_e(', '.join(layout.cols))}</code>" if layout.cols else "",
        f"side by side in each cell: <code>{_e(', '.join(layout.inner))}</code>" if layout.inner else "",
    ]
    head.append(
        f'<p class="legend">{"; ".join(d for d in describe if d)}. Each image is captioned with its '
        "axis values" + ("; R(f) from the annotate file" if annotated else "") + ".</p>"
    )
    row_groups = group_arms(sweep.arms, layout.rows)
    col_groups = group_arms(sweep.arms, layout.cols)
    cells: dict[tuple[tuple[str, ...], tuple[str, ...]], list[Arm]] = {}
    for rkey, members in row_groups.items():
        for ckey, arms in group_arms(members, layout.cols).items():
            cells[(rkey, ckey)] = arms
    total, done = len(sweep.arms), 0
    out = ['<div class="scroll"><table class="sheet">']
    if layout.cols:
        corner = " \\ ".join(p for p in (", ".join(layout.rows), ", ".join(layout.cols)) if p)
        header = "".join(f'<th class="collabel">{_axes_label(a[0], layout.cols)}</th>' for a in col_groups.values())
        out.append(f"<thead><tr>{f'<th>{_e(corner)}</th>' if layout.rows else ''}{header}</tr></thead>")
    out.append("<tbody>")
    for rkey, members in row_groups.items():
        out.append("<tr>")
        if layout.rows:
            out.append(f'<th class="rowlabel">{_axes_label(members[0], layout.rows)}</th>')
        for ckey in col_groups:
            arms = cells.get((rkey, ckey), [])
            figures = []
            for arm in arms:
                tag, problem = _image_tag(arm)
                if problem and problem not in arm.problems:
                    arm.problems.append(problem)
                caption = _axes_label(arm, sweep.axes)
                if annotated:
                    rf = _rf_text(arm)
                    caption += f'<br><span class="rf">{_e(rf or "R(f): no match")}</span>'
                figures.append(f"<figure>{tag}<figcaption>{caption}</figcaption></figure>")
                done += 1
                if progress is not None:
                    progress(done, total, arm.id)
            body = "".join(figures) if figures else '<span class="muted">—</span>'
            out.append(f'<td><div class="cell">{body}</div></td>')
        out.append("</tr>")
    out.append("</tbody></table></div>")
    return "\n".join(head + out) + "\n</section>"


def _metrics_table(sweep: Sweep, annotated: bool) -> str:
    groups: list[Group] = summarize(sweep)
    columns = [c for c in value_columns(sweep) if any(c in g.stats for g in groups)]
    seeds = SEED_AXIS in sweep.axes
    spread = (
        f"mean ± std over <code>{SEED_AXIS}</code> (sample standard deviation, ddof={DDOF}); "
        "one value alone where only one seed finished"
        if seeds
        else "one arm per combination (the sweep has no seed axis), so no spread"
    )
    known = ", ".join(
        f"{name} {'↓' if d == 'lower' else '↑'}" for name, d in METRIC_DIRECTIONS.items() if name in columns
    )
    legend = (
        f'<p class="legend">{spread}. n = finished arms / arms in the combination. '
        + (
            f"Highlighted: the best mean of each metric whose better direction is known ({_e(known)}; "
            "↓ lower is better, ↑ higher); other metrics are not ranked."
            if known
            else "No metric here has a known better direction, so none is highlighted."
        )
        + "</p>"
    )
    if not groups or not columns:
        return '<section id="metrics">\n<h2>Metrics</h2>\n<p>No finished arm has metrics yet.</p>\n</section>'
    axes = sweep.non_seed_axes
    best = {c: best_groups(groups, c) for c in columns}

    def header(column: str) -> str:
        d = METRIC_DIRECTIONS.get(column)
        arrow = f' <span title="{d} is better">{"↓" if d == "lower" else "↑"}</span>' if d else ""
        return f"<th>{_e(column)}{arrow}</th>"

    head = "".join(f"<th>{_e(a)}</th>" for a in axes) + "<th>n</th>" + "".join(header(c) for c in columns)
    if annotated:
        head += '<th title="joined from the annotate file by backbone and layer">R(f)</th>'
    body = []
    for i, group in enumerate(groups):
        cells = "".join(f"<td>{_e(format_value(group.axes[a]))}</td>" for a in axes)
        cells += f'<td class="num">{group.n_done} / {len(group.arms)}</td>'
        for c in columns:
            stat = group.stats.get(c)
            note = f' <span class="muted">(n={stat.n})</span>' if stat and stat.n != group.n_done else ""
            cls = "num best" if i in best[c] else "num"
            cells += f'<td class="{cls}">{_e(format_stat(stat))}{note}</td>'
        if annotated:
            texts = dict.fromkeys(t for arm in group.arms if (t := _rf_text(arm, with_name=False)))
            cells += f"<td>{_e('; '.join(texts) or '—')}</td>"
        body.append(f"<tr>{cells}</tr>")
    return (
        '<section id="metrics">\n<h2>Metrics</h2>\n' + legend + '\n<div class="scroll"><table class="numbers">'
        f"<thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table></div>\n"
        f'<p class="legend">Per-arm values: <code>{CSV_NAME}</code>.</p>\n</section>'
    )


def _plots_section(sweep: Sweep, plots: dict[str, Path]) -> str:
    out = ['<section id="plots" class="plots">\n<h2>Plots</h2>']
    if not plots:
        why = "the sweep has no axis besides the seed" if not sweep.non_seed_axes else "no arm has metrics yet"
        out.append(f"<p>No plots: {why}.</p>")
    else:
        out.append(
            '<p class="legend">Each metric against each axis; points are means over seeds, error bars one standard '
            f"deviation (ddof={DDOF}). Files: <code>{PLOTS_DIR}/</code>.</p>"
        )
    for column, path in plots.items():
        uri = "data:image/png;base64," + base64.b64encode(path.read_bytes()).decode("ascii")
        out.append(
            f'<figure id="plot-{_e(path.stem)}"><img src="{uri}" alt="{_e(column)} against each axis">'
            f"<figcaption><code>{PLOTS_DIR}/{_e(path.name)}</code></figcaption></figure>"
        )
    return "\n".join(out) + "\n</section>"


def _arm_table(arms: Sequence[Arm], axes: Sequence[str], extra: str, value: Callable[[Arm], str]) -> str:
    head = "<th>arm</th>" + "".join(f"<th>{_e(a)}</th>" for a in axes) + f"<th>{_e(extra)}</th>"
    rows = "".join(
        f"<tr><td><code>{_e(arm.id)}</code></td>"
        + "".join(f"<td>{_e(format_value(arm.axes[a]))}</td>" for a in axes)
        + f"<td>{_e(value(arm))}</td></tr>"
        for arm in arms
    )
    return f'<div class="scroll"><table><thead><tr>{head}</tr></thead><tbody>{rows}</tbody></table></div>'


def _failures(sweep: Sweep) -> str:
    failed = [a for a in sweep.arms if a.status == "failed"]
    pending = [a for a in sweep.arms if a.status == "pending"]
    incomplete = [a for a in sweep.arms if a.status == "done" and a.problems]
    out = ['<section id="failures">\n<h2>Failures and pending arms</h2>']
    if not (failed or pending or incomplete):
        out.append("<p>Every arm finished.</p>")
    if failed:
        out.append(f'<h3 class="status-failed">Failed ({len(failed)})</h3>')
        out.append(_arm_table(failed, sweep.axes, "error", lambda a: a.error or "no error message recorded"))
    if pending:
        out.append(f'<h3 class="status-pending">Pending ({len(pending)})</h3>')
        out.append(
            '<p class="legend">Not run yet: re-running <code>paramviz sweep run</code> with the same file and '
            "<code>--out</code> runs them (finished arms are kept).</p>"
        )
        out.append(_arm_table(pending, sweep.axes, "status", lambda a: a.status))
    if incomplete:
        out.append(f"<h3>Done but incomplete ({len(incomplete)})</h3>")
        out.append(_arm_table(incomplete, sweep.axes, "problem", lambda a: "; ".join(a.problems)))
    return "\n".join(out) + "\n</section>"
