"""Fold text to a matching skeleton that defeats common evasion, keeping an offset map.

``skeleton(text)`` returns the folded string and, for each of its characters, the
index of the original character it came from, so a match in the skeleton reports
its span in the text the user wrote. Folding steps, in order:

1. Unicode compatibility decomposition (NFKD): fullwidth and mathematical letters
   become plain ones, accents split off.
2. Combining marks and invisible format characters (zero-width space and joiners,
   soft hyphen, BOM) are dropped.
3. Case folding, then confusable folding: Cyrillic and Greek look-alikes to Latin.
4. Leetspeak inside words that contain letters: ``0→o 1→i 3→e 4→a 5→s 7→t 8→b 9→g``
   and ``@→a $→s !→i |→i +→t``.
5. ``l`` and ``i`` fold together (``k1ll`` and ``kill`` meet). Policy terms are folded
   the same way, so a term still matches its plain spelling.
Separators inside words (``n.u.d.e``, ``n u d e``, ``se*x``) and repeated letters
(``nuuuude``) are handled by the matcher: between the letters of a term it allows up
to two separator characters, and every letter may repeat.
"""

from __future__ import annotations

import re
import unicodedata

_INVISIBLE = {"\u200b", "\u200c", "\u200d", "\u2060", "\ufeff", "\u00ad", "\u180e", "\u2061", "\u2062", "\u2063"}

_CONFUSABLES = str.maketrans({
    # Cyrillic
    "а": "a", "в": "b", "е": "e", "ё": "e", "к": "k", "м": "m", "н": "h", "о": "o", "р": "p", "с": "c",
    "т": "t", "у": "y", "х": "x", "ѕ": "s", "і": "i", "ї": "i", "ј": "j", "ԁ": "d", "һ": "h", "ԛ": "q",
    "ԝ": "w", "ү": "y", "ɡ": "g", "ո": "n", "ս": "u", "ց": "g",
    # Greek
    "α": "a", "β": "b", "γ": "y", "ε": "e", "η": "n", "ι": "i", "κ": "k", "ν": "v", "ο": "o", "ρ": "p",
    "τ": "t", "υ": "u", "χ": "x", "ω": "w", "ς": "s", "σ": "o", "μ": "u",
    # Latin look-alikes
    "ı": "i", "ł": "l", "ø": "o", "đ": "d", "ħ": "h", "ŀ": "l", "ß": "ss", "æ": "ae", "œ": "oe",
})

_LEET_DIGITS = {"0": "o", "1": "i", "3": "e", "4": "a", "5": "s", "7": "t", "8": "b", "9": "g"}
_LEET_SYMBOLS = {"@": "a", "$": "s", "!": "i", "|": "i", "+": "t", "€": "e", "£": "l"}


def _fold_char(c: str) -> str:
    if c in _INVISIBLE:
        return ""
    out = []
    for d in unicodedata.normalize("NFKD", c):
        if unicodedata.combining(d) or unicodedata.category(d) == "Cf":
            continue
        out.append(d)
    return "".join(out).casefold().translate(_CONFUSABLES)


def _pairs(text: str) -> list[tuple[str, int]]:
    pairs: list[tuple[str, int]] = []
    for i, c in enumerate(text):
        for d in _fold_char(c):
            pairs.append((d, i))
    return pairs


def _leet(pairs: list[tuple[str, int]]) -> list[tuple[str, int]]:
    """Replace leet characters in tokens that also contain letters."""
    out = list(pairs)
    n = len(out)
    start = 0
    while start < n:
        if out[start][0].isspace():
            start += 1
            continue
        end = start
        while end < n and not out[end][0].isspace():
            end += 1
        token = [c for c, _ in out[start:end]]
        if any(c.isalpha() for c in token):
            for k in range(start, end):
                c = out[k][0]
                if c in _LEET_DIGITS:
                    out[k] = (_LEET_DIGITS[c], out[k][1])
                elif c in _LEET_SYMBOLS:
                    before = k > start and (out[k - 1][0].isalnum())
                    after = k + 1 < end and (out[k + 1][0].isalnum() or out[k + 1][0] in _LEET_DIGITS)
                    # "wow!" keeps its "!": a symbol only counts when a letter follows it, or sits on both sides.
                    if after or (before and c not in "!|"):
                        out[k] = (_LEET_SYMBOLS[c], out[k][1])
        start = end
    return out


def fold_term(term: str) -> str:
    """The skeleton of a policy term (no offsets needed)."""
    return "".join(c for c, _ in _final(_pairs(term))).strip()


def _final(pairs: list[tuple[str, int]]) -> list[tuple[str, int]]:
    pairs = _leet(pairs)
    return [("i" if c == "l" else c, i) for c, i in pairs]


def skeleton(text: str) -> tuple[str, list[int]]:
    """The folded text and, for each of its characters, the original index."""
    pairs = _final(_pairs(text))
    return "".join(c for c, _ in pairs), [i for _, i in pairs]
