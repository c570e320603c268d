"""The ``tiny`` backend: synthetic pictures, no model, no weights.

It exists so that a pipeline (and a plugin author's tests) can run end to end on
any machine. Its images are smooth colour fields derived from the prompt and the
seed; they are test patterns, and ``model_id`` says so. Registered through the
``elens`` entry-point group like every other plugin.
"""

from __future__ import annotations

import hashlib
from typing import Any, Mapping, Sequence

import numpy as np
from PIL import Image

from . import hookimpl


class TinyBackend:
    """Deterministic pictures: the same prompt and seed always give the same image."""

    model_id = "tiny (synthetic test pattern, not a model)"
    options_schema = {
        "type": "object",
        "additionalProperties": False,
        "properties": {
            "width": {"type": "integer", "minimum": 8, "maximum": 4096},
            "height": {"type": "integer", "minimum": 8, "maximum": 4096},
        },
    }

    def __init__(self, options: Mapping[str, Any], policy: Any):
        self.width = int(options.get("width", 64))
        self.height = int(options.get("height", 64))

    def generate(
        self,
        prompts: Sequence[str],
        seeds: Sequence[int],
        negative_prompt: str | None = None,
        options: Mapping[str, Any] | None = None,
    ) -> list[Image.Image]:
        options = options or {}
        width = int(options.get("width", self.width))
        height = int(options.get("height", self.height))
        return [self._one(prompt, seed, width, height) for prompt, seed in zip(prompts, seeds)]

    @staticmethod
    def _one(prompt: str, seed: int, width: int, height: int) -> Image.Image:
        digest = hashlib.sha256(f"{seed}:{prompt}".encode()).digest()
        rng = np.random.default_rng(int.from_bytes(digest[:8], "little"))
        corners = rng.integers(0, 256, size=(2, 2, 3)).astype(np.float64)
        y = np.linspace(0, 1, height)[:, None, None]
        x = np.linspace(0, 1, width)[None, :, None]
        top = corners[0, 0] * (1 - x) + corners[0, 1] * x
        bottom = corners[1, 0] * (1 - x) + corners[1, 1] * x
        pixels = top * (1 - y) + bottom * y
        return Image.fromarray(pixels.clip(0, 255).astype(np.uint8), "RGB")


@hookimpl(trylast=True)
def register_backends(register: Any) -> None:
    register("tiny", TinyBackend)
