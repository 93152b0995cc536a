"""MACO, magnitude-constrained optimization: a fixed natural-image magnitude spectrum, a learnable phase.

Fel et al. 2023, "Unlocking Feature Visualization for Deeper Networks with MAgnitude Constrained
Optimization"; Horama's and xplique's ``maco``.

Only the phase of the image's spectrum is optimized; its magnitude is a fixed natural-image spectrum::

    M     = mean over images of |rfft2(x - mean(x), norm="ortho")|          the fixed magnitude (C, H, W//2+1)
    t     = irfft2(M * exp(i * phase), s=(H, W), norm="ortho")             latent, standard deviation 1

then the colour decorrelation and the squash (sigmoid by default) like every parameterization. The default
optimizer is Nadam with lr 1.0 (Horama and xplique), :attr:`MacoParam.default_optimizer` / ``default_lr``.

The spectrum (:func:`natural_spectrum`) is the mean magnitude of a folder of images given by the user
(``ParamSpec.spectrum``) or, by default and offline, of the scikit-image sample photos that are natural
scenes (:data:`DEFAULT_SPECTRUM_IMAGES`). Each image is resized to cover the render size and centre-cropped to
it (so the spectrum is exact at that size), and taken into the latent's colour space (the inverse of Lucid's
colour decorrelation when ``decorrelate``); the fourth channel, for ``alpha``, is the spectrum of the images'
grey level. The result is cached on disk (:func:`cache_dir`: ``$PARAMVIZ_CACHE/maco`` or
``~/.cache/paramviz/maco``) under the SHA-256 of its inputs (the image files' contents, the size, the colour
space and :data:`SPECTRUM_VERSION`), so a second build with the same inputs reads it back.

Anchors and deviations:

- Horama/xplique load a magnitude precomputed on ImageNet (resized bilinearly to the render size); paramviz
  ships no ImageNet, so the spectrum comes from the images above, computed at the render size itself.
- Horama and xplique standardize the image (mean 0, std 1) every step. With a fixed magnitude and real-valued
  phases that standardization is a constant, so it is folded into ``M``: its DC term is set to 0 (each
  image's mean is removed before the FFT: the latent has mean 0, a mid-grey image on average) and ``M`` is
  scaled so the latent has standard deviation 1 over the colour channels (the alpha channel on its own).
- The phase is made Hermitian-consistent (antisymmetric along the height on the columns that are their own
  mirror image: the first, and the last for even widths), so ``|rfft2(latent)|`` equals ``M`` exactly and never
  changes during the optimization; the initial phase is uniform in [-pi, pi] (xplique; Horama draws N(0, 1)).
- The ``transparency`` attribution map MACO accumulates from the gradients is not computed.

:meth:`MacoParam.from_image` is **approximate**: it keeps the fixed magnitude and takes the image's phase (the
classic phase-only reconstruction, which keeps edges and layout), so style transfer can start from the content.
"""

from __future__ import annotations

import functools
import hashlib
import json
import math
import os
import tempfile
import warnings
from collections.abc import Sequence
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from paramviz.errors import ConfigError
from paramviz.params.base import ImageParam, check_size
from paramviz.params.color import Squash, correlate_colors

#: scikit-image sample photos of natural scenes used when no spectrum folder is given (the other samples,
#: a star field and a microscopy slide, are not natural scenes).
DEFAULT_SPECTRUM_IMAGES = ("sample:astronaut", "sample:chelsea", "sample:coffee", "sample:rocket")
#: Image suffixes read from a spectrum folder.
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp")
#: Part of the cache key: bump it when the computation changes so old cache files are not reused.
SPECTRUM_VERSION = 1
#: Environment variable naming paramviz's cache folder (the spectra go to its ``maco`` subfolder).
CACHE_ENV = "PARAMVIZ_CACHE"


def cache_dir() -> Path:
    """Where spectra are cached.

    ``$PARAMVIZ_CACHE/maco``, else ``$XDG_CACHE_HOME/paramviz/maco``, else ``~/.cache/paramviz/maco``.
    """
    root = os.environ.get(CACHE_ENV)
    if root:
        return Path(root).expanduser() / "maco"
    xdg = os.environ.get("XDG_CACHE_HOME")
    base = Path(xdg).expanduser() if xdg else Path.home() / ".cache"
    return base / "paramviz" / "maco"


def spectrum_sources(folder: str | Path = "") -> list[str]:
    """The images a spectrum is computed from: the files of ``folder`` (sorted), or the default photos.

    Raises:
        ConfigError: ``folder`` does not exist, is not a folder, or holds no image file.
    """
    if not str(folder):
        return list(DEFAULT_SPECTRUM_IMAGES)
    path = Path(folder).expanduser()
    if not path.exists():
        raise ConfigError(
            f"param.spectrum: folder {str(folder)!r} does not exist; give a folder of natural images, or leave "
            "it empty for the scikit-image sample photos"
        )
    if not path.is_dir():
        raise ConfigError(f"param.spectrum: {str(folder)!r} is not a folder; give a folder of natural images")
    files = sorted(str(p) for p in path.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)
    if not files:
        raise ConfigError(
            f"param.spectrum: folder {str(folder)!r} holds no image file ({', '.join(IMAGE_SUFFIXES)}); "
            "add natural images (photos) to it"
        )
    return files


@functools.lru_cache(maxsize=16)
def _sample_digest(source: str) -> str:
    from paramviz.io import load_image

    return hashlib.sha256(load_image(source).numpy().tobytes()).hexdigest()


def source_digest(source: str) -> str:
    """SHA-256 of an image's contents: the file's bytes, or the decoded pixels of a ``sample:`` photo."""
    from paramviz.io import SAMPLE_PREFIX

    if source.startswith(SAMPLE_PREFIX):
        return _sample_digest(source)
    return hashlib.sha256(Path(source).read_bytes()).hexdigest()


def spectrum_key(sources: Sequence[str], size: tuple[int, int], decorrelate: bool) -> str:
    """The cache key: SHA-256 of the sources' contents (in order), the size, the colour space, the version."""
    data = {
        "version": SPECTRUM_VERSION,
        "size": list(size),
        "decorrelate": bool(decorrelate),
        "images": [source_digest(s) for s in sources],
    }
    return hashlib.sha256(json.dumps(data, sort_keys=True).encode("utf-8")).hexdigest()


def fit_to_size(image: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """Resize (1, 3, h, w) to cover ``size`` (aspect kept, antialiased bilinear) and centre-crop to it."""
    height, width = size
    h, w = image.shape[-2:]
    scale = max(height / h, width / w)
    new = (max(height, math.ceil(h * scale - 1e-9)), max(width, math.ceil(w * scale - 1e-9)))
    if new != (h, w):
        image = F.interpolate(image, size=new, mode="bilinear", align_corners=False, antialias=True)
    top, left = (new[0] - height) // 2, (new[1] - width) // 2
    return image[..., top : top + height, left : left + width]


def compute_spectrum(sources: Sequence[str], size: tuple[int, int], decorrelate: bool) -> torch.Tensor:
    """Mean ``|rfft2|`` (norm "ortho") of the images, each mean-free: (4, H, W // 2 + 1) float64.

    Channels 0-2: the latent colour space (decorrelated colours when ``decorrelate``, else RGB); channel 3:
    the grey level (the mean of R, G, B), for an alpha channel.
    """
    from paramviz.io import load_image

    height, width = check_size(size)
    total = torch.zeros(4, height, width // 2 + 1, dtype=torch.float64)
    for source in sources:
        rgb = fit_to_size(load_image(source).double(), (height, width))[0]
        colour = correlate_colors(rgb) if decorrelate else rgb
        x = torch.cat([colour, rgb.mean(0, keepdim=True)])
        x = x - x.mean(dim=(-2, -1), keepdim=True)
        total += torch.fft.rfft2(x, norm="ortho").abs()
    return total / len(sources)


def natural_spectrum(folder: str | Path, size: int | Sequence[int], decorrelate: bool = True) -> torch.Tensor:
    """The mean magnitude spectrum of ``folder``'s images (or the default photos) at ``size``, cached on disk.

    Returns:
        (4, H, W // 2 + 1) float64 (see :func:`compute_spectrum`).
    """
    size = check_size(size)
    sources = spectrum_sources(folder)
    key = spectrum_key(sources, size, decorrelate)
    path = cache_dir() / f"{key}.pt"
    expected = (4, size[0], size[1] // 2 + 1)
    if path.is_file():
        try:
            cached = torch.load(path, map_location="cpu", weights_only=True)
            if isinstance(cached, torch.Tensor) and tuple(cached.shape) == expected:
                return cached.double()
        except Exception:  # noqa: BLE001 - a corrupt or foreign cache file is recomputed and replaced
            pass
    spectrum = compute_spectrum(sources, size, decorrelate)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{key}.", suffix=".tmp", dir=path.parent)
        os.close(fd)
        torch.save(spectrum, tmp)
        os.replace(tmp, path)
    except OSError as exc:
        warnings.warn(f"cannot cache the MACO spectrum in {str(path.parent)!r}: {exc}", RuntimeWarning, stacklevel=2)
    return spectrum


def normalized_magnitude(spectrum: torch.Tensor, size: tuple[int, int], channels: int = 3) -> torch.Tensor:
    """The fixed magnitude of a MACO latent, (C, H, W // 2 + 1).

    DC 0, mirror-symmetric where irfft2 needs it, and scaled so the latent has standard deviation 1 over the
    colour channels (and, separately, over the alpha channel).
    """
    height, width = size
    mag = spectrum[:channels].double().clone()
    mag[:, 0, 0] = 0.0
    flip = (-torch.arange(height)) % height
    columns = [0] + ([width // 2] if width % 2 == 0 and width > 1 else [])
    for col in columns:
        mag[:, :, col] = (mag[:, :, col] + mag[:, flip, col]) / 2
    image = torch.fft.irfft2(mag.to(torch.complex128), s=(height, width), norm="ortho")  # zero phase
    for group in (slice(0, 3), slice(3, 4))[: 1 + (channels == 4)]:
        sigma = float(image[group].pow(2).mean().sqrt())
        if sigma > 0:
            mag[group] /= sigma
    return mag


def hermitian_phase(phase: torch.Tensor, width: int) -> torch.Tensor:
    """The phase (..., H, W // 2 + 1) made Hermitian-consistent.

    Antisymmetric along H on the self-mirrored columns (0, and W / 2 for even W), so ``M * exp(i * phase)`` is
    the half spectrum of a real image whose magnitude is exactly ``M``.
    """
    height = phase.shape[-2]
    flip = (-torch.arange(height, device=phase.device)) % height
    anti = (phase - phase[..., flip, :]) / 2
    mirrored = torch.zeros(phase.shape[-1], dtype=torch.bool, device=phase.device)
    mirrored[0] = True
    if width % 2 == 0 and width > 1:
        mirrored[-1] = True
    return torch.where(mirrored, anti, phase)


class MacoParam(ImageParam):
    """MACO: a fixed natural-image magnitude spectrum and a learnable phase per image and channel.

    Args:
        size: ``(H, W)`` (an int means a square).
        batch: Number of images.
        decorrelate: Apply Lucid's colour decorrelation (the spectrum is then taken in the decorrelated space).
        squash: ``sigmoid`` (Horama, xplique) or ``clamp``.
        generator: Source of the initial phase (torch's global RNG if ``None``).
        alpha: Add a transparency channel (with the images' grey-level spectrum).
        spectrum: Folder of natural images whose mean spectrum is the magnitude; ``""``: the default photos.
    """

    default_optimizer = "nadam"
    default_lr = 1.0
    inverse = "approximate"
    fixed_scale = True

    def __init__(
        self,
        size: int | Sequence[int],
        batch: int = 1,
        *,
        decorrelate: bool = True,
        squash: str | Squash = "sigmoid",
        generator: torch.Generator | None = None,
        alpha: bool = False,
        spectrum: str = "",
    ) -> None:
        super().__init__(size, batch, decorrelate=decorrelate, squash=squash, alpha=alpha)
        if not isinstance(spectrum, (str, Path)):
            raise ConfigError(f"spectrum must be a folder path or empty, got {spectrum!r}")
        self.spectrum_source = str(spectrum)
        natural = natural_spectrum(self.spectrum_source, self.size, self.decorrelate)
        magnitude = normalized_magnitude(natural, self.size, self.channels)
        # Derived from the spectrum's inputs, so not saved in state_dict; still moved by .to().
        self.register_buffer("magnitude", magnitude.to(torch.get_default_dtype()), persistent=False)
        shape = (self.batch, self.channels, self.height, self.width // 2 + 1)
        device = generator.device if generator is not None else None
        uniform = torch.rand(shape, generator=generator, device=device)
        self.phase = nn.Parameter((uniform * 2 - 1) * math.pi)

    def latent(self) -> torch.Tensor:
        """``irfft2(M * exp(i * phase), s=(H, W), norm="ortho")``, shape (B, C, H, W), std 1."""
        phase = hermitian_phase(self.phase, self.width)
        spectrum = torch.polar(self.magnitude.expand_as(phase), phase)
        return torch.fft.irfft2(spectrum, s=(self.height, self.width), norm="ortho")

    def _load_latent(self, t: torch.Tensor) -> None:
        # Approximate inverse: the image's phase with the fixed magnitude.
        self.phase.copy_(torch.angle(torch.fft.rfft2(t, s=(self.height, self.width), norm="ortho")))

    def extra_repr(self) -> str:
        source = self.spectrum_source or "default photos"
        return f"{super().extra_repr()}, spectrum={source!r}"
