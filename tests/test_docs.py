"""The documentation runs as written: every Python block of the README (in
a folder holding the files it names: the shared fixtures), and every
``>>>`` example of the package's docstrings (doctest)."""

import doctest
import importlib
import os
import pkgutil
import re
from pathlib import Path

import pytest

import coreseg
from shared_fixtures import DATAGEN, DETR, MEDIAPIPE

README = Path(__file__).resolve().parents[1] / "README.md"
BLOCKS = re.findall(r"```python\n(.*?)```", README.read_text(), re.S)


def test_every_block_is_run_or_says_why_not():
    assert len(BLOCKS) >= 8
    skipped = [b.splitlines()[0] for b in BLOCKS if b.startswith("# requires:")]
    assert len(skipped) <= 2, skipped  # Core ML on a Mac; torch + SegFormer weights


@pytest.fixture
def files(tmp_path, monkeypatch):
    """A folder with the files the README names, as a user would have them."""
    needed = {"DETRResnet50SemanticSegmentationF16P8.mlpackage": DETR,
              "selfie_segmentation.onnx": MEDIAPIPE / "selfie_segmentation.onnx",
              "astronaut.png": MEDIAPIPE / "astronaut.png", "datagen": DATAGEN}
    missing = [str(p) for p in needed.values() if not p.exists()]
    if missing:
        pytest.skip(f"the shared fixtures are not at {', '.join(missing)} (set CORESEG_SHARED)")
    for name, target in needed.items():
        (tmp_path / name).symlink_to(target)
    monkeypatch.chdir(tmp_path)
    return tmp_path


@pytest.mark.parametrize("index", range(len(BLOCKS)))
def test_readme_block_runs(index, files):
    block = BLOCKS[index]
    if block.startswith("# requires:"):
        pytest.skip(block.splitlines()[0].removeprefix("# requires: "))
    pytest.importorskip("onnxruntime", reason="the README's examples run the demo model through onnxruntime")
    if "import ray" in block:
        pytest.importorskip("ray", reason="the README's Ray example needs the ray extra: pip install '.[ray]'")
        if "libasan" in os.environ.get("LD_PRELOAD", ""):
            pytest.skip("under .ci/sanitize Ray's own daemons would run with the preloaded ASan; "
                        "this example runs in .ci/run's pass")
    if "coreseg.video" in block:
        pytest.importorskip("av", reason="the README's video example needs PyAV: pip install '.[video]'")
        from coreseg import demo
        from coreseg.video import VideoWriter

        with VideoWriter(files / "clip.mp4", 25, (320, 240)) as writer:  # the user's clip
            for seed in range(10):
                writer.write(demo.scene(seed, (320, 240))[0])
    exec(compile(block, f"README.md block {index}", "exec"), {"__name__": "readme"})


MODULES = sorted(m.name for m in pkgutil.walk_packages(coreseg.__path__, "coreseg.")
                 if m.name not in ("coreseg._coreml", "coreseg.__main__"))


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples(name):
    module = importlib.import_module(name)
    result = doctest.testmod(module, optionflags=doctest.NORMALIZE_WHITESPACE | doctest.ELLIPSIS, report=True)
    assert result.failed == 0, f"{name}: {result.failed} docstring example(s) failed (see above)"
