"""The backbone registry: named factories that build a :class:`~paramviz.backbones.base.Backbone`.

A factory follows one protocol::

    factory(weights: str = "pretrained", *, trust_checkpoint: bool = False, **options) -> Backbone

``weights`` is ``"pretrained"`` (the network's published weights, cached or downloaded on first use),
``"random"`` (random initialization, no file needed) or the path of a local weights file. ``options`` are the
factory's own keyword-only parameters (e.g. ``pool="avg"`` for VGG); :func:`build_backbone` checks them
against the factory's signature so a typo is reported with close matches.

Register a new backbone with the decorator::

    @register_backbone("my_net", description="...", weights_source="...")
    def my_net(weights="pretrained", *, trust_checkpoint=False) -> Backbone: ...

Names starting with ``timm:`` are not registered: ``build_backbone("timm:resnet50")`` builds any model that
``timm.create_model`` knows.
"""

from __future__ import annotations

import inspect
import os
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from paramviz.backbones.memory_format import DEFAULT_MEMORY_FORMAT, check_memory_format
from paramviz.backbones.options import (
    COMMON_OPTIONS,
    DEFAULT_FOLD_BATCHNORM,
    check_common_options,
    check_fold_batchnorm,
)
from paramviz.errors import ConfigError, SpecError, WeightsError, close_matches
from paramviz.registry import Registry

if TYPE_CHECKING:
    from paramviz.backbones.base import Backbone

TIMM_PREFIX = "timm:"
WEIGHTS_KEYWORDS = ("pretrained", "random")
_RESERVED = ("weights", "trust_checkpoint")


@dataclass(frozen=True)
class BackboneEntry:
    """One registered backbone.

    Attributes:
        name: Registry name (``"vgg19"``).
        factory: ``factory(weights, *, trust_checkpoint=False, **options) -> Backbone``.
        description: One line for ``paramviz models``.
        weights_source: Where ``weights="pretrained"`` comes from, e.g.
            ``"torchvision IMAGENET1K_V1 (downloads on first use)"``.
        family: Architecture family used to group listings (``"vgg"``, ``"resnet"``, ``"robust"``).
    """

    name: str
    factory: Callable[..., Backbone]
    description: str = ""
    weights_source: str = ""
    family: str = ""

    def options(self) -> dict[str, Any]:
        """The factory's own options and their defaults (``weights``/``trust_checkpoint`` excluded)."""
        out: dict[str, Any] = {}
        for param in inspect.signature(self.factory).parameters.values():
            if param.name in _RESERVED or param.kind in (param.VAR_KEYWORD, param.VAR_POSITIONAL):
                continue
            out[param.name] = None if param.default is param.empty else param.default
        return out


BACKBONES: Registry[BackboneEntry] = Registry("backbone", hint="run `paramviz models` to list backbones")


def register_backbone(
    name: str, *, description: str = "", weights_source: str = "", family: str = ""
) -> Callable[[Callable[..., Backbone]], Callable[..., Backbone]]:
    """Decorator registering a backbone factory under ``name`` (duplicates are refused).

    Args:
        name: Registry name; must not start with ``timm:``.
        description: One line for listings (default: first line of the factory's docstring).
        weights_source: Where the pretrained weights come from, for listings.
        family: Listing group (default: the last part of the factory's module name, e.g. ``"robust"``).
    """
    if name.startswith(TIMM_PREFIX):
        raise ValueError(f"backbone names starting with {TIMM_PREFIX!r} are reserved for timm models")

    def add(factory: Callable[..., Backbone]) -> Callable[..., Backbone]:
        desc = description or (factory.__doc__ or "").strip().split("\n")[0]
        fam = family or factory.__module__.rsplit(".", 1)[-1]
        entry = BackboneEntry(name, factory, desc, weights_source, fam)
        BACKBONES.register(name, entry, description=desc)
        return factory

    return add


def list_backbones() -> list[BackboneEntry]:
    """Every registered backbone, in registration order (``timm:<name>`` models are not listed)."""
    return [entry.obj for entry in BACKBONES.entries()]


def check_weights_arg(weights: str | os.PathLike[str]) -> str:
    """Validate a ``weights`` argument: ``"pretrained"``, ``"random"`` or an existing file path.

    Returns:
        The keyword, or the path as a string.

    Raises:
        WeightsError: The value is neither keyword and no such file exists.
    """
    if isinstance(weights, str) and weights in WEIGHTS_KEYWORDS:
        return weights
    if not isinstance(weights, (str, os.PathLike)):
        raise ConfigError(
            f"weights must be 'pretrained', 'random' or a file path, got {type(weights).__name__} {weights!r}"
        )
    path = Path(weights).expanduser()
    if not path.is_file():
        near = close_matches(str(weights), WEIGHTS_KEYWORDS)
        what = "is a directory" if path.is_dir() else "does not exist"
        hint = f"; did you mean {near[0]!r}?" if near else ""
        raise WeightsError(
            f"weights file {str(path)!r} {what}; expected 'pretrained', 'random' or the path of a "
            f".pt/.pth/.bin/.safetensors file{hint}"
        )
    return str(path)


def build_backbone(
    name: str,
    weights: str | os.PathLike[str] = "pretrained",
    *,
    trust_checkpoint: bool = False,
    memory_format: str = DEFAULT_MEMORY_FORMAT,
    fold_batchnorm: bool = DEFAULT_FOLD_BATCHNORM,
    **options: Any,
) -> Backbone:
    """Build a registered backbone (or ``timm:<model>``) with the requested weights.

    Args:
        name: Registry name (``"resnet50"``) or ``"timm:<model name>"``.
        weights: ``"pretrained"`` (cached file, else downloaded on first use), ``"random"``, or the path of a
            local ``.pt/.pth/.bin`` (loaded with ``weights_only=True``) or ``.safetensors`` file.
        trust_checkpoint: Allow full unpickling of a local ``.pt`` file that needs it (runs arbitrary code:
            only for files from a trusted source).
        memory_format: Layout of the weights (``Backbone.memory_format``; every backbone takes it): ``auto``
            (channels-last on the CPU), ``channels_last`` or ``contiguous``.
        fold_batchnorm: Fold eval-mode BatchNorm into the convolution before it in forward passes
            (``Backbone.fold_batchnorm``; every backbone takes it; :mod:`paramviz.backbones.fold`).
        **options: Backbone-specific options, e.g. ``pool="avg"`` for VGG.

    Raises:
        UnknownNameError: Unknown backbone (with close matches) or timm model.
        ConfigError: An option the backbone does not take.
        WeightsError: Weights that are missing, unreadable or do not fit the architecture.
    """
    check_memory_format(memory_format)
    check_fold_batchnorm(fold_batchnorm)
    if name.startswith(TIMM_PREFIX):
        from paramviz.backbones.catalog import build_timm

        backbone = build_timm(
            name[len(TIMM_PREFIX) :], check_weights_arg(weights), trust_checkpoint=trust_checkpoint, **options
        )
    else:
        entry = BACKBONES.get(name)
        _check_options(entry, options)
        backbone = entry.factory(check_weights_arg(weights), trust_checkpoint=trust_checkpoint, **options)
    backbone.memory_format = memory_format
    backbone.fold_batchnorm = fold_batchnorm
    return backbone


def _check_options(entry: BackboneEntry, options: dict[str, Any]) -> None:
    params = inspect.signature(entry.factory).parameters
    if any(p.kind is p.VAR_KEYWORD for p in params.values()):
        return
    known = [*entry.options(), *COMMON_OPTIONS]
    for key in options:
        if key not in known:
            near = close_matches(key, known)
            if near:
                hint = f"; did you mean {', '.join(map(repr, near))}?"
            elif known:
                hint = f"; it takes {', '.join(map(repr, known))}"
            else:
                hint = "; it takes no options"
            raise ConfigError(f"backbone {entry.name!r} has no option {key!r}{hint}")


def parse_backbone_options(items: Iterable[str]) -> dict[str, Any]:
    """Turn ``KEY=VALUE`` strings (the CLI's ``--backbone-option``) into keyword options for :func:`build_backbone`.

    Values are read as integers, numbers or ``true``/``false`` when they look like one, else kept as text, so
    ``pool=avg`` gives ``{"pool": "avg"}`` and ``transform_input=false`` gives ``False``.

    The options every backbone takes (``memory_format``, ``fold_batchnorm``) are checked here, before any work.

    Raises:
        SpecError: An item without ``=`` or with an empty key.
        ConfigError: A bad value of an option every backbone takes.
    """
    options: dict[str, Any] = {}
    for item in items:
        key, sep, text = item.partition("=")
        key = key.strip()
        if not sep or not key:
            raise SpecError(f"backbone option {item!r} is not KEY=VALUE (e.g. pool=avg for vgg19)")
        options[key] = _literal(text.strip().strip("'\""))
    check_common_options(options)
    return options


def _literal(text: str) -> Any:
    if text.lower() in ("true", "false"):
        return text.lower() == "true"
    for kind in (int, float):
        try:
            return kind(text)
        except ValueError:
            pass
    return text
