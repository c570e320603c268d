"""The pipeline end to end through the Python API, with a third-party style plugin."""

from __future__ import annotations

import json

import pytest

from elens.audit import read_records, verify
from elens.errors import InputError

from . import testplugin

BASE = """
categories:
  - id: sexual
    thresholds: {text: 0.5, image: 0.5}
    actions: {text: revise, image: regenerate}
  - id: weapons
    thresholds: {text: 0.5}
    actions: {text: block}
  - id: nudity
    thresholds: {image: 0.5}
    actions: {image: blur}
  - id: gore
    thresholds: {image: 0.5}
    actions: {image: block}
  - id: public_figure
    thresholds: {text: 0.5}
    actions: {text: blur}
pipeline:
  text_checks:
    - plugin: words
      options: {words: {sexual: [nude], weapons: [bazooka], public_figure: [Famous Person]}}
  reviser: {plugin: cut, options: {negative: "lowres, nsfw"}}
  backend: {plugin: tiny}
"""


def with_pipeline(extra: str) -> str:
    return BASE + extra


def events(lens):
    return [r["event"] for r in read_records(lens.audit.path)]


def test_clean_prompt_passes_and_is_recorded(elens_lens):
    lens = elens_lens(BASE, plugins=[testplugin])
    result = lens.check_prompt("a lighthouse at dawn")
    assert result.status == "pass"
    assert result.final_prompt == "a lighthouse at dawn"
    assert result.negative_prompt == "lowres, nsfw"
    assert events(lens) == ["request.received", "text.checked", "request.completed"]
    assert verify(lens.audit.path).ok


def test_revise_removes_the_flagged_span_and_rechecks(elens_lens):
    lens = elens_lens(BASE, plugins=[testplugin])
    result = lens.check_prompt("a nude woman on a beach")
    assert result.status == "revised"
    assert result.final_prompt == "a woman on a beach"
    hit = result.triggered[0] if result.triggered else None
    assert hit is None  # the last round is clean
    records = list(read_records(lens.audit.path))
    checked = [r for r in records if r["event"] == "text.checked"]
    assert [c["decision"] for c in checked] == ["revise", "pass"]
    first = checked[0]["findings"][0]
    assert (first["category"], first["action"], first["span"], first["plugin"]) == ("sexual", "revise", [2, 6], "words")
    revised = [r for r in records if r["event"] == "prompt.revised"][0]
    assert revised["before"] == "a nude woman on a beach" and revised["after"] == "a woman on a beach"
    assert "explain" and "REVISED" in result.explain()


def test_block_refuses_and_generates_nothing(elens_lens):
    lens = elens_lens(BASE, plugins=[testplugin])
    result = lens.generate("a bazooka in a field", n=2, seed=1)
    assert result.status == "refused"
    assert result.images == ()
    assert "weapons" in result.prompt.reason
    assert "image.generated" not in events(lens)


@pytest.mark.parametrize("mode,status", [("block", "refused"), ("allow", "pass")])
def test_raising_plugin_follows_the_failure_mode_and_is_recorded(elens_lens, mode, status):
    policy = with_pipeline(f"""
failure_mode: {{text: {mode}}}
""").replace("  text_checks:\n", "  text_checks:\n    - plugin: boom\n")
    lens = elens_lens(policy, plugins=[testplugin])
    result = lens.check_prompt("a lighthouse")
    assert result.status == status
    errors = [r for r in read_records(lens.audit.path) if r["event"] == "plugin.error"]
    assert len(errors) == 1
    assert errors[0]["plugin"] == "boom" and errors[0]["failure_mode"] == mode
    assert "detector crashed" in errors[0]["error"]
    assert verify(lens.audit.path).ok


def test_hanging_plugin_times_out(elens_lens):
    policy = BASE.replace("  text_checks:\n", "  text_checks:\n    - {plugin: sleepy, options: {seconds: 3}, timeout_s: 0.2}\n")
    lens = elens_lens(policy + "failure_mode: {text: allow}\n", plugins=[testplugin])
    result = lens.check_prompt("a lighthouse")
    assert result.status == "pass"
    assert "timed out after 0.2 s" in result.failures[0].error


def test_malformed_findings_are_a_plugin_error(elens_lens):
    policy = BASE.replace("  text_checks:\n", "  text_checks:\n    - plugin: malformed\n")
    lens = elens_lens(policy, plugins=[testplugin])
    result = lens.check_prompt("a lighthouse")
    assert result.status == "refused"
    assert "unknown category 'no_such_category'" in result.failures[0].error


def test_generate_blurs_the_flagged_region_only(elens_lens):
    policy = with_pipeline("""
  image_checks: [{plugin: patch, options: {category: nudity, box: [8, 8, 24, 24]}}]
  editor: {plugin: blackout}
""")
    lens = elens_lens(policy, plugins=[testplugin])
    result = lens.generate("a lighthouse", n=2, seed=7)
    assert [img.status for img in result.images] == ["edited", "edited"]
    import numpy as np

    from elens.tinybackend import TinyBackend

    original = np.array(TinyBackend._one("a lighthouse", 7, 64, 64))
    edited = np.array(result.images[0].image)
    assert (edited[8:24, 8:24] == 0).all()
    mask = np.ones(original.shape[:2], bool)
    mask[8:24, 8:24] = False
    assert (edited[mask] == original[mask]).all()
    edits = [r for r in read_records(lens.audit.path) if r["event"] == "image.edited"]
    assert len(edits) == 2 and edits[0]["sha256_before"] != edits[0]["sha256_after"]


def test_blocked_image_is_withheld_not_blacked_out(elens_lens):
    policy = with_pipeline("""
  image_checks: [{plugin: patch, options: {category: gore}}]
""")
    lens = elens_lens(policy, plugins=[testplugin])
    result = lens.generate("a lighthouse", n=1, seed=3)
    image = result.images[0]
    assert image.status == "blocked" and image.image is None and image.sha256 is None
    assert "gore" in image.reason
    final = [r for r in read_records(lens.audit.path) if r["event"] == "image.final"][0]
    assert final["status"] == "blocked"


def test_regenerate_is_bounded_then_blocks(elens_lens):
    policy = with_pipeline("""
  image_checks: [{plugin: patch, options: {category: sexual}}]
limits: {max_regenerations: 2}
""")
    lens = elens_lens(policy, plugins=[testplugin])
    result = lens.generate("a lighthouse", n=1, seed=5)
    image = result.images[0]
    assert image.status == "blocked" and image.rounds == 2
    assert "still flagged after 2 regeneration(s)" in image.reason
    regens = [r for r in read_records(lens.audit.path) if r["event"] == "image.regenerated"]
    assert [r["round"] for r in regens] == [1, 2]
    assert regens[0]["seed"] != 5 and regens[0]["prompt"].endswith("wholesome")


def test_text_blur_category_blurs_faces_found_later(elens_lens):
    policy = with_pipeline("""
  image_checks: [{plugin: patch, options: {category: public_figure, score: 0.3, box: [0, 0, 10, 10]}}]
  editor: {plugin: blackout}
""")
    lens = elens_lens(policy, plugins=[testplugin])
    result = lens.generate("Famous Person waving", n=1, seed=2)
    assert result.prompt.blur_categories == ("public_figure",)
    assert result.images[0].status == "edited"
    import numpy as np

    assert (np.array(result.images[0].image)[0:10, 0:10] == 0).all()


def test_bias_mismatch_regenerates_with_the_assigned_values(elens_lens):
    policy = with_pipeline("""
  planner: {plugin: one}
  image_checks: [{plugin: patch, options: {category: nudity, score: 0.0, measure: male}}]
bias:
  on_mismatch: regenerate
  attributes:
    - {id: gender, values: [male, female]}
limits: {max_regenerations: 1}
""")
    lens = elens_lens(policy, plugins=[testplugin])
    result = lens.generate("a doctor", n=2, seed=0)
    first, second = result.images
    assert first.assigned == {"c0": {"gender": "male"}} and first.status == "delivered"
    assert second.assigned == {"c0": {"gender": "female"}}
    assert second.status == "blocked" and second.rounds == 1
    assert any(f.category == "bias.gender" for f in second.findings)
    assert result.bias["planned"]["gender"] == 0.0


def test_audit_sink_receives_every_written_record(elens_lens):
    testplugin.MemorySink.records.clear()
    lens = elens_lens(BASE + "audit: {sinks: [{plugin: memory}]}\n", plugins=[testplugin])
    lens.check_prompt("a lighthouse")
    assert [r["event"] for r in testplugin.MemorySink.records] == events(lens)
    assert all("hash" in r for r in testplugin.MemorySink.records)


@pytest.mark.parametrize("prompt,message", [
    ("", "the prompt is empty"),
    ("x" * 3000, "limits.max_prompt_chars"),
    ("a\x00b", "control characters"),
])
def test_bad_prompts_are_input_errors(elens_lens, prompt, message):
    lens = elens_lens(BASE, plugins=[testplugin])
    with pytest.raises(InputError, match=message):
        lens.check_prompt(prompt)


def test_too_many_images(elens_lens):
    lens = elens_lens(BASE + "limits: {max_images: 2}\n", plugins=[testplugin])
    with pytest.raises(InputError, match="limits.max_images is 2"):
        lens.generate("a lighthouse", n=3)


def test_same_seed_reproduces_an_image(elens_lens):
    lens = elens_lens(BASE, plugins=[testplugin])
    a = lens.generate("a lighthouse", n=3, seed=11)
    b = lens.generate("a lighthouse", n=1, seed=13)
    assert a.images[2].seed == 13
    assert a.images[2].sha256 == b.images[0].sha256


def test_result_as_dict_is_json(elens_lens):
    lens = elens_lens(BASE, plugins=[testplugin])
    result = lens.generate("a nude lighthouse", n=1, seed=1)
    data = json.loads(json.dumps(result.as_dict()))
    assert data["text"]["status"] == "revised"
    assert data["images"][0]["status"] == "delivered"
