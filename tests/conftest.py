import pytest

import coreseg
from coreseg import _native

BACKENDS = _native.available_backends()


@pytest.fixture(params=BACKENDS)
def backend(request):
    """Run the test once under every SIMD backend this CPU has."""
    before = _native.simd_backend()
    _native.set_simd_backend(request.param)
    yield request.param
    _native.set_simd_backend(before)


@pytest.fixture(params=[1, 2, 3])
def threads(request):
    """Run the test with 1, 2 and 3 threads: results must not change."""
    before = coreseg.get_num_threads()
    coreseg.set_num_threads(request.param)
    yield request.param
    coreseg.set_num_threads(before)
