"""Model importers: each turns one file format into the graph IR and does nothing else."""
from __future__ import annotations

from pathlib import Path

import numpy as np

from ..errors import UserError
from ..ir import Graph, Op

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


def load_model(path: str | Path, allow_unsupported: bool = False,
               input_shapes: dict[str, tuple[int, ...]] | None = None) -> Graph:
    """Import an ONNX or TFLite model file into the graph IR (format chosen by the file's contents).

    A model with operators mcutool cannot run is refused with one message naming every one of them, unless
    `allow_unsupported` (for `inspect`): the unsupported layers are then ops of kind "unsupported" in the graph
    (an ONNX model's other import errors, e.g. a Relu with nothing to fuse into, still stop it). `input_shapes`:
    fixed shapes for ONNX inputs with dynamic dimensions (--input-shape)."""
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
        return _check_tensors(load_tflite(path, allow_unsupported), path)
    if path.suffix.lower() == ".onnx":
        from .onnx import load_onnx
        return _check_tensors(load_onnx(path, allow_unsupported=allow_unsupported, input_shapes=input_shapes), path)
    raise UserError(f"{path.name}: unknown model format (suffix {path.suffix or 'none'!r} and no TFLite header). "
                    "mcutool imports .tflite and .onnx files.")


def unsupported_layers(graph: Graph) -> dict[str, list[Op]]:
    """The graph's unsupported layers by operator (as the model file names it), in order of first appearance."""
    groups: dict[str, list[Op]] = {}
    for op in graph.ops:
        if op.kind == "unsupported":
            groups.setdefault(op.attrs.op, []).append(op)
    return groups


def unsupported_summary(graph: Graph) -> str:
    """Every unsupported operator in one sentence: its name, how many layers use it, the first of them."""
    position = {id(op): i for i, op in enumerate(graph.ops)}
    parts = []
    for name, ops in unsupported_layers(graph).items():
        first = ops[0]
        where = f"#{position[id(first)]} {first.name!r}"
        count = f"{len(ops)} layers, the first {where}" if len(ops) > 1 else f"1 layer, {where}"
        parts.append(f"{name} ({count}){': ' + first.attrs.reason if first.attrs.reason else ''}")
    return "; ".join(parts)


def refuse_unsupported(graph: Graph, file_name: str, supported: str) -> None:
    """Raise one UserError naming every unsupported operator of `graph` (nothing when there is none).
    `supported`: the sentence listing what the importer does support."""
    groups = unsupported_layers(graph)
    if not groups:
        return
    many = len(groups) > 1
    raise UserError(f"{file_name}: {len(groups)} operator{'s' if many else ''} of the model {'are' if many else 'is'} "
                    f"not supported by mcutool: {unsupported_summary(graph)}. {supported} `mcutool inspect "
                    f"{file_name}` lists the layers with the unsupported ones marked.")
