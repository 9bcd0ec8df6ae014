"""DIV: TFLite Micro's `div.cc` (CalculateOpDataDiv: multiplier s1 / (s2 s_out), in double -- what the tflite-micro
interpreter computes, exhaustively tested; a div.cc that forms the product in float32 moves exact ties) and
reference_ops::DivElementwise / BroadcastDivSlowQuantized (`reference/div.h`): the quotient through
GetReciprocal of the divisor and the numerator's headroom, requantized, clamped to the fused activation's range;
broadcasting. float32 for calibration. Kernel: runtime/mcu_div_s8.c.

A divisor equal to its zero point (a real 0) is undefined in TFLite Micro (a DCHECK; the reciprocal of 0 shifts
by 32). mcutool gives the saturated quotient instead: the activation's max for a numerator >= 0, its min otherwise.
Where the final right shift (output shift - reciprocal shift - headroom) exceeds 31 -- a small numerator over a large
divisor -- TFLite's RoundingDivideByPOT shifts an int32 by 32 or more, which is undefined (x86 and Arm give
different garbage; TFLite Micro's host interpreter gives up to 127 where the quotient is 0); mcutool rounds exactly
there (the quotient then is below half an output step: the output zero point).
"""
from __future__ import annotations

import numpy as np

from mcutool.ir import ElementwiseAttrs, Graph, Op
from mcutool.ops import register
from mcutool.ops.common import float_activation, int8_operands, kind_of_all, unsupported
from mcutool.ops.fixedpoint import (activation_range, clamp, count_leading_sign_bits, f32, get_reciprocal, i64,
                                    multiply_by_quantized_multiplier, multiply_by_quantized_multiplier_greater_than_one,
                                    quantize_multiplier)
from mcutool.ops.kernel import (CRef, KernelParams, act, byte_indexed, check_broadcast, const_operands, dims,
                                int8_qparams, quant)

# The numerator's headroom is at least 23 bits for int8 operands, so the total right shift is >= 23 - shift.
MAX_OUTPUT_SHIFT = 23


def div_multiplier(op: Op, scale1, scale2, output_scale, error=unsupported) -> tuple[int, int]:
    m, sh = quantize_multiplier(float(f32(scale1)) / (float(f32(scale2)) * float(f32(output_scale))))
    if sh > MAX_OUTPUT_SHIFT:
        raise error(op, f"the scales give a requantization multiplier of 2^{sh - 1} or more (s1 / (s2 s_out) with "
                    f"s1 = {float(scale1)}, s2 = {float(scale2)}, s_out = {float(output_scale)}); TFLite's int8 "
                    "DIV cannot represent it")
    return m, sh


def div_int8(a, b, *, a_zp: int, b_zp: int, out_zp: int, multiplier: int, shift: int, lo: int, hi: int):
    """DivElementwise<int8_t> with numpy broadcasting (divisor 0: the saturated quotient, see above)."""
    v1, v2 = np.broadcast_arrays(i64(a) - a_zp, i64(b) - b_zp)
    zero = v2 == 0
    v1 = np.where(v2 < 0, -v1, v1)
    v2 = np.where(zero, 1, np.abs(v2))
    inv, recip_shift = get_reciprocal(v2, 31)
    headroom = count_leading_sign_bits(v1)
    unscaled = multiply_by_quantized_multiplier_greater_than_one(v1, inv, headroom)
    out = multiply_by_quantized_multiplier(unscaled, multiplier, shift - recip_shift - headroom) + out_zp
    out = clamp(out, lo, hi)
    return np.where(zero, np.where(v1 >= 0, hi, lo), out)


_ROLES = ("first input", "second input", "output")


def _reference(graph, op, args):
    if kind_of_all(graph, op) == "float":
        q = np.asarray(args[0], np.float32) / np.asarray(args[1], np.float32)
        return [float_activation(q.astype(np.float32), op.attrs.activation)]
    (s1, z1), (s2, z2), (so, zo) = int8_operands(graph, op, _ROLES)
    m, sh = div_multiplier(op, s1, s2, so)
    lo, hi = activation_range(op.attrs.activation, so, zo, "int8")
    return [div_int8(args[0], args[1], a_zp=z1, b_zp=z2, out_zp=zo, multiplier=m, shift=sh, lo=lo, hi=hi)]


def kernel_params(graph: Graph, op: Op) -> KernelParams:
    a, b, y = (graph.tensor(n) for n in (op.inputs[0], op.inputs[1], op.outputs[0]))
    (s1, z1), (s2, z2), (so, zo) = int8_operands(graph, op, _ROLES, int8_qparams)
    check_broadcast(op, a, b, y)
    m, sh = div_multiplier(op, s1, s2, so)
    lo, hi = activation_range(op.attrs.activation, so, zo, "int8")
    fields = {"input1": dims(a.shape), "input2": dims(b.shape), "output": dims(y.shape),
              "input1_offset": -z1, "input2_offset": -z2, "output_offset": zo,
              "output_quant": quant(m, sh), "act": act(lo, hi),
              "recip": CRef("recip"), "recip_shift": CRef("recip_shift")}
    inv, shift = reciprocal_table(z2)
    arrays = {"recip": ("int32_t", byte_indexed(inv)), "recip_shift": ("int8_t", byte_indexed(shift))}
    return const_operands(graph, op, KernelParams("mcu_div_s8", "mcu_div_params", fields, arrays, num_inputs=2))


def reciprocal_table(divisor_zero_point: int) -> tuple[np.ndarray, np.ndarray]:
    """GetReciprocal(|q - zp|, 31) for every int8 divisor q (index q + 128): the kernel's Prepare, so that the
    firmware looks the reciprocal up instead of running the Newton-Raphson per element (0 where q == zp)."""
    v2 = np.abs(np.arange(-128, 128, dtype=np.int64) - int(divisor_zero_point))
    inv, shift = get_reciprocal(np.maximum(v2, 1), 31)
    return np.where(v2 == 0, 0, inv), np.where(v2 == 0, 0, shift)


register("div", ElementwiseAttrs, _reference, kernel_params)
