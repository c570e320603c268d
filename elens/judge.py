"""Policy judgement: turn plugin signals and measurements into findings, findings into one action.

Pure functions of the policy; no plugin is called here.
"""

from __future__ import annotations

import math
from typing import Any, Iterable, Mapping, Sequence

from .plugins import ComponentInfo
from .types import Finding, Measurement, Signal, action_rank


class MalformedOutput(Exception):
    """A plugin answered something that is not what its interface promises."""


def judge_signal(policy: Any, stage: str, signal: Any, info: ComponentInfo) -> Finding:
    """Compare one signal with the policy's threshold for its category at ``stage``."""
    if not isinstance(signal, Signal):
        raise MalformedOutput(f"expected a Signal, got {type(signal).__name__}")
    category = policy.categories.get(signal.category)
    if category is None:
        raise MalformedOutput(f"signal for unknown category {signal.category!r}")
    try:
        score = float(signal.score)
    except (TypeError, ValueError):
        raise MalformedOutput(f"score {signal.score!r} for {signal.category!r} is not a number") from None
    if not math.isfinite(score):
        raise MalformedOutput(f"score {signal.score!r} for {signal.category!r} is not finite")
    threshold = (category.get("thresholds") or {}).get(stage)
    block_threshold = (category.get("block_threshold") or {}).get(stage)
    action, triggered = "allow", False
    reason = signal.reason
    if block_threshold is not None and score >= block_threshold:
        action, triggered, threshold = "block", True, block_threshold
        reason = reason or f"score at or above the block threshold for {signal.category}"
    elif threshold is not None and score >= threshold:
        action, triggered = (category.get("actions") or {}).get(stage, "warn"), True
    if threshold is None:
        reason = reason or f"{signal.category} is not judged at the {stage} stage"
    return Finding(
        plugin=info.id,
        plugin_version=info.version,
        stage=stage,
        category=signal.category,
        score=score,
        threshold=float(threshold) if threshold is not None else 1.0,
        action=action,
        triggered=triggered,
        reason=reason,
        label=signal.label,
        span=tuple(signal.span) if signal.span else None,
        region=signal.region,
    )


def split_outputs(items: Iterable[Any]) -> tuple[list[Signal], list[Measurement]]:
    signals, measurements = [], []
    for item in items:
        if isinstance(item, Measurement):
            measurements.append(item)
        elif isinstance(item, Signal):
            signals.append(item)
        else:
            raise MalformedOutput(f"expected Signal or Measurement, got {type(item).__name__}")
    return signals, measurements


def check_batch(outputs: Any, n: int) -> list[list[Any]]:
    """A check must answer one list per input."""
    if not isinstance(outputs, (list, tuple)) or len(outputs) != n:
        got = len(outputs) if isinstance(outputs, (list, tuple)) else type(outputs).__name__
        raise MalformedOutput(f"expected {n} result lists, got {got}")
    for item in outputs:
        if not isinstance(item, (list, tuple)):
            raise MalformedOutput(f"expected a list of signals per input, got {type(item).__name__}")
    return [list(item) for item in outputs]


def judge_measurements(
    policy: Any,
    measurements: Sequence[tuple[Measurement, ComponentInfo]],
    assigned: Mapping[str, Mapping[str, str]],
) -> list[Finding]:
    """Compare perceived attributes with the values a single-person image was assigned.

    Only images planned for one person (one cluster) are compared, and only when one
    face was measured: with several faces there is no telling which is which.
    """
    bias = policy.bias or {}
    if len(assigned) != 1 or not measurements:
        return []
    regions = {m.region for m, _ in measurements if m.region is not None}
    if len(regions) > 1:
        return []
    target = next(iter(assigned.values()))
    min_confidence = float(bias.get("min_confidence", 0.6))
    action = "regenerate" if bias.get("on_mismatch", "record") == "regenerate" else "warn"
    findings = []
    for m, info in measurements:
        wanted = target.get(m.attribute)
        if wanted is None or m.value == wanted or m.score < min_confidence:
            continue
        findings.append(
            Finding(
                plugin=info.id,
                plugin_version=info.version,
                stage="image",
                category=f"bias.{m.attribute}",
                score=float(m.score),
                threshold=min_confidence,
                action=action,
                triggered=True,
                reason=f"assigned {m.attribute}={wanted}, measured {m.value}",
                label=m.value,
                region=m.region,
            )
        )
    return findings


def strongest(findings: Iterable[Finding]) -> str:
    """The strongest action among triggered findings (``allow`` when none)."""
    best = "allow"
    for f in findings:
        if f.triggered and action_rank(f.action) > action_rank(best):
            best = f.action
    return best

