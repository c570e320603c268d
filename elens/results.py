"""What :class:`elens.Lens` returns: results that explain themselves."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Mapping

from .types import Finding, Measurement, PlannedPrompt, Revision

try:
    from PIL.Image import Image
except ImportError:  # pragma: no cover
    Image = Any  # type: ignore[misc,assignment]


def _finding_line(f: Finding) -> str:
    where = ""
    if f.span:
        where = f" span={f.span[0]}:{f.span[1]}"
    elif f.region:
        r = f.region
        where = f" region=({r.x0},{r.y0},{r.x1},{r.y1})"
    label = f" [{f.label}]" if f.label else ""
    reason = f" - {f.reason}" if f.reason else ""
    return (
        f"{f.plugin}: {f.category}{label} score {f.score:.3f} vs {f.threshold:.3f}"
        f" -> {f.action if f.triggered else 'below threshold'}{where}{reason}"
    )


@dataclass(frozen=True)
class PluginFailure:
    """A plugin that raised, timed out or answered malformed, and what the stage did about it."""

    stage: str
    plugin: str
    plugin_version: str
    error: str
    failure_mode: str

    def as_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


@dataclass(frozen=True)
class PromptResult:
    """The text half of a request: decision, findings, revisions and the per-image plan."""

    request_id: str
    prompt: str
    status: str  # "pass" | "revised" | "refused"
    final_prompt: str | None
    negative_prompt: str | None
    findings: tuple[Finding, ...]
    revisions: tuple[Revision, ...] = ()
    plan: tuple[PlannedPrompt, ...] = ()
    clusters: tuple[Mapping[str, Any], ...] = ()
    failures: tuple[PluginFailure, ...] = ()
    reason: str = ""
    blur_categories: tuple[str, ...] = ()
    planned_bias: Mapping[str, Any] = field(default_factory=dict)
    #: every text-check round: (the prompt checked, its findings)
    rounds: tuple[tuple[str, tuple[Finding, ...]], ...] = ()

    @property
    def refused(self) -> bool:
        return self.status == "refused"

    @property
    def triggered(self) -> tuple[Finding, ...]:
        return tuple(f for f in self.findings if f.triggered)

    def explain(self) -> str:
        lines = [f"request {self.request_id}: {self.status.upper()}" + (f" ({self.reason})" if self.reason else "")]
        shown = set()
        for i, (checked, findings) in enumerate(self.rounds):
            if len(self.rounds) > 1:
                lines.append(f"  round {i}: {checked}")
            for f in findings:
                lines.append("  " + _finding_line(f))
                shown.add(id(f))
        for f in self.findings:
            if id(f) not in shown:
                lines.append("  " + _finding_line(f))
        for fail in self.failures:
            lines.append(f"  plugin error in {fail.stage}: {fail.plugin}: {fail.error} -> fail {fail.failure_mode}")
        for rev in self.revisions:
            lines.append(f"  revised: {rev.reason}")
        if self.status != "refused":
            lines.append(f"  prompt: {self.final_prompt}")
            if self.negative_prompt:
                lines.append(f"  negative prompt: {self.negative_prompt}")
            if self.blur_categories:
                lines.append(f"  faces/regions will be blurred for: {', '.join(self.blur_categories)}")
        if len(self.plan) > 1 or any(p.assigned for p in self.plan):
            lines.append("  plan:")
            for i, p in enumerate(self.plan):
                values = "; ".join(
                    f"{cid}: " + ", ".join(f"{k}={v}" for k, v in attrs.items()) for cid, attrs in p.assigned.items()
                )
                lines.append(f"    [{i}] {p.prompt}" + (f"  ({values})" if values else ""))
        return "\n".join(lines)

    def as_dict(self) -> dict[str, Any]:
        return {
            "request_id": self.request_id,
            "prompt": self.prompt,
            "status": self.status,
            "reason": self.reason,
            "final_prompt": self.final_prompt,
            "negative_prompt": self.negative_prompt,
            "findings": [f.as_dict() for f in self.findings],
            "rounds": [{"prompt": p, "findings": [f.as_dict() for f in fs]} for p, fs in self.rounds],
            "revisions": [
                {"prompt": r.prompt, "reason": r.reason, "changes": [list(c) for c in r.changes]}
                for r in self.revisions
            ],
            "plan": [{"prompt": p.prompt, "assigned": _plain(p.assigned)} for p in self.plan],
            "clusters": [_plain(c) for c in self.clusters],
            "failures": [f.as_dict() for f in self.failures],
            "blur_categories": list(self.blur_categories),
            "planned_bias": _plain(self.planned_bias),
        }


@dataclass(frozen=True)
class ImageResult:
    """One image's outcome. ``image`` is None when it was blocked (withheld)."""

    index: int
    status: str  # "delivered" | "edited" | "blocked"
    image: Image | None
    prompt: str | None
    seed: int | None
    findings: tuple[Finding, ...] = ()
    measurements: tuple[Measurement, ...] = ()
    assigned: Mapping[str, Mapping[str, str]] = field(default_factory=dict)
    actions: tuple[str, ...] = ()
    sha256: str | None = None
    reason: str = ""
    rounds: int = 0
    source: str | None = None  # the input file, for moderate

    @property
    def blocked(self) -> bool:
        return self.status == "blocked"

    def as_dict(self) -> dict[str, Any]:
        return {
            "index": self.index,
            "status": self.status,
            "prompt": self.prompt,
            "seed": self.seed,
            "sha256": self.sha256,
            "reason": self.reason,
            "regenerations": self.rounds,
            "actions": list(self.actions),
            "assigned": _plain(self.assigned),
            "measured": {m.attribute: m.value for m in self.measurements},
            "findings": [f.as_dict() for f in self.findings],
            **({"source": self.source} if self.source else {}),
        }


@dataclass(frozen=True)
class GenerationResult:
    """A whole generate (or moderate) request: the text result and every image."""

    request_id: str
    prompt: PromptResult | None
    images: tuple[ImageResult, ...]
    model_id: str | None = None
    bias: Mapping[str, Any] = field(default_factory=dict)
    failures: tuple[PluginFailure, ...] = ()

    @property
    def status(self) -> str:
        if self.prompt is not None and self.prompt.refused:
            return "refused"
        if not self.images:
            return "empty"
        statuses = {img.status for img in self.images}
        if statuses == {"blocked"}:
            return "blocked"
        if "blocked" in statuses or "edited" in statuses:
            return "partial" if "blocked" in statuses else "edited"
        return "delivered"

    def explain(self) -> str:
        lines = [self.prompt.explain()] if self.prompt is not None else [f"request {self.request_id}"]
        if self.model_id:
            lines.append(f"  model: {self.model_id}")
        for img in self.images:
            head = f"  image {img.index}: {img.status.upper()}"
            if img.seed is not None:
                head += f" seed={img.seed}"
            if img.reason:
                head += f" ({img.reason})"
            lines.append(head)
            for f in img.findings:
                lines.append("    " + _finding_line(f))
            if img.measurements:
                lines.append("    measured: " + ", ".join(f"{m.attribute}={m.value}" for m in img.measurements))
        for fail in self.failures:
            lines.append(f"  plugin error in {fail.stage}: {fail.plugin}: {fail.error} -> fail {fail.failure_mode}")
        if self.bias:
            lines.append("  bias: " + _bias_line(self.bias))
        return "\n".join(lines)

    def as_dict(self) -> dict[str, Any]:
        return {
            "request_id": self.request_id,
            "status": self.status,
            "model_id": self.model_id,
            "text": self.prompt.as_dict() if self.prompt is not None else None,
            "images": [img.as_dict() for img in self.images],
            "bias": _plain(self.bias),
            "failures": [f.as_dict() for f in self.failures],
        }


def _bias_line(bias: Mapping[str, Any]) -> str:
    parts = []
    for kind in ("planned", "measured"):
        values = bias.get(kind) or {}
        shown = ", ".join(
            f"{attr}={v:.2f}" if isinstance(v, (int, float)) else f"{attr}={v}" for attr, v in values.items()
        )
        if shown:
            parts.append(f"{kind} imbalance {shown}")
    return "; ".join(parts) or "nothing to measure"


def _plain(value: Any) -> Any:
    """Mappings and tuples to plain JSON types."""
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value
