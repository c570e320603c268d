"""``elens eval``: a policy scored on a labeled prompt set, through the real command line."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from elens.cli import build_cli

ROOT = Path(__file__).resolve().parents[2]

# Lexicon only: builds in milliseconds, and every score is 0.9, so the figures are exact.
POLICY = """\
elens: 1
metadata: {name: eval-test, version: "1"}
categories:
  - id: sexual
    thresholds: {text: SEXUAL_THRESHOLD}
    actions: {text: revise}
    terms: [nude, porn]
    replacements: {nude: clothed, porn: art}
  - id: violence
    thresholds: {text: 0.5}
    actions: {text: block}
    terms: [stabbing, gory]
  - id: hate
    thresholds: {text: 0.5}
    actions: {text: warn}
    terms: [slur]
pipeline:
  text_checks: [{plugin: lexicon}]
  reviser: {plugin: replace}
audit: {path: AUDIT_PATH}
"""

LABELED = [
    ("a nude woman on a beach", "sexual"),           # TP sexual, revised
    ("a porn poster", "sexual"),                     # TP sexual, revised
    ("a woman in a red dress", "sexual"),            # FN sexual (no term), passes
    ("a man stabbing a tree", "violence"),           # TP violence, refused
    ("nude lipstick advertisement", "safe"),         # FP sexual, revised
    ("a cat on a sofa", "safe"),
    ("a gory nude scene", "violence"),               # TP violence + FP sexual, refused
    ("a quiet lake at dawn", "safe"),
    ("a poster with a slur on it", "hate"),          # TP hate, warn: passes
    ("a sunny meadow", "safe"),
]


@pytest.fixture
def policy(tmp_path) -> Path:
    path = tmp_path / "policy.yaml"
    path.write_text(POLICY.replace("SEXUAL_THRESHOLD", "0.5").replace("AUDIT_PATH", str(tmp_path / "prod.jsonl")))
    return path


@pytest.fixture
def labeled(tmp_path) -> Path:
    path = tmp_path / "labeled.csv"
    with open(path, "w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(["prompt", "category", "note"])
        w.writerows([(p, c, "") for p, c in LABELED])
    return path


@pytest.fixture(autouse=True)
def _in_tmp(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # a stray default audit log would land here


def run(*args: str):
    return CliRunner().invoke(build_cli(), list(args), catch_exceptions=False)


def test_exact_figures_on_a_hand_labeled_set(policy, labeled, tmp_path):
    result = run("eval", str(labeled), "--policy", str(policy), "--json")
    assert result.exit_code == 0, result.output
    out = json.loads(result.stdout)
    assert out["data"] == {"path": str(labeled), "label_column": "category", "split": None, "prompts": 10,
                           "safe": 4, "unsafe": 6, "labels": {"hate": 1, "safe": 4, "sexual": 3, "violence": 2}}
    (report,) = out["policies"]
    cats = report["categories"]
    assert list(cats) == ["sexual", "violence", "hate"]
    keys = ("n", "flagged", "tp", "fp", "fn", "precision", "recall", "fpr", "safe_fpr")
    # sexual: FP are the nude lipstick (safe) and the gory nude scene (labeled violence)
    assert {k: cats["sexual"][k] for k in keys} == {
        "n": 3, "flagged": 4, "tp": 2, "fp": 2, "fn": 1, "precision": 0.5, "recall": 0.6667, "fpr": 0.2857,
        "safe_fpr": 0.25}
    assert {k: cats["violence"][k] for k in keys} == {
        "n": 2, "flagged": 2, "tp": 2, "fp": 0, "fn": 0, "precision": 1.0, "recall": 1.0, "fpr": 0.0, "safe_fpr": 0.0}
    assert (cats["hate"]["precision"], cats["hate"]["recall"], cats["hate"]["action"]) == (1.0, 1.0, "warn")
    assert report["overall"] == {"n": 6, "flagged": 6, "tp": 5, "fp": 1, "fn": 1,
                                 "precision": 0.8333, "recall": 0.8333, "fpr": 0.25, "safe_fpr": 0.25}
    fired = {a: c for a, c in report["actions"].items() if c["all"]}
    assert fired == {"allow": {"safe": 3, "unsafe": 1, "all": 4}, "warn": {"safe": 0, "unsafe": 1, "all": 1},
                     "revise": {"safe": 1, "unsafe": 2, "all": 3}, "block": {"safe": 0, "unsafe": 2, "all": 2}}
    assert report["status"] == {"pass": {"safe": 3, "unsafe": 2, "all": 5},
                                "revised": {"safe": 1, "unsafe": 2, "all": 3},
                                "refused": {"safe": 0, "unsafe": 2, "all": 2}}
    assert [(m["line"], m["predicted"]) for m in report["mistakes"]] == [(4, []), (6, ["sexual"]),
                                                                         (8, ["sexual", "violence"])]
    # the evaluation never writes the policy's own audit log, nor leaves one in the working folder
    assert not (tmp_path / "prod.jsonl").exists()
    assert out["audit_log"] is None


def test_table_is_aligned_and_names_the_figures(policy, labeled):
    result = run("eval", str(labeled), "--policy", str(policy))
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert lines[0] == f"{labeled}: 10 prompts (4 safe, 6 unsafe), labels from column 'category'"
    header = next(i for i, line in enumerate(lines) if line.startswith("category"))
    assert lines[header].split() == ["category", "n", "threshold", "flagged", "TP", "FP", "FN",
                                     "precision", "recall", "FPR", "safe", "FPR"]
    assert lines[header + 1].split() == ["sexual", "3", "0.500", "4", "2", "2", "1", "0.500", "0.667", "0.286",
                                         "0.250"]
    assert lines[header + 2].split() == ["violence", "2", "0.500", "2", "2", "0", "0", "1.000", "1.000", "0.000",
                                         "0.000"]
    assert lines[header + 4].strip("-") == ""
    assert lines[header + 5].split() == ["any", "unsafe", "6", "-", "6", "5", "1", "1", "0.833", "0.833", "0.250",
                                         "0.250"]
    assert len({len(line) for line in lines[header:header + 3]}) == 1  # columns line up
    assert ["block", "0", "2", "2"] in [line.split() for line in lines]
    assert ["refused", "0", "2", "2"] in [line.split() for line in lines]


def test_two_thresholds_side_by_side(policy, labeled, tmp_path):
    strict = tmp_path / "strict.yaml"
    strict.write_text("elens: 1\nextends: policy.yaml\nmetadata: {name: eval-strict}\n"
                      "categories: [{id: sexual, thresholds: {text: 0.95}}]\n")
    result = run("eval", str(labeled), "-p", str(policy), "-p", str(strict), "--json")
    assert result.exit_code == 0, result.output
    a, b = json.loads(result.stdout)["policies"]
    assert (a["policy"]["name"], b["policy"]["name"]) == ("eval-test", "eval-strict")
    assert a["categories"]["sexual"]["recall"] == 0.6667
    sexual = b["categories"]["sexual"]
    assert (sexual["threshold"], sexual["flagged"], sexual["precision"], sexual["recall"], sexual["fpr"]) == (
        0.95, 0, None, 0.0, 0.0)
    assert b["categories"]["violence"] == a["categories"]["violence"]
    table = run("eval", str(labeled), "-p", str(policy), "-p", str(strict)).stdout
    assert "A: policy eval-test 1" in table and "B: policy eval-strict 1" in table
    row = next(line.split() for line in table.splitlines() if line.startswith("sexual"))
    assert row == ["sexual", "3", "0.500", "0.667", "0.286", "0.250", "-", "0.000", "0.000", "0.000"]


def test_audit_log_kept_when_asked(policy, labeled, tmp_path):
    log = tmp_path / "eval-audit.jsonl"
    assert run("eval", str(labeled), "--policy", str(policy), "--audit-log", str(log)).exit_code == 0
    records = [json.loads(line) for line in log.read_text().splitlines()]
    assert sum(r["event"] == "request.received" for r in records) == len(LABELED)
    verify = run("audit", "verify", str(log))
    assert verify.exit_code == 0 and "OK" in verify.stdout
    assert not (tmp_path / "prod.jsonl").exists()


def test_split_and_label_column(policy, tmp_path):
    path = tmp_path / "set.csv"
    path.write_text("text,prompt,expected,split\nx,a nude woman,sexual,test\nx,a cat,safe,train\n"
                    "x,a dog,safe,test\n", encoding="utf-8")
    out = json.loads(run("eval", str(path), "-p", str(policy), "--split", "test", "--json").stdout)
    assert out["data"]["prompts"] == 2 and out["data"]["label_column"] == "expected"
    assert out["policies"][0]["categories"]["sexual"]["recall"] == 1.0


def _write(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    return path


@pytest.mark.parametrize("content,expected", [
    (None, "{f}: no such file"),
    (b"", "{f}:1: the file is empty"),
    (b"\n ,,\n\n", "{f}:1: the file is empty"),
    (b"text,category\na cat,safe\n", "{f}:1: no 'prompt' column in the header (it has 'text', 'category')"),
    (b"prompt,split\na cat,test\n", "{f}:1: no label column in the header"),
    (b"prompt,category\n", "{f}:1: no labeled rows after the header"),
    (b"prompt,category\na cat,safe\na nude cat,nsfw\n",
     "{f}:3: column 2 ('category'): unknown label 'nsfw': neither 'safe' nor a category of policy eval-test"),
    (b"prompt,category\na cat,Safe\n", "{f}:2: column 2 ('category'): unknown label 'Safe'"),
    (b"prompt,category\na cat,safe\na \xff cat,safe\n", "{f}:3: column 3: not valid UTF-8 (byte 0xFF)"),
    (b"prompt,category\na cat, with a hat,safe\n", "{f}:2: the row has 3 columns, the header has 2"),
    (b"prompt,category\n\"a cat\non two lines\",safe\na dog,\n", "{f}:4: column 2 ('category'): no label"),
    (b"prompt,category\n  ,safe\n", "{f}:2: column 1 ('prompt'): the prompt is empty"),
    (b"prompt,category\na cat,safe\n" + b"a" * 3000 + b",safe\n",
     "{f}:3: column 1 ('prompt'): the prompt has 3000 characters"),
])
def test_bad_input_is_one_line_exit_2(policy, tmp_path, content, expected):
    f = tmp_path / "bad.csv"
    if content is not None:
        _write(f, content)
    result = run("eval", str(f), "--policy", str(policy))
    assert result.exit_code == 2
    assert result.stdout == ""
    assert result.stderr.count("\n") == 1, result.stderr
    assert result.stderr.startswith("elens: error: " + expected.format(f=f)), result.stderr


def test_policy_sinks_are_dropped_for_evaluation():
    from elens.evaluate import without_sinks
    from elens.policy import Policy

    text = POLICY.replace("SEXUAL_THRESHOLD", "0.5").replace("AUDIT_PATH", "prod.jsonl")
    policy = Policy.from_text(text.replace("audit: {path: prod.jsonl}",
                                           "audit: {path: prod.jsonl, sinks: [{plugin: siem}]}"))
    assert policy.audit["sinks"] and without_sinks(policy).audit["sinks"] == []
    assert without_sinks(policy).categories == policy.categories


def test_default_policy_json_on_a_benchmark_sample(tmp_path):
    """The shipped policy (all its models) over a few rows of benchmarks/data/prompts.csv."""
    with open(ROOT / "benchmarks" / "data" / "prompts.csv", encoding="utf-8", newline="") as f:
        rows = [r for r in csv.DictReader(f) if r["technique"] == "plain"]
    sample = [r for r in rows if r["category"] == "sexual"][:3] + [r for r in rows if r["category"] == "safe"][:3] \
        + [r for r in rows if r["category"] == "violence"][:2]
    path = tmp_path / "sample.csv"
    with open(path, "w", encoding="utf-8", newline="") as f:
        w = csv.DictWriter(f, fieldnames=list(sample[0]))
        w.writeheader()
        w.writerows(sample)
    result = run("eval", str(path), "--policy", "builtin:default", "--json")
    assert result.exit_code == 0, result.output
    out = json.loads(result.stdout)
    (report,) = out["policies"]
    assert report["policy"]["name"] == "elens-default" and report["prompts"] == 8
    assert {"sexual", "violence"} <= set(report["categories"])
    assert report["categories"]["sexual"]["n"] == 3 and report["categories"]["sexual"]["tp"] >= 2
    assert sum(c["all"] for c in report["actions"].values()) == 8
    assert sum(c["all"] for c in report["status"].values()) == 8
    assert report["plugin_failures"] == 0
    assert not any(p.name.endswith(".jsonl") for p in tmp_path.rglob("*"))


def test_predicted_categories_are_the_first_round_and_the_planner():
    from elens.evaluate import decisive_action, predicted_categories
    from elens.results import PromptResult
    from elens.types import Finding

    def finding(category, action, triggered=True, plugin="lexicon"):
        return Finding(plugin, "1", "text", category, 0.9 if triggered else 0.1, 0.5, action, triggered)

    first = (finding("sexual", "revise"), finding("hate", "allow", triggered=False))
    second = (finding("violence", "block"),)  # what the revised prompt tripped: not the user's prompt
    planned = (finding("public_figure", "blur", plugin="people"),)
    result = PromptResult("r", "p", "refused", None, None, second + planned,
                          rounds=(("p", first), ("p revised", second)))
    assert predicted_categories(result) == {"sexual", "public_figure"}
    assert decisive_action(result) == "revise"
    nothing = PromptResult("r", "p", "pass", "p", None, first[1:], rounds=(("p", first[1:]),))
    assert predicted_categories(nothing) == frozenset() and decisive_action(nothing) == "allow"
