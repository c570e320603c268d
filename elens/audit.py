"""The audit log: JSON Lines, one record per event, hash-chained, fsynced, shared safely.

Each record carries ``seq`` (1, 2, ...), ``prev`` (the previous record's hash; 64
zeros for the first) and ``hash``: the SHA-256 of the record's canonical JSON
without ``hash`` and ``hmac``. With ``ELENS_AUDIT_KEY`` set, ``hmac`` is the
HMAC-SHA256 of the same bytes under that key. The format is in docs/audit.md.
"""

from __future__ import annotations

import base64
import fcntl
import hashlib
import hmac as hmac_mod
import io
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator, Mapping, Sequence

from .errors import AuditError
from .images import sha256_image

GENESIS = "0" * 64
KEY_ENV = "ELENS_AUDIT_KEY"


def canonical(record: Mapping[str, Any]) -> bytes:
    body = {k: v for k, v in record.items() if k not in ("hash", "hmac")}
    return json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def record_hash(record: Mapping[str, Any]) -> str:
    return hashlib.sha256(canonical(record)).hexdigest()


def record_hmac(record: Mapping[str, Any], key: str) -> str:
    return hmac_mod.new(key.encode(), canonical(record), hashlib.sha256).hexdigest()


def redact(text: str | None, mode: str) -> Any:
    """A prompt as the policy's ``audit.redact_prompt`` allows it to be kept."""
    if text is None or mode == "none":
        return text
    if mode == "hash":
        return {"sha256": hashlib.sha256(text.encode()).hexdigest()}
    return None


def image_record(image: Any, retention: str) -> dict[str, Any]:
    """What the log keeps of an image under ``audit.image_retention``."""
    if image is None or retention == "none":
        return {}
    out: dict[str, Any] = {"sha256": sha256_image(image)}
    if retention in ("thumbnail", "full"):
        copy = image.convert("RGB")
        if retention == "thumbnail":
            copy.thumbnail((64, 64))
        buf = io.BytesIO()
        copy.save(buf, format="PNG")
        out[retention] = "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode()
    return out


def _last_line(fh: Any, size: int) -> bytes:
    """The last line of an open binary file, read backwards in chunks so appends stay cheap."""
    chunk = 65536
    pos = size
    tail = b""
    while pos > 0:
        step = min(chunk, pos)
        pos -= step
        fh.seek(pos)
        tail = fh.read(step) + tail
        if tail.count(b"\n") >= 2 or pos == 0:
            break
    body = tail[:-1] if tail.endswith(b"\n") else tail
    return body.rsplit(b"\n", 1)[-1]


class AuditLog:
    """An append-only audit log file that several processes may share."""

    def __init__(self, path: str | os.PathLike):
        self.path = Path(path)

    def append(self, records: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
        """Chain, write, flush and fsync ``records`` as one unit under an exclusive lock."""
        key = os.environ.get(KEY_ENV)
        try:
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_APPEND, 0o644)
        except OSError as exc:
            raise AuditError(f"{self.path}: cannot open the audit log: {exc.strerror or exc}") from None
        written: list[dict[str, Any]] = []
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            with os.fdopen(os.dup(fd), "rb") as fh:
                size = os.fstat(fd).st_size
                last = _last_line(fh, size)
                if size and not self._ends_with_newline(fh, size):
                    raise AuditError(f"{self.path}: the last record is torn (no newline at the end); "
                                     "run `elens audit verify` and repair the log before writing to it")
            prev, seq = GENESIS, 0
            if last:
                try:
                    tail_record = json.loads(last)
                    prev, seq = tail_record["hash"], int(tail_record["seq"])
                except (ValueError, KeyError, TypeError):
                    raise AuditError(f"{self.path}: the last record is not a valid audit record; "
                                     "run `elens audit verify`") from None
            lines = []
            for record in records:
                seq += 1
                full = {**record, "seq": seq, "prev": prev}
                full["hash"] = record_hash(full)
                if key:
                    full["hmac"] = record_hmac(full, key)
                prev = full["hash"]
                written.append(full)
                lines.append(json.dumps(full, ensure_ascii=False, separators=(",", ":"), sort_keys=True))
            data = ("\n".join(lines) + "\n").encode() if lines else b""
            try:
                view = memoryview(data)
                while view:
                    n = os.write(fd, view)
                    view = view[n:]
                os.fsync(fd)
            except OSError as exc:
                os.ftruncate(fd, size)  # leave no half-written record behind
                raise AuditError(f"{self.path}: cannot write the audit log: {exc.strerror or exc}") from None
        finally:
            try:
                fcntl.flock(fd, fcntl.LOCK_UN)
            finally:
                os.close(fd)
        return written

    @staticmethod
    def _ends_with_newline(fh: Any, size: int) -> bool:
        fh.seek(size - 1)
        return fh.read(1) == b"\n"


def read_records(path: str | os.PathLike) -> Iterator[dict[str, Any]]:
    """Every complete record of a log, in order (a torn last line is left out)."""
    with open(path, "rb") as fh:
        for raw in fh:
            if not raw.endswith(b"\n"):
                return
            line = raw.strip()
            if line:
                yield json.loads(line)


@dataclass(frozen=True)
class VerifyResult:
    """The outcome of :func:`verify`. ``line`` and ``seq`` locate the first problem."""

    ok: bool
    count: int
    path: str
    line: int | None = None
    seq: int | None = None
    problem: str = ""

    def message(self) -> str:
        if self.ok:
            return f"OK: {self.count} records, chain intact"
        where = f"{self.path}:{self.line}" if self.line else self.path
        seq = f" record seq {self.seq}:" if self.seq is not None else ""
        return f"{where}:{seq} {self.problem}"

    def as_dict(self) -> dict[str, Any]:
        return {"ok": self.ok, "count": self.count, "path": self.path, "line": self.line, "seq": self.seq,
                "problem": self.problem, "message": self.message()}


def verify(path: str | os.PathLike) -> VerifyResult:
    """Check the chain: the first record edited, removed, reordered, or a torn tail, is named."""
    path = str(path)
    key = os.environ.get(KEY_ENV)
    try:
        with open(path, "rb") as fh:
            lines = fh.read().split(b"\n")
    except OSError as exc:
        return VerifyResult(False, 0, path, problem=f"cannot read: {exc.strerror or exc}")
    torn = lines.pop()  # b"" when the file ends with a newline
    parsed: list[dict[str, Any] | None] = []
    for raw in lines:
        try:
            record = json.loads(raw)
            parsed.append(record if isinstance(record, dict) else None)
        except ValueError:
            parsed.append(None)
    prev, expected_seq, count = GENESIS, 1, 0
    for lineno, record in enumerate(parsed, start=1):
        try:
            seq, stated_prev, stated_hash = int(record["seq"]), record["prev"], record["hash"]  # type: ignore[index]
        except (TypeError, KeyError, ValueError):
            return VerifyResult(False, count, path, lineno, None, "not a valid audit record")
        if record_hash(record) != stated_hash:
            return VerifyResult(False, count, path, lineno, seq, "edited: its content does not match its hash")
        if key and not hmac_mod.compare_digest(str(record.get("hmac", "")), record_hmac(record, key)):
            return VerifyResult(False, count, path, lineno, seq, "forged: its HMAC does not match ELENS_AUDIT_KEY")
        if seq != expected_seq or stated_prev != prev:
            later = any(isinstance(r, dict) and r.get("seq") == expected_seq for r in parsed[lineno:])
            if later or seq < expected_seq:
                problem = f"reordered: expected seq {expected_seq} here, found seq {seq}"
            else:
                problem = f"removed: expected seq {expected_seq}, found seq {seq}; the records between are missing"
            return VerifyResult(False, count, path, lineno, seq, problem)
        prev, expected_seq = stated_hash, seq + 1
        count += 1
    if torn:
        return VerifyResult(False, count, path, len(parsed) + 1, None,
                            f"truncated: the last line is incomplete ({len(torn)} bytes); "
                            f"the {count} records before it verify")
    return VerifyResult(True, count, path)
