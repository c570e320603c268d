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
   and ``@→a $→s !→i |→l +→t``; emoji letters (``🅽``, ``🇳``, ``⭕``) become letters.
5. Spelled-out words are joined: a run of three or more single characters split by
   spaces or punctuation (``n u d e``, ``n.u.d.e``); ``pen is`` stays two words.
6. ``l`` and ``i`` fold together (``k1ll`` and ``kill`` meet). Policy terms are folded
   the same way, so a term still matches its plain spelling.

``skeleton(text, leet=False)`` skips step 6: regular expressions from a policy run on
that lighter fold, so they keep their meaning (``years old`` stays as written).
Punctuation inside a word (``nu.de``) and repeated letters (``nuuuude``) are handled
by the matcher (:mod:`elens_lexicon.matcher`), not here. ``readings(text)`` gives the
skeletons worth matching against: the one above, and the others a spelled-out run or
stretched letters call for.
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
    # more of Unicode's confusables: Cyrillic and Greek letters that pass for Latin ones
    "п": "n", "г": "r", "ӏ": "l", "Ӏ": "l", "ѵ": "v", "ѡ": "w", "ϲ": "c", "ϳ": "j", "ԍ": "g", "Ь": "b",
    "ь": "b", "м": "m", "ԋ": "h", "ɑ": "a", "ɩ": "i", "ʋ": "u", "ν": "v", "ϱ": "p", "ϰ": "k", "ʙ": "b",
    "Ϲ": "C", "Ԍ": "G", "Ѵ": "V", "Ԝ": "W", "Ԛ": "Q", "Ԁ": "D",
    # Armenian
    "օ": "o", "հ": "h", "ս": "u", "ց": "g", "ո": "n",
    # small capitals (a "fancy text" style)
    "ᴀ": "a", "ᴄ": "c", "ᴅ": "d", "ᴇ": "e", "ꜰ": "f", "ɢ": "g", "ʜ": "h", "ɪ": "i", "ᴊ": "j", "ᴋ": "k",
    "ʟ": "l", "ᴍ": "m", "ɴ": "n", "ᴏ": "o", "ᴘ": "p", "ǫ": "q", "ʀ": "r", "ꜱ": "s", "ᴛ": "t", "ᴜ": "u",
    "ᴠ": "v", "ᴡ": "w", "ʏ": "y", "ᴢ": "z",
    # emoji that stand for letters
    "⭕": "o", "⭘": "o", "◯": "o", "○": "o", "❌": "x", "❎": "x", "✖": "x", "✕": "x", "✗": "x", "✘": "x",
    "❗": "i", "❕": "i", "💲": "$",
    # Latin look-alikes
    "ı": "i", "ł": "l", "ø": "o", "đ": "d", "ħ": "h", "ŀ": "l", "ß": "ss", "æ": "ae", "œ": "oe",
})
# Emoji letters: regional indicators and the negative circled and squared capitals
# (Unicode gives them no compatibility decomposition, so NFKD leaves them alone).
_EMOJI_LETTERS = {0x1F1E6: 26, 0x1F150: 26, 0x1F170: 26}
# Marks that change how a character looks, not which it is: variation selectors
# (U+FE0F, the emoji style), skin tones, the keycap and other enclosing marks.
_DROP_CATEGORIES = {"Mn", "Me", "Cf"}

_LEET_DIGITS = {"0": "o", "1": "i", "3": "e", "4": "a", "5": "s", "7": "t", "8": "b", "9": "g"}
_LEET_SYMBOLS = {"@": "a", "$": "s", "!": "i", "|": "l", "+": "t", "€": "e", "£": "l"}
_LEET_CHARS = frozenset(_LEET_DIGITS) | frozenset(_LEET_SYMBOLS)


def _emoji_letter(c: str) -> str | None:
    o = ord(c)
    for base, n in _EMOJI_LETTERS.items():
        if base <= o < base + n:
            return chr(ord("a") + o - base)
    return None


def _fold_char(c: str, casefold: bool) -> str:
    if c in _INVISIBLE:
        return ""
    letter = _emoji_letter(c)
    if letter is not None:
        return letter
    if 0x1F3FB <= ord(c) <= 0x1F3FF:  # skin-tone modifiers
        return ""
    if ord(c) in _CONFUSABLES:  # before NFKD, which reads some look-alikes otherwise (lunate sigma "ϲ" as "σ")
        folded = c.translate(_CONFUSABLES)
        return folded.casefold() if casefold else folded
    out = []
    for d in unicodedata.normalize("NFKD", c):
        if unicodedata.combining(d) or unicodedata.category(d) in _DROP_CATEGORIES:
            continue
        out.append(d)
    folded = "".join(out).translate(_CONFUSABLES)
    return folded.casefold().translate(_CONFUSABLES) if casefold else folded


def _pairs(text: str, casefold: bool = True) -> list[tuple[str, int]]:
    if text.isascii():  # most prompts: one character each, no Unicode tables
        pairs = list(zip(text.lower() if casefold else text, range(len(text))))
        return _drop_weights(pairs) if ":" in text else pairs
    pairs = []
    for i, c in enumerate(text):
        if c.isascii():  # the common case: skip the Unicode tables
            pairs.append((c.lower() if casefold else c, i))
            continue
        for d in _fold_char(c, casefold):
            pairs.append((d, i))
    return _drop_weights(pairs) if ":" in text else pairs


# The number of an attention weight as image-generator front ends write it, "(nude:1.3)",
# "[cat:.5]", "(dog:+1.2)"; shared with the reviser and the model checks' views.
WEIGHT_NUMBER = r"[+-]?(?:\d(?:\.\d+)?|\.\d+)"
# A weight is no part of the words, and leetspeak would read its digits as letters ("nude:ie").
_WEIGHT = re.compile(r"(?<=[^\W_])\s*:\s*" + WEIGHT_NUMBER + r"(?=\s*[)\]}>])")


def _drop_weights(pairs: list[tuple[str, int]]) -> list[tuple[str, int]]:
    joined = "".join(c for c, _ in pairs)  # one character per pair
    drop = {k for m in _WEIGHT.finditer(joined) for k in range(m.start(), m.end())}
    return [p for k, p in enumerate(pairs) if k not in drop] if drop else pairs


# A number with a unit is not leetspeak: "8k", "35mm", "1080p", "3d", "1920s", "19th".
_UNIT = re.compile(r"\d+(?:[.,]\d+)?(?:k|mm|cm|m|km|p|px|d|x|s|th|st|nd|rd|fps|mp|hz|am|pm|in|ft|kg|lb|yo|gb|mb)")


def _leet(pairs: list[tuple[str, int]]) -> list[tuple[str, int]]:
    """Replace leet characters in tokens that also contain letters (not "8k", "35mm")."""
    out = list(pairs)
    if _LEET_CHARS.isdisjoint(c for c, _ in pairs):  # most prompts: nothing to read
        return out
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
        if any(c.isalpha() for c in token) and not _UNIT.fullmatch("".join(token).rstrip(",.;:!?)").lower()):
            for k in range(start, end):
                c = out[k][0]
                if c in _LEET_DIGITS:
                    out[k] = (_LEET_DIGITS[c], out[k][1])
                elif c in _LEET_SYMBOLS:
                    before = k > start and (out[k - 1][0].isalnum())
                    after = k + 1 < end and (out[k + 1][0].isalnum() or out[k + 1][0] in _LEET_DIGITS)
                    # "wow!" keeps its "!": a symbol counts when a letter follows it, or (not "!") after one.
                    if after or (before and c != "!"):
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
# Three single characters (alphanumeric: [^\W_]), each pair split by one to three
# separators: every run `_join_spelled` joins has one, so text without it is left alone.
_SPELLED = re.compile(r"(?<![^\W_])[^\W_](?:[" + re.escape("".join(sorted(_SEPARATOR))) + r"]{1,3}[^\W_](?![^\W_])){2}")


def _join_spelled(pairs: list[tuple[str, int]], articles: bool = True) -> list[tuple[str, int]]:
    """Drop the separators of spelled-out words: a run of three or more single
    characters split by the same separator each time (``n u d e``, ``n.u.d.e``).

    With ``articles``, an ``a`` or ``i`` at either end of a space-separated run of four
    or more stays a word of its own (``a n u d e woman``, ``b u l l y i n g a kid``).
    """
    if not _SPELLED.search("".join(c for c, _ in pairs)):  # most prompts: nothing spelled out
        return pairs
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


def _squeeze(pairs: list[tuple[str, int]], known: frozenset[str] | None = None) -> list[tuple[str, int]]:
    """Letters repeated three times or more, once (``seeeexy`` -> ``sexy``); but a word
    that is one letter three times stays, for it is an acronym (``kkk``, ``xxx``).
    With a vocabulary (``known``), twice where that makes a known word: ``teeeen`` is
    "teen", not "ten"; ``weeeed`` "weed", not "wed"."""
    if not _TRIPLED.search("".join(c for c, _ in pairs)):  # most prompts: no letter three times
        return pairs
    out: list[tuple[str, int]] = []
    twice: list[tuple[int, tuple[str, int]]] = []  # (where in out, the letter's second copy)
    n = len(pairs)
    k = 0
    while k < n:
        c = pairs[k][0]
        end = k + 1
        while end < n and pairs[end][0] == c:
            end += 1
        whole_word = (k == 0 or not pairs[k - 1][0].isalpha()) and (end == n or not pairs[end][0].isalpha())
        if c.isalpha() and end - k >= 3 and not (whole_word and end - k == 3):
            out.append(pairs[k])
            twice.append((len(out) - 1, pairs[k + 1]))
        else:
            out.extend(pairs[k:end])
        k = end
    if not known or not twice:
        return out
    from .spelling import is_known  # late: spelling reads skeletons

    letters = "".join(c for c, _ in out)
    doubled: set[int] = set()
    for m in re.finditer(r"[^\W\d_]+", letters):
        runs = [t for t in twice if m.start() <= t[0] < m.end()]
        if len(runs) > 3:
            continue
        # the most letters doubled first: "wed" is a word too, but not what "weeeed"
        # meant; an inflection only where the single letters make no word ("yesss" is
        # "yes", though "yess" would read as the plural of "yes")
        single = is_known(m.group(0), known)
        for mask in sorted(range(1, 1 << len(runs)), key=lambda x: -bin(x).count("1")):
            chosen = {runs[b][0] for b in range(len(runs)) if mask >> b & 1}
            trial = "".join(c * 2 if m.start() + i in chosen else c for i, c in enumerate(m.group(0)))
            if trial in known or (not single and is_known(trial, known)):
                doubled |= chosen
                break
    if not doubled:
        return out
    second = dict(twice)
    return [p for i, pair in enumerate(out) for p in ((pair, second[i]) if i in doubled else (pair,))]


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


# Cheap tests for when a second reading of a text is worth making.
_SPELLED_RUN = re.compile(r"(?<!\w)[aiAI]\s+\S(?:\s+\S){2}|\S(?:\s+\S){2}\s+[aiAI](?!\w)")
_TRIPLED = re.compile(r"([^\W\d_])\1\1")


def readings(text: str, *, casefold: bool = True, leet: bool = True, spelled: bool = True,
             squeeze: bool = False) -> list[tuple[str, list[int]]]:
    """The skeletons of ``text`` worth matching against, each with its offsets: the
    skeleton itself; with ``spelled``, also the one where a spelled-out run swallows
    a one-letter word at its end ("a r s o n" is "arson", "B a r a c k O b a m a"
    ends in "a"), when the text has such a run; with ``squeeze``, also the one with
    letters written three times or more squeezed ("Taaaaylor"), when it has them.
    Most texts get one reading."""
    first = skeleton(text, casefold=casefold, leet=leet)
    out = [first]
    if spelled and _SPELLED_RUN.search(text):
        other = skeleton(text, casefold=casefold, leet=leet, articles=False)
        if other[0] != first[0]:
            out.append(other)
    if squeeze and _TRIPLED.search(first[0]):
        out.append(skeleton(text, casefold=casefold, leet=leet, squeeze=True))
    return out


# Marks people put inside a word that no real word carries there ("na*ked", "nu.de");
# not "-" or "'" ("self-harm", "don't").
_IN_WORD_MARKS = set(".*_~^`=\\")


def _drop_in_word_marks(pairs: list[tuple[str, int]]) -> list[tuple[str, int]]:
    if _IN_WORD_MARKS.isdisjoint(c for c, _ in pairs):
        return pairs
    out: list[tuple[str, int]] = []
    n = len(pairs)
    for k, (c, i) in enumerate(pairs):
        if c in _IN_WORD_MARKS and out and out[-1][0].isalpha():
            j = k
            while j < n and pairs[j][0] == c:
                j += 1
            if j < n and pairs[j][0].isalpha() and j - k <= 2:
                continue
        out.append((c, i))
    return out


def readable(text: str, *, spelling: bool = True, keep: frozenset[str] = frozenset()) -> str:
    """``text`` with evasion undone but words kept readable, for model-based checks:
    look-alikes, emoji letters and invisible marks folded, leetspeak undone,
    spelled-out words joined, marks inside a word dropped (``na*ked``), letters
    repeated three times or more squeezed to one (``nuuuude`` -> ``nude``; ``kkk``
    stays), and with ``spelling`` misspelt words written as the common English word
    one slip away (``nakt`` -> ``naked``,
    :func:`elens_lexicon.spelling.correct_spelling`), a ``1``
    or ``!`` read as ``l`` where only that makes a word (``$te41`` -> ``steal``), and a
    spelled-out run of several words split into them (``p a t h e t i c l o s e r`` ->
    ``pathetic loser``). Words in ``keep`` (lower case) are never respelled: a
    policy's own terms that no word list has ("meth", "shota"). Lower case. No
    offsets: use :func:`skeleton` where spans matter."""
    pairs = _drop_in_word_marks(_join_spelled(_leet(_pairs(text, casefold=True))))
    if not spelling:
        return "".join(c for c, _ in _squeeze(pairs))
    from .spelling import correct_spelling, english_words, is_known, split_words  # late: spelling reads skeletons

    try:
        known = english_words()
    except ImportError:
        return correct_spelling("".join(c for c, _ in _squeeze(pairs)), keep)
    pairs = _squeeze(_as_ell(pairs, text, known, keep), known)
    words = []
    for m in re.finditer(r"[a-z]+|[^a-z]+", "".join(c for c, _ in pairs)):
        word, source = m.group(0), pairs[m.start():m.end()]
        # letters spelled out one by one, several words run together: "p a t h e t i c l o s e r"
        if len(word) >= 6 and all(b - a > 1 for (_, a), (_, b) in zip(source, source[1:])) \
                and not is_known(word, known):
            word = " ".join(split_words(word)) or word
        words.append(word)
    return correct_spelling("".join(words), keep)


def _as_ell(pairs: list[tuple[str, int]], text: str, known: frozenset[str],
            keep: frozenset[str] = frozenset()) -> list[tuple[str, int]]:
    """Each word in which a ``1`` or ``!`` was read as ``i`` and is no known word (nor in
    ``keep``), with those read as ``l`` where that makes a known word, letters repeated
    three times or more squeezed: ``$te41`` is "steal", not "steai"; ``ki11ing``
    "killing", not "king"."""
    from .spelling import is_known

    out = list(pairs)
    joined = "".join(c for c, _ in pairs)
    for m in re.finditer(r"[a-z]+", joined):
        slots = [k for k in range(m.start(), m.end()) if joined[k] == "i" and text[pairs[k][1]] in "1!"]
        if not slots or len(slots) > 3:
            continue
        # as read, before squeezing: "kiiiing" is no word, though "king" is
        if m.group(0) in keep or is_known(m.group(0), known):
            continue
        for mask in range(1, 1 << len(slots)):
            trial = list(pairs[m.start():m.end()])
            for bit, k in enumerate(slots):
                if mask >> bit & 1:
                    trial[k - m.start()] = ("l", pairs[k][1])
            if any(is_known(w, known) for w in ("".join(c for c, _ in trial), "".join(c for c, _ in _squeeze(trial)))):
                out[m.start():m.end()] = trial
                break
    return out
