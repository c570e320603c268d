"""``elens policy``: validate, show, print the schema, start a policy.

Exit codes: 0 ok, 2 a policy defect or a usage error (the defect on stderr, one line).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import click
import yaml

from ..errors import ElensError, PolicyError

STARTER = """\
# An elens policy. Reference: docs/policy.md; the schema: `elens policy schema`.
# Check it:               elens policy validate {name}
# See the merged result:  elens policy show {name} --resolved
elens: 1

# Start from another policy and write only what differs. Mappings merge key by
# key; categories and bias attributes merge by id; other lists are replaced.
extends: {extends}

metadata:
  name: my-organization            # recorded in every audit record
  version: "0.1"                   # text: keep the quotes
  owner: trust-and-safety@example.org
  description: What this policy is for, in one sentence.

categories:
  # A category of your own. The lexicon check matches its terms (case, spacing
  # and look-alike letters are folded); the replace reviser uses the table.
  - id: competitor_brands
    description: Logos and products of our competitors.
    severity: low
    thresholds: {{text: 0.5}}      # a lexicon hit scores 0.9
    actions: {{text: revise}}      # allow | warn | revise | blur | block
    terms: [acme cola, acme soda]
    replacements: {{acme cola: a soft drink, acme soda: a soft drink}}

  # Change an inherited category by naming its id with the fields to change:
  # - id: violence
  #   actions: {{text: warn, image: warn}}
  # Drop one:
  # - id: political
  #   remove: true

# Keep prompts out of the audit log as text; keep image hashes only.
audit:
  redact_prompt: hash              # none | hash | drop
  image_retention: hash            # none | hash | thumbnail | full
"""

STANDALONE = """\
# An elens policy. Reference: docs/policy.md; the schema: `elens policy schema`.
# Check it:  elens policy validate {name}
elens: 1

metadata:
  name: my-organization            # recorded in every audit record
  version: "0.1"                   # text: keep the quotes
  owner: trust-and-safety@example.org
  description: What this policy is for, in one sentence.

categories:
  - id: violence
    description: Violent acts against people or animals.
    severity: high
    thresholds: {{text: 0.6}}          # a lexicon hit scores 0.9
    block_threshold: {{text: 0.97}}    # refuse outright at or above this
    actions: {{text: revise}}          # allow | warn | revise | blur | block
    terms: [stabbing someone, beaten to death, mass shooting]
    replacements: {{stabbing someone: arguing with someone, beaten to death: "", mass shooting: crowd}}

pipeline:
  text_checks:
    - plugin: lexicon                # the categories' terms and patterns
  reviser:
    plugin: replace                  # the categories' replacement tables

audit:
  redact_prompt: hash              # none | hash | drop
  image_retention: hash            # none | hash | thumbnail | full
"""


@click.group("policy")
def policy_group() -> None:
    """Write, check and inspect policies."""


def _fail(exc: ElensError) -> None:
    click.echo(str(exc), err=True)
    sys.exit(2)


def _error_dict(exc: ElensError) -> dict[str, Any]:
    if isinstance(exc, PolicyError):
        return {"file": exc.file, "line": exc.line, "field": exc.field, "message": exc.message, "text": str(exc)}
    return {"file": None, "line": None, "field": "", "message": str(exc), "text": str(exc)}


def _registry() -> Any:
    """The installed plugins' registry, or None when the host cannot build one."""
    try:
        from ..plugins import default_registry
    except ImportError:
        return None
    return default_registry()


@policy_group.command("validate")
@click.argument("files", nargs=-1, required=True)
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object per file, in a list.")
@click.option("--skip-plugins", is_flag=True, help="Do not check plugin ids and options against installed plugins.")
def validate(files: tuple[str, ...], as_json: bool, skip_plugins: bool) -> None:
    """Check policy files: schema, semantics, and plugin ids and options. Exit 2 on a defect."""
    from ..policy import load_policy

    results: list[dict[str, Any]] = []
    failed = False
    registry: Any = None
    for file in files:
        try:
            policy = load_policy(file)
            if not skip_plugins:
                registry = registry or _registry()
                if registry is not None:
                    registry.check(policy)
        except ElensError as exc:
            failed = True
            results.append({"file": file, "ok": False, "error": _error_dict(exc)})
            if not as_json:
                click.echo(str(exc), err=True)
            continue
        results.append({"file": file, "ok": True, "name": policy.name, "version": policy.version,
                        "sha256": policy.sha256})
        if not as_json:
            click.echo(f"{file}: OK ({policy.name} {policy.version})")
    if as_json:
        click.echo(json.dumps(results, indent=2, ensure_ascii=False))
    if failed:
        sys.exit(2)


@policy_group.command("show")
@click.argument("file")
@click.option("--resolved", is_flag=True, help="The merged policy: extends applied, defaults filled.")
@click.option("--json", "as_json", is_flag=True, help="JSON: {sha256, policy}.")
def show(file: str, resolved: bool, as_json: bool) -> None:
    """Print a policy (validated first): as written, or --resolved. YAML unless --json."""
    from .._yaml import parse
    from ..policy import _builtin_path, _plain, load_policy

    try:
        policy = load_policy(file)
        if resolved:
            data = dict(policy.data)
        else:
            path = _builtin_path(file, file, None) if file.startswith("builtin:") else Path(file)
            data = _plain(parse(path.read_text(encoding="utf-8"), file))
    except ElensError as exc:
        _fail(exc)
        return
    if as_json:
        click.echo(json.dumps({"sha256": policy.sha256, "resolved": resolved, "policy": data},
                              indent=2, ensure_ascii=False))
        return
    kind = "resolved" if resolved else "as written"
    click.echo(f"# {policy.name} {policy.version} ({kind}); resolved sha256 {policy.sha256}")
    dumper = getattr(yaml, "CSafeDumper", yaml.SafeDumper)
    click.echo(yaml.dump(data, Dumper=dumper, sort_keys=False, allow_unicode=True, width=100), nl=False)


@policy_group.command("schema")
def schema_cmd() -> None:
    """Print the policy's JSON Schema (draft 2020-12)."""
    from ..policy import schema

    click.echo(json.dumps(schema(), indent=2, ensure_ascii=False))


@policy_group.command("init")
@click.argument("path", default="policy.yaml")
@click.option("--extends", "extends", default="builtin:default", show_default=True,
              help="The policy to build on (builtin:NAME or a path relative to PATH's folder); 'none' for a standalone one.")
@click.option("--force", is_flag=True, help="Overwrite an existing file.")
def init(path: str, extends: str, force: bool) -> None:
    """Write a commented starter policy to PATH (validated before it is written)."""
    from ..images import write_atomically
    from ..policy import Policy

    target = Path(path)
    if target.exists() and not force:
        click.echo(f"{path}: exists; use --force to overwrite it", err=True)
        sys.exit(2)
    if extends == "none":
        text = STANDALONE.format(name=target.name)
    else:
        text = STARTER.format(name=target.name, extends=json.dumps(extends))
    try:
        Policy.from_text(text, source=str(target))
    except ElensError as exc:
        _fail(exc)
        return
    write_atomically(target, text.encode("utf-8"))
    click.echo(f"wrote {path}")
