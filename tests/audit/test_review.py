"""Compliance review on a real pipeline log: filters, summary, CSV export, the HTML report, redaction."""

from __future__ import annotations

import csv
import io
import json
import re
import shutil
import subprocess

import pytest
from click.testing import CliRunner

from elens.audit import AuditLog, read_records, verify
from elens.audit_report import render_report
from elens.audit_review import Filters, requests, summarize
from elens.cli.audit import audit_group

from . import samplelog


@pytest.fixture(scope="module")
def log(tmp_path_factory):
    return samplelog.build(tmp_path_factory.mktemp("review") / "audit.jsonl")


def cli(*args):
    result = CliRunner().invoke(audit_group, [str(a) for a in args])
    return result


def test_sample_log_has_every_event_and_verifies(log):
    assert verify(log).ok
    events = {r["event"] for r in read_records(log)}
    assert events >= {"request.received", "text.checked", "prompt.revised", "plugin.error", "prompt.planned",
                      "image.generated", "image.checked", "image.edited", "image.regenerated", "image.final",
                      "request.completed"}


def test_summary_counts_and_rates(log):
    s = json.loads(cli("summary", log, "--json").output)
    assert s["requests"] == 8 and s["images"] == 5
    assert s["by_status"] == {"pass": 2, "edited": 2, "blocked": 2, "revised": 1, "refused": 1}
    assert s["by_policy_version"] == {"review-test@1.0": 5, "review-test@2.0": 3}
    assert s["images_by_status"] == {"edited": 3, "blocked": 2}
    assert s["findings_by_category"]["weapons"] == 1 and s["findings_by_category"]["gore"] == 1
    assert s["findings_by_stage"] == {"image": 6, "text": 2}
    assert s["findings_by_plugin"] == {"patch@0": 6, "words@0": 2}
    assert s["rates"] == {"refuse": 0.125, "revise": 0.125, "edit": 0.6, "block": 0.4}
    assert s["plugin_errors"] == 1 and s["fail_open"] == 1 and s["errors"][0]["plugin"] == "boom"
    assert len(s["bias"]) == 6 and all("gender" in b["planned"] for b in s["bias"])
    human = cli("summary", log).output
    assert "rates      refuse 12.5%  revise 12.5%  edit 60.0%  block 40.0%" in human
    assert re.search(r"review-test@2\.0\s+3", human)


@pytest.mark.parametrize("args, statuses", [
    (["--category", "gore"], ["blocked"]),
    (["--action", "refuse"], ["refused"]),
    (["--action", "blur"], ["edited", "edited"]),
    (["--action", "fail-open"], ["pass"]),
    (["--policy-version", "2.0"], ["blocked", "blocked", "pass"]),
    (["--policy-version", "review-test@2.0", "--category", "sexual"], ["blocked"]),
    (["--since", "2000-01-01", "--until", "2999-12-31"], ["pass", "revised", "refused", "edited", "blocked",
                                                          "blocked", "pass", "edited"]),
    (["--until", "2000-01-01"], []),
])
def test_filters_select_requests(log, args, statuses):
    s = json.loads(cli("summary", log, "--json", *args).output)
    assert s["requests"] == len(statuses)
    assert sum(s["by_status"].values()) == len(statuses)
    assert [r.status for r in requests(log, Filters(**_kw(args)))] == statuses


def _kw(args):
    names = {"--category": "category", "--action": "action", "--policy-version": "policy_version",
             "--since": "since", "--until": "until"}
    return {names[k]: v for k, v in zip(args[::2], args[1::2])}


def test_filters_on_show_and_request_prefix(log):
    reqs = requests(log)
    target = reqs[4]
    shown = json.loads(cli("show", log, "--json", "--request", target.request_id[:8]).output)
    assert {r["request_id"] for r in shown} == {target.request_id} and len(shown) == len(target.records)
    blocked = [json.loads(line) for line in cli("show", log, "--nl", "--action", "blocked").output.splitlines()]
    assert {r["request_id"] for r in blocked} == {r.request_id for r in reqs if r.status == "blocked"}
    human = cli("show", log, "--category", "weapons").output.splitlines()
    assert len(human) == 3 and "refuse weapons:1.00>block" in human[1]
    bad = cli("show", log, "--since", "yesterday")
    assert bad.exit_code == 2 and "not an ISO-8601 date" in bad.output


def test_export_csv_one_row_per_image_decision(log, tmp_path):
    out = tmp_path / "decisions.csv"
    assert cli("export", log, "--csv", out).exit_code == 0
    rows = list(csv.DictReader(out.open(encoding="utf-8")))
    finals = [r for r in read_records(log) if r["event"] == "image.final"]
    assert len(rows) == len(finals) == 5
    by_status = {r["status"] for r in rows}
    assert by_status == {"edited", "blocked"}
    gore = [r for r in rows if r["categories"] == "gore"][0]
    assert gore["status"] == "blocked" and gore["policy_version"] == "2.0" and gore["actions"] == "block"
    assert "image:gore 0.900>=0.5 block (patch@0)" in gore["findings"]
    regen = [r for r in rows if r["regenerations"] == "1"][0]
    assert regen["categories"] == "sexual" and regen["reason"].startswith("still flagged")
    filtered = cli("export", log, "--csv", "-", "--policy-version", "1.0").output
    assert len(list(csv.DictReader(io.StringIO(filtered)))) == 3


def test_summary_and_report_follow_rotation(log, tmp_path):
    rotated = tmp_path / "rotated.jsonl"
    target = AuditLog(rotated, rotate_bytes=4000)
    for req in requests(log):
        target.append(req.records)
    assert len(list(tmp_path.glob("rotated.jsonl.*"))) >= 2
    assert verify(rotated).ok and verify(rotated).count == verify(log).count
    assert summarize(requests(rotated)) == summarize(requests(log))
    assert "Log intact" in render_report(rotated)


def test_report_is_self_contained_and_complete(log, tmp_path):
    out = tmp_path / "report.html"
    result = cli("report", log, "--out", out)
    assert result.exit_code == 0 and result.output.strip() == f"8 request(s) written to {out}"
    html = out.read_text(encoding="utf-8")
    assert not re.search(r"""(src|href)\s*=\s*["']?(https?:)?//""", html)
    assert "<link" not in html and "@import" not in html and "url(" not in html
    assert "Log intact: OK: " in html and html.count("<tr data-id=") == 8
    assert html.count("<svg") >= 6  # charts and score bars, inline
    assert "a nude figure on a beach" in html and "a figure on a beach" in html  # original and revised prompt
    assert html.count('src="data:image/png;base64,') >= 4  # thumbnails (retention: thumbnail)
    assert "RuntimeError: detector crashed" in html and "fail-open" in html


def test_report_names_a_broken_log(log, tmp_path):
    broken = tmp_path / "broken.jsonl"
    data = log.read_bytes().splitlines(keepends=True)
    broken.write_bytes(b"".join(data[:10] + data[11:]))
    html = render_report(broken)
    assert "Log NOT intact" in html and "record seq 11: removed" in html


def test_redaction_hash_keeps_raw_prompts_out_of_log_report_and_export(tmp_path):
    path = samplelog.build(tmp_path / "redacted.jsonl", redact="hash")
    report, export = tmp_path / "r.html", tmp_path / "r.csv"
    assert cli("report", path, "--out", report).exit_code == 0
    assert cli("export", path, "--csv", export).exit_code == 0
    summary = cli("summary", path, "--json").output.encode()
    shown = cli("show", path).output.encode()
    secret = samplelog.SECRET.encode()
    for blob in (path.read_bytes(), report.read_bytes(), export.read_bytes(), summary, shown):
        assert secret not in blob and b"zebra-7f3c" not in blob
        assert b"a nude figure on a beach" not in blob
    assert b'"prompt":{"sha256":' in path.read_bytes()
    assert b"sha256:" in report.read_bytes()


CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


def chromium(tmp_path, *args):
    profile = tmp_path / f"profile-{len(list(tmp_path.glob('profile-*')))}"
    cmd = [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking",
           "--disable-component-update", "--disable-sync", "--disable-quic", "--hide-scrollbars",
           f"--user-data-dir={profile}", *args]
    return subprocess.run(cmd, capture_output=True, timeout=90)


@pytest.mark.skipif(CHROMIUM is None, reason="no chromium binary (Debian: apt-get install chromium)")
def test_report_in_headless_chromium(log, tmp_path):
    out = tmp_path / "report.html"
    cli("report", log, "--out", out)
    reqs = requests(log)

    def rows(dom):
        return re.findall(r"<tr data-id=\"([0-9a-f]+)\"[^>]*?(hidden=\"\")?>", dom)

    page = chromium(tmp_path, "--dump-dom", out.as_uri())
    dom = page.stdout.decode()
    assert page.returncode == 0 and "Log intact: OK: 55 records" in dom
    assert len(rows(dom)) == 8 and not any(hidden for _, hidden in rows(dom))
    assert 'id="shown">8<' in dom

    # The page's script reads a filter from the URL fragment and hides the other rows.
    dom = chromium(tmp_path, "--dump-dom", out.as_uri() + "#action=blocked").stdout.decode()
    visible = [rid for rid, hidden in rows(dom) if not hidden]
    assert visible == [r.request_id for r in reqs if r.status == "blocked"] and 'id="shown">2<' in dom
    dom = chromium(tmp_path, "--dump-dom", out.as_uri() + "#filter=gore").stdout.decode()
    assert [rid for rid, hidden in rows(dom) if not hidden] == [r.request_id for r in reqs if "gore" in r.categories]
    # Sorting by a column reorders the rows.
    dom = chromium(tmp_path, "--dump-dom", out.as_uri() + "#sort=duration:desc").stdout.decode()
    by_duration = sorted(reqs, key=lambda r: -(r.duration_ms or 0))
    assert [rid for rid, _ in rows(dom)] == [r.request_id for r in by_duration]

    # A link to one request filters to it and opens its details.
    target = [r for r in reqs if r.status == "blocked"][-1]
    dom = chromium(tmp_path, "--dump-dom", out.as_uri() + f"#request={target.request_id[:8]}").stdout.decode()
    assert [rid for rid, hidden in rows(dom) if not hidden] == [target.request_id]
    assert re.search(rf'<details class="req" id="req-{target.request_id}" open="">', dom)

    shot = tmp_path / "report.png"
    chromium(tmp_path, "--window-size=1280,1600", f"--screenshot={shot}", out.as_uri())
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and shot.stat().st_size > 20000


def test_report_filters_and_hmac_verdict(log, tmp_path, monkeypatch):
    out = tmp_path / "blocked.html"
    assert cli("report", log, "--out", out, "--action", "blocked").output.startswith("2 request(s)")
    html = out.read_text(encoding="utf-8")
    assert html.count("<tr data-id=") == 2 and "filters: action=blocked" in html
    limited = cli("report", log, "--out", out, "--limit", "3")
    assert limited.output.startswith("3 request(s)")
    html = out.read_text(encoding="utf-8")
    assert "the newest 3 of 8 requests" in html and '<div class="fig"><b>8</b>requests' in html
    monkeypatch.setenv("ELENS_AUDIT_KEY", "k")
    signed = tmp_path / "signed.jsonl"
    for req in requests(log):
        AuditLog(signed).append(req.records)
    assert "(HMAC checked)" in render_report(signed)
    monkeypatch.setenv("ELENS_AUDIT_KEY", "wrong")
    assert "Log NOT intact" in render_report(signed) and "forged" in render_report(signed)


def test_report_shows_before_thumbnails_when_the_log_keeps_them(log, tmp_path):
    # The pipeline keeps a thumbnail of each image as generated or received (thumbnail retention).
    html = render_report(log)
    # Beside each edited image: two generated ones, one moderated upload. A blocked image's
    # retained final picture is its only one.
    assert html.count('alt="image 0 before"') == 2 and html.count('alt="image 1 before"') == 1
    generated = [r for r in read_records(log) if r["event"] in ("image.generated", "image.received")]
    assert generated and all(r["image"]["thumbnail"].startswith("data:image/png;base64,") for r in generated)
    plain = samplelog.build(tmp_path / "hash.jsonl", retention="hash")
    assert 'before"' not in render_report(plain)
    assert not any("image" in r for r in read_records(plain) if r["event"] == "image.generated")

