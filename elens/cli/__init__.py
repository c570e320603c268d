"""The ``elens`` command line.

Exit codes: 0 ok; 1 a policy violation was found and ``--strict`` asked to fail on it
(or ``audit verify`` found the log altered); 2 a usage, policy or input error.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Any

import click

from .. import __version__
from ..errors import ElensError, InputError

DEFAULT_POLICY = "builtin:default"


class ElensGroup(click.Group):
    """Turns every deliberate elens error into one line on stderr and exit code 2."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except ElensError as exc:
            click.echo(f"elens: error: {exc}", err=True)
            ctx.exit(2)


@click.group(cls=ElensGroup)
@click.version_option(__version__, prog_name="elens")
@click.option("-v", "--verbose", is_flag=True, help="Diagnostic logs on stderr.")
def cli(verbose: bool) -> None:
    """Put a value policy around a text-to-image model."""
    from .._log import configure

    configure(verbose)


def policy_option(fn: Any) -> Any:
    return click.option(
        "-p",
        "--policy",
        default=lambda: os.environ.get("ELENS_POLICY", DEFAULT_POLICY),
        show_default="$ELENS_POLICY or builtin:default",
        help="Policy file (or builtin:NAME).",
    )(fn)


def audit_option(fn: Any) -> Any:
    return click.option(
        "--audit-log", type=click.Path(dir_okay=False), default=None, help="Audit log path (overrides audit.path)."
    )(fn)


def _emit(data: Any, as_json: bool, human: str) -> None:
    if as_json:
        click.echo(json.dumps(data, indent=2, ensure_ascii=False))
    else:
        click.echo(human)


def _lens(policy: str, audit_log: str | None, backend_overrides: dict[str, Any] | None = None):
    from ..lens import Lens
    from ..policy import Policy, load_policy

    loaded = load_policy(policy)
    if backend_overrides:
        data = json.loads(json.dumps(loaded.data))
        backend = data.get("pipeline", {}).get("backend")
        if not backend:
            raise loaded.error(("pipeline", "backend"), "--model and friends need a backend in the policy")
        backend.setdefault("options", {}).update(backend_overrides)
        loaded = Policy.from_dict(data, source=loaded.source)
    return Lens(loaded, audit_path=audit_log)


@cli.command()
@click.argument("prompt")
@policy_option
@audit_option
@click.option("-n", "--images", "n", default=1, show_default=True, type=int, help="Images the prompt is planned for.")
@click.option("--seed", default=0, show_default=True, type=int)
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
@click.option("--strict", is_flag=True, help="Exit 1 when the prompt is refused.")
def check(prompt: str, policy: str, audit_log: str | None, n: int, seed: int, as_json: bool, strict: bool) -> None:
    """Check (and revise, and plan) a prompt without generating anything."""
    lens = _lens(policy, audit_log)
    result = lens.check_prompt(prompt, n=n, seed=seed)
    _emit(result.as_dict(), as_json, result.explain())
    if strict and result.refused:
        sys.exit(1)


def _check_out(out: str) -> None:
    """Refuse an --out that cannot become a folder before the request runs (nothing is created)."""
    path = Path(out).absolute()
    for folder in (path, *path.parents):
        if folder.exists():
            if not folder.is_dir():
                raise InputError(f"--out {out}: {folder} is not a folder")
            return


def _write_outputs(out: Path, result: Any, extra: dict[str, Any]) -> Path:
    """Write the delivered images, then manifest.json, into ``out`` without overwriting anything.

    A name already taken (by an earlier request, or another process sharing the
    folder) gets the request id: ``image-000-<id>.png``, ``manifest-<id>.json``.
    The manifest names the files it wrote and is written last.
    """
    from ..images import png_bytes, write_new

    tag = str(result.request_id)[:12]
    try:
        entries = []
        for img in result.images:
            entry = img.as_dict()
            entry["file"] = None
            if img.image is not None:
                stem = f"image-{img.index:03d}"
                entry["file"] = write_new(out, [f"{stem}.png", f"{stem}-{tag}.png"], png_bytes(img.image)).name
            entries.append(entry)
        manifest = {
            "elens_version": __version__,
            "request_id": result.request_id,
            "status": result.status,
            **extra,
            "text": result.prompt.as_dict() if result.prompt is not None else None,
            "model_id": result.model_id,
            "bias": result.as_dict()["bias"],
            "failures": [f.as_dict() for f in result.failures],
            "images": entries,
        }
        data = (json.dumps(manifest, indent=2, ensure_ascii=False) + "\n").encode()
        return write_new(out, ["manifest.json", f"manifest-{tag}.json"], data)
    except OSError as exc:
        raise InputError(f"--out {out}: cannot write the output: {exc.strerror or exc} "
                         f"(request {result.request_id} is in the audit log)") from None


def _summary(result: Any, manifest: Path) -> str:
    return result.explain() + f"\nmanifest: {manifest}"


@cli.command()
@click.argument("prompt")
@policy_option
@audit_option
@click.option("-n", "--images", "n", default=1, show_default=True, type=int)
@click.option("--seed", default=None, type=int, help="Base seed; image i uses seed + i. Random when omitted.")
@click.option("--out", "out", required=True, type=click.Path(file_okay=False), help="Folder for images and manifest.json.")
@click.option("--model", default=None, help="Backend model: a hub id or a local path (overrides the policy).")
@click.option("--steps", default=None, type=int)
@click.option("--guidance", default=None, type=float)
@click.option("--width", default=None, type=int)
@click.option("--height", default=None, type=int)
@click.option("--device", default=None, help="cuda, mps or cpu (default: chosen automatically).")
@click.option("--json", "as_json", is_flag=True)
@click.option("--strict", is_flag=True, help="Exit 1 when the prompt is refused or an image is blocked.")
def generate(prompt: str, policy: str, audit_log: str | None, n: int, seed: int | None, out: str,
             model: str | None, steps: int | None, guidance: float | None, width: int | None, height: int | None,
             device: str | None, as_json: bool, strict: bool) -> None:
    """Generate N images under the policy; write the delivered ones and manifest.json to --out."""
    _check_out(out)
    overrides = {k: v for k, v in {"model": model, "device": device}.items() if v is not None}
    lens = _lens(policy, audit_log, overrides)
    options = {k: v for k, v in {"steps": steps, "guidance": guidance, "width": width, "height": height}.items()
               if v is not None}
    result = lens.generate(prompt, n=n, seed=seed, **options)
    manifest = _write_outputs(Path(out), result, {"kind": "generate", "policy": _policy_ref(lens)})
    _emit(json.loads(manifest.read_text()), as_json, _summary(result, manifest))
    if strict and result.status in ("refused", "blocked", "partial"):
        sys.exit(1)


@cli.command()
@click.argument("images", nargs=-1, required=True, type=click.Path(dir_okay=False))
@policy_option
@audit_option
@click.option("--prompt", default=None, help="The prompt the images were made from, if known.")
@click.option("--out", "out", required=True, type=click.Path(file_okay=False))
@click.option("--json", "as_json", is_flag=True)
@click.option("--strict", is_flag=True, help="Exit 1 when an image is blocked.")
def moderate(images: tuple[str, ...], policy: str, audit_log: str | None, prompt: str | None, out: str,
             as_json: bool, strict: bool) -> None:
    """Run the image checks and edits on existing image files."""
    _check_out(out)
    lens = _lens(policy, audit_log)
    result = lens.moderate(list(images), prompt=prompt)
    manifest = _write_outputs(Path(out), result, {"kind": "moderate", "policy": _policy_ref(lens)})
    _emit(json.loads(manifest.read_text()), as_json, _summary(result, manifest))
    if strict and result.status in ("blocked", "partial"):
        sys.exit(1)


def _policy_ref(lens: Any) -> dict[str, str]:
    p = lens.policy
    return {"name": p.name, "version": p.version, "sha256": p.sha256, "source": str(p.source)}


@cli.command("plugins")
@click.option("--json", "as_json", is_flag=True)
def plugins_cmd(as_json: bool) -> None:
    """List installed plugins: name, version, hooks and components."""
    from ..plugins import Registry, describe_plugins, make_manager

    pm = make_manager()
    rows = describe_plugins(pm, Registry(pm))
    if as_json:
        click.echo(json.dumps(rows, indent=2))
        return
    if not rows:
        click.echo("no plugins installed")
    width = max((len(r["name"]) for r in rows), default=0)
    for r in rows:
        click.echo(f"{r['name']:<{width}}  {r['version']:<8}  {', '.join(r['components']) or '-'}")


_plugin_commands_added = False


def build_cli() -> click.Group:
    """The ``elens`` group with the built-in groups and every plugin's commands mounted."""
    global _plugin_commands_added
    from .audit import audit_group
    from .batch import batch
    from .evaluate import eval_command
    from .policy import policy_group

    cli.add_command(policy_group)
    cli.add_command(audit_group)
    cli.add_command(batch)
    cli.add_command(eval_command)
    if not _plugin_commands_added:
        from ..plugins import make_manager

        make_manager().hook.register_commands(cli=cli)
        _plugin_commands_added = True
    return cli


def main() -> None:
    """Console entry point."""
    try:
        group = build_cli()
    except ElensError as exc:
        click.echo(f"elens: error: {exc}", err=True)
        sys.exit(2)
    group(prog_name="elens")
