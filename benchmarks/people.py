"""Score how the ``people`` planner finds the people it diversifies.

    .venv/bin/python benchmarks/people.py                     # people_dev.csv, the shipped default policy
    .venv/bin/python benchmarks/people.py --data benchmarks/data/people_heldout.csv --show

The planner writes gender, race and age into the prompt for each person it finds
(a *cluster*). One it finds where there is nobody ("a guide dog", "a cat chef",
"Wonder Woman") rewrites the prompt into nonsense or changes a character; one it
misses is not diversified. Each row of the CSV gives a prompt and the head nouns of
the people it depicts (``|``-separated substrings, see benchmarks/data/README.md); a
cluster counts as a hit when its noun ends where a labeled head noun ends. Reported: people
labeled, clusters found, hits; precision and recall; prompts rewritten where nobody
is labeled, and prompts with a missed person.
"""

from __future__ import annotations

import json
from pathlib import Path

from planner_sets import build_planner, labeled_rows, parse_args

ROOT = Path(__file__).resolve().parent.parent
DATA = ROOT / "benchmarks" / "data" / "people_dev.csv"


def run(policy_path: str, data: Path) -> dict:
    planner = build_planner(policy_path)
    labeled = labeled_rows(data, "people")
    rows = [row for row, _ in labeled]
    labeled_n = found_n = hits = found_labeled = 0
    wrong, missed = [], []
    for row, truth in labeled:
        clusters = planner.plan(row["prompt"], 1, 0).clusters
        # a cluster's span runs from its first modifier to the end of its noun
        ends = [c["span"][1] for c in clusters]
        hit = [any(e == t[1] for t in truth) for e in ends]
        got = [any(e == t[1] for e in ends) for t in truth]
        labeled_n += len(truth)
        found_n += len(ends)
        hits += sum(hit)
        found_labeled += sum(got)
        if not all(hit):
            wrong.append({"prompt": row["prompt"], "found": [c["text"] for c, h in zip(clusters, hit) if not h]})
        if not all(got):
            missed.append({"prompt": row["prompt"], "people": row["people"]})
    nobody = sum(1 for row in rows if not row["people"])
    return {
        "data": str(data), "prompts": len(rows), "prompts_with_people": len(rows) - nobody,
        "people": {"labeled": labeled_n, "found": found_n, "hits": hits, "found_labeled": found_labeled},
        "precision": round(hits / found_n, 3) if found_n else None,
        "recall": round(found_labeled / labeled_n, 3) if labeled_n else None,
        "wrong": {"prompts": len(wrong), "rows": wrong},
        "missed": {"prompts": len(missed), "rows": missed},
    }


def main(argv: list[str] | None = None) -> int:
    args = parse_args(__doc__.splitlines()[0], DATA, "list the wrong and the missed people", argv)
    result = run(args.policy, args.data)
    if args.json:
        print(json.dumps(result, indent=2))
        return 0
    print(f"{result['data']}: {result['prompts']} prompts, {result['prompts_with_people']} with people")
    print(f"people: precision {result['precision']}, recall {result['recall']} ({result['people']})")
    print(f"prompts with a cluster that is no labeled person: {result['wrong']['prompts']}; "
          f"with a missed person: {result['missed']['prompts']}")
    if args.show:
        for row in result["wrong"]["rows"]:
            print(f"  wrong {row['found']}: {row['prompt']}")
        for row in result["missed"]["rows"]:
            print(f"  missed {row['people']!r}: {row['prompt']}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
