import json
from pathlib import Path

import pytest
import torch
from host_reads import DEVICES, no_sync_between

import paramviz.tasks.base
import paramviz.tasks.stylize as task
from paramviz.backbones import build_backbone
from paramviz.backbones.base import Backbone
from paramviz.backbones.composite import CompositeBackbone
from paramviz.config import apply_overrides
from paramviz.errors import (
    ConfigError,
    ImageError,
    OutputExistsError,
    RenderInterrupted,
    SpecError,
    UnknownNameError,
    WeightsError,
)
from paramviz.io import load_image
from paramviz.objectives.style import ContentLoss, GramStyleLoss, W2StyleLoss, gram_matrix
from paramviz.params import PARAMS, ParamSpec
from paramviz.tasks.colors import (
    gray_rgb,
    luminance,
    luminance_only_inputs,
    match_luminance,
    rgb_to_yiq,
    transfer_colors,
    yiq_to_rgb,
)
from paramviz.tasks.style_presets import OPTIMIZER_PRESETS, STYLE_PRESETS, describe_presets
from paramviz.tasks.stylize import (
    StyleConfig,
    build_content_backbone,
    initial_image,
    load_inputs,
    parse_layer_weights,
    run_style,
    stylize,
)

IMAGES = Path(__file__).resolve().parents[2] / "examples" / "images"
STARRY = str(IMAGES / "starry_night.jpg")
SHIPWRECK = str(IMAGES / "shipwreck.jpg")


def small(**changes) -> StyleConfig:
    base = StyleConfig(
        content="sample:chelsea",
        styles=(STARRY,),
        style_layers=("relu1", "relu2"),
        content_layers=("relu2",),
        param=ParamSpec("pixel", decorrelate=False),
        size=32,
        steps=8,
        optimizer="adam-lucid",
        device="cpu",
    )
    return base.replace(**changes)


def leaves(objective, cls):
    return [(w, o) for w, o in objective.leaves() if isinstance(o, cls)]


# --- the task on a tiny random network ---------------------------------------------------------------------
@pytest.mark.parametrize("param", PARAMS.names())
@pytest.mark.parametrize("loss", ["gram", "w2"])
def test_style_loss_falls_and_output_has_the_content_aspect(tiny_backbone, param, loss):
    config = small(param=ParamSpec(param), style_loss=loss, steps=15, init="gray", content_weight=0.0)
    result = stylize(config, backbone=tiny_backbone)
    assert result.style_loss < result.initial_style_loss
    assert result.image.shape == (1, 3, 21, 32)  # chelsea is 300 x 451; long side 32
    assert result.image.min() >= 0 and result.image.max() <= 1
    assert set(result.final_terms) == {"style:relu1", "style:relu2"}


def test_terms_are_named_weighted_and_logged(tiny_backbone):
    config = small(style_layer_weights=(1.0, 3.0), style_weight=8.0, content_weight=2.0, tv_weight=0.5)
    result = stylize(config, backbone=tiny_backbone)
    weights = {o.name: w for w, o in result.objective.leaves()}
    assert weights == {"style:relu1": 2.0, "style:relu2": 6.0, "content:relu2": 2.0, "tv": 0.5}
    assert set(result.render.term_history) == set(weights)
    metrics = result.metrics()
    assert metrics["style_loss"] == pytest.approx(metrics["terms"]["style:relu1"] + metrics["terms"]["style:relu2"])
    assert metrics["content_loss"] == pytest.approx(metrics["terms"]["content:relu2"])
    assert metrics["tv_loss"] == pytest.approx(metrics["terms"]["tv"]) and metrics["wall_seconds"] > 0
    assert len(metrics["term_history"]["tv"]) == config.steps


def test_content_target_is_replayed_under_the_same_transforms(tiny_backbone):
    # pad/crop change the image size and rotation moves pixels; with init=content the transformed output and
    # the transformed content see the same draw, so the first-step content loss is zero
    config = small(transforms="pad:4,jitter:3:crop,rotate:10", init="content", steps=3)
    result = stylize(config, backbone=tiny_backbone)
    first = result.render.term_history["content:relu2"][0]
    assert first == pytest.approx(0.0, abs=1e-8)
    assert result.render.term_history["style:relu1"][0] > 1e-6
    assert result.initial_terms["content:relu2"] == pytest.approx(0.0, abs=1e-8)


def test_separate_content_backbone_reads_content_from_its_own_network(tiny_backbone):
    torch.manual_seed(1)
    other = Backbone(type(tiny_backbone.model)(), name="tiny2")
    result = stylize(small(), backbone=tiny_backbone, content_backbone=other)
    assert isinstance(result.backbone, CompositeBackbone)
    assert set(result.final_terms) == {"style:relu1", "style:relu2", "content:relu2"}
    ((_, content_loss),) = leaves(result.objective, ContentLoss)
    assert content_loss.layer == "content/relu2"
    content = load_image("sample:chelsea", 32)
    torch.testing.assert_close(content_loss.target, other(content, ["relu2"])["relu2"])
    assert not torch.allclose(content_loss.target, tiny_backbone(content, ["relu2"])["relu2"])
    (_, style_loss), _ = leaves(result.objective, GramStyleLoss)
    style = load_image(STARRY, 32)
    torch.testing.assert_close(style_loss.target, gram_matrix(tiny_backbone(style, ["relu1"])["relu1"])[0])


def test_several_styles_blend_and_style_scale_resizes_them(tiny_backbone):
    config = small(styles=(STARRY, SHIPWRECK), style_blend=(3.0, 1.0), style_scale=1.5, steps=1)
    result = stylize(config, backbone=tiny_backbone)
    a, b = load_image(STARRY, 48), load_image(SHIPWRECK, 48)
    ga, gb = (gram_matrix(tiny_backbone(x, ["relu1"])["relu1"])[0] for x in (a, b))
    (_, loss1), _ = leaves(result.objective, GramStyleLoss)
    torch.testing.assert_close(loss1.target, 0.75 * ga + 0.25 * gb)
    result_w2 = stylize(config.replace(style_loss="w2", style_blend=()), backbone=tiny_backbone)
    assert len(leaves(result_w2.objective, W2StyleLoss)) == 2


def test_original_colors_modes(tiny_backbone):
    content = load_image("sample:chelsea", 32)
    post = stylize(small(original_colors="post", steps=5), backbone=tiny_backbone)
    raw = post.render.image
    # luminance from the optimized image, chroma from the content (up to clamping into [0, 1])
    assert (luminance(post.image) - luminance(raw)).abs().mean() < 0.02
    assert (rgb_to_yiq(post.image)[:, 1:] - rgb_to_yiq(content)[:, 1:]).abs().mean() < 0.02

    lum = stylize(small(original_colors="luminance", steps=2), backbone=tiny_backbone)
    ((_, content_loss),) = leaves(lum.objective, ContentLoss)
    grey, _ = luminance_only_inputs(content, [])
    torch.testing.assert_close(content_loss.target, tiny_backbone(grey, ["relu2"])["relu2"])
    assert (rgb_to_yiq(lum.image)[:, 1:] - rgb_to_yiq(content)[:, 1:]).abs().mean() < 0.02


def test_init_options_are_seeded():
    content = torch.rand(1, 3, 8, 10)
    assert torch.equal(initial_image(small(init="content"), content), content)
    noise = initial_image(small(init="noise"), content)
    assert torch.equal(noise, initial_image(small(init="noise"), content))
    assert not torch.equal(noise, initial_image(small(init="noise", seed=1), content))
    assert noise.std() > 0.2
    gray = initial_image(small(init="gray"), content)
    assert (gray - 0.5).abs().max() <= 1 / 255 + 1e-7 and gray.std() > 0


@pytest.mark.slow
@pytest.mark.parametrize("param", ["pixel", "fourier"])
def test_style_loss_falls_tenfold_on_efficientnet_lite0_with_a_real_painting(param):
    config = StyleConfig(
        content="sample:chelsea",
        styles=(STARRY,),
        preset="efficientnet_lite0",
        param=ParamSpec(param, decorrelate=param == "fourier"),
        size=96,
        steps=40,
        device="cpu",
    )
    result = stylize(config)
    assert result.config.backbone == "efficientnet_lite0" and result.backbone.weights_source.startswith("bundled")
    assert result.style_loss * 10 <= result.initial_style_loss, (result.initial_style_loss, result.style_loss)
    assert set(result.final_terms) == {f"style:{layer}" for layer in result.config.style_layers} | {
        "content:blocks.3.1.bn1"
    }


# --- config, presets, outputs --------------------------------------------------------------------------------
def test_resolve_fills_from_the_presets_and_custom_layers_win():
    resolved = StyleConfig(preset="gatys").resolve()
    assert resolved.backbone == "vgg19" and resolved.optimizer == "lbfgs" and resolved.lr == 1.0
    assert resolved.style_layers == ("relu1_1", "relu2_1", "relu3_1", "relu4_1", "relu5_1")
    assert resolved.content_layers == ("relu4_2",) and resolved.gram_norm == "chw"
    assert StyleConfig(preset="gatys").main_backbone_options() == {"pool": "avg"}
    assert StyleConfig(preset="gatys", backbone="resnet50").main_backbone_options() == {}
    custom = StyleConfig(preset="gatys", style_layers=("relu1_1", "relu3_1"), optimizer="adam").resolve()
    assert custom.style_layer_weights == (1.0, 1.0) and custom.lr == 0.02
    reweighted = StyleConfig(preset="nakano", style_layer_weights=(4, 3, 2, 1)).resolve()
    assert reweighted.style_layers == ("layer1", "layer2", "layer3", "layer4")
    assert reweighted.style_layer_weights == (4.0, 3.0, 2.0, 1.0)
    with pytest.raises(ConfigError, match="one weight per layer"):
        StyleConfig(preset="nakano", style_layer_weights=(1, 2)).resolve()
    assert resolved.resolve() == resolved


def test_resolved_config_round_trips_through_toml(tmp_path):
    config = small(style_blend=(1.0,), swag=True, original_colors="post").resolve()
    path = tmp_path / "c.toml"
    path.write_text(config.to_toml())
    assert StyleConfig.from_toml(path) == config


@pytest.mark.parametrize(
    "changes,error,needle",
    [
        ({"preset": "gatis"}, UnknownNameError, "'gatys'"),
        ({"optimizer": "adamm"}, UnknownNameError, "'adam'"),
        ({"size": 8}, ConfigError, "at least 16"),
        ({"size": 100000}, ConfigError, "larger than 4096 pixels per side"),
        ({"lr": float("inf")}, ConfigError, "lr must be a finite number"),
        ({"lr": 1e38}, ConfigError, "larger than 1000"),
        ({"init": "zeros"}, UnknownNameError, "init"),
        ({"original_colors": "lum"}, UnknownNameError, "'luminance'"),
        ({"style_loss": "w3"}, UnknownNameError, "'w2'"),
        ({"style_scale": 0.0}, ConfigError, "style_scale"),
        ({"style_weight": -1.0}, ConfigError, "style_weight"),
        ({"style_blend": (1.0, 2.0)}, ConfigError, "one weight per style image"),
        ({"content_layer_weights": (1.0, 2.0)}, ConfigError, "2 layer weights for 1 layers"),
        ({"thresholds": (99,)}, ConfigError, "thresholds"),
    ],
)
def test_config_validation_names_the_bad_value(changes, error, needle):
    with pytest.raises(error, match=needle):
        small(**changes)


def test_parameterizations_that_cannot_start_from_the_content_are_refused_before_any_work():
    with pytest.raises(ConfigError, match="--init gray"):
        small(param=ParamSpec("cppn"))  # init = "content"
    with pytest.raises(ConfigError, match="no inverse"):
        small(param=ParamSpec("cppn"), init="noise")
    assert small(param=ParamSpec("cppn"), init="gray").init == "gray"
    with pytest.raises(ConfigError, match="transparency"):
        small(param=ParamSpec("pixel", alpha=True))


@pytest.mark.parametrize("param", ["laplacian", "maco"])
def test_new_parameterizations_start_from_the_content(tiny_backbone, param):
    config = small(param=ParamSpec(param), steps=1, style_weight=0.0, content_weight=1.0)
    result = stylize(config, backbone=tiny_backbone)
    if param == "laplacian":  # an exact inverse: the content loss starts at 0
        assert result.initial_terms["content:relu2"] < 1e-6
    else:  # maco keeps its magnitude and takes the content's phase: the layout of the content
        content = load_image("sample:chelsea", 32).mean(1).flatten()
        gray = stylize(config.replace(init="gray"), backbone=tiny_backbone)

        def corr(image):
            return float(torch.corrcoef(torch.stack([image.mean(1).flatten(), content]))[0, 1])

        assert corr(result.image) > 0.5 and abs(corr(gray.image)) < 0.3


def test_parse_layer_weights():
    assert parse_layer_weights("relu1_1:256,relu2_1:64, relu3_1") == (("relu1_1", "relu2_1", "relu3_1"), (256, 64, 1))
    assert parse_layer_weights("layer1,layer2") == (("layer1", "layer2"), ())
    assert parse_layer_weights("") == ((), ())
    with pytest.raises(SpecError, match="not a number"):
        parse_layer_weights("relu1_1:x")
    with pytest.raises(SpecError, match="empty layer"):
        parse_layer_weights("relu1_1,,relu2_1")
    with pytest.raises(SpecError, match=">= 0"):
        parse_layer_weights("relu1_1:-1")


@pytest.mark.parametrize("name", STYLE_PRESETS.names())
def test_every_preset_names_spatial_layers_of_its_backbone(name):
    preset = STYLE_PRESETS.get(name)
    weights = "pretrained" if preset.backbone == "efficientnet_lite0" else "random"
    backbone = build_backbone(preset.backbone, weights, **preset.backbone_options)
    layers = [*preset.style_layers, *preset.content_layers]
    features = backbone(torch.rand(1, 3, 64, 64), layers)
    assert all(features[layer].dim() == 4 for layer in layers)
    assert preset.name in describe_presets() and OPTIMIZER_PRESETS.get(preset.optimizer)


def test_documented_presets():
    gatys = STYLE_PRESETS.get("gatys")
    assert gatys.backbone == "vgg19" and gatys.backbone_options == {"pool": "avg"}
    assert gatys.style_layers == ("relu1_1", "relu2_1", "relu3_1", "relu4_1", "relu5_1")
    assert gatys.content_layers == ("relu4_2",)
    nakano = STYLE_PRESETS.get("nakano")
    assert nakano.style_layers == ("layer1", "layer2", "layer3", "layer4") and nakano.content_layers == ("layer3",)
    assert "efficientnet_lite0" in STYLE_PRESETS
    assert {n: (p.optimizer, p.lr) for n in OPTIMIZER_PRESETS.names() for p in [OPTIMIZER_PRESETS.get(n)]} == {
        "lbfgs": ("lbfgs", 1.0),
        "adam": ("adam", 0.02),
        "adam-lucid": ("adam", 0.05),
    }


def test_run_writes_outputs_and_refuses_to_overwrite(tmp_path, tiny_backbone, monkeypatch):
    monkeypatch.setattr(paramviz.tasks.base, "build_backbone", lambda *a, **k: tiny_backbone)
    config = small(thresholds=(4,))
    out = tmp_path / "run"
    result = run_style(config, out)
    assert sorted(p.name for p in out.iterdir()) == [
        ".paramviz.json",
        "config.toml",
        "image.png",
        "metrics.json",
        "steps",
    ]
    assert (out / "steps" / "step_00004.png").exists()
    assert StyleConfig.from_toml(out / "config.toml") == result.config == config.resolve()
    metrics = json.loads((out / "metrics.json").read_text())
    assert set(metrics["terms"]) == {"style:relu1", "style:relu2", "content:relu2"}
    assert metrics["steps"] == 8 and metrics["wall_seconds"] > 0 and metrics["output_size"] == [21, 32]
    assert load_image(out / "image.png").shape == (1, 3, 21, 32)
    with pytest.raises(OutputExistsError, match="--force"):
        run_style(config, out)
    before = (out / "metrics.json").read_text()
    with pytest.raises(ImageError):  # a failing run with force leaves the earlier results untouched
        run_style(config.replace(content=str(tmp_path / "missing.png")), out, force=True)
    assert (out / "metrics.json").read_text() == before
    run_style(config.replace(seed=3), out, force=True)
    assert json.loads((out / "metrics.json").read_text()) != json.loads(before)


@pytest.mark.parametrize(
    "changes,error,needle",
    [
        ({"content": "missing.jpg"}, ImageError, "does not exist"),
        ({"styles": ("corrupt.jpg",)}, ImageError, "cannot read image"),
        ({"style_layers": ("relu9",)}, UnknownNameError, "did you mean"),
        ({"content_layers": ("conv5",)}, UnknownNameError, "conv3"),
        ({"style_weight": 0.0, "content_weight": 0.0}, ConfigError, "every loss term has weight 0"),
        ({"style_layer_weights": (0.0, 0.0), "content_weight": 0.0}, ConfigError, "every loss term has weight 0"),
        ({"styles": ()}, ConfigError, "no style image"),
    ],
)
def test_bad_input_gives_a_clear_error_and_writes_nothing(tmp_path, tiny_backbone, monkeypatch, changes, error, needle):
    monkeypatch.setattr(paramviz.tasks.base, "build_backbone", lambda *a, **k: tiny_backbone)
    monkeypatch.chdir(tmp_path)
    (tmp_path / "corrupt.jpg").write_bytes(b"\xff\xd8\xff\xe0 definitely not a jpeg")
    out = tmp_path / "out"
    with pytest.raises(error, match=needle):
        run_style(small(**changes), out)
    assert not out.exists() and sorted(p.name for p in tmp_path.iterdir()) == ["corrupt.jpg"]


def test_ctrl_c_writes_the_current_image_and_says_where(tmp_path, tiny_backbone, monkeypatch):
    monkeypatch.setattr(paramviz.tasks.base, "build_backbone", lambda *a, **k: tiny_backbone)

    def interrupt(record):
        if record.step == 3:
            raise KeyboardInterrupt

    out = tmp_path / "run"
    with pytest.raises(RenderInterrupted) as info:
        run_style(small(steps=50), out, callbacks=[interrupt])
    assert info.value.written_to == out and info.value.steps_done == 3
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["interrupted_at_step"] == 3 and metrics["steps"] == 3 and metrics["steps_requested"] == 50
    assert len(metrics["loss_history"]) == 3
    assert StyleConfig.from_toml(out / "config.toml").steps == 50
    assert load_image(out / "image.png").shape == (1, 3, 21, 32)
    # the same seeded run for 3 steps gives the image that was written
    full = stylize(small(steps=3), backbone=tiny_backbone)
    torch.testing.assert_close(load_image(out / "image.png"), load_image_like(full.image), atol=1 / 255, rtol=0)


def load_image_like(image):
    return (image.clamp(0, 1) * 255).round() / 255


def test_memory_is_checked_before_anything_is_allocated(tiny_backbone, monkeypatch):
    import paramviz.limits

    monkeypatch.setattr(paramviz.limits, "available_memory", lambda device: 10_000)
    monkeypatch.setattr(task, "build_param", lambda *a, **k: pytest.fail("allocated before the memory check"))
    with pytest.raises(ConfigError, match=r"needs at least .* MB .* but only 0.0 MB is of RAM available"):
        stylize(small(), backbone=tiny_backbone)


def test_weights_error_of_the_content_backbone_names_its_own_option(monkeypatch, tmp_path):
    import paramviz.backbones.weights as weights

    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    monkeypatch.setattr(weights, "download_file", lambda *a, **k: (_ for _ in ()).throw(OSError("offline")))
    config = small(content_backbone="resnet50", content_layers=("layer3",))
    with pytest.raises(WeightsError) as info:
        task.build_content_backbone(config)
    text = str(info.value)
    assert "--content-backbone-weights PATH" in text and "--content-backbone-weights random" in text
    assert "`--weights" not in text and "content_backbone_weights=PATH" in text


# --- colours ---------------------------------------------------------------------------------------------------
def test_luminance_mode_keeps_the_style_loss_scale_and_sees_only_luminance(tiny_backbone):
    off = stylize(small(init="content", steps=1), backbone=tiny_backbone)
    lum = stylize(small(init="content", steps=1, original_colors="luminance"), backbone=tiny_backbone)
    # the content image starts with the same style loss as in colour: --style-weight means the same in both modes
    assert lum.initial_style_loss == pytest.approx(off.initial_style_loss, rel=1e-4)
    assert lum.luminance_style_factor > 1 and lum.metrics()["luminance_style_factor"] == lum.luminance_style_factor
    assert off.luminance_style_factor == 1.0
    # the network sees only the luminance: changing the chroma of an image does not change any term
    image = torch.rand(1, 3, 21, 32, generator=torch.Generator().manual_seed(0))
    yiq = rgb_to_yiq(image)
    shifted = yiq_to_rgb(torch.cat([yiq[:, :1], yiq[:, 1:] * 0.2], 1))
    a, b = (task.evaluate_terms(lum.objective, lum.backbone, x) for x in (image, shifted))
    assert a == pytest.approx(b, rel=1e-4) and a != pytest.approx(
        task.evaluate_terms(off.objective, off.backbone, image)
    )


@pytest.mark.slow
def test_luminance_mode_visibly_stylizes_with_two_blended_paintings():
    # the README's blend example: before the scaling, the style loss fell only 4x here (0.45 -> 0.11)
    config = StyleConfig(
        content="sample:chelsea",
        styles=(STARRY, SHIPWRECK),
        style_blend=(0.7, 0.3),
        original_colors="luminance",
        size=96,
        steps=40,
        device="cpu",
    )
    result = stylize(config)
    assert result.style_loss * 8 <= result.initial_style_loss, (result.initial_style_loss, result.style_loss)
    content = load_image("sample:chelsea", 96)
    assert (luminance(result.image) - luminance(content)).abs().mean() > 0.04  # the brightness pattern moved
    assert (rgb_to_yiq(result.image)[:, 1:] - rgb_to_yiq(content)[:, 1:]).abs().mean() < 0.02  # colours kept


def test_yiq_round_trip_and_luminance_of_grey():
    x = torch.rand(2, 3, 5, 7, generator=torch.Generator().manual_seed(0))
    torch.testing.assert_close(yiq_to_rgb(rgb_to_yiq(x)), x)
    grey = torch.full((1, 3, 4, 4), 0.3)
    yiq = rgb_to_yiq(grey)
    torch.testing.assert_close(yiq[:, 0], torch.full((1, 4, 4), 0.3))
    torch.testing.assert_close(yiq[:, 1:], torch.zeros(1, 2, 4, 4), atol=1e-6, rtol=0)
    with pytest.raises(ImageError, match="RGB"):
        rgb_to_yiq(torch.rand(1, 4, 2, 2))


def test_luminance_only_inputs_are_grey_with_the_content_brightness():
    g = torch.Generator().manual_seed(1)
    content = torch.rand(1, 3, 16, 16, generator=g) * 0.5 + 0.25
    style = torch.rand(1, 3, 12, 20, generator=g) ** 2
    grey_content, (grey_style,) = luminance_only_inputs(content, [style])
    for img in (grey_content, grey_style):
        assert torch.equal(img[:, 0], img[:, 1]) and torch.equal(img[:, 1], img[:, 2])
    torch.testing.assert_close(grey_content[:, :1], luminance(content))
    matched = match_luminance(luminance(style), luminance(content))
    assert matched.mean().item() == pytest.approx(luminance(content).mean().item(), abs=1e-5)
    assert matched.std(unbiased=False).item() == pytest.approx(luminance(content).std(unbiased=False).item(), rel=1e-4)
    torch.testing.assert_close(grey_style, gray_rgb(matched))


def test_transfer_colors_takes_luminance_from_the_result_and_chroma_from_the_content():
    g = torch.Generator().manual_seed(2)
    stylized = torch.rand(1, 3, 6, 6, generator=g) * 0.2 + 0.4  # mid-range: the result stays in gamut
    content = torch.rand(1, 3, 6, 6, generator=g) * 0.2 + 0.4
    out = transfer_colors(stylized, content)
    torch.testing.assert_close(luminance(out), luminance(stylized))
    torch.testing.assert_close(rgb_to_yiq(out)[:, 1:], rgb_to_yiq(content)[:, 1:])
    with pytest.raises(ImageError, match="resize"):
        transfer_colors(stylized, torch.rand(1, 3, 5, 6))


# --- composite backbone ----------------------------------------------------------------------------------------
def test_composite_backbone_routes_prefixed_layers(tiny_backbone):
    torch.manual_seed(2)
    other = Backbone(type(tiny_backbone.model)(), name="tiny2", aliases={"stage1": "relu1"})
    both = CompositeBackbone({"style": tiny_backbone, "content": other})
    x = torch.rand(2, 3, 16, 16)
    out = both(x, ["style/relu2", "content/stage1"])
    assert set(out) == {"style/relu2", "content/stage1"}
    torch.testing.assert_close(out["style/relu2"], tiny_backbone(x, ["relu2"])["relu2"])
    torch.testing.assert_close(out["content/stage1"], other(x, ["relu1"])["relu1"])
    assert "style/conv3" in both.layers() and "content/stage1" in both.layers()
    assert both.resolve("content/stage1") == "content/relu1" and both.name == "style=tiny+content=tiny2"
    with pytest.raises(UnknownNameError, match="'style/'"):
        both.validate(["relu2"])
    with pytest.raises(UnknownNameError, match="relu2"):
        both.validate(["style/relu3"])
    both.train()
    assert not tiny_backbone.training and not other.training
    with pytest.raises(ConfigError, match="part name"):
        CompositeBackbone({"a/b": tiny_backbone})


def test_composite_backbone_runs_only_the_parts_asked_for(tiny_backbone):
    other = Backbone(type(tiny_backbone.model)(), name="tiny2")
    calls = {"style": 0, "content": 0}
    tiny_backbone.model.register_forward_pre_hook(lambda *a: calls.__setitem__("style", calls["style"] + 1))
    other.model.register_forward_pre_hook(lambda *a: calls.__setitem__("content", calls["content"] + 1))
    both = CompositeBackbone({"style": tiny_backbone, "content": other})
    both(torch.rand(1, 3, 16, 16), ["style/relu1", "style/relu2"])
    assert calls == {"style": 1, "content": 0}


def test_content_backbone_by_name_builds_a_second_network(tiny_backbone, monkeypatch):
    torch.manual_seed(3)
    other = Backbone(type(tiny_backbone.model)(), name="tiny2")
    built = []

    def fake_build(name, weights="pretrained", **options):
        built.append((name, weights))
        return {"a": tiny_backbone, "b": other}[name]

    monkeypatch.setattr(paramviz.tasks.base, "build_backbone", fake_build)
    config = small(backbone="a", content_backbone="b", content_backbone_weights="random", steps=2)
    result = stylize(config)
    assert ("b", "random") in built and ("a", "pretrained") in built
    assert isinstance(result.backbone, CompositeBackbone) and result.backbone.name == "style=tiny+content=tiny2"
    ((_, content_loss),) = leaves(result.objective, ContentLoss)
    torch.testing.assert_close(content_loss.target, other(load_image("sample:chelsea", 32), ["relu2"])["relu2"])


def test_backbone_options_go_over_the_presets_and_the_common_ones_reach_the_content_backbone(monkeypatch):
    options = ("pool=max", "fold_batchnorm=false", "memory_format=contiguous")
    config = StyleConfig(preset="gatys", backbone_options=options)
    assert config.main_backbone_options() == {"pool": "max", "fold_batchnorm": False, "memory_format": "contiguous"}
    content = config.replace(content_backbone="resnet50")
    assert content.content_backbone_options() == {"fold_batchnorm": False, "memory_format": "contiguous"}
    assert config.replace(content_backbone="vgg19").content_backbone_options()["pool"] == "avg"  # the preset's
    built = {}

    def fake_build(name, weights="pretrained", **kwargs):
        built[name] = kwargs
        raise WeightsError("stop here")

    monkeypatch.setattr(paramviz.tasks.base, "build_backbone", fake_build)
    with pytest.raises(WeightsError):
        build_content_backbone(content.resolve())
    assert built["resnet50"] == {"trust_checkpoint": False, "fold_batchnorm": False, "memory_format": "contiguous"}
    with pytest.raises(SpecError, match="not KEY=VALUE"):
        StyleConfig(backbone_options=("pool",))


def test_lbfgs_with_random_transforms_warns(tiny_backbone, recwarn):
    with pytest.warns(RuntimeWarning, match="L-BFGS with random transforms"):
        stylize(small(optimizer="lbfgs", transforms="jitter:2", steps=1), backbone=tiny_backbone)
    recwarn.clear()
    stylize(small(optimizer="lbfgs", transforms="pad:2", steps=1), backbone=tiny_backbone)
    stylize(small(optimizer="adam", transforms="jitter:2", steps=1), backbone=tiny_backbone)
    assert not [w for w in recwarn if "L-BFGS" in str(w.message)]


def test_optimizer_defaults_to_adam_with_random_transforms_and_lbfgs_only_when_asked():
    deterministic = StyleConfig(preset="gatys", transforms="pad:4").resolve()
    assert deterministic.optimizer == "lbfgs" and deterministic.lr == 1.0
    random = StyleConfig(preset="gatys", transforms="lucid").resolve()
    assert random.optimizer == "adam-lucid" and random.lr == 0.05
    asked = StyleConfig(preset="gatys", transforms="lucid", optimizer="lbfgs").resolve()
    assert asked.optimizer == "lbfgs"


def test_override_rederives_what_a_changed_option_determines():
    saved = StyleConfig(preset="gatys").resolve()
    again = saved.override({"preset": "nakano"}).resolve()
    assert again.backbone == "resnet50" and again.style_layers == ("layer1", "layer2", "layer3", "layer4")
    kept = saved.override({"preset": "nakano", "backbone": "vgg19"}).resolve()
    assert kept.backbone == "vgg19"
    assert saved.override({"optimizer": "adam"}).resolve().lr == 0.02
    assert saved.override({"transforms": "lucid"}).resolve().optimizer == "adam-lucid"
    # apply_overrides alone is the raw path: it keeps the old preset's network
    assert apply_overrides(saved, {"preset": "nakano"}).resolve().backbone == "vgg19"


def test_override_keeps_a_derived_field_that_was_set_on_purpose():
    explicit = StyleConfig(preset="gatys", optimizer="adam")
    assert explicit.override({"transforms": "lucid"}).resolve().optimizer == "adam"
    resolved = StyleConfig(preset="gatys", optimizer="adam").resolve()
    assert resolved.override({"transforms": "lucid"}).resolve().optimizer == "adam"


def test_random_weights_are_seeded_by_the_run(monkeypatch):
    from paramviz.backbones import build_backbone as real_build

    def first_weight(seed):
        return next(task.build_style_backbone(small(preset="nakano", weights="random", seed=seed)).parameters())

    monkeypatch.setattr(paramviz.tasks.base, "build_backbone", lambda name, *a, **k: real_build("resnet18", "random"))
    torch.manual_seed(123)
    a = first_weight(0)
    torch.rand(5)  # the global RNG moves on between runs
    assert torch.equal(a, first_weight(0))
    assert not torch.equal(a, first_weight(1))


@pytest.mark.parametrize(("spec", "passes"), [("pad:4", 1), ("pad:2,blur:1", 1), ("pad:2,jitter:2", 5)])
def test_content_targets_are_computed_once_when_the_transforms_are_deterministic(tiny_backbone, spec, passes):
    from paramviz.transforms import build_transforms

    transforms = build_transforms(spec)
    content = torch.rand(1, 3, 24, 24)
    replay = task._ReplayContent(tiny_backbone, transforms, content, ["conv3"])
    image = torch.rand(1, 3, 24, 24)
    targets = []
    for _ in range(5):
        view = transforms(image)
        targets.append(replay(view, ["conv3"])["conv3" + task.TARGET_SUFFIX])
    assert replay.target_passes == passes
    expected = tiny_backbone(transforms(content, draw=transforms.last_draw), ["conv3"])["conv3"]
    torch.testing.assert_close(targets[-1], expected)  # the cached target is the right one


def test_size_height_by_width_crops_the_content_to_exactly_that_shape(tiny_backbone):
    config = small(size=(24, 40), style_scale=0.5, steps=2)
    content, styles = load_inputs(config)
    assert content.shape == (1, 3, 24, 40)  # chelsea (300 x 451) covers 24 x 40 at 27 x 40, cropped to 24
    assert max(styles[0].shape[-2:]) == 20  # style_scale of the output's long side
    assert stylize(config, backbone=tiny_backbone).image.shape == (1, 3, 24, 40)
    assert stylize(small(size=40, steps=2), backbone=tiny_backbone).image.shape == (1, 3, 27, 40)  # aspect kept


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("transforms", ["none", "lucid"])
@pytest.mark.parametrize("colors", ["off", "luminance"])
@pytest.mark.parametrize("loss", ["gram", "w2"])
def test_a_steady_state_step_of_the_task_makes_no_host_device_sync(tiny_backbone, device, transforms, colors, loss):
    # adam-lucid: L-BFGS (the gatys preset) reads the loss on the host in its line search, by design
    config = small(
        param=ParamSpec("fourier"), transforms=transforms, original_colors=colors, style_loss=loss, device=device
    )
    with no_sync_between(3, config.steps, device) as callback:
        result = stylize(config, [callback], backbone=tiny_backbone)
    assert len(result.render.history) == config.steps  # the loss falls: test_style_loss_falls_...
