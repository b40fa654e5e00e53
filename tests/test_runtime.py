"""SIMD selection, threads, and the GIL."""

import os
import subprocess
import sys
import threading
import time

import numpy as np
import pytest

import coreseg
from coreseg import _native, reference


def _run(code, **env):
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          env={**os.environ, **env}, timeout=120)


@pytest.mark.parametrize("name", _native.available_backends())
def test_coreseg_simd_environment_variable_forces_a_backend(name):
    result = _run("import coreseg; print(coreseg.simd_backend())", CORESEG_SIMD=name)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == name


def test_default_backend_is_the_best_available():
    env = {k: v for k, v in os.environ.items() if k != "CORESEG_SIMD"}
    result = subprocess.run([sys.executable, "-c", "import coreseg; print(coreseg.simd_backend())"],
                            capture_output=True, text=True, env=env, timeout=120)
    assert result.stdout.strip() == _native.available_backends()[-1]


def test_unavailable_backend_is_a_clear_import_error():
    bogus = "neon" if "neon" not in _native.available_backends() else "avx2"
    result = _run("import coreseg", CORESEG_SIMD=bogus)
    assert result.returncode != 0
    assert f"CORESEG_SIMD={bogus}: SIMD backend '{bogus}' is not available on this CPU" in result.stderr


def test_set_num_threads_round_trips():
    before = coreseg.get_num_threads()
    try:
        coreseg.set_num_threads(3)
        assert coreseg.get_num_threads() == 3
    finally:
        coreseg.set_num_threads(before)
    with pytest.raises(TypeError):
        coreseg.set_num_threads(2.0)


def test_kernels_run_concurrently_from_python_threads():
    # Several Python threads share the pool (one runs on it, the others
    # inline); every result must still be exact.
    rng = np.random.default_rng(0)
    image = rng.integers(0, 256, (600, 800, 4), np.uint8)
    labels = rng.integers(0, 20, (60, 80)).astype(np.int32)
    palette = coreseg.default_palette(20, alpha=150)
    expected = reference.composite(image, labels, palette, outline=(0, 0, 0, 255))
    errors = []

    def work():
        for _ in range(5):
            if not np.array_equal(coreseg.composite(image, labels, palette, outline=(0, 0, 0, 255)), expected):
                errors.append("mismatch")

    threads = [threading.Thread(target=work) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []


def test_gil_is_released_while_a_kernel_runs():
    # With a 30 s switch interval the main thread never hands the GIL over
    # on its own; the counting thread gives it back after every tick
    # (sleep(0)). So the counter can only advance while the main thread is
    # inside a native call that released the GIL.
    image = np.random.default_rng(1).integers(0, 256, (2000, 3000, 4), np.uint8)
    ticks = [0]
    stop = threading.Event()

    def count():
        while not stop.is_set():
            ticks[0] += 1
            time.sleep(0)

    interval = sys.getswitchinterval()
    t = threading.Thread(target=count)
    t.start()
    sys.setswitchinterval(30.0)
    try:
        # A few calls: on a loaded machine the counting thread may not be
        # scheduled during one call even though the GIL is free.
        during_native = 0
        for _ in range(20):
            before = ticks[0]
            coreseg.resize_image(image, (448, 448), "BGRA")
            during_native = ticks[0] - before
            if during_native:
                break
        before = ticks[0]
        sum(i * i for i in range(300_000))  # pure Python: holds the GIL
        during_python = ticks[0] - before
    finally:
        sys.setswitchinterval(interval)
        stop.set()
        t.join()
    assert during_python == 0  # the set-up really holds the GIL
    assert during_native > 0


@pytest.mark.skipif(sys.platform == "win32", reason="fork is POSIX only")
def test_kernels_work_in_a_forked_child():
    # The thread pool's workers do not survive fork(); the child must make
    # its own instead of waiting on threads that are not there.
    code = """
import os, numpy as np, coreseg
labels = np.zeros((800, 800), np.int32)
coreseg.colorize(labels, coreseg.default_palette(2))   # parent starts the pool
pid = os.fork()
if pid == 0:
    out = coreseg.colorize(labels, coreseg.default_palette(2))
    os._exit(0 if (out[..., 3] == 255).all() else 3)
_, status = os.waitpid(pid, 0)
print(os.waitstatus_to_exitcode(status))
"""
    result = _run(code)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "0"
