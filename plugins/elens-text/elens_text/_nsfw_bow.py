"""The ``en-prompt-nsfw-pipeline-bow`` classifier, read from its package without spaCy.

Why: importing spaCy imports thinc, and thinc imports torch whenever torch is
installed, which is most of a second and a half of the text stage's load time. The
model itself is small: spaCy's English tokenizer (rules stored in the package), then a
bag of words (``TextCatBOW.v3``: each distinct token's ORTH id, counted, hashed twice
into 2**18 buckets of a linear layer) and a softmax over the four labels. This module
reads the same files (``tokenizer``, ``textcat/model``, ``textcat/cfg``) and does the
same arithmetic; the test compares it with ``spacy.load`` label by label.

The tokenizer is a port of ``spacy/tokenizer.pyx`` (``_tokenize_affixes``,
``_split_affixes``, ``_attach_tokens`` and the special-case matcher), keeping each
whitespace-delimited span's tokens as spaCy's cache does. ORTH ids are spaCy's:
MurmurHash64A (seed 1) of the UTF-8 text, except the strings of spaCy's symbol table
(``PERSON``, ``LOC``...), which have fixed small ids (``spacy_symbols.json``, checked
against spaCy by the tests).
"""

from __future__ import annotations

import functools
import json
import re
from pathlib import Path
from typing import Any, Callable, Sequence

_MASK64 = (1 << 64) - 1
_MASK32 = (1 << 32) - 1
ORTH = 65  # spaCy's attribute id of a token's text
_RUNS = re.compile(r"\s+|\S+")  # \s is str.isspace(), as spaCy's tokenizer reads whitespace


def murmurhash64a(data: bytes, seed: int) -> int:
    """MurmurHash64A, as ``murmurhash.mrmr.hash64`` (spaCy's string hash)."""
    m, r = 0xC6A4A7935BD1E995, 47
    h = (seed ^ (len(data) * m)) & _MASK64
    whole = len(data) // 8 * 8
    for i in range(0, whole, 8):
        k = (int.from_bytes(data[i:i + 8], "little") * m) & _MASK64
        k = ((k ^ (k >> r)) * m) & _MASK64
        h = ((h ^ k) * m) & _MASK64
    if len(data) > whole:
        h = ((h ^ int.from_bytes(data[whole:], "little")) * m) & _MASK64
    h = ((h ^ (h >> r)) * m) & _MASK64
    return h ^ (h >> r)


def _rotl32(x: int, r: int) -> int:
    return ((x << r) | (x >> (32 - r))) & _MASK32


def murmurhash3_x86_32_uint64(key: int, seed: int) -> int:
    """thinc's ``MurmurHash3_x86_32_uint64``: a 64-bit key hashed as two 32-bit blocks."""
    c1, c2 = 0xCC9E2D51, 0x1B873593
    h = seed
    for block in (key & _MASK32, key >> 32):
        k = _rotl32((block * c1) & _MASK32, 15)
        h ^= (k * c2) & _MASK32
        h = (_rotl32(h, 13) * 5 + 0xE6546B64) & _MASK32
    h ^= 8
    h = ((h ^ (h >> 16)) * 0x85EBCA6B) & _MASK32
    h = ((h ^ (h >> 13)) * 0xC2B2AE35) & _MASK32
    return h ^ (h >> 16)


@functools.lru_cache(maxsize=1)
def _symbols() -> dict[str, int]:
    return json.loads((Path(__file__).parent / "spacy_symbols.json").read_text(encoding="utf-8"))


def orth_id(text: str) -> int:
    """spaCy's ORTH id of a token's text."""
    symbol = _symbols().get(text)
    return symbol if symbol is not None else murmurhash64a(text.encode("utf-8"), 1)


class Tokenizer:
    """spaCy's rule-based tokenizer, from a serialised ``tokenizer`` file."""

    def __init__(self, data: dict[str, Any]):
        def compiled(key: str, method: str) -> Callable | None:
            pattern = data.get(key)
            return getattr(re.compile(pattern), method) if isinstance(pattern, str) else None

        self.prefix_search = compiled("prefix_search", "search")
        self.suffix_search = compiled("suffix_search", "search")
        self.infix_finditer = compiled("infix_finditer", "finditer")
        self.token_match = compiled("token_match", "match")
        self.url_match = compiled("url_match", "match")
        self.faster_heuristics = bool(data.get("faster_heuristics", True))
        # a prompt's words recur across prompts: their affixes are split once
        self._span_tokens = functools.lru_cache(maxsize=65536)(self._split_span)
        self.specials: dict[str, list[str]] = {}
        # Special cases that affixes or infixes would split are also looked for as
        # token sequences once the text is split (spaCy's PhraseMatcher step).
        self._by_first: dict[str, list[tuple[str, ...]]] = {}
        for string, pieces in sorted((data.get("exceptions") or {}).items()):
            self.specials[string] = [piece.get(ORTH, piece.get(str(ORTH), "")) for piece in pieces]
            if not self.faster_heuristics or self._prefix_len(string) or self._infixes(string) or \
                    self._suffix_len(string) or " " in string:
                pattern = tuple(t for t, _ in self._affixes(string, False))
                if pattern:
                    self._by_first.setdefault(pattern[0], []).append(pattern)

    def _prefix_len(self, s: str) -> int:
        m = self.prefix_search(s) if self.prefix_search else None
        return m.end() - m.start() if m else 0

    def _suffix_len(self, s: str) -> int:
        m = self.suffix_search(s) if self.suffix_search else None
        return m.end() - m.start() if m else 0

    def _infixes(self, s: str) -> list[re.Match]:
        return list(self.infix_finditer(s)) if self.infix_finditer else []

    def __call__(self, text: str) -> list[str]:
        """The tokens' texts (a whitespace run other than one space is a token too)."""
        tokens = self._affixes(text, True)
        return [t for t, _ in self._apply_specials(tokens)] if self._by_first else [t for t, _ in tokens]

    def _affixes(self, text: str, specials: bool) -> list[tuple[str, bool]]:
        """(token text, followed by a space) pairs, as ``_tokenize_affixes``: each run
        of non-space characters is split into tokens; a space after one is its
        trailing space, and the rest of a whitespace run (all of it at the start of the
        text, or when it begins with another space character) is a token."""
        out: list[tuple[str, bool]] = []
        for k, m in enumerate(_RUNS.finditer(text)):
            run = m.group()
            if k and run[0] == " ":
                out[-1] = (out[-1][0], True)
                run = run[1:]
            if run:
                out.extend((t, False) for t in self._span_tokens(run, specials))
        return out

    def _split_span(self, span: str, specials: bool) -> tuple[str, ...]:
        out: list[tuple[str, bool]] = []
        self._chunk(span, out, specials)
        return tuple(t for t, _ in out)

    def _chunk(self, span: str, out: list[tuple[str, bool]], specials: bool) -> None:
        if specials and span in self.specials:
            out.extend((t, False) for t in self.specials[span])
            return
        prefixes: list[str] = []
        suffixes: list[str] = []
        span = self._split_affixes(span, prefixes, suffixes, specials)
        out.extend((p, False) for p in prefixes)
        if span:
            if specials and span in self.specials:
                out.extend((t, False) for t in self.specials[span])
            elif (self.token_match and self.token_match(span)) or (self.url_match and self.url_match(span)):
                out.append((span, False))
            else:
                matches = self._infixes(span)
                if not matches:
                    out.append((span, False))
                else:
                    start = 0
                    for m in matches:
                        if m.start() == 0:
                            continue
                        if m.start() != start:
                            out.append((span[start:m.start()], False))
                        if m.start() != m.end():
                            out.append((span[m.start():m.end()], False))
                        start = m.end()
                    if span[start:]:
                        out.append((span[start:], False))
        out.extend((s, False) for s in reversed(suffixes))

    def _split_affixes(self, string: str, prefixes: list[str], suffixes: list[str], specials: bool) -> str:
        last_size = 0
        while string and len(string) != last_size:
            if self.token_match and self.token_match(string):
                break
            if specials and string in self.specials:
                break
            last_size = len(string)
            pre_len = self._prefix_len(string)
            if pre_len:
                prefix, minus_pre = string[:pre_len], string[pre_len:]
                if minus_pre and specials and minus_pre in self.specials:
                    prefixes.append(prefix)
                    return minus_pre
            suf_len = self._suffix_len(string[pre_len:])
            if suf_len:
                suffix, minus_suf = string[-suf_len:], string[:-suf_len]
                if minus_suf and specials and minus_suf in self.specials:
                    suffixes.append(suffix)
                    return minus_suf
            if pre_len and suf_len and pre_len + suf_len <= len(string):
                string = string[pre_len:-suf_len]
                prefixes.append(prefix)
                suffixes.append(suffix)
            elif pre_len:
                string = minus_pre
                prefixes.append(prefix)
            elif suf_len:
                string = minus_suf
                suffixes.append(suffix)
        return string

    def _apply_specials(self, tokens: list[tuple[str, bool]]) -> list[tuple[str, bool]]:
        """Retokenize the special cases found as token sequences (``_apply_special_cases``)."""
        texts = [t for t, _ in tokens]
        matches = []
        for i, t in enumerate(texts):
            for pattern in self._by_first.get(t, ()):
                if tuple(texts[i:i + len(pattern)]) == pattern:
                    matches.append((i, i + len(pattern)))
        if not matches:
            return tokens
        # Longest first, then leftmost; a match touching a token already seen is
        # dropped, and marks its tokens seen all the same (as spaCy does).
        matches.sort(key=lambda m: (m[1] - m[0], -m[0]))
        seen: set[int] = set()
        kept = []
        for start, end in reversed(matches):
            if start not in seen and end - 1 not in seen:
                kept.append((start, end))
            seen.update(range(start, end))
        out: list[tuple[str, bool]] = []
        i = 0
        for start, end in sorted(kept):
            out.extend(tokens[i:start])
            text = "".join(t + (" " if space and k < end - 1 else "") for k, (t, space) in
                           enumerate(tokens[start:end], start))
            rule = self.specials.get(text)
            if rule is None:
                out.extend(tokens[start:end])
            else:
                out.extend((t, False) for t in rule[:-1])
                out.append((rule[-1], tokens[end - 1][1]))
            i = end
        out.extend(tokens[i:])
        return out


#: the model settings this module implements, from the package's ``config.cfg``
_MODEL_CONFIG = {"@architectures": '"spacy.TextCatBOW.v3"', "exclusive_classes": "true", "ngram_size": "1",
                 "no_output_layer": "false"}


def _check_model_config(folder: Path) -> None:
    import configparser

    config = configparser.ConfigParser(interpolation=None)
    config.read(folder / "config.cfg", encoding="utf-8")
    section = config["components.textcat.model"] if config.has_section("components.textcat.model") else {}
    for key, want in _MODEL_CONFIG.items():
        if section.get(key) != want:
            raise ValueError(f"{folder / 'config.cfg'}: components.textcat.model {key} is "
                             f"{section.get(key)!r}; this reader implements {want}")


class BowClassifier:
    """``classifier(texts)`` -> (texts x labels) probabilities, labels in ``self.labels``."""

    def __init__(self, folder: str | Path):
        import numpy as np
        import srsly

        folder = Path(folder)
        _check_model_config(folder)
        self.tokenizer = Tokenizer(srsly.msgpack_loads((folder / "tokenizer").read_bytes()))
        self.labels = list(json.loads((folder / "textcat" / "cfg").read_text())["labels"])
        model = srsly.msgpack_loads((folder / "textcat" / "model").read_bytes())
        names = [node["name"] for node in model["nodes"]]
        layer = names.index("sparse_linear")
        params = model["params"][layer]
        self.length = int(model["nodes"][layer]["dims"]["length"])
        self.weights = np.asarray(params["W"], dtype="float32").reshape(len(self.labels), self.length)
        self.bias = np.asarray(params["b"], dtype="float32")
        self._bias = self.bias.astype("float64")
        self._weights = functools.lru_cache(maxsize=65536)(self._token_weights)

    def _token_weights(self, token: str) -> Any:
        """What a token adds to the label scores: the two columns of the linear layer
        its ORTH id hashes to, summed."""
        key = orth_id(token)
        i, j = murmurhash3_x86_32_uint64(key, 0) % self.length, murmurhash3_x86_32_uint64(key, 1) % self.length
        return self.weights[:, i].astype("float64") + self.weights[:, j]

    def __call__(self, texts: Sequence[str]) -> Any:
        import numpy as np

        out = np.zeros((len(texts), len(self.labels)), dtype="float32")
        for row, text in enumerate(texts):
            counts: dict[str, int] = {}
            for token in self.tokenizer(text):
                counts[token] = counts.get(token, 0) + 1
            if not counts:
                # Nothing to read: no label. (spaCy gives the bias's softmax when other
                # texts share the batch, zeros when the whole batch is empty.)
                continue
            scores = self._bias
            for token, n in counts.items():
                scores = scores + n * self._weights(token)
            scores = np.exp(scores - scores.max())
            out[row] = scores / scores.sum()
        return out
