"""The loader never raises anything but PolicyError, whatever text it is given."""

from __future__ import annotations

import os

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from elens.errors import PolicyError
from elens.policy import Policy

TOKENS = ["elens: 1\n", "extends: builtin:default\n", "extends: x.yaml\n", "metadata:\n", "  name: x\n",
          "  version: '1'\n", "categories:\n", "  - id: a\n", "    thresholds: {text: 0.5}\n",
          "    actions: {image: blur}\n", "    patterns: ['(']\n", "bias:\n", "  attributes:\n",
          "    - {id: g, values: [a], target: {b: 1}}\n", "&a [*a]\n", "<<: *a\n", "!!python/name:os.system\n",
          "- ", ": ", "{", "}", "[", "]", "*a", "&a ", "'", '"', "\t", "\n", "  ", "yes", "~", ".nan", "2024-01-01",
          "!!binary aGk=", "? ", "%YAML 1.1\n", "---\n", "...\n", "remove: true\n", "\x00", "\ufeff"]


def check(text: str) -> None:
    try:
        Policy.from_text(text, source=os.path.join(os.getcwd(), "fuzz.yaml"))
    except PolicyError as exc:
        assert "\n" not in str(exc)


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.text(max_size=300))
def test_arbitrary_text(text):
    check(text)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.sampled_from(TOKENS), max_size=30))
def test_yaml_like_text(tokens):
    check("".join(tokens))


@settings(max_examples=100, deadline=None)
@given(st.recursive(st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=10),
                    lambda children: st.lists(children, max_size=4)
                    | st.dictionaries(st.sampled_from(["elens", "metadata", "categories", "id", "thresholds",
                                                       "text", "bias", "values", "limits", "x"]), children,
                                      max_size=4),
                    max_leaves=20))
def test_arbitrary_data(data):
    try:
        Policy.from_dict(data if isinstance(data, dict) else {"x": data}, source="fuzz.yaml")
    except PolicyError:
        pass


@settings(max_examples=60, deadline=None)
@given(st.text(alphabet=st.characters(blacklist_categories=()), max_size=40))
def test_any_code_point_including_surrogates(text):
    check("elens: 1\nmetadata: {name: " + text)
    check(text)


def test_control_character_names_its_line():
    try:
        Policy.from_text("elens: 1\nmetadata:\n  name: a\x00b\n", source="c.yaml")
    except PolicyError as exc:
        assert (exc.line, exc.field) == (3, "") and "control characters" in exc.message
    else:
        raise AssertionError("a NUL character was accepted")
