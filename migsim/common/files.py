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

import errno
import hashlib
import os
import secrets
import shutil
import stat
import tempfile
import weakref
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from migsim.common.lifeline import alive, stops_held
from migsim.common.yamlio import open_regular

__all__ = [
    "RESULT_MARKERS",
    "SpillFile",
    "atomic_text",
    "is_migsim_output",
    "atomic_write",
    "clear_stale_temporaries",
    "clear_stale_writes",
    "file_sha256",
    "follow_link",
    "holds_nothing",
    "link_or_copy",
    "make_folder",
    "name_spill",
    "named_as",
    "output_dir",
    "refuse_existing",
    "refuse_foreign",
    "refuse_special",
    "refuse_under_file",
    "refuse_unwritable",
    "remove_stray_temporaries",
    "spill_folder",
    "write_files",
    "written_by_migsim",
]

_STAGING = "partial"  # .<name>.partial-<pid>-<random>: a folder being written
_TRASH = "old"  # .<name>.old-<pid>-<random>/old: the folder being replaced
_TEMPORARY = "tmp"  # .<name>.tmp-<pid>-<random>: a file being written
#: One file that every folder a migsim command writes holds: ``--overwrite``
#: replaces only a folder with one of them (never a folder of someone else's).
RESULT_MARKERS = (
    "summary.json",  # run, forecast
    "manifest.json",  # sweep and decide stores
    "decision.json",  # decide
    "sensitivity.json",  # sensitivity
    "comparison.json",  # compare
    "backtest.json",  # backtest
)


def is_migsim_output(path: str | Path) -> bool:
    """Whether a folder holds what a migsim command writes: one of
    `RESULT_MARKERS` that migsim wrote (`written_by_migsim`)."""
    return any(written_by_migsim(Path(path) / name) for name in RESULT_MARKERS)


#: Largest marker file read to tell whether migsim wrote it.
_MARKER_BYTES = 64 * 1024 * 1024


def written_by_migsim(path: str | Path) -> bool:
    """Whether a JSON file is one migsim wrote: an object naming the
    ``migsim_version`` (a decision store's manifest names it in its
    ``definition``). The names alone are common: a web app's ``manifest.json``
    made its folder one ``--overwrite`` replaced and ``--fresh`` emptied."""
    import json

    from migsim.common.yamlio import read_regular

    try:
        data = json.loads(read_regular(path, _MARKER_BYTES))
    except (OSError, ValueError, RecursionError):  # missing, not a file, not JSON
        return False
    if not isinstance(data, dict):
        return False
    definition = data.get("definition")
    return "migsim_version" in data or (
        isinstance(definition, dict) and "migsim_version" in definition
    )


# --------------------------------------------------------------------------- folders
def follow_link(target: str | Path) -> Path:
    """Where an output named by a symbolic link is written: where the link points.

    ``-o out`` with ``out -> /disk/out`` writes (and with ``--overwrite``
    replaces) ``/disk/out`` and keeps the link, as a plain ``open`` would; a
    link to nowhere names the folder or file to make. A path that is not a link
    is returned as given.

    Raises
    ------
    OSError
        ``ELOOP``, named as given: the links go round in a loop.
    """
    path = Path(target)
    if not path.is_symlink():
        return path
    try:
        return path.resolve()  # not strict: a link to nowhere names the new output
    except (OSError, RuntimeError):  # RuntimeError: Python < 3.13's loop
        raise OSError(errno.ELOOP, os.strerror(errno.ELOOP), str(target)) from None


def refuse_existing(target: str | Path, overwrite: bool) -> None:
    """Refuse to write over an existing result unless told to.

    An empty folder is not a result and is taken as it is (also one holding
    only the lock a store's command killed early left, `holds_nothing`); a
    file, or a folder with anything in it, needs ``overwrite``.

    Raises
    ------
    FileExistsError
        The target holds something and ``overwrite`` is false.
    """
    path = follow_link(target)
    refuse_special(target)
    if overwrite or not (path.exists() or path.is_symlink()):
        return
    if path.is_dir() and not path.is_symlink() and holds_nothing(path):
        return
    raise FileExistsError(f"{target}: exists (use --overwrite to replace it)")


def holds_nothing(folder: Path) -> bool:
    """Whether a folder is empty, or holds only a store's lock that no process
    holds (`migsim.common.store.only_a_free_lock`): a sweep killed before its
    first manifest leaves nothing else, and its folder was refused as a result
    that exists, and with ``--overwrite`` as one migsim did not write."""
    from migsim.common.store import only_a_free_lock

    return not any(folder.iterdir()) or only_a_free_lock(folder)


def refuse_under_file(target: str | Path) -> None:
    """Refuse an output whose folder would be made under a file (``-o
    notes.txt/out``), before any work: `make_folder` found it only when the
    result was written, so ``forecast``, ``backtest``, ``sensitivity`` and
    ``calibrate`` ran to the end first. Nothing is made here.

    Raises
    ------
    NotADirectoryError
        The nearest of ``target``'s parents that is there is not a folder.
    """
    for folder in Path(target).parents:
        if folder.exists() or folder.is_symlink():
            if not folder.is_dir():
                raise NotADirectoryError(
                    errno.ENOTDIR, os.strerror(errno.ENOTDIR), str(folder)
                )
            return


def refuse_unwritable(target: str | Path, *, inside: bool = False) -> None:
    """Refuse an output whose folder cannot be written, before any work: a
    read-only parent (``-o /read-only/out``) was found only when the result
    was written, after the whole run, sweep or decision. The folder checked
    is the nearest of ``target``'s parents that is there (the one a missing
    folder is made in; where a link points, as written), or with ``inside``
    ``target`` itself when it is a folder (a store is written into, not
    replaced). Nothing is made here.

    ``os.access`` asks with the process's own rights: as root it refuses only
    a read-only file system, as a write would.

    Raises
    ------
    PermissionError
        Named as given; the folder cannot be written in or entered.
    """
    path = Path(os.path.abspath(follow_link(target)))
    for folder in [path, *path.parents] if inside else path.parents:
        if not folder.is_dir():
            continue  # missing (made by the writer), or a file when not inside
        if not os.access(folder, os.W_OK | os.X_OK):
            raise PermissionError(
                errno.EACCES,
                f"cannot write there: {folder} is not writable",
                str(target),
            )
        return


def refuse_special(target: str | Path) -> None:
    """Refuse an output that is a device, FIFO or socket, even with ``--overwrite``.

    A result replaces its target by a rename: ``-o /dev/null --overwrite``,
    run with the rights to do so, replaced the device with a folder of results
    (every later write to ``/dev/null`` then landed in a file). Only a regular
    file or a folder is a result's place.

    Raises
    ------
    FileExistsError
        The target (where a link to it points) exists and is neither.
    """
    path = follow_link(target)
    try:
        mode = path.stat().st_mode
    except OSError:  # missing (or unreachable): made, or refused, by the writer
        return
    if not (stat.S_ISREG(mode) or stat.S_ISDIR(mode)):
        raise FileExistsError(
            f"{target}: not a file or folder (a device, FIFO or socket); "
            "not replacing it"
        )


def refuse_foreign(target: str | Path) -> None:
    """Refuse to replace a non-empty folder that migsim did not write.

    What ``--overwrite`` checks first: it replaces a result, never a folder of
    the user's own files (`is_migsim_output`). A file, an empty folder (or one
    as good as empty: `holds_nothing`) or a missing target passes.

    Raises
    ------
    FileExistsError
        The target is a non-empty folder holding none of `RESULT_MARKERS`.
    """
    path = follow_link(target)
    if not path.is_dir() or path.is_symlink() or holds_nothing(path):
        return
    if not is_migsim_output(path):
        raise FileExistsError(
            f"{target}: not a folder migsim wrote (it holds none of "
            f"{', '.join(RESULT_MARKERS)}); not replacing it"
        )


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
    given = target
    target = follow_link(target)  # a link stays; what it points to is written
    if target.name in ("", ".", ".."):  # "-o ." : name the folder itself
        target = Path(os.path.abspath(target))
    _refuse_enclosing(target)
    make_folder(target.parent)
    _clear_stale(target)  # first: it may put back an old folder a kill moved aside
    refuse_existing(target, overwrite)
    try:
        staging = Path(
            tempfile.mkdtemp(prefix=_prefix(target, _STAGING), dir=target.parent)
        )
    except OSError as exc:  # named as given, not by the staging folder's name
        raise OSError(exc.errno, exc.strerror, str(target)) from None
    try:
        staging.chmod(0o777 & ~_umask())  # mkdtemp makes it private; results are not
        for name in keep:
            _carry(target / name, staging / name)
        try:
            yield staging
            if overwrite:
                _replace(staging, target)
            else:
                _place(staging, target)
        except OSError as exc:  # a full disk, say: named as the output, not as
            raise named_as(exc, staging, given) from exc  # nothing or staging
    finally:
        shutil.rmtree(staging, ignore_errors=True)  # gone already when it succeeded


def named_as(exc: OSError, written: Path, given: str | Path) -> OSError:
    """``exc`` of a write to ``written`` (a staging folder or temporary file),
    named by the output the user gave: ``out: File too large``.

    A failed ``write`` names no file at all (Python's file objects, Arrow's
    Parquet writer and matplotlib's savefig leave ``filename`` empty), and an
    error inside the staging folder names a file the user never heard of;
    either came out as ``Error: File too large``. Arrow's reason ("Error
    writing bytes to file. Detail: [errno 27] ...") becomes the system's own.
    """
    if not exc.errno:  # migsim's own refusal (FileExistsError("...")): as it is
        return exc
    name = Path(given)
    if exc.filename is not None:
        try:
            inside = Path(os.path.abspath(os.fsdecode(exc.filename))).relative_to(
                os.path.abspath(written)
            )
        except ValueError:  # a file of its own (a chart's font, an input)
            return exc
        name = name / inside
    return OSError(exc.errno, os.strerror(exc.errno), str(name))


def make_folder(path: str | Path) -> None:
    """``mkdir -p``: make a folder and its parents, where missing.

    A file in the way (``-o notes.txt/out``) failed in ``mkdir`` with 'File
    exists', named by the file: as though being there were the fault. It is
    now ``notes.txt: Not a directory``.

    Raises
    ------
    NotADirectoryError
        A file (not a folder) has the name of ``path`` or of one of its parents.
    """
    path = Path(path)
    try:
        path.mkdir(parents=True, exist_ok=True)
    except FileExistsError:
        for folder in (path, *path.parents):
            if folder.exists() and not folder.is_dir():
                raise NotADirectoryError(
                    errno.ENOTDIR, os.strerror(errno.ENOTDIR), str(folder)
                ) from None
        raise


def _refuse_enclosing(target: Path) -> None:
    """A folder that holds the working folder cannot be renamed away from under it."""
    here = Path(os.path.abspath(os.getcwd()))
    whole = Path(os.path.abspath(target))
    if whole == here or whole in here.parents:
        raise FileExistsError(
            f"{target}: is the current folder or holds it; name a new folder "
            "for the output (e.g. -o out)"
        )


def _prefix(target: Path, kind: str) -> str:
    return f"{_start(target, kind)}{os.getpid()}-"


#: Longest name (in bytes) that a staging folder or temporary file repeats
#: whole: with its dot, kind, pid and random tail it stays under the 255
#: bytes a file system allows a name.
_NAME_BYTES = 200


def _start(target: Path, kind: str) -> str:
    """``.<name>.<kind>-``: how the staging folders, trash folders and
    temporary files of ``target`` begin (the pid and a random tail follow).

    A name longer than `_NAME_BYTES` is cut, with a digest of the whole name
    after it, so the sibling's name stays one the disk takes: ``-o`` of a
    legal name of 230 characters was refused with 'File name too long' (its
    staging folder's name was 256 bytes), as was a 240-character report or
    calibrated scenario."""
    name = target.name
    whole = os.fsencode(name)
    if len(whole) > _NAME_BYTES:
        digest = hashlib.sha256(whole).hexdigest()[:12]
        cut = whole[: _NAME_BYTES - len(digest) - 1].decode(errors="ignore")
        name = f"{cut}~{digest}"
    return f".{name}.{kind}-"


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def _carry(source: Path, destination: Path) -> None:
    if source.is_dir():
        shutil.copytree(source, destination, copy_function=link_or_copy)
    elif source.exists():
        link_or_copy(source, destination)


def _place(staging: Path, target: Path) -> None:
    """Rename a finished staging folder to ``target``, which must hold nothing.

    The target was free when the command started, but another command may
    have written it since (two runs with one ``-o``): both said they had
    written it, and the later one's folder silently replaced the earlier's.
    ``rename`` takes the place of nothing or of an empty folder, never of a
    folder with files in it, in one step.

    Raises
    ------
    FileExistsError
        Something was written at ``target`` meanwhile.
    """
    from migsim.common.store import remove_free_lock

    remove_free_lock(target)  # all a killed store left, held by no one
    try:
        os.replace(staging, target)  # as rename(2): never over a non-empty folder
    except OSError:
        try:
            refuse_existing(target, overwrite=False)
        except FileExistsError:
            raise FileExistsError(
                f"{target}: written by another command while this one ran; not "
                "replacing it (use --overwrite to replace it)"
            ) from None
        raise


def _replace(staging: Path, target: Path) -> None:
    """Rename a finished staging folder to ``target``, replacing what is there."""
    if not (target.exists() or target.is_symlink()):
        os.replace(staging, target)
        return
    with stops_held():  # an interrupt between the renames left no target
        try:
            trash = Path(
                tempfile.mkdtemp(prefix=_prefix(target, _TRASH), dir=target.parent)
            )
        except OSError as exc:  # named as the output, not as the trash folder
            raise OSError(exc.errno, exc.strerror, str(target)) from None
        try:
            os.replace(target, trash / "old")  # EBUSY for a mount point, say
            try:
                os.replace(staging, target)
            except OSError:
                os.replace(trash / "old", target)  # the old folder back
                raise
        finally:
            if not (trash / "old").exists() or target.exists():
                shutil.rmtree(trash, ignore_errors=True)
            # else: the old folder could not be put back; the next write does


def clear_stale_writes(target: str | Path) -> None:
    """Before reading a folder that `output_dir` writes over (a decision is
    written over its own store): put back the folder a killed write moved
    aside, and remove that write's leftovers (`_clear_stale`)."""
    path = follow_link(target)
    if path.name in ("", ".", ".."):
        path = Path(os.path.abspath(path))
    if path.parent.is_dir():
        _clear_stale(path)


def _clear_stale(target: Path) -> None:
    """Remove staging and trash folders that a killed write of ``target`` left.

    A folder of a process that is still running is left alone (it may be
    writing now). A kill between the two renames of `_replace` leaves the old
    folder in the trash and no target: the old folder is put back.
    """
    for kind in (_TRASH, _STAGING):
        start = _start(target, kind)
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
    return alive(int(pid))


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
            refuse_special(path)
            path = follow_link(path)  # a link stays; what it points to is written
            temporary = path.with_name(
                f"{_start(path, _TEMPORARY)}{os.getpid()}-{secrets.token_hex(4)}"
            )
            # created here with the umask's mode, so the file ends up as a
            # plain open() would have made it
            try:
                fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
            except OSError as exc:  # named as given, not by the temporary's name
                raise OSError(exc.errno, exc.strerror, str(path)) from None
            os.close(fd)
            staged.append((temporary, path))
            try:
                write(temporary)
                _flush(temporary)
            except OSError as exc:  # named as the file, not as its temporary
                raise named_as(exc, temporary, path) from exc
        with stops_held():  # all renamed, or none: never cut in two
            for temporary, path in staged:
                try:
                    os.replace(temporary, path)
                except OSError as exc:  # a folder made read-only: named as the
                    raise named_as(exc, temporary, path) from exc  # file given
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


_SPILL = "migsim-daily-"  # migsim-daily-<pid>-<random>: a run's streamed daily rows


class SpillFile:
    """A run's streamed daily rows, in a file that only this process can see.

    Where the system allows it (Linux's ``O_TMPFILE``), the file has no name:
    it lives while this process holds it open, so even a run killed with
    SIGKILL leaves nothing behind, and ``path`` (``/proc/self/fd/N``) opens it
    for writing and reading. `link_or_copy` gives it a name in an output
    folder. Elsewhere it is ``daily.parquet`` in a private folder
    (`spill_folder`), removed by `close`.
    """

    def __init__(self, parent: str | Path | None = None):
        where = Path(parent) if parent is not None else Path(tempfile.gettempdir())
        self.where = where  # what an error of its writes names (`named_as`)
        _remove_stale_spills(where)
        fd, folder = None, None
        try:
            fd = os.open(where, os.O_TMPFILE | os.O_RDWR, 0o600)
            self.path = Path(f"/proc/self/fd/{fd}")
            if not self.path.exists():  # no /proc to reopen it by
                raise OSError("no /proc")
        except (AttributeError, OSError):  # not Linux, or a file system without
            if fd is not None:
                os.close(fd)
                fd = None
            folder = spill_folder(where)
            self.path = folder / "daily.parquet"
        # closed with this object at the latest, on an error path too
        self._release = weakref.finalize(self, _release_spill, fd, folder)

    def close(self) -> None:
        """Remove the file (it goes with its last holder): safe to call twice."""
        self._release()


def _release_spill(fd: int | None, folder: Path | None) -> None:
    if fd is not None:
        os.close(fd)
    if folder is not None:
        shutil.rmtree(folder, ignore_errors=True)


def spill_folder(parent: str | Path | None = None) -> Path:
    """A new private folder for a run's streamed daily rows, in ``parent`` (default:
    the system's temporary folder), where `SpillFile` cannot have a nameless file."""
    where = Path(parent) if parent is not None else Path(tempfile.gettempdir())
    return Path(tempfile.mkdtemp(prefix=f"{_SPILL}{os.getpid()}-", dir=where))


def _remove_stale_spills(where: Path) -> None:
    """Remove the spill folders that a killed run left in ``where`` (their
    process is gone), so ``migsim run -o`` after a kill leaves nothing beside
    OUTDIR, wherever the new run's own spill goes."""
    for path in where.glob(f"{_SPILL}[0-9]*-*"):
        tail = path.name[len(_SPILL) :]
        pid = tail.partition("-")[0]
        if not path.is_dir() or not pid.isdigit() or int(pid) == os.getpid():
            continue  # not a spill folder, or one this process may still read
        if not _alive(tail):
            shutil.rmtree(path, ignore_errors=True)


def clear_stale_temporaries(*paths: str | Path) -> None:
    """Remove the temporaries of `write_files` that a killed write of one of
    ``paths`` left beside it (their process is gone), so a file output written
    again after a kill (``calibrate -o``, ``report -o``) leaves nothing beside
    it, as `output_dir` does for a folder. A store clears its own folder
    (`remove_stray_temporaries`) when it opens."""
    for given in paths:
        path = follow_link(given)
        start = _start(path, _TEMPORARY)
        try:
            entries = list(path.parent.iterdir())
        except OSError:  # no folder yet: nothing was left in it
            continue
        for entry in entries:
            if not entry.name.startswith(start) or _alive(entry.name[len(start) :]):
                continue
            if entry.is_file() and not entry.is_symlink():
                entry.unlink(missing_ok=True)


def remove_stray_temporaries(folder: str | Path) -> None:
    """Remove temporary files of `write_files` that a killed process left; one
    of a process still running (a second command into the same store) is
    about to be renamed into place, and is left alone."""
    for path in Path(folder).glob(f".*.{_TEMPORARY}-*"):
        tail = path.name.rpartition(f".{_TEMPORARY}-")[2]
        if path.is_file() and not _alive(tail):
            path.unlink(missing_ok=True)


def link_or_copy(source: str | Path, target: str | Path) -> None:
    """Hard-link a finished file (same file system), else copy it.

    The link follows a symbolic link to its file (``linkat`` with
    ``AT_SYMLINK_FOLLOW``): that is how a nameless `SpillFile`, reached by
    ``/proc/self/fd/N``, gets a name."""
    try:
        if os.link in os.supports_dir_fd and os.link in os.supports_follow_symlinks:
            root = os.open(os.sep, os.O_RDONLY)  # linkat, for an absolute source
            try:
                os.link(
                    os.path.abspath(source),
                    target,
                    src_dir_fd=root,
                    follow_symlinks=True,
                )
            finally:
                os.close(root)
        else:
            os.link(source, target)
    except OSError:
        shutil.copyfile(source, target)


def name_spill(source: str | Path, target: str | Path) -> None:
    """Give a run's daily rows (a `SpillFile`, private: mode 0600) their name in
    an output folder, readable as the folder's other files are (the umask's
    mode); linked as it was, ``daily.parquet`` alone stayed 0600."""
    link_or_copy(source, target)
    os.chmod(target, 0o666 & ~_umask())


def file_sha256(path: str | Path) -> str:
    """The sha256 of a regular file's bytes, read in chunks (a ``daily.parquet``
    of many replications is not read into memory whole). Opened without
    blocking (`migsim.common.yamlio.open_regular`): a FIFO or a device put in
    a file's place is refused (``IsADirectoryError``), never waited on."""
    with open_regular(path) as handle:
        return hashlib.file_digest(handle, "sha256").hexdigest()
