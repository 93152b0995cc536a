import json

import numpy as np
import pytest
import torch
from PIL import Image

import paramviz.tasks.base
from paramviz.config import apply_overrides
from paramviz.errors import ConfigError, OutputExistsError, UnknownNameError
from paramviz.params import PARAMS, ParamSpec
from paramviz.tasks.base import SharedWork
from paramviz.tasks.visualize import VisualizeConfig, batch_key, run_visualize, visualize, visualize_batch


def small(**changes) -> VisualizeConfig:
    base = VisualizeConfig(objectives=("conv3:1",), size=24, steps=6, transforms="none", device="cpu")
    return base.replace(**changes)


@pytest.mark.parametrize("name", PARAMS.names())
def test_loss_falls_on_a_tiny_backbone_for_each_parameterization(tiny_backbone, name):
    result = visualize(small(param=ParamSpec(name), steps=10), backbone=tiny_backbone)  # the param's optimizer
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


# --- defaults that depend on the parameterization -------------------------------------------------------
def test_optimizer_and_lr_come_from_the_parameterization():
    assert (VisualizeConfig().optimizer, VisualizeConfig().lr) == (None, None)
    for name, expected in [("pixel", ("adam", 0.05)), ("fourier", ("adam", 0.05)), ("laplacian", ("adam", 0.05))]:
        assert (lambda c: (c.optimizer, c.lr))(small(param=ParamSpec(name)).resolve()) == expected
    assert small(param=ParamSpec("cppn")).resolve().lr == 0.005  # Lucid/Lucent's CPPN learning rate
    maco = small(param=ParamSpec("maco")).resolve()
    assert (maco.optimizer, maco.lr) == ("nadam", 1.0)  # Horama/xplique
    explicit = small(param=ParamSpec("cppn"), lr=0.02, optimizer="lbfgs").resolve()
    assert (explicit.optimizer, explicit.lr) == ("lbfgs", 0.02)
    for bad in (0, -1.0, float("nan"), "0.1", True):
        with pytest.raises(ConfigError, match="lr must be a positive number"):
            small(lr=bad)


def test_changing_param_rederives_lr_and_optimizer_unless_set_on_purpose():
    rerun = small(param=ParamSpec("pixel")).resolve()  # what a config.toml holds
    cppn = rerun.override({"param.name": "cppn"}).resolve()
    assert (cppn.optimizer, cppn.lr) == ("adam", 0.005)
    maco = rerun.override({"param.name": "maco"}).resolve()
    assert (maco.optimizer, maco.lr) == ("nadam", 1.0)
    typed = rerun.override({"param.name": "cppn", "lr": 0.05}).resolve()  # --param cppn --lr 0.05
    assert typed.lr == 0.05
    custom = small(param=ParamSpec("pixel"), lr=0.1, optimizer="lbfgs").override({"param.name": "maco"})
    assert (custom.optimizer, custom.lr) == ("lbfgs", 0.1)  # not the old default: kept
    assert rerun.override({"steps": 3}).lr == 0.05  # other changes keep them
    assert small(lr=0.01).rederive({"steps"}) == small(lr=0.01)


def test_batch_key_compares_the_resolved_optimizer_and_lr_and_the_alpha_channel():
    pixel, cppn = small(param=ParamSpec("pixel")), small(param=ParamSpec("cppn"))
    assert batch_key(pixel) != batch_key(cppn)  # cppn's lr 0.005 is not pixel's 0.05
    assert batch_key(cppn) == batch_key(small(param=ParamSpec("pixel"), lr=0.005))
    assert batch_key(small(param=ParamSpec("maco"), seed=1)) == batch_key(small(param=ParamSpec("maco"), seed=2))
    assert batch_key(small(param=ParamSpec("maco"))) is not None  # nadam is elementwise
    assert batch_key(small(param=ParamSpec("pixel", alpha=True))) != batch_key(pixel)
    assert batch_key(small(param=ParamSpec("pixel", alpha=True))) == batch_key(
        small(param=ParamSpec("fourier", alpha=True))
    )


@pytest.mark.parametrize(
    "params",
    [
        [ParamSpec("maco"), ParamSpec("maco", decorrelate=False)],
        [ParamSpec("pixel", alpha=True), ParamSpec("laplacian", alpha=True), ParamSpec("cppn", alpha=True)],
    ],
    ids=["maco-nadam", "alpha"],
)
def test_batched_new_parameterizations_match_the_runs_alone(tiny_backbone, params):
    lr = None if params[0].name == "maco" else 0.05
    configs = [small(param=p, seed=i, transforms="jitter:2", steps=6, lr=lr) for i, p in enumerate(params)]
    assert len({batch_key(c) for c in configs}) == 1
    batched = visualize_batch(configs, backbone=tiny_backbone)
    for config, together in zip(configs, batched, strict=True):
        alone = visualize(config, backbone=tiny_backbone)
        torch.testing.assert_close(together.images, alone.images, atol=1e-5, rtol=1e-4)
        assert together.render.history == pytest.approx(alone.render.history, rel=1e-4, abs=1e-6)


# --- transparency --------------------------------------------------------------------------------------
def test_alpha_run_writes_rgba_pngs_and_measures_the_rgb_part(tmp_path, tiny_backbone, monkeypatch):
    monkeypatch.setattr(paramviz.tasks.base, "build_backbone", lambda *a, **k: tiny_backbone)
    config = small(param=ParamSpec("fourier", alpha=True), objectives=("conv3:1|2",), thresholds=(2,))
    result = run_visualize(config, tmp_path / "run")
    assert result.images.shape == (2, 4, 24, 24)
    for name in ("image.png", "image_0.png", "steps/step_00002.png"):
        with Image.open(tmp_path / "run" / name) as png:
            assert png.mode == "RGBA", name
    with Image.open(tmp_path / "run" / "image_1.png") as png:
        alpha = torch.from_numpy(np.asarray(png.getchannel("A"), dtype=np.float32)) / 255
    torch.testing.assert_close(alpha, result.images[1, 3], atol=0.5 / 255 + 1e-6, rtol=0)
    metrics = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert metrics["metrics"]["hf_energy"] > 0 and "transform_robustness" in metrics["metrics"]
    assert VisualizeConfig.from_toml(tmp_path / "run" / "config.toml").param.alpha is True


def test_an_alpha_penalty_makes_the_image_more_transparent(tiny_backbone):
    base = small(param=ParamSpec("pixel", alpha=True), steps=30, lr=0.1, objectives=("conv3:1",))
    free = visualize(base, backbone=tiny_backbone).images[:, 3].mean()
    sparse = visualize(base.replace(objectives=("conv3:1", "2*l1:0:alpha")), backbone=tiny_backbone)
    assert float(sparse.images[:, 3].mean()) < float(free) - 0.1
    assert "l1:0:alpha" in sparse.render.final_terms
    with pytest.raises(ConfigError, match="--alpha"):
        visualize(small(objectives=("conv3:1", "l1:0:alpha")), backbone=tiny_backbone)


# --- export at another size (resolution-free parameterizations) -----------------------------------------
def test_cppn_exports_the_image_at_another_size(tmp_path, tiny_backbone, monkeypatch):
    monkeypatch.setattr(paramviz.tasks.base, "build_backbone", lambda *a, **k: tiny_backbone)
    config = small(param=ParamSpec("cppn"), export_size=(48, 64), objectives=("conv3:1|2",))
    result = run_visualize(config, tmp_path / "run")
    files = {p.name for p in (tmp_path / "run").iterdir()}
    assert {"image_48x64.png", "image_0_48x64.png", "image_1_48x64.png"} <= files
    with Image.open(tmp_path / "run" / "image_1_48x64.png") as png:
        assert png.size == (64, 48)
    exported = result.exports[(48, 64)]
    assert exported.shape == (2, 3, 48, 64)
    torch.testing.assert_close(exported[:, :, ::2, ::2].mean(), result.images.mean(), atol=0.02, rtol=0)
    assert VisualizeConfig.from_toml(tmp_path / "run" / "config.toml").export_size == (48, 64)


def test_export_size_is_checked_before_any_work():
    with pytest.raises(ConfigError, match="resolution-free"):
        small(param=ParamSpec("fourier"), export_size=(64, 64))
    for bad in [(0, 64), (64,), "64x64", (64.0, 64)]:
        with pytest.raises(ConfigError, match="export_size must be two positive whole numbers"):
            small(param=ParamSpec("cppn"), export_size=bad)
