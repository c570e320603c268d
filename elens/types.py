"""The small immutable records that flow from stages to decisions to the audit log.

Plugins return :class:`Signal` and :class:`Measurement`; the host turns them into
:class:`Finding` by comparing each score with the policy's threshold and attaching
the policy's action. Nothing here imports a heavy library.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Mapping

#: Actions a policy may attach to a category, weakest first. The pipeline applies
#: the strongest action among the findings of one stage.
ACTIONS = ("allow", "warn", "blur", "revise", "regenerate", "block")

#: Pipeline stages, in the order a request goes through them.
STAGES = ("text", "revise", "plan", "generate", "image", "edit")


def action_rank(action: str) -> int:
    """Order actions by strength so the strongest finding decides."""
    return ACTIONS.index(action)


@dataclass(frozen=True)
class Region:
    """A box in image pixels: left, top, right (exclusive), bottom (exclusive)."""

    x0: int
    y0: int
    x1: int
    y1: int
    label: str = ""

    def as_dict(self) -> dict[str, Any]:
        return {"x0": self.x0, "y0": self.y0, "x1": self.x1, "y1": self.y1, "label": self.label}


@dataclass(frozen=True)
class Signal:
    """What a check plugin reports: a score for one policy category.

    ``span`` is a (start, end) character range in the *original* prompt text;
    ``region`` a box in the image. ``label`` is the detector's own class name
    (``FEMALE_BREAST_EXPOSED``, ``adult``), ``reason`` a short human sentence.
    """

    category: str
    score: float
    span: tuple[int, int] | None = None
    region: Region | None = None
    label: str = ""
    reason: str = ""


@dataclass(frozen=True)
class Measurement:
    """A perceived human attribute of one image (bias audit), e.g. gender=female.

    ``value`` must be one of the policy's values for ``attribute``.
    """

    attribute: str
    value: str
    score: float = 1.0
    region: Region | None = None


@dataclass(frozen=True)
class Finding:
    """A signal judged against the policy: the unit of every decision and audit record."""

    plugin: str
    plugin_version: str
    stage: str
    category: str
    score: float
    threshold: float
    action: str
    triggered: bool
    reason: str = ""
    label: str = ""
    span: tuple[int, int] | None = None
    region: Region | None = None

    def as_dict(self) -> dict[str, Any]:
        # By hand, not dataclasses.asdict: it runs for every finding of every request.
        return {
            "plugin": self.plugin, "plugin_version": self.plugin_version, "stage": self.stage,
            "category": self.category, "score": round(float(self.score), 6), "threshold": self.threshold,
            "action": self.action, "triggered": self.triggered, "reason": self.reason, "label": self.label,
            "span": list(self.span) if self.span else None,
            "region": self.region.as_dict() if self.region else None,
        }


@dataclass(frozen=True)
class Revision:
    """A prompt reviser's answer: the new prompt and why it changed."""

    prompt: str
    reason: str
    negative_prompt: str | None = None
    changes: tuple[tuple[str, str], ...] = ()  # (before, after) pairs


@dataclass(frozen=True)
class PlannedPrompt:
    """The prompt one image will be generated from, with the attribute values it was dealt."""

    prompt: str
    assigned: Mapping[str, Mapping[str, str]] = field(default_factory=dict)
    #: cluster id -> {attribute: value}; empty when nothing was diversified


@dataclass(frozen=True)
class Plan:
    """A prompt planner's answer for a batch of N images."""

    prompts: tuple[PlannedPrompt, ...]
    signals: tuple[Signal, ...] = ()  # e.g. a named person -> public_figure
    clusters: tuple[Mapping[str, Any], ...] = ()  # what was found, for the record
    notes: str = ""


@dataclass(frozen=True)
class ImageContext:
    """What an image check may know about the image besides its pixels."""

    index: int
    prompt: str | None = None
    assigned: Mapping[str, Mapping[str, str]] = field(default_factory=dict)
