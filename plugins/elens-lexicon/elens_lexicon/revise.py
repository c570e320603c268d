"""The ``replace`` prompt reviser: the policy's replacement tables, applied to flagged spans."""

from __future__ import annotations

import re
from typing import Any, Sequence

from elens import Revision

from .check import build_lexicon
from .normalize import WEIGHT_NUMBER, fold_term

# Which indefinite article a word takes, where the first letter misleads.
_AN = ("hour", "honest", "honor", "honour", "heir")
_A = ("uni", "use", "usu", "uter", "eu", "one", "once", "ubiq")


def article_for(word: str) -> str:
    w = word.lower()
    if w.startswith(_AN):
        return "an"
    if w.startswith(_A):
        return "a"
    return "an" if w[:1] in ("a", "e", "i", "o", "u") else "a"


class ReplaceReviser:
    """Replaces or removes flagged spans using the policy's ``replacements`` tables.

    A finding with a span (from any text check) has that span replaced by the
    category's entry for the matched term, or removed when there is none. A finding
    without a span (a classifier's score) has the category's terms replaced wherever
    they occur. Only the words around an edit are tidied; the rest is kept as written.
    """

    options_schema = {"type": "object", "additionalProperties": False, "properties": {}}

    def __init__(self, options: dict, policy: Any):
        self.policy = policy
        self._tables = {
            cid: {fold_term(k): v for k, v in (cat.get("replacements") or {}).items()}
            for cid, cat in policy.categories.items()
        }
        self._lexicon = build_lexicon({}, policy)

    def replacement(self, category: str, term: str, written: str) -> str:
        """The table entry for ``term`` (or the text as written, or its singular), else ""."""
        table = self._tables.get(category, {})
        for key in (term, written):
            folded = fold_term(key)
            for k in (folded, folded[:-1] if folded.endswith("s") else None):
                if k and k in table:
                    return table[k]
        return ""

    def revise(self, prompt: str, findings: Sequence[Any]) -> Revision:
        edits: dict[tuple[int, int], tuple[str, str]] = {}  # span -> (category, term)
        spanless = {f.category for f in findings if not f.span}
        for f in findings:
            if f.span:
                start, end = f.span
                edits[(start, end)] = (f.category, f.label or prompt[start:end])
        if spanless:
            for m in self._lexicon.find(prompt):
                if m.category in spanless:
                    edits.setdefault((m.start, m.end), (m.category, m.term))
        kept: list[tuple[int, int]] = []  # outermost spans only
        for span in sorted(edits, key=lambda s: (s[0], -s[1])):
            if kept and span[0] < kept[-1][1]:
                continue
            kept.append(span)
        new, changes, syntax = prompt, [], False
        for start, end in reversed(kept):  # right to left keeps the offsets valid
            category, term = edits[(start, end)]
            written = prompt[start:end]
            after = self.replacement(category, term, written)
            changes.append((written, after))
            kept_syntax = _with_syntax(written, after)
            syntax = syntax or kept_syntax != after
            new = splice(new[:start], kept_syntax, new[end:])
        if syntax:
            new = " ".join(_EMPTY_GROUP.sub("", new).split())
        changes.reverse()
        reason = "; ".join(f"{b!r} -> {a!r}" if a else f"removed {b!r}" for b, a in changes)
        if not reason:
            reason = "nothing to replace for " + ", ".join(sorted({f.category for f in findings}))
        return Revision(new.strip(), reason=reason, negative_prompt=self.negative_prompt(), changes=tuple(changes))

    def negative_prompt(self) -> str | None:
        """The categories' ``negative_prompt`` phrases, de-duplicated, in policy order."""
        phrases = [p for cat in self.policy.categories.values() for p in (cat.get("negative_prompt") or [])]
        return ", ".join(dict.fromkeys(p.strip() for p in phrases if p.strip())) or None


# Image-generator syntax inside a flagged span: "(nude:1.3) woman" holds the term "nude
# woman" across a weight and a bracket. Brackets opened or closed outside the span, and
# a weight of a group closed outside it, stay around the replacement.
_SYNTAX = re.compile(r"\s*:\s*" + WEIGHT_NUMBER + r"(?=\s*[)\]}])|[()\[\]{}]")
_EMPTY_GROUP = re.compile(r"[(\[{]\s*(?::\s*" + WEIGHT_NUMBER + r")?\s*[)\]}]")


def _with_syntax(written: str, after: str) -> str:
    """``after`` with the brackets and weights of ``written`` that belong to groups
    beyond it: ``nude:1.3) woman`` -> ``woman in a dress:1.3)``."""
    opened: list[str] = []
    closing: list[str] = []
    for m in _SYNTAX.finditer(written):
        piece = m.group(0).strip()
        if piece in "([{":
            opened.append(piece)
        elif piece in ")]}":
            if opened:
                opened.pop()  # a group wholly inside the span goes with it
            else:
                closing.append(piece)
        elif not opened:  # a weight of a group that closes after the span
            closing.append(piece)
    if not closing and not opened:
        return after
    return after + "".join(closing) + (" " + "".join(opened) if opened else "")


_ARTICLE_END = re.compile(r"(?:^|(?<=\W))([Aa]n?|[Tt]he)(\s+)$")
_DANGLING = re.compile(r"^\s*(?:[,.;:!?)]|and\b|or\b|with\b|of\b|$)")


def splice(left: str, replacement: str, right: str) -> str:
    """``left + replacement + right``, with the seam tidied: spaces, a stray comma, a/an."""
    if replacement:
        m = _ARTICLE_END.search(left)
        if m and m.group(1).lower() in ("a", "an"):
            word = article_for(replacement)
            word = word.capitalize() if m.group(1)[0].isupper() else word
            left = left[:m.start(1)] + word + m.group(2)
        return left + replacement + right
    left_part, right_part = left.rstrip(), right.lstrip()
    m = _ARTICLE_END.search(left_part + " ")
    if m:
        if _DANGLING.match(right_part):  # "a , " -> drop the article
            left_part = left_part[:m.start(1)].rstrip()
        elif m.group(1).lower() in ("a", "an") and right_part:
            word = article_for(right_part)
            left_part = left_part[:m.start(1)] + (word.capitalize() if m.group(1)[0].isupper() else word)
    if not left_part:
        return re.sub(r"^[\s,;:]+", "", right_part)
    if not right_part:
        return re.sub(r"[\s,;:]+$", "", left_part)
    if right_part[0] in ",.;:!?)":
        if left_part[-1] in ",;:(":  # "x, , y" -> "x, y"
            right_part = right_part[1:].lstrip()
            return left_part + (" " + right_part if right_part else "")
        return left_part + right_part
    return left_part + " " + right_part
