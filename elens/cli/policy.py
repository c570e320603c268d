"""``elens policy``: validate, show, print the schema, start a policy."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import click
import yaml

from ..errors import ElensError

STARTER = """\
# An elens policy. Reference: docs/policy.md; schema: `elens policy schema`.
# Check it with `elens policy validate {name}`; see the merged result with
# `elens policy show {name} --resolved`.
elens: 1

# Start from the Ethical-Lens default and change only what differs.
extends: {extends}

metadata:
  name: my-organization
  version: "0.1"
  owner: trust-and-safety@example.org
  description: What this policy is for, in one sentence.

# Categories merge by id with the inherited ones: give an id and the fields to change.
categories:
  - id: violence
    # Allow depicted violence with a warning instead of revising the prompt.
    actions: {{text: warn, image: warn}}
  # A new category of your own; the lexicon check matches its terms.
  - id: competitor_brands
    description: Logos and products of our competitors.
    severity: low
    thresholds: {{text: 0.5}}
    actions: {{text: revise}}
    terms: [acme cola]
    replacements: {{acme cola: a soft drink}}

# Keep prompts out of the audit log; keep only image hashes.
audit:
  redact_prompt: hash
  image_retention: hash
"""


@click.group("policy")
def policy_group() -> None:
    """Write, check and inspect policies."""


@policy_group.command("validate")
@click.argument("files", nargs=-1, required=True)
@click.option("--json", "as_json", is_flag=True)
def validate(files: tuple[str, ...], as_json: bool) -> None:
    """Check policy files: schema, semantics, and plugin ids against installed plugins. Exit 2 on a defect."""
    from ..plugins import default_registry
    from ..policy import load_policy

    registry = default_registry()
    results, failed = [], False
    for file in files:
        try:
            policy = load_policy(file)
            registry.check(policy)
            results.append({"file": file, "ok": True, "name": policy.name, "version": policy.version,
                            "sha256": policy.sha256})
            if not as_json:
                click.echo(f"{file}: OK ({policy.name} {policy.version})")
        except ElensError as exc:
            failed = True
            results.append({"file": file, "ok": False, "error": str(exc)})
            if not as_json:
                click.echo(str(exc), err=True)
    if as_json:
        click.echo(json.dumps(results, indent=2))
    if failed:
        sys.exit(2)


@policy_group.command("show")
@click.argument("file")
@click.option("--resolved", is_flag=True, default=True, help="The merged policy with defaults (the only view).")
@click.option("--json", "as_json", is_flag=True)
def show(file: str, resolved: bool, as_json: bool) -> None:
    """Print the policy after extends and defaults, as YAML (or JSON)."""
    from ..policy import load_policy

    policy = load_policy(file)
    data = {"elens": 1, **{k: v for k, v in policy.data.items() if k != "elens"}}
    if as_json:
        click.echo(json.dumps({"sha256": policy.sha256, "policy": data}, indent=2, ensure_ascii=False))
    else:
        click.echo(f"# {policy.name} {policy.version} sha256:{policy.sha256}")
        click.echo(yaml.safe_dump(data, sort_keys=False, allow_unicode=True, width=100), nl=False)


@policy_group.command("schema")
def schema_cmd() -> None:
    """Print the policy's JSON Schema (draft 2020-12)."""
    from ..policy import schema

    click.echo(json.dumps(schema(), indent=2))


@policy_group.command("init")
@click.argument("path", default="policy.yaml")
@click.option("--extends", "extends", default="builtin:default", show_default=True)
@click.option("--force", is_flag=True, help="Overwrite an existing file.")
def init(path: str, extends: str, force: bool) -> None:
    """Write a commented starter policy."""
    from ..images import write_atomically

    target = Path(path)
    if target.exists() and not force:
        raise click.UsageError(f"{path} exists; use --force to overwrite it")
    write_atomically(target, STARTER.format(name=target.name, extends=extends).encode())
    click.echo(f"wrote {path}")
