"""TRANSPOSE (`reference/transpose.h`), int8 and int16. Kernels: runtime/mcu_transpose_s8.c (mcu_transpose_s8,
mcu_transpose_s16).
"""
from __future__ import annotations

import numpy as np

from mcutool.ir import Graph, Op, TransposeAttrs
from mcutool.ops import register
from mcutool.ops.common import require_same_quant
from mcutool.ops.kernel import CTYPES, KernelParams, dims, int_qparams, kernel_error, rank_pad, same_qparams


def transpose(x, perm) -> np.ndarray:
    """TRANSPOSE (`reference/transpose.h`)."""
    return np.ascontiguousarray(np.transpose(np.asarray(x), perm))


def _reference_transpose(graph, op, args):
    require_same_quant(graph, op)
    return [transpose(args[0], tuple(op.attrs.perm))]


# ---- the runtime/ kernel's parameters (TFLite's Prepare, at compile time)

def kernel_params(graph: Graph, op: Op) -> KernelParams:
    """TRANSPOSE: reference_ops::Transpose."""
    x, y = graph.tensor(op.inputs[0]), graph.tensor(op.outputs[0])
    xq, yq = int_qparams(op, x, "input", ("int8", "int16")), int_qparams(op, y, "output", ("int8", "int16"))
    if not same_qparams(xq, yq) or x.dtype != y.dtype:
        raise kernel_error(op, "input and output quantization differ (TRANSPOSE moves values without rescaling them)")
    k, r = rank_pad(op, x.shape)
    perm = [int(p) % r if r else 0 for p in op.attrs.perm]
    if sorted(perm) != list(range(r)):
        raise kernel_error(op, f"perm {tuple(op.attrs.perm)} is not a permutation of {r} axes")
    if tuple(x.shape[p] for p in perm) != tuple(y.shape):
        raise kernel_error(op, f"input {x.shape} permuted by {tuple(perm)} is not the output shape {y.shape}")
    fields = {"input": dims(x.shape), "perm": list(range(k)) + [p + k for p in perm]}
    ctype = CTYPES[x.dtype]
    return KernelParams(f"mcu_transpose_{'s8' if x.dtype == 'int8' else 's16'}", "mcu_transpose_params", fields,
                        in_ctype=ctype, out_ctype=ctype)


register("transpose", TransposeAttrs, _reference_transpose, kernel_params, dtypes=("int8", "int16"))
