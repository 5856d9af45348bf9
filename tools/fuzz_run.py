"""Running one fuzz case and sorting what happened into a category (`run_case`).

Each step runs ``migsim`` as a subprocess in the case's folder, in its own process
group, with a memory limit and a timeout (`TIMEOUT`, which the command line sets);
see `fuzz_campaign` for the categories.
"""

from __future__ import annotations

import os
import re
import resource
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml
from fuzz_checks import OUTCOMES, ROOT, check_run_output
from fuzz_mutations import Case, Outcome, Step

TIMEOUT = 20.0
MEMORY_LIMIT = 6 * 2**30  # bytes of address space per migsim process
MARKER = "MIGSIM_FUZZ_CASE"  # environment variable that tags a case's processes


# ============================================================================ running
def _preexec() -> None:
    """In the child: its own process group, a memory limit, and Ctrl-C's default
    action (a shell without job control starts background jobs ignoring it)."""
    os.setsid()
    signal.signal(signal.SIGINT, signal.SIG_DFL)
    resource.setrlimit(resource.RLIMIT_AS, (MEMORY_LIMIT, MEMORY_LIMIT))


def _command(step: Step, case_dir: Path) -> list[str]:
    """The command line of a step; a disk fault wraps it in a mount namespace.

    ``readonly`` bind-mounts ``ro/`` read-only (writes fail with EROFS);
    ``full`` mounts a 32 KiB tmpfs on ``ro/`` (writes fail with ENOSPC) and
    lists what is left on it afterwards, since the mount ends with the command.
    """
    cmd = [sys.executable, "-m", "migsim", *step.argv]
    if step.fault == "readonly":
        script = 'mount --bind -o ro ro ro && exec "$@"'
    elif step.fault == "readonly_out":  # the output folder itself, a mount point
        script = f'mount --bind -o ro {step.outputs[0]} {step.outputs[0]} && exec "$@"'
    elif step.fault == "full":
        listing = case_dir.parent / f"{case_dir.name}.full"
        script = (
            'mount -t tmpfs -o size=32k tmpfs ro && { "$@"; rc=$?; '
            f"find ro -mindepth 1 > {listing}; exit $rc; }}"
        )
    else:
        return cmd
    return ["unshare", "-m", "sh", "-c", script, "sh", *cmd]


def _environment(case_dir: Path, tag: str) -> dict[str, str]:
    temp = case_dir.parent / f"{case_dir.name}.tmp"
    temp.mkdir(exist_ok=True)
    env = dict(os.environ)
    env.update(
        TMPDIR=str(temp),
        PYTHONPATH=str(ROOT),
        MPLCONFIGDIR=str(case_dir.parent / "mpl"),
        OPENBLAS_NUM_THREADS="1",
        OMP_NUM_THREADS="1",
        HOME=str(case_dir.parent),
        **{MARKER: tag},
    )
    return env


def _tagged_processes(tag: str) -> list[int]:
    """Processes still carrying this case's marker in their environment."""
    found = []
    needle = f"{MARKER}={tag}".encode()
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            environ = (entry / "environ").read_bytes()
        except OSError:
            continue
        if needle in environ.split(b"\0"):
            found.append(int(entry.name))
    return found


def _snapshot(directory: Path) -> set[str]:
    out = set()
    for dirpath, dirnames, filenames in os.walk(directory):
        rel = Path(dirpath).relative_to(directory)
        for name in (*dirnames, *filenames):
            out.add(str(rel / name))
    return out


def _outside_leftovers(case_dir: Path) -> set[str]:
    """Files a step left in its TMPDIR, or on the full disk it wrote to."""
    left = {f"$TMPDIR/{n}" for n in _snapshot(case_dir.parent / f"{case_dir.name}.tmp")}
    listing = case_dir.parent / f"{case_dir.name}.full"
    if listing.exists():
        left |= set(listing.read_text().split())
        listing.unlink()
    return left


def _resumable_store(step: Step, case_dir: Path, name: str, new: set[str]) -> bool:
    """A sweep's store (its manifest, finished points) is meant to outlive a
    failed run, which resumes it: not a leftover. Its temporaries are."""
    if step.kind != "sweep" or not step.outputs:
        return False
    store = step.outputs[0]
    inside = name == store or name.startswith(f"{store}/")
    manifest = f"{store}/manifest.json"
    return (
        inside
        and (manifest in new or (case_dir / manifest).is_file())
        and not Path(name).name.startswith(".")
    )


#: Python's own spelling of a value, which a planner's message must not show
#: (``np.int64(5)``, ``datetime.date(2019, 1, 1)``).
_REPR = re.compile(r"\bnp\.[a-z_]+\d*\(|\bnp\.(?:True|False)_|\bdatetime\.\w+\(")


def _one_line_error(stderr: str) -> tuple[bool, str]:
    lines = [line for line in stderr.splitlines() if line.strip()]
    if "Traceback" in stderr:
        return False, "traceback"
    if len(lines) != 1:
        return False, f"{len(lines)} lines on stderr"
    if _REPR.search(lines[0]):
        return False, f"a Python repr in the message: {_REPR.search(lines[0])[0]}"
    if "YAML error:" in lines[0]:
        return False, "a YAML error without its line"
    return True, ""


def _judge_outputs(step: Step, case_dir: Path) -> list[str]:
    problems: list[str] = []
    if step.kind in {"run", "forecast"} and step.outputs:
        target = case_dir / step.outputs[0]
        if target.is_dir():
            problems += check_run_output(target)
        else:
            problems.append(f"{step.outputs[0]} missing after exit 0")
    if step.kind == "calibrate":
        target = case_dir / step.outputs[0]
        try:
            data = yaml.safe_load(target.read_text())
            for cohort in data["cohorts"]:
                rates = cohort["outcomes"]
                if rates.get("dist") != "dirichlet":
                    values = [float(rates[k]) for k in OUTCOMES]
                    if not (abs(sum(values) - 1) < 1e-6 and min(values) >= 0):
                        problems.append(f"calibrated rates of {cohort['name']} invalid")
        except (OSError, KeyError, TypeError, ValueError, yaml.YAMLError) as exc:
            problems.append(f"calibrated scenario unreadable: {exc}")
    if step.kind == "sweep":
        if not (case_dir / step.outputs[0] / "sweep.parquet").exists():
            problems.append("sweep.parquet missing after exit 0")
    return problems


def _staging(names: set[str]) -> list[str]:
    """Names that look like temporary or staging files of an interrupted write."""
    markers = ("migsim-daily-", ".tmp", ".old.", ".staging", ".partial")
    return sorted(
        n
        for n in names
        if Path(n).name.startswith(".") or any(m in Path(n).name for m in markers)
    )


def run_case(case: Case, scratch: Path, actuals_text: str) -> Outcome:
    """Write a case's inputs into a fresh folder, run its steps, judge them."""
    case_dir = Path(tempfile.mkdtemp(prefix="case-", dir=scratch))
    os.chmod(case_dir, 0o777)
    for rel, content in case.files.items():
        path = case_dir / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        if content == "@@ACTUALS@@":
            content = actuals_text
        if isinstance(content, bytes):
            path.write_bytes(content)
        else:
            path.write_text(content)
    if case.setup:
        case.setup(case_dir)
    for dirpath, dirnames, filenames in os.walk(case_dir):
        for name in (*dirnames, *filenames):
            path = Path(dirpath) / name
            if not path.is_symlink() and not path.is_fifo():
                os.chmod(path, 0o777 if path.is_dir() else 0o666)
    if (case_dir / "ro").is_dir():
        os.chmod(case_dir / "ro", 0o555)
    started = time.monotonic()
    try:
        return _run_steps_of(case, case_dir, started)
    finally:
        for pid in _tagged_processes(case_dir.name):
            try:
                os.kill(pid, signal.SIGKILL)  # processes this case started
            except ProcessLookupError:
                pass
        shutil.rmtree(case_dir, ignore_errors=True)
        shutil.rmtree(case_dir.parent / f"{case_dir.name}.tmp", ignore_errors=True)


def _run_steps_of(case: Case, case_dir: Path, started: float) -> Outcome:
    env = _environment(case_dir, case_dir.name)
    validated = False
    stderr = ""
    for step in case.steps:
        before = _snapshot(case_dir)
        proc = subprocess.Popen(
            _command(step, case_dir),
            cwd=case_dir,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            preexec_fn=_preexec,
        )
        if step.fault in INTERRUPTS:
            return _judge_kill(case, step, proc, case_dir, before, started)
        try:
            out, err = proc.communicate(timeout=TIMEOUT)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.communicate()
            return Outcome(case, "hang", f"{step.argv[0]} over {TIMEOUT:.0f} s")
        stderr = err.decode(errors="replace")
        seconds = time.monotonic() - started
        after = _snapshot(case_dir)
        new = after - before | _outside_leftovers(case_dir)
        code = proc.returncode
        if code < 0:
            return Outcome(case, "crash", f"signal {-code}", stderr[-3000:], seconds)
        if code not in (0, 2) or "Traceback" in stderr:
            if validated and step.kind == "run":
                return Outcome(
                    case,
                    "disagree",
                    "validate ok, run crashed",
                    stderr[-3000:],
                    seconds,
                )
            return Outcome(case, "traceback", f"exit {code}", stderr[-3000:], seconds)
        if code == 2:
            if validated and step.kind == "run":
                return Outcome(
                    case,
                    "disagree",
                    "validate ok, run refused",
                    stderr[-3000:],
                    seconds,
                )
            ok, why = _one_line_error(stderr)
            if not ok:
                return Outcome(case, "messy_error", why, stderr[-3000:], seconds)
            new = {n for n in new if not _resumable_store(step, case_dir, n, new)}
            if new:
                return Outcome(
                    case,
                    "leftovers",
                    f"left {sorted(new)[:5]}",
                    stderr[-3000:],
                    seconds,
                )
            for rel in case.keep:
                if not (case_dir / rel).exists():
                    return Outcome(
                        case, "wrong_result", f"{rel} deleted", stderr, seconds
                    )
            return Outcome(case, "clean_error", "", stderr, seconds)
        # exit 0
        if case.must_refuse:
            return Outcome(
                case, "wrong_result", case.must_refuse, stderr[-3000:], seconds
            )
        for rel in case.keep:
            if not (case_dir / rel).exists():
                return Outcome(case, "wrong_result", f"{rel} deleted", stderr, seconds)
        problems = _judge_outputs(step, case_dir)
        if problems:
            return Outcome(
                case, "wrong_result", "; ".join(problems[:3]), stderr[-3000:], seconds
            )
        stray = _staging(new) + sorted(n for n in new if n.startswith("$TMPDIR/"))
        if stray:
            return Outcome(case, "leftovers", f"left {stray[:5]}", stderr, seconds)
        validated = step.kind == "validate"
    return Outcome(case, "ok", "", stderr[-500:], time.monotonic() - started)


#: How a step is interrupted mid-way: SIGKILL to the parent only (its workers
#: must notice by themselves), SIGINT to the process group (Ctrl-C in a
#: terminal) or SIGTERM to the parent (``kill PID``).
INTERRUPTS = ("kill", "sigint", "sigterm")


def _judge_kill(case, step, proc, case_dir, before, started) -> Outcome:
    """Interrupt a step mid-run (`INTERRUPTS`); workers must follow, nothing may
    stay behind, no traceback is printed, and a rerun must finish (a sweep or a
    decision resuming its store, to the same result as a run never stopped)."""
    time.sleep(step.kill_after)
    if proc.poll() is not None:
        err = proc.stderr.read().decode(errors="replace")
        return Outcome(
            case,
            "ok" if proc.returncode == 0 else "traceback",
            "finished before the kill",
            err[-2000:],
        )
    if step.fault == "sigint":
        os.killpg(proc.pid, signal.SIGINT)
    elif step.fault == "sigterm":
        proc.send_signal(signal.SIGTERM)
    else:
        proc.kill()
    try:
        _, err_bytes = proc.communicate(timeout=30)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.communicate()
        return Outcome(case, "hang", f"still running 30 s after {step.fault}")
    stopped = err_bytes.decode(errors="replace")
    if "Traceback" in stopped or len(stopped.strip().splitlines()) > 1:
        category = "traceback" if "Traceback" in stopped else "messy_error"
        return Outcome(case, category, f"after {step.fault}", stopped[-3000:])
    deadline = time.monotonic() + 5
    survivors = _tagged_processes(case_dir.name)
    while survivors and time.monotonic() < deadline:
        time.sleep(0.2)
        survivors = _tagged_processes(case_dir.name)
    seconds = time.monotonic() - started
    if survivors:
        return Outcome(
            case,
            "leftovers",
            f"{len(survivors)} worker(s) outlived the killed parent",
            "",
            seconds,
        )
    # a rerun must clean up stale staging and finish (a sweep resumes)
    env = _environment(case_dir, case_dir.name)
    argv = [a for a in step.argv]
    if step.kind == "run":
        argv = [*argv[: argv.index("-n") + 1], "2", *argv[argv.index("-n") + 2 :]]
        argv.append("--overwrite")
    rerun = subprocess.run(
        [sys.executable, "-m", "migsim", *argv],
        cwd=case_dir,
        env=env,
        capture_output=True,
        timeout=600,
        preexec_fn=_preexec,
    )
    err = rerun.stderr.decode(errors="replace")
    if rerun.returncode != 0:
        return Outcome(
            case,
            "traceback" if "Traceback" in err else "messy_error",
            f"rerun after the kill: exit {rerun.returncode}",
            err[-3000:],
            seconds,
        )
    stray = _staging(_snapshot(case_dir))
    stray += sorted(n for n in _outside_leftovers(case_dir) if n.startswith("$TMPDIR/"))
    if stray:
        return Outcome(case, "leftovers", f"after rerun: {stray[:5]}", err, seconds)
    problems = _judge_outputs(step, case_dir) + _same_as_uninterrupted(
        step, case_dir, env
    )
    if problems:
        return Outcome(case, "wrong_result", "; ".join(problems[:3]), err, seconds)
    return Outcome(case, "ok", f"{step.fault}, no workers left, rerun clean", err)


#: The files of a resumed store that must equal a store never interrupted.
_SAME = {"sweep": ("sweep.parquet",), "decide": ("candidates.csv",)}


def _same_as_uninterrupted(step: Step, case_dir: Path, env) -> list[str]:
    """A sweep or decision resumed after an interrupt, against one run whole."""
    names = _SAME.get(step.kind, ())
    if not names or step.fault == "kill":  # the first round's kills: as before
        return []
    store = step.outputs[0]
    argv = [a if a != store else f"{store}.whole" for a in step.argv]
    whole = subprocess.run(
        [sys.executable, "-m", "migsim", *argv],
        cwd=case_dir,
        env=env,
        capture_output=True,
        timeout=900,
        preexec_fn=_preexec,
    )
    if whole.returncode != 0:
        return [f"the uninterrupted run failed: exit {whole.returncode}"]
    return [
        f"{store}/{name} differs from a {step.kind} never interrupted"
        for name in names
        if (case_dir / store / name).read_bytes()
        != (case_dir / f"{store}.whole" / name).read_bytes()
    ]
