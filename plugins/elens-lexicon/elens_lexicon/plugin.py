"""The hook implementations: the text check ``lexicon`` and the reviser ``replace``."""

from __future__ import annotations

import re
from typing import Any, Sequence

from elens import OptionsError, Revision, Signal, hookimpl

from .matcher import Lexicon
from .normalize import fold_term

_OPTIONS = {
    "type": "object",
    "additionalProperties": False,
    "properties": {
        "categories": {"type": "array", "items": {"type": "string"}},
        "extra_terms": {"type": "object", "additionalProperties": {"type": "array", "items": {"type": "string"}}},
        "score": {"type": "number", "minimum": 0, "maximum": 1},
    },
}


def _lexicon(options: dict, policy: Any) -> Lexicon:
    categories = options.get("categories") or list(policy.categories)
    for i, cid in enumerate(categories):
        if cid not in policy.categories:
            raise OptionsError(f"categories.{i}", f"unknown category {cid!r}")
    extra = options.get("extra_terms") or {}
    for cid in extra:
        if cid not in policy.categories:
            raise OptionsError(f"extra_terms.{cid}", f"unknown category {cid!r}")
    terms = {c: list(policy.categories[c].get("terms") or []) + list(extra.get(c, [])) for c in categories}
    patterns = {c: list(policy.categories[c].get("patterns") or []) for c in categories}
    return Lexicon(terms, patterns)


class LexiconCheck:
    """Flags the policy's terms, phrases and patterns, after folding evasion tricks away.

    Each hit is a signal with the span of the original text and the term as label.
    """

    options_schema = _OPTIONS

    def __init__(self, options: dict, policy: Any):
        self.lexicon = _lexicon(options, policy)
        # A term is strong evidence, not certainty: 0.9 stays under the default policy's
        # block thresholds (0.95+), so a listed term revises rather than refuses.
        self.score = float(options.get("score", 0.9))

    def check(self, prompts: Sequence[str]) -> list[list[Signal]]:
        return [
            [
                Signal(m.category, self.score, span=(m.start, m.end), label=m.term,
                       reason=f"matched {m.term!r} as {prompt[m.start:m.end]!r}")
                for m in self.lexicon.find(prompt)
            ]
            for prompt in prompts
        ]


class ReplaceReviser:
    """Replaces or removes flagged spans using the policy's replacement tables.

    A finding with a span (from any text check) has that span replaced: by the
    category's ``replacements`` entry for the matched term, else removed. A finding
    without a span (a classifier's score, an image finding) has the category's
    terms removed wherever they occur. The rest of the prompt is kept.
    """

    options_schema = {"type": "object", "additionalProperties": False, "properties": {}}

    def __init__(self, options: dict, policy: Any):
        self.policy = policy
        self._replacements = {
            cid: {fold_term(k): v for k, v in (cat.get("replacements") or {}).items()}
            for cid, cat in policy.categories.items()
        }
        self._lexicon = _lexicon({}, policy)

    def _replacement(self, category: str, term: str) -> str:
        table = self._replacements.get(category, {})
        return table.get(fold_term(term), table.get(fold_term(term).rstrip("s"), ""))

    def revise(self, prompt: str, findings: Sequence[Any]) -> Revision:
        edits: dict[tuple[int, int], tuple[str, str]] = {}  # span -> (category, term)
        spanless = {f.category for f in findings if not f.span}
        for f in findings:
            if f.span:
                edits[tuple(f.span)] = (f.category, f.label or prompt[f.span[0]:f.span[1]])
        if spanless:
            for m in self._lexicon.find(prompt):
                if m.category in spanless:
                    edits[(m.start, m.end)] = (m.category, m.term)
        # Drop spans nested in others; apply right to left so offsets stay valid.
        spans = sorted(edits, key=lambda s: (s[0], -s[1]))
        kept: list[tuple[int, int]] = []
        for span in spans:
            if kept and span[0] < kept[-1][1]:
                continue
            kept.append(span)
        new = prompt
        changes = []
        for start, end in reversed(kept):
            category, term = edits[(start, end)]
            replacement = self._replacement(category, term)
            changes.append((prompt[start:end], replacement))
            new = new[:start] + replacement + new[end:]
        new = tidy(new)
        changes.reverse()
        reason = "; ".join(
            f"{before!r} -> {after!r}" if after else f"removed {before!r}" for before, after in changes
        ) or "nothing to replace: " + ", ".join(sorted({f.category for f in findings}))
        return Revision(new, reason=reason, negative_prompt=self.negative_prompt(), changes=tuple(changes))

    def negative_prompt(self) -> str | None:
        phrases = [p for cat in self.policy.categories.values() for p in (cat.get("negative_prompt") or [])]
        return ", ".join(dict.fromkeys(phrases)) or None


def tidy(text: str) -> str:
    """Repair what removing words leaves behind: spaces, stray commas, a/an."""
    text = re.sub(r"\s+", " ", text)
    text = re.sub(r"\s+([,.;:!?])", r"\1", text)
    text = re.sub(r"([,;:])(\s*[,;:])+", r"\1", text)
    text = re.sub(r"^[\s,;:]+|[\s,;:]+$", "", text)
    text = re.sub(r"\b(a|an|the)\s+(?=(?:and|or|with|of|in|on|at)\b|[,.;:]|$)", "", text, flags=re.I)

    def article(m: re.Match) -> str:
        word, nxt = m.group(1), m.group(2)
        vowel = nxt[0].lower() in "aeiou"
        fixed = "an" if vowel else "a"
        return (fixed.capitalize() if word[0].isupper() else fixed) + " " + nxt

    text = re.sub(r"\b([Aa]n?) (\w+)", article, text)
    return re.sub(r"\s+", " ", text).strip()


@hookimpl
def register_text_checks(register):
    register("lexicon", LexiconCheck)


@hookimpl
def register_prompt_revisers(register):
    register("replace", ReplaceReviser)
