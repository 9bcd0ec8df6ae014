"""HARD_SWISH: TFLite Micro's `hard_swish_common.cc` (HardSwishPrepare) and reference_ops::HardSwish
(`reference/hard_swish.h`), int8 through 16-bit fixed point; float32 for calibration. Kernel: the int8 table
of runtime/mcu_lut_s8.c.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from mcutool.ir import Graph, NoAttrs, Op
from mcutool.ops import register
from mcutool.ops.common import int8_operands, kind_of, unsupported
from mcutool.ops.fixedpoint import (clamp, down_scale_int32_to_int16_multiplier, i64, quantize_multiplier,
                                    rounding_divide_by_pot, saturating_doubling_high_mul_int16,
                                    saturating_left_shift_int16, saturating_rounding_doubling_high_mul_int16)
from mcutool.ops.kernel import KernelParams, lut_kernel


@dataclass
class HardSwishParams:
    input_zero_point: int
    output_zero_point: int
    reluish_multiplier_fixedpoint_int16: int
    reluish_multiplier_exponent: int
    output_multiplier_fixedpoint_int16: int
    output_multiplier_exponent: int


def hard_swish_params(op: Op, in_scale, in_zp: int, out_scale, out_zp: int) -> HardSwishParams:
    """HardSwishPrepare: the scales combined in float32, then QuantizeMultiplier and the int16 down-scaling."""
    hires_input_scale = np.float32(np.float32(1.0 / 128.0) * np.float32(in_scale))
    reluish_scale = np.float32(3.0 / 32768.0)
    out_m, out_e = quantize_multiplier(float(np.float32(hires_input_scale / np.float32(out_scale))))
    if out_e > 0:
        raise unsupported(op, f"the output scale {float(out_scale)} is too small for the input scale "
                          f"{float(in_scale)} (TFLite requires s_in / (128 s_out) < 1)")
    rel_m, rel_e = quantize_multiplier(float(np.float32(hires_input_scale / reluish_scale)))
    return HardSwishParams(int(in_zp), int(out_zp), down_scale_int32_to_int16_multiplier(rel_m), rel_e,
                           down_scale_int32_to_int16_multiplier(out_m), out_e)


def hard_swish_int8(x, p: HardSwishParams) -> np.ndarray:
    """reference_ops::HardSwish<int8_t>, in int16 fixed point."""
    input_value = i64(x) - p.input_zero_point
    hires = input_value * (1 << 7)
    preshift_output_scale = saturating_rounding_doubling_high_mul_int16(hires, p.output_multiplier_fixedpoint_int16)
    reluish = hires
    if p.reluish_multiplier_exponent > 0:
        reluish = saturating_left_shift_int16(reluish, p.reluish_multiplier_exponent - 1)
    reluish = saturating_rounding_doubling_high_mul_int16(reluish, p.reluish_multiplier_fixedpoint_int16)
    if p.reluish_multiplier_exponent > 0:
        reluish = saturating_left_shift_int16(reluish, 1)
    if p.reluish_multiplier_exponent < 0:
        reluish = rounding_divide_by_pot(reluish, -p.reluish_multiplier_exponent)
    reluish = (reluish + (1 << 15)) >> 1
    preshift_output = saturating_doubling_high_mul_int16(reluish, preshift_output_scale)
    out = rounding_divide_by_pot(preshift_output, -p.output_multiplier_exponent)
    out = ((out + p.output_zero_point + (1 << 15)) & 0xFFFF) - (1 << 15)  # int16_t arithmetic
    return clamp(out, -128, 127)


def hard_swish_float(x) -> np.ndarray:
    x = np.asarray(x, np.float32)
    return (x * np.minimum(np.float32(6), np.maximum(np.float32(0), x + np.float32(3))) / np.float32(6)).astype(
        np.float32)


def _int8_function(graph: Graph, op: Op):
    (s, z), (so, zo) = int8_operands(graph, op, ("input", "output"))
    p = hard_swish_params(op, s, z, so, zo)
    return lambda q: hard_swish_int8(q, p)


def _reference(graph, op, args):
    if kind_of(graph, op) == "float":
        return [hard_swish_float(args[0])]
    return [_int8_function(graph, op)(args[0])]


def kernel_params(graph: Graph, op: Op) -> KernelParams:
    return lut_kernel(graph, op, _int8_function(graph, op))


register("hard_swish", NoAttrs, _reference, kernel_params)
