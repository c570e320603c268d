"""Score a policy's text stage on the labeled prompt set (benchmarks/data/prompts.csv, test split).

    .venv/bin/python benchmarks/text_quality.py                 # the shipped default policy
    .venv/bin/python benchmarks/text_quality.py --policy my.yaml --json
    .venv/bin/python benchmarks/text_quality.py --device cuda   # the semantic checks' model on a GPU
    .venv/bin/python benchmarks/text_quality.py --engine onnxruntime-int8   # their model in 8-bit integers

Each text check the policy names is built once through the plugin registry (the
time that takes is the load time), then every test prompt goes through the checks
one prompt at a time on one CPU thread (with ``--device``, the semantic checks' model
on that device; ``--engine`` sets their ``engine`` option); the checks' signals are judged against the policy's thresholds
exactly as the pipeline's first text round does. Reported:

- per category: precision and recall at the policy's thresholds (a prompt counts for
  category C when a triggered finding names C), on plain prompts;
- recall at 1 % false-positive rate: the stage score for C is the highest score any
  check gave C; the threshold is set so at most 1 % of the safe prompts reach it;
- caught: a prompt is caught when any finding triggers (whatever its category); the
  catch rate per disguise technique against the plain prompts its variants were made
  from, and the false-alarm rate on safe prompts, plain and disguised;
- milliseconds per prompt for the whole stage (p50, p95), and per check; and per
  prompt when the same prompts go through in batches of 64;
- load time per check.

``--lens`` also runs every prompt through ``elens.Lens.check_prompt`` (revision rounds,
planner, audit log included) and reports how often a prompt is stopped (revised,
refused or marked for blurring) per disguise, with the time per request.
"""

from __future__ import annotations

import os

# One core, before any numeric library loads (torch reads it, and so does the semantic
# check's ONNX Runtime engine). Torch is not imported here: a check that needs it pays
# for the import in its load time.
os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("MKL_NUM_THREADS", "1")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

import argparse  # noqa: E402
import csv  # noqa: E402
import json  # noqa: E402
import statistics  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

DATA = Path(__file__).parent / "data" / "prompts.csv"
TARGETS = {"sexual_recall_at_1pct_fpr": 0.90, "p50_ms": 5.0, "load_s": 3.0}
BATCH = 64


def percentile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    k = (len(ordered) - 1) * q
    lo, hi = int(k), min(int(k) + 1, len(ordered) - 1)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (k - lo)


def recall_at_fpr(pos: list[float], neg: list[float], fpr: float = 0.01) -> tuple[float, float]:
    """Best recall with at most ``fpr`` of ``neg`` at or above the threshold; (recall, threshold)."""
    allowed = int(fpr * len(neg))
    candidates = sorted(set(pos) | set(neg) | {float("inf")})
    best = (0.0, float("inf"))
    for t in candidates:
        if t <= 0:
            continue
        if sum(s >= t for s in neg) <= allowed:
            recall = sum(s >= t for s in pos) / len(pos) if pos else 0.0
            if recall > best[0]:
                best = (recall, t)
            break  # the smallest admissible threshold gives the best recall
    return best


def load_rows(path: Path, split: str) -> list[dict[str, str]]:
    with open(path, encoding="utf-8", newline="") as f:
        return [r for r in csv.DictReader(f) if r["split"] == split]


def build_checks(policy, only: set[str] | None = None, semantic: dict | None = None):
    """The policy's text checks, each with its load time; ``semantic`` overrides options
    of the semantic checks (``device``: where they run their model, ``engine``)."""
    from elens.plugins import Registry, make_manager

    registry = Registry(make_manager())
    registry.check(policy)
    checks = []
    for i, entry in enumerate(policy.pipeline.get("text_checks") or []):
        if only and entry.get("plugin") not in only:
            continue
        entry = dict(entry)
        if semantic and entry.get("plugin") == "semantic":
            options = dict(entry.get("options") or {})
            if "device" in semantic and "engine" not in semantic:
                options.pop("engine", None)  # the policy's CPU engine: the check picks one for the device
            entry["options"] = {**options, **semantic}
        start = time.perf_counter()
        component, info = registry.build("text_check", ("pipeline", "text_checks", i), entry, policy)
        checks.append((component, info, time.perf_counter() - start))
    return checks


def _forget_embeddings() -> None:
    """Every prompt pays for the embedding model and its readings: the model-based
    checks keep recent views and embeddings, and a disguised variant's undisguised
    reading is its plain prompt's."""
    try:
        from elens_text._views import forget_views
        from elens_text.embed import forget_recent
    except ImportError:
        return
    forget_recent()
    forget_views()


def _names(checks) -> list[str]:
    """A name per check: its id, numbered when the policy runs the same check twice
    (the default policy's zero-shot semantic check and its trained heads)."""
    ids = [info.id for _, info, _ in checks]
    return [i if ids.count(i) == 1 else f"{i}#{ids[:k + 1].count(i)}" for k, i in enumerate(ids)]


def run(policy_path: str, data: Path, split: str, only: set[str] | None = None, semantic: dict | None = None) -> dict:
    from elens.judge import judge_signal
    from elens.policy import load_policy

    policy = load_policy(policy_path)
    checks = build_checks(policy, only, semantic)
    for component, _info, _ in checks:  # warm-up: first calls allocate caches
        component.check(["a warm up prompt about a cat"])
    rows = load_rows(data, split)
    stage_ms: list[float] = []
    names = _names(checks)
    check_ms: dict[str, list[float]] = {name: [] for name in names}
    results = []
    for row in rows:
        findings = []
        total = 0.0
        _forget_embeddings()
        for (component, info, _), name in zip(checks, names):
            start = time.perf_counter()
            signals = component.check([row["prompt"]])[0]
            elapsed = (time.perf_counter() - start) * 1000
            total += elapsed
            check_ms[name].append(elapsed)
            findings.extend(judge_signal(policy, "text", s, info) for s in signals)
        stage_ms.append(total)
        scores: dict[str, float] = {}
        for f in findings:
            scores[f.category] = max(scores.get(f.category, 0.0), f.score)
        results.append({
            **row,
            "triggered": sorted({f.category for f in findings if f.triggered}),
            "by": sorted({f.plugin for f in findings if f.triggered}),
            "scores": scores,
        })
    out = report(policy, checks, results, stage_ms, check_ms)
    # The same prompts again, handed over BATCH at a time (as Lens.check_prompts and
    # batch workers do): the cost per prompt.
    prompts = [row["prompt"] for row in rows]
    start = time.perf_counter()
    for i in range(0, len(prompts), BATCH):
        _forget_embeddings()
        for component, _info, _ in checks:
            component.check(prompts[i:i + BATCH])
    out["ms_per_prompt"]["batched"] = round((time.perf_counter() - start) * 1000 / max(1, len(prompts)), 3)
    return out


def run_lens(policy_path: str, data: Path, split: str) -> dict:
    """The whole text half through ``elens.Lens.check_prompt``: checks, revision rounds,
    planning and the audit record. A prompt is stopped when it is not passed unchanged
    (revised, refused, or marked for blurring)."""
    import tempfile

    from elens import Lens

    rows = load_rows(data, split)
    with tempfile.TemporaryDirectory() as tmp:
        start = time.perf_counter()
        lens = Lens(policy_path, audit_path=Path(tmp) / "audit.jsonl")
        lens.check_prompt("a warm up prompt about a cat")  # components are built on first use
        load = time.perf_counter() - start
        ms, outcomes = [], []
        for row in rows:
            _forget_embeddings()
            start = time.perf_counter()
            result = lens.check_prompt(row["prompt"])
            ms.append((time.perf_counter() - start) * 1000)
            outcomes.append({**row, "status": result.status, "stopped": result.status != "pass"
                             or bool(result.blur_categories)})
        lens.close()
    out = {"load_s": round(load, 3),
           "ms_per_request": {"p50": round(percentile(ms, 0.5), 3), "p95": round(percentile(ms, 0.95), 3)}}
    for kind, want in (("unsafe", lambda c: c != "safe"), ("safe", lambda c: c == "safe")):
        per = {}
        for t in ["plain", *sorted({r["technique"] for r in outcomes} - {"plain"})]:
            sel = [r for r in outcomes if r["technique"] == t and want(r["category"])]
            per[t] = {"n": len(sel), "stopped": round(sum(r["stopped"] for r in sel) / len(sel), 4) if sel else None}
        out[kind] = per
    out["status"] = {s: sum(r["status"] == s for r in outcomes) for s in ("pass", "revised", "refused")}
    return out


def report(policy, checks, results, stage_ms, check_ms) -> dict:
    plain = [r for r in results if r["technique"] == "plain"]
    safe_plain = [r for r in plain if r["category"] == "safe"]
    labels = sorted({r["category"] for r in results} - {"safe"})
    categories = {}
    for c in labels:
        pos = [r for r in plain if r["category"] == c]
        predicted = [r for r in plain if c in r["triggered"]]
        tp = sum(r["category"] == c for r in predicted)
        pos_scores = [r["scores"].get(c, 0.0) for r in pos]
        neg_scores = [r["scores"].get(c, 0.0) for r in safe_plain]
        r1, t1 = recall_at_fpr(pos_scores, neg_scores, 0.01)
        threshold = (policy.categories.get(c, {}).get("thresholds") or {}).get("text")
        categories[c] = {
            "n": len(pos),
            "precision": round(tp / len(predicted), 4) if predicted else None,
            "recall": round(tp / len(pos), 4) if pos else None,
            "caught": round(sum(bool(r["triggered"]) for r in pos) / len(pos), 4) if pos else None,
            "recall_at_1pct_fpr": round(r1, 4),
            "threshold_at_1pct_fpr": None if t1 == float("inf") else round(t1, 4),
            "policy_threshold": threshold,
            "safe_fpr_at_policy_threshold": round(sum(c in r["triggered"] for r in safe_plain) / len(safe_plain), 4)
            if safe_plain else None,
        }
    # Disguises: each technique against the very plain prompts its variants were made
    # from (a prompt with no letter a technique can disguise has no variant of it, so
    # the plain baseline differs a little from technique to technique).
    bases = {r["variant_of"] for r in results if r["variant_of"]}
    by_prompt = {r["prompt"]: r for r in plain}
    techniques = sorted({r["technique"] for r in results} - {"plain"})
    obfuscation = {}
    for kind, want in (("unsafe", lambda c: c != "safe"), ("safe", lambda c: c == "safe")):
        base_rows = [r for r in plain if r["prompt"] in bases and want(r["category"])]
        per = {"plain": {"n": len(base_rows), "flagged": _rate(base_rows)}}
        for t in techniques:
            rows = [r for r in results if r["technique"] == t and want(r["category"])]
            paired = [by_prompt[r["variant_of"]] for r in rows if r["variant_of"] in by_prompt]
            per[t] = {"n": len(rows), "flagged": _rate(rows), "plain_flagged": _rate(paired)}
        variants = [r for r in results if r["technique"] != "plain" and want(r["category"])]
        per["all_variants"] = {"n": len(variants), "flagged": _rate(variants)}
        obfuscation[kind] = per
    missed = [
        {"prompt": r["prompt"], "category": r["category"], "technique": r["technique"]}
        for r in results if r["category"] != "safe" and not r["triggered"]
    ]
    false_alarms = [
        {"prompt": r["prompt"], "triggered": r["triggered"], "by": r["by"], "technique": r["technique"]}
        for r in results if r["category"] == "safe" and r["triggered"]
    ]
    unsafe_plain = [r for r in plain if r["category"] != "safe"]
    return {
        "policy": {"name": policy.name, "version": policy.version, "sha256": policy.sha256},
        "split": results[0]["split"] if results else None,
        "prompts": len(results),
        "plain_prompts": len(plain),
        "checks": [{"id": name, "version": info.version, "load_s": round(load, 3),
                    "p50_ms": round(percentile(check_ms[name], 0.5), 3),
                    "p95_ms": round(percentile(check_ms[name], 0.95), 3)}
                   for (_, info, load), name in zip(checks, _names(checks))],
        "load_s": round(sum(load for _, _, load in checks), 3),
        "ms_per_prompt": {"p50": round(percentile(stage_ms, 0.5), 3), "p95": round(percentile(stage_ms, 0.95), 3),
                          "mean": round(statistics.fmean(stage_ms), 3) if stage_ms else None},
        "overall": {
            "unsafe_caught": _rate(unsafe_plain),
            "safe_flagged": _rate(safe_plain),
        },
        "categories": categories,
        "obfuscation": obfuscation,
        "missed": missed,
        "false_alarms": false_alarms,
    }


def _rate(rows: list[dict]) -> float | None:
    return round(sum(bool(r["triggered"]) for r in rows) / len(rows), 4) if rows else None


def verdict(result: dict) -> dict[str, bool]:
    sexual = result["categories"].get("sexual", {})
    obf = result["obfuscation"]["unsafe"]
    return {
        "sexual recall >= 0.90 at <= 1% FPR": (sexual.get("recall_at_1pct_fpr") or 0) >= TARGETS["sexual_recall_at_1pct_fpr"],
        "each disguise caught as often as plain": all(
            (v["flagged"] or 0) >= (v["plain_flagged"] or 0) for v in obf.values() if "plain_flagged" in v),
        "p50 <= 5 ms per prompt": result["ms_per_prompt"]["p50"] <= TARGETS["p50_ms"],
        "load <= 3 s": result["load_s"] <= TARGETS["load_s"],
    }


def render(result: dict) -> str:
    lines = [f"policy {result['policy']['name']} {result['policy']['version']}: "
             f"{result['prompts']} {result['split']} prompts ({result['plain_prompts']} plain)"]
    lines.append(f"load {result['load_s']:.2f} s; stage ms/prompt p50 {result['ms_per_prompt']['p50']:.2f} "
                 f"p95 {result['ms_per_prompt']['p95']:.2f}; in batches of {BATCH} "
                 f"{result['ms_per_prompt'].get('batched', float('nan')):.2f} per prompt")
    for c in result["checks"]:
        lines.append(f"  {c['id']:<12} load {c['load_s']:6.2f} s   p50 {c['p50_ms']:7.2f} ms   p95 {c['p95_ms']:7.2f} ms")
    lines.append(f"unsafe caught {result['overall']['unsafe_caught']}, safe flagged {result['overall']['safe_flagged']}")
    lines.append(f"{'category':<15}{'n':>4}{'prec':>8}{'recall':>8}{'caught':>8}{'R@1%FPR':>9}{'safe FPR':>10}")
    fmt = lambda v: "   -" if v is None else f"{v:.3f}"  # noqa: E731
    for c, m in result["categories"].items():
        lines.append(f"{c:<15}{m['n']:>4}{fmt(m['precision']):>8}{fmt(m['recall']):>8}{fmt(m['caught']):>8}"
                     f"{fmt(m['recall_at_1pct_fpr']):>9}{fmt(m['safe_fpr_at_policy_threshold']):>10}")
    for kind, per in result["obfuscation"].items():
        lines.append(f"flagged, {kind} prompts (disguised / the same prompts plain): " + ", ".join(
            f"{t} {v['flagged']}" + (f" / {v['plain_flagged']}" if "plain_flagged" in v else "") for t, v in per.items()))
    for name, ok in verdict(result).items():
        lines.append(f"[{'ok' if ok else 'MISS'}] {name}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description="Score a policy's text stage on the labeled prompt set.")
    ap.add_argument("--policy", default="builtin:default", help="policy file (default: the shipped default)")
    ap.add_argument("--data", type=Path, default=DATA)
    ap.add_argument("--split", default="test", choices=["test", "train"])
    ap.add_argument("--checks", help="comma-separated check ids to keep (default: all the policy names)")
    ap.add_argument("--lens", action="store_true",
                    help="also run every prompt end to end through elens.Lens.check_prompt (slower)")
    ap.add_argument("--device", help="run the semantic checks' model here (cuda, auto): their device option")
    ap.add_argument("--engine", help="the semantic checks' engine option (onnxruntime: the float MiniLM; the "
                    "default policy runs onnxruntime-int8)")
    ap.add_argument("--json", action="store_true", help="print the full result as JSON")
    ap.add_argument("--show-errors", action="store_true", help="list missed prompts and false alarms")
    args = ap.parse_args(argv)
    only = {c.strip() for c in args.checks.split(",") if c.strip()} if args.checks else None
    semantic = {k: v for k, v in (("device", args.device), ("engine", args.engine)) if v}
    result = run(args.policy, args.data, args.split, only, semantic)
    result.update(semantic)
    result["targets"] = verdict(result)
    if args.lens:
        result["lens"] = run_lens(args.policy, args.data, args.split)
    if args.json:
        json.dump(result, sys.stdout, indent=2, ensure_ascii=False)
        sys.stdout.write("\n")
    else:
        print(render(result))
        if "lens" in result:
            lens = result["lens"]
            print(f"through Lens.check_prompt: load {lens['load_s']:.2f} s, ms/request p50 "
                  f"{lens['ms_per_request']['p50']:.2f} p95 {lens['ms_per_request']['p95']:.2f}; {lens['status']}")
            for kind in ("unsafe", "safe"):
                print(f"  stopped, {kind} prompts: " + ", ".join(f"{t} {v['stopped']}" for t, v in lens[kind].items()))
        if args.show_errors:
            for m in result["missed"]:
                print(f"  missed [{m['category']}/{m['technique']}] {m['prompt']!r}")
            for m in result["false_alarms"]:
                print(f"  false alarm {m['triggered']} by {m['by']} [{m['technique']}] {m['prompt']!r}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
