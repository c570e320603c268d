"""``elens audit``: verify and read audit logs."""

from __future__ import annotations

import csv
import functools
import json
import sys
from typing import Any, Callable

import click

from ..audit import verify
from ..audit_review import CSV_COLUMNS, Filters, decision_rows, requests, summarize


@click.group("audit")
def audit_group() -> None:
    """Verify, read and review audit logs (format: docs/audit.md)."""


@audit_group.command("verify")
@click.argument("log", type=click.Path(dir_okay=False))
@click.option("--json", "as_json", is_flag=True)
def verify_cmd(log: str, as_json: bool) -> None:
    """Check the hash chain (and HMACs when ELENS_AUDIT_KEY is set). Exit 1 names the first bad record."""
    result = verify(log)
    click.echo(json.dumps(result.as_dict(), indent=2) if as_json else result.message())
    if not result.ok:
        sys.exit(1)


def _hits(record: dict[str, Any]) -> str:
    return " ".join(f"{f.get('category')}:{float(f.get('score') or 0):.2f}>{f.get('action')}"
                    for f in record.get("findings") or [] if f.get("triggered"))


def _facts(record: dict[str, Any]) -> str:
    """The few facts of a record that fit on one line."""
    event = record.get("event", "")
    if event == "request.received":
        return f"{record.get('kind')} n={record.get('n')} prompt={_short(record.get('prompt'))}"
    if event == "text.checked":
        return f"round {record.get('round')} {record.get('decision')} {_hits(record)}"
    if event == "prompt.revised":
        where = f"image {record['index']} " if "index" in record else ""
        return f"{where}{_short(record.get('before'))} -> {_short(record.get('after'))}"
    if event == "plugin.error":
        return f"{record.get('stage')}/{record.get('plugin')}: {record.get('error')} (fail {record.get('failure_mode')})"
    if event == "prompt.planned":
        return f"{len(record.get('images') or [])} image(s) by {record.get('plugin')} imbalance {record.get('planned_imbalance')}"
    if event == "image.received":
        return f"image {record.get('index')} {str(record.get('sha256'))[:8]} {record.get('source') or ''}"
    if event == "image.checked":
        return f"image {record.get('index')} {record.get('decision')} {_hits(record)}"
    if event in ("image.generated", "image.regenerated"):
        return f"image {record.get('index')} seed={record.get('seed')} round={record.get('round')}"
    if event == "image.edited":
        return (f"image {record.get('index')} {record.get('category')} "
                f"{str(record.get('sha256_before'))[:8]}->{str(record.get('sha256_after'))[:8]}")
    if event == "image.final":
        return f"image {record.get('index')} {record.get('status')} {record.get('reason') or ''}"
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


def filter_options(fn: Callable[..., Any]) -> Callable[..., Any]:
    """The reviewer's filters, shared by show, summary, export and report; they select whole requests."""
    options = [
        click.option("--since", default=None, help="Requests at or after this ISO-8601 date/time (UTC if no zone)."),
        click.option("--until", default=None, help="Requests at or before this date/time (a bare date: the whole day)."),
        click.option("--category", default=None, help="Requests with a triggered finding (or an edit) in this category."),
        click.option("--action", default=None,
                     help="Requests where this action was called for or taken: allow, warn, revise, blur, regenerate, "
                          "block, refuse, edited, blocked, delivered, fail-open, fail-closed."),
        click.option("--policy-version", default=None, help="Requests under this policy version (or NAME@VERSION)."),
        click.option("--request", "request_id", default=None, help="Only this request id (a prefix is enough)."),
    ]

    @functools.wraps(fn)
    def wrapper(*args: Any, since: str | None, until: str | None, category: str | None, action: str | None,
                policy_version: str | None, request_id: str | None, **kwargs: Any) -> Any:
        from ..errors import InputError

        try:
            filters = Filters(since, until, category, action, policy_version, request_id)
        except InputError as exc:
            raise click.BadParameter(str(exc)) from None
        return fn(*args, filters=filters, **kwargs)

    for option in reversed(options):
        wrapper = option(wrapper)
    return wrapper


def _log_arg(fn: Callable[..., Any]) -> Callable[..., Any]:
    return click.argument("log", type=click.Path(exists=True, dir_okay=False))(fn)


@audit_group.command("show")
@_log_arg
@filter_options
@click.option("--json", "as_json", is_flag=True, help="A JSON array.")
@click.option("--nl", "as_nl", is_flag=True, help="One JSON object per line.")
def show_cmd(log: str, filters: Filters, as_json: bool, as_nl: bool) -> None:
    """Show a log's records, short and aligned (rotated files included)."""
    records = [r for req in requests(log, filters) for r in req.records]
    records.sort(key=lambda r: r.get("seq", 0))
    if as_json:
        click.echo(json.dumps(records, indent=2, ensure_ascii=False))
        return
    if as_nl:
        for r in records:
            click.echo(json.dumps(r, ensure_ascii=False))
        return
    for r in records:
        click.echo(f"{r.get('seq', ''):>6}  {str(r.get('time', ''))[:23]:<23}  {str(r.get('request_id', ''))[:12]:<12}  "
                   f"{r.get('event', ''):<18} {_facts(r)}".rstrip())


BIAS_LINES = 20


def _pct(value: float | None) -> str:
    return "-" if value is None else f"{value * 100:.1f}%"


@audit_group.command("summary")
@_log_arg
@filter_options
@click.option("--json", "as_json", is_flag=True, help="The summary as one JSON object (keys in docs/audit.md).")
def summary_cmd(log: str, filters: Filters, as_json: bool) -> None:
    """Summarize a log: counts, rates, plugin errors, bias.

    Counts by category, action, stage, plugin and policy version; refuse, revise,
    edit and block rates; plugin errors and fail-open events; bias imbalance.
    """
    s = summarize(requests(log, filters))
    if as_json:
        click.echo(json.dumps(s, indent=2, ensure_ascii=False))
        return
    rates = s["rates"]
    lines = [f"requests   {s['requests']}  ({_counts(s['by_kind'])})",
             f"outcomes   {_counts(s['by_status'])}",
             f"images     {s['images']}  ({_counts(s['images_by_status'])})",
             f"rates      refuse {_pct(rates['refuse'])}  revise {_pct(rates['revise'])}  "
             f"edit {_pct(rates['edit'])}  block {_pct(rates['block'])}",
             f"errors     {s['plugin_errors']} plugin error(s), {s['fail_open']} fail-open"]
    for title, key in (("policy", "by_policy_version"), ("category", "findings_by_category"),
                       ("action", "findings_by_action"), ("stage", "findings_by_stage"),
                       ("plugin", "findings_by_plugin")):
        lines.append(f"by {title}" + ("" if s[key] else "  -"))
        width = max((len(k) for k in s[key]), default=0)
        lines.extend(f"  {k:<{width}}  {v:>5}" for k, v in s[key].items())
    if s["bias"]:
        lines.append("bias (imbalance, 0 = on target)")
        for b in s["bias"][:BIAS_LINES]:
            lines.append(f"  {b['request_id'][:12]}  planned {_imbalance(b['planned'])}  "
                         f"measured {_imbalance(b['measured'])}  {_short(b['prompt'], 40)}")
        if len(s["bias"]) > BIAS_LINES:
            lines.append(f"  ... {len(s['bias']) - BIAS_LINES} more (--json lists all)")
    click.echo("\n".join(lines))


def _counts(counts: dict[str, int]) -> str:
    return ", ".join(f"{k} {v}" for k, v in counts.items()) or "-"


def _imbalance(values: dict[str, Any]) -> str:
    return " ".join(f"{k}={v:.2f}" if isinstance(v, (int, float)) else f"{k}={v}" for k, v in values.items()) or "-"


@audit_group.command("export")
@_log_arg
@filter_options
@click.option("--csv", "csv_path", required=True, type=click.Path(dir_okay=False, writable=True),
              help="Write one row per image decision (image.final joined with its findings); - for stdout.")
def export_cmd(log: str, filters: Filters, csv_path: str) -> None:
    """Export one CSV row per image decision."""
    rows = list(decision_rows(requests(log, filters)))
    out = sys.stdout if csv_path == "-" else open(csv_path, "w", newline="", encoding="utf-8")
    try:
        writer = csv.DictWriter(out, fieldnames=CSV_COLUMNS)
        writer.writeheader()
        writer.writerows(rows)
    finally:
        if out is not sys.stdout:
            out.close()
    if csv_path != "-":
        click.echo(f"{len(rows)} image decision(s) written to {csv_path}", err=True)


@audit_group.command("report")
@_log_arg
@filter_options
@click.option("--out", "out", required=True, type=click.Path(dir_okay=False, writable=True), help="The HTML file to write.")
@click.option("--limit", type=click.IntRange(min=1), default=None,
              help="List only the newest N requests in the table and details (figures still cover all).")
def report_cmd(log: str, filters: Filters, out: str, limit: int | None) -> None:
    """Write a self-contained HTML report.

    The page holds the verify verdict, summary charts, a sortable and filterable
    request table, and per-request details (prompts as redaction allows, scores
    against thresholds, actions, thumbnails as retention allows).
    """
    from ..audit_report import write_report

    count = write_report(log, out, filters, limit)
    click.echo(f"{count} request(s) written to {out}")
