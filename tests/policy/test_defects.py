"""Policy defects: each one is rejected with one line naming the file, the YAML line and the field."""

from __future__ import annotations

import textwrap

import pytest

from elens.errors import PolicyError
from elens.policy import load_policy

BASE = """\
elens: 1
metadata:
  name: t
  version: "1"
categories:
  - id: spam
    thresholds: {text: 0.5, image: 0.6}
    actions: {text: revise, image: blur}
    terms: [buy now]
bias:
  attributes:
    - id: gender
      values: [male, female]
pipeline:
  text_checks:
    - plugin: lexicon
"""


def _load(tmp_path, text: str, name: str = "p.yaml"):
    path = tmp_path / name
    path.write_text(textwrap.dedent(text))
    return path, load_policy(path)


def _replace(old: str, new: str) -> str:
    assert old in BASE, old
    return BASE.replace(old, new, 1)


def test_the_base_is_valid(tmp_path):
    _, policy = _load(tmp_path, BASE)
    assert policy.name == "t" and list(policy.categories) == ["spam"]


# (id, policy text, line, field, a piece of the message)
DEFECTS = [
    ("unknown top-level key", BASE + "colour: red\n", 17, "colour", "unknown key 'colour'"),
    ("misspelt category key", _replace("    terms: [buy now]", "    treshold: {text: 0.5}"), 9,
     "categories[0].treshold", "did you mean 'thresholds'?"),
    ("threshold above 1", _replace("{text: 0.5, image: 0.6}", "{text: 1.5, image: 0.6}"), 7,
     "categories[0].thresholds.text", "1.5 is not a score between 0 and 1"),
    ("text action not allowed at text", _replace("{text: revise, image: blur}", "{text: regenerate, image: blur}"), 8,
     "categories[0].actions.text", "'regenerate' is not one of"),
    ("image action not allowed at image", _replace("{text: revise, image: blur}", "{text: revise, image: revise}"), 8,
     "categories[0].actions.image", "'revise' is not one of"),
    ("bad category id", _replace("  - id: spam", "  - id: Spam-1"), 6, "categories[0].id", "not a valid id"),
    ("duplicate category id", BASE.replace("bias:\n", "  - id: spam\n    terms: [x]\nbias:\n"), 10,
     "categories[1].id", "duplicate id 'spam'"),
    ("action without threshold", _replace("{text: 0.5, image: 0.6}", "{text: 0.5}"), 8,
     "categories[0].actions.image", "needs thresholds.image"),
    ("block threshold below threshold", _replace("    terms: [buy now]", "    block_threshold: {text: 0.3}"), 9,
     "categories[0].block_threshold.text", "0.3 is below thresholds.text (0.5)"),
    ("block threshold without threshold", _replace("    terms: [buy now]", "    block_threshold: {text: 0.6, image: 0.7}\n"
                                                   "    thresholds: {text: 0.5}\n    actions: {text: revise}")
     .replace("    thresholds: {text: 0.5, image: 0.6}\n    actions: {text: revise, image: blur}\n", ""), 7,
     "categories[0].block_threshold.image", "needs thresholds.image"),
    ("pattern does not compile", _replace("    terms: [buy now]", "    patterns: ['(unclosed']"), 9,
     "categories[0].patterns[0]", "not a valid regular expression"),
    ("pattern matches empty text", _replace("    terms: [buy now]", "    patterns:\n      - 'ok'\n      - 'a*'"), 11,
     "categories[0].patterns[1]", "matches empty text"),
    ("blank replacement key", _replace("    terms: [buy now]", "    replacements:\n      '  ': x"), 10,
     "categories[0].replacements.  ", "non-blank term"),
    ("target weight for an unknown value", _replace("      values: [male, female]",
                                                    "      values: [male, female]\n      target: {male: 1, other: 2}"),
     14, "bias.attributes[0].target.other", "'other' is not one of the values of 'gender'"),
    ("constraint value outside values", _replace("      values: [male, female]",
                                                 "      values: [male, female]\n      constraints:\n"
                                                 "        - roles: [nun]\n          values: [female, nonbinary]"),
     16, "bias.attributes[0].constraints[0].values[1]", "'nonbinary' is not one of the values"),
    ("missing version", _replace('  version: "1"\n', ""), 2, "metadata", "metadata.version is required"),
    ("wrong format version", _replace("elens: 1", "elens: 2"), 1, "elens", "must be 1, not 2"),
    ("duplicate YAML key", _replace("  name: t", "  name: t\n  name: u"), 4, "metadata.name", "duplicate key"),
    ("python tag", _replace("  name: t", "  name: !!python/object/apply:os.system [ls]"), 3, "metadata.name",
     "not allowed in a policy"),
    ("invalid YAML", _replace("    terms: [buy now]", "    terms: [buy now"), 10, "", "invalid YAML"),
    ("version written as a number", _replace('  version: "1"', "  version: 1.0"), 4, "metadata.version",
     "must be text, not float 1.0; quote it"),
    ("version written as a date", _replace('  version: "1"', "  version: 2024-05-01"), 4, "metadata.version",
     "a date or time is not allowed"),
    ("unquoted yes as a key", _replace("    terms: [buy now]", "    replacements:\n      yes: sure"), 10,
     "categories[0].replacements", "reads as bool; quote it"),
    ("failure mode not block or allow", BASE + "failure_mode:\n  text: maybe\n", 18, "failure_mode.text",
     "'maybe' is not one of 'block', 'allow'"),
    ("zero images", BASE + "limits:\n  max_images: 0\n", 18, "limits.max_images", "less than the minimum"),
    ("unknown prompt redaction", BASE + "audit:\n  redact_prompt: partial\n", 18, "audit.redact_prompt",
     "'partial' is not one of"),
    ("pipeline entry without plugin", _replace("    - plugin: lexicon", "    - plugins: lexicon"), 16,
     "pipeline.text_checks[0].plugins", "did you mean 'plugin'?"),
    ("negative timeout", _replace("    - plugin: lexicon", "    - plugin: lexicon\n      timeout_s: -1"), 17,
     "pipeline.text_checks[0].timeout_s", "less than or equal to the minimum"),
    ("remove without extends", _replace("    terms: [buy now]", "    remove: true"), 9, "categories[0].remove",
     "only applies in a policy that extends another"),
    ("threshold not a number", _replace("{text: 0.5, image: 0.6}", "{text: .nan, image: 0.6}"), 7,
     "categories[0].thresholds.text", "must be finite"),
    ("bias action unknown", BASE + "bias_x: 1\n", 17, "bias_x", "unknown key"),
    ("on_mismatch unknown", _replace("  attributes:", "  on_mismatch: edit\n  attributes:"), 11, "bias.on_mismatch",
     "'edit' is not one of 'regenerate', 'record'"),
]


@pytest.mark.parametrize("text,line,field,message", [d[1:] for d in DEFECTS], ids=[d[0] for d in DEFECTS])
def test_defect_is_located(tmp_path, text, line, field, message):
    path = tmp_path / "p.yaml"
    path.write_text(text)
    with pytest.raises(PolicyError) as err:
        load_policy(path)
    exc = err.value
    assert (exc.file, exc.line, exc.field) == (str(path), line, field), str(exc)
    assert message in exc.message, str(exc)
    rendered = str(exc)
    assert rendered.startswith(f"{path}:{line}: {field or '<root>'}: ")
    assert "\n" not in rendered


def test_at_least_fifteen_distinct_defects():
    assert len({d[0] for d in DEFECTS}) >= 15


def test_alias_bomb_is_refused(tmp_path):
    lines = ['a0: &a0 ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]']
    for i in range(1, 9):
        lines.append(f"a{i}: &a{i} [" + ", ".join([f"*a{i - 1}"] * 10) + "]")
    path = tmp_path / "bomb.yaml"
    path.write_text("\n".join(lines) + "\n")
    with pytest.raises(PolicyError) as err:
        load_policy(path)
    assert err.value.file == str(path) and "alias bomb" in err.value.message


def test_recursive_alias_is_refused(tmp_path):
    path = tmp_path / "loop.yaml"
    path.write_text("elens: 1\nloop: &x [*x]\n")
    with pytest.raises(PolicyError) as err:
        load_policy(path)
    assert "nested more than" in err.value.message


def test_large_file_is_refused(tmp_path):
    path = tmp_path / "big.yaml"
    path.write_text("elens: 1\n# " + "x" * (2 * 1024 * 1024) + "\n")
    with pytest.raises(PolicyError) as err:
        load_policy(path)
    assert "larger than 2 MB" in err.value.message


@pytest.mark.parametrize("text,message", [
    ("", "empty"),
    ("- a\n- b\n", "mapping at the top level"),
    ("elens: 1\n---\nelens: 1\n", "invalid YAML"),
    ("metadata: {name: t, version: '1'}\n", "'elens: 1'"),
])
def test_whole_file_defects(tmp_path, text, message):
    path = tmp_path / "p.yaml"
    path.write_text(text)
    with pytest.raises(PolicyError) as err:
        load_policy(path)
    assert err.value.file == str(path) and message in err.value.message


def test_not_utf8_names_the_line(tmp_path):
    path = tmp_path / "p.yaml"
    path.write_bytes(b"elens: 1\nmetadata:\n  name: caf\xe9\n")
    with pytest.raises(PolicyError) as err:
        load_policy(path)
    assert (err.value.line, err.value.message) == (3, "not UTF-8 text")


def test_missing_file(tmp_path):
    with pytest.raises(PolicyError, match="no such policy file"):
        load_policy(tmp_path / "nope.yaml")


def test_yaml_merge_keys_follow_yaml_semantics(tmp_path):
    # Own keys win over merged ones, without a duplicate-key error.
    path = tmp_path / "m.yaml"
    path.write_text(textwrap.dedent("""\
    elens: 1
    metadata: {name: t, version: "1"}
    categories:
      - &a {id: a, thresholds: {text: 0.5}, actions: {text: warn}, severity: low}
      - <<: *a
        id: b
        severity: high
    """))
    cats = load_policy(path).categories
    assert cats["b"] == {"id": "b", "thresholds": {"text": 0.5}, "actions": {"text": "warn"}, "severity": "high"}
