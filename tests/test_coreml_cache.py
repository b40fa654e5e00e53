"""The Core ML backend's compiled-model cache (coreseg.running.backends.coreml_cache)
and page-aligned outputs, on any OS: Core ML's compiler and loader are
stood in for by fakes that behave as they do (a .mlmodelc folder in a
temporary directory; a load error for a corrupt one). Entries in use are
held with real flock leases, across threads and processes.

Also the native bindings' hand-off of releases from Core ML's threads
(src/native/coreml/coreml_release.h): it is plain C++ and CPython, so it is
built here into a small extension and driven from threads Python does not
know, as Grand Central Dispatch's are."""

import os
import shutil
import subprocess
import sys
import textwrap
import threading
import time
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
    first, cached, _ = cache.compiled_model(package, native)
    assert not cached and native.calls == 1 and first.is_dir() and len(hashes) == 1
    assert first.parent == tmp_path / "cache" / "models" and first.name.endswith("-23E224.mlmodelc")
    again, cached, _ = cache.compiled_model(package, native)
    assert cached and again == first and native.calls == 1  # no second compile
    assert len(hashes) == 1  # and no second read of the package: the sidecar's fingerprint matched
    assert not list((tmp_path / "cache" / "models").glob(".*"))  # no staging left
    assert not (tmp_path / "compiled1.mlmodelc").exists()  # Core ML's temp copy moved


def test_cache_key_follows_content_and_os_build(tmp_path, env, monkeypatch):
    native, hashes = env
    package = make_package(tmp_path)
    first, _, _ = cache.compiled_model(package, native)
    (package / "Data" / "weights.bin").write_bytes(b"\x02" * 101)  # a retrained model
    second, cached, _ = cache.compiled_model(package, native)
    assert not cached and second != first and native.calls == 2 and len(hashes) == 2
    monkeypatch.setattr(cache, "os_build", lambda: "24A335")  # an OS update
    third, cached, _ = cache.compiled_model(package, native)
    assert not cached and third not in (first, second)


def test_a_touched_but_identical_model_finds_its_entry(tmp_path, env):
    native, hashes = env
    package = make_package(tmp_path)
    first, _, _ = cache.compiled_model(package, native)
    weights = package / "Data" / "weights.bin"
    os.utime(weights, ns=(weights.stat().st_atime_ns, weights.stat().st_mtime_ns + 10**9))
    again, cached, _ = cache.compiled_model(package, native)
    assert cached and again == first and native.calls == 1
    assert len(hashes) == 2  # the fingerprint changed, so it was hashed again: same content, same entry


def test_a_corrupt_sidecar_is_rehashed(tmp_path, env):
    native, hashes = env
    package = make_package(tmp_path)
    cache.compiled_model(package, native)
    for sidecar in (tmp_path / "cache" / "keys").glob("*.json"):
        sidecar.write_text("{not json")
    _, cached, _ = cache.compiled_model(package, native)
    assert cached and len(hashes) == 2


def test_a_corrupt_entry_is_compiled_again(tmp_path, env):
    native, _ = env
    package = make_package(tmp_path)
    model, compiled, from_cache, lease = cache.load_compiled(package, native, open_model, CoreMLError)
    assert not from_cache and model == ("model", compiled) and lease.held
    lease.release()  # the model is gone: its entry may be replaced
    (compiled / "coremldata.bin").write_text("garbage: a half-copied cache")
    model, again, from_cache, lease = cache.load_compiled(package, native, open_model, CoreMLError)
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


def names_in(models: Path) -> set:
    return {p.name.split("-")[0] for p in models.glob("*.mlmodelc")}


def test_an_entry_in_use_is_never_pruned(tmp_path, env, monkeypatch):
    # A live MLModel may read its .mlmodelc again (a flexible model at a new
    # size, the first GPU or Neural Engine prediction): while a lease on an
    # entry is held, it stays, even beyond the limit.
    native, _ = env
    monkeypatch.setenv("CORESEG_CACHE_MAX_MODELS", "1")
    models = tmp_path / "cache" / "models"
    a, _, lease = cache.compiled_model(make_package(tmp_path, "a", b"\x01"), native)
    cache.compiled_model(make_package(tmp_path, "b", b"\x02"), native)  # its lease dropped at once
    assert names_in(models) == {"a", "b"}  # a is in use: kept, one over the limit
    lease.release()
    cache.compiled_model(make_package(tmp_path, "c", b"\x03"), native)
    assert names_in(models) == {"c"}  # unused now: a and b go
    assert not (tmp_path / "cache" / "locks" / f"{a.name}.lock").exists()  # and their lock files


HOLDER = """
import os, sys
from pathlib import Path
from coreseg.running.backends import coreml_cache as cache

class Native:
    def compile_model(self, path):
        out = Path(sys.argv[2]) / "compiled-by-other.mlmodelc"
        out.mkdir()
        (out / "coremldata.bin").write_text("compiled")
        return str(out)

cache.os_build = lambda: "23E224"
entry, _, lease = cache.compiled_model(Path(sys.argv[1]), Native())
print(entry.name, flush=True)
sys.stdin.readline()  # holds the lease until told to end
"""


def test_an_entry_in_use_by_another_process_is_never_pruned(tmp_path, env, monkeypatch):
    native, _ = env
    monkeypatch.setenv("CORESEG_CACHE_MAX_MODELS", "1")
    models = tmp_path / "cache" / "models"
    other = subprocess.Popen([sys.executable, "-c", HOLDER, str(make_package(tmp_path, "a", b"\x01")), str(tmp_path)],
                             stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
                             env=dict(os.environ, PYTHONPATH=os.pathsep.join(sys.path)))
    try:
        assert other.stdout.readline().startswith("a-")  # the other process loaded a and holds it
        cache.compiled_model(make_package(tmp_path, "b", b"\x02"), native)
        cache.compiled_model(make_package(tmp_path, "c", b"\x03"), native)
        assert names_in(models) == {"a", "c"}  # b went; a is the other process's
    finally:
        other.communicate("\n", timeout=30)  # it ends: the OS lets its lock go
    assert other.returncode == 0
    cache.compiled_model(make_package(tmp_path, "d", b"\x04"), native)
    assert names_in(models) == {"d"}


def test_a_load_waits_for_a_pruner_and_finds_the_entry_gone(tmp_path, env):
    # A pruner holds an entry's lock exclusively while it removes the entry
    # and its lock file; a load that was waiting for it then locks the new
    # lock file and compiles again, rather than holding a lock on nothing.
    native, _ = env
    package = make_package(tmp_path)
    entry, _, lease = cache.compiled_model(package, native)
    lease.release()
    lock = tmp_path / "cache" / "locks" / f"{entry.name}.lock"
    pruner = cache._lock(lock, exclusive=True, wait=False)
    assert pruner is not None
    got = []
    loader = threading.Thread(target=lambda: got.append(cache.compiled_model(package, native)))
    loader.start()
    time.sleep(0.3)
    assert loader.is_alive() and not got  # waiting for the pruner
    shutil.rmtree(entry)
    lock.unlink()
    os.close(pruner)
    loader.join(timeout=30)
    (path, from_cache, held) = got[0]
    assert path == entry and not from_cache and native.calls == 2 and entry.is_dir()
    assert held.held and cache._lock(lock, exclusive=True, wait=False) is None  # its lock is on the file there now


def test_a_corrupt_entry_in_use_is_not_replaced(tmp_path, env):
    native, _ = env
    package = make_package(tmp_path)
    _, compiled, _, lease = cache.load_compiled(package, native, open_model, CoreMLError)
    (compiled / "coremldata.bin").write_text("garbage")
    with pytest.raises(CoreMLError, match=r"corrupt; the cached compilation .* was not replaced, because a model "
                                          r"loaded from it is still in use"):
        cache.load_compiled(package, native, open_model, CoreMLError)
    assert native.calls == 1 and compiled.is_dir() and lease.held
    lease.release()
    _, again, from_cache, _ = cache.load_compiled(package, native, open_model, CoreMLError)
    assert again == compiled and not from_cache and native.calls == 2


def test_hold_leases_only_cache_entries(tmp_path, env):
    native, _ = env
    entry, _, lease = cache.compiled_model(make_package(tmp_path), native)
    lease.release()
    second = cache.hold(entry)
    assert second.held and second.entry == entry
    assert cache._lock(tmp_path / "cache" / "locks" / f"{entry.name}.lock", exclusive=True, wait=False) is None
    del second  # collected: let go
    fd = cache._lock(tmp_path / "cache" / "locks" / f"{entry.name}.lock", exclusive=True, wait=False)
    assert fd is not None
    os.close(fd)
    elsewhere = tmp_path / "mine.mlmodelc"
    elsewhere.mkdir()
    assert cache.hold(elsewhere) is None


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


# ---- releases from Core ML's threads (coreml_release.h), built here ------------------------

HARNESS = r"""
#include "coreml/coreml_release.h"

#include <chrono>
#include <thread>
#include <vector>

using namespace coreseg::coreml;

// The caller's side of a prediction: each object shared with "Core ML",
// the caller's hold dropped with the GIL (as the bindings do once Predict
// returns), so Core ML's drop is the last.
static std::vector<SharedRef*> SharedWithCoreML(PyObject* list) {
  std::vector<SharedRef*> refs;
  for (Py_ssize_t i = 0; i < PyList_Size(list); ++i) {
    SharedRef* ref = Share(PyList_GetItem(list, i));
    refs.push_back(ref);
  }
  for (SharedRef* ref : refs) ref->holders.fetch_sub(1);  // the caller's hold, minus its drain
  return refs;
}

// Core ML's side, from `n` threads Python does not know (as GCD's), joined.
static void DropOnThreads(const std::vector<SharedRef*>& refs, int n) {
  std::vector<std::thread> threads;
  for (int t = 0; t < n; ++t)
    threads.emplace_back([&refs, t, n] {
      for (size_t i = t; i < refs.size(); i += n) DropFromAnyThread(refs[i]);
    });
  for (auto& thread : threads) thread.join();
}

static int Nothing(void*) { return 0; }

// drop_on_threads(objects, n): Core ML lets go of each on its own threads.
static PyObject* drop_on_threads(PyObject*, PyObject* args) {
  PyObject* list;
  int n;
  if (!PyArg_ParseTuple(args, "O!i", &PyList_Type, &list, &n)) return nullptr;
  std::vector<SharedRef*> refs = SharedWithCoreML(list);
  Py_BEGIN_ALLOW_THREADS
  DropOnThreads(refs, n);
  Py_END_ALLOW_THREADS
  Py_RETURN_NONE;
}

// drop_with_full_queue(objects): the same with the interpreter's
// pending-call queue full; returns how many calls it took to fill it.
static PyObject* drop_with_full_queue(PyObject*, PyObject* args) {
  PyObject* list;
  if (!PyArg_ParseTuple(args, "O!", &PyList_Type, &list)) return nullptr;
  std::vector<SharedRef*> refs = SharedWithCoreML(list);
  long filled = 0;
  while (filled < 100000 && Py_AddPendingCall(&Nothing, nullptr) == 0) ++filled;
  Py_BEGIN_ALLOW_THREADS
  DropOnThreads(refs, 4);
  Py_END_ALLOW_THREADS
  return PyLong_FromLong(filled);
}

// drain(): what every prediction's return does (DropWithGil).
static PyObject* drain(PyObject*, PyObject*) {
  DropWithGil(nullptr);
  Py_RETURN_NONE;
}

// drop_while_exiting(objects, n, pause_us): Core ML lets go on n detached
// threads, one object every pause_us, for as long as it takes: through
// and past the interpreter's exit.
static PyObject* drop_while_exiting(PyObject*, PyObject* args) {
  PyObject* list;
  int n, pause;
  if (!PyArg_ParseTuple(args, "O!ii", &PyList_Type, &list, &n, &pause)) return nullptr;
  auto* refs = new std::vector<SharedRef*>(SharedWithCoreML(list));  // never freed: the threads outlive us
  for (int t = 0; t < n; ++t)
    std::thread([refs, t, n, pause] {
      for (size_t i = t; i < refs->size(); i += n) {
        std::this_thread::sleep_for(std::chrono::microseconds(pause));
        DropFromAnyThread((*refs)[i]);
      }
    }).detach();
  Py_RETURN_NONE;
}

static PyMethodDef methods[] = {
    {"drop_on_threads", drop_on_threads, METH_VARARGS, nullptr},
    {"drop_with_full_queue", drop_with_full_queue, METH_VARARGS, nullptr},
    {"drain", drain, METH_NOARGS, nullptr},
    {"drop_while_exiting", drop_while_exiting, METH_VARARGS, nullptr},
    {nullptr, nullptr, 0, nullptr}};

static PyModuleDef module = {PyModuleDef_HEAD_INIT, "release_harness", nullptr, -1, methods,
                             nullptr, nullptr, nullptr, nullptr};

PyMODINIT_FUNC PyInit_release_harness() {
  if (DeferredDecrefs::InstallWithGil() != 0) return nullptr;  // as coreseg._coreml's init does
  return PyModule_Create(&module);
}
"""


@pytest.fixture(scope="module")
def harness(tmp_path_factory):
    """The folder of release_harness, an extension of coreml_release.h built with this machine's C++ compiler."""
    import sysconfig

    compiler = next((c for c in ("c++", "g++", "clang++") if shutil.which(c)), None)
    include = sysconfig.get_paths()["include"]
    if compiler is None or not Path(include, "Python.h").exists():
        pytest.skip("needs a C++ compiler and Python's headers")
    d = tmp_path_factory.mktemp("release_harness")
    (d / "harness.cc").write_text(HARNESS)
    native = Path(__file__).resolve().parent.parent / "src" / "native"
    target = d / ("release_harness" + sysconfig.get_config_var("EXT_SUFFIX"))
    flags = ["-undefined", "dynamic_lookup"] if sys.platform == "darwin" else []
    built = subprocess.run([compiler, "-std=c++17", "-O1", "-shared", "-fPIC", "-pthread", "-Wall", "-Wextra",
                            "-Werror", "-I", include, "-I", str(native), str(d / "harness.cc"), "-o", str(target),
                            *flags], capture_output=True, text=True)
    assert built.returncode == 0, built.stderr
    return d


def _run_python(code: str, path: Path):
    """Runs `code` in a fresh interpreter (pending calls run on the main
    thread, and the exit test needs an interpreter of its own)."""
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(path), *sys.path]))
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, env=env)


def test_releases_from_unknown_threads_reach_python(harness):
    # Core ML lets go on threads Python does not know: the decrefs are
    # handed to the interpreter, which does them on its main thread.
    done = _run_python(textwrap.dedent("""
        import sys, time, release_harness as h
        objects = [object() for _ in range(2000)]
        before = [sys.getrefcount(o) for o in objects]
        h.drop_on_threads(objects, 8)
        deadline = time.monotonic() + 10
        while [sys.getrefcount(o) for o in objects] != before and time.monotonic() < deadline:
            time.sleep(0.001)  # Python runs: pending calls with it
        assert [sys.getrefcount(o) for o in objects] == before, "some releases never reached Python"
    """), harness)
    assert done.returncode == 0, done.stderr


def test_a_full_pending_call_queue_loses_no_release(harness):
    # With the interpreter's pending-call queue full, Core ML's releases
    # wait in coreseg's own queue: the next prediction drains them, and so
    # does the next release that finds room in the interpreter's queue.
    done = _run_python(textwrap.dedent("""
        import sys, time, release_harness as h
        def settle():
            for _ in range(1000):
                time.sleep(0)
        for finish in ("prediction", "release"):
            objects = [object() for _ in range(100)]
            before = [sys.getrefcount(o) for o in objects]
            filled = h.drop_with_full_queue(objects)
            assert 0 < filled < 100000, filled
            settle()
            assert [sys.getrefcount(o) - 1 for o in objects] == before, "queued, not dropped, not leaked"
            if finish == "prediction":
                h.drain()
            else:
                h.drop_on_threads([object()], 1)
                settle()
            assert [sys.getrefcount(o) for o in objects] == before, finish
    """), harness)
    assert done.returncode == 0, done.stderr


def test_releases_during_interpreter_exit_neither_hang_nor_abort(harness):
    # Releases keep coming on detached threads while the interpreter exits,
    # after it and during it: none takes the GIL, so none ends its thread
    # with pthread_exit (an abort); after the atexit hook they leak.
    for pause in (0, 20, 200):
        done = _run_python(textwrap.dedent(f"""
            import release_harness as h
            h.drop_while_exiting([object() for _ in range(20000)], 8, {pause})
        """), harness)
        assert done.returncode == 0, (pause, done.returncode, done.stderr)


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
