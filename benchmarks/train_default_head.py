"""Train the default policy's text heads (``head: builtin:default``) from the project's
development prompts.

    .venv/bin/python benchmarks/train_default_head.py          # writes elens_text/heads/default.safetensors
    .venv/bin/python benchmarks/train_default_head.py --out /tmp/head.safetensors

The heads are trained on prompts no benchmark scores (benchmarks/data/README.md, "The
default policy's trained heads"): the train split of ``prompts.csv`` and the
development sets, plain prompts only, in the seven categories the heads score or
``safe``. ``prompts.csv``'s test split and the ``heldout*.csv`` files are never
read. The training itself is ``elens train text-head``, the command an organization
uses on its own prompts.
"""

from __future__ import annotations

import argparse
import csv
import os
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).parent
DATA = HERE / "data"
OUT = HERE.parent / "plugins" / "elens-text" / "elens_text" / "heads" / "default.safetensors"
#: (file, split) the heads learn from; None: every row of the file
SOURCES = [("prompts.csv", "train"), ("dev.csv", None), ("dev2.csv", None), ("dev3.csv", None),
           ("dev4.csv", None), ("dev5.csv", None), ("dev6.csv", None), ("probe.csv", None), ("captions.csv", None)]
CATEGORIES = ("sexual", "violence", "shocking", "illegal", "self_harm", "hate", "harassment")


def training_rows() -> list[tuple[str, str]]:
    rows: dict[str, str] = {}
    for name, split in SOURCES:
        with open(DATA / name, newline="", encoding="utf-8") as fh:
            for row in csv.DictReader(fh):
                if split and row["split"] != split or row["technique"] != "plain":
                    continue
                if row["category"] in CATEGORIES or row["category"] == "safe":
                    rows.setdefault(row["prompt"], row["category"])  # a prompt in two files counts once
    return sorted(rows.items())


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=OUT)
    args = ap.parse_args(argv)
    rows = training_rows()
    args.out.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        labeled = Path(tmp) / "labeled.csv"
        with open(labeled, "w", newline="", encoding="utf-8") as fh:
            writer = csv.writer(fh)
            writer.writerow(["prompt", "category"])
            writer.writerows(rows)
        env = {**os.environ, "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS", "1")}
        return subprocess.call([sys.executable, "-m", "elens", "train", "text-head", "--data", str(labeled),
                                "--out", str(args.out)], env=env)


if __name__ == "__main__":
    sys.exit(main())
