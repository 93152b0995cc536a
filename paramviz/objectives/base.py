"""Objective base class and its algebra.

Convention, stated once: **an objective's value is a loss, lower is better.** Maximizing an activation is
expressed as minimizing its negative. ``forward(features)`` returns one value per image, shape (B,).

Objectives combine with ``+``, ``-``, scalar ``*`` and ``/``; any combination is flattened into a
:class:`WeightedSum` of leaf objectives, so ``sum(many_terms)`` stays one flat node and every leaf is logged
by name with its weighted contribution.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from numbers import Real

import torch
from torch import nn


@dataclass(frozen=True)
class RenderContext:
    """What the render loop tells the objective before step 1 (:meth:`Objective.attach`).

    Attributes:
        param: The image parameterization: ``param()`` is the (B, 3, H, W) image before the transforms.
        transforms: The transforms applied to the image every step; after each step's forward, a
            :class:`~paramviz.transforms.TransformStack` holds that step's draw in ``last_draw``.
        backbone: The network: ``backbone(x, layers) -> {layer: (B, C, H, W) or (B, C)}``.
        device: Where the loop runs.
    """

    param: nn.Module
    transforms: nn.Module
    backbone: nn.Module
    device: torch.device

    @property
    def size(self) -> tuple[int, int]:
        """``(H, W)`` of the rendered image (its ``height``/``width``, else the shape of one ``param()``)."""
        height, width = getattr(self.param, "height", None), getattr(self.param, "width", None)
        if height is None or width is None:
            with torch.no_grad():
                height, width = self.param().shape[-2:]
        return int(height), int(width)


class Objective(nn.Module):
    """Base class: subclasses implement :meth:`layers` and :meth:`forward`.

    Args:
        name: Label used in logs and ``metrics.json`` (e.g. ``"channel:blocks.4:12"``).

    Attributes:
        couples_images: Whether one image's loss depends on the other images of the batch or on its position
            in it (diversity, alignment, channel interpolation). Such objectives cannot be rendered with other,
            independent images in the same batch.
    """

    couples_images: bool = False

    def __init__(self, name: str) -> None:
        super().__init__()
        self.name = name

    def layers(self) -> set[str]:
        """Layer names (as understood by the backbone) this objective reads."""
        raise NotImplementedError

    def forward(self, features: Mapping[str, torch.Tensor]) -> torch.Tensor:
        """Loss per image, shape (B,); lower is better."""
        raise NotImplementedError

    def attach(self, context: RenderContext | None) -> None:
        """Hook: ``render()`` calls it with a :class:`RenderContext` before step 1 and with None after the loop.

        Objectives driven by a given image (``inversion``, ``caricature``, ``input_diff``) load the image and
        compute its target activations here, and replay each step's transforms on it while attached. The
        default does nothing.
        """

    # --- evaluation with per-term values ---------------------------------------------------------
    def evaluate(self, features: Mapping[str, torch.Tensor]) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """Return ``(total (B,), {term name: weighted term value (B,)})``; the terms sum to the total."""
        value = _check_per_image(self.forward(features), self.name, features)
        return value, {self.name: value}

    def leaves(self) -> list[tuple[float, Objective]]:
        """``[(weight, leaf objective)]`` of the flattened weighted sum this objective stands for."""
        return [(1.0, self)]

    # --- algebra ---------------------------------------------------------------------------------
    def __add__(self, other: object) -> Objective:
        if isinstance(other, Objective):
            return WeightedSum(self.leaves() + other.leaves())
        if isinstance(other, Real) and other == 0:  # lets the builtin sum() start from 0
            return self
        return NotImplemented

    def __radd__(self, other: object) -> Objective:
        if isinstance(other, Real) and other == 0:
            return self
        return NotImplemented

    def __neg__(self) -> Objective:
        return self * -1.0

    def __sub__(self, other: object) -> Objective:
        if isinstance(other, Objective):
            return self + (-other)
        return NotImplemented

    def __mul__(self, scalar: object) -> Objective:
        if isinstance(scalar, Real) and not isinstance(scalar, bool):
            return WeightedSum([(float(scalar) * w, leaf) for w, leaf in self.leaves()])
        return NotImplemented

    __rmul__ = __mul__

    def __truediv__(self, scalar: object) -> Objective:
        if isinstance(scalar, Real) and not isinstance(scalar, bool):
            if scalar == 0:
                raise ZeroDivisionError(f"cannot divide objective {self.name!r} by zero")
            return self * (1.0 / float(scalar))
        return NotImplemented


class WeightedSum(Objective):
    """A flat weighted sum of leaf objectives (what the algebra builds)."""

    def __init__(self, terms: Sequence[tuple[float, Objective]]) -> None:
        flat: list[tuple[float, Objective]] = []
        for weight, obj in terms:
            flat.extend((weight * w, leaf) for w, leaf in obj.leaves())
        super().__init__(" + ".join(_format_term(w, o.name) for w, o in flat))
        self.weights = [w for w, _ in flat]
        self.terms_list = nn.ModuleList([o for _, o in flat])
        self.term_names = _unique_names([o.name for _, o in flat])

    def leaves(self) -> list[tuple[float, Objective]]:
        return list(zip(self.weights, self.terms_list, strict=True))

    def layers(self) -> set[str]:
        return set().union(*(o.layers() for o in self.terms_list)) if len(self.terms_list) else set()

    def attach(self, context: RenderContext | None) -> None:
        for obj in self.terms_list:
            obj.attach(context)

    def evaluate(self, features: Mapping[str, torch.Tensor]) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        terms: dict[str, torch.Tensor] = {}
        for name, weight, obj in zip(self.term_names, self.weights, self.terms_list, strict=True):
            terms[name] = weight * _check_per_image(obj(features), obj.name, features)
        total = torch.stack(list(terms.values())).sum(0)
        return total, terms

    def forward(self, features: Mapping[str, torch.Tensor]) -> torch.Tensor:
        return self.evaluate(features)[0]


def images_are_independent(objective: Objective) -> bool:
    """True when each image's loss depends on that image alone, the same way for every image of a batch.

    Then images that would be rendered alone can share one batch with identical results (batched sweep arms):
    no term couples the images (:attr:`Objective.couples_images`) or targets one image of the batch.
    """
    return all(not leaf.couples_images and getattr(leaf, "batch", None) is None for _, leaf in objective.leaves())


def total_weight_is_zero(objective: Objective) -> bool:
    """True when every term of ``objective`` has weight 0 (nothing would be optimized)."""
    return all(w == 0 for w, _ in objective.leaves())


def batch_size_of(features: Mapping[str, torch.Tensor]) -> int | None:
    """Batch size of the first 4-D or 2-D feature tensor, or None if there is none."""
    for value in features.values():
        return int(value.shape[0])
    return None


def _check_per_image(value: torch.Tensor, name: str, features: Mapping[str, torch.Tensor]) -> torch.Tensor:
    batch = batch_size_of(features)
    if value.dim() == 0 and batch is not None:
        value = value.expand(batch)
    if value.dim() != 1 or (batch is not None and value.shape[0] != batch):
        raise RuntimeError(
            f"objective {name!r} returned shape {tuple(value.shape)}; objectives must return one loss per "
            f"image, shape ({batch},)"
        )
    return value


def _format_term(weight: float, name: str) -> str:
    return name if weight == 1.0 else f"{weight:g}*{name}"


def _unique_names(names: Iterable[str]) -> list[str]:
    seen: dict[str, int] = {}
    out = []
    for name in names:
        seen[name] = seen.get(name, 0) + 1
        out.append(name if seen[name] == 1 else f"{name}#{seen[name]}")
    return out
