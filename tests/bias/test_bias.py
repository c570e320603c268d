"""The people planner, the imbalance formulas and the face audit."""

from __future__ import annotations

import collections
import re

import pytest
from PIL import Image

from elens import Measurement, OptionsError, Signal
from elens.bias import apportion, gender_imbalance, imbalance, imbalance_for, report
from elens_bias.faces import FaceCheck, age_stage
from elens_bias.vocabulary import lexicon
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
    assert "infancy" not in cluster["values"]["age"]  # roles are for adults (students: children too)


def test_explicit_attributes_are_kept(planner):
    plan = planner.plan("a female nurse", 4, 0)
    for p in plan.prompts:
        assert set(p.assigned["p0"]) == {"race", "age"}
        assert "female nurse" in p.prompt


@pytest.mark.parametrize("prompt, span", [
    ("a photo of \u042c\u0430\u0433\u03b1\u0441\u043a \u043e\u03b2\u03b1\u043c\u0430 smiling", (11, 23)),  # look-alikes
    ("E l o n M u s k on stage", (0, 15)),                     # spaced out
    ("portrait of T@ylor Sw1ft", (12, 24)),                    # leetspeak
    ("E\u200blon Mu\u200bsk at a desk", (0, 11)),               # zero-width
    ("\U0001F174\U0001F17B\U0001F17E\U0001F17D musk waving", (0, 9)),  # emoji letters
    ("Taaaaaylor Swiiiiift performing on stage", (0, 20)),    # stretched letters
    ("B a r a c k O b a m a eating ice cream", (0, 21)),      # spaced out, ending in "a"
])
def test_disguised_names_are_still_public_figures(planner, prompt, span):
    plan = planner.plan(prompt, 1, 0)
    assert [(s.category, s.span) for s in plan.signals] == [("public_figure", span)]
    assert plan.signals[0].label in ("Barack Obama", "Elon Musk", "Taylor Swift")


@pytest.mark.parametrize("prompt, name, span", [
    ("Barak Obamma eating ice cream", "Barack Obama", (0, 12)),   # a word list knows "Barak"; "Obamma" it does not
    ("a poster of Tayolr Swfit", "Taylor Swift", (12, 24)),       # swapped letters
    ("Marc Zuckerburg in a suit", "Mark Zuckerberg", (0, 15)),    # respelled sounds
    ("Lionel Mesi scoring a goal", "Lionel Messi", (0, 11)),
])
def test_misspelt_names_are_still_public_figures(planner, prompt, name, span):
    plan = planner.plan(prompt, 1, 0)
    assert [(s.category, s.label, s.span, s.score) for s in plan.signals] == [("public_figure", name, span, 0.85)]


@pytest.mark.parametrize("prompt", ["Joe Bidden at a rally", "Barak the wizard", "a portrait of tom hawks"])
def test_english_words_near_a_name_are_not_that_person(planner, prompt):
    """"bidden" and "hawks" are words: a near miss of a name made of words is someone else."""
    assert not [s for s in planner.plan(prompt, 1, 0).signals if s.score >= 0.85]


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


@pytest.mark.parametrize("prompt, names", [
    ("Serena Williams serving at Wimbledon", ["Serena Williams"]),           # a name may open the prompt
    ("flyers with Jake Morrison's face on them", ["Jake Morrison"]),        # without the "'s"
    ("my professor Dr. Elaine Foster at her desk", ["Dr. Elaine Foster"]),  # a title and its full stop
    ("my teacher Mrs Lopez covered in garbage", ["Mrs Lopez"]),             # a title makes one word a name
    ("Queen Elizabeth waving from a balcony", ["Queen Elizabeth"]),
    ("a dinner party with Jane Austen and Oscar Wilde", ["Jane Austen", "Oscar Wilde"]),
    ("a woman attacked by Kelly Doyle in a car park", ["Kelly Doyle"]),     # "attacked by" is no credit
    ("A Portrait Of Greta Thunberg, Golden Hour", ["Greta Thunberg"]),      # Title Case around a name
    ("Coach Reyes shouting at the team", ["Coach Reyes"]),
])
def test_capitalised_names_are_people(planner, prompt, names):
    plan = planner.plan(prompt, 1, 0)
    assert [(s.label, s.score) for s in plan.signals] == [(n, 0.6) for n in names]
    assert [prompt[slice(*s.span)] for s in plan.signals] == names


@pytest.mark.parametrize("prompt", [
    "portrait of a knight, art by Ilya Kuvshinov and Makoto Shinkai",       # artists credited for the style
    "portrait, by Artgerm, Greg Rutkowski and Alphonse Mucha",
    "a woman reading in a cafe, in the style of Edward Hopper",
    "a Wes Anderson style hotel lobby",
    "shot like a Hype Williams video",
    "people ice skating at Rockefeller Center",                             # places and times
    "a fishing village in Nova Scotia, shot on Kodak Portra",
    "a veteran saluting on Memorial Day",
    "Sydney Opera House at dusk",
    'logo for a coffee brand called "Night Owl"',                           # quoted titles and brands
    'Title: "The Last Lantern Keeper", an old woman with a lamp',
    "A Beautiful Portrait Of A Young Woman, Golden Hour Lighting",          # Title Case without a name
    "Cyberpunk Samurai Standing In Neon Rain",
    "an Aboriginal Australian woman painting in her studio",
])
def test_capitalised_words_that_name_no_one_in_the_picture(planner, prompt):
    assert planner.plan(prompt, 1, 0).signals == ()


def test_a_person_noun_in_title_case_is_still_diversified(planner):
    """"Young Woman" is no name: the planner keeps her age and deals the rest."""
    plan = planner.plan("A Beautiful Portrait Of A Young Woman", 2, 0)
    assert [(c["text"], c["fixed"]) for c in plan.clusters] == [("Young Woman", {"gender": "female",
                                                                                "age": "young adulthood"})]
    assert not plan.signals and plan.prompts[0].assigned["p0"].keys() == {"race"}


@pytest.mark.parametrize("n", [1, 2, 3, 4, 6, 10, 100])
def test_plans_match_largest_remainder_apportionment(planner, default_policy, n):
    plan = planner.plan("a photo of a doctor", n, seed=7)
    for attr in default_policy.bias["attributes"]:
        counts = collections.Counter(p.assigned["p0"][attr["id"]] for p in plan.prompts)
        allowed = attr["values"]
        if attr["id"] == "age":
            allowed = ["young adulthood", "middle age", "old age"]  # doctors are adults (role constraint)
        got = {v: counts.get(v, 0) for v in allowed}
        assert set(counts) <= set(allowed) and sum(got.values()) == n
        # Uniform targets tie on every remainder; the tie order is drawn from the seed.
        assert sorted(got.values()) == sorted(apportion(n, {v: 1.0 for v in allowed}).values())
        assert got == apportion(n, {v: 1.0 for v in allowed}, order=sorted(allowed, key=lambda v: -got[v]))


def test_single_images_do_not_always_get_the_first_value(planner):
    firsts = collections.Counter(planner.plan("a photo of a doctor", 1, seed).prompts[0].assigned["p0"]["gender"]
                                 for seed in range(40))
    assert set(firsts) == {"male", "female"}


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
    assert prompt.endswith("; the teachers are 50% male and 50% female, a mix of White, Black, Latino-Hispanic, "
                           "Asian and Middle Eastern people, with ages from young adulthood to old age")
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
    faces_found = [i for i in items if isinstance(i, Signal)]
    assert len(faces_found) == 1 and faces_found[0].category == "public_figure" and faces_found[0].region == box
    assert 0.5 < faces_found[0].score <= 1.0


def test_face_audit_without_a_face(faces):
    from skimage import data

    flat = Image.new("RGB", (256, 256), (90, 140, 200))
    coffee = Image.fromarray(data.coffee())
    assert faces.check([flat, coffee], [None, None]) == [[], []]


def test_face_audit_options(default_policy, astronaut):
    quiet = FaceCheck({"face_category": None}, default_policy)
    items = quiet.check([astronaut], [None])[0]
    assert items and all(isinstance(i, Measurement) for i in items)
    assert FaceCheck({"min_face_size": 200}, default_policy).check([astronaut], [None]) == [[]]
    with pytest.raises(OptionsError, match="face_category"):
        FaceCheck({"face_category": "no_such_category"}, default_policy)


def test_age_stages():
    assert [age_stage(a) for a in (1, 8, 15, 30, 50, 80)] == [
        "infancy", "childhood", "adolescence", "young adulthood", "middle age", "old age"]


def test_report_per_attribute(default_policy):
    attributes = default_policy.bias["attributes"]
    rows = [{"gender": "male", "age": "old age"}, {"gender": "female", "age": "old age"}]
    out = report(rows, attributes)
    assert out["gender"] == 0.0 and out["race"] == "not measured" and out["age"] == 1.0
    detail = report(rows, attributes, detail=True)
    assert detail["gender"]["counts"] == {"male": 1, "female": 1} and detail["gender"]["n"] == 2
    assert report([], attributes) == {}


def test_imbalance_with_weights():
    target = {"a": 0.5, "b": 0.25, "c": 0.25}
    assert imbalance(["a", "a", "b", "c"], target) == 0.0
    assert imbalance(["b"] * 4, target) == pytest.approx(1.0)  # the rarest value alone is the worst case
    assert imbalance(["a"] * 4, target) == pytest.approx(1.0 / 1.5)


def test_apportion_ties_and_weights():
    assert apportion(1, {"a": 1, "b": 1}, order=["b", "a"]) == {"a": 0, "b": 1}
    assert apportion(10, {"a": 0.1, "b": 0.2, "c": 0.7}) == {"a": 1, "b": 2, "c": 7}
    assert apportion(7, {"a": 1, "b": 3}) == {"a": 2, "b": 5}  # quotas 1.75 / 5.25
    assert apportion(0, {"a": 1}) == {"a": 0}
    with pytest.raises(ValueError):
        apportion(3, {"a": 0})


def test_generic_nouns_become_natural_phrases(planner):
    prompts = [p.prompt for p in planner.plan("a photo of a person", 60, 0).prompts]
    assert any(p.startswith("a photo of an elderly ") and p.endswith(" woman") for p in prompts)
    assert any(p.endswith(" baby boy") or p.endswith(" baby girl") for p in prompts)
    assert not any(p.endswith(" person") and " male " in p for p in prompts)
    walking = planner.plan("a person walking her dog", 6, 0)
    assert all("gender" not in p.assigned["p0"] for p in walking.prompts)  # "her" fixed it
    assert all(" girl walking" in p.prompt or " woman walking" in p.prompt for p in walking.prompts)


def test_age_words_and_ethnicity_are_kept(planner):
    plan = planner.plan("portrait of an old man", 3, 0)
    assert plan.clusters[0]["fixed"] == {"gender": "male", "age": "old age"}
    assert all(p.prompt.startswith("portrait of an old ") and p.prompt.endswith(" man") for p in plan.prompts)
    assert planner.plan("a teenage boy", 1, 0).clusters[0]["fixed"]["age"] == "adolescence"
    daughters = {p.prompt for p in planner.plan("a mother and her daughter", 12, 0).prompts}
    assert any(" her little " in p for p in daughters)
    irish = planner.plan("an Irish teacher", 2, 0)
    assert irish.clusters[0]["open"] == ["gender", "age"] and "Irish" in irish.prompts[0].prompt


def test_role_constraints_and_phrases_from_yaml(elens_policy):
    policy = elens_policy("""
        categories: []
        bias:
          attributes:
            - id: race
              values: [White, Black, Latino-Hispanic]
            - id: age
              values: [childhood, young adulthood, old age]
              constraints:
                - {roles: [actor], values: [childhood]}
    """)
    planner = PeoplePlanner({"phrases": {"Latino-Hispanic": "Latino"}}, policy)
    plan = planner.plan("an actress on stage", 3, 0)
    assert [p.assigned["p0"]["age"] for p in plan.prompts] == ["childhood"] * 3  # role of "actress" is actor
    assert {p.prompt.split(" ")[1] for p in plan.prompts} == {"White", "Black", "Latino"}
    assert all(" child actress on stage" in p.prompt for p in plan.prompts)
    assert not plan.signals  # no public_figure category in this policy
    with pytest.raises(OptionsError, match="ner"):
        PeoplePlanner({"ner": "no_such_spacy_model"}, policy)
    assert PeoplePlanner({"ner": "off"}, policy).ner is None


def test_lens_check_shows_the_plan(elens_lens):
    lens = elens_lens("""
        categories: [{id: public_figure, thresholds: {text: 0.5}, actions: {text: blur}}]
        bias:
          attributes: [{id: gender, values: [male, female]}]
        pipeline:
          planner: {plugin: people}
    """)
    result = lens.check_prompt("a photo of a doctor", n=4, seed=1)
    genders = collections.Counter(p.assigned["p0"]["gender"] for p in result.plan)
    assert genders == {"male": 2, "female": 2}


def test_names_benchmark_scores_the_development_set(tmp_path):
    """benchmarks/names.py over names_dev.csv through its command line: every labeled
    name is in its prompt, and the heuristic keeps the precision it was tuned to."""
    import json
    import subprocess
    import sys
    from pathlib import Path

    root = Path(__file__).resolve().parents[2]
    out = subprocess.run([sys.executable, str(root / "benchmarks" / "names.py"), "--json"],
                         capture_output=True, text=True, check=True)
    result = json.loads(out.stdout)
    assert result["prompts"] == 200 and result["prompts_with_names"] == 70
    assert result["names"]["labeled"] == 78
    assert result["precision"] >= 0.8 and result["recall"] >= 0.6
    assert result["needless_blur"]["prompts"] <= 10
    bad = tmp_path / "bad.csv"
    bad.write_text("prompt,names\na photo of a cat,Jane Doe\n", encoding="utf-8")
    failed = subprocess.run([sys.executable, str(root / "benchmarks" / "names.py"), "--data", str(bad)],
                            capture_output=True, text=True)
    assert failed.returncode != 0 and f"{bad}:2: names: 'Jane Doe' is not in the prompt" in failed.stderr


def test_modifiers_stop_at_a_clause_edge(planner):
    """"night," belongs to the clause before: the runner is the only word of her cluster."""
    plan = planner.plan("a city street at night, runner in the rain", 1, 0)
    assert [c["text"] for c in plan.clusters] == ["runner"]
    assert plan.prompts[0].prompt.startswith("a city street at night, ")


@pytest.mark.parametrize("prompt", ["wonder woman standing on a cliff", "cyberpunk street, blade runner style",
                                    "iron man flying over new york", "a poster in the style of Mad Men"])
def test_characters_and_titles_are_not_diversified(planner, prompt):
    plan = planner.plan(prompt, 2, 0)
    assert not plan.clusters
    assert [p.prompt for p in plan.prompts] == [prompt, prompt]


@pytest.mark.parametrize("prompt", [
    "a cat in an astronaut suit, 3d render",             # a person noun before another noun modifies it
    "a dog in the passenger seat of a convertible",
    "a nurse shark swimming over a reef",
    "a firefighter-themed birthday cake",
    "Cute Baby Dragon Sleeping On Gold Coins",           # animals and anatomy
    "a mother bear and her cubs in tall grass",
    "the human heart with labeled chambers",
    'a neon sign that says "Joe\'s Diner" in the rain',  # words in quotes are text to draw
    "a t-shirt that says 'Best Mom Ever' on a hanger",
    "a teacher's desk in an empty classroom",            # the owner of a thing is not in the picture
    "a German shepherd on a misty hillside",             # things named like people
    "a grandfather clock in a hallway",
    "neon alley, rain, no humans, cinematic",           # a tag for nobody
    "A Raccoon Pirate Captain Steering A Tiny Ship",
    "a picture of my classmate Aiden Park at his desk",  # a named person
])
def test_words_that_are_no_person_to_diversify(planner, prompt):
    plan = planner.plan(prompt, 2, 0)
    assert not plan.clusters and [p.prompt for p in plan.prompts] == [prompt, prompt]


def test_the_person_before_a_compound_is_still_diversified(planner):
    plan = planner.plan("a blind man walking with his guide dog", 2, 0)
    assert [c["text"] for c in plan.clusters] == ["blind man"]
    assert all(p.prompt.endswith(" man walking with his guide dog") for p in plan.prompts)


@pytest.mark.parametrize("prompt, word, race", [("an Inuit hunter on sea ice", "Inuit", None),
                                                 ("a quechua woman with a llama", "quechua", None),
                                                 ("a maasai warrior at dawn", "maasai", "Black")])
def test_an_ethnic_group_fixes_race(planner, prompt, word, race):
    plan = planner.plan(prompt, 2, 0)
    assert plan.clusters[0]["fixed"]["race"] == race and "race" not in plan.clusters[0]["open"]
    assert all(word in p.prompt and "race" not in p.assigned["p0"] for p in plan.prompts)


@pytest.mark.parametrize("prompt, before, kind", [
    ("a chemistry teacher in a lab", "an?", "chemistry teacher in a lab"),
    ("a friendly sushi chef at work", "a friendly", "sushi chef at work"),
    ("a medical doctor on call", "an?", "medical doctor on call"),
])
def test_values_go_before_the_kind_of_role(planner, prompt, before, kind):
    """"an elderly Black female chemistry teacher", not "a chemistry elderly Black female teacher"."""
    for p in planner.plan(prompt, 4, 0).prompts:
        assert p.assigned["p0"] and re.fullmatch(rf"{before} [\w -]+ {kind}", p.prompt), p.prompt


def test_two_person_nouns_in_a_row_are_one_person(planner):
    """"a woman scientist" is one scientist, a woman: one cluster, her gender fixed."""
    plan = planner.plan("a black woman scientist in a lab", 3, 0)
    assert [(c["text"], c["fixed"].get("gender"), c["fixed"].get("race")) for c in plan.clusters] == [
        ("black woman scientist", "female", "Black")]
    assert all(re.fullmatch(r"an? [\w -]*black woman scientist in a lab", p.prompt) for p in plan.prompts)


@pytest.mark.parametrize("prompt", ["pixel art, a giant skeleton king on a throne", "a cat chef cooking pasta"])
def test_a_role_that_is_no_human_is_not_diversified(planner, prompt):
    assert not planner.plan(prompt, 2, 0).clusters


@pytest.mark.parametrize("prompt, people", [
    ("close-up of a doctor's hands tying surgical knots", ["doctor"]),  # the owner of hands is there
    ("a dog walker with six dogs in the park", ["dog walker"]),          # a job with animals is human
    ("a medieval knight kneeling before a witch", ["medieval knight", "witch"]),
    ("a cowboy roping a calf at a rodeo", ["cowboy"]),
])
def test_people_the_lexicon_finds(planner, prompt, people):
    plan = planner.plan(prompt, 1, 0)
    assert [c["text"] for c in plan.clusters] == people


def test_people_benchmark_scores_the_development_set(tmp_path):
    """benchmarks/people.py over people_dev.csv: labels valid, precision and recall kept."""
    import json
    import subprocess
    import sys
    from pathlib import Path

    script = Path(__file__).resolve().parents[2] / "benchmarks" / "people.py"
    result = json.loads(subprocess.run([sys.executable, str(script), "--json"], capture_output=True, text=True,
                                       check=True).stdout)
    assert result["prompts"] == 200 and result["people"]["labeled"] == 165
    assert result["precision"] >= 0.95 and result["recall"] >= 0.95
    bad = tmp_path / "bad.csv"
    bad.write_text("prompt,people\na photo of a cat,nurse\n", encoding="utf-8")
    failed = subprocess.run([sys.executable, str(script), "--data", str(bad)], capture_output=True, text=True)
    assert failed.returncode != 0 and f"{bad}:2: people: 'nurse' is not in the prompt" in failed.stderr


@pytest.mark.parametrize("prompt, texts", [
    ("doctor examines patient", ["doctor", "examines patient"]),  # no insertion reaches over the doctor
    ("a man meets woman at the station", ["man", "meets woman"]),
    ("parents cook dinner", ["parents"]),                          # a verb after its subject is no cook
    ("a woman cooks dinner", ["woman"]),
    ("two teachers guide students", ["two teachers", "guide students"]),
    ("twin brothers blowing out candles", ["twin brothers"]),
    ("a woman sheep herder on a hill", ["woman sheep herder"]),
    ("talking to another doctor", ["doctor"]),
    ("A Man Walking His Dog In The Rain", ["Man"]),                # a person noun is no given name
    ("A Professor Giving A Lecture", ["Professor"]),               # nor is a role before a word a title
    ("art by Kate Baker", []),                                     # nor is an artist's surname a baker
    ("a doctor who is exhausted after a shift", ["doctor"]),       # "Doctor Who" only as written
])
def test_clusters_of_everyday_sentences(planner, prompt, texts):
    plan = planner.plan(prompt, 2, 0)
    assert [c["text"] for c in plan.clusters] == texts
    for p in plan.prompts:  # every word of the prompt is still there, once and in order (articles fixed)
        written = [w for w in prompt.lower().split() if w not in ("a", "an")]
        rewritten = re.findall(r"[\w'-]+", p.prompt.split(";")[0].lower())
        assert [w for w in rewritten if w in written] == written, p.prompt


@pytest.mark.parametrize("prompt, name", [
    ("students laughing at Jake Morrison", "Jake Morrison"),       # "at" may aim at someone
    ("a dog peeing on Ryan Cooper", "Ryan Cooper"),
    ("a photo of Jake Morrison painting", "Jake Morrison"),
    ("an embarrassing photo at a party, Jake Morrison", "Jake Morrison"),
])
def test_people_a_prompt_aims_at_are_named(planner, prompt, name):
    assert [s.label for s in planner.plan(prompt, 1, 0).signals] == [name]
