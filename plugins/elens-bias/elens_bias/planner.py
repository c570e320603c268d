"""The prompt planner ``people``: balanced per-image attribute values, grammatical rewrites."""

from __future__ import annotations

import random
from typing import Any, Sequence

from elens import OptionsError, Plan, PlannedPrompt, Signal
from elens.bias import apportion, target_weights

from . import _ner
from .people import Cluster, find_clusters

#: How an assigned age stage is written before a role noun ("an elderly nurse").
AGE_PHRASES = {
    "infancy": "baby", "childhood": "child", "adolescence": "teenage", "young adulthood": "young",
    "middle age": "middle-aged", "old age": "elderly",
}
#: Stages written as a noun adjunct right before the noun; family nouns get
#: "little" for childhood instead ("her little Black daughter").
ADJUNCT_AGES = {"infancy": "baby", "childhood": "child"}
AGE_RANGE_ORDER = ["infancy", "childhood", "adolescence", "young adulthood", "middle age", "old age"]
ADULT_STAGES = ("young adulthood", "middle age", "old age")
#: Nouns that say nothing but "a human": rewritten to the noun the values imply
#: ("a person" + old age + female -> "an elderly woman").
GENERIC = {"person", "human", "individual", "adult", "human being"}
#: (age stage, gender) -> (adjectives before the noun, noun); gender None = not known.
GENERIC_NOUNS = {
    "infancy": ((), {"male": "baby boy", "female": "baby girl", None: "baby"}),
    "childhood": ((), {"male": "boy", "female": "girl", None: "child"}),
    "adolescence": (("teenage",), {"male": "boy", "female": "girl", None: "teenager"}),
    "young adulthood": (("young",), {"male": "man", "female": "woman", None: "adult"}),
    "middle age": (("middle-aged",), {"male": "man", "female": "woman", None: "person"}),
    "old age": (("elderly",), {"male": "man", "female": "woman", None: "person"}),
    None: ((), {"male": "man", "female": "woman", None: None}),
}


def _article(next_word: str) -> str:
    return "an" if next_word[:1].lower() in "aeiou" else "a"


def _listing(items: Sequence[str]) -> str:
    return ", ".join(items[:-1]) + f" and {items[-1]}" if len(items) > 1 else items[0]


class PeoplePlanner:
    """Finds people clusters and deals each image its own attribute values.

    For every single-person cluster and every attribute the prompt leaves open, the
    values allowed for the cluster's role (policy constraints) get counts by
    largest-remainder apportionment of the target weights (ties broken in an order
    drawn from the seed, so N=1 does not always favour the first value), then are
    shuffled by a generator seeded from the request seed: a plan is reproducible.
    Groups get a composition clause instead.
    """

    options_schema = {
        "type": "object",
        "additionalProperties": False,
        "properties": {
            "attributes": {"type": "array", "items": {"type": "string"}},
            "names": {"enum": ["on", "off"]},
            "ner": {"type": "string"},
            "adult_occupations": {"type": "boolean"},
            "phrases": {"type": "object", "additionalProperties": {"type": "string"}},
        },
    }

    def __init__(self, options: dict, policy: Any):
        bias = policy.bias or {}
        by_id = {a["id"]: a for a in bias.get("attributes", [])}
        chosen = options.get("attributes") or list(by_id)
        for i, attr in enumerate(chosen):
            if attr not in by_id:
                raise OptionsError(f"attributes.{i}", f"unknown bias attribute {attr!r}")
        self.attributes = [by_id[a] for a in chosen]
        self.by_id = {a["id"]: a for a in self.attributes}
        self.public_figures = list((bias.get("exempt") or {}).get("public_figures") or [])
        self.report_names = "public_figure" in policy.categories and options.get("names", "on") == "on"
        self.adult_occupations = bool(options.get("adult_occupations", True))
        self.phrases = dict(options.get("phrases") or {})
        try:
            self.ner = _ner.load(options.get("ner", "auto"))
        except LookupError as exc:
            raise OptionsError("ner", str(exc)) from None

    def allowed(self, attribute: dict, cluster: Cluster) -> dict[str, float]:
        """The target weights of ``attribute`` narrowed for the cluster's role.

        A policy constraint naming the role (or the noun) wins; otherwise, with
        ``adult_occupations``, an occupation's age is narrowed to the adult stages.
        """
        weights = target_weights(attribute)
        names = {(cluster.noun.role or cluster.noun.singular).lower(), cluster.noun.singular.lower()}
        for constraint in attribute.get("constraints") or []:
            if names & {r.lower() for r in constraint["roles"]}:
                narrowed = {v: w for v, w in weights.items() if v in constraint["values"]}
                if narrowed and sum(narrowed.values()) > 0:
                    return narrowed
        if attribute["id"] == "age" and self.adult_occupations and cluster.noun.kind == "occupation":
            narrowed = {v: w for v, w in weights.items() if v in ADULT_STAGES}
            if narrowed and sum(narrowed.values()) > 0:
                return narrowed
        return weights

    def plan(self, prompt: str, n: int, seed: int) -> Plan:
        extra = self.ner(prompt) if self.ner else ()
        clusters, names = find_clusters(prompt, list(self.by_id), self.public_figures, extra)
        signals = tuple(
            Signal("public_figure", score, span=(start, end), label=name, reason="a named person")
            for start, end, name, score in names
        ) if self.report_names else ()
        decks: dict[str, dict[str, list[str]]] = {}
        records = []
        for c in clusters:
            record = c.record()
            allowed = {a: self.allowed(self.by_id[a], c) for a in c.open}
            record["values"] = {a: list(w) for a, w in allowed.items()}
            records.append(record)
            if c.type != 1:
                continue
            decks[c.id] = {}
            for attr_id, weights in allowed.items():
                rng = random.Random(f"{seed}:{c.id}:{c.noun.role}:{attr_id}")
                ties = list(weights)
                rng.shuffle(ties)
                deck = [v for v, k in apportion(n, weights, ties).items() for _ in range(k)]
                rng.shuffle(deck)
                decks[c.id][attr_id] = deck
        prompts = []
        for i in range(n):
            assigned = {cid: {a: deck[i] for a, deck in attrs.items()} for cid, attrs in decks.items() if attrs}
            prompts.append(PlannedPrompt(self.rewrite(prompt, clusters, assigned), assigned))
        return Plan(tuple(prompts), signals, tuple(records),
                    notes=f"{len(clusters)} people cluster(s), {len(names)} named")

    def _phrase(self, value: str) -> str:
        return self.phrases.get(value, value)

    def rewrite(self, prompt: str, clusters: Sequence[Cluster], assigned: dict) -> str:
        """``prompt`` with each single-person cluster's values written in and group clauses appended."""
        out = prompt
        tail = []
        for c in sorted(clusters, key=lambda c: c.insert_at, reverse=True):
            if c.type == 1 and c.id in assigned:
                words, noun = self._words(c, assigned[c.id], prompt[c.insert_at:c.end])
                out = out[: c.insert_at] + " ".join([*words, noun]) + out[c.end:]
                for start, end, _attr, _text in sorted(c.attr_words, reverse=True):
                    out = out[:start] + out[end:].lstrip(" ")
                if c.det_start is not None:
                    old = out[c.det_start: c.det_start + 2].rstrip()
                    fixed = _article(out[c.det_start + len(old):].lstrip())
                    if old[0].isupper():
                        fixed = fixed.capitalize()
                    out = out[: c.det_start] + fixed + out[c.det_start + len(old):]
            elif c.type == 2:
                tail.append(self._composition(c))
        if tail:
            out = out.rstrip(" .") + "; " + "; ".join(reversed(tail))
        return out

    def _words(self, c: Cluster, values: dict[str, str], noun: str) -> tuple[list[str], str]:
        """The words before the noun, in the order age, race, gender, and the noun itself.

        Attribute words the prompt already wrote move next to the new ones
        ("a female nurse" -> "an elderly Black female nurse").
        """
        written = {attr: text for _s, _e, attr, text in c.attr_words}
        if c.noun.singular in GENERIC and noun.lower() == c.noun.singular:
            gender = values.get("gender") or c.fixed.get("gender")
            gender = gender if gender in ("male", "female") else None
            stage = values.get("age")
            adjectives, nouns = GENERIC_NOUNS.get(stage, GENERIC_NOUNS[None])
            words = list(adjectives) if stage else ([written["age"]] if "age" in written else [])
            if "race" in values:
                words.append(self._phrase(values["race"]))
            elif "race" in written:
                words.append(written["race"])
            generic = nouns[gender]
            if generic is None:  # gender unknown and no age: keep the noun, add what there is
                if "gender" in values:
                    words.append(self._phrase(values["gender"]))
                elif "gender" in written:
                    words.append(written["gender"])
                generic = noun
            elif gender is None and "gender" in values:
                words.append(self._phrase(values["gender"]))
            words += [self._phrase(v) for a, v in values.items() if a not in ("age", "race", "gender")]
            return words, generic
        words = []
        adjunct = None  # "baby"/"child" read as part of the noun: "a Black female child actor"
        for attr in ("age", "race", "gender"):
            if attr in values:
                value = values[attr]
                if attr != "age" or value in self.phrases:
                    words.append(self._phrase(value))
                elif value in ADJUNCT_AGES and not (c.noun.kind == "family" and value == "childhood"):
                    adjunct = ADJUNCT_AGES[value]
                else:
                    words.append("little" if value == "childhood" else AGE_PHRASES.get(value, value))
            elif attr in written:
                words.append(written[attr])
        words += [self._phrase(v) for a, v in values.items() if a not in ("age", "race", "gender")]
        return words + ([adjunct] if adjunct else []), noun

    def _composition(self, c: Cluster) -> str:
        """``the teachers are 50% male and 50% female, a mix of ... people, with ages from ... to ...``."""
        parts = []
        if "gender" in c.open:
            weights = self.allowed(self.by_id["gender"], c)
            total = sum(weights.values())
            shares = [f"{round(100 * w / total)}% {self._phrase(v)}" for v, w in weights.items() if w > 0]
            parts.append(_listing(shares))
        if "race" in c.open:
            values = [self._phrase(v) for v, w in self.allowed(self.by_id["race"], c).items() if w > 0]
            parts.append(f"a mix of {_listing(values)} people" if len(values) > 1 else f"all {values[0]}")
        if "age" in c.open:
            values = sorted((v for v, w in self.allowed(self.by_id["age"], c).items() if w > 0),
                            key=lambda v: AGE_RANGE_ORDER.index(v) if v in AGE_RANGE_ORDER else 99)
            parts.append(f"with ages from {values[0]} to {values[-1]}" if len(values) > 1 else f"all in {values[0]}")
        for attr in c.open:
            if attr not in ("gender", "race", "age"):
                parts.append(f"of varied {attr}")
        return f"the {c.noun.plural} are {', '.join(parts)}"
