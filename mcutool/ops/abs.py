"""ABS: TFLite Micro's `elementwise.cc` (PrepareAbsRsqrt / AbsEvalQuantized): |q - zp_in|, requantized by
s_in / s_out only when the scales differ, plus zp_out, clamped; float32 for calibration. NEG: TFLite Micro (and
TFLite 2.14) run it on float32 only, so an int8 NEG is refused. Kernel: the int8 table of runtime/mcu_lut_s8.c.
"""
from __future__ import annotations

import numpy as np

from mcutool.errors import UserError
from mcutool.ir import Graph, NoAttrs, Op
from mcutool.ops import register
from mcutool.ops.common import int8_operands, kind_of, unsupported
from mcutool.ops.fixedpoint import clamp, f32, i64, multiply_by_quantized_multiplier, quantize_multiplier
from mcutool.ops.kernel import KernelParams, kernel_where, lut_kernel


def abs_int8(x, in_zp: int, in_scale, out_zp: int, out_scale) -> np.ndarray:
    """AbsEvalQuantized<int8_t> with PrepareAbsRsqrt's parameters."""
    value = np.abs(i64(x) - int(in_zp))
    if f32(in_scale) != f32(out_scale):
        m, sh = quantize_multiplier(float(f32(in_scale)) / float(f32(out_scale)))
        value = multiply_by_quantized_multiplier(value, m, sh)
    return clamp(value + int(out_zp), -128, 127)


def _int8_function(graph: Graph, op: Op):
    (s, z), (so, zo) = int8_operands(graph, op, ("input", "output"))
    return lambda q: abs_int8(q, z, s, zo, so)


def _reference(graph, op, args):
    if kind_of(graph, op) == "float":
        return [np.abs(np.asarray(args[0], np.float32))]
    return [_int8_function(graph, op)(args[0])]


def kernel_params(graph: Graph, op: Op) -> KernelParams:
    return lut_kernel(graph, op, _int8_function(graph, op))


_NO_INT8_NEG = ("TFLite Micro and TFLite run NEG on float32 (and int32/int64) tensors only, so there is no int8 "
                "NEG to match; keep it out of the quantized part of the model")


def _reference_neg(graph, op, args):
    if kind_of(graph, op) == "float":
        return [np.negative(np.asarray(args[0], np.float32))]
    raise unsupported(op, _NO_INT8_NEG)


def _kernel_neg(graph: Graph, op: Op) -> KernelParams:
    """No firmware NEG: the reason, instead of codegen's generic 'no code generator'."""
    raise UserError(f"{kernel_where(op)}: {_NO_INT8_NEG}.")


register("abs", NoAttrs, _reference, kernel_params)
register("neg", NoAttrs, _reference_neg, _kernel_neg, dtypes=())
