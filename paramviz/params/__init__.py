"""Image parameterizations: ``forward() -> (B, 3, H, W)`` RGB in [0, 1].

- ``pixel``: one learnable value per pixel and channel (Lucid's ``pixel_image``);
- ``fourier``: Lucid's scaled, decorrelated Fourier parameterization (``fft_image``);

both followed by optional colour decorrelation and a squash (``sigmoid`` or ``clamp``). Build one from a
config with :func:`build_param`; add one by subclassing :class:`ImageParam` and registering it in
:data:`PARAMS`.
"""

from __future__ import annotations

from paramviz.params.base import PARAMS, ImageParam
from paramviz.params.batch import ParamBatch
from paramviz.params.color import (
    COLOR_CORRELATION_SVD_SQRT,
    COLOR_MATRIX,
    COLOR_MEAN,
    MAX_COLUMN_NORM,
    SQUASHES,
    Squash,
    clamp_unit,
    correlate_colors,
    decorrelate_colors,
    from_valid_rgb,
    logit,
    to_valid_rgb,
)
from paramviz.params.fourier import FourierParam, rfft2d_freqs, spectrum_scale
from paramviz.params.pixel import PixelParam
from paramviz.params.spec import ParamSpec, build_param

# Registered here, in this order (the order of CLI choices and listings).
PARAMS.register("pixel", PixelParam)
PARAMS.register("fourier", FourierParam)
PARAMS.hint = f"choices: {', '.join(PARAMS.names())}"

__all__ = [
    "COLOR_CORRELATION_SVD_SQRT",
    "COLOR_MATRIX",
    "COLOR_MEAN",
    "MAX_COLUMN_NORM",
    "PARAMS",
    "SQUASHES",
    "FourierParam",
    "ImageParam",
    "ParamBatch",
    "ParamSpec",
    "PixelParam",
    "Squash",
    "build_param",
    "clamp_unit",
    "correlate_colors",
    "decorrelate_colors",
    "from_valid_rgb",
    "logit",
    "rfft2d_freqs",
    "spectrum_scale",
    "to_valid_rgb",
]
