import json

import pytest
import torch

import paramviz.tasks.base
from paramviz.config import apply_overrides
from paramviz.errors import ConfigError, OutputExistsError, UnknownNameError
from paramviz.params import ParamSpec
from paramviz.tasks.base import SharedWork
from paramviz.tasks.visualize import VisualizeConfig, batch_key, run_visualize, visualize, visualize_batch


def small(**changes) -> VisualizeConfig:
    base = VisualizeConfig(objectives=("conv3:1",), size=24, steps=6, transforms="none", device="cpu")
    return base.replace(**changes)


def test_loss_falls_on_a_tiny_backbone_for_each_parameterization(tiny_backbone):
    for name in ("pixel", "fourier"):
        result = visualize(small(param=ParamSpec(name), steps=10, lr=0.1), backbone=tiny_backbone)
        assert result.render.history[-1] < result.render.history[0], name
        assert result.images.shape == (1, 3, 24, 24)
        assert result.images.min() >= 0 and result.images.max() <= 1


def test_batch_renders_independent_images_with_per_image_channels(tiny_backbone):
    result = visualize(small(objectives=("conv3:1|2",)), backbone=tiny_backbone)  # batch sized from the list
    assert result.images.shape == (2, 3, 24, 24) and result.config.batch == 2
    assert not torch.allclose(result.images[0], result.images[1])
    assert len(result.metrics()["final_loss_per_image"]) == 2


def test_config_validation_names_the_value():
    with pytest.raises(ConfigError, match="size must be at least 16"):
        small(size=8)
    with pytest.raises(ConfigError, match="steps must be a positive integer"):
        small(steps=0)
    with pytest.raises(UnknownNameError, match="'lbfgs'"):
        small(optimizer="lbgfs")
    with pytest.raises(ConfigError, match="set --batch 2"):
        visualize(small(objectives=("conv3:1|2",), batch=3))
    with pytest.raises(ConfigError, match="no objective given"):
        visualize(small(objectives=()))


def test_run_writes_outputs_and_config_round_trips(tmp_path, tiny_backbone, monkeypatch):

    monkeypatch.setattr(paramviz.tasks.base, "build_backbone", lambda *a, **k: tiny_backbone)
    config = small(thresholds=(3,))
    out = tmp_path / "run"
    run_visualize(config, out)
    assert sorted(p.name for p in out.iterdir()) == ["config.toml", "image.png", "metrics.json", "steps"]
    assert (out / "steps" / "step_00003.png").exists()
    recorded = VisualizeConfig.from_toml(out / "config.toml")
    assert recorded == config.resolve() and (recorded.optimizer, recorded.lr) == ("adam", 0.05)  # resolved
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["steps"] == 6 and metrics["final_loss"] < metrics["initial_loss"]
    assert set(metrics["terms"]) == {"channel:conv3:1"} and metrics["steps_per_second"] > 0
    with pytest.raises(OutputExistsError):
        run_visualize(config, out)
    # A failing run with --force leaves the earlier results untouched.
    with pytest.raises(UnknownNameError):
        run_visualize(apply_overrides(config, {"objectives": ("nolayer:1",)}), out, force=True)
    assert VisualizeConfig.from_toml(out / "config.toml") == recorded


@pytest.mark.slow
def test_real_efficientnet_channel_visualization_gains_activation():
    config = VisualizeConfig(objectives=("stage4:12",), size=64, steps=25, device="cpu")
    result = visualize(config)
    history = result.render.history
    assert history[-1] < history[0] - 1.0  # the channel's mean activation rose by more than 1


def test_backbone_options_reach_the_backbone(tiny_backbone, monkeypatch):

    seen = {}

    def fake_build(name, weights, **kwargs):
        seen.update(kwargs, name=name)
        return tiny_backbone

    monkeypatch.setattr(paramviz.tasks.base, "build_backbone", fake_build)
    visualize(small(backbone="vgg19", backbone_options=("pool=avg",), steps=1))
    assert seen["name"] == "vgg19" and seen["pool"] == "avg"


def test_batched_runs_match_the_runs_alone(tiny_backbone):
    configs = [
        small(param=ParamSpec("pixel"), seed=0, transforms="jitter:2", steps=8, lr=0.1),
        small(param=ParamSpec("fourier"), seed=1, transforms="jitter:2", steps=8, lr=0.1),
        small(param=ParamSpec("fourier", decorrelate=False), seed=2, transforms="jitter:2", steps=8, lr=0.1),
    ]
    keys = {batch_key(c) for c in configs}
    assert len(keys) == 1 and None not in keys
    batched = visualize_batch(configs, backbone=tiny_backbone)
    for config, together in zip(configs, batched, strict=True):
        alone = visualize(config, backbone=tiny_backbone)
        assert together.batched_with == 3 and together.images.shape == (1, 3, 24, 24)
        torch.testing.assert_close(together.images, alone.images, atol=1e-5, rtol=1e-4)
        assert together.render.history == pytest.approx(alone.render.history, rel=1e-4, abs=1e-6)
        assert together.render.final_terms == pytest.approx(alone.render.final_terms, rel=1e-4, abs=1e-6)
    assert not torch.allclose(batched[0].images, batched[1].images)


def test_batch_key_refuses_what_would_change_results():
    assert batch_key(small(optimizer="lbfgs")) is None
    assert batch_key(small(objectives=("conv3:1", "0.1*diversity:conv3"))) is None
    assert batch_key(small(objectives=("conv3:1@0",))) is None
    assert batch_key(small(objectives=("conv3:1|2",))) is None
    assert batch_key(small(seed=1)) == batch_key(small(seed=2))
    assert batch_key(small(seed=1, weights="random")) != batch_key(small(seed=2, weights="random"))
    assert batch_key(small(steps=5)) != batch_key(small(steps=6))
    with pytest.raises(ConfigError, match="cannot share one batch"):
        visualize_batch([small(), small(optimizer="lbfgs")])


def test_shared_work_builds_the_backbone_once(tiny_backbone, monkeypatch):
    built = []

    def fake_build(name, weights, **kwargs):
        built.append(name)
        return tiny_backbone

    monkeypatch.setattr(paramviz.tasks.base, "build_backbone", fake_build)
    shared = SharedWork()
    for seed in (0, 1):
        visualize(small(seed=seed, steps=1), shared=shared)
    assert len(built) == 1
