"""The image check ``nudenet``: NudeNet's detector classes mapped to policy categories.

Each detection becomes a signal for the category its class maps to, with the box
as the region. Face classes map to ``public_figure`` by default, so a policy that
blurs faces (the A1 rule) gets boxes; they trigger on their own only if that
category has an image threshold.
"""

from __future__ import annotations

import threading
from typing import Any, Sequence

from elens import OptionsError, Region, Signal, hookimpl

#: class -> (category, minimum detector score to report)
DEFAULT_CLASSES: dict[str, tuple[str, float]] = {
    "FEMALE_GENITALIA_EXPOSED": ("nudity", 0.25),
    "MALE_GENITALIA_EXPOSED": ("nudity", 0.25),
    "FEMALE_BREAST_EXPOSED": ("nudity", 0.25),
    "BUTTOCKS_EXPOSED": ("nudity", 0.25),
    "ANUS_EXPOSED": ("nudity", 0.25),
    "FACE_FEMALE": ("public_figure", 0.3),
    "FACE_MALE": ("public_figure", 0.3),
}
ALL_CLASSES = (
    "FEMALE_GENITALIA_COVERED", "FACE_FEMALE", "BUTTOCKS_EXPOSED", "FEMALE_BREAST_EXPOSED",
    "FEMALE_GENITALIA_EXPOSED", "MALE_BREAST_EXPOSED", "ANUS_EXPOSED", "FEET_EXPOSED", "BELLY_COVERED",
    "FEET_COVERED", "ARMPITS_COVERED", "ARMPITS_EXPOSED", "FACE_MALE", "BELLY_EXPOSED",
    "MALE_GENITALIA_EXPOSED", "ANUS_COVERED", "FEMALE_BREAST_COVERED", "BUTTOCKS_COVERED",
)

_detectors: dict[int, Any] = {}
_lock = threading.Lock()


def _detector(threads: int) -> Any:
    """One ONNX session per process (per thread setting), loaded on first use."""
    with _lock:
        if threads not in _detectors:
            import os

            import nudenet
            import onnxruntime

            model_path = os.path.join(os.path.dirname(nudenet.__file__), "320n.onnx")
            detector = nudenet.NudeDetector(model_path=model_path)
            options = onnxruntime.SessionOptions()
            options.intra_op_num_threads = threads
            options.inter_op_num_threads = 1
            # Replace the package's session with one bounded to `threads` CPU threads.
            detector.onnx_session = onnxruntime.InferenceSession(
                model_path, sess_options=options, providers=["CPUExecutionProvider"]
            )
            _detectors[threads] = detector
        return _detectors[threads]


class NudeNetCheck:
    """Detects exposed body parts and faces; classes and score floors come from options."""

    options_schema = {
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
        },
    }

    def __init__(self, options: dict, policy: Any):
        mapping = {cls: {"category": c, "min_score": s} for cls, (c, s) in DEFAULT_CLASSES.items()}
        for cls, spec in (options.get("classes") or {}).items():
            if spec is None:
                mapping.pop(cls, None)
                continue
            if spec["category"] not in policy.categories:
                raise OptionsError(f"classes.{cls}.category", f"unknown category {spec['category']!r}")
            mapping[cls] = {"category": spec["category"], "min_score": spec.get("min_score", 0.25)}
        # Default mappings to categories this policy does not have are dropped quietly.
        self.classes = {cls: spec for cls, spec in mapping.items() if spec["category"] in policy.categories}
        self.threads = int(options.get("threads", 1))
        self._detector = _detector(self.threads)

    def check(self, images: Sequence[Any], contexts: Sequence[Any]) -> list[list[Signal]]:
        import numpy as np

        arrays = [np.ascontiguousarray(np.asarray(img.convert("RGB"))[:, :, ::-1]) for img in images]  # to BGR
        results = self._detector.detect_batch(arrays, batch_size=4) if len(arrays) > 1 else [
            self._detector.detect(a) for a in arrays
        ]
        out = []
        for detections in results:
            signals = []
            for det in detections:
                spec = self.classes.get(det["class"])
                if spec is None or det["score"] < spec["min_score"]:
                    continue
                x, y, w, h = det["box"]
                signals.append(
                    Signal(spec["category"], float(det["score"]), region=Region(x, y, x + w, y + h, det["class"]),
                           label=det["class"], reason=f"NudeNet {det['class']}")
                )
            out.append(signals)
        return out


@hookimpl
def register_image_checks(register):
    register("nudenet", NudeNetCheck)
