import os
import subprocess
import sys
import textwrap

import pytest

from paramviz.host_memory import keep_freed_memory

# In a fresh interpreter (malloc's state is the process's own): sixteen 4 MiB blocks, an activation's size, then
# freed. Prints whether the settings were applied, whether the blocks came from the heap (rather than each from
# its own mmap, whose pages fault in afresh every time) and whether the heap kept that memory after the frees.
PROBE = textwrap.dedent(
    """
    import sys, torch
    from paramviz.host_memory import keep_freed_memory
    applied = keep_freed_memory() if sys.argv[1] == "keep" else False
    def heap():
        for line in open("/proc/self/maps"):
            if line.rstrip().endswith("[heap]"):
                return tuple(int(v, 16) for v in line.split()[0].split("-"))
        return 0, 0
    blocks = [torch.ones(2**20) for _ in range(16)]
    low, high = heap()
    from_heap = all(low <= b.data_ptr() < high for b in blocks)
    del blocks
    print(applied, from_heap, heap()[1] == high)
    """
)


def probe(mode: str, **env: str) -> list[bool]:
    out = subprocess.run(
        [sys.executable, "-c", PROBE, mode], capture_output=True, text=True, check=True, env={**os.environ, **env}
    )
    return [word == "True" for word in out.stdout.split()]


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's malloc settings")
def test_freed_blocks_stay_in_the_heap_for_the_next_step():
    assert probe("keep") == [True, True, True]
    applied, from_heap, _ = probe("default")
    assert not applied and not from_heap  # glibc's default: a fresh mmap per block, handed back when freed


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's malloc settings")
@pytest.mark.parametrize("setting", [{"PARAMVIZ_KEEP_FREED_MEMORY": "0"}, {"MALLOC_TRIM_THRESHOLD_": "131072"}])
def test_the_environment_can_keep_malloc_as_it_is(setting):
    applied, from_heap, _ = probe("keep", **setting)
    assert not applied and not from_heap


def test_it_is_applied_once_per_process():
    assert keep_freed_memory() is keep_freed_memory()
