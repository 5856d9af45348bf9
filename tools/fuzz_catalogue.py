"""The fuzz campaign's fixed first-round cases: hostile scenario files, ``--set``,
``--grid`` and ``--range`` values, and faults (read-only and full output disks,
``-o .``, ``--overwrite`` of a foreign folder, SIGKILL mid-run), mostly as edits
of `EPCL`, the November 2019 request.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import yaml
from fuzz_mutations import TINY, Case, Step, _raw_dump, _run_steps, _small_question

#: The November 2019 request with known rates: the catalogue edits it by its lines
#: (the bundled file's shape changes as the model grows).
EPCL = """\
name: nov2019_epcl
description: >-
  The November 2019 EPCL request as the paper states it: 24,000 active Itron and
  50,000 dormant Elster installations at the 2,000-a-day cap OPSG accepted.
start_date: 2019-11-25
horizon_days: 365
seed: 0
calendar:
  working_days: [Mon, Tue, Wed, Thu, Fri]
capacity:
  daily_cap: 2000
  allocation: pro_rata
clearance_share: 1.0
meters_per_installation: 1.6
cohorts:
  - name: itron_active
    installations: 24000
    mode: active
    eligible_from: 2019-12-09
    max_attempts: 5
    outcomes: {success: 0.93, stall: 0.068, rollback: 0.0005, fix_forward: 0.001, dumb: 0.0005}
    stall: {resolves_after_days: {dist: uniform, low: 2, high: 10}, then_success: 0.74}
    rollback: {retry_after_days: {dist: triangular, low: 3, mode: 7, high: 15}}
    fix_forward: {restored_after_days: {dist: fixed, days: 2}}
  - name: elster_dormant
    installations: 50000
    mode: dormant
    eligible_from: 2019-12-09
    max_attempts: 5
    outcomes: {success: 0.93, stall: 0.068, rollback: 0.0005, fix_forward: 0.001, dumb: 0.0005}
    stall: {resolves_after_days: {dist: uniform, low: 2, high: 10}, then_success: 0.74}
    rollback: {retry_after_days: {dist: triangular, low: 3, mode: 7, high: 15}}
    fix_forward: {restored_after_days: {dist: fixed, days: 2}}
"""  # noqa: E501


def _epcl_text() -> str:
    return EPCL


def _with_line(text: str, line: str) -> str:
    return text.replace("\nhorizon_days:", f"\n{line}\nhorizon_days:", 1)


def _replace_line(text: str, key: str, value: str) -> str:
    out = []
    for line in text.splitlines():
        if line.startswith(f"{key}:"):
            line = f"{key}: {value}"
        out.append(line)
    return "\n".join(out) + "\n"


def _mkfifo(path: str) -> Callable[[Path], None]:
    return lambda d: os.mkfifo(d / path)


def _symlink_loop(d: Path) -> None:
    (d / "a.yaml").symlink_to(d / "b.yaml")
    (d / "b.yaml").symlink_to(d / "a.yaml")


def _chain(n: int) -> dict[str, str]:
    files = {"s0.yaml": _epcl_text()}
    for k in range(1, n):
        files[f"s{k}.yaml"] = f"extends: s{k - 1}.yaml\nname: s{k}\n"
    return files


def scenario_catalogue() -> list[Case]:
    """The hostile scenario files the issue lists, each once."""
    epcl = _epcl_text()
    fast = _replace_line(epcl, "horizon_days", "200")
    deep = "a: " + "[" * 1000 + "]" * 1000 + "\n"
    bomb = "a: &a [x, x, x, x, x, x, x, x, x]\n" + "".join(
        f"{c}: &{c} [*{p}, *{p}, *{p}, *{p}, *{p}, *{p}, *{p}, *{p}, *{p}]\n"
        for p, c in zip("abcdefgh", "bcdefghi", strict=True)
    )
    twice = (
        "extends: nov2019_epcl.yaml\nname: twice\ncohorts:\n"
        "  - name: extra\n    installations: 10\n    mode: dormant\n"
        "    outcomes: {success: 1, stall: 0, rollback: 0, fix_forward: 0, dumb: 0}\n"
    )
    # "extra" twice in one extending file: it would merge into one cohort silently
    child = "extends: mid.yaml\nname: child\ncohorts:\n"
    child += (
        "  - {name: extra, installations: 5}\n  - {name: extra, installations: 7}\n"
    )
    cases = [
        ("duplicate_key", {"sc.yaml": _with_line(fast, "horizon_days: 30")}, "dup"),
        ("sexagesimal_cap", {"sc.yaml": fast.replace("2000\n", "33:20\n", 1)}, "sex"),
        ("bool_horizon", {"sc.yaml": _replace_line(fast, "horizon_days", "true")}, "b"),
        ("start_date_0", {"sc.yaml": _replace_line(fast, "start_date", "0")}, "0"),
        (
            "impossible_start",
            {"sc.yaml": _replace_line(fast, "start_date", "2019-02-30")},
            "d",
        ),
        (
            "past_9999",
            {"sc.yaml": _replace_line(fast, "start_date", "9999-06-01")},
            None,
        ),
        ("digits_5000", {"sc.yaml": _replace_line(fast, "seed", "9" * 5000)}, None),
        ("int64_over_cap", {"sc.yaml": fast.replace("2000\n", f"{2**63}\n", 1)}, None),
        ("installations_2_63", {"sc.yaml": fast.replace("24000", str(2**63), 1)}, None),
        ("deep_nesting", {"sc.yaml": deep}, None),
        ("anchor_bomb", {"sc.yaml": bomb}, None),
        (
            "python_tag",
            {"sc.yaml": "name: !!python/object/apply:os.system ['true']\n"},
            None,
        ),
        ("empty_file", {"sc.yaml": ""}, None),
        ("binary", {"sc.yaml": bytes(range(256)) * 4}, None),
        ("comments_20mb", {"sc.yaml": "# x\n" * 5_000_000 + fast}, None),
        (
            "max_attempts_1e9",
            {"sc.yaml": fast.replace("max_attempts: 5", "max_attempts: 1000000000", 1)},
            None,
        ),
        (
            "horizon_1e9",
            {"sc.yaml": _replace_line(fast, "horizon_days", "1000000000")},
            None,
        ),
        (
            "delay_1e9",
            {"sc.yaml": fast.replace("days: 2}", "days: 1000000000}", 1)},
            None,
        ),
        (
            "delay_1e7",
            {"sc.yaml": fast.replace("days: 2}", "days: 10000000}", 1)},
            None,
        ),
        (
            "lognormal_1e308",
            {
                "sc.yaml": fast.replace(
                    "{dist: fixed, days: 2}",
                    "{dist: lognormal, median: 1e308, sigma: 1}",
                    1,
                )
            },
            None,
        ),
        (
            "clearance_1e-300",
            {"sc.yaml": _replace_line(fast, "clearance_share", "1e-300")},
            None,
        ),
        (
            "cohort_twice_extends",
            {
                "base.yaml": epcl,
                "mid.yaml": twice.replace("nov2019_epcl.yaml", "base.yaml"),
                "sc.yaml": child,
            },
            "twice",
        ),
    ]
    out = []
    for name, files, must in cases:
        out.append(
            Case(
                f"scenario/catalogue/{name}",
                "scenario",
                _run_steps("sc.yaml"),
                files,
                must_refuse=None if must is None else f"{name} accepted",
            )
        )
    rates = "{success: 0.93, stall: 0.068, rollback: 0.0005, fix_forward: 0.001, "
    rates += "dumb: 0.0005}"
    alpha = "{dist: dirichlet, alpha: {success: 1e308, stall: 1e308, rollback: 1, "
    alpha += "fix_forward: 1, dumb: 1}}"
    dirichlet = fast.replace(f"outcomes: {rates}", f"outcomes: {alpha}", 1)
    out.append(
        Case(
            "scenario/catalogue/dirichlet_1e308",
            "scenario",
            _run_steps("sc.yaml"),
            {"sc.yaml": dirichlet},
        )
    )
    specials = [
        ("fifo", _mkfifo("sc.yaml"), "sc.yaml"),
        ("symlink_loop", _symlink_loop, "a.yaml"),
        ("directory", lambda d: (d / "sc.yaml").mkdir(), "sc.yaml"),
        ("dev_zero", None, "/dev/zero"),
        ("missing", None, "nope.yaml"),
    ]
    for name, setup, target in specials:
        out.append(
            Case(
                f"scenario/catalogue/{name}",
                "scenario",
                [Step(["validate", target], "validate"), *_run_steps(target, False)],
                setup=setup,
            )
        )
    for n, name in ((40, "extends_40"), (1500, "extends_1500")):
        out.append(
            Case(
                f"scenario/catalogue/{name}",
                "scenario",
                _run_steps(f"s{n - 1}.yaml"),
                _chain(n),
            )
        )
    cycle = {"a.yaml": "extends: b.yaml\n", "b.yaml": "extends: a.yaml\n"}
    out.append(
        Case(
            "scenario/catalogue/extends_cycle", "scenario", _run_steps("a.yaml"), cycle
        )
    )
    return out


def set_catalogue() -> list[Case]:
    fast = _replace_line(_epcl_text(), "horizon_days", "200")
    rate = "cohorts.elster_dormant.outcomes.dumb"
    cases = [
        ("exp_rate", f"{rate}=5e-4", None),
        ("impossible_date", "start_date=2019-02-30", "impossible date"),
        ("sexagesimal", "capacity.daily_cap=33:20", "sexagesimal"),
        ("bool_count", "cohorts.itron_active.installations=true", "bool"),
        ("horizon_past_9999", "start_date=9999-01-01", None),
    ]
    out = [
        Case(
            f"set/catalogue/{name}",
            "set",
            _run_steps("sc.yaml", sets=["--set", s]),
            {"sc.yaml": fast},
            must_refuse=must and f"{must} accepted",
        )
        for name, s, must in cases
    ]
    out.append(
        Case(
            "set/catalogue/scheduler_not_url",
            "set",
            _run_steps("sc.yaml", False, extra=["--scheduler", "not-a-url"]),
            {"sc.yaml": fast},
        )
    )
    grid = ["sweep", "sc.yaml", "-n", "2", "-q", "-o", "sw", "--grid"]
    out.append(
        Case(
            "set/catalogue/grid_impossible_date",
            "set",
            [Step([*grid, "start_date=2019-02-30,2019-03-01"], "sweep", ("sw",))],
            {"sc.yaml": fast},
        )
    )
    rng = [
        "sensitivity",
        "sc.yaml",
        "-n",
        "2",
        "--samples",
        "2",
        "-o",
        "sens",
        "--range",
    ]
    out.append(
        Case(
            "set/catalogue/range_impossible_date",
            "set",
            [Step([*rng, "start_date=2019-02-30:2019-03-01"], "plain", ("sens",))],
            {"sc.yaml": fast},
        )
    )
    question = _small_question()
    question["objective"] = {
        "maximise": "migrated_by",
        "date": "@@D@@",
        "statistic": "mean",
    }
    out.append(
        Case(
            "question/catalogue/impossible_date",
            "question",
            [Step(["decide", "q.yaml", "-n", "2", "-o", "dec"], "plain", ("dec",))],
            {"q.yaml": _raw_dump(question, {"@@D@@": "2020-02-30"})},
        )
    )
    return out


def fault_catalogue() -> list[Case]:
    """Unlucky operators: read-only or full disks, odd output folders, killed runs."""
    fast = _replace_line(_epcl_text(), "horizon_days", "200")
    files = {"sc.yaml": fast}
    tiny = yaml.safe_dump(TINY, sort_keys=False)
    run = ["run", "sc.yaml", "-n", "2", "-q"]
    out = []
    for fault in ("readonly", "full"):
        commands = [
            ("run", [*run, "-o", "ro/out"], "run", ("ro/out",)),
            (
                "sweep",
                [
                    "sweep",
                    "sc.yaml",
                    "-n",
                    "2",
                    "-q",
                    "-o",
                    "ro/sw",
                    "--grid",
                    "capacity.daily_cap=1000,2000",
                ],
                "sweep",
                ("ro/sw",),
            ),
            (
                "calibrate",
                [
                    "calibrate",
                    "tiny.yaml",
                    "--actuals",
                    "a.csv",
                    "-o",
                    "ro/cal.yaml",
                    "-n",
                    "2",
                ],
                "calibrate",
                ("ro/cal.yaml",),
            ),
            (
                "forecast",
                [
                    "forecast",
                    "tiny.yaml",
                    "--actuals",
                    "a.csv",
                    "--as-of",
                    "2024-01-08",
                    "-n",
                    "2",
                    "-o",
                    "ro/fc",
                ],
                "forecast",
                ("ro/fc",),
            ),
            (
                "report",
                ["report", "sc.yaml", "-n", "2", "-o", "ro/report.html"],
                "plain",
                ("ro/report.html",),
            ),
        ]
        for name, argv, kind, outputs in commands:
            out.append(
                Case(
                    f"fault/{fault}/{name}",
                    "fault",
                    [Step(argv, kind, outputs, fault=fault)],
                    {**files, "tiny.yaml": tiny, "a.csv": "@@ACTUALS@@"},
                    setup=lambda d: (d / "ro").mkdir(),
                )
            )
    out.append(
        Case(
            "fault/outdir_dot",
            "fault",
            [Step([*run, "-o", ".", "--overwrite"], "plain")],
            files,
        )
    )
    out.append(
        Case(
            "fault/outdir_dot_no_overwrite",
            "fault",
            [Step([*run, "-o", "."], "plain")],
            files,
        )
    )
    out.append(
        Case(
            "fault/outdir_is_file",
            "fault",
            [Step([*run, "-o", "afile"], "plain")],
            {**files, "afile": "x"},
            keep=("afile",),
        )
    )
    out.append(
        Case(
            "fault/overwrite_foreign",
            "fault",
            [Step([*run, "-o", "keep", "--overwrite"], "plain")],
            {**files, "keep/precious.txt": "mine"},
            keep=("keep/precious.txt",),
            must_refuse="--overwrite replaced a folder migsim did not write",
        )
    )
    long = _replace_line(_epcl_text(), "horizon_days", "1800")
    out.append(
        Case(
            "fault/kill_run_j2",
            "fault",
            [
                Step(
                    ["run", "sc.yaml", "-n", "400", "-j", "2", "-q", "-o", "out"],
                    "run",
                    ("out",),
                    fault="kill",
                    kill_after=5.0,
                )
            ],
            {"sc.yaml": long},
        )
    )
    out.append(
        Case(
            "fault/kill_sweep_j2",
            "fault",
            [
                Step(
                    [
                        "sweep",
                        "sc.yaml",
                        "-n",
                        "100",
                        "-j",
                        "2",
                        "-q",
                        "-o",
                        "sw",
                        "--grid",
                        "capacity.daily_cap=1000,1500,2000,2500",
                    ],
                    "sweep",
                    ("sw",),
                    fault="kill",
                    kill_after=5.0,
                )
            ],
            {"sc.yaml": long},
        )
    )
    return out
