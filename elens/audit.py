"""The audit log: JSON Lines, one record per event, hash-chained, fsynced, shared safely.

Each record carries ``seq`` (1, 2, ...), ``prev`` (the previous record's hash; 64
zeros for the first) and ``hash``: the SHA-256 of the record's canonical JSON
(sorted keys, no spaces, UTF-8) without ``hash`` and ``hmac``. With
``ELENS_AUDIT_KEY`` set, ``hmac`` is the HMAC-SHA256 of the same bytes under that
key. With ``rotate_bytes``, a log that has reached that size is renamed to
``LOG.1``, ``LOG.2``, ... (oldest first) and the chain goes on in a fresh ``LOG``.
The format is in docs/audit.md.
"""

from __future__ import annotations

import base64
import fcntl
import hashlib
import hmac as hmac_mod
import io
import json
import os
import re
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Iterator, Mapping, Sequence

from .errors import AuditError
from .images import sha256_image

__all__ = [
    "GENESIS", "KEY_ENV", "AuditLog", "VerifyResult", "canonical", "image_record", "read_records",
    "record_hash", "record_hmac", "redact", "segments", "sha256_image", "verify",
]

GENESIS = "0" * 64
KEY_ENV = "ELENS_AUDIT_KEY"
THUMBNAIL_PX = 64


def canonical(record: Mapping[str, Any]) -> bytes:
    """The bytes that ``hash`` and ``hmac`` cover: the record without them, canonical JSON."""
    body = {k: v for k, v in record.items() if k not in ("hash", "hmac")}
    return json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def record_hash(record: Mapping[str, Any]) -> str:
    return hashlib.sha256(canonical(record)).hexdigest()


def record_hmac(record: Mapping[str, Any], key: str) -> str:
    return hmac_mod.new(key.encode(), canonical(record), hashlib.sha256).hexdigest()


def redact(text: str | None, mode: str) -> Any:
    """A prompt as ``audit.redact_prompt`` allows it to be kept: text, ``{"sha256": hex}`` or None."""
    if text is None or mode == "none":
        return text
    if mode == "hash":
        try:
            return {"sha256": hashlib.sha256(text.encode()).hexdigest()}
        except UnicodeEncodeError as exc:
            raise AuditError(f"the prompt cannot be recorded: {_not_unicode(exc)}") from None
    if mode == "drop":
        return None
    raise ValueError(f"unknown redaction mode {mode!r}")


def _not_unicode(exc: UnicodeEncodeError) -> str:
    char = exc.object[exc.start] if isinstance(exc.object, str) else "?"
    return (f"the text is not valid Unicode (U+{ord(char):04X}, a lone surrogate: undecodable bytes "
            f"in the input?)")


def image_record(image: Any, retention: str) -> dict[str, Any]:
    """What the log keeps of an image under ``audit.image_retention``.

    ``none`` -> ``{}``; ``hash`` -> ``{"sha256"}`` (see :func:`sha256_image`: size and RGB
    pixels, not a file encoding); ``thumbnail`` adds a PNG data URL at most 64 px on a
    side; ``full`` adds the whole image as a PNG data URL.
    """
    if image is None or retention == "none":
        return {}
    out: dict[str, Any] = {"sha256": sha256_image(image)}
    if retention in ("thumbnail", "full"):
        copy = image.convert("RGB")
        if retention == "thumbnail":
            copy.thumbnail((THUMBNAIL_PX, THUMBNAIL_PX))
        buf = io.BytesIO()
        copy.save(buf, format="PNG", optimize=True)
        out[retention] = "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode()
    return out


# -- files -----------------------------------------------------------------------------
def segments(path: str | os.PathLike) -> list[Path]:
    """The files of a log, oldest first: rotated ``LOG.1``, ``LOG.2``, ... then ``LOG``."""
    path = Path(path)
    pattern = re.compile(re.escape(path.name) + r"\.(\d+)$")
    try:
        names = os.listdir(path.parent or ".")
    except OSError:
        names = []
    rotated = sorted((int(m.group(1)), path.with_name(n)) for n in names if (m := pattern.match(n)))
    files = [p for _, p in rotated]
    if path.exists() or not files:
        files.append(path)
    return files


def _tail(fh: Any, size: int) -> bytes:
    """The last line of an open binary file (with its newline, if any), read backwards in chunks."""
    chunk, pos, tail = 65536, size, b""
    while pos > 0:
        step = min(chunk, pos)
        pos -= step
        fh.seek(pos)
        tail = fh.read(step) + tail
        if tail.count(b"\n", 0, len(tail) - 1) >= 1:
            break
    return tail[tail.rfind(b"\n", 0, len(tail) - 1) + 1:]


def _last_record(file: Path, fh: Any, size: int) -> tuple[str, int]:
    """(hash, seq) of the last record of a file, or AuditError if the tail is not a whole record."""
    last = _tail(fh, size)
    lineno = None
    if not last.endswith(b"\n"):
        problem = "is torn (no newline at its end)"
    else:
        try:
            record = json.loads(last)
            return str(record["hash"]), int(record["seq"])
        except (ValueError, KeyError, TypeError):
            problem = "is not a valid audit record"
    fh.seek(0)
    lineno = sum(block.count(b"\n") for block in iter(lambda: fh.read(1 << 20), b""))
    lineno += 0 if last.endswith(b"\n") else 1
    raise AuditError(f"{file}:{lineno}: the last line {problem}, at byte {size - len(last)}; refusing to chain "
                     f"onto it (run `elens audit verify {file}` and repair the log)")


class AuditLog:
    """An append-only audit log file that several processes may share.

    ``rotate_bytes`` (optional): once the current file has reached this size, the
    next append first renames it to ``LOG.<n+1>`` and starts a fresh ``LOG``; the
    chain (``seq``, ``prev``) goes on across files.
    """

    def __init__(self, path: str | os.PathLike, rotate_bytes: int | None = None):
        self.path = Path(path)
        self.rotate_bytes = rotate_bytes

    def append(self, records: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
        """Chain, write, flush and fsync one request's ``records`` as one unit under an exclusive lock.

        Returns the records as written (with ``seq``, ``prev``, ``hash``, ``hmac``).
        Raises :class:`AuditError` (one line, naming the file) when the log cannot be
        written; a failed write is cut back so no partial line stays behind.
        """
        key = os.environ.get(KEY_ENV)
        while True:
            fd = self._open_locked()
            try:
                size = os.fstat(fd).st_size
                prev, seq = self._chain_head(fd, size)  # refuses a torn tail before rotating it away
                if self.rotate_bytes and size >= self.rotate_bytes:
                    self._rotate()
                    continue  # the finally below unlocks; the next round opens the fresh file
                try:
                    written, data = self._chain(records, prev, seq, key)
                except UnicodeEncodeError as exc:
                    raise AuditError(f"{self.path}: nothing written: {_not_unicode(exc)}") from None
                self._write(fd, data, size)
                return written
            finally:
                try:
                    fcntl.flock(fd, fcntl.LOCK_UN)
                finally:
                    os.close(fd)

    def _open_locked(self) -> int:
        """Open and lock the current file; retry if another process rotated it meanwhile."""
        while True:
            try:
                fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_APPEND, 0o644)
            except OSError as exc:
                raise AuditError(f"{self.path}: cannot open the audit log: {exc.strerror or exc}") from None
            try:
                fcntl.flock(fd, fcntl.LOCK_EX)
                if os.path.samestat(os.fstat(fd), os.stat(self.path)):
                    return fd
            except FileNotFoundError:
                pass  # renamed away between open and lock
            except OSError as exc:
                os.close(fd)
                raise AuditError(f"{self.path}: cannot lock the audit log: {exc.strerror or exc}") from None
            os.close(fd)

    def _rotate(self) -> None:
        rotated = segments(self.path)[:-1]
        number = int(rotated[-1].name.rsplit(".", 1)[1]) + 1 if rotated else 1
        target = self.path.with_name(f"{self.path.name}.{number}")
        try:
            os.rename(self.path, target)
            fsync_dir(self.path.parent)
        except OSError as exc:
            raise AuditError(f"{self.path}: cannot rotate the audit log to {target.name}: "
                             f"{exc.strerror or exc}") from None

    def _chain_head(self, fd: int, size: int) -> tuple[str, int]:
        """Hash and seq of the chain's last record: this file's, else the newest rotated file's."""
        if size:
            with os.fdopen(os.dup(fd), "rb") as fh:
                return _last_record(self.path, fh, size)
        rotated = segments(self.path)
        rotated = [p for p in rotated if p != self.path]
        if rotated:
            try:
                with open(rotated[-1], "rb") as fh:
                    rsize = os.fstat(fh.fileno()).st_size
                    if rsize:
                        return _last_record(rotated[-1], fh, rsize)
            except OSError as exc:
                raise AuditError(f"{rotated[-1]}: cannot read the rotated audit log: {exc.strerror or exc}") from None
        return GENESIS, 0

    @staticmethod
    def _chain(records: Sequence[Mapping[str, Any]], prev: str, seq: int,
               key: str | None) -> tuple[list[dict[str, Any]], bytes]:
        written, lines = [], []
        for record in records:
            seq += 1
            full = {k: v for k, v in record.items() if k not in ("seq", "prev", "hash", "hmac")}
            full.update(seq=seq, prev=prev)
            full["hash"] = record_hash(full)
            if key:
                full["hmac"] = record_hmac(full, key)
            prev = full["hash"]
            written.append(full)
            lines.append(json.dumps(full, ensure_ascii=False, separators=(",", ":"), sort_keys=True))
        return written, "".join(line + "\n" for line in lines).encode()

    def _write(self, fd: int, data: bytes, size: int) -> None:
        try:
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view):]
            os.fsync(fd)
        except OSError as exc:
            try:
                os.ftruncate(fd, size)  # leave no half-written record behind
                left = ""
            except OSError:
                left = f"; could not cut the file back to {size} bytes, run `elens audit verify`"
            raise AuditError(f"{self.path}: cannot write the audit log: {exc.strerror or exc}{left}") from None


def fsync_dir(directory: Path) -> None:
    try:
        dfd = os.open(directory or ".", os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(dfd)
    except OSError:
        pass
    finally:
        os.close(dfd)


# -- reading ---------------------------------------------------------------------------
def _lines(path: str | os.PathLike) -> Iterator[tuple[Path, int, bytes]]:
    """(file, line number, raw line with its newline if any) across the log's files."""
    for file in segments(path):
        with open(file, "rb") as fh:
            for lineno, raw in enumerate(fh, start=1):
                yield file, lineno, raw


def read_records(path: str | os.PathLike) -> Iterator[dict[str, Any]]:
    """Every complete record of a log, oldest first, across rotated files.

    Lines that are not whole JSON records (a torn tail) are skipped; use
    :func:`verify` to learn whether the log is intact.
    """
    for _, _, raw in _lines(path):
        if not raw.endswith(b"\n"):
            continue
        try:
            record = json.loads(raw)
        except ValueError:
            continue
        if isinstance(record, dict):
            yield record


@dataclass(frozen=True)
class VerifyResult:
    """The outcome of :func:`verify`. ``file``, ``line`` and ``seq`` locate the first problem."""

    ok: bool
    count: int
    path: str
    line: int | None = None
    seq: int | None = None
    problem: str = ""
    file: str | None = None
    last_seq: int = 0
    last_hash: str = GENESIS
    files: tuple[str, ...] = ()
    hmac_checked: bool = False

    def message(self) -> str:
        if self.ok:
            return f"OK: {self.count} records, chain intact"
        file = self.file or self.path
        where = f"{file}:{self.line}" if self.line else file
        seq = f" record seq {self.seq}:" if self.seq is not None else ""
        return f"{where}:{seq} {self.problem}"

    def as_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["files"] = list(self.files)
        out["message"] = self.message()
        return out


def _classify(found: int, expected: int, rest: Iterator[tuple[Path, int, bytes]]) -> str:
    """Why ``found`` stands where ``expected`` should: reordered if ``expected`` comes later."""
    later = False
    for _, _, raw in rest:
        try:
            if json.loads(raw).get("seq") == expected:
                later = True
                break
        except (ValueError, AttributeError):
            continue
    if later or found < expected:
        return f"reordered: found seq {found} where seq {expected} should be"
    missing = f"seq {expected}" if found == expected + 1 else f"seq {expected}..{found - 1}"
    return f"removed: {missing} missing (the next record here is seq {found})"


def verify(path: str | os.PathLike) -> VerifyResult:
    """Check a log's chain across its files, streaming.

    Names the first record that was edited, removed or reordered, or a torn or
    truncated last line, by file, line and seq. With ``ELENS_AUDIT_KEY`` set, every
    record's ``hmac`` is checked too.
    """
    path = str(path)
    key = os.environ.get(KEY_ENV)
    files = segments(path)
    names = tuple(str(f) for f in files)
    if not os.path.exists(files[-1]):
        return VerifyResult(False, 0, path, problem="cannot read: no such file", files=names)
    prev, expected, count = GENESIS, 1, 0
    prev_where: tuple[Path, int] | None = None

    def bad(file: Path, line: int, seq: int | None, problem: str) -> VerifyResult:
        return VerifyResult(False, count, path, line, seq, problem, str(file), expected - 1, prev, names, bool(key))

    lines = _lines(path)
    current, offset = None, 0  # the byte at which the line starts, in its own file
    try:
        for file, lineno, raw in lines:
            if file != current:
                current, offset = file, 0
            if not raw.endswith(b"\n"):
                return bad(file, lineno, expected, f"truncated: the last line is incomplete ({len(raw)} bytes "
                                                f"from byte {offset}, no newline); the {count} records before "
                                                f"it verify (cut the file to {offset} bytes to keep just them)")
            try:
                record = json.loads(raw)
                seq, stated_prev, stated_hash = int(record["seq"]), str(record["prev"]), str(record["hash"])
            except (ValueError, KeyError, TypeError):
                return bad(file, lineno, expected, "edited: the line is not a valid audit record")
            if record_hash(record) != stated_hash:
                return bad(file, lineno, seq, "edited: its content does not match its hash")
            if key:
                if "hmac" not in record:
                    return bad(file, lineno, seq, "unsigned: no hmac although ELENS_AUDIT_KEY is set")
                if not hmac_mod.compare_digest(str(record["hmac"]), record_hmac(record, key)):
                    return bad(file, lineno, seq, "forged: its hmac does not match ELENS_AUDIT_KEY")
            if seq != expected:
                if seq > expected:
                    problem = _classify(seq, expected, lines)
                    return bad(file, lineno, expected if problem.startswith("removed") else seq, problem)
                return bad(file, lineno, seq, f"reordered: found seq {seq} where seq {expected} should be")
            if stated_prev != prev:
                if prev_where is None:
                    return bad(file, lineno, seq, "edited: the first record does not start the chain")
                # This record is intact but chains to a different predecessor: the one
                # before it was rewritten with a recomputed hash (or replaced).
                return VerifyResult(False, count - 1, path, prev_where[1], seq - 1,
                                    f"edited: rewritten with a recomputed hash (record seq {seq} at "
                                    f"{file}:{lineno} chains to a different hash)",
                                    str(prev_where[0]), seq - 2, "", names, bool(key))
            prev, expected, count, prev_where = stated_hash, seq + 1, count + 1, (file, lineno)
            offset += len(raw)
    except OSError as exc:
        return VerifyResult(False, count, path, problem=f"cannot read: {exc.strerror or exc}", files=names)
    return VerifyResult(True, count, path, last_seq=expected - 1, last_hash=prev, files=names,
                        hmac_checked=bool(key))
