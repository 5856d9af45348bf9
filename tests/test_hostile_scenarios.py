"""Hostile scenario files: strict safe YAML, values past their limits, names
that are not folder names, runs too big for the machine. Each error is one line
naming the file and field, exit status 2 (issue 17); each test here failed
before its fix."""

from __future__ import annotations

import copy
import json
import os
from pathlib import Path

import pytest
import yaml
from conftest import BASELINE, SCENARIOS, cohort, scenario
from hostile import EPCL, cli, one_line_exit_2, replace_line, write

from migsim.common.errors import MigsimError, ScenarioError
from migsim.common.yamlio import MAX_BYTES, parse_yaml, read_yaml
from migsim.model import limits
from migsim.model.scenario import load_scenario


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
        ("a: 1\nb: x\x00y\n", "line 2, column 5: character U+0000 (NUL) is not"),
        ("a: 1\r\nb:\r\n  - \x07\n", "line 3, column 5: character U+0007 is not"),
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


def test_a_scenario_dict_is_checked_against_the_limits_too():
    with pytest.raises(ScenarioError, match="max_attempts: 101 is outside"):
        load_scenario(scenario(cohort("c", 10, max_attempts=101)))


def test_a_run_too_big_for_the_machine_is_refused_before_allocating(monkeypatch):
    monkeypatch.setattr(limits, "free_memory", lambda: 100_000)
    for args in (["validate", BASELINE], ["run", BASELINE, "-n", "1"]):
        message = one_line_exit_2(cli(*args))
        assert "a replication needs about" in message and "free here" in message


def test_too_many_workers_for_the_memory_are_named_as_the_cause(monkeypatch):
    """`-j 100000` was refused as 'a replication needs about 2 MiB ... shorten
    horizon_days': the scenario blamed for the workers' total."""
    one = limits.replication_bytes(load_scenario(BASELINE))
    monkeypatch.setattr(limits, "free_memory", lambda: 2 * 10 * one)
    message = one_line_exit_2(cli("run", BASELINE, "-n", "40", "-j", "100000"))
    assert "100,000 workers at a time need about" in message
    assert "use at most -j 10" in message and "horizon_days" not in message
    monkeypatch.setattr(limits, "free_memory", lambda: one)  # one does not fit
    message = one_line_exit_2(cli("run", BASELINE, "-n", "1", "-j", "2"))
    assert "a replication needs about" in message and "horizon_days" in message


def test_the_memory_estimate_grows_with_what_a_run_allocates():
    small = load_scenario(scenario(cohort("c", 10, max_attempts=2), horizon_days=30))
    longer = small.with_overrides({"horizon_days": 300})
    more = small.with_overrides({"cohorts.c.max_attempts": 20})
    assert limits.replication_bytes(longer) > 5 * limits.replication_bytes(small)
    assert limits.replication_bytes(more) > 4 * limits.replication_bytes(small)


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


@pytest.mark.parametrize(
    "name", ["../../elsewhere", "..", "a\\b", "tab\there", "  ", " x", "x "]
)
def test_a_scenario_name_that_is_not_a_folder_name_is_refused(tmp_path, name):
    """compare -o and a report write each run to a folder named after its
    scenario: '../../elsewhere' wrote outside the output folder; a name of
    spaces ran into a folder no listing shows, and 'x ' beside 'x' compared two
    scenarios whose tables read alike."""
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


def test_a_name_the_fonts_lack_is_drawn_without_a_warning(tmp_path):
    """A scenario named in a script the chart fonts lack ran, then printed
    matplotlib's 'Glyph ... missing from font' warning for each chart."""
    import warnings

    import pandas as pd

    from migsim.output.plots import backlog_fan_chart

    bands = pd.DataFrame(
        {"date": pd.date_range("2019-11-25", periods=3), "p10": [3, 2, 1]}
    ).assign(p50=lambda f: f.p10, p90=lambda f: f.p10)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        backlog_fan_chart(bands, "名前 ramp").savefig(tmp_path / "b.png")


def json_quoted(text: str) -> str:
    """A YAML double-quoted scalar of ``text``."""
    return json.dumps(text)


@pytest.mark.parametrize(
    ("suppliers", "part"),
    [
        ("", "{supplier: octopus, kind: normal, queued: 24000}"),
        (
            "    suppliers: {octopus: 1.0}\n",
            "{supplier: octpus, kind: normal, queued: 24000}",
        ),
    ],
)
def test_a_state_part_naming_an_unknown_supplier_is_refused(tmp_path, suppliers, part):
    """A continued state's part naming a supplier the scenario does not have (a
    typo, or a state from another scenario) was quietly not taken up: the state
    was shared out in proportion instead, as for a state without parts."""
    text = EPCL.replace(
        "    installations: 24000\n",
        "    installations: 24000\n"
        + suppliers
        + f"    initial_state: {{queued: 24000, parts: [{part}]}}\n",
    )
    if suppliers:
        text = text.replace("cohorts:\n", "suppliers:\n  - {name: octopus}\ncohorts:\n")
    path = write(tmp_path, text)
    for args in (["validate", path], ["run", path, "-n", "1", "-q"]):
        message = one_line_exit_2(cli(*args, cwd=tmp_path))
        name = "octpus" if suppliers else "octopus"
        assert message == (
            f"Error: {path}: cohorts.itron_active.initial_state.parts.0.supplier: "
            f"no supplier named '{name}' in suppliers (leave out parts to share "
            "the state in proportion)"
        ), message
    assert sorted(p.name for p in tmp_path.iterdir()) == ["sc.yaml"]


@pytest.fixture(scope="module")
def continued() -> dict:
    """nov2019_operations (two suppliers, hard cases, a latent defect, an ELS
    desk) continued from day 40 of one replication, as a scenario dict."""
    import migsim

    sc = load_scenario(SCENARIOS / "nov2019_operations.yaml")
    results = migsim.run(sc, replications=1, seed=1)
    state = results.state_on(sc.date_of(40), replication=0)
    data = sc.starting_from(state).to_dict()
    data["horizon_days"] = 30
    return data


def _first_stall_case(data: dict) -> dict:
    return next(
        c for c in data["operations_state"]["els_queue"] if c["kind"] == "stall"
    )


@pytest.mark.parametrize(
    ("change", "problem"),
    [
        (
            {"supplier": "nosuch"},
            "operations_state.els_queue.{i}.supplier: no supplier named 'nosuch' "
            "in suppliers",
        ),
        (
            {"attempts": {99: "COUNT"}},
            "operations_state.els_queue.{i}.attempts: attempts made 99 is outside "
            "0 to 5 (max_attempts of itron_active)",
        ),
        (
            {"attempts": {-1: "COUNT"}},
            "operations_state.els_queue.{i}.attempts: attempts made -1 is outside "
            "0 to 5 (max_attempts of itron_active)",
        ),
        (
            {"attempts": {1: 1}},
            "operations_state.els_queue.{i}.attempts: they add up to 1, not the "
            "case's count COUNT",
        ),
        (
            {"by_class": {"nromal": {1: "COUNT"}}},
            "operations_state.els_queue.{i}.by_class: no class 'nromal' (normal, "
            "hard or excluded)",
        ),
        (
            {"by_class": {"normal": {1: 1}}},
            "operations_state.els_queue.{i}.by_class: they add up to 1, not the "
            "case's count COUNT",
        ),
    ],
)
def test_an_open_els_case_that_cannot_be_a_runs_is_refused(
    tmp_path, continued, change, problem
):
    """An open ELS case naming an unknown supplier went to the cohort's first
    supplier; attempts made past max_attempts were clipped and below 0 indexed
    from the end; counts by attempts or class not adding up to the case held
    the wrong installations (some never released); a misspelt class fell back
    to the attempts. All ran without a word."""
    data = copy.deepcopy(continued)
    case = _first_stall_case(data)
    i = data["operations_state"]["els_queue"].index(case)
    count = case["count"]
    for key, value in change.items():
        if isinstance(value, dict):
            value = {
                k: ({m: count if n == "COUNT" else n for m, n in v.items()})
                if isinstance(v, dict)
                else (count if v == "COUNT" else v)
                for k, v in value.items()
            }
        case[key] = value
    path = write(tmp_path, yaml.safe_dump(data, sort_keys=False))
    message = one_line_exit_2(cli("validate", path))
    expected = problem.format(i=i).replace("COUNT", f"{count:,}")
    assert message == f"Error: {path}: {expected}", message


def test_a_defect_found_before_any_date_is_refused(tmp_path, continued):
    """found_day -1,000,000,000 validated, then the run raised OverflowError
    (a date a billion days before start_date): a traceback, exit 1."""
    data = copy.deepcopy(continued)
    defect = data["operations_state"]["defects"][0]
    defect.update(exists=True, first_exposed=-(10**9), found_day=-(10**9))
    path = write(tmp_path, yaml.safe_dump(data, sort_keys=False))
    for args in (["validate", path], ["run", path, "-n", "1", "-q"]):
        message = one_line_exit_2(cli(*args, cwd=tmp_path))
        assert (
            "operations_state.defects.0.first_exposed: -1,000,000,000 is " in (message)
            and "outside the limit -7,305 to 7,305 days" in message
        ), message


def test_an_empty_working_week_is_refused_naming_the_field(tmp_path):
    """``working_days: []`` validated, and then no installation ever migrated
    (no schedule step or rule can open a day): the run looked like a result."""
    path = write(tmp_path, EPCL.replace("[Mon, Tue, Wed, Thu, Fri]", "[]", 1))
    for args in (["validate", path], ["run", path, "-n", "1"]):
        message = one_line_exit_2(cli(*args))
        assert message.startswith(f"Error: {path}: calendar.working_days: "), message
        assert "no working day" in message
    assert sorted(p.name for p in tmp_path.iterdir()) == ["sc.yaml"]
    with pytest.raises(ScenarioError, match="calendar.working_days: no working day"):
        load_scenario(BASELINE, {"calendar.working_days": []})


def test_a_zero_cap_stays_allowed_because_a_schedule_step_can_open_it():
    """Unlike an empty working week, ``daily_cap: 0`` may be meant: a programme
    paused until a planned step (or a sweep or ``--set`` asking what a pause
    costs). Nothing is attempted before the step, its cap every day after."""
    import migsim

    sc = load_scenario(
        scenario(
            cohort("a", 1000),
            working_days=["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"],
            horizon_days=10,
            capacity={
                "daily_cap": 0,
                "schedule": [{"from": "2024-01-04", "daily_cap": 40}],
            },
        )
    )
    daily = migsim.run(sc, replications=1).daily
    attempts = daily.groupby("date", observed=True)["attempts"].sum().to_numpy()
    assert attempts.tolist() == [0, 0, 0] + [40] * 7


@pytest.mark.parametrize(
    ("key", "shown"),
    [
        ("yes", "'yes' is YAML for true"),
        ("no", "'no' is YAML for false"),
        ("on", "'on' is YAML for true"),
        ("Off", "'Off' is YAML for false"),
        ("true", "'true' is YAML for true"),
        ("null", "'null' is YAML for null"),
        ("~", "'~' is YAML for null"),
        ("2019-12-25", "'2019-12-25' is YAML for a date"),
    ],
)
def test_a_key_yaml_reads_as_a_boolean_null_or_date_is_named_as_written(
    tmp_path, key, shown
):
    """``yes:`` under a cohort was reported as ``cohorts.elster_dormant.1: Keys
    should be strings`` (pydantic's place for True), ``null:`` as ``None``."""
    text = EPCL.replace("    mode: dormant", f"    mode: dormant\n    {key}: 1", 1)
    line = text.splitlines().index(f"    {key}: 1") + 1
    path = write(tmp_path, text)
    message = one_line_exit_2(cli("validate", path))
    assert message == (
        f"Error: {path}: YAML error at line {line}: key {shown}, not a name: "
        "quote it if it is one"
    )
    quoted = load_scenario(BASELINE).model_dump(mode="json", by_alias=True)
    quoted["cohorts"][1][key] = 1  # quoted, it is a name: an unknown field
    with pytest.raises(ScenarioError, match=f"cohorts.elster_dormant.{key}: unknown"):
        load_scenario(quoted)


def test_a_whole_number_key_is_still_named_as_written(tmp_path):
    """Whole-number keys stay keys (a continued state counts ELS cases by
    attempts made), so the scenario's own check names them."""
    text = EPCL.replace("    mode: dormant", "    mode: dormant\n    1: x", 1)
    message = one_line_exit_2(cli("validate", write(tmp_path, text)))
    assert message.endswith(": cohorts.elster_dormant.1: Keys should be strings")


def test_a_nul_byte_in_a_scenario_is_refused_with_its_line_and_column(tmp_path):
    """A NUL byte gave 'YAML error: invalid YAML', with no line to look at."""
    lines = EPCL.splitlines()
    row = lines.index("seed: 0")
    lines[row] = "seed: 0\x00"
    path = write(tmp_path, "\n".join(lines) + "\n")
    message = one_line_exit_2(cli("validate", path))
    assert message == (
        f"Error: {path}: YAML error at line {row + 1}, column 8: character U+0000 "
        "(NUL) is not allowed in YAML: remove it"
    )


@pytest.mark.parametrize(
    ("where", "args", "expected"),
    [
        # pydantic's union and validator tags were in the path, and the number
        # member's "valid number" error was shown beside the distribution's
        (
            "file",
            ("capacity.achieved.mean", "{dist: beta, alpha: -1, beta: 4}"),
            "capacity.achieved.mean.alpha: Input should be greater than 0",
        ),
        (
            "set",
            ("capacity.achieved.mean.alpha", "0"),
            "capacity.achieved.mean.alpha: Input should be greater than 0",
        ),
        (
            "file",
            ("capacity.achieved.mean", "{dist: beta, alpha: 1, beta: 4, other: 1}"),
            "capacity.achieved.mean.other: unknown field",
        ),
        # a name that is not a string was shown as if it were the item's index
        (
            "file",
            ("cohorts.itron_active.name", "5"),
            "cohorts.0.name: Input should be a valid string",
        ),
        # the item addressed by its name kept no name: "cohorts.0.name: required"
        (
            "set",
            ("cohorts.itron_active", "{}"),
            "cohorts.itron_active.installations: Field required; "
            "cohorts.itron_active.mode: Field required; "
            "cohorts.itron_active.outcomes: Field required",
        ),
    ],
)
def test_error_paths_are_the_fields_as_written(tmp_path, where, args, expected):
    from migsim.model.paths import set_field

    key, value = args
    text = (SCENARIOS / "nov2019_epcl.yaml").read_text()  # with achieved's mean
    if where == "file":
        data = yaml.safe_load(text)
        set_field(data, key, value, origin="test")
        path = write(tmp_path, yaml.safe_dump(data, sort_keys=False))
        result = cli("validate", path)
        shown = f"{path}"
    else:
        path = write(tmp_path, text)
        result = cli("validate", path, "--set", f"{key}={value}")
        shown = f"{path}: --set"
    assert one_line_exit_2(result) == f"Error: {shown}: {expected}"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["sc.yaml"]


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("horizon_days", '"365"'),
        ("capacity.daily_cap", '"2000"'),
        ("seed", '"7"'),
        ("clearance_share", "'1.0'"),
        ("cohorts.itron_active.installations", '"24000"'),
        ("capacity.achieved.mean", '"0.6"'),
    ],
)
def test_a_number_given_as_text_is_refused(tmp_path, key, value):
    """Quoted numbers validated and ran (as pydantic reads "365" as 365), while
    true was already refused; in a file and through --set alike."""
    from migsim.model.paths import set_field

    text = (SCENARIOS / "nov2019_epcl.yaml").read_text()
    path = write(tmp_path, text)
    field = key.rsplit(".", 1)[-1]
    problem = (
        f"{field}: a number is needed here, not text {value.strip(chr(34) + chr(39))!r}"
    )
    for args in (
        ["validate", path, "--set", f"{key}={value}"],
        ["run", path, "-n", "1", "--set", f"{key}={value}"],
    ):
        message = one_line_exit_2(cli(*args, cwd=tmp_path))
        assert message.startswith(f"Error: {path}: --set: "), message
        assert problem in message, message
    data = yaml.safe_load(text)
    set_field(data, key, value, origin="test")
    quoted = write(tmp_path, yaml.safe_dump(data, sort_keys=False), "q.yaml")
    assert problem in one_line_exit_2(cli("validate", quoted))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["q.yaml", "sc.yaml"]


def test_set_reads_an_unquoted_number_as_a_number(tmp_path):
    path = write(tmp_path, (SCENARIOS / "nov2019_epcl.yaml").read_text())
    sc = load_scenario(path, {"seed": "7", "clearance_share": "0.9"})
    assert (sc.seed, sc.clearance_share) == (7, 0.9)


def test_every_bundled_scenario_still_validates():
    paths = [*SCENARIOS.rglob("*.yaml")]
    paths += [*Path(__file__).parent.rglob("*.yaml")]
    for path in paths:
        data = read_yaml(path)
        if isinstance(data, dict) and ("cohorts" in data or "extends" in data):
            load_scenario(path)


@pytest.mark.parametrize("name", ["a.b", "../x", "ab\u202ecd", "5abc", "x\n"])
def test_a_cohort_name_that_cannot_be_a_path_part_is_refused(tmp_path, name):
    """Accepted before; a cohort named a.b could not be addressed by --set."""
    data = yaml.safe_load((SCENARIOS / "nov2019_epcl.yaml").read_text())
    data["cohorts"][0]["name"] = name
    path = write(tmp_path, yaml.safe_dump(data, sort_keys=False))
    message = one_line_exit_2(cli("validate", path))
    assert message.startswith(f"Error: {path}: cohorts.0.name: {name!r} is not a name")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["sc.yaml"]


@pytest.mark.parametrize("replications", ["2", "30"])  # one at a time, a block
def test_a_wild_throughput_innovation_runs_without_overflow_warnings(replications):
    """innovation_sd: 1e6 validates, and ran with numpy's 'overflow encountered
    in exp' on stderr (the logistic of a logit below -709)."""
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        result = cli(
            "run", BASELINE, "-n", replications, "-q",
            "--set", "capacity.achieved.innovation_sd=1e6",
        )  # fmt: skip
    assert result.exit_code == 0, (result.output, result.exception)


def test_the_logistic_keeps_its_bits_where_it_did_not_overflow():
    """The cap on the exponent changes no share an ordinary logit gives."""
    import numpy as np

    from migsim.model.uncertainty import _logistic, stationary_logit_mean

    x = np.concatenate([np.linspace(-700, 700, 20001), [-1e300, 1e300]])
    with np.errstate(over="ignore"):
        before = 1.0 / (1.0 + np.exp(-x))
    with np.errstate(over="raise", invalid="raise"):  # underflow to 0 is fine
        after = _logistic(x)
        mu = stationary_logit_mean(0.6, 1e6)
    assert np.array_equal(after[:-2], before[:-2])
    assert after[-2] < 1e-300 and after[-1] == 1.0
    assert -30 <= mu <= 30


@pytest.mark.parametrize("parent", ['""', '"  "', "."])
def test_extends_naming_no_file_is_refused_naming_the_file_and_field(tmp_path, parent):
    """extends: "" reported '.: cannot read: not a regular file', naming
    neither the scenario nor its extends."""
    write(tmp_path, f"extends: {parent}\n{EPCL}", "sc.yaml")
    for command in (["validate"], ["run", "-n", "1", "-q", "-o", "out"]):
        result = cli(command[0], "sc.yaml", *command[1:], cwd=tmp_path)
        assert one_line_exit_2(result) == (
            f"Error: sc.yaml: extends: {yaml.safe_load(parent)!r} is not a scenario "
            "file (give the path of the file this one extends, relative to it)"
        )
    assert [p.name for p in tmp_path.iterdir()] == ["sc.yaml"]


def test_a_number_past_the_general_bounds_is_said_the_right_way_round():
    """-1e308 (a rule threshold, say) read "is above the limit 1e+12"."""

    class Model:  # no documented bound: the general ones apply
        pass

    with pytest.raises(ValueError, match=r"^-1e\+308 is below the limit -1e\+12$"):
        limits.check_value(Model, "threshold", -1e308)
    with pytest.raises(ValueError, match=r"^1e\+308 is above the limit 1e\+12$"):
        limits.check_value(Model, "threshold", 1e308)
    with pytest.raises(ValueError, match="is below the limit -"):
        limits.check_value(Model, "count", -(limits.MAX_COUNT + 1))


@pytest.mark.parametrize(
    ("start", "shown"), [("2020-01-06", "2020-01-06"), ("mcc", "mcc")]
)
def test_two_schedule_steps_starting_together_are_refused(tmp_path, start, shown):
    """Two steps from one date (or one gate) ran, the earlier in the file never
    in force for a day: a plan that said two caps for one day."""
    data = yaml.safe_load(EPCL)
    data["gates"] = [{"name": "mcc", "opens_on": "2020-01-06"}]
    data["capacity"]["schedule"] = [
        {"name": "step_up", "from": start, "daily_cap": 4000},
        {"from": "2020-02-03", "daily_cap": 6000},
        {"from": start, "daily_cap": 1000},
    ]
    path = write(tmp_path, yaml.safe_dump(data))
    message = one_line_exit_2(cli("validate", path))
    assert message.endswith(
        f"{path}: capacity.schedule: step_up and step 2 both start on {shown}: "
        "only the later in the file would take effect"
    )
    data["capacity"]["schedule"][2]["from"] = {
        "dist": "uniform",
        "low": "2020-01-01",
        "high": "2020-01-31",
    }  # an uncertain date may meet the other on a day, as it may not
    assert cli("validate", write(tmp_path, yaml.safe_dump(data))).exit_code == 0


@pytest.mark.parametrize("command", ["validate", "decide"])
def test_a_nul_in_a_path_a_file_names_is_one_line(tmp_path, command):
    """``extends: "a\\0b.yaml"`` or a question's ``scenario: "sc\\0.yaml"`` was a
    ValueError traceback ("embedded null byte"); the path is shown escaped."""
    if command == "validate":
        target = write(tmp_path, 'name: x\nextends: "a\\0b.yaml"\n', "e.yaml")
        expected = f"Error: {tmp_path}/a\\x00b.yaml: cannot read: embedded null byte"
    else:
        target = write(tmp_path, 'name: q\nscenario: "sc\\0.yaml"\n', "q.yaml")
        target.write_text(
            target.read_text()
            + "levers:\n  capacity.daily_cap: {low: 50, high: 150, step: 50}\n"
            "objective: {minimise: clearance_day}\n"
            "risk_budget:\n  - {figure: peak_els_backlog, statistic: p90, max: 9}\n"
        )
        expected = (
            f"Error: {target}: scenario: {tmp_path}/sc\\x00.yaml: cannot read: "
            "embedded null byte"
        )
    args = [command, target] + (
        ["-n", "30", "-o", tmp_path / "out"] if command == "decide" else []
    )
    assert one_line_exit_2(cli(*args)) == expected
    assert not (tmp_path / "out").exists()


def test_a_file_of_many_unknown_keys_is_one_short_line_found_at_once(tmp_path):
    """A question of 50,000 unknown keys took minutes (each message was
    looked for in a list of the ones before) and listed every one."""
    import time

    from test_decide import write_question

    path = write_question(tmp_path)
    path.write_text(
        path.read_text() + "".join(f"k{i}: 1\n" for i in range(50_000)),
        encoding="utf-8",
    )
    began = time.monotonic()
    message = one_line_exit_2(cli("decide", path, "-n", "30", "-o", tmp_path / "out"))
    assert time.monotonic() - began < 30
    keys = "; ".join(f"k{i}: unknown key" for i in range(10))
    assert message == f"Error: {path}: {keys}; and 49,990 more"
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("end", ["low", "high", "step"])
def test_a_lever_end_of_true_or_false_is_one_line(tmp_path, end):
    """``low: true`` was taken as the number 1 and the question answered."""
    from test_decide import write_question

    lever = {"low": 500, "high": 5000, "step": 100, end: True}
    path = write_question(tmp_path, levers={"capacity.daily_cap": lever})
    message = one_line_exit_2(cli("decide", path, "-n", "30", "-o", tmp_path / "out"))
    assert message == (
        f"Error: {path}: levers.capacity.daily_cap.{end}: "
        "true is not a number or a date"
    )
    assert not (tmp_path / "out").exists()
