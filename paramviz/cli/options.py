"""Click options shared by the commands, with defaults read from the config dataclasses.

Each command declares which config field an option sets (``dest``); :func:`build_config` starts from the
config file given with ``--config`` (or the dataclass defaults) and applies only the options the user
actually typed, so a TOML file and the command line compose.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, TypeVar

import click
from click.core import ParameterSource

from paramviz.backbones.options import common_options_help
from paramviz.config import ConfigBase
from paramviz.limits import ImageSize, parse_size
from paramviz.params import PARAMS, SQUASHES, ParamSpec
from paramviz.render import OPTIMIZERS
from paramviz.transforms import TRANSFORM_PRESETS

C = TypeVar("C", bound=ConfigBase)
F = TypeVar("F", bound=Callable[..., Any])


def stack(*decorators: Callable[[F], F]) -> Callable[[F], F]:
    """Apply several click decorators in the order written."""

    def apply(func: F) -> F:
        for decorator in reversed(decorators):
            func = decorator(func)
        return func

    return apply


def config_option() -> Callable[[F], F]:
    """``--config FILE``: a TOML config; options given on the command line override it."""
    return click.option(
        "--config",
        "config_file",
        type=click.Path(dir_okay=False, path_type=Path),
        default=None,
        help="TOML config file (as written to config.toml by a run); command-line options override it.",
    )


class OutDir(click.Path):
    """A directory path for ``--out``; the empty string (which would mean the current directory) is refused."""

    def __init__(self) -> None:
        super().__init__(file_okay=False, path_type=Path)

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        if isinstance(value, str) and not value.strip():
            self.fail("is empty; give a directory path such as --out out/run (--out . is the current directory)")
        return super().convert(value, param, ctx)


class ImageSizeType(click.ParamType):
    """``N`` or ``HxW`` (height x width) -> ``N`` or ``(H, W)`` (:func:`~paramviz.limits.parse_size`).

    A malformed value raises :class:`~paramviz.errors.ConfigError` naming the option, the value and the forms.
    """

    name = "N|HxW"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> ImageSize:
        if isinstance(value, (int, tuple)) and not isinstance(value, bool):
            return value  # a default from the config dataclass
        # a ConfigError, not click's usage error: one line ``Error: --size '0x5' has ...`` with exit status 2
        return parse_size(value, param.opts[0] if param is not None and param.opts else "size")


IMAGE_SIZE = ImageSizeType()


def size_option(default: ImageSize, help_text: str) -> Callable[[F], F]:
    """``--size N|HxW``: an image size, ``N`` or height x width."""
    return click.option(
        "--size",
        type=IMAGE_SIZE,
        default=default,
        show_default=True,
        metavar="N|HxW",
        help=help_text,
    )


def out_options(default_out: str) -> Callable[[F], F]:
    """``--out DIR``, ``--force`` and ``--quiet``."""
    return stack(
        click.option(
            "--out",
            "-o",
            type=OutDir(),
            default=default_out,
            show_default=True,
            help="Output directory (image(s), config.toml, metrics.json, and .paramviz.json listing them). "
            "Refused if not empty, unless --force.",
        ),
        click.option(
            "--force",
            is_flag=True,
            help="Replace the outputs of an earlier paramviz run in --out; a directory holding anything else (no "
            ".paramviz.json, or files it does not list) is never replaced.",
        ),
        click.option("--quiet", "-q", is_flag=True, help="No progress bar."),
    )


def weights_options(default: str = "pretrained") -> Callable[[F], F]:
    """``--weights`` and ``--trust-checkpoint``."""
    return stack(
        click.option(
            "--weights",
            default=default,
            show_default=True,
            help="'pretrained' (download on first use, or the cached/bundled file), 'random', or a local "
            "weights file (.pt/.pth/.ckpt loaded with weights_only=True, or .safetensors).",
        ),
        click.option(
            "--trust-checkpoint",
            is_flag=True,
            help="Allow full unpickling of a weights file that needs it. It can run arbitrary code: "
            "only for files from a source you trust.",
        ),
    )


def backbone_options_option(example: str) -> Callable[[F], F]:
    """``--backbone-option KEY=VALUE`` (repeatable), with a command's own example."""
    return click.option(
        "--backbone-option",
        "backbone_options",
        multiple=True,
        metavar="KEY=VALUE",
        help=f"Backbone option, repeatable, e.g. {example} (options: `paramviz models`); any backbone takes "
        f"{common_options_help()}.",
    )


def device_option(default: str = "auto") -> Callable[[F], F]:
    """``--device``."""
    return click.option(
        "--device",
        default=default,
        show_default=True,
        help="'auto' (CUDA if present, else CPU), 'cpu', 'cuda', 'cuda:N'.",
    )


def param_options(default: ParamSpec) -> Callable[[F], F]:
    """The parameterization's options (config key ``param``).

    ``--param``, ``--decorrelate/--no-decorrelate``, ``--squash``, ``--alpha/--no-alpha``, ``--decay-power``,
    ``--levels``, ``--spectrum``.
    """
    return stack(
        click.option(
            "--param",
            type=click.Choice(PARAMS.names()),
            default=default.name,
            show_default=True,
            help="Image parameterization: " + "; ".join(f"{e.name}: {e.description}" for e in PARAMS.entries()) + ".",
        ),
        click.option(
            "--decorrelate/--no-decorrelate",
            default=default.decorrelate,
            show_default=True,
            help="Lucid's colour decorrelation.",
        ),
        click.option(
            "--squash",
            type=click.Choice(SQUASHES.names()),
            default=default.squash,
            show_default=True,
            help="How values are mapped into [0, 1].",
        ),
        click.option(
            "--alpha/--no-alpha",
            default=default.alpha,
            show_default=True,
            help="Transparency: an RGBA image composited over random noise every step (RGBA PNGs); penalize "
            "opacity with an objective such as 0.5*l1:0:alpha.",
        ),
        click.option(
            "--decay-power",
            type=float,
            default=default.decay_power,
            show_default=True,
            help="Fourier spectrum decay (1 as Lucid; 1.5 and 0.85 are also used).",
        ),
        click.option(
            "--levels",
            type=int,
            default=default.levels,
            show_default=True,
            help="Laplacian pyramid levels (Lucid: 4).",
        ),
        click.option(
            "--spectrum",
            type=click.Path(file_okay=False),
            default=default.spectrum,
            show_default="the scikit-image sample photos",
            help="MACO: folder of natural images whose mean magnitude spectrum is used (cached on disk).",
        ),
    )


#: click parameter name -> config key for :func:`param_options`.
PARAM_DESTS = {
    "param": "param.name",
    "decorrelate": "param.decorrelate",
    "squash": "param.squash",
    "alpha": "param.alpha",
    "decay_power": "param.decay_power",
    "levels": "param.levels",
    "spectrum": "param.spectrum",
}

#: ``show_default`` of options whose default the parameterization decides (``VisualizeConfig.resolve``).
PARAM_DEFAULT = "from --param"


def transforms_option(default: str) -> Callable[[F], F]:
    """``--transforms``: a preset name or a spec string."""
    return click.option(
        "--transforms",
        "-t",
        default=default,
        show_default=True,
        help=f"Transform preset ({', '.join(TRANSFORM_PRESETS.names())}) or a spec such as "
        "'pad:12,jitter:8,scale:0.9-1.1,rotate:10,jitter:4'.",
    )


def optimizer_option(default: str | None, show_default: bool | str = True) -> Callable[[F], F]:
    """``--optimizer`` (``default=None`` with a ``show_default`` text for a derived default)."""
    return click.option(
        "--optimizer",
        type=click.Choice(OPTIMIZERS.names()),
        default=default,
        show_default=show_default,
        help="Optimizer: " + "; ".join(f"{e.name}: {e.description}" for e in OPTIMIZERS.entries()) + ".",
    )


def build_config(
    ctx: click.Context,
    config_cls: type[C],
    config_file: Path | None,
    dests: Mapping[str, str],
    extra: Mapping[str, Any] | None = None,
) -> C:
    """Build a config: the file (or defaults), then every option the user typed, mapped by ``dests``.

    The options go through :meth:`~paramviz.config.ConfigBase.override`, so fields they determine are
    re-derived (a ``--preset`` typed over a saved style config picks the new preset's layers).

    Args:
        ctx: The click context of the command.
        config_cls: The task's config dataclass.
        config_file: ``--config`` value or ``None``.
        dests: click parameter name -> dotted config key (e.g. ``{"param": "param.name"}``).
        extra: Further dotted-key overrides the command parsed itself (applied last).
    """
    config = config_cls.from_toml(config_file) if config_file is not None else config_cls()
    overrides: dict[str, Any] = {}
    for name, key in dests.items():
        source = ctx.get_parameter_source(name)
        value = ctx.params.get(name)
        if (
            source in (ParameterSource.COMMANDLINE, ParameterSource.ENVIRONMENT, ParameterSource.PROMPT)
            or config_file is None
            and value is not None
            and source is not None
        ):
            overrides[key] = value
    overrides.update(extra or {})
    return config.override(overrides)
