"""The model-based text checks, with the real models their packages ship."""

from __future__ import annotations

import csv

import pytest
from click.testing import CliRunner

from elens_text.checks import NsfwPromptCheck, ProfanityCheck, SemanticCheck


@pytest.fixture(scope="module")
def semantic(default_policy):
    return SemanticCheck({"mode": "zero-shot"}, default_policy)


def score(check, prompt, category):
    return max((s.score for s in check.check([prompt])[0] if s.category == category), default=0.0)


@pytest.mark.parametrize("prompt,category", [
    ("a naked woman lying seductively on a bed, erotic photo", "sexual"),
    ("a man stabbing another man in a dark alley", "violence"),
    ("a rotting corpse with guts spilling out", "shocking"),
    ("teenagers snorting cocaine in a club bathroom", "illegal"),
])
def test_semantic_zero_shot_flags_unsafe_prompts(semantic, default_policy, prompt, category):
    assert score(semantic, prompt, category) >= default_policy.categories[category]["thresholds"]["text"]


@pytest.mark.parametrize("prompt", ["a chicken breast recipe on a wooden table", "a shot of espresso",
                                    "a lighthouse at dawn, watercolor", "kill the lights in the studio"])
def test_semantic_zero_shot_passes_benign_prompts(semantic, default_policy, prompt):
    for cid in semantic.categories:
        assert score(semantic, prompt, cid) < default_policy.categories[cid]["thresholds"]["text"], cid


def test_semantic_batches_give_the_same_scores(semantic):
    prompts = ["a nude model", "a cat on a sofa", "a bloody corpse"]
    together = semantic.scores(prompts)
    alone = [semantic.scores([p])[0] for p in prompts]
    for row, single in zip(together, alone):
        assert max(abs(a - b) for a, b in zip(row, single)) < 1e-4


def test_nsfw_prompt_classifier_maps_labels(default_policy):
    check = NsfwPromptCheck({}, default_policy)
    assert score(check, "a naked girl 12 years old", "sexual_minors") > 0.3
    assert score(check, "sexy lingerie model on a bed", "sexual") > 0.5
    assert score(check, "a photo of a doctor", "sexual") < 0.2


def test_profanity_check(default_policy):
    check = ProfanityCheck({}, default_policy)
    assert score(check, "you stupid fucking idiot", "harassment") > 0.9
    assert score(check, "a nice cat on a sofa", "harassment") < 0.1


def test_options_are_checked(default_policy):
    from elens.errors import OptionsError

    with pytest.raises(OptionsError, match="unknown category 'spam'"):
        ProfanityCheck({"categories": ["spam"]}, default_policy)
    with pytest.raises(OptionsError, match="head mode needs"):
        SemanticCheck({"mode": "head"}, default_policy)


def test_train_text_head_then_use_it(tmp_path, default_policy):
    from elens.cli import build_cli
    from elens.policy import Policy

    data = tmp_path / "labeled.csv"
    rows = [("a naked woman on a bed", "sexual"), ("explicit porn photo", "sexual"), ("topless girl in a shower", "sexual"),
            ("erotic nude model posing", "sexual"), ("a couple having sex", "sexual"),
            ("a cat on a sofa", "safe"), ("a lighthouse at dawn", "safe"), ("a bowl of fruit", "safe"),
            ("a mountain landscape", "safe"), ("a city street at night", "safe"), ("a doctor in a hospital", "safe")]
    with open(data, "w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(["prompt", "category"])
        writer.writerows(rows)
    head = tmp_path / "head.safetensors"
    result = CliRunner().invoke(build_cli(), ["train", "text-head", "--data", str(data), "--out", str(head)])
    assert result.exit_code == 0, result.output
    policy_file = tmp_path / "policy.yaml"
    policy_file.write_text(
        "elens: 1\nextends: builtin:default\nmetadata: {name: t, version: '1'}\n"
        "pipeline:\n  text_checks:\n    - plugin: semantic\n      options: {mode: head, head: head.safetensors}\n"
    )
    from elens.policy import load_policy

    check = SemanticCheck({"mode": "head", "head": "head.safetensors"}, load_policy(policy_file))
    assert check.categories == ["sexual"]
    assert score(check, "nude woman posing on a bed", "sexual") > score(check, "a bowl of oranges", "sexual")


def test_train_text_head_bad_csv_is_one_line(tmp_path):
    from elens.cli import build_cli

    data = tmp_path / "bad.csv"
    data.write_text("prompt,category\na cat,safe\n,sexual\n")
    result = CliRunner().invoke(build_cli(), ["train", "text-head", "--data", str(data), "--out", str(tmp_path / "h")])
    assert result.exit_code == 2
    assert f"{data}:3: prompt: empty" in result.output
