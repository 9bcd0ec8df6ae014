"""Model importers: each turns one file format into the graph IR and does nothing else."""
from __future__ import annotations

from pathlib import Path

import numpy as np

from ..errors import UserError
from ..ir import Graph

FORMATS = {".tflite": "TFLite", ".onnx": "ONNX"}


# No microcontroller memory here holds a tensor this large (the largest, a board's QSPI flash, is 16 MiB); a
# model with one is corrupt or not a model for MCUs, and quantizing it would exhaust the host's memory first.
MAX_TENSOR_ELEMENTS = 1 << 24


def _check_tensors(graph: Graph, path: Path) -> Graph:
    """What every importer's graph must satisfy before the stages compute with it: sizes an MCU can hold, finite
    constants, positive finite quantization scales."""
    for t in graph.tensors.values():
        n = 1
        for d in t.shape:
            n *= int(d)
        if n > MAX_TENSOR_ELEMENTS:
            raise UserError(f"{path.name}: tensor {t.name!r} has shape {list(t.shape)}, {n:,} values; no "
                            f"microcontroller memory holds that (mcutool's limit: {MAX_TENSOR_ELEMENTS:,} values per "
                            "tensor). The file is corrupt or the model is not one for microcontrollers.")
        if t.is_const and t.data.dtype.kind == "f" and not np.isfinite(t.data).all():
            raise UserError(f"{path.name}: constant tensor {t.name!r} holds NaN or infinite values; the model "
                            "cannot be quantized or run. The file is corrupt or the training diverged.")
        if t.quant is not None and not (np.isfinite(t.quant.scale).all() and (np.asarray(t.quant.scale) > 0).all()):
            raise UserError(f"{path.name}: tensor {t.name!r} has quantization scale(s) "
                            f"{np.asarray(t.quant.scale).ravel()[:4].tolist()}; a scale must be a positive finite "
                            "number. The file is corrupt.")
    return graph


def load_model(path: str | Path, input_shapes: dict[str, tuple[int, ...]] | None = None) -> Graph:
    """Import an ONNX or TFLite model file into the graph IR (format chosen by the file's contents).
    `input_shapes`: fixed shapes for ONNX inputs with dynamic dimensions (--input-shape)."""
    path = Path(path)
    if not path.exists():
        raise UserError(f"model file {str(path)!r} does not exist. Give the path of a .tflite or .onnx file.")
    if path.is_dir():
        raise UserError(f"{str(path)!r} is a directory, not a model file. Give the path of a .tflite or .onnx file.")
    head = path.read_bytes()[:8]
    if len(head) >= 8 and head[4:8] == b"TFL3" or path.suffix.lower() == ".tflite":
        if input_shapes:
            raise UserError(f"{path.name}: --input-shape fixes dynamic dimensions of ONNX inputs; a TFLite model's "
                            "input shapes are stored in the file.")
        from .tflite import load_tflite
        return _check_tensors(load_tflite(path), path)
    if path.suffix.lower() == ".onnx":
        from .onnx import load_onnx
        return _check_tensors(load_onnx(path, input_shapes=input_shapes), path)
    raise UserError(f"{path.name}: unknown model format (suffix {path.suffix or 'none'!r} and no TFLite header). "
                    "mcutool imports .tflite and .onnx files.")
