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
added, except those in use. An entry Core ML cannot load (a corrupt or
half-copied cache) is removed and compiled again, unless it is in use.

In use: a live MLModel may read its .mlmodelc again long after loading
(a flexible model at a new size, the first prediction on the GPU or the
Neural Engine), so an entry is never removed while a model loaded from it
lives, in this process or any other. Each load holds a `Lease` on its
entry: a shared ``flock`` on ``locks/<entry>.lock``, kept by the segmenter
and let go with it (or by the OS, when its process ends, however it
ends). Removing an entry takes the exclusive lock without waiting, and
skips the entry when it cannot have it. (``flock``, not ``fcntl`` record
locks: those are per process, so they would not keep this process's own
pruning off its own models.)
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
import weakref
from pathlib import Path

try:
    import fcntl
except ImportError:  # not POSIX: no leases, so nothing is pruned (see _lock)
    fcntl = None

from ...files.safe_io import read_json, write_text

__all__ = ["cache_dir", "max_entries", "os_build", "content_hash", "cache_key", "Lease", "hold", "compiled_model",
           "load_compiled"]

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


# ---- leases: entries in use are never removed ---------------------------------------------


def _lock_path(entry: Path) -> Path:
    return entry.parent.parent / "locks" / f"{entry.name}.lock"


def _lock(path: Path, exclusive: bool, wait: bool) -> int | None:
    """A descriptor holding a flock on `path` (made if missing), or None
    when `wait` is False and another holder is in the way. Whoever removes
    an entry unlinks its lock file while holding it exclusively; a holder
    that was waiting then has a lock on a file no longer there, sees so,
    and locks the new one."""
    if fcntl is None:  # no locks: every entry counts as in use, so nothing is removed
        return None if exclusive and not wait else -1
    path.parent.mkdir(parents=True, exist_ok=True)
    mode = (fcntl.LOCK_EX if exclusive else fcntl.LOCK_SH) | (0 if wait else fcntl.LOCK_NB)
    while True:
        fd = os.open(path, os.O_RDWR | os.O_CREAT | getattr(os, "O_CLOEXEC", 0), 0o644)
        try:
            fcntl.flock(fd, mode)
        except BlockingIOError:
            os.close(fd)
            return None
        except BaseException:
            os.close(fd)
            raise
        try:
            held, there = os.fstat(fd), os.stat(path)
            if (held.st_dev, held.st_ino) == (there.st_dev, there.st_ino):
                return fd
        except FileNotFoundError:
            pass
        except BaseException:
            os.close(fd)
            raise
        os.close(fd)  # removed (and maybe made again) while we waited: lock the one there now


def _close(fd: int) -> None:
    if fd >= 0:  # -1: the lease of a system without flock
        os.close(fd)


class Lease:
    """A shared hold on one cache entry: no process removes the entry while
    a lease on it is held. Let go by `release()`, when the lease is
    collected, or by the OS when the process ends."""

    def __init__(self, entry: Path, fd: int):
        self.entry = entry
        self._finalizer = weakref.finalize(self, _close, fd)

    @property
    def held(self) -> bool:
        return self._finalizer.alive

    def release(self) -> None:
        self._finalizer()

    def __repr__(self):
        return f"Lease({str(self.entry)!r}, {'held' if self.held else 'released'})"


def _lease(entry: Path) -> Lease:
    """Waits for a pruner that is removing `entry` right now (briefly), then holds it."""
    return Lease(entry, _lock(_lock_path(entry), exclusive=False, wait=True))


def hold(compiled: Path) -> Lease | None:
    """A lease on `compiled` when it is an entry of the cache (a .mlmodelc
    loaded straight from there), else None."""
    models = cache_dir() / "models"
    try:
        inside = compiled.resolve().parent == models.resolve()
    except OSError:
        return None
    return _lease(models / compiled.name) if inside and compiled.suffix == ".mlmodelc" else None


def _remove_unused(entry: Path) -> bool:
    """Removes `entry` unless a lease on it is held (here or in another
    process); True if it is gone."""
    lock = _lock_path(entry)
    fd = _lock(lock, exclusive=True, wait=False)
    if fd is None:
        return False
    try:
        shutil.rmtree(entry, ignore_errors=True)
        lock.unlink(missing_ok=True)  # while held: see _lock
    finally:
        _close(fd)
    return not entry.exists()


def _prune(root: Path, keep: int, protect: Path) -> None:
    """Keep the `keep` most recently used entries, and every entry in use
    (and 4x as many sidecars, and the lock files of entries in use)."""
    entries = sorted((p for p in (root / "models").glob("*.mlmodelc") if p != protect),
                     key=lambda p: p.stat().st_mtime_ns, reverse=True)
    for old in entries[max(keep - 1, 0):]:
        _remove_unused(old)
    for lock in (root / "locks").glob("*.lock"):
        entry = root / "models" / lock.name[: -len(".lock")]
        if not entry.exists():  # a lock left by a removed entry, unless someone is compiling it now
            _remove_unused(entry)
    sidecars = sorted((root / "keys").glob("*.json"), key=lambda p: p.stat().st_mtime_ns, reverse=True)
    for old in sidecars[4 * keep:]:
        old.unlink(missing_ok=True)


def compiled_model(path: Path, native) -> tuple[Path, bool, Lease]:
    """The cached .mlmodelc of a .mlpackage/.mlmodel, compiling it with
    ``native.compile_model`` on a miss. Returns (path, True if it came from
    the cache, a lease on it: keep it as long as a model loaded from it)."""
    root = cache_dir()
    final = root / "models" / f"{path.stem}-{cache_key(path, root)[:24]}-{os_build()}.mlmodelc"
    lease = _lease(final)  # before looking: once held, the entry is not removed
    try:
        if final.is_dir():
            os.utime(final)  # recently used
            return final, True, lease
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
        return final, False, lease
    except BaseException:
        lease.release()
        raise


def load_compiled(path: Path, native, open_model, error_type):
    """(model, compiled path, from cache, lease): `open_model(compiled_path)`
    on the cached compilation of `path`. If a cached entry fails to open
    with `error_type` (Core ML cannot load it: a corrupt cache), it is
    removed, compiled again and opened once more; unless a model loaded
    from it is in use (here or in another process), which it then is not
    removed from under: the error is raised, saying so."""
    compiled, from_cache, lease = compiled_model(path, native)
    try:
        return open_model(compiled), compiled, from_cache, lease
    except error_type as e:
        lease.release()
        if not from_cache:
            raise
        failure = e
    except BaseException:
        lease.release()
        raise
    if not _remove_unused(compiled):
        raise error_type(f"{failure}; the cached compilation {compiled} was not replaced, because a model loaded "
                         "from it is still in use (in this process or another): close that model, or set "
                         "CORESEG_CACHE to another folder") from failure
    compiled, from_cache, lease = compiled_model(path, native)
    try:
        return open_model(compiled), compiled, from_cache, lease
    except BaseException:
        lease.release()
        raise
