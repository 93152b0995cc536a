"""Image files and output directories: the only module that reads or writes image files.

Images in paramviz are float tensors (B, 3, H, W) in [0, 1]. :class:`OutputDir` makes every run's outputs
appear at once: files are written into a hidden temporary sibling and moved into place only when the run
succeeded, so a failed run leaves nothing half-written and a finished result is never overwritten unless
``force`` is given.
"""

from __future__ import annotations

import json
import math
import shutil
import tempfile
from collections.abc import Mapping, Sequence
from pathlib import Path
from types import TracebackType
from typing import Any

import numpy as np
import torch
from PIL import Image, UnidentifiedImageError

from paramviz.errors import ImageError, OutputExistsError, UnknownNameError

#: scikit-image sample photos usable by name wherever an image path is accepted (``sample:chelsea``).
SAMPLE_IMAGES = ("astronaut", "chelsea", "coffee", "rocket", "hubble_deep_field", "immunohistochemistry")
SAMPLE_PREFIX = "sample:"


def load_image(path: str | Path, size: int | None = None) -> torch.Tensor:
    """Read an image file (PNG, JPEG, ...) or ``sample:NAME`` as a (1, 3, H, W) tensor in [0, 1].

    Args:
        path: File path, or ``sample:NAME`` for a scikit-image sample photo (see :data:`SAMPLE_IMAGES`).
        size: If given, resize so that the long side is ``size`` pixels (aspect ratio kept, Lanczos).

    Raises:
        ImageError: Missing, unreadable or corrupt file, or a non-positive size.
    """
    if size is not None and size <= 0:
        raise ImageError(f"image size must be a positive number of pixels, got {size}")
    text = str(path)
    if text.startswith(SAMPLE_PREFIX):
        image = Image.fromarray(_sample_array(text[len(SAMPLE_PREFIX) :]))
    else:
        image = _open(Path(path))
    image = _to_rgb(image)
    if size is not None:
        w, h = image.size
        scale = size / max(w, h)
        new = (max(1, round(w * scale)), max(1, round(h * scale)))
        if new != image.size:
            image = image.resize(new, Image.Resampling.LANCZOS)
    return pil_to_tensor(image)


def _open(path: Path) -> Image.Image:
    if not path.exists():
        raise ImageError(f"image file {str(path)!r} does not exist")
    if path.is_dir():
        raise ImageError(f"{str(path)!r} is a directory; expected an image file (PNG, JPEG, ...)")
    try:
        image = Image.open(path)
        image.load()
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as exc:
        raise ImageError(
            f"cannot read image {str(path)!r}: {exc}; expected a valid PNG, JPEG, BMP, TIFF or WebP file"
        ) from None
    return image


def _to_rgb(image: Image.Image) -> Image.Image:
    """Convert any PIL mode to 8-bit RGB; 16-bit and float images are scaled, not clipped at 255."""
    if image.mode.startswith("I") or image.mode == "F":
        array = np.asarray(image, dtype=np.float64)
        if image.mode.startswith("I;16") or (image.mode == "I" and array.max(initial=0) <= 65535):
            array = array / 65535.0
        elif image.mode == "I" or array.max(initial=0) > 1:
            array = array / max(float(array.max(initial=0)), 1e-12)
        image = Image.fromarray(np.round(np.clip(array, 0, 1) * 255).astype(np.uint8), mode="L")
    return image.convert("RGB")


def _sample_array(name: str) -> np.ndarray:
    if name not in SAMPLE_IMAGES:
        raise UnknownNameError("sample image", name, SAMPLE_IMAGES, "use sample:NAME with a scikit-image photo")
    import skimage.data

    array = getattr(skimage.data, name)()
    if array.ndim == 2:
        array = np.stack([array] * 3, axis=-1)
    return array[..., :3]


def pil_to_tensor(image: Image.Image) -> torch.Tensor:
    """PIL RGB image -> (1, 3, H, W) float tensor in [0, 1]."""
    array = np.asarray(image.convert("RGB"), dtype=np.float32) / 255.0
    return torch.from_numpy(array.copy()).permute(2, 0, 1).unsqueeze(0)


def tensor_to_pil(image: torch.Tensor) -> Image.Image:
    """(3|4, H, W) or (1, 3|4, H, W) tensor in [0, 1] -> PIL RGB or RGBA image (values clamped, then rounded)."""
    if image.dim() == 4:
        if image.shape[0] != 1:
            raise ImageError(f"expected one image, got a batch of {image.shape[0]}; save them one by one")
        image = image[0]
    if image.dim() != 3 or image.shape[0] not in (3, 4):
        raise ImageError(f"expected an RGB or RGBA image tensor of shape (3|4, H, W), got {tuple(image.shape)}")
    array = image.detach().float().clamp(0, 1).mul(255).round().byte().permute(1, 2, 0).cpu().numpy()
    return Image.fromarray(array, mode="RGB" if image.shape[0] == 3 else "RGBA")


def save_image(image: torch.Tensor, path: str | Path) -> Path:
    """Write one image tensor to ``path`` (format from the suffix, PNG recommended)."""
    path = Path(path)
    tensor_to_pil(image).save(path)
    return path


def image_grid(images: torch.Tensor | Sequence[torch.Tensor], ncol: int | None = None, pad: int = 2) -> torch.Tensor:
    """Tile images (B, C, H, W) into one (C, H', W') grid with a white (opaque) ``pad``; sizes may differ."""
    items = list(images) if not isinstance(images, torch.Tensor) else list(images.unbind(0))
    items = [t[0] if t.dim() == 4 else t for t in items]
    if not items:
        raise ImageError("cannot make a grid of zero images")
    ncol = ncol or math.ceil(math.sqrt(len(items)))
    nrow = math.ceil(len(items) / ncol)
    h = max(t.shape[1] for t in items)
    w = max(t.shape[2] for t in items)
    grid = torch.ones(max(t.shape[0] for t in items), nrow * (h + pad) + pad, ncol * (w + pad) + pad)
    for i, t in enumerate(items):
        r, c = divmod(i, ncol)
        y, x = pad + r * (h + pad), pad + c * (w + pad)
        grid[:, y : y + t.shape[1], x : x + t.shape[2]] = t.detach().float().cpu()
    return grid


def check_output_dir(path: str | Path, force: bool = False) -> Path:
    """Raise :class:`OutputExistsError` if ``path`` is a non-empty directory and ``force`` is false.

    Call it before expensive work so that the user hears about it at once.
    """
    path = Path(path)
    if path.exists() and not path.is_dir():
        raise OutputExistsError(f"output path {str(path)!r} exists and is a file; choose a directory path")
    if path.is_dir() and any(path.iterdir()) and not force:
        raise OutputExistsError(
            f"output directory {str(path)!r} is not empty; choose another --out or pass --force to replace it"
        )
    return path


class OutputDir:
    """Write a run's files atomically into ``path``.

    Use as a context manager; inside, write with :meth:`save_image`, :meth:`write_json`, :meth:`write_text`.
    On success the temporary directory replaces ``path`` (an existing one only with ``force=True``);
    on an exception it is deleted and ``path`` is left as it was.

    Args:
        path: Final output directory.
        force: Replace a non-empty existing directory.
    """

    def __init__(self, path: str | Path, force: bool = False) -> None:
        # resolved, so that "." or "a/.." have a real name and parent for the temporary sibling
        self.final = check_output_dir(Path(path).expanduser().resolve(), force)
        self.force = force
        self.tmp: Path | None = None

    def __enter__(self) -> OutputDir:
        self.final.parent.mkdir(parents=True, exist_ok=True)
        self.tmp = Path(tempfile.mkdtemp(prefix=f".{self.final.name}.tmp-", dir=self.final.parent))
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if self.tmp is None:
            return
        tmp, self.tmp = self.tmp, None
        try:
            if exc_type is not None:
                return
            check_output_dir(self.final, self.force)  # something may have appeared there during the run
            if not self.final.exists():
                tmp.rename(self.final)
                return
            # The directory exists (empty, or replaced with force): swap its contents rather than the directory
            # itself, which may be the current directory of the user's shell.
            old = Path(tempfile.mkdtemp(prefix=f".{self.final.name}.old-", dir=self.final.parent))
            try:
                for child in list(self.final.iterdir()):
                    child.rename(old / child.name)
                for child in list(tmp.iterdir()):
                    child.rename(self.final / child.name)
            finally:
                shutil.rmtree(old, ignore_errors=True)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)

    def path(self, name: str) -> Path:
        """Path of ``name`` inside the (temporary) output directory; parent folders are created."""
        if self.tmp is None:
            raise RuntimeError("OutputDir must be used as a context manager")
        target = self.tmp / name
        target.parent.mkdir(parents=True, exist_ok=True)
        return target

    def save_image(self, name: str, image: torch.Tensor) -> Path:
        """Save an image tensor under ``name`` (e.g. ``"image.png"``)."""
        return save_image(image, self.path(name))

    def write_text(self, name: str, text: str) -> Path:
        """Write a UTF-8 text file."""
        target = self.path(name)
        target.write_text(text, encoding="utf-8")
        return target

    def write_json(self, name: str, data: Mapping[str, Any] | Sequence[Any]) -> Path:
        """Write JSON with indentation (NaN/inf are refused)."""
        return self.write_text(name, json.dumps(data, indent=2, allow_nan=False) + "\n")


def labeled_grid(
    rows: Sequence[Sequence[torch.Tensor]],
    row_labels: Sequence[str] = (),
    col_labels: Sequence[str] = (),
    pad: int = 4,
) -> Image.Image:
    """A PIL image of a table of images (each (3, H, W) in [0, 1]) with row and column labels.

    Args:
        rows: ``rows[r][c]`` is the image in row ``r``, column ``c``; images may differ in size.
        row_labels: One label per row, drawn left of the row.
        col_labels: One label per column, drawn above it.
        pad: White space between cells, in pixels.
    """
    from PIL import ImageDraw, ImageFont

    if not rows or not any(rows):
        raise ImageError("cannot make a grid of zero images")
    font = ImageFont.load_default()
    ncol = max(len(r) for r in rows)
    cell_w = max(t.shape[-1] for r in rows for t in r)
    cell_h = max(t.shape[-2] for r in rows for t in r)
    probe = ImageDraw.Draw(Image.new("RGB", (1, 1)))

    def text_size(text: str) -> tuple[int, int]:
        left, top, right, bottom = probe.textbbox((0, 0), text, font=font)
        return right - left, bottom - top

    label_w = max((text_size(t)[0] for t in row_labels), default=0) + (2 * pad if row_labels else 0)
    label_h = max((text_size(t)[1] for t in col_labels), default=0) + (2 * pad if col_labels else 0)
    width = label_w + ncol * (cell_w + pad) + pad
    height = label_h + len(rows) * (cell_h + pad) + pad
    canvas = Image.new("RGB", (width, height), "white")
    draw = ImageDraw.Draw(canvas)
    for c, text in enumerate(col_labels):
        draw.text((label_w + pad + c * (cell_w + pad), pad), text, fill="black", font=font)
    for r, row in enumerate(rows):
        y = label_h + pad + r * (cell_h + pad)
        if r < len(row_labels):
            draw.text(
                (pad, y + cell_h // 2 - text_size(row_labels[r])[1] // 2),
                row_labels[r],
                fill="black",
                font=font,
            )
        for c, tensor in enumerate(row):
            canvas.paste(tensor_to_pil(tensor), (label_w + pad + c * (cell_w + pad), y))
    return canvas
