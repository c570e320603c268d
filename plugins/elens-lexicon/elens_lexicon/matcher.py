"""Compile policy terms into matchers over the folded skeleton of a prompt."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Iterable

from .normalize import fold_term, skeleton

_WORD = "a-z0-9"


_SEP = r"[\s.\-_*~/\\,:;'\"`^=]{0,2}"


def _term_regex(folded: str) -> str:
    """Each letter may repeat (``nuuude``) and be split off by up to two separators
    (``n.u.d.e``, ``n u d e``); words of a phrase may be joined by any separators;
    simple plurals match too."""
    parts = []
    for word in folded.split():
        parts.append(_SEP.join(f"{re.escape(c)}+" for c in word))
    body = r"[\W_]*".join(parts)
    return rf"(?<![{_WORD}]){body}(?:e?s)?(?![{_WORD}])"


@dataclass(frozen=True)
class Match:
    category: str
    term: str
    start: int  # in the original text
    end: int


class Lexicon:
    """Terms and regular expressions per category, matched against folded text."""

    def __init__(self, terms: dict[str, Iterable[str]], patterns: dict[str, Iterable[str]]):
        self._terms: dict[str, list[tuple[str, re.Pattern]]] = {}
        self._any: dict[str, re.Pattern] = {}
        for category, items in terms.items():
            compiled = []
            for term in dict.fromkeys(t for t in items if t and t.strip()):
                folded = fold_term(term)
                if folded:
                    compiled.append((term, re.compile(_term_regex(folded))))
            if compiled:
                self._terms[category] = compiled
                self._any[category] = re.compile("|".join(f"(?:{p.pattern})" for _, p in compiled))
        self._patterns = {
            category: [re.compile(p, re.IGNORECASE) for p in items] for category, items in patterns.items() if items
        }

    def find(self, text: str) -> list[Match]:
        folded, offsets = skeleton(text)
        matches: list[Match] = []
        for category, combined in self._any.items():
            for m in combined.finditer(folded):
                if m.end() == m.start():
                    continue
                piece = folded[m.start():m.end()]
                candidates = [t for t, rx in self._terms[category] if rx.fullmatch(piece)]
                # "zombies" is its own term and also a plural of "zombie": the longest term wins.
                term = max(candidates, key=len) if candidates else piece
                matches.append(Match(category, term, offsets[m.start()], offsets[m.end() - 1] + 1))
        for category, regexes in self._patterns.items():
            for rx in regexes:
                for m in rx.finditer(text):
                    if m.end() > m.start():
                        matches.append(Match(category, rx.pattern, m.start(), m.end()))
        matches.sort(key=lambda m: (m.start, -m.end))
        return matches
