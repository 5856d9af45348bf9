"""Which code made a number: the digest of migsim's own Python source.

The version string changes only at a release, while the numbers a scenario and
seed give can change between releases (a new random stream, a fixed bug). The
sha256 of the package's Python files tells any two builds apart, so an output
that records it names the code that made it, not only the release.
"""

from __future__ import annotations

import hashlib
from functools import cache
from pathlib import Path

__all__ = ["PACKAGE", "source_sha256"]

#: The installed ``migsim`` package folder.
PACKAGE = Path(__file__).resolve().parents[1]


@cache
def source_sha256(root: Path = PACKAGE) -> str:
    """sha256 over every ``*.py`` file below ``root``, in path order: each file's
    path relative to ``root``, its length and its bytes."""
    digest = hashlib.sha256()
    for path in sorted(root.rglob("*.py"), key=lambda p: p.relative_to(root).parts):
        data = path.read_bytes()
        name = path.relative_to(root).as_posix().encode()
        digest.update(b"%d:%s\n%d:" % (len(name), name, len(data)))
        digest.update(data)
    return digest.hexdigest()
