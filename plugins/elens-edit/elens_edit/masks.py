"""Masks: a padded, feathered box, or a text-prompted CLIPSeg segmentation."""

from __future__ import annotations

import threading
from typing import Any

import numpy as np
from PIL import Image, ImageDraw, ImageFilter


def box_mask(size: tuple[int, int], box: tuple[int, int, int, int], padding: float, feather: int) -> Image.Image:
    """An 'L' mask: 255 inside the box grown by ``padding`` (a fraction of its size), soft edges."""
    width, height = size
    x0, y0, x1, y1 = box
    pad_x, pad_y = (x1 - x0) * padding, (y1 - y0) * padding
    grown = (max(0, int(x0 - pad_x)), max(0, int(y0 - pad_y)), min(width, int(x1 + pad_x)), min(height, int(y1 + pad_y)))
    mask = Image.new("L", size, 0)
    if grown[2] > grown[0] and grown[3] > grown[1]:
        ImageDraw.Draw(mask).rectangle((grown[0], grown[1], grown[2] - 1, grown[3] - 1), fill=255)
    if feather > 0:
        # Feather inwards only, so that nothing outside the padded box changes.
        inner = mask.filter(ImageFilter.MinFilter(2 * feather + 1)).filter(ImageFilter.GaussianBlur(feather / 2))
        mask = Image.fromarray(np.minimum(np.asarray(inner), np.asarray(mask)))
    return mask


_models: dict[str, tuple[Any, Any]] = {}
_lock = threading.Lock()


def _clipseg(path: str) -> tuple[Any, Any]:
    with _lock:
        if path not in _models:
            from transformers import CLIPSegForImageSegmentation, CLIPSegProcessor

            processor = CLIPSegProcessor.from_pretrained(path, local_files_only=True)
            model = CLIPSegForImageSegmentation.from_pretrained(path, local_files_only=True).eval()
            _models[path] = (processor, model)
        return _models[path]


def clipseg_mask(image: Image.Image, prompts: list[str], model_path: str, threshold: float) -> Image.Image:
    """An 'L' mask of where CLIPSeg finds any of ``prompts`` (sigmoid score >= threshold)."""
    import torch

    processor, model = _clipseg(model_path)
    inputs = processor(text=prompts, images=[image] * len(prompts), padding=True, return_tensors="pt")
    with torch.no_grad():
        logits = model(**inputs).logits
    if logits.ndim == 2:
        logits = logits.unsqueeze(0)
    probs = torch.sigmoid(logits).amax(dim=0).numpy()
    small = Image.fromarray(((probs >= threshold) * 255).astype(np.uint8), "L")
    return small.resize(image.size, Image.BILINEAR).point(lambda v: 255 if v >= 128 else 0)
