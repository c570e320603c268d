"""Four processes share one audit log and one output folder under load.

Each runs the real command line (``generate`` with two images, then ``check``) in a
loop against the same ``--audit-log`` and ``--out``. Afterwards: the chain verifies,
every request's records are all there and together, and every manifest's images
are the images that request delivered (nothing overwritten).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

from PIL import Image

from elens.audit import read_records, verify
from elens.images import sha256_image

ROOT = Path(__file__).resolve().parents[2]
WORKERS, ROUNDS = 4, 8

POLICY = """\
elens: 1
metadata: {name: shared, version: "1"}
categories:
  - id: weapons
    thresholds: {text: 0.5}
    actions: {text: block}
pipeline:
  backend: {plugin: tiny}
"""

WORKER = """
    import sys
    from elens.cli import build_cli

    name, policy, log, out, rounds = sys.argv[1:6]
    cli = build_cli()
    for i in range(int(rounds)):
        for args in (["generate", f"{name} lighthouse {i}", "-n", "2", "--seed", str(i), "--out", out],
                     ["check", f"{name} barn {i}"]):
            code = cli.main([*args, "-p", policy, "--audit-log", log], prog_name="elens", standalone_mode=False)
            assert not code, (args, code)
"""


def test_four_processes_share_one_log_and_one_output_folder(tmp_path):
    policy, log, out = tmp_path / "policy.yaml", tmp_path / "shared.jsonl", tmp_path / "out"
    policy.write_text(POLICY)
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
    procs = [subprocess.Popen([sys.executable, "-c", textwrap.dedent(WORKER), f"w{k}", str(policy), str(log),
                               str(out), str(ROUNDS)], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                              text=True) for k in range(WORKERS)]
    errors = [p.communicate(timeout=120)[1] for p in procs]
    assert [p.returncode for p in procs] == [0] * WORKERS, errors

    # The log: one valid chain, no record lost, no request torn apart or interleaved.
    result = verify(log)
    records = list(read_records(log))
    assert result.ok and result.count == len(records), result.message()
    assert [r["seq"] for r in records] == list(range(1, len(records) + 1))
    requests: dict[str, list[dict]] = {}
    finished: set[str] = set()
    current = None
    for r in records:
        rid = r["request_id"]
        if rid != current:
            assert rid not in requests, f"request {rid} is interleaved with another (seq {r['seq']})"
            if current is not None:
                finished.add(current)
            current = rid
        requests.setdefault(rid, []).append(r)
    assert len(requests) == WORKERS * ROUNDS * 2
    for rid, recs in requests.items():
        assert recs[0]["event"] == "request.received" and recs[-1]["event"] == "request.completed", rid
    prompts = sorted(recs[0]["prompt"] for recs in requests.values())
    assert prompts == sorted(f"w{k} {what} {i}" for k in range(WORKERS) for i in range(ROUNDS)
                             for what in ("lighthouse", "barn"))

    # The folder: a manifest per generate request, and its images are the ones it delivered.
    manifests = [json.loads(p.read_text()) for p in out.glob("manifest*.json")]
    assert len(manifests) == WORKERS * ROUNDS
    assert len({m["request_id"] for m in manifests}) == len(manifests)
    pngs = sorted(p.name for p in out.glob("*.png"))
    assert len(pngs) == 2 * len(manifests)
    assert not [p.name for p in out.iterdir() if p.name.startswith(".")]  # no temporary file left behind
    listed = []
    for m in manifests:
        finals = {r["index"]: r for r in requests[m["request_id"]] if r["event"] == "image.final"}
        for entry in m["images"]:
            assert entry["status"] == "delivered"
            with Image.open(out / entry["file"]) as img:
                assert sha256_image(img) == entry["sha256"] == finals[entry["index"]]["image"]["sha256"]
            listed.append(entry["file"])
    assert sorted(listed) == pngs
