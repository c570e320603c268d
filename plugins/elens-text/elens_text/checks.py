"""The text checks ``semantic``, ``nsfw-prompt`` and ``profanity``."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any, Sequence

from elens import OptionsError, Signal

from .embed import Embedder


def _categories(options: dict, policy: Any, default: Sequence[str] | None = None) -> list[str]:
    chosen = options.get("categories")
    if chosen is None:
        return [c for c in (default if default is not None else policy.categories) if c in policy.categories]
    for i, cid in enumerate(chosen):
        if cid not in policy.categories:
            raise OptionsError(f"categories.{i}", f"unknown category {cid!r}")
    return list(chosen)


class SemanticCheck:
    """Sentence-embedding similarity to each category (zero-shot) or trained per-category heads.

    Zero-shot: each category's description and examples are embedded once; a prompt's
    score for a category is its highest cosine similarity to any of them, mapped
    linearly from [``low``, ``high``] to [0, 1] (defaults 0.25 and 0.75: MiniLM puts
    unrelated sentences near 0.1 and paraphrases above 0.7). Head mode: a logistic
    head per category, trained with ``elens train text-head``.
    """

    options_schema = {
        "type": "object",
        "additionalProperties": False,
        "properties": {
            "mode": {"enum": ["zero-shot", "head"]},
            "categories": {"type": "array", "items": {"type": "string"}},
            "head": {"type": "string"},
            "batch_size": {"type": "integer", "minimum": 1},
            "model_path": {"type": "string"},
            "low": {"type": "number"},
            "high": {"type": "number"},
        },
    }

    def __init__(self, options: dict, policy: Any):
        import numpy as np

        self.mode = options.get("mode", "zero-shot")
        self.embedder = Embedder(options.get("model_path"), int(options.get("batch_size", 64)))
        self.low, self.high = float(options.get("low", 0.25)), float(options.get("high", 0.75))
        if self.high <= self.low:
            raise OptionsError("high", "must be greater than low")
        if self.mode == "head":
            if not options.get("head"):
                raise OptionsError("head", "head mode needs the path of a head file (elens train text-head)")
            from .heads import load_head

            path = Path(options["head"])
            if not path.is_absolute() and getattr(policy, "source", None):
                path = Path(str(policy.source)).parent / path
            self.head = load_head(path)
            unknown = [c for c in self.head.categories if c not in policy.categories]
            if unknown:
                raise OptionsError("head", f"the head file scores categories the policy lacks: {', '.join(unknown)}")
            self.categories = list(self.head.categories)
            return
        judged = [c for c, cat in policy.categories.items() if "text" in (cat.get("thresholds") or {})]
        self.categories = _categories(options, policy, default=judged)
        texts, owners = [], []
        for cid in self.categories:
            cat = policy.categories[cid]
            for text in [cat.get("description")] + list(cat.get("examples") or []):
                if text:
                    texts.append(text)
                    owners.append(cid)
        self.categories = [c for c in self.categories if c in owners]
        self.prototypes = self.embedder(texts) if texts else np.zeros((0, 384), dtype="float32")
        self.owner_index = np.array([self.categories.index(o) for o in owners], dtype=int)

    def scores(self, prompts: Sequence[str]) -> Any:
        """A (prompts x categories) matrix of scores in [0, 1]."""
        import numpy as np

        emb = self.embedder(prompts)
        if self.mode == "head":
            return self.head.predict(emb)
        sims = emb @ self.prototypes.T
        best = np.full((len(prompts), len(self.categories)), -1.0)
        for j in range(len(self.categories)):
            cols = self.owner_index == j
            best[:, j] = sims[:, cols].max(axis=1)
        return np.clip((best - self.low) / (self.high - self.low), 0.0, 1.0)

    def check(self, prompts: Sequence[str]) -> list[list[Signal]]:
        matrix = self.scores(prompts)
        out = []
        for row in matrix:
            out.append([
                Signal(cid, float(score), label=self.mode, reason=f"semantic similarity to {cid}")
                for cid, score in zip(self.categories, row) if score > 0
            ])
        return out


_nlp: dict[str, Any] = {}
_nlp_lock = threading.Lock()


class NsfwPromptCheck:
    """The ``en-prompt-nsfw-pipeline-bow`` spaCy classifier: safe, adult, cp, underage_safe.

    Its labels map to policy categories (defaults: adult -> sexual, cp -> sexual_minors);
    the score is the classifier's probability for the label.
    """

    options_schema = {
        "type": "object",
        "additionalProperties": False,
        "properties": {
            "labels": {
                "type": "object",
                "propertyNames": {"enum": ["safe", "adult", "cp", "underage_safe"]},
                "additionalProperties": {"type": ["string", "null"]},
            }
        },
    }
    DEFAULT_LABELS = {"adult": "sexual", "cp": "sexual_minors"}

    def __init__(self, options: dict, policy: Any):
        labels = dict(self.DEFAULT_LABELS)
        for label, cid in (options.get("labels") or {}).items():
            if cid is not None and cid not in policy.categories:
                raise OptionsError(f"labels.{label}", f"unknown category {cid!r}")
            labels[label] = cid
        self.labels = {label: cid for label, cid in labels.items() if cid and cid in policy.categories}
        with _nlp_lock:
            if "nsfw" not in _nlp:
                import en_prompt_nsfw_pipeline_bow

                _nlp["nsfw"] = en_prompt_nsfw_pipeline_bow.load()
        self.nlp = _nlp["nsfw"]

    def check(self, prompts: Sequence[str]) -> list[list[Signal]]:
        out = []
        for doc in self.nlp.pipe(list(prompts), batch_size=256):
            out.append([
                Signal(cid, float(doc.cats.get(label, 0.0)), label=label, reason=f"NSFW prompt classifier: {label}")
                for label, cid in self.labels.items()
            ])
        return out


class ProfanityCheck:
    """``alt-profanity-check``: the probability that a prompt is offensive language."""

    options_schema = {
        "type": "object",
        "additionalProperties": False,
        "properties": {"categories": {"type": "array", "items": {"type": "string"}}},
    }

    def __init__(self, options: dict, policy: Any):
        self.categories = _categories(options, policy, default=["harassment"])
        from profanity_check import predict_prob

        self._predict = predict_prob

    def check(self, prompts: Sequence[str]) -> list[list[Signal]]:
        probs = self._predict(list(prompts)) if prompts else []
        return [
            [Signal(cid, float(p), label="offensive", reason="offensive-language classifier") for cid in self.categories]
            for p in probs
        ]
