"""SQUARED_DIFFERENCE: TFLite Micro's `squared_difference.cc` (PrepareQuantized with left_shift 7, and the
int8 SquaredDifference element function): both inputs rescaled to 2 max(s1, s2) after a left shift of 7,
subtracted, squared, requantized by (2 max(s1, s2))^2 / (2^14 s_out); broadcasting. float32 for calibration.
Kernel: runtime/mcu_squared_difference_s8.c, with each input's rescaled values tabulated (256 each) at compile time.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from mcutool.ir import Graph, NoAttrs, Op
from mcutool.ops import register
from mcutool.ops.common import int8_operands, kind_of_all
from mcutool.ops.fixedpoint import (clamp, f32, i64, multiply_by_quantized_multiplier, quantize_multiplier,
                                    quantize_multiplier_smaller_than_one_exp, wrap_int32)
from mcutool.ops.kernel import (CRef, KernelParams, byte_indexed, check_broadcast, const_operands, dims,
                                int8_qparams, quant)

LEFT_SHIFT = 7


@dataclass
class SquaredDifferenceParams:
    input1_multiplier: int
    input1_shift: int
    input2_multiplier: int
    input2_shift: int
    output_multiplier: int
    output_shift: int


def squared_difference_params(scale1, scale2, output_scale) -> SquaredDifferenceParams:
    """PrepareQuantized for int8: the denominator (1 << 14) * s_out is a float32 product, as in the C++."""
    s1, s2, so = f32(scale1), f32(scale2), f32(output_scale)
    twice_max = 2.0 * float(max(s1, s2))
    m1, sh1 = quantize_multiplier_smaller_than_one_exp(float(s1) / twice_max)
    m2, sh2 = quantize_multiplier_smaller_than_one_exp(float(s2) / twice_max)
    mo, sho = quantize_multiplier(twice_max * twice_max / float(np.float32(np.float32(1 << (2 * LEFT_SHIFT)) * so)))
    return SquaredDifferenceParams(m1, sh1, m2, sh2, mo, sho)


def squared_difference_int8(a, b, *, a_zp: int, b_zp: int, out_zp: int, p: SquaredDifferenceParams) -> np.ndarray:
    """The int8 SquaredDifference element function, with numpy broadcasting."""
    scaled1 = multiply_by_quantized_multiplier((i64(a) - a_zp) * (1 << LEFT_SHIFT), p.input1_multiplier,
                                               p.input1_shift)
    scaled2 = multiply_by_quantized_multiplier((i64(b) - b_zp) * (1 << LEFT_SHIFT), p.input2_multiplier,
                                               p.input2_shift)
    diff = scaled1 - scaled2
    out = multiply_by_quantized_multiplier(wrap_int32(diff * diff), p.output_multiplier, p.output_shift) + out_zp
    return clamp(out, -128, 127)


_ROLES = ("first input", "second input", "output")


def _reference(graph, op, args):
    if kind_of_all(graph, op) == "float":
        d = np.asarray(args[0], np.float32) - np.asarray(args[1], np.float32)
        return [(d * d).astype(np.float32)]
    (s1, z1), (s2, z2), (so, zo) = int8_operands(graph, op, _ROLES)
    p = squared_difference_params(s1, s2, so)
    return [squared_difference_int8(args[0], args[1], a_zp=z1, b_zp=z2, out_zp=zo, p=p)]


def kernel_params(graph: Graph, op: Op) -> KernelParams:
    a, b, y = (graph.tensor(n) for n in (op.inputs[0], op.inputs[1], op.outputs[0]))
    (s1, z1), (s2, z2), (so, zo) = int8_operands(graph, op, _ROLES, int8_qparams)
    check_broadcast(op, a, b, y)
    p = squared_difference_params(s1, s2, so)
    q = np.arange(-128, 128, dtype=np.int64)
    scaled1 = multiply_by_quantized_multiplier((q - z1) * (1 << LEFT_SHIFT), p.input1_multiplier, p.input1_shift)
    scaled2 = multiply_by_quantized_multiplier((q - z2) * (1 << LEFT_SHIFT), p.input2_multiplier, p.input2_shift)
    fields = {"input1": dims(a.shape), "input2": dims(b.shape), "output": dims(y.shape), "output_offset": zo,
              "output_quant": quant(p.output_multiplier, p.output_shift),
              "scaled1": CRef("scaled1"), "scaled2": CRef("scaled2")}
    arrays = {"scaled1": ("int32_t", byte_indexed(scaled1)), "scaled2": ("int32_t", byte_indexed(scaled2))}
    return const_operands(graph, op, KernelParams("mcu_squared_difference_s8", "mcu_squared_difference_params",
                                                  fields, arrays, num_inputs=2))


register("squared_difference", NoAttrs, _reference, kernel_params)
