"""A tiny, randomly initialised Stable Diffusion pipeline, built from configs.

It lets the whole elens flow run on a machine with no model weights (and tests
exercise the real loading path). Its images are noise. Built the way diffusers
tests itself: small UNet, VAE and CLIP text encoder, a tokenizer from a
vocabulary written here, saved with ``save_pretrained``.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

TINY_ID = "tiny-random"
#: What the audit log records for images from the tiny pipeline.
TINY_MODEL_ID = "tiny-random (noise, not a real model)"


def _write_tokenizer(directory: Path) -> None:
    letters = [chr(c) for c in range(ord("a"), ord("z") + 1)]
    vocab = {"<|startoftext|>": 0, "<|endoftext|>": 1, "!": 2}
    digits = [str(d) for d in range(10)]
    # No merges: every word is spelt out in single characters, which a vocabulary of 75 covers.
    for token in letters + [c + "</w>" for c in letters] + digits + [d + "</w>" for d in digits]:
        vocab.setdefault(token, len(vocab))
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "vocab.json").write_text(json.dumps(vocab))
    (directory / "merges.txt").write_text("#version: 0.2\n")


def _tiny_modules():
    from diffusers import AutoencoderKL, UNet2DConditionModel
    from transformers import CLIPTextConfig, CLIPTextModel

    unet = UNet2DConditionModel(
        block_out_channels=(8, 16),
        layers_per_block=1,
        sample_size=8,
        in_channels=4,
        out_channels=4,
        down_block_types=("DownBlock2D", "CrossAttnDownBlock2D"),
        up_block_types=("CrossAttnUpBlock2D", "UpBlock2D"),
        cross_attention_dim=16,
        attention_head_dim=2,
        norm_num_groups=4,
    )
    # Four VAE blocks: latents are 1/8 of the image side, as in Stable Diffusion, so the
    # UNet sees 64x64 latents at 512x512 and timings keep the real pipeline's shape.
    vae = AutoencoderKL(
        block_out_channels=(8, 8, 16, 16),
        in_channels=3,
        out_channels=3,
        down_block_types=("DownEncoderBlock2D",) * 4,
        up_block_types=("UpDecoderBlock2D",) * 4,
        latent_channels=4,
        norm_num_groups=4,
        sample_size=64,
    )
    text_encoder = CLIPTextModel(
        CLIPTextConfig(
            bos_token_id=0, eos_token_id=1, pad_token_id=1, hidden_size=16, intermediate_size=32,
            num_attention_heads=2, num_hidden_layers=2, vocab_size=80, max_position_embeddings=77,
            layer_norm_eps=1e-05,
        )
    )
    return unet, vae, text_encoder


def build_tiny_pipeline(directory: str | os.PathLike, seed: int = 0) -> Path:
    """Build and save a tiny random SD pipeline in ``directory``; returns the folder."""
    import torch

    with torch.random.fork_rng(devices=[]):  # leave the caller's random state alone
        torch.manual_seed(seed)
        unet, vae, text_encoder = _tiny_modules()
    return save_pipeline(directory, unet, vae, text_encoder)


def save_pipeline(directory: str | os.PathLike, unet: Any, vae: Any, text_encoder: Any) -> Path:
    """A Stable Diffusion pipeline of these networks, with the stand-in tokenizer (every
    prompt is padded to 77 tokens either way) and a DDIM scheduler, saved in
    ``directory`` with ``save_pretrained``; returns the folder. The benchmarks use it
    for random networks of a real model's size."""
    from diffusers import DDIMScheduler, StableDiffusionPipeline
    from diffusers.utils import logging as diffusers_logging
    from transformers import CLIPTokenizer
    from transformers.utils import logging as transformers_logging

    directory = Path(directory)
    with tempfile.TemporaryDirectory() as vocab_dir:
        _write_tokenizer(Path(vocab_dir))
        tokenizer = CLIPTokenizer(f"{vocab_dir}/vocab.json", f"{vocab_dir}/merges.txt", model_max_length=77)
    scheduler = DDIMScheduler(beta_start=0.00085, beta_end=0.012, beta_schedule="scaled_linear",
                              clip_sample=False, set_alpha_to_one=False, steps_offset=1)
    pipe = StableDiffusionPipeline(
        unet=unet, vae=vae, text_encoder=text_encoder, tokenizer=tokenizer, scheduler=scheduler,
        safety_checker=None, feature_extractor=None, requires_safety_checker=False,
    )
    diffusers_logging.disable_progress_bar()
    transformers_logging.disable_progress_bar()
    pipe.save_pretrained(directory)
    return directory


def tiny_pipeline_dir() -> Path:
    """The cached tiny pipeline folder (built on first use, in the user's cache)."""
    xdg = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    base = Path(os.environ.get("ELENS_CACHE") or xdg / "elens")
    target = base / "tiny-random-sd-v2"  # bump when the architecture changes
    if not (target / "model_index.json").exists():
        base.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(dir=base, prefix=".tiny-"))
        build_tiny_pipeline(staging)
        try:
            os.replace(staging, target)  # atomic: another process may have won the race
        except OSError:
            shutil.rmtree(staging, ignore_errors=True)
    return target
