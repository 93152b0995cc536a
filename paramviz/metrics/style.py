"""Style-transfer metrics judged by a **referee**: a real network other than the one that optimized.

The referee is the backbone ``context.referee`` (default ``efficientnet_lite1``) with its pretrained weights,
and its layers are those of the style preset of the same name (:data:`~paramviz.tasks.style_presets.
STYLE_PRESETS`; ``efficientnet_lite1``: the first ReLU6 at each resolution for style, ``blocks.3.1.bn1`` for
content). The per-layer weights are the preset's, normalized to sum 1 (its total style and content weights
are optimization scales and are not used). The losses are those of :mod:`paramviz.objectives.style`:

- ``style_distance = sum_l w_l mean_{c,d} (G_l(x) - G_l^target)^2``, the Gram loss with the preset's
  normalization (``hw``: ``G = F F^T / (H W)``); ``G^target`` blends the style images' Gram matrices with
  ``context.style_blend`` (equal weights when empty). 0 for the style image itself; lower is better.
- ``content_distance = sum_l w_l mean_{c,h,w} (F_l(x) - F_l(content))^2`` at the preset's content layers.
  0 for the content image; lower is better.
- ``ssim_content``: SSIM to the content image (``kornia.metrics.ssim``, Gaussian window 11, sigma 1.5, data
  range 1, ``same`` reflect padding), averaged over the map and channels. In [-1, 1], 1 for the content
  image itself; higher keeps more of the content's structure.

The content image is resized (bilinear, antialiased) to the output size when the sizes differ; style images
keep their own size (Gram matrices normalized by H·W do not depend on it). A referee with the name of the
optimized backbone (or of a part of a composite backbone) would judge its own work: the style metrics then do
not apply; pick another ``referee``.
"""

from __future__ import annotations

import kornia
import torch
import torch.nn.functional as F

from paramviz.errors import ConfigError, ImageError, UnknownNameError
from paramviz.metrics.registry import Metric, MetricContext, blend_or_equal, module_device, register_metric
from paramviz.objectives.style import content_objective, style_objective
from paramviz.tasks.style_presets import STYLE_PRESETS, StylePreset

#: SSIM window size.
SSIM_WINDOW = 11


def referee_preset(name: str) -> StylePreset:
    """The style preset that gives referee ``name`` its layers: the preset named like the backbone.

    Raises:
        UnknownNameError: No such preset (listing the referees there are).
    """
    referees = [e.name for e in STYLE_PRESETS.entries() if e.obj.backbone == e.name]
    if name not in referees:
        raise UnknownNameError(
            "style referee", name, referees, "a referee is a backbone with a style preset of the same name"
        )
    return STYLE_PRESETS.get(name)


def _weights(layers: tuple[str, ...], weights: tuple[float, ...]) -> dict[str, float]:
    total = float(sum(weights))
    out: dict[str, float] = {}
    for layer, w in zip(layers, weights, strict=True):
        out[layer] = out.get(layer, 0.0) + float(w) / total
    return out


def style_distance(
    images: torch.Tensor,
    styles: list[torch.Tensor] | tuple[torch.Tensor, ...],
    referee: torch.nn.Module,
    preset: StylePreset,
    blend: list[float] | tuple[float, ...] | None = None,
) -> torch.Tensor:
    """Preset-weighted Gram distance of each image to the (blended) style images on ``referee``, (B,) float64."""
    objective = style_objective(
        referee,
        list(styles),
        _weights(preset.style_layers, preset.style_layer_weights),
        loss="gram",
        blend=blend or None,
        normalize=preset.gram_norm,
    )
    return _evaluate(objective, referee, images)


def content_distance(
    images: torch.Tensor, content: torch.Tensor, referee: torch.nn.Module, preset: StylePreset
) -> torch.Tensor:
    """Preset-weighted mean squared feature difference to the content image on ``referee``, (B,) float64."""
    content = _at_size(content, images)
    objective = content_objective(referee, content, _weights(preset.content_layers, preset.content_layer_weights))
    return _evaluate(objective, referee, images)


def ssim_content(images: torch.Tensor, content: torch.Tensor) -> torch.Tensor:
    """Mean SSIM (window 11) of each image to the content image at the output size, (B,) float64.

    Raises:
        ImageError: The images are too small for the window (a side of at most 5 px).
    """
    if min(images.shape[-2:]) <= SSIM_WINDOW // 2:
        raise ImageError(
            f"ssim_content needs images larger than {SSIM_WINDOW // 2} px per side, got "
            f"{images.shape[-2]}x{images.shape[-1]}"
        )
    x = images.detach()
    target = _at_size(content, images).to(x.device, x.dtype).expand_as(x)
    return kornia.metrics.ssim(x, target, SSIM_WINDOW).flatten(1).mean(1).double().cpu()


def _at_size(content: torch.Tensor, images: torch.Tensor) -> torch.Tensor:
    if tuple(content.shape[-2:]) == tuple(images.shape[-2:]):
        return content.detach()
    return F.interpolate(
        content.detach().float(), size=tuple(images.shape[-2:]), mode="bilinear", antialias=True, align_corners=False
    ).clamp(0, 1)


def _evaluate(objective, referee: torch.nn.Module, images: torch.Tensor) -> torch.Tensor:
    if objective is None:  # a preset whose every layer weight is 0
        raise ConfigError("the referee's style preset gives every layer weight 0")
    x = images.detach().to(module_device(referee))
    features = referee(x, sorted(objective.layers()))
    return objective(features).detach().double().cpu()


# --- registry entries ------------------------------------------------------------------------------
def _referee_ok(context: MetricContext) -> bool:
    return context.referee not in context.optimized_names()


def _referee(context: MetricContext) -> tuple[torch.nn.Module, StylePreset]:
    preset = referee_preset(context.referee)
    return context.network(context.referee), preset


def _style(images: torch.Tensor, context: MetricContext) -> torch.Tensor:
    referee, preset = _referee(context)
    return style_distance(images, list(context.styles), referee, preset, blend_or_equal(context))


def _content(images: torch.Tensor, context: MetricContext) -> torch.Tensor:
    referee, preset = _referee(context)
    return content_distance(images, context.content, referee, preset)


_REFEREE_NEEDS = "a referee (MetricContext.referee) other than the optimized backbone"

register_metric(
    Metric(
        "style_distance",
        frozenset({"style"}),
        _style,
        applies=lambda ctx: bool(ctx.styles) and _referee_ok(ctx),
        needs=f"style_distance needs the style images and {_REFEREE_NEEDS}",
        description="Gram distance to the style image(s) on a referee network (default EfficientNet-Lite1)",
    )
)
register_metric(
    Metric(
        "content_distance",
        frozenset({"style"}),
        _content,
        applies=lambda ctx: ctx.content is not None and _referee_ok(ctx),
        needs=f"content_distance needs the content image and {_REFEREE_NEEDS}",
        description="mean squared feature difference to the content image on the referee network",
    )
)
register_metric(
    Metric(
        "ssim_content",
        frozenset({"style"}),
        lambda images, ctx: ssim_content(images, ctx.content),
        applies=lambda ctx: ctx.content is not None,
        needs="ssim_content needs the content image",
        description="SSIM (window 11) to the content image",
    )
)
