"""What ``names.py`` and ``people.py`` share: the policy's planner, and labeled rows of
a CSV whose second column lists substrings of the prompt (``|``-separated)."""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Any


def build_planner(policy_path: str) -> Any:
    """The policy's ``pipeline.planner`` (``people`` when it names none), built through the registry."""
    from elens.plugins import Registry, make_manager
    from elens.policy import load_policy

    policy = load_policy(policy_path)
    registry = Registry(make_manager())
    registry.check(policy)
    entry = policy.pipeline.get("planner") or {"plugin": "people"}
    planner, _info = registry.build("planner", ("pipeline", "planner"), dict(entry), policy)
    return planner


def labeled_rows(data: Path, column: str) -> list[tuple[dict[str, str], list[tuple[int, int]]]]:
    """Each row and the spans of its ``column`` substrings in the prompt. A substring
    that is not in its prompt exits with ``FILE:LINE: COLUMN: ...``."""
    with data.open(newline="", encoding="utf-8") as f:
        reader = csv.DictReader(f)
        out = []
        for row in reader:
            spans, at = [], 0
            for item in filter(None, (row.get(column) or "").split("|")):
                start = row["prompt"].find(item, at)
                start = start if start >= 0 else row["prompt"].find(item)  # not necessarily in order
                if start < 0:
                    raise SystemExit(f"{data}:{reader.line_num}: {column}: {item!r} is not in the prompt")
                spans.append((start, start + len(item)))
                at = start + len(item)
            out.append((row, spans))
    return out


def parse_args(description: str, data: Path, show: str, argv: list[str] | None) -> Any:
    """The two scripts' options: --policy, --data, --json and --show (``show``: its help)."""
    import argparse

    root = Path(__file__).resolve().parent.parent
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--policy", default=str(root / "elens" / "policies" / "default.yaml"))
    parser.add_argument("--data", type=Path, default=data)
    parser.add_argument("--json", action="store_true", help="print the whole result as JSON")
    parser.add_argument("--show", action="store_true", help=show)
    return parser.parse_args(argv)
