"""``elens audit``: verify and read audit logs."""

from __future__ import annotations

import json
import sys
from typing import Any

import click

from ..audit import read_records, verify


@click.group("audit")
def audit_group() -> None:
    """Verify and read audit logs."""


@audit_group.command("verify")
@click.argument("log", type=click.Path(dir_okay=False))
@click.option("--json", "as_json", is_flag=True)
def verify_cmd(log: str, as_json: bool) -> None:
    """Check the hash chain (and HMACs when ELENS_AUDIT_KEY is set). Exit 1 names the first bad record."""
    result = verify(log)
    click.echo(json.dumps(result.as_dict(), indent=2) if as_json else result.message())
    if not result.ok:
        sys.exit(1)


def _facts(record: dict[str, Any]) -> str:
    event = record.get("event", "")
    if event == "request.received":
        return f"{record.get('kind')} n={record.get('n')} prompt={_short(record.get('prompt'))}"
    if event == "text.checked":
        hits = [f"{f['category']}:{f['score']:.2f}>{f['action']}" for f in record.get("findings", []) if f.get("triggered")]
        return f"round {record.get('round')} {record.get('decision')} {' '.join(hits)}".rstrip()
    if event == "prompt.revised":
        return f"{_short(record.get('before'))} -> {_short(record.get('after'))}"
    if event == "plugin.error":
        return f"{record.get('stage')}/{record.get('plugin')}: {record.get('error')} (fail {record.get('failure_mode')})"
    if event == "image.checked":
        hits = [f"{f['category']}:{f['score']:.2f}>{f['action']}" for f in record.get("findings", []) if f.get("triggered")]
        return f"image {record.get('index')} {record.get('decision')} {' '.join(hits)}".rstrip()
    if event in ("image.generated", "image.regenerated"):
        return f"image {record.get('index')} seed={record.get('seed')} round={record.get('round')}"
    if event == "image.edited":
        return f"image {record.get('index')} {record.get('category')} {str(record.get('sha256_before'))[:8]}->{str(record.get('sha256_after'))[:8]}"
    if event == "image.final":
        return f"image {record.get('index')} {record.get('status')} {record.get('reason') or ''}".rstrip()
    if event == "request.completed":
        return f"{record.get('status')} {record.get('duration_ms')} ms"
    return ""


def _short(value: Any, width: int = 48) -> str:
    if isinstance(value, dict):
        return "sha256:" + str(value.get("sha256", ""))[:12]
    if value is None:
        return "-"
    text = str(value)
    return json.dumps(text if len(text) <= width else text[: width - 1] + "…", ensure_ascii=False)


@audit_group.command("show")
@click.argument("log", type=click.Path(exists=True, dir_okay=False))
@click.option("--request", "request_id", default=None, help="Only this request id (a prefix is enough).")
@click.option("--json", "as_json", is_flag=True, help="A JSON array.")
@click.option("--nl", "as_nl", is_flag=True, help="One JSON object per line.")
def show_cmd(log: str, request_id: str | None, as_json: bool, as_nl: bool) -> None:
    """Show the records of a log, optionally of one request."""
    records = [r for r in read_records(log) if not request_id or str(r.get("request_id", "")).startswith(request_id)]
    if as_json:
        click.echo(json.dumps(records, indent=2, ensure_ascii=False))
        return
    if as_nl:
        for r in records:
            click.echo(json.dumps(r, ensure_ascii=False))
        return
    for r in records:
        click.echo(f"{r.get('seq', ''):>6}  {r.get('time', '')[:23]}  {str(r.get('request_id', ''))[:12]}  "
                   f"{r.get('event', ''):<18} {_facts(r)}")
