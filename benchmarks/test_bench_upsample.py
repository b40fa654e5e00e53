"""upsample_argmax: model scores at 128x128 to a 4032x3024 class map, against
torch's bilinear interpolate + argmax (what a PyTorch user writes), the
numpy reference and a memcpy of the int32 output."""

import numpy as np
import pytest
from conftest import slow

import coreseg
from coreseg import reference

W, H = 4032, 3024


def scores(classes):
    """Smooth per-class probabilities at 128x128, as a model gives them."""
    rng = np.random.default_rng(classes)
    z = np.kron(rng.standard_normal((classes, 16, 16)), np.ones((8, 8))) * 3
    e = np.exp(z - z.max(axis=0))
    return np.ascontiguousarray(e / e.sum(axis=0), dtype=np.float32)


@pytest.fixture(scope="module", params=[2, 21], ids=["2 classes", "21 classes"])
def case(request):
    return request.param, scores(request.param)


def test_upsample_coreseg(benchmark, case):
    c, s = case
    benchmark.group = f"upsample_argmax {c} classes 128x128 -> {W}x{H}"
    out = np.empty((H, W), np.int32)
    benchmark(coreseg.upsample_argmax, s, (W, H), out)


def test_upsample_torch(benchmark, case):
    torch = pytest.importorskip("torch", reason="torch is a bench-only comparison: pip install torch")
    c, s = case
    benchmark.group = f"upsample_argmax {c} classes 128x128 -> {W}x{H}"
    torch.set_num_threads(coreseg.get_num_threads())
    t = torch.from_numpy(s)[None]
    interpolate = torch.nn.functional.interpolate

    def run():
        with torch.no_grad():
            return interpolate(t, size=(H, W), mode="bilinear", align_corners=False).argmax(1)

    slow(benchmark, run)


def test_upsample_reference(benchmark):
    # At 2 classes only: the reference holds C x 12 MP int64 values (2 GB at 21).
    benchmark.group = f"upsample_argmax 2 classes 128x128 -> {W}x{H}"
    s = scores(2)
    slow(benchmark, lambda: reference.upsample_argmax(s, (W, H)))


def test_upsample_memcpy_floor(benchmark, case):
    c, _ = case
    benchmark.group = f"upsample_argmax {c} classes 128x128 -> {W}x{H}"
    src = np.zeros((H, W), np.int32)
    out = np.empty_like(src)
    benchmark(np.copyto, out, src)


def test_upsample_coreseg_one_thread(benchmark, case, one_thread):
    c, s = case
    benchmark.group = f"upsample_argmax {c} classes 128x128 -> {W}x{H}"
    out = np.empty((H, W), np.int32)
    benchmark(coreseg.upsample_argmax, s, (W, H), out)
