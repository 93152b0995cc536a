import csv
import json

import numpy as np
import pytest
import torch
from PIL import Image

import paramviz.tasks.base
import paramviz.tasks.robustness as task
from paramviz.errors import ConfigError, ImageError, OutputExistsError, UnknownNameError
from paramviz.metrics.robustness import PGDSettings, layer_robustness
from paramviz.tasks.robustness import (
    COLUMNS,
    RobustnessConfig,
    compute_robustness,
    format_table,
    image_sources,
    load_image_set,
    parse_backbone,
    resize_center_crop,
    resolve_layers,
    run_robustness,
)


def write_images(folder, n=3, shape=(20, 28)):
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    for i in range(n):
        Image.fromarray(rng.integers(0, 256, (*shape, 3), dtype=np.uint8)).save(folder / f"img{i}.png")
    (folder / "notes.txt").write_text("not an image")
    return folder


def small(tmp_path, **changes) -> RobustnessConfig:
    base = RobustnessConfig(
        backbones=("tiny",),
        layers=("stage1,conv3",),
        eps=0.5,
        steps=3,
        size=16,
        images=str(write_images(tmp_path / "imgs")),
        device="cpu",
    )
    return base.replace(**changes)


def test_config_validation_names_the_value(tmp_path):
    with pytest.raises(ConfigError, match="norm must be one of 'l2', 'linf', got 'l3'"):
        small(tmp_path, norm="l3")
    with pytest.raises(ConfigError, match="size must be at least 16"):
        small(tmp_path, size=8)
    with pytest.raises(ConfigError, match="size 100000 is larger than 4096 pixels per side"):
        small(tmp_path, size=100000)
    with pytest.raises(ConfigError, match="steps must be a positive integer"):
        small(tmp_path, steps=0)
    with pytest.raises(ConfigError, match="no backbone given"):
        small(tmp_path, backbones=())
    with pytest.raises(ConfigError, match="NAME@WEIGHTS"):
        small(tmp_path, backbones=("resnet50@",))
    with pytest.raises(ConfigError, match="names backbone 'vgg19', which is not among"):
        small(tmp_path, layers=("vgg19=relu1_1",))
    with pytest.raises(ConfigError, match="4/255"):
        small(tmp_path, norm="linf", eps=4.0)


def test_backbone_and_layer_specs():
    assert parse_backbone("resnet50@random") == task.BackboneSpec("resnet50@random", "resnet50", "random")
    assert parse_backbone("timm:resnet50", "x.pt").weights == "x.pt"
    layers = resolve_layers(
        ("layer1,layer2", "layer3", "efficientnet_lite0=stage0, stage1"),
        ("resnet50@random", "madry_resnet50_l2_eps3", "efficientnet_lite0"),
    )
    assert layers == {
        "resnet50@random": ("layer1", "layer2", "layer3"),
        "madry_resnet50_l2_eps3": ("layer1", "layer2", "layer3"),
        "efficientnet_lite0": ("stage0", "stage1"),
    }
    # A bare registry name matches its NAME@WEIGHTS label.
    assert resolve_layers(("resnet50=fc",), ("resnet50@random",)) == {"resnet50@random": ("fc",)}


def test_image_sources_from_a_folder_and_the_default_photos(tmp_path):
    folder = write_images(tmp_path / "imgs", n=3)
    assert [s.rsplit("/", 1)[-1] for s in image_sources(str(folder))] == ["img0.png", "img1.png", "img2.png"]
    assert image_sources(None)[0] == "sample:astronaut" and len(image_sources(None)) == 6
    with pytest.raises(ImageError, match="does not exist"):
        image_sources(str(tmp_path / "nope"))
    one = write_images(tmp_path / "one", n=1)
    with pytest.raises(ImageError, match="holds 1 image file"):
        image_sources(str(one))


def test_resize_center_crop_keeps_the_center():
    image = torch.zeros(1, 3, 40, 80)
    image[..., :, 20:60] = 1.0  # the central square is white, the side bands black
    out = resize_center_crop(image, 16)
    assert out.shape == (1, 3, 16, 16)
    assert out[..., 2:-2].min() > 0.99  # only the outermost columns see the black bands through the filter
    assert out.mean() > 0.95
    tall = torch.zeros(1, 3, 90, 30)
    tall[..., 30:60, :] = 1.0
    assert resize_center_crop(tall, 16)[..., 2:-2, :].min() > 0.99
    batch = load_image_set(["sample:chelsea", "sample:coffee"], 24)
    assert batch.shape == (2, 3, 24, 24) and batch.min() >= 0 and batch.max() <= 1


def test_compute_matches_the_metric_and_reports_progress(tmp_path, tiny_backbone):
    config = small(tmp_path)
    events = []
    result = compute_robustness(config, progress=events.append, backbones={"tiny": tiny_backbone})
    images = load_image_set(image_sources(config.images), 16)
    direct = layer_robustness(
        tiny_backbone,
        images,
        ["stage1"],
        PGDSettings("l2", 0.5, 3),
        batch_size=8,
        generator=torch.Generator().manual_seed(0),
    )[0]
    rows = result.rows()
    assert [r["layer"] for r in rows] == ["stage1", "conv3"]
    assert rows[0]["r"] == pytest.approx(direct.r, rel=1e-6)
    assert rows[0]["r_std"] == pytest.approx(direct.r_std, rel=1e-6)
    expected_settings = {"norm": "l2", "eps": 0.5, "steps": 3, "step_size": 2.5 * 0.5 / 3, "random_start": False}
    for row in rows:
        assert set(row) == set(COLUMNS)
        assert {k: row[k] for k in expected_settings} == pytest.approx(expected_settings)
        assert row["size"] == 16 and row["n_images"] == 3 and row["seed"] == 0 and row["images"] == config.images
        assert row["r_min"] <= row["r"] <= row["r_max"]
    assert [e.done for e in events] == list(range(1, 7)) and events[-1].total == 6
    assert {e.layer for e in events} == {"stage1", "conv3"}
    assert "stage1" in format_table(result) and "eps=0.5" in format_table(result)


def test_unknown_layer_fails_before_any_attack(tmp_path, tiny_backbone):
    events = []
    config = small(tmp_path, backbones=("tiny", "other"), layers=("stage1", "other=conv33"))
    with pytest.raises(UnknownNameError, match="conv3"):
        compute_robustness(config, progress=events.append, backbones={"tiny": tiny_backbone, "other": tiny_backbone})
    assert events == []
    with pytest.raises(ConfigError, match="no layers given for backbone 'tiny'"):
        compute_robustness(small(tmp_path, layers=()), backbones={"tiny": tiny_backbone})


def test_decompression_bomb_and_memory_are_refused_before_any_attack(tmp_path, tiny_backbone, monkeypatch):
    import paramviz.limits
    from paramviz.errors import ImageError

    events = []
    config = small(tmp_path)
    Image.new("L", (40, 40)).save(tmp_path / "imgs" / "bomb.png")
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 1000)
    with pytest.raises(ImageError, match="bomb.png' has 1,600 pixels, more than the 1,000"):
        compute_robustness(config, progress=events.append, backbones={"tiny": tiny_backbone})
    (tmp_path / "imgs" / "bomb.png").unlink()
    monkeypatch.setattr(paramviz.limits, "available_memory", lambda device: 1000)
    with pytest.raises(ConfigError, match="--batch-size"):
        compute_robustness(config, progress=events.append, backbones={"tiny": tiny_backbone})
    assert events == []


def test_named_backbones_are_built_with_their_weights_reproducibly(tmp_path, tiny_backbone, monkeypatch):
    calls = []

    def fake_build(name, weights, trust_checkpoint=False):
        calls.append((name, weights, trust_checkpoint, torch.rand(1).item()))
        return tiny_backbone

    monkeypatch.setattr(paramviz.tasks.base, "build_backbone", fake_build)
    config = small(tmp_path, backbones=("resnet50@random", "vgg19"), weights="w.pt", trust_checkpoint=True)
    before = torch.get_rng_state()
    compute_robustness(config)
    assert torch.equal(torch.get_rng_state(), before)  # the global RNG is left alone
    assert [c[:3] for c in calls] == [("resnet50", "random", True), ("vgg19", "w.pt", True)]
    assert calls[0][3] == calls[1][3]  # random weights are drawn from the config's seed


def test_backbone_options_reach_every_backbone(tmp_path, tiny_backbone, monkeypatch):
    calls = []

    def fake_build(name, weights, trust_checkpoint=False, **options):
        calls.append((name, options))
        return tiny_backbone

    monkeypatch.setattr(paramviz.tasks.base, "build_backbone", fake_build)
    options = ("fold_batchnorm=false", "memory_format=contiguous")
    compute_robustness(small(tmp_path, backbones=("resnet50@random", "vgg19"), backbone_options=options))
    expected = {"fold_batchnorm": False, "memory_format": "contiguous"}
    assert calls == [("resnet50", expected), ("vgg19", expected)]
    with pytest.raises(ConfigError, match="fold_batchnorm must be true or false, got 'no'"):
        small(tmp_path, backbone_options=("fold_batchnorm=no",))


def test_run_writes_table_json_plot_and_config(tmp_path, tiny_backbone):
    config = small(tmp_path, backbones=("tiny", "tiny@copy"), layers=("stage1,conv3,logits",))
    out = tmp_path / "run"
    result = run_robustness(config, out, backbones={"tiny": tiny_backbone, "tiny@copy": tiny_backbone})
    assert sorted(p.name for p in out.iterdir()) == [
        ".paramviz.json",
        "config.toml",
        "robustness.csv",
        "robustness.json",
        "robustness.png",
    ]
    with (out / "robustness.csv").open() as fh:
        rows = list(csv.DictReader(fh))
    assert [r["backbone"] for r in rows] == ["tiny"] * 3 + ["tiny@copy"] * 3
    assert tuple(rows[0]) == COLUMNS
    assert float(rows[0]["r"]) == pytest.approx(result.rows()[0]["r"])
    data = json.loads((out / "robustness.json").read_text())
    assert data["settings"]["eps"] == 0.5 and data["settings"]["step_size_rule"] == "2.5 * eps / steps"
    assert len(data["per_image"]["tiny"]["conv3"]) == 3 and len(data["images"]) == 3
    assert np.mean(data["per_image"]["tiny"]["conv3"]) == pytest.approx(float(rows[1]["r"]))
    with Image.open(out / "robustness.png") as png:
        assert png.size[0] > 300 and png.size[1] > 200
    assert RobustnessConfig.from_toml(out / "config.toml") == config
    with pytest.raises(OutputExistsError):
        run_robustness(config, out, backbones={"tiny": tiny_backbone, "tiny@copy": tiny_backbone})


def test_size_height_by_width_crops_every_image_to_that_shape(tmp_path, tiny_backbone):
    config = small(tmp_path, size=(16, 24), layers=("conv3",))
    assert load_image_set(image_sources(config.images), config.size).shape == (3, 3, 16, 24)
    result = compute_robustness(config, backbones={"tiny": tiny_backbone})
    assert [r["size"] for r in result.rows()] == ["16x24"]
    assert "16x24 px" in format_table(result)
