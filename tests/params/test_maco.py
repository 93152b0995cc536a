from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from PIL import Image

import paramviz.params.maco as maco
from paramviz.errors import ConfigError
from paramviz.io import load_image
from paramviz.params import MacoParam, ParamSpec, build_param, natural_spectrum
from paramviz.params.maco import cache_dir, normalized_magnitude


@pytest.fixture
def cache(tmp_path, monkeypatch):
    """A fresh, empty cache folder for this test."""
    monkeypatch.setenv("PARAMVIZ_CACHE", str(tmp_path / "cache"))
    return tmp_path / "cache" / "maco"


def count_computations(monkeypatch) -> list[tuple]:
    calls: list[tuple] = []
    real = maco.compute_spectrum

    def counting(*args, **kwargs):
        calls.append(args)
        return real(*args, **kwargs)

    monkeypatch.setattr(maco, "compute_spectrum", counting)
    return calls


def write_images(folder, size, seeds) -> list[np.ndarray]:
    folder.mkdir(parents=True, exist_ok=True)
    arrays = []
    for seed in seeds:
        rng = np.random.default_rng(seed)
        smooth = np.cumsum(np.cumsum(rng.normal(size=(*size, 3)), 0), 1)  # 1/f^2-like texture
        smooth = (smooth - smooth.min()) / (smooth.max() - smooth.min())
        array = np.round(smooth * 255).astype(np.uint8)
        Image.fromarray(array).save(folder / f"img_{seed}.png")
        arrays.append(array.astype(np.float64) / 255)
    return arrays


@pytest.mark.parametrize("size", [(16, 16), (15, 21)])
def test_magnitude_never_changes_during_optimization(size):
    param = build_param(ParamSpec("maco"), size, batch=2, seed=0)
    magnitude = param.magnitude.clone()

    def spectrum_of_latent() -> torch.Tensor:
        return torch.fft.rfft2(param.latent().detach(), norm="ortho").abs()

    torch.testing.assert_close(spectrum_of_latent(), magnitude.expand(2, -1, -1, -1), atol=1e-5, rtol=1e-4)
    target = F.interpolate(load_image("sample:chelsea"), size=size, mode="bilinear", antialias=True)
    phase = param.phase.detach().clone()
    opt = torch.optim.Adam(param.parameters(), lr=0.1)
    for _ in range(20):
        opt.zero_grad()
        ((param() - target) ** 2).mean().backward()
        opt.step()
    assert float((param.phase.detach() - phase).abs().max()) > 0.5  # the phase did move
    torch.testing.assert_close(spectrum_of_latent(), magnitude.expand(2, -1, -1, -1), atol=1e-5, rtol=1e-4)
    assert torch.equal(param.magnitude, magnitude)
    assert [n for n, _ in param.named_parameters()] == ["phase"]  # only the phase is learnable
    # the latent is mean-free with standard deviation 1 per image (Horama's standardization, folded into M)
    latent = param.latent().detach()
    torch.testing.assert_close(latent.mean(dim=(1, 2, 3)), torch.zeros(2), atol=1e-5, rtol=0)
    torch.testing.assert_close(latent.std(dim=(1, 2, 3), correction=0), torch.ones(2), atol=1e-4, rtol=0)


def test_magnitude_is_the_natural_spectrum_rescaled():
    size = (24, 32)
    spectrum = natural_spectrum("", size, decorrelate=True)
    param = MacoParam(size)
    ratio = param.magnitude.double() / spectrum[:3]
    ratio[:, 0, 0] = ratio[0, 0, 1]  # DC is set to 0 on purpose
    torch.testing.assert_close(ratio, torch.full_like(ratio, float(ratio[0, 0, 1])), rtol=1e-5, atol=0)
    # natural images: far more energy at low than at high frequencies (about 1/f)
    low, high = spectrum[:3, 1:4, 1:4].mean(), spectrum[:3, 10:14, 12:16].mean()
    assert low > 5 * high


def test_spectrum_is_the_mean_magnitude_of_the_folder_images(tmp_path, cache):
    arrays = write_images(tmp_path / "photos", (12, 10), seeds=(0, 1, 2))
    spectrum = natural_spectrum(tmp_path / "photos", (12, 10), decorrelate=False)
    expected = np.zeros((3, 12, 6))
    for a in arrays:
        x = np.moveaxis(a, -1, 0)
        expected += np.abs(np.fft.rfft2(x - x.mean(axis=(1, 2), keepdims=True), norm="ortho"))
    np.testing.assert_allclose(spectrum[:3].numpy(), expected / 3, atol=1e-6, rtol=0)  # float32 pixels
    grey = [a.mean(-1) for a in arrays]
    expected_grey = sum(np.abs(np.fft.rfft2(g - g.mean(), norm="ortho")) for g in grey) / 3
    np.testing.assert_allclose(spectrum[3].numpy(), expected_grey, atol=1e-6, rtol=0)


def test_spectrum_cache_is_hit_on_the_second_build(tmp_path, cache, monkeypatch):
    calls = count_computations(monkeypatch)
    first = build_param(ParamSpec("maco"), (20, 20), seed=0)
    assert len(calls) == 1 and len(list(cache.glob("*.pt"))) == 1 and cache == cache_dir()
    second = build_param(ParamSpec("maco"), (20, 20), seed=1)
    assert len(calls) == 1  # read back, not recomputed
    assert torch.equal(first.magnitude, second.magnitude)
    build_param(ParamSpec("maco", decorrelate=False), (20, 20))  # another colour space, another key
    build_param(ParamSpec("maco"), (20, 24))  # another size
    assert len(calls) == 3 and len(list(cache.glob("*.pt"))) == 3

    # a folder: keyed by the files' contents, so a changed file is recomputed and a renamed folder is not
    write_images(tmp_path / "a", (20, 20), seeds=(0, 1))
    build_param(ParamSpec("maco", spectrum=str(tmp_path / "a")), (20, 20))
    (tmp_path / "a").rename(tmp_path / "b")
    build_param(ParamSpec("maco", spectrum=str(tmp_path / "b")), (20, 20))
    assert len(calls) == 4
    write_images(tmp_path / "b", (20, 20), seeds=(1, 5))  # img_1 unchanged, img_5 added
    build_param(ParamSpec("maco", spectrum=str(tmp_path / "b")), (20, 20))
    assert len(calls) == 5

    # a corrupt cache file is recomputed and replaced
    for path in cache.glob("*.pt"):
        path.write_bytes(b"not a tensor")
    again = build_param(ParamSpec("maco"), (20, 20), seed=0)
    assert len(calls) == 6 and torch.equal(again.magnitude, first.magnitude)


def test_spectrum_folder_errors_name_the_folder(tmp_path):
    with pytest.raises(ConfigError, match="does not exist"):
        build_param(ParamSpec("maco", spectrum=str(tmp_path / "nowhere")), 16)
    (tmp_path / "file.png").write_bytes(b"")
    with pytest.raises(ConfigError, match="is not a folder"):
        build_param(ParamSpec("maco", spectrum=str(tmp_path / "file.png")), 16)
    (tmp_path / "empty").mkdir()
    (tmp_path / "empty" / "notes.txt").write_text("no images")
    with pytest.raises(ConfigError, match="holds no image file"):
        build_param(ParamSpec("maco", spectrum=str(tmp_path / "empty")), 16)
    with pytest.raises(ConfigError, match="param.spectrum"):
        ParamSpec("maco", spectrum=3)


def test_from_image_keeps_the_magnitude_and_takes_the_phase():
    photo = F.interpolate(load_image("sample:astronaut"), size=(48, 48), mode="bilinear", antialias=True)
    param = build_param(ParamSpec("maco"), 48, seed=0, init=photo)
    out = param().detach()
    spectrum = torch.fft.rfft2(param.latent().detach(), norm="ortho").abs()
    torch.testing.assert_close(spectrum[0], param.magnitude, atol=1e-5, rtol=1e-4)
    corr = torch.corrcoef(torch.stack([out.mean(1).flatten(), photo.mean(1).flatten()]))[0, 1]
    assert corr > 0.6  # the phase-only reconstruction keeps the layout (Oppenheim and Lim)


def test_normalized_magnitude_handles_the_self_mirrored_columns():
    for size in [(8, 8), (7, 9), (1, 6), (6, 1)]:
        spectrum = torch.rand(4, size[0], size[1] // 2 + 1, dtype=torch.float64)
        mag = normalized_magnitude(spectrum, size, channels=4)
        assert mag[:, 0, 0].eq(0).all()
        phase = torch.rand(4, *mag.shape[-2:], dtype=torch.float64) * 6 - 3
        latent = torch.fft.irfft2(torch.polar(mag, maco.hermitian_phase(phase, size[1])), s=size, norm="ortho")
        torch.testing.assert_close(torch.fft.rfft2(latent, norm="ortho").abs(), mag)
        if size[0] * size[1] > 1:
            torch.testing.assert_close(latent[:3].std(correction=0), torch.tensor(1.0, dtype=torch.float64))
            torch.testing.assert_close(latent[3].std(correction=0), torch.tensor(1.0, dtype=torch.float64))


def test_defaults_are_horamas():
    assert (MacoParam.default_optimizer, MacoParam.default_lr) == ("nadam", 1.0)
    assert MacoParam.inverse == "approximate" and MacoParam.fixed_scale
