import csv
import json

import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image

import paramviz.cli.robustness  # noqa: F401  (registers the command until the package imports it)
import paramviz.tasks.base
from paramviz.cli import main
from paramviz.tasks.robustness import RobustnessConfig


def invoke(*args):
    return CliRunner().invoke(main, list(args), catch_exceptions=False)


@pytest.fixture
def images(tmp_path):
    folder = tmp_path / "imgs"
    folder.mkdir()
    rng = np.random.default_rng(1)
    for i in range(3):
        Image.fromarray(rng.integers(0, 256, (18, 22, 3), dtype=np.uint8)).save(folder / f"{i}.png")
    return str(folder)


@pytest.fixture
def fake_registry(monkeypatch, tiny_backbone):
    built = []

    def fake_build(name, weights, trust_checkpoint=False):
        built.append((name, weights))
        return tiny_backbone

    monkeypatch.setattr(paramviz.tasks.base, "build_backbone", fake_build)
    return built


def read_rows(path):
    with path.open() as fh:
        return list(csv.DictReader(fh))


def test_help_shows_the_config_defaults():
    result = invoke("robustness", "--help")
    assert result.exit_code == 0
    d = RobustnessConfig()
    assert f"[default: {d.steps}]" in result.output and f"[default: {d.size}]" in result.output
    for option in [
        "--layers",
        "--norm [l2|linf]",
        "--eps",
        "--step-size",
        "--random-start / --no-random-start",
        "--images",
        "--weights",
        "--backbone-option",
        "--trust-checkpoint",
        "--out",
        "--force",
        "--config",
    ]:
        assert option in result.output
    assert "4/255" in result.output


def test_writes_outputs_with_every_setting(tmp_path, images, fake_registry):
    out = tmp_path / "run"
    result = invoke(
        "robustness", "resnet50@random", "madry_resnet50_linf_eps4", "--layers", "stage1,conv3", "--norm", "linf",
        "--eps", "4/255", "--steps", "2", "--size", "16", "--images", images, "--device", "cpu", "--quiet",
        "--out", str(out),
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert fake_registry == [("resnet50", "random"), ("madry_resnet50_linf_eps4", "pretrained")]
    assert {p.name for p in out.iterdir()} == {
        ".paramviz.json",
        "robustness.csv",
        "robustness.json",
        "robustness.png",
        "config.toml",
    }
    rows = read_rows(out / "robustness.csv")
    assert [(r["backbone"], r["layer"]) for r in rows] == [
        ("resnet50@random", "stage1"),
        ("resnet50@random", "conv3"),
        ("madry_resnet50_linf_eps4", "stage1"),
        ("madry_resnet50_linf_eps4", "conv3"),
    ]
    row = rows[0]
    assert row["norm"] == "linf" and float(row["eps"]) == pytest.approx(4 / 255)
    assert float(row["step_size"]) == pytest.approx(2.5 * 4 / 255 / 2) and row["steps"] == "2"
    assert row["size"] == "16" and row["images"] == images and row["n_images"] == "3"
    assert "resnet50@random" in result.output and "eps=0.01569" in result.output
    assert json.loads((out / "robustness.json").read_text())["settings"]["norm"] == "linf"


def test_config_file_reproduces_a_run(tmp_path, images, fake_registry):
    first = tmp_path / "a"
    args = ["--layers", "conv2", "--steps", "2", "--size", "16", "--images", images, "--device", "cpu", "-q"]
    assert invoke("robustness", "tiny", *args, "--random-start", "--out", str(first)).exit_code == 0
    second = tmp_path / "b"
    rerun = invoke("robustness", "--config", str(first / "config.toml"), "--quiet", "--out", str(second))
    assert rerun.exit_code == 0, rerun.output
    assert read_rows(first / "robustness.csv")[0]["r"] == read_rows(second / "robustness.csv")[0]["r"]
    assert RobustnessConfig.from_toml(second / "config.toml").random_start is True


def test_user_errors_are_one_line_messages(tmp_path, images, fake_registry):
    no_backbone = invoke("robustness", "--layers", "conv2")
    assert no_backbone.exit_code == 2 and "name at least one BACKBONE" in no_backbone.output
    bad_layer = invoke(
        "robustness", "tiny", "--layers", "conv33", "--size", "16", "--images", images, "--out", str(tmp_path / "x")
    )
    assert bad_layer.exit_code == 2 and "unknown layer" in bad_layer.output and "'conv3'" in bad_layer.output
    assert not (tmp_path / "x").exists()
    bad_eps = invoke("robustness", "tiny", "--layers", "conv2", "--eps", "four")
    assert bad_eps.exit_code == 2 and "not a finite number or a fraction" in bad_eps.output
    huge_eps = invoke("robustness", "tiny", "--layers", "conv2", "--eps", "1e400")
    assert huge_eps.exit_code == 2 and "'1e400' is not a finite number" in huge_eps.output
    bad_option = invoke("robustness", "tiny", "--layers", "conv2", "--backbone-option", "memory_format=nhwc")
    assert bad_option.exit_code == 2 and "one of auto, channels_last, contiguous, got 'nhwc'" in bad_option.output
    no_layers = invoke("robustness", "tiny", "--size", "16", "--images", images, "--out", str(tmp_path / "y"))
    assert no_layers.exit_code == 2 and "no layers given for backbone 'tiny'" in no_layers.output


def test_size_height_by_width_crops_the_images_to_it(tmp_path, images, fake_registry, monkeypatch):
    import paramviz.tasks.robustness as task

    shapes = []
    load = task.load_image_set
    monkeypatch.setattr(task, "load_image_set", lambda *a: shapes.append(load(*a).shape) or load(*a))
    args = ["robustness", "tiny", "--layers", "conv2", "--steps", "1", "--images", images, "--device", "cpu", "-q"]
    result = invoke(*args, "--size", "24x40", "--out", str(tmp_path / "r"))
    assert result.exit_code == 0, result.output
    assert shapes == [(3, 3, 24, 40)]  # the three 18 x 22 images, resized to cover 24 x 40 and cropped
    assert read_rows(tmp_path / "r" / "robustness.csv")[0]["size"] == "24x40"
    assert RobustnessConfig.from_toml(tmp_path / "r" / "config.toml").size == (24, 40)
    bad = CliRunner().invoke(main, [*args, "--size", "0x5", "--out", str(tmp_path / "bad")])
    assert bad.exit_code == 2 and bad.stderr.count("\n") == 1 and "--size '0x5' has a side of 0" in bad.stderr
