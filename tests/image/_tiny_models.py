"""Tiny randomly initialised open_clip and Stable Diffusion models, built from configs in a folder.

They load through the plugins' real paths (a config file, a checkpoint, a
``save_pretrained`` folder); their outputs are noise, which is all these tests need.
"""

from __future__ import annotations

import json
from pathlib import Path

#: A two-layer CLIP: 32-pixel images, 16-dimensional embeddings, open_clip's own BPE vocabulary.
TINY_CLIP_NAME = "elens-tiny-clip"
TINY_CLIP = {
    "embed_dim": 16,
    "vision_cfg": {"image_size": 32, "layers": 1, "width": 32, "patch_size": 8, "head_width": 16},
    "text_cfg": {"context_length": 16, "vocab_size": 49408, "width": 32, "heads": 2, "layers": 1},
}


def build_tiny_clip(directory: Path, seed: int = 0) -> dict:
    """Write the config, save a random checkpoint; returns the check's options that load them."""
    import open_clip
    import torch

    directory.mkdir(parents=True, exist_ok=True)
    config = directory / f"{TINY_CLIP_NAME}.json"
    config.write_text(json.dumps(TINY_CLIP))
    open_clip.add_model_config(str(config))
    torch.manual_seed(seed)
    model = open_clip.create_model(TINY_CLIP_NAME, pretrained=None)
    checkpoint = directory / "tiny-clip.pt"
    torch.save(model.state_dict(), checkpoint)
    return {"model": TINY_CLIP_NAME, "pretrained": str(checkpoint), "model_config": str(config), "device": "cpu"}


def build_tiny_sd(directory: Path) -> Path:
    """A tiny random Stable Diffusion pipeline saved with ``save_pretrained`` (the plugin's own helper)."""
    from elens_diffusers.tiny import build_tiny_pipeline

    return build_tiny_pipeline(directory)
