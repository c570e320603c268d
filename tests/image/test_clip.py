"""The CLIP concept check on a tiny randomly initialised open_clip model (config + checkpoint in tmp)."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from elens import PolicyError
from elens.errors import OptionsError
from elens.plugins import default_registry
from elens_clip.plugin import ClipConceptCheck

from ._tiny_models import build_tiny_clip


@pytest.fixture(scope="session")
def tiny_clip(tmp_path_factory):
    return build_tiny_clip(tmp_path_factory.mktemp("clip"))


@pytest.fixture(scope="module")
def check(tiny_clip, default_policy):
    return ClipConceptCheck(tiny_clip, default_policy)


@pytest.fixture(scope="module")
def images(astronaut):
    return [astronaut, Image.new("RGB", (64, 48), (10, 200, 30)),
            Image.fromarray(np.random.default_rng(1).integers(0, 256, (40, 40, 3), dtype=np.uint8))]


def test_default_categories_are_the_image_judged_ones_with_concepts(check, default_policy):
    expected = [c for c, cat in default_policy.categories.items()
                if cat.get("concepts") and "image" in cat.get("thresholds", {})]
    assert check.categories == expected and "public_figure" not in expected and "nudity" in expected


def test_scores_are_cosine_similarities_of_the_best_concept(check, tiny_clip, default_policy, images):
    import open_clip
    import torch

    model, _, preprocess = open_clip.create_model_and_transforms(tiny_clip["model"], pretrained=tiny_clip["pretrained"])
    tokenizer = open_clip.get_tokenizer(tiny_clip["model"])
    results = check.check(images, [None] * len(images))
    with torch.no_grad():
        img = torch.nn.functional.normalize(model.encode_image(preprocess(images[0]).unsqueeze(0)), dim=-1)[0]
        for signal in results[0]:
            concepts = default_policy.categories[signal.category]["concepts"]
            txt = torch.nn.functional.normalize(model.encode_text(tokenizer(concepts)), dim=-1)
            sims = (txt @ img).tolist()
            assert -1.0 <= signal.score <= 1.0
            assert signal.score == pytest.approx(max(sims), abs=1e-5)
            assert signal.label == concepts[int(np.argmax(sims))]
    assert [s.score for s in results[0]] != pytest.approx([s.score for s in results[1]], abs=1e-6)


def test_same_image_same_score_whatever_the_batch(tiny_clip, default_policy, images):
    one_by_one = ClipConceptCheck({**tiny_clip, "batch_size": 1}, default_policy)
    batched = ClipConceptCheck({**tiny_clip, "batch_size": 8}, default_policy)
    assert one_by_one.model is batched.model  # one backbone per process
    alone = [one_by_one.check([img], [None])[0] for img in images]
    together = batched.check(images + images[:1], [None] * 4)
    for a, b in zip(alone + alone[:1], together):
        assert [s.category for s in a] == [s.category for s in b]
        assert [s.score for s in a] == pytest.approx([s.score for s in b], abs=1e-5)


def test_heads_file_scores_with_a_sigmoid(tiny_clip, default_policy, tmp_path, images):
    import torch
    from safetensors.torch import save_file

    weight = torch.randn(1, 16, generator=torch.Generator().manual_seed(3))
    heads = tmp_path / "heads.safetensors"
    save_file({"nudity.weight": weight, "nudity.bias": torch.tensor([0.5])}, str(heads))
    check = ClipConceptCheck({**tiny_clip, "heads": str(heads), "categories": ["nudity", "violence"]}, default_policy)
    signals = {s.category: s for s in check.check(images[:1], [None])[0]}
    emb = check.embed(images[:1])[0]
    assert signals["nudity"].score == pytest.approx(torch.sigmoid(emb @ weight[0] + 0.5).item(), abs=1e-6)
    assert signals["nudity"].label == "head" and signals["violence"].label != "head"
    assert 0.0 < signals["nudity"].score < 1.0


@pytest.mark.parametrize("tensors, message", [
    ({"spam.weight": (16,), "spam.bias": (1,)}, "unknown category 'spam'"),
    ({"nudity.weight": (8,), "nudity.bias": (1,)}, "16 dimensions"),
    ({"nudity.weight": (16,)}, "needs both"),
])
def test_bad_heads_files(tiny_clip, default_policy, tmp_path, tensors, message):
    import torch
    from safetensors.torch import save_file

    path = tmp_path / "heads.safetensors"
    save_file({k: torch.zeros(shape) for k, shape in tensors.items()}, str(path))
    with pytest.raises(OptionsError, match=message) as info:
        ClipConceptCheck({**tiny_clip, "heads": str(path)}, default_policy)
    assert info.value.field == "heads"


@pytest.mark.parametrize("change, field, message", [
    ({"categories": ["nudity", "spam"]}, "categories.1", "unknown category 'spam'"),
    ({"categories": ["hate"]}, "categories.0", "no concepts and no head"),
    ({"pretrained": "no-such-tag"}, "pretrained", "neither a checkpoint file nor a pretrained tag"),
    ({"model": "ViT-B-32", "pretrained": "laion2b_s34b_b79k", "model_config": None},
     "pretrained", "not in the local cache.*allow_download"),
    ({"model": "no-such-model", "model_config": None}, "model", "unknown open_clip model"),
    ({"heads": "/nowhere/heads.safetensors"}, "heads", "cannot read"),
])
def test_option_errors(tiny_clip, default_policy, change, field, message):
    options = {k: v for k, v in {**tiny_clip, **change}.items() if v is not None}
    with pytest.raises(OptionsError, match=message) as info:
        ClipConceptCheck(options, default_policy)
    assert info.value.field == field


POLICY = """
categories:
  - id: gore
    thresholds: {image: 0.0}
    actions: {image: block}
    concepts: [blood, a wound]
  - id: cats
    thresholds: {image: 1.0}
    actions: {image: warn}
    concepts: [a cat]
pipeline:
  image_checks: [{plugin: clip-concepts, options: OPTIONS}]
"""


def _policy_text(options: dict) -> str:
    import json

    return POLICY.replace("OPTIONS", json.dumps(options))


def test_through_the_registry_and_lens(tiny_clip, elens_lens, images):
    # A threshold of 0 fires on any image whose similarity is not negative; 1.0 (identical) never does.
    lens = elens_lens(_policy_text(tiny_clip))
    result = lens.moderate(images[:2])
    for image in result.images:
        by_category = {f.category: f for f in image.findings if f.plugin == "clip-concepts"}
        assert set(by_category) == {"gore", "cats"}
        assert not by_category["cats"].triggered
        assert by_category["gore"].triggered == (by_category["gore"].score >= 0.0)
        assert image.status == ("blocked" if by_category["gore"].triggered else "delivered")


def test_policy_errors_are_located(tiny_clip, elens_policy):
    registry = default_registry()
    with pytest.raises(PolicyError, match="batch_size"):
        registry.check(elens_policy(_policy_text({**tiny_clip, "batch_size": 0})))
    policy = elens_policy(_policy_text({**tiny_clip, "categories": ["cats", "dogs"]}))
    with pytest.raises(PolicyError, match="unknown category 'dogs'") as info:
        registry.build("image_check", ("pipeline", "image_checks", 0), policy.pipeline["image_checks"][0], policy)
    assert "categories" in str(info.value)


def test_pretrained_tags_resolve_to_the_local_cache_only(tmp_path):
    from elens_clip._load import resolve_pretrained

    # A hub-cached tag: the file in the snapshot, with the tag's preprocessing.
    repo = tmp_path / "models--laion--CLIP-ViT-B-32-laion2B-s34B-b79K"
    (repo / "refs").mkdir(parents=True)
    (repo / "refs" / "main").write_text("abc123")
    (repo / "snapshots" / "abc123").mkdir(parents=True)
    (repo / "snapshots" / "abc123" / "open_clip_model.safetensors").write_bytes(b"")
    path, kwargs = resolve_pretrained("ViT-B-32", "laion2b_s34b_b79k", False, str(tmp_path))
    assert path.endswith("abc123/open_clip_model.safetensors")
    assert kwargs["force_preprocess_cfg"]["interpolation"] == "bicubic" and "force_quick_gelu" not in kwargs
    # A URL-cached tag (open_clip's own cache layout), trained with QuickGELU.
    (tmp_path / "ViT-B-32.pt").write_bytes(b"")
    path, kwargs = resolve_pretrained("ViT-B-32", "openai", False, str(tmp_path))
    assert path == str(tmp_path / "ViT-B-32.pt") and kwargs["force_quick_gelu"] is True
    # Downloads allowed: the tag goes to open_clip unchanged.
    assert resolve_pretrained("ViT-B-32", "openai", True, str(tmp_path)) == ("openai", {})
