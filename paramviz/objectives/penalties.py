"""Image penalties (regularizers): L1, L2, total variation and blur, per image.

Penalties act on the rendered image, not on backbone features. The render loop passes the (transformed)
image in the features under the reserved key :data:`INPUT_KEY` (``"input"``), and never asks the backbone
for that name; so ``layers()`` of a penalty is ``{"input"}``. A ``layer=`` argument applies the same
penalty to a backbone layer instead, as Lucid's ``layer=`` does.

All values are **means**, not Lucid's sums, so a weight means the same thing at every image size:

- ``L1``: ``mean |x - target|`` (Lucid: ``sum |x - target|``).
- ``L2``: ``sqrt(mean (x - target)^2 + 1e-8)``, a root mean square (Lucid: ``sqrt(sum (...)^2 + 1e-6)``);
  the epsilon keeps the gradient finite at ``x == target``.
- ``TotalVariation``: anisotropic, ``mean |x[..., i, j+1] - x[..., i, j]| + mean |x[..., i+1, j] -
  x[..., i, j]|`` (Lucid calls ``tf.image.total_variation``, the sum of the same absolute differences).
- ``BlurPenalty``: ``0.5 * mean (x - stop_gradient(blur(x)))^2`` with a Gaussian blur of ``sigma`` pixels,
  Lucid's ``blur_input_each_step`` (a sum there, with a fixed 3x3 kernel). Its gradient is ``x - blur(x)``
  (over the pixel count), so a gradient step on it moves every pixel towards its blurred value: plain
  gradient descent with step ``k * N`` is Lucid's ``x <- (1 - k) x + k blur(x)`` (Nguyen et al. 2015).

Like every objective they are losses per image, shape (B,), lower is better; add them with a positive
weight, e.g. ``Channel("layer3", 7) + 0.05 * TotalVariation()``.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from numbers import Real

import torch

from paramviz.errors import ConfigError
from paramviz.objectives.activation import OBJECTIVES, _check_layer, get_feature
from paramviz.objectives.base import Objective
from paramviz.transforms.ops import gaussian_blur

INPUT_KEY = "input"
"""Reserved feature key under which the render loop passes the (transformed) image, shape (B, 3, H, W)."""
ALPHA_KEY = "alpha"
"""Reserved feature key of the alpha channel (B, 1, H, W) of an RGBA parameterization, before the transforms;
``0.5*l1:0:alpha`` penalizes the mean alpha (a more transparent image)."""
IMAGE_KEYS = frozenset({INPUT_KEY, ALPHA_KEY})
"""Feature keys the render loop fills from the image itself, never from the backbone."""

_L2_EPS = 1e-8

DEFAULT_BLUR_SIGMA = 1.0
"""Lucid's fixed 3x3 blur kernel (centre 1, neighbours 0.5) has a standard deviation of 0.77 px per axis; the
``blur`` penalty takes a Gaussian of ``sigma`` pixels instead, 1 px by default (the nearest round value)."""


class Penalty(Objective):
    """Base of the penalties: reads ``features[layer]`` (the image by default).

    Args:
        name: Label for logs.
        layer: Feature key to penalize; :data:`INPUT_KEY` (the image) by default.
    """

    def __init__(self, name: str, layer: str = INPUT_KEY) -> None:
        super().__init__(name)
        self.layer = _check_layer(layer)

    def layers(self) -> set[str]:
        """``{"input"}`` for image penalties, else the penalized layer."""
        return {self.layer}

    def feature(self, features: Mapping[str, torch.Tensor]) -> torch.Tensor:
        """The penalized tensor, (B, C, H, W) or (B, C)."""
        return get_feature(features, self.layer, self.name)


def _check_target(kind: str, target: object) -> float:
    if isinstance(target, bool) or not isinstance(target, Real) or not math.isfinite(target):
        raise ConfigError(f"{kind}: target must be a finite number, got {target!r}")
    return float(target)


def _name(kind: str, target: float | None, layer: str) -> str:
    parts = [kind]
    if target is not None and (target != 0 or layer != INPUT_KEY):
        parts.append(f"{target:g}")
    if layer != INPUT_KEY:
        parts.append(layer)
    return ":".join(parts)


class L1(Penalty):
    """Mean absolute deviation from ``target``: ``mean |x - target|`` per image.

    Args:
        target: Value the image is pulled towards (0 = black; 0.5 = mid grey).
        layer: Feature key; the image (:data:`INPUT_KEY`) by default.
    """

    def __init__(self, target: float = 0.0, layer: str = INPUT_KEY) -> None:
        self.target = _check_target("l1", target)
        super().__init__(_name("l1", self.target, layer), layer)

    def forward(self, features: Mapping[str, torch.Tensor]) -> torch.Tensor:
        """Loss per image, shape (B,)."""
        return (self.feature(features) - self.target).abs().flatten(1).mean(1)


class L2(Penalty):
    """Root mean square deviation from ``target``: ``sqrt(mean (x - target)^2 + 1e-8)`` per image.

    Args:
        target: Value the image is pulled towards.
        layer: Feature key; the image (:data:`INPUT_KEY`) by default.
    """

    def __init__(self, target: float = 0.0, layer: str = INPUT_KEY) -> None:
        self.target = _check_target("l2", target)
        super().__init__(_name("l2", self.target, layer), layer)

    def forward(self, features: Mapping[str, torch.Tensor]) -> torch.Tensor:
        """Loss per image, shape (B,)."""
        return ((self.feature(features) - self.target).pow(2).flatten(1).mean(1) + _L2_EPS).sqrt()


class TotalVariation(Penalty):
    """Anisotropic total variation: ``mean |dx| + mean |dy|`` of neighbouring pixels, per image.

    Args:
        layer: Feature key; the image (:data:`INPUT_KEY`) by default. Must be a spatial (B, C, H, W) map.
    """

    def __init__(self, layer: str = INPUT_KEY) -> None:
        super().__init__(_name("tv", None, layer), layer)

    def forward(self, features: Mapping[str, torch.Tensor]) -> torch.Tensor:
        """Loss per image, shape (B,)."""
        x = self.feature(features)
        if x.dim() != 4:
            raise ConfigError(
                f"objective {self.name!r}: total variation needs a spatial (B, C, H, W) map but "
                f"{self.layer!r} has shape {tuple(x.shape)}"
            )
        size = x.shape[0]
        dx = (x[..., :, 1:] - x[..., :, :-1]).abs().reshape(size, -1)
        dy = (x[..., 1:, :] - x[..., :-1, :]).abs().reshape(size, -1)
        zero = x.reshape(size, -1).sum(1) * 0.0  # a 1-pixel-wide/high map has no differences
        tv_x = dx.mean(1) if dx.shape[1] else zero
        tv_y = dy.mean(1) if dy.shape[1] else zero
        return tv_x + tv_y


class BlurPenalty(Penalty):
    """Pull each image towards its own Gaussian blur (Lucid's ``blur_input_each_step``, as a penalty).

    Loss per image: ``0.5 * mean (x - sg(blur(x)))^2``, ``sg`` = stop gradient (see the module docstring).

    Args:
        sigma: Blur standard deviation in pixels, > 0.
        layer: Feature key; the image (:data:`INPUT_KEY`) by default. Must be a spatial (B, C, H, W) map.
    """

    def __init__(self, sigma: float = DEFAULT_BLUR_SIGMA, layer: str = INPUT_KEY) -> None:
        if isinstance(sigma, bool) or not isinstance(sigma, Real) or not 0 < sigma < math.inf:
            raise ConfigError(f"blur: sigma must be a finite number of pixels > 0, got {sigma!r}")
        self.sigma = float(sigma)
        parts = ["blur"]
        if self.sigma != DEFAULT_BLUR_SIGMA or layer != INPUT_KEY:
            parts.append(f"{self.sigma:g}")
        if layer != INPUT_KEY:
            parts.append(layer)
        super().__init__(":".join(parts), layer)

    def forward(self, features: Mapping[str, torch.Tensor]) -> torch.Tensor:
        """Loss per image, shape (B,)."""
        x = self.feature(features)
        if x.dim() != 4:
            raise ConfigError(
                f"objective {self.name!r}: blur needs a spatial (B, C, H, W) map but {self.layer!r} has shape "
                f"{tuple(x.shape)}"
            )
        with torch.no_grad():
            blurred = gaussian_blur(x, self.sigma)
        return 0.5 * (x - blurred).pow(2).flatten(1).mean(1)


OBJECTIVES.register("l1", L1)
OBJECTIVES.register("l2", L2)
OBJECTIVES.register("tv", TotalVariation)
OBJECTIVES.register("blur", BlurPenalty)
