"""The image editor ``region``: hide what a finding points at.

A finding with a box (``finding.region``) is blurred, pixelated or blacked out
inside the box grown by ``padding``, with edges feathered inwards over ``feather``
pixels: pixels outside the padded box never change.

A finding without a box is masked by CLIPSeg when ``clipseg`` names a local model
folder (loaded with ``from_pretrained(..., local_files_only=True)``; nothing is
downloaded). Its text prompts are ``mask_prompts[category]`` or else the
category's policy ``concepts`` (e.g. "nude body"), or else the category id; pixels
whose probability reaches ``mask_threshold`` are hidden (the mask grown by
``mask_grow`` pixels, then feathered inwards over ``mask_feather`` pixels). With no CLIPSeg
configured, or when CLIPSeg finds nothing, the **whole image** is edited: the
policy asked for something to be hidden and the editor cannot tell where, so it
errs on the safe side.

Options (each of ``method``, ``strength``, ``padding``, ``feather`` may be set per
category under ``by_category``)::

    method: blur | pixelate | blackout   # default blur
    strength: 0.5     # blur radius / pixel block = strength x a tenth of the image's shorter side
    padding: 0.15     # a fraction of the box's width/height, or pixels as "12px"
    feather: 4        # pixels of soft edge, inside the padded box
    by_category: {public_figure: {method: blur}, nudity: {method: pixelate}}
    clipseg: models/clipseg-rd64-refined   # a local folder; relative to the policy file
    mask_prompts: {nudity: [nude body]}
    mask_threshold: 0.4
    mask_grow: 0      # pixels to grow a CLIPSeg mask by (``padding`` applies to boxes only)
    mask_feather: 0   # pixels of soft edge inside a CLIPSeg mask (``feather`` applies to boxes only)

The editor returns a new image and never changes the one it is given.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image, ImageFilter

from elens import OptionsError, hookimpl

from .masks import box_alpha, clipseg_mask, grow_box, load_clipseg, shape_alpha

METHODS = ("blur", "pixelate", "blackout")
DEFAULTS = {"method": "blur", "strength": 0.5, "padding": 0.15, "feather": 4}

_PADDING = {
    "oneOf": [
        {"type": "number", "minimum": 0},
        {"type": "string", "pattern": r"^\s*[0-9]+(\.[0-9]+)?\s*px$"},
    ]
}
_METHOD_OPTIONS = {
    "method": {"enum": list(METHODS)},
    "strength": {"type": "number", "exclusiveMinimum": 0, "maximum": 10},
    "padding": _PADDING,
    "feather": {"type": "integer", "minimum": 0},
}


class RegionEditor:
    """Blur, pixelate or black out a finding's region (or its CLIPSeg mask, or the whole image)."""

    options_schema = {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "type": "object",
        "additionalProperties": False,
        "properties": {
            **_METHOD_OPTIONS,
            "by_category": {
                "type": "object",
                "additionalProperties": {"type": "object", "additionalProperties": False,
                                         "properties": _METHOD_OPTIONS},
            },
            "clipseg": {"type": ["string", "null"]},
            "mask_prompts": {
                "type": "object",
                "additionalProperties": {
                    "oneOf": [{"type": "string", "minLength": 1},
                              {"type": "array", "minItems": 1, "items": {"type": "string", "minLength": 1}}]
                },
            },
            "mask_threshold": {"type": "number", "minimum": 0, "maximum": 1},
            "mask_grow": {"type": "integer", "minimum": 0},
            "mask_feather": {"type": "integer", "minimum": 0},
        },
    }

    def __init__(self, options: dict, policy: Any):
        self.policy = policy
        self.default = _method_spec(options, DEFAULTS, "")
        self.by_category: dict[str, dict] = {}
        for cid, spec in (options.get("by_category") or {}).items():
            _known_category(policy, cid, f"by_category.{cid}")
            self.by_category[cid] = _method_spec(spec or {}, self.default, f"by_category.{cid}.")
        self.mask_prompts: dict[str, list[str]] = {}
        for cid, prompts in (options.get("mask_prompts") or {}).items():
            _known_category(policy, cid, f"mask_prompts.{cid}")
            self.mask_prompts[cid] = [prompts] if isinstance(prompts, str) else list(prompts)
        self.mask_threshold = float(options.get("mask_threshold", 0.4))
        self.mask_grow = int(options.get("mask_grow", 0))
        self.mask_feather = int(options.get("mask_feather", 0))
        if not 0 <= self.mask_threshold <= 1:
            raise OptionsError("mask_threshold", "must be between 0 and 1")
        self.clipseg = _resolve(options.get("clipseg"), policy)
        if self.clipseg:
            try:  # fail when the policy loads, not on the first image that needs a mask
                load_clipseg(self.clipseg)
            except (OSError, ValueError, EnvironmentError) as exc:
                raise OptionsError(
                    "clipseg", f"cannot load CLIPSeg from {self.clipseg!r} (a local model folder): {exc}"
                ) from exc

    def prompts_for(self, category: str) -> list[str]:
        """CLIPSeg's text prompts for a category: options, else the policy's concepts, else the id."""
        concepts = (self.policy.categories.get(category) or {}).get("concepts") or []
        return self.mask_prompts.get(category) or list(concepts) or [category.replace("_", " ")]

    def alpha(self, image: Image.Image, finding: Any) -> np.ndarray:
        """Where ``edit`` hides (H, W floats in [0, 1]) for this finding."""
        spec = self.by_category.get(finding.category, self.default)
        if finding.region is not None:
            r = finding.region
            box = grow_box((r.x0, r.y0, r.x1, r.y1), image.size, spec["padding"])
            return box_alpha(image.size, box, spec["feather"])
        if self.clipseg:
            hard = clipseg_mask(image, self.prompts_for(finding.category), self.clipseg, self.mask_threshold)
            if hard.any():
                return shape_alpha(hard, f"{self.mask_grow}px", self.mask_feather)
        return np.ones((image.height, image.width), np.float32)

    def edit(self, image: Image.Image, finding: Any) -> Image.Image:
        spec = self.by_category.get(finding.category, self.default)
        base = image.convert("RGB")  # a copy: the caller's image is never changed
        alpha = self.alpha(base, finding)
        ys, xs = np.nonzero(alpha > 0)
        if not len(xs):
            return base
        x0, y0, x1, y1 = int(xs.min()), int(ys.min()), int(xs.max()) + 1, int(ys.max()) + 1
        scale = _scale(base, spec["strength"])
        # Work on the masked area plus a margin for the blur kernel to draw on, not the whole image.
        m = int(math.ceil(2 * scale)) if spec["method"] == "blur" else 0
        cx0, cy0, cx1, cy1 = max(0, x0 - m), max(0, y0 - m), min(base.width, x1 + m), min(base.height, y1 + m)
        crop = base.crop((cx0, cy0, cx1, cy1))
        hidden = np.asarray(_hide(crop, spec["method"], scale))
        a = alpha[cy0:cy1, cx0:cx1]
        pixels = np.array(base)
        window = pixels[cy0:cy1, cx0:cx1]  # a view: writes go to `pixels`
        full, soft = a >= 1, (a > 0) & (a < 1)
        window[full] = hidden[full]
        if soft.any():
            w = a[soft][:, None]
            window[soft] = np.rint(window[soft] * (1 - w) + hidden[soft] * w).astype(np.uint8)
        return Image.fromarray(pixels, "RGB")


def _scale(image: Image.Image, strength: float) -> float:
    """Blur radius / pixel block size: ``strength`` x a tenth of the shorter side (25 px at 0.5 on 512)."""
    return max(1.0, min(image.size) / 10 * strength)


def _hide(image: Image.Image, method: str, scale: float) -> Image.Image:
    if method == "blackout":
        return Image.new("RGB", image.size, (0, 0, 0))
    if method == "pixelate":
        block = max(2, int(scale))
        small = image.resize((max(1, math.ceil(image.width / block)), max(1, math.ceil(image.height / block))),
                             Image.BOX)
        return small.resize((small.width * block, small.height * block), Image.NEAREST).crop((0, 0, *image.size))
    return image.filter(ImageFilter.GaussianBlur(scale))


def _method_spec(options: dict, base: dict, prefix: str) -> dict:
    spec = {**base, **{k: options[k] for k in DEFAULTS if k in options}}
    if spec["method"] not in METHODS:
        raise OptionsError(prefix + "method", f"unknown method {spec['method']!r} (one of {', '.join(METHODS)})")
    padding = spec["padding"]
    if isinstance(padding, str):
        try:
            if float(padding.strip().removesuffix("px")) < 0 or not padding.strip().endswith("px"):
                raise ValueError
        except ValueError:
            raise OptionsError(prefix + "padding", f"{padding!r}: give a fraction (0.15) or pixels ('12px')") from None
    elif float(padding) < 0:
        raise OptionsError(prefix + "padding", "must not be negative")
    spec["strength"] = float(spec["strength"])
    spec["feather"] = int(spec["feather"])
    return spec


def _known_category(policy: Any, cid: str, field: str) -> None:
    if cid not in policy.categories:
        raise OptionsError(field, f"unknown category {cid!r} (policy has: {', '.join(policy.categories)})")


def _resolve(path: str | None, policy: Any) -> str | None:
    """A relative model folder is looked for beside the policy file first."""
    if not path:
        return None
    candidate = Path(path).expanduser()
    source = getattr(policy, "source", None)
    if not candidate.is_absolute() and source and not str(source).startswith("<"):
        beside = Path(str(source)).parent / candidate
        if beside.exists():
            return str(beside)
    return str(candidate)


@hookimpl
def register_image_editors(register):
    register("region", RegionEditor)
