import json

import pytest
from click.testing import CliRunner

from paramviz.cli import main
from paramviz.params import PARAMS
from paramviz.tasks.visualize import VisualizeConfig

FAST = ["--size", "32", "--steps", "3", "--device", "cpu", "--quiet"]


def invoke(*args):
    return CliRunner().invoke(main, list(args), catch_exceptions=False)


def test_help_matches_the_code():
    result = invoke("visualize", "--help")
    assert result.exit_code == 0
    for name in PARAMS.names():
        assert name in result.output
    defaults = VisualizeConfig()
    assert f"[default: {defaults.steps}]" in result.output and f"[default: {defaults.transforms}]" in result.output
    for option in [
        "--backbone",
        "--objective",
        "--decorrelate / --no-decorrelate",
        "--transforms",
        "--size",
        "--batch",
        "--steps",
        "--lr",
        "--optimizer",
        "--seed",
        "--device",
        "--out",
        "--force",
        "--config",
    ]:
        assert option in result.output
    assert "logit:" in result.output  # objective spec help, one form per line (not rewrapped by click)
    assert "\n    LAYER:CH:X:Y " in result.output and "\n    logit:LABEL" in result.output


@pytest.mark.slow
def test_visualize_writes_outputs_and_refuses_overwrite(tmp_path):
    out = tmp_path / "viz"
    result = invoke("visualize", "-O", "stage3:4", "--param", "pixel", "--no-decorrelate", *FAST, "--out", str(out))
    assert result.exit_code == 0, result.output
    assert {"image.png", "config.toml", "metrics.json"} <= {p.name for p in out.iterdir()}
    config = VisualizeConfig.from_toml(out / "config.toml")
    assert config.param.name == "pixel" and config.param.decorrelate is False and config.objectives == ("stage3:4",)
    assert json.loads((out / "metrics.json").read_text())["steps"] == 3

    again = invoke("visualize", "-O", "stage3:4", *FAST, "--out", str(out))
    assert again.exit_code != 0 and "--force" in again.output

    # --config reuses a run's settings; options typed on the command line override it.
    rerun = invoke(
        "visualize", "--config", str(out / "config.toml"), "--seed", "5", "--quiet", "--out", str(tmp_path / "b")
    )
    assert rerun.exit_code == 0, rerun.output
    config_b = VisualizeConfig.from_toml(tmp_path / "b" / "config.toml")
    assert config_b == config.replace(seed=5)


@pytest.mark.parametrize(
    "args,needle",
    [
        (["-O", "stage9:1"], "did you mean"),
        (["-O", "stage3:1", "--backbone", "efficientnet_lit0"], "efficientnet_lite0"),
        (["-O", "stage3:1", "--transforms", "pad:x"], "pad:x"),
        ([], "no objective given"),
        (["-O", "stage3:1", "--backbone-option", "memory_format=nhwc"], "one of auto, channels_last, contiguous"),
    ],
)
def test_bad_input_gives_clear_error_and_writes_nothing(tmp_path, args, needle):
    out = tmp_path / "never"
    result = invoke("visualize", *args, *FAST, "--out", str(out))
    assert result.exit_code != 0
    assert needle in result.output
    assert not out.exists() and list(tmp_path.iterdir()) == []


def test_models_and_layers_commands():
    models = invoke("models")
    assert models.exit_code == 0 and "efficientnet_lite0" in models.output and "resnet50" in models.output
    layers = invoke("layers", "resnet18")
    assert layers.exit_code == 0 and "layer4" in layers.output and "logits" in layers.output
    bad = invoke("layers", "resnet19")
    assert bad.exit_code != 0 and "resnet18" in bad.output


def test_the_progress_bar_reads_the_loss_a_few_times_a_second():
    from paramviz.cli.progress import LossReader

    class Record:
        def __init__(self, step, steps=100):
            self.step, self.steps, self.reads = step, steps, 0

        @property
        def loss(self):
            self.reads += 1
            return 1.0

    reader = LossReader(interval=60.0)
    records = [Record(step) for step in range(1, 101)]
    values = [reader(r) for r in records]
    assert values[0] == 1.0 and values[-1] == 1.0 and values[1:-1] == [None] * 98
    assert sum(r.reads for r in records) == 2

    vit = invoke("layers", "timm:vit_tiny_patch16_224")
    assert vit.exit_code == 0 and "blocks.11" in vit.output and "logits" in vit.output
    assert "skipping 1 class/register token" in vit.output


def test_help_says_lr_and_optimizer_come_from_the_param():
    output = invoke("visualize", "--help").output
    assert output.count("[default: (from --param)]") == 2
    for option in ("--alpha / --no-alpha", "--levels", "--spectrum", "--export-size"):
        assert option in output
    assert "nadam" in output


def test_a_rerun_with_another_param_picks_its_learning_rate(tmp_path, tiny_registered):
    common = ["-b", "tiny_sweep_net", "-O", "conv3:1", "--size", "16", "--steps", "2", "-t", "none", "--quiet"]
    first = invoke("visualize", *common, "--param", "pixel", "--device", "cpu", "--out", str(tmp_path / "a"))
    assert first.exit_code == 0, first.output
    recorded = VisualizeConfig.from_toml(tmp_path / "a" / "config.toml")
    assert (recorded.optimizer, recorded.lr) == ("adam", 0.05)
    config = str(tmp_path / "a" / "config.toml")
    cppn = invoke("visualize", "--config", config, "--param", "cppn", "--quiet", "--out", str(tmp_path / "b"))
    assert cppn.exit_code == 0, cppn.output
    assert VisualizeConfig.from_toml(tmp_path / "b" / "config.toml").lr == 0.005
    typed = ["--config", config, "--param", "maco", "--lr", "0.3", "--alpha", "--export-size", "8x12"]
    maco = invoke("visualize", *typed, "--quiet", "--out", str(tmp_path / "c"))
    assert maco.exit_code != 0 and "resolution-free" in maco.output  # maco cannot export at another size
    maco = invoke("visualize", *typed[:-2], "--quiet", "--out", str(tmp_path / "c"))
    assert maco.exit_code == 0, maco.output
    written = VisualizeConfig.from_toml(tmp_path / "c" / "config.toml")
    assert (written.optimizer, written.lr, written.param.alpha) == ("nadam", 0.3, True)
    exported = invoke("visualize", *common, "--param", "cppn", "--export-size", "24", "--out", str(tmp_path / "d"))
    assert exported.exit_code == 0, exported.output
    assert (tmp_path / "d" / "image_24x24.png").exists()
    bad = invoke("visualize", *common, "--param", "cppn", "--export-size", "2x", "--out", str(tmp_path / "e"))
    assert bad.exit_code != 0 and "expected N or HxW" in bad.output


def test_a_whole_layer_from_the_command_line(tmp_path, tiny_registered):
    out = tmp_path / "layer"
    common = ["-b", "tiny_sweep_net", "--size", "16", "--steps", "1", "-t", "none", "--device", "cpu", "--quiet"]
    result = invoke("visualize", "-O", "stage1:*", "--unit-batch", "4", *common, "--out", str(out))
    assert result.exit_code == 0, result.output
    assert len(list(out.glob("image_*.png"))) == 8  # TinyNet's relu1 has 8 channels
    bad = invoke("visualize", "-O", "stage1:3-1", *common, "--out", str(tmp_path / "bad"))
    assert bad.exit_code == 2 and "runs backwards" in bad.output and "Traceback" not in bad.output


def test_size_height_by_width_writes_a_non_square_image(tmp_path, tiny_registered):
    from PIL import Image

    args = ["-b", "tiny_sweep_net", "-O", "conv3:1", "--param", "pixel", "--steps", "2", "-t", "none"]
    result = invoke("visualize", *args, "--size", "24x40", "--device", "cpu", "--quiet", "--out", str(tmp_path / "a"))
    assert result.exit_code == 0, result.output
    with Image.open(tmp_path / "a" / "image.png") as image:
        assert image.size == (40, 24)  # PIL: (width, height)
    assert VisualizeConfig.from_toml(tmp_path / "a" / "config.toml").size == (24, 40)


@pytest.mark.parametrize(
    "size,needle",
    [
        ("0x5", "--size '0x5' has a side of 0 pixels"),
        ("abc", "--size 'abc' is not a size; expected N or HxW"),
        ("100000x2", "--size '100000x2': side 100000 is larger than 4096 pixels per side"),
        ("8x40", "size must be at least 16 pixels per side, got 8x40"),
    ],
)
def test_malformed_sizes_are_one_line_errors(tmp_path, size, needle):
    result = CliRunner().invoke(main, ["visualize", "-O", "stage3:1", "--size", size, "--out", str(tmp_path / "x")])
    assert result.exit_code == 2, result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: ") and needle in lines[0], result.stderr
    assert not (tmp_path / "x").exists()
