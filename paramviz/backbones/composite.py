"""A backbone made of several backbones, addressed by prefixed layer names.

The control experiment of Engstrom et al. (Distill 2019, response to "Adversarial Examples Are Not Bugs,
They Are Features") computes the content loss on one network and the style loss on another (e.g. content on
a standard ResNet-50, style on a robust one). :class:`CompositeBackbone` makes that one option: it follows the
backbone protocol (``layers()``, ``resolve()``, ``validate()``, ``forward(x, layers)``) and routes each layer
name ``"<part>/<layer>"`` to the backbone registered as ``<part>``::

    both = CompositeBackbone({"content": build_backbone("resnet50"),
                              "style": build_backbone("resnet50", "robust_l2_eps3.pt")})
    both(x, ["content/layer3", "style/layer1", "style/layer2"])
    # -> {"content/layer3": ..., "style/layer1": ..., "style/layer2": ...}

Each part runs only up to its own deepest requested layer, and a part with no requested layer does not run.
The same ``Backbone`` object may be given for several parts; it then runs once per part that is used.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

import torch
from torch import nn

from paramviz.errors import ConfigError, UnknownNameError

SEPARATOR = "/"
"""Separates the part name from the layer name: ``"style/relu3_1"``."""


class CompositeBackbone(nn.Module):
    """Several frozen backbones behind one backbone interface, selected by a layer-name prefix.

    Args:
        parts: Part name -> backbone (e.g. ``{"content": a, "style": b}``). Part names are non-empty and
            contain neither ``/`` nor ``:``.
    """

    def __init__(self, parts: Mapping[str, nn.Module]) -> None:
        super().__init__()
        if not parts:
            raise ConfigError("a composite backbone needs at least one part, e.g. {'content': a, 'style': b}")
        for key in parts:
            if not isinstance(key, str) or not key or SEPARATOR in key or ":" in key:
                raise ConfigError(f"composite backbone part name {key!r} must be non-empty without '/' or ':'")
        self.parts = nn.ModuleDict(dict(parts))
        self.name = "+".join(f"{key}={getattr(b, 'name', type(b).__name__)}" for key, b in parts.items())
        self.weights_source = "; ".join(
            f"{key}: {getattr(b, 'weights_source', '') or 'unknown'}" for key, b in parts.items()
        )
        self.input_size = None

    # --- frozen / eval ---------------------------------------------------------------------------
    def train(self, mode: bool = True) -> CompositeBackbone:
        """Keep every part in eval mode whatever ``mode`` is asked (they are frozen)."""
        super().train(False)
        return self

    # --- layer names -----------------------------------------------------------------------------
    @staticmethod
    def join(part: str, layer: str) -> str:
        """``"<part>/<layer>"``."""
        return f"{part}{SEPARATOR}{layer}"

    def split(self, name: str) -> tuple[str, str]:
        """Split ``"<part>/<layer>"`` into ``(part, layer)``; unknown parts raise with the valid prefixes."""
        part, sep, layer = name.partition(SEPARATOR)
        if not sep or part not in self.parts:
            raise UnknownNameError(
                f"layer of composite backbone {self.name!r}",
                name,
                self.layers(),
                f"prefix a layer with one of {', '.join(repr(p + SEPARATOR) for p in self.parts)}",
            )
        return part, layer

    def layers(self) -> list[str]:
        """Every part's layer names, prefixed with ``"<part>/"``."""
        return [self.join(key, layer) for key, part in self.parts.items() for layer in part.layers()]

    def resolve(self, layer: str) -> str:
        """Map ``"<part>/<alias or path>"`` to ``"<part>/<dotted module path>"``."""
        part, inner = self.split(layer)
        return self.join(part, self.parts[part].resolve(inner))

    def validate(self, layers: Iterable[str]) -> None:
        """Raise :class:`~paramviz.errors.UnknownNameError` for the first unknown (prefixed) layer name."""
        for layer in layers:
            self.resolve(layer)

    def module(self, layer: str) -> nn.Module:
        """The ``nn.Module`` behind a prefixed layer name."""
        part, inner = self.split(layer)
        return self.parts[part].module(inner)

    # --- forward ---------------------------------------------------------------------------------
    def forward(self, x: torch.Tensor, layers: Iterable[str]) -> dict[str, torch.Tensor]:
        """Return ``{prefixed name: activation}``; each part runs once, up to its deepest requested layer.

        Args:
            x: Batch of RGB images in [0, 1], shape (B, 3, H, W).
            layers: Prefixed layer names.
        """
        by_part: dict[str, list[str]] = {}
        for name in dict.fromkeys(layers):
            part, inner = self.split(name)
            by_part.setdefault(part, []).append(inner)
        out: dict[str, torch.Tensor] = {}
        for part, inner_layers in by_part.items():
            feats = self.parts[part](x, inner_layers)
            out.update({self.join(part, k): v for k, v in feats.items()})
        return out

    def extra_repr(self) -> str:
        return f"name={self.name!r}"


def part_of(backbone: nn.Module, part: str) -> nn.Module:
    """``backbone.parts[part]`` for a :class:`CompositeBackbone`, else ``backbone`` itself."""
    if isinstance(backbone, CompositeBackbone):
        return backbone.parts[part]
    return backbone


__all__ = ["SEPARATOR", "CompositeBackbone", "part_of"]
