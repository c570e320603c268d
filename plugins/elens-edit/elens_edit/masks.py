"""Masks as float arrays in [0, 1] (1: hide): a padded, feathered box, or a CLIPSeg segmentation.

Feathering only ever fades *inwards*, so nothing outside the (padded) box or the
segmented area changes; the soft band lies inside it.
"""

from __future__ import annotations

import threading
from typing import Any, Sequence

import numpy as np
from PIL import Image


def padding_px(padding: float | str, extent: float) -> float:
    """Padding in pixels: ``"12px"`` as given, a number as a fraction of ``extent``."""
    if isinstance(padding, str):
        return float(padding.strip().removesuffix("px"))
    return float(padding) * extent


def grow_box(box: tuple[int, int, int, int], size: tuple[int, int], padding: float | str) -> tuple[int, int, int, int]:
    """The box grown by ``padding`` on every side (a fraction of its width/height, or "Npx"), clipped."""
    width, height = size
    x0, y0, x1, y1 = box
    pad_x = padding_px(padding, x1 - x0)
    pad_y = padding_px(padding, y1 - y0)
    return (
        max(0, int(np.floor(x0 - pad_x))),
        max(0, int(np.floor(y0 - pad_y))),
        min(width, int(np.ceil(x1 + pad_x))),
        min(height, int(np.ceil(y1 + pad_y))),
    )


def _smooth(t: np.ndarray) -> np.ndarray:
    t = np.clip(t, 0.0, 1.0)
    return t * t * (3 - 2 * t)


def box_alpha(size: tuple[int, int], box: tuple[int, int, int, int], feather: int) -> np.ndarray:
    """Alpha (H, W): 1 inside ``box`` (x1, y1 exclusive), 0 outside, ramping over ``feather`` px inside the edge."""
    width, height = size
    x0, y0, x1, y1 = box
    alpha = np.zeros((height, width), np.float32)
    if x1 <= x0 or y1 <= y0:
        return alpha
    if feather <= 0:
        alpha[y0:y1, x0:x1] = 1.0
        return alpha
    # Distance (in pixels, 1 at the border pixel) to the nearest edge of the box.
    dx = np.minimum(np.arange(x0, x1) - x0, x1 - 1 - np.arange(x0, x1)) + 1
    dy = np.minimum(np.arange(y0, y1) - y0, y1 - 1 - np.arange(y0, y1)) + 1
    inside = np.minimum(dy[:, None], dx[None, :]).astype(np.float32)
    alpha[y0:y1, x0:x1] = _smooth(inside / (feather + 1))
    return alpha


def shape_alpha(hard: np.ndarray, padding: float | str, feather: int) -> np.ndarray:
    """Alpha for an arbitrary boolean mask: grown by ``padding``, then feathered inwards."""
    from scipy import ndimage

    hard = np.asarray(hard, bool)
    if not hard.any():
        return np.zeros(hard.shape, np.float32)
    ys, xs = np.nonzero(hard)
    grow = padding_px(padding, min(xs.max() - xs.min() + 1, ys.max() - ys.min() + 1))
    if grow > 0 and not hard.all():
        hard = ndimage.distance_transform_edt(~hard) <= grow
    if feather <= 0:
        return hard.astype(np.float32)
    inside = ndimage.distance_transform_edt(hard).astype(np.float32)
    if hard.all():  # no edge to fade from
        return np.ones(hard.shape, np.float32)
    return _smooth(inside / (feather + 1)) * hard


_models: dict[str, tuple[Any, Any]] = {}
_lock = threading.Lock()


def load_clipseg(path: str) -> tuple[Any, Any]:
    """(processor, model) from a local CLIPSeg folder, loaded once per process."""
    with _lock:
        if path not in _models:
            from transformers import CLIPSegForImageSegmentation, CLIPSegProcessor

            processor = CLIPSegProcessor.from_pretrained(path, local_files_only=True)
            model = CLIPSegForImageSegmentation.from_pretrained(path, local_files_only=True).eval()
            _models[path] = (processor, model)
        return _models[path]


def clipseg_probabilities(image: Image.Image, prompts: Sequence[str], path: str) -> np.ndarray:
    """Per-pixel probability (H, W) that any of ``prompts`` is there, resized to the image.

    The model sees the image as its processor prepares it; the official CLIPSeg
    processors resize without cropping, so the map is stretched back to the image.
    """
    import torch

    processor, model = load_clipseg(path)
    prompts = list(prompts)
    inputs = processor(text=prompts, images=[image] * len(prompts), padding=True, return_tensors="pt")
    with torch.no_grad():
        logits = model(**inputs).logits
    if logits.ndim == 2:  # one prompt: transformers squeezes the batch
        logits = logits.unsqueeze(0)
    probs = torch.sigmoid(logits).amax(dim=0).float().numpy()
    return np.asarray(Image.fromarray(probs, "F").resize(image.size, Image.BILINEAR), np.float32)


def clipseg_mask(image: Image.Image, prompts: Sequence[str], path: str, threshold: float) -> np.ndarray:
    """Boolean (H, W): where CLIPSeg finds any of ``prompts`` with probability >= ``threshold``."""
    return clipseg_probabilities(image, prompts, path) >= threshold
