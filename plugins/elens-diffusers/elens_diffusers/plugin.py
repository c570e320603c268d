"""The backend ``diffusers``: any diffusers text-to-image pipeline, by hub id or local path.

Loads with ``AutoPipelineForText2Image.from_pretrained`` (offline unless the policy
says ``allow_download: true``), once per process. Every image gets its own seeded
``torch.Generator``, so image i of a batch equals the same prompt and seed alone.
``model: tiny-random`` builds a tiny random pipeline so that the flow runs with no
weights at all; its images are noise, and ``model_id`` and a warning say so.
"""

from __future__ import annotations

import threading
from typing import Any, Mapping, Sequence

import structlog

from elens import ElensError, hookimpl

log = structlog.get_logger("elens.diffusers")

_pipelines: dict[tuple, Any] = {}
_lock = threading.Lock()

DTYPES = ("auto", "float32", "float16", "bfloat16")


def _device(requested: str) -> str:
    import torch

    if requested != "auto":
        return requested
    if torch.cuda.is_available():
        return "cuda"
    if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
        return "mps"
    return "cpu"


def _load(model: str, dtype_name: str, device: str, allow_download: bool) -> Any:
    key = (model, dtype_name, device)
    with _lock:
        if key in _pipelines:
            return _pipelines[key]
        import torch
        from diffusers import AutoPipelineForText2Image
        from diffusers.utils import logging as diffusers_logging

        from transformers.utils import logging as hf_logging

        for lib in (diffusers_logging, hf_logging):
            lib.set_verbosity_error()
            lib.disable_progress_bar()
        path = model
        if model == "tiny-random":
            from .tiny import tiny_pipeline_dir

            path = str(tiny_pipeline_dir())
        if dtype_name == "auto":
            dtype = torch.float16 if device == "cuda" and model != "tiny-random" else torch.float32
        else:
            dtype = getattr(torch, dtype_name)
        try:
            import diffusers

            # diffusers 0.40 renamed torch_dtype to dtype.
            dtype_arg = "dtype" if tuple(int(p) for p in diffusers.__version__.split(".")[:2]) >= (0, 40) else "torch_dtype"
            pipe = AutoPipelineForText2Image.from_pretrained(
                path, **{dtype_arg: dtype}, local_files_only=not allow_download,
                safety_checker=None, requires_safety_checker=False,
            )
        except (OSError, ValueError, EnvironmentError) as exc:
            raise ElensError(
                f"diffusers model {model!r} could not be loaded offline ({str(exc).splitlines()[0][:160]}); "
                "point at a local copy with pipeline.backend.options.model: /path/to/model "
                "or `elens generate --model PATH` (or set allow_download: true where there is network)"
            ) from None
        pipe.set_progress_bar_config(disable=True)
        pipe = pipe.to(device)
        _pipelines[key] = pipe
        return pipe


class DiffusersBackend:
    """Generates with a diffusers pipeline; options come from the policy and the CLI."""

    options_schema = {
        "type": "object",
        "additionalProperties": False,
        "properties": {
            "model": {"type": "string", "minLength": 1},
            "steps": {"type": "integer", "minimum": 1},
            "guidance": {"type": "number", "minimum": 0},
            "width": {"type": "integer", "minimum": 8, "multipleOf": 8},
            "height": {"type": "integer", "minimum": 8, "multipleOf": 8},
            "dtype": {"enum": list(DTYPES)},
            "device": {"type": "string"},
            "allow_download": {"type": "boolean"},
        },
    }

    def __init__(self, options: dict, policy: Any):
        self.model = options.get("model", "tiny-random")
        tiny = self.model == "tiny-random"
        self.defaults = {
            "steps": int(options.get("steps", 2 if tiny else 25)),
            "guidance": float(options.get("guidance", 7.5)),
            "width": int(options.get("width", 64 if tiny else 512)),
            "height": int(options.get("height", 64 if tiny else 512)),
        }
        self.device = _device(options.get("device", "auto"))
        self.pipe = _load(self.model, options.get("dtype", "auto"), self.device,
                          bool(options.get("allow_download", False)))
        if tiny:
            self.model_id = "tiny-random (noise, not a real model)"
            log.warning("tiny_random_backend",
                        message="no model weights: a tiny random pipeline stands in and its images are noise; "
                                "use --model PATH_OR_HUB_ID for real images")
        else:
            self.model_id = self.model

    def generate(self, prompts: Sequence[str], seeds: Sequence[int], negative_prompt: str | None = None,
                 options: Mapping[str, Any] | None = None) -> list[Any]:
        import torch

        settings = {**self.defaults, **{k: v for k, v in (options or {}).items() if v is not None}}
        generator_device = "cpu" if self.device == "mps" else self.device
        generators = [torch.Generator(device=generator_device).manual_seed(int(s)) for s in seeds]
        with torch.inference_mode():
            out = self.pipe(
                prompt=list(prompts),
                negative_prompt=[negative_prompt] * len(prompts) if negative_prompt else None,
                num_inference_steps=int(settings["steps"]),
                guidance_scale=float(settings["guidance"]),
                width=int(settings["width"]),
                height=int(settings["height"]),
                generator=generators,
                output_type="pil",
            )
        return [img.convert("RGB") for img in out.images]


@hookimpl
def register_backends(register):
    register("diffusers", DiffusersBackend)
