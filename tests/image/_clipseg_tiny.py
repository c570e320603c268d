"""A tiny randomly initialised CLIPSeg, saved with ``save_pretrained`` like a real one.

Built from a :class:`CLIPSegConfig` with tiny dimensions, a CLIP BPE tokenizer
over a vocabulary written here (single letters, no merges) and a 32-pixel
:class:`CLIPImageProcessor`; the editor loads it through ``from_pretrained``.
Its masks are noise, which is all the tests need.
"""

from __future__ import annotations

import json
from pathlib import Path

IMAGE_SIZE = 32


def write_clip_vocab(directory: Path) -> tuple[str, str]:
    """vocab.json and merges.txt for :class:`CLIPTokenizer`: every letter, alone and word-final."""
    letters = [chr(c) for c in range(ord("a"), ord("z") + 1)]
    vocab = {"<|startoftext|>": 0, "<|endoftext|>": 1, "!": 2}
    for token in letters + [c + "</w>" for c in letters]:
        vocab.setdefault(token, len(vocab))
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "vocab.json").write_text(json.dumps(vocab))
    (directory / "merges.txt").write_text("#version: 0.2\n")
    return str(directory / "vocab.json"), str(directory / "merges.txt")


def build_tiny_clipseg(directory: Path, seed: int = 0) -> Path:
    """Write a tiny random CLIPSeg model and its processor to ``directory``; returns it."""
    import torch
    from transformers import (CLIPImageProcessor, CLIPSegConfig, CLIPSegForImageSegmentation, CLIPSegProcessor,
                              CLIPTokenizer)

    torch.manual_seed(seed)
    config = CLIPSegConfig(
        text_config={"vocab_size": 60, "hidden_size": 16, "intermediate_size": 32, "num_hidden_layers": 2,
                     "num_attention_heads": 2, "max_position_embeddings": 32, "bos_token_id": 0,
                     "eos_token_id": 1, "pad_token_id": 1},
        vision_config={"hidden_size": 16, "intermediate_size": 32, "num_hidden_layers": 2,
                       "num_attention_heads": 2, "image_size": IMAGE_SIZE, "patch_size": 8},
        projection_dim=16, reduce_dim=8, extract_layers=[0, 1], decoder_num_attention_heads=2,
        decoder_intermediate_size=16,
    )
    model = CLIPSegForImageSegmentation(config).eval()
    vocab, merges = write_clip_vocab(directory / "_vocab")
    tokenizer = CLIPTokenizer(vocab, merges, model_max_length=32)
    # Resize without a centre crop (as the official CLIPSeg processor does), so the
    # mask maps back onto the whole image.
    image_processor = CLIPImageProcessor(size={"height": IMAGE_SIZE, "width": IMAGE_SIZE}, do_center_crop=False)
    processor = CLIPSegProcessor(image_processor=image_processor, tokenizer=tokenizer)
    model.save_pretrained(directory)
    processor.save_pretrained(directory)
    return directory
