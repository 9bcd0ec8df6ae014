"""Model importers: each turns one file format into the graph IR and does nothing else."""
from __future__ import annotations

from pathlib import Path

from ..errors import UserError
from ..ir import Graph, Op

FORMATS = {".tflite": "TFLite", ".onnx": "ONNX"}


def load_model(path: str | Path, allow_unsupported: bool = False) -> Graph:
    """Import an ONNX or TFLite model file into the graph IR (format chosen by the file's contents).

    A model with operators mcutool cannot run is refused with one message naming every one of them, unless
    `allow_unsupported` (for `inspect`): the unsupported layers are then ops of kind "unsupported" in the graph
    (an ONNX model's other import errors, e.g. a Relu with nothing to fuse into, still stop it)."""
    path = Path(path)
    if not path.exists():
        raise UserError(f"model file {str(path)!r} does not exist. Give the path of a .tflite or .onnx file.")
    if path.is_dir():
        raise UserError(f"{str(path)!r} is a directory, not a model file. Give the path of a .tflite or .onnx file.")
    head = path.read_bytes()[:8]
    if len(head) >= 8 and head[4:8] == b"TFL3" or path.suffix.lower() == ".tflite":
        from .tflite import load_tflite
        return load_tflite(path, allow_unsupported)
    if path.suffix.lower() == ".onnx":
        from .onnx import load_onnx
        return load_onnx(path, allow_unsupported=allow_unsupported)
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
