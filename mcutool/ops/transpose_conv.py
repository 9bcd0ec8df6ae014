"""TRANSPOSE_CONV: `micro/kernels/transpose_conv.cc` with `reference/integer_ops/transpose_conv.h` (int8, and
int16 activations with int8 weights and an int64 bias: the 16x8 scheme); float32 for calibration.

TFLite Micro ignores the op's first input (the output shape: TFLM has no dynamic tensors) and takes the output
tensor's static shape; the importer drops that operand, so the IR op reads (input, weights[, bias]). Each input
pixel is scattered into the output through the kernel (`TransposeConv2DAttrs`); TFLM sums into a scratch
buffer of the output's size (int32 for int8, int64 for int16) and then requantizes per channel as CONV_2D
does (PopulateConvolutionQuantizationParams), with the fused activation as the output clamp (older TFLM
passed kTfLiteActNone there; the tflite-micro interpreter that is the oracle here applies it, checked in
tests/test_transpose_conv.py). Weights and int16 tensors have zero point 0; TFLM's kernel ignores a weight
zero point, so another one is refused.
Kernels: runtime/mcu_transpose_conv2d_s8.c and _s16.c compute each output directly (a gather over the taps
that reach it), which needs no scratch buffer and gives the same integers: the int64 sums are exact, and the
int32 sums of the int8 kernel wrap the same way in any order.
"""
from __future__ import annotations

import numpy as np

from mcutool.errors import UserError
from mcutool.ir import Graph, Op, Tensor, TransposeConv2DAttrs
from mcutool.ops import register
from mcutool.ops.common import float_activation, qparams, unsupported, weight_zero_point, where
from mcutool.ops.conv import bias_tensor, check_16x8, conv_kernel_params, conv_output_multipliers, requantize_16x8
from mcutool.ops.fixedpoint import activation_range, i64, requantize_accumulator, wrap_int32
from mcutool.ops.kernel import KernelParams, int_qparams, kernel_error


def transpose_conv2d_sums(x, w, stride, pads, out_hw, dtype=np.int64) -> np.ndarray:
    """sums[n, oy, ox, oc] = sum over input pixels and taps with iy * sy - top + ky == oy (and the same along
    x) of x[n, iy, ix, :] . w[oc, ky, kx, :]. x (N, H, W, Cin), w (Cout, KH, KW, Cin); exact in int64 (or
    float32 for dtype float32)."""
    x, w = np.asarray(x, dtype), np.asarray(w, dtype)
    n, ih, iw, _ = x.shape
    cout, kh, kw, _ = w.shape
    (sy, sx), (top, left) = stride, pads[:2]
    oh, ow = out_hw
    height, width = max((ih - 1) * sy + kh, top + oh), max((iw - 1) * sx + kw, left + ow)
    canvas = np.zeros((n, height, width, cout), dtype)
    for ky in range(kh):
        for kx in range(kw):
            canvas[:, ky:ky + (ih - 1) * sy + 1:sy, kx:kx + (iw - 1) * sx + 1:sx, :] += x @ w[:, ky, kx, :].T
    return canvas[:, top:top + oh, left:left + ow, :]


def transpose_conv2d_int8(x, w, bias, *, x_zp, stride, pads, out_hw, multiplier, shift, out_zp, act_min,
                          act_max) -> np.ndarray:
    """int8 TRANSPOSE_CONV (`reference/integer_ops/transpose_conv.h`): int32 scratch of (x - x_zp) * w sums,
    bias, per-channel MultiplyByQuantizedMultiplier, output zero point, clamp."""
    acc = wrap_int32(transpose_conv2d_sums(i64(x) - int(x_zp), w, stride, pads, out_hw))
    if bias is not None:
        acc = wrap_int32(acc + i64(bias))
    return requantize_accumulator(acc, multiplier, shift, out_zp, act_min, act_max)


def transpose_conv2d_16x8(x, w, bias, *, stride, pads, out_hw, multiplier, shift, act_min, act_max) -> np.ndarray:
    """16x8 TRANSPOSE_CONV (the int16 template of `reference/integer_ops/transpose_conv.h` with TFLM's int64
    scratch, so always an int64 accumulator; an int16 bias is widened to int64, as transpose_conv.cc does)."""
    sums = transpose_conv2d_sums(x, w, stride, pads, out_hw)
    return requantize_16x8(sums, bias, multiplier, shift, act_min, act_max, wide=True)


def transpose_conv2d_float(x, w, bias, *, stride, pads, out_hw, activation="none") -> np.ndarray:
    y = transpose_conv2d_sums(x, w, stride, pads, out_hw, np.float32)
    if bias is not None:
        y = y + np.asarray(bias, dtype=np.float32)
    return float_activation(y.astype(np.float32), activation)


def check_geometry(op: Op, x: Tensor, w: Tensor, out: Tensor) -> None:
    a = op.attrs
    if len(x.shape) != 4 or len(w.shape) != 4 or len(out.shape) != 4:
        raise UserError(f"{where(op)}: input {x.shape}, weights {w.shape} and output {out.shape} must all be 4-D")
    if x.shape[3] != w.shape[3] or w.shape[0] != out.shape[3] or x.shape[0] != out.shape[0]:
        raise UserError(f"{where(op)}: input {x.shape}, weights {w.shape} (out, kh, kw, in) and output "
                        f"{out.shape} do not match")
    for i, axis in enumerate(("height", "width")):
        full = (x.shape[1 + i] - 1) * a.stride[i] + w.shape[1 + i]
        if a.pads[i] < 0 or full - a.pads[i] - a.pads[2 + i] != out.shape[1 + i]:
            raise UserError(f"{where(op)}: along the {axis}, input {x.shape[1 + i]}, kernel {w.shape[1 + i]}, "
                            f"stride {a.stride[i]} and pads {a.pads} do not give the output's "
                            f"{out.shape[1 + i]}")


def _reference(graph: Graph, op: Op, args):
    x_t, w_t, out_t = graph.tensor(op.inputs[0]), graph.tensor(op.inputs[1]), graph.tensor(op.outputs[0])
    bias_t = graph.tensor(op.inputs[2]) if len(op.inputs) > 2 and op.inputs[2] else None
    check_geometry(op, x_t, w_t, out_t)
    a = op.attrs
    x, w = args[0], args[1]
    bias = args[2] if bias_t is not None else None
    geometry = dict(stride=tuple(a.stride), pads=tuple(a.pads), out_hw=(out_t.shape[1], out_t.shape[2]))
    if x_t.dtype == "float32" and w_t.dtype == "float32" and out_t.dtype == "float32":
        return [transpose_conv2d_float(x, w, bias, activation=a.activation, **geometry)]
    if w_t.quant is None:
        raise unsupported(op, f"weights {w_t.name!r} ({w_t.dtype}) have no quantization parameters")
    weight_zero_point(op, w_t, 0)
    if x_t.dtype == "int16":
        check_16x8(op, x_t, w_t, out_t, bias_t, bias_dtypes=("int16", "int64"))
        mult, shift = conv_output_multipliers(x_t.quant.scale[0], w_t.quant.scale, out_t.quant.scale[0])
        lo, hi = activation_range(a.activation, out_t.quant.scale[0], 0, "int16")
        return [transpose_conv2d_16x8(x, w, bias, **geometry, multiplier=mult, shift=shift, act_min=lo, act_max=hi)]
    if not (x_t.dtype == w_t.dtype == out_t.dtype == "int8"):
        raise unsupported(op, f"input {x_t.dtype}, weights {w_t.dtype}, output {out_t.dtype} (TFLite Micro's "
                          "TRANSPOSE_CONV runs float32, int8, and int16 activations with int8 weights)")
    if np.any(w_t.quant.zero_point != 0):
        raise unsupported(op, f"weights {w_t.name!r} have a zero point other than 0 (TFLite's int8 weights are "
                          "symmetric, and TFLite Micro's kernel ignores it)")
    if bias_t is not None and bias_t.dtype != "int32":
        raise unsupported(op, f"a {bias_t.dtype} bias with int8 activations (TFLite takes int32)")
    x_s, x_zp = qparams(op, x_t, "input")
    o_s, o_zp = qparams(op, out_t, "output")
    mult, shift = conv_output_multipliers(x_s, w_t.quant.scale, o_s)
    lo, hi = activation_range(a.activation, o_s, o_zp, "int8")
    return [transpose_conv2d_int8(x, w, bias, x_zp=x_zp, **geometry, multiplier=mult, shift=shift, out_zp=o_zp,
                                  act_min=lo, act_max=hi)]


# ---- the runtime/ kernel's parameters (TFLite's Prepare, at compile time)

def kernel_params(graph: Graph, op: Op) -> KernelParams:
    """TRANSPOSE_CONV: runtime/mcu_transpose_conv2d_s8.c (int8) or _s16.c (16x8), the checks of the reference."""
    x_t, w_t, out_t = graph.tensor(op.inputs[0]), graph.tensor(op.inputs[1]), graph.tensor(op.outputs[0])
    bias_t = bias_tensor(graph, op, 2)
    check_geometry(op, x_t, w_t, out_t)
    if not w_t.is_const:
        raise kernel_error(op, f"its weights {w_t.name!r} are computed, not constants")
    a = op.attrs
    if x_t.dtype == "int16":
        check_16x8(op, x_t, w_t, out_t, bias_t, bias_dtypes=("int16", "int64"))
        function, x_zp, o_zp = "mcu_transpose_conv2d_s16", 0, 0
    elif x_t.dtype == w_t.dtype == out_t.dtype == "int8":
        x_zp, o_zp = int_qparams(op, x_t, "input")[1], int_qparams(op, out_t, "output")[1]
        if np.any(w_t.quant.zero_point != 0) or (bias_t is not None and bias_t.dtype != "int32"):
            raise kernel_error(op, "int8 weights need zero point 0 and the bias int32")
        function = "mcu_transpose_conv2d_s8"
    else:
        raise kernel_error(op, f"input {x_t.dtype}, weights {w_t.dtype}, output {out_t.dtype}")
    lo, hi = activation_range(a.activation, out_t.quant.scale[0], o_zp, out_t.dtype)
    mult, shift = conv_output_multipliers(x_t.quant.scale[0], w_t.quant.scale, out_t.quant.scale[0])
    return conv_kernel_params(function, x_t, w_t, out_t, bias_t, stride=a.stride, dilation=(1, 1), pad_top=a.pads[0],
                              pad_left=a.pads[1], input_offset=-x_zp, output_offset=o_zp, lo=lo, hi=hi,
                              multiplier=mult, shift=shift)


register("transpose_conv2d", TransposeConv2DAttrs, _reference, kernel_params, dtypes=("int8", "int16"))
