"""A CPU stand-in for ``torch.cuda.set_sync_debug_mode("error")``: flag every host read of a device value.

On CUDA a steady-state render step must not make the host wait for the device. Without a GPU the same mistakes
can be caught on CPU: a step synchronizes when Python reads a value the device holds (``float(loss)``,
``bool(finite)``, ``.item()``, ``.tolist()``, ``.cpu()``, ``.numpy()``), copies one into a host tensor, copies a
host tensor to the device without ``non_blocking`` (from pageable memory CUDA waits for that copy), or runs an op
whose output size depends on the data (``nonzero``, boolean-mask indexing, ``unique``, ...).

:class:`HostReadGuard` simulates where each tensor lives, as CUDA would place it. Made on the host: what a factory
makes (``torch.tensor``, ``torch.randint`` with a CPU generator, ...), what ``Tensor.cpu()`` returns, and what
is computed from host tensors alone (the render loop keeps crop offsets there, so that slicing by them needs no
synchronization; Adam keeps its step count there). On the device: tensors made before the guard (parameters,
buffers), what ``Tensor.to(device)`` returns, and whatever is computed from a device tensor. While
:attr:`HostReadGuard.enforcing` is on, a read of a device value raises :class:`HostRead` naming the op.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import torch
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils._pytree import tree_leaves

aten = torch.ops.aten

# Ops that read tensor values on the host (or size their output by them): each synchronizes CUDA.
SYNCING_OPS = {
    aten._local_scalar_dense.default,  # .item(), float(), int(), bool() (through is_nonzero)
    aten.is_nonzero.default,
    aten.nonzero.default,
    aten.equal.default,
    aten.masked_select.default,
    aten._unique2.default,
    aten.unique_dim.default,
    aten.unique_consecutive.default,
    aten.repeat_interleave.Tensor,
}
# Indexing ops that run ``nonzero`` on a boolean index inside their kernel.
MASK_INDEXING = {aten.index.Tensor, aten.index_put.default, aten.index_put_.default, aten._index_put_impl_.default}
# Tensor methods that read a CPU tensor's values without a dispatched op.
HOST_READS = ("tolist", "numpy", "__array__")


class HostRead(AssertionError):
    """A read that would synchronize a CUDA device."""


def _storage(t: torch.Tensor) -> int | None:
    try:
        return t.untyped_storage().data_ptr() or None
    except (RuntimeError, NotImplementedError):
        return None


def _tensors(tree: Any) -> list[torch.Tensor]:
    return [t for t in tree_leaves(tree) if isinstance(t, torch.Tensor)]


def _has_mask(args: tuple, kwargs: dict) -> bool:
    indices = _tensors((args[1:], kwargs.get("indices")))
    return any(t.dtype in (torch.bool, torch.uint8) for t in indices)


class HostReadGuard(TorchDispatchMode):
    """Track which tensors live on the host; while enforcing, raise :class:`HostRead` on a read of any other.

    Use as a context manager around the whole render (so the draws it keeps on the host are seen being put
    there) and turn enforcing on for the steady-state steps, e.g. with :meth:`steps` as a render callback.
    """

    def __init__(self) -> None:
        super().__init__()
        self.host: set[int] = set()
        self.enforcing = False
        self.guarded_steps = 0
        self._saved: dict[str, Any] = {}

    def _on_host(self, t: torch.Tensor) -> bool:
        return _storage(t) in self.host

    def _check(self, what: str, tensors: list[torch.Tensor]) -> None:
        if not self.enforcing:
            return
        for t in tensors:
            if not self._on_host(t):
                raise HostRead(f"{what} reads a value on the device (shape {tuple(t.shape)}, {t.dtype})")

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        inputs = _tensors((args, kwargs))
        if func in SYNCING_OPS or (func in MASK_INDEXING and _has_mask(args, kwargs)):
            self._check(str(func), inputs)
        if func is aten.copy_.default and self._on_host(args[0]):
            self._check("a copy into a host tensor", [args[1]])
        out = func(*args, **kwargs)
        written = [
            t
            for i, argument in enumerate(func._schema.arguments)
            if argument.alias_info is not None and argument.alias_info.is_write
            for t in _tensors(args[i] if i < len(args) else kwargs.get(argument.name))
        ]
        results = written + _tensors(out)
        if func is aten.lift_fresh.default or all(map(self._on_host, inputs)):  # a factory: made on the host
            self.host.update(p for p in map(_storage, results) if p is not None)
        else:
            self.host.difference_update(map(_storage, results))
        return out

    def __enter__(self) -> HostReadGuard:
        for name in HOST_READS:
            original = self._saved[name] = getattr(torch.Tensor, name)

            def guarded(t, *args, _name=name, _original=original, **kwargs):
                self._check(f"Tensor.{_name}()", [t])
                return _original(t, *args, **kwargs)

            setattr(torch.Tensor, name, guarded)
        original_cpu = self._saved["cpu"] = torch.Tensor.cpu

        def guarded_cpu(t, *args, **kwargs):
            self._check("Tensor.cpu()", [t])
            out = original_cpu(t, *args, **kwargs)
            if (p := _storage(out)) is not None:
                self.host.add(p)
            return out

        torch.Tensor.cpu = guarded_cpu
        original_to = self._saved["to"] = torch.Tensor.to

        def guarded_to(t, *args, **kwargs):  # a move to the (CPU-simulated) device: the result is a device value
            device, _, non_blocking, _ = torch._C._nn._parse_to(*args, **kwargs)
            if device is not None and not non_blocking and self._on_host(t) and self.enforcing:
                raise HostRead(f"Tensor.to({device}) copies a host tensor to the device and waits for it")
            out = original_to(t, *args, **kwargs)
            if device is not None:
                self.host.discard(_storage(out))
            return out

        torch.Tensor.to = guarded_to
        return super().__enter__()

    def __exit__(self, *exc: object) -> None:
        for name, original in self._saved.items():
            setattr(torch.Tensor, name, original)
        self._saved.clear()
        self.enforcing = False
        return super().__exit__(*exc)

    def steps(self, first: int, last: int):
        """A render callback that enforces from after step ``first`` until step ``last`` (1-based)."""

        def callback(record: Any) -> None:
            if self.enforcing:
                self.guarded_steps += 1
            self.enforcing = first <= record.step < last

        return callback


#: Devices to run a no-synchronization check on: the CPU stand-in always, CUDA's own sync-debug mode on a GPU.
DEVICES = ["cpu", pytest.param("cuda", marks=pytest.mark.skipif(not torch.cuda.is_available(), reason="no GPU"))]


@contextlib.contextmanager
def no_sync_between(first: int, last: int, device: str) -> Iterator[Callable[[Any], None]]:
    """A render callback under which steps ``first + 1`` to ``last`` must make no host-device synchronization.

    On CUDA the steps run under ``torch.cuda.set_sync_debug_mode("error")`` (a sync raises ``RuntimeError``);
    on CPU under :class:`HostReadGuard` (a read raises :class:`HostRead`). Fails if the steps did not run.
    """
    if device == "cuda":
        ran = []

        def sync_debug(record: Any) -> None:
            if record.step == first:
                torch.cuda.set_sync_debug_mode("error")
            if record.step == last:
                torch.cuda.set_sync_debug_mode("default")
                ran.append(record.step)

        try:
            yield sync_debug
        finally:
            torch.cuda.set_sync_debug_mode("default")
        assert ran == [last], "the guarded steps never ran"
        return
    with HostReadGuard() as guard:
        yield guard.steps(first, last)
    assert guard.guarded_steps == last - first, f"guarded {guard.guarded_steps} steps, not {last - first}"
