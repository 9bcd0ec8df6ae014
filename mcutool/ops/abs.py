"""ABS: TFLite Micro's `elementwise.cc` (PrepareAbsRsqrt / AbsEvalQuantized), int8 and quantized int16:
|q - zp_in|, requantized by s_in / s_out only when the scales differ, plus zp_out, clamped; float32 for
calibration. Kernels: int8, the table of runtime/mcu_lut_s8.c; int16, runtime/mcu_requant_clamp_s16.c.
NEG: TFLite Micro (and TFLite 2.14) run it on float32 only, so an int8 NEG is refused.
"""
from __future__ import annotations

import numpy as np

from mcutool.errors import UserError
from mcutool.ir import Graph, NoAttrs, Op
from mcutool.ops import register
from mcutool.ops.common import RequantClamp, kind_of, quantized_operands, unsupported
from mcutool.ops.fixedpoint import dtype_range, f32, quantize_multiplier
from mcutool.ops.kernel import KernelParams, kernel_where, lut_kernel, requant_clamp_s16_kernel


def abs_quantized(in_scale, in_zp: int, out_scale, out_zp: int, dtype: str) -> RequantClamp:
    """AbsEvalQuantized<T> with PrepareAbsRsqrt's parameters: |q - zp_in|, rescaled only when the scales differ."""
    qmin, qmax = dtype_range(dtype)
    m, sh = None, 0
    if f32(in_scale) != f32(out_scale):
        m, sh = quantize_multiplier(float(f32(in_scale)) / float(f32(out_scale)))
    return RequantClamp(int(in_zp), int(out_zp), m, sh, qmin, qmax, take_abs=True)


def _function(graph: Graph, op: Op) -> RequantClamp:
    (s, z), (so, zo) = quantized_operands(graph, op)
    return abs_quantized(s, z, so, zo, graph.tensor(op.inputs[0]).dtype)


def _reference(graph, op, args):
    if graph.tensor(op.inputs[0]).dtype == "float32" and kind_of(graph, op) == "float":
        return [np.abs(np.asarray(args[0], np.float32))]
    return [_function(graph, op)(args[0])]


def kernel_params(graph: Graph, op: Op) -> KernelParams:
    if graph.tensor(op.inputs[0]).dtype == "int16":
        return requant_clamp_s16_kernel(graph, op, _function(graph, op))
    return lut_kernel(graph, op, _function(graph, op))


_NO_INT8_NEG = ("TFLite Micro and TFLite run NEG on float32 (and int32/int64) tensors only, so there is no int8 "
                "NEG to match; keep it out of the quantized part of the model")


def _reference_neg(graph, op, args):
    if kind_of(graph, op) == "float":
        return [np.negative(np.asarray(args[0], np.float32))]
    raise unsupported(op, _NO_INT8_NEG)


def _kernel_neg(graph: Graph, op: Op) -> KernelParams:
    """No firmware NEG: the reason, instead of codegen's generic 'no code generator'."""
    raise UserError(f"{kernel_where(op)}: {_NO_INT8_NEG}.")


register("abs", NoAttrs, _reference, kernel_params, dtypes=("int8", "int16"))
register("neg", NoAttrs, _reference_neg, _kernel_neg, dtypes=())
