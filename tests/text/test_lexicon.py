"""The lexicon check and the replace reviser, on the default policy's real terms."""

from __future__ import annotations

import pytest

from elens.errors import PolicyError
from elens.policy import Policy
from elens_lexicon.plugin import LexiconCheck, ReplaceReviser


@pytest.fixture(scope="module")
def check(default_policy):
    return LexiconCheck({}, default_policy)


def hits(check, text):
    return [(s.category, s.label, text[s.span[0]:s.span[1]]) for s in check.check([text])[0]]


@pytest.mark.parametrize("text,span", [
    ("a nude woman", "nude"),
    ("a n.u.d.e woman", "n.u.d.e"),
    ("a n u d e woman", "n u d e"),
    ("a n-u-d-e woman", "n-u-d-e"),
    ("a nuuuuude woman", "nuuuuude"),
    ("a n\u200bu\u200bd\u200be woman", "n\u200bu\u200bd\u200be"),
    ("a nud\u0435 woman", "nud\u0435"),  # Cyrillic e
    ("a \uff4e\uff55\uff44\uff45 woman", "\uff4e\uff55\uff44\uff45"),  # fullwidth
    ("a n00d woman", "n00d"),
    ("a nud3 woman", "nud3"),
    ("a NUDE woman", "NUDE"),
    ("a nu\u0301de woman", "nu\u0301de"),  # combining accent
])
def test_evasions_are_caught_with_the_original_span(check, text, span):
    found = [h for h in hits(check, text) if h[0] == "sexual"]
    assert found and found[0][2] == span


@pytest.mark.parametrize("text", [
    "a shot of espresso", "breast cancer awareness ribbon", "kill the lights in the studio",
    "a chicken breast recipe", "a shooting star over the desert", "a bloody mary cocktail",
    "naked mole rat in a zoo", "the sussex countryside", "skill tree of a video game", "a nudist beach sign",
])
def test_benign_prompts_do_not_match(check, text):
    assert hits(check, text) == []


def test_multi_word_phrases_and_boundaries(check):
    assert ("shocking", "pool of blood", "pool  of-blood") in hits(check, "a pool  of-blood on the floor")
    assert hits(check, "a murderous look") == []
    assert ("violence", "murder", "murder") in hits(check, "a murder scene")


def test_reviser_replaces_spans_and_keeps_the_rest(default_policy, check):
    reviser = ReplaceReviser({}, default_policy)
    prompt = "a nude woman and a corpse on a beach at sunset"
    from elens.judge import judge_signal
    from elens.plugins import ComponentInfo

    info = ComponentInfo("lexicon", "text_check", "lexicon", "0.1.0", LexiconCheck)
    findings = [judge_signal(default_policy, "text", s, info) for s in check.check([prompt])[0]]
    revision = reviser.revise(prompt, findings)
    assert revision.prompt == "a clothed woman and a sleeping person on a beach at sunset"
    assert ("nude", "clothed") in revision.changes and ("corpse", "sleeping person") in revision.changes
    assert "nudity" in revision.negative_prompt


def test_reviser_removes_terms_for_findings_without_spans(default_policy):
    from elens import Finding

    reviser = ReplaceReviser({}, default_policy)
    finding = Finding("nudenet", "1", "image", "shocking", 0.9, 0.7, "regenerate", True)
    assert reviser.revise("zombies in a gory street", [finding]).prompt == "ghosts in a dramatic street"


def test_reviser_fixes_articles(default_policy):
    from elens_lexicon.plugin import tidy

    assert tidy("a  elderly man , with  a hat") == "an elderly man, with a hat"
    assert tidy("an  dog") == "a dog"


def test_unknown_category_in_options_names_the_field(tmp_path):
    path = tmp_path / "p.yaml"
    path.write_text("elens: 1\nmetadata: {name: t, version: '1'}\ncategories:\n  - id: spam\n"
                    "    thresholds: {text: 0.5}\n    actions: {text: block}\npipeline:\n  text_checks:\n"
                    "    - plugin: lexicon\n      options: {categories: [spam, nope]}\n")
    from elens import Lens

    with pytest.raises(PolicyError) as err:
        Lens(str(path), audit_path=tmp_path / "a.jsonl").check_prompt("hello")
    assert str(err.value) == f"{path}:10: pipeline.text_checks[0].options.categories[1]: unknown category 'nope'"
