from __future__ import annotations

import pytest

from paramviz.tasks.style_presets import STYLE_PRESETS, presets_for


@pytest.mark.parametrize("name", ["efficientnet_lite1", "efficientnet_lite2"])
def test_lite1_and_lite2_presets_mirror_lite0_on_their_own_backbone(name) -> None:
    lite0, preset = STYLE_PRESETS.get("efficientnet_lite0"), STYLE_PRESETS.get(name)
    assert preset.backbone == name and presets_for(name) == [name]
    for field in ("style_layers", "style_layer_weights", "content_layers", "content_layer_weights", "gram_norm"):
        assert getattr(preset, field) == getattr(lite0, field)
    assert preset.style_loss == lite0.style_loss == "gram"
