"""The interfaces of the components plugins register.

Each component is built by a factory the plugin registers under an id:
``factory(options: dict, policy: elens.policy.Policy) -> component``. ``options`` is the
mapping the policy gives for that plugin entry (already validated against the
component's ``options_schema`` when it declares one). All methods are synchronous.
Components are built once per :class:`elens.Lens` and reused for every request.
"""

from __future__ import annotations

from typing import Any, Callable, Mapping, Protocol, Sequence, runtime_checkable

from .types import Finding, ImageContext, Measurement, Plan, Revision, Signal

try:  # Pillow is a host dependency, but keep type-only use cheap.
    from PIL.Image import Image
except ImportError:  # pragma: no cover
    Image = Any  # type: ignore[misc,assignment]


@runtime_checkable
class TextCheck(Protocol):
    """Scores prompts for policy categories.

    ``check`` gets a batch of prompts and returns, for each prompt, the signals it
    found (any number, possibly none). Spans index the prompt it was given.
    """

    def check(self, prompts: Sequence[str]) -> list[list[Signal]]: ...


@runtime_checkable
class PromptReviser(Protocol):
    """Rewrites a prompt so that the triggered findings no longer apply.

    Returns a :class:`Revision`; the host checks the revised prompt again.
    ``negative_prompt`` returns the policy's negative prompt for the backend, or None.
    """

    def revise(self, prompt: str, findings: Sequence[Finding]) -> Revision: ...

    def negative_prompt(self) -> str | None: ...


@runtime_checkable
class PromptPlanner(Protocol):
    """Turns one prompt into N per-image prompts (bias diversification)."""

    def plan(self, prompt: str, n: int, seed: int) -> Plan: ...


@runtime_checkable
class Backend(Protocol):
    """Generates images. ``model_id`` names what was loaded, for the audit log.

    ``generate`` returns one RGB image per prompt; ``seeds[i]`` seeds image i alone,
    so an image can be reproduced from its record.
    """

    model_id: str

    def generate(
        self,
        prompts: Sequence[str],
        seeds: Sequence[int],
        negative_prompt: str | None = None,
        options: Mapping[str, Any] | None = None,
    ) -> list[Image]: ...


@runtime_checkable
class ImageCheck(Protocol):
    """Inspects images. Returns, per image, Signals (toxicity) and Measurements (bias)."""

    def check(
        self, images: Sequence[Image], contexts: Sequence[ImageContext]
    ) -> list[list[Signal | Measurement]]: ...


@runtime_checkable
class ImageEditor(Protocol):
    """Edits an image for one triggered finding (``blur`` action) and returns the new image.

    A finding without a region may be handled by masking (e.g. text-prompted
    segmentation) or by editing the whole image.
    """

    def edit(self, image: Image, finding: Finding) -> Image: ...


@runtime_checkable
class AuditSink(Protocol):
    """Receives each audit record after the host has durably written it to the log."""

    def write(self, record: Mapping[str, Any]) -> None: ...


Factory = Callable[[dict, Any], Any]

#: component kind -> (hook name, protocol)
KINDS: dict[str, tuple[str, type]] = {
    "text_check": ("register_text_checks", TextCheck),
    "reviser": ("register_prompt_revisers", PromptReviser),
    "planner": ("register_prompt_planners", PromptPlanner),
    "backend": ("register_backends", Backend),
    "image_check": ("register_image_checks", ImageCheck),
    "editor": ("register_image_editors", ImageEditor),
    "audit_sink": ("register_audit_sinks", AuditSink),
}
