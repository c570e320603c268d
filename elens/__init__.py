"""elens: a value policy around any open-source text-to-image model.

The public surface: :class:`Lens` (the Python API), :func:`load_policy`,
``hookimpl`` for plugin authors, and the records in :mod:`elens.types`.
"""

from __future__ import annotations

import pluggy

__version__ = "0.1.0"

hookimpl = pluggy.HookimplMarker("elens")

from .errors import AuditError, ElensError, InputError, OptionsError, PolicyError  # noqa: E402
from .types import (  # noqa: E402
    Finding,
    ImageContext,
    Measurement,
    Plan,
    PlannedPrompt,
    Region,
    Revision,
    Signal,
)


def __getattr__(name: str):
    # Lens and the policy loader pull in jsonschema and the pipeline; import them on use
    # so that a plugin module importing ``hookimpl`` stays cheap.
    if name == "Lens":
        from .lens import Lens

        return Lens
    if name in ("load_policy", "Policy"):
        from . import policy

        return getattr(policy, name)
    raise AttributeError(name)


__all__ = [
    "AuditError",
    "ElensError",
    "Finding",
    "ImageContext",
    "InputError",
    "Lens",
    "Measurement",
    "OptionsError",
    "Plan",
    "PlannedPrompt",
    "Policy",
    "PolicyError",
    "Region",
    "Revision",
    "Signal",
    "hookimpl",
    "load_policy",
    "__version__",
]
