"""Arrays worth keeping between processes, in the user's elens cache folder.

Each file is named by a key over what it was computed from, so a changed input makes
a new file rather than a stale read. Caching is best effort: an unreadable or
unwritable cache only costs the computation again.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
from pathlib import Path
from typing import Any, Callable, Iterable


def cache_dir() -> Path:
    """``$ELENS_CACHE``, else ``$XDG_CACHE_HOME/elens``, else ``~/.cache/elens``."""
    xdg = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return Path(os.environ.get("ELENS_CACHE") or xdg / "elens")


def files_key(paths: Iterable[Path], *extra: str) -> str | None:
    """A key over the files' names, sizes and modification times and ``extra``; None
    when a file cannot be read."""
    key = hashlib.sha256()
    for path in paths:
        try:
            st = path.stat()
        except OSError:
            return None
        key.update(f"{path.name}:{st.st_size}:{st.st_mtime_ns};".encode())
    for part in extra:
        key.update(part.encode("utf-8") + b"\0")
    return key.hexdigest()[:16]


def cached_arrays(path: Path | None, compute: Callable[[], dict[str, Any]],
                  valid: Callable[[dict[str, Any]], bool] = lambda arrays: True) -> dict[str, Any]:
    """The arrays stored at ``path`` (an ``.npz``) when they are ``valid``, or else
    ``compute()``'s, then stored there."""
    import numpy as np

    if path is not None and path.is_file():
        try:
            with np.load(path, allow_pickle=False) as npz:
                arrays = {k: npz[k] for k in npz.files}
            if valid(arrays):
                return arrays
        except Exception:  # noqa: BLE001 - truncated, empty or foreign files raise many kinds; all mean "compute"
            pass
    arrays = compute()
    if path is not None:
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(dir=path.parent, prefix="." + path.stem + "-", suffix=".npz")
            try:
                with os.fdopen(fd, "wb") as fh:
                    np.savez(fh, **arrays)
                os.replace(tmp, path)
            except BaseException:
                Path(tmp).unlink(missing_ok=True)
                raise
        except OSError:
            pass
    return arrays
