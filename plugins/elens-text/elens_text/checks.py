"""The text checks ``semantic``, ``nsfw-prompt`` and ``profanity``."""

from __future__ import annotations

import json
import re
import threading
from pathlib import Path
from typing import Any, Sequence

from elens import ElensError, OptionsError, Signal

from ._cache import cache_dir, cached_arrays, files_key
from ._seed import embed as seeded_embeddings
from ._views import WINDOW_WORDS, ReadAs, allow_pattern, as_written, expand, policy_words
from .embed import Embedder


def _best_view(matrix: Any, owners: Sequence[int], n: int) -> tuple[Any, Any]:
    """Per prompt and column, the highest value over the prompt's views and the row it came from."""
    import numpy as np

    owners_arr = np.asarray(owners)
    best = np.full((n, matrix.shape[1]), -np.inf)
    rows = np.zeros((n, matrix.shape[1]), dtype=int)
    for r in range(len(owners_arr)):  # views per prompt are few: a plain loop is fine
        i = owners_arr[r]
        better = matrix[r] > best[i]
        best[i][better] = matrix[r][better]
        rows[i][better] = r
    return best, rows


def _less_if_harmless(best: Any, harmless: Any) -> Any:
    """The similarity a category scores: the highest cosine to its description and
    examples (``best``), less by how much the prompt is closer still to one of its
    counterexamples (``harmless``)."""
    import numpy as np

    return best - np.maximum(0.0, harmless - best)


def _read_as(texts: Sequence[str], owners: Sequence[int], row: int, written: str | None = None) -> str:
    """`` (read as '...')`` when the row is not the prompt as written: ``written``
    (:func:`~elens_text._views.as_written`), or when not given, the prompt's first view."""
    first = row == 0 or owners[row - 1] != owners[row]
    if (texts[row] == written) if written is not None else first:
        return ""
    return f" (read as {_short(texts[row])})"


def _short(text: str) -> str:
    return repr(text if len(text) <= 60 else text[:57] + "...")


def _categories(options: dict, policy: Any, default: Sequence[str] | None = None) -> list[str]:
    chosen = options.get("categories")
    if chosen is None:
        return [c for c in (default if default is not None else policy.categories) if c in policy.categories]
    for i, cid in enumerate(chosen):
        if cid not in policy.categories:
            raise OptionsError(f"categories.{i}", f"unknown category {cid!r}")
    return list(chosen)


#: heads shipped in this package, for ``head: builtin:NAME``
BUILTIN_HEADS = Path(__file__).parent / "heads"
#: The semantic check reads windows of any prompt longer than one window: an embedding
#: is a mean over the prompt's tokens, so one harmful clause among twenty words of
#: style ("a pot boiling with a human head in it" in a cosy kitchen with herbs on the
#: sill, pastel colours, wes anderson, 35mm) is averaged away. The bag-of-words checks
#: keep the longer bar: on a short window one word weighs too much ("black and white,
#: cinematic homage to bergman" reads as offensive to the profanity model).
SEMANTIC_LONG_WORDS = WINDOW_WORDS


def _head_path(value: str, policy: Any) -> Path:
    """``head``: ``builtin:NAME`` (``heads/NAME.safetensors`` in this package; the
    default policy's is ``builtin:default``, made by ``benchmarks/train_default_head.py``)
    or a path relative to the policy file."""
    if value.startswith("builtin:"):
        name = value.removeprefix("builtin:")
        path = BUILTIN_HEADS / f"{name}.safetensors"
        if not re.fullmatch(r"[\w-]+", name) or not path.is_file():
            shipped = sorted(p.stem for p in BUILTIN_HEADS.glob("*.safetensors"))
            raise OptionsError("head", f"no builtin head {name!r} (shipped: {', '.join(shipped) or 'none'})")
        return path
    return _relative_to_policy(value, policy)


def _relative_to_policy(value: str, policy: Any) -> Path:
    """A path option: relative paths are relative to the policy file's folder."""
    path = Path(value).expanduser()
    source = getattr(policy, "source", None)
    if not path.is_absolute() and source and not str(source).startswith("<"):
        path = Path(str(source)).parent / path
    return path


class SemanticCheck:
    """Sentence-embedding similarity to each category (zero-shot) or trained per-category heads.

    Zero-shot: each category's description and examples are embedded once, when the
    check is built; a prompt's similarity to a category is its highest cosine
    similarity to any of them. The score is that similarity mapped affinely from
    [``low``, ``high``] onto [0, 1] and clipped (defaults 0.25 and 0.75, so a score of
    0.5 is a cosine of 0.50). Why those numbers: on the plain prompts of the
    benchmark's train split, safe prompts sit at a median cosine of 0.10-0.18 to each
    category and their 99th percentile at 0.36-0.45, while unsafe prompts have a median
    of 0.37-0.66 to their own category; a policy threshold of 0.5-0.6 thus fires only
    above the safe prompts' 99th percentile. A category's ``counterexamples`` (harmless
    look-alikes) lower the similarity of a prompt closer to one of them than to the
    examples (see ``_similarities``). The signal's reason names the closest description
    or example, and the counterexample when one lowered the score.

    Head mode: per-category logistic heads with Platt calibration, trained on an
    organization's labeled prompts with ``elens train text-head``; the score is the
    calibrated probability. ``head`` is the file's path, or ``builtin:NAME`` for a head
    shipped in this package (``builtin:default``: the default policy's, see
    :data:`BUILTIN_HEADS`).

    Either mode: a score under ``min_probability`` is not reported, and a score over
    ``max_score`` is reported as ``max_score`` (the reason keeps the real one). A
    category's thresholds, ``block_threshold`` included, apply to every check that
    reports it; these hold one check to a stricter bar than the others, or keep it from
    refusing on its own (the default policy's heads report at most 0.9, as a lexicon
    hit does: a revision, not a refusal).

    ``read_as`` maps what a name stands for to the names (``{"a world leader": ["joe
    biden", ...]}``): a prompt that names one is also read with the name replaced, as a
    view of its own (:class:`~elens_text._views.ReadAs`), since the model knows a name
    only as well as its training text did.

    ``device`` runs the model on a GPU (``cuda``; ``auto`` takes one when torch sees
    it) with the torch engine; the default is ONNX Runtime on the CPU. Two checks with
    the same model, engine and device share one copy of it and its recent embeddings.

    ``engine: onnxruntime-int8`` runs the model with 8-bit integer weights, about twice
    as fast on a CPU, its scores a few hundredths off the float model's. With
    ``recheck_margin`` a prompt whose score for some category lies that close to a bar
    it is judged against (the category's text threshold or block threshold, or
    ``min_probability``) is scored again by the float model, whose findings it then
    gets: the verdicts of the float model at near the int8 model's cost.
    """

    options_schema = {
        "type": "object",
        "additionalProperties": False,
        "properties": {
            "allow": {"type": "array", "items": {"type": "string"}},
            "ignore": {"type": "array", "items": {"type": "string"}},
            "read_as": {"type": "object", "propertyNames": {"minLength": 1},
                        "additionalProperties": {"type": "array", "items": {"type": "string", "minLength": 1}}},
            "mode": {"enum": ["zero-shot", "head"]},
            "categories": {"type": "array", "items": {"type": "string"}},
            "head": {"type": "string"},
            "batch_size": {"type": "integer", "minimum": 1},
            "model_path": {"type": "string"},
            "engine": {"enum": ["onnxruntime", "onnxruntime-int8", "torch", "transformers"]},
            "device": {"type": "string", "description": "cpu (default), auto (cuda when present), cuda, cuda:1, mps"},
            "low": {"type": "number"},
            "high": {"type": "number"},
            "min_probability": {"type": "number", "minimum": 0, "maximum": 1},
            "max_score": {"type": "number", "minimum": 0, "maximum": 1},
            "recheck_margin": {"type": "number", "minimum": 0, "maximum": 1},
        },
    }

    def __init__(self, options: dict, policy: Any):
        import numpy as np

        self.mode = options.get("mode", "zero-shot")
        # Harmless phrases and words with no bearing on any category ("trending on
        # artstation", "8k") are both left out of what the model reads: a prompt's
        # embedding is a mean over its tokens, so style tags dilute what it depicts.
        self.allow = allow_pattern(list(options.get("allow") or ()) + list(options.get("ignore") or ()))
        self.keep = policy_words(policy)
        self.read_as = ReadAs(options["read_as"]) if options.get("read_as") else None
        model_path = _relative_to_policy(options["model_path"], policy) if options.get("model_path") else None
        if model_path is not None and not model_path.is_dir():
            raise OptionsError("model_path", f"{model_path}: no such folder")
        head = str(options.get("head") or "")
        if self.mode == "head" and head.startswith("builtin:") and model_path is not None:
            # a head's weights mean something only on the embeddings they were trained on
            raise OptionsError("model_path", f"{head} was trained on the package's own MiniLM; "
                                             "leave model_path out, or train a head for this model")
        try:
            self.embedder = Embedder(model_path, int(options.get("batch_size", 64)), options.get("engine"),
                                     str(options.get("device", "cpu")))
        except ValueError as exc:
            raise OptionsError("device", str(exc)) from None
        self.low, self.high = float(options.get("low", 0.25)), float(options.get("high", 0.75))
        self.min_probability = float(options.get("min_probability", 0.0))
        self.max_score = float(options.get("max_score", 1.0))
        if self.max_score < self.min_probability:
            raise OptionsError("max_score", "must not be below min_probability")
        if self.high <= self.low:
            raise OptionsError("high", "must be greater than low")
        self.recheck_margin = float(options.get("recheck_margin", 0.0))
        #: (embedder, prototypes, counterexamples) of the float model that rechecks
        #: scores near a bar, or None
        self._exact: tuple[Any, Any, Any] | None = None
        if self.recheck_margin > 0:
            if self.embedder.engine_used != "onnxruntime-int8":
                raise OptionsError("recheck_margin", "only with engine onnxruntime-int8, whose scores near a bar "
                                                     "the float model rechecks")
            self._exact = (Embedder(model_path, self.embedder.batch_size, "onnxruntime"), None, None)
        if self.mode == "head":
            if not head:
                raise OptionsError("head", "head mode needs the path of a head file (elens train text-head) "
                                           "or builtin:default")
            from .heads import load_head

            path = _head_path(head, policy)
            if not path.is_file():
                raise OptionsError("head", f"{path}: no such head file (train one with `elens train text-head`)")
            try:
                self.head = load_head(path)
            except ElensError as exc:
                raise OptionsError("head", str(exc)) from None
            unknown = [c for c in self.head.categories if c not in policy.categories]
            if unknown:
                raise OptionsError("head", f"the head file scores categories the policy lacks: {', '.join(unknown)}")
            chosen = _categories(options, policy, default=self.head.categories)
            missing = [c for c in chosen if c not in self.head.categories]
            if missing:
                raise OptionsError("categories", f"the head file has no head for {', '.join(missing)}")
            dim = self.embedder([""]).shape[1]
            if self.head.weight.shape[1] != dim:
                raise OptionsError("head", f"the head expects {self.head.weight.shape[1]}-dimensional embeddings, "
                                           f"the model gives {dim} (trained on {self.head.embedding_model or '?'})")
            self.head = self.head.subset(chosen)
            self.categories = list(chosen)
            self._bars = _bars(self.categories, policy, self.min_probability)
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
        harmless = [(cid, text) for cid in self.categories for text in policy.categories[cid].get("counterexamples") or ()]
        self.prototype_texts = texts
        self.counterexample_texts = [text for _, text in harmless]
        every = self._embed_once(self.embedder, texts + self.counterexample_texts) if texts else \
            np.zeros((0, 384), dtype="float32")
        self.prototypes, self.counterexamples = every[:len(texts)], every[len(texts):]
        if self._exact is not None:
            every = self._embed_once(self._exact[0], texts + self.counterexample_texts) if texts else every
            self._exact = (self._exact[0], every[:len(texts)], every[len(texts):])
        self._bars = _bars(self.categories, policy, self.min_probability)
        owner_index = np.array([self.categories.index(o) for o in owners], dtype=int)
        counter_index = np.array([self.categories.index(cid) for cid, _ in harmless], dtype=int)
        self._owner_groups = _groups(owner_index, len(self.categories))
        self._counter_groups = _groups(counter_index, len(self.categories))

    def _embed_once(self, embedder: Embedder, texts: list[str]) -> Any:
        """The embeddings of a policy's descriptions, examples and counterexamples: a few
        hundred texts, seconds of MiniLM, so kept in the cache folder, keyed by the
        model's files, the engine and the texts; on a first load, the texts of the
        shipped default policy come from the package's seed (:mod:`elens_text._seed`)."""
        folder = Path(embedder.path).resolve()
        files = sorted(p for p in folder.iterdir() if p.is_file()) if folder.is_dir() else [folder]
        # The folder itself and how embeddings are made (pooling, token window) are part
        # of the key: two fine-tuned models can have files of the same sizes and times.
        # A GPU's arithmetic differs from the CPU's in the last bits: its own entry.
        where = () if embedder.device == "cpu" else (embedder.device,)
        key = files_key(files, str(folder), embedder.engine_used, *where, embedder.format, *texts)
        path = None if key is None else cache_dir() / f"semantic-prototypes-{key}.npz"
        arrays = cached_arrays(path, lambda: {"embeddings": seeded_embeddings(embedder, texts)},
                               valid=lambda a: "embeddings" in a and a["embeddings"].shape[0] == len(texts))
        return arrays["embeddings"]

    def _nearest(self, emb: Any, prototypes: Any, groups: Any) -> tuple[Any, Any]:
        """Per category: the highest cosine similarity to its prototypes (the columns
        ``groups`` lists for it, see :func:`_groups`) and which one gave it (-1 and 0 for a
        category without any)."""
        import numpy as np

        # one extra column below every cosine pads the shorter categories' rows; the
        # prototypes on the left: for one or two prompts BLAS is 1.5x faster that way round
        sims = np.concatenate([(prototypes @ emb.T).T, np.full((len(emb), 1), -2.0, dtype=emb.dtype)], axis=1)
        grouped = sims[:, groups]  # prompts x categories x their most prototypes
        best = grouped.max(axis=2).astype(float)
        which = groups[np.arange(len(groups)), grouped.argmax(axis=2)]
        empty = groups[:, 0] == sims.shape[1] - 1
        best[:, empty], which[:, empty] = -1.0, 0
        return best, which

    def _similarities(self, emb: Any, prototypes: Any = None,
                      counterexamples: Any = None) -> tuple[Any, Any, Any, Any, Any]:
        """Per category: the similarity that is scored, the highest cosine to the
        category's description and examples and which one gave it, and the same for its
        counterexamples.

        The scored similarity is the highest cosine to the description and examples,
        less by how much the prompt is closer still to one of the counterexamples: a
        prompt nearer "a boy swinging a baseball bat" than "a violent attack with a
        baseball bat" drops by the difference; one as near to both keeps its similarity.
        ``prototypes`` and ``counterexamples``: another model's embeddings of them."""
        prototypes = self.prototypes if prototypes is None else prototypes
        counterexamples = self.counterexamples if counterexamples is None else counterexamples
        best, which = self._nearest(emb, prototypes, self._owner_groups)
        harmless, which_harmless = self._nearest(emb, counterexamples, self._counter_groups)
        return _less_if_harmless(best, harmless), best, which, harmless, which_harmless

    def _calibrate(self, sims: Any) -> Any:
        import numpy as np

        return np.clip((sims - self.low) / (self.high - self.low), 0.0, 1.0)

    def _read(self, prompts: Sequence[str], exact: bool = False) -> tuple:
        """Every view of every prompt in one batch of embeddings (see _views), by the
        check's model or (``exact``) the float model that rechecks it: (texts, owners,
        scores per prompt and category, the view each came from, the zero-shot
        similarities or None)."""
        texts, owners = self.views(prompts)
        embedder, prototypes, counterexamples = self._exact if exact else (self.embedder, None, None)
        emb = embedder(texts)
        if self.mode == "head":
            matrix, rows = _best_view(self.head.predict(emb), owners, len(prompts))
            return texts, owners, matrix, rows, None
        similarities = self._similarities(emb, prototypes, counterexamples)
        sims, rows = _best_view(similarities[0], owners, len(prompts))
        return texts, owners, self._calibrate(sims), rows, similarities

    def views(self, prompts: Sequence[str]) -> tuple[list[str], list[int]]:
        """What the model reads for ``prompts`` (:func:`elens_text._views.expand`): a
        disguised prompt in its readable form alone, unless a word was respelled; a
        prompt naming one of ``read_as``'s names also with it replaced."""
        return expand(prompts, self.allow, self.keep, SEMANTIC_LONG_WORDS, written=False, read_as=self.read_as)

    def _near_a_bar(self, matrix: Any) -> list[int]:
        """The prompts (rows of ``matrix``) with a score within ``recheck_margin`` of a bar."""
        import numpy as np

        near = np.zeros(len(matrix), dtype=bool)
        for j, bars in enumerate(self._bars):
            for bar in bars:
                near |= np.abs(matrix[:, j] - bar) < self.recheck_margin
        return [int(i) for i in np.flatnonzero(near)]

    def scores(self, prompts: Sequence[str]) -> Any:
        """A (prompts x categories) matrix of scores in [0, 1], columns in ``self.categories``
        order: the model's own, before ``min_probability`` and ``max_score``."""
        import numpy as np

        if not prompts:
            return np.zeros((0, len(self.categories)))
        matrix = self._read(prompts)[2]
        near = self._near_a_bar(matrix) if self._exact is not None else []
        if near:
            matrix[near] = self._read([prompts[i] for i in near], exact=True)[2]
        return matrix

    def check(self, prompts: Sequence[str]) -> list[list[Signal]]:
        if not prompts:
            return []
        read = self._read(prompts)
        out = self._signals(prompts, *read)
        near = self._near_a_bar(read[2]) if self._exact is not None else []
        if near:
            again = [prompts[i] for i in near]
            exact = self._signals(again, *self._read(again, exact=True))
            for i, signals in zip(near, exact):
                out[i] = signals
        return out

    def _signals(self, prompts: Sequence[str], texts: list[str], owners: list[int], matrix: Any, rows: Any,
                 similarities: tuple | None) -> list[list[Signal]]:
        written: dict[int, str] = {}  # per prompt: a prompt has several signals

        # not self.read_as (the names table): the " (read as '...')" a reason ends with
        def how_read(row: int) -> str:
            i = owners[row]
            if i not in written:
                written[i] = as_written(prompts[i], self.allow)
            return _read_as(texts, owners, row, written[i])

        if self.mode == "head":
            least = max(self.min_probability, 0.01)  # the rest is noise in an explanation
            return [
                [Signal(cid, min(float(score), self.max_score), label="head",
                        reason=f"trained {cid} head: p={score:.3f}" + how_read(rows[i, j]))
                 for j, (cid, score) in enumerate(zip(self.categories, row)) if score >= least]
                for i, row in enumerate(matrix)
            ]
        _, best, which, harmless, which_harmless = similarities
        out = []
        for i, row in enumerate(matrix):
            signals = []
            for j, (cid, score) in enumerate(zip(self.categories, row)):
                if score > 0 and score >= self.min_probability:
                    r = rows[i, j]
                    reason = f"cosine {best[r, j]:.2f} to {_short(self.prototype_texts[which[r, j]])}"
                    if harmless[r, j] - best[r, j] >= 0.005:  # a lowering that rounds to 0.00 explains nothing
                        reason += (f", less {harmless[r, j] - best[r, j]:.2f} for being closer to harmless "
                                   f"{_short(self.counterexample_texts[which_harmless[r, j]])}")
                    signals.append(Signal(cid, min(float(score), self.max_score), label="zero-shot",
                                          reason=reason + how_read(r)))
            out.append(signals)
        return out


def _groups(index: Any, count: int) -> Any:
    """A (count x most) array: row ``j`` holds the columns whose ``index`` is ``j``, in
    order, then ``len(index)`` (the padding column :meth:`SemanticCheck._nearest` adds)
    to fill the row."""
    import numpy as np

    cols = [np.flatnonzero(index == j) for j in range(count)]
    out = np.full((count, max([len(c) for c in cols] + [1])), len(index), dtype=int)
    for j, c in enumerate(cols):
        out[j, :len(c)] = c
    return out


def _bars(categories: Sequence[str], policy: Any, min_probability: float) -> list[list[float]]:
    """Per category, the scores a finding is judged against: its text threshold and block
    threshold, and the check's ``min_probability``."""
    out = []
    for cid in categories:
        cat = policy.categories[cid]
        bars = [(cat.get(key) or {}).get("text") for key in ("thresholds", "block_threshold")]
        out.append([float(b) for b in bars if b is not None] + ([min_probability] if min_probability > 0 else []))
    return out


_nsfw: dict[str, Any] = {}
_load_lock = threading.Lock()


def nsfw_model_folder() -> Path:
    """The pipeline folder inside the ``en-prompt-nsfw-pipeline-bow`` package, found
    without importing the package (its ``__init__`` imports spaCy)."""
    import importlib.util

    spec = importlib.util.find_spec("en_prompt_nsfw_pipeline_bow")
    if spec is None or not spec.submodule_search_locations:
        raise ElensError("the en-prompt-nsfw-pipeline-bow package is not installed")
    root = Path(list(spec.submodule_search_locations)[0])
    try:
        # a spaCy package keeps its pipeline in "<lang>_<name>-<version>" (spacy.util.load_model_from_init_py)
        meta = json.loads((root / "meta.json").read_text(encoding="utf-8"))
        folder = root / f"{meta['lang']}_{meta['name']}-{meta['version']}"
    except (OSError, ValueError, KeyError) as exc:
        raise ElensError(f"{root / 'meta.json'}: cannot read the package's name and version ({exc})") from None
    if not (folder / "tokenizer").is_file() or not (folder / "textcat" / "model").is_file():
        raise ElensError(f"{folder}: not a pipeline folder (no tokenizer or textcat/model)")
    return folder


class NsfwPromptCheck:
    """The ``en-prompt-nsfw-pipeline-bow`` classifier: safe, adult, cp, underage_safe.

    Its labels map to policy categories (defaults: adult -> sexual, cp -> sexual_minors);
    the score is the classifier's probability for the label. The package's files are
    read by :mod:`elens_text._nsfw_bow`, which gives spaCy's probabilities without
    importing spaCy (and, through it, torch).
    """

    options_schema = {
        "type": "object",
        "additionalProperties": False,
        "properties": {
            "allow": {"type": "array", "items": {"type": "string"}},
            "labels": {
                "type": "object",
                "propertyNames": {"enum": ["safe", "adult", "cp", "underage_safe"]},
                "additionalProperties": {"type": ["string", "null"]},
            }
        },
    }
    DEFAULT_LABELS = {"adult": "sexual", "cp": "sexual_minors"}

    def __init__(self, options: dict, policy: Any):
        self.allow = allow_pattern(options.get("allow") or ())
        self.keep = policy_words(policy)
        labels = dict(self.DEFAULT_LABELS)
        for label, cid in (options.get("labels") or {}).items():
            if cid is not None and cid not in policy.categories:
                raise OptionsError(f"labels.{label}", f"unknown category {cid!r}")
            labels[label] = cid
        self.labels = {label: cid for label, cid in labels.items() if cid and cid in policy.categories}
        with _load_lock:
            if "model" not in _nsfw:
                from ._nsfw_bow import BowClassifier

                _nsfw["model"] = BowClassifier(nsfw_model_folder())
        self.model = _nsfw["model"]
        self._columns = [self.model.labels.index(label) for label in self.labels]

    def check(self, prompts: Sequence[str]) -> list[list[Signal]]:
        if not prompts:
            return []
        texts, owners = expand(prompts, self.allow, self.keep)
        labels = list(self.labels)
        matrix = self.model(texts)[:, self._columns]
        best, rows = _best_view(matrix, owners, len(prompts))
        return [
            [Signal(self.labels[label], float(best[i, j]), label=label,
                    reason=f"NSFW prompt classifier: {label}" + _read_as(texts, owners, rows[i, j]))
             for j, label in enumerate(labels)]
            for i in range(len(prompts))
        ]


class ProfanityCheck:
    """``alt-profanity-check``: the probability that a prompt is offensive language.

    The package's model is a TF-IDF vectorizer and five sigmoid-calibrated linear SVMs;
    its ``predict_prob`` spends about 30 ms per call in scikit-learn's input checks. The
    same arithmetic, read from the package's fitted model, runs here in numpy in well
    under a millisecond (the test compares both).
    """

    options_schema = {
        "type": "object",
        "additionalProperties": False,
        "properties": {"categories": {"type": "array", "items": {"type": "string"}},
                       "allow": {"type": "array", "items": {"type": "string"}},
                       "min_probability": {"type": "number", "minimum": 0, "maximum": 1}},
    }

    def __init__(self, options: dict, policy: Any):
        self.categories = _categories(options, policy, default=["harassment"])
        self._model = _profanity_model()
        self.allow = allow_pattern(options.get("allow") or ())
        self.keep = policy_words(policy)
        # A category's text threshold is shared by every check that reports it; this
        # lets a policy hold the classifier to a stricter bar than, say, the semantic
        # check on the same category.
        self.min_probability = float(options.get("min_probability", 0.0))

    def check(self, prompts: Sequence[str]) -> list[list[Signal]]:
        import numpy as np

        if not prompts:
            return []
        texts, owners = expand(prompts, self.allow, self.keep)
        probs = np.array(self._model.predict_prob(texts)).reshape(-1, 1)
        best, rows = _best_view(probs, owners, len(prompts))
        return [
            [Signal(cid, float(best[i, 0]), label="offensive",
                    reason="offensive-language classifier" + _read_as(texts, owners, rows[i, 0]))
             for cid in self.categories] if best[i, 0] >= self.min_probability else []
            for i in range(len(prompts))
        ]


class _LinearProfanity:
    """TF-IDF (l2-normalised) -> mean over folds of sigmoid(a * (w.x + b) + c)."""

    def __init__(self, arrays: dict[str, Any]):
        import re

        import numpy as np

        self.vocabulary = dict(zip(arrays["terms"].tolist(), arrays["columns"].tolist()))
        self.idf = np.asarray(arrays["idf"], dtype=np.float64)
        self.pattern = re.compile(str(arrays["token_pattern"]))
        self.lowercase = bool(arrays["lowercase"])
        self.weight = np.asarray(arrays["weight"], dtype=np.float64)
        self.intercept = np.asarray(arrays["intercept"], dtype=np.float64)
        self.a = np.asarray(arrays["a"], dtype=np.float64)
        self.b = np.asarray(arrays["b"], dtype=np.float64)

    @staticmethod
    def arrays_from(vectorizer: Any, model: Any) -> dict[str, Any]:
        """The numbers the arithmetic needs, read from the package's fitted scikit-learn objects."""
        import numpy as np

        folds = model.calibrated_classifiers_
        vocab = vectorizer.vocabulary_
        return {
            "terms": np.array(list(vocab)), "columns": np.array(list(vocab.values()), dtype=np.int64),
            "idf": np.asarray(vectorizer.idf_, dtype=np.float64),
            "token_pattern": np.array(vectorizer.token_pattern), "lowercase": np.array(bool(vectorizer.lowercase)),
            "weight": np.stack([np.asarray(f.estimator.coef_[0], dtype=np.float64) for f in folds], axis=1),
            "intercept": np.array([float(f.estimator.intercept_[0]) for f in folds]),
            "a": np.array([float(f.calibrators[0].a_) for f in folds]),
            "b": np.array([float(f.calibrators[0].b_) for f in folds]),
        }

    def predict_prob(self, texts: Sequence[str]) -> list[float]:
        import numpy as np

        out = []
        for text in texts:
            counts: dict[int, int] = {}
            for token in self.pattern.findall(text.lower() if self.lowercase else text):
                j = self.vocabulary.get(token)
                if j is not None:
                    counts[j] = counts.get(j, 0) + 1
            df = self.intercept.copy()
            if counts:
                idx = np.fromiter(counts, dtype=np.int64, count=len(counts))
                tfidf = np.fromiter(counts.values(), dtype=np.float64, count=len(counts)) * self.idf[idx]
                tfidf /= np.sqrt((tfidf * tfidf).sum())
                df += tfidf @ self.weight[idx]
            out.append(float(np.mean(1.0 / (1.0 + np.exp(self.a * df + self.b)))))
        return out


_profanity: list[_LinearProfanity] = []


def _profanity_cache_file() -> Path | None:
    """Where the extracted arrays of the installed package are kept, keyed by its files."""
    import importlib.util

    spec = importlib.util.find_spec("profanity_check")
    if spec is None or not spec.origin:
        return None
    data = Path(spec.origin).parent / "data"
    key = files_key([data / "model.joblib", data / "vectorizer.joblib"])
    return None if key is None else cache_dir() / f"profanity-linear-{key}.npz"


def _profanity_model() -> _LinearProfanity:
    """The package's model as numpy arrays. Unpickling it needs scikit-learn (seconds to
    import), so the arrays are cached beside the user's other elens files and read
    back with numpy alone; the cache is keyed by the package's data files."""
    with _load_lock:
        if not _profanity:
            def unpickle() -> dict[str, Any]:
                from profanity_check import profanity_check

                return _LinearProfanity.arrays_from(profanity_check.vectorizer, profanity_check.model)

            _profanity.append(_LinearProfanity(cached_arrays(_profanity_cache_file(), unpickle)))
        return _profanity[0]
