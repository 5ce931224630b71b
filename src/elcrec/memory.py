"""Keep freed memory in the process on Linux/glibc, so large tensors reuse warm pages.

PyTorch's CPU allocator hands every large tensor to malloc, and glibc serves those with a fresh
mmap and returns them with munmap: every training step then pays page faults and kernel page
zeroing for each activation (tens of MB here). On a 2-core machine that was ~25% of a step.
`mallopt(M_MMAP_MAX, 0)` makes glibc serve them from the heap, and a high trim threshold keeps
freed heap memory for the next step. Peak memory is unchanged; the process simply does not give
memory back to the OS between steps. A no-op where glibc is absent.
"""

from __future__ import annotations

import ctypes
import ctypes.util

M_TRIM_THRESHOLD, M_MMAP_MAX = -1, -4


def keep_freed_memory() -> bool:
    """Returns whether the allocator settings were applied."""
    name = ctypes.util.find_library("c")
    if not name:
        return False
    try:
        libc = ctypes.CDLL(name)
        mallopt = libc.mallopt
    except (OSError, AttributeError):
        return False
    applied = mallopt(M_MMAP_MAX, 0) == 1
    applied = (mallopt(M_TRIM_THRESHOLD, 2**31 - 1) == 1) and applied
    return applied
