"""The Ray engine of ``elens batch``: the same workers as actors on Ray Data.

Ray is an optional extra (``pip install 'elens[ray]'``). Each actor holds one
:class:`elens.batch.Worker` (so the models load once per actor) and decides a
chunk per call; the driver gets the outputs in input order and commits them
exactly as the local engine does, so the audit log still has one writer.
"""

from __future__ import annotations

import json
from typing import Any, Iterator, Sequence

from .batch import Job, Worker, decode_files, encode_files, guarded, one_line, unguarded
from .errors import InputError


class _Actor:
    def __init__(self, job: Job):
        self.worker: Worker | None = None
        self.error = ""
        try:
            self.worker = Worker(job)
        except Exception as exc:  # reported with each chunk: Ray's own error would be pages long
            self.error = one_line(exc)

    def __call__(self, batch: dict[str, Any]) -> dict[str, Any]:
        import numpy as np

        items = [json.loads(text) for text in batch["item"]]
        answer = guarded(lambda: self.worker.run(items)) if self.worker else {"error": self.error}
        if isinstance(answer, dict):  # the whole chunk failed: say so on each of its rows
            rows = [json.dumps({"index": item["index"], "error": answer["error"]}) for item in items]
        else:  # one JSON string per item: Arrow has no type for the nested records
            rows = [json.dumps({**o, "files": encode_files(o["files"])}, ensure_ascii=False) for o in answer]
        return {"output": np.array(rows, dtype=object)}


def ray_engine(job: Job, chunks: Sequence[list[dict]], workers: int,
               address: str | None = None) -> Iterator[list[dict[str, Any]]]:
    """Decide ``chunks`` on ``workers`` Ray actors; yields the outputs chunk by chunk, in order.

    Connects to the cluster at ``address`` (``ray://…`` or ``auto``) or, without one,
    starts Ray on this machine with as many CPUs as workers.
    """
    try:
        import ray
        import ray.data
    except ImportError:
        raise InputError("--engine ray needs Ray: pip install 'elens[ray]'") from None
    if not chunks:
        return
    import logging

    logging.getLogger("ray.data").setLevel(logging.WARNING)  # our progress line says enough
    if not ray.is_initialized():
        quiet = {"log_to_driver": False, "logging_level": logging.WARNING}
        if address:
            ray.init(address=address, **quiet)
        else:
            ray.init(num_cpus=max(workers, 1), include_dashboard=False, **quiet)
    threads = job.threads or 1
    job = Job(**{**job.__dict__, "threads": threads})
    context = ray.data.DataContext.get_current()
    context.execution_options.preserve_order = True
    context.enable_progress_bars = False
    size = max(len(c) for c in chunks)
    items = [{"item": json.dumps(item, ensure_ascii=False)} for chunk in chunks for item in chunk]
    dataset = ray.data.from_items(items, override_num_blocks=max(1, len(chunks)))
    decided = dataset.map_batches(
        _Actor,
        batch_size=size,
        batch_format="numpy",
        fn_constructor_kwargs={"job": job},
        compute=ray.data.ActorPoolStrategy(size=workers),
        num_cpus=threads,
    )
    pending: list[dict[str, Any]] = []
    sizes = iter(len(c) for c in chunks)
    want = next(sizes)
    for row in decided.iter_rows():
        output = json.loads(row["output"])
        if "result" not in output:
            unguarded({"error": output["error"]})
        output["files"] = decode_files(output["files"])
        pending.append(output)
        if len(pending) == want:
            yield pending
            pending = []
            want = next(sizes, 0)  # the caller checks that every chunk came back, in order
