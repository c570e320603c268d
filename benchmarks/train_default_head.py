"""Train the default policy's text heads from the project's development prompts.

    .venv/bin/python benchmarks/train_default_head.py          # writes both files into elens_text/heads/
    .venv/bin/python benchmarks/train_default_head.py --out /tmp/heads

Two files, each a ``head: builtin:NAME`` of the default policy:

- ``default``: sexual, violence, shocking, illegal, self_harm, hate and harassment;
- ``political-cultural``: political and cultural (Ethical-Lens's P8 and P9), from
  the same prompts and the two development sets written for those categories
  (``dev8.csv``, ``dev9.csv``). Apart, because a category's head learns from every
  other row as a counterexample: political prompts among the first file's rows made
  its hate and violence heads miss a tenth of ``dev9.csv``'s unsafe prompts they had
  caught.

The heads are trained on prompts no benchmark scores (benchmarks/data/README.md, "The
default policy's trained heads"): the train split of ``prompts.csv`` and the
development sets, plain prompts only, in the categories a file scores or ``safe``.
``prompts.csv``'s test split and the ``heldout*.csv`` files are never read. The
training itself is ``elens train text-head``, the command an organization uses on its
own prompts.
"""

from __future__ import annotations

import argparse
import csv
import io
import os
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).parent
DATA = HERE / "data"
OUT = HERE.parent / "plugins" / "elens-text" / "elens_text" / "heads"
#: (file, split) the heads learn from; None: every row of the file
SOURCES = [("prompts.csv", "train"), ("dev.csv", None), ("dev2.csv", None), ("dev3.csv", None),
           ("dev4.csv", None), ("dev5.csv", None), ("dev6.csv", None), ("probe.csv", None), ("captions.csv", None)]
#: head file -> (the categories it scores, the development sets it learns from besides SOURCES)
HEADS = {
    "default": (("sexual", "violence", "shocking", "illegal", "self_harm", "hate", "harassment"), ()),
    "political-cultural": (("political", "cultural"), (("dev8.csv", None), ("dev9.csv", None))),
}


def training_rows(categories: tuple[str, ...], extra: tuple = ()) -> list[tuple[str, str]]:
    rows: dict[str, str] = {}
    for name, split in SOURCES + list(extra):
        with open(DATA / name, newline="", encoding="utf-8") as fh:
            for row in csv.DictReader(fh):
                if split and row["split"] != split or row["technique"] != "plain":
                    continue
                if row["category"] in categories or row["category"] == "safe":
                    rows.setdefault(row["prompt"], row["category"])  # a prompt in two files counts once
    return sorted(rows.items())


def labeled_csv(name: str) -> bytes:
    """The CSV that head NAME is trained on; the head file records its sha256."""
    categories, extra = HEADS[name]
    out = io.StringIO(newline="")
    writer = csv.writer(out)
    writer.writerow(["prompt", "category"])
    writer.writerows(training_rows(categories, extra))
    return out.getvalue().encode("utf-8")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=OUT, help="folder for the head files")
    args = ap.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS", "1")}
    for name in HEADS:
        with tempfile.TemporaryDirectory() as tmp:
            labeled = Path(tmp) / "labeled.csv"
            labeled.write_bytes(labeled_csv(name))
            code = subprocess.call([sys.executable, "-m", "elens", "train", "text-head", "--data", str(labeled),
                                    "--out", str(args.out / f"{name}.safetensors")], env=env)
        if code:
            return code
    return 0


if __name__ == "__main__":
    sys.exit(main())
