"""``elens examples screen``: candidate examples tried on labeled prompts before they go into a policy."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from elens.cli import build_cli
from elens.policy import load_policy
from elens_text.checks import SemanticCheck

POLICY = """elens: 1
metadata: {name: t, version: '1'}
categories:
  - id: violence
    description: violence
    severity: high
    examples: [a violent attack with a baseball bat%s]
    thresholds: {text: 0.55}
    actions: {text: revise}
pipeline:
  text_checks:
    - plugin: semantic
      options: {mode: zero-shot}
"""
PROMPTS = ("prompt,category\na boy playing baseball in the park,safe\ntourists taking selfies at the eiffel tower,safe\n"
           "a bowl of oranges,safe\na gang beating a man with a crowbar,violence\n")
BROAD = "tourists taking selfies at a public execution"
NARROW = "a man beaten with a crowbar by a gang"


@pytest.fixture
def files(tmp_path):
    (tmp_path / "policy.yaml").write_text(POLICY % "")
    (tmp_path / "prompts.csv").write_text(PROMPTS)
    (tmp_path / "cands.csv").write_text(f"category,example\nviolence,{BROAD}\nviolence,{NARROW}\n")
    return tmp_path


def run(*args):
    return CliRunner().invoke(build_cli(), ["examples", "screen", *map(str, args)])


def test_a_broad_candidate_is_flagged_and_a_narrow_one_catches(files):
    result = run("-p", files / "policy.yaml", "--candidates", files / "cands.csv", "--prompts", files / "prompts.csv")
    assert result.exit_code == 1, result.output
    lines = result.output.splitlines()
    assert lines[0].startswith(f"FLAG violence {BROAD!r}")
    assert "flags safe 'tourists taking selfies at the eiffel tower'" in lines[1]
    assert lines[2].startswith(f"ok   violence {NARROW!r}") and "catches 1 of the 1 violence prompts" in lines[2]
    assert "catches 'a gang beating a man with a crowbar'" in lines[3]


def test_screened_scores_are_the_checks_own_once_the_example_is_in(files):
    """What the screen predicts is what the check then scores, through the same views,
    counterexamples and calibration."""
    result = run("-p", files / "policy.yaml", "--candidates", files / "cands.csv", "--prompts", files / "prompts.csv",
                 "--json")
    broad, narrow = json.loads(result.output)
    assert (broad["ok"], narrow["ok"]) == (False, True)
    assert narrow["caught"] == ["a gang beating a man with a crowbar"]
    (files / "with.yaml").write_text(POLICY % f", {BROAD}")
    check = SemanticCheck({"mode": "zero-shot"}, load_policy(files / "with.yaml"))
    [signal] = check.check([broad["highest_safe"]["prompt"]])[0]
    assert signal.score == pytest.approx(broad["highest_safe"]["score"], abs=1e-3)
    assert [p["prompt"] for p in broad["lifted"]] == ["tourists taking selfies at the eiffel tower"]


def test_only_harmless_candidates_exit_zero(files):
    (files / "cands.csv").write_text(f"category,example\nviolence,{NARROW}\n")
    result = run("-p", files / "policy.yaml", "--candidates", files / "cands.csv", "--prompts", files / "prompts.csv")
    assert result.exit_code == 0, result.output


@pytest.mark.parametrize("cands,message", [
    ("category,example\nnudity,a nude statue\n", "cands.csv:2: category: 'nudity' is not one the semantic check scores"),
    ("category,text\nviolence,a fight\n", "cands.csv:1: header: the CSV needs the columns category and example"),
    ("category,example\nviolence,\n", "cands.csv:2: example: empty"),
])
def test_bad_candidates_are_one_line_errors(files, cands, message):
    (files / "cands.csv").write_text(cands)
    result = run("-p", files / "policy.yaml", "--candidates", files / "cands.csv", "--prompts", files / "prompts.csv")
    assert result.exit_code == 2
    assert message in result.output and len(result.output.strip().splitlines()) == 1


def test_a_policy_without_a_zero_shot_check_is_named(files):
    (files / "policy.yaml").write_text((POLICY % "").replace("plugin: semantic\n      options: {mode: zero-shot}",
                                                              "plugin: lexicon"))
    result = run("-p", files / "policy.yaml", "--candidates", files / "cands.csv", "--prompts", files / "prompts.csv")
    assert result.exit_code == 2
    assert "pipeline.text_checks: no zero-shot semantic check to screen examples for" in result.output
