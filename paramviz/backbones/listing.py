"""Plain-text listings for the CLI: ``paramviz models`` and ``paramviz layers NAME``."""

from __future__ import annotations

from paramviz.backbones.base import Backbone
from paramviz.backbones.registry import TIMM_PREFIX, list_backbones


def _table(rows: list[tuple[str, ...]], indent: str = "") -> list[str]:
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    return [indent + "  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip() for row in rows]


def format_backbone_table(family: str | None = None) -> str:
    """Every registered backbone (or one ``family``) with its description, options and pretrained weights.

    Each entry is a name line followed by indented ``options:`` and ``weights:`` lines, so long URLs of
    robust checkpoints stay readable in a terminal.
    """
    entries = [e for e in list_backbones() if family is None or e.family == family]
    lines: list[str] = []
    for entry in entries:
        opts = ", ".join(f"{k}={v!r}" for k, v in entry.options().items())
        lines.append(f"{entry.name}  [{entry.family or '-'}]  {entry.description}")
        if opts:
            lines.append(f"    options: {opts}")
        lines.append(f"    weights: {entry.weights_source or '-'}")
    if family in (None, "timm"):
        lines.append(f"{TIMM_PREFIX}<name>  [timm]  any model in timm.list_models(), e.g. timm:convnext_tiny")
        lines.append("    options: timm.create_model keyword arguments")
        lines.append("    weights: timm pretrained=True (downloads on first use)")
    lines.append("")
    lines.append("--weights: 'pretrained' (default), 'random', or a path to a .pt/.pth/.ckpt/.safetensors file")
    return "\n".join(lines)


def backbone_families() -> list[str]:
    """The families present in the registry (for ``paramviz models --family``)."""
    return sorted({e.family for e in list_backbones() if e.family} | {"timm"})


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
        *([f"layout: {layout}"] if (layout := backbone.layout.describe()) else []),
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
