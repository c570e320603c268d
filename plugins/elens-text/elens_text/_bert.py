"""A BERT encoder forward pass in plain torch, for the MiniLM sentence model.

Why not ``transformers.AutoModel``: importing transformers and building the model
costs seconds, and its forward pass has tens of milliseconds of Python overhead on one
CPU thread for a ten-token prompt. This reads the same ``config.json``,
``model.safetensors`` and ``tokenizer.json`` and computes the same hidden states (the
test compares both), in a few milliseconds. Only what ``BertModel`` does in eval mode
with absolute positions and GELU is supported; anything else is refused so the caller
can fall back to transformers.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any, Sequence


class UnsupportedModel(Exception):
    """The folder holds something this encoder does not implement."""


def plain_bert_config(path: Path) -> dict[str, Any]:
    """The folder's ``config.json``, if it is a BERT encoder with absolute positions and
    GELU and has ``tokenizer.json`` and ``model.safetensors``; else UnsupportedModel."""
    cfg = json.loads((path / "config.json").read_text())
    if cfg.get("model_type") != "bert" or cfg.get("hidden_act") != "gelu" or cfg.get(
        "position_embedding_type", "absolute"
    ) != "absolute":
        raise UnsupportedModel(f"{path}: not a plain BERT encoder")
    if not (path / "tokenizer.json").is_file() or not (path / "model.safetensors").is_file():
        raise UnsupportedModel(f"{path}: needs tokenizer.json and model.safetensors")
    return cfg


class BertEncoder:
    def __init__(self, path: str | Path, max_length: int = 128, device: str = "cpu"):
        import torch
        from safetensors.torch import load_file
        from tokenizers import Tokenizer

        path = Path(path)
        cfg = plain_bert_config(path)
        sd = load_file(str(path / "model.safetensors"), device=device)
        sd = {k.removeprefix("bert."): v for k, v in sd.items()}
        self.heads = int(cfg["num_attention_heads"])
        self.layers = int(cfg["num_hidden_layers"])
        self.eps = float(cfg.get("layer_norm_eps", 1e-12))
        self.hidden = int(cfg["hidden_size"])
        try:
            self.word = sd["embeddings.word_embeddings.weight"]
            self.pos = sd["embeddings.position_embeddings.weight"]
            self.type0 = sd["embeddings.token_type_embeddings.weight"][0]
            self.emb_ln = (sd["embeddings.LayerNorm.weight"], sd["embeddings.LayerNorm.bias"])
            self.blocks = []
            for i in range(self.layers):
                p = f"encoder.layer.{i}."
                qkv_w = torch.cat([sd[p + f"attention.self.{n}.weight"] for n in ("query", "key", "value")])
                qkv_b = torch.cat([sd[p + f"attention.self.{n}.bias"] for n in ("query", "key", "value")])
                self.blocks.append((
                    qkv_w, qkv_b,
                    sd[p + "attention.output.dense.weight"], sd[p + "attention.output.dense.bias"],
                    sd[p + "attention.output.LayerNorm.weight"], sd[p + "attention.output.LayerNorm.bias"],
                    sd[p + "intermediate.dense.weight"], sd[p + "intermediate.dense.bias"],
                    sd[p + "output.dense.weight"], sd[p + "output.dense.bias"],
                    sd[p + "output.LayerNorm.weight"], sd[p + "output.LayerNorm.bias"],
                ))
        except KeyError as exc:
            raise UnsupportedModel(f"{path}: missing weight {exc}") from None
        self.max_length = min(max_length, self.pos.shape[0])
        self.tokenizer = Tokenizer.from_file(str(path / "tokenizer.json"))
        self.tokenizer.enable_truncation(self.max_length)
        self.tokenizer.enable_padding(pad_id=int(cfg.get("pad_token_id", 0)))

    def encode(self, texts: Sequence[str]) -> tuple[Any, Any]:
        """Token ids and attention mask (batch x length) for ``texts``."""
        import torch

        encs = self.tokenizer.encode_batch(list(texts))
        ids = torch.tensor([e.ids for e in encs], dtype=torch.long)
        mask = torch.tensor([e.attention_mask for e in encs], dtype=torch.long)
        return ids, mask

    def __call__(self, ids: Any, mask: Any) -> Any:
        """Last hidden states (batch x length x hidden)."""
        import torch
        import torch.nn.functional as F

        b, n = ids.shape
        h = self.heads
        d = self.hidden // h
        x = self.word[ids] + self.pos[:n] + self.type0
        x = F.layer_norm(x, (self.hidden,), *self.emb_ln, self.eps)
        # additive mask: padded keys get the dtype's minimum, as BertModel does
        bias = (1.0 - mask[:, None, None, :].to(x.dtype)) * torch.finfo(x.dtype).min
        for qkv_w, qkv_b, ao_w, ao_b, ln1_w, ln1_b, in_w, in_b, out_w, out_b, ln2_w, ln2_b in self.blocks:
            qkv = F.linear(x, qkv_w, qkv_b).view(b, n, 3, h, d).permute(2, 0, 3, 1, 4)
            q, k, v = qkv[0], qkv[1], qkv[2]
            att = torch.softmax(q @ k.transpose(-1, -2) / math.sqrt(d) + bias, dim=-1)
            ctx = (att @ v).transpose(1, 2).reshape(b, n, self.hidden)
            x = F.layer_norm(F.linear(ctx, ao_w, ao_b) + x, (self.hidden,), ln1_w, ln1_b, self.eps)
            ff = F.linear(F.gelu(F.linear(x, in_w, in_b)), out_w, out_b)
            x = F.layer_norm(ff + x, (self.hidden,), ln2_w, ln2_b, self.eps)
        return x
