"""The audit log: chaining, verification, concurrency, failures, HMAC, rotation."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import textwrap

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from click.testing import CliRunner
from PIL import Image

from elens.audit import AuditLog, image_record, read_records, redact, segments, sha256_image, verify
from elens.cli.audit import audit_group
from elens.errors import AuditError

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def write_log(path, n=6, **kwargs):
    log = AuditLog(path, **kwargs)
    for i in range(0, n, 2):
        log.append([{"event": "test", "request_id": f"r{i}", "i": i}, {"event": "test", "request_id": f"r{i}", "i": i + 1}])
    return path


def lines(path):
    return path.read_bytes().splitlines(keepends=True)


def run_python(script, *args, **kwargs):
    env = {**os.environ, "PYTHONPATH": ROOT}
    return subprocess.Popen([sys.executable, "-c", textwrap.dedent(script), *map(str, args)], env=env, **kwargs)


def test_clean_log_verifies(tmp_path):
    path = write_log(tmp_path / "a.jsonl")
    result = verify(path)
    assert result.ok and result.count == 6 and result.last_seq == 6
    records = list(read_records(path))
    assert [r["seq"] for r in records] == [1, 2, 3, 4, 5, 6]
    assert records[0]["prev"] == "0" * 64 and records[1]["prev"] == records[0]["hash"]
    assert result.last_hash == records[-1]["hash"]


def test_append_returns_what_it_wrote_and_ignores_caller_chain_fields(tmp_path):
    log = AuditLog(tmp_path / "a.jsonl")
    written = log.append([{"event": "x", "seq": 99, "prev": "f" * 64, "hash": "bogus"}])
    assert written == list(read_records(log.path))
    assert written[0]["seq"] == 1 and written[0]["prev"] == "0" * 64
    assert log.append([]) == [] and verify(log.path).count == 1


def test_edited_record_is_named(tmp_path):
    path = write_log(tmp_path / "a.jsonl")
    data = lines(path)
    data[3] = data[3].replace(b'"i":3', b'"i":33')
    path.write_bytes(b"".join(data))
    result = verify(path)
    assert not result.ok and (result.line, result.seq, result.count) == (4, 4, 3)
    assert result.problem.startswith("edited")


def test_edited_and_rehashed_record_is_named(tmp_path):
    from elens.audit import record_hash

    path = write_log(tmp_path / "a.jsonl")
    data = lines(path)
    record = json.loads(data[2])
    record["i"] = 22
    record["hash"] = record_hash(record)  # consistent by itself; the next record still points at the old hash
    data[2] = (json.dumps(record, sort_keys=True, separators=(",", ":")) + "\n").encode()
    path.write_bytes(b"".join(data))
    result = verify(path)
    assert not result.ok and (result.line, result.seq) == (3, 3) and result.problem.startswith("edited")


def test_deleted_record_is_named(tmp_path):
    path = write_log(tmp_path / "a.jsonl")
    data = lines(path)
    del data[2]
    path.write_bytes(b"".join(data))
    result = verify(path)
    assert not result.ok and (result.line, result.seq) == (3, 3) and result.problem.startswith("removed")


def test_deleted_first_records_are_named(tmp_path):
    path = write_log(tmp_path / "a.jsonl")
    path.write_bytes(b"".join(lines(path)[2:]))
    result = verify(path)
    assert not result.ok and (result.line, result.seq) == (1, 1) and "seq 1..2 missing" in result.problem


def test_reordered_records_are_named(tmp_path):
    path = write_log(tmp_path / "a.jsonl")
    data = lines(path)
    data[1], data[2] = data[2], data[1]
    path.write_bytes(b"".join(data))
    result = verify(path)
    assert not result.ok and (result.line, result.seq) == (2, 3) and result.problem.startswith("reordered")


def test_duplicated_record_is_named(tmp_path):
    path = write_log(tmp_path / "a.jsonl")
    data = lines(path)
    data.insert(4, data[1])
    path.write_bytes(b"".join(data))
    result = verify(path)
    assert not result.ok and (result.line, result.seq) == (5, 2) and result.problem.startswith("reordered")


def test_truncated_file_is_named_and_refuses_appends(tmp_path):
    path = write_log(tmp_path / "a.jsonl")
    path.write_bytes(path.read_bytes()[:-30])
    result = verify(path)
    assert not result.ok and result.line == 6 and result.problem.startswith("truncated")
    assert result.count == 5
    with pytest.raises(AuditError, match=r"a\.jsonl:6: the last line is torn"):
        AuditLog(path).append([{"event": "x"}])


def test_garbage_last_line_refuses_appends(tmp_path):
    path = write_log(tmp_path / "a.jsonl")
    with open(path, "ab") as fh:
        fh.write(b"not json\n")
    with pytest.raises(AuditError, match=r"a\.jsonl:7: the last line is not a valid audit record"):
        AuditLog(path).append([{"event": "x"}])
    assert "a.jsonl:7" in verify(path).message()


def test_unopenable_log_is_a_one_line_error(tmp_path):
    with pytest.raises(AuditError, match="missing-dir/a.jsonl: cannot open the audit log"):
        AuditLog(tmp_path / "missing-dir" / "a.jsonl").append([{"event": "x"}])
    with pytest.raises(AuditError, match="cannot open the audit log"):
        AuditLog(tmp_path).append([{"event": "x"}])  # a directory


@pytest.mark.skipif(not os.path.exists("/dev/full"), reason="no /dev/full on this system")
def test_full_device_is_a_one_line_error():
    with pytest.raises(AuditError) as info:
        AuditLog("/dev/full").append([{"event": "x"}])
    assert str(info.value).startswith("/dev/full: cannot write the audit log") and "\n" not in str(info.value)


def test_a_write_cut_short_leaves_no_partial_line(tmp_path):
    """The file-size limit (RLIMIT_FSIZE) makes the write stop half-way, like a full disk."""
    path = write_log(tmp_path / "a.jsonl")
    before = path.read_bytes()
    proc = run_python("""
        import resource, sys
        from elens.audit import AuditLog
        from elens.errors import AuditError
        path = sys.argv[1]
        limit = len(open(path, "rb").read()) + 100
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))
        try:
            AuditLog(path).append([{"event": "big", "blob": "x" * 5000}])
        except AuditError as exc:
            print(exc)
            sys.exit(3)
    """, path, stdout=subprocess.PIPE, text=True)
    out, _ = proc.communicate(timeout=60)
    assert proc.returncode == 3 and "cannot write the audit log" in out and out.count("\n") == 1
    assert path.read_bytes() == before and verify(path).ok
    assert AuditLog(path).append([{"event": "after"}])[0]["seq"] == 7


def test_hmac_catches_a_rewritten_chain(tmp_path, monkeypatch):
    monkeypatch.setenv("ELENS_AUDIT_KEY", "secret")
    path = write_log(tmp_path / "a.jsonl")
    assert verify(path).ok and verify(path).hmac_checked
    assert all(len(r["hmac"]) == 64 for r in read_records(path))
    # Rewrite the whole chain without the key: hashes are consistent, HMACs are not.
    monkeypatch.delenv("ELENS_AUDIT_KEY")
    records = list(read_records(path))
    records[0]["i"] = 100
    forged = tmp_path / "forged.jsonl"
    AuditLog(forged).append(records)
    assert verify(forged).ok  # without the key, a full rewrite is undetectable
    monkeypatch.setenv("ELENS_AUDIT_KEY", "secret")
    result = verify(forged)
    assert not result.ok and (result.line, result.seq) == (1, 1) and result.problem.startswith("unsigned")
    # Copying the old hmac values over does not help either: they cover the old content.
    data = [json.loads(line) for line in lines(forged)]
    for record, original in zip(data, records):
        record["hmac"] = original["hmac"]
    forged.write_text("".join(json.dumps(r) + "\n" for r in data))
    result = verify(forged)
    assert not result.ok and (result.line, result.seq) == (1, 1) and result.problem.startswith("forged")
    monkeypatch.setenv("ELENS_AUDIT_KEY", "another key")
    assert verify(path).problem.startswith("forged")


WRITER = """
    import sys
    from elens.audit import AuditLog
    rotate = int(sys.argv[3]) or None
    log = AuditLog(sys.argv[1], rotate_bytes=rotate)
    for i in range(250):
        log.append([{"event": "w", "writer": sys.argv[2], "i": i, "part": 0},
                    {"event": "w", "writer": sys.argv[2], "i": i, "part": 1}])
"""


@pytest.mark.parametrize("rotate_bytes", [0, 20000])
def test_two_processes_share_one_log(tmp_path, rotate_bytes):
    path = tmp_path / "shared.jsonl"
    procs = [run_python(WRITER, path, name, rotate_bytes) for name in ("a", "b")]
    assert [p.wait(timeout=120) for p in procs] == [0, 0]
    result = verify(path)
    assert result.ok and result.count == 1000, result.message()
    records = list(read_records(path))
    assert [r["seq"] for r in records] == list(range(1, 1001))
    assert sorted((r["writer"], r["i"], r["part"]) for r in records) == sorted(
        (w, i, p) for w in "ab" for i in range(250) for p in (0, 1))
    for first, second in zip(records[::2], records[1::2]):  # a request's records stay together
        assert (first["writer"], first["i"], first["part"]) == (second["writer"], second["i"], 0)
    if rotate_bytes:
        files = segments(path)
        assert len(files) > 3 and files[-1] == path and files[0].name == "shared.jsonl.1"
        assert all(f.stat().st_size < rotate_bytes + 1000 for f in files)


def test_threads_share_one_log_with_rotation(tmp_path):
    import threading

    path = tmp_path / "t.jsonl"

    def work(name):
        log = AuditLog(path, rotate_bytes=3000)
        for i in range(40):
            log.append([{"event": "t", "writer": name, "i": i}, {"event": "t", "writer": name, "i": i}])

    threads = [threading.Thread(target=work, args=(n,)) for n in "abcd"]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    result = verify(path)
    assert result.ok and result.count == 320 and len(result.files) > 5
    records = list(read_records(path))
    assert all(a["writer"] == b["writer"] and a["i"] == b["i"] for a, b in zip(records[::2], records[1::2]))


def test_a_torn_log_is_not_rotated_away(tmp_path):
    path = write_log(tmp_path / "a.jsonl")
    path.write_bytes(path.read_bytes()[:-5])
    with pytest.raises(AuditError, match="torn"):
        AuditLog(path, rotate_bytes=10).append([{"event": "x"}])
    assert segments(path) == [path]


def test_rotation_keeps_the_chain_and_verify_follows_it(tmp_path):
    path = write_log(tmp_path / "a.jsonl", n=40, rotate_bytes=1000)
    files = segments(path)
    assert [f.name for f in files[:3]] == ["a.jsonl.1", "a.jsonl.2", "a.jsonl.3"]
    result = verify(path)
    assert result.ok and result.count == 40 and len(result.files) == len(files)
    first_of_second = json.loads(lines(files[1])[0])
    assert first_of_second["prev"] == json.loads(lines(files[0])[-1])["hash"]
    # A rotated file that disappears is a removal, named in the next file.
    files[1].unlink()
    result = verify(path)
    assert not result.ok and result.file == str(files[2]) and result.line == 1
    assert result.problem.startswith("removed")
    # A rotated file edited in place is named with its own file and line.
    files[0].write_bytes(files[0].read_bytes().replace(b'"i":1,', b'"i":7,'))
    result = verify(path)
    assert result.file == str(files[0]) and (result.line, result.seq) == (2, 2)


def test_rotation_right_after_rotating_chains_from_the_rotated_file(tmp_path):
    path = tmp_path / "a.jsonl"
    log = AuditLog(path, rotate_bytes=10)
    for i in range(3):
        log.append([{"event": "x", "i": i}])
    assert [f.name for f in segments(path)] == ["a.jsonl.1", "a.jsonl.2", "a.jsonl"]
    path.unlink()  # as if the process died right after renaming: the next append chains on a.jsonl.2
    assert log.append([{"event": "x", "i": 3}])[0]["seq"] == 3
    assert verify(path).ok and verify(path).count == 3


def test_redact_and_image_record():
    assert redact("a cat", "none") == "a cat"
    assert redact("a cat", "hash") == {"sha256": hashlib.sha256(b"a cat").hexdigest()}
    assert redact("a cat", "drop") is None and redact(None, "hash") is None
    image = Image.new("RGB", (200, 100), (10, 20, 30))
    assert image_record(image, "none") == {}
    assert image_record(image, "hash") == {"sha256": sha256_image(image)}
    thumb = image_record(image, "thumbnail")
    full = image_record(image, "full")
    assert thumb["thumbnail"].startswith("data:image/png;base64,") and len(thumb["thumbnail"]) < len(full["full"])
    import base64
    import io

    small = Image.open(io.BytesIO(base64.b64decode(thumb["thumbnail"].split(",", 1)[1])))
    assert small.size == (64, 32)
    # The hash is of the pixels and size, not of a file encoding.
    assert sha256_image(image.convert("RGBA")) == sha256_image(image)
    assert sha256_image(image.resize((100, 200))) != sha256_image(image)


def test_cli_verify_and_show(tmp_path):
    path = write_log(tmp_path / "a.jsonl")
    runner = CliRunner()
    ok = runner.invoke(audit_group, ["verify", str(path)])
    assert ok.exit_code == 0 and ok.output.strip() == "OK: 6 records, chain intact"
    as_json = json.loads(runner.invoke(audit_group, ["verify", str(path), "--json"]).output)
    assert as_json["ok"] and as_json["count"] == 6 and as_json["last_seq"] == 6
    shown = runner.invoke(audit_group, ["show", str(path), "--request", "r2", "--json"])
    assert [r["i"] for r in json.loads(shown.output)] == [2, 3]
    nl = runner.invoke(audit_group, ["show", str(path), "--nl"]).output.splitlines()
    assert [json.loads(line)["seq"] for line in nl] == [1, 2, 3, 4, 5, 6]
    human = runner.invoke(audit_group, ["show", str(path)]).output.splitlines()
    assert len(human) == 6 and all("test" in line for line in human)
    data = lines(path)
    path.write_bytes(b"".join(data[:2] + data[3:]))
    bad = runner.invoke(audit_group, ["verify", str(path)])
    assert bad.exit_code == 1 and bad.output.startswith(f"{path}:3: record seq 3: removed")
    bad = runner.invoke(audit_group, ["verify", str(path), "--json"])
    assert bad.exit_code == 1 and json.loads(bad.output)["line"] == 3
    missing = runner.invoke(audit_group, ["verify", str(tmp_path / "nope.jsonl")])
    assert missing.exit_code in (1, 2) and "nope.jsonl" in missing.output


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.data())
def test_any_single_tampering_is_caught_at_or_before_it(tmp_path_factory, data):
    path = tmp_path_factory.mktemp("tamper") / "a.jsonl"
    write_log(path, n=10)
    original = lines(path)
    data_lines = list(original)
    kind = data.draw(st.sampled_from(["edit", "delete", "swap", "duplicate", "truncate"]))
    i = data.draw(st.integers(0, len(data_lines) - 1))
    if kind == "edit":
        data_lines[i] = data_lines[i].replace(b'"event":"test"', b'"event":"tost"')
    elif kind == "delete" and i < len(data_lines) - 1:  # deleting the last line leaves a valid, shorter chain
        del data_lines[i]
    elif kind == "swap":
        j = data.draw(st.integers(0, len(data_lines) - 1).filter(lambda j: j != i))
        data_lines[i], data_lines[j] = data_lines[j], data_lines[i]
        i = min(i, j)
    elif kind == "duplicate":
        data_lines.insert(i + 1, data_lines[i])
        i += 1
    elif kind == "truncate":
        cut = data.draw(st.integers(1, len(data_lines[i]) - 1))
        data_lines = data_lines[:i] + [data_lines[i][:cut]]
    else:
        return
    path.write_bytes(b"".join(data_lines))
    result = verify(path)
    assert not result.ok and result.line is not None and result.line <= i + 1, (kind, i, result.message())
