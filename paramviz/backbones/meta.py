"""Running a network on PyTorch's meta device (shapes only): the probe of layers and the search for BatchNorm pairs.

The network's own weights are swapped for meta tensors with :func:`torch.func.functional_call`, and the forward
hooks its user registered are set aside for the run (they would see meta tensors), so nothing about the network
changes and nothing of the user's runs.
"""

from __future__ import annotations

import contextlib
from collections import OrderedDict
from collections.abc import Iterator

import torch
from torch import nn

#: The per-module tables of forward hooks that a meta run sets aside.
_FORWARD_HOOK_TABLES = (
    "_forward_hooks",
    "_forward_hooks_with_kwargs",
    "_forward_hooks_always_called",
    "_forward_pre_hooks",
    "_forward_pre_hooks_with_kwargs",
)


@contextlib.contextmanager
def hooks_set_aside(model: nn.Module) -> Iterator[None]:
    """Every module's forward hooks set aside for the block (hooks registered inside it are dropped after it)."""
    saved = []
    for module in model.modules():
        tables = {name: getattr(module, name) for name in _FORWARD_HOOK_TABLES if hasattr(module, name)}
        saved.append((module, tables))
        for name in tables:
            setattr(module, name, OrderedDict())
    try:
        yield
    finally:
        for module, tables in saved:
            for name, table in tables.items():
                setattr(module, name, table)


def run_on_meta(model: nn.Module, hw: tuple[int, int]) -> None:
    """Run ``model`` once on a (1, 3, H, W) input on the meta device; exceptions propagate.

    The input has the dtype of the model's first floating-point weight. Call it inside :func:`hooks_set_aside`
    (with the run's own hooks registered there) so that the user's hooks do not run.
    """
    dtype = next((p.dtype for p in model.parameters() if p.is_floating_point()), torch.get_default_dtype())
    x = torch.empty(1, 3, *hw, device="meta", dtype=dtype)
    with torch.no_grad():
        tensors = {
            k: v if v.is_meta else torch.empty_like(v, device="meta")
            for named in (model.named_parameters, model.named_buffers)
            for k, v in named(remove_duplicate=False)
        }
        torch.func.functional_call(model, tensors, (x,))
