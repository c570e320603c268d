"""Bias measures and apportionment (the Ethical-Lens formulas), for planners and reports.

- gender imbalance: ``2 · |share_female − 0.5|`` (0 balanced, 1 all one gender);
- any attribute: the L1 distance between the observed distribution and the target,
  divided by the largest L1 distance possible, ``2 · (1 − min target weight)``
  (for a uniform target over k values that is ``2 · (1 − 1/k)``, as in the paper).
"""

from __future__ import annotations

from collections import Counter
from typing import Any, Mapping, Sequence


def target_weights(attribute: Mapping[str, Any]) -> dict[str, float]:
    """The normalised target distribution of a policy bias attribute."""
    values = list(attribute["values"])
    target = attribute.get("target", "uniform")
    if target in (None, "uniform"):
        return {v: 1.0 / len(values) for v in values}
    total = float(sum(target.get(v, 0.0) for v in values))
    return {v: float(target.get(v, 0.0)) / total for v in values}


def gender_imbalance(values: Sequence[str]) -> float:
    """``2·|share_female − 0.5|`` over the values that are male or female."""
    counted = [v for v in values if v in ("male", "female")]
    if not counted:
        return 0.0
    return 2 * abs(counted.count("female") / len(counted) - 0.5)


def imbalance(values: Sequence[str], target: Mapping[str, float]) -> float:
    """L1 distance to ``target`` over its maximum, in [0, 1]."""
    if not values:
        return 0.0
    counts = Counter(values)
    n = len(values)
    l1 = sum(abs(counts.get(v, 0) / n - w) for v, w in target.items())
    l1 += sum(c / n for v, c in counts.items() if v not in target)
    worst = 2 * (1 - min(target.values()))
    return min(1.0, l1 / worst) if worst > 0 else 0.0


def imbalance_for(attribute: Mapping[str, Any], values: Sequence[str]) -> float:
    """The imbalance of ``values`` for a policy attribute (gender formula for male/female)."""
    if set(attribute["values"]) == {"male", "female"} and attribute.get("target", "uniform") == "uniform":
        return gender_imbalance(values)
    return imbalance(values, target_weights(attribute))


def apportion(n: int, weights: Mapping[str, float]) -> dict[str, int]:
    """Largest-remainder (Hamilton) apportionment of ``n`` items; ties go to the earlier value."""
    total = float(sum(weights.values()))
    quotas = {v: n * w / total for v, w in weights.items()}
    counts = {v: int(q) for v, q in quotas.items()}
    order = list(weights)
    left = n - sum(counts.values())
    by_remainder = sorted(order, key=lambda v: (-(quotas[v] - counts[v]), order.index(v)))
    for v in by_remainder[:left]:
        counts[v] += 1
    return counts
