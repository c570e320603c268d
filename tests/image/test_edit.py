"""The ``region`` editor: box edits on a real photo, whole-image edits, and a tiny random CLIPSeg."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from elens import Finding, Region
from elens.errors import OptionsError, PolicyError
from elens.plugins import default_registry
from elens.policy import Policy

from ._clipseg_tiny import build_tiny_clipseg

ENTRY_PATH = ("pipeline", "editor")
BOX = Region(180, 80, 280, 180, "FACE_FEMALE")
PADDED = (170, 70, 290, 190)  # BOX grown by 0.1 of its 100 px sides


@pytest.fixture(scope="module")
def registry():
    return default_registry()


@pytest.fixture(scope="session")
def tiny_clipseg(tmp_path_factory):
    return build_tiny_clipseg(tmp_path_factory.mktemp("clipseg"))


def editor(registry, policy, **options):
    component, _info = registry.build("editor", ENTRY_PATH, {"plugin": "region", "options": options}, policy)
    return component


def finding(category="public_figure", region=None):
    return Finding("nudenet", "0.1.0", "image", category, 0.9, 0.5, "blur", True, region=region)


def changed(before: Image.Image, after: Image.Image) -> np.ndarray:
    return (np.asarray(before) != np.asarray(after)).any(axis=2)


def inside(box, shape):
    x0, y0, x1, y1 = box
    mask = np.zeros(shape, bool)
    mask[y0:y1, x0:x1] = True
    return mask


@pytest.mark.parametrize("method", ["blur", "pixelate", "blackout"])
@pytest.mark.parametrize("padding", [0.1, "10px"])
def test_edit_changes_exactly_the_padded_region(registry, default_policy, astronaut, method, padding):
    before = np.asarray(astronaut).copy()
    out = editor(registry, default_policy, method=method, padding=padding, feather=3).edit(astronaut, finding(region=BOX))
    assert isinstance(out, Image.Image) and out.mode == "RGB" and out.size == astronaut.size and out is not astronaut
    assert (np.asarray(astronaut) == before).all()  # the input is never changed
    diff = changed(astronaut, out)
    box = inside(PADDED, diff.shape)
    assert not diff[~box].any()  # nothing outside the padded box
    x0, y0, x1, y1 = PADDED
    assert diff[y0 + 4:y1 - 4, x0 + 4:x1 - 4].mean() > 0.97  # inside the feathered edge: hidden
    if method == "blackout":
        assert not np.asarray(out)[y0 + 4:y1 - 4, x0 + 4:x1 - 4].any()


def test_pixelate_makes_blocks(registry, default_policy, astronaut):
    out = np.asarray(editor(registry, default_policy, method="pixelate", strength=0.2, padding=0, feather=0)
                     .edit(astronaut, finding(region=Region(100, 100, 300, 300))))
    block = out[100:110, 100:110]  # 0.2 x 51.2 -> 10 px blocks, aligned to the box
    assert (block == block[0, 0]).all() and not (out[100:110, 110:120] == block[0, 0]).all()


def test_strength_sets_how_much_is_hidden(registry, default_policy, astronaut):
    def error(strength):
        out = editor(registry, default_policy, strength=strength).edit(astronaut, finding(region=BOX))
        return np.abs(np.asarray(out, float) - np.asarray(astronaut, float)).mean()

    assert 0 < error(0.1) < error(0.5) < error(1.0)


def test_feathering_is_soft_and_stays_inside(registry, default_policy, astronaut):
    box = Region(100, 100, 200, 200)
    hard = np.asarray(editor(registry, default_policy, method="blackout", padding=0, feather=0)
                      .edit(astronaut, finding(region=box)))
    soft_img = editor(registry, default_policy, method="blackout", padding=0, feather=8).edit(astronaut, finding(region=box))
    soft, orig = np.asarray(soft_img).astype(int), np.asarray(astronaut).astype(int)
    assert not hard[100:200, 100:200].any()
    assert not soft[110:190, 110:190].any()  # fully hidden past the feather band
    ramp = [soft[150, x].sum() / max(1, orig[150, x].sum()) for x in range(100, 110)]
    assert 0 < ramp[0] and all(a >= b for a, b in zip(ramp, ramp[1:]))  # fades in from the edge
    assert not changed(astronaut, soft_img)[~inside((100, 100, 200, 200), soft.shape[:2])].any()


def test_per_category_methods(registry, default_policy, astronaut):
    ed = editor(registry, default_policy, method="blur",
                by_category={"public_figure": {"method": "blackout"}, "nudity": {"method": "pixelate", "padding": 0}})
    face = np.asarray(ed.edit(astronaut, finding("public_figure", BOX)))
    nude = np.asarray(ed.edit(astronaut, finding("nudity", BOX)))
    other = np.asarray(ed.edit(astronaut, finding("violence", BOX)))
    assert not face[100:160, 200:260].any()
    assert nude[100:160, 200:260].any() and not changed(astronaut, Image.fromarray(nude))[75:80, 175:285].any()
    assert not (other == nude).all() and other[100:160, 200:260].any()


def test_no_region_and_no_clipseg_edits_the_whole_image(registry, default_policy, astronaut):
    black = np.asarray(editor(registry, default_policy, method="blackout").edit(astronaut, finding()))
    assert not black.any()
    blurred = editor(registry, default_policy).edit(astronaut, finding())
    assert changed(astronaut, blurred).mean() > 0.9


def test_clipseg_masks_a_finding_without_a_box(registry, default_policy, tiny_clipseg, astronaut):
    from elens_edit.masks import clipseg_probabilities

    small = astronaut.resize((96, 64))
    concepts = default_policy.categories["nudity"]["concepts"]
    probs = clipseg_probabilities(small, concepts, str(tiny_clipseg))
    assert probs.shape == (64, 96) and ((0 <= probs) & (probs <= 1)).all()
    threshold = float(np.median(probs))  # random weights: pick a threshold that splits the image
    mask = probs >= threshold
    assert 0.2 < mask.mean() < 0.8
    ed = editor(registry, default_policy, method="blackout", clipseg=str(tiny_clipseg), mask_threshold=threshold)
    assert ed.prompts_for("nudity") == list(concepts)  # the policy's concepts are the prompts
    out = np.asarray(ed.edit(small, finding("nudity")))
    assert not out[mask].any()  # black where the mask is on
    assert (out[~mask] == np.asarray(small)[~mask]).all()  # untouched where it is off


def test_clipseg_prompts_from_options_and_soft_masks(registry, default_policy, tiny_clipseg, astronaut):
    from elens_edit.masks import clipseg_probabilities

    small = astronaut.resize((64, 64))
    probs = clipseg_probabilities(small, ["face"], str(tiny_clipseg))
    threshold = float(np.quantile(probs, 0.7))
    ed = editor(registry, default_policy, clipseg=str(tiny_clipseg), mask_prompts={"public_figure": "face"},
                mask_feather=3, mask_grow=2, mask_threshold=threshold)
    assert ed.prompts_for("public_figure") == ["face"] and ed.prompts_for("violence")
    alpha = ed.alpha(small, finding("public_figure"))
    hard = probs >= threshold
    assert (alpha[~hard] > 0).any()  # grown by mask_grow
    assert 0 < (alpha > 0).mean() < 1 and 0 < (alpha >= 1).sum() < (alpha > 0).sum()  # a soft band exists
    out = ed.edit(small, finding("public_figure"))
    assert not changed(small, out)[alpha == 0].any()


def test_clipseg_finding_nothing_edits_the_whole_image(registry, default_policy, tiny_clipseg, astronaut):
    small = astronaut.resize((48, 48))
    ed = editor(registry, default_policy, method="blackout", clipseg=str(tiny_clipseg), mask_threshold=1.0)
    assert not np.asarray(ed.edit(small, finding("nudity"))).any()


def test_option_errors(registry, default_policy, tmp_path):
    from elens_edit.plugin import RegionEditor

    with pytest.raises(OptionsError, match="unknown category 'spam'") as err:
        RegionEditor({"by_category": {"spam": {"method": "blur"}}}, default_policy)
    assert err.value.field == "by_category.spam"
    with pytest.raises(OptionsError, match="mask_prompts.spam"):
        RegionEditor({"mask_prompts": {"spam": ["x"]}}, default_policy)
    with pytest.raises(OptionsError, match="cannot load CLIPSeg"):
        RegionEditor({"clipseg": str(tmp_path / "missing")}, default_policy)
    with pytest.raises(OptionsError, match="padding"):
        RegionEditor({"padding": "ten px"}, default_policy)
    with pytest.raises(OptionsError, match="unknown method"):
        RegionEditor({"by_category": {"nudity": {"method": "smudge"}}}, default_policy)


def test_schema_errors_name_the_policy_line(registry):
    def policy(options):
        return Policy.from_text("elens: 1\nextends: builtin:default\nmetadata: {name: t, version: '1'}\n"
                                f"pipeline:\n  editor:\n    plugin: region\n    options: {options}\n",
                                source="/policies/edit.yaml")

    for bad in ("{method: smudge}", "{padding: -1}", "{feather: 1.5}", "{by_category: {nudity: {size: 3}}}",
                "{mask_threshold: 2}", "{mask_grow: -1}", "{mask_feather: 0.5}", "{colour: red}"):
        with pytest.raises(PolicyError, match="edit.yaml"):
            registry.check(policy(bad))
    p = policy("{by_category: {spam: {method: blur}}}")
    with pytest.raises(PolicyError, match=r"edit.yaml:\d+: pipeline.editor.options.by_category.spam: unknown category"):
        registry.build("editor", ENTRY_PATH, p.pipeline["editor"], p)
