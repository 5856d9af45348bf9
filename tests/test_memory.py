"""Large freed arrays go back to the system (`migsim.common.memory`)."""

from __future__ import annotations

import platform
import subprocess
import sys

import pytest

from migsim.common.memory import unmap_large_frees

_GLIBC = sys.platform.startswith("linux") and platform.libc_ver()[0] == "glibc"

_SCRIPT = """
import sys
import numpy as np
from migsim.common.memory import unmap_large_frees

def resident_mb():
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmRSS"):
                return int(line.split()[1]) / 1024

if sys.argv[1] == "fixed":
    unmap_large_frees()
big = np.ones(20 * 2**20 // 8)  # freed: glibc would now keep arrays this size
del big
before = resident_mb()
smaller = np.ones(10 * 2**20 // 8)
del smaller
print(resident_mb() - before)
"""


def _kept_mb(mode: str) -> float:
    out = subprocess.run(
        [sys.executable, "-c", _SCRIPT, mode], capture_output=True, text=True
    )
    assert out.returncode == 0, out.stderr
    return float(out.stdout)


@pytest.mark.skipif(not _GLIBC, reason="glibc's malloc only")
def test_a_freed_array_is_returned_to_the_system():
    assert unmap_large_frees()
    assert _kept_mb("adaptive") > 8  # glibc's own rule keeps the 10 MB resident
    assert _kept_mb("fixed") < 2  # fixed: it is unmapped when freed


def test_elsewhere_it_changes_nothing_and_says_so():
    assert unmap_large_frees() is _GLIBC


_FAULTS = """
import resource, sys
import numpy as np
from migsim.common.memory import reuse_block_arrays, unmap_large_frees

print(reuse_block_arrays() if sys.argv[1] == "worker" else unmap_large_frees())
day = 1_300_000 // 8  # a baseline block's day of attempts, in float64
np.ones(day)  # the first one is faulted in either way
before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
for _ in range(50):
    np.ones(day)  # allocated, filled and freed, as a block's day arrays are
print(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)
"""


def _faults(mode: str) -> int:
    out = subprocess.run(
        [sys.executable, "-c", _FAULTS, mode], capture_output=True, text=True
    )
    assert out.returncode == 0, out.stderr
    set_, faults = out.stdout.split()
    assert set_ == "True"  # glibc's mallopt took both thresholds
    return int(faults)


@pytest.mark.skipif(not _GLIBC, reason="glibc's malloc only")
def test_a_worker_reuses_its_day_arrays_instead_of_faulting_them_in_afresh():
    pages = 1_300_000 // 4096
    assert _faults("parent") > 40 * pages  # mapped afresh: every page faulted
    assert _faults("worker") < 5 * pages  # reused from the heap
