"""Process-wide CPU settings for a training process, applied once by `elcrec` before any work.

- **Keep freed memory** (Linux/glibc). PyTorch's CPU allocator hands every large tensor to malloc,
  and glibc serves those with a fresh mmap and returns them with munmap: every training step then
  pays page faults and kernel page zeroing for each activation (tens of MB here). On a 2-core
  machine that was ~25% of a step. `mallopt(M_MMAP_MAX, 0)` makes glibc serve them from the heap,
  and a high trim threshold keeps freed heap memory for the next step. Peak memory is unchanged;
  the process simply does not give memory back to the OS between steps. A no-op without glibc.
- **Flush subnormal floats to zero** (x86 FTZ/DAZ). A float32 below 1.2e-38 in magnitude is
  subnormal, and x86 cores compute with one about a hundred times slower than with a normal
  number. Contrastive losses fill their gradients with them: softmax probabilities such as
  exp(-100) over the flattened [b, 50 x 64] views of ICLRec, ELCRec and CL4SRec. There a
  [256, 256] @ [256, 3200] matmul took 32 ms instead of 3 ms, and the first training steps took
  1.4 to 2.1 times as long (docs/MEASUREMENTS.md). Flushing drops only what a float32 sum next to a
  normal number cannot hold: two ICLRec epochs on Beauty gave identical test metrics; ELCRec's
  differed by a user or two, from last-bit differences such as another summation order makes.
  GPUs compute with subnormals at full speed, so this concerns the CPU only. The setting is per
  thread, and a worker thread takes its creator's at birth: it must be made before torch starts
  its thread pool (the first parallel operator), which is why `elcrec` applies it first thing.
  `elcrec --keep-subnormals` leaves it off.
"""

from __future__ import annotations

import ctypes
import ctypes.util

import torch

M_TRIM_THRESHOLD, M_MMAP_MAX = -1, -4

_subnormals_flushed = False


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


def flush_subnormals(flush: bool = True) -> bool:
    """FTZ/DAZ on (or off) for this thread and the threads it starts later; returns whether subnormals
    are now flushed (False where the CPU cannot)."""
    global _subnormals_flushed
    _subnormals_flushed = bool(torch.set_flush_denormal(flush)) and flush
    return _subnormals_flushed


def subnormals_flushed() -> bool:
    """Whether `flush_subnormals` last turned flushing on in this process (the run's device description
    says so)."""
    return _subnormals_flushed


def prepare_process(keep_subnormals: bool = False) -> None:
    """Both settings; call before any torch operator runs."""
    keep_freed_memory()
    flush_subnormals(not keep_subnormals)
