"""Layer layouts: every spatial layer reaches the objectives as (B, C, H, W).

Convolutional networks produce (B, C, H, W). Transformers do not: a ViT block outputs a token sequence
(B, N, C) that starts with class/register tokens, and timm's Swin stages output (B, H, W, C). The
:class:`~paramviz.backbones.base.Backbone` converts each captured layer once, with :func:`to_nchw`, so every
objective, style loss and metric reads one layout. The rules:

- **3-D (B, N, C)** is a token sequence. Its leading ``prefix_tokens`` (class and register tokens: timm's
  ``num_prefix_tokens``) are dropped when the sequence has them, and the remaining tokens are laid out on
  the patch grid in row-major order, giving (B, C, h, w). The grid is the backbone's patch grid for the
  input size when the token count matches it (``patch_size``, rounded up with ``pad_to_patch``); otherwise
  (Swin's downsampled stages) it is the factorization ``h * w`` of the token count whose shape follows the
  input's aspect ratio (each side within one token of ``H / r`` and ``W / r``). A sequence that fits
  neither is an error naming the layer.
- **4-D** is (B, C, H, W) unless the backbone knows that module to be channels-last (B, H, W, C), which is
  then permuted. The shape alone does not say which (a 7x7x768 map reads both ways), so the rule uses what
  the model says: the modules listed in ``FeatureLayout.channels_last`` (for timm models: every module of a
  model whose ``output_fmt`` is ``"NHWC"``, such as Swin, except PyTorch's 2-D convolution, normalization
  and pooling layers, which are channels-first by definition; and any module with its own ``output_fmt``
  of ``"NHWC"``, such as a ViT's patch embedding with ``dynamic_img_size``), plus, in every backbone, the
  ``nn.Linear`` and ``nn.LayerNorm`` layers, which act on the last dimension. Modules that permute inside
  (ConvNeXt's ``norm``/``mlp`` within a block) are read as channels-first: use the block outputs.
- **2-D (B, C)** (linear layers, pooled heads) is returned as it is.

A layer whose first dimension is not the batch (Swin's window attention works on windows) is refused: an
objective on it would mix images.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass, field

import torch
from torch import nn

from paramviz.errors import ConfigError

#: PyTorch layers whose 4-D output is (B, C, H, W) by definition, even inside a channels-last model.
CHANNELS_FIRST_TYPES: tuple[type[nn.Module], ...] = (
    nn.modules.conv._ConvNd,
    nn.modules.batchnorm._BatchNorm,
    nn.modules.instancenorm._InstanceNorm,
    nn.GroupNorm,
    nn.modules.pooling._MaxPoolNd,
    nn.modules.pooling._AvgPoolNd,
    nn.modules.pooling._AdaptiveAvgPoolNd,
    nn.modules.pooling._AdaptiveMaxPoolNd,
)


@dataclass(frozen=True)
class FeatureLayout:
    """What a backbone knows about the layout of its non-convolutional layers.

    Attributes:
        prefix_tokens: Class/register tokens at the start of its token sequences (timm's ``num_prefix_tokens``).
        patch_size: ``(ph, pw)`` pixels per token of the patch embedding, if it has one.
        pad_to_patch: The patch embedding pads the input up to a multiple of the patch size (timm's
            ``dynamic_img_pad``), so the grid is rounded up instead of down.
        channels_last: Module paths whose 4-D output is (B, H, W, C), as the model declares them (the
            :class:`~paramviz.backbones.base.Backbone` adds :func:`last_dim_modules` itself).
    """

    prefix_tokens: int = 0
    patch_size: tuple[int, int] | None = None
    pad_to_patch: bool = False
    channels_last: frozenset[str] = field(default_factory=frozenset)

    def patch_grid(self, height: int, width: int) -> tuple[int, int] | None:
        """The patch grid ``(h, w)`` for an input of ``height`` x ``width``, or None without a patch embedding."""
        if self.patch_size is None:
            return None
        ph, pw = self.patch_size
        if self.pad_to_patch:
            return math.ceil(height / ph), math.ceil(width / pw)
        return height // ph, width // pw

    def describe(self) -> str:
        """One line for ``paramviz layers``; empty for a plain convolutional network."""
        parts = []
        if self.patch_size is not None or self.prefix_tokens:
            grid = f"{self.patch_size[0]}x{self.patch_size[1]} px patches" if self.patch_size else "the token grid"
            prefix = (
                f", skipping {self.prefix_tokens} class/register token{'s' if self.prefix_tokens > 1 else ''}"
                if self.prefix_tokens
                else ""
            )
            parts.append(f"token layers (B, N, C) are read as (B, C, H, W) on the grid of {grid}{prefix}")
        if self.channels_last:
            count = len(self.channels_last)
            shown = ", ".join(sorted(self.channels_last, key=lambda p: (p.count("."), p))[:3])
            more = ", ..." if count > 3 else ""
            parts.append(
                f"the channels-last (B, H, W, C) outputs of {count} module{'s' if count > 1 else ''} "
                f"({shown}{more}) are permuted"
            )
        return "; ".join(parts)


def last_dim_modules(model: nn.Module) -> frozenset[str]:
    """Paths of the ``nn.Linear`` and ``nn.LayerNorm`` layers of ``model``: a 4-D output of theirs is channels-last.

    Both act on the last dimension, so in any network their 4-D output is (B, H, W, C) (timm's ``LayerNorm2d``,
    which normalizes channels-first maps, is excluded).
    """
    return frozenset(
        path
        for path, module in model.named_modules()
        if path
        and (
            isinstance(module, nn.Linear)
            or (isinstance(module, nn.LayerNorm) and not type(module).__name__.endswith("2d"))
        )
    )


def declared_channels_last(model: nn.Module) -> frozenset[str]:
    """Paths of the modules that ``model`` declares channels-last (rules in the module docstring).

    A module with its own ``output_fmt`` of ``"NHWC"`` (and no flattening to tokens) is channels-last; in a
    model whose ``output_fmt`` is ``"NHWC"`` (timm's Swin) so is every module without its own format, except
    PyTorch's 2-D convolution, normalization and pooling layers (:data:`CHANNELS_FIRST_TYPES`).
    """
    whole = _format_name(getattr(model, "output_fmt", None)) == "NHWC"
    out = set()
    for path, module in model.named_modules():
        if not path or isinstance(module, CHANNELS_FIRST_TYPES):
            continue
        own = _format_name(getattr(module, "output_fmt", None))
        if (own == "NHWC" and not getattr(module, "flatten", False)) or (own is None and whole):
            out.add(path)
    return frozenset(out)


def timm_layout(model: nn.Module) -> FeatureLayout:
    """The layout of a timm model from what it declares: ``num_prefix_tokens``, ``patch_embed``, ``output_fmt``."""
    embed = getattr(model, "patch_embed", None)
    patch = getattr(embed, "patch_size", None)
    patch_size = (int(patch[0]), int(patch[1])) if isinstance(patch, Iterable) else None
    return FeatureLayout(
        prefix_tokens=int(getattr(model, "num_prefix_tokens", 0) or 0),
        patch_size=patch_size,
        pad_to_patch=bool(getattr(embed, "dynamic_img_pad", False)),
        channels_last=declared_channels_last(model),
    )


def to_nchw(
    value: torch.Tensor,
    *,
    layer: str,
    layout: FeatureLayout,
    channels_last: bool,
    input_size: tuple[int, int],
    batch: int,
    backbone: str = "backbone",
) -> torch.Tensor:
    """A captured layer output in the common layout: (B, C, H, W) for spatial layers, (B, C) for linear ones.

    Args:
        value: The module's output.
        layer: Its name, for messages.
        layout: The backbone's :class:`FeatureLayout`.
        channels_last: Whether this module's 4-D output is (B, H, W, C).
        input_size: ``(H, W)`` of the network input.
        batch: Number of images in the input.
        backbone: Backbone name, for messages.

    Raises:
        ConfigError: The first dimension is not the batch, or a token sequence fits no grid.
    """
    if not isinstance(value, torch.Tensor) or value.dim() < 2:
        return value
    if value.shape[0] != batch:
        raise ConfigError(
            f"layer {layer!r} of backbone {backbone!r} has shape {tuple(value.shape)} for a batch of {batch} "
            "images: its first dimension is not the batch (e.g. Swin's window attention works on windows), so "
            "an objective on it would mix images; pick the block or stage output instead "
            f"(`paramviz layers {backbone}`)"
        )
    if value.dim() == 4:
        return value.permute(0, 3, 1, 2) if channels_last else value
    if value.dim() == 3:
        tokens = value
        height, width = token_grid(int(value.shape[1]), layout, input_size, layer=layer, backbone=backbone)
        if tokens.shape[1] != height * width:  # the sequence starts with class/register tokens
            tokens = tokens[:, layout.prefix_tokens :]
        return tokens.transpose(1, 2).reshape(batch, tokens.shape[2], height, width)
    return value


def token_grid(
    count: int, layout: FeatureLayout, input_size: tuple[int, int], *, layer: str = "", backbone: str = "backbone"
) -> tuple[int, int]:
    """The grid ``(h, w)`` of the patch tokens of a sequence of ``count`` tokens (with or without prefix tokens).

    Raises:
        ConfigError: No grid fits (the message names the layer, the count and the input size).
    """
    candidates = [count - layout.prefix_tokens, count] if layout.prefix_tokens else [count]
    candidates = [n for n in candidates if n > 0]
    grid = layout.patch_grid(*input_size)
    if grid is not None:
        for n in candidates:
            if n == grid[0] * grid[1]:
                return grid
    for n in candidates:
        found = _aspect_grid(n, input_size)
        if found is not None:
            return found
    prefix = ""
    if layout.prefix_tokens:
        prefix = f" or {count - layout.prefix_tokens} after {layout.prefix_tokens} prefix tokens"
    raise ConfigError(
        f"layer {layer!r} of backbone {backbone!r} outputs a sequence of {count} tokens{prefix}, which fits no "
        f"grid of patches for a {input_size[0]}x{input_size[1]} input; if the sequence starts with class or "
        "register tokens the backbone must say how many (FeatureLayout.prefix_tokens), else pick another layer"
    )


def _aspect_grid(count: int, input_size: tuple[int, int]) -> tuple[int, int] | None:
    """The factorization ``h * w == count`` closest to the input's aspect ratio, within one token per side."""
    height, width = input_size
    reduction = math.sqrt(height * width / count)
    want_h, want_w = height / reduction, width / reduction
    best: tuple[float, tuple[int, int]] | None = None
    for h in range(1, math.isqrt(count) + 1):
        if count % h:
            continue
        for pair in ((h, count // h), (count // h, h)):
            error = max(abs(pair[0] - want_h), abs(pair[1] - want_w))
            if error < 1 and (best is None or error < best[0]):
                best = (error, pair)
    return None if best is None else best[1]


def _format_name(fmt: object) -> str | None:
    """``"NHWC"`` from ``"NHWC"`` or timm's ``Format.NHWC``; None when absent."""
    if fmt is None:
        return None
    return str(getattr(fmt, "value", fmt)).upper()
