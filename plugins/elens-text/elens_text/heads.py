"""Per-category linear heads over MiniLM embeddings: training and loading.

A head file (safetensors) holds, for K categories: ``weight`` (K x 384), ``bias`` (K),
and Platt calibration ``scale`` and ``shift`` (K): score = sigmoid(scale·(w·e + b) + shift).
Its metadata names the categories, the embedding model and the labeled CSV it was
trained on (sha256 of the file's bytes and its row counts), so a reviewer can tell which
data a head learnt from.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from elens import ElensError, InputError

from ._csv import read_rows

_CATEGORY_ID = re.compile(r"[a-z][a-z0-9_]*")


@dataclass
class Head:
    categories: list[str]
    weight: Any
    bias: Any
    scale: Any
    shift: Any
    embedding_model: str = ""
    training_data: dict | None = None  # {"sha256", "rows", "counts"}; None in files from before it was written

    def subset(self, categories: list[str]) -> "Head":
        idx = [self.categories.index(c) for c in categories]
        return Head(list(categories), self.weight[idx], self.bias[idx], self.scale[idx], self.shift[idx],
                    self.embedding_model, self.training_data)

    def predict(self, embeddings: Any) -> Any:
        import numpy as np

        logits = embeddings @ self.weight.T + self.bias
        return 1.0 / (1.0 + np.exp(-(self.scale * logits + self.shift)))


def load_head(path: str | Path) -> Head:
    from safetensors import safe_open
    from safetensors.numpy import load_file

    path = Path(path)
    if not path.is_file():
        raise ElensError(f"{path}: no such head file (train one with `elens train text-head`)")
    try:
        tensors = load_file(str(path))
        with safe_open(str(path), framework="np") as fh:
            meta = fh.metadata() or {}
        categories = json.loads(meta.get("categories", "[]"))
        head = Head(categories, tensors["weight"], tensors["bias"], tensors["scale"], tensors["shift"],
                    meta.get("embedding_model", ""))
    except Exception as exc:  # noqa: BLE001 - safetensors raises its own SafetensorError
        raise ElensError(f"{path}: not an elens text-head file ({exc})") from None
    if "training_data" in meta:
        try:
            head.training_data = json.loads(meta["training_data"])
        except ValueError:
            head.training_data = None
        if not isinstance(head.training_data, dict) or not isinstance(head.training_data.get("sha256"), str):
            raise ElensError(f"{path}: metadata training_data: not a JSON object with the data's sha256")
    k = len(categories)
    if not categories or head.weight.shape[0] != k or any(t.shape != (k,) for t in (head.bias, head.scale, head.shift)):
        raise ElensError(f"{path}: not an elens text-head file (shapes do not match {k} categories)")
    return head


def read_labeled_csv(path: str | Path, raw: bytes | None = None) -> tuple[list[str], list[str]]:
    """Rows of ``prompt,category`` (of ``raw``, the file's bytes, when given); a bad row
    is a one-line error naming file and line."""
    prompts, labels = [], []
    for line, row in read_rows(path, ("prompt", "category"), raw):
        prompt, category = row["prompt"], row["category"]
        if not prompt:
            raise InputError(f"{path}:{line}: prompt: empty")
        if not category:
            raise InputError(f"{path}:{line}: category: empty (use 'safe' for a safe prompt)")
        if not _CATEGORY_ID.fullmatch(category):
            raise InputError(f"{path}:{line}: category: {category!r} is not a category id ([a-z][a-z0-9_]*)")
        prompts.append(prompt)
        labels.append(category)
    return prompts, labels


def train_head(embeddings: Any, labels: list[str], categories: list[str]) -> Head:
    """One-vs-rest logistic regression per category, Platt-calibrated on out-of-fold scores."""
    import numpy as np
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import cross_val_predict

    weights, biases, scales, shifts = [], [], [], []
    labels_arr = np.array(labels)
    for cid in categories:
        y = (labels_arr == cid).astype(int)
        if y.sum() < 2 or (1 - y).sum() < 2:
            raise InputError(f"category {cid!r}: needs at least 2 positive and 2 negative rows")
        model = LogisticRegression(C=4.0, max_iter=2000, class_weight="balanced")
        folds = int(min(5, y.sum(), (1 - y).sum()))
        oof = cross_val_predict(model, embeddings, y, cv=folds, method="decision_function")
        platt = LogisticRegression(C=1e6, max_iter=1000).fit(oof.reshape(-1, 1), y)
        model.fit(embeddings, y)
        weights.append(model.coef_[0])
        biases.append(model.intercept_[0])
        scales.append(platt.coef_[0][0])
        shifts.append(platt.intercept_[0])
    f32 = np.float32
    return Head(categories, np.array(weights, f32), np.array(biases, f32), np.array(scales, f32), np.array(shifts, f32))


def save_head(head: Head, path: str | Path, model_id: str) -> None:
    from safetensors.numpy import save_file

    metadata = {"categories": json.dumps(head.categories), "embedding_model": model_id, "format": "elens-text-head-1"}
    if head.training_data is not None:
        metadata["training_data"] = json.dumps(head.training_data, sort_keys=True)
    save_file({"weight": head.weight, "bias": head.bias, "scale": head.scale, "shift": head.shift}, str(path),
              metadata=metadata)


def describe_data(raw: bytes, labels: list[str]) -> dict:
    """What a head records of its training data: the sha256 of the CSV's bytes
    (``sha256sum`` of the file gives the same) and how many rows each label had."""
    import hashlib

    digest = hashlib.sha256(raw).hexdigest()
    return {"sha256": digest, "rows": len(labels), "counts": {c: labels.count(c) for c in sorted(set(labels))}}
