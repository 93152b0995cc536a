import json
from pathlib import Path

import pytest
from click.testing import CliRunner

import paramviz.cli.style  # noqa: F401  (registers the command)
import paramviz.tasks.base
import paramviz.tasks.stylize as task
from paramviz.backbones import build_backbone as paramviz_build_backbone
from paramviz.cli import main
from paramviz.tasks.style_presets import OPTIMIZER_PRESETS, STYLE_PRESETS
from paramviz.tasks.stylize import StyleConfig

IMAGES = Path(__file__).resolve().parents[2] / "examples" / "images"
STARRY = str(IMAGES / "starry_night.jpg")
FAST = ["--size", "32", "--steps", "3", "--device", "cpu", "--quiet"]
TINY = ["--style-layers", "relu1:1,relu2:3", "--content-layers", "relu2", "--optimizer", "adam-lucid"]


def invoke(*args):
    return CliRunner().invoke(main, list(args), catch_exceptions=False)


@pytest.fixture
def tiny(monkeypatch, tiny_backbone):
    monkeypatch.setattr(paramviz.tasks.base, "build_backbone", lambda *a, **k: tiny_backbone)
    return tiny_backbone


def test_help_lists_the_options_with_the_config_defaults():
    result = invoke("style", "--help")
    assert result.exit_code == 0
    text = " ".join(result.output.split())  # help text is wrapped
    d = StyleConfig()
    assert f"[default: {d.steps}]" in text and f"[default: {d.preset}]" in text and "[default: none]" in text
    for option in [
        "--backbone",
        "--preset",
        "--param",
        "--transforms",
        "--size",
        "--steps",
        "--optimizer",
        "--seed",
        "--out",
        "--force",
        "--config",
        "--style-scale",
        "--style-blend",
        "--init",
        "--original-colors",
        "--decorrelate / --no-decorrelate",
        "--content-backbone",
        "--swag / --no-swag",
        "--gram-norm",
        "--style-loss",
        "--tv-weight",
        "--threshold",
        "--device",
        "--list-presets",
    ]:
        assert option in text, option
    for name in OPTIMIZER_PRESETS.names():
        assert name in text


def test_list_presets_needs_no_images():
    result = invoke("style", "--list-presets")
    assert result.exit_code == 0
    for name in STYLE_PRESETS.names():
        assert f"{name}:" in result.output
    assert "relu4_2" in result.output and "layer3" in result.output and "adam-lucid" in result.output


def test_style_writes_outputs_and_refuses_overwrite(tmp_path, tiny):
    out = tmp_path / "run"
    args = ["style", "sample:chelsea", STARRY, STARRY, "--style-blend", "3,1", *TINY, "--param", "pixel"]
    result = invoke(*args, "--original-colors", "post", "--threshold", "2", *FAST, "--out", str(out))
    assert result.exit_code == 0, result.output
    assert "style loss" in result.output
    assert sorted(p.name for p in out.iterdir()) == [
        ".paramviz.json",
        "config.toml",
        "image.png",
        "metrics.json",
        "steps",
    ]
    config = StyleConfig.from_toml(out / "config.toml")
    assert config.style_layers == ("relu1", "relu2") and config.style_layer_weights == (1.0, 3.0)
    assert config.style_blend == (3.0, 1.0) and config.styles == (STARRY, STARRY)
    assert config.param.name == "pixel" and config.original_colors == "post" and config.lr == 0.05
    metrics = json.loads((out / "metrics.json").read_text())
    assert set(metrics["terms"]) == {"style:relu1", "style:relu2", "content:relu2"} and metrics["steps"] == 3

    again = invoke(*args, *FAST, "--out", str(out))
    assert again.exit_code != 0 and "--force" in again.output

    # --config reruns a run's resolved settings; options typed on the command line override it
    rerun = invoke(
        "style", "--config", str(out / "config.toml"), "--seed", "4", "--quiet", "--out", str(tmp_path / "b")
    )
    assert rerun.exit_code == 0, rerun.output
    assert StyleConfig.from_toml(tmp_path / "b" / "config.toml") == config.replace(seed=4)

    # options that determine others re-derive them instead of keeping the saved run's values
    adam = invoke(
        "style", "--config", str(out / "config.toml"), "--optimizer", "adam", "-q", "--out", str(tmp_path / "c")
    )
    assert adam.exit_code == 0, adam.output
    assert StyleConfig.from_toml(tmp_path / "c" / "config.toml").lr == OPTIMIZER_PRESETS.get("adam").lr

    forced = invoke(*args, *FAST, "--seed", "9", "--force", "--out", str(out))
    assert forced.exit_code == 0 and StyleConfig.from_toml(out / "config.toml").seed == 9


def test_style_on_the_bundled_efficientnet(tmp_path):
    out = tmp_path / "e"
    result = invoke("style", "sample:coffee", STARRY, "--transforms", "lucid", *FAST, "--out", str(out))
    assert result.exit_code == 0, result.output
    config = StyleConfig.from_toml(out / "config.toml")
    assert config.backbone == "efficientnet_lite0" and config.transforms == "lucid"
    assert config.style_layers == STYLE_PRESETS.get("efficientnet_lite0").style_layers


@pytest.mark.parametrize(
    "args,needle",
    [
        (["missing.jpg", STARRY], "does not exist"),
        (["sample:chelsea", "corrupt.jpg"], "cannot read image"),
        (["sample:chelsea", STARRY, "--preset", "gatis"], "did you mean 'gatys'"),
        (["sample:chelsea", STARRY, "--style-layers", "relu9"], "did you mean"),
        (["sample:chelsea", STARRY, "--style-weight", "0", "--content-weight", "0"], "weight 0"),
        (["sample:chelsea", STARRY, "--style-layers", "relu1:x"], "not a number"),
        (["sample:chelsea", STARRY, "--style-blend", "1,2"], "one weight per style image"),
        (["sample:chelsea"], "no style image"),
        (["sample:chelsea", STARRY, "--backbone-option", "fold_batchnorm"], "is not KEY=VALUE"),
        (["sample:chelsea", STARRY, "--backbone-option", "fold_batchnorm=2"], "fold_batchnorm must be true or false"),
    ],
)
def test_bad_input_gives_a_clear_error_and_writes_nothing(tmp_path, tiny, monkeypatch, args, needle):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "corrupt.jpg").write_bytes(b"\x89PNG\r\n\x1a\n broken")
    out = tmp_path / "never"
    result = invoke("style", *args, *FAST, "--out", str(out))
    assert result.exit_code != 0
    assert needle in result.output, result.output
    assert "Traceback" not in result.output
    assert sorted(p.name for p in tmp_path.iterdir()) == ["corrupt.jpg"]


def test_decompression_bomb_and_missing_content_weights_are_one_line_errors(tmp_path, tiny, monkeypatch):
    from PIL import Image

    import paramviz.backbones.weights as weights

    Image.new("L", (50, 50)).save(tmp_path / "bomb.png")
    Image.new("RGB", (30, 20), "red").save(tmp_path / "content.png")
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 1000)
    bomb = CliRunner().invoke(main, ["style", str(tmp_path / "content.png"), str(tmp_path / "bomb.png"), *FAST])
    assert bomb.exit_code == 2 and "Traceback" not in bomb.output
    assert bomb.stderr.strip().splitlines() == [
        f"Error: image {str(tmp_path / 'bomb.png')!r} has 2,500 pixels, more than the 1,000 that Pillow opens "
        "safely (PIL.Image.MAX_IMAGE_PIXELS; larger files can be decompression bombs); scale it down below that "
        "(e.g. to 4096 px on its long side) and use the smaller copy"
    ]

    monkeypatch.undo()
    monkeypatch.setattr(
        paramviz.tasks.base, "build_backbone", paramviz_build_backbone
    )  # the real factory for the content net
    monkeypatch.setattr(task, "build_style_backbone", lambda config, shared=None: tiny)
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "hub"))
    monkeypatch.setattr(weights, "download_file", lambda *a, **k: (_ for _ in ()).throw(OSError("offline")))
    args = ["style", "sample:chelsea", STARRY, "--content-backbone", "resnet50", "--content-layers", "layer3"]
    split = CliRunner().invoke(main, [*args, *TINY[:2], *FAST, "--out", str(tmp_path / "split")])
    assert split.exit_code == 1 and "Traceback" not in split.output
    (line,) = split.stderr.strip().splitlines()
    assert "resnet50-" in line and "--content-backbone-weights random" in line and "`--weights" not in line
    assert not (tmp_path / "split").exists()


def test_size_height_by_width_writes_exactly_that_shape(tmp_path, tiny):
    from PIL import Image

    args = ["style", "sample:chelsea", STARRY, *TINY, "--param", "pixel", "--steps", "2", "--device", "cpu", "-q"]
    result = invoke(*args, "--size", "24x40", "--out", str(tmp_path / "run"))
    assert result.exit_code == 0, result.output
    with Image.open(tmp_path / "run" / "image.png") as image:
        assert image.size == (40, 24)  # PIL: (width, height)
    assert StyleConfig.from_toml(tmp_path / "run" / "config.toml").size == (24, 40)
    bad = CliRunner().invoke(main, [*args, "--size", "24x", "--out", str(tmp_path / "bad")])
    assert bad.exit_code == 2 and bad.stderr.count("\n") == 1 and "--size '24x' is not a size" in bad.stderr
