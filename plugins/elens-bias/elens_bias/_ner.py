"""Optional spaCy named-entity recognition of people (planner option ``ner``).

``off``: none. ``auto``: the first installed spaCy pipeline package with an ``ner``
component, if any (none is required; without one the planner relies on the policy's
name list and the capitalised-name heuristic). Any other value names a spaCy
package that must be installed and have ``ner``. Pipelines are loaded once per process.
"""

from __future__ import annotations

import importlib.util
import json
import threading
from importlib.metadata import entry_points
from pathlib import Path
from typing import Any, Callable

#: Score of a PERSON entity found by NER (the policy list scores 1.0, the heuristic 0.6).
NER_SCORE = 0.9

_loaded: dict[str, Any] = {}
_lock = threading.Lock()


def _meta(name: str) -> dict[str, Any] | None:
    """A spaCy package's meta.json, read without importing spaCy (which takes seconds)."""
    spec = importlib.util.find_spec(name)
    if spec is None or not spec.submodule_search_locations:
        return None
    for folder in spec.submodule_search_locations:
        path = Path(folder) / "meta.json"
        if path.is_file():
            return json.loads(path.read_text())
    return None


def _has_ner(name: str) -> bool:
    try:
        meta = _meta(name)
    except (OSError, ValueError, ImportError):  # a broken package must not break planning
        return False
    return bool(meta) and "ner" in meta.get("pipeline", [])


def _find(setting: str) -> str | None:
    if setting != "auto":
        if importlib.util.find_spec("spacy") is None:
            raise LookupError(f"spaCy is not installed, so the NER model {setting!r} cannot be used")
        if importlib.util.find_spec(setting) is None:
            raise LookupError(f"no spaCy package {setting!r} is installed")
        if not _has_ner(setting):
            raise LookupError(f"spaCy package {setting!r} has no ner component")
        return setting
    if importlib.util.find_spec("spacy") is None:
        return None
    names = sorted({ep.value.split(":")[0] for ep in entry_points(group="spacy_models")})
    return next((name for name in names if _has_ner(name)), None)


def load(setting: str) -> Callable[[str], list[tuple[int, int, str, float]]] | None:
    """A function prompt -> [(start, end, name, score)] of PERSON entities, or None."""
    if setting == "off":
        return None
    name = _find(setting)
    if name is None:
        return None
    with _lock:
        if name not in _loaded:
            import spacy

            keep = {"ner", "tok2vec", "transformer"}
            exclude = [p for p in (_meta(name) or {}).get("pipeline", []) if p not in keep]
            _loaded[name] = spacy.load(name, exclude=exclude)
        nlp = _loaded[name]

    def people(prompt: str) -> list[tuple[int, int, str, float]]:
        return [(e.start_char, e.end_char, e.text, NER_SCORE) for e in nlp(prompt).ents if e.label_ == "PERSON"]

    return people
