"""Objectives driven by a given image: ``input_diff``, feature ``inversion`` and ``caricature``.

Each holds a reference image (a file path, ``sample:NAME`` or a tensor), read with
:func:`paramviz.io.load_image` when the render loop attaches the objective (:meth:`Objective.attach`,
before step 1: a missing file fails there, never at parse time) and **resized to the render size**
(bilinear with antialiasing; the aspect ratio follows the render size, so a reference of another shape is
stretched).

While the loop runs, the reference goes through the **same transform draw** as the rendered image each
step (as Lucid's feature-inversion recipe, which puts both images in one transformed batch, and
torch-dreams' paired transforms do), so the two line up pixel for pixel and have the same size after
padding and crops. Its activations are computed without gradient: once when the transforms are
deterministic, else once per step (one extra forward pass of the backbone). Outside the loop (metrics,
tests) the reference is used untransformed, with its activations at the render size, resized bilinearly to
the evaluated layer's size when that differs.

``inversion`` and ``caricature`` also take ``target=`` activations directly (Python API), which need no
backbone. Like every objective they return a loss per image, shape (B,), lower is better.
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping
from numbers import Real

import torch
import torch.nn.functional as F
from torch import nn

from paramviz.errors import ConfigError
from paramviz.objectives.activation import OBJECTIVES, ActivationObjective, _with_batch
from paramviz.objectives.base import RenderContext
from paramviz.objectives.penalties import _L2_EPS, Penalty

ImageSource = str | os.PathLike[str] | torch.Tensor

#: Epsilon in the relative error of ``inversion`` (keeps an all-zero target finite).
INVERSION_EPS = 1e-8
#: torch-dreams' epsilon on the target magnitude and its floor on the projection (``CaricatureLoss``).
CARICATURE_EPS = 1e-6
CARICATURE_FLOOR = 0.1
DEFAULT_POWER = 1.0  # torch-dreams' ``caricature(..., power=1.0)``


def resize_image(image: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """Bilinear resize (antialiased when shrinking) of (B, C, H, W) to ``size``; unchanged if already that size."""
    if tuple(image.shape[-2:]) == tuple(size):
        return image
    return F.interpolate(image, size=tuple(size), mode="bilinear", align_corners=False, antialias=True)


def resize_like(target: torch.Tensor, like: torch.Tensor, what: str) -> torch.Tensor:
    """``target`` (1 or B, C[, H, W]) matched to ``like`` (B, C[, H, W]): spatial size resized, batch expanded.

    Raises:
        ConfigError: The channel counts or the number of dimensions differ.
    """
    if target.dim() != like.dim() or target.shape[1] != like.shape[1]:
        raise ConfigError(
            f"{what}: the target activations have shape {tuple(target.shape)} but the layer gives "
            f"{tuple(like.shape)}; the target must come from the same layer (same channels)"
        )
    if target.dim() == 4 and tuple(target.shape[-2:]) != tuple(like.shape[-2:]):
        target = F.interpolate(target, size=tuple(like.shape[-2:]), mode="bilinear", align_corners=False)
    return target.to(device=like.device, dtype=like.dtype).expand_as(like)


class ImageTarget(nn.Module):
    """A reference image and its views through the render loop's transforms and backbone.

    Args:
        source: A file path, ``sample:NAME`` (:data:`paramviz.io.SAMPLE_IMAGES`) or a (1, 3, H, W) / (3, H, W)
            tensor in [0, 1].
        what: The owning objective's name, for messages.
    """

    def __init__(self, source: ImageSource, what: str) -> None:
        super().__init__()
        self.what = what
        if isinstance(source, torch.Tensor):
            image = source.detach().float()
            if image.dim() == 3:
                image = image.unsqueeze(0)
            if image.dim() != 4 or image.shape[:2] != (1, 3) or not torch.isfinite(image).all():
                raise ConfigError(
                    f"{what}: a reference image tensor must be (1, 3, H, W) or (3, H, W) with finite values in "
                    f"[0, 1], got shape {tuple(source.shape)}"
                )
            self.source: str | None = None
            self.label = f"tensor{image.shape[-2]}x{image.shape[-1]}"
            self.register_buffer("image", image.clone(), persistent=False)
        else:
            text = os.fspath(source)
            if not isinstance(text, str) or not text.strip():
                raise ConfigError(f"{what}: the reference image must be a path or sample:NAME, got {source!r}")
            self.source = text.strip()
            self.label = self.source
            self.register_buffer("image", None, persistent=False)
        self.context: RenderContext | None = None
        self.register_buffer("reference", None, persistent=False)
        self._static: dict[str, torch.Tensor] = {}  # layer -> activation of the untransformed reference
        self._fixed: dict[tuple[str, tuple[int, ...]], torch.Tensor] = {}  # same, under deterministic transforms

    def load(self) -> torch.Tensor:
        """The image (1, 3, H, W) in [0, 1], read from its file on first use.

        Raises:
            ImageError: Missing, unreadable or corrupt file, or an unknown sample name.
        """
        if self.image is None:
            from paramviz.io import load_image  # lazy: objectives parse without touching files

            self.image = load_image(str(self.source))
        return self.image

    def attach(self, context: RenderContext | None, layers: tuple[str, ...] = ()) -> None:
        """Load the image at the render size and compute the activations of ``layers`` (None: leave the loop)."""
        if context is None:
            self.context = None
            self._fixed = {}
            return
        self.context = context
        self.reference = resize_image(self.load().to(context.device), context.size)
        self._fixed = {}
        with torch.no_grad():
            features = context.backbone(self.reference, list(layers)) if layers else {}
        self._static = {layer: features[layer].detach() for layer in layers}

    def pixels(self, like: torch.Tensor) -> torch.Tensor:
        """The reference as the network sees it now, shaped like the image ``like`` (B, 3, H', W')."""
        if self.context is None:
            return resize_image(self.load().to(like.device, like.dtype), tuple(like.shape[-2:])).expand_as(like)
        return resize_image(self._view(int(like.shape[0])), tuple(like.shape[-2:])).to(like.dtype)

    def features(self, layer: str, like: torch.Tensor) -> torch.Tensor:
        """The reference's activation at ``layer``, shaped like the evaluated activation ``like`` (B, ...).

        Raises:
            ConfigError: Outside the loop, when no render attached the objective (the target is unknown).
        """
        if self.context is None:
            if layer not in self._static:
                raise ConfigError(
                    f"objective {self.what!r} needs the activations of its reference image, which render() "
                    "computes before step 1; outside render() call objective.attach(RenderContext(...)) first, "
                    "or give the target activations with target="
                )
            return resize_like(self._static[layer], like, self.what)
        draw = getattr(self.context.transforms, "last_draw", None)
        static = draw is None or all(not params for params in draw.params)  # nothing to replay: compute once
        key = (layer, tuple(like.shape))
        if static and key in self._fixed:
            return self._fixed[key]
        with torch.no_grad():
            view = self._view(1 if static else int(like.shape[0]))
            value = self.context.backbone(view, [layer])[layer].detach()
        value = resize_like(value, like, self.what)
        if static:
            self._fixed[key] = value
        return value

    def _view(self, batch: int) -> torch.Tensor:
        """The resized reference through this step's transform draw (attached objectives only).

        Transforms other than a :class:`~paramviz.transforms.TransformStack` cannot be replayed: the
        reference then goes to the network untransformed.
        """
        context, reference = self.context, self.reference
        if context is None or reference is None:
            raise RuntimeError(f"{self.what}: the reference image was used before attach()")
        reference = reference.expand(batch, -1, -1, -1)
        transforms = context.transforms
        draw = getattr(transforms, "last_draw", None)
        if draw is None:
            return reference
        if all(not params for params in draw.params):  # deterministic: the same for any batch
            view = transforms(reference, draw=type(draw)(draw.spec, tuple(reference.shape), draw.params))
        else:
            view = transforms(reference, draw=draw)
        transforms.last_draw = draw  # the replay leaves the loop's draw in place
        return view


class _ReferenceObjective(ActivationObjective):
    """An activation objective that compares a layer with a reference image's (or given) activations."""

    kind = ""

    def __init__(
        self,
        layer: str,
        image: ImageSource | None,
        target: torch.Tensor | None,
        batch: int | None,
        suffix: str = "",
    ) -> None:
        if (image is None) == (target is None):
            raise ConfigError(f"{self.kind}: give exactly one of image= and target= (layer {layer!r})")
        reference = None if image is None else ImageTarget(image, f"{self.kind}:{layer}")
        label = reference.label if reference is not None else f"target{'x'.join(map(str, target.shape))}"
        super().__init__(_with_batch(f"{self.kind}:{layer}:{label}{suffix}", batch), layer, batch)
        self.reference = reference
        if target is not None:
            target = torch.as_tensor(target).detach().float()
            if target.dim() in (1, 3):
                target = target.unsqueeze(0)
            if target.dim() not in (2, 4) or not torch.isfinite(target).all():
                raise ConfigError(
                    f"{self.kind}: target= must be finite activations (1, C, H, W), (C, H, W) or (1, C), got "
                    f"shape {tuple(target.shape)}"
                )
        self.register_buffer("target_activation", None if target is None else target.clone())

    def attach(self, context: RenderContext | None) -> None:
        """Compute the reference's activations at the render size (see the module docstring)."""
        if self.reference is not None:
            self.reference.attach(context, (self.layer,))

    def targets(self, act: torch.Tensor) -> torch.Tensor:
        """The target activations, shaped like ``act``."""
        if self.reference is not None:
            return self.reference.features(self.layer, act)
        return resize_like(self.target_activation, act, self.name)


class Inversion(_ReferenceObjective):
    """Feature inversion (Mahendran & Vedaldi 2015): match a given image's activations at a layer.

    Loss per image: the relative squared error ``mean (a - t)^2 / (mean t^2 + 1e-8)`` of the layer's
    activations ``a`` against the reference image's ``t`` (M&V's normalized ``||Φ(x) - Φ0||² / ||Φ0||²``):
    1 for an image whose activations are 0, 0 for a perfect match, comparable between layers.

    Args:
        layer: Layer name.
        image: The reference image (path, ``sample:NAME`` or tensor); exclusive with ``target``.
        batch: Only this image is optimized; the others get loss 0.
        target: The target activations themselves instead of an image.
    """

    kind = "inversion"

    def __init__(
        self,
        layer: str,
        image: ImageSource | None = None,
        batch: int | None = None,
        *,
        target: torch.Tensor | None = None,
    ) -> None:
        super().__init__(layer, image, target, batch)

    def forward(self, features: Mapping[str, torch.Tensor]) -> torch.Tensor:
        """Loss per image, shape (B,)."""
        act = self.feature(features)
        target = self.targets(act)
        error = (act - target).pow(2).flatten(1).mean(1)
        return self.target(error / (target.pow(2).flatten(1).mean(1) + INVERSION_EPS))


class Caricature(_ReferenceObjective):
    """Exaggerate what a layer sees in a given image (torch-dreams' ``caricature``, after Lucid's recipe).

    With ``d = mean(a * t)`` (the dot product of the activations with the reference's, as a mean over the
    N = C·H·W entries) and the projection ``p = max(d / (rms(t) + 1e-6 / sqrt(N)), 0.1 / sqrt(N))``, the loss
    per image is ``-p * d ** power``: maximizing the dot product raised to ``power`` (torch-dreams' default
    1.0; larger powers exaggerate more). These are torch-dreams' ``CaricatureLoss`` terms computed with
    means instead of sums: the value is torch-dreams' times ``N ** -(power + 1/2)``, the same direction at
    every size, and a weight means the same on any layer. For ``d < 0`` the power is the signed power
    ``sign(d) |d| ** power``, which keeps the loss finite and decreasing in ``d`` (torch-dreams gives NaN for a
    fractional power there).

    Args:
        layer: Layer name.
        image: The reference image (path, ``sample:NAME`` or tensor); exclusive with ``target``.
        power: Exponent of the dot product, > 0.
        batch: Only this image is optimized; the others get loss 0.
        target: The target activations themselves instead of an image.
    """

    kind = "caricature"

    def __init__(
        self,
        layer: str,
        image: ImageSource | None = None,
        power: float = DEFAULT_POWER,
        batch: int | None = None,
        *,
        target: torch.Tensor | None = None,
    ) -> None:
        if isinstance(power, bool) or not isinstance(power, Real) or not 0 < power < math.inf:
            raise ConfigError(f"caricature: power must be a finite number > 0, got {power!r}")
        self.power = float(power)
        suffix = "" if self.power == DEFAULT_POWER else f":{self.power:g}"
        super().__init__(layer, image, target, batch, suffix)

    def forward(self, features: Mapping[str, torch.Tensor]) -> torch.Tensor:
        """Loss per image, shape (B,)."""
        act = self.feature(features)
        target = self.targets(act)
        count = act[0].numel()
        dot = (act * target).flatten(1).mean(1)
        rms = target.pow(2).flatten(1).mean(1).sqrt()
        scale = math.sqrt(count)
        projection = torch.maximum(dot / (rms + CARICATURE_EPS / scale), torch.full_like(dot, CARICATURE_FLOOR / scale))
        powered = dot.sign() * dot.abs().clamp_min(1e-30).pow(self.power)
        return self.target(-projection * powered)


class InputDiff(Penalty):
    """Distance of the image to a given image (Lucid's ``input_diff``): ``sqrt(mean (x - ref)^2 + 1e-8)``.

    A loss (add it with a positive weight to stay close to the reference; Lucid, which maximizes, returns
    the same distance). Per image, a root mean square like :class:`~paramviz.objectives.penalties.L2` (Lucid:
    one RMS over the whole batch). It reads the image the network sees
    (:data:`~paramviz.objectives.penalties.INPUT_KEY`), and the reference is replayed through the same
    transforms while rendering (module docstring), so the two line up; outside the loop the reference is
    resized to the image's size.

    Args:
        image: The reference image: a path, ``sample:NAME`` or a tensor in [0, 1].
    """

    def __init__(self, image: ImageSource) -> None:
        reference = ImageTarget(image, "input_diff")
        super().__init__(f"input_diff:{reference.label}")
        self.reference = reference

    def attach(self, context: RenderContext | None) -> None:
        """Load the reference at the render size (see the module docstring)."""
        self.reference.attach(context)

    def forward(self, features: Mapping[str, torch.Tensor]) -> torch.Tensor:
        """Loss per image, shape (B,)."""
        x = self.feature(features)
        reference = self.reference.pixels(x)
        return ((x - reference).pow(2).flatten(1).mean(1) + _L2_EPS).sqrt()


OBJECTIVES.register("input_diff", InputDiff)
OBJECTIVES.register("inversion", Inversion)
OBJECTIVES.register("caricature", Caricature)
