"""Reading the CSV files the plugin's commands take, with one-line errors naming file and line."""

from __future__ import annotations

import csv
import io
from pathlib import Path

from elens import InputError


def read_bytes(path: str | Path) -> bytes:
    """The file's bytes, read once: what a command parses is what it records the
    sha256 of, even when the file changes meanwhile or is a pipe."""
    try:
        return Path(path).read_bytes()
    except OSError as exc:
        raise InputError(f"{path}: {exc.strerror or exc}") from None


def read_rows(path: str | Path, columns: tuple[str, str],
              raw: bytes | None = None) -> list[tuple[int, dict[str, str]]]:
    """The rows of ``path`` (or of ``raw``, its bytes when already read) with their line
    numbers, values stripped; the header must name both ``columns``. InputError for a
    missing file, bad CSV, non-UTF-8 text, a row with more fields than the header, or
    no rows."""
    raw = read_bytes(path) if raw is None else raw
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise InputError(f"{path}: not UTF-8 text ({exc.reason} at byte {exc.start})") from None
    rows: list[tuple[int, dict[str, str]]] = []
    reader = csv.DictReader(io.StringIO(text, newline=""))
    try:
        if not reader.fieldnames or not set(columns) <= set(reader.fieldnames):
            raise InputError(f"{path}:1: header: the CSV needs the columns {columns[0]} and {columns[1]}")
        for row in reader:
            # DictReader's key for the fields past the header's; empty ones are the
            # trailing commas spreadsheets write
            if any(v.strip() for v in row.get(None) or ()):
                raise InputError(f"{path}:{reader.line_num}: {len(reader.fieldnames) + len(row[None])} fields, "
                                 f"the header has {len(reader.fieldnames)} (a value holding a comma needs quotes)")
            rows.append((reader.line_num, {k: (row.get(k) or "").strip() for k in columns}))
    except csv.Error as exc:
        raise InputError(f"{path}:{reader.line_num}: {exc}") from None
    if not rows:
        raise InputError(f"{path}: no rows")
    return rows
