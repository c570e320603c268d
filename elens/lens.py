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
    ``audit_path`` overrides the policy's ``audit.path``. ``plugins`` registers extra
    plugin objects beside the installed ones (useful in tests); ``registry`` replaces
    plugin discovery altogether.
    """

    def __init__(
        self,
        policy: Policy | str | os.PathLike,
        *,
        audit_path: str | os.PathLike | None = None,
        plugins: Iterable[Any] = (),
        registry: Registry | None = None,
    ):
        self.policy = policy if isinstance(policy, Policy) else load_policy(policy)
        self.registry = registry or Registry(make_manager(plugins))
        self.registry.check(self.policy)
        self.audit = AuditLog(audit_path or self.policy.audit.get("path", "elens-audit.jsonl"))
        self._pipeline = Pipeline(self.policy, self.registry)
        self._sinks: list[Any] | None = None

    # -- public API ----------------------------------------------------------------
    def check_prompt(self, prompt: str, n: int = 1, seed: int = 0) -> PromptResult:
        """Run the text half: checks, revision rounds and the per-image plan for ``n`` images."""
        rec = self._start("check", prompt=prompt, n=n, seed=seed)
        return self._finish(rec, lambda: self._pipeline.run_text(rec, prompt, n, seed))

    def generate(self, prompt: str, n: int = 1, seed: int | None = None, **options: Any) -> GenerationResult:
        """Check and plan ``prompt``, generate ``n`` images, inspect and rectify each one.

        ``options`` go to the backend (steps, guidance, width, height). Blocked
        images are reported with ``status == "blocked"`` and no image.
        """
        rec = self._start("generate", prompt=prompt, n=n, seed=seed)
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
            self._check_prompt_input(prompt)
        rec = self._start("moderate", prompt=prompt, n=len(loaded), seed=None, validate=False)
        return self._finish(rec, lambda: self._pipeline.moderate(rec, loaded, sources, prompt))

    def close(self) -> None:
        self._pipeline.close()

    def __enter__(self) -> "Lens":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    # -- requests ------------------------------------------------------------------
    def _check_prompt_input(self, prompt: Any) -> None:
        if not isinstance(prompt, str):
            raise InputError(f"the prompt must be text, got {type(prompt).__name__}")
        if not prompt.strip():
            raise InputError("the prompt is empty")
        limit = int(self.policy.limits.get("max_prompt_chars", 2000))
        if len(prompt) > limit:
            raise InputError(f"the prompt has {len(prompt)} characters; limits.max_prompt_chars is {limit}")
        bad = sorted({f"U+{ord(c):04X}" for c in prompt if c in _CONTROL})
        if bad:
            raise InputError(f"the prompt contains control characters ({', '.join(bad[:5])})")

    def _start(self, kind: str, *, prompt: str | None, n: int, seed: int | None, validate: bool = True) -> Recorder:
        if validate:
            self._check_prompt_input(prompt)
        if not isinstance(n, int) or n < 1:
            raise InputError(f"the number of images must be a positive integer, got {n!r}")
        max_images = int(self.policy.limits.get("max_images", 16))
        if n > max_images:
            raise InputError(f"{n} images requested; limits.max_images is {max_images}")
        rec = Recorder(self.policy, kind)
        rec.event("request.received", kind=kind, prompt=rec.prompt(prompt), n=n, seed=seed)
        return rec

    def _finish(self, rec: Recorder, run: Any) -> Any:
        """Run the request, then write its records; no result leaves without its record."""
        import time

        error: BaseException | None = None
        result = None
        try:
            result = run()
        except BaseException as exc:  # record the failure, then let it go on
            error = exc
        status = result.status if result is not None else "error"
        fields: dict[str, Any] = {"status": status, "duration_ms": round((time.perf_counter() - rec.started) * 1000, 3)}
        if error is not None:
            fields["error"] = f"{type(error).__name__}: {error}"
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
        written = self.audit.append(rec.records)
        self._send_to_sinks(written)
        if error is not None:
            raise error
        return result

    def _send_to_sinks(self, records: Sequence[Mapping[str, Any]]) -> None:
        if self._sinks is None:
            self._sinks = []
            for kind, path, entry in policy_entries(self.policy):
                if kind == "audit_sink":
                    self._sinks.append(self.registry.build(kind, path, dict(entry), self.policy)[0])
        for sink in self._sinks:
            for record in records:
                try:
                    sink.write(record)
                except Exception as exc:  # the log file is the record of truth; a sink may not stop it
                    log.warning("audit_sink_error", sink=type(sink).__name__, error=str(exc))
