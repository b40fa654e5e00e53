"""`Tensor`: a model input or output as its file describes it, the common
words between a file reader (or a backend) and the model contract."""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["Tensor"]


@dataclass(frozen=True)
class Tensor:
    """A model input or output as its file describes it.

    shape holds ints, with None for a dynamic axis; shape is None when even
    the rank is unknown (a Core ML output of a model with flexible input
    sizes declares none). dtype is a numpy dtype name ("uint8", "float32",
    "int64", ...). activation is what the graph says produced it
    ("sigmoid", "softmax") or None when it does not say. image is True for
    a Core ML image output (a grayscale picture whose pixel values are
    class ids: a class map, whatever its pixel type).
    """

    name: str
    dtype: str
    shape: tuple | None
    activation: str | None = None
    image: bool = False

    def describe(self) -> str:
        if self.shape is None:
            return f"{self.name} {self.dtype} [flexible]"
        if self.shape == ():  # a scalar, or a feature that is not an array
            return f"{self.name} ({self.dtype})"
        dims = ", ".join("?" if d is None else str(d) for d in self.shape)
        return f"{self.name} {self.dtype} [{dims}]"


def _is_float(dtype: str) -> bool:
    return dtype in ("float16", "float32", "float64")


def _is_int(dtype: str) -> bool:
    return dtype in ("int8", "uint8", "int16", "uint16", "int32", "uint32", "int64", "uint64")
