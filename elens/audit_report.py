"""``elens audit report``: one self-contained HTML page a compliance reviewer can open.

No network assets: styles, inline SVG charts, images (data URLs, as retention
allowed) and a little vanilla JavaScript for sorting and filtering the request
table. The page reads filters from its URL fragment, e.g. ``report.html#action=block``
or ``#filter=gore`` (any of actions, categories, status, id, prompt), so a link can
carry a view.
"""

from __future__ import annotations

import json
import os
from datetime import datetime, timezone
from html import escape
from typing import Any, Iterable, Mapping

from .audit import verify
from .audit_review import Filters, Request, prompt_text, requests, summarize

__all__ = ["render_report", "write_report"]

_CSS = """
:root{--fg:#1b1f24;--muted:#57606a;--line:#d0d7de;--bg:#fff;--ok:#1a7f37;--bad:#cf222e;--warn:#9a6700;--acc:#0969da}
*{box-sizing:border-box}body{font:14px/1.45 system-ui,-apple-system,Segoe UI,Roboto,sans-serif;color:var(--fg);
background:var(--bg);margin:0 auto;max-width:1200px;padding:16px 24px}
h1{font-size:22px;margin:0 0 4px}h2{font-size:18px;margin:28px 0 8px;border-bottom:1px solid var(--line)}
h3{font-size:15px;margin:14px 0 6px}.muted{color:var(--muted)}code,.mono{font-family:ui-monospace,Menlo,monospace;font-size:12px}
.verdict{padding:8px 12px;border-radius:6px;margin:10px 0;font-weight:600}.verdict.ok{background:#dafbe1;color:var(--ok)}
.verdict.bad{background:#ffebe9;color:var(--bad)}
.figures{display:flex;flex-wrap:wrap;gap:10px;margin:10px 0}.fig{border:1px solid var(--line);border-radius:6px;padding:8px 12px;min-width:120px}
.fig b{display:block;font-size:20px}.charts{display:flex;flex-wrap:wrap;gap:18px}.chart{border:1px solid var(--line);border-radius:6px;padding:8px;margin:0}
table{border-collapse:collapse;width:100%}th,td{border-bottom:1px solid var(--line);padding:4px 6px;text-align:left;vertical-align:top}
th[data-key]{cursor:pointer;user-select:none;white-space:nowrap}th[aria-sort=ascending]::after{content:" \\25B2"}
th[aria-sort=descending]::after{content:" \\25BC"}tr[hidden],details[hidden]{display:none}
.controls{display:flex;flex-wrap:wrap;gap:8px;align-items:center;margin:8px 0}.controls input{min-width:260px}
.tag{display:inline-block;padding:0 6px;border-radius:10px;font-size:12px;background:#eaeef2;margin:1px}
.tag.block,.tag.refuse,.tag.blocked,.tag.refused,.tag.fail-closed{background:#ffebe9;color:var(--bad)}
.tag.blur,.tag.edited,.tag.revise,.tag.revised,.tag.regenerate,.tag.partial{background:#fff8c5;color:var(--warn)}
.tag.triggered{background:#ffebe9;color:var(--bad)}.tag.warn,.tag.fail-open{background:#fbefff;color:#8250df}.tag.pass,.tag.delivered,.tag.allow{background:#dafbe1;color:var(--ok)}
details.req{border:1px solid var(--line);border-radius:6px;margin:8px 0;padding:6px 10px}details.req>summary{cursor:pointer}
.prompt{white-space:pre-wrap;word-break:break-word}.thumbs{display:flex;flex-wrap:wrap;gap:12px}
.thumb{border:1px solid var(--line);border-radius:6px;padding:6px;font-size:12px}.thumb img{width:128px;height:auto;image-rendering:pixelated;display:block}
.thumb img.withheld{filter:blur(8px)}
"""

_JS = r"""
(function(){
  var table=document.getElementById('req-table'), body=table.tBodies[0];
  var q=document.getElementById('f-text'), fa=document.getElementById('f-action'),
      fc=document.getElementById('f-category'), fv=document.getElementById('f-version');
  function words(row,key){return (row.getAttribute('data-'+key)||'').split(' ').filter(Boolean);}
  function apply(){
    var text=q.value.trim().toLowerCase(), a=fa.value, c=fc.value, v=fv.value, shown=0;
    Array.prototype.forEach.call(body.rows,function(row){
      var ok=true;
      if(a&&words(row,'actions').indexOf(a)<0)ok=false;
      if(c&&words(row,'categories').indexOf(c)<0)ok=false;
      if(v&&row.getAttribute('data-version')!==v)ok=false;
      if(text){var hay=[row.getAttribute('data-actions'),row.getAttribute('data-categories'),
        row.getAttribute('data-status'),row.getAttribute('data-id'),row.textContent].join(' ').toLowerCase();
        if(hay.indexOf(text)<0)ok=false;}
      if(ok){row.removeAttribute('hidden');shown++;}else{row.setAttribute('hidden','');}
      var d=document.getElementById('req-'+row.getAttribute('data-id'));
      if(d){if(ok)d.removeAttribute('hidden');else d.setAttribute('hidden','');}
    });
    document.getElementById('shown').textContent=shown;
  }
  function sortBy(th,dir){
    var idx=Array.prototype.indexOf.call(th.parentNode.children,th), num=th.getAttribute('data-type')==='num';
    var rows=Array.prototype.slice.call(body.rows);
    rows.sort(function(x,y){
      var a=x.cells[idx].getAttribute('data-sort')||x.cells[idx].textContent,
          b=y.cells[idx].getAttribute('data-sort')||y.cells[idx].textContent;
      if(num){a=parseFloat(a)||0;b=parseFloat(b)||0;}
      return (a<b?-1:a>b?1:0)*(dir==='descending'?-1:1);
    });
    rows.forEach(function(r){body.appendChild(r);});
    Array.prototype.forEach.call(th.parentNode.children,function(h){h.removeAttribute('aria-sort');});
    th.setAttribute('aria-sort',dir);
  }
  Array.prototype.forEach.call(table.tHead.rows[0].cells,function(th){
    if(!th.hasAttribute('data-key'))return;
    th.addEventListener('click',function(){
      sortBy(th,th.getAttribute('aria-sort')==='ascending'?'descending':'ascending');});
  });
  [q,fa,fc,fv].forEach(function(el){el.addEventListener('input',apply);el.addEventListener('change',apply);});
  function fromHash(){
    var h=(location.hash||'').replace(/^#/,''), opened=null;
    if(/^req-/.test(h))return;
    h.split('&').forEach(function(part){
      var kv=part.split('='), k=decodeURIComponent(kv[0]||''), v=decodeURIComponent((kv[1]||'').replace(/\+/g,' '));
      if(k==='filter'||k==='q')q.value=v;
      if(k==='action')fa.value=v;
      if(k==='category')fc.value=v;
      if(k==='version')fv.value=v;
      if(k==='request'){q.value=v;opened=v;}
      if(k==='sort'){var p=v.split(':'),th=table.querySelector('th[data-key="'+p[0]+'"]');
        if(th)sortBy(th,p[1]==='desc'?'descending':'ascending');}
    });
    apply();
    if(opened){Array.prototype.forEach.call(document.querySelectorAll('details.req'),function(d){
      if(d.id.indexOf('req-'+opened)===0){d.open=true;d.scrollIntoView();}});}
  }
  window.addEventListener('hashchange',fromHash);
  fromHash();
})();
"""


def _tag(value: Any) -> str:
    text = escape(str(value))
    return f'<span class="tag {text}">{text}</span>'


def _bars(title: str, counts: Mapping[str, Any], width: int = 360) -> str:
    """A horizontal bar chart as inline SVG."""
    items = [(str(k), float(v)) for k, v in counts.items() if v]
    if not items:
        return (f'<figure class="chart"><figcaption>{escape(title)}</figcaption>'
                '<p class="muted">nothing recorded</p></figure>')
    row, label_w = 22, 130
    top = max(v for _, v in items)
    height = row * len(items) + 6
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" role="img" '
             f'aria-label="{escape(title)}">']
    for i, (label, value) in enumerate(items):
        y = i * row + 3
        w = max(1.0, (width - label_w - 50) * value / top)
        parts.append(f'<text x="{label_w - 6}" y="{y + 14}" text-anchor="end" font-size="12">{escape(label[:20])}</text>'
                     f'<rect x="{label_w}" y="{y + 2}" width="{w:.1f}" height="16" fill="#0969da" rx="2">'
                     f'<title>{escape(label)}: {value:g}</title></rect>'
                     f'<text x="{label_w + w + 4:.1f}" y="{y + 14}" font-size="12">{value:g}</text>')
    parts.append("</svg>")
    return f'<figure class="chart"><figcaption>{escape(title)}</figcaption>{"".join(parts)}</figure>'


def _score_bar(score: Any, threshold: Any) -> str:
    """Score (bar) against threshold (tick), both in [0, 1]."""
    try:
        s = max(0.0, min(1.0, float(score)))
    except (TypeError, ValueError):
        return ""
    w = 120
    tick = ""
    colour = "#8c959f"
    if threshold is not None:
        t = max(0.0, min(1.0, float(threshold)))
        tick = f'<line x1="{t * w:.1f}" x2="{t * w:.1f}" y1="0" y2="12" stroke="#1b1f24" stroke-width="2"><title>threshold {t:g}</title></line>'
        colour = "#cf222e" if s >= t else "#2da44e"
    return (f'<svg xmlns="http://www.w3.org/2000/svg" width="{w}" height="12" class="score">'
            f'<rect width="{w}" height="12" fill="#eaeef2"/><rect width="{s * w:.1f}" height="12" fill="{colour}"/>'
            f'<title>score {s:.3f}</title>{tick}</svg>')


def _prompt(value: Any) -> str:
    cls = "prompt" if isinstance(value, str) else "prompt mono muted"
    return f'<span class="{cls}">{escape(prompt_text(value))}</span>'


def _findings_table(findings: list[dict[str, Any]]) -> str:
    if not findings:
        return '<p class="muted">no findings</p>'
    rows = []
    for f in findings:
        threshold = f.get("threshold")
        rows.append(
            "<tr>" + "".join(f"<td>{c}</td>" for c in (
                escape(str(f.get("stage", ""))), escape(str(f.get("category", ""))),
                f'<span class="mono">{float(f.get("score") or 0):.3f}</span>',
                '<span class="mono">' + ("-" if threshold is None else f"{float(threshold):.3f}") + "</span>",
                _score_bar(f.get("score"), threshold),
                _tag("triggered" if f.get("triggered") else "below"),
                _tag(f.get("action", "")),
                escape(f"{f.get('plugin')}@{f.get('plugin_version')}"),
                escape(str(f.get("label") or f.get("reason") or "")),
            )) + "</tr>")
    return ('<table class="findings"><thead><tr><th>stage</th><th>category</th><th>score</th><th>threshold</th>'
            '<th>score vs threshold</th><th></th><th>action</th><th>plugin</th><th>label</th></tr></thead><tbody>'
            + "".join(rows) + "</tbody></table>")


def _image_src(image: Mapping[str, Any] | None) -> str | None:
    if not image:
        return None
    src = image.get("thumbnail") or image.get("full")
    return src if isinstance(src, str) and src.startswith("data:image/png;base64,") else None


def _images(req: Request) -> str:
    finals = req.events("image.final")
    if not finals:
        return ""
    out = []
    for final in finals:
        index = final.get("index")
        before = None
        for r in req.records:
            if r.get("event") in ("image.generated", "image.received") and r.get("index") == index:
                before = _image_src(r.get("image")) or before
        after = _image_src(final.get("image"))
        status = str(final.get("status", ""))
        cells = []
        if before and (status == "edited" or after is None):
            cells.append(f'<div>before<img src="{before}" alt="image {index} before"'
                         f'{" class=withheld" if status == "blocked" else ""}></div>')
        if after:
            cls = ' class="withheld" title="blocked: withheld from the user, blurred here"' if status == "blocked" else ""
            cells.append(f'<div>{"after" if status == "edited" else "final"}<img src="{after}" '
                         f'alt="image {index} {escape(status)}"{cls}></div>')
        digest = (final.get("image") or {}).get("sha256")
        edits = [e for e in req.events("image.edited") if e.get("index") == index]
        hashes = "".join(f'<div class="mono">{escape(str(e.get("category")))}: {escape(str(e.get("sha256_before"))[:12])}'
                         f' → {escape(str(e.get("sha256_after"))[:12])}</div>' for e in edits)
        out.append(f'<div class="thumb"><div>image {escape(str(index))} {_tag(status)} '
                   f'{"".join(_tag(a) for a in final.get("actions") or [])}</div>'
                   f'<div class="thumbs">{"".join(cells) or "<span class=muted>not retained</span>"}</div>'
                   f'{hashes}<div class="mono muted">{escape(str(digest or "")[:16])}</div>'
                   f'<div class="muted">{escape(str(final.get("reason") or ""))}</div></div>')
    return f'<h3>Images</h3><div class="thumbs">{"".join(out)}</div>'


def _request_detail(req: Request) -> str:
    parts = [f'<p>{_tag(req.status)} {escape(req.kind)} · {escape(req.time)} · policy '
             f'<code>{escape(req.policy_label)}</code> <span class="mono muted">{escape(str(req.policy.get("sha256", ""))[:16])}</span>'
             f' · {escape(str(req.duration_ms))} ms</p>',
             f"<p><b>Prompt:</b> {_prompt(req.prompt)}</p>"]
    for rev in req.events("prompt.revised"):
        where = f"image {rev['index']}" if "index" in rev else "text"
        changes = ""
        if isinstance(rev.get("before"), str) and rev.get("changes"):
            changes = " <span class='muted'>(" + escape(", ".join(f"{a!r}→{b!r}" for a, b in rev["changes"])) + ")</span>"
        parts.append(f"<p><b>Revised ({escape(where)}, {escape(str(rev.get('plugin')))}):</b> {_prompt(rev.get('after'))}"
                     f" <span class='muted'>{escape(str(rev.get('reason') or ''))}</span>{changes}</p>")
    for r in req.events("plugin.error"):
        mode = "fail-open" if r.get("failure_mode") == "allow" else "fail-closed"
        parts.append(f"<p>{_tag(mode)} <b>{escape(str(r.get('stage')))}/{escape(str(r.get('plugin')))}"
                     f"@{escape(str(r.get('plugin_version')))}</b>: {escape(str(r.get('error')))}</p>")
    for r in req.events("text.checked"):
        parts.append(f"<h3>Text checks, round {escape(str(r.get('round')))}: {_tag(r.get('decision'))}</h3>"
                     + _findings_table(list(r.get("findings") or [])))
    plan = req.events("prompt.planned")
    if plan and plan[0].get("images"):
        items = "".join(f"<li>image {escape(str(i.get('index')))}: {_prompt(i.get('prompt'))} "
                        f"<span class='mono muted'>{escape(json.dumps(i.get('assigned') or {}))}</span></li>"
                        for i in plan[0]["images"])
        parts.append(f"<h3>Plan ({escape(str(plan[0].get('plugin')))})</h3><ul>{items}</ul>"
                     f"<p class='muted'>planned imbalance {escape(json.dumps(plan[0].get('planned_imbalance') or {}))}</p>")
    for r in req.events("image.checked"):
        parts.append(f"<h3>Image {escape(str(r.get('index')))} checks, round {escape(str(r.get('round')))}: "
                     f"{_tag(r.get('decision'))}</h3>" + _findings_table(list(r.get("findings") or [])))
    parts.append(_images(req))
    summary = (f"<summary><code>{escape(req.request_id[:12])}</code> {_tag(req.status)} "
               f"{_prompt(req.prompt)}</summary>")
    return f'<details class="req" id="req-{escape(req.request_id)}">{summary}{"".join(parts)}</details>'


def _row(req: Request) -> str:
    actions = " ".join(sorted(req.actions))
    cats = " ".join(sorted(req.categories))
    images = len(req.events("image.final"))
    cells = [
        f'<td data-sort="{escape(req.time)}" class="mono">{escape(req.time[:19].replace("T", " "))}</td>',
        f'<td><a href="#req-{escape(req.request_id)}" class="mono">{escape(req.request_id[:12])}</a></td>',
        f"<td>{escape(req.kind)}</td>",
        f"<td>{escape(req.policy_label)}</td>",
        f'<td data-sort="{escape(req.status)}">{_tag(req.status)}</td>',
        f"<td>{_prompt(req.prompt)}</td>",
        f"<td>{''.join(_tag(c) for c in sorted(req.categories))}</td>",
        f"<td>{''.join(_tag(a) for a in sorted(req.actions))}</td>",
        f'<td data-sort="{images}">{images}</td>',
        f'<td data-sort="{req.duration_ms or 0}" class="mono">{escape(str(req.duration_ms or ""))}</td>',
    ]
    return (f'<tr data-id="{escape(req.request_id)}" data-status="{escape(req.status)}" '
            f'data-actions="{escape(actions)}" data-categories="{escape(cats)}" '
            f'data-version="{escape(str(req.policy.get("version", "")))}">{"".join(cells)}</tr>')


def _table(headers: Iterable[str], rows: str) -> str:
    return f"<table><thead><tr>{''.join(f'<th>{escape(h)}</th>' for h in headers)}</tr></thead><tbody>{rows}</tbody></table>"


def _options(label: str, element_id: str, values: Iterable[str]) -> str:
    opts = "".join(f'<option value="{escape(v)}">{escape(v)}</option>' for v in sorted(set(values)))
    return f'<label>{escape(label)} <select id="{element_id}"><option value="">all</option>{opts}</select></label>'


def render_report(path: str | os.PathLike, filters: Filters | None = None, limit: int | None = None) -> str:
    """The report for a log (all its rotated files) as one HTML string.

    Summary figures and charts cover every request the filters select; with
    ``limit``, the table and the details list only the newest ``limit`` of them.
    """
    checked = verify(path)
    selected = requests(path, filters)
    s = summarize(selected)
    reqs = selected[-limit:] if limit else selected
    listed = (f" · table and details: the newest {len(reqs)} of {len(selected)} requests"
              if len(reqs) < len(selected) else "")
    rates = s["rates"]
    pct = lambda v: "–" if v is None else f"{v * 100:.1f}%"  # noqa: E731
    figures = [("requests", s["requests"]), ("images", s["images"]), ("refuse rate", pct(rates["refuse"])),
               ("revise rate", pct(rates["revise"])), ("edit rate", pct(rates["edit"])),
               ("block rate", pct(rates["block"])), ("plugin errors", s["plugin_errors"]),
               ("fail-open", s["fail_open"])]
    verdict = (f'<div class="verdict ok">Log intact: {escape(checked.message())}'
               f'{" (HMAC checked)" if checked.hmac_checked else ""}</div>' if checked.ok
               else f'<div class="verdict bad">Log NOT intact: {escape(checked.message())}</div>')
    bias_rows = "".join(
        f"<tr><td class='mono'>{escape(b['request_id'][:12])}</td><td>{escape(b['prompt'])}</td>"
        f"<td class='mono'>{escape(json.dumps(b['planned']))}</td><td class='mono'>{escape(json.dumps(b['measured']))}</td></tr>"
        for b in s["bias"])
    errors = "".join(
        f"<tr><td class='mono'>{escape(str(e['request_id'])[:12])}</td><td>{escape(str(e['stage']))}</td>"
        f"<td>{escape(str(e['plugin']))}@{escape(str(e['plugin_version']))}</td><td>{escape(str(e['error']))}</td>"
        f"<td>{_tag('fail-open' if e['failure_mode'] == 'allow' else 'fail-closed')}</td></tr>" for e in s["errors"])
    bias_html = (_table(("request", "prompt", "planned", "measured"), bias_rows) if bias_rows
                 else "<p class='muted'>no planned or measured imbalance recorded</p>")
    errors_html = (_table(("request", "stage", "plugin", "error", "failure mode"), errors) if errors
                   else "<p class='muted'>none</p>")
    all_actions = {a for r in reqs for a in r.actions}
    all_cats = {c for r in reqs for c in r.categories}
    versions = {str(r.policy.get("version", "")) for r in reqs}
    generated = datetime.now(timezone.utc).isoformat(timespec="seconds").replace("+00:00", "Z")
    head = ("<th data-key=time>time</th><th data-key=id>request</th><th data-key=kind>kind</th>"
            "<th data-key=policy>policy</th><th data-key=status>status</th><th data-key=prompt>prompt</th>"
            "<th data-key=categories>categories</th><th data-key=actions>actions</th>"
            "<th data-key=images data-type=num>images</th><th data-key=duration data-type=num>ms</th>")
    body = f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width,initial-scale=1">
<meta http-equiv="Content-Security-Policy" content="default-src 'none'; img-src data:; style-src 'unsafe-inline'; script-src 'unsafe-inline'">
<title>elens audit report: {escape(os.path.basename(str(path)))}</title><style>{_CSS}</style></head>
<body>
<header><h1>elens audit report</h1>
<p class="muted">Log <code>{escape(str(path))}</code> ({len(checked.files)} file(s)) · generated {generated}
· filters: {escape(filters.describe() if filters else "none")}{escape(listed)}</p>{verdict}</header>
<section id="summary"><h2>Summary</h2>
<div class="figures">{"".join(f'<div class="fig"><b>{escape(str(v))}</b>{escape(k)}</div>' for k, v in figures)}</div>
<div class="charts">{_bars("Requests by outcome", s["by_status"])}{_bars("Images by final status", s["images_by_status"])}
{_bars("Findings by category", s["findings_by_category"])}{_bars("Findings by action", s["findings_by_action"])}
{_bars("Requests by policy version", s["by_policy_version"])}{_bars("Findings by plugin", s["findings_by_plugin"])}</div>
</section>
<section id="requests"><h2>Requests</h2>
<div class="controls"><input id="f-text" type="search" placeholder="filter: action, category, status, id or prompt text">
{_options("action", "f-action", all_actions)}{_options("category", "f-category", all_cats)}
{_options("policy version", "f-version", versions)}
<span class="muted"><span id="shown">{len(reqs)}</span> of {len(reqs)} requests shown</span></div>
<table id="req-table"><thead><tr>{head}</tr></thead><tbody>
{"".join(_row(r) for r in reqs)}
</tbody></table></section>
<section id="bias"><h2>Bias: planned and measured imbalance</h2>
{bias_html}
</section>
<section id="errors"><h2>Plugin errors</h2>
{errors_html}
</section>
<section id="details"><h2>Request details</h2>
{"".join(_request_detail(r) for r in reqs)}
</section>
<script>{_JS}</script>
</body></html>
"""
    return body


def write_report(path: str | os.PathLike, out: str | os.PathLike, filters: Filters | None = None,
                 limit: int | None = None) -> int:
    """Write the report atomically to ``out``; return the number of requests in its table."""
    html = render_report(path, filters, limit)
    tmp = f"{out}.tmp"
    with open(tmp, "w", encoding="utf-8") as fh:
        fh.write(html)
    os.replace(tmp, out)
    return html.count("<tr data-id=")
