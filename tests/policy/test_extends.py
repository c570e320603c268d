"""extends: chains, merge rules, cycles, containment, and errors located in the right file."""

from __future__ import annotations

import hashlib
import json
import textwrap
from pathlib import Path

import pytest

from elens.errors import PolicyError
from elens.policy import Policy, load_policy

PARENT = """\
elens: 1
metadata:
  name: parent
  version: "1"
  owner: org
categories:
  - id: violence
    description: violent acts
    thresholds: {text: 0.6, image: 0.7}
    actions: {text: revise, image: regenerate}
    terms: [stabbing someone, mass shooting]
  - id: political
    thresholds: {text: 0.8}
    actions: {text: revise}
bias:
  attributes:
    - id: gender
      values: [male, female]
    - id: age
      values: [child, adult, senior]
      constraints:
        - roles: [doctor]
          values: [adult, senior]
pipeline:
  text_checks:
    - plugin: lexicon
limits:
  max_images: 8
  max_revisions: 3
"""


def write(folder: Path, name: str, text: str) -> Path:
    path = folder / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(text))
    return path


def test_merge_rules(tmp_path):
    write(tmp_path, "parent.yaml", PARENT)
    child = write(tmp_path, "child.yaml", """\
        elens: 1
        extends: parent.yaml
        metadata: {name: child, version: "2"}
        categories:
          - id: violence                  # inherited: fields merge
            thresholds: {text: 0.4}
            terms: [beaten to death]
          - id: political
            remove: true
          - id: spam                      # new: appended
            thresholds: {text: 0.5}
            actions: {text: block}
        bias:
          attributes:
            - id: age
              target: {adult: 2, senior: 1}
            - id: race
              values: [a, b]
        pipeline:
          text_checks:
            - plugin: semantic
        limits:
          max_images: 2
        """)
    policy = load_policy(child)
    assert policy.name == "child" and policy.version == "2"
    assert policy.data["metadata"]["owner"] == "org"              # mappings merge recursively
    assert list(policy.categories) == ["violence", "spam"]        # by id: updated, removed, appended
    violence = policy.categories["violence"]
    assert violence["thresholds"] == {"text": 0.4, "image": 0.7}  # nested mapping merged
    assert violence["actions"] == {"text": "revise", "image": "regenerate"}
    assert violence["terms"] == ["beaten to death"]               # other lists replaced
    assert violence["description"] == "violent acts"
    attrs = {a["id"]: a for a in policy.bias["attributes"]}
    assert list(attrs) == ["gender", "age", "race"]
    assert attrs["age"]["target"] == {"adult": 2, "senior": 1}
    assert attrs["age"]["constraints"] == [{"roles": ["doctor"], "values": ["adult", "senior"]}]
    assert attrs["gender"]["target"] == "uniform"                 # default filled
    assert [e["plugin"] for e in policy.pipeline["text_checks"]] == ["semantic"]
    assert policy.limits["max_images"] == 2 and policy.limits["max_revisions"] == 3
    assert policy.limits["max_prompt_chars"] == 2000              # default filled
    assert "extends" not in policy.data


def test_three_level_chain_with_builtin(tmp_path):
    write(tmp_path, "org.yaml", """\
        elens: 1
        extends: builtin:default
        metadata: {name: org, version: "1"}
        categories:
          - id: violence
            actions: {text: warn, image: warn}
        """)
    team = write(tmp_path, "teams/art/team.yaml", """\
        elens: 1
        extends: ../../org.yaml
        metadata: {name: team, version: "1"}
        """)
    # A relative extends may not leave the extending file's folder.
    with pytest.raises(PolicyError) as err:
        load_policy(team)
    assert (err.value.file, err.value.line, err.value.field) == (str(team), 2, "extends")
    assert "outside" in err.value.message
    team = write(tmp_path, "team.yaml", """\
        elens: 1
        extends: org.yaml
        metadata: {name: team, version: "1"}
        categories:
          - id: sexual
            thresholds: {text: 0.3}
        """)
    policy = load_policy(team)
    assert policy.categories["violence"]["actions"] == {"text": "warn", "image": "warn"}
    assert policy.categories["sexual"]["thresholds"]["text"] == 0.3
    assert policy.categories["sexual"]["thresholds"]["image"] == 0.7
    assert len(policy.categories) == 12


def test_extends_into_a_subfolder(tmp_path):
    write(tmp_path, "base/parent.yaml", PARENT)
    child = write(tmp_path, "child.yaml", "elens: 1\nextends: base/parent.yaml\n")
    assert load_policy(child).name == "parent"


@pytest.mark.parametrize("ref", ["/etc/passwd", "../parent.yaml", "sub/../../parent.yaml"])
def test_extends_may_not_leave_the_folder(tmp_path, ref):
    write(tmp_path, "parent.yaml", PARENT)
    child = write(tmp_path, "inner/child.yaml", f"elens: 1\nmetadata: {{name: c, version: '1'}}\nextends: {ref}\n")
    with pytest.raises(PolicyError) as err:
        load_policy(child)
    assert (err.value.file, err.value.line, err.value.field) == (str(child), 3, "extends")


def test_self_extension_is_a_cycle(tmp_path):
    path = write(tmp_path, "self.yaml", "elens: 1\nextends: self.yaml\n")
    with pytest.raises(PolicyError) as err:
        load_policy(path)
    assert str(err.value) == f"{path}:2: extends: cycle: the policy extends itself"


def test_cycle_of_three_is_an_error(tmp_path):
    write(tmp_path, "a.yaml", "elens: 1\nextends: b.yaml\n")
    write(tmp_path, "b.yaml", "elens: 1\n\nextends: c.yaml\n")
    c = write(tmp_path, "c.yaml", "elens: 1\nmetadata: {name: c, version: '1'}\nextends: a.yaml\n")
    with pytest.raises(PolicyError) as err:
        load_policy(tmp_path / "a.yaml")
    assert (err.value.file, err.value.line, err.value.field) == (str(c), 3, "extends")
    assert err.value.message.startswith("cycle:")


def test_unknown_builtin_and_missing_parent(tmp_path):
    path = write(tmp_path, "p.yaml", "elens: 1\nextends: builtin:nope\n")
    with pytest.raises(PolicyError) as err:
        load_policy(path)
    assert (err.value.line, err.value.field) == (2, "extends") and "builtin:default" in err.value.message
    path = write(tmp_path, "p.yaml", "elens: 1\n\nextends: missing.yaml\n")
    with pytest.raises(PolicyError) as err:
        load_policy(path)
    assert (err.value.line, err.value.field) == (3, "extends") and "no such policy file" in err.value.message


def test_defect_in_the_parent_names_the_parent(tmp_path):
    parent = write(tmp_path, "parent.yaml", PARENT.replace("max_revisions: 3", "max_revisions: -3"))
    child = write(tmp_path, "child.yaml", "elens: 1\nextends: parent.yaml\n")
    with pytest.raises(PolicyError) as err:
        load_policy(child)
    assert (err.value.file, err.value.line, err.value.field) == (str(parent), 29, "limits.max_revisions")


def test_defect_made_by_the_merge_names_the_child_line(tmp_path):
    write(tmp_path, "parent.yaml", PARENT)
    child = write(tmp_path, "child.yaml", """\
        elens: 1
        extends: parent.yaml
        categories:
          - id: political
            actions: {image: regenerate}
        """)
    with pytest.raises(PolicyError) as err:
        load_policy(child)
    assert (err.value.file, err.value.line, err.value.field) == (str(child), 5, "categories[1].actions.image")


def test_inherited_fields_are_located_in_their_own_file(tmp_path):
    parent = write(tmp_path, "parent.yaml", PARENT)
    child = write(tmp_path, "child.yaml", "elens: 1\nextends: parent.yaml\nlimits: {max_images: 2}\n")
    policy = load_policy(child)
    assert policy.locate(("categories", 0, "thresholds", "image")) == (str(parent), 9)
    assert policy.locate(("limits", "max_images")) == (str(child), 3)
    assert policy.locate(("limits", "max_revisions")) == (str(parent), 29)
    error = policy.error(("pipeline", "text_checks", 0, "plugin"), "unknown text check 'lexicon'")
    assert str(error) == f"{parent}:26: pipeline.text_checks[0].plugin: unknown text check 'lexicon'"


def test_remove_rules(tmp_path):
    write(tmp_path, "parent.yaml", PARENT)
    child = write(tmp_path, "child.yaml", """\
        elens: 1
        extends: parent.yaml
        categories:
          - id: nope
            remove: true
        """)
    with pytest.raises(PolicyError) as err:
        load_policy(child)
    assert (err.value.line, err.value.field) == (4, "categories[0].id") and "not inherited" not in err.value.message
    assert "no inherited entry" in err.value.message
    child = write(tmp_path, "child.yaml", """\
        elens: 1
        extends: parent.yaml
        categories:
          - id: political
            remove: true
            thresholds: {text: 0.1}
        """)
    with pytest.raises(PolicyError) as err:
        load_policy(child)
    assert (err.value.line, err.value.field) == (6, "categories[0].thresholds")
    child = write(tmp_path, "child.yaml", "elens: 1\nextends: parent.yaml\nbias:\n  attributes:\n"
                                          "    - {id: age, remove: false}\n")
    with pytest.raises(PolicyError) as err:
        load_policy(child)
    assert (err.value.line, err.value.field) == (5, "bias.attributes[0].remove")


def test_ids_unique_within_an_extending_file(tmp_path):
    write(tmp_path, "parent.yaml", PARENT)
    child = write(tmp_path, "child.yaml", """\
        elens: 1
        extends: parent.yaml
        bias:
          attributes:
            - id: age
              values: [adult]
            - id: age
              values: [senior]
        """)
    with pytest.raises(PolicyError) as err:
        load_policy(child)
    assert (err.value.line, err.value.field) == (7, "bias.attributes[1].id")


def test_merged_constraints_are_checked_against_new_values(tmp_path):
    write(tmp_path, "parent.yaml", PARENT)
    child = write(tmp_path, "child.yaml", """\
        elens: 1
        extends: parent.yaml
        bias:
          attributes:
            - id: age
              values: [young, old]
        """)
    with pytest.raises(PolicyError) as err:
        load_policy(child)
    # The inherited constraint (parent line 23) no longer fits the child's values.
    assert err.value.field == "bias.attributes[1].constraints[0].values[0]"
    assert err.value.file == str(tmp_path / "parent.yaml") and err.value.line == 23


def test_from_text_and_from_dict_resolve_extends(tmp_path):
    write(tmp_path, "parent.yaml", PARENT)
    source = str(tmp_path / "inline.yaml")
    a = Policy.from_text("elens: 1\nextends: parent.yaml\nlimits: {max_images: 3}\n", source=source)
    b = Policy.from_dict({"elens": 1, "extends": "parent.yaml", "limits": {"max_images": 3}}, source=source)
    assert a.data == b.data and a.sha256 == b.sha256 and a.limits["max_images"] == 3
    with pytest.raises(PolicyError) as err:
        Policy.from_dict({"elens": 1, "metadata": {"name": "x", "version": 1}}, source="d.yaml")
    assert (err.value.file, err.value.line, err.value.field) == ("d.yaml", None, "metadata.version")
    assert str(err.value).startswith("d.yaml: metadata.version: ")


def test_sha256_is_the_canonical_json_of_the_resolved_data(tmp_path):
    write(tmp_path, "parent.yaml", PARENT)
    child = write(tmp_path, "child.yaml", "elens: 1\nextends: parent.yaml\n")
    policy = load_policy(child)
    canonical = json.dumps(policy.data, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    assert policy.sha256 == hashlib.sha256(canonical.encode()).hexdigest()
    # The same resolved policy from another layout hashes the same; a change does not.
    assert load_policy(tmp_path / "parent.yaml").sha256 == policy.sha256
    other = write(tmp_path, "other.yaml", "elens: 1\nextends: parent.yaml\nlimits: {max_images: 7}\n")
    assert load_policy(other).sha256 != policy.sha256


def test_from_dict_fields_have_no_line_but_inherited_ones_keep_theirs():
    data = {"elens": 1, "extends": "builtin:default", "metadata": {"name": "x", "version": "1"},
            "limits": {"max_images": 3}}
    policy = Policy.from_dict(data, source="mine.yaml")
    assert policy.locate(("limits", "max_images")) == ("mine.yaml", None)
    file, line = policy.locate(("limits", "max_revisions"))
    assert file.endswith("default.yaml") and line
    bad = {**data, "categories": [{"id": "violence", "thresholds": {"text": 1.5}}]}
    with pytest.raises(PolicyError) as err:
        Policy.from_dict(bad, source="mine.yaml")
    assert (err.value.file, err.value.line, err.value.field) == ("mine.yaml", None, "categories[0].thresholds.text")
    assert str(err.value).startswith("mine.yaml: categories[0].thresholds.text: ")


def test_a_component_naming_another_plugin_replaces_the_inherited_one(tmp_path):
    from elens.policy import load_policy

    child = tmp_path / "child.yaml"
    child.write_text('elens: 1\nextends: builtin:default\nmetadata: {name: c, version: "1"}\n'
                     'pipeline:\n  backend: {plugin: tiny}\n')
    assert load_policy(child).pipeline["backend"] == {"plugin": "tiny"}
    child.write_text('elens: 1\nextends: builtin:default\nmetadata: {name: c, version: "1"}\n'
                     'pipeline:\n  backend: {plugin: diffusers, options: {steps: 3}}\n')
    options = load_policy(child).pipeline["backend"]["options"]
    assert options["steps"] == 3 and "model" in options  # same plugin: options merge
