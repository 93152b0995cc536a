"""Every registered task: same config and seed -> same output; another seed -> another output; one schema."""

import json
from pathlib import Path

import pytest

import paramviz.render
from paramviz.io import OutputDir
from paramviz.tasks import TASKS
from paramviz.tasks.base import SharedWork, backbone_seed, seeded_backbone
from paramviz.tasks.robustness import RobustnessConfig
from paramviz.tasks.stylize import StyleConfig
from paramviz.tasks.visualize import VisualizeConfig

STARRY = str(Path(__file__).resolve().parents[2] / "examples" / "images" / "starry_night.jpg")

#: One small config per task on a registry backbone with random weights (seeded by the run).
CONFIGS = {
    "visualize": VisualizeConfig(
        backbone="resnet18", weights="random", objectives=("layer2:3",), size=32, steps=3, device="cpu"
    ),
    "style": StyleConfig(
        content="sample:chelsea",
        styles=(STARRY,),
        preset="nakano",
        backbone="resnet18",
        weights="random",
        style_layers=("layer1",),
        content_layers=("layer2",),
        size=32,
        steps=3,
        device="cpu",
    ),
    "robustness": RobustnessConfig(
        backbones=("resnet18@random",), layers=("layer1",), steps=2, size=32, device="cpu", batch_size=6
    ),
}


def test_every_task_is_registered_with_a_config():
    assert set(TASKS.names()) == set(CONFIGS)
    for name, config in CONFIGS.items():
        assert isinstance(config, TASKS.get(name).config_cls)


def output_of(name: str, config, tmp: Path) -> bytes:
    task = TASKS.get(name)
    result = task.run(config)
    out = tmp / f"run-{len(list(tmp.iterdir()))}"
    with OutputDir(out) as target:
        task.write(result, target)
    if name == "robustness":
        rows = json.loads((out / "robustness.json").read_text())["per_image"]
        return json.dumps(rows, sort_keys=True).encode()
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["task"] == name
    for key in ("final_loss", "initial_loss", "steps", "wall_seconds", "steps_per_second", "device", "metrics"):
        assert key in metrics, key
    return (out / "image.png").read_bytes()


@pytest.mark.parametrize("name", list(CONFIGS))
def test_same_config_same_output_other_seed_other_output(name, tmp_path):
    config = CONFIGS[name]
    first = output_of(name, config, tmp_path)
    assert output_of(name, config, tmp_path) == first
    assert output_of(name, config.replace(seed=7), tmp_path) != first


def test_seeded_backbone_leaves_the_global_rng_alone_and_is_shared():
    import torch

    state = torch.random.get_rng_state()
    shared = SharedWork()
    a = seeded_backbone("resnet18", "random", seed=1, shared=shared)
    assert torch.equal(torch.random.get_rng_state(), state)
    assert seeded_backbone("resnet18", "random", seed=1, shared=shared) is a
    assert seeded_backbone("resnet18", "random", seed=2, shared=shared) is not a
    assert shared.built == 2
    assert backbone_seed("pretrained", 5) is None and backbone_seed("random", 5) == 5


def test_shared_work_drops_the_least_recently_used():
    shared = SharedWork(max_items=2)
    for key in "abc":
        shared.get(key, lambda key=key: key.upper())
    assert len(shared) == 2 and shared.get("a", lambda: "again") == "again"


def test_import_paramviz_render_is_the_module():
    assert callable(paramviz.render.render) and paramviz.render.__name__ == "paramviz.render"


def test_every_run_measures_its_image_metrics(tmp_path):
    from paramviz.metrics import metric_names

    output_of("visualize", CONFIGS["visualize"], tmp_path)
    metrics = json.loads((tmp_path / "run-0" / "metrics.json").read_text())
    assert set(metrics["metrics"]) == set(metric_names("visualize")) - {"transfer"}
    assert "transfer" in metrics["metrics_skipped"]  # no class-logit objective
    assert 0 <= metrics["metrics"]["hf_energy"] <= 1


def test_a_named_metric_that_cannot_apply_is_refused_before_the_run():
    from paramviz.errors import ConfigError
    from paramviz.tasks.base import MetricsConfig
    from paramviz.tasks.visualize import visualize

    config = CONFIGS["visualize"].replace(metrics=MetricsConfig(names=("transfer",)), steps=10**6)
    with pytest.raises(ConfigError, match="metric 'transfer' does not apply"):
        visualize(config)  # a million steps would not finish: it must fail before step 1


def test_no_metrics_when_the_list_is_empty(tmp_path):
    from paramviz.tasks.base import MetricsConfig
    from paramviz.tasks.visualize import visualize

    result = visualize(CONFIGS["visualize"].replace(metrics=MetricsConfig(names=())))
    assert result.metrics()["metrics"] == {}
