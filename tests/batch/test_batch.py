"""``elens batch`` and ``Lens.check_prompts``: input files, results, resume after kill -9, engines."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from click.testing import CliRunner

from elens.audit import read_records, verify
from elens.cli import build_cli

# Lexicon only: light enough to start worker processes and Ray actors in a test.
POLICY = """\
elens: 1
extends: builtin:default
metadata: {name: batch-test, version: "3"}
pipeline:
  text_checks: [{plugin: lexicon}]
  backend: {plugin: tiny}
  image_checks: []
"""

PROMPTS = ["a photo of a doctor", "a nude woman on a beach", "kill them all with a gun", "a cat on a sofa",
           "a portrait of a nurse", "a bloody corpse in the street"]


@pytest.fixture
def policy(tmp_path) -> Path:
    path = tmp_path / "policy.yaml"
    path.write_text(POLICY)
    return path


def elens(*args: str, cwd: Path) -> tuple[int, str, str]:
    runner = CliRunner()
    old = os.getcwd()
    os.chdir(cwd)
    try:
        result = runner.invoke(build_cli(), list(args), catch_exceptions=False)
    finally:
        os.chdir(old)
    return result.exit_code, result.stdout, result.stderr


def results(out: Path) -> list[dict]:
    return [json.loads(line) for line in (out / "results.jsonl").read_text().splitlines()]


def decisions(out: Path) -> list[dict]:
    """Results without what differs from run to run."""
    return [{k: v for k, v in r.items() if k != "request_id"} for r in results(out)]


def completed(log: Path) -> list[dict]:
    return [r for r in read_records(log) if r["event"] == "request.completed"]


def test_txt_csv_and_jsonl_give_one_line_per_prompt_in_order(tmp_path, policy):
    (tmp_path / "p.txt").write_text("\n".join(PROMPTS[:3]) + "\n\n" + "\n".join(PROMPTS[3:]) + "\n")
    (tmp_path / "p.csv").write_text("id,prompt\n" + "".join(f'x{i},"{p}"\n' for i, p in enumerate(PROMPTS)))
    (tmp_path / "p.jsonl").write_text("".join(json.dumps({"prompt": p, "id": i}) + "\n" for i, p in enumerate(PROMPTS)))
    seen = {}
    for name in ("p.txt", "p.csv", "p.jsonl"):
        code, out, err = elens("batch", name, "--out", f"out-{name}", "--check-only", "-p", str(policy),
                               "--audit-log", "audit.jsonl", cwd=tmp_path)
        assert code == 0, err
        assert "6 items" in out and "6/6 items (100%)" in err and "items/s" in err
        lines = results(tmp_path / f"out-{name}")
        assert [r["index"] for r in lines] == list(range(6))
        seen[name] = [(r["status"], r["final_prompt"], [f["category"] for f in r["flagged"]]) for r in lines]
    assert seen["p.txt"] == seen["p.csv"] == seen["p.jsonl"]
    assert seen["p.txt"][0] == ("pass", "a photo of a doctor", [])
    assert seen["p.txt"][1][0] == "revised" and "sexual" in seen["p.txt"][1][2]
    assert [r["line"] for r in results(tmp_path / "out-p.txt")] == [1, 2, 3, 5, 6, 7]  # the blank line 4 is skipped
    assert [r["id"] for r in results(tmp_path / "out-p.csv")] == [f"x{i}" for i in range(6)]
    log = tmp_path / "audit.jsonl"
    assert verify(log).ok and len(completed(log)) == 18
    tags = [r["tags"] for r in read_records(log) if r["event"] == "request.received"]
    assert [t["item"] for t in tags[:6]] == list(range(6))


def test_an_invalid_prompt_fails_alone(tmp_path, policy):
    long = "a " * 1500
    (tmp_path / "p.jsonl").write_text("".join(json.dumps({"prompt": p}) + "\n"
                                              for p in ["a dog", "bell\x07ring", long, "   ", "a cat"]))
    code, _, err = elens("batch", "p.jsonl", "--out", "out", "--check-only", "-p", str(policy),
                         "--audit-log", "a.jsonl", cwd=tmp_path)
    assert code == 0, err
    lines = results(tmp_path / "out")
    assert [r["status"] for r in lines] == ["pass", "invalid", "invalid", "invalid", "pass"]
    assert "control characters (U+0007)" in lines[1]["error"] and "max_prompt_chars" in lines[2]["error"]
    assert len(completed(tmp_path / "a.jsonl")) == 2


@pytest.mark.parametrize("name, content, message", [
    ("p.txt", b"a dog\n\xff\xfe oops\n", "p.txt:2: not valid UTF-8 (byte 0xff at column 1)"),
    ("p.csv", b"text,id\nhello,1\n", "p.csv:1: no 'prompt' column in the header (text, id)"),
    ("p.jsonl", b'{"prompt": "a"}\n\n{"prompt": \n', "p.jsonl:3: not valid JSON"),
    ("p.jsonl", b'{"prompt": "a"}\n["a list"]\n', "p.jsonl:2: expected an object with a string field 'prompt'"),
    ("p.csv", b"prompt\n", "p.csv: no prompts in the input"),
    ("p.md", b"a dog\n", "p.md: unknown input type '.md'"),
])
def test_a_bad_input_file_is_one_line_naming_file_and_line(tmp_path, policy, name, content, message):
    (tmp_path / name).write_bytes(content)
    code, out, err = elens("batch", name, "--out", "out", "--check-only", "-p", str(policy),
                           "--audit-log", "a.jsonl", cwd=tmp_path)
    assert code == 2 and message in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "a.jsonl").exists() and not (tmp_path / "out" / "results.jsonl").exists()


def test_a_folder_holding_another_batch_is_refused_unless_restarted(tmp_path, policy):
    (tmp_path / "a.txt").write_text("a dog\n")
    (tmp_path / "b.txt").write_text("a cat\n")
    args = ["--out", "out", "--check-only", "-p", str(policy), "--audit-log", "a.jsonl"]
    assert elens("batch", "a.txt", *args, cwd=tmp_path)[0] == 0
    code, _, err = elens("batch", "b.txt", *args, cwd=tmp_path)
    assert code == 2 and "another input sha256" in err and "--restart" in err
    assert elens("batch", "b.txt", *args, "--restart", cwd=tmp_path)[0] == 0
    assert results(tmp_path / "out")[0]["final_prompt"] == "a cat"


def test_a_second_batch_on_the_same_folder_is_refused_while_one_runs(tmp_path, policy):
    import fcntl

    (tmp_path / "a.txt").write_text("a dog\n")
    (tmp_path / "out").mkdir()
    with open(tmp_path / "out" / ".lock", "w") as held:
        fcntl.flock(held, fcntl.LOCK_EX)
        code, _, err = elens("batch", "a.txt", "--out", "out", "--check-only", "-p", str(policy), cwd=tmp_path)
    assert code == 2 and "another elens batch is writing to this folder" in err


def test_check_prompts_decides_like_check_prompt(elens_policy, default_policy, tmp_path):
    from elens import Lens

    prompts = PROMPTS + ["a naked child", "a group of engineers", "an ugly fat person"]
    with Lens(default_policy, audit_path=tmp_path / "a.jsonl") as lens:
        together = lens.check_prompts(prompts, n=4, seed=3)
        alone = [lens.check_prompt(p, n=4, seed=3) for p in prompts]
    # Embeddings of a batch and of a lone prompt differ in the last float bits (the
    # matrix kernels block their sums by the batch's shape), so scores agree to 1e-5.
    def strip(result):
        scores = []

        def without_scores(value):
            if isinstance(value, dict):
                if "score" in value:
                    scores.append(value["score"])
                return {k: without_scores(v) for k, v in value.items() if k not in ("score", "request_id")}
            return [without_scores(v) for v in value] if isinstance(value, list) else value

        return without_scores(result.as_dict()), scores

    for (record, scores), (record_alone, scores_alone) in zip(map(strip, together), map(strip, alone)):
        assert record == record_alone
        assert scores == pytest.approx(scores_alone, abs=1e-5)
    assert len(together) == len(alone) == len(prompts)
    assert {r.status for r in together} >= {"pass", "revised", "refused"}
    assert verify(tmp_path / "a.jsonl").ok and len(completed(tmp_path / "a.jsonl")) == 2 * len(prompts)


def _kill_when(proc: subprocess.Popen, path: Path, lines: int) -> None:
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and proc.poll() is None:
        if path.exists() and path.read_bytes().count(b"\n") >= lines:
            break
        time.sleep(0.005)
    proc.send_signal(signal.SIGKILL)
    proc.wait()


def test_killed_halfway_it_resumes_without_doing_anything_twice(tmp_path, policy):
    prompts = [f"{PROMPTS[i % len(PROMPTS)]} number {i}" for i in range(3000)]
    (tmp_path / "p.txt").write_text("\n".join(prompts) + "\n")
    cmd = [sys.executable, "-m", "elens", "batch", "p.txt", "--out", "out", "--check-only", "-p", str(policy),
           "--audit-log", "a.jsonl", "--chunk-size", "25"]
    for stop_at in (500, 1500):  # killed twice, at different points
        proc = subprocess.Popen(cmd, cwd=tmp_path, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        _kill_when(proc, tmp_path / "out" / "results.jsonl", stop_at)
        assert proc.returncode == -signal.SIGKILL
    done_before = len(results(tmp_path / "out"))
    assert 0 < done_before < 3000
    finished = subprocess.run(cmd, cwd=tmp_path, capture_output=True, text=True)
    assert finished.returncode == 0, finished.stderr
    resumed = int(re.search(r"\((\d+) done before\)", finished.stdout).group(1))
    assert resumed >= done_before  # plus a chunk that was recorded but not yet delivered, if any
    lines = results(tmp_path / "out")
    assert [r["index"] for r in lines] == list(range(3000))
    log = tmp_path / "a.jsonl"
    assert verify(log).ok
    items = [r["tags"]["item"] for r in read_records(log) if r["event"] == "request.received"]
    assert sorted(items) == list(range(3000))  # every item decided and recorded exactly once
    # ...and the same decisions as a run that was never interrupted.
    assert elens("batch", "p.txt", "--out", "again", "--check-only", "-p", str(policy), "--audit-log", "b.jsonl",
                 cwd=tmp_path)[0] == 0
    assert decisions(tmp_path / "out") == decisions(tmp_path / "again")
    assert {r["request_id"] for r in lines} == {r["request_id"] for r in completed(log)}


def _crash_after_the_audit_append(out: Path, log: Path, last: int) -> None:
    """Leave ``out`` as a crash between the audit append and results.jsonl would: the last
    ``last`` results only in pending.json."""
    lines = (out / "results.jsonl").read_text().splitlines(keepends=True)
    kept, moved = lines[:-last], [json.loads(x) for x in lines[-last:]]
    (out / "results.jsonl").write_text("".join(kept) + lines[-last][:17])  # and a torn line
    (out / "pending.json").write_text(json.dumps({"audit": {"path": str(log), "inode": None},
                                                  "results": moved, "items": []}))


def _finished_batch(tmp_path: Path, policy: Path) -> list[str]:
    """Run PROMPTS to the end in chunks of 2; returns the command, to run it again."""
    (tmp_path / "p.txt").write_text("\n".join(PROMPTS) + "\n")
    args = ["batch", "p.txt", "--out", "out", "--check-only", "-p", str(policy), "--audit-log", "a.jsonl",
            "--chunk-size", "2"]
    assert elens(*args, cwd=tmp_path)[0] == 0
    return args


def test_a_chunk_recorded_before_the_crash_is_delivered_not_rerun(tmp_path, policy):
    args = _finished_batch(tmp_path, policy)
    before = results(tmp_path / "out")
    _crash_after_the_audit_append(tmp_path / "out", tmp_path / "a.jsonl", 2)
    code, out, err = elens(*args, cwd=tmp_path)
    assert code == 0, err
    assert results(tmp_path / "out") == before and len(completed(tmp_path / "a.jsonl")) == 6
    assert not (tmp_path / "out" / "pending.json").exists()


def test_a_chunk_never_recorded_runs_again(tmp_path, policy):
    args = _finished_batch(tmp_path, policy)
    before = decisions(tmp_path / "out")
    _crash_after_the_audit_append(tmp_path / "out", tmp_path / "elsewhere.jsonl", 2)  # not in that log
    assert elens(*args, cwd=tmp_path)[0] == 0
    assert decisions(tmp_path / "out") == before and len(completed(tmp_path / "a.jsonl")) == 8
    assert verify(tmp_path / "a.jsonl").ok


def test_generating_writes_images_and_manifests_per_item(tmp_path, policy):
    (tmp_path / "p.txt").write_text("a red apple\na naked child\na portrait of a doctor\n")
    code, out, err = elens("batch", "p.txt", "--out", "out", "-n", "2", "--seed", "5", "-p", str(policy),
                           "--audit-log", "a.jsonl", cwd=tmp_path)
    assert code == 0, err
    lines = results(tmp_path / "out")
    assert [r["status"] for r in lines] == ["delivered", "refused", "delivered"]
    assert [i["file"] for i in lines[0]["images"]] == ["items/000000/image-000.png", "items/000000/image-001.png"]
    assert lines[1]["images"] == [] and not (tmp_path / "out" / "items" / "000001" / "image-000.png").exists()
    manifest = json.loads((tmp_path / "out" / lines[2]["manifest"]).read_text())
    assert manifest["request_id"] == lines[2]["request_id"] and [i["seed"] for i in manifest["images"]] == [9, 10]
    assert verify(tmp_path / "a.jsonl").ok and not (tmp_path / "out" / ".pending").exists()


def test_two_workers_decide_like_one(tmp_path, policy):
    (tmp_path / "p.txt").write_text("\n".join(f"{p} {i}" for i in range(20) for p in PROMPTS) + "\n")
    common = ["--check-only", "-p", str(policy), "--audit-log", "a.jsonl", "--chunk-size", "16"]
    assert elens("batch", "p.txt", "--out", "one", *common, cwd=tmp_path)[0] == 0
    code, _, err = elens("batch", "p.txt", "--out", "two", "--workers", "2", *common, cwd=tmp_path)
    assert code == 0, err
    assert decisions(tmp_path / "one") == decisions(tmp_path / "two")
    assert verify(tmp_path / "a.jsonl").ok and len(completed(tmp_path / "a.jsonl")) == 2 * 120


def test_the_ray_engine_decides_like_the_local_one(tmp_path, policy):
    pytest.importorskip("ray")
    (tmp_path / "p.jsonl").write_text("".join(json.dumps({"prompt": f"{p} {i}", "id": i})
                                              + "\n" for i in range(10) for p in PROMPTS)
                                      + json.dumps({"prompt": "\x00"}) + "\n")
    common = ["--check-only", "-p", str(policy), "--audit-log", "a.jsonl", "--chunk-size", "8"]
    assert elens("batch", "p.jsonl", "--out", "local", *common, cwd=tmp_path)[0] == 0
    code, _, err = elens("batch", "p.jsonl", "--out", "ray", "--engine", "ray", "--workers", "2", *common,
                         cwd=tmp_path)
    assert code == 0, err
    assert decisions(tmp_path / "local") == decisions(tmp_path / "ray")
    assert results(tmp_path / "ray")[-1]["status"] == "invalid"
    assert verify(tmp_path / "a.jsonl").ok and len(completed(tmp_path / "a.jsonl")) == 2 * 60


class _Picky:
    """A text check that breaks on one word: it must fail that prompt alone."""

    def __init__(self, options, policy):
        pass

    def check(self, prompts):
        if any("poison" in p for p in prompts):
            raise RuntimeError("cannot read poison")
        return [[] for _ in prompts]


class _PickyPlugin:
    from elens import hookimpl

    @hookimpl
    def register_text_checks(self, register):
        register("picky", _Picky)


def test_a_check_that_breaks_on_one_prompt_fails_that_prompt_alone(elens_lens):
    lens = elens_lens("""
        categories: [{id: sexual, thresholds: {text: 0.5}, actions: {text: block}}]
        pipeline: {text_checks: [{plugin: picky}]}
    """, plugins=[_PickyPlugin()])
    prompts = ["a cat", "poison ivy", "a dog"]
    together = [r.status for r in lens.check_prompts(prompts)]
    assert together == [lens.check_prompt(p).status for p in prompts] == ["pass", "refused", "pass"]
    done = [r for r in read_records(lens.audit.path) if r["event"] == "request.completed"]
    assert [r.get("batch_size") for r in done[:3]] == [3, 3, 3] and "batch_size" not in done[3]


def test_a_failing_request_stops_the_batch_recorded_and_retried_on_resume(tmp_path):
    # A backend that cannot load fails every generation; the batch stops at the first chunk,
    # records what happened, marks nothing done, and says where.
    (tmp_path / "policy.yaml").write_text(POLICY.replace("backend: {plugin: tiny}",
                                                         "backend: {plugin: diffusers, options: {model: /no/such/model}}"))
    (tmp_path / "p.txt").write_text("a red apple\na green pear\n")
    args = ["batch", "p.txt", "--out", "out", "-p", "policy.yaml", "--audit-log", "a.jsonl", "--chunk-size", "1"]
    code, _, err = elens(*args, cwd=tmp_path)
    assert code == 2 and len(err.strip().splitlines()) == 1, err
    assert "p.txt:1: item 0 failed:" in err and "run the same command again" in err
    assert not (tmp_path / "out" / "results.jsonl").exists() or results(tmp_path / "out") == []
    done = completed(tmp_path / "a.jsonl")
    assert [r["status"] for r in done] == ["error"] and verify(tmp_path / "a.jsonl").ok


@pytest.mark.parametrize("extra, message", [
    (["--width", "100000", "--height", "100000"], "100000x100000 images exceed limits.max_image_pixels"),
    (["--chunk-size", "0"], "--chunk-size must be at least 1"),
    (["--workers", "0"], "--workers must be at least 1"),
    (["--ray-address", "auto"], "--ray-address needs --engine ray"),
    (["-n", "99"], "99 images per prompt requested; limits.max_images is 16"),
])
def test_bad_options_are_refused_before_the_folder_is_touched(tmp_path, policy, extra, message):
    (tmp_path / "p.txt").write_text("a dog\n")
    code, _, err = elens("batch", "p.txt", "--out", "out", "-p", str(policy), *extra, cwd=tmp_path)
    assert code == 2 and message in err and not (tmp_path / "out").exists()


@pytest.mark.parametrize("name, content, message", [
    ("p.csv", b'prompt,id\n"a dog,1\na cat,2\n', "p.csv:"),
    ("p.jsonl", b'{"prompt": "a dog", "id": "\\ud800"}\n', "p.jsonl:1: field 'id' is not valid Unicode text"),
    ("p.jsonl", b'{"prompt": "a dog", "id": true}\n', "p.jsonl:1: field 'id' must be a string or an integer"),
])
def test_more_bad_input_files(tmp_path, policy, name, content, message):
    (tmp_path / name).write_bytes(content)
    code, _, err = elens("batch", name, "--out", "out", "--check-only", "-p", str(policy), cwd=tmp_path)
    assert code == 2 and message in err and len(err.strip().splitlines()) == 1


def test_a_pending_chunk_is_found_in_the_log_from_another_folder_and_after_rotation(tmp_path, policy):
    _finished_batch(tmp_path, policy)
    before = results(tmp_path / "out")
    _crash_after_the_audit_append(tmp_path / "out", tmp_path / "a.jsonl", 2)  # an absolute path, as commit writes
    os.rename(tmp_path / "a.jsonl", tmp_path / "a.jsonl.1")  # then the log is rotated away
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    code, _, err = elens("batch", str(tmp_path / "p.txt"), "--out", str(tmp_path / "out"), "--check-only",
                         "-p", str(policy), "--audit-log", str(tmp_path / "a.jsonl"), "--chunk-size", "2",
                         cwd=elsewhere)
    assert code == 0, err
    assert results(tmp_path / "out") == before  # delivered from pending.json, not decided again
    assert len([r for r in read_records(tmp_path / "a.jsonl") if r["event"] == "request.completed"]) == 6
