"""BATCH_MATMUL, int8 (`micro/kernels/batch_matmul.cc` EvalInt8 -> `reference/batch_matmul.h`):
output[..., i, j] = sum_k (lhs[..., i, k] - zp_lhs) * (rhs[..., k, j] - zp_rhs), requantized by
s_lhs * s_rhs / s_out (GetQuantizedConvolutionMultipler: the scale product in float32), clamped to int8 (no fused
activation). adj_x / adj_y read an operand transposed; batch axes broadcast (extent 1). float32 for calibration.
Either operand may be a constant (weights) or an activation (attention). Kernel: runtime/mcu_batch_matmul_s8.c.
"""
from __future__ import annotations

import numpy as np

from mcutool.errors import UserError
from mcutool.ir import BatchMatMulAttrs, Graph, Op
from mcutool.ops import register
from mcutool.ops.common import kind_of, qparams, where
from mcutool.ops.conv import legacy_conv_output_multiplier
from mcutool.ops.fixedpoint import i64, requantize_accumulator, single_rounding_multipliers
from mcutool.ops.kernel import INT8_MAX, INT8_MIN, KernelParams, dims4, int8_qparams, kernel_error, quant


def _operands(graph: Graph, op: Op, lhs, rhs):
    """lhs as [..., rows, depth] and rhs as [..., depth, cols] (adjoints undone), shapes checked."""
    a, b, y = (graph.tensor(n) for n in (op.inputs[0], op.inputs[1], op.outputs[0]))
    if min(len(a.shape), len(b.shape)) < 2:
        raise UserError(f"{where(op)}: operands of rank >= 2 (got {a.shape} and {b.shape})")
    lhs = np.swapaxes(lhs, -1, -2) if op.attrs.adj_x else lhs
    rhs = np.swapaxes(rhs, -1, -2) if op.attrs.adj_y else rhs
    try:
        shape = np.broadcast_shapes(lhs.shape[:-2], rhs.shape[:-2]) + (lhs.shape[-2], rhs.shape[-1])
    except ValueError:
        shape = None
    if lhs.shape[-1] != rhs.shape[-2] or shape != y.shape:
        raise UserError(f"{where(op)}: {a.shape} x {b.shape} (adj_x={op.attrs.adj_x}, adj_y={op.attrs.adj_y}) "
                        f"does not give the output {y.name!r} of shape {y.shape}")
    return lhs, rhs


def _multiplier(op: Op, sa, sb, so) -> tuple[int, int]:
    """TFLite's (the float32 scale product, as FULLY_CONNECTED); one rounding for attrs.rounding "single"."""
    m, s = legacy_conv_output_multiplier(sa, sb, so)
    return single_rounding_multipliers(m, s) if op.attrs.rounding == "single" else (m, s)


def _reference_batch_matmul(graph, op, args):
    lhs, rhs = _operands(graph, op, np.asarray(args[0]), np.asarray(args[1]))
    if kind_of(graph, op) == "float":
        return [np.matmul(lhs.astype(np.float32), rhs.astype(np.float32))]
    a, b, y = (graph.tensor(n) for n in (op.inputs[0], op.inputs[1], op.outputs[0]))
    (sa, za), (sb, zb), (so, zo) = (qparams(op, t, r) for t, r in ((a, "lhs"), (b, "rhs"), (y, "output")))
    acc = np.matmul(i64(lhs) - za, i64(rhs) - zb)
    m, s = _multiplier(op, sa, sb, so)
    return [requantize_accumulator(acc, m, s, zo, INT8_MIN, INT8_MAX)]


# ---- the runtime/ kernel's parameters (TFLite's Prepare, at compile time)

def kernel_params(graph: Graph, op: Op) -> KernelParams:
    """Two batch axes (rank <= 4), broadcast by a stride of 0; a constant operand is a companion array."""
    a, b, y = (graph.tensor(n) for n in (op.inputs[0], op.inputs[1], op.outputs[0]))
    (sa, za), (sb, zb), (so, zo) = (int8_qparams(op, t, r) for t, r in ((a, "lhs"), (b, "rhs"), (y, "output")))
    if max(len(a.shape), len(b.shape)) > 4:
        raise kernel_error(op, f"operands of rank > 4 ({a.shape}, {b.shape})")
    _operands(graph, op, np.zeros(a.shape, np.int8), np.zeros(b.shape, np.int8))
    a4, b4, y4 = dims4(a.shape), dims4(b.shape), dims4(y.shape)
    rows, cols = y4[2], y4[3]
    depth = a4[2] if op.attrs.adj_x else a4[3]
    strides = {}
    for name, d in (("lhs", a4), ("rhs", b4)):
        size = d[2] * d[3]
        strides[name] = [0 if d[0] == 1 else d[1] * size, 0 if d[1] == 1 else size]
    m, s = _multiplier(op, sa, sb, so)
    fields = {"batch": [y4[0], y4[1]], "lhs_stride": strides["lhs"], "rhs_stride": strides["rhs"],
              "rows": rows, "cols": cols, "depth": depth, "adj_x": int(op.attrs.adj_x), "adj_y": int(op.attrs.adj_y),
              "lhs_offset": -za, "rhs_offset": -zb, "output_offset": zo, "quant": quant(m, s)}
    arrays, consts = {}, {}
    for position, (name, t) in enumerate((("lhs", a), ("rhs", b))):
        if t.is_const:
            arrays[name] = ("int8_t", [int(v) for v in np.asarray(t.data).reshape(-1)])
            consts[position] = name
    return KernelParams("mcu_batch_matmul_s8", "mcu_batch_matmul_params", fields, arrays=arrays, num_inputs=2,
                        const_inputs=consts)


register("batch_matmul", BatchMatMulAttrs, _reference_batch_matmul, kernel_params)
