"""Batch throughput: ``elens batch --check-only`` prompts per second, and memory per worker.

    python benchmarks/throughput.py                      # 10,000 prompts: 1 and 2 local workers, Ray with 2
    python benchmarks/throughput.py -n 2000 --runs local1 --json

Runs: ``local1`` one worker in the batch's own process (ONNX Runtime and torch use
every core), ``local1x1`` the same held to one thread, ``local2`` two worker processes
of one thread each, ``ray2`` two Ray actors of one CPU each. Each run is a fresh
process, so no run reuses a model another run loaded (nor its thread settings). For
each run it reports the wall time of the whole batch (model loading included), the
steady rate (items per second after the first chunk, when every worker has loaded),
and the peak resident memory of each worker process (sampled from /proc every 0.2 s;
with one local worker the worker is the run's process).
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import re
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

HERE = Path(__file__).parent

#: name -> (engine, workers, threads per worker: None is the engine's choice)
RUNS = {"local1": ("local", 1, None), "local1x1": ("local", 1, 1), "local2": ("local", 2, None),
        "ray2": ("ray", 2, None)}


def prompts(n: int) -> list[str]:
    """``n`` prompts from the labeled benchmark set, numbered so no two are the same."""
    with open(HERE / "data" / "prompts.csv", newline="", encoding="utf-8") as fh:
        base = [row["prompt"].replace("\n", " ") for row in csv.DictReader(fh)]
    return [f"{base[i % len(base)]} ({i})" for i in range(n)]


class Memory:
    """Peak RSS per worker process: descendants of this process, or Ray actors."""

    def __init__(self, engine: str):
        self.engine, self.peak, self.stop = engine, {}, threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _workers(self) -> list[int]:
        me, out = os.getpid(), []
        if self.engine.startswith("local1"):
            return [me]
        for entry in os.listdir("/proc"):
            if not entry.isdigit():
                continue
            try:
                stat = Path(f"/proc/{entry}/stat").read_text()
                cmd = Path(f"/proc/{entry}/cmdline").read_bytes()
            except OSError:
                continue
            ppid = int(stat.rsplit(")", 1)[1].split()[1])
            if (self.engine == "local2" and ppid == me and b"spawn_main" in cmd) or \
               (self.engine == "ray2" and (b"ray::_Actor" in cmd or b"ray::MapWorker" in cmd)):
                out.append(int(entry))
        return out

    def _run(self) -> None:
        while not self.stop.is_set():
            for pid in self._workers():
                try:
                    status = Path(f"/proc/{pid}/status").read_text()
                except OSError:
                    continue
                match = re.search(r"VmRSS:\s+(\d+) kB", status)
                if match:
                    self.peak[pid] = max(self.peak.get(pid, 0), int(match.group(1)) * 1024)
            self.stop.wait(0.2)

    def __enter__(self) -> "Memory":
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.stop.set()
        self.thread.join()


class Clock:
    """A progress stream that notes when each item count was reached."""

    def __init__(self):
        self.marks: list[tuple[float, int]] = []

    def isatty(self) -> bool:
        return True  # redraws often, so the marks are fine-grained

    def write(self, text: str) -> None:
        match = re.search(r"(\d+)/\d+ items", text)
        if match:
            self.marks.append((time.perf_counter(), int(match.group(1))))

    def flush(self) -> None:
        pass


def run(name: str, items: list[str], policy_ref: str, chunk: int, work: Path) -> dict:
    from elens.batch import run_batch
    from elens.policy import load_policy

    engine, workers, _ = RUNS[name]
    src = work / "prompts.txt"
    src.write_text("\n".join(items) + "\n", encoding="utf-8")
    clock = Clock()
    start = time.perf_counter()
    with Memory(name) as memory:
        summary = run_batch(src, work / f"out-{name}", load_policy(policy_ref), workers=workers, engine=engine,
                            chunk_size=chunk, audit_path=work / f"audit-{name}.jsonl", progress_stream=clock)
    wall = time.perf_counter() - start
    first = next((m for m in clock.marks if m[1] >= chunk * workers), clock.marks[0])
    last = clock.marks[-1]
    steady = (last[1] - first[1]) / (last[0] - first[0]) if last[0] > first[0] else float("nan")
    peaks = sorted(memory.peak.values())
    return {"run": name, "engine": engine, "workers": workers, "items": summary["items"],
            "wall_s": round(wall, 1), "overall_per_s": round(summary["items"] / wall, 1),
            "steady_per_s": round(steady, 1),
            "peak_rss_per_worker_mb": [round(p / 2**20) for p in peaks],
            "statuses": summary["statuses"]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("-n", type=int, default=10_000, help="prompts (default 10,000)")
    parser.add_argument("--runs", default="local1,local1x1,local2,ray2", help="comma-separated: " + ", ".join(RUNS))
    parser.add_argument("--policy", default="builtin:default")
    parser.add_argument("--chunk-size", type=int, default=64)
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--one", help=argparse.SUPPRESS)  # the child process of one run
    args = parser.parse_args()
    if args.one:
        with tempfile.TemporaryDirectory() as tmp:
            print(json.dumps(run(args.one, prompts(args.n), args.policy, args.chunk_size, Path(tmp))))
        return
    rows = []
    for name in args.runs.split(","):
        if name not in RUNS:
            parser.error(f"--runs: unknown run {name!r}")
        env = dict(os.environ)
        if RUNS[name][2]:  # one worker held to one core: the baseline for two workers of one core each
            env["OMP_NUM_THREADS"] = str(RUNS[name][2])
        child = subprocess.run([sys.executable, __file__, "--one", name, "-n", str(args.n), "--policy", args.policy,
                                "--chunk-size", str(args.chunk_size)], env=env, stdout=subprocess.PIPE, check=True)
        rows.append(json.loads(child.stdout.decode().strip().splitlines()[-1]))
        if not args.json:
            r = rows[-1]
            print(f"{r['run']:7} {r['items']} items  wall {r['wall_s']} s  overall {r['overall_per_s']}/s  "
                  f"steady {r['steady_per_s']}/s  peak RSS per worker {r['peak_rss_per_worker_mb']} MB",
                  flush=True)
    if args.json:
        json.dump({"cpus": os.cpu_count(), "policy": args.policy, "runs": rows}, sys.stdout, indent=2)
        print()


if __name__ == "__main__":
    main()
