"""The Core ML backend's cache of compiled models (.mlmodelc), on any OS.

Compiling a .mlpackage or .mlmodel takes seconds; a compiled model is only
valid for the Core ML that compiled it. So each compiled model is kept
under ``$CORESEG_CACHE/models`` (default ``~/Library/Caches/coreseg``),
named by the source's content hash and the macOS build.

A cache hit does not read the model: a small sidecar per source path
(``keys/``) records its real path, total size and newest modification time
with the content hash they had. While those match, the hash is reused;
when they change, the model is hashed again (a retrained model gets a new
entry; a touched but identical one finds its old entry).

The cache keeps the `max_entries` most recently used models (8, or
``$CORESEG_CACHE_MAX_MODELS``); older ones are removed when a new one is
added. An entry Core ML cannot load (a corrupt or half-copied cache) is
removed and compiled again.
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
import platform
import shutil
import subprocess
import uuid
from pathlib import Path

from ...files.safe_io import read_json, write_text

__all__ = ["cache_dir", "max_entries", "os_build", "content_hash", "cache_key", "compiled_model", "load_compiled"]

DEFAULT_MAX_ENTRIES = 8


def cache_dir() -> Path:
    """Where compiled models are kept: $CORESEG_CACHE, else the user cache."""
    if os.environ.get("CORESEG_CACHE"):
        return Path(os.environ["CORESEG_CACHE"])
    return Path.home() / "Library" / "Caches" / "coreseg"


def max_entries() -> int:
    """How many compiled models the cache keeps: $CORESEG_CACHE_MAX_MODELS (>= 1), else 8."""
    text = os.environ.get("CORESEG_CACHE_MAX_MODELS")
    if text is None:
        return DEFAULT_MAX_ENTRIES
    try:
        n = int(text)
        assert n >= 1
    except (ValueError, AssertionError):
        raise ValueError(f"CORESEG_CACHE_MAX_MODELS must be a whole number >= 1, got {text!r}") from None
    return n


@functools.lru_cache(maxsize=1)
def os_build() -> str:
    """The macOS build (e.g. 23E224): a compiled model is only valid for the
    Core ML that compiled it. Asked once per process."""
    try:
        out = subprocess.run(["sysctl", "-n", "kern.osversion"], capture_output=True, text=True, timeout=10)
        if out.returncode == 0 and out.stdout.strip():
            return out.stdout.strip()
    except (OSError, subprocess.SubprocessError):
        pass
    return platform.mac_ver()[0] or "unknown"


def _files(path: Path) -> list[Path]:
    return sorted(p for p in path.rglob("*") if p.is_file()) if path.is_dir() else [path]


def content_hash(path: Path) -> str:
    """SHA-256 of a model file, or of every file (name and bytes) of a package."""
    h = hashlib.sha256()
    for f in _files(path):
        h.update(str(f.relative_to(path) if path.is_dir() else f.name).encode())
        h.update(b"\0")
        with open(f, "rb") as stream:
            for chunk in iter(lambda: stream.read(1 << 20), b""):
                h.update(chunk)
    return h.hexdigest()


def _fingerprint(path: Path) -> dict:
    """What a cache hit checks instead of reading the model: real path, file
    count, total size and newest modification time (stat only)."""
    stats = [f.stat() for f in _files(path)]
    return {"path": str(path.resolve()), "files": len(stats), "size": sum(s.st_size for s in stats),
            "mtime_ns": max((s.st_mtime_ns for s in stats), default=0)}


def cache_key(path: Path, root: Path | None = None) -> str:
    """The content hash of a model, from its sidecar when the model's
    fingerprint has not changed since, else computed (and recorded)."""
    root = cache_dir() if root is None else root
    fingerprint = _fingerprint(path)
    sidecar = root / "keys" / (hashlib.sha256(fingerprint["path"].encode()).hexdigest()[:32] + ".json")
    try:
        known = read_json(sidecar)
        if known.get("fingerprint") == fingerprint and isinstance(known.get("hash"), str):
            os.utime(sidecar)  # recently used: kept by _prune
            return known["hash"]
    except (OSError, ValueError, AttributeError):
        pass  # no sidecar, or an unreadable one: hash again
    digest = content_hash(path)
    sidecar.parent.mkdir(parents=True, exist_ok=True)
    write_text(sidecar, json.dumps({"fingerprint": fingerprint, "hash": digest}))
    return digest


def _prune(root: Path, keep: int, protect: Path) -> None:
    """Keep the `keep` most recently used entries (and 4x as many sidecars)."""
    entries = sorted((p for p in (root / "models").glob("*.mlmodelc") if p != protect),
                     key=lambda p: p.stat().st_mtime_ns, reverse=True)
    for old in entries[max(keep - 1, 0):]:
        shutil.rmtree(old, ignore_errors=True)
    sidecars = sorted((root / "keys").glob("*.json"), key=lambda p: p.stat().st_mtime_ns, reverse=True)
    for old in sidecars[4 * keep:]:
        old.unlink(missing_ok=True)


def compiled_model(path: Path, native) -> tuple[Path, bool]:
    """The cached .mlmodelc of a .mlpackage/.mlmodel, compiling it with
    ``native.compile_model`` on a miss. Returns (path, True if it came from
    the cache)."""
    root = cache_dir()
    final = root / "models" / f"{path.stem}-{cache_key(path, root)[:24]}-{os_build()}.mlmodelc"
    if final.is_dir():
        os.utime(final)  # recently used
        return final, True
    final.parent.mkdir(parents=True, exist_ok=True)
    temporary = Path(native.compile_model(str(path)))
    staged = final.parent / f".{uuid.uuid4().hex}.mlmodelc"
    try:
        shutil.move(str(temporary), staged)
        try:
            os.replace(staged, final)
        except OSError:
            if not final.is_dir():  # not a lost race with another process
                raise
    finally:
        shutil.rmtree(staged, ignore_errors=True)
        shutil.rmtree(temporary, ignore_errors=True)
    _prune(root, max_entries(), protect=final)
    return final, False


def load_compiled(path: Path, native, open_model, error_type):
    """(model, compiled path, from cache): `open_model(compiled_path)` on the
    cached compilation of `path`. If a cached entry fails to open with
    `error_type` (Core ML cannot load it: a corrupt cache), it is removed,
    compiled again and opened once more."""
    compiled, from_cache = compiled_model(path, native)
    try:
        return open_model(compiled), compiled, from_cache
    except error_type:
        if not from_cache:
            raise
    shutil.rmtree(compiled, ignore_errors=True)
    compiled, from_cache = compiled_model(path, native)
    return open_model(compiled), compiled, from_cache
