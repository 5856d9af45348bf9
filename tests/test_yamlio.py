"""One YAML reader: scenarios and decision questions report a bad file alike."""

from __future__ import annotations

import pytest

from migsim.common.errors import MigsimError, QuestionError, ScenarioError
from migsim.common.yamlio import read_yaml
from migsim.experiments.decide import load_question
from migsim.model.scenario import load_scenario


def test_reads_plain_data_safely(tmp_path):
    path = tmp_path / "q.yaml"
    path.write_text("name: x\nwhen: 2020-01-06\nlevels: [1, 2.5]\n", encoding="utf-8")
    data = read_yaml(path)
    assert data["name"] == "x" and data["levels"] == [1, 2.5]
    assert data["when"].isoformat() == "2020-01-06"


def test_refuses_python_objects(tmp_path):
    path = tmp_path / "evil.yaml"
    path.write_text("!!python/object/apply:os.system ['true']\n", encoding="utf-8")
    with pytest.raises(MigsimError, match=r"evil\.yaml: YAML error at line 1"):
        read_yaml(path)


def test_missing_file_names_it_as_shown(tmp_path):
    with pytest.raises(ScenarioError, match=r"^shown\.yaml: no such file$"):
        read_yaml(tmp_path / "gone.yaml", error=ScenarioError, shown="shown.yaml")


def test_undecodable_file_cannot_be_read(tmp_path):
    path = tmp_path / "latin.yaml"
    path.write_bytes(b"name: caf\xe9\n")
    with pytest.raises(MigsimError, match=r"latin\.yaml: cannot read: "):
        read_yaml(path)


@pytest.mark.parametrize(
    ("load", "error"), [(load_scenario, ScenarioError), (load_question, QuestionError)]
)
def test_scenarios_and_questions_report_bad_yaml_alike(tmp_path, load, error):
    path = tmp_path / "broken.yaml"
    path.write_text("name: x\nlevers: [1, 2\n", encoding="utf-8")
    with pytest.raises(error) as info:
        load(path)
    message = str(info.value)
    assert message.startswith(f"{path}: YAML error at line ")
    assert "\n" not in message
