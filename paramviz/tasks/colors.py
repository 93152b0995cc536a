"""Colour preservation for style transfer ("original colours"), in the YIQ colour space.

Gatys, Bethge, Hertzmann, Shechtman (2016), "Preserving Color in Neural Artistic Style Transfer", transfer
the style on the **luminance** only and keep the content's **colour** (chrominance) channels. They use YIQ
(the NTSC colour space: Y luminance, I and Q chrominance); paramviz does too, with the FCC NTSC matrix::

    Y = 0.299 R + 0.587 G + 0.114 B
    I = 0.596 R - 0.274 G - 0.322 B
    Q = 0.211 R - 0.523 G + 0.312 B

and its exact matrix inverse. Two modes (``original_colors`` in :class:`~paramviz.tasks.stylize.StyleConfig`):

- ``"luminance"`` (the paper's method): the content and style images are replaced by their luminance
  (replicated to three channels, since the backbone takes RGB); the style luminance is first matched to
  the content's mean and standard deviation (the paper's eq. 1: ``L_s' = σ_c/σ_s (L_s − μ_s) + μ_c``) so
  the brightness distribution does not shift. The network sees the luminance of the output too
  (:class:`LuminanceView`): only the output's Y channel is kept, so only it is optimized. After
  optimization the output's Y channel is combined with the content's I and Q.

  **Style weight in luminance mode.** Most of a painting's style loss is colour: for ``starry_night.jpg`` on
  EfficientNet-Lite0 the content photo's style loss is 4.1 in colour (3.3 of it at the stem, which sees
  colour statistics) and 0.45 on luminance. At the same weights the content term then wins and the image
  hardly changes (the style loss fell 4x in 40 steps, against 32x in colour). So the style terms are scaled
  by ``L_style(content, colour targets) / L_style(grey content, luminance targets)``, computed once from the
  content image before step 1: the style term starts where it would in colour, and ``style_weight`` means
  the same in every mode (the factor is ``luminance_style_factor`` in ``metrics.json``; with it the style
  loss falls 15x in the same 40 steps).
- ``"post"``: ordinary colour transfer, then the output's Y with the content's I and Q (the simpler
  post-processing offered by e.g. jcjohnson/neural-style ``-original_colors 1``).

Results are clamped to [0, 1] (YIQ -> RGB can leave the RGB cube).
"""

from __future__ import annotations

from collections.abc import Iterable

import torch

from paramviz.backbones.base import BackboneView
from paramviz.errors import ImageError, UnknownNameError

COLOR_MODES = ("off", "luminance", "post")
"""``off``: colours of the style; ``luminance``: luminance-only transfer; ``post``: recolour afterwards."""

RGB_TO_YIQ = torch.tensor(
    [
        [0.299, 0.587, 0.114],
        [0.596, -0.274, -0.322],
        [0.211, -0.523, 0.312],
    ],
    dtype=torch.float64,
)
"""FCC NTSC RGB -> YIQ matrix (rows Y, I, Q)."""

YIQ_TO_RGB = torch.linalg.inv(RGB_TO_YIQ)
"""Exact inverse of :data:`RGB_TO_YIQ`."""

_STD_FLOOR = 1e-6


def _check_rgb(image: torch.Tensor, what: str = "image") -> torch.Tensor:
    if image.dim() != 4 or image.shape[1] != 3:
        raise ImageError(f"{what}: expected an RGB image batch of shape (B, 3, H, W), got {tuple(image.shape)}")
    return image


def _apply(matrix: torch.Tensor, image: torch.Tensor) -> torch.Tensor:
    m = matrix.to(dtype=image.dtype, device=image.device)
    return torch.einsum("ij,bjhw->bihw", m, image)


def rgb_to_yiq(image: torch.Tensor) -> torch.Tensor:
    """(B, 3, H, W) RGB -> (B, 3, H, W) YIQ (Y in [0, 1]; I, Q roughly in [-0.6, 0.6])."""
    return _apply(RGB_TO_YIQ, _check_rgb(image))


def yiq_to_rgb(image: torch.Tensor) -> torch.Tensor:
    """(B, 3, H, W) YIQ -> (B, 3, H, W) RGB (not clamped)."""
    return _apply(YIQ_TO_RGB, _check_rgb(image, "YIQ image"))


def luminance(image: torch.Tensor) -> torch.Tensor:
    """Y channel of RGB images, (B, 3, H, W) -> (B, 1, H, W)."""
    return rgb_to_yiq(image)[:, :1]


def gray_rgb(lum: torch.Tensor) -> torch.Tensor:
    """A luminance map (B, 1, H, W) as a grey RGB image (B, 3, H, W), clamped to [0, 1]."""
    return lum.clamp(0, 1).expand(-1, 3, -1, -1).contiguous()


def match_luminance(style: torch.Tensor, content: torch.Tensor) -> torch.Tensor:
    """Affinely map the style's luminance to the content's mean and standard deviation.

    ``L_s' = σ_c / σ_s · (L_s − μ_s) + μ_c`` (Gatys et al. 2016, eq. 1), statistics over each whole image.

    Args:
        style: Style luminance (B, 1, H, W).
        content: Content luminance (1, 1, H', W') (sizes may differ).

    Returns:
        The matched style luminance, (B, 1, H, W) (not clamped).
    """
    mu_s = style.mean((1, 2, 3), keepdim=True)
    sd_s = style.std((1, 2, 3), keepdim=True, unbiased=False).clamp_min(_STD_FLOOR)
    mu_c = content.mean()
    sd_c = content.std(unbiased=False)
    return (style - mu_s) * (sd_c / sd_s) + mu_c


def luminance_only_inputs(content: torch.Tensor, styles: list[torch.Tensor]) -> tuple[torch.Tensor, list[torch.Tensor]]:
    """The grey content image and the luminance-matched grey style images for luminance-only transfer.

    Args:
        content: Content image (1, 3, H, W) in [0, 1].
        styles: Style images (1, 3, H_i, W_i) in [0, 1].

    Returns:
        ``(grey content, [grey styles])``, each RGB with three equal channels, in [0, 1].
    """
    content_y = luminance(content)
    return gray_rgb(content_y), [gray_rgb(match_luminance(luminance(s), content_y)) for s in styles]


def transfer_colors(stylized: torch.Tensor, content: torch.Tensor) -> torch.Tensor:
    """Keep the luminance of ``stylized`` and take the colour (I, Q) of ``content``.

    Args:
        stylized: Output image(s) (B, 3, H, W) in [0, 1].
        content: Content image (1, 3, H, W) or (B, 3, H, W) of the same size.

    Returns:
        RGB (B, 3, H, W) clamped to [0, 1].
    """
    _check_rgb(stylized, "stylized image")
    _check_rgb(content, "content image")
    if stylized.shape[-2:] != content.shape[-2:]:
        raise ImageError(
            f"cannot transfer colours: the stylized image is {tuple(stylized.shape[-2:])} but the content is "
            f"{tuple(content.shape[-2:])}; resize the content to the output size first"
        )
    content = content.to(device=stylized.device, dtype=stylized.dtype)
    yiq = torch.cat([luminance(stylized), rgb_to_yiq(content)[:, 1:].expand(stylized.shape[0], -1, -1, -1)], 1)
    return yiq_to_rgb(yiq).clamp(0, 1)


def check_color_mode(mode: str) -> str:
    """Validate an ``original_colors`` mode name."""
    if mode not in COLOR_MODES:
        raise UnknownNameError("original-colours mode", str(mode), COLOR_MODES)
    return mode


class LuminanceView(BackboneView):
    """Backbone wrapper whose network sees only the luminance of its input (as grey RGB).

    Used by luminance-only style transfer: the output keeps only its Y channel, so the losses read only that.
    Layer names, validation and the probe are the wrapped backbone's.

    Args:
        backbone: A backbone (``forward(x, layers) -> {layer: tensor}``).
    """

    def forward(self, x: torch.Tensor, layers: Iterable[str]) -> dict[str, torch.Tensor]:
        """Features of the grey image ``(Y, Y, Y)`` of ``x`` (B, 3, H, W)."""
        return self.backbone(luminance(x).expand(-1, 3, -1, -1), layers)
