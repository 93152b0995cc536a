import json

import numpy as np
import pytest
import torch
from host_reads import DEVICES, no_sync_between
from PIL import Image

import paramviz.tasks.base
from paramviz.config import apply_overrides
from paramviz.errors import ConfigError, OutputExistsError, RenderInterrupted, SpecError, UnknownNameError
from paramviz.io import load_image, read_manifest
from paramviz.objectives import parse_objectives
from paramviz.params import PARAMS, ParamSpec
from paramviz.tasks.base import SharedWork
from paramviz.tasks.visualize import (
    VisualizeConfig,
    batch_key,
    image_labels,
    run_visualize,
    visualize,
    visualize_batch,
)


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
    with pytest.raises(ConfigError, match="size 100000 is larger than 4096 pixels per side"):
        small(size=100000)
    with pytest.raises(ConfigError, match="lr must be a finite number, got inf"):
        small(lr=float("inf"))
    with pytest.raises(ConfigError, match="lr 1e\\+38 is larger than 1000"):
        small(lr=1e38)
    with pytest.raises(ConfigError, match="lr must be positive"):
        small(lr=0.0)
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
    assert sorted(p.name for p in out.iterdir()) == [
        ".paramviz.json",
        "config.toml",
        "image.png",
        "metrics.json",
        "steps",
    ]
    assert (out / "steps" / "step_00003.png").exists()
    assert read_manifest(out).kind == "visualize"
    assert read_manifest(out).files == ("config.toml", "image.png", "metrics.json", "steps/step_00003.png")
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


def test_ctrl_c_writes_the_image_of_the_last_completed_step(tmp_path, tiny_backbone, monkeypatch):

    monkeypatch.setattr(paramviz.tasks.base, "build_backbone", lambda *a, **k: tiny_backbone)

    def interrupt(record):
        if record.step == 4:
            raise KeyboardInterrupt

    out = tmp_path / "run"
    with pytest.raises(RenderInterrupted) as info:
        run_visualize(small(steps=500, thresholds=(2, 300)), out, callbacks=[interrupt])
    assert info.value.written_to == out
    assert str(info.value) == (
        f'interrupted at step 4 of 500; wrote the current image to {out} (metrics.json has "interrupted_at_step": 4)'
    )
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["interrupted_at_step"] == 4 and metrics["steps"] == 4 and metrics["steps_requested"] == 500
    assert read_manifest(out).files == ("config.toml", "image.png", "metrics.json", "steps/step_00002.png")
    full = visualize(small(steps=4), backbone=tiny_backbone)
    expected = (full.images[0].clamp(0, 1) * 255).round() / 255
    torch.testing.assert_close(load_image(out / "image.png")[0], expected, atol=1 / 255, rtol=0)


def test_ctrl_c_before_any_step_writes_nothing(tmp_path, tiny_backbone, monkeypatch):
    import paramviz.tasks.visualize as task

    monkeypatch.setattr(paramviz.tasks.base, "build_backbone", lambda *a, **k: tiny_backbone)
    monkeypatch.setattr(task, "build_transforms", lambda spec: interrupting_transform)
    out = tmp_path / "run"
    with pytest.raises(RenderInterrupted, match="nothing was written"):
        run_visualize(small(), out)
    assert not out.exists() and list(tmp_path.iterdir()) == []


class Interrupting(torch.nn.Module):
    def forward(self, x, draw=None):
        raise KeyboardInterrupt


interrupting_transform = Interrupting()


def test_memory_estimate_refuses_a_run_before_allocating(tiny_backbone, monkeypatch):
    import paramviz.limits
    import paramviz.tasks.visualize as task

    monkeypatch.setattr(paramviz.limits, "available_memory", lambda device: 50_000_000)
    monkeypatch.setattr(task, "build_param", lambda *a, **k: pytest.fail("allocated before the memory check"))
    with pytest.raises(ConfigError, match=r"a batch of 8 images of 1024x1024 px needs at least .* GB .* 50.0 MB"):
        visualize(small(size=1024, batch=8), backbone=tiny_backbone)


def test_batch_grid_labels_each_image_with_its_unit(tmp_path, tiny_backbone, monkeypatch):

    assert image_labels(parse_objectives(["stage5:3|7|11|19"]), 4) == ["stage5:3", "stage5:7", "stage5:11", "stage5:19"]
    mixed = parse_objectives(["logit:1|2", "0.5*stage4:12@1", "tv"])
    assert image_labels(mixed, 2) == ["logit:1", "logit:2 + stage4:12"]
    units = parse_objectives(["neuron:layer3:3|7", "logit:espresso|tabby"])
    assert image_labels(units, 2) == ["neuron:layer3:3 + logit:espresso", "neuron:layer3:7 + logit:tabby"]
    assert image_labels(parse_objectives(["conv3:1"]), 2) == ["image 0", "image 1"]

    monkeypatch.setattr(paramviz.tasks.base, "build_backbone", lambda *a, **k: tiny_backbone)
    out = tmp_path / "grid"
    run_visualize(small(objectives=("conv3:1|2",), steps=1), out)
    from PIL import Image

    with Image.open(out / "image.png") as grid:
        assert grid.size[0] > 2 * 24 and grid.size[1] > 24 + 8  # two panels and a row of labels above them
    assert load_image(out / "image_1.png").shape == (1, 3, 24, 24)


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
        with pytest.raises(ConfigError, match=r"lr must be (positive|a finite number|a number)"):
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


# --- whole layers ------------------------------------------------------------------------------------------
def test_a_whole_layer_renders_one_image_per_unit_whatever_the_batches(tmp_path, tiny_backbone, monkeypatch):
    from paramviz.tasks.visualize import UnitsResult, unit_specs

    monkeypatch.setattr(paramviz.tasks.base, "build_backbone", lambda *a, **k: tiny_backbone)
    assert unit_specs("conv3:2-4", tiny_backbone, (24, 24)) == ["conv3:2", "conv3:3", "conv3:4"]
    assert len(unit_specs("conv3:*", tiny_backbone, (24, 24))) == 16  # TinyNet's conv3 has 16 channels
    assert unit_specs("0.5*conv3:*", tiny_backbone, (24, 24))[0] == "0.5*conv3:0"
    config = small(objectives=("conv3:0-4", "0.01*tv"), steps=4, transforms="jitter:2")
    in_twos = visualize(config.replace(unit_batch=2), backbone=tiny_backbone)
    at_once = visualize(config.replace(unit_batch=5), backbone=tiny_backbone)
    assert isinstance(in_twos, UnitsResult) and in_twos.unit_batch == 2 and at_once.unit_batch == 5
    assert in_twos.images.shape == (5, 3, 24, 24)
    torch.testing.assert_close(in_twos.images, at_once.images, atol=1e-5, rtol=1e-4)
    alone = visualize(
        small(objectives=("conv3:3", "0.01*tv"), steps=4, transforms="jitter:2", seed=3), backbone=tiny_backbone
    )
    torch.testing.assert_close(in_twos.images[3:4], alone.images, atol=1e-5, rtol=1e-4)  # unit 3 = seed + 3

    out = tmp_path / "layer"
    run_visualize(config.replace(unit_batch=2), out)
    names = sorted(p.name for p in out.iterdir())
    assert names == [
        ".paramviz.json",
        "config.toml",
        "image.png",
        *[f"image_{i}.png" for i in range(5)],
        "metrics.json",
    ]
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["units"] == [f"conv3:{c}" for c in range(5)] and len(metrics["per_unit"]) == 5
    assert set(metrics["metrics"]) >= {"hf_energy", "transform_robustness"}
    assert metrics["metrics"]["hf_energy"] == pytest.approx(sum(metrics["metrics_per_image"]["hf_energy"]) / 5)
    with Image.open(out / "image.png") as sheet:
        assert sheet.size[0] > 3 * 24 and sheet.size[1] > 2 * 24  # 3 x 2 cells with captions


def test_whole_layer_specs_are_checked():
    with pytest.raises(ConfigError, match="only one objective may list a whole layer"):
        visualize(small(objectives=("conv3:0-3", "stage1:*")))
    with pytest.raises(ConfigError, match="batch must be 1"):
        visualize(small(objectives=("conv3:0-3",), batch=2))
    with pytest.raises(SpecError, match="runs backwards"):
        parse_objectives(["conv3:5-2"])
    assert list(parse_objectives(["conv3:0-2|5"]).leaves()[0][1].index) == [0, 1, 2, 5]
    with pytest.raises(ConfigError, match="unit_batch must be a positive integer"):
        small(unit_batch=0)


def test_size_height_by_width_renders_a_non_square_image(tiny_backbone):
    result = visualize(small(size=(24, 40), objectives=("conv3:1|2",)), backbone=tiny_backbone)
    assert result.images.shape == (2, 3, 24, 40)
    # batch_key compares what is rendered: 24 and (24, 24) are the same square, (24, 40) is not
    assert batch_key(small(size=24)) == batch_key(small(size=(24, 24))) != batch_key(small(size=(24, 40)))


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("transforms", ["none", "lucid"])
def test_a_steady_state_step_of_the_task_makes_no_host_device_sync(tiny_backbone, device, transforms):
    config = small(objectives=("conv3:1", "0.1*tv"), transforms=transforms, steps=8, device=device)
    with no_sync_between(3, 8, device) as callback:
        one = visualize(config, [callback], backbone=tiny_backbone)
    with no_sync_between(3, 8, device) as callback:
        two = visualize_batch([config, config.replace(seed=1)], [callback], backbone=tiny_backbone)
    assert len(one.render.history) == 8 and [len(r.render.history) for r in two] == [8, 8]  # the loss falls: above
