"""An elementwise function of one float tensor, written in a float ONNX model with ops TFLite Micro has no int8
kernel for (the Erf of a GELU, Gelu, Tanh, Exp, Softplus ...): the ONNX nodes themselves, kept as a small ONNX
graph `y = f(x)` (`FunctionAttrs.model`). float32: onnx's reference evaluator runs it (for calibration). It never
reaches firmware as is: quantizing the graph (`quantize/ptq.py`) turns it into a `lut`, whose 256 entries are
`table(attrs, input quant, output quant)`: each int8 input dequantized, f applied in float32, divided by the output
scale and rounded half away from zero, plus the zero point, clamped -- how TFLite builds its own int8 tables
(GELU, ELU: `PopulateLookupTable`).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from mcutool.ir import Graph, Op, Quant
from mcutool.ops import register
from mcutool.ops.common import kind_of, unsupported
from mcutool.ops.fixedpoint import clamp, f32, tflite_round


@dataclass
class FunctionAttrs:
    model: bytes = b""  # a serialized ONNX model: input "x", output "y", both 1-D float32, elementwise
    label: str = ""     # the ONNX ops it holds, for messages and inspect


def evaluate(attrs: FunctionAttrs, x: np.ndarray) -> np.ndarray:
    """f(x) in float32, elementwise, any shape."""
    import onnx
    from onnx.reference import ReferenceEvaluator
    x = np.asarray(x, np.float32)
    y = ReferenceEvaluator(onnx.load_from_string(attrs.model)).run(None, {"x": x.reshape(-1)})[0]
    return np.asarray(y, np.float32).reshape(x.shape)


def table(attrs: FunctionAttrs, in_quant: Quant, out_quant: Quant) -> tuple[int, ...]:
    """The int8 -> int8 table (index: input + 128) of f between the two quantizations."""
    codes = np.arange(-128, 128)
    x = (codes - int(in_quant.zero_point[0])).astype(np.float32) * f32(in_quant.scale[0])
    y = evaluate(attrs, x) / f32(out_quant.scale[0])
    return tuple(int(v) for v in clamp(tflite_round(y).astype(np.int64) + int(out_quant.zero_point[0]), -128, 127))


def _reference(graph: Graph, op: Op, args):
    if kind_of(graph, op) != "float":
        raise unsupported(op, f"an int8 {op.attrs.label or 'function'}: quantizing the model makes it a table")
    return [evaluate(op.attrs, args[0])]


register("float_function", FunctionAttrs, _reference, None, dtypes=())
