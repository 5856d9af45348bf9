"""Runner: many seeded replications of one scenario, on processes or a Dask cluster.

Replication k always draws from streams derived from ``(seed, k)``, so its
numbers do not depend on the worker count, on how replications are batched, or
on which other replications run. Replications run in contiguous batches whose
size depends only on the scenario and the count (never on the workers); each
finished batch comes back as its figures plus its daily rows, and the daily rows
are appended to one Parquet file in replication order, so memory stays flat in
the replication count and the file is the same for any worker count.

Twins (the variance split's day-to-day share: a rerun of replication k with
its input draws and fresh day-to-day streams, for the replications
`migsim.results.variance.twinned` names) run in the batch of their replication,
on the workers, so the split costs the main process nothing and is the same for
any worker count.

A replication that raises is a failure, not the end of the run: it is recorded
(index, seed, error and traceback) and the others go on; the `Results` then
carry the failures, and its summary and the CLI's exit status say so. With
``fail_fast`` the first failure stops the run instead (`ReplicationFailed`).

Where batches run is an *executor*: this process (``workers=1``), a local process
pool (``workers=N``) or an existing Dask distributed cluster (``scheduler=
"tcp://HOST:PORT"``). Sweeps use the same executors for their points.

Ctrl-C reaches the whole process group: in a pool's workers it stops the batch
each runs, quietly, and this process ends the pool. A worker
that dies (killed, out of memory) stops the run with `WorkerDied`, one line
naming it, where the pool used to raise ``BrokenProcessPool``.
"""

from __future__ import annotations

import math
import multiprocessing
import os
import signal
import threading
import time
import traceback
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from pathlib import Path
from typing import Any

from migsim.common.errors import MigsimError, WorkerDied
from migsim.common.files import SpillFile
from migsim.common.lifeline import die_with_parent, ignore_interrupts, interrupts_held
from migsim.common.memory import reuse_block_arrays, unmap_large_frees
from migsim.model.limits import (
    MAX_REPLICATIONS,
    check_memory,
    run_seed,
    whole_number,
)
from migsim.model.scenario import Scenario, load_scenario
from migsim.results.daily import Batch, DailyWriter, Failure
from migsim.results.figures import FigureTable
from migsim.results.results import Results
from migsim.results.variance import twinned
from migsim.sim.block import (
    MAX_BLOCK,
    MIN_BLOCK,
    MIN_KERNEL_BLOCK,
    run_blocks_with_twins,
    supports,
    worth_a_block,
)
from migsim.sim.engine import run_replication
from migsim.sim.prepare import prepare
from migsim.sim.records import RunLog

__all__ = [
    "Executor",
    "ReplicationFailed",
    "executor",
    "run",
    "run_batch",
    "simulate_batch",
]

#: Daily rows per batch, at most: bounds the memory a batch in flight takes.
BATCH_ROWS = 20_000
#: Batches per run, at least (when there are enough replications): keeps workers busy.
MIN_BATCHES = 16
#: The same bounds when the batch can run as one block (`migsim.sim.block`): a
#: block's cost per replication falls with its size up to about 100, and each
#: replication in it holds ~1.5 MB while it runs, so batches are larger but
#: bounded: 50,000 daily rows (68 replications of a two-cohort year; measured,
#: a worker's peak at 10,000 replications stays within 1.5x that at 100), and
#: never fewer than `MIN_BLOCK` (a smaller batch would run one at a time); a
#: multiple of `MIN_BLOCK_BATCHES` equal batches (`_even_blocks`).
BLOCK_ROWS = 50_000
MIN_BLOCK_BATCHES = 4
#: Seconds to wait for a Dask scheduler before giving up.
CONNECT_TIMEOUT = 10


def run_batch(scenario: Scenario, seed: int, replications: list[int]) -> list[RunLog]:
    """Simulate the given replication indices in this process."""
    return [run_replication(scenario, seed, k) for k in replications]


class ReplicationFailed(RuntimeError):
    """A replication raised and the run was told to stop at the first failure.

    The replication's own exception is the ``__cause__`` (its traceback is
    kept); `failure` records it as data.
    """

    def __init__(self, failure: Failure):
        super().__init__(
            f"replication {failure.replication} (seed {failure.seed}) failed: "
            f"{failure.error}"
        )
        self.failure = failure

    def __reduce__(self) -> tuple[Any, ...]:
        # rebuilt from the record when it crosses from a worker process
        return (type(self), (self.failure,))


def _failure(seed: int, replication: int, exc: Exception) -> Failure:
    return Failure(
        replication=replication,
        seed=seed,
        error=f"{type(exc).__name__}: {exc}",
        traceback="".join(traceback.format_exception(exc)),
    )


def simulate_batch(
    scenario: Scenario,
    seed: int,
    replications: list[int],
    daily: bool = True,
    fail_fast: bool = False,
    twins: bool = False,
) -> Batch:
    """Simulate a batch and reduce it to what the parent keeps.

    Figures and daily rows of the replications that finished, and a `Failure`
    for each one that raised (an ``Exception``: an interrupt still stops the
    run). With ``fail_fast`` the first failure raises `ReplicationFailed`.
    With ``twins``, each `twinned` replication that drew inputs is run again as
    its twin (its figures only); a twin that raises loses its pair, no more.
    """
    if worth_a_block(scenario, len(replications)):
        try:  # the block engine: the same logs, a block at a time
            done, paired = run_blocks_with_twins(
                scenario, seed, replications, twinned if twins else _never
            )
            return Batch.from_logs(scenario, done, daily, [], paired)
        except Exception:  # noqa: S110 - one at a time below says which one fails
            pass
    logs: list[RunLog] = []
    twin_logs: list[RunLog] = []
    failures: list[Failure] = []
    for k in replications:
        try:
            log = run_replication(scenario, seed, k)
        except Exception as exc:  # a failing replication is data (issue 12)
            failure = _failure(seed, k, exc)
            if fail_fast:
                raise ReplicationFailed(failure) from exc
            failures.append(failure)
            continue
        logs.append(log)
        if twins and log.inputs and twinned(k):
            try:
                twin_logs.append(run_replication(scenario, seed, k, 1))
            except Exception as exc:
                if fail_fast:
                    raise ReplicationFailed(_failure(seed, k, exc)) from exc
    return Batch.from_logs(scenario, logs, daily, failures, twin_logs)


def _never(replication: int) -> bool:
    """No replication is twinned (a run without a variance split)."""
    return False


def default_batch_size(scenario: Scenario, replications: int) -> int:
    """Replications per batch: a function of the scenario and the count only."""
    rows = scenario.horizon_days * len(scenario.cohorts)
    if supports(scenario) is None:
        by_memory = min(MAX_BLOCK, max(MIN_BLOCK, BLOCK_ROWS // rows))
        return _even_blocks(replications, by_memory)
    by_memory = max(1, BATCH_ROWS // rows)
    return max(1, min(by_memory, math.ceil(replications / MIN_BATCHES)))


def _even_blocks(replications: int, largest: int) -> int:
    """Block batches of equal size, a multiple of `MIN_BLOCK_BATCHES` of them:
    2 or 4 workers then get the same work, where a ragged count (5 batches of
    the full fleet's 100 replications) left one worker a whole batch behind
    the other. A batch may exceed ``largest`` by a quarter for that; otherwise
    there are more batches. A few dozen replications make fewer batches, each
    of at least `MIN_KERNEL_BLOCK` (30: two of 15, not four of 8 that would
    each run one replication at a time)."""
    needed = math.ceil(replications / largest)
    batches = MIN_BLOCK_BATCHES * max(1, needed // MIN_BLOCK_BATCHES)
    if math.ceil(replications / batches) > largest * 5 // 4:
        batches = MIN_BLOCK_BATCHES * math.ceil(needed / MIN_BLOCK_BATCHES)
    batches = min(batches, max(1, replications // MIN_KERNEL_BLOCK))
    return max(1, math.ceil(replications / batches))


# --------------------------------------------------------------------------- executors
class Executor:
    """Runs calls somewhere and yields their results as they finish.

    `imap` keeps at most ``window`` calls in flight, so finished results that wait
    to be consumed never pile up in memory.
    """

    workers = 1

    def __enter__(self) -> Executor:
        return self

    def __exit__(self, kind: Any, *exc: Any) -> None:
        if kind is not None:  # an error or Ctrl-C: nobody will read the rest
            self.abort()
        self.close()

    def close(self) -> None:
        """Release workers or connections."""

    def abort(self) -> None:
        """Stop the work in flight, before `close` (which would wait for it)."""

    def _submit(self, fn: Callable[..., Any], args: tuple[Any, ...]) -> Any:
        raise NotImplementedError

    def _wait_first(self, pending: set[Any]) -> set[Any]:
        raise NotImplementedError

    def imap(
        self,
        fn: Callable[..., Any],
        calls: Iterable[tuple[Any, ...]],
        *,
        ordered: bool = True,
        window: int | None = None,
    ) -> Iterator[tuple[int, Any]]:
        """Yield ``(index, fn(*args))`` for each call, in order or as they finish."""
        window = window or max(2, 2 * self.workers)
        queue = iter(enumerate(calls))
        pending: dict[Any, int] = {}
        finished: dict[int, Any] = {}
        following = 0

        def top_up() -> None:
            while len(pending) + len(finished) < window:
                item = next(queue, None)
                if item is None:
                    return
                index, args = item
                pending[self._submit(fn, args)] = index

        top_up()
        while pending or finished:
            if ordered and following in finished:
                yield following, finished.pop(following)
                following += 1
                top_up()
                continue
            for future in self._wait_first(set(pending)):
                index = pending.pop(future)
                result = future.result()
                if ordered:
                    finished[index] = result
                else:
                    yield index, result
            top_up()


class _Inline(Executor):
    """Each call runs in this process, when its result is asked for."""

    class _Done:
        def __init__(self, value: Any):
            self.value = value

        def result(self) -> Any:
            return self.value

    def _submit(self, fn: Callable[..., Any], args: tuple[Any, ...]) -> Any:
        return self._Done(fn(*args))

    def _wait_first(self, pending: set[Any]) -> set[Any]:
        return {next(iter(pending))}

    def imap(self, fn, calls, *, ordered=True, window=None):  # noqa: D102
        yield from super().imap(fn, calls, ordered=ordered, window=1)


class _Processes(Executor):
    """A local process pool.

    Ctrl-C reaches the whole process group; each worker printed its own
    KeyboardInterrupt. Now an interrupt stops only the call a worker runs
    (`_interrupt_call`), whose result is then the KeyboardInterrupt, sent back
    whole, and the calls it was given after; this process, interrupted,
    interrupts its workers too (`abort`) and waits for them: killing a worker
    could cut a result it was sending, and the pool then waited for the rest
    of it for ever. A worker that dies breaks the pool: `WorkerDied` says
    which.
    """

    def __init__(self, workers: int):
        self.workers = workers
        # workers end with this process, even when it is killed (no shutdown runs)
        self._pool = ProcessPoolExecutor(
            max_workers=workers,
            # forked, whatever the platform's default: the workers share what
            # `prepare` loaded and inherit SIGINT held (`interrupts_held`)
            mp_context=multiprocessing.get_context("fork"),
            initializer=_start_worker,
            initargs=(
                os.getpid(),
                threading.current_thread() is threading.main_thread(),
            ),
        )
        self._processes: dict[int, Any] = {}  # every worker started, by pid

    def _submit(self, fn: Callable[..., Any], args: tuple[Any, ...]) -> Future:
        with interrupts_held():  # the pool forks its workers in a submit
            future = self._pool.submit(_call, fn, args)
        self._processes.update(self._running())
        return future

    def _running(self) -> dict[int, Any]:
        return dict(getattr(self._pool, "_processes", None) or {})

    def _wait_first(self, pending: set[Any]) -> set[Any]:
        return wait(pending, return_when=FIRST_COMPLETED).done

    def imap(self, fn, calls, *, ordered=True, window=None):  # noqa: D102
        try:
            yield from super().imap(fn, calls, ordered=ordered, window=window)
        except BrokenProcessPool:
            self.close()  # the pool ends and reaps the others: exit codes known
            raise WorkerDied(self._obituary()) from None

    def _obituary(self) -> str:
        """Which worker died and how; the pool then ended the others (SIGTERM)."""
        ended = {pid: p.exitcode for pid, p in self._processes.items() if p.exitcode}
        first = {pid: code for pid, code in ended.items() if code != -signal.SIGTERM}
        detail = "; ".join(
            f"process {pid} ended by {_how(code)}"
            for pid, code in (first or ended).items()
        )
        return f"a worker process died (killed?): {detail or 'no exit status'}"

    def abort(self) -> None:
        """Interrupt the workers' calls (when this process alone was
        interrupted, or failed); `close` then waits for them, briefly."""
        for pid, process in self._running().items():
            if process.exitcode is None:
                try:
                    os.kill(pid, signal.SIGINT)
                except ProcessLookupError:  # pragma: no cover - just ended
                    pass

    def close(self) -> None:
        self._pool.shutdown(wait=True, cancel_futures=True)


def _how(code: int) -> str:
    """A process's exit code in words: ``signal SIGKILL``, ``exit status 1``."""
    if code < 0:
        try:
            return f"signal {signal.Signals(-code).name}"
        except ValueError:
            return f"signal {-code}"
    return f"exit status {code}"


def _start_worker(parent: int, main_thread: bool) -> None:
    """Pool initializer: Ctrl-C interrupts calls only (`_interrupt_call`),
    then `die_with_parent`; a block's day arrays are reused from the heap
    (`common.memory.reuse_block_arrays`)."""
    ignore_interrupts(_interrupt_call)
    die_with_parent(parent, main_thread)
    reuse_block_arrays()


#: In a worker: whether it is running a call (`_call`), and whether it was
#: interrupted (its later calls then stop at once).
_in_call = False
_interrupted = False


def _interrupt_call(signum: int, frame: Any) -> None:
    """A worker's SIGINT handler: stop the call it runs. Waiting for work, it
    printed its KeyboardInterrupt and died; sending a result, it would cut it."""
    global _interrupted
    _interrupted = True
    if _in_call:
        raise KeyboardInterrupt


def _call(fn: Callable[..., Any], args: tuple[Any, ...]) -> Any:
    """``fn(*args)`` in a worker, where an interrupt may stop it."""
    global _in_call
    try:
        _in_call = True
        if _interrupted:  # a call given before the interrupt, run after it
            raise KeyboardInterrupt
        return fn(*args)
    finally:
        _in_call = False


class _Dask(Executor):
    """An existing Dask distributed cluster, reached through its scheduler."""

    def __init__(self, address: str):
        _check_address(address)
        try:
            from distributed import Client, as_completed
        except ImportError as exc:  # pragma: no cover - distributed is a dependency
            raise MigsimError("--scheduler needs the 'distributed' package") from exc
        try:
            self._client = Client(
                address, timeout=CONNECT_TIMEOUT, set_as_default=False
            )
        except (OSError, TimeoutError, ValueError) as exc:
            raise MigsimError(f"--scheduler {address}: cannot connect: {exc}") from None
        self.workers = max(1, sum(self._client.nthreads().values()))
        self._finished = as_completed(loop=self._client.loop)
        self._submitted: list[Any] = []

    def _submit(self, fn: Callable[..., Any], args: tuple[Any, ...]) -> Any:
        future = self._client.submit(fn, *args, pure=False)
        self._finished.add(future)
        self._submitted.append(future)
        return future

    def _wait_first(self, pending: set[Any]) -> set[Any]:
        return {next(self._finished)}

    def close(self) -> None:
        """Cancel what is still queued or running (an error or Ctrl-C stopped the
        run: the cluster must not go on with work nobody will read), then leave."""
        unfinished = [f for f in self._submitted if not f.done()]
        if unfinished:
            self._client.cancel(unfinished, force=True)
        self._client.close()


def _check_address(address: str) -> None:
    """Refuse what is not a scheduler address before Dask spends its timeout on it."""
    from urllib.parse import urlsplit

    parts = urlsplit(address if "://" in address else f"tcp://{address}")
    try:
        port = parts.port
    except ValueError:
        port = None
    known = {"tcp", "tls", "ws", "wss", "ucx", "inproc"}
    if (
        parts.scheme not in known
        or not parts.hostname
        or (port is None and parts.scheme != "inproc")
    ):
        raise MigsimError(
            f"--scheduler {address}: not a scheduler address (tcp://HOST:PORT)"
        )


#: Local worker processes per core, at most. A pool forks every worker at its
#: first call: ``decide -j 10000`` forked ten thousand processes on two cores
#: and held Ctrl-C and ``kill`` until they had all started. More than a few per
#: core only wait their turn, and results are the same for any worker count.
PER_CORE = 4


def local_workers(workers: int) -> int:
    """The local processes to start for ``workers``: at most `PER_CORE` per core."""
    return max(1, min(workers, PER_CORE * (os.cpu_count() or 1)))


def executor(workers: int = 1, scheduler: str | None = None) -> Executor:
    """Where to run: a Dask cluster if ``scheduler`` is given, else local processes.

    Parameters
    ----------
    workers
        Local processes; 1 runs everything in this process (at most
        `PER_CORE` per core are started: `local_workers`).
    scheduler
        Address of a running Dask scheduler (``tcp://HOST:PORT``); its workers
        must have migsim installed.
    """
    if scheduler:
        return _Dask(scheduler)
    workers = local_workers(workers)
    return _Inline() if workers == 1 else _Processes(workers)


# --------------------------------------------------------------------------- run
def run(
    scenario: Scenario | str | Path | dict[str, Any],
    replications: int = 100,
    seed: int | None = None,
    workers: int = 1,
    *,
    first_replication: int = 0,
    daily: bool = True,
    spill_dir: str | Path | None = None,
    scheduler: str | None = None,
    progress: Callable[[int], None] | None = None,
    batch_size: int | None = None,
    fail_fast: bool = False,
    twins: bool = True,
) -> Results:
    """Run ``replications`` seeded replications of a scenario.

    Parameters
    ----------
    scenario
        A `Scenario`, or anything `load_scenario` accepts.
    replications
        How many replications.
    seed
        Run seed; ``None`` takes the scenario's own ``seed``.
    workers
        Processes to use; results are identical for any value.
    first_replication
        Index of the first replication, so a later batch continues the numbering
        and a run of 100 then 100 more equals one run of 200.
    daily
        Keep the daily rows, streamed to a spill file (``Results.daily`` reads it
        back); ``False`` keeps only the figures (sweeps do this).
    spill_dir
        Where the spill file's temporary directory goes (default: the system's
        temporary directory). It is removed with the `Results`.
    scheduler
        Address of a Dask distributed scheduler to run the batches on instead of
        local processes; results are identical.
    progress
        Called with the number of replications each finished batch adds.
    batch_size
        Replications per batch (default: `default_batch_size`); results never
        depend on it.
    fail_fast
        Stop at the first replication that raises (`ReplicationFailed`) instead
        of recording it in ``Results.failures`` and going on.
    twins
        Simulate the variance split's twins with the replications, on the
        workers (about a tenth more work with uncertain inputs); ``False``
        leaves them to be simulated here if the split is ever read (sweeps,
        which never read it).

    Returns
    -------
    Results
        The replications that finished; ``failures`` lists those that did not
        (and the summary has a ``failures`` section when there are any).

    Raises
    ------
    ReplicationFailed
        With ``fail_fast``, at the first failure; without, when every
        replication failed (there is nothing to return).
    """
    scenario = load_scenario(scenario)
    replications = whole_number("replications", replications, 1, MAX_REPLICATIONS)
    workers = whole_number("workers", workers, 1, None)
    seed = scenario.seed if seed is None else run_seed(seed)
    last = 2**63 - replications  # replication numbers are int64 in every table
    first_replication = whole_number("first_replication", first_replication, 0, last)
    if batch_size is not None:
        batch_size = whole_number("batch_size", batch_size, 1, None)
    check_memory(scenario, workers)  # before allocating anything
    if seed != scenario.seed:
        # the resolved scenario records the seed used, so its scenario.yaml
        # reproduces this run without --seed
        scenario = scenario.with_overrides({"seed": seed})
    ids = list(range(first_replication, first_replication + replications))
    size = batch_size or default_batch_size(scenario, replications)
    batches = [ids[i : i + size] for i in range(0, len(ids), size)]
    workers = min(workers, len(batches))
    owned = SpillFile(spill_dir) if daily else None
    path = owned.path if owned else None
    writer = DailyWriter(owned.path, scenario.sha256, owned.where) if owned else None
    unmap_large_frees()  # memory flat in the replications (forked workers too)
    if scheduler is None and workers > 1:
        prepare(scenario, size)  # once here: the forked workers share it
    started = time.perf_counter()
    tables: list[FigureTable] = []
    twin_tables: list[FigureTable] = []
    failures: list[Failure] = []
    day_columns: list[str] = []
    finished = False
    try:
        with executor(workers, scheduler) as pool:
            calls = [
                (scenario, seed, batch, daily, fail_fast, twins) for batch in batches
            ]
            for _, batch in pool.imap(simulate_batch, calls, ordered=True):
                tables.append(batch.figures)
                if batch.twins is not None:
                    twin_tables.append(batch.twins)
                failures += batch.failures
                day_columns = batch.day_columns or day_columns
                if writer is not None and batch.daily is not None:
                    writer.append(batch.daily)
                if progress is not None:
                    progress(len(batch.figures.replications) + len(batch.failures))
            used = pool.workers
        if len(failures) == replications:
            raise ReplicationFailed(failures[0])
        finished = True
    finally:
        if writer is not None:
            writer.close()
        if not finished and owned is not None:
            owned.close()
    elapsed = time.perf_counter() - started
    timing: dict[str, float | int | str | None] = {
        "simulate_seconds": round(elapsed, 4),
        "workers": used,
        "cpu_count": os.cpu_count(),
        "seconds_per_replication": round(elapsed / replications, 6),
    }
    if scheduler:
        timing["scheduler"] = scheduler
    return Results(
        scenario,
        seed,
        timing=timing,
        figures=FigureTable.concat(tables),
        daily_path=path,
        day_columns=day_columns,
        spill=owned,
        failures=failures,
        twins=FigureTable.concat(twin_tables) if twin_tables else None,
    )
