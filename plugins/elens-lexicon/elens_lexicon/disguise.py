"""Deterministic disguises of a prompt, the way people dodge filters: for testing checks.

``disguise(prompt, technique, seed=0)`` returns the prompt with its ``[marked]`` words
disguised (the brackets go); without marks every word of three or more letters is a
candidate and ``words`` picks them, or all of them when ``words`` is not given. The same
prompt, technique and seed always give the same text (``random.Random`` seeded with a
string), so a benchmark or a test can be rerun byte for byte.

Techniques (:data:`TECHNIQUES`):

``homoglyph``      every letter that has one becomes a Cyrillic or Greek look-alike (``nudе``)
``zero_width``     an invisible character between letters (ZWSP, ZWNJ, ZWJ, word joiner, soft hyphen, BOM)
``leetspeak``      digits and symbols for letters (``n00d``, ``$3xy``)
``spacing``        letters spelled out with spaces (``n u d e``)
``punctuation``    letters joined by a punctuation mark, or one mark inside the word (``n.u.d.e``, ``nu*de``)
``mixed_scripts``  each letter in a different Unicode style: Cyrillic, Greek, fullwidth,
                   mathematical, circled, small capitals, an added accent (``ｎυ𝐝ᴇ``)
``emoji``          letters written with emoji: squared and circled letters, regional
                   indicators, 🅾️ ⭕ ❌ ℹ️ (``🅽🆄🅳🅴``, ``n⭕de``)
``misspelling``    one common misspelling: a letter dropped, doubled, swapped with its
                   neighbour, or a sound respelled (``ph``→``f``, ``c``→``k``, final ``s``→``z``)
``buried``         the plain prompt in the middle of a long, harmless scene description
``weighted``       not a disguise, but how prompts are written in Stable Diffusion front
                   ends and Midjourney: each run of marked words weighted as one phrase
                   (``(nude:1.3)``, ``((knife attack))``, ``[nude]``), weighted quality
                   tags before, a parameter or a LoRA tag after (``--ar 16:9``,
                   ``<lora:add_detail:0.7>``)
"""

from __future__ import annotations

import random
import re
from typing import Callable, Sequence

__all__ = ["TECHNIQUES", "disguise", "disguise_word", "strip_marks", "BENIGN_CONTEXT"]

_MARK = re.compile(r"\[([^\]]+)\]")
_WORD = re.compile(r"[A-Za-z]{3,}")

# Look-alikes from Unicode's confusables list: lowercase Latin -> Cyrillic, Greek.
_CYRILLIC = {"a": "а", "c": "с", "d": "ԁ", "e": "е", "h": "һ", "i": "і", "j": "ј", "k": "к", "l": "ӏ",
             "n": "п", "o": "о", "p": "р", "q": "ԛ", "r": "г", "s": "ѕ", "t": "т", "v": "ѵ", "w": "ԝ",
             "x": "х", "y": "у", "g": "ԍ", "b": "Ь", "m": "м"}
_GREEK = {"a": "α", "b": "β", "c": "ϲ", "e": "ε", "i": "ι", "j": "ϳ", "k": "κ", "n": "η", "o": "ο",
          "p": "ρ", "t": "τ", "u": "υ", "v": "ν", "w": "ω", "x": "χ", "y": "γ", "s": "ѕ"}
_LEET = {"a": "4@", "b": "8", "e": "3", "g": "9", "i": "1!", "l": "1|", "o": "0", "s": "5$", "t": "7+", "z": "2"}
_INVISIBLE = ["\u200b", "\u200c", "\u200d", "\u2060", "\u00ad", "\ufeff"]
_PUNCT = [".", "-", "_", "*", "/", "~", "'", "`", "^"]
_SMALL_CAPS = dict(zip("abcdefghijklmnopqrstuvwxyz", "ᴀʙᴄᴅᴇꜰɢʜɪᴊᴋʟᴍɴᴏᴘǫʀꜱᴛᴜᴠᴡxʏᴢ"))
_ACCENTS = ["\u0301", "\u0300", "\u0308", "\u0302", "\u0303", "\u0327", "\u0336"]
_EMOJI_SPECIAL = {"a": "🅰️", "b": "🅱️", "o": "🅾️", "p": "🅿️", "m": "Ⓜ️", "i": "ℹ️", "x": "❌"}
_EMOJI_ROUND = {"o": "⭕", "x": "✖️", "i": "❗"}

# Harmless scene text for ``buried``: long enough that the disguised part is a small
# share of the prompt and may sit past a 128-token model window.
BENIGN_CONTEXT = [
    "a sweeping landscape of rolling green hills under a pale morning sky",
    "a winding river with a small stone bridge and wildflowers in the foreground",
    "distant snow-capped mountains fading into soft blue mist",
    "a busy farmers market with stalls of apples, pears and fresh bread",
    "children flying colorful kites over a sunny meadow",
    "an old lighthouse on a rocky cliff with seagulls circling overhead",
    "a cozy cafe interior with wooden tables, hanging plants and warm lamps",
    "a golden retriever chasing a red ball across the lawn",
    "autumn trees with orange and yellow leaves lining a quiet country road",
    "a sailboat drifting on a calm lake at sunset",
    "a grandmother knitting a scarf by the fireplace",
    "a bustling city street at night with neon signs reflected in puddles",
    "cinematic lighting, ultra detailed, 8k, trending on artstation",
    "soft bokeh, shallow depth of field, shot on 35mm film",
    "a watercolor painting style with gentle pastel tones",
    "highly detailed, sharp focus, volumetric light, masterpiece",
]


def _homoglyph(word: str, rng: random.Random) -> str:
    out = []
    for c in word:
        options = [t[c.lower()] for t in (_CYRILLIC, _GREEK) if c.lower() in t]
        out.append(rng.choice(options) if options else c)
    return "".join(out)


def _zero_width(word: str, rng: random.Random) -> str:
    mark = rng.choice(_INVISIBLE)
    if rng.random() < 0.5:
        return mark.join(word)
    k = rng.randrange(1, len(word)) if len(word) > 1 else 1
    return word[:k] + mark + word[k:]


def _leet(word: str, rng: random.Random) -> str:
    spots = [i for i, c in enumerate(word.lower()) if c in _LEET]
    if not spots:
        return word
    chosen = set(rng.sample(spots, max(1, (len(spots) * 2 + 2) // 3)))
    return "".join(rng.choice(_LEET[c.lower()]) if i in chosen else c for i, c in enumerate(word))


def _spacing(word: str, rng: random.Random) -> str:
    return " ".join(word)


def _punctuation(word: str, rng: random.Random) -> str:
    mark = rng.choice(_PUNCT)
    if rng.random() < 0.6 or len(word) < 3:
        return mark.join(word)
    k = rng.randrange(1, len(word))
    return word[:k] + mark + word[k:]


def _fullwidth(c: str) -> str:
    return chr(ord(c) + 0xFEE0) if "!" <= c <= "~" else c


def _math(c: str, base_lower: int, base_upper: int) -> str:
    if "a" <= c <= "z":
        return chr(base_lower + ord(c) - ord("a"))
    if "A" <= c <= "Z":
        return chr(base_upper + ord(c) - ord("A"))
    return c


_STYLES: list[Callable[[str], str]] = [
    lambda c: _CYRILLIC.get(c.lower(), c),
    lambda c: _GREEK.get(c.lower(), c),
    _fullwidth,
    lambda c: _math(c, 0x1D41A, 0x1D400),  # bold
    lambda c: _math(c, 0x1D5BA, 0x1D5A0),  # sans-serif
    lambda c: _math(c, 0x1D552, 0x1D538) if c not in "CHNPQRZ" else c,  # double-struck (holes in the block)
    lambda c: chr(0x24D0 + ord(c) - ord("a")) if "a" <= c <= "z" else c,  # circled
    lambda c: _SMALL_CAPS.get(c, c),
]


def _mixed_scripts(word: str, rng: random.Random) -> str:
    out = []
    for i, c in enumerate(word):
        k = rng.randrange(len(_STYLES) + 2)
        if k < len(_STYLES):
            out.append(_STYLES[k](c))
        elif k == len(_STYLES):
            out.append(c + rng.choice(_ACCENTS))
        else:
            out.append(c)  # some letters stay Latin
    return "".join(out)


def _emoji(word: str, rng: random.Random) -> str:
    style = rng.choice(["squared", "circled", "regional", "special"])
    out = []
    for c in word:
        low = c.lower()
        if not "a" <= low <= "z":
            out.append(c)
        elif style == "squared":
            out.append(chr(0x1F170 + ord(low) - ord("a")))  # NEGATIVE SQUARED LATIN CAPITAL LETTER
        elif style == "circled":
            out.append(chr(0x1F150 + ord(low) - ord("a")))  # NEGATIVE CIRCLED LATIN CAPITAL LETTER
        elif style == "regional":
            # a zero-width space keeps two indicators from rendering as a flag
            out.append(chr(0x1F1E6 + ord(low) - ord("a")) + "\u200b")
        else:
            table = _EMOJI_SPECIAL if rng.random() < 0.5 else {**_EMOJI_SPECIAL, **_EMOJI_ROUND}
            out.append(table.get(low, c))
    text = "".join(out).rstrip("\u200b")
    if style == "special" and text == word:  # no letter had an emoji: square one
        k = rng.randrange(len(word))
        if "a" <= word[k].lower() <= "z":
            text = word[:k] + chr(0x1F170 + ord(word[k].lower()) - ord("a")) + word[k + 1:]
    return text


_SOUNDS = [("ph", "f"), ("ck", "k"), ("qu", "kw"), ("x", "ks"), ("ee", "ea"), ("c", "k"), ("y", "i"),
           ("ou", "u"), ("s", "z"), ("ed", "t"), ("er", "a")]


def _misspelling(word: str, rng: random.Random) -> str:
    if len(word) < 4:
        return word
    low = word.lower()
    ops = ["drop", "double", "swap"]
    sounds = [(a, b) for a, b in _SOUNDS if a in low[1:]]
    if sounds:
        ops += ["sound", "sound"]
    op = rng.choice(ops)
    inner = list(range(1, len(word) - 1))
    if op == "drop":
        k = rng.choice(inner)
        return word[:k] + word[k + 1:]
    if op == "double":
        k = rng.choice(inner)
        return word[:k] + word[k] + word[k:]
    if op == "swap":
        k = rng.choice(inner[:-1] or inner)
        return word[:k] + word[k + 1] + word[k] + word[k + 2:]
    a, b = rng.choice(sounds)
    k = low.index(a, 1)
    return word[:k] + b + word[k + len(a):]


def _bury(prompt: str, rng: random.Random) -> str:
    parts = rng.sample(BENIGN_CONTEXT, 10)
    k = rng.randint(3, 7)
    return ", ".join(parts[:k] + [prompt] + parts[k:])


def _weigh(prompt: str, rng: random.Random) -> str:
    def one(m: re.Match) -> str:
        word = m.group(1)
        return rng.choice([f"({word}:{rng.choice(['1.2', '1.3', '1.4', '1.5'])})", f"(({word}))", f"[{word}]"])

    # Neighbouring marks are one phrase, weighted as one: "[knife] [attack]" -> "(knife attack:1.3)".
    prompt = re.sub(r"\]\s+\[", " ", prompt)
    body = _MARK.sub(one, prompt) if _MARK.search(prompt) else f"({prompt}:1.2)"
    head = rng.choice(["(masterpiece:1.2), (best quality:1.3), ", "((masterpiece)), ", "(ultra detailed:1.1), ", ""])
    tail = rng.choice(["", " --ar 16:9", " --v 5.2", " <lora:add_detail:0.7>", " --ar 2:3 --stylize 250"])
    return head + body + tail


_WORD_TECHNIQUES: dict[str, Callable[[str, random.Random], str]] = {
    "homoglyph": _homoglyph,
    "zero_width": _zero_width,
    "leetspeak": _leet,
    "spacing": _spacing,
    "punctuation": _punctuation,
    "mixed_scripts": _mixed_scripts,
    "emoji": _emoji,
    "misspelling": _misspelling,
}
TECHNIQUES: tuple[str, ...] = (*_WORD_TECHNIQUES, "buried", "weighted")


def strip_marks(marked: str) -> str:
    """``marked`` without its ``[...]`` marks: the plain prompt."""
    return _MARK.sub(r"\1", marked)


def disguise_word(word: str, technique: str, rng: random.Random) -> str:
    """One word disguised by ``technique`` (not ``buried`` or ``weighted``)."""
    return _WORD_TECHNIQUES[technique](word, rng)


def disguise(prompt: str, technique: str, *, seed: int | str = 0, words: Sequence[str] | None = None) -> str:
    """``prompt`` disguised by ``technique``, deterministically for a given ``seed``.

    Marked words (``a [nude] woman``) are the ones disguised; a multi-word mark is
    disguised word by word. Without marks, the words listed in ``words`` are, or every
    word of three or more letters. ``buried`` hides the whole plain prompt in
    harmless text; ``weighted`` weights the marked words in image-generator syntax
    (without marks, the whole prompt; it does not use ``words``).
    """
    if technique not in TECHNIQUES:
        raise ValueError(f"unknown technique {technique!r}; one of {', '.join(TECHNIQUES)}")
    rng = random.Random(f"{seed}:{technique}:{prompt}")
    if technique == "buried":
        return _bury(strip_marks(prompt), rng)
    if technique == "weighted":
        return _weigh(prompt, rng)
    fn = _WORD_TECHNIQUES[technique]

    def one(m: re.Match) -> str:
        return " ".join(fn(w, rng) if len(w) > 1 else w for w in m.group(1).split(" "))

    if _MARK.search(prompt):
        return _MARK.sub(one, prompt)
    if words is not None:
        wanted = {w.casefold() for w in words}
        return _WORD.sub(lambda m: fn(m.group(0), rng) if m.group(0).casefold() in wanted else m.group(0), prompt)
    return _WORD.sub(lambda m: fn(m.group(0), rng), prompt)
