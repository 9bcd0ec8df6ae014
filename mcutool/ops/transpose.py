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


def collapse_axes(shape, perm) -> tuple[tuple[int, ...], list[int]]:
    """The same data movement over fewer axes: input axes that stay adjacent and in order in `perm` merge into
    one (a ShuffleNet channel shuffle's rank-5 (1, H, W, 2, C/2) transpose (0, 1, 2, 4, 3) is (H*W, 2, C/2)
    transposed (0, 2, 1)), so the rank-4 kernel runs it."""
    groups: list[list[int]] = []  # runs of input axes, in output order
    for p in perm:
        if groups and groups[-1][-1] + 1 == p:
            groups[-1].append(p)
        else:
            groups.append([p])
    order = sorted(range(len(groups)), key=lambda g: groups[g][0])  # the groups in input order
    merged = tuple(int(np.prod([shape[a] for a in groups[g]], dtype=np.int64)) for g in order)
    return merged, [order.index(g) for g in range(len(groups))]


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
    r = len(x.shape)
    perm = [int(p) % r if r else 0 for p in op.attrs.perm]
    if sorted(perm) != list(range(r)):
        raise kernel_error(op, f"perm {tuple(op.attrs.perm)} is not a permutation of {r} axes")
    if tuple(x.shape[p] for p in perm) != tuple(y.shape):
        raise kernel_error(op, f"input {x.shape} permuted by {tuple(perm)} is not the output shape {y.shape}")
    shape, perm = collapse_axes(x.shape, perm)
    k, _ = rank_pad(op, shape)
    fields = {"input": dims(shape), "perm": list(range(k)) + [p + k for p in perm]}
    ctype = CTYPES[x.dtype]
    return KernelParams(f"mcu_transpose_{'s8' if x.dtype == 'int8' else 's16'}", "mcu_transpose_params", fields,
                        in_ctype=ctype, out_ctype=ctype)


register("transpose", TransposeAttrs, _reference_transpose, kernel_params, dtypes=("int8", "int16"))
