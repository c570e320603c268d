"""Loading an open_clip model without reaching the network unless the policy allows it.

open_clip downloads a pretrained tag's weights on demand. elens never downloads at
run time by default, so a tag is first resolved to a file already in the local
cache (Hugging Face hub cache, or open_clip's ``~/.cache/clip`` for URL weights)
and the model is built from that file, with the tag's preprocessing and QuickGELU
setting. A checkpoint path works the same way, minus the lookup.
"""

from __future__ import annotations

import os
import threading
from pathlib import Path
from typing import Any

import structlog

from elens import OptionsError

log = structlog.get_logger("elens.clip")

_models: dict[tuple, tuple[Any, Any, Any]] = {}
_lock = threading.Lock()

_PREPROCESS_KEYS = ("mean", "std", "interpolation", "resize_mode", "fill_color")


def _cached_tag_file(cfg: dict, cache_dir: str | None) -> str | None:
    """The local file a pretrained tag's weights were downloaded to, or None."""
    if cfg.get("file"):
        return cfg["file"]
    if cfg.get("hf_hub"):
        from huggingface_hub import hf_hub_download

        # "org/name/file.pt" names a file; "org/name/" the repository's default weights.
        repo_id, filename = os.path.split(cfg["hf_hub"])
        filename = filename or "open_clip_pytorch_model.bin"
        candidates = [filename]
        if filename.endswith((".bin", ".pth")):
            candidates.insert(0, filename.rsplit(".", 1)[0] + ".safetensors")
        if filename == "open_clip_pytorch_model.bin":
            candidates.insert(0, "open_clip_model.safetensors")
        for name in candidates:
            try:
                return hf_hub_download(repo_id, name, cache_dir=cache_dir, local_files_only=True)
            except Exception:  # not cached: try the next name
                continue
    if cfg.get("url"):
        target = Path(cache_dir or Path.home() / ".cache" / "clip") / os.path.basename(cfg["url"])
        if target.is_file():
            return str(target)
    return None


def resolve_pretrained(model: str, pretrained: str | None, allow_download: bool,
                       cache_dir: str | None) -> tuple[str | None, dict]:
    """Turn ``pretrained`` (None, a checkpoint path or a tag) into (path or tag, create_model kwargs)."""
    import open_clip

    if pretrained is None:
        return None, {}
    if os.path.isfile(pretrained):
        return pretrained, {}
    cfg = open_clip.get_pretrained_cfg(model, pretrained)
    if not cfg:
        known = ", ".join(open_clip.list_pretrained_tags_by_model(model)) or "none"
        raise OptionsError("pretrained", f"{pretrained!r} is neither a checkpoint file nor a pretrained tag of "
                                         f"{model!r} (tags: {known})")
    if allow_download:
        return pretrained, {}
    path = _cached_tag_file(cfg, cache_dir)
    if path is None:
        raise OptionsError("pretrained", f"the weights of {model!r} {pretrained!r} are not in the local cache and "
                                         "elens does not download by default; give a local checkpoint "
                                         "(options.pretrained: /path/to/open_clip_model.safetensors) "
                                         "or set allow_download: true")
    kwargs: dict[str, Any] = {"force_preprocess_cfg": {k: cfg[k] for k in _PREPROCESS_KEYS if k in cfg}}
    if cfg.get("quick_gelu"):
        kwargs["force_quick_gelu"] = True
    return path, kwargs


def load_model(model: str, pretrained: str | None, device: str, config: str | None = None,
               allow_download: bool = False, cache_dir: str | None = None) -> tuple[Any, Any, Any]:
    """(model in eval mode, image preprocess, tokenizer), built once per process per key."""
    key = (model, pretrained, device, config)
    with _lock:
        if key in _models:
            return _models[key]
        import open_clip

        if config:
            if not os.path.isfile(config):
                raise OptionsError("model_config", f"no such file: {config}")
            open_clip.add_model_config(config)
        if model.startswith("hf-hub:") and not allow_download:
            raise OptionsError("model", "hf-hub: models are downloaded; use a local checkpoint or allow_download: true")
        if not model.startswith(("hf-hub:", "local-dir:")) and open_clip.get_model_config(model) is None:
            raise OptionsError("model", f"unknown open_clip model {model!r} (see open_clip.list_models(), "
                                        "or give model_config: /path/to/NAME.json)")
        weights, kwargs = resolve_pretrained(model, pretrained, allow_download, cache_dir)
        try:
            clip, _, preprocess = open_clip.create_model_and_transforms(
                model, pretrained=weights, device=device, cache_dir=cache_dir, **kwargs)
        except (RuntimeError, OSError, ValueError) as exc:
            raise OptionsError("pretrained", f"cannot load {model!r} with {pretrained!r}: "
                                             f"{str(exc).splitlines()[0][:200]}") from None
        if weights is None:
            log.warning("clip_random_weights", model=model,
                        message="no pretrained weights: the CLIP model is randomly initialised and its scores "
                                "mean nothing; set options.pretrained")
        _models[key] = (clip.eval(), preprocess, open_clip.get_tokenizer(model))
        return _models[key]
