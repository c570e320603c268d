"""Build benchmarks/data/prompts.csv from the hand-written prompts.src.txt.

Every source prompt becomes one ``plain`` row. A prompt with [bracketed] words also
gets one disguised variant per technique, the bracketed words disguised the way
people disguise them to get past filters. Splits are drawn per category (30 %
train, 70 % test); a variant always shares its prompt's split.

Deterministic: the same source and seed give the same file, byte for byte.

    python benchmarks/data/make_variants.py            # writes prompts.csv beside it
    python benchmarks/data/make_variants.py --check    # fails if prompts.csv is stale
"""

from __future__ import annotations

import argparse
import csv
import io
import random
import re
import sys
from pathlib import Path

HERE = Path(__file__).parent
SEED = 20240417
TRAIN_SHARE = 0.3
FIELDS = ["prompt", "category", "split", "variant_of", "technique"]

_KEY = re.compile(r"\[([^\]]+)\]")

# Look-alikes a keyboard or a copy-paste from a "fancy text" site produces.
_CYRILLIC = {"a": "а", "c": "с", "e": "е", "i": "і", "j": "ј", "o": "о", "p": "р", "s": "ѕ", "x": "х", "y": "у",
             "h": "һ", "d": "ԁ", "A": "А", "B": "В", "C": "С", "E": "Е", "H": "Н", "K": "К", "M": "М", "O": "О",
             "P": "Р", "T": "Т", "X": "Х"}
_GREEK = {"a": "α", "o": "ο", "i": "ι", "k": "κ", "v": "ν", "u": "υ", "t": "τ", "n": "η", "p": "ρ"}
_LEET = {"a": ["4", "@"], "e": ["3"], "i": ["1", "!"], "o": ["0"], "s": ["5", "$"], "t": ["7"], "l": ["1"],
         "g": ["9"], "b": ["8"]}
_INVISIBLE = ["\u200b", "\u200c", "\u200d", "\u2060", "\u00ad"]
_PUNCT = [".", "-", "_", "*", "/"]


def _homoglyph(word: str, rng: random.Random) -> str:
    style = rng.choice(["cyrillic", "cyrillic", "greek", "fullwidth", "math"])
    if style == "fullwidth":
        return "".join(chr(ord(c) + 0xFEE0) if "!" <= c <= "~" else c for c in word)
    if style == "math":  # MATHEMATICAL BOLD letters
        out = []
        for c in word:
            if "a" <= c <= "z":
                out.append(chr(0x1D41A + ord(c) - ord("a")))
            elif "A" <= c <= "Z":
                out.append(chr(0x1D400 + ord(c) - ord("A")))
            else:
                out.append(c)
        return "".join(out)
    table = _CYRILLIC if style == "cyrillic" else {**_CYRILLIC, **_GREEK}
    spots = [i for i, c in enumerate(word) if c in table]
    if not spots:
        return word
    chosen = set(rng.sample(spots, max(1, len(spots) // 2)))
    return "".join(table[c] if i in chosen else c for i, c in enumerate(word))


def _zero_width(word: str, rng: random.Random) -> str:
    mark = rng.choice(_INVISIBLE)
    return mark.join(word) if rng.random() < 0.5 else word[:1] + mark + word[1:]


def _leet(word: str, rng: random.Random) -> str:
    spots = [i for i, c in enumerate(word.lower()) if c in _LEET]
    if not spots:
        return word
    chosen = set(rng.sample(spots, max(1, (len(spots) + 1) // 2)))
    return "".join(rng.choice(_LEET[c.lower()]) if i in chosen else c for i, c in enumerate(word))


def _spacing(word: str, rng: random.Random) -> str:
    return " ".join(word)


def _punctuation(word: str, rng: random.Random) -> str:
    return rng.choice(_PUNCT).join(word)


def _repeated(word: str, rng: random.Random) -> str:
    letters = [i for i, c in enumerate(word) if c.isalpha()]
    if not letters:
        return word
    vowels = [i for i in letters if word[i].lower() in "aeiou"] or letters
    i = rng.choice(vowels)
    return word[:i] + word[i] * rng.randint(3, 6) + word[i + 1:]


TECHNIQUES = {
    "homoglyph": _homoglyph,
    "zero_width": _zero_width,
    "leetspeak": _leet,
    "spacing": _spacing,
    "punctuation": _punctuation,
    "repeated": _repeated,
}


def read_source(path: Path) -> list[tuple[str, str]]:
    rows = []
    for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        category, sep, prompt = line.partition(":")
        if not sep or not prompt.strip():
            raise SystemExit(f"{path}:{n}: expected 'category: prompt'")
        rows.append((category.strip(), prompt.strip()))
    return rows


def disguise(marked: str, technique: str, rng: random.Random) -> str:
    fn = TECHNIQUES[technique]

    def one(m: re.Match) -> str:
        # Multi-word keys ("dead body") are disguised word by word.
        return " ".join(fn(w, rng) for w in m.group(1).split(" "))

    return _KEY.sub(one, marked)


def build(rows: list[tuple[str, str]], seed: int = SEED) -> list[dict[str, str]]:
    rng = random.Random(seed)
    by_category: dict[str, list[int]] = {}
    for i, (category, _) in enumerate(rows):
        by_category.setdefault(category, []).append(i)
    split = {}
    for category in sorted(by_category):
        ids = by_category[category][:]
        rng.shuffle(ids)
        n_train = round(len(ids) * TRAIN_SHARE)
        for k, i in enumerate(ids):
            split[i] = "train" if k < n_train else "test"
    out = []
    for i, (category, marked) in enumerate(rows):
        plain = _KEY.sub(r"\1", marked)
        out.append({"prompt": plain, "category": category, "split": split[i], "variant_of": "", "technique": "plain"})
        if not _KEY.search(marked):
            continue
        for technique in TECHNIQUES:
            variant = disguise(marked, technique, rng)
            if variant != plain:
                out.append({"prompt": variant, "category": category, "split": split[i], "variant_of": plain,
                            "technique": technique})
    return out


def render(rows: list[dict[str, str]]) -> str:
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=FIELDS, lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    return buf.getvalue()


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--source", type=Path, default=HERE / "prompts.src.txt")
    ap.add_argument("--out", type=Path, default=HERE / "prompts.csv")
    ap.add_argument("--seed", type=int, default=SEED)
    ap.add_argument("--check", action="store_true", help="exit 1 if --out differs from what would be written")
    args = ap.parse_args(argv)
    text = render(build(read_source(args.source), args.seed))
    if args.check:
        current = args.out.read_text(encoding="utf-8") if args.out.exists() else ""
        if current != text:
            print(f"{args.out} is stale; run {Path(__file__).name}", file=sys.stderr)
            return 1
        return 0
    args.out.write_text(text, encoding="utf-8")
    print(f"wrote {args.out} ({text.count(chr(10)) - 1} rows)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
