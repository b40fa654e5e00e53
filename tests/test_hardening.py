"""Defects found by attacking the kernels, each with the test that would have
caught it: strides, alignment and byte order of every array, the limits
(sides, downscale, classes, threads, memory), integers beyond int64,
interpreter exit with kernels in flight, thread-creation failure, fork."""

import subprocess
import sys
import textwrap

import numpy as np
import pytest

import coreseg
from coreseg import _native, reference

BOTH = pytest.mark.parametrize("mod", [coreseg, reference], ids=["native", "reference"])


def unaligned(shape, dtype, values):
    raw = np.zeros(int(np.prod(shape)) * np.dtype(dtype).itemsize + 1, np.uint8)[1:]
    a = raw.view(dtype).reshape(shape)
    a[...] = values
    assert not a.flags.aligned
    return a


# ---- strides, alignment, byte order ----------------------------------------------


@BOTH
def test_class_histogram_takes_a_strided_or_reversed_out_and_writes_only_it(mod):
    labels = np.array([[0, 1], [2, 1]], np.int32)
    for make in (lambda b: b[::2], lambda b: b[::-1][:3], lambda b: b[4:1:-1]):
        base = np.full(6, -9, np.int64)
        out = make(base)
        got = mod.class_histogram(labels, 3, out=out)
        assert got is out and out.tolist() == [1, 2, 1]
        assert (base == -9).sum() == 3  # nothing written outside `out`


def test_the_binding_checks_a_1d_out_itself():
    # What class_histogram wrote out of bounds through before (ASan: WRITE).
    with pytest.raises(ValueError, match="out must be contiguous"):
        _native.class_histogram(np.zeros((2, 2), np.int32), 3, np.zeros(6, np.int64)[::2])


def test_unaligned_inputs_are_copied_and_unaligned_outs_refused():
    values = np.arange(12).reshape(3, 4) % 3
    for dtype in (np.uint16, np.int32):
        labels = unaligned((3, 4), dtype, values)
        np.testing.assert_array_equal(coreseg.colorize(labels, coreseg.default_palette(3)),
                                      reference.colorize(values.astype(dtype), coreseg.default_palette(3)))
        assert coreseg.class_histogram(labels, 3).tolist() == [4, 4, 4]
        with pytest.raises(ValueError, match="not aligned"):
            _native.class_histogram(labels, 3, np.zeros(3, np.int64))  # the binding alone refuses it
    logits = unaligned((2, 3, 4), np.float32, np.random.default_rng(0).random((2, 3, 4)))
    np.testing.assert_array_equal(coreseg.argmax(logits), reference.argmax(logits.copy()))
    with pytest.raises(ValueError, match="out is not aligned"):
        coreseg.resize_labels(values.astype(np.int32), (4, 3), out=unaligned((3, 4), np.int32, 0))


@BOTH
def test_big_endian_arrays(mod):
    values = (np.arange(20).reshape(4, 5) % 3).astype(np.int32)
    big = values.astype(">i4")
    np.testing.assert_array_equal(mod.render_mask(big, [1]), reference.render_mask(values, [1]))
    assert mod.class_histogram(big.astype(">u2"), 3).tolist() == [7, 7, 6]
    np.testing.assert_array_equal(mod.argmax(np.ones((2, 3, 4), ">f4")), np.zeros((3, 4), np.int32))
    with pytest.raises(TypeError, match=r"out must have dtype int64 in this machine's byte order, got >i8 \(big-endian\)"):
        mod.class_histogram(values, 3, out=np.zeros(3, ">i8"))


def test_the_binding_names_byte_order():
    with pytest.raises(TypeError, match=r">i4 \(not the machine's byte order\)"):
        _native.class_histogram(np.zeros((2, 2), ">i4"), 3, np.zeros(3, np.int64))


# ---- limits -------------------------------------------------------------------------


@BOTH
def test_sides_are_limited(mod):
    side = coreseg.MAX_SIDE
    assert side == 2**24
    with pytest.raises(ValueError, match=f"size must be at most \\({side}, {side}\\)"):
        mod.resize_labels(np.zeros((2, 2), np.uint8), (10**9, 10**9))
    tall = np.broadcast_to(np.zeros((1, 1), np.uint8), (side + 1, 1))
    with pytest.raises(ValueError, match=f"labels has a side of {side + 1} elements; coreseg takes at most {side}"):
        mod.class_histogram(tall, 2)


def test_a_bad_value_in_the_last_row_is_reported():
    # BadValue::Past once took its "nothing found" sentinel for a position
    # and skipped every row from 2^29 on; rows now stop at 2^24.
    labels = np.zeros((coreseg.MAX_SIDE, 1), np.uint8)
    labels[-1, 0] = 7
    with pytest.raises(ValueError, match="labels has value 7 outside"):
        coreseg.class_histogram(labels, 5)
    labels[-1, 0] = 4
    assert coreseg.class_histogram(labels, 5).tolist() == [coreseg.MAX_SIDE - 1, 0, 0, 0, 1]


@BOTH
def test_oversized_requests_are_one_line_errors(mod):
    with pytest.raises(ValueError, match=r"num_classes must be an integer in 1..16384, got 65536"):
        mod.confusion_matrix(np.zeros((2, 2), np.uint8), np.zeros((2, 2), np.uint8), 65536)
    with pytest.raises(MemoryError, match=r"the result would take .* more than this machine's"):
        mod.resize_labels(np.zeros((2, 2), np.int32), (2**24, 2**24))
    with pytest.raises(ValueError, match=r"selected must fit int64 \(-2\*\*63..2\*\*63-1\), got 1180591620717411303424"):
        mod.render_mask(np.zeros((2, 2), np.uint8), [2**70])
    with pytest.raises(ValueError, match=r"ignore_index must fit int64"):
        mod.confusion_matrix(np.zeros((2, 2), np.uint8), np.zeros((2, 2), np.uint8), 3, ignore_index=2**64)


def test_many_classes_count_into_the_output_itself():
    rng = np.random.default_rng(1)
    gt, pred = rng.integers(0, 3000, (64, 64)), rng.integers(0, 3000, (64, 64))
    got = coreseg.confusion_matrix(gt.astype(np.uint16), pred.astype(np.uint16), 3000)
    np.testing.assert_array_equal(got, reference.confusion_matrix(gt.astype(np.uint16), pred.astype(np.uint16), 3000))
    bad = gt.astype(np.int32)
    bad[40, 3] = 3000
    with pytest.raises(ValueError, match="gt has value 3000 outside"):
        coreseg.confusion_matrix(bad, pred.astype(np.int32), 3000)


def test_resize_image_stays_within_one_of_pillow_up_to_its_limit():
    Image = pytest.importorskip("PIL.Image")
    rng = np.random.default_rng(2)
    for factor in (100, 1000, coreseg.MAX_DOWNSCALE):
        w = 2 * factor
        img = rng.integers(0, 256, (3, w, 3), dtype=np.uint8)
        img[..., 1] = np.arange(w) * 255 // (w - 1)  # a ramp as well as noise
        ours = coreseg.resize_image(img, (2, 1), "RGB").astype(int)
        pillow = np.asarray(Image.fromarray(img).resize((2, 1), Image.BILINEAR)).astype(int)
        assert np.abs(ours - pillow).max() <= 1, factor
    for mod in (coreseg, reference):
        with pytest.raises(ValueError, match="cannot shrink the width from 4098 to 2 pixels in one pass "
                                             r"\(at most 2048x per axis\)"):
            mod.resize_image(np.zeros((1, 4098, 3), np.uint8), (2, 1))


def test_threads_are_capped():
    with pytest.raises(ValueError, match="n must be in 1..256, got 257"):
        coreseg.set_num_threads(257)
    with pytest.raises(ValueError, match="n must be in 1..256, got 2147483647"):
        coreseg.set_num_threads(2**31 - 1)
    assert coreseg.kernels.MAX_THREADS == 256


# ---- processes and threads --------------------------------------------------------


def run(script, timeout=120):
    return subprocess.run([sys.executable, "-c", textwrap.dedent(script)], capture_output=True, text=True,
                          timeout=timeout)


def test_interpreter_exit_with_kernels_in_flight():
    # Daemon threads inside kernels while the interpreter exits: CPython
    # ends them as they take the GIL back; that must not abort the process.
    script = """
        import threading, time, numpy as np, coreseg
        img = np.zeros((1500, 2000, 4), np.uint8)
        labels = np.zeros((300, 400), np.int32)
        def work():
            while True:
                coreseg.resize_image(img, (1000, 750))
                coreseg.composite(img, labels, coreseg.default_palette(4))
        for _ in range(4):
            threading.Thread(target=work, daemon=True).start()
        time.sleep(0.3)
    """
    for _ in range(3):
        done = run(script)
        assert done.returncode == 0 and "terminate" not in done.stderr, done.stderr


def test_a_pool_that_cannot_start_all_its_threads_still_works():
    # Address space for a few thread stacks only: the pool keeps the
    # threads that started and the results stay right.
    script = """
        import resource, numpy as np, coreseg
        from coreseg import reference
        img = np.random.default_rng(0).integers(0, 256, (600, 800, 4), dtype=np.uint8)
        want = reference.resize_image(img, (400, 300))
        with open("/proc/self/statm") as f:
            used = int(f.read().split()[0]) * resource.getpagesize()
        resource.setrlimit(resource.RLIMIT_AS, (used + (96 << 20), resource.RLIM_INFINITY))
        coreseg.set_num_threads(200)
        for _ in range(3):
            assert np.array_equal(coreseg.resize_image(img, (400, 300)), want)
        print("ok")
    """
    if not sys.platform.startswith("linux"):
        pytest.skip("RLIMIT_AS and /proc are how this test limits threads: Linux only")
    done = run(script)
    assert done.returncode == 0 and done.stdout.strip() == "ok", done.stderr


def test_fork_after_the_pool_started():
    script = """
        import os, numpy as np, coreseg
        img = np.zeros((800, 800, 4), np.uint8)
        coreseg.set_num_threads(4)
        coreseg.resize_image(img, (400, 400))  # the pool runs
        pid = os.fork()
        if pid == 0:
            ok = coreseg.resize_image(img, (400, 400)).shape == (400, 400, 4)
            os._exit(0 if ok else 1)
        _, status = os.waitpid(pid, 0)
        assert os.waitstatus_to_exitcode(status) == 0
        print("ok")
    """
    if not hasattr(__import__("os"), "fork"):
        pytest.skip("no fork on this platform")
    done = run(script)
    assert done.returncode == 0 and done.stdout.strip() == "ok", done.stderr
