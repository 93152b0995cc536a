"""Weights resolution: the torch hub cache, safe loading of local files, and loading state dicts into models.

Pretrained weights are resolved the way torchvision does it: the file ``<torch hub dir>/checkpoints/<file>``
(``torch.hub.get_dir()``, moved by ``TORCH_HOME``) is used when present, otherwise it is downloaded once.
When the download fails (offline machine), :class:`~paramviz.errors.WeightsError` names the file, where it is
expected, the URL, and the ways out.

Local files are loaded without running code: ``.pt/.pth/.bin`` (and other torch files) with
``torch.load(weights_only=True)``, ``.safetensors`` with ``safetensors``. A pickle that needs full unpickling
raises :class:`~paramviz.errors.UnsafeCheckpointError` unless ``trust=True`` is passed explicitly.
"""

from __future__ import annotations

import os
import pickle
import pickletools
import warnings
import zipfile
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import IO, Any
from urllib.parse import urlparse

import torch
from torch import nn

from paramviz.errors import ConfigError, UnsafeCheckpointError, WeightsError

FIX_HINT = "pass a local copy with `--weights PATH` (weights=PATH), or use `--weights random` for random initialization"
#: Keys that hold the real state dict in common checkpoint layouts, tried in this order.
NESTED_KEYS = ("state_dict", "model", "model_state_dict", "module")
#: Module prefixes that wrappers (DataParallel, the Backbone itself) add to every key.
STRIP_PREFIXES = ("module.", "model.")
_SAFE_GLOBAL_PREFIXES = ("torch.", "collections.OrderedDict", "_codecs.encode", "builtins.")
_MAX_LISTED = 5


# --- downloads -------------------------------------------------------------------------------------------
def hub_checkpoint_dir() -> Path:
    """The directory where torchvision caches weights: ``torch.hub.get_dir()/checkpoints``."""
    return Path(torch.hub.get_dir()) / "checkpoints"


def download_file(url: str, dst: Path, hash_prefix: str | None = None) -> None:
    """Download ``url`` to ``dst`` atomically (torch hub's downloader, with a progress bar)."""
    torch.hub.download_url_to_file(url, str(dst), hash_prefix, progress=True)


def cached_download(url: str, filename: str | None = None, *, name: str = "", check_hash: bool = True) -> Path:
    """Return the torch hub cache path of ``filename``, downloading it from ``url`` on first use.

    Args:
        url: Where the file is published.
        filename: File name in the cache (default: the URL's last path component).
        name: What the weights are for (``"backbone 'vgg19'"``), used in error messages.
        check_hash: Verify the hash prefix embedded in torchvision-style names (``vgg19-dcbb9e9d.pth``).

    Raises:
        WeightsError: The file is not cached and cannot be downloaded; the message names the file, the cache
            path, the URL and the fixes.
    """
    filename = filename or os.path.basename(urlparse(url).path)
    cache_dir = hub_checkpoint_dir()
    path = cache_dir / filename
    if path.is_file():
        return path
    match = torch.hub.HASH_REGEX.search(filename) if check_hash else None
    try:
        cache_dir.mkdir(parents=True, exist_ok=True)
        download_file(url, path, match.group(1) if match else None)
    except Exception as exc:  # offline, HTTP error, hash mismatch, read-only cache ...
        what = f" of {name}" if name else ""
        raise WeightsError(
            f"could not download the pretrained weights{what}: {type(exc).__name__}: {exc}. "
            f"The weights file {filename!r} is expected at {path} (torch hub cache; TORCH_HOME moves it) and "
            f"is downloaded from {url} on first use. Fix: download {url} on a machine with internet access and "
            f"put the file at {path}, or {FIX_HINT}."
        ) from exc
    return path


# --- reading files ---------------------------------------------------------------------------------------
def read_checkpoint(path: str | os.PathLike[str], *, trust: bool = False) -> Any:
    """Read a weights file without unwrapping it (a state dict, or a checkpoint dict around one).

    Args:
        path: ``.safetensors`` file, or a file written by ``torch.save`` (``.pt``, ``.pth``, ``.bin``, ...).
        trust: Allow full unpickling for files that ``weights_only=True`` refuses. Full unpickling can run
            arbitrary code: only for files from a source you trust.

    Raises:
        WeightsError: Missing file, a directory, or a file that is not a checkpoint.
        UnsafeCheckpointError: The file needs full unpickling and ``trust`` is false.
    """
    if not isinstance(trust, bool):
        raise ConfigError(f"trust_checkpoint must be true or false, got {trust!r} ({type(trust).__name__})")
    path = Path(path).expanduser()
    if not path.exists():
        raise WeightsError(f"weights file {str(path)!r} does not exist; {FIX_HINT}")
    if not path.is_file():
        raise WeightsError(f"weights path {str(path)!r} is a directory, not a weights file")
    if path.suffix == ".safetensors":
        from safetensors import SafetensorError
        from safetensors.torch import load_file

        try:
            return load_file(str(path), device="cpu")
        except (SafetensorError, OSError, ValueError) as exc:
            raise WeightsError(f"weights file {str(path)!r} is not a valid safetensors file: {exc}") from exc
    try:
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message="Detected pickle protocol", category=UserWarning)
            return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:
        safe_error = exc
    globals_ = _referenced_globals(path)
    if globals_ is None:
        raise WeightsError(
            f"weights file {str(path)!r} is neither a PyTorch checkpoint (written by torch.save) nor a "
            "safetensors file; it may be truncated or in another format"
            + ("" if isinstance(safe_error, pickle.UnpicklingError) else f" ({_first_line(safe_error)})")
        ) from safe_error
    if not trust:
        unsafe = [g for g in globals_ if not g.startswith(_SAFE_GLOBAL_PREFIXES)]
        why = (
            f"it references {', '.join(sorted(set(unsafe))[:_MAX_LISTED])}"
            if unsafe
            else "it was not written in a format the safe loader reads"
        )
        raise UnsafeCheckpointError(
            f"refusing to load {str(path)!r}: the safe loader (torch.load with weights_only=True) cannot read "
            f"it because {why}. Reading it needs full unpickling, which can execute arbitrary code stored in "
            "the file. If you trust the file's source, pass `--trust-checkpoint` (trust_checkpoint=True) to "
            "load it with full unpickling; otherwise convert it to .safetensors on a machine you trust."
        ) from safe_error
    try:
        return torch.load(path, map_location="cpu", weights_only=False)
    except Exception as exc:
        raise WeightsError(f"weights file {str(path)!r} could not be read: {type(exc).__name__}: {exc}") from exc


def load_state_dict_file(path: str | os.PathLike[str], *, trust: bool = False) -> dict[str, torch.Tensor]:
    """Read a weights file and return its flat ``{key: tensor}`` state dict.

    Checkpoint dicts that nest the state dict under ``state_dict``/``model`` (or ``model_state_dict``,
    ``module``) are unwrapped; a whole pickled ``nn.Module`` (trusted files only) gives its ``state_dict()``.
    See :func:`read_checkpoint` for formats, safety and errors.
    """
    return unwrap_state_dict(read_checkpoint(path, trust=trust), source=str(path))


def unwrap_state_dict(obj: Any, *, source: str = "checkpoint") -> dict[str, torch.Tensor]:
    """Find the flat ``{key: tensor}`` state dict inside a loaded checkpoint object.

    Raises:
        WeightsError: No state dict found, or it holds values that are not tensors.
    """
    if isinstance(obj, nn.Module):
        obj = obj.state_dict()
    for _ in range(4):
        if not isinstance(obj, Mapping):
            break
        nested = next((obj[k] for k in NESTED_KEYS if isinstance(obj.get(k), (Mapping, nn.Module))), None)
        if nested is None:
            break
        obj = nested.state_dict() if isinstance(nested, nn.Module) else nested
    if not isinstance(obj, Mapping) or not obj:
        raise WeightsError(f"{source} does not contain a state dict (got {type(obj).__name__})")
    bad = [str(k) for k, v in obj.items() if not isinstance(v, torch.Tensor)]
    if bad:
        raise WeightsError(
            f"{source} is not a state dict: entries {', '.join(map(repr, bad[:_MAX_LISTED]))} are not "
            f"tensors (top-level keys: {', '.join(map(repr, list(obj)[:8]))})"
        )
    return {str(k): v for k, v in obj.items()}


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else "empty or truncated file"


def _referenced_globals(path: Path) -> list[str] | None:
    """Globals named by the file's pickle(s), read with ``pickletools`` (nothing is executed).

    Returns ``None`` when the file holds no readable pickle at all (garbage, empty, corrupt archive).
    """
    try:
        if zipfile.is_zipfile(path):
            with zipfile.ZipFile(path) as archive:
                pkl = next((n for n in archive.namelist() if n.endswith("data.pkl")), None)
                if pkl is None:
                    return None
                with archive.open(pkl) as stream:
                    return _scan_pickles(stream, max_pickles=1)
        with path.open("rb") as stream:
            return _scan_pickles(stream, max_pickles=4)  # legacy torch format: 4 pickles, then raw storages
    except (OSError, zipfile.BadZipFile):
        return None


def _scan_pickles(stream: IO[bytes], max_pickles: int) -> list[str] | None:
    found: list[str] = []
    parsed = 0
    for _ in range(max_pickles):
        strings: list[str] = []
        try:
            for opcode, arg, _pos in pickletools.genops(stream):
                if opcode.name == "GLOBAL":
                    found.append(str(arg).replace(" ", "."))
                elif opcode.name == "STACK_GLOBAL" and len(strings) >= 2:
                    found.append(f"{strings[-2]}.{strings[-1]}")
                elif isinstance(arg, str):
                    strings.append(arg)
        except (ValueError, EOFError, pickle.UnpicklingError, UnicodeDecodeError, OverflowError):
            break
        parsed += 1
    return found if parsed else None


# --- loading into a model -------------------------------------------------------------------------------
def load_into(
    model: nn.Module,
    state_dict: Mapping[str, torch.Tensor],
    *,
    source: str,
    name: str = "model",
    ignore_prefixes: Iterable[str] = (),
) -> None:
    """Load ``state_dict`` into ``model`` strictly, with errors that say which keys do not match.

    A prefix that wraps every key (``module.`` from DataParallel, ``model.`` from a saved
    :class:`~paramviz.backbones.base.Backbone`) is stripped when that makes the keys match.

    Args:
        model: The network to fill.
        state_dict: Flat ``{key: tensor}``.
        source: The file or URL, named in errors.
        name: The backbone, named in errors.
        ignore_prefixes: Keys in the file starting with these are dropped (e.g. auxiliary heads).

    Raises:
        WeightsError: Missing or unexpected keys, or tensors whose shapes differ from the model's.
    """
    expected = model.state_dict()
    ignore = tuple(ignore_prefixes)
    state = _match_prefix({k: v for k, v in state_dict.items()}, set(expected))
    state = {k: v for k, v in state.items() if not (ignore and k.startswith(ignore))}
    missing = [k for k in expected if k not in state and not k.endswith("num_batches_tracked")]
    unexpected = [k for k in state if k not in expected]
    shapes = [
        f"{k} {tuple(v.shape)} vs model {tuple(expected[k].shape)}"
        for k, v in state.items()
        if k in expected and v.shape != expected[k].shape
    ]
    if missing or unexpected or shapes:
        parts = []
        if missing:
            parts.append(f"{len(missing)} missing key(s) such as {_listed(missing)}")
        if unexpected:
            parts.append(f"{len(unexpected)} unexpected key(s) such as {_listed(unexpected)}")
        if shapes:
            parts.append(f"{len(shapes)} shape mismatch(es): {'; '.join(shapes[:_MAX_LISTED])}")
        raise WeightsError(
            f"weights {source!r} do not fit backbone {name!r}: {', '.join(parts)}. "
            "Check that the file was saved from the same architecture (a model's state_dict)."
        )
    model.load_state_dict(state, strict=False)  # strictness checked above (num_batches_tracked may be absent)


def _listed(keys: list[str]) -> str:
    return ", ".join(repr(k) for k in keys[:_MAX_LISTED])


def _match_prefix(state: dict[str, torch.Tensor], expected: set[str]) -> dict[str, torch.Tensor]:
    """Strip wrapper prefixes (repeatedly) while that brings the keys closer to ``expected``."""
    for _ in range(3):
        if set(state) >= expected - {k for k in expected if k.endswith("num_batches_tracked")}:
            return state
        for prefix in STRIP_PREFIXES:
            inner = {k[len(prefix) :]: v for k, v in state.items() if k.startswith(prefix)}
            # a saved Backbone also holds its normalization buffers next to ``model.*``
            rest = [k for k in state if not k.startswith(prefix) and k not in ("mean", "std")]
            if inner and not rest and len(set(inner) & expected) > len(set(state) & expected):
                state = inner
                break
        else:
            return state
    return state


def resolve_weights(
    model: nn.Module,
    weights: str,
    *,
    name: str,
    pretrained: Callable[[], tuple[Mapping[str, torch.Tensor], str]],
    trust: bool = False,
    convert: Callable[[dict[str, torch.Tensor]], Mapping[str, torch.Tensor]] | None = None,
    ignore_prefixes: Iterable[str] = (),
) -> str:
    """Fill ``model`` according to a ``weights`` argument and describe where the weights came from.

    Args:
        model: A freshly built (randomly initialized) network.
        weights: ``"random"``, ``"pretrained"`` or a local file path.
        name: Backbone name for messages.
        pretrained: Returns ``(state_dict, description)`` of the pretrained weights (may download).
        trust: Allow full unpickling of a local file (see :func:`read_checkpoint`).
        convert: Optional key conversion for local files (e.g. a foreign key layout).
        ignore_prefixes: File keys to drop (see :func:`load_into`).

    Returns:
        Text for :attr:`Backbone.weights_source`: ``"random"``, the pretrained description, or
        ``"file <path>"``.
    """
    if weights == "random":
        return "random"
    if weights == "pretrained":
        state, description = pretrained()
        load_into(model, state, source=description, name=name, ignore_prefixes=ignore_prefixes)
        return description
    state = load_state_dict_file(weights, trust=trust)
    if convert is not None:
        state = dict(convert(state))
    load_into(model, state, source=weights, name=name, ignore_prefixes=ignore_prefixes)
    return f"file {weights}"
