"""The Core ML backend's platform-independent parts, on any OS: the compiled
model cache, page-aligned outputs, ModelInfo from a model description."""

from pathlib import Path

import numpy as np
import pytest

from coreseg.backends import coreml as backend


class FakeCompiler:
    """Stands in for coreseg._coreml: makes a .mlmodelc folder in a temp dir,
    as Core ML's compileModelAtURL does, and counts the calls."""

    def __init__(self, tmp: Path):
        self.tmp, self.calls = tmp, 0

    def compile_model(self, path):
        self.calls += 1
        out = self.tmp / f"compiled{self.calls}.mlmodelc"
        out.mkdir()
        (out / "model.espresso.net").write_text(f"compiled from {path}")
        return str(out)


@pytest.fixture
def package(tmp_path):
    pkg = tmp_path / "m.mlpackage"
    (pkg / "Data").mkdir(parents=True)
    (pkg / "Manifest.json").write_text("{}")
    (pkg / "Data" / "weights.bin").write_bytes(b"\x01" * 100)
    return pkg


def test_second_load_uses_the_cache(tmp_path, package, monkeypatch):
    monkeypatch.setenv("CORESEG_CACHE", str(tmp_path / "cache"))
    monkeypatch.setattr(backend, "os_build", lambda: "23E224")
    native = FakeCompiler(tmp_path)
    first, cached = backend.compiled_model(package, native)
    assert not cached and native.calls == 1 and first.is_dir()
    assert first.parent == tmp_path / "cache" / "models" and first.name.endswith("-23E224.mlmodelc")
    again, cached = backend.compiled_model(package, native)
    assert cached and again == first and native.calls == 1  # no second compile
    assert not list((tmp_path / "cache" / "models").glob(".*"))  # no staging left
    assert not (tmp_path / "compiled1.mlmodelc").exists()  # Core ML's temp copy moved


def test_cache_key_follows_content_and_os_build(tmp_path, package, monkeypatch):
    monkeypatch.setenv("CORESEG_CACHE", str(tmp_path / "cache"))
    monkeypatch.setattr(backend, "os_build", lambda: "23E224")
    native = FakeCompiler(tmp_path)
    first, _ = backend.compiled_model(package, native)
    (package / "Data" / "weights.bin").write_bytes(b"\x02" * 100)  # a retrained model
    second, cached = backend.compiled_model(package, native)
    assert not cached and second != first and native.calls == 2
    monkeypatch.setattr(backend, "os_build", lambda: "24A335")  # an OS update
    third, cached = backend.compiled_model(package, native)
    assert not cached and third not in (first, second)


def test_content_hash_sees_names_and_bytes(tmp_path, package):
    h = backend.content_hash(package)
    assert h == backend.content_hash(package)
    (package / "Data" / "weights.bin").rename(package / "Data" / "other.bin")
    assert backend.content_hash(package) != h
    single = tmp_path / "x.mlmodel"
    single.write_bytes(b"spec")
    assert backend.content_hash(single) != backend.content_hash(package)


def test_page_aligned_empty():
    for shape in [(448, 448), (1, 192, 256), (3, 5)]:
        a = backend.page_aligned_empty(shape)
        assert a.shape == shape and a.dtype == np.int32
        assert a.ctypes.data % backend.PAGE == 0
        assert a.base is not None and a.flags.c_contiguous and a.flags.writeable


def test_info_from_description():
    desc = {
        "inputs": [{"name": "image", "kind": "image", "shape": [192, 256], "dtype": "", "pixel_format": "BGRA"}],
        "outputs": [{"name": "semanticPredictions", "kind": "multiArray", "shape": [192, 256],
                     "dtype": "int32", "pixel_format": ""}],
        "metadata": {"author": "me", "version": "1"},
        "creator_defined": {"com.apple.coreml.model.preview.type": "imageSegmenter",
                            "com.apple.coreml.model.preview.params": '{"labels": ["--", "sky"]}'},
    }
    info = backend.info_from_description(desc, Path("m.mlmodelc"), (256, 192), (192, 256))
    assert info.labels == ["--", "sky"] and info.legend() == [(1, "sky")]
    assert (info.input_name, info.input_size, info.output_name, info.output_shape) == \
        ("image", (256, 192), "semanticPredictions", (192, 256))
    assert info.author == "me" and info.format == "mlmodelc"
