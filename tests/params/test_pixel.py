from __future__ import annotations

import pytest
import torch

from paramviz.params import PixelParam


def test_pixels_are_the_latent_and_initialized_small():
    param = PixelParam((64, 64), batch=2, decorrelate=False, generator=torch.Generator().manual_seed(0))
    assert param.pixels.shape == (2, 3, 64, 64)
    assert param.pixels.std().item() == pytest.approx(0.01, rel=0.05)
    assert param.latent() is param.pixels
    torch.testing.assert_close(param(), torch.sigmoid(param.pixels))


def test_custom_sd():
    param = PixelParam((64, 64), sd=0.1, generator=torch.Generator().manual_seed(0))
    assert param.pixels.std().item() == pytest.approx(0.1, rel=0.05)
    assert torch.count_nonzero(PixelParam((4, 4), sd=0.0).pixels) == 0
