"""Transparency: compositing an RGBA image over a background.

A parameterization built with ``alpha=True`` returns (B, 4, H, W). During optimization the render loop
composites it over a new random background every step, before the transforms (Lucid's
``collapse_alpha_random``, captum's ``BlendAlpha``)::

    image = alpha * rgb + (1 - alpha) * background,   background ~ U(0, 1) per pixel and channel

so the network only sees what is opaque and the image cannot rely on any particular background. The
background is drawn from the run's CPU generator (one per image when each image has its own seed), so a
seed gives the same backgrounds on any device and a batched image gets the draws it gets alone. The
background is uniform noise as captum's ``BlendAlpha`` (``torch.rand_like``).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

from paramviz.errors import ImageError


def random_background(
    shape: Sequence[int], generator: torch.Generator | Sequence[torch.Generator] | None = None
) -> torch.Tensor:
    """Uniform noise of ``shape`` (B, 3, H, W) on the CPU: from one generator, one per image, or torch's RNG."""
    shape = tuple(shape)
    if generator is None or isinstance(generator, torch.Generator):
        return torch.rand(shape, generator=generator)
    generators = list(generator)
    if len(generators) != shape[0]:
        raise ValueError(f"got {len(generators)} generators for a batch of {shape[0]} images")
    return torch.cat([torch.rand((1, *shape[1:]), generator=g) for g in generators])


def composite(image: torch.Tensor, background: torch.Tensor | float) -> torch.Tensor:
    """``alpha * rgb + (1 - alpha) * background`` of an RGBA image (B, 4, H, W): (B, 3, H, W)."""
    if image.dim() != 4 or image.shape[1] != 4:
        raise ImageError(f"expected an RGBA image tensor of shape (B, 4, H, W), got {tuple(image.shape)}")
    rgb, alpha = image[:, :3], image[:, 3:]
    return alpha * rgb + (1 - alpha) * background


def composite_random(
    image: torch.Tensor, generator: torch.Generator | Sequence[torch.Generator] | None = None
) -> torch.Tensor:
    """:func:`composite` over a fresh :func:`random_background` (drawn on the CPU, moved to the image)."""
    background = random_background((image.shape[0], 3, *image.shape[-2:]), generator)
    return composite(image, background.to(device=image.device, dtype=image.dtype))
