"""The second round of the fuzz campaign: mutation kinds `fuzz_campaign` did not make.

Families (each case is judged by `fuzz_run.run_case`, as the first round's):

- ``yaml``: scenario text with odd numbers (full-width and Arabic-Indic digits,
  ``+2000``, ``2_000``, ``2e3``, ``2000.0``, explicit tags), anchors, aliases and
  merge keys (good and broken), nested duplicate keys, impossible and odd dates
  (``2019-02-29``, a time of day, a UTC offset), ``.inf``/``.nan``/``-.inf`` in a
  numeric field, empty lists and maps, mixed-type lists, encodings (a BOM, CRLF,
  CR, tabs, NUL, Latin-1, UTF-16), deep nesting under a real key, several
  documents, non-string keys and files near the size limit;
- ``state``: a continued scenario (``nov2019_operations`` continued from day 40
  of a run, with its ``parts``, open ELS cases and latent defect) with one part of
  its ``initial_state`` or ``operations_state`` changed: suppliers and classes
  that do not exist, counts that do not add up, days far away, hostile scalars;
- ``actuals2``: actuals as CSV with a BOM, CRLF, Latin-1, UTF-16, NUL, a column
  named twice, quoted or full-width numbers, dates with UTC offsets; and as
  Parquet with wrong dtypes (booleans, strings, categories, decimals, lists,
  structs, time zones, integer dates, nullable NA), truncated or empty;
- ``fault2``: outputs named by a symbolic link (to a folder, to one holding an
  earlier result, to nowhere, in a loop, to a file), a read-only output folder
  replaced with ``--overwrite``, and SIGINT (to the process group, as Ctrl-C) or
  SIGTERM (to the parent) mid-way through ``run -j 2``, ``sweep -j 2`` and
  ``decide -j 2``: no worker or temporary may stay behind, and a rerun must
  finish (a sweep and a decision resume their stores).

`catalogue` gives the fixed cases, `makers` the random ones.
"""

from __future__ import annotations

import copy
import io
import random
import re
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml
from fuzz_catalogue import EPCL, _replace_line
from fuzz_checks import ROOT, SCENARIOS
from fuzz_mutations import (
    HOSTILE,
    TINY,
    Case,
    Step,
    _leaves,
    _put,
    _raw_dump,
    _run_steps,
    _small_question,
)

FAST = _replace_line(EPCL, "horizon_days", "60")
STALL = (
    "stall: {resolves_after_days: {dist: uniform, low: 2, high: 10}, "
    "then_success: 0.74}"
)
RATES = (
    "outcomes: {success: 0.93, stall: 0.068, rollback: 0.0005, fix_forward: 0.001, "
    "dumb: 0.0005}"
)


# =============================================================================== yaml
def _cap(raw: str) -> str:
    return FAST.replace("daily_cap: 2000", f"daily_cap: {raw}", 1)


#: name -> (scenario text, why accepting it would be wrong, or None)
def _yaml_texts() -> dict[str, tuple[str | bytes, str | None]]:
    anchored = FAST.replace(STALL, STALL.replace("stall: ", "stall: &st ", 1), 1)
    cohort_copy = FAST.replace(
        "  - name: itron_active", "  - &c\n    name: itron_active"
    )
    texts: dict[str, tuple[str | bytes, str | None]] = {
        "fullwidth_digits": (_cap("２０００"), "full-width digits read as a number"),
        "arabic_indic_digits": (_cap("٢٠٠٠"), "Arabic-Indic digits read as a number"),
        "superscript_digits": (_cap("²⁰⁰⁰"), "superscript digits read as a number"),
        "plus_sign": (_cap("+2000"), None),
        "underscores": (_cap("2_000"), None),
        "exponent_for_count": (_cap("2e3"), None),
        "float_for_count": (_cap("2000.0"), None),
        "fraction_for_count": (_cap("2000.5"), "a fractional cap"),
        "binary": (_cap("0b11111010000"), None),
        "str_tag": (_cap("!!str 2000"), None),
        "float_tag": (_cap("!!float 2000"), None),
        "binary_tag": (_cap("!!binary aGVsbG8="), "bytes read as a count"),
        "set_tag": (_cap("!!set {a, b}"), "a set read as a count"),
        "custom_tag": (_cap("!foo 2000"), None),
        "python_tag": (_cap("!!python/object/apply:os.getpid []"), "code ran"),
        "anchor_alias": (anchored.replace(STALL, "stall: *st", 1), None),
        "merge_override": (
            anchored.replace(STALL, "stall: {<<: *st, then_success: 0.5}", 1),
            None,
        ),
        "merge_scalar": (
            FAST.replace("seed: 0", "seed: &s 0").replace(
                "capacity:\n", "capacity:\n  <<: *s\n", 1
            ),
            None,
        ),
        "alias_undefined": (_cap("*nope"), None),
        "alias_of_cohort_with_extra": (
            cohort_copy.replace(
                "  - name: elster_dormant\n",
                "  - <<: *c\n    name: elster_dormant\n    extra: 1\n",
                1,
            ),
            "an unknown field merged in",
        ),
        "nested_duplicate": (
            FAST.replace("    mode: dormant", "    mode: dormant\n    mode: active"),
            "a duplicate key",
        ),
        "flow_duplicate": (
            FAST.replace("then_success: 0.74}", "then_success: 0.74, then_success: 0}"),
            "a duplicate key",
        ),
        "feb29_non_leap": (
            _replace_line(FAST, "start_date", "2019-02-29"),
            "2019-02-29 is not a date",
        ),
        "feb29_leap": (_replace_line(FAST, "start_date", "2020-02-29"), None),
        "date_with_time": (_replace_line(FAST, "start_date", "2019-11-25T10:00"), None),
        "date_with_offset": (
            _replace_line(FAST, "start_date", "2019-11-25T00:00:00+05:00"),
            None,
        ),
        "quoted_impossible_date": (
            FAST.replace("eligible_from: 2019-12-09", "eligible_from: '2019-02-30'", 1),
            "2019-02-30 is not a date",
        ),
        "year_0": (_replace_line(FAST, "start_date", "0000-01-01"), "year 0"),
        "bom": ("\ufeff" + FAST, None),
        "crlf": (FAST.replace("\n", "\r\n"), None),
        "cr_only": (FAST.replace("\n", "\r"), None),
        "tab_indent": (FAST.replace("  daily_cap", "\tdaily_cap"), None),
        "nul": (FAST.replace("name: nov2019_epcl", "name: nov2019\x00epcl"), None),
        "latin1": (
            FAST.replace("nov2019_epcl", "caf\u00e9", 1).encode("latin-1"),
            None,
        ),
        "utf16": (FAST.encode("utf-16"), None),
        "two_documents": (FAST + "---\nname: other\n", "a second document ignored"),
        "int_key": (FAST + "1: x\n", "an unknown key"),
        "null_key": (FAST + "null: x\n", "an unknown key"),
        "complex_key": (FAST + "? [a, b]\n: x\n", "an unknown key"),
        "yes_key": (
            FAST.replace("    mode: dormant", "    mode: dormant\n    yes: 1"),
            "an unknown key",
        ),
        "nested_30_maps": (_cap("{a: " * 30 + "1" + "}" * 30), "a map for a count"),
        "nested_30_lists": (_cap("[" * 30 + "1" + "]" * 30), "a list for a count"),
        "long_key": (FAST + "k" * 100_000 + ": 1\n", "an unknown key"),
        "near_limit_padding": ("#" * 990_000 + "\n" + FAST, None),
        "over_limit_padding": ("#" * 1_000_001 + "\n" + FAST, None),
        "cohorts_3000": (
            FAST
            + "".join(
                f"  - {{name: c{i}, installations: 10, mode: dormant, {RATES}}}\n"
                for i in range(3000)
            ),
            None,
        ),
        "cohorts_empty": (re.sub(r"cohorts:\n(.|\n)*", "cohorts: []\n", FAST), "none"),
        "cohorts_map": (re.sub(r"cohorts:\n(.|\n)*", "cohorts: {}\n", FAST), "a map"),
        "outcomes_empty": (FAST.replace(RATES, "outcomes: {}", 1), "no outcomes"),
        "working_days_mixed": (
            FAST.replace("[Mon, Tue, Wed, Thu, Fri]", "[Mon, 1, null, {a: 1}]"),
            "a number for a day",
        ),
        "working_days_empty": (
            FAST.replace("[Mon, Tue, Wed, Thu, Fri]", "[]"),
            "no working day: nothing can ever migrate",
        ),
        "cohorts_mixed": (
            FAST.replace("cohorts:\n", "cohorts:\n  - 5\n  - null\n"),
            "5",
        ),
    }
    return texts


def yaml_catalogue() -> list[Case]:
    """Every fixed YAML text above: ``validate`` then ``run``."""
    return [
        Case(
            f"yaml/catalogue/{name}",
            "yaml",
            _run_steps("sc.yaml"),
            {"sc.yaml": text},
            must_refuse=None if why is None else f"{name} accepted: {why}",
        )
        for name, (text, why) in _yaml_texts().items()
    ]


_ODD_NUMBERS = {
    "nan": ".nan",
    "inf": ".inf",
    "minus_inf": "-.inf",
    "fullwidth": "１",
    "superscript": "²",
    "huge": str(2**200),
    "minus_huge": str(-(2**200)),
    "empty_list": "[]",
    "empty_map": "{}",
    "mixed_list": "[1, a, null, {b: 2}, [3]]",
    "date": "2019-02-30",
}


def yaml_mutation(bundled, rng: random.Random, index: int) -> Case:
    """A bundled scenario with one leaf (or container) replaced by an odd value:
    a non-finite or non-ASCII number, an empty or mixed container, an impossible
    date. A non-finite or non-ASCII number or an impossible date where a number
    was must be refused."""
    stem = rng.choice(sorted(bundled))
    data = copy.deepcopy(bundled[stem])
    data["horizon_days"] = min(int(data.get("horizon_days", 365)), 120)
    containers = [
        (p, v) for p, v in _all_nodes(data) if isinstance(v, dict | list) and p
    ]
    if containers and rng.random() < 0.3:
        path, original = rng.choice(containers)
        label = rng.choice(["empty_list", "empty_map", "mixed_list"])
    else:
        path, original = rng.choice(_leaves(data))
        label = rng.choice(sorted(_ODD_NUMBERS))
    _put(data, path, "@@RAW@@")
    text = _raw_dump(data, {"@@RAW@@": _ODD_NUMBERS[label]})
    where = ".".join(map(str, path))
    must = None
    is_number = isinstance(original, int | float) and not isinstance(original, bool)
    if is_number and label in {"nan", "inf", "minus_inf", "fullwidth", "superscript"}:
        must = f"{label} accepted for the number {where}"
    if label == "date":
        must = f"an impossible date accepted at {where}"
    return Case(
        f"yaml/{stem}/{where}={label}#{index}",
        "yaml",
        _run_steps("sc.yaml"),
        {"sc.yaml": text},
        must_refuse=must,
    )


def _all_nodes(node: Any, path: tuple = ()) -> list[tuple[tuple, Any]]:
    out = [(path, node)]
    if isinstance(node, dict):
        for key, value in node.items():
            out += _all_nodes(value, (*path, key))
    elif isinstance(node, list):
        for i, value in enumerate(node):
            out += _all_nodes(value, (*path, i))
    return out


# ============================================================================== state
def base_state() -> dict[str, Any]:
    """``nov2019_operations`` continued from day 40 of replication 0 (seed 1),
    over 30 days: a continued scenario with parts, ELS cases and a defect."""
    sys.path.insert(0, str(ROOT))
    import migsim
    from migsim.model.scenario import load_scenario

    sc = load_scenario(SCENARIOS / "nov2019_operations.yaml")
    results = migsim.run(sc, replications=1, seed=1)
    data = sc.starting_from(results.state_on(sc.date_of(40), replication=0)).to_dict()
    data["horizon_days"] = 30
    return data


def _ops(d: dict) -> dict:
    return d["operations_state"]


def _itron(d: dict) -> dict:
    return d["cohorts"][0]["initial_state"]


def _case0(d: dict) -> dict:
    return next(c for c in _ops(d)["els_queue"] if c["kind"] == "stall")


def _swap(name: str) -> str:
    return {"supplier_a": "supplier_b", "supplier_b": "supplier_a"}.get(name, name)


#: name -> (change to the continued scenario, why accepting it would be wrong)
STATE_CHANGES: dict[str, tuple[Callable[[dict], Any], str | None]] = {
    "part_unknown_supplier": (
        lambda d: _itron(d)["parts"][0].update(supplier="nosuch"),
        "a part of an unknown supplier",
    ),
    "parts_dropped": (lambda d: _itron(d).pop("parts"), None),
    "parts_suppliers_swapped": (
        lambda d: [p.update(supplier=_swap(p["supplier"])) for p in _itron(d)["parts"]],
        None,
    ),
    "part_count_off": (
        lambda d: _itron(d)["parts"][0].update(migrated=10**6),
        "parts not adding up",
    ),
    "els_unknown_cohort": (
        lambda d: _case0(d).update(cohort="nosuch"),
        "a case of an unknown cohort",
    ),
    "els_unknown_supplier": (
        lambda d: _case0(d).update(supplier="nosuch"),
        "a case of an unknown supplier",
    ),
    "els_attempts_past_max": (
        lambda d: _case0(d).update(attempts={99: _case0(d)["count"]}),
        "attempts made past max_attempts",
    ),
    "els_attempts_negative": (
        lambda d: _case0(d).update(attempts={-1: _case0(d)["count"]}),
        "negative attempts made",
    ),
    "els_attempts_short": (
        lambda d: _case0(d).update(attempts={1: 1}),
        "a case holding fewer than its count",
    ),
    "els_class_misspelt": (
        lambda d: _case0(d).update(by_class={"nromal": {1: _case0(d)["count"]}}),
        "an unknown class",
    ),
    "els_raised_long_ago": (lambda d: _case0(d).update(raised=-(10**6)), None),
    "els_dropped": (lambda d: _ops(d).update(els_queue=[]), "held stalls unworked"),
    "defect_far_past": (
        lambda d: _ops(d)["defects"][0].update(
            exists=True, first_exposed=-(10**9), found_day=-(10**9)
        ),
        "a day a billion days back",
    ),
    "defect_far_future": (
        lambda d: _ops(d)["defects"][0].update(exists=True, found_day=10**9),
        "a day a billion days ahead",
    ),
    "defect_listed_twice": (
        lambda d: _ops(d)["defects"].append(copy.deepcopy(_ops(d)["defects"][0])),
        None,
    ),
    "halt_forever": (lambda d: _ops(d).update(halt_until=10**9, halt_rule="x"), None),
    "hold_long_ago": (lambda d: _ops(d).update(hold_until=-(10**9)), None),
    "cap_zero": (lambda d: _ops(d).update(cap=0), None),
    "stalled_due_far": (
        lambda d: [g.update(days_until_due=10**6) for g in _itron(d)["stalled"]],
        "a due day past the limit",
    ),
    "queued_due_long_ago": (
        lambda d: [g.update(days_until_due=-(10**9)) for g in _itron(d)["queued"]],
        None,
    ),
    "date_passed_after_start": (
        lambda d: _ops(d)["dates_passed"].update(
            {"cohorts.itron_active.eligible_from": "2030-01-01"}
        ),
        "a date passed after the start",
    ),
    "inputs_of_replication_1e9": (
        lambda d: d["inputs_from"].update(replication=10**9),
        None,
    ),
}


def state_mutation(state: dict, rng: random.Random, index: int) -> Case:
    """The continued scenario with one change: a named one (`STATE_CHANGES`) or a
    hostile scalar in a random leaf of a cohort's state or the operations state."""
    data = copy.deepcopy(state)
    if rng.random() < 0.5:
        name = rng.choice(sorted(STATE_CHANGES))
        change, why = STATE_CHANGES[name]
        change(data)
        text = yaml.safe_dump(data, sort_keys=False, allow_unicode=True)
        must = None if why is None else f"{name} accepted: {why}"
    else:
        leaves = [
            (p, v)
            for p, v in _leaves(data)
            if "initial_state" in p or "operations_state" in p
        ]
        path, _ = rng.choice(leaves)
        name, raw = rng.choice(sorted(HOSTILE.items()))
        _put(data, path, "@@RAW@@")
        text = _raw_dump(data, {"@@RAW@@": raw})
        name = f"{'.'.join(map(str, path))}={name}"
        must = None
    return Case(
        f"state/{name}#{index}",
        "state",
        _run_steps("sc.yaml"),
        {"sc.yaml": text},
        must_refuse=must,
    )


# ============================================================================ actuals
def _steps(name: str, command: str) -> list[Step]:
    if command == "calibrate":
        argv = ["calibrate", "sc.yaml", "--actuals", name, "-o", "cal.yaml", "-n", "2"]
        return [Step(argv, "calibrate", ("cal.yaml",))]
    argv = ["forecast", "sc.yaml", "--actuals", name, "--as-of", "2024-01-08"]
    return [Step([*argv, "-n", "2", "-o", "fc"], "forecast", ("fc",))]


def _csv_texts(rows: list[dict[str, Any]]) -> dict[str, tuple[str | bytes, str | None]]:
    import pandas as pd

    frame = pd.DataFrame(rows)
    text = frame.to_csv(index=False)
    lines = text.splitlines()
    header = lines[0].split(",")
    k = header.index("attempts")
    twice = [",".join([*header[: k + 1], "attempts", *header[k + 1 :]])]
    twice += [
        ",".join([*line.split(",")[: k + 1], "999", *line.split(",")[k + 1 :]])
        for line in lines[1:]
    ]
    first_date = rows[0]["date"]
    return {
        "bom": ("\ufeff" + text, None),
        "crlf": (text.replace("\n", "\r\n"), None),
        "latin1": (text.replace(",a,", ",\u00e9,", 1).encode("latin-1"), None),
        "utf16": (text.encode("utf-16"), None),
        "nul": (text.replace(",a,", ",a\x00,", 1), None),
        "column_twice": ("\n".join(twice) + "\n", "a column named twice"),
        "quoted_numbers": (
            "\n".join(
                [lines[0]]
                + [",".join(f'"{x}"' for x in line.split(",")) for line in lines[1:]]
            )
            + "\n",
            None,
        ),
        "fullwidth_digits": (
            "\n".join([lines[0]] + [line.replace("1", "１") for line in lines[1:]])
            + "\n",
            "full-width digits read as numbers",
        ),
        "offset_dates_mixed": (
            text.replace(first_date, f"{first_date}T00:00:00-05:00", 1),
            None,
        ),
        "semicolons": (text.replace(",", ";"), "no date column"),
        "header_only": (lines[0] + "\n", "no rows"),
    }


def _parquet(frame) -> bytes:
    buffer = io.BytesIO()
    frame.to_parquet(buffer)
    return buffer.getvalue()


def _parquet_bytes(rows: list[dict[str, Any]]) -> dict[str, tuple[bytes, str | None]]:
    import decimal

    import pandas as pd
    import pyarrow as pa
    import pyarrow.parquet as pq

    base = pd.DataFrame(rows)
    day = pd.to_datetime(base["date"])

    def with_column(name: str, values) -> bytes:
        frame = base.copy()
        frame[name] = values
        return _parquet(frame)

    nullable = base["attempts"].astype("Int64")
    nullable.iloc[0] = pd.NA
    table = pa.table(
        {
            "date": pa.array(base["date"]),
            "cohort": pa.array(base["cohort"]),
            "attempts": pa.array(base["attempts"]),
            "again": pa.array(base["attempts"] * 0 + 999),
        }
    ).rename_columns(["date", "cohort", "attempts", "attempts"])
    twice = io.BytesIO()
    pq.write_table(table, twice)
    whole = _parquet(base)
    return {
        "plain": (whole, None),
        "bool_successes": (
            with_column("successes", base["successes"] > 0),
            "true/false read as counts",
        ),
        "bool_attempts": (
            with_column("attempts", base["attempts"] > 0),
            "true/false read as counts",
        ),
        "datetime": (with_column("date", day), None),
        "datetime_tz": (with_column("date", day.dt.tz_localize("Europe/London")), None),
        "date32": (with_column("date", day.dt.date), None),
        "int_dates": (
            with_column("date", (day - pd.Timestamp("1970-01-01")).dt.days),
            "day numbers read as dates",
        ),
        "str_counts": (with_column("attempts", base["attempts"].astype(str)), None),
        "float_counts_half": (
            with_column("attempts", base["attempts"] + 0.5),
            "a fractional count",
        ),
        "uint64": (with_column("attempts", base["attempts"].astype("uint64")), None),
        "category_cohort": (
            with_column("cohort", base["cohort"].astype("category")),
            None,
        ),
        "int_cohort": (
            with_column("cohort", base["cohort"].map({"a": 1, "b": 2})),
            None,
        ),
        "nullable_na": (with_column("attempts", nullable), "a missing count"),
        "list_counts": (with_column("attempts", [[x] for x in base["attempts"]]), None),
        "struct_counts": (
            with_column("attempts", [{"v": x} for x in base["attempts"]]),
            None,
        ),
        "decimal_counts": (
            with_column(
                "attempts", [decimal.Decimal(int(x)) for x in base["attempts"]]
            ),
            None,
        ),
        "timedelta_counts": (
            with_column("attempts", pd.to_timedelta(base["attempts"], unit="D")),
            "durations read as counts",
        ),
        "no_rows": (_parquet(base.iloc[:0]), "no rows"),
        "column_twice": (twice.getvalue(), "a column named twice"),
        "truncated": (whole[: len(whole) // 2], None),
    }


def actuals_catalogue(rows: list[dict[str, Any]]) -> list[Case]:
    """Every CSV and Parquet variant, through ``calibrate`` and ``forecast``."""
    scenario = yaml.safe_dump(TINY, sort_keys=False)
    out = []
    variants = [
        ("csv", "a.csv", _csv_texts(rows)),
        ("pq", "a.parquet", _parquet_bytes(rows)),
    ]
    for kind, name, texts in variants:
        for label, (content, why) in texts.items():
            for command in ("calibrate", "forecast"):
                out.append(
                    Case(
                        f"actuals2/{kind}/{label}/{command}",
                        "actuals2",
                        _steps(name, command),
                        {"sc.yaml": scenario, name: content},
                        must_refuse=None if why is None else f"{label} accepted: {why}",
                    )
                )
    return out


# ============================================================================= faults
def _link(name: str, target: str) -> Callable[[Path], None]:
    return lambda d: (d / name).symlink_to(d / target)


def _loop(d: Path) -> None:
    (d / "out").symlink_to(d / "loop2")
    (d / "loop2").symlink_to(d / "out")


def _earlier(d: Path) -> None:
    (d / "disk" / "out").mkdir(parents=True)
    (d / "disk" / "out" / "summary.json").write_text(
        '{"migsim_version": "0", "seed": 99}'
    )
    (d / "out").symlink_to(d / "disk" / "out")


def fault_catalogue() -> list[Case]:
    """Symbolic-link and read-only outputs, and SIGINT/SIGTERM mid-run."""
    files = {"sc.yaml": FAST}
    outputs = {
        "run": (["run", "sc.yaml", "-n", "2", "-q", "-o", "out"], "run"),
        "sweep": (
            [
                "sweep",
                "sc.yaml",
                "-n",
                "2",
                "-q",
                "-o",
                "out",
                "--grid",
                "capacity.daily_cap=1000,2000",
            ],
            "sweep",
        ),  # fmt: skip
        "sensitivity": (
            [
                "sensitivity",
                "sc.yaml",
                "-n",
                "2",
                "--samples",
                "2",
                "-o",
                "out",
                "--range",
                "capacity.daily_cap=1000:2000",
            ],
            "plain",
        ),  # fmt: skip
    }
    links: dict[str, tuple[Callable[[Path], None], list[str]]] = {
        "link_to_empty": (
            lambda d: ((d / "real").mkdir(), _link("out", "real")(d)),
            [],
        ),
        "link_to_earlier_overwrite": (_earlier, ["--overwrite"]),
        "link_to_nowhere": (_link("out", "later"), []),
        "link_loop": (_loop, []),
        "link_loop_overwrite": (_loop, ["--overwrite"]),
        "link_to_file": (
            lambda d: ((d / "f").write_text("x"), _link("out", "f")(d)),
            [],
        ),
    }
    out = []
    for command, (argv, kind) in outputs.items():
        for name, (setup, extra) in links.items():
            if command == "sweep":  # a store is started over, not overwritten
                extra = ["--fresh" if e == "--overwrite" else e for e in extra]
            out.append(
                Case(
                    f"fault2/{name}/{command}",
                    "fault2",
                    [Step([*argv, *extra], kind, ("out",))],
                    files,
                    setup=setup,
                )
            )
    run = outputs["run"][0]
    out.append(
        Case(
            "fault2/readonly_outdir_overwrite/run",
            "fault2",
            [
                Step(run, "run", ("out",)),
                Step([*run, "--overwrite"], "run", ("out",), fault="readonly_out"),
            ],
            files,
        )
    )
    out += signal_catalogue()
    return out


def signal_catalogue() -> list[Case]:
    """SIGINT to the process group (Ctrl-C) or SIGTERM to the parent, mid-way."""
    long = _replace_line(EPCL, "horizon_days", "1800")
    question = _small_question()
    question["levers"] = {
        next(iter(question["levers"])): {"low": 4000, "high": 12000, "step": 2000}
    }
    commands = {
        "run": (["run", "sc.yaml", "-n", "4000", "-j", "2", "-q", "-o", "out"], "run"),
        "sweep": (
            [
                "sweep",
                "sc.yaml",
                "-n",
                "400",
                "-j",
                "2",
                "-q",
                "-o",
                "sw",
                "--grid",
                "capacity.daily_cap=1000,1500,2000,2500",
            ],
            "sweep",
        ),  # fmt: skip
        "decide": (["decide", "q.yaml", "-n", "20", "-j", "2", "-o", "dec"], "decide"),
    }
    out = []
    for command, (argv, kind) in commands.items():
        for how in ("sigint", "sigterm"):
            out.append(
                Case(
                    f"fault2/{how}/{command}",
                    "fault2",
                    [Step(argv, kind, (argv[argv.index("-o") + 1],), how, 6.0)],
                    {"sc.yaml": long, "q.yaml": yaml.safe_dump(question)},
                )
            )
    return out


# ============================================================================= making
def catalogue(rows: list[dict[str, Any]]) -> list[Case]:
    """The second round's fixed cases."""
    return yaml_catalogue() + actuals_catalogue(rows) + fault_catalogue()


def makers(bundled, state: dict, rng: random.Random) -> list[tuple[float, Callable]]:
    """The second round's random cases, with their weights."""
    return [
        (0.6, lambda i: yaml_mutation(bundled, rng, i)),
        (0.4, lambda i: state_mutation(state, rng, i)),
    ]
