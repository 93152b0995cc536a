"""Style-transfer presets: layer recipes per backbone, and optimizer settings.

A **layer preset** (:data:`STYLE_PRESETS`) names a backbone and its style and content layers with relative
per-layer weights, plus the loss settings its source used (Gram normalization, total style and content
weights, optimizer preset). :class:`~paramviz.tasks.stylize.StyleConfig` fields left at ``None`` are
filled from the preset; anything given explicitly wins, so ``--preset gatys --backbone vgg16`` or custom
``--style-layers`` work. ``paramviz style --list-presets`` prints both registries.

Per-layer weights are relative: ``stylize`` normalizes them to sum 1 and multiplies by ``style_weight``
(resp. ``content_weight``), as Gatys et al. (``w_l = 1/5``) and crowsonkb do.

Sources of the numbers:

- ``gatys``: Gatys, Ecker, Bethge (CVPR 2016): VGG-19 with average pooling, style relu1_1..relu5_1 with equal
  weights, content relu4_2, L-BFGS. Weights for torchvision's VGG-19 (ImageNet-normalized [0, 1] input)
  follow the PyTorch neural-style tutorial: Gram matrices divided by C·H·W, style weight 1e6 per layer
  (here 5e6 spread over five layers), content weight 1.
- ``crowsonkb``: crowsonkb/style-transfer-pytorch: the same VGG-19 layers with style weights 256:64:16:4:1,
  the Wasserstein-2 loss, content weight 0.015, Adam at lr 0.02 (max pooling, its default).
- ``nakano``: Nakano (Distill 2019, "A Discussion of 'Adversarial Examples Are Not Bugs, They Are
  Features'": robust neural style transfer): ResNet-50, style = outputs of layer1..layer4, content = layer3,
  L-BFGS; weights as ``gatys``. Use it with standard or robust ResNet-50 weights (``--weights FILE``).
- ``efficientnet_lite0``: chosen for this project on the bundled EfficientNet-Lite0 (real ImageNet weights,
  works offline). Like relu{n}_1 in VGG, the style layers are the first activation (ReLU6) at each
  resolution: the stem (``bn1``, 1/2), the depthwise activations of the first block of stages 1, 2, 3 and 5
  (``blocks.1.0.bn2`` 1/4, ``blocks.2.0.bn2`` 1/8, ``blocks.3.0.bn2`` 1/16, ``blocks.5.0.bn2`` 1/32);
  content = ``blocks.3.1.bn1`` (expansion activation, 1/16). Block outputs (``stage{n}``) are linear
  projections without activation and gave weaker textures. Weights were tuned on scikit-image photos and
  the paintings in ``examples/images``.
- ``efficientnet_lite1``, ``efficientnet_lite2``: the same recipe on the bundled Lite1 (240 px) and Lite2
  (260 px), whose stages have more blocks but the same first-block module names. They also serve as the
  default **referees** of the style metrics (:mod:`paramviz.metrics.style`): a network other than the one
  that optimized judges the result with its own preset's layers.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from paramviz.registry import Registry


@dataclass(frozen=True)
class StylePreset:
    """A style-transfer layer recipe for one backbone.

    Attributes:
        name: Registry name.
        backbone: Backbone registry name the layer names refer to.
        style_layers: Style layer names.
        style_layer_weights: Relative weight of each style layer.
        content_layers: Content layer names.
        content_layer_weights: Relative weight of each content layer.
        style_weight: Total style weight.
        content_weight: Total content weight.
        style_loss: ``"gram"`` or ``"w2"``.
        gram_norm: Gram normalization, ``"hw"`` or ``"chw"``.
        optimizer: Optimizer preset name (:data:`OPTIMIZER_PRESETS`).
        backbone_options: Options passed to ``build_backbone`` when the preset's own backbone is used
            (e.g. ``{"pool": "avg"}``).
        description: One line for listings.
    """

    name: str
    backbone: str
    style_layers: tuple[str, ...]
    style_layer_weights: tuple[float, ...]
    content_layers: tuple[str, ...]
    content_layer_weights: tuple[float, ...]
    style_weight: float
    content_weight: float
    style_loss: str = "gram"
    gram_norm: str = "hw"
    optimizer: str = "lbfgs"
    backbone_options: dict[str, object] = field(default_factory=dict)
    description: str = ""

    def __post_init__(self) -> None:
        if len(self.style_layers) != len(self.style_layer_weights):
            raise ValueError(f"preset {self.name!r}: one weight per style layer is needed")
        if len(self.content_layers) != len(self.content_layer_weights):
            raise ValueError(f"preset {self.name!r}: one weight per content layer is needed")

    def summary(self) -> str:
        """Multi-line description for ``--list-presets``."""
        opts = ", ".join(f"{k}={v!r}" for k, v in self.backbone_options.items())
        backbone = f"{self.backbone}({opts})" if opts else self.backbone
        style = ", ".join(f"{n}:{w:g}" for n, w in zip(self.style_layers, self.style_layer_weights, strict=True))
        content = ", ".join(f"{n}:{w:g}" for n, w in zip(self.content_layers, self.content_layer_weights, strict=True))
        loss = f"{self.style_loss}" + (f" (norm {self.gram_norm})" if self.style_loss == "gram" else "")
        return (
            f"{self.name}: {self.description}\n"
            f"    backbone {backbone}; loss {loss}; optimizer {self.optimizer}\n"
            f"    style   {style}  (total weight {self.style_weight:g})\n"
            f"    content {content}  (total weight {self.content_weight:g})"
        )


@dataclass(frozen=True)
class OptimizerPreset:
    """An optimizer and its learning rate.

    Attributes:
        name: Registry name (also the ``--optimizer`` choice).
        optimizer: Render optimizer name (``"adam"`` or ``"lbfgs"``).
        lr: Learning rate.
        description: One line for listings.
    """

    name: str
    optimizer: str
    lr: float
    description: str = ""


STYLE_PRESETS: Registry[StylePreset] = Registry("style preset", hint="run `paramviz style --list-presets`")
OPTIMIZER_PRESETS: Registry[OptimizerPreset] = Registry("optimizer preset", hint="run `paramviz style --list-presets`")

_VGG_STYLE = ("relu1_1", "relu2_1", "relu3_1", "relu4_1", "relu5_1")


def register_preset(preset: StylePreset) -> StylePreset:
    """Add a layer preset to :data:`STYLE_PRESETS` (duplicate names are refused)."""
    STYLE_PRESETS.register(preset.name, preset, description=preset.description)
    return preset


def register_optimizer_preset(preset: OptimizerPreset) -> OptimizerPreset:
    """Add an optimizer preset to :data:`OPTIMIZER_PRESETS` (duplicate names are refused)."""
    OPTIMIZER_PRESETS.register(preset.name, preset, description=preset.description)
    return preset


register_preset(
    StylePreset(
        name="gatys",
        backbone="vgg19",
        style_layers=_VGG_STYLE,
        style_layer_weights=(1.0,) * 5,
        content_layers=("relu4_2",),
        content_layer_weights=(1.0,),
        style_weight=5e6,
        content_weight=1.0,
        gram_norm="chw",
        optimizer="lbfgs",
        backbone_options={"pool": "avg"},
        description="Gatys et al. 2016 on VGG-19 with average pooling",
    )
)
register_preset(
    StylePreset(
        name="crowsonkb",
        backbone="vgg19",
        style_layers=_VGG_STYLE,
        style_layer_weights=(256.0, 64.0, 16.0, 4.0, 1.0),
        content_layers=("relu4_2",),
        content_layer_weights=(1.0,),
        style_weight=1.0,
        content_weight=0.015,
        style_loss="w2",
        optimizer="adam",
        description="crowsonkb/style-transfer-pytorch: VGG-19, Wasserstein-2 loss, weights 256:64:16:4:1",
    )
)
register_preset(
    StylePreset(
        name="nakano",
        backbone="resnet50",
        style_layers=("layer1", "layer2", "layer3", "layer4"),
        style_layer_weights=(1.0,) * 4,
        content_layers=("layer3",),
        content_layer_weights=(1.0,),
        style_weight=4e6,
        content_weight=1.0,
        gram_norm="chw",
        optimizer="lbfgs",
        description="Nakano 2019 on ResNet-50 (standard or robust weights): style layer1..layer4, content layer3",
    )
)
#: The EfficientNet-Lite layer recipe; Lite1 and Lite2 have more blocks per stage but the same module names.
_LITE_STYLE = ("bn1", "blocks.1.0.bn2", "blocks.2.0.bn2", "blocks.3.0.bn2", "blocks.5.0.bn2")
_LITE_CONTENT = ("blocks.3.1.bn1",)

for _size in range(3):
    register_preset(
        StylePreset(
            name=f"efficientnet_lite{_size}",
            backbone=f"efficientnet_lite{_size}",
            style_layers=_LITE_STYLE,
            style_layer_weights=(1.0,) * len(_LITE_STYLE),
            content_layers=_LITE_CONTENT,
            content_layer_weights=(1.0,),
            style_weight=1.0,
            content_weight=1.0,
            gram_norm="hw",
            optimizer="lbfgs",
            description=f"EfficientNet-Lite{_size} (bundled offline weights): first ReLU6 at each resolution",
        )
    )

register_optimizer_preset(OptimizerPreset("lbfgs", "lbfgs", 1.0, "L-BFGS, lr 1 (Gatys et al., Nakano)"))
register_optimizer_preset(OptimizerPreset("adam", "adam", 0.02, "Adam, lr 0.02 (crowsonkb)"))
register_optimizer_preset(OptimizerPreset("adam-lucid", "adam", 0.05, "Adam, lr 0.05 (Lucid)"))


def presets_for(backbone: str) -> list[str]:
    """Names of the layer presets written for ``backbone``."""
    return [entry.name for entry in STYLE_PRESETS.entries() if entry.obj.backbone == backbone]


#: Optimizer preset used when none is given and the transforms are random (L-BFGS can diverge there).
RANDOM_TRANSFORMS_OPTIMIZER = "adam-lucid"


def describe_presets() -> str:
    """Text listing of every layer and optimizer preset (for ``paramviz style --list-presets``)."""
    lines = ["Layer presets (--preset):"]
    lines += [STYLE_PRESETS.get(name).summary() for name in STYLE_PRESETS.names()]
    lines.append("")
    lines.append("Optimizer presets (--optimizer; --lr overrides the rate):")
    for name in OPTIMIZER_PRESETS.names():
        lines.append(f"{name}: {OPTIMIZER_PRESETS.get(name).description}")
    lines.append(
        f"Without --optimizer: the layer preset's, or {RANDOM_TRANSFORMS_OPTIMIZER} when --transforms are random."
    )
    return "\n".join(lines)
