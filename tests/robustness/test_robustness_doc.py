"""docs/robustness.md stays true: every test it names exists, and every robustness test is in it."""

from __future__ import annotations

import ast
import re
from pathlib import Path

TESTS = Path(__file__).resolve().parents[1]
DOC = (TESTS.parent / "docs" / "robustness.md").read_text(encoding="utf-8")
SHORT = {"bad_input": "robustness/test_bad_input.py", "faults": "robustness/test_faults.py",
         "concurrency": "robustness/test_concurrency.py"}


def functions_in(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    return {node.name for node in tree.body if isinstance(node, ast.FunctionDef) and node.name.startswith("test_")}


def references() -> list[tuple[str, str]]:
    return re.findall(r"`([\w/.]+)::(test_\w+)`", DOC)


def test_every_test_the_doc_names_exists():
    refs = references()
    assert len(refs) > 40
    for file, name in refs:
        path = TESTS / SHORT.get(file, file)
        assert path.is_file(), f"docs/robustness.md names {file}, which does not exist"
        assert name in functions_in(path), f"docs/robustness.md names {file}::{name}, which does not exist"


def test_every_robustness_test_is_in_the_doc():
    named = {(SHORT.get(f, f), n) for f, n in references()}
    for short, file in SHORT.items():
        for name in functions_in(TESTS / file):
            assert (file, name) in named, f"{file}::{name} is not in docs/robustness.md"


def test_every_table_row_names_a_test():
    rows = [line for line in DOC.splitlines() if line.startswith("| ") and not line.startswith("| ---")]
    body = [r for r in rows if not re.match(r"\| (Input|Fault|Load|Technique) \|", r)]
    for row in body:
        assert "::test_" in row or "evasion.md" in row, f"a row of docs/robustness.md names no test: {row[:80]}"
