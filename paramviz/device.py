"""Device selection: CPU everywhere, CUDA when present; never a global device."""

from __future__ import annotations

import torch

from paramviz.errors import ConfigError


def resolve_device(name: str | torch.device | None = "auto") -> torch.device:
    """Turn ``"auto"``/``None`` into CUDA when available else CPU; validate explicit names.

    Args:
        name: ``"auto"``, ``"cpu"``, ``"cuda"``, ``"cuda:N"``, ``"mps"`` or a ``torch.device``.

    Raises:
        ConfigError: An unknown device, or one this machine does not have.
    """
    if isinstance(name, torch.device):
        return name
    if name in (None, "", "auto"):
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(name)
    except (RuntimeError, TypeError):
        raise ConfigError(f"unknown device {name!r}; expected 'auto', 'cpu', 'cuda' or 'cuda:N'") from None
    if device.type not in ("cpu", "cuda", "mps"):
        raise ConfigError(f"device {name!r} cannot run paramviz; expected 'auto', 'cpu', 'cuda', 'cuda:N' or 'mps'")
    if device.type == "mps" and not torch.backends.mps.is_available():
        raise ConfigError(f"device {name!r} was requested but MPS is not available; use --device cpu or auto")
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ConfigError(f"device {name!r} was requested but CUDA is not available; use --device cpu or auto")
    if device.type == "cuda" and device.index is not None and device.index >= torch.cuda.device_count():
        raise ConfigError(
            f"device {name!r} does not exist; this machine has {torch.cuda.device_count()} CUDA device(s)"
        )
    return device


def move_ahead(tensor: torch.Tensor, device: torch.device | str) -> torch.Tensor:
    """``tensor`` (made on the host) on ``device``, copied without making the host wait.

    On CUDA the host tensor is pinned and copied asynchronously: a plain copy from pageable memory synchronizes
    the stream (it is one of the syncs ``torch.cuda.set_sync_debug_mode`` reports). Draws made ahead of the
    steps that read them go through here. Elsewhere this is ``tensor.to(device)``.
    """
    device = torch.device(device)
    if device.type == "cuda" and tensor.device.type == "cpu":
        return tensor.pin_memory().to(device, non_blocking=True)
    return tensor.to(device)
