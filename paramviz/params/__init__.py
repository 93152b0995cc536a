"""Image parameterizations: ``forward() -> (B, 3, H, W)`` RGB in [0, 1].

- ``pixel``: one learnable value per pixel and channel (Lucid's ``pixel_image``);
- ``fourier``: Lucid's scaled, decorrelated Fourier parameterization (``fft_image``);
- ``laplacian``: Lucid's Laplacian pyramid (``laplacian_pyramid_image``) with captum's level scales;
- ``cppn``: Lucid's CPPN, one small network per image from pixel coordinates to colour (any resolution);
- ``maco``: magnitude-constrained optimization (Fel et al. 2023): a fixed natural spectrum, learnable phase;

each followed by optional colour decorrelation and a squash (``sigmoid`` or ``clamp``), and optionally an
alpha channel (RGBA output). Build one from a config with :func:`build_param`; add one by subclassing
:class:`ImageParam` and registering it in :data:`PARAMS`.
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
from paramviz.params.cppn import CPPNParam
from paramviz.params.fourier import FourierParam, rfft2d_freqs, spectrum_scale
from paramviz.params.laplacian import LaplacianParam
from paramviz.params.maco import MacoParam, natural_spectrum
from paramviz.params.pixel import PixelParam
from paramviz.params.spec import ParamSpec, build_param

# Registered here, in this order (the order of CLI choices and listings).
PARAMS.register("pixel", PixelParam, description="one value per pixel and channel (Lucid's pixel_image)")
PARAMS.register("fourier", FourierParam, description="Lucid's scaled decorrelated Fourier spectrum (fft_image)")
PARAMS.register("laplacian", LaplacianParam, description="Lucid's Laplacian pyramid (sum of upsampled levels)")
PARAMS.register("cppn", CPPNParam, description="Lucid's CPPN: a network from (x, y, r) to colour, any resolution")
PARAMS.register("maco", MacoParam, description="MACO: fixed natural-image magnitude, learnable phase")
PARAMS.hint = f"choices: {', '.join(PARAMS.names())}"

__all__ = [
    "COLOR_CORRELATION_SVD_SQRT",
    "COLOR_MATRIX",
    "COLOR_MEAN",
    "CPPNParam",
    "MAX_COLUMN_NORM",
    "PARAMS",
    "SQUASHES",
    "FourierParam",
    "ImageParam",
    "LaplacianParam",
    "MacoParam",
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
    "natural_spectrum",
    "rfft2d_freqs",
    "spectrum_scale",
    "to_valid_rgb",
]
