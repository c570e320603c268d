"""The ``lexicon`` text check: the policy's terms and patterns, evasion-resistant."""

from __future__ import annotations

from typing import Any, Sequence

from elens import OptionsError, Signal

from .matcher import Lexicon
from .spelling import DEFAULT_VOCABULARY, english_words

OPTIONS_SCHEMA = {
    "type": "object",
    "additionalProperties": False,
    "properties": {
        "categories": {"type": "array", "items": {"type": "string"}, "uniqueItems": True},
        "extra_terms": {"type": "object", "additionalProperties": {"type": "array", "items": {"type": "string"}}},
        "score": {"type": "number", "minimum": 0, "maximum": 1},
        "weights": {"type": "object", "additionalProperties": {"type": "number", "minimum": 0, "maximum": 1}},
        "case_sensitive": {"type": "boolean"},
        "allow": {"type": "array", "items": {"type": "string"}},
        "misspellings": {"type": "boolean"},
        "misspelling_score": {"type": "number", "minimum": 0, "maximum": 1},
        "vocabulary": {"type": "array", "items": {"type": "string", "minLength": 1}, "minItems": 1},
    },
}


def load_vocabulary(options: dict) -> frozenset[str] | None:
    """The known English words for ``options.misspellings`` (default on), from
    ``options.vocabulary`` (default: MiniLM's vocabulary and Webster's word list,
    see :func:`elens_lexicon.spelling.english_words`); None when off."""
    if not options.get("misspellings", True):
        return None
    sources = tuple(options.get("vocabulary") or DEFAULT_VOCABULARY)
    try:
        return english_words(sources)
    except ImportError as e:
        raise OptionsError("vocabulary", f"a word list needs a missing package ({e.name}); "
                           "install it, or name a word-list file") from None
    except OSError as e:
        raise OptionsError("vocabulary", f"cannot read a word list: {e.strerror or e}") from None


def build_lexicon(options: dict, policy: Any) -> Lexicon:
    """The lexicon for ``options`` over ``policy.categories``; unknown ids raise OptionsError."""
    known = policy.categories
    categories = options.get("categories")
    if categories is None:
        categories = [c for c, cat in known.items() if cat.get("terms") or cat.get("patterns")]
    for i, cid in enumerate(categories):
        if cid not in known:
            raise OptionsError(f"categories.{i}", f"unknown category {cid!r}")
    extra = options.get("extra_terms") or {}
    for cid in extra:
        if cid not in known:
            raise OptionsError(f"extra_terms.{cid}", f"unknown category {cid!r}")
        if cid not in categories:
            raise OptionsError(f"extra_terms.{cid}", f"category {cid!r} is not in options.categories")
    terms = {c: [*(known[c].get("terms") or []), *extra.get(c, [])] for c in categories}
    patterns = {c: list(known[c].get("patterns") or []) for c in categories}
    return Lexicon(terms, patterns, case_sensitive=bool(options.get("case_sensitive", False)),
                   allow=options.get("allow") or (), vocabulary=load_vocabulary(options))


class LexiconCheck:
    """Flags the policy's terms, phrases and patterns after folding evasion tricks away.

    Each hit is one signal: the category, the term as ``label``, and the span of the
    text the user wrote (``n.u.d.e`` is reported as written). Scores are ``score``
    (default 0.9), or ``weights[term]`` for a listed term. A misspelt term (``nkaed``
    for ``naked``, see :mod:`elens_lexicon.spelling`) scores ``misspelling_score``
    (default 0.85) or the term's score if that is lower.
    """

    options_schema = OPTIONS_SCHEMA

    def __init__(self, options: dict, policy: Any):
        self.lexicon = build_lexicon(options, policy)
        # A term is strong evidence, not certainty: 0.9 stays under the default policy's
        # block thresholds (0.95+), so a listed term revises rather than refuses.
        self.score = float(options.get("score", 0.9))
        self.weights = {k.casefold(): float(v) for k, v in (options.get("weights") or {}).items()}
        # Under an exact hit, still over the default policy's highest text threshold (0.85).
        self.misspelling_score = float(options.get("misspelling_score", 0.85))

    def check(self, prompts: Sequence[str]) -> list[list[Signal]]:
        return [[self._signal(prompt, m) for m in self.lexicon.find(prompt)] for prompt in prompts]

    def _signal(self, prompt: str, m: Any) -> Signal:
        written = prompt[m.start:m.end]
        score = self.weights.get(m.term.casefold(), self.score)
        if m.misspelt:
            score = min(score, self.misspelling_score)
            how = f" misspelt as {written!r}"
        else:
            how = "" if written.casefold() == m.term.casefold() else f" as {written!r}"
        return Signal(m.category, score, span=(m.start, m.end), label=m.term, reason=f"matched {m.term!r}{how}")
