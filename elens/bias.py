"""Bias measures and apportionment (the Ethical-Lens formulas), for planners and reports.

Imbalance is 0 when a batch matches its target exactly and 1 at the worst.

- gender (uniform male/female target): ``2 · |share_female − 0.5|``, as in the paper;
- any attribute: the L1 distance between the observed distribution ``p`` and the
  target ``t``, divided by the largest L1 distance any distribution can have from
  ``t``. That maximum is ``2 · (1 − min t)``: ``Σ|p − t|`` is largest when all of
  ``p``'s mass sits on one value ``v`` (L1 is convex, so its maximum over the simplex
  is at a vertex), where it equals ``(1 − t_v) + (1 − t_v)``; the rarest target value
  gives the largest. For a uniform target over ``k`` values that is ``2 · (1 − 1/k)``,
  the paper's normaliser. Observed values outside the target count fully towards the
  distance; the result is capped at 1.

Light on purpose: standard library only, so the host and every plugin can use it.
"""

from __future__ import annotations

from collections import Counter
from fractions import Fraction
from typing import Any, Iterable, Mapping, Sequence

__all__ = [
    "apportion",
    "gender_imbalance",
    "imbalance",
    "imbalance_for",
    "report",
    "target_weights",
]

NOT_MEASURED = "not measured"


def target_weights(attribute: Mapping[str, Any]) -> dict[str, float]:
    """The normalised target distribution of a policy bias attribute.

    ``target`` is ``uniform`` (or absent) or a mapping of weights; values the
    mapping leaves out get weight 0.
    """
    values = list(attribute["values"])
    target = attribute.get("target", "uniform")
    if target in (None, "uniform"):
        return {v: 1.0 / len(values) for v in values}
    total = float(sum(target.get(v, 0.0) for v in values))
    if total <= 0:
        raise ValueError(f"bias attribute {attribute.get('id')!r}: target weights sum to 0")
    return {v: float(target.get(v, 0.0)) / total for v in values}


def gender_imbalance(values: Sequence[str]) -> float:
    """``2·|share_female − 0.5|`` over the values that are male or female."""
    counted = [v for v in values if v in ("male", "female")]
    if not counted:
        return 0.0
    return 2 * abs(counted.count("female") / len(counted) - 0.5)


def imbalance(values: Sequence[str], target: Mapping[str, float]) -> float:
    """L1 distance of the distribution of ``values`` to ``target``, over its maximum, in [0, 1].

    ``target`` need not be normalised. An empty ``values`` is balanced (0).
    """
    if not values:
        return 0.0
    total = float(sum(target.values()))
    weights = {v: w / total for v, w in target.items()}
    counts = Counter(values)
    n = len(values)
    l1 = sum(abs(counts.get(v, 0) / n - w) for v, w in weights.items())
    l1 += sum(c / n for v, c in counts.items() if v not in weights)
    worst = 2 * (1 - min(weights.values()))
    return min(1.0, l1 / worst) if worst > 0 else 0.0


def imbalance_for(attribute: Mapping[str, Any], values: Sequence[str]) -> float:
    """The imbalance of ``values`` for a policy attribute (gender formula for uniform male/female)."""
    if set(attribute["values"]) == {"male", "female"} and attribute.get("target", "uniform") in (None, "uniform"):
        return gender_imbalance(values)
    return imbalance(values, target_weights(attribute))


def _exact(weight: float) -> Fraction:
    # Decimal exactness: 0.1 + 0.2 + 0.7 splits 10 items as 1/2/7 without float noise
    # deciding a tie.
    return Fraction(weight) if isinstance(weight, int) else Fraction(repr(float(weight)))


def apportion(n: int, weights: Mapping[str, float], order: Iterable[str] | None = None) -> dict[str, int]:
    """Largest-remainder (Hamilton) apportionment of ``n`` items over ``weights``.

    Each value first gets the integer part of its quota ``n · w / Σw``; the items
    left go one each to the largest remainders. Quotas are exact fractions, so equal
    weights tie exactly; ties go to the value that comes first in ``order`` (default:
    the order of ``weights``). The result keeps the order of ``weights`` and sums to ``n``.
    """
    if n < 0:
        raise ValueError("n must be >= 0")
    exact = {v: _exact(w) for v, w in weights.items()}
    if any(w < 0 for w in exact.values()):
        raise ValueError("weights must be >= 0")
    total = sum(exact.values())
    if total <= 0:
        raise ValueError("weights must not all be 0")
    quotas = {v: n * w / total for v, w in exact.items()}
    counts = {v: int(q) for v, q in quotas.items()}  # floor: quotas are >= 0
    rank = {v: i for i, v in enumerate(order if order is not None else weights)}
    left = n - sum(counts.values())
    by_remainder = sorted(weights, key=lambda v: (-(quotas[v] - counts[v]), rank.get(v, len(rank))))
    for v in by_remainder[:left]:
        counts[v] += 1
    return counts


def report(
    rows: Sequence[Mapping[str, str]],
    attributes: Sequence[Mapping[str, Any]],
    detail: bool = False,
) -> dict[str, Any]:
    """The imbalance of each policy attribute over ``rows`` (one ``{attribute: value}`` per image).

    ``rows`` are the values assigned to or measured on the single-person images of
    one request. An attribute no row has is ``"not measured"`` (the shipped face
    audit never measures race). With ``detail`` each attribute maps to
    ``{"imbalance", "n", "counts", "target"}`` instead of the bare number. No rows:
    an empty report.
    """
    out: dict[str, Any] = {}
    if not rows:
        return out
    for attribute in attributes:
        values = [row[attribute["id"]] for row in rows if attribute["id"] in row]
        if not values:
            out[attribute["id"]] = NOT_MEASURED
            continue
        score = round(imbalance_for(attribute, values), 6)
        if detail:
            counts = Counter(values)
            out[attribute["id"]] = {
                "imbalance": score,
                "n": len(values),
                "counts": {v: counts.get(v, 0) for v in [*attribute["values"], *sorted(set(counts) - set(attribute["values"]))]},
                "target": {v: round(w, 6) for v, w in target_weights(attribute).items()},
            }
        else:
            out[attribute["id"]] = score
    return out
