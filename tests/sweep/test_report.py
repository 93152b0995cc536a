import csv
import hashlib
import json
import re
import statistics
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import tomli_w
from PIL import Image

from paramviz.errors import ConfigError, ParamvizError, UnknownNameError
from paramviz.sweep.collect import read_sweep_dir
from paramviz.sweep.report import build_report, resolve_layout
from paramviz.tasks.robustness import COLUMNS, rows_to_csv

PARAMS = ("pixel", "fourier")
TRANSFORMS = ("none", "jitter", "lucid")
SEEDS = (0, 1, 2)
#: (param, transforms, seed) of the arm that failed and of the one still pending
FAILED = ("fourier", "lucid", 2)
PENDING = ("pixel", "jitter", 1)
BASE_HF = {("pixel", "none"): 0.0, ("pixel", "jitter"): 4.0, ("pixel", "lucid"): 8.0}
BASE_HF.update({("fourier", "none"): -0.5, ("fourier", "jitter"): 2.0, ("fourier", "lucid"): 3.0})


def hf_energy(param: str, transforms: str, seed: int) -> float:
    """hf_energy of an arm: base + seed + 1, so three seeds give base + 2 ± 1 (ddof=1)."""
    return BASE_HF[(param, transforms)] + seed + 1


def transform_robustness(param: str, transforms: str, seed: int) -> float:
    return 0.1 * (PARAMS.index(param) + 1) + 0.2 * TRANSFORMS.index(transforms) + 0.01 * seed


def novelty(param: str, transforms: str, seed: int) -> float:
    return 10.0 * PARAMS.index(param) - TRANSFORMS.index(transforms) + seed


def arm_id(param: str, transforms: str, seed: int) -> str:
    return f"{param[:3]}{transforms[:3]}{seed}".ljust(12, "0")


def write_arm(
    root: Path,
    task: str,
    aid: str,
    axes: dict[str, Any],
    status: str,
    config: dict[str, Any],
    metrics: dict[str, float] | None = None,
    colour: tuple[int, int, int] = (128, 64, 32),
    size: tuple[int, int] = (48, 48),
    error: str | None = None,
) -> dict[str, Any]:
    folder = root / "arms" / aid
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "config.toml").write_text(tomli_w.dumps(config), encoding="utf-8")
    if status == "done":
        image = Image.new("RGB", size, colour)
        for x in range(0, size[0], 8):  # a pattern, so the screenshot shows real pixels
            for y in range(size[1]):
                image.putpixel((x, y), (255, 255, 255))
        image.save(folder / "image.png")
        (folder / "metrics.json").write_text(
            json.dumps(
                {
                    "task": task,
                    "final_loss": -1.5 - (metrics or {}).get("hf_energy", 0.0),
                    "initial_loss": 0.25,
                    "wall_seconds": 2.5,
                    "steps": 64,
                    "steps_per_second": 25.6,
                    "device": "cpu",
                    "torch": "2.14.1",
                    "paramviz": "0.1.0",
                    "backbone": config.get("backbone", "efficientnet_lite0"),
                    "terms": {"channel:stage4:12": -1.5},
                    "metrics": metrics or {},
                }
            ),
            encoding="utf-8",
        )
    return {"id": aid, "axes": axes, "status": status, "error": error}


SWEEP_TOML = """task = "visualize"

[base]
objectives = ["stage4:12"]
steps = 64

[axes]
"param.name" = ["pixel", "fourier"]
transforms = ["none", "jitter", "lucid"]
seed = [0, 1, 2]
"""


def make_visualize_sweep(root: Path) -> Path:
    """2 params x 3 transform stacks x 3 seeds; one failed arm, one pending arm."""
    root.mkdir(parents=True, exist_ok=True)
    (root / "sweep.toml").write_text(SWEEP_TOML, encoding="utf-8")
    arms = []
    for p, param in enumerate(PARAMS):
        for t, transforms in enumerate(TRANSFORMS):
            for seed in SEEDS:
                key = (param, transforms, seed)
                status = "failed" if key == FAILED else "pending" if key == PENDING else "done"
                config = {
                    "backbone": "efficientnet_lite0",
                    "weights": "pretrained",
                    "objectives": ["stage4:12"],
                    "transforms": transforms,
                    "seed": seed,
                    "param": {"name": param},
                }
                metrics = {
                    "hf_energy": hf_energy(*key),
                    "transform_robustness": transform_robustness(*key),
                    "novelty": novelty(*key),
                }
                arms.append(
                    write_arm(
                        root,
                        "visualize",
                        arm_id(*key),
                        {"param.name": param, "transforms": transforms, "seed": seed},
                        status,
                        config,
                        metrics,
                        colour=(60 + 120 * p, 40 + 80 * t, 50 + 60 * seed),
                        error="NonFiniteLossError: loss became nan at step 17" if status == "failed" else None,
                    )
                )
    axes = ["param.name", "transforms", "seed"]
    (root / "arms.json").write_text(json.dumps({"task": "visualize", "axes": axes, "arms": arms}), encoding="utf-8")
    return root


def make_style_sweep(root: Path) -> Path:
    """A single-layer style sweep: style_layers (list values) x seed, on EfficientNet-Lite0."""
    root.mkdir(parents=True, exist_ok=True)
    (root / "sweep.toml").write_text(
        'task = "style"\n[axes]\nstyle_layers = [["stage2"], ["stage3"]]\nseed = [0, 1]\n', encoding="utf-8"
    )
    arms = []
    for i, layer in enumerate(("stage2", "stage3")):
        for seed in (0, 1):
            config = {
                "backbone": "efficientnet_lite0",
                "weights": "pretrained",
                "style_layers": [layer],
                "seed": seed,
            }
            metrics = {"style_distance": 1.0 + i + 0.5 * seed, "content_distance": 2.0 - i}
            arms.append(
                write_arm(
                    root,
                    "style",
                    f"style{i}{seed}".ljust(12, "0"),
                    {"style_layers": [layer], "seed": seed},
                    "done",
                    config,
                    metrics,
                    colour=(200, 100 + 50 * i, 80 * seed),
                    size=(64, 40),
                )
            )
    (root / "arms.json").write_text(
        json.dumps({"task": "style", "axes": ["style_layers", "seed"], "arms": arms}), encoding="utf-8"
    )
    return root


@pytest.fixture
def visualize_sweep(tmp_path: Path) -> Path:
    return make_visualize_sweep(tmp_path / "sweep")


@pytest.fixture
def style_sweep(tmp_path: Path) -> Path:
    return make_style_sweep(tmp_path / "style_sweep")


class Tables(HTMLParser):
    """Every <table> of a page by the id of its <section>: rows of (text, class) cells."""

    def __init__(self) -> None:
        super().__init__()
        self.section = ""
        self.tables: dict[str, list[list[list[tuple[str, str]]]]] = {}
        self.cell: list[str] | None = None
        self.cls = ""
        self.images: list[dict[str, str]] = []
        self.links: list[str] = []

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag == "section":
            self.section = a.get("id", "")
        elif tag == "table":
            self.tables.setdefault(self.section, []).append([])
        elif tag == "tr":
            self.tables[self.section][-1].append([])
        elif tag in ("td", "th"):
            self.cell, self.cls = [], a.get("class") or ""
        elif tag == "br" and self.cell is not None:
            self.cell.append("\n")
        if tag == "img":
            self.images.append({**a, "section": self.section})
        for key in ("src", "href"):
            if key in a:
                self.links.append(a[key])

    def handle_endtag(self, tag):
        if tag in ("td", "th") and self.cell is not None:
            self.tables[self.section][-1][-1].append(("".join(self.cell).strip(), self.cls))
            self.cell = None

    def handle_data(self, data):
        if self.cell is not None:
            self.cell.append(data)


def parse(path: Path) -> Tables:
    parser = Tables()
    parser.feed(path.read_text(encoding="utf-8"))
    return parser


def metric_rows(page: Tables) -> dict[tuple[str, str], dict[str, tuple[str, str]]]:
    """The metrics table as {(param, transforms): {column: (text, class)}}."""
    table = page.tables["metrics"][0]
    header = [text.split(" ")[0] for text, _ in table[0]]
    return {(row[0][0], row[1][0]): dict(zip(header, row, strict=True)) for row in table[1:]}


def snapshot(root: Path) -> dict[str, tuple[int, str]]:
    files = [p for p in root.rglob("*") if p.is_file() and (p.parts[len(root.parts)] == "arms" or p.parent == root)]
    return {
        str(p.relative_to(root)): (p.stat().st_mtime_ns, hashlib.sha256(p.read_bytes()).hexdigest())
        for p in files
        if p.name not in ("metrics.csv", "report.html")
    }


def robustness_csv(path: Path, rows: list[tuple[str, str, float]]) -> Path:
    full = []
    for backbone, layer, r in rows:
        row = dict.fromkeys(COLUMNS, 0)
        row.update(backbone=backbone, layer=layer, r=r, r_std=0.05, weights="bundled", norm="l2")
        full.append(row)
    path.write_text(rows_to_csv(full), encoding="utf-8")
    return path


# --- metrics.csv --------------------------------------------------------------------------------------------
def test_metrics_csv_has_one_row_per_arm_with_axes_metrics_and_run_fields(visualize_sweep):
    paths = build_report(visualize_sweep)
    with paths.metrics_csv.open(newline="", encoding="utf-8") as handle:
        reader = csv.DictReader(handle)
        rows = {row["id"]: row for row in reader}
        header = reader.fieldnames
    assert header == [
        "id",
        "status",
        "param.name",
        "transforms",
        "seed",
        "hf_energy",
        "transform_robustness",
        "novelty",
        "final_loss",
        "wall_seconds",
        "error",
    ]
    assert len(rows) == len(PARAMS) * len(TRANSFORMS) * len(SEEDS)
    for param in PARAMS:
        for transforms in TRANSFORMS:
            for seed in SEEDS:
                key = (param, transforms, seed)
                row = rows[arm_id(*key)]
                assert (row["param.name"], row["transforms"], row["seed"]) == (param, transforms, str(seed))
                if key in (FAILED, PENDING):
                    assert row["status"] == ("failed" if key == FAILED else "pending")
                    assert row["hf_energy"] == row["final_loss"] == ""
                    continue
                assert row["status"] == "done" and row["error"] == ""
                assert float(row["hf_energy"]) == hf_energy(*key)
                assert float(row["transform_robustness"]) == transform_robustness(*key)
                assert float(row["novelty"]) == novelty(*key)
                assert float(row["final_loss"]) == -1.5 - hf_energy(*key)
                assert float(row["wall_seconds"]) == 2.5
    assert "nan at step 17" in rows[arm_id(*FAILED)]["error"]


# --- the HTML table -----------------------------------------------------------------------------------------
def test_html_table_shows_mean_and_sample_std_over_seeds(visualize_sweep):
    page = parse(build_report(visualize_sweep).html)
    rows = metric_rows(page)
    assert len(rows) == len(PARAMS) * len(TRANSFORMS)
    # seeds 0, 1, 2 give base + 1, + 2, + 3: mean base + 2, std 1 with ddof=1
    assert rows[("pixel", "none")]["hf_energy"][0] == "2.000 ± 1.000"
    assert rows[("pixel", "none")]["n"][0] == "3 / 3"
    assert rows[("fourier", "none")]["hf_energy"][0] == "1.500 ± 1.000"
    # the failed and the pending arm leave two seeds
    for key in (FAILED, PENDING):
        cell = rows[key[:2]]
        values = [hf_energy(*key[:2], s) for s in SEEDS if s != key[2]]
        assert cell["n"][0] == "2 / 3"
        assert cell["hf_energy"][0] == f"{statistics.mean(values):.3f} ± {statistics.stdev(values):.3f}"
    robustness = [transform_robustness("fourier", "jitter", s) for s in SEEDS]
    assert rows[("fourier", "jitter")]["transform_robustness"][0] == (
        f"{statistics.mean(robustness):.3f} ± {statistics.stdev(robustness):.3f}"
    )


def test_best_values_are_highlighted_only_where_the_direction_is_known(visualize_sweep):
    rows = metric_rows(parse(build_report(visualize_sweep).html))
    best = {
        column: {key for key, row in rows.items() if "best" in row[column][1]} for column in next(iter(rows.values()))
    }
    assert best["hf_energy"] == {("fourier", "none")}  # lower is better: mean 1.5
    assert best["transform_robustness"] == {("fourier", "lucid")}  # higher is better
    assert best["novelty"] == set() and best["final_loss"] == set() and best["wall_seconds"] == set()


def test_one_seed_shows_the_value_without_a_spread(tmp_path, visualize_sweep):
    data = json.loads((visualize_sweep / "arms.json").read_text())
    for arm in data["arms"]:
        if arm["axes"]["param.name"] == "pixel" and arm["axes"]["transforms"] == "none" and arm["axes"]["seed"]:
            arm["status"] = "pending"
    (visualize_sweep / "arms.json").write_text(json.dumps(data))
    rows = metric_rows(parse(build_report(visualize_sweep).html))
    assert rows[("pixel", "none")]["hf_energy"][0] == f"{hf_energy('pixel', 'none', 0):.3f}"
    assert rows[("pixel", "none")]["n"][0] == "1 / 3"


# --- contact sheet ------------------------------------------------------------------------------------------
def test_default_layout_puts_the_axis_with_most_values_in_columns(visualize_sweep):
    layout = resolve_layout(read_sweep_dir(visualize_sweep))
    assert (layout.rows, layout.cols, layout.inner) == (("param.name",), ("transforms",), ("seed",))
    sheet = parse(build_report(visualize_sweep).html).tables["images"][0]
    assert [text for text, _ in sheet[0][1:]] == [f"transforms = {t}" for t in TRANSFORMS]
    assert [row[0][0] for row in sheet[1:]] == [f"param.name = {p}" for p in PARAMS]


def test_rows_and_cols_choose_the_sheet_layout(visualize_sweep):
    sweep = read_sweep_dir(visualize_sweep)
    layout = resolve_layout(sweep, rows="transforms")
    assert (layout.rows, layout.cols, layout.inner) == (("transforms",), ("param.name",), ("seed",))
    layout = resolve_layout(sweep, cols="param.name,seed")
    assert (layout.rows, layout.cols, layout.inner) == (("transforms",), ("param.name", "seed"), ())
    sheet = parse(build_report(visualize_sweep, rows="transforms").html).tables["images"][0]
    assert [text for text, _ in sheet[0][1:]] == [f"param.name = {p}" for p in PARAMS]
    assert [row[0][0] for row in sheet[1:]] == [f"transforms = {t}" for t in TRANSFORMS]


def test_every_image_is_embedded_and_captioned_with_its_axis_values(visualize_sweep):
    html_path = build_report(visualize_sweep).html
    text = html_path.read_text(encoding="utf-8")
    page = parse(html_path)
    sheet_images = [i for i in page.images if i["section"] == "images"]
    assert len(sheet_images) == len(PARAMS) * len(TRANSFORMS) * len(SEEDS) - 2  # failed and pending: placeholders
    assert all(i["src"].startswith("data:image/png;base64,") for i in sheet_images)
    assert 'alt="param.name=fourier, transforms=jitter, seed=1"' in text
    assert "param.name = fourier<br>transforms = jitter<br>seed = 1</figcaption>" in text
    assert "failed: NonFiniteLossError: loss became nan at step 17" in text
    assert '<div class="placeholder pending">pending</div>' in text


def test_report_is_self_contained(visualize_sweep):
    html_path = build_report(visualize_sweep).html
    page = parse(html_path)
    text = html_path.read_text(encoding="utf-8")
    assert all(src.startswith("data:") for src in (i["src"] for i in page.images))
    external = [link for link in page.links if not link.startswith(("data:", "#"))]
    assert external == []
    assert "<script" not in text and "@import" not in text and "url(" not in text
    assert "Content-Security-Policy" in text and "default-src 'none'" in text


def test_provenance_header(visualize_sweep):
    text = build_report(visualize_sweep).html.read_text(encoding="utf-8")
    provenance = parse(build_report(visualize_sweep).html).tables["provenance"][0]
    fields = {row[0][0]: row[1][0] for row in provenance}
    assert fields["arms"] == "18: 16 done, 1 failed, 1 pending"
    assert fields["torch"] == "2.14.1" and fields["device"] == "cpu" and fields["paramviz (runs)"] == "0.1.0"
    assert re.fullmatch(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC by paramviz .+", fields["report built"])
    assert "[axes]\n&quot;param.name&quot; = [&quot;pixel&quot;, &quot;fourier&quot;]" in text  # sweep.toml, escaped


def test_failures_section_lists_failed_and_pending_arms(visualize_sweep):
    failures = parse(build_report(visualize_sweep).html).tables["failures"]
    failed, pending = ([cell[0] for cell in row] for row in (failures[0][1], failures[1][1]))
    assert failed == [arm_id(*FAILED), *map(str, FAILED), "NonFiniteLossError: loss became nan at step 17"]
    assert pending == [arm_id(*PENDING), *map(str, PENDING), "pending"]


def test_done_arm_with_missing_or_broken_files_is_reported_not_fatal(visualize_sweep):
    (visualize_sweep / "arms" / arm_id("pixel", "none", 0) / "metrics.json").unlink()
    (visualize_sweep / "arms" / arm_id("pixel", "none", 1) / "image.png").write_bytes(b"not a png")
    paths = build_report(visualize_sweep)
    rows = metric_rows(parse(paths.html))
    # seeds 1 and 2 keep their metrics (2 and 3); the arm without metrics.json counts as done, not in n
    assert rows[("pixel", "none")]["hf_energy"][0] == f"2.500 ± {0.5**0.5:.3f} (n=2)"
    assert rows[("pixel", "none")]["n"][0] == "3 / 3"
    incomplete = parse(paths.html).tables["failures"][2]
    problems = {row[0][0]: row[-1][0] for row in incomplete[1:]}
    assert problems[arm_id("pixel", "none", 0)] == "metrics.json missing"
    assert problems[arm_id("pixel", "none", 1)].startswith("image.png unreadable")
    with paths.metrics_csv.open(newline="", encoding="utf-8") as handle:
        errors = {row["id"]: row["error"] for row in csv.DictReader(handle)}
    assert errors[arm_id("pixel", "none", 1)].startswith("image.png unreadable")


def test_large_images_are_embedded_downscaled(tmp_path, style_sweep):
    big = style_sweep / "arms" / "style0000000" / "image.png"
    Image.new("RGB", (1024, 640), (10, 200, 30)).save(big)
    page = parse(build_report(style_sweep).html)
    image = next(i for i in page.images if i["alt"].startswith("style_layers=stage2, seed=0"))
    assert (image["width"], image["height"]) == ("1024", "640")
    import base64
    import io

    embedded = Image.open(io.BytesIO(base64.b64decode(image["src"].split(",", 1)[1])))
    assert embedded.size == (384, 240)


# --- errors -------------------------------------------------------------------------------------------------
def test_unknown_rows_or_cols_key_names_the_axes_and_close_matches(visualize_sweep):
    with pytest.raises(UnknownNameError) as info:
        build_report(visualize_sweep, rows="param.nme")
    message = str(info.value)
    assert "'param.nme'" in message and "did you mean 'param.name'" in message
    assert "--rows takes axis keys of this sweep: param.name, transforms, seed" in message
    with pytest.raises(UnknownNameError, match=r"unknown axis 'layer'.*--cols takes axis keys"):
        build_report(visualize_sweep, cols="layer")
    with pytest.raises(ConfigError, match="both as --rows and as --cols"):
        build_report(visualize_sweep, rows="transforms", cols="transforms")
    with pytest.raises(ConfigError, match="malformed"):
        build_report(visualize_sweep, rows="transforms,,seed")
    assert not (visualize_sweep / "report.html").exists()


def test_not_a_sweep_dir_says_how_to_make_one(tmp_path):
    with pytest.raises(ConfigError, match=r"no arms.json.*paramviz sweep run SWEEP.toml --out"):
        build_report(tmp_path)
    with pytest.raises(ConfigError, match="does not exist"):
        build_report(tmp_path / "nowhere")


@pytest.mark.parametrize(
    ("content", "match"),
    [
        ("{not json", "invalid JSON"),
        ("[]", "expected a JSON object"),
        ('{"task": "visualize", "axes": ["seed"]}', "'arms' is missing"),
        ('{"task": "visualize", "axes": ["seed"], "arms": [{"id": "a", "axes": {}, "status": "done"}]}', "lacks axis"),
        ('{"task": "visualize", "axes": [], "arms": [{"id": "../x", "axes": {}, "status": "done"}]}', "invalid id"),
        ('{"task": "visualize", "axes": [], "arms": [{"id": "a", "axes": {}, "status": "ok"}]}', "status 'ok'"),
    ],
)
def test_corrupt_arms_json_is_a_clear_error(tmp_path, content, match):
    (tmp_path / "arms.json").write_text(content, encoding="utf-8")
    with pytest.raises(ConfigError, match=match) as info:
        build_report(tmp_path)
    assert "corrupt" in str(info.value) and "paramviz sweep run" in str(info.value)
    assert isinstance(info.value, ParamvizError)


# --- plots --------------------------------------------------------------------------------------------------
def test_plots_are_valid_pngs_one_per_value_and_embedded(visualize_sweep):
    paths = build_report(visualize_sweep)
    assert set(paths.plots) == {"hf_energy", "transform_robustness", "novelty", "final_loss", "wall_seconds"}
    text = paths.html.read_text(encoding="utf-8")
    import base64

    for path in paths.plots.values():
        assert path.parent == visualize_sweep / "plots" and path.is_file()
        with Image.open(path) as image:
            image.verify()
        with Image.open(path) as image:
            assert image.format == "PNG" and image.size[0] > 300 and image.size[1] > 200
            assert len(np.unique(np.asarray(image.convert("L")))) > 10  # something was drawn
        assert base64.b64encode(path.read_bytes()).decode() in text


# --- annotate -----------------------------------------------------------------------------------------------
def test_annotate_joins_r_onto_a_single_layer_style_sweep(tmp_path, style_sweep):
    rows = [("efficientnet_lite0", "stage2", 0.25), ("efficientnet_lite0", "stage3", 0.5), ("resnet50", "stage3", 9)]
    annotate = robustness_csv(tmp_path / "robustness.csv", rows)
    paths = build_report(style_sweep, annotate=annotate)
    with paths.metrics_csv.open(newline="", encoding="utf-8") as handle:
        table = list(csv.DictReader(handle))
    assert [(r["style_layers"], r["robustness_layer"], r["robustness_r"]) for r in table] == [
        ("stage2", "stage2", "0.25"),
        ("stage2", "stage2", "0.25"),
        ("stage3", "stage3", "0.5"),
        ("stage3", "stage3", "0.5"),
    ]
    text = paths.html.read_text(encoding="utf-8")
    assert text.count("R(f) stage2 = 0.250 ± 0.050</span></figcaption>") == 2
    assert text.count("R(f) stage3 = 0.500 ± 0.050</span></figcaption>") == 2
    metrics = parse(paths.html).tables["metrics"][0]
    assert metrics[0][-1][0] == "R(f)"
    assert [row[-1][0] for row in metrics[1:]] == ["stage2: 0.250 ± 0.050", "stage3: 0.500 ± 0.050"]


def test_annotate_matches_visualize_objective_layers_and_weights(tmp_path, visualize_sweep):
    annotate = robustness_csv(
        tmp_path / "robustness.csv",
        [("efficientnet_lite0@random", "stage4", 7.0), ("efficientnet_lite0", "stage4", 0.75)],
    )
    text = build_report(visualize_sweep, annotate=annotate).html.read_text(encoding="utf-8")
    # every arm (failed and pending too: their configs are known) gets the plain label's R; @random is another network
    assert text.count("R(f) stage4 = 0.750 ± 0.050</span></figcaption>") == 18 and "7.000" not in text
    exact = robustness_csv(tmp_path / "exact.csv", [("efficientnet_lite0@pretrained", "stage4", 0.5)])
    assert "R(f) stage4 = 0.500" in build_report(visualize_sweep, annotate=exact).html.read_text(encoding="utf-8")


def test_annotate_errors(tmp_path, style_sweep):
    with pytest.raises(ConfigError, match=r"annotate file .*missing.csv' does not exist.*paramviz robustness"):
        build_report(style_sweep, annotate=tmp_path / "missing.csv")
    (tmp_path / "bad.csv").write_text("backbone,value\nefficientnet_lite0,1\n", encoding="utf-8")
    with pytest.raises(ConfigError, match=r"lacks the column\(s\) 'layer', 'r'"):
        build_report(style_sweep, annotate=tmp_path / "bad.csv")
    (tmp_path / "text.csv").write_text("backbone,layer,r\nefficientnet_lite0,stage2,high\n", encoding="utf-8")
    with pytest.raises(ConfigError, match="line 2: R.f. value 'high' is not a number"):
        build_report(style_sweep, annotate=tmp_path / "text.csv")
    other = robustness_csv(tmp_path / "other.csv", [("resnet50", "layer3", 1.0)])
    with pytest.raises(ConfigError, match=r"no arm matched.*efficientnet_lite0 stage2, efficientnet_lite0 stage3"):
        build_report(style_sweep, annotate=other)
    twice = robustness_csv(tmp_path / "twice.csv", [("efficientnet_lite0", "stage2", 1.0)] * 2)
    with pytest.raises(ConfigError, match="2 rows for backbone 'efficientnet_lite0' layer 'stage2'"):
        build_report(style_sweep, annotate=twice)


# --- writing ------------------------------------------------------------------------------------------------
def test_rerun_replaces_only_the_report_files(visualize_sweep):
    before = snapshot(visualize_sweep)
    first = build_report(visualize_sweep)
    (first.plots_dir / "stale_metric.png").write_bytes(b"old")
    second = build_report(visualize_sweep, rows="transforms")
    assert snapshot(visualize_sweep) == before  # arms/, arms.json and sweep.toml untouched
    assert not (second.plots_dir / "stale_metric.png").exists()
    assert sorted(p.name for p in visualize_sweep.iterdir()) == [
        "arms",
        "arms.json",
        "metrics.csv",
        "plots",
        "report.html",
        "sweep.toml",
    ]


def test_an_interrupted_report_leaves_the_previous_files_whole(visualize_sweep, monkeypatch):
    first = build_report(visualize_sweep)
    old = {p: p.read_bytes() for p in (first.html, first.metrics_csv, *first.plots.values())}
    import paramviz.sweep.report as report

    def boom(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(report, "metrics_csv", boom)
    with pytest.raises(KeyboardInterrupt):
        build_report(visualize_sweep)
    assert {p: p.read_bytes() for p in old} == old
    assert not [p for p in visualize_sweep.iterdir() if p.name.startswith(".report.tmp-")]


def test_progress_is_called_once_per_arm(visualize_sweep):
    calls = []
    build_report(visualize_sweep, progress=lambda done, total, what: calls.append((done, total, what)))
    assert [c[0] for c in calls] == list(range(1, 19)) and {c[1] for c in calls} == {18}
    assert {c[2] for c in calls} == {
        arm["id"] for arm in json.loads((visualize_sweep / "arms.json").read_text())["arms"]
    }


def test_a_sweep_without_seed_axis_or_finished_arms_still_builds(tmp_path):
    (tmp_path / "arms.json").write_text(
        json.dumps(
            {
                "task": "visualize",
                "axes": ["objectives"],
                "arms": [{"id": "a1", "axes": {"objectives": ["stage4:12", "tv"]}, "status": "pending"}],
            }
        ),
        encoding="utf-8",
    )
    paths = build_report(tmp_path)
    text = paths.html.read_text(encoding="utf-8")
    assert "objectives = stage4:12, tv" in text and "No finished arm has metrics yet" in text
    assert paths.plots == {} and paths.plots_dir.is_dir()
    assert "sweep.toml not found" in text


# --- in a real browser ----------------------------------------------------------------------------------------
def test_report_opens_in_headless_chromium_with_all_images_loaded(tmp_path, visualize_sweep, chromium_page):
    paths = build_report(visualize_sweep)
    result = chromium_page(paths.html, screenshot=tmp_path / "report.png")
    assert result["title"] == "Sweep report: sweep"
    assert result["errors"] == []
    images = result["images"]
    assert len(images) == 16 + len(paths.plots)
    for image in images:
        assert image["complete"] and image["width"] > 0 and image["height"] > 0, image
        # shown at the image's own aspect ratio (not squashed)
        assert image["shownHeight"] == pytest.approx(image["shownWidth"] * image["height"] / image["width"], rel=0.03)
    with Image.open(tmp_path / "report.png") as shot:
        assert shot.size[0] >= 1000 and shot.size[1] > 2000


def test_browser_check_catches_a_broken_image_and_an_external_resource(tmp_path, chromium_page):
    page = tmp_path / "broken.html"
    page.write_text(
        "<!DOCTYPE html><html><head><meta charset='utf-8'><title>t</title>"
        '<meta http-equiv="Content-Security-Policy" content="default-src \'none\'; img-src data:">'
        "<link rel='icon' href='data:,'></head><body>"
        "<img src='data:image/png;base64,AAAA'><img src='https://example.invalid/x.png'></body></html>",
        encoding="utf-8",
    )
    result = chromium_page(page)
    assert [i["width"] for i in result["images"]] == [0, 0]
    assert result["errors"], "a blocked external image must show in the console"


def test_a_plots_file_in_the_way_is_refused_before_anything_is_written(visualize_sweep):
    (visualize_sweep / "plots").write_text("mine", encoding="utf-8")
    with pytest.raises(ConfigError, match="plots' exists and is not a folder"):
        build_report(visualize_sweep)
    assert (visualize_sweep / "plots").read_text(encoding="utf-8") == "mine"
    assert not (visualize_sweep / "metrics.csv").exists() and not (visualize_sweep / "report.html").exists()
