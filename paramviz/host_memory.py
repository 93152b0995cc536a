"""Host memory: keep freed blocks in the process, so that repeated optimization steps do not page-fault.

Each step frees and reallocates the same activation-sized blocks. By default glibc's malloc serves large blocks
with fresh ``mmap`` calls and hands freed memory at the top of its heap back to the OS, so every page of those
blocks faults again, zero-filled, on the next step. Measured on 2 cores (EfficientNet-Lite0 to ``stage4``, 224 px,
batch 4, fourier + lucid): about 39,000 page faults per step and 146 ms a step, against about 300 faults and
103 ms with the blocks kept (``benchmarks/step_overhead.py --return-memory`` shows the default behaviour).
"""

from __future__ import annotations

import ctypes
import os
import sys

#: glibc's ``mallopt`` parameters (malloc.h).
M_TRIM_THRESHOLD, M_MMAP_THRESHOLD = -1, -3
#: Blocks up to this size come from the heap instead of their own ``mmap`` (glibc's 64-bit maximum).
MMAP_THRESHOLD = 32 * 2**20
#: Free memory at the top of the heap is handed back to the OS only beyond this.
TRIM_THRESHOLD = 2**30
#: Set to ``0`` to leave malloc as it is.
OPT_OUT = "PARAMVIZ_KEEP_FREED_MEMORY"
#: glibc's own environment settings: when one is set, the user tunes malloc already and paramviz leaves it alone.
MALLOC_SETTINGS = ("MALLOC_MMAP_THRESHOLD_", "MALLOC_TRIM_THRESHOLD_")

_applied: bool | None = None


def keep_freed_memory() -> bool:
    """Make glibc's malloc keep freed blocks (up to 32 MiB each, 1 GiB in all) for reuse; once per process.

    :func:`paramviz.render.render` and the robustness task call it before their loops. It changes how this
    process allocates from then on: memory freed after a run stays mapped for the next one instead of going back
    to the OS. A no-op (returning ``False``) off glibc, and when the environment sets
    ``PARAMVIZ_KEEP_FREED_MEMORY=0`` or glibc's own ``MALLOC_MMAP_THRESHOLD_`` / ``MALLOC_TRIM_THRESHOLD_``.

    Returns:
        Whether the settings are in effect.
    """
    global _applied
    if _applied is not None:
        return _applied
    _applied = False
    if os.environ.get(OPT_OUT) == "0" or any(os.environ.get(name) for name in MALLOC_SETTINGS):
        return False
    if not sys.platform.startswith("linux"):
        return False
    try:
        mallopt = ctypes.CDLL(None).mallopt
    except (OSError, AttributeError):  # not glibc (musl has no mallopt)
        return False
    mallopt.argtypes, mallopt.restype = (ctypes.c_int, ctypes.c_int), ctypes.c_int
    _applied = bool(mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD)) and bool(mallopt(M_TRIM_THRESHOLD, TRIM_THRESHOLD))
    return _applied
