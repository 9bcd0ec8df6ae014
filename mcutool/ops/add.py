"""ADD: `reference/integer_ops/add.h` (int8) and `reference/add.h` AddGeneralParamScale (int16, as TFLite Micro's
add.cc calls it: pot_scale false) with add_common.cc's Prepare (left shift 20 for int8, 15 for int16); float32
for calibration. Kernels: runtime/mcu_add_s8.c, runtime/mcu_add_s16.c (SUB shares them: mcutool/ops/sub.py).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from mcutool.ir import ElementwiseAttrs, Graph, Op
from mcutool.ops import register
from mcutool.ops.common import activation_grad, float_activation, kind_of, qparams, unbroadcast
from mcutool.ops.fixedpoint import (activation_range, clamp, f32, i64, multiply_by_quantized_multiplier,
                                    quantize_multiplier_smaller_than_one_exp, wrap_int32)
from mcutool.ops.kernel import (KernelParams, act, check_broadcast, const_operands, dims, int_qparams, kernel_for,
                                quant)

KERNELS = {("int8", "int8"): "mcu_add_s8", ("int16", "int16"): "mcu_add_s16"}


@dataclass
class AddParams:
    """Integer parameters of a quantized ADD or SUB (add_common.cc / sub_common.cc Prepare)."""
    left_shift: int
    input1_multiplier: int
    input1_shift: int
    input2_multiplier: int
    input2_shift: int
    output_multiplier: int
    output_shift: int


def left_shift_for(dtype: str) -> int:
    """add_common.cc / sub_common.cc: 20 for 8-bit, 15 for int16 (65535 << 15 still fits an int32 sum)."""
    return 15 if dtype == "int16" else 20


def add_params(scale1, scale2, output_scale, left_shift: int = 20) -> AddParams:
    """TFLite's ADD (and SUB) Prepare: inputs rescaled to 2*max(s1, s2) after a left shift (20 for int8, 15 for
    int16), the real multipliers in double."""
    s1, s2, so = f32(scale1), f32(scale2), f32(output_scale)
    twice_max_input_scale = 2.0 * float(max(s1, s2))
    m1, sh1 = quantize_multiplier_smaller_than_one_exp(float(s1) / twice_max_input_scale)
    m2, sh2 = quantize_multiplier_smaller_than_one_exp(float(s2) / twice_max_input_scale)
    mo, sho = quantize_multiplier_smaller_than_one_exp(twice_max_input_scale / ((1 << left_shift) * float(so)))
    return AddParams(left_shift, m1, sh1, m2, sh2, mo, sho)


def add_int8(a, b, *, a_zp, b_zp, out_zp, params: AddParams, act_min, act_max, subtract: bool = False) -> np.ndarray:
    """ADD (SUB with `subtract`), quantized, with numpy broadcasting: AddElementwise / SubElementwise of
    `reference/add.h`, `reference/sub.h` (int8, int16 alike; only the Prepare's left shift differs)."""
    shifted1 = (i64(a) - int(a_zp)) * (1 << params.left_shift)
    shifted2 = (i64(b) - int(b_zp)) * (1 << params.left_shift)
    scaled1 = multiply_by_quantized_multiplier(shifted1, params.input1_multiplier, params.input1_shift)
    scaled2 = multiply_by_quantized_multiplier(shifted2, params.input2_multiplier, params.input2_shift)
    raw = wrap_int32(scaled1 - scaled2 if subtract else scaled1 + scaled2)
    raw_out = multiply_by_quantized_multiplier(raw, params.output_multiplier, params.output_shift) + int(out_zp)
    return clamp(raw_out, act_min, act_max)


def elementwise_reference(graph, op, args, params_fn, subtract: bool):
    """The reference of ADD or SUB: float32, or quantized with the parameters `params_fn(s1, s2, s_out,
    left_shift)` gives."""
    a_t, b_t = graph.tensor(op.inputs[0]), graph.tensor(op.inputs[1])
    out_t = graph.tensor(op.outputs[0])
    if kind_of(graph, op, int16=True) == "float":
        a, b = np.asarray(args[0], np.float32), np.asarray(args[1], np.float32)
        return [float_activation(a - b if subtract else a + b, op.attrs.activation)]
    s1, z1 = qparams(op, a_t, "first input")
    s2, z2 = qparams(op, b_t, "second input")
    so, zo = qparams(op, out_t, "output")
    lo, hi = activation_range(op.attrs.activation, so, zo, out_t.dtype)
    p = params_fn(s1, s2, so, left_shift_for(out_t.dtype))
    return [add_int8(args[0], args[1], a_zp=z1, b_zp=z2, out_zp=zo, params=p, act_min=lo, act_max=hi,
                     subtract=subtract)]


def _reference(graph, op, args):
    return elementwise_reference(graph, op, args, add_params, subtract=False)


# ---- the runtime/ kernel's parameters (TFLite's Prepare, at compile time)

def elementwise_kernel(graph: Graph, op: Op, params_fn, subtract: bool) -> KernelParams:
    """ADD / SUB: one kernel family (mcu_add_s8 / mcu_add_s16; `subtract` selects s1 - s2)."""
    a, b, y = (graph.tensor(n) for n in (op.inputs[0], op.inputs[1], op.outputs[0]))
    function, cin, cout = kernel_for(op, a, y, KERNELS)
    dt = (y.dtype,)
    aq, bq = int_qparams(op, a, "first input", dt), int_qparams(op, b, "second input", dt)
    yq = int_qparams(op, y, "output", dt)
    check_broadcast(op, a, b, y)
    p = params_fn(aq[0], bq[0], yq[0], left_shift_for(y.dtype))
    lo, hi = activation_range(op.attrs.activation, yq[0], yq[1], y.dtype)
    fields = {
        "input1": dims(a.shape), "input2": dims(b.shape), "output": dims(y.shape),
        "input1_offset": -aq[1], "input2_offset": -bq[1], "output_offset": yq[1],
        "left_shift": p.left_shift,
        "input1_quant": quant(p.input1_multiplier, p.input1_shift),
        "input2_quant": quant(p.input2_multiplier, p.input2_shift),
        "output_quant": quant(p.output_multiplier, p.output_shift),
        "act": act(lo, hi),
        "subtract": int(subtract),
    }
    kp = KernelParams(function, "mcu_add_params", fields, num_inputs=2, in_ctype=cin, out_ctype=cout)
    return const_operands(graph, op, kp)  # a constant operand (a layer norm's epsilon) as a companion array


def kernel_params(graph: Graph, op: Op) -> KernelParams:
    """ADD: reference_integer_ops::Add / BroadcastAdd (int8), AddGeneralParamScale (int16)."""
    return elementwise_kernel(graph, op, add_params, subtract=False)


def _vjp(graph, op, args, outs, grads):
    """Float ADD: the output gradient through the fused activation, to each (broadcast) input."""
    g = grads[0] * activation_grad(outs[0], op.attrs.activation)
    return [unbroadcast(g, np.shape(args[0])), unbroadcast(g, np.shape(args[1]))]


register("add", ElementwiseAttrs, _reference, kernel_params, dtypes=("int8", "int16"), vjp=_vjp)
