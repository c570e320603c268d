"""Faults: plugins that raise, hang or answer garbage; an audit log that cannot be written; kill -9.

The text stage's faults are proven in tests/host/test_pipeline.py; here the image
and edit stages, the command line's behaviour when the log cannot take the
record, and what a killed process leaves behind.
"""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image

from elens import Region, Signal, hookimpl
from elens.audit import AuditLog, read_records, verify
from elens.cli import build_cli
from elens.errors import AuditError

ROOT = Path(__file__).resolve().parents[2]
RELEASE = threading.Event()  # set at teardown: lets every "hanging" plugin thread finish


@pytest.fixture(autouse=True)
def _release_hung_threads():
    RELEASE.clear()
    yield
    RELEASE.set()


class Faulty:
    """An image check or an editor that misbehaves as ``options.how`` says."""

    def __init__(self, options, policy):
        self.how = options["how"]

    def _misbehave(self, n):
        if self.how == "raise":
            raise RuntimeError("detector crashed")
        if self.how == "hang":
            RELEASE.wait(60)
        return None

    def check(self, images, contexts):
        self._misbehave(len(images))
        if self.how == "wrong count":
            return [[] for _ in range(len(images) + 1)]
        if self.how == "not a signal":
            return [[("nudity", 0.9)] for _ in images]
        if self.how == "nan score":
            return [[Signal("nudity", float("nan"))] for _ in images]
        if self.how == "unknown category":
            return [[Signal("no_such_category", 0.9)] for _ in images]
        return [[] for _ in images]

    def edit(self, image, finding):
        self._misbehave(1)
        if self.how == "wrong size":
            return image.resize((8, 8))
        if self.how == "not an image":
            return "blurred"
        return image


class Flag:
    """Flags every image for nudity in a box, so that the editor has work."""

    def __init__(self, options, policy):
        pass

    def check(self, images, contexts):
        return [[Signal("nudity", 0.9, region=Region(4, 4, 20, 20))] for _ in images]


class FaultPlugin:
    @hookimpl
    def register_image_checks(self, register):
        register("faulty", Faulty)
        register("flag", Flag)

    @hookimpl
    def register_image_editors(self, register):
        register("faulty-editor", Faulty)


def policy_text(stage: str, mode: str, how: str) -> str:
    if stage == "image":
        pipeline = f"image_checks: [{{plugin: faulty, options: {{how: {how}}}, timeout_s: 0.3}}]"
    else:
        pipeline = (f"image_checks: [{{plugin: flag}}]\n  editor: {{plugin: faulty-editor, options: {{how: {how}}}, "
                    f"timeout_s: 0.3}}")
    return f"""
categories:
  - id: nudity
    thresholds: {{image: 0.5}}
    actions: {{image: blur}}
failure_mode: {{{stage}: {mode}}}
pipeline:
  {pipeline}
"""


IMAGE = Image.fromarray(np.random.default_rng(1).integers(0, 256, (32, 32, 3), dtype=np.uint8))
IMAGE_FAULTS = ["raise", "hang", "wrong count", "not a signal", "nan score", "unknown category"]
EDIT_FAULTS = ["raise", "hang", "wrong size", "not an image"]


@pytest.mark.parametrize("mode", ["block", "allow"])
@pytest.mark.parametrize("stage,how", [("image", h) for h in IMAGE_FAULTS] + [("edit", h) for h in EDIT_FAULTS])
def test_a_faulty_plugin_follows_its_stage_failure_mode(elens_lens, stage, how, mode):
    lens = elens_lens(policy_text(stage, mode, how), plugins=[FaultPlugin()])
    started = time.perf_counter()
    result = lens.moderate([IMAGE])
    assert time.perf_counter() - started < 10
    image = result.images[0]
    records = list(read_records(lens.audit.path))
    errors = [r for r in records if r["event"] == "plugin.error"]
    assert len(errors) == 1 and errors[0]["stage"] == stage and errors[0]["failure_mode"] == mode
    assert errors[0]["plugin"] == ("faulty" if stage == "image" else "faulty-editor")
    expected = {"raise": "detector crashed", "hang": "timed out after 0.3 s"}.get(how, "malformed output")
    assert expected in errors[0]["error"], errors[0]["error"]
    final = [r for r in records if r["event"] == "image.final"][0]
    if mode == "block":
        assert image.status == "blocked" and image.image is None
        assert "fails closed" in image.reason and final["status"] == "blocked"
    else:
        assert image.status == "delivered" and image.image is not None
        assert final["status"] == "delivered"
        if stage == "edit":
            assert "delivered unedited" in image.reason
    assert [f.error for f in result.failures] == [errors[0]["error"]]
    assert records[-1]["event"] == "request.completed" and verify(lens.audit.path).ok


HANG_FOREVER = """
    import sys, time
    from elens import Lens, hookimpl
    from elens.policy import Policy

    class Hang:
        def __init__(self, options, policy):
            pass
        def check(self, prompts):
            time.sleep(3600)

    class Plugin:
        @hookimpl
        def register_text_checks(self, register):
            register("hang", Hang)

    policy = Policy.from_text('''
    elens: 1
    metadata: {name: hang, version: "1"}
    pipeline:
      text_checks: [{plugin: hang, timeout_s: 0.2}]
      backend: {plugin: tiny}
    ''', source=sys.argv[1] + "/p.yaml")
    with Lens(policy, plugins=[Plugin()], audit_path=sys.argv[1] + "/a.jsonl") as lens:
        print(lens.check_prompt("a lighthouse").status, flush=True)
"""


def test_a_plugin_that_never_returns_does_not_keep_the_process_alive(tmp_path):
    proc = subprocess.Popen([sys.executable, "-c", textwrap.dedent(HANG_FOREVER), str(tmp_path)],
                            stdout=subprocess.PIPE, text=True, env={**os.environ, "PYTHONPATH": str(ROOT)})
    try:
        lines = iter(proc.stdout.readline, "")  # a structlog warning comes first
        assert "refused" in (line.strip() for line in lines)  # timed out, and the text stage fails closed
        proc.wait(timeout=8)  # the request is over: the process must be able to exit
    finally:
        proc.kill()
        proc.wait()
    assert verify(tmp_path / "a.jsonl").ok


class Slow:
    def __init__(self, options, policy):
        self.hang = options.get("hang", False)

    def check(self, prompts):
        if self.hang:
            RELEASE.wait(60)
        return [[] for _ in prompts]


class SlowPlugin:
    @hookimpl
    def register_text_checks(self, register):
        register("slow", Slow)


def test_hung_plugin_calls_do_not_starve_the_healthy_ones(elens_lens):
    lens = elens_lens("""
failure_mode: {text: allow}
pipeline:
  text_checks:
    - {plugin: slow, options: {hang: true}, timeout_s: 0.1}
    - {plugin: slow, timeout_s: 1}
""", plugins=[SlowPlugin()])
    for _ in range(5):
        result = lens.check_prompt("a lighthouse")
        assert [f.plugin for f in result.failures] == ["slow"]  # only the hanging one fails
        assert len(result.failures) == 1, [f.error for f in result.failures]


# -- the audit log cannot take the record ------------------------------------------------
POLICY = """\
elens: 1
metadata: {name: faults, version: "1"}
pipeline:
  backend: {plugin: tiny}
"""


@pytest.fixture
def policy(tmp_path) -> Path:
    path = tmp_path / "policy.yaml"
    path.write_text(POLICY)
    return path


def elens(*args):
    return CliRunner().invoke(build_cli(), [str(a) for a in args], catch_exceptions=False)


@pytest.mark.skipif(not os.path.exists("/dev/full"), reason="no /dev/full on this system")
@pytest.mark.parametrize("command", ["generate", "moderate"])
def test_a_full_disk_stops_the_request_before_any_image_is_delivered(tmp_path, policy, command):
    source = tmp_path / "in.png"
    IMAGE.save(source)
    what = ["a lighthouse"] if command == "generate" else [source]
    result = elens(command, *what, "-p", policy, "--audit-log", "/dev/full", "--out", tmp_path / "out")
    assert result.exit_code == 2 and result.stderr.count("\n") == 1, result.output
    assert result.stderr.startswith("elens: error: /dev/full: cannot write the audit log: No space left on device")
    assert not (tmp_path / "out").exists() and result.stdout == ""


FILE_SIZE_LIMIT = """
    import resource, sys
    limit = int(sys.argv[1])
    resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))
    sys.argv = ["elens", *sys.argv[2:]]
    from elens.cli import main
    main()
"""


def test_a_file_size_limit_mid_write_leaves_the_log_whole_and_delivers_nothing(tmp_path, policy):
    """RLIMIT_FSIZE stops the audit write part-way, as a full disk does: the log is cut back, the CLI exits 2."""
    log, out = tmp_path / "a.jsonl", tmp_path / "out"
    assert elens("generate", "a lighthouse", "-p", policy, "--audit-log", log, "--out", out).exit_code == 0
    before, files = log.read_bytes(), sorted(p.name for p in out.iterdir())
    proc = subprocess.run([sys.executable, "-c", textwrap.dedent(FILE_SIZE_LIMIT), str(len(before) + 300),
                           "generate", "a red barn", "-n", "2", "-p", str(policy), "--audit-log", str(log),
                           "--out", str(out)], capture_output=True, text=True, cwd=tmp_path,
                          env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert proc.returncode == 2, proc.stderr
    assert proc.stderr == f"elens: error: {log}: cannot write the audit log: File too large\n"
    assert log.read_bytes() == before and verify(log).ok
    assert sorted(p.name for p in out.iterdir()) == files and proc.stdout == ""


def test_an_output_that_cannot_be_written_fails_after_the_record_and_leaves_no_manifest(tmp_path, policy):
    """The file-size limit lets the audit append through but not the image: exit 2, the log says what was decided."""
    log, out, source = tmp_path / "a.jsonl", tmp_path / "out", tmp_path / "noise.png"
    Image.fromarray(np.random.default_rng(2).integers(0, 256, (256, 256, 3), dtype=np.uint8)).save(source)
    proc = subprocess.run([sys.executable, "-c", textwrap.dedent(FILE_SIZE_LIMIT), str(64 * 1024),
                           "moderate", str(source), "-p", str(policy), "--audit-log", str(log), "--out", str(out)],
                          capture_output=True, text=True, cwd=tmp_path, env={**os.environ, "PYTHONPATH": str(ROOT)})
    records = list(read_records(log))
    assert proc.returncode == 2 and proc.stderr.count("\n") == 1, proc.stderr
    assert proc.stderr.startswith(f"elens: error: --out {out}: cannot write the output: File too large (request ")
    assert records[0]["request_id"] in proc.stderr and verify(log).ok
    assert [r["status"] for r in records if r["event"] == "image.final"] == ["delivered"]
    assert list(out.iterdir()) == []  # no manifest, no half file, no temporary file


def test_a_torn_log_stops_the_next_request_with_its_line_and_byte(tmp_path, policy):
    log, out = tmp_path / "a.jsonl", tmp_path / "out"
    assert elens("check", "a lighthouse", "-p", policy, "--audit-log", log).exit_code == 0
    whole = log.read_bytes()
    log.write_bytes(whole + b'{"event":"request.received","seq":4,"prev":"ab')  # a write cut short by a crash
    result = elens("generate", "a red barn", "-p", policy, "--audit-log", log, "--out", out)
    assert result.exit_code == 2 and result.stderr.count("\n") == 1
    assert f"{log}:4: the last line is torn (no newline at its end), at byte {len(whole)};" in result.stderr
    assert not out.exists()


# -- kill -9 ------------------------------------------------------------------------------
BUSY_WRITER = """
    import sys
    import numpy as np
    from PIL import Image
    from elens import Lens
    from elens.policy import Policy

    policy = Policy.from_text('''
    elens: 1
    metadata: {name: busy, version: "1"}
    pipeline: {backend: {plugin: tiny}}
    audit: {image_retention: full}
    ''', source=sys.argv[1] + ".yaml")
    image = Image.fromarray(np.random.default_rng(0).integers(0, 256, (160, 160, 3), dtype=np.uint8))
    lens = Lens(policy, audit_path=sys.argv[1])
    while True:
        lens.moderate([image])
        lens.check_prompt("a lighthouse at dawn")
"""


def complete_part(log: Path) -> bytes:
    data = log.read_bytes()
    return data[: data.rfind(b"\n") + 1]


def test_kill_9_mid_request_leaves_a_log_that_verifies_up_to_the_last_whole_record(tmp_path):
    log = tmp_path / "a.jsonl"
    rng = random.Random(9)
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    for round_ in range(3):
        proc = subprocess.Popen([sys.executable, "-c", textwrap.dedent(BUSY_WRITER), str(log)], env=env)
        start = log.stat().st_size if log.exists() else 0
        deadline = time.monotonic() + 60
        while (not log.exists() or log.stat().st_size < start + 300_000) and time.monotonic() < deadline:
            time.sleep(0.01)
        time.sleep(rng.uniform(0, 0.05))
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
        whole = complete_part(log)
        lines = whole.count(b"\n")
        result = verify(log)
        assert result.count == lines
        if not result.ok:  # the kill landed inside a write: the torn tail is named exactly
            assert result.problem.startswith("truncated") and result.line == lines + 1
            assert f"from byte {len(whole)}, no newline" in result.problem
            cli = elens("audit", "verify", log)
            assert cli.exit_code == 1 and cli.stdout.startswith(f"{log}:{lines + 1}: record seq {lines + 1}: truncated")
            torn = rf"a\.jsonl:{lines + 1}: the last line is torn \(no newline at its end\), at byte {len(whole)};"
            with pytest.raises(AuditError, match=torn):
                AuditLog(log).append([{"event": "after"}])
            os.truncate(log, len(whole))  # the repair the message gives
        assert verify(log).ok and verify(log).count == lines
    records = list(read_records(log))
    assert [r["seq"] for r in records] == list(range(1, len(records) + 1))
    by_request: dict[str, list[str]] = {}
    for r in records:
        by_request.setdefault(r["request_id"], []).append(r["event"])
    whole_requests = [e for e in by_request.values() if e[-1] == "request.completed"]
    assert len(whole_requests) >= len(by_request) - 3  # at most one request cut off per kill
    assert all(e[0] == "request.received" for e in by_request.values())


@pytest.mark.parametrize("where", ["first byte", "middle", "inside a UTF-8 character", "before the newline"])
def test_a_write_torn_at_any_byte_is_reported_with_line_and_offset(tmp_path, where):
    log = tmp_path / "a.jsonl"
    written = AuditLog(log).append([{"event": "a"}, {"event": "b", "prompt": "un café noir"}, {"event": "c"}])
    lines = log.read_bytes().splitlines(keepends=True)
    start = len(lines[0])
    second = lines[1]
    cut = {"first byte": 1, "middle": len(second) // 2, "before the newline": len(second) - 1,
           "inside a UTF-8 character": second.index("é".encode()) + 1}[where]
    log.write_bytes(lines[0] + second[:cut])
    result = verify(log)
    assert not result.ok and (result.line, result.seq, result.count) == (2, 2, 1)
    assert result.problem == (f"truncated: the last line is incomplete ({cut} bytes from byte {start}, no newline); "
                              f"the 1 records before it verify (cut the file to {start} bytes to keep just them)")
    as_json = json.loads(elens("audit", "verify", log, "--json").stdout)
    assert (as_json["line"], as_json["last_seq"], as_json["last_hash"]) == (2, 1, written[0]["hash"])
    os.truncate(log, start)
    assert AuditLog(log).append([{"event": "d"}])[0]["seq"] == 2 and verify(log).ok
