"""NudeNet's detector, run on arrays: the package's ONNX model with its pre-processing and a vectorised post-processing.

``nudenet.NudeDetector`` decodes its 2,100 candidate boxes in a Python loop
(about 40 ms an image on one core); this does the same arithmetic with numpy and
the same OpenCV non-maximum suppression, so its detections equal the package's
(a test compares them). The session is bounded to a given number of threads.
"""

from __future__ import annotations

import os
from typing import Any, Sequence

import numpy as np

#: The detector's classes in output order (as nudenet lists them).
LABELS = (
    "FEMALE_GENITALIA_COVERED", "FACE_FEMALE", "BUTTOCKS_EXPOSED", "FEMALE_BREAST_EXPOSED",
    "FEMALE_GENITALIA_EXPOSED", "MALE_BREAST_EXPOSED", "ANUS_EXPOSED", "FEET_EXPOSED", "BELLY_COVERED",
    "FEET_COVERED", "ARMPITS_COVERED", "ARMPITS_EXPOSED", "FACE_MALE", "BELLY_EXPOSED",
    "MALE_GENITALIA_EXPOSED", "ANUS_COVERED", "FEMALE_BREAST_COVERED", "BUTTOCKS_COVERED",
)
#: nudenet's own constants: candidates below SCORE_FLOOR are dropped before NMS.
SCORE_FLOOR, NMS_SCORE, NMS_IOU = 0.2, 0.25, 0.45


def shipped_model() -> str:
    """The ONNX detector that ships inside the ``nudenet`` package (320n.onnx)."""
    import nudenet

    return os.path.join(os.path.dirname(nudenet.__file__), "320n.onnx")


class Detector:
    """One ONNX Runtime session; ``detect`` takes RGB uint8 arrays (H, W, 3)."""

    def __init__(self, model: str, resolution: int = 320, threads: int = 1):
        import onnxruntime

        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        self.session = onnxruntime.InferenceSession(model, sess_options=options, providers=["CPUExecutionProvider"])
        self.input_name = self.session.get_inputs()[0].name
        self.resolution = resolution

    def _blob(self, rgb: np.ndarray) -> np.ndarray:
        import cv2

        # As nudenet: pad right/bottom to a square, scale to [0, 1], resize. The package
        # swaps channels twice on what cv2.imread gives, so its model sees BGR.
        height, width = rgb.shape[:2]
        side = max(height, width)
        padded = cv2.copyMakeBorder(rgb, 0, side - height, 0, side - width, cv2.BORDER_CONSTANT)
        return cv2.dnn.blobFromImage(padded, 1 / 255.0, (self.resolution, self.resolution), (0, 0, 0),
                                     swapRB=True, crop=False)

    def detect(self, images: Sequence[np.ndarray], batch_size: int = 4) -> list[list[dict[str, Any]]]:
        """Per image: ``[{"class", "score", "box": [x, y, w, h]}]`` in pixels, as ``NudeDetector.detect``."""
        out: list[list[dict[str, Any]]] = []
        for start in range(0, len(images), batch_size):
            chunk = images[start:start + batch_size]
            blob = np.vstack([self._blob(rgb) for rgb in chunk])
            (raw,) = self.session.run(None, {self.input_name: blob})[:1]
            for rgb, rows in zip(chunk, raw):
                out.append(self._decode(rows.T, rgb.shape[1], rgb.shape[0]))
        return out

    def _decode(self, rows: np.ndarray, width: int, height: int) -> list[dict[str, Any]]:
        import cv2

        scores_all = rows[:, 4:]
        class_ids = scores_all.argmax(axis=1)
        scores = scores_all[np.arange(len(rows)), class_ids]
        keep = scores >= SCORE_FLOOR
        if not keep.any():
            return []
        rows, class_ids, scores = rows[keep], class_ids[keep], scores[keep]
        scale = max(width, height) / self.resolution
        cx, cy, w, h = (rows[:, i] * scale for i in range(4))
        x = np.clip(cx - w / 2, 0, width)
        y = np.clip(cy - h / 2, 0, height)
        w = np.minimum(w, width - x)
        h = np.minimum(h, height - y)
        boxes = np.stack([x, y, w, h], axis=1)
        indices = cv2.dnn.NMSBoxes(boxes.tolist(), scores.tolist(), NMS_SCORE, NMS_IOU)
        return [
            {"class": LABELS[int(class_ids[i])], "score": float(scores[i]),
             "box": [int(v) for v in boxes[i]]}
            for i in np.asarray(indices, int).reshape(-1)
        ]
