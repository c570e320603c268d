"""Batches: a whole prompt file through the policy, resumable, on one or more workers.

The output folder holds:

- ``batch.json``: what the batch is (input and its SHA-256, policy, mode, options).
  Running again into the same folder resumes it, and only if all of that matches.
- ``results.jsonl``: one line per input item, in input order.
- ``items/NNNNNN/``: the delivered images and ``manifest.json`` of each generated item.

Exactly once: a chunk of results goes first to ``pending.json`` (its images to
``.pending/``), then its records to the audit log in one fsynced append, then to
``results.jsonl`` and ``items/``; ``pending.json`` is removed last. A resume after a
crash finishes a pending chunk whose requests are in the log and drops one whose
requests are not, so it runs again. Nothing is done twice or skipped, and no result
or image is written before its record.

Workers hold the models and decide; the one process that reads the input writes
the audit log and the results, so the chain has one writer.
"""

from __future__ import annotations

import base64
import csv
import fcntl
import hashlib
import io
import json
import os
import shutil
import sys
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator, Mapping, Sequence

from .audit import AuditLog, segments
from .errors import InputError
from .images import png_bytes, write_atomically

INPUT_SUFFIXES = (".txt", ".csv", ".jsonl")
STATE_VERSION = 1


# -- input -------------------------------------------------------------------------------
@dataclass(frozen=True)
class Item:
    """One prompt of the input: ``index`` counts items from 0, ``line`` is its line in the file."""

    index: int
    line: int
    prompt: str
    id: Any = None

    def as_dict(self) -> dict[str, Any]:
        return {"index": self.index, "line": self.line, "prompt": self.prompt, "id": self.id}


def read_items(path: str | os.PathLike) -> list[Item]:
    """The prompts of a ``.txt`` (one per line), ``.csv`` (a ``prompt`` column, optional
    ``id``) or ``.jsonl`` (objects with ``prompt``, optional ``id``) file.

    Blank lines are skipped. A file that cannot be read as such raises
    :class:`InputError` naming the file and line; a prompt the policy refuses as input
    (too long, control characters) is not an error here: its item fails alone.
    """
    p = Path(path)
    suffix = p.suffix.lower()
    if suffix not in INPUT_SUFFIXES:
        raise InputError(f"{p}: unknown input type {suffix or '(none)'!r}; use .txt (one prompt per line), "
                         f".csv (a prompt column) or .jsonl (objects with a prompt field)")
    try:
        data = p.read_bytes()
    except OSError as exc:
        raise InputError(f"{p}: cannot read the input: {exc.strerror or exc}") from None
    lines = _decode_lines(p, data)
    if suffix == ".txt":
        items = [(n, text.strip(), None) for n, text in enumerate(lines, 1) if text.strip()]
    elif suffix == ".jsonl":
        items = list(_jsonl_items(p, lines))
    else:
        items = list(_csv_items(p, lines))
    if not items:
        raise InputError(f"{p}: no prompts in the input")
    return [Item(i, line, prompt, ident) for i, (line, prompt, ident) in enumerate(items)]


def _decode_lines(p: Path, data: bytes) -> list[str]:
    if data.startswith(b"\xef\xbb\xbf"):
        data = data[3:]
    out = []
    for n, raw in enumerate(data.split(b"\n"), 1):
        try:
            out.append(raw.decode("utf-8").rstrip("\r"))
        except UnicodeDecodeError as exc:
            raise InputError(f"{p}:{n}: not valid UTF-8 (byte 0x{raw[exc.start]:02x} at column {exc.start + 1})") from None
    if out and out[-1] == "":
        out.pop()
    return out


def _jsonl_items(p: Path, lines: Sequence[str]) -> Iterator[tuple[int, str, Any]]:
    for n, text in enumerate(lines, 1):
        if not text.strip():
            continue
        try:
            obj = json.loads(text)
        except ValueError as exc:
            raise InputError(f"{p}:{n}: not valid JSON ({exc.msg} at column {exc.colno})") from None
        if not isinstance(obj, dict) or not isinstance(obj.get("prompt"), str):
            raise InputError(f"{p}:{n}: expected an object with a string field 'prompt'")
        ident = obj.get("id")
        if ident is not None and not isinstance(ident, (str, int)):
            raise InputError(f"{p}:{n}: field 'id' must be a string or an integer")
        yield n, obj["prompt"], ident


def _csv_items(p: Path, lines: Sequence[str]) -> Iterator[tuple[int, str, Any]]:
    reader = csv.reader(io.StringIO("\n".join(lines) + "\n"))
    try:
        header = next(reader)
    except StopIteration:
        raise InputError(f"{p}: the file is empty; expected a header with a 'prompt' column") from None
    except csv.Error as exc:
        raise InputError(f"{p}:1: {exc}") from None
    names = [h.strip().lower() for h in header]
    if "prompt" not in names:
        raise InputError(f"{p}:1: no 'prompt' column in the header ({', '.join(header) or 'empty'})")
    at, id_at = names.index("prompt"), (names.index("id") if "id" in names else None)
    start = reader.line_num + 1
    try:
        for row in reader:
            line, start = start, reader.line_num + 1
            if not any(cell.strip() for cell in row):
                continue
            if len(row) <= at:
                raise InputError(f"{p}:{line}: the row has {len(row)} column(s); 'prompt' is column {at + 1}")
            ident = row[id_at] if id_at is not None and id_at < len(row) and row[id_at] != "" else None
            yield line, row[at], ident
    except csv.Error as exc:
        raise InputError(f"{p}:{reader.line_num}: {exc}") from None


def file_sha256(path: str | os.PathLike) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


# -- workers -------------------------------------------------------------------------------
class _Collector:
    """Stands in for the audit log in a worker: keeps the records for the writing process."""

    def __init__(self) -> None:
        self.records: list[dict[str, Any]] = []

    def append(self, records: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
        self.records.extend(dict(r) for r in records)
        return []  # nothing was written here, so the sinks get nothing here

    def take(self) -> list[dict[str, Any]]:
        out, self.records = self.records, []
        return out


@dataclass(frozen=True)
class Job:
    """What every worker needs to decide items the same way (picklable, for processes and Ray)."""

    policy: Any  # elens.policy.Policy
    batch_id: str
    generate: bool = False
    images: int = 1
    seed: int = 0
    options: Mapping[str, Any] | None = None
    threads: int | None = None


class Worker:
    """Holds one :class:`elens.Lens` (models load once) and decides chunks of items.

    ``run`` returns one output per item: ``{"index", "result", "records", "files"}``
    where ``result`` is the item's results line, ``records`` its audit records
    (unchained) and ``files`` the item's files (name -> bytes) when it generates.
    """

    def __init__(self, job: Job):
        if job.threads:
            _limit_threads(job.threads)
        from .lens import Lens

        self.job = job
        self.collector = _Collector()
        self.lens = Lens(job.policy, audit=self.collector)
        if job.threads and "torch" in sys.modules:
            sys.modules["torch"].set_num_threads(job.threads)

    def run(self, items: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
        outputs: dict[int, dict[str, Any]] = {}
        valid = []
        for item in items:
            try:
                self.lens.validate_prompt(item["prompt"])
                valid.append(item)
            except InputError as exc:
                outputs[item["index"]] = _output(item, {"status": "invalid", "error": str(exc)}, [], {})
        if self.job.generate:
            for item in valid:
                outputs[item["index"]] = self._generate(item)
        elif valid:
            tags = [{"batch": self.job.batch_id, "item": item["index"]} for item in valid]
            results = self.lens.check_prompts([item["prompt"] for item in valid], tags=tags)
            by_request: dict[str, list] = {}
            for record in self.collector.take():
                by_request.setdefault(record["request_id"], []).append(record)
            for item, result in zip(valid, results):
                outputs[item["index"]] = _output(item, _check_line(result), by_request[result.request_id], {})
        return [outputs[item["index"]] for item in items]

    def _generate(self, item: Mapping[str, Any]) -> dict[str, Any]:
        job = self.job
        seed = job.seed + item["index"] * job.images
        tags = {"batch": job.batch_id, "item": item["index"]}
        try:
            result = self.lens.generate(item["prompt"], n=job.images, seed=seed, tags=tags, **dict(job.options or {}))
        except InputError as exc:
            return _output(item, {"status": "invalid", "error": str(exc)}, self.collector.take(), {})
        folder = f"items/{item['index']:06d}"
        files, images = {}, []
        for img in result.images:
            name = f"image-{img.index:03d}.png" if img.image is not None else None
            if name:
                files[name] = png_bytes(img.image)
            images.append({"file": f"{folder}/{name}" if name else None, "status": img.status,
                           "sha256": img.sha256, "reason": img.reason})
        manifest = {"request_id": result.request_id, "item": item["index"], "line": item["line"], **result.as_dict()}
        files["manifest.json"] = (json.dumps(manifest, indent=2, ensure_ascii=False) + "\n").encode()
        line = {**_check_line(result.prompt), "status": result.status, "request_id": result.request_id,
                "model_id": result.model_id, "images": images, "manifest": f"{folder}/manifest.json"}
        return _output(item, line, self.collector.take(), files)


def _output(item: Mapping[str, Any], line: Mapping[str, Any], records: list, files: dict) -> dict[str, Any]:
    head = {"index": item["index"], "line": item["line"]}
    if item.get("id") is not None:
        head["id"] = item["id"]
    return {"index": item["index"], "result": {**head, **line}, "records": records, "files": files}


def _check_line(result: Any) -> dict[str, Any]:
    """A prompt's decision as one results line: what the original prompt triggered, and the outcome."""
    first = result.rounds[0][1] if result.rounds else result.findings
    return {
        "request_id": result.request_id,
        "status": result.status,
        "reason": result.reason,
        "flagged": [{"category": f.category, "action": f.action, "score": round(f.score, 6), "plugin": f.plugin}
                    for f in first if f.triggered],
        "final_prompt": result.final_prompt,
        "failures": [f.as_dict() for f in result.failures],
    }


def _limit_threads(n: int) -> None:
    # Before torch or onnxruntime load: each worker gets its share of the cores.
    for var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
        os.environ[var] = str(n)


_process_worker: Worker | None = None


def _start_process_worker(job: Job) -> None:
    global _process_worker
    _process_worker = Worker(job)


def _run_in_process_worker(items: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    assert _process_worker is not None
    return _process_worker.run(items)


def local_engine(job: Job, chunks: Iterable[list[dict]], workers: int) -> Iterator[list[dict[str, Any]]]:
    """Decide chunks in this process (one worker) or in a pool of spawned processes, in order."""
    if workers <= 1:
        worker = Worker(job)
        for chunk in chunks:
            yield worker.run(chunk)
        return
    import multiprocessing

    threads = job.threads or max(1, (os.cpu_count() or 1) // workers)
    job = Job(**{**job.__dict__, "threads": threads})
    # spawn, not fork: the parent may already hold threads (torch, onnxruntime) that fork would break.
    with multiprocessing.get_context("spawn").Pool(workers, _start_process_worker, (job,)) as pool:
        yield from pool.imap(_run_in_process_worker, chunks)


# -- the output folder -----------------------------------------------------------------------
class BatchDir:
    """The output folder of one batch: its identity, its results so far and the commit protocol."""

    def __init__(self, out: str | os.PathLike, meta: Mapping[str, Any], *, restart: bool = False):
        self.out = Path(out)
        try:
            self.out.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise InputError(f"{self.out}: cannot create the output folder: {exc.strerror or exc}") from None
        self._lock: int | None = self._take_lock()
        try:
            self._open(meta, restart)
        except BaseException:
            self.close()
            raise

    def _open(self, meta: Mapping[str, Any], restart: bool) -> None:
        state = self.out / "batch.json"
        if restart:
            for name in ("results.jsonl", "pending.json", "batch.json"):
                (self.out / name).unlink(missing_ok=True)
            for name in ("items", ".pending"):
                shutil.rmtree(self.out / name, ignore_errors=True)
        if state.exists():
            old = _read_json(state)
            for key in ("input_sha256", "policy_sha256", "mode", "options"):
                if old.get(key) != meta.get(key):
                    raise InputError(f"{state}: this folder holds a batch with another {key.replace('_', ' ')} "
                                     f"({old.get(key)!r}, now {meta.get(key)!r}); use another --out, or --restart")
            self.meta = old
            self.resumed = True
        else:
            self.meta = {"version": STATE_VERSION, "batch_id": uuid.uuid4().hex, **meta}
            write_atomically(state, (json.dumps(self.meta, indent=2, ensure_ascii=False) + "\n").encode())
            self.resumed = False
        self.results = self.out / "results.jsonl"
        self.done = self._recover()

    @property
    def batch_id(self) -> str:
        return self.meta["batch_id"]

    def _take_lock(self) -> int:
        fd = os.open(self.out / ".lock", os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            raise InputError(f"{self.out}: another elens batch is writing to this folder") from None
        return fd

    def close(self) -> None:
        if self._lock is not None:
            os.close(self._lock)
            self._lock = None

    # -- recovery -----------------------------------------------------------------
    def _recover(self) -> set[int]:
        self._cut_torn_results()
        done = self._read_done()
        pending = self.out / "pending.json"
        if pending.exists():
            chunk = _read_json(pending)
            ids = set(chunk["request_ids"])
            if not ids or _logged(Path(chunk["audit"]["path"]), chunk["audit"], ids):
                self._finish(chunk, done)  # decided and recorded: deliver it
            else:
                pending.unlink()  # never recorded: it runs again
                shutil.rmtree(self.out / ".pending", ignore_errors=True)
        return done

    def _cut_torn_results(self) -> None:
        if not self.results.exists():
            return
        with open(self.results, "rb+") as fh:
            data = fh.read()
            if data and not data.endswith(b"\n"):
                fh.truncate(data.rfind(b"\n") + 1)
                os.fsync(fh.fileno())

    def _read_done(self) -> set[int]:
        done: set[int] = set()
        if self.results.exists():
            with open(self.results, encoding="utf-8") as fh:
                for n, text in enumerate(fh, 1):
                    try:
                        done.add(int(json.loads(text)["index"]))
                    except (ValueError, KeyError, TypeError):
                        raise InputError(f"{self.results}:{n}: not a results line; the folder was edited "
                                         f"by hand? use --restart to start over") from None
        return done

    # -- commit ---------------------------------------------------------------------
    def commit(self, outputs: Sequence[Mapping[str, Any]], audit: AuditLog, send: Callable[[list], None]) -> None:
        """Record then deliver one chunk (see the module docstring for the order)."""
        records = [r for o in outputs for r in o["records"]]
        staging = self.out / ".pending"
        shutil.rmtree(staging, ignore_errors=True)
        for o in outputs:
            for name, data in o["files"].items():
                folder = staging / f"{o['index']:06d}"
                folder.mkdir(parents=True, exist_ok=True)
                write_atomically(folder / name, data)
        try:
            stat = os.stat(audit.path)
            where = {"path": str(audit.path), "inode": stat.st_ino, "offset": stat.st_size}
        except FileNotFoundError:
            where = {"path": str(audit.path), "inode": None, "offset": 0}
        chunk = {"request_ids": sorted({r["request_id"] for r in records}), "audit": where,
                 "results": [o["result"] for o in outputs], "items": [o["index"] for o in outputs if o["files"]]}
        write_atomically(self.out / "pending.json", json.dumps(chunk, ensure_ascii=False).encode())
        if records:
            send(audit.append(records))
        self._finish(chunk, self.done)

    def _finish(self, chunk: Mapping[str, Any], done: set[int]) -> None:
        staging = self.out / ".pending"
        for index in chunk["items"]:
            source, target = staging / f"{index:06d}", self.out / "items" / f"{index:06d}"
            if source.exists():
                shutil.rmtree(target, ignore_errors=True)
                target.parent.mkdir(exist_ok=True)
                os.replace(source, target)
        lines = [r for r in chunk["results"] if r["index"] not in done]
        if lines:
            data = "".join(json.dumps(r, ensure_ascii=False, sort_keys=True) + "\n" for r in lines).encode()
            with open(self.results, "ab") as fh:
                fh.write(data)
                fh.flush()
                os.fsync(fh.fileno())
            done.update(r["index"] for r in lines)
        (self.out / "pending.json").unlink(missing_ok=True)
        shutil.rmtree(staging, ignore_errors=True)


def _read_json(path: Path) -> dict[str, Any]:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise InputError(f"{path}: cannot read the batch state: {exc}; use --restart to start over") from None


def _logged(path: Path, where: Mapping[str, Any], ids: set[str]) -> bool:
    """Whether every request in ``ids`` completed in the audit log at ``path`` (rotated files included)."""
    found: set[str] = set()

    def scan(file: Path, offset: int = 0) -> None:
        with open(file, "rb") as fh:
            fh.seek(offset)
            for raw in fh:
                try:
                    record = json.loads(raw)
                except ValueError:
                    continue  # a torn tail, or the middle of a line
                if record.get("event") == "request.completed" and record.get("request_id") in ids:
                    found.add(record["request_id"])

    try:
        stat = os.stat(path)
        if stat.st_ino == where.get("inode") and stat.st_size >= where.get("offset", 0):
            scan(path, where["offset"])
        else:  # rotated since: look everywhere
            for file in segments(path):
                scan(file)
    except FileNotFoundError:
        return False
    return found == ids


# -- progress ---------------------------------------------------------------------------------
class Progress:
    """Items done, items per second and time left, on stderr: redrawn on a terminal, a line every few seconds otherwise."""

    def __init__(self, total: int, done: int, stream: Any = None, every_s: float = 5.0):
        self.total, self.done, self.start_done = total, done, done
        self.stream = stream or sys.stderr
        self.tty = bool(getattr(self.stream, "isatty", lambda: False)())
        self.started = self.last = time.monotonic()
        self.every_s = 0.2 if self.tty else every_s

    def rate(self) -> float:
        elapsed = time.monotonic() - self.started
        return (self.done - self.start_done) / elapsed if elapsed > 0 else 0.0

    def line(self) -> str:
        rate = self.rate()
        left = self.total - self.done
        eta = _clock(left / rate) if rate > 0 else "?"
        pct = 100.0 * self.done / self.total if self.total else 100.0
        return f"{self.done}/{self.total} items ({pct:.0f}%)  {rate:.1f} items/s  ETA {eta}"

    def update(self, n: int) -> None:
        self.done += n
        now = time.monotonic()
        if now - self.last >= self.every_s or self.done >= self.total:
            self.last = now
            self._draw(final=self.done >= self.total)

    def _draw(self, final: bool) -> None:
        if self.tty:
            self.stream.write("\r" + self.line() + ("\n" if final else ""))
        else:
            self.stream.write(self.line() + "\n")
        self.stream.flush()


def _clock(seconds: float) -> str:
    s = int(round(seconds))
    return f"{s // 3600}:{s % 3600 // 60:02d}:{s % 60:02d}"


# -- the whole run -------------------------------------------------------------------------------
def run_batch(
    input_path: str | os.PathLike,
    out: str | os.PathLike,
    policy: Any,
    *,
    generate: bool = False,
    workers: int = 1,
    engine: str = "local",
    chunk_size: int | None = None,
    audit_path: str | os.PathLike | None = None,
    images: int = 1,
    seed: int = 0,
    options: Mapping[str, Any] | None = None,
    restart: bool = False,
    ray_address: str | None = None,
    progress_stream: Any = None,
) -> dict[str, Any]:
    """Run (or resume) a batch; returns a summary: items, done before, done now, counts by status."""
    from .lens import Sinks
    from .plugins import Registry, make_manager

    if workers < 1:
        raise InputError(f"--workers must be at least 1, got {workers}")
    items = read_items(input_path)
    limit = int(policy.limits.get("max_images", 16))
    if generate and not 1 <= images <= limit:
        raise InputError(f"{images} images per prompt requested; limits.max_images is {limit}")
    meta = {
        "input": str(Path(input_path).resolve()),
        "input_sha256": file_sha256(input_path),
        "items": len(items),
        "policy": {"name": policy.name, "version": policy.version, "source": policy.source},
        "policy_sha256": policy.sha256,
        "mode": "generate" if generate else "check",
        "options": {"images": images, "seed": seed, **dict(options or {})} if generate else {},
    }
    folder = BatchDir(out, meta, restart=restart)
    try:
        todo = [item.as_dict() for item in items if item.index not in folder.done]
        before = len(items) - len(todo)
        size = chunk_size or (4 if generate else 64)
        chunks = [todo[i:i + size] for i in range(0, len(todo), size)]
        job = Job(policy, folder.batch_id, generate, images, seed, dict(options or {}))
        audit = AuditLog(audit_path or policy.audit.get("path", "elens-audit.jsonl"),
                         rotate_bytes=policy.audit.get("rotate_bytes"))
        sinks = Sinks(policy, Registry(make_manager()))
        progress = Progress(len(items), before, progress_stream)
        if engine == "ray":
            from .batch_ray import ray_engine

            outputs = ray_engine(job, chunks, workers, ray_address)
        elif engine == "local":
            outputs = local_engine(job, chunks, workers)
        else:
            raise InputError(f"unknown engine {engine!r}; use local or ray")
        for chunk in outputs:
            folder.commit(chunk, audit, sinks.send)
            progress.update(len(chunk))
        return {"items": len(items), "resumed": before, "ran": len(todo), "rate": round(progress.rate(), 1),
                "statuses": status_counts(folder.results), "results": str(folder.results),
                "batch_id": folder.batch_id}
    finally:
        folder.close()


def status_counts(results: Path) -> dict[str, int]:
    counts: dict[str, int] = {}
    if results.exists():
        with open(results, encoding="utf-8") as fh:
            for text in fh:
                status = json.loads(text)["status"]
                counts[status] = counts.get(status, 0) + 1
    return dict(sorted(counts.items()))


def encode_files(files: Mapping[str, bytes]) -> dict[str, str]:
    return {name: base64.b64encode(data).decode() for name, data in files.items()}


def decode_files(files: Mapping[str, str]) -> dict[str, bytes]:
    return {name: base64.b64decode(data) for name, data in files.items()}
