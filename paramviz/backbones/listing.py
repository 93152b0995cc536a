"""Plain-text listings for the CLI: ``paramviz models`` and ``paramviz layers NAME``."""

from __future__ import annotations

from paramviz.backbones.base import PROBE_SIZE, Backbone
from paramviz.backbones.options import common_options_help
from paramviz.backbones.registry import BACKBONES, TIMM_PREFIX, list_backbones

#: How ``paramviz models`` describes the pretrained weights of ``timm:<name>`` models.
TIMM_WEIGHTS = "timm pretrained=True (downloads on first use)"


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
        lines.append(f"    weights: {TIMM_WEIGHTS}")
    lines.append("")
    lines.append("--weights: 'pretrained' (default), 'random', or a path to a .pt/.pth/.ckpt/.safetensors file")
    lines.append(f"every backbone also takes {common_options_help()}")
    return "\n".join(lines)


def backbone_families() -> list[str]:
    """The families present in the registry (for ``paramviz models --family``)."""
    return sorted({e.family for e in list_backbones() if e.family} | {"timm"})


def pretrained_source(name: str) -> str:
    """Where ``weights="pretrained"`` comes from for a backbone name (registry entry or ``timm:<name>``)."""
    if name.startswith(TIMM_PREFIX):
        return TIMM_WEIGHTS
    return BACKBONES.get(name).weights_source or "pretrained"


def _shape(shape: tuple[int, ...] | None) -> str:
    return "x".join(str(d) for d in shape) if shape else "-"


def format_layers(backbone: Backbone, weights: str | None = None) -> str:
    """The backbone's layers: aliases with their module paths, then every module with its type and output shape.

    Output shapes (channels x height x width, or the number of features) are those of one image at the
    backbone's native input size, found by :meth:`Backbone.probe` on the meta device; modules that exist but
    never run in the forward pass are marked ``never runs`` (they cannot be optimized). Example lines:
    ``stage3  blocks.3  80x14x14`` and ``blocks.0.0.drop_path  Identity  never runs``. The listing only needs
    the structure, so a backbone built on the meta device (``with torch.device("meta"): build_backbone(name,
    "random")``: no download, no memory, instant even for VGG) works too.

    Args:
        backbone: The backbone to list.
        weights: Text of the ``weights:`` line (default: ``backbone.weights_source``), e.g. the pretrained
            source of a backbone built on the meta device for the listing.
    """
    if backbone.mean.is_meta:  # built on the meta device (structure only): no values to show
        stats = "normalized by the backbone"
    else:
        mean = ", ".join(f"{v:.4g}" for v in backbone.mean.flatten().tolist())
        std = ", ".join(f"{v:.4g}" for v in backbone.std.flatten().tolist())
        stats = f"normalized with mean ({mean}) and std ({std})"
    size = backbone.input_size or PROBE_SIZE
    info = backbone.probe(size)
    if info is None:
        shapes = "output shapes: unknown (the network does not run on PyTorch's meta device)"
    else:
        native = "its native size" if backbone.input_size else "no native size is known"
        shapes = f"output shapes: channels x height x width of one {size}x{size} image ({native})"

    def described(path: str) -> str:
        if info is None:
            return ""
        return _shape(info[path].shape) if info[path].ran else "never runs"

    lines = [
        f"backbone {backbone.name!r}  weights: {weights or backbone.weights_source or '-'}",
        f"input: [0, 1] RGB, {stats}" + (f"; native size {backbone.input_size} px" if backbone.input_size else ""),
        shapes,
        *([f"layout: {layout}"] if (layout := backbone.layout.describe()) else []),
        "",
        f"aliases ({len(backbone.aliases)}):",
    ]
    if backbone.aliases:
        lines += _table([(alias, path, described(path)) for alias, path in backbone.aliases.items()], indent="  ")
    else:
        lines.append("  (none)")
    paths = backbone.layers()[len(backbone.aliases) :]
    modules = [(path, type(backbone.module(path)).__name__, described(path)) for path in paths]
    lines += ["", f"modules ({len(modules)}):"]
    lines += _table(modules, indent="  ")
    never = [path for path in paths if info is not None and not info[path].ran]
    if never:
        lines += ["", f"{len(never)} module(s) never run in the forward pass and cannot be used as layers."]
    return "\n".join(lines)
