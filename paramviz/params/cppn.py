"""Lucid's CPPN parameterization (Mordvintsev et al. 2018, "Differentiable Image Parameterizations", xy2rgb).

A compositional pattern-producing network maps each pixel's coordinates to its colour; the image is the
network's output on a grid, so the same weights draw it at any resolution (:meth:`CPPNParam.render`)::

    x, y in [-sqrt(3), sqrt(3)] (pixel centres),  r = sqrt(x^2 + y^2)          input (x, y, r)
    h = act(h @ W_i + b_i)   for i = 1 .. num_layers,  W_i ~ N(0, 1 / fan_in)      hidden_channels each
    act(z) = concat(atan(z) / 0.67, atan(z)^2 / 0.6)                           Lucid's composite activation
    t = h @ W_out + b_out,  W_out ~ N(0, sd^2),  biases 0                      latent, C channels

followed by the colour decorrelation and the squash like every parameterization. Each image of the batch has
its own network: the weights are (B, fan_in, fan_out) tensors applied with one batched matrix product per
layer (``torch.baddbmm``), so batch > 1 renders independent images (Lucid and Lucent share one network, so a
batch repeats one image). Measured on 2 CPU threads, forward + backward at 128 px: 21 ms for one image, 197 ms
for eight (a Python loop of 1x1 convolutions over the images: 26 and 172 ms; one grouped convolution: 27 and
249 ms); on a GPU the batched product is one kernel per layer instead of one per image.

Anchors and deviations:

- Lucid's ``cppn`` (and Lucent's): ``num_hidden_channels=24``, ``num_layers=8``, the composite atan
  activation, N(0, 1/fan_in) weights, zero biases, Adam with lr 0.005 (:attr:`CPPNParam.default_lr`).
- Input: Lucid feeds (x, y); we add the radius r (as the issue asks; a radial input makes centred, symmetric
  patterns one layer cheaper). Coordinates are pixel centres ``-r + (i + 0.5) * 2r / N`` instead of Lucid's
  ``linspace(-r, r, N)`` (which includes the end points), so a render at twice the size averaged over 2x2
  blocks samples the same points as the smaller one.
- Output layer: Lucid initializes ``W_out`` to zeros (a flat grey start for every seed, and the hidden
  layers get no gradient until ``W_out`` has moved); we draw it N(0, 0.01^2) as the other parameterizations'
  initial noise, so seeds differ from step 0 and every weight gets a gradient at once.
- Colour: Lucid's CPPN ends in a sigmoid of the RGB output; here the output is the latent, so with
  ``decorrelate=True`` (the ParamSpec default) Lucid's colour decorrelation comes first. ``--no-decorrelate``
  gives Lucid's exact image.
- Lucid's optional instance normalization (``normalize=True``) is not offered.

There is no inverse: :meth:`CPPNParam.from_image` raises :class:`~paramviz.errors.ConfigError` (style transfer
refuses ``init = "content"`` with a CPPN before any work).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import nn

from paramviz.errors import ConfigError
from paramviz.params.base import ImageParam, check_size, check_std, randn
from paramviz.params.color import Squash

#: Half-width of the coordinate range (Lucid's ``3 ** 0.5``: uniform coordinates with standard deviation 1).
COORD_RANGE = math.sqrt(3.0)
#: Divisors of Lucid's composite activation: the RMS of ``atan(z)`` and ``atan(z)**2`` for z ~ N(0, 1).
ATAN_RMS = (0.67, 0.6)
#: Input channels: x, y and the radius r.
INPUTS = 3


def check_positive_int(name: str, value: int, example: str) -> int:
    """Validate a positive whole number."""
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ConfigError(f"{name} must be a positive whole number, got {value!r}; {example}")
    return value


def composite_activation(z: torch.Tensor) -> torch.Tensor:
    """Lucid's ``composite_activation``: ``concat(atan(z) / 0.67, atan(z)**2 / 0.6)`` on the last dimension."""
    a = torch.atan(z)
    return torch.cat([a / ATAN_RMS[0], (a * a) / ATAN_RMS[1]], dim=-1)


def cppn_coordinates(height: int, width: int) -> torch.Tensor:
    """The (H * W, 3) inputs ``(x, y, r)`` at pixel centres, x along the width, rows first, float64."""
    height, width = check_size((height, width))
    y = (torch.arange(height, dtype=torch.float64) + 0.5) * (2 * COORD_RANGE / height) - COORD_RANGE
    x = (torch.arange(width, dtype=torch.float64) + 0.5) * (2 * COORD_RANGE / width) - COORD_RANGE
    yy, xx = torch.meshgrid(y, x, indexing="ij")
    return torch.stack([xx, yy, torch.sqrt(xx * xx + yy * yy)], dim=-1).reshape(-1, INPUTS)


class CPPNParam(ImageParam):
    """Lucid's CPPN: a small per-image network from pixel coordinates (x, y, r) to colour.

    Args:
        size: ``(H, W)`` of the optimized image (an int means a square).
        batch: Number of images (each with its own network).
        decorrelate: Apply Lucid's colour decorrelation to the network's output.
        squash: ``sigmoid`` (Lucid) or ``clamp``.
        generator: Source of the initial weights (torch's global RNG if ``None``).
        alpha: Add a transparency channel (a fourth output).
        hidden_channels: Width of the hidden layers (Lucid: 24); the activation doubles it.
        num_layers: Hidden layers (Lucid: 8), each followed by the composite activation.
        sd: Standard deviation of the output layer's initial weights (Lucid: 0, see the module notes).
    """

    default_lr = 0.005
    inverse = None
    resolution_free = True

    def __init__(
        self,
        size: int | Sequence[int],
        batch: int = 1,
        *,
        decorrelate: bool = True,
        squash: str | Squash = "sigmoid",
        generator: torch.Generator | None = None,
        alpha: bool = False,
        hidden_channels: int = 24,
        num_layers: int = 8,
        sd: float = 0.01,
    ) -> None:
        super().__init__(size, batch, decorrelate=decorrelate, squash=squash, alpha=alpha)
        self.hidden_channels = check_positive_int("hidden_channels", hidden_channels, "Lucid uses 24")
        self.num_layers = check_positive_int("num_layers", num_layers, "Lucid uses 8")
        self.sd = check_std(sd)
        self.weights = nn.ParameterList()
        self.biases = nn.ParameterList()
        fan_in = INPUTS
        for _ in range(self.num_layers):
            shape = (self.batch, fan_in, self.hidden_channels)
            self.weights.append(nn.Parameter(randn(shape, math.sqrt(1.0 / fan_in), generator)))
            self.biases.append(nn.Parameter(torch.zeros(self.batch, 1, self.hidden_channels)))
            fan_in = 2 * self.hidden_channels
        self.weights.append(nn.Parameter(randn((self.batch, fan_in, self.channels), self.sd, generator)))
        self.biases.append(nn.Parameter(torch.zeros(self.batch, 1, self.channels)))
        dtype = torch.get_default_dtype()
        self.register_buffer("coords", cppn_coordinates(self.height, self.width).to(dtype), persistent=False)

    def network(self, coords: torch.Tensor) -> torch.Tensor:
        """The networks' output on ``coords`` (N, 3): (B, N, C), one network per image."""
        h = coords.to(self.weights[0]).expand(self.batch, -1, -1)
        for weight, bias in zip(self.weights[:-1], self.biases[:-1], strict=True):
            h = composite_activation(torch.baddbmm(bias, h, weight))
        return torch.baddbmm(self.biases[-1], h, self.weights[-1])

    def _grid(self, coords: torch.Tensor, height: int, width: int) -> torch.Tensor:
        out = self.network(coords)  # (B, H*W, C)
        return out.transpose(1, 2).reshape(self.batch, self.channels, height, width)

    def latent(self) -> torch.Tensor:
        """The networks' output on the image's pixel grid, shape (B, C, H, W)."""
        return self._grid(self.coords, self.height, self.width)

    def render(self, size: int | Sequence[int]) -> torch.Tensor:
        """The same images drawn at ``size`` (``(H, W)`` or an int for a square): (B, C, H', W') in [0, 1].

        Pixel centres at the new size sample the same continuous image over the same coordinate square, so a
        render at twice the size, averaged over 2x2 blocks, is close to the optimized image (a different
        aspect ratio stretches it).
        """
        height, width = check_size(size)
        coords = cppn_coordinates(height, width).to(self.coords)
        return self.to_image(self._grid(coords, height, width))

    @torch.no_grad()
    def from_image(self, img: torch.Tensor) -> ImageParam:
        """Not supported: a CPPN has no inverse (it can only be fitted to an image by optimization).

        Raises:
            ConfigError: Always.
        """
        raise ConfigError(
            "the cppn parameterization cannot start from an image (a CPPN has no inverse); start from its own "
            "initialization instead (style transfer: --init gray), or use --param fourier, pixel or laplacian"
        )

    def _apply(self, fn, recurse=True):  # type: ignore[no-untyped-def]
        # After a dtype change, recompute the coordinates from float64 rather than keeping the rounded copy.
        dtype = self.coords.dtype
        super()._apply(fn, recurse)
        if self.coords.dtype != dtype and self.coords.is_floating_point() and self.coords.device.type != "meta":
            exact = cppn_coordinates(self.height, self.width)
            self.coords = exact.to(device=self.coords.device, dtype=self.coords.dtype)
        return self

    def extra_repr(self) -> str:
        return f"{super().extra_repr()}, hidden_channels={self.hidden_channels}, num_layers={self.num_layers}"
