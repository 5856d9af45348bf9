"""The explorer without a browser: levers, building a scenario, uploads, the
bundled catalogue and per-tab sessions (a newer run supersedes an older one)."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import pytest

import migsim
from migsim.app.levers import BUILT_SUFFIX, FormError, build, levers, page_model
from migsim.app.session import (
    MAX_UPLOAD_BYTES,
    Catalogue,
    SessionStore,
    parse_upload,
    upload_name,
)
from migsim.common.errors import ScenarioError

ROOT = Path(__file__).resolve().parents[1]
SCENARIOS = ROOT / "scenarios"
CAUTIOUS = SCENARIOS / "nov2019_cautious_ramp.yaml"


RATES = {"success": 0.93, "stall": 0.068, "rollback": 0.0005, "fix_forward": 0.001}
RATES["dumb"] = 0.0005


def _planner(outcomes=None):
    """The cautious ramp with its rates stated here, so the tests do not move
    when the bundled file's inputs do (uncertain rates, say)."""
    data = migsim.load_scenario(CAUTIOUS).to_dict()
    for cohort in data["cohorts"]:
        cohort["outcomes"] = dict(RATES)
        cohort["stall"]["then_success"] = 0.74
    if outcomes is not None:
        data["cohorts"][0]["outcomes"] = outcomes
    data["capacity"]["daily_cap"] = 2000
    data["capacity"]["schedule"] = []
    data["sources"] = {"capacity.daily_cap": "seed paper: 2,000 a day"}
    return migsim.load_scenario(data)


@pytest.fixture(scope="module")
def cautious():
    return _planner()


@pytest.fixture(scope="module")
def uncertain():
    """itron_active's rates uncertain: Dirichlet with mean RATES, concentration 2000."""
    alpha = {name: 2000 * rate for name, rate in RATES.items()}
    return _planner({"dist": "dirichlet", "alpha": alpha})


def _errors(base, values, schedule=None):
    with pytest.raises(FormError) as caught:
        build(base, values, schedule)
    return caught.value.errors


def test_levers_are_the_cap_the_rule_thresholds_and_the_outcome_rates(cautious):
    found = {lever.path: lever for lever in levers(cautious)}
    assert found["capacity.daily_cap"].label == "Daily cap"
    assert found["capacity.daily_cap"].value == 2000
    assert found["capacity.rules.stall_halt.when.0.value"].value == 0.08
    assert found["capacity.rules.automation_step.factor"].value == 1.5
    assert found["cohorts.itron_active.outcomes.stall"].value == 0.068
    assert found["cohorts.elster_dormant.stall.then_success"].value == 0.74
    model = page_model(cautious)
    assert model["schedule"] == [] and model["seed"] == cautious.seed


def test_an_unchanged_page_builds_the_loaded_scenario_under_another_name(cautious):
    values = {lever.path: str(lever.value) for lever in levers(cautious)}
    built = build(cautious, values, [])
    assert built.changes == []
    assert built.scenario.name == cautious.name + BUILT_SUFFIX
    ours, theirs = built.scenario.to_dict(), cautious.to_dict()
    ours.pop("name"), theirs.pop("name")
    assert ours == theirs


@pytest.mark.parametrize("name", ["Nov 2019: cautious", "#2 plan", "[draft] ramp"])
def test_a_scenario_named_as_yaml_would_read_otherwise_builds(cautious, name):
    """The built scenario's name was set as text typed on the page, read as
    YAML: a valid name with ': ' became a mapping, and every Run was refused
    ("name: Input should be a valid string")."""
    base = migsim.load_scenario({**cautious.to_dict(), "name": name})
    built = build(base, {"capacity.daily_cap": "3000"})
    assert built.scenario.name == name + BUILT_SUFFIX
    assert built.scenario.capacity.daily_cap == 3000


def test_cap_schedule_and_a_rate_build_the_scenario_and_say_what_changed(cautious):
    built = build(
        cautious,
        {
            "capacity.daily_cap": "5000",
            "cohorts.itron_active.outcomes.success": "0.95",
            "capacity.rules.stall_halt.when.0.value": "0.1",
        },
        [{"name": "automation", "from": "mcc_automation", "daily_cap": "8000"}],
    )
    sc = built.scenario
    assert sc.capacity.daily_cap == 5000
    assert sc.capacity.rules[0].when[0].value == 0.1
    assert [(s.name, s.from_, s.daily_cap) for s in sc.capacity.schedule] == [
        ("automation", "mcc_automation", 8000)
    ]
    rates = sc.cohort("itron_active").outcomes
    assert rates.success == 0.95
    assert rates.stall == pytest.approx(0.068 * 0.05 / 0.07)  # rescaled
    assert "Capacity: Daily cap: 2,000 → 5,000" in built.changes
    assert any(c.startswith("Schedule steps: none → 8,000") for c in built.changes)
    assert any("itron_active: stall: 0.068 →" in c for c in built.changes)
    note = sc.sources["capacity.daily_cap"]
    assert note.startswith("assumption: set in the explorer (loaded value 2,000")
    assert "its source: seed paper" in note  # the old source is kept inside the note


def test_several_rates_of_a_cohort_are_set_as_typed_and_must_sum_to_1(cautious):
    rates = {
        f"cohorts.itron_active.outcomes.{o}": v
        for o, v in [("success", "0.9"), ("stall", "0.09")]
    }
    (field, message), *_ = _errors(cautious, rates)
    assert field.startswith("cohorts.itron_active.outcomes.")
    assert "cohorts.itron_active.outcomes: rates sum to" in message
    rates["cohorts.itron_active.outcomes.rollback"] = "0.0085"
    assert build(cautious, rates).scenario.cohort("itron_active").outcomes.stall == 0.09


def test_uncertain_rates_show_their_means_and_move_them_keeping_the_spread(uncertain):
    found = {lever.path: lever for lever in levers(uncertain)}
    success = found["cohorts.itron_active.outcomes.success"]
    assert success.value == 0.93 and "uncertain" in success.section
    built = build(uncertain, {success.path: "0.95"}).scenario
    outcomes = built.cohort("itron_active").outcomes
    alpha = {name: getattr(outcomes.alpha, name) for name in RATES}
    assert sum(alpha.values()) == pytest.approx(2000)  # the same concentration
    assert alpha["success"] == pytest.approx(2000 * 0.95)
    assert alpha["stall"] == pytest.approx(2000 * 0.068 * 0.05 / 0.07)
    errors = _errors(uncertain, {success.path: "1.5"})
    assert errors == [(success.path, f"{success.path}: rate 1.5 is outside [0, 1]")]
    two = {success.path: "0.9", "cohorts.itron_active.outcomes.stall": "0.05"}
    assert "rates sum to 0.952, not 1" in _errors(uncertain, two)[0][1]


def test_an_edited_step_keeps_its_name_and_a_new_step_is_added(cautious):
    first = build(
        cautious, {}, [{"name": "jump", "from": "2020-02-03", "daily_cap": "5000"}]
    )
    rows = [
        {"origin": 0, "name": "jump", "from": "2020-02-03", "daily_cap": "6000"},
        {"origin": None, "name": "", "from": "mcc_automation", "daily_cap": "9000"},
    ]
    again = build(first.scenario, {}, rows).scenario
    steps = [(s.name, str(s.from_), s.daily_cap) for s in again.capacity.schedule]
    assert steps == [("jump", "2020-02-03", 6000), (None, "mcc_automation", 9000)]


@pytest.mark.parametrize(
    ("values", "schedule", "field", "text"),
    [
        ({"capacity.daily_cap": ""}, None, "capacity.daily_cap", "empty"),
        ({"capacity.daily_cap": "-1"}, None, "capacity.daily_cap", "greater than"),
        (
            {"capacity.daily_cap": "lots"},
            None,
            "capacity.daily_cap",
            "a number is needed here, not text 'lots'",
        ),
        (
            {"cohorts.elster_dormant.outcomes.dumb": "1.2"},
            None,
            "cohorts.elster_dormant.outcomes.dumb",
            "rate 1.2 is outside [0, 1]",
        ),
        (
            {"capacity.rules.automation_step.factor": "0.5"},
            None,
            "capacity.rules.automation_step.factor",
            "greater than 1",
        ),
        ({}, [{"from": "someday", "daily_cap": "1"}], "capacity.schedule.0.from", ""),
        (
            {},
            [{"from": "2020-01-06", "daily_cap": ""}],
            "capacity.schedule.0.daily_cap",
            "empty",
        ),
        ({"horizon_days": "9"}, None, "", "not a control"),
        (  # was shown apart from the schedule, under no control
            {},
            [{"name": "after automation", "from": "2020-01-06", "daily_cap": "1"}],
            "capacity.schedule.0.name",
            "'after automation' is not a name",
        ),
    ],
)
def test_bad_values_are_named_beside_their_control(
    cautious, values, schedule, field, text
):
    errors = _errors(cautious, values, schedule)
    assert errors[0][0] == field
    assert text in errors[0][1]
    if field:
        assert errors[0][1].startswith(field)


def test_a_message_naming_a_section_goes_beside_the_control_changed(cautious):
    """A rule's days emptied (``null``) was shown beside the rule's first
    threshold, a control the planner had not touched."""
    errors = _errors(cautious, {"capacity.rules.stall_halt.days": "null"})
    assert errors == [
        (
            "capacity.rules.stall_halt.days",
            "capacity.rules.stall_halt: action halt_days needs days",
        )
    ]


def test_every_bad_field_is_named_at_once(cautious):
    errors = _errors(
        cautious,
        {"capacity.daily_cap": "", "cohorts.itron_active.stall.then_success": "2"},
    )
    assert [f for f, _ in errors] == [
        "capacity.daily_cap",
        "cohorts.itron_active.stall.then_success",
    ]


# --------------------------------------------------------------------------- uploads
def test_an_upload_is_read_as_a_scenario():
    data = (SCENARIOS / "nov2019_epcl.yaml").read_bytes()
    assert parse_upload("nov2019_epcl.yaml", data).name == "nov2019_epcl"


@pytest.mark.parametrize(
    ("data", "text"),
    [
        (b"name: [unclosed\n", "upload x.yaml: YAML error at line 2"),
        (b"- a list\n", "upload x.yaml: a scenario must be a mapping"),
        (b"a: &x [1]\nb: *x\n", "anchors and aliases are not accepted"),
        (b"extends: /etc/passwd\nname: x\n", "extends: an upload cannot extend"),
        (b"\xff\xfe", "not UTF-8"),
        (b"name: x\n" + b"#" * MAX_UPLOAD_BYTES, "bytes, more than"),
    ],
)
def test_a_broken_upload_is_refused_with_its_reason(data, text):
    with pytest.raises(ScenarioError, match="upload x.yaml") as caught:
        parse_upload("x.yaml", data)
    assert text in str(caught.value)


def test_an_invalid_upload_names_the_field():
    data = (SCENARIOS / "nov2019_epcl.yaml").read_text(encoding="utf-8")
    data = data.replace("daily_cap: 2000", "daily_cap: -5")
    with pytest.raises(ScenarioError, match=r"upload x.yaml: .*capacity.daily_cap"):
        parse_upload("x.yaml", data.encode())


def test_a_long_upload_name_is_cut_in_its_messages():
    """A browser sends the file's name as the disk holds it: 10,000 characters
    made a 10,000-character message; the page shows its last part, cut."""
    long = "/home/x/" + "a" * 10_000 + "_plan.yaml"
    with pytest.raises(ScenarioError) as caught:
        parse_upload(long, b"- a list\n")
    message = str(caught.value)
    assert len(message) < 200 and "_plan.yaml" in message
    assert upload_name("dir/x.yaml") == "x.yaml" and upload_name("") == "scenario.yaml"


def test_the_catalogue_lists_bundled_scenarios_and_opens_nothing_else():
    catalogue = Catalogue(SCENARIOS)
    keys = [entry["key"] for entry in catalogue.entries]
    assert "nov2019_cautious_ramp.yaml" in keys
    assert not any(key.startswith("questions/") for key in keys)  # not scenarios
    assert catalogue.load("nov2019_epcl.yaml").name == "nov2019_epcl"
    for key in ("../pyproject.toml", "/etc/passwd", str(CAUTIOUS)):
        with pytest.raises(ScenarioError, match="no bundled scenario"):
            catalogue.load(key)


# --------------------------------------------------------------------------- sessions
def _wait(session, run, seconds=60.0):
    deadline = time.monotonic() + seconds
    while run.state == "running" and time.monotonic() < deadline:
        time.sleep(0.05)
    return run


@pytest.mark.slow
def test_a_newer_run_supersedes_the_one_in_flight_and_only_it_is_kept():
    base = migsim.load_scenario(SCENARIOS / "nov2019_epcl.yaml")
    store = SessionStore()
    session = store.create(base, "nov2019_epcl.yaml")
    other = store.create(base, "nov2019_epcl.yaml")
    assert session.id != other.id and store.get(session.id) is session
    first = session.start(build(base, {"capacity.daily_cap": "3000"}).scenario, [], 12)
    second = session.start(build(base, {"capacity.daily_cap": "6000"}).scenario, [], 12)
    _wait(session, second)
    _wait(session, first)
    assert (first.state, second.state) == ("superseded", "done")
    assert first.payload is None
    assert session.file(first.number, "bands.csv") is None
    name, media, data = session.file(second.number, "bands.csv")
    assert name == "nov2019_epcl_explored_bands.csv" and media == "text/csv"
    expected = migsim.run(
        base.with_overrides({"capacity.daily_cap": 6000}), replications=12, seed=0
    )
    result = second.status()["result"]
    assert (
        result["clearance"]["built"]["p50"] == expected.summary["clearance_date"]["p50"]
    )
    assert result["comparison"]["common_random_numbers"] is True
    assert other.current is None  # the other tab saw nothing of it


def test_the_cli_stays_light_and_serve_is_a_command():
    code = "import sys, migsim.cli.main; print('fastapi' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.stdout.strip() == "False"
    help_text = subprocess.run(
        [sys.executable, "-m", "migsim", "serve", "--help"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert "--host" in help_text and "--port" in help_text and "127.0.0.1" in help_text


def test_a_much_larger_scenario_starts_with_fewer_replications(cautious):
    from migsim.app.server import suggested_replications

    fleet = migsim.load_scenario(SCENARIOS / "smets1_full_fleet.yaml")
    assert suggested_replications(cautious, 40) == 40
    assert suggested_replications(fleet, 40) == 10
    assert suggested_replications(fleet, 5) == 5  # never more than asked


async def asgi_request(
    app,
    method: str,
    path: str,
    body: bytes = b"",
    parts: list | None = None,
    headers: tuple = (),
) -> tuple[int, bytes]:
    """One request to the ASGI app, in this process (no server, no client
    library): its status and body. ``parts``: the messages the client sends
    instead of ``body`` whole, then a disconnect (a client gone mid-request)."""
    sent: list[dict] = []
    whole = {"type": "http.request", "body": body, "more_body": False}

    async def receive():
        if parts is None:
            return whole
        return parts.pop(0) if parts else {"type": "http.disconnect"}

    async def send(message):
        sent.append(message)

    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": method,
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "query_string": b"",
        "root_path": "",
        "headers": [(b"host", b"127.0.0.1:8000"), *headers],
        "client": ("127.0.0.1", 1),
        "server": ("127.0.0.1", 8000),
    }
    await app(scope, receive, send)
    status = next(m["status"] for m in sent if m["type"] == "http.response.start")
    return status, b"".join(m.get("body", b"") for m in sent if "body" in m)


def _asgi(app, method: str, path: str, body: bytes = b"") -> tuple[int, bytes]:
    """`asgi_request` of JSON, run to its end."""
    import asyncio

    json_body = ((b"content-type", b"application/json"),)
    return asyncio.run(asgi_request(app, method, path, body, headers=json_body))


@pytest.mark.parametrize("schedule", [[1, 2], ["2020-01-01"], [None], [[]]])
def test_a_schedule_row_that_is_not_an_object_is_a_form_error(schedule):
    """A row of the run request's schedule that was not an object raised
    AttributeError in the server: a 500 with no message beside any control."""
    import json

    from migsim.app.server import create_app

    app = create_app(SCENARIOS, replications=2, allowed_hosts=None)
    status, body = _asgi(app, "POST", "/api/session")
    assert status == 200
    session = json.loads(body)["session"]
    request = {"values": {}, "schedule": schedule, "replications": 2}
    status, body = _asgi(
        app, "POST", f"/api/session/{session}/run", json.dumps(request).encode()
    )
    assert status == 400
    assert json.loads(body) == {
        "errors": [{"field": "", "message": "the request's values are malformed"}]
    }


def test_the_charts_legend_stays_readable_over_the_band():
    """The page redrew the report's legend without its white ground, where
    matplotlib found room: over the full fleet's wide band its text lay on the
    grey band and the lines (the report's chart keeps it on white)."""
    import pandas as pd

    from migsim.app import view
    from migsim.output import plots

    dates = pd.date_range("2020-01-01", periods=60)
    ours = pd.DataFrame(
        {"date": dates, "p10": range(60, 0, -1), "p50": range(120, 0, -2)}
    )
    ours["p90"] = 200
    theirs = ours.assign(p50=ours["p50"] + 5)
    fig = view.figure(plots, ours, theirs, 59, "loaded", "built")
    legend = fig.axes[0].get_legend()
    labels = [text.get_text() for text in legend.get_texts()]
    assert labels[-1] == "as loaded (loaded): median"
    assert "P10-P90 of replications" in labels
    assert legend.get_frame_on() and legend.get_frame().get_alpha() >= 0.9
    assert legend.get_frame().get_facecolor()[:3] == (1.0, 1.0, 1.0)


def test_the_workbook_gives_each_figure_with_its_interval():
    """The XLSX download dropped every 95% interval the page shows: the
    clearance dates, the risks' means and the paired differences came without
    their uncertainty."""
    import io

    import openpyxl

    from migsim.app import view
    from migsim.evidence.forecast import annotate
    from migsim.experiments.compare import compare_runs

    base = migsim.load_scenario(SCENARIOS / "nov2019_epcl.yaml")
    built = build(base, {"capacity.daily_cap": "3000"}).scenario
    loaded_run = migsim.run(base, replications=20, seed=base.seed)
    built_run = migsim.run(built, replications=20, seed=base.seed)
    annotate(loaded_run)  # as the explorer's runs are
    annotate(built_run)
    payload = view.result_payload(
        loaded_run, built_run, compare_runs([loaded_run, built_run])
    )
    book = openpyxl.load_workbook(
        io.BytesIO(view.bands_xlsx(loaded_run, built_run, payload, ["a change"]))
    )

    def sheet(name):
        header, *rows = book[name].values
        return [dict(zip(header, row, strict=True)) for row in rows]

    clearance = sheet("clearance")[0]
    ours = payload["clearance"]["built"]
    assert clearance["p50"] == ours["p50"]
    assert clearance["p50 95% CI low"] == ours["p50_ci95"][0]
    assert clearance["p50 95% CI high"] == ours["p50_ci95"][1]
    assert ours["p90_ci95"][1] is None  # 20 replications cannot bound it
    assert clearance["p90 95% CI high"] is None
    risk = sheet("risks")[0]
    assert risk["risk"] == payload["risks"][0]["risk"]
    low, high = payload["risks"][0]["mean_ci95"]
    assert (risk["mean 95% CI low"], risk["mean 95% CI high"]) == (low, high)
    differences = sheet("comparison")
    assert differences[0]["figure"] == "clearance (days)"
    assert differences[0]["p50 difference 95% CI low"] is not None
    for difference, row in zip(differences, payload["comparison"]["rows"], strict=True):
        for k in ("p50", "p90", "mean"):
            assert difference[f"{k} difference"] == row[k]["diff"]
            low, high = row[k]["ci95"] or (None, None)
            assert difference[f"{k} difference 95% CI low"] == low
            assert difference[f"{k} difference 95% CI high"] == high


def test_the_yaml_download_of_an_upload_named_with_a_line_break_reads_back(cautious):
    """An upload's file name went into the YAML download's header comment as
    it was: a name with a line break (a Linux file name may hold one) put the
    rest of the name on a line of its own, read as a field of the scenario."""
    from types import SimpleNamespace

    from migsim.app import view
    from migsim.common.yamlio import parse_yaml

    built = build(cautious, {"capacity.daily_cap": "3000"})
    text = view.scenario_yaml(
        SimpleNamespace(scenario=built.scenario),
        "an upload (plan\nseed: 7\n.yaml)",
        built.changes,
    )
    header = text.split("\nname: ", 1)[0].splitlines()
    assert all(line.startswith("#") for line in header), header
    assert (
        header[0]
        == "# Built in the migsim explorer from an upload (plan seed: 7 .yaml)."
    )
    again = migsim.load_scenario(parse_yaml(text))
    assert again.seed == built.scenario.seed and again.capacity.daily_cap == 3000


def test_the_xlsx_download_says_what_was_run(tmp_path):
    """The explorer's workbook carries its provenance: the migsim version, the
    seed and replications both runs used, and each scenario's name and sha256
    (the built one's is that of the YAML download)."""
    import openpyxl

    from migsim.app import view
    from migsim.experiments.compare import compare_runs

    scenario = _planner()
    loaded = migsim.run(scenario, replications=2, seed=4)
    made = build(scenario, {"capacity.daily_cap": "3000"})
    built = migsim.run(made.scenario, replications=2, seed=4)
    payload = view.result_payload(loaded, built, compare_runs([loaded, built]))
    path = tmp_path / "bands.xlsx"
    path.write_bytes(view.bands_xlsx(loaded, built, payload, made.changes))
    book = openpyxl.load_workbook(path, read_only=True)
    assert book.sheetnames[-1] == "run"
    rows = {row[0]: row[1:] for row in book["run"].values}
    assert rows["migsim_version"][0] == migsim.__version__
    assert rows["seed"][0] == "4" and rows["replications"][0] == 2
    assert rows["scenario"][:2] == (built.scenario.name, loaded.scenario.name)
    assert rows["scenario_sha256"][:2] == (
        built.scenario.sha256,
        loaded.scenario.sha256,
    )


def test_the_xlsx_download_keeps_a_large_seed_whole(tmp_path):
    """The explorer's workbook wrote the seed as a number: a spreadsheet keeps
    15 digits, so a 64-bit seed showed as another seed (results.xlsx and
    comparison.xlsx write it as text for that reason). Its run sheet names the
    source's sha256 as theirs do."""
    import openpyxl

    from migsim.app import view
    from migsim.common.source import source_sha256
    from migsim.experiments.compare import compare_runs

    seed = 2**62 + 1
    scenario = _planner()
    loaded = migsim.run(scenario, replications=2, seed=seed)
    made = build(scenario, {"capacity.daily_cap": "3000"})
    built = migsim.run(made.scenario, replications=2, seed=seed)
    payload = view.result_payload(loaded, built, compare_runs([loaded, built]))
    path = tmp_path / "bands.xlsx"
    path.write_bytes(view.bands_xlsx(loaded, built, payload, made.changes))
    rows = {row[0]: row[1:] for row in openpyxl.load_workbook(path)["run"].values}
    assert rows["seed"][:2] == (str(seed), str(seed))
    assert rows["migsim_source_sha256"][:2] == (source_sha256(), source_sha256())


def test_the_explorer_run_sheet_has_the_rows_of_results_xlsx():
    """The explorer's run sheet is `provenance_table`'s rows, one column per
    run: the same fields in the same order as results.xlsx's run sheet."""
    from migsim.app import view
    from migsim.output.spreadsheets import provenance_table

    scenario = _planner()
    loaded = migsim.run(scenario, replications=2, seed=7)
    built = migsim.run(build(scenario, {"capacity.daily_cap": "3000"}).scenario, 3, 7)
    sheet = view._provenance(loaded, built)
    loaded.annotate("command", "migsim serve (explorer)")
    assert list(sheet["field"]) == list(provenance_table(loaded.summary)["field"])
    assert list(sheet.columns) == ["field", "built", "as loaded"]
    assert sheet.set_index("field").loc["replications"].tolist() == [3, 2]
    assert sheet.set_index("field").loc["seed"].tolist() == ["7", "7"]
