"""Helpers shared by the commands."""

from __future__ import annotations

import sys

OUTLINE = (255, 255, 255, 255)


def model_path(name: str) -> str:
    if name != "demo":
        return name
    from .. import demo

    return str(demo.model_path("onnx" if needs_onnx_for_info() else "mlpackage"))


def needs_onnx_for_info() -> bool:
    try:
        import coremltools  # noqa: F401
    except ImportError:
        return True
    return False


def refuse_existing(paths, force: bool) -> None:
    existing = [p for p in paths if p.exists()]
    if existing and not force:
        more = f" (and {len(existing) - 1} more)" if len(existing) > 1 else ""
        raise FileExistsError(f"{existing[0]} exists{more}; pass --force to overwrite")


def progress_bar(items, args, total: int | None = None, unit: str = "image", desc: str | None = None):
    """`items` with a progress bar on stderr (rate and time left) when there
    is more than one, or an unknown number, and tqdm is installed. `total`
    for iterators without a length (None: unknown)."""
    if total is None and hasattr(items, "__len__"):
        total = len(items)
    if total is None or total > 1:
        try:
            from tqdm import tqdm

            return tqdm(items, total=total, unit=unit, desc=desc, file=sys.stderr)
        except ImportError:
            pass
    return items
