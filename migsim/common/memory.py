"""Large freed arrays go back to the system, so a long run's memory stays flat.

glibc's malloc gives an allocation over 128 KiB a mapping of its own and
unmaps it when it is freed, but after the first such free it raises that
threshold to the freed size (up to 32 MiB): from then on arrays of that size
come from the heap, where freed ones fragment and stay resident. A worker
simulating blocks of replications grew from about 160 to 360 MB that way, and
10,000 replications took three times the memory of 100. Setting the threshold
(to glibc's own default) turns that adjustment off. Elsewhere (another C
library, another system) nothing changes.

A local worker keeps its day arrays instead (`reuse_block_arrays`): its
blocks allocate arrays of the same few sizes day after day (a day's attempts
of a block's replications: about 1.3 MB on the baseline), and each one mapped
afresh, or given back by trimming the heap's top, was faulted in again a page
at a time: 9 million faults, 25 of 139 CPU seconds, in 10,000 baseline
replications (7.7 s with them reused). The worker's peak stays below the
parent's, which gathers the run's figures and unmaps as above.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import sys
from collections.abc import Callable

__all__ = [
    "MMAP_THRESHOLD",
    "WORKER_MMAP_THRESHOLD",
    "WORKER_TRIM_THRESHOLD",
    "reuse_block_arrays",
    "unmap_large_frees",
]

#: Bytes from which an allocation gets its own mapping (glibc's default).
MMAP_THRESHOLD = 128 * 1024
#: The same in a local worker: above a block's day arrays, so they come from
#: the heap and are reused.
WORKER_MMAP_THRESHOLD = 2 * 1024 * 1024
#: Free bytes at the heap's top a worker keeps rather than giving back (glibc:
#: 128 KiB once a threshold is set): a day's arrays, freed, stay for the next.
WORKER_TRIM_THRESHOLD = 32 * 1024 * 1024
# mallopt's parameter numbers in glibc's malloc.h
_M_TRIM_THRESHOLD = -1
_M_MMAP_THRESHOLD = -3


def _mallopt() -> Callable[[int, int], int] | None:
    """glibc's ``mallopt``, or None (not Linux, or not glibc: musl has none)."""
    if not sys.platform.startswith("linux"):
        return None
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        mallopt = libc.mallopt
    except (OSError, AttributeError):
        return None
    mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
    mallopt.restype = ctypes.c_int
    return mallopt


def unmap_large_frees() -> bool:
    """Fix glibc's mmap threshold in this process (and the processes it forks).

    Returns whether it was set (False where there is no glibc ``mallopt``).
    """
    mallopt = _mallopt()
    return mallopt is not None and bool(mallopt(_M_MMAP_THRESHOLD, MMAP_THRESHOLD))


def reuse_block_arrays() -> bool:
    """In a local worker: arrays up to `WORKER_MMAP_THRESHOLD` come from the
    heap, and up to `WORKER_TRIM_THRESHOLD` of it freed at its top stays.

    Returns whether both were set (False where there is no glibc ``mallopt``).
    """
    mallopt = _mallopt()
    return (
        mallopt is not None
        and bool(mallopt(_M_MMAP_THRESHOLD, WORKER_MMAP_THRESHOLD))
        and bool(mallopt(_M_TRIM_THRESHOLD, WORKER_TRIM_THRESHOLD))
    )
