"""L2_NORMALIZATION: TFLite Micro's `l2norm.cc` and reference_integer_ops::L2Normalization
(`reference/integer_ops/l2normalization.h`): over the last axis, the sum of (q - zp)^2, its inverse square root
(GetInvSqrtQuantizedMultiplierExp) applied to each q - zp, output in Q0.7 (scale 1/128, zero point 0); no fused
activation. float32 for calibration. Kernel: runtime/mcu_l2_normalization_s8.c.
"""
from __future__ import annotations

import numpy as np

from mcutool.ir import Graph, NoAttrs, Op
from mcutool.ops import register
from mcutool.ops.common import kind_of, qparams, require_int8, unsupported
from mcutool.ops.fixedpoint import clamp, get_inv_sqrt_quantized_multiplier_exp, i64, multiply_by_quantized_multiplier
from mcutool.ops.kernel import KernelParams, int8_qparams, kernel_error

OUTPUT_SCALE_BITS = 7


def l2_normalization_int8(x, input_zero_point: int) -> np.ndarray:
    """reference_integer_ops::L2Normalization over the last axis."""
    v = i64(x) - int(input_zero_point)
    acc = np.sum(v * v, axis=-1, keepdims=True)
    inv, shift = get_inv_sqrt_quantized_multiplier_exp(acc, -1)
    return clamp(multiply_by_quantized_multiplier(v, inv, shift + OUTPUT_SCALE_BITS), -128, 127)


def _check(op: Op, x_t, y_t, qp, error) -> int:
    (_, z), (so, zo) = qp(op, x_t, "input"), qp(op, y_t, "output")
    if zo != 0 or float(so) != 1.0 / 128:
        raise error(op, f"an int8 L2 normalization output must have scale 1/128 and zero point 0 (TFLite's "
                    f"requirement); it has scale {float(so)} and zero point {zo}")
    if x_t.shape != y_t.shape or not x_t.shape:
        raise error(op, f"input {x_t.shape} and output {y_t.shape} must have one shape of rank >= 1")
    if x_t.shape[-1] > 1 << 15:
        raise error(op, f"the normalized axis has {x_t.shape[-1]} elements; the int32 sum of squares holds 2^15")
    return z


def _reference(graph, op, args):
    x_t, y_t = graph.tensor(op.inputs[0]), graph.tensor(op.outputs[0])
    if kind_of(graph, op) == "float":
        x = np.asarray(args[0], np.float32)
        return [(x / np.sqrt(np.sum(x * x, axis=-1, keepdims=True, dtype=np.float32))).astype(np.float32)]
    require_int8(op, x_t, "input")
    require_int8(op, y_t, "output")
    return [l2_normalization_int8(args[0], _check(op, x_t, y_t, qparams, unsupported))]


def kernel_params(graph: Graph, op: Op) -> KernelParams:
    x_t, y_t = graph.tensor(op.inputs[0]), graph.tensor(op.outputs[0])
    z = _check(op, x_t, y_t, int8_qparams, kernel_error)
    depth = x_t.shape[-1]
    fields = {"outer": x_t.size // depth, "depth": depth, "input_offset": -z}
    return KernelParams("mcu_l2_normalization_s8", "mcu_l2_normalization_params", fields)


register("l2_normalization", NoAttrs, _reference, kernel_params)
