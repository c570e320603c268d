"""The backend ``diffusers``: any diffusers text-to-image pipeline, by hub id or local path.

Loads with ``AutoPipelineForText2Image.from_pretrained`` (offline unless the policy
says ``allow_download: true``), once per process. Every image gets its own seeded
``torch.Generator``, so image i of a batch equals the same prompt and seed alone.
``model: tiny-random`` builds a tiny random pipeline so that the flow runs with no
weights at all; its images are noise, and ``model_id`` and a warning say so.
"""

from __future__ import annotations

import threading
import warnings
from pathlib import Path
from typing import Any, Mapping, Sequence

import structlog

from elens import ElensError, OptionsError, hookimpl

from .tiny import TINY_ID, TINY_MODEL_ID

log = structlog.get_logger("elens.diffusers")

_pipelines: dict[tuple, Any] = {}
_lock = threading.Lock()

DTYPES = ("auto", "float32", "float16", "bfloat16")


def _device(requested: str) -> str:
    import torch

    if requested.startswith("cuda") and not torch.cuda.is_available():
        raise OptionsError("device", f"{requested!r} is not available here (no CUDA device); use auto or cpu")
    if requested == "mps" and not (getattr(torch.backends, "mps", None) and torch.backends.mps.is_available()):
        raise OptionsError("device", "'mps' is not available here; use auto or cpu")
    if requested != "auto":
        return requested
    if torch.cuda.is_available():
        return "cuda"
    if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
        return "mps"
    return "cpu"


def _version(text: str) -> tuple[int, ...]:
    return tuple(int(p) for p in text.split(".")[:2] if p.isdigit())


def _load_error(model: str, path: str, allow_download: bool, exc: Exception) -> str:
    detail = (str(exc).strip().splitlines() or [type(exc).__name__])[0][:200]
    if Path(path).exists():
        return (f"diffusers model {path} could not be loaded: {detail}; it must be a text-to-image "
                "pipeline folder written by save_pretrained (with model_index.json)")
    where = ("could not be downloaded" if allow_download
             else "could not be loaded offline (not a folder, and not in the Hugging Face cache)")
    return (f"diffusers model {model!r} {where}: {detail}; point at a local copy with "
            "pipeline.backend.options.model: /path/to/model or `elens generate --model PATH`"
            + ("" if allow_download else ", or set allow_download: true where there is network"))


def resolve_model(model: str, policy: Any) -> str:
    """A relative model folder is looked up beside the policy file first, then from the working directory."""
    if model == TINY_ID:
        return model
    candidate = Path(model).expanduser()
    source = str(getattr(policy, "source", "") or "")
    if not candidate.is_absolute() and source and not source.startswith(("builtin:", "<")):
        near = Path(source).parent / candidate
        if near.is_dir():
            return str(near)
    return str(candidate) if candidate.is_dir() else model


def _load(model: str, dtype_name: str, device: str, allow_download: bool) -> Any:
    key = (model, dtype_name, device)
    with _lock:
        if key in _pipelines:
            return _pipelines[key]
        import torch
        from diffusers import AutoPipelineForText2Image
        from diffusers.utils import logging as diffusers_logging

        from transformers.utils import logging as hf_logging

        # Their progress bars and info messages would interleave with elens's own output.
        for lib in (diffusers_logging, hf_logging):
            lib.set_verbosity_error()
            lib.disable_progress_bar()
        path = model
        if model == TINY_ID:
            from .tiny import tiny_pipeline_dir

            path = str(tiny_pipeline_dir())
        if dtype_name == "auto":
            dtype = torch.float16 if device == "cuda" and model != TINY_ID else torch.float32
        else:
            dtype = getattr(torch, dtype_name)
        # diffusers 0.40 renamed torch_dtype to dtype.
        import diffusers

        dtype_arg = "dtype" if _version(diffusers.__version__) >= (0, 40) else "torch_dtype"
        try:
            with warnings.catch_warnings():
                # diffusers still passes this deprecated argument to huggingface_hub; nothing for a user to do.
                warnings.filterwarnings("ignore", message=".*local_dir_use_symlinks", category=UserWarning)
                pipe = AutoPipelineForText2Image.from_pretrained(
                    path, **{dtype_arg: dtype}, local_files_only=not allow_download,
                    safety_checker=None, requires_safety_checker=False,
                )
        except Exception as exc:  # a loading boundary: every failure becomes one line that says what to do
            raise ElensError(_load_error(model, path, allow_download, exc)) from None
        pipe.set_progress_bar_config(disable=True)
        pipe = pipe.to(device)
        _pipelines[key] = pipe
        return pipe


class DiffusersBackend:
    """Generates with a diffusers pipeline; options come from the policy and, per call, the CLI."""

    options_schema = {
        "type": "object",
        "additionalProperties": False,
        "properties": {
            "model": {"type": "string", "minLength": 1,
                      "description": "hub id (in the local cache), pipeline folder, or tiny-random"},
            "steps": {"type": "integer", "minimum": 1},
            "guidance": {"type": "number", "minimum": 0},
            "width": {"type": "integer", "minimum": 8, "multipleOf": 8},
            "height": {"type": "integer", "minimum": 8, "multipleOf": 8},
            "dtype": {"enum": list(DTYPES)},
            "device": {"type": "string", "description": "auto (cuda, mps, else cpu), cpu, cuda, cuda:1, mps"},
            "allow_download": {"type": "boolean", "description": "fetch a hub model that is not cached"},
        },
    }

    #: Per-call settings ``generate(options=...)`` may override; None leaves the pipeline's own default.
    SETTINGS = ("steps", "guidance", "width", "height")

    def __init__(self, options: dict, policy: Any):
        self.model = resolve_model(str(options.get("model", TINY_ID)), policy)
        tiny = self.model == TINY_ID
        self.defaults = {
            "steps": options.get("steps", 2 if tiny else 25),
            "guidance": options.get("guidance", 7.5 if tiny else None),
            "width": options.get("width", 64 if tiny else None),
            "height": options.get("height", 64 if tiny else None),
        }
        self.device = _device(str(options.get("device", "auto")))
        self.dtype = str(options.get("dtype", "auto"))
        if self.dtype not in DTYPES:
            raise OptionsError("dtype", f"{self.dtype!r} is not one of {', '.join(DTYPES)}")
        self.pipe = _load(self.model, self.dtype, self.device, bool(options.get("allow_download", False)))
        if tiny:
            self.model_id = TINY_MODEL_ID
            log.warning("tiny_random_backend", model_id=TINY_MODEL_ID,
                        message="no model weights: a tiny random pipeline stands in and its images are noise; "
                                "use --model PATH_OR_HUB_ID (or options.model) for real images")
        else:
            self.model_id = self.model

    def generate(self, prompts: Sequence[str], seeds: Sequence[int], negative_prompt: str | None = None,
                 options: Mapping[str, Any] | None = None) -> list[Any]:
        """One RGB image per prompt; image i depends only on prompts[i], seeds[i] and the settings."""
        import torch

        if len(prompts) != len(seeds):
            raise ValueError(f"{len(prompts)} prompts but {len(seeds)} seeds")
        if not prompts:
            return []
        overrides = {k: v for k, v in (options or {}).items() if k in self.SETTINGS and v is not None}
        settings = {**self.defaults, **overrides}
        kwargs = {name: settings[key] for key, name in (("steps", "num_inference_steps"),
                                                        ("guidance", "guidance_scale"),
                                                        ("width", "width"), ("height", "height"))
                  if settings[key] is not None}
        # One generator per image, so that image i of a batch equals the same prompt and seed alone.
        generator_device = "cpu" if self.device == "mps" else self.device
        generators = [torch.Generator(device=generator_device).manual_seed(int(s)) for s in seeds]
        with torch.inference_mode():
            out = self.pipe(
                prompt=list(prompts),
                negative_prompt=[negative_prompt] * len(prompts) if negative_prompt else None,
                generator=generators,
                output_type="pil",
                **kwargs,
            )
        return [img.convert("RGB") for img in out.images]


@hookimpl
def register_backends(register):
    register("diffusers", DiffusersBackend)
