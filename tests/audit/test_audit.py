"""The audit log: chaining, verification, concurrency, failures, HMAC."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

import pytest
from click.testing import CliRunner

from elens.audit import AuditLog, read_records, verify
from elens.cli.audit import audit_group
from elens.errors import AuditError


def write_log(path, n=6):
    log = AuditLog(path)
    for i in range(0, n, 2):
        log.append([{"event": "test", "request_id": f"r{i}", "i": i}, {"event": "test", "request_id": f"r{i}", "i": i + 1}])
    return path


def lines(path):
    return path.read_bytes().splitlines(keepends=True)


def test_clean_log_verifies(tmp_path):
    path = write_log(tmp_path / "a.jsonl")
    result = verify(path)
    assert result.ok and result.count == 6
    records = list(read_records(path))
    assert [r["seq"] for r in records] == [1, 2, 3, 4, 5, 6]
    assert records[0]["prev"] == "0" * 64 and records[1]["prev"] == records[0]["hash"]


def test_edited_record_is_named(tmp_path):
    path = write_log(tmp_path / "a.jsonl")
    data = lines(path)
    data[3] = data[3].replace(b'"i":3', b'"i":33')
    path.write_bytes(b"".join(data))
    result = verify(path)
    assert not result.ok and (result.line, result.seq) == (4, 4) and result.problem.startswith("edited")


def test_deleted_record_is_named(tmp_path):
    path = write_log(tmp_path / "a.jsonl")
    data = lines(path)
    del data[2]
    path.write_bytes(b"".join(data))
    result = verify(path)
    assert not result.ok and result.line == 3 and result.seq == 4 and result.problem.startswith("removed")


def test_reordered_records_are_named(tmp_path):
    path = write_log(tmp_path / "a.jsonl")
    data = lines(path)
    data[1], data[2] = data[2], data[1]
    path.write_bytes(b"".join(data))
    result = verify(path)
    assert not result.ok and result.line == 2 and result.problem.startswith("reordered")


def test_truncated_file_is_named_and_refuses_appends(tmp_path):
    path = write_log(tmp_path / "a.jsonl")
    path.write_bytes(path.read_bytes()[:-30])
    result = verify(path)
    assert not result.ok and result.line == 6 and result.problem.startswith("truncated")
    assert result.count == 5
    with pytest.raises(AuditError, match="torn"):
        AuditLog(path).append([{"event": "x"}])


def test_unwritable_log_is_a_one_line_error(tmp_path):
    with pytest.raises(AuditError, match="cannot open the audit log"):
        AuditLog(tmp_path / "missing-dir" / "a.jsonl").append([{"event": "x"}])


def test_hmac_catches_a_rewritten_chain(tmp_path, monkeypatch):
    monkeypatch.setenv("ELENS_AUDIT_KEY", "secret")
    path = write_log(tmp_path / "a.jsonl")
    assert verify(path).ok
    # Rewrite the whole chain without the key: hashes are consistent, HMACs are not.
    monkeypatch.delenv("ELENS_AUDIT_KEY")
    records = list(read_records(path))
    forged = tmp_path / "forged.jsonl"
    records[0]["i"] = 100
    AuditLog(forged).append([{k: v for k, v in r.items() if k not in ("seq", "prev", "hash", "hmac")} for r in records])
    assert verify(forged).ok  # without the key, a full rewrite is undetectable
    monkeypatch.setenv("ELENS_AUDIT_KEY", "secret")
    result = verify(forged)
    assert not result.ok and result.problem.startswith("forged")


def test_two_processes_share_one_log(tmp_path):
    path = tmp_path / "shared.jsonl"
    script = textwrap.dedent(f"""
        import sys
        from elens.audit import AuditLog
        log = AuditLog({str(path)!r})
        for i in range(250):
            log.append([{{"event": "w", "writer": sys.argv[1], "i": i, "part": 0}},
                        {{"event": "w", "writer": sys.argv[1], "i": i, "part": 1}}])
    """)
    procs = [subprocess.Popen([sys.executable, "-c", script, name]) for name in ("a", "b")]
    assert [p.wait(timeout=120) for p in procs] == [0, 0]
    result = verify(path)
    assert result.ok and result.count == 1000
    records = list(read_records(path))
    for first, second in zip(records[::2], records[1::2]):  # a request's records stay together
        assert (first["writer"], first["i"], first["part"]) == (second["writer"], second["i"], 0)


def test_cli_verify_and_show(tmp_path):
    path = write_log(tmp_path / "a.jsonl")
    runner = CliRunner()
    ok = runner.invoke(audit_group, ["verify", str(path)])
    assert ok.exit_code == 0 and ok.output.strip() == "OK: 6 records, chain intact"
    shown = runner.invoke(audit_group, ["show", str(path), "--request", "r2", "--json"])
    assert [r["i"] for r in json.loads(shown.output)] == [2, 3]
    data = lines(path)
    path.write_bytes(b"".join(data[:2] + data[3:]))
    bad = runner.invoke(audit_group, ["verify", str(path)])
    assert bad.exit_code == 1 and bad.output.startswith(f"{path}:3: record seq 4: removed")
