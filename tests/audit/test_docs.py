"""docs/audit.md stays true: an example per event the pipeline writes, real hashes, every command documented."""

from __future__ import annotations

import json
import re
from pathlib import Path

from elens.audit import GENESIS, record_hash, read_records
from elens.cli.audit import audit_group

from . import samplelog

DOC = (Path(__file__).resolve().parents[2] / "docs" / "audit.md").read_text(encoding="utf-8")
COMMON = {"time", "event", "request_id", "policy", "seq", "prev", "hash"}


def examples():
    found = {}
    for name, body in re.findall(r"### `([a-z]+\.[a-z]+)`\n.*?```json\n(.*?)```", DOC, re.S):
        found[name] = json.loads(body)
    return found


def test_every_event_the_pipeline_writes_has_a_real_example(tmp_path):
    docs = examples()
    written = {r["event"] for r in read_records(samplelog.build(tmp_path / "a.jsonl"))}
    assert written <= set(docs), f"docs/audit.md lacks examples for {sorted(written - set(docs))}"
    for name, record in docs.items():
        assert record["event"] == name and COMMON <= set(record), name
        assert len(record["prev"]) == 64 and (record["prev"] != GENESIS or record["seq"] == 1)
        shortened = "…" in json.dumps(record, ensure_ascii=False)  # thumbnails are cut short in the doc
        assert shortened or record_hash(record) == record["hash"], f"{name}: example hash does not match its content"


def test_every_audit_command_is_documented():
    for name in audit_group.commands:
        assert f"elens audit {name}" in DOC, name
