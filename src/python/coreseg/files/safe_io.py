"""Reading and writing the user's files safely.

- Outputs are written to a temporary name in the destination folder and
  renamed over the destination when complete (`atomic_write`): a failure
  (a full disk, a crash) never leaves a truncated file or replaces a good
  one with it, and a symlink at the destination is replaced, never written
  through (its target is left alone).
- What is read is bounded: JSON by size and nesting (`read_json`,
  `loads_json`), images by declared pixel count before decoding
  (`check_pixels`; CORESEG_MAX_IMAGE_PIXELS raises the limit).
- OS errors name the file (a full disk says which output it was writing).
"""

from __future__ import annotations

import json
import os
import uuid
from pathlib import Path

__all__ = ["atomic_write", "write_text", "read_json", "loads_json", "max_image_pixels", "check_pixels",
           "MAX_JSON_BYTES"]

#: Largest JSON file coreseg reads (metadata, colour tables, manifests).
MAX_JSON_BYTES = 16 << 20
#: Most pixels an image may declare before it is decoded (11585 x 11585).
DEFAULT_MAX_IMAGE_PIXELS = 1 << 27


def _with_path(e: OSError, path) -> OSError:
    if e.filename is None:
        return type(e)(e.errno, f"{e.strerror or e} (writing {path})", str(path))
    return e


def atomic_write(path, write) -> None:
    """Call ``write(temporary_path)``, then rename the temporary file over
    `path`. On any failure the temporary file is removed and `path` is left
    as it was."""
    path = Path(path)
    tmp = path.parent / f".{path.name}.{uuid.uuid4().hex}.tmp"
    try:
        # Mode 0o666 less the user's umask, as for any new file (mkstemp's
        # 0o600 would leave outputs private).
        os.close(os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666))
        write(str(tmp))
        os.replace(tmp, path)  # replaces a symlink itself, not its target
    except OSError as e:
        raise _with_path(e, path) from None
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def write_text(path, text: str) -> None:
    """Write a text file atomically (see `atomic_write`)."""
    atomic_write(path, lambda tmp: Path(tmp).write_text(text))


def loads_json(text, where: str):
    """Parse JSON text; too large or too deeply nested is a ValueError naming `where`."""
    if len(text) > MAX_JSON_BYTES:
        raise ValueError(f"{where}: {len(text)} bytes of JSON is more than coreseg reads ({MAX_JSON_BYTES})")
    try:
        return json.loads(text)
    except RecursionError:
        raise ValueError(f"{where}: the JSON is nested too deeply to read") from None
    except ValueError as e:
        raise ValueError(f"{where}: not JSON ({e})") from None


def read_json(path, where: str | None = None):
    """Read a JSON file, bounded as `loads_json`."""
    path = Path(path)
    where = where or str(path)
    size = path.stat().st_size
    if size > MAX_JSON_BYTES:
        raise ValueError(f"{where}: a {size}-byte JSON file is more than coreseg reads ({MAX_JSON_BYTES})")
    return loads_json(path.read_text(), where)


def max_image_pixels() -> int:
    text = os.environ.get("CORESEG_MAX_IMAGE_PIXELS")
    if not text:
        return DEFAULT_MAX_IMAGE_PIXELS
    try:
        n = int(text)
        assert n > 0
    except (ValueError, AssertionError):
        raise ValueError(f"CORESEG_MAX_IMAGE_PIXELS must be a positive whole number, got {text!r}") from None
    return n


def check_pixels(width: int, height: int, path) -> None:
    """Refuse an image that declares more pixels than coreseg decodes (a
    decompression bomb is a few bytes that declare gigapixels)."""
    limit = max_image_pixels()
    if width * height > limit:
        raise ValueError(f"{path}: {width}x{height} is {width * height} pixels, more than coreseg decodes "
                         f"({limit}; set CORESEG_MAX_IMAGE_PIXELS to allow more)")


def png_size(path) -> tuple[int, int] | None:
    """(width, height) from a PNG's header, or None if it is not a PNG."""
    with open(path, "rb") as f:
        head = f.read(24)
    if len(head) < 24 or head[:8] != b"\x89PNG\r\n\x1a\n" or head[12:16] != b"IHDR":
        return None
    return int.from_bytes(head[16:20], "big"), int.from_bytes(head[20:24], "big")
