"""Reading input images safely; writing output files atomically and without overwriting."""

from __future__ import annotations

import errno
import hashlib
import os
import tempfile
import warnings
from pathlib import Path
from typing import Sequence

from PIL import Image, ImageFile, UnidentifiedImageError

from .errors import InputError

# Refuse truncated files instead of silently padding them with grey.
ImageFile.LOAD_TRUNCATED_IMAGES = False


def sha256_image(image: Image.Image) -> str:
    """SHA-256 of an image's size, mode and pixels (not of any file encoding)."""
    rgb = image.convert("RGB")
    h = hashlib.sha256(f"{rgb.width}x{rgb.height}:RGB:".encode())
    h.update(rgb.tobytes())
    return h.hexdigest()


def load_image(path: str | os.PathLike, max_pixels: int) -> Image.Image:
    """Open an image file as RGB, or raise a one-line :class:`InputError` naming the file.

    The pixel count is checked against ``max_pixels`` (``limits.max_image_pixels``)
    from the header, before any pixel is decoded. Every mode is converted to RGB:
    transparency onto white, 16-bit and 32-bit grey scaled to their peak, float
    grey from 0..1 (or clipped to 0..255). Truncated files are refused, never padded.
    """
    path = Path(path)
    if not path.exists():
        raise InputError(f"{path}: no such image file")
    if not path.is_file():
        raise InputError(f"{path}: not a regular file (a folder, a device or a pipe)")
    if path.stat().st_size == 0:
        raise InputError(f"{path}: empty file (0 bytes)")
    try:
        with warnings.catch_warnings():
            # The policy's limit is enforced below; Pillow's own warning would only be noise.
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            with Image.open(path) as img:
                if img.width * img.height > max_pixels:
                    raise InputError(f"{path}: {img.width}x{img.height} pixels exceeds "
                                     f"limits.max_image_pixels ({max_pixels})")
                img.load()
                return _to_rgb(img)
    except InputError:
        raise
    except Image.DecompressionBombError as exc:
        raise InputError(f"{path}: refused as a decompression bomb ({exc}; "
                         f"limits.max_image_pixels is {max_pixels})") from None
    except UnidentifiedImageError:
        raise InputError(f"{path}: not an image file Pillow can read") from None
    except (OSError, SyntaxError, ValueError, EOFError, MemoryError) as exc:
        raise InputError(f"{path}: damaged or truncated image ({' '.join(str(exc).split())})") from None


def _to_rgb(img: Image.Image) -> Image.Image:
    if img.mode in ("RGBA", "LA", "PA", "RGBa", "La") or (img.mode == "P" and "transparency" in img.info):
        rgba = img.convert("RGBA")
        background = Image.new("RGB", img.size, (255, 255, 255))
        background.paste(rgba, mask=rgba.getchannel("A"))
        return background
    if img.mode in ("I;16", "I;16B", "I;16L", "I;16N", "I", "F"):
        import numpy as np

        arr = np.nan_to_num(np.asarray(img, dtype=np.float64), nan=0.0, posinf=0.0, neginf=0.0).clip(0, None)
        peak = float(arr.max()) if arr.size else 0.0
        if img.mode == "F":
            scale = 255.0 if peak <= 1.0 else 1.0  # floats in 0..1, or already on the 8-bit scale
        else:
            scale = 255.0 / peak if peak > 0 else 1.0  # 12- to 32-bit data, stretched to its peak
        return Image.fromarray((arr * scale).clip(0, 255).astype("uint8")).convert("RGB")
    return img.convert("RGB")


def write_atomically(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` through a temporary file and a rename: never half a file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def safe_name(folder: Path, name: str) -> Path:
    """``folder / name`` when ``name`` is a plain file name; :class:`InputError` for one that would leave it."""
    if (not isinstance(name, str) or name in ("", ".", "..") or "/" in name or "\\" in name or "\0" in name
            or os.path.isabs(name) or Path(name).name != name):
        raise InputError(f"{folder}: refusing to write {name!r}: an output name must be a plain file name "
                         f"inside the output folder")
    return folder / name


def write_new(folder: Path, names: Sequence[str], data: bytes) -> Path:
    """Write ``data`` under the first of ``names`` that is free in ``folder``; never replace a file.

    The data goes to a temporary file first and is hard-linked to its name, which
    fails if anything (a file, a link) already has that name, so two processes
    sharing a folder never overwrite each other, and a planted symlink is never
    followed. Returns the path written. On a file system without hard links the
    name is claimed with ``O_EXCL`` instead.
    """
    targets = [safe_name(folder, name) for name in names]
    folder.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=folder, prefix=".elens-", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        for target in targets:
            try:
                os.link(tmp, target, follow_symlinks=False)
                return target
            except FileExistsError:
                continue
            except OSError as exc:
                if exc.errno not in (errno.EPERM, errno.ENOTSUP, errno.EOPNOTSUPP, errno.EXDEV, errno.EMLINK):
                    raise
            try:  # no hard links here: claim the name, then write into it
                out = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0), 0o644)
            except FileExistsError:
                continue
            with os.fdopen(out, "wb") as fh:
                fh.write(data)
                fh.flush()
                os.fsync(fh.fileno())
            return target
        raise InputError(f"{folder}: every name for this output is taken ({', '.join(names)})")
    finally:
        os.unlink(tmp)


def png_bytes(image: Image.Image) -> bytes:
    import io

    buf = io.BytesIO()
    image.save(buf, format="PNG")
    return buf.getvalue()
