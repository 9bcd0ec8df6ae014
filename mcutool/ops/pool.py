"""AVERAGE_POOL_2D and MAX_POOL_2D: `reference/integer_ops/pooling.h` AveragePool / MaxPool, int8 and int16 (the
same arithmetic; TFLite Micro's pooling.cc runs both); float32 for calibration. Kernels: runtime/mcu_avg_pool2d_s8.c,
runtime/mcu_max_pool2d_s8.c (each with its _s16 entry point).
"""
from __future__ import annotations

import numpy as np

from mcutool.errors import UserError
from mcutool.ir import Graph, Op, Pool2DAttrs
from mcutool.ops import register
from mcutool.ops.common import (activation_grad, check_window, float_activation, kind_of, out_hw_of, padded, qparams,
                                same_quant, taps, unpadded, unsupported)
from mcutool.ops.fixedpoint import activation_range, c_div, clamp, i64
from mcutool.ops.kernel import CTYPES, KernelParams, act, dims, int_qparams, kernel_error, same_qparams


def avg_pool2d_int8(x, *, filter, stride, pads, out_hw, act_min, act_max, count_include_pad=False,
                    zero_point=0) -> np.ndarray:
    """AVERAGE_POOL_2D, quantized (`reference/integer_ops/pooling.h` AveragePool): the sum of the raw values
    over the valid part of the window, divided by the count with rounding half away from zero
    ((acc +- count/2) / count in C). With count_include_pad, padded positions count and hold the zero point."""
    x64 = i64(x)
    one = (1, 1)
    if count_include_pad:
        # positions within the explicitly padded input count and hold the zero point; positions beyond it
        # (a window running past the bottom/right pads) do not count
        counted = padded_area_mask(x64.shape, out_hw, stride, filter, pads)
        canvas = padded(x64, out_hw, stride, one, filter, pads, int(zero_point)) * counted
    else:
        canvas = padded(x64, out_hw, stride, one, filter, pads, 0)
        counted = padded(np.ones_like(x64[..., :1]), out_hw, stride, one, filter, pads, 0)
    acc = 0
    count = 0
    for _, _, view in taps(canvas, out_hw, stride, one, filter):
        acc = acc + view
    for _, _, view in taps(counted, out_hw, stride, one, filter):
        count = count + view
    count = np.broadcast_to(count, acc.shape)
    if np.any(count == 0):
        raise UserError("average pool: a window lies entirely in the padding (TFLite refuses this); check pads")
    half = count // 2
    avg = np.where(acc > 0, c_div(acc + half, count), c_div(acc - half, count))
    return clamp(avg, act_min, act_max)


def padded_area_mask(x_shape, out_hw, stride, filter, pads) -> np.ndarray:
    """Canvas mask of the positions inside input + explicit pads (count_include_pad counts exactly these)."""
    _, h, w, _ = x_shape
    area = np.ones((1, h + pads[0] + pads[2], w + pads[1] + pads[3], 1), dtype=np.int64)
    # the area's origin is the top-left pad, so it sits at canvas (0, 0): embed it with no further padding
    return padded(area, out_hw, stride, (1, 1), filter, (0, 0, 0, 0), 0)


def max_pool2d_int8(x, *, filter, stride, pads, out_hw, act_min, act_max) -> np.ndarray:
    """MAX_POOL_2D, quantized (`reference/integer_ops/pooling.h` MaxPool): max over the valid window,
    clamped to the activation range."""
    x64 = i64(x)
    lowest = np.iinfo(np.int64).min
    canvas = padded(x64, out_hw, stride, (1, 1), filter, pads, lowest)
    out = None
    for _, _, view in taps(canvas, out_hw, stride, (1, 1), filter):
        out = view.copy() if out is None else np.maximum(out, view)
    return clamp(out, act_min, act_max)


def avg_pool2d_float(x, *, filter, stride, pads, out_hw, activation="none", count_include_pad=False):
    x = np.asarray(x, dtype=np.float32)
    canvas = padded(x, out_hw, stride, (1, 1), filter, pads, 0.0)
    acc = sum(v for _, _, v in taps(canvas, out_hw, stride, (1, 1), filter))
    count = _float_counts(x.shape, filter, stride, pads, out_hw, count_include_pad)
    return float_activation((acc / count).astype(np.float32), activation)


def _float_counts(x_shape, filter, stride, pads, out_hw, count_include_pad) -> np.ndarray:
    """The number of input positions each float average pool window averages (N, OH, OW, 1)."""
    if count_include_pad:
        counted = padded_area_mask(x_shape, out_hw, stride, filter, pads)
    else:
        counted = padded(np.ones(tuple(x_shape[:3]) + (1,), dtype=np.int64), out_hw, stride, (1, 1), filter, pads, 0)
    return sum(v for _, _, v in taps(counted, out_hw, stride, (1, 1), filter))


def _vjp_avg_pool2d(graph, op, args, outs, grads):
    """The float average pool's input gradient: each window's output gradient (through the fused activation)
    over its count, spread back over the window's taps (the adjoint of avg_pool2d_float)."""
    a, x = op.attrs, np.asarray(args[0], np.float32)
    out_hw = out_hw_of(graph.tensor(op.outputs[0]))
    g = grads[0] * activation_grad(outs[0], a.activation)
    g = g / _float_counts(x.shape, a.filter, a.stride, a.pads, out_hw, a.count_include_pad)
    canvas = np.zeros_like(padded(x, out_hw, a.stride, (1, 1), a.filter, a.pads, 0.0))
    for _, _, view in taps(canvas, out_hw, a.stride, (1, 1), a.filter):
        view += g
    return [unpadded(canvas, x.shape, a.pads)]


def max_pool2d_float(x, *, filter, stride, pads, out_hw, activation="none"):
    x = np.asarray(x, dtype=np.float32)
    canvas = padded(x, out_hw, stride, (1, 1), filter, pads, -np.inf)
    out = None
    for _, _, view in taps(canvas, out_hw, stride, (1, 1), filter):
        out = view.copy() if out is None else np.maximum(out, view)
    return float_activation(out, activation)


def _pool(graph, op, args, is_max: bool):
    x_t, out_t = graph.tensor(op.inputs[0]), graph.tensor(op.outputs[0])
    a = op.attrs
    check_window(op, x_t, out_t, a.filter, a.stride, (1, 1), a.pads)
    geometry = dict(filter=tuple(a.filter), stride=tuple(a.stride), pads=tuple(a.pads), out_hw=out_hw_of(out_t))
    if kind_of(graph, op, int16=True) == "float":
        if is_max:
            return [max_pool2d_float(args[0], activation=a.activation, **geometry)]
        return [avg_pool2d_float(args[0], activation=a.activation, count_include_pad=a.count_include_pad,
                                 **geometry)]
    if not same_quant(x_t, out_t):
        raise unsupported(op, "input and output quantization differ (TFLite's pools require them equal); "
                          "insert a quantize op after the pool")
    s, zp = qparams(op, out_t, "output")
    lo, hi = activation_range(a.activation, s, zp, out_t.dtype)
    if is_max:
        return [max_pool2d_int8(args[0], act_min=lo, act_max=hi, **geometry)]
    return [avg_pool2d_int8(args[0], act_min=lo, act_max=hi, count_include_pad=a.count_include_pad,
                            zero_point=zp, **geometry)]


def _reference_avg_pool2d(graph, op, args):
    return _pool(graph, op, args, is_max=False)


def _reference_max_pool2d(graph, op, args):
    return _pool(graph, op, args, is_max=True)


# ---- the runtime/ kernel's parameters (TFLite's Prepare, at compile time)

def pool_params(graph: Graph, op: Op) -> KernelParams:
    """AVERAGE_POOL_2D / MAX_POOL_2D: reference_integer_ops::AveragePool / MaxPool (pooling.h)."""
    x, y = graph.tensor(op.inputs[0]), graph.tensor(op.outputs[0])
    dtypes = ("int8", "int16")
    xq, yq = int_qparams(op, x, "input", dtypes), int_qparams(op, y, "output", dtypes)
    if not same_qparams(xq, yq) or x.dtype != y.dtype:
        raise kernel_error(op, "input and output quantization differ (TFLite's pools require them equal)")
    if len(x.shape) != 4 or len(y.shape) != 4:
        raise kernel_error(op, f"pooling needs 4-D NHWC tensors, got {x.shape} -> {y.shape}")
    a = op.attrs
    lo, hi = activation_range(a.activation, yq[0], yq[1], y.dtype)
    top, left, bottom, right = (int(p) for p in a.pads)
    fields = {
        "input": dims(x.shape), "output": dims(y.shape),
        "filter_h": int(a.filter[0]), "filter_w": int(a.filter[1]),
        "stride_h": int(a.stride[0]), "stride_w": int(a.stride[1]),
        "pad_top": top, "pad_left": left, "pad_bottom": bottom, "pad_right": right,
        "count_include_pad": int(bool(getattr(a, "count_include_pad", False))) if op.kind == "avg_pool2d" else 0,
        "pad_value": yq[1],
        "act": act(lo, hi),
    }
    fn = f"mcu_{op.kind}_{'s8' if x.dtype == 'int8' else 's16'}"
    return KernelParams(fn, "mcu_pool_params", fields, in_ctype=CTYPES[x.dtype], out_ctype=CTYPES[y.dtype])


register("avg_pool2d", Pool2DAttrs, _reference_avg_pool2d, pool_params, dtypes=("int8", "int16"), vjp=_vjp_avg_pool2d)
register("max_pool2d", Pool2DAttrs, _reference_max_pool2d, pool_params, dtypes=("int8", "int16"))
