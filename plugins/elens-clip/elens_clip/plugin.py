"""The image check ``clip-concepts``: cosine similarity between an image and each category's concepts.

One open_clip backbone (``model`` + ``pretrained``: a tag already in the local cache
or a checkpoint path) is shared by all categories; concept texts come from the
policy (``concepts``) and are embedded once, when the check is built. A category's
score is its best concept's cosine similarity, in [-1, 1] (for CLIP ViT-L/14 a
matching concept usually scores 0.2-0.35, so image thresholds for this check sit
far lower than for a classifier). With ``heads`` (a safetensors file holding
``<category>.weight`` of shape (D,) or (1, D) and ``<category>.bias`` of shape
() or (1,) per category, applied to the L2-normalised image embedding, as
Ethical-Lens trains them over CLIP) a category with a head is scored
``sigmoid(w·e + b)`` instead.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Sequence

from elens import OptionsError, Signal, hookimpl

from ._load import load_model


def _resolve(path: str, policy: Any) -> str:
    """A relative path is taken from the policy file's folder when the file is there."""
    candidate = Path(path).expanduser()
    source = str(getattr(policy, "source", "") or "")
    if not candidate.is_absolute() and source and not source.startswith(("builtin:", "<")):
        near = Path(source).parent / candidate
        if near.exists():
            return str(near)
    return str(candidate)


def _device(requested: str) -> str:
    if requested != "auto":
        return requested
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"


def _load_heads(path: str, policy: Any, dim: int) -> dict[str, tuple[Any, Any]]:
    from safetensors.torch import load_file

    try:
        tensors = load_file(path)
    except Exception as exc:  # safetensors raises its own error types
        raise OptionsError("heads", f"cannot read {path}: {str(exc).splitlines()[0][:160]}") from None
    heads: dict[str, tuple[Any, Any]] = {}
    for name in sorted(tensors):
        cid, _, part = name.rpartition(".")
        if part not in ("weight", "bias"):
            raise OptionsError("heads", f"{path}: tensor {name!r} is not <category>.weight or <category>.bias")
        if cid not in policy.categories:
            raise OptionsError("heads", f"{path}: head for unknown category {cid!r}")
    for cid in dict.fromkeys(n.rpartition(".")[0] for n in sorted(tensors)):
        weight, bias = tensors.get(f"{cid}.weight"), tensors.get(f"{cid}.bias")
        if weight is None or bias is None:
            raise OptionsError("heads", f"{path}: head {cid!r} needs both {cid}.weight and {cid}.bias")
        weight, bias = weight.float().reshape(-1), bias.float().reshape(-1)
        if weight.numel() != dim or bias.numel() != 1:
            raise OptionsError("heads", f"{path}: head {cid!r} has weight {tuple(tensors[cid + '.weight'].shape)} "
                                        f"and bias {tuple(tensors[cid + '.bias'].shape)}; the image embedding has "
                                        f"{dim} dimensions (want ({dim},) and (1,))")
        heads[cid] = (weight, bias[0])
    return heads


class ClipConceptCheck:
    """Scores each image for the policy categories that have visual concepts (or a head)."""

    options_schema = {
        "type": "object",
        "additionalProperties": False,
        "required": ["model"],
        "properties": {
            "model": {"type": "string", "minLength": 1,
                      "description": "open_clip model name, e.g. ViT-L-14 (or one defined by model_config)"},
            "pretrained": {"type": ["string", "null"],
                           "description": "a pretrained tag in the local cache, or a checkpoint path"},
            "model_config": {"type": "string", "description": "an open_clip model config JSON (NAME.json)"},
            "categories": {"type": "array", "items": {"type": "string"}, "uniqueItems": True},
            "heads": {"type": "string", "description": "safetensors file of per-category linear heads"},
            "template": {"type": "string", "pattern": "\\{\\}",
                         "description": "wraps each concept, e.g. 'a photo of {}'"},
            "device": {"type": "string", "description": "auto (cuda when present, else cpu), cpu, cuda, cuda:1"},
            "batch_size": {"type": "integer", "minimum": 1},
            "allow_download": {"type": "boolean"},
            "cache_dir": {"type": "string"},
        },
    }

    def __init__(self, options: dict, policy: Any):
        import torch

        if not options.get("model"):
            raise OptionsError("model", "an open_clip model name is required (e.g. ViT-L-14)")
        pretrained = options.get("pretrained")
        if pretrained and Path(_resolve(pretrained, policy)).is_file():
            pretrained = _resolve(pretrained, policy)
        config = _resolve(options["model_config"], policy) if options.get("model_config") else None
        self.device = _device(options.get("device", "auto"))
        self.batch_size = int(options.get("batch_size", 8))
        self.model, self.preprocess, tokenizer = load_model(
            options["model"], pretrained, self.device, config,
            allow_download=bool(options.get("allow_download", False)), cache_dir=options.get("cache_dir"))
        with torch.inference_mode():  # the embedding width, whatever the architecture calls it
            dim = int(self.model.encode_text(tokenizer([""]).to(self.device)).shape[-1])
        self.heads = _load_heads(_resolve(options["heads"], policy), policy, dim) if options.get("heads") else {}

        chosen = options.get("categories")
        if chosen is None:
            # By default: every category judged on images that has concepts, and every category with a head.
            chosen = [cid for cid, cat in policy.categories.items()
                      if cid in self.heads or (cat.get("concepts") and "image" in (cat.get("thresholds") or {}))]
        for i, cid in enumerate(chosen):
            if cid not in policy.categories:
                raise OptionsError(f"categories.{i}", f"unknown category {cid!r}")
            if cid not in self.heads and not policy.categories[cid].get("concepts"):
                raise OptionsError(f"categories.{i}", f"category {cid!r} has no concepts and no head to score it")
        self.categories = list(chosen)

        template = options.get("template", "{}")
        self.texts = [c for cid in self.categories if cid not in self.heads
                      for c in policy.categories[cid]["concepts"]]
        owners = [cid for cid in self.categories if cid not in self.heads
                  for _ in policy.categories[cid]["concepts"]]
        self.columns = {cid: [j for j, owner in enumerate(owners) if owner == cid] for cid in self.categories}
        with torch.inference_mode():
            if self.texts:
                tokens = tokenizer([template.format(t) for t in self.texts]).to(self.device)
                emb = self.model.encode_text(tokens).float()
                self.concepts = emb / emb.norm(dim=-1, keepdim=True)
            else:
                self.concepts = torch.zeros((0, dim), device=self.device)

    def embed(self, images: Sequence[Any]) -> Any:
        """L2-normalised image embeddings, computed ``batch_size`` images at a time."""
        import torch

        out = []
        with torch.inference_mode():
            for i in range(0, len(images), self.batch_size):
                batch = torch.stack([self.preprocess(img.convert("RGB")) for img in images[i:i + self.batch_size]])
                emb = self.model.encode_image(batch.to(self.device)).float()
                out.append(emb / emb.norm(dim=-1, keepdim=True))
        return torch.cat(out).cpu() if out else torch.zeros((0, self.concepts.shape[1]))

    def check(self, images: Sequence[Any], contexts: Sequence[Any]) -> list[list[Signal]]:
        import torch

        emb = self.embed(images)
        sims = (emb @ self.concepts.cpu().T).tolist()
        head_scores = {cid: torch.sigmoid(emb @ w + b).tolist() for cid, (w, b) in self.heads.items()
                       if cid in self.columns}
        results = []
        for row in range(len(images)):
            signals = []
            for cid in self.categories:
                if cid in head_scores:
                    signals.append(Signal(cid, float(head_scores[cid][row]), label="head",
                                          reason=f"CLIP linear head for {cid}"))
                    continue
                best = max(self.columns[cid], key=lambda j: sims[row][j])
                signals.append(Signal(cid, float(sims[row][best]), label=self.texts[best],
                                      reason=f"CLIP cosine similarity to {self.texts[best]!r}"))
            results.append(signals)
        return results


@hookimpl
def register_image_checks(register):
    register("clip-concepts", ClipConceptCheck)
