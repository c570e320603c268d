"""Screen candidate examples for a zero-shot ``semantic`` check before they go into a
policy (``elens examples screen``).

A zero-shot category scores a prompt by its nearest example, so one example worded
too broadly ("tourists taking selfies on a sacred burial ground") flags every prompt
near it ("tourists taking selfies at the Eiffel Tower"). This module answers, for
each candidate, what adding it alone would do to a set of labeled prompts: which safe
prompts it would lift over the category's threshold, and how many prompts of its
category it would newly catch. Adding several candidates does the union of what each
does alone: a category's score is a highest similarity, so candidates do not interact.

The prompts are read exactly as the check reads them (allowed phrases and style tags
out, disguises undone, windows of long prompts), and each candidate's similarity to a
prompt goes through the check's counterexamples and calibration, with the check's own
model (for ``engine: onnxruntime-int8``, the int8 model's scores, without the float
recheck of ``recheck_margin``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

from elens import InputError

from ._csv import read_rows
from .checks import _best_view, _less_if_harmless


@dataclass
class Screened:
    """What adding one candidate example would do."""

    category: str
    example: str
    threshold: float
    #: safe prompts under the threshold now and at or over it with the candidate: (prompt, score)
    lifted: list[tuple[str, float]] = field(default_factory=list)
    #: the highest score the candidate would give any safe prompt, and that prompt
    highest_safe: tuple[str, float] | None = None
    #: prompts labeled with the category under the threshold now, at or over it with the candidate
    caught: list[str] = field(default_factory=list)
    #: prompts labeled with the category under the threshold now
    missed: int = 0

    @property
    def ok(self) -> bool:
        return not self.lifted

    def as_dict(self) -> dict[str, Any]:
        return {"category": self.category, "example": self.example, "threshold": self.threshold, "ok": self.ok,
                "lifted": [{"prompt": p, "score": round(s, 4)} for p, s in self.lifted],
                "highest_safe": None if self.highest_safe is None else
                {"prompt": self.highest_safe[0], "score": round(self.highest_safe[1], 4)},
                "caught": self.caught, "missed_before": self.missed}


def read_candidates(path: str | Path, categories: Sequence[str]) -> list[tuple[str, str]]:
    """Rows of ``category,example``; a bad row is a one-line error naming file and line."""
    out: list[tuple[str, str]] = []
    for line, row in read_rows(path, ("category", "example")):
        if not row["example"]:
            raise InputError(f"{path}:{line}: example: empty")
        if row["category"] not in categories:
            raise InputError(f"{path}:{line}: category: {row['category']!r} is not one the semantic check scores "
                             f"({', '.join(categories)})")
        out.append((row["category"], row["example"]))
    return out


def screen(check: Any, thresholds: dict[str, float], candidates: Sequence[tuple[str, str]],
           prompts: Sequence[str], labels: Sequence[str]) -> list[Screened]:
    """Each candidate (category, example) against ``prompts`` (labels: ``safe`` or a
    category id) for the zero-shot :class:`~elens_text.checks.SemanticCheck` ``check``;
    a category's threshold comes from ``thresholds`` (the check's ``min_probability``
    when that is higher: under it the check reports nothing)."""
    import numpy as np

    texts, owners = check.views(prompts)
    emb = check.embedder(texts)
    _, best, _, harmless, _ = check._similarities(emb)
    cand = check.embedder([example for _, example in candidates])
    labels = np.asarray(labels)
    safe = np.flatnonzero(labels == "safe")

    def scores(similarity: Any, j: int) -> Any:
        # as the check scores: the counterexamples' discount, calibration, best view
        scored = check._calibrate(_less_if_harmless(similarity, harmless[:, j]))
        return np.minimum(_best_view(scored[:, None], owners, len(prompts))[0][:, 0], check.max_score)

    out = []
    for (category, example), vector in zip(candidates, cand):
        j = check.categories.index(category)
        threshold = max(thresholds[category], check.min_probability)
        before = scores(best[:, j], j)
        after = scores(np.maximum(best[:, j], emb @ vector), j)
        result = Screened(category, example, threshold)
        if len(safe):
            top = safe[int(np.argmax(after[safe]))]
            result.highest_safe = (prompts[top], float(after[top]))
        lifted = safe[(after[safe] >= threshold) & (before[safe] < threshold)]
        result.lifted = sorted(((prompts[i], float(after[i])) for i in lifted), key=lambda x: -x[1])
        own = np.flatnonzero((labels == category) & (before < threshold))
        result.missed = len(own)
        result.caught = [prompts[i] for i in own if after[i] >= threshold]
        out.append(result)
    return out
