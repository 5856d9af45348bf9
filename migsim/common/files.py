"""Files: output folders and files that are either whole or absent.

A planner reads a folder of results as finished. So every command that writes
one (run, compare, decide, sensitivity, forecast, backtest, report) writes it
through `output_dir`: the files go into a staging folder beside the target (in
the target's own parent, so the final rename never crosses file systems), which
is renamed into place only when complete. A kill or an error leaves the old
folder (or nothing), never half a result. An existing non-empty target is
refused unless the caller says ``overwrite``. Staging and trash folders left by
a killed earlier write of the same target are cleared on the next write.

Single files (a resumable store's points and manifest, a report page, a
calibrated scenario) are written with `write_files` / `atomic_write`: a
temporary sibling, flushed to disk, then renamed over the target.
"""

from __future__ import annotations

import os
import secrets
import shutil
import tempfile
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

__all__ = [
    "atomic_text",
    "atomic_write",
    "link_or_copy",
    "output_dir",
    "refuse_existing",
    "remove_stray_temporaries",
    "write_files",
]

_STAGING = "partial"  # .<name>.partial-<pid>-<random>: a folder being written
_TRASH = "old"  # .<name>.old-<pid>-<random>/old: the folder being replaced
_TEMPORARY = "tmp"  # .<name>.tmp-<pid>-<random>: a file being written


# --------------------------------------------------------------------------- folders
def refuse_existing(target: str | Path, overwrite: bool) -> None:
    """Refuse to write over an existing result unless told to.

    An empty folder is not a result and is taken as it is; a file, or a folder
    with anything in it, needs ``overwrite``.

    Raises
    ------
    FileExistsError
        The target holds something and ``overwrite`` is false.
    """
    path = Path(target)
    if overwrite or not (path.exists() or path.is_symlink()):
        return
    if path.is_dir() and not path.is_symlink() and not any(path.iterdir()):
        return
    raise FileExistsError(f"{path}: exists (use --overwrite to replace it)")


@contextmanager
def output_dir(
    target: str | Path, *, overwrite: bool = False, keep: Sequence[str] = ()
) -> Iterator[Path]:
    """Stage an output folder; move it into place when the ``with`` block ends well.

    Yields the staging folder to write into. On a normal exit it replaces
    ``target`` (the old folder is moved aside first, then removed); on an error
    the staging folder is removed and ``target`` is left as it was.

    Parameters
    ----------
    target
        The folder to produce.
    overwrite
        Replace an existing non-empty target (see `refuse_existing`).
    keep
        Names of entries in the existing target carried into the new folder
        (hard-linked where possible): a resumable store's ``manifest.json`` and
        ``points`` when a decision is written into its own store.
    """
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    _clear_stale(target)  # first: it may put back an old folder a kill moved aside
    refuse_existing(target, overwrite)
    staging = Path(
        tempfile.mkdtemp(prefix=_prefix(target, _STAGING), dir=target.parent)
    )
    try:
        staging.chmod(0o777 & ~_umask())  # mkdtemp makes it private; results are not
        for name in keep:
            _carry(target / name, staging / name)
        yield staging
        _replace(staging, target)
    finally:
        shutil.rmtree(staging, ignore_errors=True)  # gone already when it succeeded


def _prefix(target: Path, kind: str) -> str:
    return f".{target.name}.{kind}-{os.getpid()}-"


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def _carry(source: Path, destination: Path) -> None:
    if source.is_dir():
        shutil.copytree(source, destination, copy_function=link_or_copy)
    elif source.exists():
        link_or_copy(source, destination)


def _replace(staging: Path, target: Path) -> None:
    """Rename a finished staging folder to ``target``, replacing what is there."""
    if not (target.exists() or target.is_symlink()):
        os.replace(staging, target)
        return
    trash = Path(tempfile.mkdtemp(prefix=_prefix(target, _TRASH), dir=target.parent))
    os.replace(target, trash / "old")
    os.replace(staging, target)
    shutil.rmtree(trash, ignore_errors=True)


def _clear_stale(target: Path) -> None:
    """Remove staging and trash folders that a killed write of ``target`` left.

    A folder of a process that is still running is left alone (it may be
    writing now). A kill between the two renames of `_replace` leaves the old
    folder in the trash and no target: the old folder is put back.
    """
    for kind in (_TRASH, _STAGING):
        start = f".{target.name}.{kind}-"
        for path in target.parent.iterdir():
            if not path.name.startswith(start) or _alive(path.name[len(start) :]):
                continue
            old = path / "old"
            if kind == _TRASH and old.exists() and not target.exists():
                os.replace(old, target)
            shutil.rmtree(path, ignore_errors=True)


def _alive(tail: str) -> bool:
    """Whether the process whose id starts ``tail`` (``<pid>-<random>``) runs."""
    pid = tail.partition("-")[0]
    if not pid.isdigit():
        return False
    if int(pid) == os.getpid():
        return False  # this process finishes what it starts: a leftover is stale
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # another user's process
    return True


# --------------------------------------------------------------------------- files
def write_files(writers: Mapping[str | Path, Callable[[Path], Any]]) -> None:
    """Write several files; each is renamed into place only when all are written.

    Every writer gets a temporary sibling of its file to write to; when every
    one has succeeded (and is flushed to disk) each is renamed over its file.
    An error removes the temporaries and leaves every file as it was.
    """
    staged: list[tuple[Path, Path]] = []
    try:
        for path, write in writers.items():
            path = Path(path)
            temporary = path.with_name(
                f".{path.name}.{_TEMPORARY}-{os.getpid()}-{secrets.token_hex(4)}"
            )
            # created here with the umask's mode, so the file ends up as a
            # plain open() would have made it
            os.close(os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666))
            staged.append((temporary, path))
            write(temporary)
            _flush(temporary)
        for temporary, path in staged:
            os.replace(temporary, path)
    finally:
        for temporary, _ in staged:
            temporary.unlink(missing_ok=True)


def atomic_write(path: str | Path, write: Callable[[Path], Any]) -> None:
    """Write one file via a temporary sibling and a rename (see `write_files`)."""
    write_files({path: write})


def atomic_text(path: str | Path, text: str) -> None:
    """Write a text file (UTF-8) atomically."""
    atomic_write(path, lambda temporary: temporary.write_text(text, encoding="utf-8"))


def _flush(path: Path) -> None:
    with open(path, "rb") as handle:
        os.fsync(handle.fileno())


def remove_stray_temporaries(folder: str | Path) -> None:
    """Remove temporary files of `write_files` that a killed process left."""
    for path in Path(folder).glob(f".*.{_TEMPORARY}-*"):
        if path.is_file():
            path.unlink(missing_ok=True)


def link_or_copy(source: str | Path, target: str | Path) -> None:
    """Hard-link a finished file (same file system), else copy it."""
    try:
        os.link(source, target)
    except OSError:
        shutil.copyfile(source, target)
