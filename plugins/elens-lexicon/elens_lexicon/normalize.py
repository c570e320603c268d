"""Fold text to a matching skeleton that defeats common evasion, keeping an offset map.

``skeleton(text)`` returns the folded string and, for each of its characters, the
index of the original character it came from, so a match in the skeleton reports
its span in the text the user wrote. Folding steps, in order:

1. Unicode compatibility decomposition (NFKD): fullwidth and mathematical letters
   become plain ones, accents split off.
2. Combining marks and invisible format characters (zero-width space and joiners,
   soft hyphen, BOM) are dropped.
3. Confusable folding (Cyrillic and Greek look-alikes to Latin), then case folding
   unless the caller asks for case-sensitive matching.
4. Leetspeak inside words that contain letters: ``0→o 1→i 3→e 4→a 5→s 7→t 8→b 9→g``
   and ``@→a $→s !→i |→i +→t``.
5. Spelled-out words are joined: a run of three or more single characters split by
   spaces or punctuation (``n u d e``, ``n.u.d.e``); ``pen is`` stays two words.
6. ``l`` and ``i`` fold together (``k1ll`` and ``kill`` meet). Policy terms are folded
   the same way, so a term still matches its plain spelling.

``skeleton(text, leet=False)`` skips step 6: regular expressions from a policy run on
that lighter fold, so they keep their meaning (``years old`` stays as written).
Punctuation inside a word (``nu.de``) and repeated letters (``nuuuude``) are handled
by the matcher (:mod:`elens_lexicon.matcher`), not here.
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
    # Capitals, so case-sensitive matching folds them too
    "А": "A", "В": "B", "Е": "E", "К": "K", "М": "M", "Н": "H", "О": "O", "Р": "P", "С": "C", "Т": "T",
    "Х": "X", "Ѕ": "S", "І": "I", "Ј": "J", "Α": "A", "Β": "B", "Ε": "E", "Ζ": "Z", "Η": "H", "Ι": "I",
    "Κ": "K", "Μ": "M", "Ν": "N", "Ο": "O", "Ρ": "P", "Τ": "T", "Υ": "Y", "Χ": "X",
    # Latin look-alikes
    "ı": "i", "ł": "l", "ø": "o", "đ": "d", "ħ": "h", "ŀ": "l", "ß": "ss", "æ": "ae", "œ": "oe",
})

_LEET_DIGITS = {"0": "o", "1": "i", "3": "e", "4": "a", "5": "s", "7": "t", "8": "b", "9": "g"}
_LEET_SYMBOLS = {"@": "a", "$": "s", "!": "i", "|": "i", "+": "t", "€": "e", "£": "l"}


def _fold_char(c: str, casefold: bool) -> str:
    if c in _INVISIBLE:
        return ""
    out = []
    for d in unicodedata.normalize("NFKD", c):
        if unicodedata.combining(d) or unicodedata.category(d) == "Cf":
            continue
        out.append(d)
    folded = "".join(out).translate(_CONFUSABLES)
    return folded.casefold().translate(_CONFUSABLES) if casefold else folded


def _pairs(text: str, casefold: bool = True) -> list[tuple[str, int]]:
    pairs: list[tuple[str, int]] = []
    for i, c in enumerate(text):
        if c.isascii():  # the common case: skip the Unicode tables
            pairs.append((c.lower() if casefold else c, i))
            continue
        for d in _fold_char(c, casefold):
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


def fold_term(term: str, casefold: bool = True) -> str:
    """The skeleton of a policy term (no offsets needed)."""
    return "".join(c for c, _ in _final(_pairs(term, casefold))).strip()


def _final(pairs: list[tuple[str, int]]) -> list[tuple[str, int]]:
    pairs = _leet(pairs)
    return [("i" if c == "l" else c, i) for c, i in pairs]


_SEPARATOR = set(" \t.-_*~/\\'`^=+")


def _join_spelled(pairs: list[tuple[str, int]], articles: bool = True) -> list[tuple[str, int]]:
    """Drop the separators of spelled-out words: a run of three or more single
    characters split by the same separator each time (``n u d e``, ``n.u.d.e``).

    With ``articles``, an ``a`` or ``i`` at either end of a space-separated run of four
    or more stays a word of its own (``a n u d e woman``, ``b u l l y i n g a kid``).
    """
    out: list[tuple[str, int]] = []
    n, k = len(pairs), 0

    def single(i: int) -> bool:
        return pairs[i][0].isalnum() and (i == 0 or not pairs[i - 1][0].isalnum()) and (
            i + 1 >= n or not pairs[i + 1][0].isalnum())

    while k < n:
        if not single(k):
            out.append(pairs[k])
            k += 1
            continue
        run, sep, j = [k], None, k
        while True:
            s = j + 1
            while s < n and pairs[s][0] in _SEPARATOR and s - j <= 3:
                s += 1
            if s == j + 1 or s >= n or not single(s):
                break
            gap = "".join(c for c, _ in pairs[j + 1:s])
            if sep is None:
                sep = gap
            elif gap != sep:  # "s e x y / s t r i p" is two words
                break
            run.append(s)
            j = s
        if len(run) < 3:
            out.append(pairs[k])
            k += 1
            continue
        first, last = 0, len(run)
        if articles and sep.isspace():
            if pairs[run[0]][0] in "ai" and last - first >= 4:
                first = 1
            if pairs[run[-1]][0] in "ai" and last - first >= 4:
                last -= 1
        out.extend(pairs[run[0]:run[first]])  # a leading article and its space, as written
        out.extend(pairs[i] for i in run[first:last])
        if last < len(run):
            out.extend(pairs[run[last - 1] + 1:run[-1] + 1])
        k = run[-1] + 1
    return out


def _squeeze(pairs: list[tuple[str, int]]) -> list[tuple[str, int]]:
    """Letters repeated three times or more, once (``seeeexy`` -> ``sexy``)."""
    out: list[tuple[str, int]] = []
    for k, (c, i) in enumerate(pairs):
        if c.isalpha() and k >= 1 and pairs[k - 1][0] == c and (
                (k >= 2 and pairs[k - 2][0] == c) or (k + 1 < len(pairs) and pairs[k + 1][0] == c)):
            continue
        out.append((c, i))
    return out


def skeleton(
    text: str, *, casefold: bool = True, leet: bool = True, articles: bool = True, squeeze: bool = False
) -> tuple[str, list[int]]:
    """The folded text and, for each of its characters, the index in ``text`` it came from.

    Spelled-out words are joined (``n u d e`` -> ``nude``; ``articles``: see
    ``_join_spelled``). With ``leet=False`` (the fold policy regular expressions see)
    ``l`` stays ``l``; ``squeeze`` writes tripled letters once.
    """
    pairs = _join_spelled(_leet(_pairs(text, casefold)), articles)
    if leet:
        pairs = _final(pairs)
    if squeeze:
        pairs = _squeeze(pairs)
    return "".join(c for c, _ in pairs), [i for _, i in pairs]


def readable(text: str) -> str:
    """``text`` with evasion undone but words kept readable, for model-based checks:
    look-alikes and invisible marks folded, leetspeak undone, spelled-out words joined,
    letters repeated three times or more squeezed to one (``nuuuude`` -> ``nude``).
    No offsets: use :func:`skeleton` where spans matter."""
    return "".join(c for c, _ in _squeeze(_join_spelled(_leet(_pairs(text, casefold=True)))))
