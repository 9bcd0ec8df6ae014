"""MUL: `reference/integer_ops/mul.h` (MulElementwise, BroadcastMul6DSlow) with TFLite Micro's Prepare
(`mul_common.cc`: the multiplier in double for int8 and int16; int16 zero points 0; uint8, which TFLite Micro
lacks, with TFLite's `mul.cc`); float32 for calibration.
Kernels: runtime/mcu_mul_s8.c, mcu_mul_s16.c.
"""
from __future__ import annotations

import numpy as np

from mcutool.ir import ElementwiseAttrs, Graph, Op
from mcutool.ops import register
from mcutool.ops.common import float_activation, kind_of, qparams, unsupported
from mcutool.ops.fixedpoint import (activation_range, clamp, f32, i64, multiply_by_quantized_multiplier,
                                    quantize_multiplier, single_rounding_multipliers)
from mcutool.ops.kernel import (CTYPES, KernelParams, act, check_broadcast, const_operands, dims, int8_qparams,
                                int_qparams, kernel_error, quant)


def mul_output_multiplier(scale1, scale2, output_scale, dtype: str = "int8") -> tuple[int, int]:
    """MUL's Prepare: int8 and int16 as TFLite Micro's `mul_common.cc` CalculateOpDataMul computes it,
    (double)s1 * (double)s2 / (double)s_out of the float32 scales. TFLite's `mul.cc` (tflite-runtime 2.14)
    evaluates it in float32, which can change the multiplier's low bits and, on ties, outputs by 1 LSB
    (tests/test_ops_elementwise.py test_mul_multiplier_is_tflite_micros_double). uint8, which TFLite Micro's MUL
    does not run, keeps `mul.cc`'s float32 (its only oracle, tflite-runtime)."""
    if dtype == "uint8":
        return quantize_multiplier(float(np.float32(np.float32(f32(scale1) * f32(scale2)) / f32(output_scale))))
    return quantize_multiplier(float(f32(scale1)) * float(f32(scale2)) / float(f32(output_scale)))


def _rounded(op: Op, multiplier: int, shift: int) -> tuple[int, int]:
    """The int8 multiplier as the op's attrs.rounding asks (ir.ROUNDINGS; "single": ONNX QDQ models)."""
    return single_rounding_multipliers(multiplier, shift) if op.attrs.rounding == "single" else (multiplier, shift)


def _int16_prepare(op: Op, a_t, b_t, out_t, error):
    """(multiplier, shift, act_min, act_max) of an int16 MUL: all three tensors int16 with zero point 0."""
    if not (a_t.dtype == b_t.dtype == out_t.dtype == "int16"):
        raise error(op, f"inputs {a_t.dtype} and {b_t.dtype} with output {out_t.dtype} (an int16 MUL is all int16)")
    (s1, _), (s2, _), (so, _) = (int_qparams(op, t, role, ("int16",))
                                 for t, role in ((a_t, "first input"), (b_t, "second input"), (out_t, "output")))
    lo, hi = activation_range(op.attrs.activation, so, 0, "int16")
    return (*mul_output_multiplier(s1, s2, so), lo, hi)


def mul_int8(a, b, *, a_zp, b_zp, out_zp, multiplier, shift, act_min, act_max) -> np.ndarray:
    """MUL, quantized, with numpy broadcasting (`reference/integer_ops/mul.h` MulElementwise /
    BroadcastMul6DSlow)."""
    prod = (i64(a) - int(a_zp)) * (i64(b) - int(b_zp))
    out = multiply_by_quantized_multiplier(prod, multiplier, shift) + int(out_zp)
    return clamp(out, act_min, act_max)


def _reference(graph, op, args):
    a_t, b_t = graph.tensor(op.inputs[0]), graph.tensor(op.inputs[1])
    out_t = graph.tensor(op.outputs[0])
    if a_t.dtype == "int16":
        m, sh, lo, hi = _int16_prepare(op, a_t, b_t, out_t, unsupported)
        return [mul_int8(args[0], args[1], a_zp=0, b_zp=0, out_zp=0, multiplier=m, shift=sh, act_min=lo, act_max=hi)]
    if kind_of(graph, op) == "float":
        a, b = np.asarray(args[0], np.float32), np.asarray(args[1], np.float32)
        return [float_activation(a * b, op.attrs.activation)]
    s1, z1 = qparams(op, a_t, "first input")
    s2, z2 = qparams(op, b_t, "second input")
    so, zo = qparams(op, out_t, "output")
    lo, hi = activation_range(op.attrs.activation, so, zo, out_t.dtype)
    m, sh = _rounded(op, *mul_output_multiplier(s1, s2, so, out_t.dtype))
    return [mul_int8(args[0], args[1], a_zp=z1, b_zp=z2, out_zp=zo, multiplier=m, shift=sh, act_min=lo, act_max=hi)]


# ---- the runtime/ kernel's parameters (TFLite's Prepare, at compile time)

def kernel_params(graph: Graph, op: Op) -> KernelParams:
    """MUL: reference_integer_ops::Mul / BroadcastMul with TFLite Micro's Prepare (mul_common.cc)."""
    a, b, y = (graph.tensor(n) for n in (op.inputs[0], op.inputs[1], op.outputs[0]))
    if a.dtype == "int16":
        check_broadcast(op, a, b, y)
        m, sh, lo, hi = _int16_prepare(op, a, b, y, kernel_error)
        fields = {"input1": dims(a.shape), "input2": dims(b.shape), "output": dims(y.shape), "input1_offset": 0,
                  "input2_offset": 0, "output_offset": 0, "output_quant": quant(m, sh), "act": act(lo, hi)}
        return const_operands(graph, op, KernelParams("mcu_mul_s16", "mcu_mul_params", fields, num_inputs=2,
                                                      in_ctype=CTYPES["int16"], out_ctype=CTYPES["int16"]))
    aq, bq, yq = int8_qparams(op, a, "first input"), int8_qparams(op, b, "second input"), int8_qparams(op, y, "output")
    check_broadcast(op, a, b, y)
    m, sh = _rounded(op, *mul_output_multiplier(aq[0], bq[0], yq[0]))
    lo, hi = activation_range(op.attrs.activation, yq[0], yq[1], "int8")
    fields = {
        "input1": dims(a.shape), "input2": dims(b.shape), "output": dims(y.shape),
        "input1_offset": -aq[1], "input2_offset": -bq[1], "output_offset": yq[1],
        "output_quant": quant(m, sh),
        "act": act(lo, hi),
    }
    return const_operands(graph, op, KernelParams("mcu_mul_s8", "mcu_mul_params", fields, num_inputs=2))


register("mul", ElementwiseAttrs, _reference, kernel_params, dtypes=("int8", "int16"))
