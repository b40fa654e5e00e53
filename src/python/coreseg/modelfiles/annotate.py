"""Write segmentation labels and colours into a copy of a Core ML model, in
the preview metadata Apple's sample code reads (see coreseg.modelfiles.info)."""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
import tempfile
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from .contract_inputs import parse_size
from .metadata_keys import CROP_KEY, CROP_MODES, SIZE_KEY, setting_keys_error
from .presets import is_preset, preset
from .info import PREVIEW_PARAMS_KEY, PREVIEW_TYPE_KEY, SEGMENTER, ModelError, ModelInfo
from ..kernels.palette import parse_colors

__all__ = ["annotate", "read_label_list"]


def read_label_list(value: str) -> list[str]:
    """Labels (or colours) from the command line: a file holding a JSON list
    or one entry per line, an inline JSON list, or a comma-separated list."""
    p = Path(value)
    if not p.is_file() and (p.suffix.lower() in (".txt", ".json", ".csv") or "/" in value or "\\" in value):
        raise ModelError(f"{value}: no such file (a list of names must be a file, a JSON list or 'a,b,c')")
    where, text = (str(p), p.read_text()) if p.is_file() else ("the list", value)
    if text.lstrip().startswith("["):
        try:
            data = json.loads(text)
        except (ValueError, RecursionError) as e:
            raise ModelError(f"{where}: not a JSON list ({type(e).__name__}: {e})") from None
        return data
    if p.is_file():
        return [line.strip() for line in text.splitlines() if line.strip()]
    return [s.strip() for s in value.split(",")]


def _check_settings(metadata: dict) -> None:
    """The settings a model reader does not check when it reads them: the
    crop mode and the input size."""
    crop = metadata.get(CROP_KEY)
    if crop is not None and crop not in CROP_MODES:
        raise ModelError(f"metadata {CROP_KEY} must be one of {', '.join(CROP_MODES)}, got {crop!r}")
    if SIZE_KEY in metadata:
        try:
            parse_size(metadata[SIZE_KEY])
        except ValueError as e:
            raise ModelError(f"metadata {SIZE_KEY}: {e}") from None


def _check_labels(labels) -> list[str]:
    if isinstance(labels, str) or not isinstance(labels, Sequence):
        raise ModelError("labels must be a list of strings")
    if not labels or not all(isinstance(s, str) and s for s in labels):
        raise ModelError("labels must be a non-empty list of non-empty strings")
    return list(labels)


def _hex(colors) -> list[str]:
    if isinstance(colors, np.ndarray) or (len(colors) and not isinstance(colors[0], str)):
        a = np.asarray(colors)
        if a.ndim != 2 or a.shape[1] not in (3, 4) or a.dtype.kind not in "iu" or a.min() < 0 or a.max() > 255:
            raise ModelError("colors must be hex strings or an (n, 3)/(n, 4) array of 0..255")
        return ["#" + bytes(c.astype(np.uint8)).hex().upper() for c in a]
    try:
        parsed = parse_colors(colors)
    except ValueError as e:
        raise ModelError(str(e)) from None
    # Hex RGB as Apple writes it; alpha only where it is not opaque.
    return ["#" + bytes(c[:3] if c[3] == 255 else c).hex().upper() for c in parsed]


def _write_onnx(src: Path, dst: Path, metadata: dict) -> None:
    """Copy an ONNX model with `metadata` set in its metadata_props."""
    try:
        import onnx
    except ImportError:
        raise ImportError("annotating ONNX models needs the onnx package: pip install 'coreseg[onnx]'") from None
    model = onnx.load(str(src))
    kept = [(p.key, p.value) for p in model.metadata_props if p.key not in metadata]
    del model.metadata_props[:]
    for key, value in kept + list(metadata.items()):
        entry = model.metadata_props.add()
        entry.key, entry.value = key, value
    onnx.save(model, str(dst))


def annotate(model, labels, out, colors=None, force: bool = False, metadata=None) -> ModelInfo:
    """Copy a segmentation model with labels (and colours) in its metadata.

    Writes ``com.apple.coreml.model.preview.type = "imageSegmenter"`` and
    ``com.apple.coreml.model.preview.params = {"labels": [...], "colors":
    [...]}`` (other keys already in the params are kept) into a copy at
    `out`. The input model is never modified.

    Parameters
    ----------
    model : str or os.PathLike
        A ``.mlpackage`` or ``.mlmodel`` with an image input and an integer
        class-map output, or an ``.onnx`` segmentation model (its
        metadata_props, with the ``onnx`` package).
    labels : list of str, str or None
        Class names, index = class id; "--" for unused ids; or a preset
        ("voc", "cityscapes", "cityscapes-bg", "ade20k"), whose colours
        come too; None keeps the model's own labels (to store settings
        only).
    out : str or os.PathLike
        Where to write the copy; same format (suffix) as `model`.
    colors : list of "#RRGGBB[AA]" or (n, 3)/(n, 4) array, optional
        One per label.
    force : bool
        Replace `out` if it exists. Without it an existing `out` is an error.
    metadata : dict of str to str, optional
        More metadata to write, e.g. the model contract's keys
        (``{"coreseg.output.activation": "sigmoid",
        "coreseg.input.normalization": "imagenet"}``; every setting `load`
        takes has one, see coreseg.modelfiles.settings.KEYS). A
        ``coreseg.*`` key coreseg does not read is refused (naming the
        closest one), and the copy is checked to load with them before
        anything is written.

    Returns
    -------
    ModelInfo
        Of the written copy.
    """
    src, dst = Path(os.fspath(model)), Path(os.fspath(out))
    if isinstance(labels, str) and is_preset(labels):
        labels, preset_colors = preset(labels)
        if colors is None:
            colors = preset_colors
    labels = None if labels is None else _check_labels(labels)
    extra = dict(metadata or {})
    if not all(isinstance(k, str) and isinstance(v, str) for k, v in extra.items()):
        raise ModelError(f"metadata must map strings to strings, got {extra!r}")
    for key in extra:
        if key != key.strip() or not key:
            raise ModelError(f"metadata key {key!r} has spaces around it (write KEY=VALUE without spaces)")
    unknown = setting_keys_error(extra, "metadata")
    if unknown is not None:
        raise unknown
    _check_settings(extra)
    onnx = coreml = None
    if src.suffix.lower() == ".onnx":
        from . import onnx_file  # model files only, no runtime

        onnx = onnx_file.read(src)
        existing = onnx.metadata.get(PREVIEW_PARAMS_KEY)
        spec = fmt = None
    else:
        from . import coreml_file  # model files only, no backend

        spec, fmt = coreml_file.read_spec(src)
        coreml = coreml_file.read(src)
        coreml_file.describe(coreml)  # refuse what is not a segmentation model
        existing = spec.description.metadata.userDefined.get(PREVIEW_PARAMS_KEY)
    if dst.suffix.lower() != src.suffix.lower():
        raise ModelError(f"{dst}: the copy must have the same format as {src.name} ({src.suffix})")
    if dst.resolve() == src.resolve():
        raise ModelError(f"{dst}: refusing to write over the input model; choose another output")
    if dst.exists() and not force:
        raise ModelError(f"{dst} exists; pass force=True (--force) to replace it")

    params = {}
    if existing:
        try:
            params = json.loads(existing)
        except (ValueError, RecursionError):
            params = {}
        if not isinstance(params, dict):
            params = {}
    if labels is not None:
        params["labels"] = labels
        params.pop("colors", None)
    if colors is not None:
        if labels is None:
            raise ModelError("colors need labels: give the labels they colour")
        hex_colors = _hex(colors)
        if len(hex_colors) != len(labels):
            raise ModelError(f"{len(hex_colors)} colors for {len(labels)} labels; they must match one to one")
        params["colors"] = hex_colors
    metadata = {**extra, PREVIEW_TYPE_KEY: SEGMENTER, PREVIEW_PARAMS_KEY: json.dumps(params)}
    if onnx is not None:  # refuse, before writing, a copy that would not load
        described = onnx_file.describe(dataclasses.replace(onnx, metadata={**onnx.metadata, **metadata}))[0]
    else:
        described = coreml_file.describe(dataclasses.replace(coreml, metadata={**coreml.metadata, **metadata}))[0]
    if SIZE_KEY in metadata and described.input_size is not None and onnx is not None:
        size = parse_size(metadata[SIZE_KEY])
        if size != tuple(described.input_size):
            raise ModelError(f"metadata {SIZE_KEY}={metadata[SIZE_KEY]!r}: {src.name} takes "
                             f"{described.input_size[0]}x{described.input_size[1]} images only")

    # Build the copy beside its destination, then move it into place, so a
    # failure never leaves a half-written model at `out`.
    dst.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=".coreseg-", dir=dst.parent))
    try:
        staged = tmp / dst.name
        if spec is None:
            _write_onnx(src, staged, metadata)
        elif fmt == "mlpackage":
            shutil.copytree(src, staged)
            # The copy is the user's new file: writable, whatever the source was.
            for folder, _, files in os.walk(staged):
                os.chmod(folder, 0o755)
                for name in files:
                    os.chmod(os.path.join(folder, name), 0o644)
            spec_path, _ = coreml_file.spec_file(staged)
        else:
            spec_path = staged
        if spec is not None:
            spec.description.metadata.userDefined.update(metadata)
            spec_path.write_bytes(spec.SerializeToString())
        if dst.exists():
            shutil.rmtree(dst) if dst.is_dir() else dst.unlink()
        os.replace(staged, dst)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    from .reading import inspect

    return inspect(dst)
