"""A real audit log written by the pipeline (tiny backend, the host tests' plugin): every event type."""

from __future__ import annotations

from pathlib import Path

from elens import Lens
from elens.policy import Policy

from ..host import testplugin

POLICY = """
elens: 1
metadata: {name: review-test, version: "VERSION"}
categories:
  - id: sexual
    thresholds: {text: 0.5, image: 0.5}
    actions: {text: revise, image: regenerate}
  - id: weapons
    thresholds: {text: 0.5}
    actions: {text: block}
  - id: nudity
    thresholds: {image: 0.5}
    actions: {image: blur}
  - id: gore
    thresholds: {image: 0.5}
    actions: {image: block}
bias:
  attributes:
    - {id: gender, values: [male, female]}
pipeline:
  text_checks:
    - plugin: words
      options: {words: {sexual: [nude], weapons: [bazooka], gore: [gory], nudity: [bare]}}
  reviser: {plugin: cut, options: {negative: "lowres, nsfw"}}
  planner: {plugin: one}
  backend: {plugin: tiny}
  image_checks: [{plugin: patch, options: {category: CATEGORY, box: [8, 8, 24, 24]}}]
  editor: {plugin: blackout}
limits: {max_regenerations: 1}
failure_mode: {text: allow}
audit: {path: PATH, redact_prompt: REDACT, image_retention: RETENTION}
"""

SECRET = "zebra-7f3c-unique-secret prompt"


def lens(path: Path, category: str, version: str = "1.0", redact: str = "none",
         retention: str = "thumbnail", boom: bool = False) -> Lens:
    text = (POLICY.replace("VERSION", version).replace("CATEGORY", category).replace("PATH", str(path))
            .replace("REDACT", redact).replace("RETENTION", retention))
    if boom:
        text = text.replace("  text_checks:\n", "  text_checks:\n    - plugin: boom\n")
    policy = Policy.from_text(text, source=str(path.parent / f"policy-{version}.yaml"))
    return Lens(policy, plugins=[testplugin], audit_path=path)


def build(path: Path, redact: str = "none", retention: str = "thumbnail") -> Path:
    """Write a log of several requests under two policy versions; return its path."""
    path = Path(path)
    nudity = lens(path, "nudity", "1.0", redact, retention)
    nudity.check_prompt("a lighthouse at dawn")                 # pass
    nudity.check_prompt("a nude figure on a beach")            # revise
    nudity.check_prompt("a bazooka in a school")               # refuse
    nudity.generate(f"a lighthouse {SECRET}", n=2, seed=7)     # edited (blurred) images
    gore = lens(path, "gore", "2.0", redact, retention)
    gore.generate("a harbour at night", n=1, seed=3)           # blocked image
    sexual = lens(path, "sexual", "2.0", redact, retention)
    sexual.generate("a quiet street", n=1, seed=5)             # regenerated, then blocked
    boom = lens(path, "nudity", "2.0", redact, retention, boom=True)
    boom.check_prompt("a meadow")                              # plugin error, fail open
    from PIL import Image

    nudity.moderate([Image.new("RGB", (64, 64), (200, 180, 160))], prompt="an uploaded photo")
    for item in (nudity, gore, sexual, boom):
        item.close()
    return path
