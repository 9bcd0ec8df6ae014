"""SQUARED_DIFFERENCE: TFLite Micro's `squared_difference.cc` (PrepareQuantized, and the quantized
SquaredDifference element function): both inputs rescaled to 2 max(s1, s2) after a left shift (7 for int8, 0 for
int16), subtracted, squared, requantized by (2 max(s1, s2))^2 / (2^(2 left_shift) s_out); broadcasting. int8 and
int16 (16x8, zero points 0); float32 for calibration. Kernels: runtime/mcu_squared_difference_s8.c (int8, each
input's rescaled values tabulated -- 256 each -- at compile time; int16, rescaled per element).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from mcutool.ir import Graph, NoAttrs, Op
from mcutool.ops import register
from mcutool.ops.common import int8_operands, kind_of_all, qparams, unsupported
from mcutool.ops.fixedpoint import (clamp, dtype_range, f32, i64, multiply_by_quantized_multiplier, quantize_multiplier,
                                    quantize_multiplier_smaller_than_one_exp, wrap_int32)
from mcutool.ops.kernel import (CRef, KernelParams, byte_indexed, check_broadcast, const_operands, dims,
                                int8_or_int16_qparams, kernel_error, quant)

LEFT_SHIFT = {"int8": 7, "int16": 0}  # PrepareQuantized's left_shift: 255^2 2^14, or 32767^2, fits int32


@dataclass
class SquaredDifferenceParams:
    input1_multiplier: int
    input1_shift: int
    input2_multiplier: int
    input2_shift: int
    output_multiplier: int
    output_shift: int
    left_shift: int


def squared_difference_params(scale1, scale2, output_scale, dtype: str = "int8") -> SquaredDifferenceParams:
    """PrepareQuantized: the denominator (1 << 2 left_shift) * s_out is a float32 product, as in the C++."""
    s1, s2, so = f32(scale1), f32(scale2), f32(output_scale)
    ls = LEFT_SHIFT[dtype]
    twice_max = 2.0 * float(max(s1, s2))
    m1, sh1 = quantize_multiplier_smaller_than_one_exp(float(s1) / twice_max)
    m2, sh2 = quantize_multiplier_smaller_than_one_exp(float(s2) / twice_max)
    mo, sho = quantize_multiplier(twice_max * twice_max / float(np.float32(np.float32(1 << (2 * ls)) * so)))
    return SquaredDifferenceParams(m1, sh1, m2, sh2, mo, sho, ls)


def scaled_input(x, zero_point: int, multiplier: int, shift: int, left_shift: int) -> np.ndarray:
    """One input of the SquaredDifference element function: (x - zp) << left_shift, rescaled."""
    return multiply_by_quantized_multiplier((i64(x) - zero_point) * (1 << left_shift), multiplier, shift)


def squared_difference_quantized(a, b, *, a_zp: int, b_zp: int, out_zp: int, p: SquaredDifferenceParams,
                                 dtype: str = "int8") -> np.ndarray:
    """The quantized SquaredDifference element function (int8 or int16), with numpy broadcasting."""
    diff = (scaled_input(a, a_zp, p.input1_multiplier, p.input1_shift, p.left_shift)
            - scaled_input(b, b_zp, p.input2_multiplier, p.input2_shift, p.left_shift))
    out = multiply_by_quantized_multiplier(wrap_int32(diff * diff), p.output_multiplier, p.output_shift) + out_zp
    return clamp(out, *dtype_range(dtype))


_ROLES = ("first input", "second input", "output")


def _operands(graph: Graph, op: Op, qp, error) -> tuple[str, list]:
    """(dtype, quantizations): int8, or int16 throughout with zero points 0 (TFLite Micro's 16x8 kernel)."""
    dtypes = {graph.tensor(n).dtype for n in (op.inputs[0], op.inputs[1], op.outputs[0])}
    if dtypes != {"int16"}:
        return "int8", int8_operands(graph, op, _ROLES, qp)
    q = [qp(op, graph.tensor(n), r) for n, r in zip((op.inputs[0], op.inputs[1], op.outputs[0]), _ROLES)]
    if any(z != 0 for _, z in q):
        raise error(op, "int16 tensors take zero point 0 (TFLite's 16x8 scheme)")
    return "int16", q


def _reference(graph, op, args):
    if graph.tensor(op.outputs[0]).dtype == "float32" and kind_of_all(graph, op) == "float":
        d = np.asarray(args[0], np.float32) - np.asarray(args[1], np.float32)
        return [(d * d).astype(np.float32)]
    dtype, ((s1, z1), (s2, z2), (so, zo)) = _operands(graph, op, qparams, unsupported)
    p = squared_difference_params(s1, s2, so, dtype)
    return [squared_difference_quantized(args[0], args[1], a_zp=z1, b_zp=z2, out_zp=zo, p=p, dtype=dtype)]


def kernel_params(graph: Graph, op: Op) -> KernelParams:
    a, b, y = (graph.tensor(n) for n in (op.inputs[0], op.inputs[1], op.outputs[0]))
    dtype, ((s1, z1), (s2, z2), (so, zo)) = _operands(graph, op, int8_or_int16_qparams, kernel_error)
    check_broadcast(op, a, b, y)
    p = squared_difference_params(s1, s2, so, dtype)
    common = {"input1": dims(a.shape), "input2": dims(b.shape), "output": dims(y.shape)}
    if dtype == "int16":  # 65,536 values an input: rescaled per element
        fields = {**common, "input1_quant": quant(p.input1_multiplier, p.input1_shift),
                  "input2_quant": quant(p.input2_multiplier, p.input2_shift),
                  "output_quant": quant(p.output_multiplier, p.output_shift)}
        return const_operands(graph, op, KernelParams("mcu_squared_difference_s16",
                                                      "mcu_squared_difference_s16_params", fields, num_inputs=2))
    q = np.arange(-128, 128, dtype=np.int64)
    scaled1 = scaled_input(q, z1, p.input1_multiplier, p.input1_shift, p.left_shift)
    scaled2 = scaled_input(q, z2, p.input2_multiplier, p.input2_shift, p.left_shift)
    fields = {**common, "output_offset": zo, "output_quant": quant(p.output_multiplier, p.output_shift),
              "scaled1": CRef("scaled1"), "scaled2": CRef("scaled2")}
    arrays = {"scaled1": ("int32_t", byte_indexed(scaled1)), "scaled2": ("int32_t", byte_indexed(scaled2))}
    return const_operands(graph, op, KernelParams("mcu_squared_difference_s8", "mcu_squared_difference_params",
                                                  fields, arrays, num_inputs=2))


register("squared_difference", NoAttrs, _reference, kernel_params, dtypes=("int8", "int16"))
