"""Neural style transfer on any backbone: config -> components -> render -> outputs.

Style transfer is built from the same parts as feature visualization: a parameterization
(``pixel``/``fourier``, colour decorrelation), a transform stack, a backbone, objectives (the style and
content losses of :mod:`paramviz.objectives.style`, total variation) and :func:`~paramviz.render.render`.
Switching RGB pixels for decorrelated Fourier, adding transforms, or swapping VGG for a ResNet, an EfficientNet
or a robust checkpoint is one field of :class:`StyleConfig` (one option of ``paramviz style``).

How a run is assembled (:func:`stylize`):

1. :meth:`StyleConfig.resolve` fills the fields left at ``None`` from the layer preset (backbone, layers,
   loss settings, weights) and the optimizer preset (optimizer, lr); the resolved config is what
   ``config.toml`` records.
2. The content image is loaded with its long side = ``size`` (the output has its size), or, with
   ``size = (H, W)``, resized to cover ``H x W`` and centre-cropped to it; each style image with long side
   ``round(style_scale * `` the output's long side ``)``.
3. With ``original_colors="luminance"`` both are replaced by their luminance, the network sees the output's
   luminance only, and the style terms are scaled so that the content image's style loss is the same as in
   colour (:mod:`paramviz.tasks.colors`).
4. Style targets (Gram matrices or mean + covariance, blended over the style images with ``style_blend``) and
   content targets are computed once through the backbone and stored as buffers. Per-layer weights are
   normalized to sum 1 and multiplied by ``style_weight`` / ``content_weight``. Terms are logged as
   ``style:<layer>``, ``content:<layer>`` and ``tv``.
5. With ``content_backbone`` set, content terms read that network and style terms the main one (Engstrom et
   al.'s control), through a :class:`~paramviz.backbones.composite.CompositeBackbone`.
6. With random transforms, the image the backbone sees is transformed every step; the content target is then
   the content image under **the same draw** (replayed each step, without gradient) so the two line up
   pixel for pixel. Style statistics are spatially pooled and keep their fixed targets.
7. After :func:`render`, the final image (and every snapshot) is evaluated once more without transforms
   (``final_terms``), and recoloured for ``original_colors`` ``"luminance"`` / ``"post"``.
"""

from __future__ import annotations

import dataclasses
import json
import math
import re
import warnings
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import torch
from torch import nn

from paramviz.backbones import Backbone, parse_backbone_options
from paramviz.backbones.base import BackboneView
from paramviz.backbones.composite import CompositeBackbone
from paramviz.backbones.options import COMMON_OPTIONS
from paramviz.config import SEED_RANGE, ConfigBase, check_seed
from paramviz.device import resolve_device
from paramviz.errors import ConfigError, RenderInterrupted, SpecError, UnknownNameError, WeightsError
from paramviz.io import OutputDir, check_output_dir, load_image, resize_center_crop
from paramviz.limits import check_image_size, check_lr, check_memory, estimate_render_bytes, size_hw
from paramviz.objectives.base import Objective
from paramviz.objectives.penalties import INPUT_KEY, TotalVariation
from paramviz.objectives.style import (
    DEFAULT_W2_EPS,
    GRAM_NORMALIZATIONS,
    STYLE_LOSSES,
    TARGET_SUFFIX,
    W2_REDUCTIONS,
    content_objective,
    style_objective,
)
from paramviz.params import ParamSpec, build_param
from paramviz.render import Callback, RenderResult, render
from paramviz.tasks.base import (
    TASKS,
    MetricsConfig,
    SharedWork,
    Task,
    backbone_seed,
    measure,
    metric_context,
    run_metrics,
    seeded_backbone,
)
from paramviz.tasks.colors import COLOR_MODES, LuminanceView, luminance_only_inputs, transfer_colors
from paramviz.tasks.style_presets import (
    OPTIMIZER_PRESETS,
    RANDOM_TRANSFORMS_OPTIMIZER,
    STYLE_PRESETS,
    OptimizerPreset,
    StylePreset,
)
from paramviz.transforms import TransformStack, build_transforms, parse_transforms

INITS = ("content", "noise", "gray")
"""Start images: the content image, uniform white noise (Gatys et al.), or grey 0.5 with ±1/255 noise
(crowsonkb)."""

STYLE_PART = "style"
CONTENT_PART = "content"


#: Fields that :meth:`StyleConfig.resolve` derives from another field (their default means "derive it").
DERIVED_FIELDS: dict[str, tuple[str, ...]] = {
    "preset": (
        "backbone",
        "style_layers",
        "style_layer_weights",
        "content_layers",
        "content_layer_weights",
        "style_loss",
        "gram_norm",
        "style_weight",
        "content_weight",
        "optimizer",
        "lr",
    ),
    "optimizer": ("lr",),
    "transforms": ("optimizer", "lr"),
}


@dataclass(frozen=True)
class StyleConfig(ConfigBase):
    """Everything a style-transfer run needs. ``None`` fields come from the presets (:meth:`resolve`).

    Attributes:
        content: Content image: a file path (PNG, JPEG, ...) or ``sample:NAME`` (scikit-image photo).
        styles: Style image(s), paths or ``sample:NAME``.
        style_blend: One non-negative weight per style image (normalized; empty = equal weights).
        preset: Layer preset (``paramviz style --list-presets``).
        backbone: Backbone of the style (and, by default, content) losses; ``None``: the preset's.
        weights: ``"pretrained"``, ``"random"`` or a weights file for ``backbone``.
        backbone_options: ``KEY=VALUE`` options of the backbone, over the preset's (``pool=max`` for VGG); the
            options every backbone takes (``memory_format``, ``fold_batchnorm``) apply to ``content_backbone``
            too.
        trust_checkpoint: Allow full unpickling of weights files that need it.
        content_backbone: A separate backbone for the content loss (``None``: the same network).
        content_backbone_weights: Weights of ``content_backbone``.
        style_layers: Custom style layers (empty: the preset's).
        style_layer_weights: Relative weight per style layer (empty: the preset's, or equal for custom layers).
        content_layers: Custom content layers (empty: the preset's).
        content_layer_weights: Relative weight per content layer (empty: the preset's, or equal).
        style_loss: ``"gram"`` or ``"w2"``; ``None``: the preset's.
        gram_norm: Gram normalization ``"hw"`` or ``"chw"``; ``None``: the preset's.
        w2_eps: W2 covariance regularization (added to the diagonals).
        w2_reduction: ``"mean"`` (W2²/C, crowsonkb) or ``"sum"`` (exact W2²).
        swag: Softmax the activations before the style statistics (Wang et al. 2021).
        swag_temperature: SWAG softmax temperature.
        style_weight: Total style weight; ``None``: the preset's.
        content_weight: Total content weight; ``None``: the preset's.
        tv_weight: Total-variation weight (mean absolute difference of neighbouring pixels).
        param: The image parameterization.
        transforms: Transform preset name or spec string.
        size: ``N``: the long side of the output (and content) image in pixels, the content's aspect kept.
            ``(H, W)`` (``--size HxW``; TOML ``size = [H, W]``): the output is exactly ``H x W``, the content
            resized to cover it and centre-cropped.
        style_scale: Style images are resized to ``style_scale`` times the output's long side, on their long
            side.
        init: ``"content"``, ``"noise"`` or ``"gray"``. A parameterization without an inverse (``cppn``) only
            takes ``"gray"``, meaning its own (near-grey) initialization; ``maco`` starts from the image's phase.
        original_colors: ``"off"``, ``"luminance"`` (luminance-only transfer) or ``"post"`` (recolour after).
        steps: Optimization steps.
        optimizer: Optimizer preset (``lbfgs``, ``adam``, ``adam-lucid``); ``None``: the layer preset's when
            the transforms are deterministic, ``adam-lucid`` when they are random. L-BFGS assumes the same
            objective at every step; with random ``transforms`` its curvature estimates mix different draws
            and it can diverge (seen with ``fourier`` + ``lucid`` on EfficientNet-Lite0,
            ``benchmarks/style_compare.py``), so it is only used there when asked for explicitly.
        lr: Learning rate; ``None``: the optimizer preset's.
        seed: Seed of the initial image and of the transform draws.
        device: ``auto``, ``cpu``, ``cuda``, ``cuda:N``.
        thresholds: Steps at which a snapshot image is saved (the last step always is).
        metrics: Image metrics measured on the output (``metrics.json``'s "metrics"); the style and content
            distances are judged by ``metrics.referee``, a network other than the optimized one.
    """

    content: str = ""
    styles: tuple[str, ...] = ()
    style_blend: tuple[float, ...] = ()
    preset: str = "efficientnet_lite0"
    backbone: str | None = None
    weights: str = "pretrained"
    backbone_options: tuple[str, ...] = ()
    trust_checkpoint: bool = False
    content_backbone: str | None = None
    content_backbone_weights: str = "pretrained"
    style_layers: tuple[str, ...] = ()
    style_layer_weights: tuple[float, ...] = ()
    content_layers: tuple[str, ...] = ()
    content_layer_weights: tuple[float, ...] = ()
    style_loss: str | None = None
    gram_norm: str | None = None
    w2_eps: float = DEFAULT_W2_EPS
    w2_reduction: str = "mean"
    swag: bool = False
    swag_temperature: float = 1.0
    style_weight: float | None = None
    content_weight: float | None = None
    tv_weight: float = 0.0
    param: ParamSpec = field(default_factory=ParamSpec)
    transforms: str = "none"
    size: int | tuple[int, int] = 512
    style_scale: float = 1.0
    init: str = "content"
    original_colors: str = "off"
    steps: int = 500
    optimizer: str | None = None
    lr: float | None = None
    seed: int = 0
    device: str = "auto"
    thresholds: tuple[int, ...] = ()
    metrics: MetricsConfig = field(default_factory=MetricsConfig)

    def __post_init__(self) -> None:
        object.__setattr__(self, "size", check_image_size(self.size, minimum=16))
        if isinstance(self.steps, bool) or not isinstance(self.steps, int) or self.steps < 1:
            raise ConfigError(f"steps must be a positive integer, got {self.steps!r}")
        check_seed(self.seed)
        parse_backbone_options(self.backbone_options)
        STYLE_PRESETS.get(self.preset)
        if self.optimizer is not None:
            OPTIMIZER_PRESETS.get(self.optimizer)
        _choice("init", self.init, INITS)
        if self.param.alpha:
            raise ConfigError(
                "param.alpha: style transfer renders an opaque image; transparency (--alpha) is for paramviz visualize"
            )
        if self.param.param_class.inverse is None and self.init != "gray":
            raise ConfigError(
                f"init {self.init!r} needs a parameterization that can start from an image, and "
                f"{self.param.name!r} cannot (it has no inverse); use --init gray (it starts from its own "
                "near-grey initialization) or another --param (fourier, pixel, laplacian, maco)"
            )
        _choice("original_colors", self.original_colors, COLOR_MODES)
        _choice("w2_reduction", self.w2_reduction, W2_REDUCTIONS)
        if self.style_loss is not None:
            _choice("style_loss", self.style_loss, STYLE_LOSSES)
        if self.gram_norm is not None:
            _choice("gram_norm", self.gram_norm, GRAM_NORMALIZATIONS)
        for name in ("style_weight", "content_weight", "tv_weight", "w2_eps"):
            value = getattr(self, name)
            if value is not None:
                _non_negative(name, value)
        for name in ("style_scale", "swag_temperature"):
            value = getattr(self, name)
            if not (_is_number(value) and math.isfinite(value) and value > 0):
                raise ConfigError(f"{name} must be a positive number, got {value!r}")
        if self.lr is not None:
            check_lr(self.lr)
        for name in ("style_blend", "style_layer_weights", "content_layer_weights"):
            for value in getattr(self, name):
                _non_negative(name, value)
        if self.style_blend and len(self.style_blend) != len(self.styles):
            raise ConfigError(
                f"style_blend has {len(self.style_blend)} weights for {len(self.styles)} style images; give one "
                "weight per style image (or none for equal weights)"
            )
        for layers, weights in (
            (self.style_layers, self.style_layer_weights),
            (self.content_layers, self.content_layer_weights),
        ):
            if layers and weights and len(layers) != len(weights):
                raise ConfigError(f"{len(weights)} layer weights for {len(layers)} layers {list(layers)}")
        bad = [t for t in self.thresholds if not 1 <= t <= self.steps]
        if bad:
            raise ConfigError(f"thresholds must lie in 1..steps={self.steps}, got {bad}")

    # --- presets ---------------------------------------------------------------------------------
    @property
    def layer_preset(self) -> StylePreset:
        """The :class:`StylePreset` named by ``preset``."""
        return STYLE_PRESETS.get(self.preset)

    def resolve(self) -> StyleConfig:
        """A copy with every ``None``/empty preset-backed field filled in from the presets.

        Custom ``style_layers``/``content_layers`` replace the preset's (equal weights unless given);
        layer weights given without layers apply to the preset's layers.
        """
        preset = self.layer_preset
        style_layers, style_w = _layers_and_weights(
            "style", self.style_layers, self.style_layer_weights, preset.style_layers, preset.style_layer_weights
        )
        content_layers, content_w = _layers_and_weights(
            "content",
            self.content_layers,
            self.content_layer_weights,
            preset.content_layers,
            preset.content_layer_weights,
        )
        optimizer = self.optimizer_preset_name
        return self.replace(
            backbone=self.backbone or preset.backbone,
            style_layers=style_layers,
            style_layer_weights=style_w,
            content_layers=content_layers,
            content_layer_weights=content_w,
            style_loss=self.style_loss or preset.style_loss,
            gram_norm=self.gram_norm or preset.gram_norm,
            style_weight=preset.style_weight if self.style_weight is None else self.style_weight,
            content_weight=preset.content_weight if self.content_weight is None else self.content_weight,
            optimizer=optimizer,
            lr=OPTIMIZER_PRESETS.get(optimizer).lr if self.lr is None else self.lr,
        )

    def rederive(self, changed: Iterable[str]) -> StyleConfig:
        """Before ``changed`` fields change, clear the fields they determine (:data:`DERIVED_FIELDS`).

        Called by :meth:`~paramviz.config.ConfigBase.override` on the config *before* the change. A config read
        back from a run's ``config.toml`` is resolved: every preset-derived field is filled in. When a rerun
        or a sweep arm changes ``preset``, ``optimizer`` or ``transforms``, the fields those imply must be derived
        again instead of silently keeping the old values. A field is cleared only when it holds the value this
        config derives for it (or none), so a value set on purpose (an explicit ``optimizer = "adam"`` in a
        sweep's base, with ``transforms`` as an axis) is kept; fields in ``changed`` are never cleared.
        """
        changed = set(changed)
        candidates = {f for key in changed for f in DERIVED_FIELDS.get(key, ())} - changed
        defaults = {f.name: f.default for f in dataclasses.fields(self) if f.name in candidates}
        if not defaults:
            return self
        derived = self.replace(**defaults).resolve()
        clear = {
            name: default
            for name, default in defaults.items()
            if getattr(self, name) == default or getattr(self, name) == getattr(derived, name)
        }
        return self.replace(**clear) if clear else self

    @property
    def optimizer_preset_name(self) -> str:
        """The optimizer preset used: the explicit one, else adam-lucid with random transforms, else the preset's."""
        if self.optimizer is not None:
            return self.optimizer
        return RANDOM_TRANSFORMS_OPTIMIZER if self.random_transforms else self.layer_preset.optimizer

    @property
    def random_transforms(self) -> bool:
        """Whether the transform stack draws random parameters (anything but padding and blur)."""
        return any(op.random for op in parse_transforms(self.transforms))

    def main_backbone_options(self) -> dict[str, object]:
        """Options for ``build_backbone`` of the main backbone.

        The preset's if it is the preset's network, then :attr:`backbone_options`.
        """
        preset = self.layer_preset
        own = dict(preset.backbone_options) if (self.backbone or preset.backbone) == preset.backbone else {}
        return {**own, **parse_backbone_options(self.backbone_options)}

    def content_backbone_options(self) -> dict[str, object]:
        """Options for ``build_backbone`` of ``content_backbone``.

        The preset's if it is the preset's network, then the options every backbone takes from
        :attr:`backbone_options` (the others are the main backbone's).
        """
        preset = self.layer_preset
        own = dict(preset.backbone_options) if self.content_backbone == preset.backbone else {}
        common = {k: v for k, v in parse_backbone_options(self.backbone_options).items() if k in COMMON_OPTIONS}
        return {**own, **common}


@dataclass
class StyleResult:
    """A finished style transfer.

    Attributes:
        config: The resolved config.
        render: The render result (images are the raw optimized images, before colour preservation).
        objective: The full objective (style + content + tv terms).
        backbone: The backbone used (a :class:`CompositeBackbone` with a separate content network).
        device: Where it ran.
        image: The output image (1, 3, H, W) in [0, 1], after colour preservation.
        snapshots: Output images at the thresholds, keyed by step, after colour preservation.
        initial_terms: Each term on the initial image, without transforms.
        final_terms: Each term on the final image, without transforms.
        luminance_style_factor: With ``original_colors="luminance"``, the factor the style terms were scaled by
            (see :mod:`paramviz.tasks.colors`); 1 otherwise.
        measured: Image metrics of the output (:mod:`paramviz.metrics`) as ``metrics.json`` fields:
            ``metrics`` (with the spectra of the style and content images), ``metrics_per_image``,
            ``metrics_skipped``.
    """

    config: StyleConfig
    render: RenderResult
    objective: Objective
    backbone: nn.Module
    device: str
    image: torch.Tensor
    snapshots: dict[int, torch.Tensor]
    initial_terms: dict[str, float]
    final_terms: dict[str, float]
    luminance_style_factor: float = 1.0
    measured: dict[str, dict] = field(default_factory=dict)

    @property
    def images(self) -> torch.Tensor:
        """The output image (1, 3, H, W), as :attr:`image` (the name every task result has)."""
        return self.image

    @staticmethod
    def _group(terms: Mapping[str, float], prefix: str) -> float:
        return float(sum(v for k, v in terms.items() if k == prefix or k.startswith(prefix + ":")))

    @property
    def style_loss(self) -> float:
        """Weighted style loss (sum of the ``style:*`` terms) of the final image."""
        return self._group(self.final_terms, "style")

    @property
    def content_loss(self) -> float:
        """Weighted content loss (sum of the ``content:*`` terms) of the final image."""
        return self._group(self.final_terms, "content")

    @property
    def initial_style_loss(self) -> float:
        """Weighted style loss of the initial image."""
        return self._group(self.initial_terms, "style")

    def metrics(self) -> dict[str, object]:
        """The ``metrics.json`` content: common run fields, every loss term, image metrics."""
        r = self.render
        final, initial = self.final_terms, self.initial_terms
        total, initial_total = float(sum(final.values())), float(sum(initial.values()))
        return {
            **run_metrics(
                "style",
                r,
                device=self.device,
                backbone=self.backbone,
                final_loss=total,
                initial_loss=initial_total,
                steps_requested=self.config.steps,
            ),
            "style_loss": self.style_loss,
            "content_loss": self.content_loss,
            "tv_loss": self._group(final, "tv"),
            "total_loss": total,
            "initial_style_loss": self.initial_style_loss,
            "initial_content_loss": self._group(initial, "content"),
            "initial_total_loss": initial_total,
            "terms": final,
            "initial_terms": initial,
            "last_step_terms": r.final_terms,
            "term_history": r.term_history,
            "loss_history": r.history,
            "output_size": list(self.image.shape[-2:]),
            "luminance_style_factor": self.luminance_style_factor,
            "metrics": {},
            "metrics_per_image": {},
            **self.measured,
        }


# --- building blocks ---------------------------------------------------------------------------------
class _ReplayContent(BackboneView):
    """Backbone wrapper that adds content targets replayed under the current transform draw.

    For every requested content layer ``L`` it also returns ``L + TARGET_SUFFIX``: the activation of the
    content image passed through the transforms with the draw just used for the output image (computed
    without gradient). :class:`~paramviz.objectives.style.ContentLoss` compares with it. With a deterministic
    stack (padding, blur) every step sees the same content view, so the targets are computed once.
    """

    def __init__(
        self, backbone: nn.Module, transforms: TransformStack, content: torch.Tensor, layers: Iterable[str]
    ) -> None:
        super().__init__(backbone)
        self.transforms = transforms
        self.register_buffer("content", content.detach().clone())
        self.content_layers = set(layers)
        self.cache: dict[tuple, dict[str, torch.Tensor]] = {}  # deterministic stacks: the targets, once
        self.target_passes = 0  # how often the content went through the network (for tests and benchmarks)

    def forward(self, x: torch.Tensor, layers: Iterable[str]) -> dict[str, torch.Tensor]:
        layers = list(layers)
        features = self.backbone(x, layers)
        wanted = [layer for layer in layers if layer in self.content_layers]
        draw = self.transforms.last_draw
        if wanted and draw is not None:
            key = (tuple(x.shape), x.device, x.dtype, tuple(wanted))
            targets = self.cache.get(key) if not self.transforms.random else None
            if targets is None:
                with torch.no_grad():
                    content = self.content.to(x.device, x.dtype).expand(x.shape[0], -1, -1, -1)
                    view = self.transforms(content, draw=draw)
                    targets = self.backbone(view, wanted)
                self.target_passes += 1
                if not self.transforms.random:
                    self.cache[key] = targets
            features.update({layer + TARGET_SUFFIX: targets[layer] for layer in wanted})
        return features


def parse_layer_weights(spec: str, what: str = "layers") -> tuple[tuple[str, ...], tuple[float, ...]]:
    """Parse ``"relu1_1:256,relu2_1:64,relu3_1"`` into layer names and weights (missing weights are 1).

    Returns ``((), ())`` for an empty spec. If no token has a weight, the weights tuple is empty (equal).

    Raises:
        SpecError: An empty token or a weight that is not a non-negative number.
    """
    if not spec or not spec.strip():
        return (), ()
    layers: list[str] = []
    weights: list[float] = []
    any_weight = False
    for token in spec.split(","):
        token = token.strip()
        name, sep, weight = token.rpartition(":") if ":" in token else (token, "", "")
        if not name:
            raise SpecError(
                f"{what} spec {spec!r}: empty layer name in {token!r}; expected 'layer[:weight],...' "
                "(e.g. 'relu1_1:256,relu2_1:64')"
            )
        if sep:
            any_weight = True
            try:
                value = float(weight)
            except ValueError:
                raise SpecError(
                    f"{what} spec {spec!r}: weight {weight!r} of layer {name!r} is not a number; expected "
                    "'layer[:weight],...' (e.g. 'relu1_1:256,relu2_1:64')"
                ) from None
            if not (math.isfinite(value) and value >= 0):
                raise SpecError(f"{what} spec {spec!r}: weight of layer {name!r} must be >= 0, got {weight}")
        else:
            value = 1.0
        layers.append(name)
        weights.append(value)
    return tuple(layers), tuple(weights) if any_weight else ()


def _normalized(layers: Sequence[str], weights: Sequence[float], total: float) -> dict[str, float]:
    """``{layer: total * w / sum(w)}``, or ``{}`` if the total or every weight is 0."""
    s = float(sum(weights))
    if total == 0 or s == 0:
        return {}
    out: dict[str, float] = {}
    for layer, w in zip(layers, weights, strict=True):
        out[layer] = out.get(layer, 0.0) + total * float(w) / s
    return out


def load_inputs(config: StyleConfig) -> tuple[torch.Tensor, list[torch.Tensor]]:
    """Load the content image (long side ``size``, or covering and cropped to ``(H, W)``) and the style images.

    Style images get a long side of ``style_scale`` times the output's long side.

    Raises:
        ConfigError: No content or no style image given.
        ImageError: A missing, unreadable or corrupt image.
    """
    if not config.content:
        raise ConfigError("no content image given; pass CONTENT (a file path or sample:NAME such as sample:chelsea)")
    if not config.styles:
        raise ConfigError("no style image given; pass at least one STYLE image after the content image")
    if isinstance(config.size, int):
        content = load_image(config.content, config.size)
    else:
        content = resize_center_crop(load_image(config.content), config.size)
    style_size = max(16, round(max(size_hw(config.size)) * config.style_scale))
    styles = [load_image(path, style_size) for path in config.styles]
    return content, styles


def initial_image(config: StyleConfig, content: torch.Tensor) -> torch.Tensor:
    """The start image of the optimization (``init``), seeded by ``seed``."""
    gen = torch.Generator().manual_seed(config.seed)
    if config.init == "content":
        return content.clone()
    if config.init == "noise":
        return torch.rand(content.shape, generator=gen)
    return 0.5 + (torch.rand(content.shape, generator=gen) * 2 - 1) / 255


def build_style_backbone(config: StyleConfig, shared: SharedWork | None = None) -> Backbone:
    """The main backbone (style losses, and content losses unless ``content_backbone`` is set)."""
    return seeded_backbone(
        config.backbone or config.layer_preset.backbone,
        config.weights,
        seed=config.seed,
        trust_checkpoint=config.trust_checkpoint,
        options=config.main_backbone_options(),
        shared=shared,
    )


def build_content_backbone(config: StyleConfig, shared: SharedWork | None = None) -> Backbone | None:
    """The separate content backbone, or ``None`` when ``content_backbone`` is not set."""
    if config.content_backbone is None:
        return None
    try:
        return seeded_backbone(
            config.content_backbone,
            config.content_backbone_weights,
            seed=config.seed + 1 if config.seed < SEED_RANGE[1] else 0,  # another random network than the style one
            trust_checkpoint=config.trust_checkpoint,
            options=config.content_backbone_options(),
            shared=shared,
        )
    except WeightsError as exc:  # the fixes it suggests are for this backbone's own option
        text = re.sub(r"(?<![\w-])--weights\b", "--content-backbone-weights", str(exc))
        raise WeightsError(re.sub(r"\bweights=PATH", "content_backbone_weights=PATH", text)) from None


@torch.no_grad()
def evaluate_terms(objective: Objective, backbone: nn.Module, image: torch.Tensor) -> dict[str, float]:
    """Each weighted term of ``objective`` on ``image`` (no transforms), averaged over the batch."""
    device = next(iter(backbone.buffers())).device if list(backbone.buffers()) else torch.device("cpu")
    image = image.to(device)
    layers = sorted(objective.layers() - {INPUT_KEY})
    features = dict(backbone(image, layers))
    features[INPUT_KEY] = image
    _, terms = objective.evaluate(features)
    return {name: float(value.mean()) for name, value in terms.items()}


def preset_optimizer(config: StyleConfig) -> OptimizerPreset:
    """The :class:`OptimizerPreset` a (resolved or not) config uses."""
    return OPTIMIZER_PRESETS.get(config.optimizer_preset_name)


def _recolor(config: StyleConfig, image: torch.Tensor, content_rgb: torch.Tensor) -> torch.Tensor:
    if config.original_colors == "off":
        return image
    return transfer_colors(image, content_rgb.to(image.device))


# --- the task, in parts ------------------------------------------------------------------------------
#: Fields that only shape the optimization, not the networks, inputs or targets: runs that differ only in
#: these share one :class:`StyleSetup` (the seed too, unless random weights make it pick the network).
RUN_FIELDS = (
    "param",
    "transforms",
    "init",
    "steps",
    "optimizer",
    "lr",
    "seed",
    "thresholds",
    "tv_weight",
    "metrics",
)


@dataclass
class StyleSetup:
    """What a style transfer builds before optimizing: inputs, networks and the losses with their targets.

    Attributes:
        content_rgb: The content image (1, 3, H, W) as loaded (used to recolour the result).
        styles_rgb: The style images as loaded (the metrics compare the result with them).
        content_in: The content image the losses see (luminance only with ``original_colors="luminance"``).
        styles_in: The style images the losses see.
        backbone: The main network.
        net: The network the losses read (``backbone``, or a :class:`CompositeBackbone` with a content network).
        losses: Style and content terms with their targets (no total variation), or ``None`` if both have
            weight 0.
        content_keys: Content layer key -> weight (the replayed-target wrapper needs them).
        luminance_style_factor: With ``original_colors="luminance"``, the factor the style terms are scaled by.
    """

    content_rgb: torch.Tensor
    styles_rgb: list[torch.Tensor]
    content_in: torch.Tensor
    styles_in: list[torch.Tensor]
    backbone: Backbone
    net: nn.Module
    losses: Objective | None
    content_keys: dict[str, float]
    luminance_style_factor: float = 1.0


def setup_key(config: StyleConfig) -> str:
    """Runs with equal keys (of their resolved configs) can share one :class:`StyleSetup`."""
    data = config.resolve().to_dict()
    weights = {config.weights, config.content_backbone_weights if config.content_backbone else ""}
    for name in RUN_FIELDS:
        if name != "seed" or all(backbone_seed(w, config.seed) is None for w in weights):
            data.pop(name, None)
    return json.dumps(data, sort_keys=True)


def _check_weights(config: StyleConfig) -> tuple[dict[str, float], dict[str, float]]:
    style_layers = _normalized(config.style_layers, config.style_layer_weights, float(config.style_weight))
    content_layers = _normalized(config.content_layers, config.content_layer_weights, float(config.content_weight))
    if not style_layers and not content_layers and config.tv_weight == 0:
        raise ConfigError(
            "every loss term has weight 0 (style_weight, content_weight, tv_weight and the layer weights); "
            "give at least one positive weight, e.g. --style-weight 1"
        )
    return style_layers, content_layers


def prepare_style(
    config: StyleConfig,
    *,
    backbone: Backbone | None = None,
    content_backbone: Backbone | None = None,
    shared: SharedWork | None = None,
) -> StyleSetup:
    """Load the images, build the networks and the style/content losses with their targets (computed once).

    Args:
        config: The run's settings (resolved here if not yet).
        backbone: An already built main backbone.
        content_backbone: An already built content backbone (implies a separate content network).
        shared: Work shared with other runs: backbones are built once for all runs that use them.
    """
    config = config.resolve()
    style_layers, content_layers = _check_weights(config)
    content_rgb, styles = load_inputs(config)
    device = resolve_device(config.device)

    if backbone is None:
        backbone = build_style_backbone(config, shared)
    if content_backbone is None:
        content_backbone = build_content_backbone(config, shared)
    separate = content_backbone is not None and content_backbone is not backbone
    content_bb = content_backbone if separate else backbone
    backbone.validate(list(style_layers))
    content_bb.validate(list(content_layers))
    h, w = content_rgb.shape[-2:]
    optimizer = preset_optimizer(config).optimizer
    parts = [(backbone, list(style_layers)), (content_bb, list(content_layers))]
    check_memory(estimate_render_bytes(parts, 1, h, w, optimizer=optimizer), device, "use a smaller --size")
    backbone.to(device)
    content_bb.to(device)

    content_in, styles_in = content_rgb, styles
    if config.original_colors == "luminance":
        content_in, styles_in = luminance_only_inputs(content_rgb, styles)

    if separate:
        net: nn.Module = CompositeBackbone({STYLE_PART: backbone, CONTENT_PART: content_bb})
        style_keys = {CompositeBackbone.join(STYLE_PART, k): v for k, v in style_layers.items()}
        content_keys = {CompositeBackbone.join(CONTENT_PART, k): v for k, v in content_layers.items()}
    else:
        net = backbone
        style_keys, content_keys = dict(style_layers), dict(content_layers)
    style_names = {key: f"style:{layer}" for key, layer in zip(style_keys, style_layers, strict=True)}
    content_names = {key: f"content:{layer}" for key, layer in zip(content_keys, content_layers, strict=True)}
    colour_net = net
    if config.original_colors == "luminance":
        net = LuminanceView(net)  # the network sees the luminance of the output, which is all that is kept

    terms: list[Objective] = []
    factor = 1.0
    if style_keys:

        def make_style(network: nn.Module, images: list[torch.Tensor]) -> Objective:
            return style_objective(
                network,
                images,
                style_keys,
                loss=config.style_loss,
                blend=config.style_blend or None,
                normalize=config.gram_norm,
                eps=config.w2_eps,
                reduction=config.w2_reduction,
                swag=config.swag,
                temperature=config.swag_temperature,
                names=style_names,
            )

        style_term = make_style(net, styles_in)
        if config.original_colors == "luminance":
            # the style loss of the content image in colour and in luminance: scale the luminance terms so that
            # it is the same (colour carries most of a painting's style loss; see paramviz.tasks.colors)
            grey = sum(evaluate_terms(style_term, net, content_in).values())
            colour = sum(evaluate_terms(make_style(colour_net, styles), colour_net, content_rgb).values())
            factor = colour / grey if grey > 0 and colour > 0 else 1.0
            style_term = factor * style_term
        terms.append(style_term)
    if content_keys:
        terms.append(content_objective(net, content_in, content_keys, names=content_names))
    losses = sum(terms[1:], terms[0]).to(device) if terms else None
    return StyleSetup(
        content_rgb, list(styles), content_in, list(styles_in), backbone, net, losses, content_keys, factor
    )


def render_style(
    config: StyleConfig, setup: StyleSetup, callbacks: Iterable[Callback] = (), shared: SharedWork | None = None
) -> StyleResult:
    """Optimize the image of a (resolved) config against a prepared :class:`StyleSetup`, then measure it."""
    config = config.resolve()
    device = resolve_device(config.device)
    terms = [setup.losses] if setup.losses is not None else []
    if config.tv_weight > 0:
        terms.append(config.tv_weight * TotalVariation())
    if not terms:
        _check_weights(config)
    objective: Objective = sum(terms[1:], terms[0])

    transforms = build_transforms(config.transforms)
    if preset_optimizer(config).optimizer == "lbfgs" and config.random_transforms:
        warnings.warn(
            f"L-BFGS with random transforms ({transforms.spec}) mixes gradients of different draws in its "
            "curvature estimate and can diverge; consider --optimizer adam",
            RuntimeWarning,
            stacklevel=2,
        )
    net = setup.net
    render_net = net
    if setup.content_keys and len(transforms.ops) > 0:
        render_net = _ReplayContent(net, transforms, setup.content_in, setup.content_keys)

    context = metric_context(
        "style",
        config.metrics,
        device=device,
        shared=shared,
        backbone=net,
        content=setup.content_rgb,
        styles=setup.styles_rgb,
        style_blend=config.style_blend,
    )
    # a parameterization without an inverse (cppn; only init="gray" passes validation) starts from its own init
    init = initial_image(config, setup.content_in) if config.param.param_class.inverse is not None else None
    param = build_param(config.param, tuple(setup.content_rgb.shape[-2:]), batch=1, seed=config.seed, init=init)
    with torch.no_grad():
        initial_terms = evaluate_terms(objective.to(device), net, param())
    preset = preset_optimizer(config)
    try:
        result = render(
            param,
            transforms,
            render_net,
            objective,
            optimizer=preset.optimizer,
            steps=config.steps,
            lr=float(config.lr),
            thresholds=config.thresholds,
            callbacks=callbacks,
            seed=config.seed,
            device=device,
        )
    except RenderInterrupted as exc:
        if exc.steps_done > 0:
            exc.outcome = _finish(config, setup, exc.result, objective, initial_terms)
        raise
    finished = _finish(config, setup, result, objective, initial_terms)
    finished.measured = measure(finished.image, context, config.metrics)
    return finished


def _finish(
    config: StyleConfig,
    setup: StyleSetup,
    render_result: RenderResult,
    objective: Objective,
    initial_terms: dict[str, float],
) -> StyleResult:
    """The :class:`StyleResult` of a finished (or interrupted) render: final terms, recoloured images."""
    final_terms = evaluate_terms(objective, setup.net, render_result.image)
    snapshots = {step: _recolor(config, img, setup.content_rgb) for step, img in render_result.images.items()}
    return StyleResult(
        config=config,
        render=render_result,
        objective=objective,
        backbone=setup.net,
        device=str(resolve_device(config.device)),
        image=snapshots[max(snapshots)],
        snapshots=snapshots,
        initial_terms=initial_terms,
        final_terms=final_terms,
        luminance_style_factor=setup.luminance_style_factor,
    )


def stylize(
    config: StyleConfig,
    callbacks: Iterable[Callback] = (),
    *,
    backbone: Backbone | None = None,
    content_backbone: Backbone | None = None,
    shared: SharedWork | None = None,
) -> StyleResult:
    """Run a style transfer described by ``config``: :func:`prepare_style`, then :func:`render_style`.

    Args:
        config: The run's settings (fields left at ``None`` come from the presets).
        callbacks: Render callbacks (progress bars, loggers).
        backbone: An already built backbone to use instead of ``config.backbone``.
        content_backbone: An already built backbone for the content loss (implies a separate content network).
        shared: Work shared with other runs (a sweep): runs with the same :func:`setup_key` share the networks,
            inputs and style/content targets.

    Raises:
        ConfigError: Missing images, zero weight for every term, a non-spatial style layer, bad options.
        ImageError: A missing, unreadable or corrupt image.
        UnknownNameError: Unknown preset, backbone or layer (with close matches).
    """
    config = config.resolve()  # (prepare_style refuses an all-zero config before loading anything)

    def prepare() -> StyleSetup:
        return prepare_style(config, backbone=backbone, content_backbone=content_backbone, shared=shared)

    if shared is not None and backbone is None and content_backbone is None:
        setup = shared.get(("style-setup", setup_key(config)), prepare)
    else:
        setup = prepare()
    return render_style(config, setup, callbacks, shared)


def write_outputs(result: StyleResult, out: OutputDir) -> None:
    """Write ``image.png``, ``steps/`` snapshots, ``config.toml`` (resolved) and ``metrics.json``."""
    out.save_image("image.png", result.image[0])
    for step, snap in result.snapshots.items():
        if step != result.render.steps:
            out.save_image(f"steps/step_{step:05d}.png", snap[0])
    out.write_text("config.toml", result.config.to_toml())
    out.write_json("metrics.json", result.metrics())


def run_style(
    config: StyleConfig,
    out: str | Path,
    force: bool = False,
    callbacks: Iterable[Callback] = (),
) -> StyleResult:
    """Run :func:`stylize` and write its outputs to ``out``.

    Nothing is written unless the run succeeds or is interrupted with Ctrl-C (then the image of the last
    completed step is written, ``metrics.json`` has ``"interrupted_at_step"``, and the
    :class:`~paramviz.errors.RenderInterrupted` is raised again); a non-empty ``out`` is refused (before any
    work) unless ``force``, and then only if it holds an earlier paramviz output.
    """
    check_output_dir(out, force)
    try:
        result = stylize(config, callbacks)
    except RenderInterrupted as exc:  # Ctrl-C: keep the image of the last completed step
        if exc.outcome is not None:
            with OutputDir(out, force, kind="style") as target:
                write_outputs(exc.outcome, target)
            exc.written_to = out
        raise
    with OutputDir(out, force, kind="style") as target:
        write_outputs(result, target)
    return result


# --- validation helpers ------------------------------------------------------------------------------
def _is_number(value: object) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _non_negative(name: str, value: object) -> None:
    if not (_is_number(value) and math.isfinite(value) and value >= 0):
        raise ConfigError(f"{name} must be a finite number >= 0, got {value!r}")


def _choice(name: str, value: object, choices: Sequence[str]) -> None:
    if value not in choices:
        raise UnknownNameError(name, str(value), choices)


def _layers_and_weights(
    what: str,
    layers: tuple[str, ...],
    weights: tuple[float, ...],
    preset_layers: tuple[str, ...],
    preset_weights: tuple[float, ...],
) -> tuple[tuple[str, ...], tuple[float, ...]]:
    if layers:
        return layers, tuple(float(w) for w in weights) if weights else (1.0,) * len(layers)
    if weights:
        if len(weights) != len(preset_layers):
            raise ConfigError(
                f"{len(weights)} {what} layer weights given for the preset's {len(preset_layers)} {what} layers "
                f"{list(preset_layers)}; give one weight per layer or custom --{what}-layers"
            )
        return preset_layers, tuple(float(w) for w in weights)
    return preset_layers, preset_weights


TASKS.register(
    "style",
    Task(
        "style",
        StyleConfig,
        run=stylize,
        write=write_outputs,
        path_fields=("content", "styles", "weights", "content_backbone_weights"),
        description="neural style transfer",
        share_key=setup_key,
    ),
)
