"""The README and docs/ match what the command does.

Planners copy commands out of the docs and scripts rely on the file names a run
writes, so a renamed option or a new output file must not leave the docs behind.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import click
import pytest
from click.testing import CliRunner

from migsim.cli.main import main

ROOT = Path(__file__).resolve().parent.parent
DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
#: A `migsim COMMAND ...` mention, up to the end of its code span or line.
MENTION = re.compile(r"migsim ([a-z]+)\b([^`\n]*)")
OPTION = re.compile(r"(?<![\w-])(--[a-z][a-z-]*|-[a-z])\b")


def _options(command: click.Command) -> set[str]:
    return {o for p in command.params for o in (*p.opts, *p.secondary_opts)} | {
        "-h",
        "--help",
    }


def test_every_command_and_option_the_docs_show_exists():
    """Each `migsim CMD --opt` in README.md and docs/*.md names a real command
    and one of its options, spelled as the CLI spells it."""
    commands = main.commands
    wrong = []
    seen = 0
    for path in DOCS:
        # a command continued over lines with a backslash is one command
        text = re.sub(r"\\\n\s*", " ", path.read_text(encoding="utf-8"))
        for match in MENTION.finditer(text):
            name, rest = match.groups()
            if name not in commands:
                continue  # prose: "migsim forecast is a spread ...", "migsim now"
            seen += 1
            known = _options(commands[name])
            for option in OPTION.findall(rest):
                if option not in known:
                    wrong.append(f"{path.name}: migsim {name} {option}")
    assert seen > 100  # the docs do show commands
    assert not wrong, wrong


def _reference_outputs() -> str:
    text = (ROOT / "docs" / "scenario-reference.md").read_text(encoding="utf-8")
    return text.split("## Outputs of `migsim run -o OUTDIR`")[1].split("\n## ")[0]


@pytest.mark.slow
def test_every_file_a_run_writes_is_named_in_run_help_and_the_docs(tmp_path):
    """A run of a scenario with uncertain inputs, meters and latent defects
    writes every optional file; each is named by `migsim run --help`, the
    reference's outputs section and the README."""
    outdir = tmp_path / "run"
    scenario = ROOT / "scenarios" / "nov2019_cautious_ramp.yaml"
    result = CliRunner().invoke(
        main, ["run", str(scenario), "-n", "2", "-q", "-o", str(outdir)]
    )
    assert result.exit_code == 0, result.output
    written = sorted(p.name for p in outdir.iterdir())
    assert {"defects.csv", "inputs.csv", "bands_meters.csv"} <= set(written)
    help_text = CliRunner().invoke(main, ["run", "--help"]).output
    reference = _reference_outputs()
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    for name in [*written, "failures.json"]:
        assert name in help_text, f"run --help does not name {name}"
        assert f"`{name}`" in reference, f"scenario-reference.md omits {name}"
        assert f"`{name}`" in readme, f"README.md omits {name}"
    summary = json.loads((outdir / "summary.json").read_text(encoding="utf-8"))
    for key in summary:
        assert f"`{key}`" in reference, f"scenario-reference.md omits key {key}"
