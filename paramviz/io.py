"""Image files and output directories: the only module that reads or writes image files.

Images in paramviz are float tensors (B, 3, H, W) in [0, 1]. :class:`OutputDir` makes every run's outputs
appear at once: files are written into a hidden temporary folder and moved into place only when the run
succeeded, so a failed run leaves nothing half-written. Every output directory gets a manifest,
``.paramviz.json``, listing the files paramviz wrote; ``force`` replaces a directory only when it holds nothing
else, so ``--force`` can never delete a user's own files.
"""

from __future__ import annotations

import contextlib
import importlib.metadata
import json
import math
import os
import re
import shutil
import tempfile
import warnings
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from types import TracebackType
from typing import Any

import numpy as np
import torch
from PIL import Image, UnidentifiedImageError

from paramviz.errors import ConfigError, ImageError, OutputExistsError, OutputNotWritableError, UnknownNameError

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


def resize_center_crop(image: torch.Tensor, size: int | tuple[int, int]) -> torch.Tensor:
    """Resize (B, 3, h, w) to cover ``size`` (bilinear, antialiased, aspect kept), then center-crop to it.

    Args:
        image: Images in [0, 1].
        size: ``(H, W)``, or ``N`` for an ``N x N`` square.
    """
    height, width = (size, size) if isinstance(size, int) else (int(size[0]), int(size[1]))
    h, w = image.shape[-2:]
    scale = max(height / h, width / w)
    new = (max(height, round(h * scale)), max(width, round(w * scale)))
    if new != (h, w):
        image = torch.nn.functional.interpolate(image, size=new, mode="bilinear", antialias=True, align_corners=False)
    top, left = (new[0] - height) // 2, (new[1] - width) // 2
    return image[..., top : top + height, left : left + width].clamp(0, 1)


def _open(path: Path) -> Image.Image:
    if not path.exists():
        raise ImageError(f"image file {str(path)!r} does not exist")
    if path.is_dir():
        raise ImageError(f"{str(path)!r} is a directory; expected an image file (PNG, JPEG, ...)")
    try:
        with warnings.catch_warnings():
            # Pillow warns above MAX_IMAGE_PIXELS and refuses above twice that: refuse both, with the numbers
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            image = Image.open(path)
            image.load()
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        found = re.search(r"\((\d+) pixels\)", str(exc))
        pixels = f"{int(found.group(1)):,} pixels" if found else "more pixels than that"
        raise ImageError(
            f"image {str(path)!r} has {pixels}, more than the {Image.MAX_IMAGE_PIXELS:,} that Pillow opens safely "
            "(PIL.Image.MAX_IMAGE_PIXELS; larger files can be decompression bombs); scale it down below that (e.g. "
            "to 4096 px on its long side) and use the smaller copy"
        ) from None
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


# --- output directories ------------------------------------------------------------------------------------
MANIFEST = ".paramviz.json"
"""Name of the manifest file that every :class:`OutputDir` writes next to its outputs."""

_TMP_TAG = ".paramviz-tmp-"
_OLD_TAG = ".paramviz-old-"
_MAX_NAMED = 5


@dataclass(frozen=True)
class Manifest:
    """What paramviz wrote into an output directory (the content of its ``.paramviz.json``).

    Attributes:
        kind: What wrote it: ``"visualize"``, ``"style"``, ``"robustness"``, ``"demo"``, ``"sweep"``, ...
        files: Relative POSIX paths of every file written (folders are implied), nested manifests included.
        version: The paramviz version that wrote it.
    """

    kind: str
    files: tuple[str, ...]
    version: str = ""


def is_temporary_name(name: str) -> bool:
    """Whether ``name`` is one of the temporary files or folders paramviz writes while committing outputs."""
    return _TMP_TAG in name or _OLD_TAG in name


def _version() -> str:
    try:
        return importlib.metadata.version("paramviz")
    except importlib.metadata.PackageNotFoundError:  # pragma: no cover - running from a plain checkout
        return "unknown"


def _check_relative(name: str, where: Path) -> str:
    if not isinstance(name, str) or not name or name.startswith("/") or "\\" in name or ".." in name.split("/"):
        raise OutputExistsError(
            f"the manifest {str(where / MANIFEST)!r} lists {name!r}, which is not a plain relative path inside "
            "the directory; paramviz does not replace a directory with a damaged manifest: choose an empty or "
            "new --out"
        )
    return PurePosixPath(name).as_posix()


def read_manifest(path: str | Path) -> Manifest | None:
    """Read the manifest of an output directory; ``None`` when it has none (not written by paramviz).

    Raises:
        OutputExistsError: The manifest exists but is not valid (not JSON, wrong fields, paths outside the
            directory): such a directory is never replaced.
    """
    directory = Path(path)
    file = directory / MANIFEST
    if not file.is_file():
        return None
    try:
        data = json.loads(file.read_text(encoding="utf-8"))
        kind, files, version = data["kind"], data["files"], data.get("paramviz", "")
        if not isinstance(kind, str) or not isinstance(files, list) or not all(isinstance(f, str) for f in files):
            raise TypeError("'kind' must be text and 'files' a list of paths")
    except (OSError, UnicodeDecodeError, ValueError, KeyError, TypeError, AttributeError) as exc:
        raise OutputExistsError(
            f"the manifest {str(file)!r} cannot be read ({type(exc).__name__}: {exc}); paramviz does not replace "
            "a directory whose manifest is damaged: choose an empty or new --out"
        ) from None
    return Manifest(kind, tuple(_check_relative(f, directory) for f in files), str(version))


def write_text_atomic(target: str | Path, text: str) -> Path:
    """Replace ``target`` with ``text`` atomically; a crash leaves the old file whole.

    The text goes to a hidden temporary file beside it (see :func:`is_temporary_name`), is flushed to disk,
    then renamed over it.
    """
    target = Path(target)
    fd, tmp = tempfile.mkstemp(prefix=f"{_TMP_TAG}{target.name}-", dir=target.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, target)
        return target
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def write_manifest(path: str | Path, kind: str, files: Iterable[str]) -> Path:
    """Write (atomically: a temporary file, then a rename) the manifest of the output directory ``path``.

    Args:
        path: The output directory (it must exist).
        kind: What wrote it (``"sweep"``, ``"visualize"``, ...).
        files: Relative POSIX paths of the files paramviz wrote there (the manifest itself is not listed).

    Returns:
        The manifest's path.
    """
    directory = Path(path)
    listed = sorted({_check_relative(str(f), directory) for f in files} - {MANIFEST})
    data = {"paramviz": _version(), "kind": kind, "files": listed}
    target = directory / MANIFEST
    write_text_atomic(target, json.dumps(data, indent=2) + "\n")
    return target


def add_to_manifest(path: str | Path, files: Iterable[str], kind: str | None = None) -> Manifest:
    """Add ``files`` to the manifest of ``path`` (created if missing), atomically; for incremental writers.

    A sweep runner owns its directory: it calls :func:`prepare_output_dir` once, writes each arm with
    ``OutputDir(sweep / "arms" / arm_id, record_in=sweep)`` (which calls this function on success), and its own
    summary files with :func:`add_to_manifest` after writing them.

    Args:
        path: The directory whose manifest is updated.
        files: Relative POSIX paths to add.
        kind: The manifest's kind (default: the existing manifest's, else ``"run"``).
    """
    old = read_manifest(path)
    merged = set(old.files if old else ()) | {str(f) for f in files}
    kind = kind or (old.kind if old else "run")
    write_manifest(path, kind, merged)
    return Manifest(kind, tuple(sorted(merged - {MANIFEST})), _version())


def _foreign_entries(root: Path, files: Iterable[str], ignore: Iterable[str] = ()) -> list[str]:
    """Entries under ``root`` that are neither the manifest, a listed file, nor a folder of listed files."""
    listed = set(files)
    folders = {parent.as_posix() for f in listed for parent in PurePosixPath(f).parents if parent.as_posix() != "."}
    skip = set(ignore) | {MANIFEST}
    foreign: list[str] = []

    def walk(folder: Path, prefix: str) -> None:
        with os.scandir(folder) as entries:
            for entry in sorted(entries, key=lambda e: e.name):
                rel = prefix + entry.name
                if rel in skip:
                    continue
                if entry.is_dir(follow_symlinks=False):
                    if rel in folders:
                        walk(Path(entry.path), rel + "/")
                    else:
                        foreign.append(rel + "/")
                elif rel not in listed:
                    foreign.append(rel)

    walk(root, "")
    return foreign


def _named(entries: Sequence[str]) -> str:
    shown = ", ".join(repr(e) for e in entries[:_MAX_NAMED])
    more = len(entries) - _MAX_NAMED
    return shown + (f" and {more} more" if more > 0 else "")


def _check_owned(path: Path, ignore: Iterable[str] = ()) -> Manifest | None:
    """Raise unless everything in the non-empty directory ``path`` was written by paramviz (its manifest)."""
    manifest = read_manifest(path)
    if manifest is None:
        entries = sorted(e.name + ("/" if e.is_dir() else "") for e in path.iterdir() if e.name not in set(ignore))
        raise OutputExistsError(
            f"output directory {str(path)!r} is not empty ({_named(entries)}) and was not written by paramviz: it "
            f"has no {MANIFEST} manifest (paramviz lists the files it writes there; outputs from before paramviz kept "
            "manifests have none). "
            "--force only replaces files that paramviz itself wrote; choose an empty or new --out (or delete the "
            "directory's contents yourself)"
        )
    foreign = _foreign_entries(path, manifest.files, ignore)
    if foreign:
        raise OutputExistsError(
            f"output directory {str(path)!r} holds {len(foreign)} entr{'y' if len(foreign) == 1 else 'ies'} that "
            f"paramviz did not write: {_named(foreign)}. --force only replaces a directory paramviz wrote (every "
            f"entry listed in its {MANIFEST}); choose an empty or new --out"
        )
    return manifest


def _read_only_fs(path: Path) -> bool:
    try:
        return bool(os.statvfs(path).f_flag & os.ST_RDONLY)
    except (AttributeError, OSError):  # pragma: no cover - no statvfs (Windows)
        return False


def _check_writable(directory: Path, target: Path) -> None:
    if not os.access(directory, os.W_OK | os.X_OK) or _read_only_fs(directory):
        what = "the output directory" if directory == target else f"{str(directory)!r}, where it would be created,"
        raise OutputNotWritableError(
            f"cannot write to output directory {str(target)!r}: {what} is not writable (read-only or no "
            "permission); choose another --out"
        )


def _check_path_text(path: str | Path) -> None:
    if isinstance(path, str) and not path.strip():
        raise ConfigError(
            "the output directory is empty (--out ''); give a directory path such as --out out/run "
            "(--out . writes into the current directory)"
        )


def check_output_dir(path: str | Path, force: bool = False) -> Path:
    """Check before any work that ``path`` can receive a run's outputs; return it as a :class:`Path`.

    A missing or empty directory is fine (the nearest existing folder above a missing one must be writable).
    A non-empty one is refused unless ``force``; with ``force`` it must hold only files that paramviz wrote:
    its manifest (``.paramviz.json``), the files that it lists and their folders. Call it before expensive
    work so that the user hears about a bad ``--out`` at once.

    Raises:
        ConfigError: ``path`` is the empty string.
        OutputExistsError: A file is at ``path``, or the directory is not empty (without ``force``), or it
            holds anything paramviz did not write (with ``force``; up to five such entries are named).
        OutputNotWritableError: The directory, or the folder where it would be created, is not writable, or
            a file is in the way.
    """
    _check_path_text(path)
    path = Path(path).expanduser()
    if path.exists():
        if not path.is_dir():
            raise OutputExistsError(f"output path {str(path)!r} exists and is a file; choose a directory path")
        try:
            non_empty = any(path.iterdir())
        except OSError as exc:
            raise OutputNotWritableError(
                f"cannot read output directory {str(path)!r} ({exc.strerror or exc}); choose another --out"
            ) from None
        if non_empty and not force:
            raise OutputExistsError(
                f"output directory {str(path)!r} is not empty; choose another --out, or pass --force to replace "
                "the outputs of an earlier paramviz run there"
            )
        if non_empty:
            _check_owned(path)
        _check_writable(path, path)
        return path
    ancestor = path.parent
    while not ancestor.exists() and ancestor != ancestor.parent:
        ancestor = ancestor.parent
    if not ancestor.is_dir():
        raise OutputNotWritableError(
            f"cannot create output directory {str(path)!r}: {str(ancestor)!r} is a file, not a folder; choose "
            "another --out"
        )
    _check_writable(ancestor, path)
    return path


def prepare_output_dir(path: str | Path, force: bool = False, *, kind: str = "sweep") -> Path:
    """Make ``path`` an (empty) output directory owned by paramviz, for writers that add files over time.

    Unlike :class:`OutputDir` (all files appear at once), a sweep writes its arms one by one: call this once,
    then write each arm with ``OutputDir(path / "arms" / arm_id, record_in=path)`` and add summary files with
    :func:`add_to_manifest`. With ``force`` the files listed by the directory's manifest are deleted (nothing
    else is touched; the checks of :func:`check_output_dir` ran first), then an empty manifest of ``kind`` is
    written.

    Returns:
        The resolved directory path.
    """
    _check_path_text(path)
    directory = check_output_dir(Path(path).expanduser().resolve(), force)
    manifest = read_manifest(directory) if directory.is_dir() else None
    if manifest is not None:
        folders: set[Path] = set()
        for name in manifest.files:
            target = directory / name
            if target.is_file() or target.is_symlink():
                target.unlink()
            folders.update(p for p in target.parents if p != directory and directory in p.parents)
        for folder in sorted(folders, key=lambda p: len(p.parts), reverse=True):
            with contextlib.suppress(OSError):
                folder.rmdir()  # only if empty: never removes anything not listed
    directory.mkdir(parents=True, exist_ok=True)
    write_manifest(directory, kind, ())
    return directory


def _files_under(root: Path) -> list[str]:
    return sorted(p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file() or p.is_symlink())


class OutputDir:
    """Write a run's files atomically into ``path``, with a manifest of what was written.

    Use as a context manager; inside, write with :meth:`save_image`, :meth:`write_json`, :meth:`write_text` or
    into :meth:`path`. Files go to a hidden temporary folder (inside ``path`` when it exists, else next to it);
    on success a manifest ``.paramviz.json`` listing every file is added and the files are moved into ``path``
    (an earlier paramviz output there is replaced only with ``force=True``, and only when it holds nothing but
    the files its manifest lists); on an exception the temporary folder is deleted and ``path`` is left as it
    was. Output directories nest: an ``OutputDir`` for ``outer.path("a/b")`` writes its own manifest, which the
    outer one lists with the rest.

    Args:
        path: Final output directory.
        force: Replace an earlier paramviz output in ``path``.
        kind: What is written, recorded in the manifest (``"visualize"``, ``"style"``, ...).
        record_in: An enclosing directory owned by paramviz (e.g. a sweep's, see :func:`prepare_output_dir`)
            whose manifest gets this directory's files added on success.

    Attributes:
        final: The resolved output directory.
        files: After a successful exit, the relative paths of the files written (manifest included).
    """

    def __init__(
        self, path: str | Path, force: bool = False, *, kind: str = "run", record_in: str | Path | None = None
    ) -> None:
        _check_path_text(path)
        # resolved, so that "." or "a/.." have a real name and parent for the temporary folder
        self.final = check_output_dir(Path(path).expanduser().resolve(), force)
        self.force = force
        self.kind = kind
        self.record_in = None if record_in is None else Path(record_in).expanduser().resolve()
        if self.record_in is not None and self.record_in not in self.final.parents:
            raise ConfigError(f"record_in {str(self.record_in)!r} must be a folder above {str(self.final)!r}")
        self.files: list[str] = []
        self.tmp: Path | None = None

    def __enter__(self) -> OutputDir:
        if self.final.is_dir():
            self.tmp = Path(tempfile.mkdtemp(prefix=_TMP_TAG, dir=self.final))
        else:
            self.final.parent.mkdir(parents=True, exist_ok=True)
            self.tmp = Path(tempfile.mkdtemp(prefix=f".{self.final.name}{_TMP_TAG}", dir=self.final.parent))
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
            files = [f for f in _files_under(tmp) if f != MANIFEST]
            write_manifest(tmp, self.kind, files)
            self._commit(tmp)
            self.files = [*files, MANIFEST]
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
        if self.record_in is not None:
            prefix = self.final.relative_to(self.record_in).as_posix()
            add_to_manifest(self.record_in, [f"{prefix}/{f}" for f in self.files])

    def _commit(self, tmp: Path) -> None:
        inside = tmp.parent == self.final
        if not self.final.exists():
            tmp.rename(self.final)
            return
        # Something may have appeared there during the run: check again, ignoring our own temporary folder.
        ours = {tmp.name} if inside else set()
        others = [c for c in self.final.iterdir() if c.name not in ours]
        if others and not self.force:
            raise OutputExistsError(
                f"output directory {str(self.final)!r} filled up during the run "
                f"({_named(sorted(c.name for c in others))}); nothing was replaced: choose another --out"
            )
        if others:
            _check_owned(self.final, ignore=ours)
        # Swap the contents rather than the directory itself, which may be the current directory of the user's
        # shell; the old files are moved aside first and restored if a move fails.
        old = Path(tempfile.mkdtemp(prefix=_OLD_TAG, dir=self.final))
        moved_old: list[str] = []
        moved_new: list[str] = []
        try:
            for child in others:
                child.rename(old / child.name)
                moved_old.append(child.name)
            for child in list(tmp.iterdir()):
                child.rename(self.final / child.name)
                moved_new.append(child.name)
        except BaseException:
            for name in moved_new:
                with contextlib.suppress(OSError):
                    (self.final / name).rename(tmp / name)
            for name in moved_old:
                with contextlib.suppress(OSError):
                    (old / name).rename(self.final / name)
            raise
        finally:
            shutil.rmtree(old, ignore_errors=True)

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
    rgba = any(t.shape[-3] == 4 for r in rows for t in r)  # transparent images keep their alpha in the grid
    canvas = Image.new("RGBA" if rgba else "RGB", (width, height), "white")
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


def captioned_grid(
    images: Sequence[torch.Tensor], captions: Sequence[str], ncol: int | None = None, pad: int = 4
) -> Image.Image:
    """A PIL contact sheet: the images (each (3|4, H, W) in [0, 1]) in rows of ``ncol``, each captioned below.

    Args:
        images: The images; sizes may differ (cells take the largest).
        captions: One caption per image.
        ncol: Images per row (default: about the square root of their number).
        pad: White space between cells, in pixels.
    """
    from PIL import ImageDraw, ImageFont

    if not images:
        raise ImageError("cannot make a contact sheet of zero images")
    if len(captions) != len(images):
        raise ImageError(f"got {len(captions)} captions for {len(images)} images; give one caption per image")
    font = ImageFont.load_default()
    ncol = ncol or math.ceil(math.sqrt(len(images)))
    nrow = math.ceil(len(images) / ncol)
    cell_w = max(t.shape[-1] for t in images)
    cell_h = max(t.shape[-2] for t in images)
    probe = ImageDraw.Draw(Image.new("RGB", (1, 1)))
    text_h = max(probe.textbbox((0, 0), c or " ", font=font)[3] for c in captions) + pad
    rgba = any(t.shape[-3] == 4 for t in images)
    canvas = Image.new(
        "RGBA" if rgba else "RGB", (ncol * (cell_w + pad) + pad, nrow * (cell_h + text_h + pad) + pad), "white"
    )
    draw = ImageDraw.Draw(canvas)
    for i, (tensor, caption) in enumerate(zip(images, captions, strict=True)):
        r, c = divmod(i, ncol)
        x, y = pad + c * (cell_w + pad), pad + r * (cell_h + text_h + pad)
        canvas.paste(tensor_to_pil(tensor), (x, y))
        draw.text((x, y + cell_h + pad // 2), caption, fill="black", font=font)
    return canvas
