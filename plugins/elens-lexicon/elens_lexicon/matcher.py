"""Compile policy terms into matchers over the folded skeleton of a prompt.

A term word matches on word boundaries: its letters in order, each may repeat
(``nuuude``), with up to two in-word punctuation marks between them (``nu.de``,
``se*x``); never whitespace, so ``pen is`` does not become ``penis``. Words spelled
out letter by letter (``n u d e``) were already joined by the skeleton.

The words of a phrase may be joined by up to four non-letters (``pool  of-blood``,
``nakedwoman``), and the last word may take a plural ``s``/``es``.

Given a vocabulary of English words, misspelt term words are read too (``nkaed
woman``): :mod:`elens_lexicon.spelling` corrects a copy of the skeleton and the terms
and patterns run on it again; those hits are marked ``misspelt``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Iterable, Mapping

from .normalize import fold_term, readings, skeleton
from .spelling import Speller

_EDGE_BEFORE = r"(?<![^\W_])"  # not after a letter or digit
_EDGE_AFTER = r"(?![^\W_])"
_IN_WORD = r"[.\-_*~/\\'`^=+]{0,2}"  # punctuation people put inside a word
_BETWEEN_WORDS = r"[\W_]{0,4}"


def _word_regex(word: str, last: bool) -> str:
    compact = _IN_WORD.join(f"{re.escape(c)}+" for c in word)
    return compact + r"(?:e?s)?" if last else compact


def term_regex(folded: str) -> str:
    """The regular expression (over skeletons) for one folded term.

    Punctuation in a term separates words like a space does: ``self-harm`` matches
    ``self harm``, ``self-harm`` and ``selfharm``.
    """
    words = [w for w in re.split(r"[\W_]+", folded) if w]
    body = _BETWEEN_WORDS.join(_word_regex(w, i == len(words) - 1) for i, w in enumerate(words))
    return f"{_EDGE_BEFORE}{body}{_EDGE_AFTER}"


@dataclass(frozen=True)
class Match:
    category: str
    term: str  # the policy term (or pattern) that matched
    start: int  # span in the original text
    end: int
    misspelt: bool = False  # found only once a misspelt word was corrected


class Lexicon:
    """Terms and regular expressions per category, matched against folded text.

    ``allow`` lists benign phrases ("nude lipstick", "gore-tex"): a term hit that lies
    inside an allowed phrase is dropped. With a ``vocabulary`` of known words
    (:func:`elens_lexicon.spelling.english_words`), a word that is not in it and is one
    edit from a word of the terms or allowed phrases is read as that word (not with
    ``case_sensitive``).
    """

    def __init__(
        self,
        terms: Mapping[str, Iterable[str]],
        patterns: Mapping[str, Iterable[str]] | None = None,
        *,
        case_sensitive: bool = False,
        allow: Iterable[str] = (),
        vocabulary: frozenset[str] | None = None,
    ):
        self.casefold = not case_sensitive
        # One compiled alternation per category finds the hits; a term's own regex is
        # compiled only when a hit needs naming (compiling hundreds up front is most
        # of the check's load time), and only for terms that start with the hit's
        # first letter (every term's regex starts with its first letter).
        self._terms: dict[str, list[tuple[str, str, str]]] = {}
        self._any: dict[str, re.Pattern] = {}
        self._term_rx: dict[str, re.Pattern] = {}
        for category, items in terms.items():
            regexes = []
            for term in dict.fromkeys(t for t in items if t and t.strip()):
                folded = fold_term(term, self.casefold)
                first = _first(folded)
                if first:
                    regexes.append((term, term_regex(folded), first))
            if regexes:
                self._terms[category] = regexes
                self._any[category] = _alternation(regexes)
        flags = re.IGNORECASE if self.casefold else 0
        self._patterns = {
            category: [re.compile(p, flags) for p in items] for category, items in (patterns or {}).items() if items
        }
        allowed = [f for f in (fold_term(a, self.casefold) for a in allow) if _first(f)]
        self._allow = _alternation([(a, term_regex(a), _first(a)) for a in allowed]) if allowed else None
        # Patterns see the lighter fold, where "l" stays "l": "nude high heels" must be
        # allowed there as written, not as the full fold's "heeis".
        light = [f for f in (skeleton(a, casefold=self.casefold, leet=False)[0].strip() for a in allow) if _first(f)]
        self._light_allow = _alternation([(a, term_regex(a), _first(a)) for a in light]) if light else None
        self._speller = self._light_speller = None
        if vocabulary is not None and self.casefold:
            phrases = [t for items in terms.values() for t in items if t and t.strip()] + list(allow)
            targets = _targets(skeleton(p, leet=False)[0] for p in phrases)
            self._speller = Speller(targets, vocabulary, fold=True)
            self._light_speller = Speller(targets, vocabulary) if self._patterns else None

    def find(self, text: str) -> list[Match]:
        """Every term and pattern hit in ``text``, sorted by position, spans in ``text``."""
        found: dict[tuple[str, int, int], Match] = {}
        # A spelled-out run may or may not swallow a one-letter word ("a r s o n" is
        # "arson", "a n u d e" is "a nude"): read both ways when they differ.
        term_readings = readings(text, casefold=self.casefold)
        for folded, offsets in term_readings:
            self._find_terms(folded, offsets, found)
        misspelt: dict[tuple[str, int, int], Match] = {}
        if self._speller is not None:
            for folded, offsets in term_readings:
                for fixed, fixed_offsets, spans in self._speller.readings(text, folded, offsets):
                    self._find_terms(fixed, fixed_offsets, misspelt, spans)
        if self._patterns:
            # Patterns see the lighter fold, and it again with tripled letters squeezed.
            light_readings = readings(text, casefold=self.casefold, leet=False, spelled=False, squeeze=True)
            for light, light_offsets in light_readings:
                self._find_patterns(light, light_offsets, found)
            if self._light_speller is not None:
                for light, light_offsets in light_readings:
                    for fixed, fixed_offsets, spans in self._light_speller.readings(text, light, light_offsets):
                        self._find_patterns(fixed, fixed_offsets, misspelt, spans)
        for key, m in misspelt.items():
            found.setdefault(key, m)
        return sorted(found.values(), key=lambda m: (m.start, -m.end, m.category))

    def _find_patterns(self, light: str, offsets: list[int], found: dict, fixed: list | None = None) -> None:
        allowed = self._allowed(light, offsets, self._light_allow)
        for category, regexes in self._patterns.items():
            for rx in regexes:
                for m in rx.finditer(light):
                    if m.end() > m.start() and (fixed is None or _overlaps(m, fixed)):
                        # The label is what matched, folded ("s3x" -> "sex"), for the reviser.
                        self._add(found, allowed, category, fold_term(m.group(0), self.casefold) or m.group(0),
                                  offsets[m.start()], offsets[m.end() - 1] + 1, fixed is not None)

    @staticmethod
    def _allowed(folded: str, offsets: list[int], allow: re.Pattern | None) -> list[tuple[int, int]]:
        if allow is None:
            return []
        return [(offsets[m.start()], offsets[m.end() - 1] + 1) for m in allow.finditer(folded) if m.end() > m.start()]

    @staticmethod
    def _add(found: dict, allowed: list[tuple[int, int]], category: str, term: str, start: int, end: int,
             misspelt: bool = False) -> None:
        if any(a <= start and end <= b for a, b in allowed):
            return
        found.setdefault((category, start, end), Match(category, term, start, end, misspelt))

    def _term(self, regex: str) -> re.Pattern:
        compiled = self._term_rx.get(regex)
        if compiled is None:
            compiled = self._term_rx[regex] = re.compile(regex)
        return compiled

    def _find_terms(self, folded: str, offsets: list[int], found: dict, fixed: list | None = None) -> None:
        """Term hits in one reading; with ``fixed`` (spans of corrected words in a
        corrected reading) only the hits that take in a corrected word."""
        allowed = self._allowed(folded, offsets, self._allow)
        for category, combined in self._any.items():
            for m in combined.finditer(folded):
                if m.end() == m.start() or (fixed is not None and not _overlaps(m, fixed)):
                    continue
                piece = folded[m.start():m.end()]
                candidates = [t for t, rx, first in self._terms[category]
                              if first == piece[0] and self._term(rx).fullmatch(piece)]
                # "zombies" is its own term and also a plural of "zombie": the longest term wins.
                term = max(candidates, key=len) if candidates else piece
                self._add(found, allowed, category, term, offsets[m.start()], offsets[m.end() - 1] + 1,
                          fixed is not None)


def _first(folded: str) -> str:
    """The first letter or digit of a folded term: the first character its regex matches."""
    first = re.search(r"[^\W_]", folded)
    return first.group() if first else ""


def _alternation(regexes: list[tuple[str, str, str]]) -> re.Pattern:
    """One pattern for many term regexes (each ``_EDGE_BEFORE`` + its first letter +
    ...), grouped by first letter behind one edge test: Python's ``re`` tries the
    branches of an alternation one by one at every position, so hundreds of terms
    cost hundreds of tries per character; grouped, a word start costs one lookahead
    per letter and the terms of its own letter. Within a letter the terms keep their
    order, so the same branch wins as in the flat alternation."""
    by_letter: dict[str, list[str]] = {}
    for _, rx, first in regexes:
        by_letter.setdefault(first, []).append(rx.removeprefix(_EDGE_BEFORE))
    groups = "|".join(f"(?={re.escape(first)})(?:{'|'.join(f'(?:{rx})' for rx in items)})"
                      for first, items in by_letter.items())
    return re.compile(f"{_EDGE_BEFORE}(?:{groups})")


def _targets(phrases: Iterable[str]) -> set[str]:
    """The words a misspelt word may stand for: every word of the phrases, and the
    plural of each last word (a term's last word may take ``s``/``es``)."""
    out = set()
    for phrase in phrases:
        words = [w for w in re.split(r"[\W\d_]+", phrase) if w]
        out.update(words)
        if words:
            out.update((words[-1] + "s", words[-1] + "es"))
    return out


def _overlaps(m: re.Match, spans: list[tuple[int, int]]) -> bool:
    return any(m.start() < end and start < m.end() for start, end in spans)
