"""A plugin written the way a third party would write one, used by the host tests.

It implements every hook, so the host tests exercise every hook.
"""

from __future__ import annotations

import re
import time

import numpy as np
from PIL import Image

from elens import Measurement, Region, Revision, Signal, hookimpl


class WordCheck:
    """Flags listed words: options.words = {category: [word, ...]}."""

    def __init__(self, options, policy):
        self.words = options.get("words", {})

    def check(self, prompts):
        out = []
        for prompt in prompts:
            signals = []
            for category, words in self.words.items():
                for word in words:
                    for m in re.finditer(rf"\b{re.escape(word)}\b", prompt, re.I):
                        signals.append(Signal(category, 1.0, span=(m.start(), m.end()), label=word))
            out.append(signals)
        return out


class Boom:
    def __init__(self, options, policy):
        self.message = options.get("message", "detector crashed")

    def check(self, prompts):
        raise RuntimeError(self.message)


class Sleepy:
    def __init__(self, options, policy):
        self.seconds = options.get("seconds", 5)

    def check(self, prompts):
        time.sleep(self.seconds)
        return [[] for _ in prompts]


class Malformed:
    def __init__(self, options, policy):
        pass

    def check(self, prompts):
        return [[Signal("no_such_category", 0.9)]]


class Cut:
    """Removes the flagged spans."""

    def __init__(self, options, policy):
        self.negative = options.get("negative")

    def revise(self, prompt, findings):
        spans = sorted((f.span for f in findings if f.span), reverse=True)
        new = prompt
        for start, end in spans:
            new = new[:start] + new[end:]
        new = re.sub(r"\s+", " ", new).strip()
        if not spans:  # an image finding: say what to avoid
            new = f"{prompt}, wholesome"
        return Revision(new, reason="removed " + ", ".join(f.category for f in findings),
                        changes=tuple((prompt[s:e], "") for s, e in spans))

    def negative_prompt(self):
        return self.negative


class OnePlanner:
    """Deals gender values in turn to each image: enough to test the plumbing."""

    def __init__(self, options, policy):
        self.values = [v for a in policy.bias["attributes"] if a["id"] == "gender" for v in a["values"]]

    def plan(self, prompt, n, seed):
        from elens import Plan, PlannedPrompt

        prompts = tuple(
            PlannedPrompt(f"{prompt}, {self.values[i % len(self.values)]}", {"c0": {"gender": self.values[i % len(self.values)]}})
            for i in range(n)
        )
        return Plan(prompts, clusters=({"id": "c0", "text": prompt, "type": 1},))


class Patch:
    """Flags every image with a box; options.category, options.score, options.box."""

    def __init__(self, options, policy):
        self.category = options.get("category", "nudity")
        self.score = options.get("score", 0.9)
        self.box = options.get("box", [8, 8, 24, 24])
        self.measure = options.get("measure")

    def check(self, images, contexts):
        out = []
        for _image, _ctx in zip(images, contexts):
            items = [Signal(self.category, self.score, region=Region(*self.box, label="patch"))]
            if self.measure:
                items.append(Measurement("gender", self.measure, 0.99, Region(*self.box)))
            out.append(items)
        return out


class BlackOut:
    def __init__(self, options, policy):
        pass

    def edit(self, image, finding):
        arr = np.array(image)
        if finding.region is None:
            arr[:] = 0
        else:
            r = finding.region
            arr[r.y0:r.y1, r.x0:r.x1] = 0
        return Image.fromarray(arr)


class MemorySink:
    records: list = []

    def __init__(self, options, policy):
        pass

    def write(self, record):
        MemorySink.records.append(record)


@hookimpl
def register_text_checks(register):
    register("words", WordCheck)
    register("boom", Boom)
    register("sleepy", Sleepy)
    register("malformed", Malformed)


@hookimpl
def register_prompt_revisers(register):
    register("cut", Cut)


@hookimpl
def register_prompt_planners(register):
    register("one", OnePlanner)


@hookimpl
def register_backends(register):
    pass  # the host's `tiny` backend serves


@hookimpl
def register_image_checks(register):
    register("patch", Patch)


@hookimpl
def register_image_editors(register):
    register("blackout", BlackOut)


@hookimpl
def register_audit_sinks(register):
    register("memory", MemorySink)


@hookimpl
def register_commands(cli):
    import click

    @cli.command("hello-testplugin")
    def hello():
        """Say hello (registered by the test plugin)."""
        click.echo("hello from testplugin")
