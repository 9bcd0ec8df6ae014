"""CAST: TFLite Micro's `cast.cc`: each element converted with C's static_cast (integers wrap to the narrower type,
no requantization -- a quantized tensor's raw values are kept), between int8, int16 and int32 (what the
tflite-micro interpreter runs; checked on every pair); float32 as numpy's astype for calibrating float models.
Kernel: runtime/mcu_cast_s8.c (element sizes 1, 2, 4).
"""
from __future__ import annotations

import numpy as np

from mcutool.ir import Graph, NoAttrs, Op
from mcutool.ops import register
from mcutool.ops.common import unsupported
from mcutool.ops.fixedpoint import NP_DTYPES
from mcutool.ops.kernel import KernelParams, kernel_error

INTEGERS = {"int8": 1, "int16": 2, "int32": 4}


def cast_integer(x, dtype: str) -> np.ndarray:
    """static_cast between signed integer types: two's-complement wrap (numpy's astype does the same)."""
    return np.asarray(x).astype(NP_DTYPES[dtype])


def _reference(graph, op, args):
    src, dst = graph.tensor(op.inputs[0]).dtype, graph.tensor(op.outputs[0]).dtype
    if src in INTEGERS and dst in INTEGERS:
        return [cast_integer(args[0], dst)]
    if "float32" in (src, dst) and {src, dst} <= set(INTEGERS) | {"float32"}:
        return [np.asarray(args[0]).astype(NP_DTYPES[dst])]
    raise unsupported(op, f"a CAST from {src} to {dst}; mcutool casts between int8, int16, int32 and float32")


def kernel_params(graph: Graph, op: Op) -> KernelParams:
    x, y = graph.tensor(op.inputs[0]), graph.tensor(op.outputs[0])
    if x.dtype not in INTEGERS or y.dtype not in INTEGERS:
        raise kernel_error(op, f"a CAST from {x.dtype} to {y.dtype} (the firmware casts int8, int16 and int32)")
    fields = {"size": x.size, "input_bytes": INTEGERS[x.dtype], "output_bytes": INTEGERS[y.dtype]}
    return KernelParams("mcu_cast_s8", "mcu_cast_params", fields)


register("cast", NoAttrs, _reference, kernel_params, dtypes=("int8", "int16"))
