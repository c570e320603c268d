"""The stages of a request and the actions between them.

policy → text checks → decision (refuse, revise, pass) → revision rounds → plan →
generation → image checks → per-image action (edit, regenerate, block) → final
status. Every stage appends events to the request's :class:`Recorder`; the host
writes them to the audit log in one durable append when the request ends.
"""

from __future__ import annotations

import random
import threading
import time
import uuid
from dataclasses import dataclass, field, replace
from datetime import datetime, timezone
from typing import Any, Callable, Mapping, Sequence

import structlog

from . import bias
from .errors import ElensError
from .images import sha256_image
from .judge import MalformedOutput, check_batch, judge_measurements, judge_signal, split_outputs, strongest
from .plugins import ComponentInfo, Registry
from .results import GenerationResult, ImageResult, PluginFailure, PromptResult
from .types import Finding, ImageContext, Measurement, Plan, PlannedPrompt, Revision

log = structlog.get_logger("elens.pipeline")


class PluginTimeout(Exception):
    pass


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="microseconds").replace("+00:00", "Z")


def _ms(start: float) -> float:
    return round((time.perf_counter() - start) * 1000, 3)


class Recorder:
    """Collects one request's audit records, with prompts redacted as the policy says."""

    def __init__(self, policy: Any, kind: str):
        from .audit import redact

        self.policy = policy
        self.request_id = uuid.uuid4().hex
        self.records: list[dict[str, Any]] = []
        self.kind = kind
        self._redact = redact
        self.started = time.perf_counter()
        self.batch_size = 1  # requests decided together with this one (Lens.check_prompts)

    def prompt(self, text: str | None) -> Any:
        if text is None:
            return None
        return self._redact(text, self.policy.audit.get("redact_prompt", "none"))

    def event(self, name: str, **fields: Any) -> None:
        self.records.append(
            {
                "time": _now(),
                "event": name,
                "request_id": self.request_id,
                "policy": {"name": self.policy.name, "version": self.policy.version, "sha256": self.policy.sha256},
                **fields,
            }
        )


@dataclass
class _ImageState:
    index: int
    image: Any
    prompt: str | None
    seed: int | None
    assigned: Mapping[str, Mapping[str, str]] = field(default_factory=dict)
    rounds: int = 0
    source: str | None = None


class Pipeline:
    """Builds the components a policy names (once) and runs requests through them."""

    def __init__(self, policy: Any, registry: Registry):
        self.policy = policy
        self.registry = registry
        self._built: dict[tuple, tuple[Any, ComponentInfo]] = {}

    # -- components -----------------------------------------------------------------
    def component(self, kind: str, path: tuple, entry: Mapping[str, Any]) -> tuple[Any, ComponentInfo]:
        if path not in self._built:
            self._built[path] = self.registry.build(kind, path, dict(entry), self.policy)
        return self._built[path]

    def _call(self, entry: Mapping[str, Any], fn: Callable[..., Any], *args: Any, scale: int = 1) -> Any:
        timeout = entry.get("timeout_s")
        if not timeout:
            return fn(*args)
        timeout = timeout * max(1, scale)
        # A daemon thread per timed call: one that never returns is abandoned, and it
        # neither holds a pool slot that later calls wait for nor keeps the process alive.
        outcome: dict[str, Any] = {}

        def run() -> None:
            try:
                outcome["value"] = fn(*args)
            except BaseException as exc:  # handed to the caller below
                outcome["error"] = exc

        thread = threading.Thread(target=run, name="elens-plugin", daemon=True)
        thread.start()
        thread.join(timeout)
        if thread.is_alive():
            raise PluginTimeout(f"timed out after {timeout} s")
        if "error" in outcome:
            raise outcome["error"]
        return outcome["value"]

    def _failure(self, rec: Recorder, stage: str, info_or_entry: Any, exc: BaseException) -> PluginFailure:
        mode = self.policy.failure_mode(stage)
        if isinstance(info_or_entry, ComponentInfo):
            plugin, version = info_or_entry.id, info_or_entry.version
        else:
            plugin, version = str(info_or_entry.get("plugin")), "?"
        kind = "malformed output" if isinstance(exc, MalformedOutput) else type(exc).__name__
        message = f"{kind}: {exc}" if str(exc) else kind
        failure = PluginFailure(stage, plugin, version, message, mode)
        rec.event("plugin.error", **failure.as_dict())
        log.warning("plugin_error", stage=stage, plugin=plugin, error=message, failure_mode=mode)
        return failure

    # -- text -----------------------------------------------------------------------
    def text_checks_batch(self, recs: Sequence[Recorder], prompts: Sequence[str],
                          failures: Sequence[list]) -> list[tuple[list[Finding], bool]]:
        """Run every text check on a batch of prompts (one request each), one call per check.

        Returns, per prompt, its findings and whether a failure blocks it. When a
        batched call fails (other than by timing out), the check runs again on each
        prompt alone, so one prompt that breaks a check does not fail the others: the
        outcome is the same as checking each prompt by itself. ``timeout_s`` covers
        one call and is scaled by the batch size.
        """
        out: list[tuple[list[Finding], bool]] = [([], False) for _ in prompts]
        blocks = self.policy.failure_mode("text") == "block"
        for i, entry in enumerate(self.policy.pipeline.get("text_checks") or []):
            info: Any = entry
            judged: list[Any]
            try:
                check, info = self.component("text_check", ("pipeline", "text_checks", i), entry)
            except ElensError:
                raise
            except Exception as exc:
                judged = [exc] * len(prompts)
            else:
                judged = self._judge_each(entry, check, info, prompts)
            for j, (rec, result) in enumerate(zip(recs, judged)):
                if isinstance(result, BaseException):
                    failures[j].append(self._failure(rec, "text", info, result))
                    out[j] = (out[j][0], out[j][1] or blocks)
                else:
                    out[j][0].extend(result)
        return out

    def _judge_each(self, entry: Mapping[str, Any], check: Any, info: ComponentInfo,
                    prompts: Sequence[str]) -> list[Any]:
        """Per prompt, its findings from ``check``, or the exception that stands for them."""
        try:
            return self._judge_texts(entry, check, info, prompts)
        except ElensError:
            raise
        except Exception as exc:
            if isinstance(exc, PluginTimeout) or len(prompts) == 1:
                return [exc] * len(prompts)  # retrying one by one could take the timeout N times
        judged: list[Any] = []
        for prompt in prompts:
            try:
                judged.extend(self._judge_texts(entry, check, info, [prompt]))
            except ElensError:
                raise
            except Exception as exc:
                judged.append(exc)
        return judged

    def _judge_texts(self, entry: Mapping[str, Any], check: Any, info: ComponentInfo,
                     prompts: Sequence[str]) -> list[list[Finding]]:
        outputs = check_batch(self._call(entry, check.check, list(prompts), scale=len(prompts)), len(prompts))
        judged = []
        for per_prompt in outputs:
            signals, measurements = split_outputs(per_prompt)
            if measurements:
                raise MalformedOutput("a text check returned measurements")
            judged.append([judge_signal(self.policy, "text", s, info) for s in signals])
        return judged

    def _reviser(self) -> tuple[Any, ComponentInfo] | None:
        entry = self.policy.pipeline.get("reviser")
        return self.component("reviser", ("pipeline", "reviser"), entry) if entry else None

    def negative_prompt(self, rec: Recorder, failures: list) -> str | None:
        entry = self.policy.pipeline.get("reviser")
        if not entry:
            return None
        try:
            reviser, _info = self.component("reviser", ("pipeline", "reviser"), entry)
            return reviser.negative_prompt()
        except ElensError:
            raise
        except Exception as exc:
            failures.append(self._failure(rec, "revise", entry, exc))
            return None

    def run_text(self, rec: Recorder, prompt: str, n: int, seed: int, *, plan: bool = True) -> PromptResult:
        """The text half of one request."""
        result = self.run_texts([rec], [prompt], n, seed, plan=plan)[0]
        if isinstance(result, BaseException):
            raise result
        return result

    def run_texts(self, recs: Sequence[Recorder], prompts: Sequence[str], n: int, seed: int, *,
                  plan: bool = True) -> list[PromptResult | BaseException]:
        """The text half of many requests, each round's checks run once for every prompt
        still in play. Returns, per request, its result or the exception that ended it."""
        rounds = [self._text_rounds(rec, prompt, n, seed, plan) for rec, prompt in zip(recs, prompts)]
        out: list[PromptResult | BaseException | None] = [None] * len(rounds)
        asked: dict[int, str] = {}

        def step(i: int, answer: Any) -> None:
            try:
                asked[i] = rounds[i].send(answer)
            except StopIteration as stop:
                out[i] = stop.value
            except Exception as exc:
                out[i] = exc

        for i in range(len(rounds)):
            step(i, None)
        while asked:
            todo, asked = asked, {}
            failures: list[list] = [[] for _ in todo]
            start = time.perf_counter()
            try:
                checked = self.text_checks_batch([recs[i] for i in todo], list(todo.values()), failures)
            except Exception as exc:
                for i in todo:
                    out[i] = exc
                continue
            each = round((time.perf_counter() - start) * 1000 / len(todo), 3)
            for i, (findings, blocked), fails in zip(todo, checked, failures):
                step(i, (findings, blocked, fails, each))
        return out  # type: ignore[return-value]

    def _text_rounds(self, rec: Recorder, prompt: str, n: int, seed: int, plan: bool):
        """One request's text half as a generator: it yields each prompt to check and is
        sent back (findings, whether a failure blocks, the failures, duration in ms)."""
        limits = self.policy.limits
        failures: list[PluginFailure] = []
        revisions: list[Revision] = []
        all_findings: list[Finding] = []
        blur: list[str] = []
        current = prompt
        status, reason = "pass", ""
        rounds: list[tuple[str, tuple[Finding, ...]]] = []
        max_revisions = int(limits.get("max_revisions", 2))
        for round_ in range(max_revisions + 1):
            findings, failed_closed, check_failures, duration_ms = yield current
            failures.extend(check_failures)
            all_findings = findings
            rounds.append((current, tuple(findings)))
            for f in findings:
                if f.triggered and f.action == "blur" and f.category not in blur:
                    blur.append(f.category)
            action = strongest(findings)
            if failed_closed:
                decision, reason = "refuse", "a text check failed and the text stage fails closed"
            elif action == "block":
                decision = "refuse"
                reason = "; ".join(sorted({f"{f.category} ({f.plugin})" for f in findings if f.action == "block"}))
                reason = f"blocked: {reason}"
            elif action == "revise":
                decision = "revise"
            else:
                decision = "warn" if action == "warn" else "pass"
            rec.event(
                "text.checked",
                round=round_,
                prompt=rec.prompt(current),
                findings=[f.as_dict() for f in findings],
                decision=decision,
                duration_ms=duration_ms,
            )
            if decision == "refuse":
                status = "refused"
                break
            if decision in ("pass", "warn"):
                break
            if round_ == max_revisions:
                status, reason = "refused", f"still flagged after {max_revisions} revision round(s)"
                break
            reviser_entry = self.policy.pipeline.get("reviser")
            if not reviser_entry:
                status, reason = "refused", "the policy asks for a revision but names no reviser"
                break
            info: Any = reviser_entry
            try:
                reviser, info = self.component("reviser", ("pipeline", "reviser"), reviser_entry)
                revision = self._call(
                    reviser_entry, reviser.revise, current, [f for f in findings if f.triggered]
                )
                if not isinstance(revision, Revision) or not isinstance(revision.prompt, str):
                    raise MalformedOutput(f"expected a Revision, got {type(revision).__name__}")
            except ElensError:
                raise
            except Exception as exc:
                failures.append(self._failure(rec, "revise", info, exc))
                if self.policy.failure_mode("revise") == "block":
                    status, reason = "refused", "the reviser failed and the revise stage fails closed"
                    break
                break  # fail open: keep the prompt as it is
            rec.event(
                "prompt.revised",
                plugin=info.id,
                plugin_version=info.version,
                before=rec.prompt(current),
                after=rec.prompt(revision.prompt),
                reason=revision.reason,
                changes=[[rec.prompt(a), rec.prompt(b)] for a, b in revision.changes],
            )
            revisions.append(revision)
            if revision.prompt.strip() == current.strip():
                # the same prompt would only be flagged again, round after round
                status, reason = "refused", "still flagged and the reviser changed nothing" + (
                    f": {revision.reason}" if revision.reason else "")
                break
            current = revision.prompt
            if not current.strip():
                status, reason = "refused", "nothing is left of the prompt after revision"
                break
        if status != "refused" and revisions:
            status = "revised"
        final = None if status == "refused" else current
        planned: tuple[PlannedPrompt, ...] = ()
        clusters: tuple = ()
        planned_bias: dict[str, Any] = {}
        if final is not None and plan:
            planned, clusters, plan_findings, refusal = self._plan(rec, final, n, seed, failures)
            all_findings = all_findings + plan_findings
            for f in plan_findings:
                if f.triggered and f.action == "blur" and f.category not in blur:
                    blur.append(f.category)
            if refusal:
                status, reason, final, planned = "refused", refusal, None, ()
            else:
                planned_bias = bias_report(self.policy, [p.assigned for p in planned])
        negative = self.negative_prompt(rec, failures) if final is not None else None
        return PromptResult(
            request_id=rec.request_id,
            prompt=prompt,
            status=status,
            final_prompt=final,
            negative_prompt=negative,
            findings=tuple(all_findings),
            revisions=tuple(revisions),
            plan=planned,
            clusters=clusters,
            failures=tuple(failures),
            reason=reason,
            blur_categories=tuple(blur),
            planned_bias=planned_bias,
            rounds=tuple(rounds),
        )

    def _plan(self, rec: Recorder, prompt: str, n: int, seed: int, failures: list):
        entry = self.policy.pipeline.get("planner")
        plain = tuple(PlannedPrompt(prompt) for _ in range(n))
        if not entry:
            return plain, (), [], None
        info: Any = entry
        try:
            planner, info = self.component("planner", ("pipeline", "planner"), entry)
            plan = self._call(entry, planner.plan, prompt, n, seed)
            if not isinstance(plan, Plan) or len(plan.prompts) != n:
                got = len(plan.prompts) if isinstance(plan, Plan) else type(plan).__name__
                raise MalformedOutput(f"expected a Plan of {n} prompts, got {got}")
            findings = [judge_signal(self.policy, "text", s, info) for s in plan.signals]
        except ElensError:
            raise
        except Exception as exc:
            failures.append(self._failure(rec, "plan", info, exc))
            if self.policy.failure_mode("plan") == "block":
                return (), (), [], "the planner failed and the plan stage fails closed"
            return plain, (), [], None
        rec.event(
            "prompt.planned",
            plugin=info.id,
            plugin_version=info.version,
            clusters=[_redact_cluster(rec, c) for c in plan.clusters],
            images=[{"index": i, "prompt": rec.prompt(p.prompt), "assigned": _plain(p.assigned)}
                    for i, p in enumerate(plan.prompts)],
            findings=[f.as_dict() for f in findings],
            planned_imbalance=bias_report(self.policy, [p.assigned for p in plan.prompts]),
        )
        refusal = None
        if strongest(findings) == "block":
            refusal = "blocked: " + ", ".join(sorted({f.category for f in findings if f.action == "block"}))
        return plan.prompts, tuple(plan.clusters), findings, refusal

    # -- generation -------------------------------------------------------------------
    def _backend(self) -> tuple[Any, ComponentInfo]:
        entry = self.policy.pipeline.get("backend")
        if not entry:
            raise self.policy.error(("pipeline", "backend"), "generate needs a backend and the policy names none")
        return self.component("backend", ("pipeline", "backend"), entry)

    def _generate(self, rec: Recorder, states: Sequence[_ImageState], negative: str | None,
                  options: Mapping[str, Any], round_: int) -> None:
        backend, info = self._backend()
        entry = self.policy.pipeline["backend"]
        start = time.perf_counter()
        try:
            images = self._call(entry, backend.generate, [s.prompt for s in states], [s.seed for s in states],
                                negative, dict(options))
            if not isinstance(images, (list, tuple)) or len(images) != len(states):
                raise MalformedOutput(f"expected {len(states)} images")
        except ElensError:
            raise
        except Exception as exc:
            self._failure(rec, "generate", info, exc)
            raise ElensError(f"backend {info.id!r} failed: {exc}") from exc
        each = _ms(start) / max(len(states), 1)
        for state, image in zip(states, images):
            state.image = image.convert("RGB")
            rec.event(
                "image.generated",
                index=state.index,
                round=round_,
                seed=state.seed,
                model_id=getattr(backend, "model_id", info.id),
                plugin=info.id,
                plugin_version=info.version,
                prompt=rec.prompt(state.prompt),
                negative_prompt=rec.prompt(negative),
                sha256=sha256_image(state.image),
                duration_ms=round(each, 3),
                **self._before(state.image),
            )

    # -- images -----------------------------------------------------------------------
    def _image_checks(self, rec: Recorder, states: Sequence[_ImageState], failures: list):
        per_image: dict[int, tuple[list[Finding], list[tuple[Measurement, ComponentInfo]]]] = {
            s.index: ([], []) for s in states
        }
        failed_closed = False
        images = [s.image for s in states]
        contexts = [ImageContext(s.index, s.prompt, s.assigned) for s in states]
        for i, entry in enumerate(self.policy.pipeline.get("image_checks") or []):
            info: Any = entry
            try:
                check, info = self.component("image_check", ("pipeline", "image_checks", i), entry)
                outputs = check_batch(self._call(entry, check.check, images, contexts), len(states))
                judged = []
                for state, items in zip(states, outputs):
                    signals, measurements = split_outputs(items)
                    judged.append(([judge_signal(self.policy, "image", s, info) for s in signals],
                                   [(m, info) for m in measurements]))
            except ElensError:
                raise
            except Exception as exc:
                failures.append(self._failure(rec, "image", info, exc))
                failed_closed = failed_closed or self.policy.failure_mode("image") == "block"
                continue
            for state, (findings, measurements) in zip(states, judged):
                per_image[state.index][0].extend(findings)
                per_image[state.index][1].extend(measurements)
        return per_image, failed_closed

    def run_images(self, rec: Recorder, states: list[_ImageState], *, text: PromptResult | None,
                   negative: str | None, options: Mapping[str, Any], can_regenerate: bool,
                   failures: list) -> list[ImageResult]:
        """Check, edit, regenerate or block each image until every one has a final status."""
        limits = self.policy.limits
        max_regen = int(limits.get("max_regenerations", 1))
        blur_categories = text.blur_categories if text is not None else ()
        final: dict[int, ImageResult] = {}
        pending = list(states)
        flagged: dict[int, list[Finding]] = {}
        while pending:
            start = time.perf_counter()
            per_image, failed_closed = self._image_checks(rec, pending, failures)
            check_ms = _ms(start) / max(len(pending), 1)
            regenerate: list[_ImageState] = []
            for state in pending:
                findings, measured = per_image[state.index]
                findings = findings + judge_measurements(self.policy, measured, state.assigned)
                measurements = tuple(m for m, _ in measured)
                action = "block" if failed_closed else strongest(findings)
                rec.event(
                    "image.checked",
                    index=state.index,
                    round=state.rounds,
                    findings=[f.as_dict() for f in findings],
                    measurements=[_measurement(m, info) for m, info in measured],
                    decision=action,
                    duration_ms=round(check_ms, 3),
                )
                if action == "regenerate" and can_regenerate and state.rounds < max_regen:
                    regenerate.append(state)
                    flagged[state.index] = findings
                    continue
                if failed_closed:
                    reason = "an image check failed and the image stage fails closed"
                    final[state.index] = self._final(rec, state, "blocked", findings, measurements, ["block"], reason)
                elif action == "block":
                    cats = sorted({f.category for f in findings if f.triggered and f.action == "block"})
                    final[state.index] = self._final(rec, state, "blocked", findings, measurements, ["block"],
                                                     "blocked: " + ", ".join(cats))
                elif action == "regenerate":
                    reason = (f"still flagged after {state.rounds} regeneration(s)" if can_regenerate
                              else "flagged for regeneration, which moderation of existing images cannot do")
                    final[state.index] = self._final(rec, state, "blocked", findings, measurements, ["block"], reason)
                else:
                    final[state.index] = self._edit(rec, state, findings, measurements, blur_categories, failures)
            if regenerate:
                n = len(states)
                for state in regenerate:
                    findings = flagged.pop(state.index)
                    state.rounds += 1
                    state.prompt = self._regeneration_prompt(rec, state, findings, failures)
                    state.seed = (state.seed or 0) + state.rounds * n
                    rec.event("image.regenerated", index=state.index, round=state.rounds,
                              prompt=rec.prompt(state.prompt), seed=state.seed,
                              reason=", ".join(sorted({f.category for f in findings if f.triggered})))
                self._generate(rec, regenerate, negative, options, regenerate[0].rounds)
            pending = regenerate
        return [final[s.index] for s in states]

    def _regeneration_prompt(self, rec: Recorder, state: _ImageState, findings: list[Finding],
                             failures: list) -> str:
        prompt = state.prompt or ""
        toxic = [f for f in findings if f.triggered and f.action == "regenerate" and not f.category.startswith("bias.")]
        if toxic and self.policy.pipeline.get("reviser"):
            entry = self.policy.pipeline["reviser"]
            info: Any = entry
            try:
                reviser, info = self.component("reviser", ("pipeline", "reviser"), entry)
                revision = self._call(entry, reviser.revise, prompt, toxic)
                rec.event("prompt.revised", plugin=info.id, plugin_version=info.version, index=state.index,
                          before=rec.prompt(prompt), after=rec.prompt(revision.prompt), reason=revision.reason,
                          changes=[[rec.prompt(a), rec.prompt(b)] for a, b in revision.changes])
                prompt = revision.prompt
            except ElensError:
                raise
            except Exception as exc:
                failures.append(self._failure(rec, "revise", info, exc))
        unbalanced = [f for f in findings if f.triggered and f.category.startswith("bias.")]
        if unbalanced and state.assigned:
            wanted = next(iter(state.assigned.values()))
            # Say the assigned values again, last, so the backend weighs them more.
            extra = [wanted[f.category.split(".", 1)[1]] for f in unbalanced if f.category.split(".", 1)[1] in wanted]
            prompt = f"{prompt}, {', '.join(dict.fromkeys(extra))}" if extra else prompt
        return prompt

    def _edit(self, rec: Recorder, state: _ImageState, findings: list[Finding],
              measurements: tuple, blur_categories: Sequence[str], failures: list) -> ImageResult:
        todo = [f for f in findings if f.triggered and f.action == "blur"]
        for category in blur_categories:
            # Flagged by the text stage: the image signals of that category give the regions.
            located = [f for f in findings if f.category == category and f.region is not None]
            if located:
                todo.extend(replace(f, action="blur", triggered=True,
                                    reason=f.reason or f"{category} flagged in the prompt") for f in located
                            if not any(t.region == f.region and t.category == category for t in todo))
            elif not any(t.category == category for t in todo):
                todo.append(Finding(plugin="policy", plugin_version=self.policy.version, stage="image",
                                    category=category, score=1.0, threshold=1.0, action="blur", triggered=True,
                                    reason=f"{category} flagged in the prompt; no region found in the image"))
        warned = any(f.triggered and f.action == "warn" for f in findings)
        actions = ["warn"] if warned else []
        if not todo:
            return self._final(rec, state, "delivered", findings, measurements, actions or ["allow"], "")
        entry = self.policy.pipeline.get("editor")
        if not entry:
            return self._final(rec, state, "blocked", findings, measurements, ["block"],
                               "a blur is required but the policy names no editor")
        info: Any = entry
        image = state.image
        try:
            editor, info = self.component("editor", ("pipeline", "editor"), entry)
            for finding in todo:
                before = sha256_image(image)
                edited = self._call(entry, editor.edit, image, finding)
                if edited is None or not hasattr(edited, "size") or edited.size != image.size:
                    raise MalformedOutput("the editor must return an image of the same size")
                image = edited.convert("RGB")
                rec.event("image.edited", index=state.index, plugin=info.id, plugin_version=info.version,
                          category=finding.category, region=finding.region.as_dict() if finding.region else None,
                          sha256_before=before, sha256_after=sha256_image(image))
        except ElensError:
            raise
        except Exception as exc:
            failures.append(self._failure(rec, "edit", info, exc))
            if self.policy.failure_mode("edit") == "block":
                return self._final(rec, state, "blocked", findings + todo, measurements, ["block"],
                                   "the editor failed and the edit stage fails closed")
            return self._final(rec, state, "delivered", findings + todo, measurements, actions + ["allow"],
                               "the editor failed; delivered unedited (edit stage fails open)")
        state.image = image
        extra = [f for f in todo if f not in findings]
        return self._final(rec, state, "edited", findings + extra, measurements, actions + ["blur"], "")

    def _before(self, image: Any) -> dict[str, Any]:
        """A thumbnail of an image as it came in, when the policy keeps images: the
        reviewer's "before" beside an edited or withheld result."""
        from .audit import image_record

        if self.policy.audit.get("image_retention", "hash") not in ("thumbnail", "full"):
            return {}
        return {"image": image_record(image, "thumbnail")}

    def _final(self, rec: Recorder, state: _ImageState, status: str, findings: list[Finding],
               measurements: tuple, actions: list[str], reason: str) -> ImageResult:
        from .audit import image_record

        image = None if status == "blocked" else state.image
        digest = sha256_image(state.image) if state.image is not None else None
        retained = image_record(state.image, self.policy.audit.get("image_retention", "hash")) \
            if state.image is not None else {}
        rec.event("image.final", index=state.index, status=status, reason=reason, actions=actions,
                  seed=state.seed, regenerations=state.rounds, **({"source": state.source} if state.source else {}),
                  image=retained)
        return ImageResult(index=state.index, status=status, image=image, prompt=state.prompt, seed=state.seed,
                           findings=tuple(findings), measurements=measurements, assigned=state.assigned,
                           actions=tuple(actions), sha256=None if status == "blocked" else digest,
                           reason=reason, rounds=state.rounds, source=state.source)

    # -- whole requests ---------------------------------------------------------------
    def generate(self, rec: Recorder, prompt: str, n: int, seed: int | None,
                 options: Mapping[str, Any]) -> GenerationResult:
        base_seed = seed if seed is not None else random.SystemRandom().randrange(2**31)
        text = self.run_text(rec, prompt, n, base_seed)
        if text.refused:
            return GenerationResult(rec.request_id, text, (), failures=text.failures)
        failures = list(text.failures)
        states = [_ImageState(i, None, p.prompt, base_seed + i, p.assigned) for i, p in enumerate(text.plan)]
        self._generate(rec, states, text.negative_prompt, options, 0)
        images = self.run_images(rec, states, text=text, negative=text.negative_prompt, options=options,
                                 can_regenerate=True, failures=failures)
        backend, info = self._backend()
        summary = {"planned": text.planned_bias, "measured": measured_bias(self.policy, images)}
        return GenerationResult(rec.request_id, text, tuple(images), getattr(backend, "model_id", info.id),
                                summary, tuple(failures))

    def moderate(self, rec: Recorder, images: Sequence[Any], sources: Sequence[str | None],
                 prompt: str | None) -> GenerationResult:
        text = None
        failures: list[PluginFailure] = []
        if prompt is not None:
            text = self.run_text(rec, prompt, len(images), 0, plan=False)
            failures.extend(text.failures)
        states = [_ImageState(i, img.convert("RGB"), prompt, None, {}, source=src)
                  for i, (img, src) in enumerate(zip(images, sources))]
        for state in states:
            rec.event("image.received", index=state.index, source=state.source, sha256=sha256_image(state.image),
                      **self._before(state.image))
        results = self.run_images(rec, states, text=text, negative=None, options={}, can_regenerate=False,
                                  failures=failures)
        summary = {"measured": measured_bias(self.policy, results)}
        return GenerationResult(rec.request_id, text, tuple(results), None, summary, tuple(failures))

    def close(self) -> None:
        """Let go of the built components (and the models they hold)."""
        self._built.clear()


def _measurement(m: Measurement, info: ComponentInfo) -> dict[str, Any]:
    return {"plugin": info.id, "plugin_version": info.version, "attribute": m.attribute, "value": m.value,
            "score": round(float(m.score), 6), "region": m.region.as_dict() if m.region else None}


def _redact_cluster(rec: Recorder, cluster: Mapping[str, Any]) -> dict[str, Any]:
    out = _plain(cluster)
    if "text" in out and isinstance(out["text"], str):
        out["text"] = rec.prompt(out["text"])
    return out


def _plain(value: Any) -> Any:
    from .results import _plain as plain

    return plain(value)


def bias_report(policy: Any, assigned: Sequence[Mapping[str, Mapping[str, str]]]) -> dict[str, Any]:
    """Imbalance of the values dealt to single-person images, per attribute the plan diversified."""
    rows = [next(iter(a.values())) for a in assigned if len(a) == 1]
    # An attribute the prompt fixed was not planned: leave it out rather than call it unmeasured.
    return {k: v for k, v in bias.report(rows, _attributes(policy)).items() if v != bias.NOT_MEASURED}


def measured_bias(policy: Any, images: Sequence[ImageResult]) -> dict[str, Any]:
    """Imbalance of the perceived attributes over the delivered single-face images."""
    rows = []
    for img in images:
        if img.blocked:
            continue
        values: dict[str, str] = {}
        regions = {m.region for m in img.measurements if m.region is not None}
        if len(regions) > 1:
            continue
        for m in img.measurements:
            values.setdefault(m.attribute, m.value)
        if values:
            rows.append(values)
    return bias.report(rows, _attributes(policy))


def _attributes(policy: Any) -> list[Mapping[str, Any]]:
    return (policy.bias or {}).get("attributes", [])
