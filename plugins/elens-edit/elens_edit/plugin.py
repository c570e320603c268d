"""The image editor ``region``: hide what a finding points at.

A finding with a box is blurred, pixelated or blacked out inside the box, grown by
``padding`` and with feathered edges. A finding without a box is masked by CLIPSeg
(``clipseg``: a local model folder) from the category's mask prompt or its policy
``concepts``; with no CLIPSeg configured, or nothing found, the whole image is
edited — the safe side when a policy asked for something to be hidden.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from PIL import Image, ImageFilter

from elens import OptionsError, hookimpl

from .masks import box_mask, clipseg_mask

METHODS = ("blur", "pixelate", "blackout")

_METHOD_OPTIONS = {
    "method": {"enum": list(METHODS)},
    "strength": {"type": "number", "exclusiveMinimum": 0},
    "padding": {"type": "number", "minimum": 0},
    "feather": {"type": "integer", "minimum": 0},
}


class RegionEditor:
    options_schema = {
        "type": "object",
        "additionalProperties": False,
        "properties": {
            **_METHOD_OPTIONS,
            "by_category": {
                "type": "object",
                "additionalProperties": {"type": "object", "additionalProperties": False, "properties": _METHOD_OPTIONS},
            },
            "clipseg": {"type": ["string", "null"]},
            "mask_prompts": {"type": "object", "additionalProperties": {"type": "array", "items": {"type": "string"}}},
            "mask_threshold": {"type": "number", "minimum": 0, "maximum": 1},
        },
    }

    def __init__(self, options: dict, policy: Any):
        self.policy = policy
        self.default = {
            "method": options.get("method", "blur"),
            "strength": float(options.get("strength", 0.5)),
            "padding": float(options.get("padding", 0.15)),
            "feather": int(options.get("feather", 4)),
        }
        self.by_category = {}
        for cid, spec in (options.get("by_category") or {}).items():
            if cid not in policy.categories:
                raise OptionsError(f"by_category.{cid}", f"unknown category {cid!r}")
            self.by_category[cid] = {**self.default, **spec}
        for cid in options.get("mask_prompts") or {}:
            if cid not in policy.categories:
                raise OptionsError(f"mask_prompts.{cid}", f"unknown category {cid!r}")
        self.mask_prompts = options.get("mask_prompts") or {}
        self.clipseg = options.get("clipseg")
        self.mask_threshold = float(options.get("mask_threshold", 0.4))
        if self.clipseg:
            from pathlib import Path

            from .masks import _clipseg

            path = Path(self.clipseg)
            if not path.is_absolute() and getattr(policy, "source", None):
                candidate = Path(str(policy.source)).parent / path
                self.clipseg = str(candidate) if candidate.exists() else str(path)
            try:
                _clipseg(self.clipseg)
            except (OSError, ValueError) as exc:
                raise OptionsError("clipseg", f"cannot load CLIPSeg from {self.clipseg!r} (a local folder): {exc}")

    def _mask(self, image: Image.Image, finding: Any, spec: dict) -> Image.Image:
        if finding.region is not None:
            r = finding.region
            return box_mask(image.size, (r.x0, r.y0, r.x1, r.y1), spec["padding"], spec["feather"])
        if self.clipseg:
            prompts = self.mask_prompts.get(finding.category) or list(
                (self.policy.categories.get(finding.category) or {}).get("concepts") or []
            ) or [finding.category.replace("_", " ")]
            mask = clipseg_mask(image, prompts, self.clipseg, self.mask_threshold)
            if np.asarray(mask).any():
                return mask
        return Image.new("L", image.size, 255)

    def edit(self, image: Image.Image, finding: Any) -> Image.Image:
        spec = self.by_category.get(finding.category, self.default)
        image = image.convert("RGB")
        mask = self._mask(image, finding, spec)
        return Image.composite(hidden(image, spec["method"], spec["strength"]), image, mask)


def hidden(image: Image.Image, method: str, strength: float) -> Image.Image:
    """The whole image with ``method`` applied; the mask decides where it shows.

    ``strength`` scales with the image: the blur radius and pixel size are that
    fraction of a tenth of the shorter side (0.5 on 512 px: radius and blocks of 25 px).
    """
    scale = max(1.0, min(image.size) / 10 * strength)
    if method == "blackout":
        return Image.new("RGB", image.size, (0, 0, 0))
    if method == "pixelate":
        block = max(2, int(scale))
        small = image.resize((max(1, image.width // block), max(1, image.height // block)), Image.BILINEAR)
        return small.resize(image.size, Image.NEAREST)
    return image.filter(ImageFilter.GaussianBlur(scale))


@hookimpl
def register_image_editors(register):
    register("region", RegionEditor)
