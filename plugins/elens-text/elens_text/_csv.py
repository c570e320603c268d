"""Reading the CSV files the plugin's commands take, with one-line errors naming file and line."""

from __future__ import annotations

import csv
from pathlib import Path

from elens import InputError


def read_rows(path: str | Path, columns: tuple[str, str]) -> list[tuple[int, dict[str, str]]]:
    """The rows of ``path`` with their line numbers, values stripped; the header must
    name both ``columns``. InputError for a missing file, bad CSV, non-UTF-8 text or no rows."""
    path = Path(path)
    rows: list[tuple[int, dict[str, str]]] = []
    try:
        with open(path, newline="", encoding="utf-8") as fh:
            reader = csv.DictReader(fh)
            if not reader.fieldnames or not set(columns) <= set(reader.fieldnames):
                raise InputError(f"{path}:1: header: the CSV needs the columns {columns[0]} and {columns[1]}")
            for row in reader:
                if None in row:  # DictReader's key for the fields past the header's
                    raise InputError(f"{path}:{reader.line_num}: more fields than the header's "
                                     f"{len(reader.fieldnames)} (quote a value that holds a comma)")
                rows.append((reader.line_num, {k: (row.get(k) or "").strip() for k in columns}))
    except csv.Error as exc:
        raise InputError(f"{path}:{reader.line_num}: {exc}") from None
    except UnicodeDecodeError as exc:
        raise InputError(f"{path}: not UTF-8 text ({exc.reason} at byte {exc.start})") from None
    except OSError as exc:
        raise InputError(f"{path}: {exc.strerror or exc}") from None
    if not rows:
        raise InputError(f"{path}: no rows")
    return rows
