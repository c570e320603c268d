"""Batches: a whole prompt file through the policy, resumable, on one or more workers.

The output folder holds:

- ``batch.json``: what the batch is (input and its SHA-256, policy, mode, options).
  Running again into the same folder resumes it, and only if all of that matches.
- ``results.jsonl``: one line per input item, in input order.
- ``items/NNNNNN/``: the delivered images and ``manifest.json`` of each generated item.

Exactly once: a chunk's images go first to ``.pending/`` and its results to
``pending.json``, then its records to the audit log in one fsynced append, then the
images to ``items/`` and the results to ``results.jsonl``; ``pending.json`` is
removed last. A resume after a crash delivers the pending items whose requests are
in the log and runs the others again. Nothing is done twice or skipped, and no
result or image is written before its record.

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

from .audit import AuditLog, fsync_dir, segments
from .errors import ElensError, InputError
from .images import png_bytes, safe_name, write_atomically

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


def read_input(path: str | os.PathLike) -> tuple[list[Item], str]:
    """The prompts of a ``.txt`` (one per line), ``.csv`` (a ``prompt`` column, optional
    ``id``) or ``.jsonl`` (objects with ``prompt``, optional ``id``) file, and the
    SHA-256 of the bytes they were read from.

    Blank lines are skipped; ``.txt`` lines lose their surrounding whitespace, the
    other formats give the prompt as it is. A file that cannot be read as such
    raises :class:`InputError` naming the file and line; a prompt the policy refuses
    as input (too long, control characters) is not an error here: its item fails alone.
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
    parsed = [Item(i, line, prompt, ident) for i, (line, prompt, ident) in enumerate(items)]
    return parsed, hashlib.sha256(data).hexdigest()


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
        if ident is not None and (not isinstance(ident, (str, int)) or isinstance(ident, bool)):
            raise InputError(f"{p}:{n}: field 'id' must be a string or an integer")
        if isinstance(ident, str) and not _is_unicode(ident):
            raise InputError(f"{p}:{n}: field 'id' is not valid Unicode text (a lone surrogate escape?)")
        yield n, obj["prompt"], ident


def _is_unicode(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _csv_items(p: Path, lines: Sequence[str]) -> Iterator[tuple[int, str, Any]]:
    # strict: an unclosed quote is an error, not the rest of the file swallowed into one prompt
    reader = csv.reader(io.StringIO("\n".join(lines) + "\n"), strict=True)
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
    An item whose request failed has ``result`` None and ``error`` set: its records
    say so, and it is not done, so a resume tries it again.
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
        self.collector.take()
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
            results = self.lens.check_prompts([item["prompt"] for item in valid], tags=tags, return_exceptions=True)
            records = self.collector.take()
            item_of = {r["request_id"]: r["tags"]["item"] for r in records if r["event"] == "request.received"}
            by_item: dict[int, list] = {}
            for record in records:
                by_item.setdefault(item_of[record["request_id"]], []).append(record)
            for item, result in zip(valid, results):
                records = by_item.get(item["index"], [])
                if isinstance(result, BaseException):
                    outputs[item["index"]] = _failed(item, result, records)
                else:
                    outputs[item["index"]] = _output(item, _check_line(result), records, {})
        return [outputs[item["index"]] for item in items]

    def _generate(self, item: Mapping[str, Any]) -> dict[str, Any]:
        job = self.job
        seed = job.seed + item["index"] * job.images
        tags = {"batch": job.batch_id, "item": item["index"]}
        try:
            result = self.lens.generate(item["prompt"], n=job.images, seed=seed, tags=tags, **dict(job.options or {}))
        except Exception as exc:
            return _failed(item, exc, self.collector.take())
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


def _failed(item: Mapping[str, Any], exc: BaseException, records: list) -> dict[str, Any]:
    return {"index": item["index"], "result": None, "records": records, "files": {}, "error": one_line(exc)}


def one_line(exc: BaseException) -> str:
    """An error as the batch reports it: an elens error's own line, else its type and message."""
    text = str(exc) if isinstance(exc, ElensError) else f"{type(exc).__name__}: {exc}"
    return " ".join(text.split())


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


class WorkerError(ElensError):
    """A worker could not start or a chunk failed as a whole; the message is one line."""


def guarded(fn: Callable[[], list[dict[str, Any]]]) -> list[dict[str, Any]] | dict[str, str]:
    """Run ``fn`` in a worker; an exception comes back as ``{"error": one line}``: an
    exception object may not survive pickling across processes or Ray."""
    try:
        return fn()
    except Exception as exc:
        return {"error": one_line(exc)}


def unguarded(answer: list[dict[str, Any]] | Mapping[str, str]) -> list[dict[str, Any]]:
    if isinstance(answer, Mapping):
        raise WorkerError(f"a batch worker failed: {answer['error']}")
    return answer


_process_worker: Worker | None = None
_process_error: str | None = None


def _start_process_worker(job: Job) -> None:
    global _process_worker, _process_error
    try:
        _process_worker = Worker(job)
    except Exception as exc:  # reported with the first chunk, not retried by the pool
        _process_error = one_line(exc)


def _run_in_process_worker(items: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]] | dict[str, str]:
    if _process_worker is None:
        return {"error": _process_error or "the worker did not start"}
    return guarded(lambda: _process_worker.run(items))


def local_engine(job: Job, chunks: Iterable[list[dict]], workers: int) -> Iterator[list[dict[str, Any]]]:
    """Decide chunks in this process (one worker) or in a pool of spawned processes, in order."""
    if workers <= 1:
        worker = Worker(job)
        for chunk in chunks:
            yield worker.run(chunk)
        return
    import multiprocessing
    from collections import deque
    from concurrent.futures import ProcessPoolExecutor
    from concurrent.futures.process import BrokenProcessPool

    threads = job.threads or max(1, (os.cpu_count() or 1) // workers)
    job = Job(**{**job.__dict__, "threads": threads})
    # spawn, not fork: the parent may already hold threads (torch, onnxruntime) that fork would break.
    pool = ProcessPoolExecutor(workers, multiprocessing.get_context("spawn"), _start_process_worker, (job,))
    try:
        todo, running = iter(chunks), deque()
        for chunk in todo:  # keep every worker busy, and one chunk queued behind each
            running.append(pool.submit(_run_in_process_worker, chunk))
            if len(running) >= 2 * workers:
                break
        while running:
            try:
                answer = running.popleft().result()
            except BrokenProcessPool:
                raise WorkerError("a batch worker process died (out of memory, or killed); "
                                  "run the same command again to resume") from None
            yield unguarded(answer)
            for chunk in todo:
                running.append(pool.submit(_run_in_process_worker, chunk))
                break
    finally:
        pool.shutdown(wait=False, cancel_futures=True)


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
        else:
            self.meta = {"version": STATE_VERSION, "batch_id": uuid.uuid4().hex, **meta}
            write_atomically(state, (json.dumps(self.meta, indent=2, ensure_ascii=False) + "\n").encode())
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
            ids = {r["request_id"] for r in chunk["results"] if r.get("request_id")}
            logged = _logged(Path(chunk["audit"]["path"]), chunk["audit"], ids) if ids else set()
            # Deliver what was recorded; what was not is left undone and runs again.
            # (Items without a request, the invalid ones, were never recorded: deliver them.)
            self._finish({**chunk, "results": [r for r in chunk["results"]
                                               if not r.get("request_id") or r["request_id"] in logged]}, done)
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
        """Record then deliver one chunk (see the module docstring for the order).

        Every output's records are written, failed ones' included; only the
        outputs with a result are delivered.
        """
        records = [r for o in outputs for r in o["records"]]
        delivered = [o for o in outputs if o["result"] is not None]
        staging = self.out / ".pending"
        shutil.rmtree(staging, ignore_errors=True)
        for o in delivered:
            for name, data in o["files"].items():
                write_atomically(safe_name(staging / f"{int(o['index']):06d}", name), data)
        path = Path(os.path.abspath(audit.path))
        try:
            stat = os.stat(path)
            where = {"path": str(path), "inode": stat.st_ino, "offset": stat.st_size}
        except FileNotFoundError:
            where = {"path": str(path), "inode": None, "offset": 0}
        chunk = {"audit": where, "results": [o["result"] for o in delivered],
                 "items": [o["index"] for o in delivered if o["files"]]}
        write_atomically(self.out / "pending.json", json.dumps(chunk, ensure_ascii=False).encode())
        fsync_dir(self.out)
        if records:
            send(audit.append(records))
        self._finish(chunk, self.done)

    def _finish(self, chunk: Mapping[str, Any], done: set[int]) -> None:
        staging = self.out / ".pending"
        lines = [r for r in chunk["results"] if r["index"] not in done]
        moved = False
        for index in chunk["items"]:
            name = f"{int(index):06d}"  # a number, so a hand-edited pending.json cannot name a path
            source, target = staging / name, self.out / "items" / name
            if source.exists() and any(r["index"] == index for r in lines):
                shutil.rmtree(target, ignore_errors=True)
                target.parent.mkdir(exist_ok=True)
                os.replace(source, target)
                moved = True
        if moved:
            fsync_dir(self.out / "items")
        if lines:
            data = "".join(json.dumps(r, ensure_ascii=False, sort_keys=True) + "\n" for r in lines).encode()
            with open(self.results, "ab") as fh:
                fh.write(data)
                fh.flush()
                os.fsync(fh.fileno())
            done.update(r["index"] for r in lines)
        (self.out / "pending.json").unlink(missing_ok=True)
        shutil.rmtree(staging, ignore_errors=True)
        fsync_dir(self.out)


def _read_json(path: Path) -> dict[str, Any]:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise InputError(f"{path}: cannot read the batch state: {exc}; use --restart to start over") from None


def _logged(path: Path, where: Mapping[str, Any], ids: set[str]) -> set[str]:
    """Which requests of ``ids`` completed in the audit log at ``path`` (rotated files included)."""
    found: set[str] = set()

    def scan(file: Path, offset: int = 0) -> None:
        with open(file, "rb") as fh:
            fh.seek(offset)
            for raw in fh:
                try:
                    record = json.loads(raw)
                except ValueError:
                    continue  # a torn tail, or the middle of a line
                if isinstance(record, dict) and record.get("event") == "request.completed" \
                        and record.get("request_id") in ids:
                    found.add(record["request_id"])

    try:
        stat = os.stat(path)
        if stat.st_ino == where.get("inode") and stat.st_size >= where.get("offset", 0):
            scan(path, where["offset"])
            return found
    except FileNotFoundError:
        pass
    for file in segments(path):  # rotated (or moved) since: look everywhere
        try:
            scan(file)
        except FileNotFoundError:
            continue
    return found


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
        if self.tty:  # \x1b[K clears what a longer earlier line left behind
            self.stream.write("\r" + self.line() + "\x1b[K" + ("\n" if final else ""))
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
    """Run (or resume) a batch; returns a summary: items, done before, done now, counts by status.

    Everything that can be refused is refused before the output folder is touched.
    A request that fails stops the batch after its chunk is recorded (its records
    say so), with a :class:`WorkerError` naming the item; that item is not done, so
    the same call tries it again.
    """
    from .lens import Sinks, check_size
    from .plugins import Registry, make_manager

    if workers < 1:
        raise InputError(f"--workers must be at least 1, got {workers}")
    if chunk_size is not None and chunk_size < 1:
        raise InputError(f"--chunk-size must be at least 1, got {chunk_size}")
    if engine not in ("local", "ray"):
        raise InputError(f"unknown engine {engine!r}; use local or ray")
    if ray_address and engine != "ray":
        raise InputError("--ray-address needs --engine ray")
    if generate:
        limit = int(policy.limits.get("max_images", 16))
        if not 1 <= images <= limit:
            raise InputError(f"{images} images per prompt requested; limits.max_images is {limit}")
        if not policy.pipeline.get("backend"):
            raise policy.error(("pipeline", "backend"), "generating needs a backend and the policy names none; "
                               "use --check-only")
        check_size(policy, options or {})
    items, digest = read_input(input_path)
    registry = Registry(make_manager())
    registry.check(policy)
    meta = {
        "input": str(Path(input_path).resolve()),
        "input_sha256": digest,
        "items": len(items),
        "policy": {"name": policy.name, "version": policy.version, "source": policy.source},
        "policy_sha256": policy.sha256,
        "mode": "generate" if generate else "check",
        "options": {"images": images, "seed": seed, **dict(options or {})} if generate else {},
    }
    folder = BatchDir(out, meta, restart=restart)
    outputs: Iterator[list[dict[str, Any]]] | None = None
    try:
        todo = [item.as_dict() for item in items if item.index not in folder.done]
        before = len(items) - len(todo)
        size = chunk_size or (4 if generate else 64)
        chunks = [todo[i:i + size] for i in range(0, len(todo), size)]
        job = Job(policy, folder.batch_id, generate, images, seed, dict(options or {}))
        audit = AuditLog(audit_path or policy.audit.get("path", "elens-audit.jsonl"),
                         rotate_bytes=policy.audit.get("rotate_bytes"))
        sinks = Sinks(policy, registry)
        progress = Progress(len(items), before, progress_stream)
        if engine == "ray":
            from .batch_ray import ray_engine

            outputs = ray_engine(job, chunks, workers, ray_address)
        else:
            outputs = local_engine(job, chunks, workers)
        lines = {item.index: item.line for item in items}
        answered = 0
        for chunk, decided in zip(chunks, outputs):
            answered += 1
            if [o["index"] for o in decided] != [item["index"] for item in chunk]:
                raise WorkerError(f"a worker answered for items {[o['index'] for o in decided][:5]}... "
                                  f"instead of {[item['index'] for item in chunk][:5]}...")
            folder.commit(decided, audit, sinks.send)
            failed = [o for o in decided if o["result"] is None]
            if failed:
                first = failed[0]
                raise WorkerError(f"{input_path}:{lines[first['index']]}: item {first['index']} failed: "
                                  f"{first['error']} ({len(failed)} item(s) of this chunk; recorded in the "
                                  f"audit log, not done: run the same command again to retry)")
            progress.update(len(decided))
        if answered != len(chunks):
            raise WorkerError(f"the {engine} engine answered {answered} of {len(chunks)} chunks; "
                              f"run the same command again to resume")
        return {"items": len(items), "resumed": before, "ran": len(todo), "rate": round(progress.rate(), 1),
                "statuses": status_counts(folder.results), "results": str(folder.results),
                "batch_id": folder.batch_id}
    finally:
        if outputs is not None:
            outputs.close()  # stop the workers now rather than when collected
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
