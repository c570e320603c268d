"""Meta-tests: every hook is documented and exercised; the README's commands are the real ones."""

from __future__ import annotations

import inspect
import re
from pathlib import Path

from elens import hookspecs

from . import testplugin

ROOT = Path(__file__).resolve().parents[2]
HOOKS = sorted(name for name, fn in inspect.getmembers(hookspecs, inspect.isfunction) if name.startswith("register_"))


def test_every_hook_has_a_docstring_and_a_doc_section():
    doc = (ROOT / "docs" / "hooks.md").read_text()
    for name in HOOKS:
        assert getattr(hookspecs, name).__doc__, name
        assert f"## {name}" in doc, f"docs/hooks.md lacks a section for {name}"


def test_every_hook_is_exercised_by_the_test_plugin():
    missing = [name for name in HOOKS if not hasattr(testplugin, name)]
    assert missing == []


def test_ci_runs_the_readme_test_command():
    readme = (ROOT / "README.md").read_text()
    blocks = re.findall(r"```(?:sh|bash|console)\n(.*?)```", readme, re.S)
    setup = [b for b in blocks if "pip install" in b]
    assert len(setup) >= 2
    test_command = next(b for b in setup if "pytest" in b).strip()
    ci = (ROOT / ".ci" / "run").read_text()
    for line in test_command.splitlines():
        assert line.strip() in ci, f".ci/run does not run the README's test command line: {line}"
