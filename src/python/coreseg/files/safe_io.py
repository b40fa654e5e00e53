"""Reading and writing the user's files safely.

- Outputs are written to a temporary name in the destination folder and
  renamed over the destination when complete (`atomic_write`): a failure
  (a full disk, a crash) never leaves a truncated file or replaces a good
  one with it, and a symlink at the destination is replaced, never written
  through (its target is left alone).
- A folder of outputs (`segment --export masks`) is written whole under a
  temporary name and put in place when complete (`atomic_folder`), so it
  never mixes files of two runs.
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

__all__ = ["atomic_write", "atomic_folder", "existing_paths", "refuse_existing", "write_text", "read_json",
           "loads_json", "max_image_pixels", "check_pixels", "MAX_JSON_BYTES"]

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


def atomic_folder(path, write) -> None:
    """Write a folder whole: call ``write(temporary_folder)``, then put the
    temporary folder in `path`'s place. What was at `path` (an older folder,
    with files the new one may not have; a file; a symlink, which is
    replaced, never followed) is removed once the new folder is there. On
    any failure the temporary folder is removed and `path` is left as it
    was."""
    import shutil

    path = Path(path)
    tag = uuid.uuid4().hex
    tmp = path.parent / f".{path.name}.{tag}.tmp"
    old = path.parent / f".{path.name}.{tag}.old"
    moved = False
    try:
        os.mkdir(tmp)  # mode 0o777 less the umask, as any new folder
        write(tmp)
        if os.path.lexists(path):
            os.rename(path, old)  # a symlink is moved itself, its target left alone
            moved = True
        os.rename(tmp, path)
    except BaseException as e:  # Ctrl-C and a worker's SIGTERM (SystemExit) too
        if moved and not os.path.lexists(path):
            os.rename(old, path)  # put back what was there
            moved = False
        if isinstance(e, OSError):
            raise _with_path(e, path) from None
        raise
    finally:
        if os.path.isdir(tmp) and not os.path.islink(tmp):
            shutil.rmtree(tmp, ignore_errors=True)
        if moved:
            _remove(old)


def _remove(path: Path) -> None:
    """Remove a file, a symlink (not its target) or a folder tree (its
    symlinks unlinked, never followed)."""
    import shutil

    if os.path.isdir(path) and not os.path.islink(path):
        shutil.rmtree(path, ignore_errors=True)
    else:
        try:
            os.unlink(path)
        except FileNotFoundError:
            pass


def existing_paths(paths) -> list[Path]:
    """The paths that are there: files, folders, and symlinks, dangling ones
    too (an output's symlink is replaced, never written through, so it is
    in the way as much as a file)."""
    return [Path(p) for p in paths if os.path.lexists(p)]


def refuse_existing(paths, overwrite: bool, how: str = "pass --force to overwrite") -> None:
    """The overwrite rule of every command and every path: unless
    `overwrite`, a FileExistsError naming the first output already there
    (`how` says how to replace them), before any work."""
    existing = existing_paths(paths)
    if existing and not overwrite:
        more = f" (and {len(existing) - 1} more)" if len(existing) > 1 else ""
        raise FileExistsError(f"{existing[0]} exists{more}; {how}")


def write_text(path, text: str) -> None:
    """Write a text file atomically (see `atomic_write`)."""
    atomic_write(path, lambda tmp: Path(tmp).write_text(text))


def loads_json(text, where: str, *, unique_keys: bool = False):
    """Parse JSON text; too large or too deeply nested is a ValueError naming
    `where`, and so, with `unique_keys`, is an object with a key twice
    (Python's json keeps the last silently)."""
    if len(text) > MAX_JSON_BYTES:
        raise ValueError(f"{where}: {len(text)} bytes of JSON is more than coreseg reads ({MAX_JSON_BYTES})")
    try:
        return json.loads(text, object_pairs_hook=_unique_keys if unique_keys else None)
    except RecursionError:
        raise ValueError(f"{where}: the JSON is nested too deeply to read") from None
    except _DuplicateKey as e:
        raise ValueError(f"{where}: key {e.args[0]!r} is given twice") from None
    except ValueError as e:
        raise ValueError(f"{where}: not JSON ({e})") from None


class _DuplicateKey(Exception):
    pass


def _unique_keys(pairs):
    out = {}
    for key, value in pairs:
        if key in out:
            raise _DuplicateKey(key)
        out[key] = value
    return out


def read_json(path, where: str | None = None, *, unique_keys: bool = False):
    """Read a JSON file, bounded as `loads_json`."""
    path = Path(path)
    where = where or str(path)
    size = path.stat().st_size
    if size > MAX_JSON_BYTES:
        raise ValueError(f"{where}: a {size}-byte JSON file is more than coreseg reads ({MAX_JSON_BYTES})")
    return loads_json(path.read_text(), where, unique_keys=unique_keys)


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
