"""The prompt planner ``people``: balanced per-image attribute values, grammatical rewrites."""

from __future__ import annotations

import random
from typing import Any, Sequence

from elens import OptionsError, Plan, PlannedPrompt, Signal
from elens.bias import apportion, target_weights

from .people import Cluster, find_clusters

#: How an assigned value is written before the noun; anything else is written as is.
AGE_PHRASES = {
    "infancy": "baby", "childhood": "young", "adolescence": "teenage", "young adulthood": "young adult",
    "middle age": "middle-aged", "old age": "elderly",
}
AGE_RANGE_ORDER = ["infancy", "childhood", "adolescence", "young adulthood", "middle age", "old age"]


def _article(next_word: str) -> str:
    return "an" if next_word[:1].lower() in "aeiou" else "a"


class PeoplePlanner:
    """Finds people clusters and deals each image its own attribute values.

    For every single-person cluster and every attribute the prompt leaves open, the
    values allowed for the cluster's role (policy constraints) get counts by
    largest-remainder apportionment of the target weights, then are shuffled by a
    generator seeded from the request seed, so a plan is reproducible.
    Groups get a composition clause instead.
    """

    options_schema = {
        "type": "object",
        "additionalProperties": False,
        "properties": {"attributes": {"type": "array", "items": {"type": "string"}},
                       "names": {"enum": ["on", "off"]}},
    }

    def __init__(self, options: dict, policy: Any):
        bias = policy.bias or {}
        by_id = {a["id"]: a for a in bias.get("attributes", [])}
        chosen = options.get("attributes") or list(by_id)
        for i, attr in enumerate(chosen):
            if attr not in by_id:
                raise OptionsError(f"attributes.{i}", f"unknown bias attribute {attr!r}")
        self.attributes = [by_id[a] for a in chosen]
        self.public_figures = list((bias.get("exempt") or {}).get("public_figures") or [])
        self.report_names = "public_figure" in policy.categories and options.get("names", "on") == "on"

    def _allowed(self, attribute: dict, cluster: Cluster) -> dict[str, float]:
        weights = target_weights(attribute)
        role = cluster.noun.role or cluster.noun.singular
        for constraint in attribute.get("constraints") or []:
            roles = {r.lower() for r in constraint["roles"]}
            if role.lower() in roles or cluster.noun.singular.lower() in roles:
                narrowed = {v: w for v, w in weights.items() if v in constraint["values"]}
                if narrowed:
                    return narrowed
        return weights

    def plan(self, prompt: str, n: int, seed: int) -> Plan:
        clusters, names = find_clusters(prompt, [a["id"] for a in self.attributes], self.public_figures)
        signals = tuple(
            Signal("public_figure", score, span=(start, end), label=name, reason="a named person")
            for start, end, name, score in names
        ) if self.report_names else ()
        by_id = {a["id"]: a for a in self.attributes}
        decks: dict[str, dict[str, list[str]]] = {}
        for c in clusters:
            if c.type != 1:
                continue
            decks[c.id] = {}
            for attr_id in c.open:
                allowed = self._allowed(by_id[attr_id], c)
                deck = [v for v, k in apportion(n, allowed).items() for _ in range(k)]
                random.Random(f"{seed}:{c.id}:{attr_id}").shuffle(deck)
                decks[c.id][attr_id] = deck
        prompts = []
        for i in range(n):
            assigned = {cid: {a: deck[i] for a, deck in attrs.items()} for cid, attrs in decks.items() if attrs}
            prompts.append(PlannedPrompt(self._rewrite(prompt, clusters, assigned, by_id), assigned))
        return Plan(tuple(prompts), signals, tuple(c.record() for c in clusters),
                    notes=f"{len(clusters)} people cluster(s), {len(names)} named")

    def _rewrite(self, prompt: str, clusters: Sequence[Cluster], assigned: dict, by_id: dict) -> str:
        out = prompt
        tail = []
        for c in sorted(clusters, key=lambda c: c.insert_at, reverse=True):
            if c.type == 1 and c.id in assigned:
                values = assigned[c.id]
                # Attribute words already written move next to the new ones, in the order
                # age, race, gender: "a female nurse" -> "an elderly Black female nurse".
                written = {attr: text for _s, _e, attr, text in c.attr_words}
                words = []
                for attr in ("age", "race", "gender"):
                    if attr in values:
                        words.append(AGE_PHRASES.get(values[attr], values[attr]) if attr == "age" else values[attr])
                    elif attr in written:
                        words.append(written[attr])
                words += [v for a, v in values.items() if a not in ("age", "race", "gender")]
                out = out[: c.insert_at] + " ".join(words) + " " + out[c.insert_at:]
                for start, end, _attr, _text in sorted(c.attr_words, reverse=True):
                    out = out[:start] + out[end:].lstrip(" ")
                if c.det_start is not None:
                    old = out[c.det_start: c.det_start + 2].rstrip()
                    following = out[c.det_start + len(old):].lstrip()
                    fixed = _article(following)
                    if old[0].isupper():
                        fixed = fixed.capitalize()
                    out = out[: c.det_start] + fixed + out[c.det_start + len(old):]
            elif c.type == 2:
                tail.append(self._composition(c, by_id))
        if tail:
            out = out.rstrip(" .") + ", " + "; ".join(reversed(tail))
        return out

    def _composition(self, c: Cluster, by_id: dict) -> str:
        parts = []
        if "gender" in c.open:
            weights = self._allowed(by_id["gender"], c)
            parts.append(" and ".join(f"{round(w * 100)}% {v}" for v, w in weights.items()))
        if "race" in c.open:
            values = list(self._allowed(by_id["race"], c))
            listed = ", ".join(values[:-1]) + f" and {values[-1]}" if len(values) > 1 else values[0]
            parts.append(f"a mix of {listed} people")
        if "age" in c.open:
            values = sorted(self._allowed(by_id["age"], c),
                            key=lambda v: AGE_RANGE_ORDER.index(v) if v in AGE_RANGE_ORDER else 99)
            parts.append(f"with ages from {values[0]} to {values[-1]}" if len(values) > 1 else f"in {values[0]}")
        for attr in c.open:
            if attr not in ("gender", "race", "age"):
                parts.append(f"varied {attr}")
        return f"the {c.noun.plural} {', '.join(parts)}"
