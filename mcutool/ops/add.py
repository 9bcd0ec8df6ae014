"""ADD: `reference/integer_ops/add.h` (Add, BroadcastAdd6DSlow) with add.cc's int8 Prepare; float32 for
calibration. Kernel: runtime/mcu_add_s8.c.
"""
from __future__ import annotations

import numpy as np

from mcutool.ir import ElementwiseAttrs, Graph, Op
from mcutool.ops import register
from mcutool.ops.common import float_activation, kind_of, qparams
from mcutool.ops.fixedpoint import (activation_range, clamp, f32, i64, multiply_by_quantized_multiplier,
                                    quantize_multiplier_smaller_than_one_exp, wrap_int32)
from mcutool.ops.kernel import KernelParams, act, check_broadcast, dims, int8_qparams, quant
from dataclasses import dataclass


@dataclass
class AddParams:
    """Integer parameters of a quantized ADD (`add.cc` Prepare, 8-bit path)."""
    left_shift: int
    input1_multiplier: int
    input1_shift: int
    input2_multiplier: int
    input2_shift: int
    output_multiplier: int
    output_shift: int


def add_params(scale1, scale2, output_scale, left_shift: int = 20) -> AddParams:
    """TFLite's ADD Prepare for int8/uint8: inputs rescaled to 2*max(s1, s2) after a left shift of 20."""
    s1, s2, so = f32(scale1), f32(scale2), f32(output_scale)
    twice_max_input_scale = 2.0 * float(max(s1, s2))
    real_input1_multiplier = float(s1) / twice_max_input_scale
    real_input2_multiplier = float(s2) / twice_max_input_scale
    real_output_multiplier = twice_max_input_scale / ((1 << left_shift) * float(so))
    m1, sh1 = quantize_multiplier_smaller_than_one_exp(real_input1_multiplier)
    m2, sh2 = quantize_multiplier_smaller_than_one_exp(real_input2_multiplier)
    mo, sho = quantize_multiplier_smaller_than_one_exp(real_output_multiplier)
    return AddParams(left_shift, m1, sh1, m2, sh2, mo, sho)


def add_int8(a, b, *, a_zp, b_zp, out_zp, params: AddParams, act_min, act_max) -> np.ndarray:
    """ADD, quantized, with numpy broadcasting (`reference/integer_ops/add.h` AddFunc, as used by Add and
    BroadcastAdd6DSlow; uint8: `reference/add.h`)."""
    shifted1 = (i64(a) - int(a_zp)) * (1 << params.left_shift)
    shifted2 = (i64(b) - int(b_zp)) * (1 << params.left_shift)
    scaled1 = multiply_by_quantized_multiplier(shifted1, params.input1_multiplier, params.input1_shift)
    scaled2 = multiply_by_quantized_multiplier(shifted2, params.input2_multiplier, params.input2_shift)
    raw_sum = wrap_int32(scaled1 + scaled2)
    raw_out = multiply_by_quantized_multiplier(raw_sum, params.output_multiplier, params.output_shift) + int(out_zp)
    return clamp(raw_out, act_min, act_max)


def _reference(graph, op, args):
    a_t, b_t = graph.tensor(op.inputs[0]), graph.tensor(op.inputs[1])
    out_t = graph.tensor(op.outputs[0])
    if kind_of(graph, op) == "float":
        a, b = np.asarray(args[0], np.float32), np.asarray(args[1], np.float32)
        return [float_activation(a + b, op.attrs.activation)]
    s1, z1 = qparams(op, a_t, "first input")
    s2, z2 = qparams(op, b_t, "second input")
    so, zo = qparams(op, out_t, "output")
    lo, hi = activation_range(op.attrs.activation, so, zo, out_t.dtype)
    return [add_int8(args[0], args[1], a_zp=z1, b_zp=z2, out_zp=zo, params=add_params(s1, s2, so),
                     act_min=lo, act_max=hi)]


# ---- the runtime/ kernel's parameters (TFLite's Prepare, at compile time)

def kernel_params(graph: Graph, op: Op) -> KernelParams:
    """ADD: reference_integer_ops::Add / BroadcastAdd with add.cc's int8 Prepare (left shift 20)."""
    a, b, y = (graph.tensor(n) for n in (op.inputs[0], op.inputs[1], op.outputs[0]))
    aq, bq, yq = int8_qparams(op, a, "first input"), int8_qparams(op, b, "second input"), int8_qparams(op, y, "output")
    check_broadcast(op, a, b, y)
    p = add_params(aq[0], bq[0], yq[0])
    lo, hi = activation_range(op.attrs.activation, yq[0], yq[1], "int8")
    fields = {
        "input1": dims(a.shape), "input2": dims(b.shape), "output": dims(y.shape),
        "input1_offset": -aq[1], "input2_offset": -bq[1], "output_offset": yq[1],
        "left_shift": p.left_shift,
        "input1_quant": quant(p.input1_multiplier, p.input1_shift),
        "input2_quant": quant(p.input2_multiplier, p.input2_shift),
        "output_quant": quant(p.output_multiplier, p.output_shift),
        "act": act(lo, hi),
    }
    return KernelParams("mcu_add_s8", "mcu_add_params", fields, num_inputs=2)


register("add", ElementwiseAttrs, _reference, kernel_params)
