"""Model importers: each turns one file format into the graph IR and does nothing else."""
from __future__ import annotations

from pathlib import Path

from ..errors import UserError
from ..ir import Graph

FORMATS = {".tflite": "TFLite", ".onnx": "ONNX"}


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
        return load_tflite(path)
    if path.suffix.lower() == ".onnx":
        from .onnx import load_onnx
        return load_onnx(path, input_shapes=input_shapes)
    raise UserError(f"{path.name}: unknown model format (suffix {path.suffix or 'none'!r} and no TFLite header). "
                    "mcutool imports .tflite and .onnx files.")
