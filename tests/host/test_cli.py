"""The command line, with a plugin installed through a real entry point."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

HERE = Path(__file__).parent


@pytest.fixture(scope="session")
def plugin_site(tmp_path_factory) -> Path:
    """Install the test plugin as a real distribution (pip, entry point and all) into a folder."""
    src = tmp_path_factory.mktemp("elens-testplugin")
    (src / "elens_testplugin").mkdir()
    shutil.copy(HERE / "testplugin.py", src / "elens_testplugin" / "__init__.py")
    (src / "pyproject.toml").write_text(textwrap.dedent("""
        [build-system]
        requires = ["setuptools>=61"]
        build-backend = "setuptools.build_meta"
        [project]
        name = "elens-testplugin"
        version = "0.3.0"
        [project.entry-points.elens]
        testplugin = "elens_testplugin"
        [tool.setuptools]
        packages = ["elens_testplugin"]
    """))
    site = tmp_path_factory.mktemp("site")
    subprocess.run(
        [sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--no-build-isolation", "--no-index",
         "--target", str(site), str(src)],
        check=True, capture_output=True,
    )
    return site


@pytest.fixture
def run(plugin_site, tmp_path):
    def run(*args, env=None, check_rc=None):
        full_env = {**os.environ, "PYTHONPATH": str(plugin_site), **(env or {})}
        proc = subprocess.run([sys.executable, "-m", "elens", *args], capture_output=True, text=True,
                              env=full_env, cwd=tmp_path)
        if check_rc is not None:
            assert proc.returncode == check_rc, proc.stdout + proc.stderr
        return proc

    return run


POLICY = """\
elens: 1
metadata: {name: cli-test, version: "1.0"}
categories:
  - id: weapons
    thresholds: {text: 0.5}
    actions: {text: block}
  - id: gore
    thresholds: {image: 0.5}
    actions: {image: block}
pipeline:
  text_checks:
    - plugin: words
      options: {words: {weapons: [bazooka]}}
  backend: {plugin: tiny}
  image_checks:
    - plugin: patch
      options: {category: gore, score: 0.2}
"""


@pytest.fixture
def policy_file(tmp_path) -> Path:
    path = tmp_path / "policy.yaml"
    path.write_text(POLICY)
    return path


def test_plugins_lists_the_entry_point_plugin(run):
    proc = run("plugins", "--json", check_rc=0)
    rows = {row["name"]: row for row in json.loads(proc.stdout)}
    row = rows["testplugin"]
    assert row["version"] == "0.3.0" and row["distribution"] == "elens-testplugin"
    assert "register_text_checks" in row["hooks"]
    assert "text check:words" in row["components"]
    assert "backend:tiny" in rows["tiny"]["components"]


def test_plugin_command_is_mounted(run):
    assert run("hello-testplugin", check_rc=0).stdout.strip() == "hello from testplugin"


def test_check_uses_the_entry_point_plugin(run, policy_file):
    proc = run("check", "a bazooka", "--policy", str(policy_file), "--json", "--audit-log", "a.jsonl", check_rc=0)
    data = json.loads(proc.stdout)
    assert data["status"] == "refused"
    assert data["findings"][0]["plugin"] == "words"
    assert run("check", "a bazooka", "--policy", str(policy_file), "--strict", "--audit-log", "a.jsonl").returncode == 1
    assert "OK" in run("audit", "verify", "a.jsonl", check_rc=0).stdout


def test_generate_writes_delivered_images_and_manifest(run, policy_file, tmp_path):
    run("generate", "a lighthouse", "-n", "2", "--seed", "4", "--out", "out", "--policy", str(policy_file),
        "--audit-log", "a.jsonl", check_rc=0)
    manifest = json.loads((tmp_path / "out" / "manifest.json").read_text())
    assert [i["status"] for i in manifest["images"]] == ["delivered", "delivered"]
    assert [i["seed"] for i in manifest["images"]] == [4, 5]
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["image-000.png", "image-001.png", "manifest.json"]
    assert manifest["policy"]["name"] == "cli-test"


def test_generate_lists_blocked_images_without_writing_them(run, policy_file, tmp_path):
    strict = policy_file.read_text().replace("score: 0.2", "score: 0.9")
    policy_file.write_text(strict)
    proc = run("generate", "a lighthouse", "--seed", "1", "--out", "out", "--policy", str(policy_file),
               "--audit-log", "a.jsonl", "--strict")
    assert proc.returncode == 1
    manifest = json.loads((tmp_path / "out" / "manifest.json").read_text())
    assert manifest["images"][0]["status"] == "blocked" and manifest["images"][0]["file"] is None
    assert not (tmp_path / "out" / "image-000.png").exists()


def test_unwritable_audit_log_stops_before_any_output(run, policy_file, tmp_path):
    (tmp_path / "not-a-dir").write_text("")  # the log's folder is a file: nothing can be written there
    proc = run("generate", "a lighthouse", "--out", "out", "--policy", str(policy_file),
               "--audit-log", str(tmp_path / "not-a-dir" / "a.jsonl"))
    assert proc.returncode == 2
    assert proc.stderr.count("\n") == 1 and "a.jsonl" in proc.stderr
    assert not (tmp_path / "out").exists()


def test_unknown_plugin_names_file_and_line(run, policy_file):
    proc = run("check", "x", "--policy", str(policy_file), env={"ELENS_BLOCK_PLUGINS": "testplugin"})
    assert proc.returncode == 2
    assert f"{policy_file}:12: pipeline.text_checks[0].plugin: unknown text check 'words'" in proc.stderr


def test_missing_policy_file_is_exit_2(run):
    proc = run("check", "x", "--policy", "nope.yaml")
    assert proc.returncode == 2 and "nope.yaml" in proc.stderr
