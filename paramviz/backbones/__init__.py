"""Backbones: frozen networks that take [0, 1] RGB and return named activations.

``build_backbone(name, weights)`` builds a registered backbone (``paramviz models`` lists them) or any timm
model as ``timm:<name>``; ``Backbone(model, mean, std)`` wraps your own ``nn.Module``.
"""

from __future__ import annotations

# Importing ``catalog`` then ``robust`` registers their backbones (in that order) in BACKBONES.
from paramviz.backbones import catalog, robust
from paramviz.backbones.base import Backbone
from paramviz.backbones.imagenet import IMAGENET_CLASSES, class_index, class_name
from paramviz.backbones.listing import backbone_families, format_backbone_table, format_layers
from paramviz.backbones.registry import (
    BACKBONES,
    BackboneEntry,
    build_backbone,
    list_backbones,
    parse_backbone_options,
    register_backbone,
)
from paramviz.backbones.weights import cached_download, load_state_dict_file

__all__ = [
    "BACKBONES",
    "IMAGENET_CLASSES",
    "Backbone",
    "BackboneEntry",
    "backbone_families",
    "build_backbone",
    "cached_download",
    "catalog",
    "class_index",
    "class_name",
    "format_backbone_table",
    "format_layers",
    "list_backbones",
    "load_state_dict_file",
    "parse_backbone_options",
    "register_backbone",
    "robust",
]
