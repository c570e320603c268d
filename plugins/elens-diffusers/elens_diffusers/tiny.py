"""A tiny, randomly initialised Stable Diffusion pipeline, built from configs.

It lets the whole elens flow run on a machine with no model weights (and tests
exercise the real loading path). Its images are noise. Built the way diffusers
tests itself: small UNet, VAE and CLIP text encoder, a tokenizer from a
vocabulary written here, saved with ``save_pretrained``.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

TINY_ID = "tiny-random"


def _write_tokenizer(directory: Path) -> None:
    letters = [chr(c) for c in range(ord("a"), ord("z") + 1)]
    vocab = {"<|startoftext|>": 0, "<|endoftext|>": 1, "!": 2}
    for token in letters + [c + "</w>" for c in letters] + [str(d) for d in range(10)] + [f"{d}</w>" for d in range(10)]:
        vocab.setdefault(token, len(vocab))
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "vocab.json").write_text(json.dumps(vocab))
    (directory / "merges.txt").write_text("#version: 0.2\n")


def build_tiny_pipeline(directory: str | os.PathLike, seed: int = 0) -> Path:
    """Build and save a tiny random SD pipeline in ``directory``; returns the folder."""
    import torch
    from diffusers import AutoencoderKL, DDIMScheduler, StableDiffusionPipeline, UNet2DConditionModel
    from transformers import CLIPTextConfig, CLIPTextModel, CLIPTokenizer

    directory = Path(directory)
    torch.manual_seed(seed)
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
    vae = AutoencoderKL(
        block_out_channels=(8, 16),
        in_channels=3,
        out_channels=3,
        down_block_types=("DownEncoderBlock2D", "DownEncoderBlock2D"),
        up_block_types=("UpDecoderBlock2D", "UpDecoderBlock2D"),
        latent_channels=4,
        norm_num_groups=4,
        sample_size=16,
    )
    text_encoder = CLIPTextModel(
        CLIPTextConfig(
            bos_token_id=0, eos_token_id=1, pad_token_id=1, hidden_size=16, intermediate_size=32,
            num_attention_heads=2, num_hidden_layers=2, vocab_size=80, max_position_embeddings=77,
            layer_norm_eps=1e-05,
        )
    )
    import tempfile

    with tempfile.TemporaryDirectory() as vocab_dir:
        _write_tokenizer(Path(vocab_dir))
        tokenizer = CLIPTokenizer(f"{vocab_dir}/vocab.json", f"{vocab_dir}/merges.txt", model_max_length=77)
    scheduler = DDIMScheduler(beta_start=0.00085, beta_end=0.012, beta_schedule="scaled_linear",
                              clip_sample=False, set_alpha_to_one=False, steps_offset=1)
    pipe = StableDiffusionPipeline(
        unet=unet, vae=vae, text_encoder=text_encoder, tokenizer=tokenizer, scheduler=scheduler,
        safety_checker=None, feature_extractor=None, requires_safety_checker=False,
    )
    from diffusers.utils import logging as diffusers_logging

    diffusers_logging.disable_progress_bar()
    pipe.save_pretrained(directory)
    return directory


def tiny_pipeline_dir() -> Path:
    """The cached tiny pipeline folder (built on first use, in the user's cache)."""
    base = Path(os.environ.get("ELENS_CACHE", Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "elens"))
    target = base / "tiny-random-sd-v1"
    if not (target / "model_index.json").exists():
        import tempfile

        base.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(dir=base, prefix=".tiny-"))
        build_tiny_pipeline(staging)
        try:
            os.replace(staging, target)  # atomic: another process may have won the race
        except OSError:
            import shutil

            shutil.rmtree(staging, ignore_errors=True)
    return target
