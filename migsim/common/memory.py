"""Large freed arrays go back to the system, so a long run's memory stays flat.

glibc's malloc gives an allocation over 128 KiB a mapping of its own and
unmaps it when it is freed, but after the first such free it raises that
threshold to the freed size (up to 32 MiB): from then on arrays of that size
come from the heap, where freed ones fragment and stay resident. A worker
simulating blocks of replications grew from about 160 to 360 MB that way, and
10,000 replications took three times the memory of 100. Setting the threshold
(to glibc's own default) turns that adjustment off. Elsewhere (another C
library, another system) nothing changes.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import sys

__all__ = ["MMAP_THRESHOLD", "unmap_large_frees"]

#: Bytes from which an allocation gets its own mapping (glibc's default).
MMAP_THRESHOLD = 128 * 1024
_M_MMAP_THRESHOLD = -3  # mallopt's parameter number in glibc's malloc.h


def unmap_large_frees() -> bool:
    """Fix glibc's mmap threshold in this process (and the processes it forks).

    Returns whether it was set (False where there is no glibc ``mallopt``).
    """
    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        mallopt = libc.mallopt
    except (OSError, AttributeError):  # not glibc (musl has no mallopt)
        return False
    mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
    mallopt.restype = ctypes.c_int
    return bool(mallopt(_M_MMAP_THRESHOLD, MMAP_THRESHOLD))
