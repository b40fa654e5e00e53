"""The temporal smoothing kernels against their numpy twins, bit for bit,
on every SIMD backend and thread count, over random frame sequences."""

import numpy as np
import pytest

import coreseg
from coreseg import reference


def score_sequence(rng, frames, c, h, w, dtype=np.float32):
    base = rng.random((c, h, w))
    return [(base + 0.3 * rng.standard_normal((c, h, w))).astype(dtype) for _ in range(frames)]


@pytest.mark.parametrize("dtype", [np.float32, np.float16])
@pytest.mark.parametrize("alpha", [0.0, 0.2, 0.5, 1.0])
def test_ema_matches_reference_over_a_sequence(backend, threads, dtype, alpha):
    rng = np.random.default_rng(int(alpha * 10))
    seq = score_sequence(rng, 12, 5, 33, 67, dtype)
    native = seq[0].astype(np.float32)
    ref = native.copy()
    for frame in seq[1:]:
        view = frame[:, ::-1][:, ::-1] if rng.random() < 0.5 else frame  # strided rows are read in place
        coreseg.ema_update(native, view, alpha)
        reference.ema_update(ref, view, alpha)
        assert native.tobytes() == ref.tobytes()
    if alpha == 1.0:
        np.testing.assert_array_equal(native, seq[-1].astype(np.float32))


def test_ema_alpha_zero_keeps_the_state_and_one_takes_the_frame():
    state = np.full((2, 3, 4), 0.25, np.float32)
    frame = np.ones((2, 3, 4), np.float32)
    np.testing.assert_array_equal(coreseg.ema_update(state, frame, 0.0), 0.25)
    np.testing.assert_array_equal(coreseg.ema_update(state, frame, 1.0), 1.0)


@pytest.mark.parametrize("frames", [1, 2, 4])
@pytest.mark.parametrize("with_margin", [False, True])
def test_hysteresis_matches_reference_over_a_sequence(backend, threads, frames, with_margin):
    rng = np.random.default_rng(frames * 2 + with_margin)
    seq = score_sequence(rng, 15, 4, 29, 71)
    first = coreseg.argmax(seq[0])
    native, ref = coreseg.hysteresis_state(first), reference.hysteresis_state(first)
    for scores in seq[1:]:
        labels = coreseg.argmax(scores)
        kwargs = {"scores": scores, "margin": 0.4} if with_margin else {}
        got = coreseg.hysteresis_update(native, labels, frames, **kwargs)
        want = reference.hysteresis_update(ref, labels, frames, **kwargs)
        np.testing.assert_array_equal(native, ref)
        np.testing.assert_array_equal(got, want)
        if frames == 1:
            np.testing.assert_array_equal(got, labels)  # one frame: no smoothing


def test_hysteresis_waits_for_consecutive_frames_or_a_margin():
    state = coreseg.hysteresis_state(np.zeros((1, 2), np.int32))
    shown = []
    for labels in ([1, 1], [1, 0], [1, 1], [0, 1]):
        shown.append(coreseg.hysteresis_update(state, np.array([labels], np.int32), 3).tolist()[0])
    # pixel 0 sees 1 three times in a row and switches on the third; pixel 1 never does.
    assert shown == [[0, 0], [0, 0], [1, 0], [1, 0]]
    state = coreseg.hysteresis_state(np.zeros((1, 2), np.int32))
    scores = np.array([[[0.1, 0.45]], [[0.9, 0.55]]], np.float32)  # class 1 beats 0 by 0.8 and by 0.1
    got = coreseg.hysteresis_update(state, np.array([[1, 1]], np.int32), 3, scores=scores, margin=0.5)
    assert got.tolist() == [[1, 0]]


def test_hysteresis_refuses_classes_without_scores():
    state = coreseg.hysteresis_state(np.zeros((2, 2), np.int32))
    labels = np.array([[0, 3], [0, 0]], np.int32)
    with pytest.raises(ValueError, match="class 3"):
        coreseg.hysteresis_update(state, labels, 2, scores=np.zeros((2, 2, 2), np.float32), margin=0.1)
    with pytest.raises(TypeError, match="go together"):
        coreseg.hysteresis_update(state, labels, 2, margin=0.1)


@pytest.mark.parametrize("fn", [coreseg.hysteresis_update, reference.hysteresis_update], ids=["native", "reference"])
def test_a_refused_hysteresis_frame_leaves_the_state_as_it_was(fn, threads):
    # A label without a score in the last row only: rows before it (other
    # threads' bands included) must not have been updated either.
    rng = np.random.default_rng(3)
    labels = rng.integers(0, 3, (64, 64)).astype(np.int32)
    state = coreseg.hysteresis_state(np.zeros((64, 64), np.int32))
    coreseg.hysteresis_update(state, labels, 2)  # candidates and counts that a new frame would move
    before = state.copy()
    frame = rng.integers(0, 3, (64, 64)).astype(np.int32)
    frame[-1, -1] = 5
    with pytest.raises(ValueError, match="class 5"):
        fn(state, frame, 2, scores=rng.random((3, 64, 64)).astype(np.float32), margin=0.2)
    np.testing.assert_array_equal(state, before)
