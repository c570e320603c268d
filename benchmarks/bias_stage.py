"""Time the bias stage: the ``people`` planner per prompt and the ``faces`` audit per image.

    .venv/bin/python benchmarks/bias_stage.py                  # the shipped default policy
    .venv/bin/python benchmarks/bias_stage.py --policy my.yaml --n 4 --json

Both components are built once through the plugin registry from the policy's
``pipeline.planner`` entry and its ``faces`` image check (defaults when the policy
names none). One CPU thread.

- planner: milliseconds per prompt (p50, p95) for ``plan(prompt, n, seed)`` over
  every prompt of benchmarks/data/prompts.csv plus "a photo of a ROLE" for every role
  of tests/bias/roles_200.txt and a few multi-person prompts; also how many prompts
  had people in them. Target: p50 <= 1 ms.
- faces: milliseconds per 512x512 image (p50, p95) over real photos from
  scikit-image (astronaut: one face; coffee, chelsea, rocket resized: none), after
  one warm-up call that loads the models (reported as load time).
"""

from __future__ import annotations

import os

os.environ.setdefault("OMP_NUM_THREADS", "1")  # one core, before any numeric library loads

import argparse  # noqa: E402
import csv  # noqa: E402
import json  # noqa: E402
import statistics  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
PROMPTS = ROOT / "benchmarks" / "data" / "prompts.csv"
ROLES = ROOT / "tests" / "bias" / "roles_200.txt"
EXTRA = [
    "a doctor talking to five teachers and a nurse in a hospital corridor",
    "a team of engineers reviewing blueprints with their manager",
    "Taylor Swift singing on stage with a guitarist and two dancers",
    "an elderly Black businesswoman shaking hands with a young man",
    "a portrait of Jane Doakes, a famous chef, in her kitchen",
    "a family of four having a picnic: a mother, a father and their two kids",
]
TARGETS = {"planner_p50_ms": 1.0}


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def prompts() -> list[str]:
    with PROMPTS.open(newline="", encoding="utf-8") as f:
        out = [row["prompt"] for row in csv.DictReader(f)]
    out += [f"a photo of a {role.strip()}" for role in ROLES.read_text().splitlines() if role.strip()]
    return out + EXTRA


def images() -> dict:
    from PIL import Image
    from skimage import data

    def square(array):
        return Image.fromarray(array).convert("RGB").resize((512, 512))

    return {"astronaut": square(data.astronaut()), "coffee": square(data.coffee()),
            "chelsea": square(data.chelsea()), "rocket": square(data.rocket())}


def build(policy):
    from elens.plugins import Registry, make_manager

    registry = Registry(make_manager())
    entry = dict(policy.pipeline.get("planner") or {"plugin": "people"})
    planner, _ = registry.build("planner", ("pipeline", "planner"), entry, policy)
    checks = list(policy.pipeline.get("image_checks") or [])
    index, face_entry = next(((i, dict(e)) for i, e in enumerate(checks) if e.get("plugin") == "faces"),
                             (0, {"plugin": "faces"}))
    start = time.perf_counter()
    faces, _ = registry.build("image_check", ("pipeline", "image_checks", index), face_entry, policy)
    return planner, faces, time.perf_counter() - start


def run(policy_path: str, n: int, rounds: int) -> dict:
    from elens.policy import load_policy

    policy = load_policy(policy_path)
    planner, faces, build_s = build(policy)
    texts = prompts()
    for text in texts[:50]:  # warm caches (lexicon, regexes)
        planner.plan(text, n, 0)
    times, with_people = [], 0
    for seed in range(rounds):
        for text in texts:
            start = time.perf_counter()
            plan = planner.plan(text, n, seed)
            times.append((time.perf_counter() - start) * 1000)
            with_people += bool(plan.clusters) and seed == 0
    photos = images()
    start = time.perf_counter()
    faces.check([photos["astronaut"]], [None])  # loads the detector and the networks
    load_s = build_s + time.perf_counter() - start
    face_times: dict[str, list[float]] = {name: [] for name in photos}
    found = {}
    for _ in range(5):
        for name, image in photos.items():
            start = time.perf_counter()
            items = faces.check([image], [None])[0]
            face_times[name].append((time.perf_counter() - start) * 1000)
            found[name] = sum(1 for i in items if getattr(i, "attribute", None) == "gender")
    all_face = [t for ts in face_times.values() for t in ts]
    return {
        "policy": policy.name,
        "planner": {
            "prompts": len(texts), "rounds": rounds, "n": n, "with_people": with_people,
            "p50_ms": round(statistics.median(times), 4), "p95_ms": round(percentile(times, 0.95), 4),
            "max_ms": round(max(times), 3),
        },
        "faces": {
            "image_size": [512, 512], "load_s": round(load_s, 3),
            "p50_ms": round(statistics.median(all_face), 2), "p95_ms": round(percentile(all_face, 0.95), 2),
            "per_image_p50_ms": {k: round(statistics.median(v), 2) for k, v in face_times.items()},
            "faces_found": found,
        },
        "targets": TARGETS,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--policy", default="builtin:default")
    parser.add_argument("--n", type=int, default=4, help="images per prompt to plan")
    parser.add_argument("--rounds", type=int, default=3, help="passes over the prompt list")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    result = run(args.policy, args.n, args.rounds)
    if args.json:
        print(json.dumps(result, indent=2))
        return
    p, f = result["planner"], result["faces"]
    print(f"planner  {p['prompts']} prompts x {p['rounds']} rounds, n={p['n']}: "
          f"p50 {p['p50_ms']:.3f} ms  p95 {p['p95_ms']:.3f} ms  (target p50 <= {TARGETS['planner_p50_ms']} ms); "
          f"{p['with_people']} prompts with people")
    print(f"faces    512x512: p50 {f['p50_ms']:.1f} ms  p95 {f['p95_ms']:.1f} ms  load {f['load_s']:.2f} s")
    for name, ms in f["per_image_p50_ms"].items():
        print(f"  {name:10} {ms:8.1f} ms  faces {f['faces_found'][name]}")


if __name__ == "__main__":
    main()
