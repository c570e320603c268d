"""``elens batch``: a prompt file through the policy, with progress, resumable."""

from __future__ import annotations

import json
import sys

import click

from . import audit_option, policy_option


@click.command("batch")
@click.argument("input_path", metavar="INPUT", type=click.Path(dir_okay=False))
@click.option("--out", "out", required=True, type=click.Path(file_okay=False),
              help="Folder for results.jsonl (and items/ when generating). Run again to resume.")
@policy_option
@audit_option
@click.option("--check-only", is_flag=True, help="Only check (and revise) the prompts; generate nothing.")
@click.option("--workers", default=1, show_default=True, type=int, help="Worker processes (or Ray actors); each loads the models once.")
@click.option("--engine", type=click.Choice(["local", "ray"]), default="local", show_default=True,
              help="local: this machine's processes; ray: Ray Data actors (pip install 'elens[ray]').")
@click.option("--ray-address", default=None, help="An existing Ray cluster (e.g. ray://head:10001 or auto).")
@click.option("--chunk-size", default=None, type=int, help="Items per worker call and per commit [64; 4 when generating].")
@click.option("-n", "--images", "n", default=1, show_default=True, type=int, help="Images per prompt when generating.")
@click.option("--seed", default=0, show_default=True, type=int, help="Base seed; item i, image k uses seed + i*n + k.")
@click.option("--steps", default=None, type=int)
@click.option("--guidance", default=None, type=float)
@click.option("--width", default=None, type=int)
@click.option("--height", default=None, type=int)
@click.option("--restart", is_flag=True, help="Discard what --out holds and start over.")
@click.option("--json", "as_json", is_flag=True, help="Print the summary as JSON.")
def batch(input_path: str, out: str, policy: str, audit_log: str | None, check_only: bool, workers: int,
          engine: str, ray_address: str | None, chunk_size: int | None, n: int, seed: int, steps: int | None,
          guidance: float | None, width: int | None, height: int | None, restart: bool, as_json: bool) -> None:
    """Run every prompt of INPUT (.txt, one per line; .csv with a prompt column; .jsonl) through the policy.

    Writes one line per prompt to OUT/results.jsonl, in input order, and each
    request's records to the audit log. Killed or interrupted, the same command
    continues where it stopped: nothing is done twice and nothing is skipped. A
    prompt the policy's limits refuse (empty, too long, control characters) gets
    status "invalid" and the batch goes on.
    """
    from ..batch import run_batch
    from ..errors import InputError
    from ..policy import load_policy

    if chunk_size is not None and chunk_size < 1:
        raise InputError(f"--chunk-size must be at least 1, got {chunk_size}")
    options = {k: v for k, v in {"steps": steps, "guidance": guidance, "width": width, "height": height}.items()
               if v is not None}
    try:
        summary = run_batch(input_path, out, load_policy(policy), generate=not check_only, workers=workers,
                            engine=engine, chunk_size=chunk_size, audit_path=audit_log, images=n, seed=seed,
                            options=options, restart=restart, ray_address=ray_address)
    except KeyboardInterrupt:
        click.echo(f"elens: interrupted; what is in {out}/results.jsonl is done and recorded. "
                   "Run the same command to resume.", err=True)
        sys.exit(130)
    if as_json:
        click.echo(json.dumps(summary, indent=2))
    else:
        counts = ", ".join(f"{k} {v}" for k, v in summary["statuses"].items())
        resumed = f" ({summary['resumed']} done before)" if summary["resumed"] else ""
        click.echo(f"{summary['items']} items{resumed}: {counts}\nresults: {summary['results']}")
