from __future__ import annotations

import numpy as np
import pytest
import torch

from paramviz.errors import ConfigError
from paramviz.params import FourierParam, rfft2d_freqs, spectrum_scale

C_NORM = np.array([[0.26, 0.09, 0.02], [0.27, 0.00, -0.05], [0.27, -0.09, 0.03]])
C_NORM = C_NORM / np.linalg.norm(C_NORM, axis=0).max()


def numpy_fourier_image(spectrum: np.ndarray, h: int, w: int, decay: float, decorrelate: bool) -> np.ndarray:
    """Independent implementation of Lucid's fft_image + to_valid_rgb (sigmoid), channels first."""
    fy = np.fft.fftfreq(h)[:, None]
    fx = np.fft.rfftfreq(w)[None, :]
    freqs = np.sqrt(fx * fx + fy * fy)
    scale = 1.0 / np.maximum(freqs, 1.0 / max(w, h)) ** decay
    complex_spec = spectrum[..., 0] + 1j * spectrum[..., 1]
    img = np.fft.irfft2(scale * complex_spec, s=(h, w), norm="ortho") / 4
    if decorrelate:
        img = np.moveaxis(np.moveaxis(img, 1, -1) @ C_NORM.T, -1, 1)
    return 1 / (1 + np.exp(-img))


@pytest.mark.parametrize("size", [(16, 16), (15, 17), (12, 21), (9, 8), (1, 7)])
@pytest.mark.parametrize("decay", [0.0, 0.85, 1.0, 1.5])
@pytest.mark.parametrize("decorrelate", [True, False])
def test_image_matches_numpy_reference(size, decay, decorrelate):
    h, w = size
    gen = torch.Generator().manual_seed(1)
    param = FourierParam(size, batch=2, decorrelate=decorrelate, decay_power=decay, generator=gen, sd=0.5)
    param = param.to(torch.float64)
    assert param.spectrum.shape == (2, 3, h, w // 2 + 1, 2)
    expected = numpy_fourier_image(param.spectrum.detach().numpy(), h, w, decay, decorrelate)
    np.testing.assert_allclose(param().detach().numpy(), expected, rtol=0, atol=1e-12)


def test_float32_image_close_to_numpy():
    param = FourierParam((16, 20), generator=torch.Generator().manual_seed(0), sd=0.3)
    expected = numpy_fourier_image(param.spectrum.detach().double().numpy(), 16, 20, 1.0, True)
    np.testing.assert_allclose(param().detach().numpy(), expected, rtol=0, atol=1e-5)


@pytest.mark.parametrize("h, w", [(8, 8), (7, 9)])
def test_frequencies_and_scale(h, w):
    freqs = rfft2d_freqs(h, w).numpy()
    assert freqs.shape == (h, w // 2 + 1)
    # Lucid's columns (abs of fftfreq) agree with rfftfreq on every column both have.
    lucid_fx = np.abs(np.fft.fftfreq(w)[: w // 2 + 1])
    np.testing.assert_allclose(freqs[0], lucid_fx)
    scale = spectrum_scale(h, w, 1.5).numpy()
    assert scale[0, 0] == pytest.approx(max(h, w) ** 1.5)  # DC uses the floor 1 / max(h, w)
    assert scale[0, 1] == pytest.approx((1 / (1 / w)) ** 1.5)
    np.testing.assert_array_equal(spectrum_scale(h, w, 0.0).numpy(), np.ones((h, w // 2 + 1)))


def test_init_is_small_normal_noise():
    param = FourierParam((64, 64), batch=2, generator=torch.Generator().manual_seed(0))
    values = param.spectrum.detach()
    assert values.std().item() == pytest.approx(0.01, rel=0.05)
    assert values.mean().abs().item() < 0.001


def test_scale_is_a_non_persistent_buffer_that_moves_with_to():
    param = FourierParam((8, 10))
    assert "scale" in dict(param.named_buffers())
    assert set(param.state_dict()) == {"spectrum"}
    param = param.to(torch.float64)
    assert param.scale.dtype == torch.float64 and param.spectrum.dtype == torch.float64
    assert param().dtype == torch.float64
    meta = FourierParam((8, 10)).to("meta")
    assert meta.scale.device.type == "meta" and meta.spectrum.device.type == "meta"


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_runs_on_cuda():
    param = FourierParam((9, 11), generator=torch.Generator().manual_seed(0))
    cpu = param()
    gpu = param.to("cuda")()
    assert gpu.device.type == "cuda"
    torch.testing.assert_close(gpu.cpu(), cpu, atol=1e-5, rtol=0)


def test_decay_power_changes_image_and_is_validated():
    gen = torch.Generator().manual_seed(0)
    a = FourierParam((16, 16), generator=gen, decay_power=1.0)
    b = FourierParam((16, 16), decay_power=1.5)
    b.spectrum.data.copy_(a.spectrum.data)
    assert not torch.allclose(a(), b())
    with pytest.raises(ConfigError, match="decay_power"):
        FourierParam((8, 8), decay_power=-0.5)


def test_decay_power_that_overflows_the_scale_is_refused():
    import pytest

    from paramviz.errors import ConfigError
    from paramviz.params import FourierParam

    with pytest.raises(ConfigError, match="decay_power 20 overflows"):
        FourierParam((128, 128), decay_power=20)
