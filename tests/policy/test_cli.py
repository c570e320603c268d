"""``elens policy``: validate, show, schema, init, through the click group itself."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner

from elens.cli.policy import policy_group
from elens.policy import load_policy, schema

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def run():
    runner = CliRunner()
    return lambda *args: runner.invoke(policy_group, [str(a) for a in args])


def test_validate_ok(run):
    result = run("validate", "--skip-plugins", ROOT / "policies" / "newsroom.yaml", "builtin:default")
    assert result.exit_code == 0, result.output
    assert "newsroom.yaml: OK (newsroom 1.3" in result.stdout
    assert "builtin:default: OK (elens-default" in result.stdout


def test_validate_defect_exits_2_with_one_line(run, tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("elens: 1\nmetadata: {name: x, version: '1'}\nlimits:\n  max_images: many\n")
    good = ROOT / "policies" / "kids-education.yaml"
    result = run("validate", "--skip-plugins", good, bad)
    assert result.exit_code == 2
    assert result.stderr == f"{bad}:4: limits.max_images: 'many' is not of type 'integer'\n"
    assert "kids-education.yaml: OK" in result.stdout


def test_validate_json(run, tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("elens: 1\nnope: 1\n")
    result = run("validate", "--skip-plugins", "--json", "builtin:default", bad)
    assert result.exit_code == 2
    rows = json.loads(result.stdout)
    assert rows[0]["ok"] is True and rows[0]["sha256"] == load_policy("builtin:default").sha256
    assert rows[1]["ok"] is False
    assert rows[1]["error"] == {"file": str(bad), "line": 2, "field": "nope", "message": rows[1]["error"]["message"],
                                "text": f"{bad}:2: nope: {rows[1]['error']['message']}"}


def test_validate_checks_plugin_ids(run, tmp_path):
    pytest.importorskip("elens.plugins")
    path = tmp_path / "p.yaml"
    path.write_text("elens: 1\nmetadata: {name: x, version: '1'}\npipeline:\n  text_checks:\n"
                    "    - plugin: no-such-check\n")
    result = run("validate", path)
    assert result.exit_code == 2
    assert result.stderr.startswith(f"{path}:5: pipeline.text_checks[0].plugin: ")
    assert run("validate", "--skip-plugins", path).exit_code == 0


def test_show_resolved_yaml_and_json(run):
    policy = load_policy(ROOT / "policies" / "newsroom.yaml")
    result = run("show", ROOT / "policies" / "newsroom.yaml", "--resolved")
    assert result.exit_code == 0, result.output
    assert yaml.safe_load(result.stdout) == policy.data
    result = run("show", ROOT / "policies" / "newsroom.yaml", "--resolved", "--json")
    shown = json.loads(result.stdout)
    assert shown["policy"] == policy.data and shown["sha256"] == policy.sha256
    as_written = yaml.safe_load(run("show", ROOT / "policies" / "newsroom.yaml").stdout)
    assert as_written["extends"] == "builtin:default" and "failure_mode" not in as_written


def test_show_a_defect_exits_2(run, tmp_path):
    path = tmp_path / "p.yaml"
    path.write_text("elens: 1\nextends: p.yaml\n")
    result = run("show", path, "--resolved")
    assert result.exit_code == 2 and result.stderr == f"{path}:2: extends: cycle: the policy extends itself\n"


def test_schema_prints_the_schema(run):
    result = run("schema")
    assert result.exit_code == 0 and json.loads(result.stdout) == schema()


@pytest.mark.parametrize("extends", ["builtin:default", "none"])
def test_init_writes_a_valid_commented_policy(run, tmp_path, extends):
    path = tmp_path / "team" / "policy.yaml"
    result = run("init", path, "--extends", extends)
    assert result.exit_code == 0, result.output
    text = path.read_text()
    assert text.count("#") > 5
    policy = load_policy(path)
    assert policy.name == "my-organization"
    assert run("validate", "--skip-plugins", path).exit_code == 0
    if extends != "none":
        assert len(policy.categories) == 13


def test_init_refuses_to_overwrite(run, tmp_path):
    path = tmp_path / "policy.yaml"
    path.write_text("mine\n")
    result = run("init", path)
    assert result.exit_code == 2 and "--force" in result.stderr
    assert path.read_text() == "mine\n"
    assert run("init", path, "--force").exit_code == 0
    assert load_policy(path).name == "my-organization"


def test_init_with_a_parent_that_does_not_exist(run, tmp_path):
    path = tmp_path / "policy.yaml"
    result = run("init", path, "--extends", "org.yaml")
    assert result.exit_code == 2 and "extends" in result.stderr and not path.exists()
    (tmp_path / "org.yaml").write_text("elens: 1\nextends: builtin:default\nmetadata: {name: org, version: '1'}\n")
    assert run("init", path, "--extends", "org.yaml").exit_code == 0
    assert load_policy(path).name == "my-organization"
