"""CONCATENATION (`reference/concatenation.h`); int8 inputs quantized differently from the output are requantized
first. int16 (TFLite Micro's concatenation.cc copies int16 values as they are, whatever their scales): inputs
quantized as the output, no fused activation. Kernel: runtime/mcu_concat_s8.c (int16 as a byte concatenation).
"""
from __future__ import annotations

import numpy as np

from mcutool.ir import ConcatAttrs, Graph, Op
from mcutool.ops import register
from mcutool.ops.common import float_activation, kind_of, qparams, same_quant, unsupported
from mcutool.ops.fixedpoint import activation_range, clamp, i64, requantize, requantize_multiplier
from mcutool.ops.kernel import (CRef, INT8_MAX, INT8_MIN, KernelParams, dims4, int8_qparams, int_qparams, kernel_error,
                                rank_pad, requant_table, same_qparams)


def _check_int16(graph, op, error) -> None:
    """An int16 CONCATENATION moves values unchanged (TFLite Micro does not rescale them): every input must be
    quantized as the output, and there is no fused activation to apply."""
    out_t = graph.tensor(op.outputs[0])
    for name in op.inputs:
        if not same_quant(graph.tensor(name), out_t):
            raise error(op, f"int16 input {name!r} is quantized differently from the output (TFLite Micro copies "
                        "int16 values without rescaling them); give the inputs the output's scale")
    if op.attrs.activation != "none":
        raise error(op, f"a fused {op.attrs.activation} on an int16 concatenation (TFLite Micro does not apply it)")


def _reference_concat(graph, op, args):
    out_t = graph.tensor(op.outputs[0])
    axis = op.attrs.axis
    if out_t.dtype == "int16":
        kind_of(graph, op, int16=True)
        _check_int16(graph, op, unsupported)
        return [np.concatenate([i64(a) for a in args], axis=axis)]
    if out_t.dtype in ("int32", "int64") and out_t.quant is None:  # shape arithmetic, folded (mcutool/fold.py)
        return [np.concatenate([np.asarray(a) for a in args], axis=axis).astype(out_t.dtype)]
    if kind_of(graph, op) == "float":
        return [float_activation(np.concatenate([np.asarray(a, np.float32) for a in args], axis=axis),
                                 op.attrs.activation)]
    so, zo = qparams(op, out_t, "output")
    lo, hi = activation_range(op.attrs.activation, so, zo, out_t.dtype)
    parts = []
    for name, value in zip(op.inputs, args):
        t = graph.tensor(name)
        if same_quant(t, out_t):
            parts.append(i64(value))
        else:
            s, z = qparams(op, t, "input")
            m, sh = requantize_multiplier(s, so)
            parts.append(requantize(value, in_zp=z, multiplier=m, shift=sh, out_zp=zo, out_dtype=out_t.dtype))
    return [clamp(np.concatenate(parts, axis=axis), lo, hi)]


# ---- the runtime/ kernel's parameters (TFLite's Prepare, at compile time)

def kernel_params(graph: Graph, op: Op) -> KernelParams:
    """CONCATENATION: reference_ops::Concatenation; inputs quantized differently from the output are
    requantized first (reference_ops::Requantize, as an int8 QUANTIZE in front of them would), through a
    256-entry table; a fused activation is folded into the tables too."""
    y = graph.tensor(op.outputs[0])
    if y.dtype == "int16":
        return _int16_kernel_params(graph, op)
    yq = int8_qparams(op, y, "output")
    k, r = rank_pad(op, y.shape)
    if r == 0:
        raise kernel_error(op, "concatenation of scalars")
    axis = int(op.attrs.axis) % r
    y4 = dims4(y.shape)
    ax4 = axis + k
    lo, hi = activation_range(op.attrs.activation, yq[0], yq[1], "int8")
    inputs = [graph.tensor(n) for n in op.inputs]
    total = 0
    copy_size, tables, arrays = [], [], {}
    inner = int(np.prod(y4[ax4 + 1:], dtype=np.int64))
    for i, t in enumerate(inputs):
        tq = int8_qparams(op, t, f"input {i}")
        if len(t.shape) != r or any(d != e for j, (d, e) in enumerate(zip(t.shape, y.shape)) if j != axis):
            raise kernel_error(op, f"input {t.name!r} of shape {t.shape} does not match the output {y.shape} "
                               f"outside axis {axis}")
        total += t.shape[axis]
        copy_size.append(int(t.shape[axis]) * inner)
        if same_qparams(tq, yq) and (lo, hi) == (INT8_MIN, INT8_MAX):
            tables.append(None)
        else:
            arrays[f"table{i}"] = ("int8_t", requant_table(tq, yq, lo, hi))
            tables.append(CRef(f"table{i}"))
    if total != y.shape[axis]:
        raise kernel_error(
            op, f"the inputs' extents along axis {axis} add up to {total}, the output has {y.shape[axis]}")
    arrays["copy_size"] = ("int32_t", copy_size)
    fields = {
        "num_inputs": len(inputs),
        "outer": int(np.prod(y4[:ax4], dtype=np.int64)),
        "copy_size": CRef("copy_size"),
        "table": None,
    }
    if any(t is not None for t in tables):
        arrays["tables"] = ("int8_t *const", tables)
        fields["table"] = CRef("tables")
    return KernelParams("mcu_concat_s8", "mcu_concat_params", fields, arrays=arrays,
                        num_inputs=len(inputs), input_array=True)


def _int16_kernel_params(graph: Graph, op: Op) -> KernelParams:
    """int16 CONCATENATION: the int8 kernel's copy of byte blocks, each block twice as many bytes."""
    y = graph.tensor(op.outputs[0])
    for i, name in enumerate(op.inputs):
        int_qparams(op, graph.tensor(name), f"input {i}", ("int16",))
    int_qparams(op, y, "output", ("int16",))
    _check_int16(graph, op, kernel_error)
    k, r = rank_pad(op, y.shape)
    if r == 0:
        raise kernel_error(op, "concatenation of scalars")
    axis = int(op.attrs.axis) % r
    y4 = dims4(y.shape)
    inner = int(np.prod(y4[axis + k + 1:], dtype=np.int64))
    inputs = [graph.tensor(n) for n in op.inputs]
    if sum(t.shape[axis] for t in inputs) != y.shape[axis] or any(
            len(t.shape) != r or any(d != e for j, (d, e) in enumerate(zip(t.shape, y.shape)) if j != axis)
            for t in inputs):
        raise kernel_error(op, f"inputs {[t.shape for t in inputs]} do not concatenate to {y.shape} along axis {axis}")
    arrays = {"copy_size": ("int32_t", [2 * int(t.shape[axis]) * inner for t in inputs])}
    fields = {"num_inputs": len(inputs), "outer": int(np.prod(y4[:axis + k], dtype=np.int64)),
              "copy_size": CRef("copy_size"), "table": None}
    return KernelParams("mcu_concat_s8", "mcu_concat_params", fields, arrays=arrays, num_inputs=len(inputs),
                        input_array=True)


register("concat", ConcatAttrs, _reference_concat, kernel_params, dtypes=("int8", "int16"))
