"""Plain-text listings for the CLI: ``paramviz models`` and ``paramviz layers NAME``."""

from __future__ import annotations

from paramviz.backbones.base import Backbone
from paramviz.backbones.registry import TIMM_PREFIX, list_backbones


def _table(rows: list[tuple[str, ...]], indent: str = "") -> list[str]:
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    return [indent + "  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip() for row in rows]


def format_backbone_table() -> str:
    """Every registered backbone with its family, options, pretrained-weights source and description."""
    rows: list[tuple[str, ...]] = [("NAME", "FAMILY", "OPTIONS", "PRETRAINED WEIGHTS", "DESCRIPTION")]
    for entry in list_backbones():
        opts = ", ".join(f"{k}={v!r}" for k, v in entry.options().items()) or "-"
        rows.append((entry.name, entry.family or "-", opts, entry.weights_source or "-", entry.description))
    rows.append(
        (
            f"{TIMM_PREFIX}<name>",
            "timm",
            "create_model kwargs",
            "timm pretrained=True (downloads on first use)",
            "any model in timm.list_models(), e.g. timm:resnet50, timm:convnext_tiny",
        )
    )
    lines = _table(rows)
    lines.append("")
    lines.append("weights: 'pretrained' (default), 'random', or a path to a .pt/.pth/.bin/.safetensors file")
    return "\n".join(lines)


def format_layers(backbone: Backbone) -> str:
    """The backbone's addressable layers: aliases with their module paths, then every module path with its type.

    Example lines: ``relu4_2  features.22`` and ``layer3.1.conv2  Conv2d``. The listing only needs the
    structure, so a backbone built on the meta device (``with torch.device("meta"): build_backbone(name,
    "random")``: no download, no memory, instant even for VGG) works too.
    """
    if backbone.mean.is_meta:  # built on the meta device (structure only): no values to show
        stats = "normalized by the backbone"
    else:
        mean = ", ".join(f"{v:.4g}" for v in backbone.mean.flatten().tolist())
        std = ", ".join(f"{v:.4g}" for v in backbone.std.flatten().tolist())
        stats = f"normalized with mean ({mean}) and std ({std})"
    lines = [
        f"backbone {backbone.name!r}  weights: {backbone.weights_source or '-'}",
        f"input: [0, 1] RGB, {stats}" + (f"; native size {backbone.input_size} px" if backbone.input_size else ""),
        "",
        f"aliases ({len(backbone.aliases)}):",
    ]
    if backbone.aliases:
        lines += _table([(alias, path) for alias, path in backbone.aliases.items()], indent="  ")
    else:
        lines.append("  (none)")
    modules = [(path, type(backbone.module(path)).__name__) for path in backbone.layers()[len(backbone.aliases) :]]
    lines += ["", f"modules ({len(modules)}):"]
    lines += _table(modules, indent="  ")
    return "\n".join(lines)
