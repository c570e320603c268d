"""The image check ``nudenet``: NudeNet's detector classes mapped to policy categories.

Each detection of a mapped class whose score reaches that class's ``min_score``
becomes a :class:`elens.Signal` for the class's category, with the detector's box
as the region and the class name as the label. By default the exposed genitalia,
breast, buttocks and anus classes map to ``nudity`` and the face classes to
``public_figure`` (so a policy that blurs named people's faces gets boxes; faces
trigger on their own only if that category has an image threshold). Covered
classes, feet, belly, armpits and the male breast are ignored unless mapped.

Options::

    classes:                     # merged over the defaults; null drops a class
      FEMALE_BREAST_EXPOSED: {category: nudity, min_score: 0.4}
      FACE_MALE: null
    threads: 1                   # ONNX Runtime intra-op threads
    model: path/to/640m.onnx     # another NudeNet ONNX export (default: the shipped 320n)
    resolution: 640              # that model's input size

The score is NudeNet's class confidence; the host compares it with the category's
image threshold. The model loads once per process and setting.
"""

from __future__ import annotations

import os
import threading
from typing import Any, Sequence

from elens import OptionsError, Region, Signal, hookimpl

from ._detect import LABELS, SCORE_FLOOR, Detector, shipped_model

#: Every class the NudeNet detector reports, in its output order.
ALL_CLASSES = LABELS

#: The default class map: class -> (category, lowest detector score reported).
DEFAULT_CLASSES: dict[str, tuple[str, float]] = {
    "FEMALE_GENITALIA_EXPOSED": ("nudity", 0.25),
    "MALE_GENITALIA_EXPOSED": ("nudity", 0.25),
    "FEMALE_BREAST_EXPOSED": ("nudity", 0.25),
    "BUTTOCKS_EXPOSED": ("nudity", 0.25),
    "ANUS_EXPOSED": ("nudity", 0.25),
    "FACE_FEMALE": ("public_figure", 0.3),
    "FACE_MALE": ("public_figure", 0.3),
}
DEFAULT_MIN_SCORE = 0.25
#: The detector itself drops boxes below this score, so a lower min_score changes nothing.
DETECTOR_FLOOR = SCORE_FLOOR

_detectors: dict[tuple[str, int, int], Detector] = {}
_lock = threading.Lock()


def _detector(model: str, resolution: int, threads: int) -> Detector:
    """One ONNX session per process and setting, loaded on first use."""
    key = (model, resolution, threads)
    with _lock:
        if key not in _detectors:
            _detectors[key] = Detector(model, resolution, threads)
        return _detectors[key]


class NudeNetCheck:
    """Detects exposed body parts and faces; classes, categories and score floors come from options."""

    options_schema = {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "type": "object",
        "additionalProperties": False,
        "properties": {
            "classes": {
                "type": "object",
                "propertyNames": {"enum": list(ALL_CLASSES)},
                "additionalProperties": {
                    "oneOf": [
                        {"type": "null"},
                        {
                            "type": "object",
                            "additionalProperties": False,
                            "required": ["category"],
                            "properties": {
                                "category": {"type": "string"},
                                "min_score": {"type": "number", "minimum": 0, "maximum": 1},
                            },
                        },
                    ]
                },
            },
            "threads": {"type": "integer", "minimum": 1},
            "model": {"type": "string"},
            "resolution": {"type": "integer", "minimum": 32},
            "batch_size": {"type": "integer", "minimum": 1},
        },
    }

    def __init__(self, options: dict, policy: Any):
        mapping = {cls: {"category": c, "min_score": s} for cls, (c, s) in DEFAULT_CLASSES.items()}
        for cls, spec in (options.get("classes") or {}).items():
            if cls not in ALL_CLASSES:
                raise OptionsError(f"classes.{cls}", f"not a NudeNet class (one of {', '.join(ALL_CLASSES)})")
            if spec is None:
                mapping.pop(cls, None)
                continue
            category = spec.get("category")
            if category not in policy.categories:
                known = ", ".join(policy.categories)
                raise OptionsError(f"classes.{cls}.category", f"unknown category {category!r} (policy has: {known})")
            mapping[cls] = {"category": category, "min_score": float(spec.get("min_score", DEFAULT_MIN_SCORE))}
        # A default mapping to a category this policy lacks is dropped: extending
        # policies may remove categories without having to repeat the class map.
        self.classes = {cls: spec for cls, spec in mapping.items() if spec["category"] in policy.categories}
        self.threads = int(options.get("threads", 1))
        self.batch_size = int(options.get("batch_size", 4))
        model = options.get("model") or shipped_model()
        if options.get("model") and not os.path.isabs(model) and getattr(policy, "source", None):
            beside = os.path.join(os.path.dirname(str(policy.source)), model)
            model = beside if os.path.exists(beside) else model
        if not os.path.isfile(model):
            raise OptionsError("model", f"no NudeNet ONNX model at {model!r}")
        self.model = model
        self.resolution = int(options.get("resolution", 320))
        try:
            self._detector = _detector(self.model, self.resolution, self.threads)
        except Exception as exc:  # onnxruntime raises its own exception types for a bad file
            raise OptionsError("model", f"cannot load the NudeNet model {model!r}: {exc}") from exc

    def check(self, images: Sequence[Any], contexts: Sequence[Any]) -> list[list[Signal]]:
        import numpy as np

        arrays = [np.asarray(img.convert("RGB")) for img in images]
        if not arrays:
            return []
        results = self._detector.detect(arrays, batch_size=self.batch_size)
        out = []
        for image, detections in zip(images, results):
            width, height = image.size
            signals = []
            for det in sorted(detections, key=lambda d: -d["score"]):
                spec = self.classes.get(det["class"])
                if spec is None or det["score"] < spec["min_score"]:
                    continue
                x, y, w, h = det["box"]
                x0, y0 = max(0, int(x)), max(0, int(y))
                x1, y1 = min(width, int(x) + int(w)), min(height, int(y) + int(h))
                if x1 <= x0 or y1 <= y0:
                    continue
                signals.append(
                    Signal(
                        spec["category"],
                        float(det["score"]),
                        region=Region(x0, y0, x1, y1, det["class"]),
                        label=det["class"],
                        reason=f"NudeNet {det['class']} ({det['score']:.2f})",
                    )
                )
            out.append(signals)
        return out


@hookimpl
def register_image_checks(register):
    register("nudenet", NudeNetCheck)
