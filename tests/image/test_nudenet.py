"""The ``nudenet`` image check on real photos, with the detector that ships in the nudenet package."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from elens import Signal
from elens.errors import OptionsError, PolicyError
from elens.plugins import default_registry
from elens.policy import Policy

ENTRY_PATH = ("pipeline", "image_checks", 0)


@pytest.fixture(scope="module")
def registry():
    return default_registry()


def build(registry, policy, options=None):
    check, _info = registry.build("image_check", ENTRY_PATH, {"plugin": "nudenet", "options": options or {}}, policy)
    return check


@pytest.fixture(scope="module")
def nudenet(registry, default_policy):
    return build(registry, default_policy)


def policy_with(options: str) -> Policy:
    return Policy.from_text(
        "elens: 1\nextends: builtin:default\nmetadata: {name: t, version: '1'}\n"
        "pipeline:\n  image_checks:\n    - plugin: nudenet\n"
        f"      options: {options}\n",
        source="/policies/test.yaml",
    )


def test_registered_through_the_entry_point(registry):
    info = registry.get("image_check", "nudenet")
    assert info.plugin == "nudenet" and info.version == "0.1.0"


def test_astronaut_face_is_a_public_figure_box_and_nothing_else(nudenet, astronaut):
    signals = nudenet.check([astronaut], [None])[0]
    assert [(s.category, s.label) for s in signals] == [("public_figure", "FACE_FEMALE")]
    face = signals[0]
    assert isinstance(face, Signal) and 0.5 < face.score <= 1
    r = face.region
    assert r.label == "FACE_FEMALE"
    # Eileen Collins' face in the 512x512 photo: roughly x 175-275, y 80-180.
    assert 150 < r.x0 < 200 and 60 < r.y0 < 110 and 250 < r.x1 < 300 and 160 < r.y1 < 210
    assert not any(s.category == "nudity" for s in signals)


def test_flat_and_noise_images_give_nothing(nudenet):
    flat = Image.new("RGB", (320, 320), (200, 180, 160))
    noise = Image.fromarray(np.random.default_rng(1).integers(0, 256, (256, 384, 3), dtype=np.uint8))
    assert nudenet.check([flat, noise], [None, None]) == [[], []]
    assert nudenet.check([], []) == []


def test_batch_matches_single_images_and_boxes_follow_the_size(nudenet, astronaut):
    tall = astronaut.resize((256, 384))
    grey = astronaut.convert("L")  # any mode is accepted
    flat = Image.new("RGB", (64, 64), (0, 0, 0))
    batch = nudenet.check([astronaut, flat, tall, grey, astronaut], [None] * 5)
    alone = [nudenet.check([img], [None])[0] for img in (astronaut, flat, tall)]
    assert batch[0] == alone[0] == batch[4] and batch[1] == [] and batch[2] == alone[2]
    assert [s.label for s in batch[3]] == ["FACE_FEMALE"]
    (big,), (small,) = alone[0], alone[2]
    # The same face, in pixels of the resized image (x halved, y times 0.75), within a few pixels.
    assert abs(small.region.x0 - big.region.x0 / 2) < 6 and abs(small.region.y1 - big.region.y1 * 0.75) < 8


def test_detections_equal_the_nudenet_package(nudenet, astronaut):
    import nudenet as package

    reference = package.NudeDetector()  # the package's own pipeline, fed what cv2.imread gives (BGR)
    for image in (astronaut, astronaut.resize((256, 384)), astronaut.crop((100, 0, 400, 200))):
        rgb = np.asarray(image)
        assert nudenet._detector.detect([rgb])[0] == reference.detect(np.ascontiguousarray(rgb[:, :, ::-1]))


def test_class_map_options(registry, default_policy, astronaut):
    assert build(registry, default_policy, {"classes": {"FACE_FEMALE": None}}).check([astronaut], [None]) == [[]]
    strict = {"classes": {"FACE_FEMALE": {"category": "public_figure", "min_score": 0.99}}}
    assert build(registry, default_policy, strict).check([astronaut], [None]) == [[]]
    remapped = build(registry, default_policy, {"classes": {"FACE_FEMALE": {"category": "political"}}})
    (signal,) = remapped.check([astronaut], [None])[0]
    assert signal.category == "political" and signal.label == "FACE_FEMALE"


def test_defaults_map_exposed_parts_to_nudity_and_ignore_covered(nudenet):
    assert nudenet.classes["FEMALE_BREAST_EXPOSED"]["category"] == "nudity"
    assert nudenet.classes["FACE_MALE"]["category"] == "public_figure"
    assert not any(cls.endswith("_COVERED") for cls in nudenet.classes)


def test_model_loads_once_per_process(registry, default_policy, nudenet):
    again = build(registry, default_policy, {"classes": {"FACE_MALE": None}})
    assert again._detector is nudenet._detector


def test_unknown_category_is_an_options_error(default_policy):
    from elens_nudenet.plugin import NudeNetCheck

    with pytest.raises(OptionsError, match="unknown category 'spam'") as err:
        NudeNetCheck({"classes": {"FACE_MALE": {"category": "spam"}}}, default_policy)
    assert err.value.field == "classes.FACE_MALE.category"
    with pytest.raises(OptionsError, match="not a NudeNet class"):
        NudeNetCheck({"classes": {"FACE_ALIEN": {"category": "nudity"}}}, default_policy)
    with pytest.raises(OptionsError, match="no NudeNet ONNX model"):
        NudeNetCheck({"model": "/nonexistent/640m.onnx"}, default_policy)


def test_option_errors_name_the_policy_line(registry):
    policy = policy_with("{classes: {FACE_MALE: {category: spam}}}")
    with pytest.raises(PolicyError, match=r"test.yaml:7: .*classes.FACE_MALE.category: unknown category 'spam'"):
        build(registry, policy, policy.pipeline["image_checks"][0]["options"])
    for bad in ("{classes: {FACE_ALIEN: null}}", "{classes: {FACE_MALE: {category: nudity, min_score: 2}}}",
                "{threshold: 0.5}"):
        with pytest.raises(PolicyError, match="test.yaml"):
            registry.check(policy_with(bad))
