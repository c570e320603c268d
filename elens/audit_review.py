"""Reading an audit log as a reviewer does: requests, filters, a summary, one row per image decision.

Everything here works on the records as logged, so prompts appear only as the
policy's ``audit.redact_prompt`` let them be written.
"""

from __future__ import annotations

import os
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any, Iterable, Iterator

from .audit import read_records
from .errors import InputError

__all__ = ["Filters", "Request", "requests", "summarize", "decision_rows", "CSV_COLUMNS", "prompt_text"]

#: Text-stage decisions and image outcomes a reviewer can filter on with ``--action``,
#: beside the policy actions (allow, warn, revise, blur, regenerate, block).
OUTCOMES = ("refuse", "edited", "blocked", "delivered", "fail-open", "fail-closed")


def parse_time(value: str | None, end: bool = False) -> datetime | None:
    """An ISO-8601 date or time; a naive value is UTC. A bare date as ``end`` means the end of that day."""
    if not value:
        return None
    try:
        moment = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
    except ValueError:
        raise InputError(f"{value!r} is not an ISO-8601 date or time (e.g. 2026-11-25 or 2026-11-25T08:00:00Z)") from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)
    if end and len(value.strip()) == 10:  # a date alone: include the whole day
        moment = moment.replace(hour=23, minute=59, second=59, microsecond=999999)
    return moment


def prompt_text(value: Any) -> str:
    """A logged prompt for display: the text, ``sha256:…`` when hashed, ``(none)`` when dropped or absent."""
    if isinstance(value, dict):
        return "sha256:" + str(value.get("sha256", ""))
    if value is None:
        return "(none)"
    return str(value)


@dataclass
class Request:
    """One request's records and the facts a reviewer asks about."""

    request_id: str
    records: list[dict[str, Any]] = field(default_factory=list)

    @property
    def first(self) -> dict[str, Any]:
        return self.records[0]

    def events(self, name: str) -> list[dict[str, Any]]:
        return [r for r in self.records if r.get("event") == name]

    def _one(self, name: str) -> dict[str, Any]:
        found = self.events(name)
        return found[0] if found else {}

    @property
    def time(self) -> str:
        return str(self.first.get("time", ""))

    @property
    def moment(self) -> datetime | None:
        try:
            return parse_time(self.time)
        except InputError:
            return None

    @property
    def policy(self) -> dict[str, Any]:
        return self.first.get("policy") or {}

    @property
    def policy_label(self) -> str:
        return f"{self.policy.get('name', '?')}@{self.policy.get('version', '?')}"

    @property
    def kind(self) -> str:
        return str(self._one("request.received").get("kind", ""))

    @property
    def prompt(self) -> Any:
        return self._one("request.received").get("prompt")

    @property
    def status(self) -> str:
        done = self._one("request.completed")
        return str(done.get("status", "incomplete")) if done else "incomplete"

    @property
    def duration_ms(self) -> float | None:
        return self._one("request.completed").get("duration_ms")

    @property
    def findings(self) -> list[dict[str, Any]]:
        """Every finding of the request (text and image), in log order."""
        return [f for r in self.records for f in (r.get("findings") or []) if isinstance(f, dict)]

    @property
    def triggered(self) -> list[dict[str, Any]]:
        return [f for f in self.findings if f.get("triggered")]

    @property
    def categories(self) -> set[str]:
        cats = {str(f.get("category")) for f in self.triggered}
        cats |= {str(r.get("category")) for r in self.events("image.edited") if r.get("category")}
        return cats

    @property
    def actions(self) -> set[str]:
        """Policy actions of triggered findings, actions taken on images, and outcomes (see OUTCOMES)."""
        acts = {str(f.get("action")) for f in self.triggered if f.get("action")}
        for r in self.events("text.checked"):
            if r.get("decision") == "refuse":
                acts.add("refuse")
        for r in self.events("image.final"):
            acts.update(str(a) for a in r.get("actions") or [])
            acts.add(str(r.get("status")))
        for r in self.events("plugin.error"):
            acts.add("fail-open" if r.get("failure_mode") == "allow" else "fail-closed")
        return acts

    @property
    def revised_prompt(self) -> Any:
        """The prompt after text-stage revision, or None when the text stage did not revise it."""
        revisions = [r for r in self.events("prompt.revised") if "index" not in r]
        return revisions[-1].get("after") if revisions else None


@dataclass(frozen=True)
class Filters:
    """Which requests a reviewer wants. Empty fields do not filter."""

    since: str | None = None
    until: str | None = None
    category: str | None = None
    action: str | None = None
    policy_version: str | None = None
    request: str | None = None

    def __post_init__(self) -> None:
        parse_time(self.since), parse_time(self.until, end=True)  # fail early on a bad date

    def match(self, req: Request) -> bool:
        if self.request and not req.request_id.startswith(self.request):
            return False
        if self.policy_version and str(req.policy.get("version")) != self.policy_version \
                and req.policy_label != self.policy_version:
            return False
        since, until = parse_time(self.since), parse_time(self.until, end=True)
        if since or until:
            moment = req.moment
            if moment is None or (since and moment < since) or (until and moment > until):
                return False
        if self.category and self.category not in req.categories:
            return False
        if self.action and self.action not in req.actions:
            return False
        return True

    def describe(self) -> str:
        parts = [f"{k.replace('_', '-')}={v}" for k, v in vars(self).items() if v]
        return ", ".join(parts) or "none"


def requests(path: str | os.PathLike, filters: Filters | None = None) -> list[Request]:
    """The log's requests in order of their first record, optionally filtered."""
    by_id: dict[str, Request] = {}
    for record in read_records(path):
        rid = str(record.get("request_id", ""))
        by_id.setdefault(rid, Request(rid)).records.append(record)
    found = list(by_id.values())
    return [r for r in found if filters.match(r)] if filters else found


def _rate(part: int, whole: int) -> float | None:
    return round(part / whole, 4) if whole else None


def summarize(reqs: Iterable[Request]) -> dict[str, Any]:
    """Counts and rates a compliance reviewer asks for first. Stable keys (see docs/audit.md)."""
    reqs = list(reqs)
    by = {k: Counter() for k in ("category", "action", "stage", "plugin")}
    status, kinds, versions = Counter(), Counter(), Counter()
    images = Counter()
    errors: list[dict[str, Any]] = []
    bias: list[dict[str, Any]] = []
    text_requests = refused = revised = 0
    for req in reqs:
        status[req.status] += 1
        kinds[req.kind] += 1
        versions[req.policy_label] += 1
        for f in req.triggered:
            by["category"][str(f.get("category"))] += 1
            by["action"][str(f.get("action"))] += 1
            by["stage"][str(f.get("stage"))] += 1
            by["plugin"][f"{f.get('plugin')}@{f.get('plugin_version')}"] += 1
        if req.events("text.checked"):
            text_requests += 1
            refused += any(r.get("decision") == "refuse" for r in req.events("text.checked"))
            revised += bool(req.revised_prompt is not None)
        for r in req.events("image.final"):
            images[str(r.get("status"))] += 1
        for r in req.events("plugin.error"):
            errors.append({"request_id": req.request_id, "time": r.get("time"), "stage": r.get("stage"),
                           "plugin": r.get("plugin"), "plugin_version": r.get("plugin_version"),
                           "error": r.get("error"), "failure_mode": r.get("failure_mode")})
        done = req._one("request.completed")
        planned = req._one("prompt.planned").get("planned_imbalance")
        done_bias = done.get("bias") or {}
        if planned or done_bias.get("measured"):
            bias.append({"request_id": req.request_id, "prompt": prompt_text(req.prompt),
                         "planned": done_bias.get("planned") or planned or {},
                         "measured": done_bias.get("measured") or {}})
    total_images = sum(images.values())
    return {
        "requests": len(reqs),
        "images": total_images,
        "by_kind": dict(kinds.most_common()),
        "by_status": dict(status.most_common()),
        "by_policy_version": dict(versions.most_common()),
        "images_by_status": dict(images.most_common()),
        "findings_by_category": dict(by["category"].most_common()),
        "findings_by_action": dict(by["action"].most_common()),
        "findings_by_stage": dict(by["stage"].most_common()),
        "findings_by_plugin": dict(by["plugin"].most_common()),
        "rates": {
            "refuse": _rate(refused, text_requests),
            "revise": _rate(revised, text_requests),
            "edit": _rate(images["edited"], total_images),
            "block": _rate(images["blocked"], total_images),
        },
        "plugin_errors": len(errors),
        "fail_open": sum(1 for e in errors if e["failure_mode"] == "allow"),
        "errors": errors,
        "bias": bias,
    }


CSV_COLUMNS = (
    "time", "request_id", "kind", "policy_name", "policy_version", "policy_sha256", "prompt", "revised_prompt",
    "image_index", "image_prompt", "seed", "regenerations", "status", "actions", "reason", "categories",
    "max_score", "findings", "image_sha256", "source", "plugin_errors",
)


def _finding_text(f: dict[str, Any]) -> str:
    threshold = f.get("threshold")
    cmp = ">=" if f.get("triggered") else "<"
    limit = "-" if threshold is None else f"{threshold:g}"
    return (f"{f.get('stage')}:{f.get('category')} {float(f.get('score') or 0):.3f}{cmp}{limit} "
            f"{f.get('action')} ({f.get('plugin')}@{f.get('plugin_version')})")


def decision_rows(reqs: Iterable[Request]) -> Iterator[dict[str, Any]]:
    """One row per ``image.final`` record, joined with that image's findings (text findings included)."""
    for req in reqs:
        text_findings = [f for r in req.events("text.checked") for f in r.get("findings") or [] if f.get("triggered")]
        errors = "; ".join(f"{r.get('stage')}/{r.get('plugin')}: {r.get('error')} (fail {r.get('failure_mode')})"
                           for r in req.events("plugin.error"))
        plans = {int(i.get("index", -1)): i for r in req.events("prompt.planned") for i in r.get("images") or []}
        for final in req.events("image.final"):
            index = final.get("index")
            findings = text_findings + [f for r in req.records if r.get("event") == "image.checked"
                                        and r.get("index") == index for f in r.get("findings") or []]
            hits = [f for f in findings if f.get("triggered")]
            image = final.get("image") or {}
            image_prompt = plans.get(index, {}).get("prompt")
            generated = [r for r in req.events("image.generated") if r.get("index") == index]
            if generated:
                image_prompt = generated[-1].get("prompt", image_prompt)
            yield {
                "time": final.get("time"), "request_id": req.request_id, "kind": req.kind,
                "policy_name": req.policy.get("name"), "policy_version": req.policy.get("version"),
                "policy_sha256": req.policy.get("sha256"), "prompt": prompt_text(req.prompt),
                "revised_prompt": "" if req.revised_prompt is None else prompt_text(req.revised_prompt),
                "image_index": index, "image_prompt": "" if image_prompt is None and not plans
                else prompt_text(image_prompt),
                "seed": final.get("seed"), "regenerations": final.get("regenerations", 0),
                "status": final.get("status"), "actions": ";".join(final.get("actions") or []),
                "reason": final.get("reason") or "",
                "categories": ";".join(sorted({str(f.get("category")) for f in hits})),
                "max_score": max((float(f.get("score") or 0) for f in hits), default=""),
                "findings": "; ".join(_finding_text(f) for f in findings),
                "image_sha256": image.get("sha256", ""), "source": final.get("source", ""),
                "plugin_errors": errors,
            }
