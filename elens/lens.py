"""``elens.Lens``: the Python API. One policy, its components built once, every request audited."""

from __future__ import annotations

import os
from typing import Any, Iterable, Mapping, Sequence

import structlog

from .audit import AuditLog
from .errors import InputError
from .images import load_image
from .pipeline import Pipeline, Recorder
from .plugins import Registry, make_manager, policy_entries
from .policy import Policy, load_policy
from .results import GenerationResult, PromptResult

log = structlog.get_logger("elens")

_CONTROL = {chr(c) for c in range(32) if chr(c) not in "\t\n\r"} | {"\x7f"}


class Lens:
    """A value policy around a text-to-image pipeline.

    ``Lens(policy)`` takes a :class:`elens.policy.Policy` or a path to a policy file.
    ``audit_path`` overrides the policy's ``audit.path``. ``audit`` replaces the log
    altogether with any object that has ``append(records) -> records`` (the batch
    engines hand the records of a worker back to the one process that writes the
    log); the audit sinks then get what it returns. ``plugins`` registers extra
    plugin objects beside the installed ones (useful in tests); ``registry``
    replaces plugin discovery altogether.
    """

    def __init__(
        self,
        policy: Policy | str | os.PathLike,
        *,
        audit_path: str | os.PathLike | None = None,
        audit: Any = None,
        plugins: Iterable[Any] = (),
        registry: Registry | None = None,
    ):
        self.policy = policy if isinstance(policy, Policy) else load_policy(policy)
        self.registry = registry or Registry(make_manager(plugins))
        self.registry.check(self.policy)
        self.audit = audit or AuditLog(audit_path or self.policy.audit.get("path", "elens-audit.jsonl"),
                                       rotate_bytes=self.policy.audit.get("rotate_bytes"))
        self._pipeline = Pipeline(self.policy, self.registry)
        self._sinks = Sinks(self.policy, self.registry)

    # -- public API ----------------------------------------------------------------
    def check_prompt(self, prompt: str, n: int = 1, seed: int = 0, *,
                     tags: Mapping[str, Any] | None = None) -> PromptResult:
        """Run the text half: checks, revision rounds and the per-image plan for ``n`` images.

        ``tags`` (JSON values) are written into the request's ``request.received``
        record, e.g. which batch item or which user the request came from.
        """
        rec = self._start("check", prompt=prompt, n=n, seed=seed, tags=tags)
        return self._finish(rec, lambda: self._pipeline.run_text(rec, prompt, n, seed))

    def check_prompts(self, prompts: Sequence[str], n: int = 1, seed: int = 0, *,
                      tags: Sequence[Mapping[str, Any] | None] | None = None,
                      return_exceptions: bool = False) -> list[PromptResult]:
        """:meth:`check_prompt` on many prompts, one request each, with each round of
        text checks run once for the whole batch (much faster for model-based checks).

        Every prompt is validated first; an invalid one raises :class:`InputError`
        naming its index and nothing runs. All the batch's records go to the log in
        one append, after every request has been decided; ``request.completed``
        then says ``batch_size``, as its ``duration_ms`` covers the whole batch. A
        request that fails raises its error after the records are written, or, with
        ``return_exceptions``, takes its place in the list (as in ``asyncio.gather``).
        """
        prompts = list(prompts)
        tags = list(tags) if tags is not None else [None] * len(prompts)
        if len(tags) != len(prompts):
            raise InputError(f"{len(prompts)} prompts but {len(tags)} tags")
        for i, prompt in enumerate(prompts):
            try:
                self.validate_prompt(prompt)
            except InputError as exc:
                raise InputError(f"prompt {i}: {exc}") from None
        recs = [self._start("check", prompt=p, n=n, seed=seed, tags=t, validate=False)  # validated above
                for p, t in zip(prompts, tags)]
        for rec in recs:
            rec.batch_size = len(recs)
        try:
            results = self._pipeline.run_texts(recs, prompts, n, seed)
        except BaseException as exc:  # interrupted: still record every request
            results = [exc] * len(recs)
        for rec, result in zip(recs, results):
            failed = isinstance(result, BaseException)
            self._conclude(rec, None if failed else result, result if failed else None)
        self._write([r for rec in recs for r in rec.records])
        for result in results:
            if isinstance(result, BaseException) and not (return_exceptions and isinstance(result, Exception)):
                raise result
        return results  # type: ignore[return-value]

    def generate(self, prompt: str, n: int = 1, seed: int | None = None, *,
                 tags: Mapping[str, Any] | None = None, **options: Any) -> GenerationResult:
        """Check and plan ``prompt``, generate ``n`` images, inspect and rectify each one.

        ``options`` go to the backend (steps, guidance, width, height). Blocked
        images are reported with ``status == "blocked"`` and no image. ``tags`` as
        in :meth:`check_prompt`.
        """
        check_size(self.policy, options)
        rec = self._start("generate", prompt=prompt, n=n, seed=seed, tags=tags)
        return self._finish(rec, lambda: self._pipeline.generate(rec, prompt, n, seed, options))

    def moderate(self, images: Sequence[Any], prompt: str | None = None) -> GenerationResult:
        """Run the image half on existing images (PIL images or file paths)."""
        if not images:
            raise InputError("moderate needs at least one image")
        limit = int(self.policy.limits.get("max_image_pixels", 50_000_000))
        loaded, sources = [], []
        for item in images:
            if isinstance(item, (str, os.PathLike)):
                loaded.append(load_image(item, limit))
                sources.append(str(item))
            else:
                if item.width * item.height > limit:
                    raise InputError(f"image {len(loaded)}: {item.width}x{item.height} exceeds limits.max_image_pixels")
                loaded.append(item)
                sources.append(None)
        if prompt is not None:
            self.validate_prompt(prompt)
        rec = self._start("moderate", prompt=prompt, n=len(loaded), seed=None, validate=False)
        return self._finish(rec, lambda: self._pipeline.moderate(rec, loaded, sources, prompt))

    def close(self) -> None:
        self._pipeline.close()

    def __enter__(self) -> "Lens":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    # -- requests ------------------------------------------------------------------
    def validate_prompt(self, prompt: Any) -> None:
        """Raise :class:`InputError` (one line) if the policy's limits refuse ``prompt`` as input."""
        if not isinstance(prompt, str):
            raise InputError(f"the prompt must be text, got {type(prompt).__name__}")
        if not prompt.strip():
            raise InputError("the prompt is empty")
        try:
            prompt.encode("utf-8")
        except UnicodeEncodeError as exc:  # bytes that were not UTF-8, smuggled in as lone surrogates
            raise InputError(f"the prompt is not valid Unicode text (U+{ord(prompt[exc.start]):04X} at character "
                             f"{exc.start}: undecodable bytes in the input?)") from None
        limit = int(self.policy.limits.get("max_prompt_chars", 2000))
        if len(prompt) > limit:
            raise InputError(f"the prompt has {len(prompt)} characters; limits.max_prompt_chars is {limit}")
        bad = sorted({f"U+{ord(c):04X}" for c in prompt if c in _CONTROL})
        if bad:
            raise InputError(f"the prompt contains control characters ({', '.join(bad[:5])})")

    def _start(self, kind: str, *, prompt: str | None, n: int, seed: int | None, validate: bool = True,
               tags: Mapping[str, Any] | None = None) -> Recorder:
        if validate:
            self.validate_prompt(prompt)
        if not isinstance(n, int) or n < 1:
            raise InputError(f"the number of images must be a positive integer, got {n!r}")
        max_images = int(self.policy.limits.get("max_images", 16))
        if n > max_images:
            raise InputError(f"{n} images requested; limits.max_images is {max_images}")
        rec = Recorder(self.policy, kind)
        extra = {"tags": dict(tags)} if tags else {}
        rec.event("request.received", kind=kind, prompt=rec.prompt(prompt), n=n, seed=seed, **extra)
        return rec

    def _finish(self, rec: Recorder, run: Any) -> Any:
        """Run the request, then write its records; no result leaves without its record."""
        error: BaseException | None = None
        result = None
        try:
            result = run()
        except BaseException as exc:  # record the failure, then let it go on
            error = exc
        self._conclude(rec, result, error)
        self._write(rec.records)
        if error is not None:
            raise error
        return result

    def _conclude(self, rec: Recorder, result: Any, error: BaseException | None) -> None:
        import time

        status = result.status if result is not None else "error"
        fields: dict[str, Any] = {"status": status, "duration_ms": round((time.perf_counter() - rec.started) * 1000, 3)}
        if error is not None:
            fields["error"] = f"{type(error).__name__}: {error}"
        if getattr(rec, "batch_size", 1) > 1:
            fields["batch_size"] = rec.batch_size
        if isinstance(result, GenerationResult):
            counts: dict[str, int] = {}
            for img in result.images:
                counts[img.status] = counts.get(img.status, 0) + 1
            fields["counts"] = counts
            fields["bias"] = dict(result.bias)
            fields["model_id"] = result.model_id
        elif isinstance(result, PromptResult):
            fields["bias"] = {"planned": dict(result.planned_bias)}
            fields["final_prompt"] = rec.prompt(result.final_prompt)
        rec.event("request.completed", **fields)

    def _write(self, records: Sequence[Mapping[str, Any]]) -> None:
        self._sinks.send(self.audit.append(records))


def check_size(policy: Policy, options: Mapping[str, Any]) -> None:
    """Refuse a generation ``width``/``height`` that is not a positive integer or exceeds
    ``limits.max_image_pixels``, before any backend runs."""
    width, height = options.get("width"), options.get("height")
    for name, value in (("width", width), ("height", height)):
        if value is not None and (not isinstance(value, int) or isinstance(value, bool) or value < 1):
            raise InputError(f"{name} must be a positive integer, got {value!r}")
    limit = int(policy.limits.get("max_image_pixels", 50_000_000))
    if width and height and width * height > limit:
        raise InputError(f"{width}x{height} images exceed limits.max_image_pixels ({limit})")


class Sinks:
    """The policy's audit sinks, built on first use. A sink that fails is logged and skipped:
    the log file is the record of truth."""

    def __init__(self, policy: Policy, registry: Registry):
        self.policy = policy
        self.registry = registry
        self._sinks: list[Any] | None = None

    def send(self, records: Sequence[Mapping[str, Any]]) -> None:
        if not records:
            return
        if self._sinks is None:
            self._sinks = [self.registry.build(kind, path, dict(entry), self.policy)[0]
                           for kind, path, entry in policy_entries(self.policy) if kind == "audit_sink"]
        for sink in self._sinks:
            for record in records:
                try:
                    sink.write(record)
                except Exception as exc:
                    log.warning("audit_sink_error", sink=type(sink).__name__, error=str(exc))
