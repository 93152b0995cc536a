"""The options every backbone takes besides its own (``memory_format``, ``fold_batchnorm``); no torch import.

They reach :func:`~paramviz.backbones.registry.build_backbone` as keyword options (the CLI's
``--backbone-option KEY=VALUE``) and become attributes of the :class:`~paramviz.backbones.base.Backbone`.
"""

from __future__ import annotations

from paramviz.backbones.memory_format import (
    DEFAULT_MEMORY_FORMAT,
    MEMORY_FORMAT_OPTION,
    MEMORY_FORMATS,
    check_memory_format,
)
from paramviz.errors import ConfigError

#: The backbone option (``--backbone-option fold_batchnorm=false``) that turns BatchNorm folding off.
FOLD_BATCHNORM_OPTION = "fold_batchnorm"
#: Default of ``fold_batchnorm`` (:mod:`paramviz.backbones.fold`): on, as it won on every network measured and
#: keeps the activations.
DEFAULT_FOLD_BATCHNORM = True

#: Names of the options every backbone takes.
COMMON_OPTIONS = (MEMORY_FORMAT_OPTION, FOLD_BATCHNORM_OPTION)


def check_fold_batchnorm(value: object) -> bool:
    """Validate the ``fold_batchnorm`` option (a bool; the CLI's ``true``/``false`` arrive as bools)."""
    if not isinstance(value, bool):
        raise ConfigError(f"{FOLD_BATCHNORM_OPTION} must be true or false, got {value!r}")
    return value


def check_common_options(options: dict[str, object]) -> None:
    """Validate the values of the options every backbone takes among ``options`` (others are the backbone's)."""
    if MEMORY_FORMAT_OPTION in options:
        check_memory_format(options[MEMORY_FORMAT_OPTION])
    if FOLD_BATCHNORM_OPTION in options:
        check_fold_batchnorm(options[FOLD_BATCHNORM_OPTION])


def common_options_help() -> str:
    """One line on the options every backbone takes, with their defaults (for listings and ``--help``)."""
    fold = "true" if DEFAULT_FOLD_BATCHNORM else "false"
    return (
        f"{MEMORY_FORMAT_OPTION}={'|'.join(MEMORY_FORMATS)} (default {DEFAULT_MEMORY_FORMAT}: channels-last "
        f"weights on the CPU) and {FOLD_BATCHNORM_OPTION}=true|false (default {fold}: BatchNorm folded into the "
        "convolution before it, same activations, faster steps)"
    )
