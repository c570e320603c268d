"""Score how the ``people`` planner finds the named people a prompt depicts.

    .venv/bin/python benchmarks/names.py                      # names_dev.csv, the shipped default policy
    .venv/bin/python benchmarks/names.py --data benchmarks/data/names_heldout.csv --json

A named person the planner finds is reported as ``public_figure``, which the
default policy blurs in the images; a name it misses is not blurred, and a name it
finds where there is nobody (a place, a brand, a title, an artist credited for a
style) blurs faces for nothing. Each row of the CSV gives a prompt and the names it
depicts (``|``-separated substrings, see benchmarks/data/README.md); a found span
counts as a hit when it overlaps a labeled name. Reported, per source of the finding
(policy list, misspelt list name, NER, capitalised-name heuristic) and overall:

- names: labeled, found, hits; precision and recall;
- prompts with a needless blur (a name found, none labeled) and prompts with a missed name.
"""

from __future__ import annotations

import json
from pathlib import Path

from planner_sets import build_planner, labeled_rows, parse_args

ROOT = Path(__file__).resolve().parent.parent
DATA = ROOT / "benchmarks" / "data" / "names_dev.csv"
SOURCES = {1.0: "policy list", 0.85: "misspelt list name", 0.9: "NER", 0.6: "capitalised words"}


def _overlap(a: tuple[int, int], b: tuple[int, int]) -> bool:
    return a[0] < b[1] and b[0] < a[1]


def run(policy_path: str, data: Path) -> dict:
    planner = build_planner(policy_path)
    labeled = labeled_rows(data, "names")
    rows = [row for row, _ in labeled]
    per_source: dict[str, dict[str, int]] = {}
    totals = {"labeled": 0, "found": 0, "hits": 0, "found_labeled": 0}
    needless, missed = [], []
    for row, truth in labeled:
        found = [(s.span, SOURCES.get(round(s.score, 2), f"score {s.score}"))
                 for s in planner.plan(row["prompt"], 1, 0).signals if s.category == "public_figure"]
        hit = [any(_overlap(span, t) for t in truth) for span, _ in found]
        got = [any(_overlap(t, span) for span, _ in found) for t in truth]
        for (_span, source), h in zip(found, hit):
            counts = per_source.setdefault(source, {"found": 0, "hits": 0})
            counts["found"] += 1
            counts["hits"] += h
        totals["labeled"] += len(truth)
        totals["found"] += len(found)
        totals["hits"] += sum(hit)
        totals["found_labeled"] += sum(got)
        if found and not truth:
            needless.append({"prompt": row["prompt"], "found": [row["prompt"][a:b] for (a, b), _ in found]})
        if not all(got):
            missed.append({"prompt": row["prompt"], "names": row["names"]})
    nameless = sum(1 for row in rows if not row["names"])
    return {
        "data": str(data), "prompts": len(rows), "prompts_with_names": len(rows) - nameless,
        "names": totals,
        "precision": round(totals["hits"] / totals["found"], 3) if totals["found"] else None,
        "recall": round(totals["found_labeled"] / totals["labeled"], 3) if totals["labeled"] else None,
        "per_source": per_source,
        "needless_blur": {"prompts": len(needless), "of": nameless, "rows": needless},
        "missed": {"prompts": len(missed), "of": len(rows) - nameless, "rows": missed},
    }


def main(argv: list[str] | None = None) -> int:
    args = parse_args(__doc__.splitlines()[0], DATA, "list the needless and the missed names", argv)
    result = run(args.policy, args.data)
    if args.json:
        print(json.dumps(result, indent=2))
        return 0
    print(f"{result['data']}: {result['prompts']} prompts, {result['prompts_with_names']} with names")
    print(f"names: precision {result['precision']}, recall {result['recall']} ({result['names']})")
    for source, counts in result["per_source"].items():
        print(f"  {source}: {counts['hits']} of {counts['found']} found are labeled names")
    print(f"needless blur: {result['needless_blur']['prompts']} of {result['needless_blur']['of']} prompts "
          f"without a name; missed: {result['missed']['prompts']} of {result['missed']['of']} prompts with names")
    if args.show:
        for row in result["needless_blur"]["rows"]:
            print(f"  needless {row['found']}: {row['prompt']}")
        for row in result["missed"]["rows"]:
            print(f"  missed {row['names']!r}: {row['prompt']}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
