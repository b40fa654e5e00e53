"""The frame loop: `Segmenter.stream` against the sequential loop a user
writes (predict + overlay per frame), on 1080p frames, for the demo model
and the real MediaPipe selfie model, from three sources:

- in memory (a list of frames);
- a video file (PyAV decoding included, in both loops);
- a live source: each frame is ready only after a CPU-free wait as long as
  one sequential frame's work, as a camera delivers.

Rows: the sequential loop, `stream` (two frames in flight per stage, the
default), `stream(workers=1)` (stages overlap, one frame at a time in
each), and `stream` with each smoothing. Times are per clip of FRAMES
frames; the ratio column is frames per second relative to the sequential
loop's inverse. Peak traced memory of the run is in extra_info."""

import os
import time
import tracemalloc
from pathlib import Path

import pytest

import coreseg
from coreseg import demo

pytest.importorskip("onnxruntime", reason="the models run through onnxruntime here: pip install '.[onnx]'")

FRAMES = 30
SIZE = (1920, 1080)
# ../shared beside the clone, or $CORESEG_SHARED, as the tests find it.
SHARED = Path(os.environ.get("CORESEG_SHARED", Path(__file__).resolve().parents[2] / "shared"))
SELFIE = SHARED / "fixtures/mediapipe-selfie/selfie_segmentation.onnx"
MODELS = ["demo", "selfie"]


@pytest.fixture(scope="module")
def frames():
    distinct = [demo.scene(4_600_000 + i, SIZE)[0] for i in range(3)]
    return [distinct[i % 3] for i in range(FRAMES)]


@pytest.fixture(scope="module")
def video(frames, tmp_path_factory):
    pytest.importorskip("av", reason="video needs PyAV: pip install '.[video]'")
    from coreseg.video import VideoWriter

    path = tmp_path_factory.mktemp("video") / "clip.mp4"
    with VideoWriter(path, 30, SIZE) as writer:
        for image in frames:
            writer.write(image)
    return path


def load(name):
    if name == "selfie":
        if not SELFIE.is_file():
            pytest.skip(f"the shared MediaPipe fixture is not at {SELFIE}")
        return coreseg.load(SELFIE, mean="unit")  # MediaPipe feeds it 0..1
    return coreseg.load("demo")


def sequential(model, source):
    for item in source:
        image = getattr(item, "image", item)
        model.predict(image).overlay(image, smooth=model.has_scores)


def streamed(model, source, **kwargs):
    for _ in model.stream(source, overlay=True, **kwargs):
        pass


def frame_time(model, frames) -> float:
    """One sequential frame's work, measured once: the live source's wait."""
    sequential(model, frames[:3])
    t0 = time.perf_counter()
    sequential(model, frames[:6])
    return (time.perf_counter() - t0) / 6


def source_of(kind, frames, video, wait):
    if kind == "memory":
        return lambda: frames
    if kind == "video":
        from coreseg.video import VideoReader

        def read():
            with VideoReader(video) as reader:
                yield from reader

        return read

    def camera():
        for image in frames:
            time.sleep(wait)  # the sensor's exposure and readout: no CPU
            yield image

    return camera


def run(benchmark, fn):
    tracemalloc.start()
    try:
        benchmark.pedantic(fn, rounds=3, iterations=1, warmup_rounds=1)
        benchmark.extra_info["peak_mib"] = round(tracemalloc.get_traced_memory()[1] / 2**20, 1)
    finally:
        tracemalloc.stop()


LOOPS = {
    "sequential": lambda model, src: sequential(model, src),
    "stream": lambda model, src: streamed(model, src),
    "stream_workers1": lambda model, src: streamed(model, src, workers=1),
    "stream_ema": lambda model, src: streamed(model, src, smoothing="ema"),
    "stream_hysteresis": lambda model, src: streamed(model, src, smoothing="hysteresis"),
}


@pytest.mark.parametrize("loop", LOOPS)
@pytest.mark.parametrize("source", ["memory", "video", "live"])
@pytest.mark.parametrize("model_name", MODELS)
def test_frame_loop(benchmark, frames, video, model_name, source, loop):
    model = load(model_name)
    if loop == "stream_ema" and not model.has_scores:
        pytest.skip("EMA needs scores")
    benchmark.group = f"frame loop: {model_name} model, {FRAMES} frames 1920x1080, {source}"
    wait = frame_time(model, frames) if source == "live" else 0.0
    src = source_of(source, frames, video, wait)
    run(benchmark, lambda: LOOPS[loop](model, src()))


SMOOTHING = "smoothing one frame against a frame's work: demo model, 1920x1080"


@pytest.mark.parametrize("what", ["sequential", "ema", "hysteresis"])
def test_smoothing_cost(benchmark, frames, what):
    """The smoother's own time per frame (at the model's resolution), beside
    one sequential frame's predict + overlay."""
    from coreseg import smoothing

    model = load("demo")
    benchmark.group = SMOOTHING
    image = frames[0]
    if what == "sequential":
        benchmark(lambda: model.predict(image).overlay(image, smooth=True))
        return
    seg = model.predict(image)
    thumb = smoothing.thumbnail(image)
    smoother = smoothing.EMA() if what == "ema" else smoothing.Hysteresis()
    smoother(seg, thumb)  # the first frame starts the state
    benchmark(lambda: smoother(seg, smoothing.thumbnail(image)))


@pytest.mark.parametrize("options", ["coreseg", "ort_defaults"])
@pytest.mark.parametrize("model_name", MODELS)
def test_frame_time_spread(benchmark, frames, model_name, options):
    """predict + overlay on one 1080p frame, 30 rounds, with coreseg's
    session options and with ONNX Runtime's defaults: the median, and how
    far apart fast and slow rounds are (pinned or spinning ONNX Runtime
    workers made frame times bimodal)."""
    model = load(model_name)
    if options == "ort_defaults":
        import onnxruntime as ort

        model = coreseg.load(model.info.path, session_options=ort.SessionOptions(),
                             mean=None if model_name == "demo" else "unit")
    benchmark.group = f"predict + overlay, one 1920x1080 frame, 30 rounds: {model_name} model"
    image = frames[0]
    benchmark.pedantic(lambda: model.predict(image).overlay(image, smooth=model.has_scores), rounds=30,
                       iterations=1, warmup_rounds=3)
    if benchmark.stats is None:  # --benchmark-disable (CI runs each benchmark once, as a test)
        return
    data = sorted(benchmark.stats.stats.data)
    median = data[len(data) // 2]
    # Spread: the 10th to the 90th percentile of round times, over the median.
    benchmark.extra_info["spread"] = round((data[int(0.9 * len(data))] - data[int(0.1 * len(data))]) / median, 3)
