"""Store: a folder of finished work that a killed command resumes from.

A sweep (one file per parameter point) and a decision (one file per batch of a
candidate's replications) both take long enough to be killed. Each keeps its
finished pieces here, so a rerun of the same definition skips them and ends
with exactly the files of a run that never stopped:

- ``manifest.json``: the ``definition`` (what was asked: scenario and question
  hashes, seed, counts...) and whatever the caller records per piece;
- ``points/<name>.parquet``: one finished piece each, written atomically (a
  piece is finished exactly when its file exists).

One meaning of *fresh* for both: start over. With ``fresh`` a folder holding a
store (of any definition) is emptied first; without it, a store of another
definition is refused. A folder with files that is not a store (no
``manifest.json``, or one that migsim did not write beside other files) is
refused either way: it is not ours to empty.

A piece is a cache of work: one that cannot be read back (damaged on disk,
written over by hand) is removed when the store opens, with one line on stderr
saying so, and is computed again like any piece not yet finished.

While a command writes a store it holds ``.migsim.lock`` in it (`held`): a
second command on the same store is refused until the first ends, instead of
both writing the manifest (each from its own copy: one's record of its run was
lost). What is held is the operating system's lock on that file (``flock``),
which ends with the process that took it: the file a killed command leaves is
held by no one, so its store still resumes, and a folder holding nothing else
is as good as empty (`only_a_free_lock`).

A piece carries the ``migsim_source_sha256`` of the code that computed it (in
its Parquet metadata, so it is known even for a piece whose listing a kill cut
off); callers list it per piece in the manifest. The version is part of the
definition (a store of another release is refused), but within a release the
code may change between a kill and its rerun: the pieces of other code are then
kept, not credited to this code in silence: one line on stderr says how many
there are and how to compute them again (``fresh``), once per code (the
manifest records that it was said).
"""

from __future__ import annotations

import errno
import fcntl  # POSIX: the runner's pools fork, so migsim runs on POSIX only
import json
import os
import shutil
import stat
import sys
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

from migsim.common.errors import MigsimError
from migsim.common.files import (
    atomic_text,
    atomic_write,
    clear_stale_writes,
    make_folder,
    remove_stray_temporaries,
    written_by_migsim,
)
from migsim.common.source import source_sha256
from migsim.common.yamlio import read_regular

if TYPE_CHECKING:  # pragma: no cover - for type checkers only
    import pandas as pd

__all__ = [
    "ENTRIES",
    "LOCK",
    "MANIFEST",
    "POINTS",
    "SOURCE",
    "Store",
    "held",
    "only_a_free_lock",
    "remove_free_lock",
]

MANIFEST = "manifest.json"
POINTS = "points"
#: What a store adds to its folder (carried over when outputs are written beside it).
ENTRIES = (MANIFEST, POINTS)
#: The file a command writing the store holds (`held`): its process id.
LOCK = ".migsim.lock"
#: The stores this process holds now (`held`), by their real path: the file
#: descriptor of each one's lock (-1 in a forked worker: `_forget_locks`).
_HOLDING: dict[str, int] = {}
#: The key of a piece's Parquet metadata (and of its manifest listing) naming
#: the code that computed it.
SOURCE = "migsim_source_sha256"
#: The manifest key recording that this code was told of the pieces of other
#: code (`Store._warn_other_sources`): ``{SOURCE: its sha256, pieces: count}``.
ANNOUNCED = "other_sources_announced"


def _temporary(path: Path) -> bool:
    """A file of a write in progress: a temporary, or the lock (`held`)."""
    return path.name == LOCK or (path.name.startswith(".") and ".tmp-" in path.name)


def _only_a_first_write(root: Path) -> bool:
    """Whether ``root`` holds nothing, or only what a store killed before its
    first manifest was in place leaves: an empty ``points`` folder and
    temporaries. Such a folder is a store that never started, not someone's."""
    for entry in root.iterdir():
        if _temporary(entry):
            continue
        if entry.name == POINTS and entry.is_dir():
            if all(_temporary(p) for p in entry.iterdir()):
                continue
        return False
    return True


def _only_a_store(root: Path) -> bool:
    """Whether ``root`` holds nothing but what a store writes itself (its
    manifest, its pieces, temporaries): a store whose manifest was damaged,
    not someone's folder that happens to hold a ``manifest.json``."""
    for entry in root.iterdir():
        if _temporary(entry) or (entry.name == MANIFEST and not entry.is_dir()):
            continue
        if entry.name == POINTS and entry.is_dir() and not entry.is_symlink():
            if all(_temporary(p) or p.suffix == ".parquet" for p in entry.iterdir()):
                continue
        return False
    return True


def _recorded_source(path: Path) -> str | None:
    """The code a piece's Parquet metadata names (`SOURCE`), if it names one."""
    import pyarrow.parquet as pq

    source = (pq.read_metadata(path).metadata or {}).get(SOURCE.encode())
    return None if source is None else source.decode()


def _empty(root: Path) -> None:
    """Empty a store to start it over, its manifest last: an interrupt part
    way leaves a store (that ``fresh`` starts over again), never pieces
    without the manifest that makes the folder a store."""
    for entry in root.iterdir():
        if entry.name in (MANIFEST, LOCK):  # the lock is this command's own
            continue
        if entry.is_dir() and not entry.is_symlink():
            shutil.rmtree(entry)
        else:
            entry.unlink()
    (root / MANIFEST).unlink()


@contextmanager
def held(root: str | Path, what: str) -> Iterator[None]:
    """Hold the store in ``root`` for this process while the block runs.

    Holding is the operating system's lock (``flock``) on ``.migsim.lock``,
    opened (made if missing) and kept open for the block, the holder's process
    id written in it for the message of a command refused. The lock ends with
    the process however it ends, SIGKILL too: a file left by a killed command
    is held by no one and is taken at once. No process id is judged alive or
    dead, and no file is removed to be made again (two commands could each
    remove the other's fresh one, and both ran). The file is removed when the
    block ends, while still held and only if it is still the one held. A
    folder this made for the lock and nothing else wrote in is removed again.
    A ``root`` that is a file is left to the store to refuse.

    A store this process holds already is held again at once, and released by
    the outer block only: ``migsim decide`` holds its store over the search
    (`migsim.experiments.decide.decide` holds it too, for callers of the
    Python API) and over the write that replaces it. That write moves the
    folder, lock and all, aside: the old folder's lock stays held until the
    block ends (a second command that opened it is refused), the new folder
    holds none, and there is none to remove when the block ends.

    Raises
    ------
    MigsimError
        Another running process holds the store.
    """
    root = Path(root)
    if root.exists() and not root.is_dir():
        yield
        return
    key = os.path.realpath(root)
    if key in _HOLDING:  # by this process, in a block around this one
        yield
        return
    made = not root.exists()
    lock = root / LOCK
    try:
        _HOLDING[key] = _take(root, lock, what)
        yield
    finally:
        fd = _HOLDING.pop(key, None)
        if fd is not None:
            _release(lock, fd)
        if made:
            try:
                root.rmdir()  # only when empty: nothing was stored
            except OSError:
                pass


def _take(root: Path, lock: Path, what: str) -> int:
    """Take the lock of the store in ``root``: the descriptor holding it."""
    while True:
        make_folder(root)
        try:
            fd = _open_lock(lock, create=True)
        except FileNotFoundError:  # the folder went with the holder that made it
            continue
        if not _locked(fd):
            holder = _holder(fd)
            os.close(fd)
            raise MigsimError(_busy(root, what, holder))
        if _same_file(fd, lock):
            os.ftruncate(fd, 0)
            os.write(fd, f"{os.getpid()}\n".encode())
            return fd
        os.close(fd)  # removed by its holder as it ended: take the file there now


def _release(lock: Path, fd: int) -> None:
    """Remove the lock (still held, and only the file held: not one in a new
    folder put in its place, nor another command's), then let it go."""
    if fd < 0:  # a forked copy of the holder's (`_forget_locks`)
        return
    try:
        if _same_file(fd, lock):
            lock.unlink()
    except OSError:  # gone with the store, say
        pass
    finally:
        os.close(fd)


def _open_lock(lock: Path, create: bool) -> int:
    """A descriptor of the lock file, never following a link (a link named
    ``.migsim.lock`` would have the file it points to written over) nor
    blocking (a FIFO); one that is not a regular file is refused."""
    flags = os.O_NONBLOCK | os.O_NOFOLLOW | getattr(os, "O_CLOEXEC", 0)
    flags |= os.O_RDWR | os.O_CREAT if create else os.O_RDONLY
    try:
        fd = os.open(lock, flags, 0o644)
    except OSError as exc:
        if exc.errno != errno.ELOOP:
            raise
        fd = -1
    if fd < 0 or not stat.S_ISREG(os.fstat(fd).st_mode):
        if fd >= 0:
            os.close(fd)
        raise OSError(errno.EINVAL, "not a regular file", str(lock))
    return fd


def _locked(fd: int) -> bool:
    """Take the lock of ``fd`` without waiting: False when another holds it."""
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return False
    return True


def _same_file(fd: int, path: Path) -> bool:
    """Whether ``path`` is (still) the file open as ``fd``."""
    try:
        there = os.stat(path, follow_symlinks=False)
    except OSError:
        return False
    here = os.fstat(fd)
    return (here.st_ino, here.st_dev) == (there.st_ino, there.st_dev)


def _holder(fd: int) -> str:
    """The holder of a lock, as its file names it (empty while being written)."""
    text = os.pread(fd, 32, 0).decode("ascii", errors="replace").strip()
    return f"process {text}" if text.isdigit() else "another process"


def _busy(root: Path, what: str, holder: str) -> str:
    return (
        f"{root}: another {what} is writing this store ({holder}); wait for it "
        "to end, or stop it (a stopped one resumes where it was)"
    )


def _held_by(lock: Path) -> str | None:
    """Who holds ``lock``: None when no one (no file, or a file a killed
    command left), found by taking the lock without waiting and letting it go
    at once (nothing is written).

    Raises
    ------
    OSError
        The lock cannot be opened (not a regular file, say).
    """
    try:
        fd = _open_lock(lock, create=False)
    except (FileNotFoundError, NotADirectoryError):  # no lock, or no folder
        return None
    try:
        if not _locked(fd):
            return _holder(fd)
        fcntl.flock(fd, fcntl.LOCK_UN)
        return None
    finally:
        os.close(fd)


def only_a_free_lock(folder: str | Path) -> bool:
    """Whether ``folder`` holds nothing but a store's lock that no process
    holds: what a command killed before its store's first manifest leaves
    (`held`), a folder as empty as one that holds nothing."""
    lock = Path(folder) / LOCK
    try:
        return [p.name for p in Path(folder).iterdir()] == [LOCK] and (
            _held_by(lock) is None
        )
    except OSError:
        return False


def remove_free_lock(folder: str | Path) -> None:
    """Empty a folder that holds only a lock no process holds
    (`only_a_free_lock`), so that a result can be renamed over it: removed
    under its lock, so a command that takes it meanwhile keeps its own."""
    lock = Path(folder) / LOCK
    try:
        if [p.name for p in Path(folder).iterdir()] != [LOCK]:
            return
        fd = _open_lock(lock, create=False)
    except OSError:
        return
    try:
        if _locked(fd) and _same_file(fd, lock):
            lock.unlink()
    finally:
        os.close(fd)


def _refuse_held_now(root: Path, what: str) -> None:
    """Refuse a store another process holds now (`held`), writing nothing."""
    if os.path.realpath(root) in _HOLDING:  # this process's own
        return
    holder = _held_by(root / LOCK)
    if holder is not None:
        raise MigsimError(_busy(root, what, holder))


def _forget_locks() -> None:
    """In a process forked while this one holds stores (a pool's worker):
    close its copies of the locks' descriptors, so that each lock ends with
    the process that took it and not with the last of its workers (a killed
    command's store was refused while its orphans lived on)."""
    for key, fd in _HOLDING.items():
        if fd >= 0:
            try:
                os.close(fd)
            except OSError:
                pass
            _HOLDING[key] = -1  # not the parent's to release


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_forget_locks)


class Store:
    """A resumable store in ``root``, opened (created, resumed or started over).

    Parameters
    ----------
    root
        The folder; ``None`` keeps nothing (every piece is computed afresh).
    definition
        What the store holds results of, as JSON data; a store resumes only a
        definition equal to its own.
    what
        What the store is of, for messages ("sweep", "decision").
    fresh
        Start over: empty a folder that holds a store, whatever its definition.
    blank
        The manifest of a new store (must hold ``definition``); default
        ``{"definition": definition}``.
    names
        How to name a changed definition key in messages (e.g. ``"-n"`` for
        ``replications``); unnamed keys are shown as they are.
    restart
        How the caller's command says ``fresh``, in messages (``--fresh``;
        ``migsim report`` says ``--overwrite``).
    pieces
        What the pieces are, in messages ("points", "batches").

    Raises
    ------
    MigsimError
        ``root`` holds a store of another definition (and not ``fresh``), or
        files that are not a store.
    """

    def __init__(
        self,
        root: str | Path | None,
        definition: Mapping[str, Any],
        *,
        what: str,
        fresh: bool = False,
        blank: Mapping[str, Any] | None = None,
        names: Mapping[str, str] | None = None,
        restart: str = "--fresh",
        pieces: str = "pieces",
    ):
        self._take(root, definition, what, blank, restart)
        #: the code each finished piece was computed with (None: not recorded)
        self.sources: dict[str, str | None] = {}
        if self.root is None:
            return
        clear_stale_writes(self.root)  # a decision's write killed over its store
        self._refuse_foreign()
        if fresh and (self.root / MANIFEST).is_file():  # even one that is unreadable
            _empty(self.root)
        self._vet(names or {})
        make_folder(self.points)
        for folder in (self.root, self.points):  # writes cut short by a kill
            remove_stray_temporaries(folder)
        self._survey()
        self._warn_other_sources(pieces)
        self.save()

    @classmethod
    def check(
        cls,
        root: str | Path | None,
        definition: Mapping[str, Any],
        *,
        what: str,
        fresh: bool = False,
        blank: Mapping[str, Any] | None = None,
        names: Mapping[str, str] | None = None,
        restart: str = "--fresh",
    ) -> None:
        """Refuse now what opening the store would refuse, and write nothing.

        For a command that has other work to do before it opens its store (a
        report runs its scenarios, then decides its question): a store of
        another definition, or one another running command holds (`held`),
        is refused before that work, not after it. The parameters are the
        constructor's.

        Raises
        ------
        MigsimError
            As the constructor does.
        """
        store = cls.__new__(cls)
        store._take(root, definition, what, blank, restart)
        if store.root is None:
            return
        _refuse_held_now(store.root, what)  # refused by `held` when it is opened
        clear_stale_writes(store.root)  # the store a killed write moved aside
        store._refuse_foreign()
        if fresh and (store.root / MANIFEST).is_file():
            return  # it would be emptied
        store._vet(names or {})

    def _take(
        self,
        root: str | Path | None,
        definition: Mapping[str, Any],
        what: str,
        blank: Mapping[str, Any] | None,
        restart: str,
    ) -> None:
        self.root = None if root is None else Path(root)
        self.restart = restart
        self.definition = json.loads(json.dumps(definition))  # as stored and read
        self.what = what
        self.manifest: dict[str, Any] = dict(blank or {"definition": definition})

    def _refuse_foreign(self) -> None:
        """Refuse a folder whose ``manifest.json`` migsim did not write (a web
        app's, say) beside files of its own: ``fresh`` emptied it, and the
        message for its manifest said to rerun with ``fresh``. A store of
        damaged manifest and nothing else is still started over."""
        assert self.root is not None
        manifest = self.root / MANIFEST
        if not manifest.is_file() or written_by_migsim(manifest):
            return
        if not _only_a_store(self.root):
            raise MigsimError(
                f"{self.root}: exists and is not a {self.what} store (its "
                f"{MANIFEST} is not one migsim wrote); choose another folder"
            )

    def _vet(self, names: Mapping[str, str]) -> None:
        """Take the manifest of a store of this definition, refusing one of
        another definition or a folder that is not a store."""
        assert self.root is not None
        stored = self._read_manifest()
        if stored is not None:
            self._check(stored.get("definition") or {}, names)
            self.manifest = stored
        elif self.root.exists() and not _only_a_first_write(self.root):
            raise MigsimError(
                f"{self.root}: exists and is not a {self.what} store (no {MANIFEST}); "
                "choose another folder"
            )

    def _survey(self) -> None:
        """Read which code computed each finished piece (`sources`), and remove
        the pieces that are not readable Parquet (they are computed again),
        saying so in one line each on stderr."""
        import pyarrow as pa

        for path in sorted(self.points.glob("*.parquet")):
            try:
                if not path.is_file():
                    raise OSError("not a regular file")
                self.sources[path.stem] = _recorded_source(path)
            except (OSError, ValueError, pa.ArrowException) as exc:
                reason = " ".join(str(exc).split())[:80] or type(exc).__name__
                if path.is_dir() and not path.is_symlink():
                    shutil.rmtree(path)
                else:
                    path.unlink()
                print(
                    f"{path}: damaged ({reason}); removed, it is computed again",
                    file=sys.stderr,
                )

    def _warn_other_sources(self, pieces: str) -> None:
        """One line on stderr when finished pieces were computed by other code
        than this (or by a migsim that did not record its code): they are kept,
        and the manifest names each one's code.

        Said once per code: the manifest records which code was told of how
        many such pieces (`ANNOUNCED`, saved with it when the store opens), and
        a rerun of that code over no more of them is not told again (every
        resume repeated the same line, the store unchanged). Other code, or
        more pieces of other code, is told; with none the record goes.
        """
        here = source_sha256()
        other = sum(source != here for source in self.sources.values())
        if not other:
            self.manifest.pop(ANNOUNCED, None)
            return
        told = self.manifest.get(ANNOUNCED)
        if not (
            isinstance(told, dict)
            and told.get(SOURCE) == here
            and isinstance(told.get(pieces), int)
            and other <= told[pieces]
        ):
            print(
                f"{self.root}: {other:,} of {len(self.sources):,} finished "
                f"{pieces} were computed by other migsim source than this "
                f"({SOURCE} differs or was not recorded); kept, each with its "
                f"own in {MANIFEST}; rerun with {self.restart} to compute them "
                "again with this code",
                file=sys.stderr,
            )
        self.manifest[ANNOUNCED] = {SOURCE: here, pieces: other}

    def _read_manifest(self) -> dict[str, Any] | None:
        assert self.root is not None
        path = self.root / MANIFEST
        if not path.exists():
            return None
        try:  # a FIFO or a device waited for ever, or filled memory
            data = read_regular(path, max_bytes=None)
        except OSError as exc:
            raise MigsimError(
                f"{path}: cannot read: {exc.strerror or exc}; rerun with "
                f"{self.restart} to start over"
            ) from None
        try:
            stored = json.loads(data.decode("utf-8"))
        except ValueError as exc:
            raise MigsimError(
                f"{path}: unreadable ({exc}); rerun with {self.restart} to start over"
            ) from None
        # each key of a new manifest holds the same kind of JSON value (a hand
        # edit or another program's file otherwise failed deep in the run)
        shape = {"definition": {}, **self.manifest}
        if not isinstance(stored, dict) or any(
            not isinstance(stored.get(key), type(value))
            for key, value in shape.items()
            if isinstance(value, dict | list)
        ):
            keys = ", ".join(
                f"{k} ({'an object' if isinstance(v, dict) else 'a list'})"
                for k, v in shape.items()
                if isinstance(v, dict | list)
            )
            raise MigsimError(
                f"{path}: not a {self.what} manifest (a JSON object with {keys}); "
                f"rerun with {self.restart} to start over"
            )
        return stored

    def _check(self, stored: Mapping[str, Any], names: Mapping[str, str]) -> None:
        """Refuse a store of another definition, naming what changed."""
        if stored == self.definition:
            return
        keys = [*self.definition, *(k for k in stored if k not in self.definition)]
        changed = [
            names.get(k, k) for k in keys if stored.get(k) != self.definition.get(k)
        ]
        raise MigsimError(
            f"{self.root}: holds a different {self.what} (differs in "
            f"{', '.join(changed)}); rerun with {self.restart} to start over"
        )

    # ------------------------------------------------------------------ pieces
    @property
    def points(self) -> Path:
        """The folder of finished pieces."""
        assert self.root is not None
        return self.root / POINTS

    def path(self, name: str) -> Path:
        """The file of piece ``name``."""
        return self.points / f"{name}.parquet"

    def has(self, name: str) -> bool:
        """Whether piece ``name`` is finished."""
        return self.root is not None and self.path(name).exists()

    def get(self, name: str, columns: list[str] | None = None) -> pd.DataFrame | None:
        """A finished piece, or ``None`` when it is not (or nothing is kept)."""
        if not self.has(name):
            return None
        import pandas as pd

        return pd.read_parquet(self.path(name), columns=columns)

    def put(self, name: str, frame: pd.DataFrame) -> Path | None:
        """Keep a finished piece (atomically), the code that computed it in its
        metadata (`source`); the manifest is saved by `save`."""
        if self.root is None:
            return None
        import pyarrow as pa
        import pyarrow.parquet as pq

        here = source_sha256()
        table = pa.Table.from_pandas(frame, preserve_index=False)  # as to_parquet
        table = table.replace_schema_metadata(
            {**(table.schema.metadata or {}), SOURCE.encode(): here.encode()}
        )
        path = self.path(name)
        atomic_write(
            path,
            lambda temporary: pq.write_table(table, temporary, compression="snappy"),
        )
        self.sources[name] = here
        return path

    def source(self, name: str) -> str | None:
        """The ``migsim_source_sha256`` of the code that computed finished piece
        ``name``; None when it was not recorded (a store of an older migsim)."""
        if name not in self.sources and self.has(name):
            self.sources[name] = _recorded_source(self.path(name))
        return self.sources.get(name)

    def save(self) -> None:
        """Write the manifest (atomically): after a piece, so it never names one
        that is not on disk."""
        if self.root is None:
            return
        text = json.dumps(self.manifest, indent=2, allow_nan=False) + "\n"
        atomic_text(self.root / MANIFEST, text)
