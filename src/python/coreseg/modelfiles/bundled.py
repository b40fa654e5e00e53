"""The bundled demo model (models/demo.onnx and models/demo.mlpackage,
trained by tools/train_demo_model.py on coreseg.evaluation.scenes): where
it is, and what it was trained to see."""

from __future__ import annotations

from importlib import resources
from pathlib import Path

__all__ = ["CLASSES", "COLORS", "INPUT_SIZE", "TRAINING_SEEDS", "model_path"]

#: Class names, index = class id.
CLASSES = ["sky", "sun", "hill", "water", "grass", "tree", "road", "building"]
#: Legend colours (RGB hex), one per class.
COLORS = ["#5DADE2", "#F4D03F", "#8E7CC3", "#1F4E9E", "#58D68D", "#1E7B3A", "#7F8C8D", "#E67E22"]
#: The demo model's input (width, height).
INPUT_SIZE = (256, 192)
#: Seeds below this are for training; the demo and the README's mIoU use others.
TRAINING_SEEDS = 1_000_000


def model_path(kind: str = "onnx") -> Path:
    """Path of the bundled demo model: kind "onnx" or "mlpackage"."""
    name = {"onnx": "demo.onnx", "mlpackage": "demo.mlpackage"}.get(kind)
    if name is None:
        raise ValueError(f"kind must be 'onnx' or 'mlpackage', got {kind!r}")
    return Path(str(resources.files("coreseg") / "models" / name))
