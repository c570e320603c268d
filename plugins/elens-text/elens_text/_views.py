"""What a model-based check reads for one prompt: the prompt, and the readings that
undo evasion.

A classifier scores the text it is given. ``nuԁе`` (Cyrillic), ``n4k3d``, ``na*ked``
or ``🅽🆄🅳🅴`` are other tokens to it, and a harmful clause buried in a long harmless
prompt is averaged away (and may lie past the model's token window). So each prompt
is scored on its *views*, and a category's score is the highest over them:

1. the prompt as written;
2. its readable form (:func:`elens_lexicon.normalize.readable`), when that differs
   from the prompt in more than case;
3. with a check's ``read_as`` table (:class:`ReadAs`), the readable form with the
   names it lists read as what they stand for (``biden in handcuffs`` -> ``a world
   leader in handcuffs``), when the prompt names one: a sentence embedding knows a
   name only as well as its training text did, and sits far from an example that
   describes the scene without it;
4. for a long prompt (more than ``LONG_WORDS`` words, or as many as the check asks
   for), windows of consecutive clauses of at most ``WINDOW_WORDS`` words each, taken
   from the readable form (the one of 3. when there is one).

A check's ``allow`` phrases (harmless idioms, and for the semantic check style tags
such as "8k") are taken out of every view first, the windows included, and so is the
prompt syntax of image generators (:func:`without_syntax`): attention weights such as
``(masterpiece:1.2)``, LoRA tags and Midjourney parameters are no words to a model.

A prompt of ordinary length with nothing to undo has one view, so it costs one
model call, as before.

A check whose model is dear (the semantic check: a run of MiniLM is most of the
text stage's time) may leave out the prompt as written when its readable form only
took a disguise off: look-alike letters, invisible or in-word marks, leetspeak,
spaced-out or repeated letters, no word respelled. The written form is then the
disguise itself (``n u d 3``, ``nuԁе``), which the model reads as noise; the two
views would cost a disguised prompt two runs. When spelling correction changed a
word, both stay: the correction can be wrong ("nerdy" read as "needy", a name read as
another word), and the written form keeps what it lost.
"""

from __future__ import annotations

import functools
import re
from typing import Any, Sequence

from elens_lexicon.normalize import WEIGHT_NUMBER, readable

LONG_WORDS = 40
WINDOW_WORDS = 16
MAX_WINDOWS = 12

_CLAUSE = re.compile(r"[^,;.!?\n]+[,;.!?\n]*")


def _windows(text: str) -> list[str]:
    """Runs of whole clauses of about ``WINDOW_WORDS`` words, each overlapping the
    next by about half; at most ``MAX_WINDOWS`` (longer text gets longer windows)."""
    clauses = [c.strip(" ,;") for c in _CLAUSE.findall(text)]
    clauses = [c for c in clauses if c]
    sizes = [len(c.split()) for c in clauses]
    size = max(WINDOW_WORDS, -(-sum(sizes) * 2 // MAX_WINDOWS))
    out: list[str] = []
    start = 0
    while start < len(clauses) and len(out) < MAX_WINDOWS:
        words, end = 0, start
        while end < len(clauses) and (end == start or words + sizes[end] <= size):
            words += sizes[end]
            end += 1
        out.append(", ".join(clauses[start:end]))
        if end == len(clauses):
            break
        # the next window starts about half-way into this one
        half, nxt = 0, start
        while nxt < end - 1 and half + sizes[nxt] <= words // 2:
            half += sizes[nxt]
            nxt += 1
        start = max(nxt, start + 1)
    return out


_EMPTY_CLAUSES = re.compile(r"\s*[,;](?:\s*[,;])+")
_WEIGHT = WEIGHT_NUMBER + r"(?![\w.:])"  # "1.3", not "12" nor the "10" of "10:45"
# "(word:1.2)", "((word))", "[word]", "{word}": emphasis in Stable Diffusion front ends.
# No optional spaces around the group: they would compete for the same characters and
# backtrack without end on "(" and a long run of spaces.
_WEIGHTED = re.compile(r"[(\[{]+([^()\[\]{}:]*)(?::\s*" + _WEIGHT + r"\s*)?[)\]}]+")
# Midjourney's multi-prompts: "naked:: child::2" is two parts, the second weighted.
_MULTI = re.compile(r"::\s*(?:" + _WEIGHT + r")?")
# "<lora:add_detail:0.7>": a file name, mostly noise to a model (the lexicon still
# reads the tag as written, so a term in a name is found there)
_TAG = re.compile(r"<(?:lora|lyco|hypernet|embedding|ti):[^<>]*>", re.IGNORECASE)
_SPACES = re.compile(r"[ \t]{2,}")
_SPACE_COMMA = re.compile(r"[ \t]*,(?:[ \t]*,)*")
# Midjourney: "--no clothes" asks for an image without clothes; its other parameters
# ("--ar 16:9", "--v 5.2") are no words. Only those names: "--naked" is a word.
_WITHOUT = re.compile(r"(?<!\S)--no\s+((?:(?!\s--)[^\n])+)", re.IGNORECASE)
_PARAMETER = re.compile(
    r"(?<!\S)--(?:ar|aspect|v|version|niji|s|stylize|c|chaos|q|quality|seed|sameseed|stop|tile|style|iw|w|weird|"
    r"r|repeat|sref|cref|cw|sw|sv|p|personalize|raw|hd|test|testp|creative|uplight|upbeta|video|fast|relax|turbo)"
    r"(?![\w-])(?:\s+(?!--)[^\s,]+)?", re.IGNORECASE)


def without_syntax(text: str) -> str:
    """``text`` without the prompt syntax of image generators: attention weights
    (``(nude woman:1.2)`` -> ``nude woman``, ``((masterpiece))``, ``[word]``), LoRA
    and embedding tags (``<lora:add_detail:0.7>``), and Midjourney's multi-prompt
    separators and parameters (``--ar 16:9`` goes; ``--no clothes`` reads
    ``without clothes``). A model reads the punctuation and numbers as words, and they
    dilute what the prompt depicts. Numbers that are no weights stay (``(age:12)``,
    ``3:30``); a text that is nothing but syntax stays as written."""
    if not any(c in text for c in "([{<:-"):
        return text
    out = _TAG.sub(" ", text)
    out = _PARAMETER.sub(" ", _WITHOUT.sub(lambda m: ", without " + m.group(1), out))
    out = _MULTI.sub(", ", out)
    for _ in range(3):  # nested: "((a (red) dress:1.2))"
        stripped = _WEIGHTED.sub(lambda m: m.group(1).strip(), out)
        if stripped == out:
            break
        out = stripped
    if out == text:
        return text
    out = _SPACE_COMMA.sub(",", _SPACES.sub(" ", out)).strip(" ,")
    return out if out.strip() else text


def _without(text: str, allow: re.Pattern | None) -> str:
    """``text`` less the ``allow`` phrases, and less the empty clauses they leave
    ("soft bokeh, 8k, a cat" -> "soft, a cat" when "bokeh" and "8k" go)."""
    if allow is None:
        return text
    text = " ".join(allow.sub(" ", text).split())
    return _EMPTY_CLAUSES.sub(",", text).strip(" ,;")


_WORD = re.compile(r"[^\W_]+")


def _spaced(phrase: str) -> str:
    """A regex of ``phrase`` that takes any spacing between its words."""
    return r"\s+".join(re.escape(w) for w in phrase.split())


class ReadAs:
    """A check's ``read_as`` option: what each listed name stands for
    (``{"a world leader": ["joe biden", "xi jinping", ...]}``). Names match as whole
    words, case and spacing aside. Two tables with the same names are equal, so that
    checks given the same table share the views of a prompt."""

    def __init__(self, table: dict[str, Sequence[str]]):
        #: name, folded and single-spaced -> what it is read as
        self.names = {" ".join(name.casefold().split()): stand_in for stand_in, names in table.items()
                      for name in names if name.strip()}
        self._key = tuple(sorted(self.names.items()))
        self._hash = hash(self._key)
        parts = [_spaced(name) for name in self.names]
        # whole names ("assad" is not the end of "al-assad"); an article before the name
        # gives way to the stand-in's own ("a trump card" is "a world leader card")
        self.pattern = re.compile(r"(?<![\w-])(?:(a|an|the)\s+)?(" + "|".join(sorted(parts, key=len, reverse=True))
                                  + r")(?![\w-])", re.IGNORECASE) if parts else None
        # most prompts name nobody: a set lookup of their words spares them the pattern
        self._first_words = {_WORD.findall(name)[0] for name in self.names if _WORD.search(name)}

    def __eq__(self, other: object) -> bool:
        return isinstance(other, ReadAs) and other._key == self._key

    def __hash__(self) -> int:
        return self._hash

    def __call__(self, text: str) -> str:
        if self.pattern is None or self._first_words.isdisjoint(_WORD.findall(text.casefold())):
            return text
        return self.pattern.sub(self._stand_in, text)

    def _stand_in(self, m: re.Match) -> str:
        stand_in = self.names[" ".join(m.group(2).casefold().split())]
        if m.group(1) and not re.match(r"(?:a|an|the)\s", stand_in, re.IGNORECASE):
            return f"{m.group(1)} {stand_in}"
        return stand_in


def views(prompt: str, allow: re.Pattern | None = None, keep: frozenset[str] = frozenset(),
          long_words: int = LONG_WORDS, written: bool = True, read_as: ReadAs | None = None) -> list[str]:
    """The texts to score for ``prompt``; the first is the prompt itself (less any
    ``allow`` phrase and any prompt syntax: :func:`as_written`), except with
    ``written=False`` when its readable form only took a disguise off (see above).
    Windows are cut after the ``allow`` phrases are taken out, so that they hold words
    that matter. Words in ``keep`` are never respelled in the readable form
    (:func:`policy_words`); ``read_as`` adds the view with names read as what they
    stand for."""
    return list(_views(prompt, allow, keep, long_words, written, read_as))


def as_written(prompt: str, allow: re.Pattern | None = None) -> str:
    """The view of ``prompt`` as written: less its ``allow`` phrases and prompt syntax."""
    return _without(without_syntax(prompt), allow)


# Checks that read a prompt alike (the zero-shot check and the trained heads; the NSFW
# and profanity classifiers) would each work out its readable form: a third of a
# millisecond or more a prompt, more than the heads' own arithmetic.
@functools.lru_cache(maxsize=1024)
def _views(prompt: str, allow: re.Pattern | None, keep: frozenset[str], long_words: int,
           written: bool, read_as: ReadAs | None = None) -> tuple[str, ...]:
    text = as_written(prompt, allow)
    out = [text]
    # Read without the phrases as written too: spelling correction would make
    # another word of some ("bullring" -> "bullying").
    plain = _without(_readable(text, keep), allow)
    if plain != text.casefold():
        if not written and plain == _without(_readable(text, keep, spelling=False), allow):
            out.clear()  # the written form is only the disguise
        out.append(plain)
    if read_as is not None:
        # a disguised name ("b1den", "m a c r o n") shows once the disguise is off
        source = text if plain == text.casefold() else _readable(text, keep, spelling=False)
        if (named := read_as(source)) != source:
            plain = _without(_readable(named, keep), allow)
            if plain not in out:
                out.append(plain)
    if len(plain.split()) > long_words:
        out.extend(w for w in _windows(plain) if w not in out)
    return tuple(out)


# Most prompts hold none of a check's allowed phrases, so checks whose phrases differ
# (the semantic checks also take out style tags) still read the same text.
@functools.lru_cache(maxsize=1024)
def _readable(text: str, keep: frozenset[str], spelling: bool = True) -> str:
    return readable(text, keep=keep, spelling=spelling)


def forget_views() -> None:
    """Drop the views kept for recent prompts (a benchmark timing each prompt afresh)."""
    _views.cache_clear()
    _readable.cache_clear()


def allow_pattern(phrases: Sequence[str]) -> re.Pattern | None:
    """A pattern of the harmless phrases a check should not read ("naked mole rat",
    "blue tits"): case-insensitive, whole words, any spacing; matched on the prompt
    and on its readable form, so a disguised spelling is allowed too. A phrase is
    read without spelling correction, which would make another word of it
    ("bullring" is not "bullying")."""
    forms = {form for p in phrases if p.strip() for form in (p.casefold(), readable(p, spelling=False))}
    parts = [_spaced(form) for form in forms]
    if not parts:
        return None
    return re.compile(r"(?<!\w)(?:" + "|".join(sorted(parts, key=len, reverse=True)) + r")(?!\w)", re.IGNORECASE)


def policy_words(policy: Any) -> frozenset[str]:
    """The words of the policy's terms, lower case: kept as written in the readable
    form, since the word lists behind spelling correction lack many of them ("meth"
    would read as "meath", "pedo" as "pedro")."""
    return frozenset(word for category in policy.categories.values() for term in category.get("terms") or ()
                     for word in re.findall(r"[a-z]+", term.casefold()))


def expand(prompts: Sequence[str], allow: re.Pattern | None = None, keep: frozenset[str] = frozenset(),
           long_words: int = LONG_WORDS, written: bool = True,
           read_as: ReadAs | None = None) -> tuple[list[str], list[int]]:
    """All views of ``prompts`` in one list, and for each the index of its prompt."""
    texts: list[str] = []
    owners: list[int] = []
    for i, prompt in enumerate(prompts):
        for v in views(prompt, allow, keep, long_words, written, read_as):
            texts.append(v)
            owners.append(i)
    return texts, owners
