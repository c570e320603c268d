"""Pytest fixtures for people who write elens plugins (loaded through ``pytest11``).

Test a text check in a few lines::

    def test_my_check(elens_lens):
        lens = elens_lens('''
            categories:
              - id: spam
                thresholds: {text: 0.5}
                actions: {text: block}
            pipeline:
              text_checks: [{plugin: my-check}]
        ''', plugins=[my_plugin_module])
        assert lens.check_prompt("buy now").refused

The inline policy gets ``elens: 1``, metadata and the ``tiny`` backend (no weights)
filled in when it leaves them out, and the audit log goes to a temporary folder.
"""

from __future__ import annotations

import textwrap
from pathlib import Path
from typing import Any, Callable, Iterable

import pytest
import yaml

MINIMAL = {
    "elens": 1,
    "metadata": {"name": "test-policy", "version": "0"},
}


def _inline(policy: str | dict, audit_dir: Path) -> Any:
    from .policy import Policy

    data = yaml.safe_load(textwrap.dedent(policy)) if isinstance(policy, str) else dict(policy)
    data = {**MINIMAL, **(data or {})}
    pipeline = dict(data.get("pipeline") or {})
    pipeline.setdefault("backend", {"plugin": "tiny"})
    data["pipeline"] = pipeline
    audit = dict(data.get("audit") or {})
    audit.setdefault("path", str(audit_dir / "audit.jsonl"))
    data["audit"] = audit
    return Policy.from_dict(data, source=str(audit_dir / "inline-policy.yaml"))


@pytest.fixture
def elens_policy(tmp_path: Path) -> Callable[[str | dict], Any]:
    """Build a :class:`Policy` from inline YAML or a dict (missing basics filled in)."""
    return lambda policy: _inline(policy, tmp_path)


@pytest.fixture
def elens_lens(tmp_path: Path) -> Callable[..., Any]:
    """Build a :class:`elens.Lens` from inline YAML, a dict or a Policy, with extra plugins registered."""
    from .lens import Lens
    from .policy import Policy

    lenses: list[Lens] = []

    def make(policy: str | dict | Policy, plugins: Iterable[Any] = ()) -> Lens:
        loaded = policy if isinstance(policy, Policy) else _inline(policy, tmp_path)
        lens = Lens(loaded, plugins=plugins, audit_path=loaded.audit.get("path") or tmp_path / "audit.jsonl")
        lenses.append(lens)
        return lens

    yield make
    for lens in lenses:
        lens.close()


@pytest.fixture(scope="session")
def elens_sample_images() -> dict[str, Any]:
    """Sample RGB images: ``flat`` and ``noise`` always; ``astronaut`` (a real face) with scikit-image."""
    import numpy as np
    from PIL import Image

    images: dict[str, Any] = {
        "flat": Image.new("RGB", (128, 128), (120, 140, 160)),
        "noise": Image.fromarray(np.random.default_rng(0).integers(0, 256, (128, 128, 3), dtype=np.uint8)),
    }
    try:
        from skimage import data

        images["astronaut"] = Image.fromarray(data.astronaut())
        images["coffee"] = Image.fromarray(data.coffee())
    except ImportError:  # scikit-image is optional for plugin authors
        pass
    return images
