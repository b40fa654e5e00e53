"""The Core ML backend's compiled-model cache (coreseg.running.backends.coreml_cache)
and page-aligned outputs, on any OS: Core ML's compiler and loader are
stood in for by fakes that behave as they do (a .mlmodelc folder in a
temporary directory; a load error for a corrupt one)."""

import os
from pathlib import Path

import numpy as np
import pytest

from coreseg import CoreMLError
from coreseg.running.backends import coreml as backend
from coreseg.running.backends import coreml_cache as cache


class FakeCompiler:
    """Stands in for coreseg._coreml: makes a .mlmodelc folder in a temp dir,
    as Core ML's compileModelAtURL does, and counts the calls."""

    def __init__(self, tmp: Path):
        self.tmp, self.calls = tmp, 0

    def compile_model(self, path):
        self.calls += 1
        out = self.tmp / f"compiled{self.calls}.mlmodelc"
        out.mkdir()
        (out / "coremldata.bin").write_text(f"compiled from {path}")
        return str(out)


def open_model(compiled: Path):
    """Stands in for _coreml.Model: fails as Core ML does on a corrupt entry."""
    if (compiled / "coremldata.bin").read_text().startswith("garbage"):
        raise CoreMLError("Core ML could not load the model: corrupt")
    return ("model", compiled)


@pytest.fixture
def env(tmp_path, monkeypatch):
    monkeypatch.setenv("CORESEG_CACHE", str(tmp_path / "cache"))
    monkeypatch.delenv("CORESEG_CACHE_MAX_MODELS", raising=False)
    monkeypatch.setattr(cache, "os_build", lambda: "23E224")
    hashes = []
    real = cache.content_hash
    monkeypatch.setattr(cache, "content_hash", lambda p: hashes.append(p) or real(p))
    return FakeCompiler(tmp_path), hashes


def make_package(tmp_path, name="m", payload=b"\x01"):
    pkg = tmp_path / f"{name}.mlpackage"
    (pkg / "Data").mkdir(parents=True)
    (pkg / "Manifest.json").write_text("{}")
    (pkg / "Data" / "weights.bin").write_bytes(payload * 100)
    return pkg


def test_second_load_uses_the_cache_without_reading_the_model(tmp_path, env):
    native, hashes = env
    package = make_package(tmp_path)
    first, cached = cache.compiled_model(package, native)
    assert not cached and native.calls == 1 and first.is_dir() and len(hashes) == 1
    assert first.parent == tmp_path / "cache" / "models" and first.name.endswith("-23E224.mlmodelc")
    again, cached = cache.compiled_model(package, native)
    assert cached and again == first and native.calls == 1  # no second compile
    assert len(hashes) == 1  # and no second read of the package: the sidecar's fingerprint matched
    assert not list((tmp_path / "cache" / "models").glob(".*"))  # no staging left
    assert not (tmp_path / "compiled1.mlmodelc").exists()  # Core ML's temp copy moved


def test_cache_key_follows_content_and_os_build(tmp_path, env, monkeypatch):
    native, hashes = env
    package = make_package(tmp_path)
    first, _ = cache.compiled_model(package, native)
    (package / "Data" / "weights.bin").write_bytes(b"\x02" * 101)  # a retrained model
    second, cached = cache.compiled_model(package, native)
    assert not cached and second != first and native.calls == 2 and len(hashes) == 2
    monkeypatch.setattr(cache, "os_build", lambda: "24A335")  # an OS update
    third, cached = cache.compiled_model(package, native)
    assert not cached and third not in (first, second)


def test_a_touched_but_identical_model_finds_its_entry(tmp_path, env):
    native, hashes = env
    package = make_package(tmp_path)
    first, _ = cache.compiled_model(package, native)
    weights = package / "Data" / "weights.bin"
    os.utime(weights, ns=(weights.stat().st_atime_ns, weights.stat().st_mtime_ns + 10**9))
    again, cached = cache.compiled_model(package, native)
    assert cached and again == first and native.calls == 1
    assert len(hashes) == 2  # the fingerprint changed, so it was hashed again: same content, same entry


def test_a_corrupt_sidecar_is_rehashed(tmp_path, env):
    native, hashes = env
    package = make_package(tmp_path)
    cache.compiled_model(package, native)
    for sidecar in (tmp_path / "cache" / "keys").glob("*.json"):
        sidecar.write_text("{not json")
    _, cached = cache.compiled_model(package, native)
    assert cached and len(hashes) == 2


def test_a_corrupt_entry_is_compiled_again(tmp_path, env):
    native, _ = env
    package = make_package(tmp_path)
    model, compiled, from_cache = cache.load_compiled(package, native, open_model, CoreMLError)
    assert not from_cache and model == ("model", compiled)
    (compiled / "coremldata.bin").write_text("garbage: a half-copied cache")
    model, again, from_cache = cache.load_compiled(package, native, open_model, CoreMLError)
    assert again == compiled and native.calls == 2 and not from_cache  # recompiled into the same entry
    assert (again / "coremldata.bin").read_text().startswith("compiled from")


def test_a_fresh_compile_that_fails_to_load_is_an_error(tmp_path, env, monkeypatch):
    native, _ = env
    package = make_package(tmp_path)

    def broken(compiled):
        raise CoreMLError("Core ML could not load the model")

    with pytest.raises(CoreMLError):
        cache.load_compiled(package, native, broken, CoreMLError)
    assert native.calls == 1  # not retried: it was not a stale cache entry


def test_the_cache_keeps_the_newest_entries(tmp_path, env, monkeypatch):
    native, _ = env
    monkeypatch.setenv("CORESEG_CACHE_MAX_MODELS", "2")
    entries = []
    for i in range(4):
        entries.append(cache.compiled_model(make_package(tmp_path, f"m{i}", bytes([i + 1])), native)[0])
        os.utime(entries[-1], ns=(10**18 + i, 10**18 + i))  # distinct use times
    left = sorted((tmp_path / "cache" / "models").glob("*.mlmodelc"))
    assert left == sorted(entries[2:])
    # Using an entry makes it the newest: it survives the next compile.
    cache.compiled_model(tmp_path / "m2.mlpackage", native)
    cache.compiled_model(make_package(tmp_path, "m5", b"\x09"), native)
    names = {p.name.split("-")[0] for p in (tmp_path / "cache" / "models").glob("*.mlmodelc")}
    assert names == {"m2", "m5"}


def test_max_entries_is_checked(monkeypatch):
    monkeypatch.setenv("CORESEG_CACHE_MAX_MODELS", "0")
    with pytest.raises(ValueError, match="CORESEG_CACHE_MAX_MODELS must be a whole number >= 1, got '0'"):
        cache.max_entries()
    monkeypatch.setenv("CORESEG_CACHE_MAX_MODELS", "3")
    assert cache.max_entries() == 3


def test_content_hash_sees_names_and_bytes(tmp_path):
    package = make_package(tmp_path)
    h = cache.content_hash(package)
    assert h == cache.content_hash(package)
    (package / "Data" / "weights.bin").rename(package / "Data" / "other.bin")
    assert cache.content_hash(package) != h
    single = tmp_path / "x.mlmodel"
    single.write_bytes(b"spec")
    assert cache.content_hash(single) != cache.content_hash(package)


@pytest.mark.parametrize("shape, dtype", [((448, 448), np.int32), ((1, 192, 256), np.int32), ((3, 5), np.int32),
                                          ((1, 21, 128, 128), np.float16), ((7,), np.float32)])
def test_page_aligned_empty(shape, dtype):
    a = backend.page_aligned_empty(shape, dtype)
    assert a.shape == shape and a.dtype == dtype
    assert a.ctypes.data % backend.PAGE == 0
    assert a.flags.c_contiguous and a.flags.writeable
    # Whole pages behind it, as Apple's outputBackings example allocates.
    owner = a.base
    while owner.base is not None:
        owner = owner.base
    end = a.ctypes.data + -(-a.nbytes // backend.PAGE) * backend.PAGE
    assert end <= owner.ctypes.data + owner.nbytes
