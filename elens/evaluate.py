"""Score a policy on a labeled prompt set before rolling it out (``elens eval``).

A labeled set is a UTF-8 CSV file with a header row: a ``prompt`` column and a label
column (``category``, ``label`` or ``expected``; the first one present) holding, per
row, the id of the policy category the prompt belongs to or ``safe``. Other columns
are ignored, so ``benchmarks/data/prompts.csv`` reads as it is.

**What a policy predicts for a prompt**: the categories of the findings that
*triggered* on the user's original prompt (the first text round), plus those the
planner reported (named public figures). Later rounds check the revised prompt, whose
flagged words are gone, so they are not counted. A finding triggers when its score
reaches the category's text threshold, whatever its action (``allow`` and ``warn``
included). A prompt may be predicted several categories.

Per category C, over all rows: ``n`` rows labeled C, ``flagged`` rows predicted C,
TP = labeled and predicted C, FP = predicted C but labeled otherwise (``safe`` or
another category), FN = labeled C but not predicted C; precision = TP / flagged,
recall = TP / n, false-positive rate (FPR) = FP / (rows not labeled C), and safe FPR =
the share of ``safe`` rows predicted C (false alarms proper: FP also counts a prompt of
another unsafe category that C caught too). ``any unsafe`` is the same for "labeled
unsafe" against "some category predicted"; there FPR and safe FPR are both the share
of ``safe`` prompts flagged at all.

The action counted for a prompt is the strongest among its predicted findings
(``allow`` when nothing triggered); the status is the request's outcome (pass,
revised, refused). Both are counted apart for safe and unsafe prompts.

:func:`read_labeled` and :func:`score` are pure; :func:`evaluate` runs a
:class:`elens.Lens`.
"""

from __future__ import annotations

import csv
import difflib
import io
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterable, Sequence

from .errors import InputError
from .types import ACTIONS, action_rank

__all__ = [
    "SAFE",
    "LABEL_COLUMNS",
    "STATUSES",
    "LabeledPrompt",
    "LabeledSet",
    "read_labeled",
    "check_labels",
    "predicted_categories",
    "decisive_action",
    "score",
    "evaluate",
]

SAFE = "safe"
#: Label column names tried in order when none is given.
LABEL_COLUMNS = ("category", "label", "expected")
STATUSES = ("pass", "revised", "refused")
#: Prompts handed to ``Lens.check_prompts`` at a time (also how often progress moves).
CHUNK = 256


@dataclass(frozen=True)
class LabeledPrompt:
    """One row of a labeled set: the prompt, its expected category (or ``safe``), the file line it starts on."""

    prompt: str
    label: str
    line: int


@dataclass(frozen=True)
class LabeledSet:
    """A labeled set as read: where from, which columns, and the rows kept."""

    path: str
    rows: tuple[LabeledPrompt, ...]
    label_column: str
    label_index: int  # 1-based column number of the label column, for error messages
    prompt_index: int
    split: str | None = None

    def where(self, row: LabeledPrompt, column: str) -> str:
        index = self.label_index if column == self.label_column else self.prompt_index
        return f"{self.path}:{row.line}: column {index} ({column!r})"


# -- reading ------------------------------------------------------------------------
def _decode(path: str, raw: bytes) -> str:
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = raw.count(b"\n", 0, exc.start) + 1
        column = exc.start - (raw.rfind(b"\n", 0, exc.start) + 1) + 1
        bad = raw[exc.start:exc.start + 1].hex().upper()
        raise InputError(f"{path}:{line}: column {column}: not valid UTF-8 (byte 0x{bad}); "
                         f"save the file as UTF-8") from None
    return text.removeprefix("\ufeff")


def read_labeled(path: str | os.PathLike, *, label_column: str | None = None,
                 split: str | None = None) -> LabeledSet:
    """Read and check a labeled CSV file. Every defect raises :class:`InputError` naming file and line.

    ``split`` keeps only the rows whose ``split`` column equals it (the benchmark set
    has ``train`` and ``test``).
    """
    name = str(path)
    p = Path(path)
    if not p.exists():
        raise InputError(f"{name}: no such file")
    if p.is_dir():
        raise InputError(f"{name}: is a folder, expected a CSV file")
    try:
        raw = p.read_bytes()
    except OSError as exc:
        raise InputError(f"{name}: cannot read: {exc.strerror or exc}") from None
    text = _decode(name, raw)
    reader = csv.reader(io.StringIO(text, newline=""))
    records: list[tuple[int, list[str]]] = []
    start = 1
    try:
        for record in reader:
            if record and any(cell.strip() for cell in record):
                records.append((start, record))
            start = reader.line_num + 1
    except csv.Error as exc:
        raise InputError(f"{name}:{start}: not readable as CSV: {exc}") from None
    if not records:
        raise InputError(f"{name}:1: the file is empty; expected a header row with 'prompt' and 'category' columns")
    header_line, header = records[0]
    columns = [c.strip().lower() for c in header]
    shown = ", ".join(repr(c) for c in columns)
    if "prompt" not in columns:
        raise InputError(f"{name}:{header_line}: no 'prompt' column in the header (it has {shown})")
    if label_column is not None:
        label = label_column.strip().lower()
        if label not in columns:
            raise InputError(f"{name}:{header_line}: no {label_column!r} column in the header (it has {shown})")
    else:
        found = [c for c in LABEL_COLUMNS if c in columns]
        if not found:
            raise InputError(f"{name}:{header_line}: no label column in the header (it has {shown}); "
                             f"add a 'category' column holding a policy category id or 'safe' per row")
        label = found[0]
    if split is not None and "split" not in columns:
        raise InputError(f"{name}:{header_line}: --split needs a 'split' column (the header has {shown})")
    pi, li = columns.index("prompt"), columns.index(label)
    si = columns.index("split") if split is not None else None
    rows = []
    for line, record in records[1:]:
        if len(record) != len(columns):
            hint = " (quote a prompt that contains a comma)" if len(record) > len(columns) else ""
            raise InputError(f"{name}:{line}: the row has {len(record)} columns, the header has {len(columns)}{hint}")
        if si is not None and record[si].strip() != split:
            continue
        prompt, value = record[pi], record[li].strip()
        if not prompt.strip():
            raise InputError(f"{name}:{line}: column {pi + 1} ('prompt'): the prompt is empty")
        if not value:
            raise InputError(f"{name}:{line}: column {li + 1} ({label!r}): no label; "
                             f"write a category id, or 'safe' for a prompt that should pass")
        rows.append(LabeledPrompt(prompt, value, line))
    if not rows:
        what = f" with split {split!r}" if split is not None else ""
        raise InputError(f"{name}:{header_line}: no labeled rows{what} after the header")
    return LabeledSet(name, tuple(rows), label, li + 1, pi + 1, split)


def check_labels(data: LabeledSet, policy: Any) -> None:
    """Every label must be ``safe`` or a category of ``policy``."""
    categories = list(policy.categories)
    for row in data.rows:
        if row.label != SAFE and row.label not in policy.categories:
            close = difflib.get_close_matches(row.label, [SAFE, *categories], n=1)
            hint = f"; did you mean {close[0]!r}?" if close else ""
            raise InputError(f"{data.where(row, data.label_column)}: unknown label {row.label!r}: neither 'safe' "
                             f"nor a category of policy {policy.name} ({', '.join(categories)}){hint}")


# -- what a result says ---------------------------------------------------------------
def _predicting_findings(result: Any) -> tuple[Any, ...]:
    """The first round's findings plus the planner's (which follow the last round's in ``findings``)."""
    if not result.rounds:
        return tuple(result.findings)
    first, last = result.rounds[0][1], result.rounds[-1][1]
    findings = tuple(result.findings)
    if findings[:len(last)] == tuple(last):
        planned = findings[len(last):]
    else:
        planned = tuple(f for f in findings if f not in last)
    return tuple(first) + planned


def predicted_categories(result: Any) -> frozenset[str]:
    """Categories whose findings triggered on the original prompt (first text round) or in the planner."""
    return frozenset(f.category for f in _predicting_findings(result) if f.triggered)


def decisive_action(result: Any) -> str:
    """The strongest action among the predicting findings that triggered; ``allow`` when none did."""
    best = "allow"
    for f in _predicting_findings(result):
        if f.triggered and f.action in ACTIONS and action_rank(f.action) > action_rank(best):
            best = f.action
    return best


# -- scoring --------------------------------------------------------------------------
def _ratio(a: int, b: int) -> float | None:
    return round(a / b, 4) if b else None


def _confusion(truth: Sequence[bool], predicted: Sequence[bool]) -> dict[str, Any]:
    tp = sum(t and p for t, p in zip(truth, predicted))
    fp = sum(p and not t for t, p in zip(truth, predicted))
    fn = sum(t and not p for t, p in zip(truth, predicted))
    n, flagged, negatives = sum(truth), sum(predicted), len(truth) - sum(truth)
    return {"n": n, "flagged": flagged, "tp": tp, "fp": fp, "fn": fn,
            "precision": _ratio(tp, flagged), "recall": _ratio(tp, n), "fpr": _ratio(fp, negatives)}


def score(data: LabeledSet, results: Sequence[Any], policy: Any,
          categories: Iterable[str] | None = None) -> dict[str, Any]:
    """Compare ``results`` (one :class:`~elens.results.PromptResult` per row) with the labels.

    ``categories`` fixes which categories are reported (to line two policies up);
    by default those labeled in the data or predicted at least once, in policy order.
    """
    if len(results) != len(data.rows):
        raise ValueError(f"{len(results)} results for {len(data.rows)} rows")
    predicted = [predicted_categories(r) for r in results]
    labels = [row.label for row in data.rows]
    if categories is None:
        seen = set(labels) | set().union(*predicted)
        categories = [c for c in policy.categories if c in seen]
    safe = [label == SAFE for label in labels]
    per_category = {}
    for c in categories:
        entry = policy.categories.get(c) or {}
        per_category[c] = {
            **_confusion([label == c for label in labels], [c in p for p in predicted]),
            "safe_fpr": _ratio(sum(s and c in p for s, p in zip(safe, predicted)), sum(safe)),
            "threshold": (entry.get("thresholds") or {}).get("text"),
            "block_threshold": (entry.get("block_threshold") or {}).get("text"),
            "action": (entry.get("actions") or {}).get("text"),
        }
    unsafe = [label != SAFE for label in labels]
    actions = {a: {"safe": 0, "unsafe": 0, "all": 0} for a in ACTIONS}
    statuses = {s: {"safe": 0, "unsafe": 0, "all": 0} for s in STATUSES}
    failures = 0
    mistakes = []
    for row, result, pred, is_unsafe in zip(data.rows, results, predicted, unsafe):
        side = "unsafe" if is_unsafe else "safe"
        action = decisive_action(result)
        for table, key in ((actions, action), (statuses, result.status)):
            counts = table.setdefault(key, {"safe": 0, "unsafe": 0, "all": 0})
            counts[side] += 1
            counts["all"] += 1
        failures += bool(result.failures)
        expected = set() if row.label == SAFE else {row.label}
        if set(pred) != expected:
            mistakes.append({"line": row.line, "prompt": row.prompt, "label": row.label,
                             "predicted": sorted(pred), "action": action, "status": result.status})
    overall = _confusion(unsafe, [bool(p) for p in predicted])
    return {
        "policy": {"name": policy.name, "version": policy.version, "sha256": policy.sha256,
                   "source": str(policy.source)},
        "prompts": len(data.rows),
        "categories": per_category,
        "overall": {**overall, "safe_fpr": overall["fpr"]},
        "actions": actions,
        "status": statuses,
        "plugin_failures": failures,
        "mistakes": mistakes,
    }


def describe(data: LabeledSet) -> dict[str, Any]:
    """The labeled set in numbers: rows, safe, unsafe and rows per label."""
    counts: dict[str, int] = {}
    for row in data.rows:
        counts[row.label] = counts.get(row.label, 0) + 1
    safe = counts.get(SAFE, 0)
    return {"path": data.path, "label_column": data.label_column, "split": data.split,
            "prompts": len(data.rows), "safe": safe, "unsafe": len(data.rows) - safe,
            "labels": dict(sorted(counts.items()))}


# -- running ----------------------------------------------------------------------------
def without_sinks(policy: Any) -> Any:
    """The policy with ``audit.sinks`` emptied: an evaluation must not reach production sinks."""
    if not policy.audit.get("sinks"):
        return policy
    from .policy import Policy

    data = {**policy.data, "audit": {**policy.audit, "sinks": []}}
    return Policy.from_dict(data, source=policy.source)


def _validate(lens: Any, data: LabeledSet) -> None:
    """Refuse the set before anything runs if the lens would refuse one of its prompts as input."""
    for row in data.rows:
        try:
            lens.validate_prompt(row.prompt)
        except InputError as exc:
            raise InputError(f"{data.where(row, 'prompt')}: {exc}") from None


def run_prompts(lens: Any, data: LabeledSet, progress: Callable[[int], None] | None = None) -> list[Any]:
    """One :class:`PromptResult` per row, through ``lens.check_prompts`` in chunks (or one by one)."""
    batch = getattr(lens, "check_prompts", None)
    results: list[Any] = []
    rows = data.rows
    for start in range(0, len(rows), CHUNK):
        chunk = rows[start:start + CHUNK]
        if batch is not None:
            results.extend(batch([r.prompt for r in chunk]))
        else:
            for row in chunk:
                try:
                    results.append(lens.check_prompt(row.prompt))
                except InputError as exc:
                    raise InputError(f"{data.where(row, 'prompt')}: {exc}") from None
        if progress is not None:
            progress(len(chunk))
    return results


def evaluate(data: LabeledSet, policies: Sequence[Any], *, audit_path: str | os.PathLike,
             progress: Callable[[Any], Callable[[int], None] | None] | None = None,
             lens_factory: Callable[..., Any] | None = None) -> dict[str, Any]:
    """Run every row through each policy and score it; the audit records go to ``audit_path``.

    Returns ``{"data": describe(data), "policies": [score(...), ...]}``; the categories
    reported are the same for every policy, so the reports line up.
    """
    from .lens import Lens

    make = lens_factory or Lens
    for policy in policies:
        check_labels(data, policy)
    lenses: list[Any] = []
    runs = []
    try:
        for policy in policies:  # every input error surfaces before any model loads
            lenses.append(make(without_sinks(policy), audit_path=audit_path))
            if hasattr(lenses[-1], "validate_prompt"):
                _validate(lenses[-1], data)
        for policy, lens in zip(policies, lenses):
            started = time.perf_counter()
            results = run_prompts(lens, data, progress(policy) if progress else None)
            runs.append((policy, results, time.perf_counter() - started))
    finally:
        for lens in lenses:
            lens.close()
    labeled = {row.label for row in data.rows}
    predicted: set[str] = set()
    for _policy, results, _ in runs:
        for r in results:
            predicted |= predicted_categories(r)
    order: list[str] = []
    for policy, _, _ in runs:
        order += [c for c in policy.categories if c in labeled | predicted and c not in order]
    reports = []
    for policy, results, seconds in runs:
        report = score(data, results, policy, order)
        report["seconds"] = round(seconds, 3)
        report["prompts_per_second"] = round(len(results) / seconds, 1) if seconds > 0 else None
        report["audit_sinks_skipped"] = len(policy.audit.get("sinks") or [])
        reports.append(report)
    return {"data": describe(data), "policies": reports}
