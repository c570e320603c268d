"""The people planner, the imbalance formulas and the face audit."""

from __future__ import annotations

import collections

import pytest
from PIL import Image

from elens.bias import apportion, gender_imbalance, imbalance, imbalance_for
from elens_bias.faces import FaceCheck, age_stage
from elens_bias.people import lexicon
from elens_bias.planner import PeoplePlanner

ROLES = [line.strip() for line in open(__file__.replace("test_bias.py", "roles_200.txt")) if line.strip()]


@pytest.fixture(scope="module")
def planner(default_policy):
    return PeoplePlanner({}, default_policy)


def test_role_lexicon_is_large():
    singulars = {noun.singular for noun, plural in lexicon().values() if not plural}
    assert len(singulars) >= 500


@pytest.mark.parametrize("role", ROLES)
def test_each_role_is_open_in_a_photo_of_a_role(planner, role):
    plan = planner.plan(f"a photo of a {role}", 2, 0)
    assert len(plan.clusters) == 1, plan.clusters
    cluster = plan.clusters[0]
    assert cluster["type"] == 1 and set(cluster["open"]) == {"gender", "race", "age"}
    assert plan.prompts[0].prompt != f"a photo of a {role}"


def test_explicit_attributes_are_kept(planner):
    plan = planner.plan("a female nurse", 4, 0)
    for p in plan.prompts:
        assert set(p.assigned["p0"]) == {"race", "age"}
        assert "female nurse" in p.prompt


def test_fully_specified_person_is_not_diversified(planner):
    plan = planner.plan("an elderly Black businesswoman", 3, 0)
    assert plan.clusters[0]["type"] == 0
    assert all(p.prompt == "an elderly Black businesswoman" and not p.assigned for p in plan.prompts)


def test_named_people_are_exempt_and_reported(planner):
    plan = planner.plan("Taylor Swift singing with a guitarist", 2, 0)
    assert [s.label for s in plan.signals] == ["Taylor Swift"] and plan.signals[0].category == "public_figure"
    assert plan.signals[0].span == (0, 12)
    assert "Taylor Swift singing" in plan.prompts[0].prompt and "guitarist" in plan.prompts[0].prompt
    heuristic = planner.plan("a portrait of Jane Doakes at work", 1, 0)
    assert [s.label for s in heuristic.signals] == ["Jane Doakes"]
    assert heuristic.prompts[0].prompt == "a portrait of Jane Doakes at work"


@pytest.mark.parametrize("n", [1, 2, 3, 4, 6, 10, 100])
def test_plans_match_largest_remainder_apportionment(planner, default_policy, n):
    plan = planner.plan("a photo of a doctor", n, seed=7)
    for attr in default_policy.bias["attributes"]:
        counts = collections.Counter(p.assigned["p0"][attr["id"]] for p in plan.prompts)
        allowed = attr["values"]
        if attr["id"] == "age":
            allowed = ["young adulthood", "middle age", "old age"]  # doctors are adults (role constraint)
        expected = apportion(n, {v: 1.0 for v in allowed})
        assert {v: counts.get(v, 0) for v in allowed} == expected


def test_same_seed_same_plan_other_seed_other_order(planner):
    a = [p.prompt for p in planner.plan("a photo of a nurse", 10, 3).prompts]
    assert a == [p.prompt for p in planner.plan("a photo of a nurse", 10, 3).prompts]
    assert a != [p.prompt for p in planner.plan("a photo of a nurse", 10, 4).prompts]


def test_role_constraints_no_infant_surgeons(planner):
    ages = {p.assigned["p0"]["age"] for p in planner.plan("a surgeon", 60, 1).prompts}
    assert ages == {"young adulthood", "middle age", "old age"}


def test_weights_from_the_policy(elens_policy):
    policy = elens_policy("""
        categories: []
        bias:
          attributes:
            - {id: gender, values: [male, female], target: {male: 1, female: 3}}
    """)
    plan = PeoplePlanner({}, policy).plan("a photo of a pilot", 8, 0)
    assert collections.Counter(p.assigned["p0"]["gender"] for p in plan.prompts) == {"female": 6, "male": 2}


def test_grammar_of_rewrites(planner):
    prompts = {p.prompt for p in planner.plan("a photo of a nurse", 30, 0).prompts}
    assert any(p.startswith("a photo of an elderly ") for p in prompts)
    assert any(p.startswith("a photo of a middle-aged ") for p in prompts)
    assert all(" a elderly" not in p and " an middle" not in p for p in prompts)


def test_several_clusters_and_groups(planner):
    plan = planner.plan("a doctor talking to five teachers and a nurse", 2, 0)
    types = [c["type"] for c in plan.clusters]
    assert types == [1, 2, 1]
    assert plan.clusters[1]["count"] == 5
    prompt = plan.prompts[0].prompt
    assert "the teachers 50% male and 50% female" in prompt
    assert set(plan.prompts[0].assigned) == {"p0", "p2"}
    team = planner.plan("a team of engineers", 1, 0)
    assert team.clusters[0]["type"] == 2 and "a mix of White, Black" in team.prompts[0].prompt


def test_imbalance_formulas():
    assert gender_imbalance(["male", "female"]) == 0.0
    assert gender_imbalance(["female"] * 4) == 1.0
    uniform = {v: 0.2 for v in "abcde"}
    assert imbalance(list("abcde"), uniform) == 0.0
    assert imbalance(["a"] * 5, uniform) == pytest.approx(1.0)
    assert imbalance(["a", "b"], uniform) == pytest.approx((0.3 + 0.3 + 0.2 * 3) / 1.6)
    attr = {"values": ["male", "female"], "target": "uniform"}
    assert imbalance_for(attr, ["male", "male", "female", "male"]) == 0.5


def test_apportion_is_exact():
    assert apportion(10, {"a": 1, "b": 1, "c": 1}) == {"a": 4, "b": 3, "c": 3}
    assert apportion(1, {"a": 1, "b": 1}) == {"a": 1, "b": 0}
    assert sum(apportion(100, {v: 1 for v in range(6)}).values()) == 100


@pytest.fixture(scope="module")
def faces(default_policy):
    return FaceCheck({}, default_policy)


def test_face_audit_on_a_real_photo(faces, astronaut):
    items = faces.check([astronaut], [None])[0]
    measured = {m.attribute: m for m in items if hasattr(m, "attribute")}
    assert measured["gender"].value == "female"
    assert measured["age"].value in ("young adulthood", "middle age")
    assert "race" not in measured
    box = measured["gender"].region
    assert 150 < box.x0 < 200 and 60 < box.y0 < 110 and 240 < box.x1 < 300
    assert any(getattr(i, "category", None) == "public_figure" for i in items)


def test_face_audit_without_a_face(faces):
    assert faces.check([Image.new("RGB", (256, 256), (90, 140, 200))], [None]) == [[]]


def test_age_stages():
    assert [age_stage(a) for a in (1, 8, 15, 30, 50, 80)] == [
        "infancy", "childhood", "adolescence", "young adulthood", "middle age", "old age"]
