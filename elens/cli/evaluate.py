"""``elens eval``: score one policy, or two side by side, on a labeled prompt set."""

from __future__ import annotations

import json
import os
import sys
import tempfile
from typing import Any, Callable, Mapping, Sequence

import click

from ..evaluate import STATUSES
from ..types import ACTIONS
from . import DEFAULT_POLICY

LETTERS = "ABCDEFGH"


def _fmt(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.3f}"
    return str(value)


def table(header: Sequence[str], rows: Sequence[Sequence[Any]], rule_before: int | None = None) -> list[str]:
    """Aligned text columns: the first left-aligned, the others right-aligned."""
    cells = [list(header)] + [[_fmt(v) for v in row] for row in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(header))]

    def line(r: Sequence[str]) -> str:
        return "  ".join(c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in enumerate(zip(r, widths))).rstrip()

    out = [line(cells[0])]
    for i, r in enumerate(cells[1:]):
        if rule_before is not None and i == rule_before:
            out.append("-" * len(out[0]))
        out.append(line(r))
    return out


def render(result: Mapping[str, Any]) -> str:
    """The human report: the data, then categories, actions and outcomes, one column group per policy."""
    data, reports = result["data"], result["policies"]
    split = f", split {data['split']!r}" if data["split"] else ""
    lines = [f"{data['path']}: {data['prompts']} prompts ({data['safe']} safe, {data['unsafe']} unsafe{split}), "
             f"labels from column {data['label_column']!r}"]
    many = len(reports) > 1
    for letter, r in zip(LETTERS, reports):
        p = r["policy"]
        tag = f"{letter}: " if many else ""
        speed = f"{r['seconds']:.1f} s, {r['prompts_per_second']} prompts/s" if r.get("seconds") is not None else ""
        extra = [speed] if speed else []
        if r.get("plugin_failures"):
            extra.append(f"{r['plugin_failures']} prompts hit a plugin failure")
        lines.append(f"{tag}policy {p['name']} {p['version']} ({p['source']})" + (": " + "; ".join(extra) if extra else ""))
    lines.append("")
    tags = [f"{letter} " if many else "" for letter in LETTERS[:len(reports)]]

    # categories: n once, then per policy; thresholds only for a single policy (else they crowd the table)
    header = ["category", "n"]
    if many:
        for t in tags:
            header += [f"{t}prec", f"{t}recall", f"{t}FPR", f"{t}safe FPR"]
    else:
        header += ["threshold", "flagged", "TP", "FP", "FN", "precision", "recall", "FPR", "safe FPR"]
    rows = []
    names = list(reports[0]["categories"])
    for c in names + ["any unsafe"]:
        per = [r["overall"] if c == "any unsafe" else r["categories"][c] for r in reports]
        row: list[Any] = [c, per[0]["n"]]
        if many:
            for m in per:
                row += [m["precision"], m["recall"], m["fpr"], m["safe_fpr"]]
        else:
            m = per[0]
            row += [m.get("threshold"), m["flagged"], m["tp"], m["fp"], m["fn"], m["precision"], m["recall"], m["fpr"],
                    m["safe_fpr"]]
        rows.append(row)
    lines += table(header, rows, rule_before=len(names))
    lines.append("")

    fired = [a for a in ACTIONS if a == "allow" or any(r["actions"].get(a, {}).get("all") for r in reports)]
    outcomes = [s for s in STATUSES if s == "pass" or any(r["status"].get(s, {}).get("all") for r in reports)]
    outcomes += sorted({s for r in reports for s in r["status"]} - set(STATUSES))
    for title, key, keys in (("action", "actions", fired), ("status", "status", outcomes)):
        header = [title]
        for t in tags:
            header += [f"{t}safe", f"{t}unsafe"] + ([] if many else ["all"])
        rows = []
        for k in keys:
            row = [k]
            for r in reports:
                counts = r[key].get(k, {"safe": 0, "unsafe": 0, "all": 0})
                row += [counts["safe"], counts["unsafe"]] + ([] if many else [counts["all"]])
            rows.append(row)
        lines += table(header, rows)
        lines.append("")
    lines += [
        "flagged: the category triggered on the original prompt (first text round) or in the planner.",
        "FPR: FP / rows not labeled with the category; safe FPR: share of safe rows flagged with it.",
        "action: the strongest action triggered per prompt; status: the request's outcome.",
    ]
    return "\n".join(lines)


class _Bars:
    """One progress bar per policy on stderr, each closed before the next starts."""

    def __init__(self, enabled: bool, total: int):
        self.enabled, self.total = enabled, total
        self._bar: Any = None

    def __call__(self, policy: Any) -> Callable[[int], None] | None:
        self.close()
        if not self.enabled:
            return None
        self._bar = click.progressbar(length=self.total, label=f"{policy.name} {policy.version}",
                                      file=sys.stderr, show_pos=True, show_eta=True)
        self._bar.__enter__()
        return self._bar.update

    def close(self) -> None:
        if self._bar is not None:
            self._bar.__exit__(None, None, None)
            self._bar = None


@click.command("eval")
@click.argument("labeled", metavar="LABELED.csv", type=click.Path(dir_okay=True))
@click.option("-p", "--policy", "policies", multiple=True, metavar="POLICY",
              help="Policy file (or builtin:NAME); give it twice to compare two policies side by side. "
                   "[default: $ELENS_POLICY or builtin:default]")
@click.option("--label-column", default=None, metavar="NAME",
              help="Column holding the expected category id or 'safe' [default: category, label or expected, "
                   "the first present].")
@click.option("--split", default=None, metavar="NAME",
              help="Keep only the rows whose 'split' column is NAME (e.g. test).")
@click.option("--audit-log", type=click.Path(dir_okay=False), default=None,
              help="Keep the evaluation's audit records in this file. Default: a temporary file, deleted at the "
                   "end; the policy's audit.path and audit sinks are never written.")
@click.option("--json", "as_json", is_flag=True, help="Print the full report (with every mistake) as JSON.")
def eval_command(labeled: str, policies: tuple[str, ...], label_column: str | None, split: str | None,
                 audit_log: str | None, as_json: bool) -> None:
    """Score a policy on a labeled prompt set: per-category precision, recall and false-positive rate,
    and how often each action and outcome occurred.

    LABELED.csv is UTF-8 CSV with a header: a 'prompt' column and a 'category' column
    holding a category id of the policy or 'safe' (benchmarks/data/prompts.csv fits).
    A prompt counts as flagged for a category when a finding of that category
    triggered on the original prompt (first text round) or in the planner.
    """
    from ..evaluate import evaluate, read_labeled
    from ..policy import load_policy

    data = read_labeled(labeled, label_column=label_column, split=split)
    refs = policies or (os.environ.get("ELENS_POLICY", DEFAULT_POLICY),)
    if len(refs) > len(LETTERS):
        raise click.UsageError(f"at most {len(LETTERS)} policies at a time")
    loaded = [load_policy(ref) for ref in refs]
    bars = _Bars(sys.stderr.isatty(), len(data.rows))
    with tempfile.TemporaryDirectory(prefix="elens-eval-") as tmp:
        try:
            result = evaluate(data, loaded, audit_path=audit_log or os.path.join(tmp, "audit.jsonl"), progress=bars)
        finally:
            bars.close()
    result["audit_log"] = audit_log
    if as_json:
        click.echo(json.dumps(result, indent=2, ensure_ascii=False))
    else:
        click.echo(render(result))
