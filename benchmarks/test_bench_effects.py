"""Background effects: blend (a photo over a background by a matte), blur,
upsample_matte and refine_matte at 1920x1080 (blur at 12 MP too), each
beside the code users write today (numpy float blending, np.where, OpenCV's
blendLinear / GaussianBlur / stackBlur / resize, a cv2.boxFilter guided
filter, at full resolution and fast) and memcpy floors; and the three
together, a video call's background blur, beside the same in OpenCV.

One test per implementation, parametrized by case, so benchmarks/report.py
names the rows (coreseg, OpenCV pipeline, memcpy floors ...). Floors: a
memcpy of the output's bytes on one and two threads; for blend with an
image background, which reads two images to write one, also
np.maximum(fg, bg, out) on two threads (three_streams: the same bytes).

Blur radii are standard deviations in pixels. OpenCV's
GaussianBlur(img, (0, 0), sigma) is the same blur; cv2.stackBlur is given
the kernel of the same variance: its weights are a triangle of r + 1 steps,
variance r (r + 2) / 6, so r = round(sqrt(6 sigma^2 + 1) - 1), ksize 2r + 1.
"""

import math

import numpy as np
import pytest
from conftest import copy_two_threads, slow

import coreseg
from coreseg import reference

cv2 = pytest.importorskip("cv2", reason="OpenCV is in the bench extra: pip install '.[bench]'")

W, H = 1920, 1080


def _blob(w, h, sharpness):
    """A person-shaped soft region: 1 inside, 0 outside, a soft edge."""
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    d = np.hypot((xx - w / 2) / (0.18 * w), (yy - 0.65 * h) / (0.45 * h))
    return np.clip((1.1 - d) * sharpness, 0, 1)


def stack_blur_ksize(sigma):
    r = round(math.sqrt(6 * sigma * sigma + 1) - 1)
    return (2 * r + 1, 2 * r + 1)


@pytest.fixture(scope="module")
def scene():
    rng = np.random.default_rng(3)
    fg = rng.integers(0, 256, (H, W, 4), np.uint8)
    fg[..., 3] = 255
    bg = rng.integers(0, 256, (H, W, 4), np.uint8)
    matte = (_blob(W, H, 1 / 0.12) * 255).astype(np.uint8)  # an edge ~40 px wide
    scores = _blob(256, 144, 4).astype(np.float32)[None]  # the model's side of it
    return {"fg": fg, "bg": bg, "matte": matte, "scores": scores}


def _two_threads(pool, fn, out, *inputs):
    """fn(*inputs, out=out) on two halves of the rows, one on `pool`."""
    half = len(out) // 2
    job = pool.submit(fn, *(a[half:] for a in inputs), out=out[half:])
    fn(*(a[:half] for a in inputs), out=out[:half])
    job.result()


def _blur_case(radius, photo):
    return lambda s, request: (f"blur {photo[6:]} RGBA, radius (sigma) {radius}", request.getfixturevalue(photo), radius)


BLURS = {"blur5": _blur_case(5, "photo_1920x1080"), "blur20": _blur_case(20, "photo_1920x1080"),
         "blur60": _blur_case(60, "photo_1920x1080"), "blur40_12mp": _blur_case(40, "photo_4032x3024")}
BLEND = "blend 1920x1080 RGBA, image background, soft matte"
MATTE = "upsample_matte 256x144 -> 1920x1080"
PIPELINE = "background blur 1920x1080 RGBA: matte + blur(20) + blend"
#: refine_matte at 1080p with what Segmentation.matte(refine=True) picks for
#: a 256x144 model: two model pixels, 15 photo pixels (a reduction by 3).
REFINE_RADIUS, REFINE_EPS = 15.0, 1e-3
REFINE = f"refine_matte 1920x1080 RGBA, radius {REFINE_RADIUS:g}, eps {REFINE_EPS:g}"


def guided_filter_opencv(photo, matte, radius, eps, s=1):
    """He et al.'s guided filter as users write it with OpenCV (cv2.ximgproc
    is in opencv-contrib only): float32, box filters; with s > 1 the fast
    guided filter (statistics on an INTER_AREA reduction, A and b enlarged
    bilinearly)."""
    guide = cv2.cvtColor(photo, cv2.COLOR_RGBA2GRAY).astype(np.float32) * (1 / 255)
    i, p = guide, matte.astype(np.float32) * (1 / 255)
    if s > 1:
        small = (photo.shape[1] // s, photo.shape[0] // s)
        i, p = cv2.resize(i, small, interpolation=cv2.INTER_AREA), cv2.resize(p, small, interpolation=cv2.INTER_AREA)
    k = 2 * max(1, round(radius / s)) + 1

    def box(x):
        return cv2.boxFilter(x, -1, (k, k))

    mean_i, mean_p = box(i), box(p)
    a = (box(i * p) - mean_i * mean_p) / (box(i * i) - mean_i * mean_i + eps)
    b = mean_p - a * mean_i
    a, b = box(a), box(b)
    if s > 1:
        size = (photo.shape[1], photo.shape[0])
        a, b = cv2.resize(a, size, interpolation=cv2.INTER_LINEAR), cv2.resize(b, size, interpolation=cv2.INTER_LINEAR)
    return np.clip((a * guide + b) * 255 + 0.5, 0, 255).astype(np.uint8)


def implementations(case, s, request, pool=None):
    """(group, {role: callable}) of a case: every implementation of it."""
    if case == "blend":
        fg, bg, a = s["fg"], s["bg"], s["matte"]
        out = np.empty_like(fg)

        def numpy_float():  # what users write today: float weights, back to bytes
            w = a[..., None].astype(np.float32) / 255
            res = fg.astype(np.float32) * w + bg.astype(np.float32) * (1 - w)
            res[..., 3] = fg[..., 3]
            return (res + 0.5).astype(np.uint8)

        def blend_linear():  # OpenCV's per-pixel blend (addWeighted takes one weight)
            w = a.astype(np.float32) * (1 / 255)
            return cv2.blendLinear(fg, bg, w, 1 - w)

        work = fg.copy()
        random_alpha = np.random.default_rng(4).integers(1, 255, (H, W), np.uint8)  # no step all 0 or 255
        return BLEND, {
            "coreseg": lambda: coreseg.blend(fg, bg, a, out=out),
            "coreseg_in_place": lambda: coreseg.blend(work, bg, a, out=work),  # same work every round
            "coreseg_colour_background": lambda: coreseg.blend(fg, (0, 177, 64), a, out=out),
            "coreseg_random_alpha": lambda: coreseg.blend(fg, bg, random_alpha, out=out),
            "reference": lambda: reference.blend(fg, bg, a),
            "numpy": numpy_float,
            "numpy_where": lambda: np.where(a[..., None] >= 128, fg, bg),  # a hard mask, no blending
            "opencv": blend_linear,
            "memcpy_floor": lambda: np.copyto(out, fg),
            "memcpy_two_threads": lambda: copy_two_threads(out, fg, pool),
            "three_streams_two_threads": lambda: _two_threads(pool, np.maximum, out, fg, bg),
        }
    if case in BLURS:
        group, photo, radius = BLURS[case](s, request)
        out = np.empty_like(photo)
        roles = {
            "coreseg": lambda: coreseg.blur(photo, radius, out=out),
            "opencv_stack_blur": lambda: cv2.stackBlur(photo, stack_blur_ksize(radius)),
            "memcpy_floor": lambda: np.copyto(out, photo),
            "memcpy_two_threads": lambda: copy_two_threads(out, photo, pool),
        }
        if case != "blur40_12mp":  # seconds a call at 12 MP
            roles["opencv"] = lambda: cv2.GaussianBlur(photo, (0, 0), radius)
        if case == "blur20":
            roles["reference"] = lambda: reference.blur(photo, radius)
        return group, roles
    if case == "matte":
        p = s["scores"]
        out = np.empty((H, W), np.uint8)
        three = np.concatenate([p, p[:, ::-1] * 0.7, np.roll(p, 40, axis=2) * 0.4])  # multi-label, max
        ones = np.ones((H, W), np.uint8)
        return MATTE, {
            "coreseg": lambda: coreseg.upsample_matte(p, (W, H), out=out),
            "coreseg_max_of_three": lambda: coreseg.upsample_matte(three, (W, H), "max", out=out),
            "reference": lambda: reference.upsample_matte(p, (W, H)),
            # What users write today: bilinear resize of the probabilities, to bytes.
            "opencv": lambda: (cv2.resize(p[0], (W, H), interpolation=cv2.INTER_LINEAR) * 255 + 0.5).astype(np.uint8),
            "memcpy_floor": lambda: np.copyto(out, ones),
            "memcpy_two_threads": lambda: copy_two_threads(out, ones, pool),
        }
    if case == "refine":
        photo, matte = request.getfixturevalue("photo_1920x1080"), s["matte"]
        out = np.empty((H, W), np.uint8)
        s_fast, _ = reference.refine_plan(REFINE_RADIUS)
        return REFINE, {
            "coreseg": lambda: coreseg.kernels.refine_matte(matte, photo, REFINE_RADIUS, out=out),
            "reference": lambda: reference.refine_matte(matte, photo, REFINE_RADIUS),
            "opencv": lambda: guided_filter_opencv(photo, matte, REFINE_RADIUS, REFINE_EPS),
            "opencv_fast": lambda: guided_filter_opencv(photo, matte, REFINE_RADIUS, REFINE_EPS, s_fast),
            "memcpy_floor": lambda: np.copyto(out, matte),
            "memcpy_two_threads": lambda: copy_two_threads(out, matte, pool),
        }
    if case == "pipeline":
        fg, p = s["fg"], s["scores"]
        matte, blurred, out = np.empty((H, W), np.uint8), np.empty_like(fg), np.empty_like(fg)

        def ours():
            coreseg.upsample_matte(p, (W, H), out=matte)
            coreseg.blur(fg, 20, out=blurred)
            return coreseg.blend(fg, blurred, matte, out=out)

        def opencv(blur):
            a = cv2.resize(p[0], (W, H), interpolation=cv2.INTER_LINEAR)
            return cv2.blendLinear(fg, blur(fg), a, 1 - a)

        return PIPELINE, {
            "coreseg": ours,
            "opencv": lambda: opencv(lambda im: cv2.GaussianBlur(im, (0, 0), 20)),
            "opencv_stack_blur": lambda: opencv(lambda im: cv2.stackBlur(im, stack_blur_ksize(20))),
        }
    raise KeyError(case)


CASES = ["blend", *BLURS, "matte", "refine", "pipeline"]
SLOW = {"reference", "numpy", "opencv"}  # a few rounds are enough
_MEMCPY = ("memcpy_floor", "memcpy_two_threads")
#: The rows each case has (what `implementations` returns, checked in _run),
#: so that each test is parametrized by the cases it has and none is skipped.
ROLES = {
    "blend": ("coreseg", "coreseg_in_place", "coreseg_colour_background", "coreseg_random_alpha", "reference",
              "numpy", "numpy_where", "opencv", *_MEMCPY, "three_streams_two_threads"),
    "blur5": ("coreseg", "opencv_stack_blur", *_MEMCPY, "opencv"),
    "blur20": ("coreseg", "opencv_stack_blur", *_MEMCPY, "opencv", "reference"),
    "blur60": ("coreseg", "opencv_stack_blur", *_MEMCPY, "opencv"),
    "blur40_12mp": ("coreseg", "opencv_stack_blur", *_MEMCPY),
    "matte": ("coreseg", "coreseg_max_of_three", "reference", "opencv", *_MEMCPY),
    "refine": ("coreseg", "reference", "opencv", "opencv_fast", *_MEMCPY),
    "pipeline": ("coreseg", "opencv", "opencv_stack_blur"),
}


def _run(benchmark, request, scene, two_thread_pool, case, role):
    group, roles = implementations(case, scene, request, two_thread_pool)
    assert set(roles) == set(ROLES[case]), f"ROLES[{case!r}] is out of date"
    benchmark.group = group
    fn = roles[role]
    if role in SLOW and not (case == "matte" and role == "opencv"):
        slow(benchmark, fn)
    else:
        benchmark(fn)


def _roles_test(role):
    @pytest.mark.parametrize("case", [c for c in CASES if role in ROLES[c]])
    def test(benchmark, request, scene, two_thread_pool, case):
        _run(benchmark, request, scene, two_thread_pool, case, role)

    test.__name__ = f"test_{role}"
    return test


test_coreseg = _roles_test("coreseg")
test_coreseg_in_place = _roles_test("coreseg_in_place")
test_coreseg_colour_background = _roles_test("coreseg_colour_background")
test_coreseg_random_alpha = _roles_test("coreseg_random_alpha")
test_coreseg_max_of_three = _roles_test("coreseg_max_of_three")
test_reference = _roles_test("reference")
test_numpy = _roles_test("numpy")
test_numpy_where = _roles_test("numpy_where")
test_opencv = _roles_test("opencv")
test_opencv_stack_blur = _roles_test("opencv_stack_blur")
test_opencv_fast = _roles_test("opencv_fast")
test_memcpy_floor = _roles_test("memcpy_floor")
test_memcpy_two_threads = _roles_test("memcpy_two_threads")
test_three_streams_two_threads = _roles_test("three_streams_two_threads")


# The pipeline runs on the default threads only: one thread is a kernel's row.
@pytest.mark.parametrize("case", [c for c in CASES if c != "pipeline"])
def test_coreseg_one_thread(benchmark, request, scene, two_thread_pool, one_thread, case):
    _run(benchmark, request, scene, two_thread_pool, case, "coreseg")


def test_stack_blur_kernel_has_the_gaussians_variance():
    for sigma in (5, 20, 40, 60):
        r = stack_blur_ksize(sigma)[0] // 2
        w = np.array([r + 1 - abs(i) for i in range(-r, r + 1)], float)
        variance = (w * np.arange(-r, r + 1) ** 2).sum() / w.sum()
        assert abs(math.sqrt(variance) / sigma - 1) < 0.03  # r is whole: 4.88 for 5
