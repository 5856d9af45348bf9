"""Hardening: hostile input gets one line and exit 2, never a traceback, a hang,
a wrong number or files left behind (issue 17). Each test here failed before its
fix."""

from __future__ import annotations

import contextlib
import copy
import gc
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner
from conftest import BASELINE, SCENARIOS, cohort, scenario

from migsim.cli.main import main
from migsim.common.errors import MigsimError, ScenarioError
from migsim.common.yamlio import MAX_BYTES, parse_yaml, read_yaml
from migsim.model import limits
from migsim.model.scenario import load_scenario

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tools"))
#: The November 2019 request with known rates (the bundled file's shape may
#: change; these tests edit this text by its lines): the fuzz campaign's own.
from fuzz_campaign import EPCL  # noqa: E402


@pytest.fixture
def base(tmp_path) -> Path:
    """`EPCL` as a scenario file."""
    return write(tmp_path, EPCL, "base.yaml")


def cli(*args, cwd: Path | None = None):
    here = os.getcwd()
    if cwd is not None:
        os.chdir(cwd)
    try:
        return CliRunner().invoke(main, [str(a) for a in args])
    finally:
        os.chdir(here)


def one_line_exit_2(result) -> str:
    assert result.exit_code == 2, (result.exit_code, result.output, result.exception)
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, result.stderr
    assert "Traceback" not in result.output
    return lines[0]


def write(tmp_path: Path, text: str, name: str = "sc.yaml") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def replace_line(text: str, key: str, value: str) -> str:
    return "\n".join(
        f"{key}: {value}" if line.startswith(f"{key}:") else line
        for line in text.splitlines()
    )


# ================================================================== strict YAML
@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("a: 1\nb: 2\na: 3\n", "line 3: duplicate key 'a' (first given at line 1)"),
        ("a: 33:20\n", "33:20 is a base-60 number"),
        ("a: 0100\n", "0100: write whole numbers in decimal"),
        ("a: 0x10\n", "0x10: write whole numbers in decimal"),
        ("a: 2019-02-30\n", "2019-02-30 is not a real date"),
        ("a: " + "9" * 5000 + "\n", "too large"),
        (f"a: {2**63}\n", "too large (at most 2**63 - 1)"),
        ("a: 1e400\n", "number 1e400 is too large"),
        ("a: " + "[" * 100 + "]" * 100 + "\n", "nested deeper than 32 levels"),
        ("a: &a [*a]\n", "an alias refers to itself"),
    ],
)
def test_yaml_surprises_are_errors_with_their_line(tmp_path, text, problem):
    path = write(tmp_path, text, "x.yaml")
    with pytest.raises(MigsimError) as info:
        read_yaml(path)
    assert problem in str(info.value) and str(info.value).startswith(f"{path}: ")


def test_an_alias_bomb_is_refused_quickly(tmp_path):
    levels = "".join(
        f"{c}: &{c} [{', '.join([f'*{p}'] * 9)}]\n"
        for p, c in zip("abcdefgh", "bcdefghi", strict=True)
    )
    path = write(tmp_path, "a: &a [x, x, x, x, x, x, x, x, x]\n" + levels)
    with pytest.raises(MigsimError, match="values once aliases are expanded"):
        read_yaml(path)


def test_numbers_read_as_yaml_1_2_reads_them():
    data = parse_yaml("a: 5e-4\nb: 1_000\nc: 2.5\nd: '33:20'\ne: .inf\nf: 2019-02-28")
    assert data["a"] == 0.0005 and data["b"] == 1000 and data["c"] == 2.5
    assert data["d"] == "33:20" and data["e"] == float("inf")
    assert data["f"].isoformat() == "2019-02-28"


def test_merge_keys_may_still_be_overridden():
    assert parse_yaml("b: &x {k: 1}\nc:\n  <<: *x\n  k: 2\n")["c"] == {"k": 2}


@pytest.mark.parametrize("kind", ["fifo", "directory", "device", "too_large", "loop"])
def test_only_regular_files_of_bounded_size_are_read(tmp_path, kind):
    path = tmp_path / "sc.yaml"
    if kind == "fifo":
        os.mkfifo(path)  # reading it would block forever
    elif kind == "directory":
        path.mkdir()
    elif kind == "device":
        path = Path("/dev/zero")  # reading it would never end
    elif kind == "too_large":
        path.write_text("# comment\n" * (MAX_BYTES // 10 + 1) + EPCL)
    else:
        (tmp_path / "other.yaml").symlink_to(path)
        path.symlink_to(tmp_path / "other.yaml")
    message = one_line_exit_2(cli("validate", path))
    assert f"{path}: cannot read: " in message


def test_a_long_extends_chain_is_refused(tmp_path):
    (tmp_path / "s0.yaml").write_text(EPCL)
    for k in range(1, 40):
        write(tmp_path, f"extends: s{k - 1}.yaml\nname: s{k}\n", f"s{k}.yaml")
    message = one_line_exit_2(cli("validate", tmp_path / "s39.yaml"))
    assert "extends: a chain of more than 16 files" in message


def test_a_name_listed_twice_in_an_extending_file_is_an_error(tmp_path):
    (tmp_path / "base.yaml").write_text(EPCL)
    extra = "  - {name: extra, installations: %d}\n"
    write(
        tmp_path,
        "extends: base.yaml\ncohorts:\n" + extra % 5 + extra % 7,
    )
    message = one_line_exit_2(cli("validate", tmp_path / "sc.yaml"))
    assert message.endswith("sc.yaml: cohorts: 'extra' is listed twice")


def test_a_cohort_overridden_by_name_across_extends_still_merges(tmp_path):
    (tmp_path / "base.yaml").write_text(EPCL)
    write(
        tmp_path,
        "extends: base.yaml\ncohorts:\n  - {name: itron_active, installations: 5}\n",
    )
    sc = load_scenario(tmp_path / "sc.yaml")
    assert sc.cohort("itron_active").installations == 5


# ===================================================== scenario values and --set
@pytest.mark.parametrize(
    ("key", "value", "problem"),
    [
        ("horizon_days", "true", "horizon_days: true/false is not a value here"),
        ("start_date", "0", "start_date: a date (YYYY-MM-DD) is needed here"),
        ("start_date", "2019-02-30", "2019-02-30 is not a real date"),
        ("start_date", "9999-06-01", "outside the dates a scenario may hold"),
        ("horizon_days", "1000000000", "horizon_days: 1,000,000,000 is outside"),
        ("seed", "9" * 5000, "too large"),
        ("clearance_share", "1e-300", "clearance_share: 1e-300 is outside"),
    ],
)
def test_scenario_values_that_cannot_be_right_are_refused(
    tmp_path, key, value, problem
):
    path = write(tmp_path, replace_line(EPCL, key, value))
    for args in (["validate", path], ["run", path, "-n", "1"]):
        message = one_line_exit_2(cli(*args))
        assert problem in message, message
    assert sorted(p.name for p in tmp_path.iterdir()) == ["sc.yaml"]


@pytest.mark.parametrize(
    ("old", "new", "problem"),
    [
        ("daily_cap: 2000", "daily_cap: 33:20", "33:20 is a base-60 number"),
        ("installations: 24000", f"installations: {2**63}", "too large"),
        ("installations: 24000", "installations: 1000000000", "installations"),
        ("max_attempts: 5", "max_attempts: 1000000000", "max_attempts"),
        ("{dist: fixed, days: 2}", "{dist: fixed, days: 10000000}", "days"),
        (
            "{dist: fixed, days: 2}",
            "{dist: lognormal, median: 1e308, sigma: 1}",
            "median",
        ),
        (
            "{dist: fixed, days: 2}",
            "{dist: lognormal, median: 100, sigma: 3}",
            "0.9999 quantile",
        ),
        (
            "outcomes: {success: 0.93, stall: 0.068, rollback: 0.0005, "
            "fix_forward: 0.001, dumb: 0.0005}",
            "outcomes: {dist: dirichlet, alpha: {success: 1e308, stall: 1e308, "
            "rollback: 1, fix_forward: 1, dumb: 1}}",
            "pseudo-attempts",
        ),
        ("success: 0.93, stall: 0.068", "success: .nan, stall: 0.068", "finite"),
    ],
)
def test_values_past_their_limit_name_the_field_and_bound(tmp_path, old, new, problem):
    assert old in EPCL
    path = write(tmp_path, EPCL.replace(old, new, 1))
    message = one_line_exit_2(cli("validate", path))
    assert message.startswith(f"Error: {path}: ") and problem in message, message


def test_every_bundled_scenario_fits_the_limits_with_room():
    for path in sorted(SCENARIOS.rglob("*.yaml")):
        if "questions" in path.parts:
            continue
        sc = load_scenario(path)
        assert sc.horizon_days * 3 <= limits.MAX_HORIZON_DAYS
        assert max(c.installations for c in sc.cohorts) * 10 <= 100_000_000
        assert limits.replication_bytes(sc) < 2**30


@pytest.mark.parametrize(
    ("setting", "problem"),
    [
        ("start_date=2019-02-30", "2019-02-30 is not a real date"),
        ("capacity.daily_cap=33:20", "33:20 is a base-60 number"),
        ("cohorts.itron_active.installations=true", "true/false is not a value"),
    ],
)
def test_set_values_are_read_as_a_file_reads_them(setting, problem):
    for command in ("validate", "run"):
        message = one_line_exit_2(cli(command, BASELINE, "--set", setting))
        assert problem in message, message


def test_set_takes_a_rate_in_exponent_notation_as_a_file_does(base):
    key = "cohorts.elster_dormant.outcomes.dumb"
    result = cli("validate", base, "--set", f"{key}=5e-4")
    assert result.exit_code == 0, result.output
    sc = load_scenario(base, {key: "5e-4"})
    assert sc.cohort("elster_dormant").outcomes.dumb == pytest.approx(5e-4)


@pytest.mark.parametrize(
    "args",
    [
        ["sweep", "-o", "sw", "--grid", "start_date=2019-02-30,2019-03-01"],
        ["sensitivity", "-o", "sens", "--range", "start_date=2019-02-30:2019-03-01"],
    ],
)
def test_grids_and_ranges_refuse_impossible_dates(tmp_path, args):
    command, *rest = args
    result = cli(command, BASELINE, "-n", "2", *rest, cwd=tmp_path)
    assert "2019-02-30 is not a real date" in one_line_exit_2(result)
    assert list(tmp_path.iterdir()) == []


def test_a_question_with_an_impossible_date_is_one_line(tmp_path):
    question = yaml.safe_load(
        (SCENARIOS / "questions/opsg_ramp_basis.yaml").read_text()
    )
    question["scenario"] = str(SCENARIOS / "nov2019_cautious_ramp_elster_active.yaml")
    text = yaml.safe_dump(question).replace(
        "confidence: 0.95", "confidence: 0.95\nwhen: 2020-02-30"
    )
    path = write(tmp_path, text, "q.yaml")
    message = one_line_exit_2(cli("decide", path, "-n", "2"))
    assert "2020-02-30 is not a real date" in message


def test_a_scenario_dict_is_checked_against_the_limits_too():
    with pytest.raises(ScenarioError, match="max_attempts: 101 is outside"):
        load_scenario(scenario(cohort("c", 10, max_attempts=101)))


# ======================================================= memory and schedulers
def test_a_run_too_big_for_the_machine_is_refused_before_allocating(monkeypatch):
    monkeypatch.setattr(limits, "free_memory", lambda: 100_000)
    for args in (["validate", BASELINE], ["run", BASELINE, "-n", "1"]):
        message = one_line_exit_2(cli(*args))
        assert "a replication needs about" in message and "free here" in message


def test_the_memory_estimate_grows_with_what_a_run_allocates():
    small = load_scenario(scenario(cohort("c", 10, max_attempts=2), horizon_days=30))
    longer = small.with_overrides({"horizon_days": 300})
    more = small.with_overrides({"cohorts.c.max_attempts": 20})
    assert limits.replication_bytes(longer) > 5 * limits.replication_bytes(small)
    assert limits.replication_bytes(more) > 4 * limits.replication_bytes(small)


def test_a_scheduler_that_is_not_an_address_is_refused_at_once():
    started = time.monotonic()
    message = one_line_exit_2(cli("run", BASELINE, "-n", "1", "--scheduler", "x y"))
    assert "not a scheduler address" in message
    assert time.monotonic() - started < 10


# ==================================================================== actuals
HEADER = "date,cohort,attempts,successes,stalls,rollbacks,fix_forwards,dumbs"
ACTUALS_SCENARIO = scenario(
    cohort(
        "a",
        600,
        rates={
            "success": 0.8,
            "stall": 0.1,
            "rollback": 0.1,
            "fix_forward": 0.0,
            "dumb": 0.0,
        },
    ),
    cap=100,
    horizon_days=20,
    meters_per_installation=1.6,
)
IMPLAUSIBLE = {
    "absurd attempts": (
        f"{HEADER}\n2024-01-01,a,1000000000000000000000000000000,"
        "1000000000000000000000000000000,0,0,0,0\n",
        "row 1, column attempts: 1e+30 installations is more than cohort a's 600",
    ),
    "float max": (
        f"{HEADER}\n2024-01-01,a,100,80,10,10,0,0\n2024-01-02,a,1e308,0,0,0,0,0\n",
        "row 2, column attempts: 1e+308 installations is more than cohort a's",
    ),
    "completions above stalls": (
        f"{HEADER},stall_completions\n2024-01-01,a,100,80,10,10,0,0,0\n"
        "2024-01-02,a,100,80,10,10,0,0,25\n",
        "row 2, column stall_completions: stall_completions so far exceed stalls",
    ),
    "cumulative above the cohort": (
        "date,cumulative_migrated\n2024-01-05,100\n2024-01-08,10000000\n",
        "row 2, column cumulative_migrated: 10000000 installations is more than "
        "the scenario's 600",
    ),
    "a date past year 2262": (
        f"{HEADER}\n2024-01-01,a,100,80,10,10,0,0\n9999-12-31,a,1,1,0,0,0,0\n",
        "row 2, column date: 9999-12-31 is after 2200-12-31",
    ),
}


@pytest.mark.parametrize("case", list(IMPLAUSIBLE))
def test_implausible_actuals_are_refused_with_row_and_column(tmp_path, case):
    from migsim.evidence.actuals import read_actuals

    text, where = IMPLAUSIBLE[case]
    path = write(tmp_path, text, "actuals.csv")
    with pytest.raises(MigsimError) as info:
        read_actuals(path, load_scenario(ACTUALS_SCENARIO))
    assert where in str(info.value), str(info.value)


def test_meters_are_compared_with_the_cohort_in_meters(tmp_path):
    from migsim.evidence.actuals import read_actuals

    sc = load_scenario(ACTUALS_SCENARIO)
    fits = write(tmp_path, "date,cumulative_migrated\n2024-01-05,960\n", "m.csv")
    assert read_actuals(fits, sc, unit="meters").frame["cumulative_migrated"][0] == 600
    over = write(tmp_path, "date,cumulative_migrated\n2024-01-05,961\n", "o.csv")
    with pytest.raises(MigsimError, match="961 meters is more than the scenario's"):
        read_actuals(over, sc, unit="meters")


@pytest.mark.parametrize("command", ["calibrate", "forecast"])
def test_the_cli_refuses_implausible_actuals_and_writes_nothing(tmp_path, command):
    sc = write(tmp_path, yaml.safe_dump(ACTUALS_SCENARIO), "sc.yaml")
    actuals = write(tmp_path, IMPLAUSIBLE["absurd attempts"][0], "actuals.csv")
    args = [command, sc, "--actuals", actuals, "-n", "2", "-o", tmp_path / "out"]
    if command == "forecast":
        args += ["--as-of", "2024-01-05"]
    message = one_line_exit_2(cli(*args))
    assert "column attempts" in message
    assert sorted(p.name for p in tmp_path.iterdir()) == ["actuals.csv", "sc.yaml"]


# ================================================================= killed runs
def _children(pid: int) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid:
            found.append(int(entry.name))
    return found


def _running(pid: int) -> bool:
    """Alive and not a zombie waiting to be reaped."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


@contextlib.contextmanager
def _a_long_run(tmp_path: Path, command: str, outdir: Path, *extra: str):
    """``migsim COMMAND`` of a long scenario with ``-j 2`` in a child process:
    yields it and its workers once they run; whatever is left is killed after."""
    long = write(tmp_path, replace_line(EPCL, "horizon_days", "1800"))
    args = ["-n", "400", "-j", "2", "-q", "-o", str(outdir), *extra]
    parent = subprocess.Popen(
        [sys.executable, "-m", "migsim", command, str(long), *args],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    workers: list[int] = []
    try:
        deadline = time.monotonic() + 60
        while len(workers) < 2 and time.monotonic() < deadline:
            time.sleep(0.2)
            workers = _children(parent.pid)
        assert len(workers) >= 2, "the workers never started"
        yield parent, workers
    finally:
        parent.kill()
        for pid in workers:  # a failed test's own workers
            if _running(pid):
                os.kill(pid, signal.SIGKILL)


@pytest.mark.skipif(not Path("/proc").is_dir(), reason="needs /proc to find workers")
@pytest.mark.parametrize("command", ["run", "sweep"])
def test_workers_end_when_their_parent_is_killed(tmp_path, command):
    extra = ["--grid", "capacity.daily_cap=1000,1500,2000,2500"]
    with _a_long_run(
        tmp_path, command, tmp_path / "out", *(extra if command == "sweep" else [])
    ) as (parent, workers):
        parent.send_signal(signal.SIGKILL)  # no shutdown code runs in the parent
        parent.wait()
        deadline = time.monotonic() + 5
        while any(_running(w) for w in workers):
            assert time.monotonic() < deadline, "workers outlived their parent"
            time.sleep(0.1)
    if command == "run":  # its streamed daily rows had no name: nothing is left
        assert [p.name for p in tmp_path.iterdir() if p.suffix != ".yaml"] == []


# ============================================================== output folders
def test_overwrite_refuses_a_folder_migsim_did_not_write(tmp_path):
    keep = tmp_path / "keep"
    keep.mkdir()
    (keep / "precious.txt").write_text("mine")
    message = one_line_exit_2(
        cli("run", BASELINE, "-n", "1", "-o", keep, "--overwrite")
    )
    assert "not a folder migsim wrote" in message
    assert [p.name for p in keep.iterdir()] == ["precious.txt"]


def test_outdir_naming_the_working_folder_is_one_line(tmp_path):
    (tmp_path / "summary.json").write_text("{}")  # even a folder migsim wrote
    result = cli(
        "run", BASELINE, "-n", "1", "-q", "-o", ".", "--overwrite", cwd=tmp_path
    )
    assert "is the current folder or holds it" in one_line_exit_2(result)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["summary.json"]


def test_outdir_naming_a_file_is_one_line(tmp_path):
    (tmp_path / "afile").write_text("x")
    result = cli("run", BASELINE, "-n", "1", "-o", "afile", cwd=tmp_path)
    assert "'afile' is a file" in one_line_exit_2(result)


@pytest.mark.parametrize("errno", [28, 30])
def test_a_disk_that_refuses_the_write_is_one_line_and_leaves_nothing(
    tmp_path, monkeypatch, errno
):
    from migsim.results.results import Results

    def refuse(self, directory, *args, **kwargs):
        raise OSError(errno, os.strerror(errno), str(directory))

    monkeypatch.setattr(Results, "write", refuse)
    result = cli("run", BASELINE, "-n", "1", "-q", "-o", "out", cwd=tmp_path)
    assert one_line_exit_2(result) == f"Error: out: {os.strerror(errno)}"
    del result  # the spill folder goes with the results, at the latest at exit
    gc.collect()
    assert list(tmp_path.iterdir()) == []


def test_a_rerun_removes_the_spill_folder_a_killed_run_left(tmp_path):
    stale = tmp_path / "migsim-daily-999999999-abcd"  # no such process
    stale.mkdir()
    (stale / "daily.parquet").write_bytes(b"partial")
    result = cli("run", BASELINE, "-n", "1", "-q", "-o", "out", cwd=tmp_path)
    assert result.exit_code == 0, result.output
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]


def test_calibrate_on_actuals_holding_only_attempts_says_there_is_nothing_to_check(
    tmp_path,
):
    sc = write(tmp_path, yaml.safe_dump(ACTUALS_SCENARIO), "sc.yaml")
    actuals = write(
        tmp_path, "date,cohort,attempts\n2024-01-01,a,100\n2024-01-02,a,100\n", "a.csv"
    )
    result = cli(
        "calibrate", sc, "--actuals", actuals, "-n", "2", "-o", "cal.yaml", cwd=tmp_path
    )
    assert result.exit_code == 0, (result.output, result.exception)
    assert "no actual point to check" in result.output


@pytest.mark.parametrize(
    ("values", "problem"),
    [("{a: 1},2000", "is not a single value"), (".inf,2000", "not a finite number")],
)
def test_a_grid_of_maps_or_infinities_is_refused_before_the_store(
    tmp_path, values, problem
):
    result = cli(
        "sweep",
        BASELINE,
        "-n",
        "2",
        "-o",
        "sw",
        "--grid",
        f"capacity.daily_cap={values}",
        cwd=tmp_path,
    )
    assert problem in one_line_exit_2(result)
    assert list(tmp_path.iterdir()) == []


def test_a_grid_mixing_text_and_numbers_records_the_bad_point(tmp_path):
    import pandas as pd

    result = cli(
        "sweep",
        BASELINE,
        "-n",
        "2",
        "-q",
        "-o",
        "sw",
        "--grid",
        "capacity.daily_cap=lots,2000",
        cwd=tmp_path,
    )
    assert result.exit_code == 0, (result.output, result.exception)
    table = pd.read_parquet(tmp_path / "sw" / "sweep.parquet")
    assert table["capacity.daily_cap"].tolist() == ["lots", "2000"]
    assert table["status"].tolist() == ["invalid", "done"]


def test_a_date_distribution_named_by_a_map_is_one_line():
    message = one_line_exit_2(
        cli(
            "validate",
            SCENARIOS / "nov2019_conditions.yaml",
            "--set",
            "gates.fix_61224.opens_on.dist={a: 1}",
        )
    )
    assert "unknown date dist" in message


def _sweep_killed_at_write(store: Path, k: int, sweep_args: list[str]) -> bool:
    """Run a sweep in a forked child that dies (os._exit, like SIGKILL: no cleanup
    runs) at its k-th rename into place; True if it got that far."""
    pid = os.fork()
    if pid == 0:  # the child: count renames, die at the k-th
        real, count = os.replace, [0]

        def replace(*args, **kwargs):
            count[0] += 1
            if count[0] == k:
                os._exit(99)
            return real(*args, **kwargs)

        os.replace = replace
        try:
            CliRunner().invoke(main, [*sweep_args, "-o", str(store)])
        finally:
            os._exit(0)
    _, status = os.waitpid(pid, 0)
    return os.waitstatus_to_exitcode(status) == 99


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork to kill mid-write")
def test_a_sweep_store_survives_a_kill_at_every_write(tmp_path):
    """Killed at its first manifest write, between a point and the manifest, or
    while writing the table, a rerun resumes and ends as a sweep never killed."""
    tiny = write(tmp_path, replace_line(EPCL, "horizon_days", "60"), "tiny.yaml")
    args = [
        "sweep",
        str(tiny),
        "-n",
        "2",
        "-q",
        "--grid",
        "capacity.daily_cap=1000,2000",
    ]
    whole = tmp_path / "whole"
    assert CliRunner().invoke(main, [*args, "-o", str(whole)]).exit_code == 0
    k = 1
    while True:
        store = tmp_path / f"killed{k}"
        if not _sweep_killed_at_write(store, k, args):
            break  # the sweep finished before its k-th write: every write tried
        resumed = CliRunner().invoke(main, [*args, "-o", str(store)])
        assert resumed.exit_code == 0, (k, resumed.output)
        assert (store / "sweep.parquet").read_bytes() == (
            whole / "sweep.parquet"
        ).read_bytes(), k
        assert not [p for p in store.rglob(".*")], k  # no temporaries left
        k += 1
    assert k > 4  # manifest, points, manifest again, table: each was a kill point


def test_uncertain_dates_and_sizes_have_limits_too():
    sc = load_scenario(BASELINE)  # the bundled file, with its uncertainty
    slip = "cohorts.itron_active.eligible_from.median_days"
    for key, value, problem in (
        (slip, "1e9", "outside the limit 0 to 3,653 days"),
        ("cohorts.itron_active.eligible_from.sigma", "1e3", "outside the limit 0 to 5"),
        ("programme_delay.median", "1e300", "outside the limit 0 to 100"),
    ):
        with pytest.raises(ScenarioError, match=problem):
            sc.with_overrides({key: value})


def test_a_slip_in_the_far_tail_stays_a_date():
    from datetime import date

    from migsim.model.uncertainty import SlipDate

    class Extreme:  # a standard normal of 9 (and no black swan draw)
        def standard_normal(self):
            return 9.0

        def random(self):
            return 0.0

    slip = SlipDate.model_validate(
        {
            "dist": "slip",
            "planned": "2200-12-31",
            "median_days": 3653,
            "sigma": 5,
            "black_swan": {"probability": 1, "factor": 100},
            "shared": True,
        }
    )
    when = slip.draw(Extreme(), programme_factor=1e6)
    assert date(2200, 12, 31) < when < date(2400, 1, 1)


def test_a_decision_whose_candidates_never_clear_still_draws_its_frontier(tmp_path):
    question = yaml.safe_load(
        (SCENARIOS / "questions/opsg_ramp_basis.yaml").read_text()
    )
    question["scenario"] = str(SCENARIOS / "nov2019_cautious_ramp_elster_active.yaml")
    lever = next(iter(question["levers"]))
    question["levers"][lever] = {"low": 4000, "high": 6000, "step": 2000}
    quantile = next(b for b in question["risk_budget"] if "max" in b)
    quantile["max"] = -1  # nothing is safe
    path = write(tmp_path, yaml.safe_dump(question), "q.yaml")
    result = cli(
        "decide", path, "-n", "2", "--max-replications", "2", "-o", "dec", cwd=tmp_path
    )
    assert result.exit_code == 0, (result.output, result.exception)
    assert (tmp_path / "dec" / "frontier.png").stat().st_size > 0


def test_a_sensitivity_range_of_infinities_is_one_line(tmp_path):
    result = cli(
        "sensitivity",
        BASELINE,
        "-n",
        "2",
        "--samples",
        "2",
        "-o",
        "sens",
        "--range",
        "capacity.daily_cap=.inf:.inf",
        cwd=tmp_path,
    )
    assert "low and high must be finite numbers" in one_line_exit_2(result)
    assert list(tmp_path.iterdir()) == []


# ===================================================== names, options, stores
@pytest.mark.parametrize("name", ["../../elsewhere", "..", "a\\b", "tab\there"])
def test_a_scenario_name_that_is_not_a_folder_name_is_refused(tmp_path, name):
    """compare -o and a report write each run to a folder named after its
    scenario: '../../elsewhere' wrote outside the output folder."""
    work = tmp_path / "a" / "b"
    work.mkdir(parents=True)
    write(work, EPCL, "base.yaml")
    text = EPCL.replace("name: nov2019_epcl", f"name: {json_quoted(name)}")
    write(work, text.replace("daily_cap: 2000", "daily_cap: 3000"), "other.yaml")
    result = cli(
        "compare", "base.yaml", "other.yaml", "-n", "1", "-q", "-o", "cmp", cwd=work
    )
    message = one_line_exit_2(result)
    assert message.startswith("Error: other.yaml: name: ")
    assert "a scenario name names a folder" in message
    assert sorted(p.name for p in tmp_path.rglob("*")) == [
        "a",
        "b",
        "base.yaml",
        "other.yaml",
    ]


def test_a_scenario_name_may_be_any_printable_text_without_a_slash():
    data = yaml.safe_load(EPCL)
    data["name"] = "Ünïcødé ramp: 名前 (v2)"
    assert load_scenario(data).name == "Ünïcødé ramp: 名前 (v2)"


def json_quoted(text: str) -> str:
    """A YAML double-quoted scalar of ``text``."""
    return json.dumps(text)


@pytest.mark.parametrize(
    ("args", "option"),
    [
        (["run", BASELINE, "-n", str(10**12)], "'-n' / '--replications'"),
        (["run", BASELINE, "--precision", "nan"], "'--precision'"),
        (["run", BASELINE, "--precision", "1", "--precision-share", "nan"],
         "'--precision-share'"),
        (
            ["run", BASELINE, "--precision", "1", "--max-replications", "1e10"],
            "'--max-replications'",
        ),
        (["calibrate", BASELINE, "--actuals", "a.csv", "-o", "c.yaml",
          "--prior-strength", "nan"], "'--prior-strength'"),
        (["forecast", BASELINE, "--actuals", "a.csv", "--as-of", "2020-01-01",
          "--prior-strength", "inf"], "'--prior-strength'"),
        (["backtest", BASELINE, "--actuals", "a.csv", "--prior-strength", "1e308"],
         "'--prior-strength'"),
        (["backtest", BASELINE, "--actuals", "a.csv", "--prior-strength", "1e-308"],
         "'--prior-strength'"),
        (["sensitivity", BASELINE, "--method", "sobol", "--samples", str(2**40),
          "--range", "capacity.daily_cap=1000:2000"], "'--samples'"),
        (["decide", "q.yaml", "--max-replications", str(10**12)],
         "'--max-replications'"),
    ],
)  # fmt: skip
def test_option_values_no_run_could_use_are_one_line(tmp_path, args, option):
    """-n 10^12 raised MemoryError, --samples 2^40 asked NumPy for 16 TiB,
    --precision nan ran batches for ever, --prior-strength nan raised
    ValueError and inf printed five lines: now click refuses each at once."""
    started = time.monotonic()
    message = one_line_exit_2(cli(*args, cwd=tmp_path))
    assert message.startswith(f"Error: Invalid value for {option}")
    assert time.monotonic() - started < 10
    assert list(tmp_path.iterdir()) == []


def test_a_prior_of_almost_no_attempts_calibrates(tmp_path):
    """Dirichlet alphas near the smallest float (1e-309) made Boost's Beta
    quantile overflow (a traceback); as both Beta parameters go to 0 the prior
    is a Bernoulli, whose central 95% interval is [0, 1] when neither end holds
    97.5%."""
    from migsim.evidence.calibrate import _beta_interval

    assert _beta_interval(0.8e-308, 0.2e-308) == (pytest.approx(0.8), 0.0, 1.0)
    assert _beta_interval(1e-308, 1.0)[1:] == (0.0, 0.0)
    low, high = _beta_interval(2.0, 3.0)[1:]
    assert 0.067 < low < 0.068 and 0.805 < high < 0.806  # scipy's, as before
    data = copy.deepcopy(ACTUALS_SCENARIO)
    alpha = {"success": 8e-309, "stall": 1e-309, "rollback": 1e-309}
    alpha |= {"fix_forward": 0, "dumb": 0}
    data["cohorts"][0]["outcomes"] = {"dist": "dirichlet", "alpha": alpha}
    sc = write(tmp_path, yaml.safe_dump(data), "sc.yaml")
    actuals = write(tmp_path, f"{HEADER}\n2024-01-01,a,100,80,10,10,0,0\n", "a.csv")
    result = cli(
        "calibrate", sc, "--actuals", actuals, "-o", tmp_path / "c.yaml",
        "--no-check",
    )  # fmt: skip
    assert result.exit_code == 0, (result.output, result.exception)
    calibrated = yaml.safe_load((tmp_path / "c.yaml").read_text())["cohorts"][0]
    assert calibrated["outcomes"]["alpha"]["success"] == 80  # the counts


def test_a_comparison_with_a_scenario_that_always_clears_on_one_day(tmp_path):
    """compare of a scenario whose clearance day never varies with one whose
    does crashed on the pairing line (its correlation is undefined)."""
    steady = yaml.safe_load(EPCL)
    steady["name"] = "steady"
    for c in steady["cohorts"]:
        c["outcomes"] = {
            "success": 1.0, "stall": 0.0, "rollback": 0.0, "fix_forward": 0.0,
            "dumb": 0.0,
        }  # fmt: skip
        c["eligible_from"] = steady["start_date"]
    write(tmp_path, EPCL, "base.yaml")
    write(tmp_path, yaml.safe_dump(steady), "steady.yaml")
    result = cli("compare", "base.yaml", "steady.yaml", "-n", "3", "-q", cwd=tmp_path)
    assert result.exit_code == 0, (result.output, result.exception)
    assert "(correlation undefined for the same precision)" in result.output


@pytest.mark.parametrize("option", ["--grid", "--range"])
def test_a_swept_field_given_twice_is_refused(tmp_path, option):
    """--grid capacity.daily_cap=1000 --grid capacity.daily_cap=2000 swept
    2000 only: the first was dropped without a word."""
    cap = "capacity.daily_cap"
    values = ["=1000", "=2000"] if option == "--grid" else ["=1:2", "=3:4"]
    lhs = ["--lhs", "2"] if option == "--range" else []
    result = cli(
        "sweep", BASELINE, "-n", "1", "-o", "sw", *lhs,
        option, cap + values[0], option, cap + values[1], cwd=tmp_path,
    )  # fmt: skip
    assert one_line_exit_2(result) == (
        f"Error: {option} {cap}: given twice; list every value once "
        f"({option} FIELD=...)"
    )
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(
    ("args", "problem"),
    [
        (["--lhs", str(10**9), "--range", "capacity.daily_cap=1:2"], "1,000,000,000"),
        (
            [
                "--grid",
                "capacity.daily_cap=" + ",".join(map(str, range(1, 401))),
                "--grid",
                "horizon_days=" + ",".join(map(str, range(1, 401))),
            ],
            "160,000",
        ),
    ],
)
def test_a_sweep_of_more_points_than_a_store_can_list_is_refused(
    tmp_path, args, problem
):
    """--lhs 10^9 raised MemoryError; a 3,000 x 3,000 grid ran for minutes
    before its first point."""
    result = cli("sweep", BASELINE, "-n", "1", "-o", "sw", *args, cwd=tmp_path)
    assert one_line_exit_2(result) == (
        f"Error: a sweep of {problem} points: at most 100,000 (split it into "
        "several sweeps)"
    )
    assert list(tmp_path.iterdir()) == []


def test_range_without_lhs_says_so(tmp_path):
    result = cli(
        "sweep", BASELINE, "-n", "1", "-o", "sw", "--range", "horizon_days=1:2",
        cwd=tmp_path,
    )  # fmt: skip
    assert one_line_exit_2(result) == "Error: --range needs --lhs K"


@pytest.mark.parametrize(
    "manifest",
    ["[1, 2]", '{"definition": 5}', '{"definition": {}, "points": {}}', "{broken"],
)
def test_a_store_whose_manifest_is_not_one_is_one_line_and_fresh_replaces_it(
    tmp_path, manifest
):
    """A manifest.json holding a list raised AttributeError; one that was not
    JSON said 'rerun with --fresh', and --fresh said the same again."""
    store = tmp_path / "sw"
    store.mkdir()
    (store / "manifest.json").write_text(manifest)
    args = ["sweep", BASELINE, "-n", "1", "-q", "-o", "sw"]
    args += ["--grid", "horizon_days=30"]
    message = one_line_exit_2(cli(*args, cwd=tmp_path))
    assert message.startswith("Error: sw/manifest.json: ")
    assert message.endswith("rerun with --fresh to start over")
    result = cli(*args, "--fresh", cwd=tmp_path)
    assert result.exit_code == 0, (result.output, result.exception)
    assert (store / "sweep.parquet").is_file()


def test_a_sweep_manifest_whose_points_are_not_the_sweeps_is_one_line(tmp_path):
    args = ["sweep", BASELINE, "-n", "1", "-q", "-o", "sw"]
    args += ["--grid", "horizon_days=30,31"]
    assert cli(*args, cwd=tmp_path).exit_code == 0
    manifest = tmp_path / "sw" / "manifest.json"
    stored = json.loads(manifest.read_text())
    stored["points"] = stored["points"][:1]
    manifest.write_text(json.dumps(stored))
    assert one_line_exit_2(cli(*args, cwd=tmp_path)) == (
        "Error: sw/manifest.json: its points are not this sweep's 2 points; "
        "rerun with --fresh to start over"
    )


@pytest.mark.parametrize("summary", ["[]", '{"seed": "0", "replications": 2}'])
def test_a_report_of_a_run_folder_whose_summary_is_not_one_is_one_line(
    tmp_path, summary
):
    """A summary.json holding a list raised AttributeError."""
    run = tmp_path / "run"
    run.mkdir()
    (run / "summary.json").write_text(summary)
    (run / "scenario.yaml").write_text(EPCL)
    message = one_line_exit_2(cli("report", run, "-o", tmp_path / "r.html"))
    assert message == (
        f"Error: {run}/summary.json: not a run's summary (a JSON object with its "
        "seed and replications)"
    )
    assert sorted(p.name for p in tmp_path.iterdir()) == ["run"]


@pytest.mark.parametrize("same", ["file", "name"])
def test_a_report_of_two_scenarios_of_one_name_runs_neither(tmp_path, same):
    """Both run into <report>_runs/<name>/: the second was refused after the
    first had been run and written, which stayed behind looking finished."""
    write(tmp_path, EPCL, "a.yaml")
    write(tmp_path, EPCL.replace("daily_cap: 2000", "daily_cap: 3000"), "b.yaml")
    second = "a.yaml" if same == "file" else "b.yaml"
    result = cli("report", "a.yaml", second, "-n", "1", "-o", "r.html", cwd=tmp_path)
    assert one_line_exit_2(result) == (
        "Error: scenario names must differ in a report: nov2019_epcl (each runs "
        "into r_runs/<name>/; rename one, or give a file once)"
    )
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.yaml", "b.yaml"]


def test_a_report_that_fails_after_a_run_leaves_no_run_behind(tmp_path, monkeypatch):
    import migsim.output.report as report_module

    def broken(*args, **kwargs):
        raise MigsimError("the page cannot be drawn")

    monkeypatch.setattr(report_module, "render_report", broken)
    write(tmp_path, EPCL, "a.yaml")
    result = cli("report", "a.yaml", "-n", "1", "-o", "r.html", cwd=tmp_path)
    assert one_line_exit_2(result) == "Error: the page cannot be drawn"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.yaml"]


@pytest.mark.parametrize("target", ["sc.yaml", "actuals.csv"])
def test_calibrate_never_writes_over_its_own_inputs(tmp_path, target):
    """-o naming the scenario or the actuals, with --overwrite, replaced them."""
    text = yaml.safe_dump(ACTUALS_SCENARIO)
    write(tmp_path, text, "sc.yaml")
    rows = f"{HEADER}\n2024-01-01,a,100,80,10,10,0,0\n"
    write(tmp_path, rows, "actuals.csv")
    result = cli(
        "calibrate", "sc.yaml", "--actuals", "actuals.csv", "-o", f"./{target}",
        "--overwrite", "--no-check", cwd=tmp_path,
    )  # fmt: skip
    assert one_line_exit_2(result) == (
        f"Error: {target}: is the input {target}; write the output elsewhere"
    )
    assert (tmp_path / "sc.yaml").read_text() == text
    assert (tmp_path / "actuals.csv").read_text() == rows


def test_a_report_never_writes_over_its_scenario(tmp_path):
    write(tmp_path, EPCL, "a.yaml")
    result = cli(
        "report", "a.yaml", "-n", "1", "-o", "a.yaml", "--overwrite", cwd=tmp_path
    )
    assert one_line_exit_2(result) == (
        "Error: a.yaml: is the input a.yaml; write the output elsewhere"
    )
    assert (tmp_path / "a.yaml").read_text() == EPCL


@pytest.mark.parametrize("problem", ["in_use", "not_this_machine"])
def test_serve_on_an_address_it_cannot_use_is_one_line(problem):
    """uvicorn printed its own ERROR after the explorer had announced its
    address, and exited 3 (migsim's 'some replications failed')."""
    import socket

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        # 192.0.2.1 (TEST-NET-1) is no machine's: bind fails at once, no DNS
        host = "127.0.0.1" if problem == "in_use" else "192.0.2.1"
        started = time.monotonic()
        result = cli("serve", "--host", host, "--port", port)
    message = one_line_exit_2(result)
    assert message.startswith(f"Error: --host {host} --port {port}: cannot listen")
    assert "explorer on" not in result.output
    assert time.monotonic() - started < 30


def test_the_memory_estimate_counts_the_stall_ledger_by_retry_delay(
    tmp_path, monkeypatch
):
    """Stalls are kept by due day x result (complete, or fail and retry after
    each day of the retry delay) x column: a 10-year uniform retry delay with
    100 attempts over 20 years validated, then asked NumPy for 30 GiB in the
    first replication (exit 1 with a traceback)."""
    data = yaml.safe_load(EPCL)
    data["horizon_days"] = 7305
    for c in data["cohorts"]:
        c["max_attempts"] = 100
        c["rollback"] = {
            "retry_after_days": {"dist": "uniform", "low": 1, "high": 3653}
        }
    sc = load_scenario(data)
    assert limits.replication_bytes(sc) > 2 * 10959 * 3654 * 101 * 8  # the ledgers
    short = sc.with_overrides(
        {f"cohorts.{c.name}.rollback.retry_after_days.high": 2 for c in sc.cohorts}
    )
    assert limits.replication_bytes(short) < limits.replication_bytes(sc) / 100
    path = write(tmp_path, yaml.safe_dump(data))
    monkeypatch.setattr(limits, "free_memory", lambda: 64 * 2**30)  # a big machine
    message = one_line_exit_2(cli("run", path, "-n", "1", "-q"))
    assert "a replication needs about" in message and "longest delays" in message


def test_every_file_of_a_run_folder_has_the_umask_s_mode(tmp_path):
    """daily.parquet, linked from the run's private spill file, stayed 0600
    while every other file of the folder was readable by the group."""
    old = os.umask(0o022)
    try:
        result = cli("run", BASELINE, "-n", "1", "-q", "-o", "out", cwd=tmp_path)
    finally:
        os.umask(old)
    assert result.exit_code == 0, (result.output, result.exception)
    modes = {p.name: p.stat().st_mode & 0o777 for p in (tmp_path / "out").iterdir()}
    assert "daily.parquet" in modes
    assert set(modes.values()) == {0o644}, modes


@pytest.mark.skipif(not Path("/proc").is_dir(), reason="needs /proc")
def test_an_outdir_where_nothing_can_be_written_is_named_as_given():
    """The message named the run's spill file (/proc/migsim-daily-123-abcd), a
    path the user never gave."""
    message = one_line_exit_2(cli("run", BASELINE, "-n", "1", "-q", "-o", "/proc/out"))
    assert message == "Error: /proc/out: cannot write there: No such file or directory"


@pytest.mark.skipif(not Path("/proc").is_dir(), reason="needs /proc")
def test_an_output_that_cannot_be_staged_is_named_as_given(tmp_path):
    """The message named the staging folder or temporary file beside the
    output (/proc/.o.partial-123-abcd), not the output given."""
    from migsim.common.files import atomic_text, output_dir

    with pytest.raises(OSError) as caught, output_dir("/proc/o"):
        pass
    assert caught.value.filename == "/proc/o"
    with pytest.raises(OSError) as caught:
        atomic_text("/proc/o.yaml", "x")
    assert caught.value.filename == "/proc/o.yaml"
    message = one_line_exit_2(
        cli("sensitivity", BASELINE, "-n", "1", "-q", "-o", "/proc/o",
            "--range", "capacity.daily_cap=1000:2000")
    )  # fmt: skip
    assert message == "Error: /proc/o: No such file or directory"


def test_a_tornado_of_a_figure_that_never_clears_draws_without_warnings():
    """sensitivity -o over a range where the backlog never clears printed
    NumPy and matplotlib RuntimeWarnings (inf - inf) and drew nothing sensible."""
    import warnings

    import pandas as pd

    from migsim.output.decision_plots import tornado_chart

    inf = float("inf")
    table = pd.DataFrame(
        {
            "figure": ["clearance_day_p50", "clearance_day_p50", "dumb_p90"],
            "field": ["horizon_days", "capacity.daily_cap", "horizon_days"],
            "value_low": [inf, 90.0, 0.0],
            "value_high": [inf, 120.0, 8.0],
            "swing": [0.0, 30.0, 8.0],
        }
    )
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        fig = tornado_chart(table, {"clearance_day_p50": inf, "dumb_p90": 4.0})
    titles = [ax.get_title() for ax in fig.axes if ax.get_visible()]
    assert titles == ["clearance day p50 (not cleared: not drawn)", "dumb p90"]
    bars = fig.axes[0].patches
    assert [round(b.get_width()) for b in bars] == [30]  # the finite row only


def test_a_summary_with_cos_alerts_but_no_els_prints(tmp_path):
    """The 'CoS loss alerts not sent' row was placed after the ELS backlog's:
    a scenario with change_of_supplier and no els section ran, then raised
    StopIteration printing its summary (exit 1, nothing written)."""
    data = yaml.safe_load(EPCL)
    data["horizon_days"] = 60
    data["cohorts"][0]["change_of_supplier"] = {
        "annual_rate": 0.18,
        "alert_loss_share": 0.5,
        "until": "2020-01-06",
    }
    path = write(tmp_path, yaml.safe_dump(data))
    result = cli("run", path, "-n", "2", "-q")
    assert result.exit_code == 0, (result.output, result.exception)
    risks = result.output.split("Risks (totals per replication)")[1].splitlines()
    labels = [line[:40].strip() for line in risks[1:] if line.strip()]
    assert labels[:2] == ["devices left dumb", "of which active"]
    assert "CoS loss alerts not sent" in labels
    assert labels.index("CoS loss alerts not sent") > labels.index(
        "peak failure backlog"
    )
