"""Binary (1-bit) layers, DESIGN.md §8 (the packing convention is documented in mcutool/ir.py): Sign, packing,
binary convolutions (XNOR/popcount) with BatchNorm + Sign folded into thresholds, binary max pooling.
Their firmware kernels' parameters are laid out in mcutool/codegen/binary_kernels.py (runtime/mcu_binary*.c).
"""
from __future__ import annotations

import numpy as np

from mcutool.ir import BinaryConv2DAttrs, BinaryPackAttrs, BinaryPool2DAttrs, Graph, NoAttrs, Op
from mcutool.ops import register
from mcutool.ops.common import kind_of, out_hw_of, padded, qparams, taps
from mcutool.ops.fixedpoint import (INT32_MAX, INT32_MIN, activation_range, dtype_range, i64, requantize_accumulator,
                                    tflite_round, wrap_int32)
from mcutool.ops.kernel import CRef, KernelParams, byte_indexed, int8_qparams
from mcutool.ops.conv import conv2d_accumulate, conv_output_multipliers


def pack_bits(bits: np.ndarray) -> np.ndarray:
    """bool (..., C) -> uint32 (..., ceil(C/32)): channel c is bit c % 32 of word c // 32, unused bits 0."""
    bits = np.asarray(bits, dtype=bool)
    c = bits.shape[-1]
    words = (c + 31) // 32
    padded = np.zeros(bits.shape[:-1] + (words * 32,), dtype=np.uint64)
    padded[..., :c] = bits
    weights = (np.uint64(1) << np.arange(32, dtype=np.uint64))
    return (padded.reshape(bits.shape[:-1] + (words, 32)) * weights).sum(axis=-1).astype(np.uint32)


def unpack_bits(words: np.ndarray, channels: int) -> np.ndarray:
    """uint32 (..., W) -> bool (..., channels), the inverse of pack_bits."""
    w = np.asarray(words, dtype=np.uint64)[..., None] >> np.arange(32, dtype=np.uint64)
    return ((w & np.uint64(1)) == 1).reshape(w.shape[:-2] + (-1,))[..., :channels]


def binary_sign_bits(x, zero_point: int) -> np.ndarray:
    """The bits of sign(real x): 1 (= -1) where q < zero point; Sign(0) = +1 (Larq's convention)."""
    return i64(x) < int(zero_point)


def sign_int8(x, *, in_zp: int, out_scale, out_zp: int, out_dtype: str = "int8") -> np.ndarray:
    """Sign on int8 values (the int8 form of a binary network, `--binarize off`): +1 or -1 quantized to the
    output's scale and zero point (round half away from zero, clamped), chosen by binary_sign_bits."""
    lo, hi = dtype_range(out_dtype)
    pos, neg = (int(np.clip(tflite_round(v / float(out_scale)) + int(out_zp), lo, hi)) for v in (1.0, -1.0))
    return np.where(binary_sign_bits(x, in_zp), neg, pos)


def binary_conv2d_dot(x_bits, w_bits, stride, dilation, pads, out_hw) -> np.ndarray:
    """dot[n, oy, ox, oc] = sum over the valid taps and input channels of x * w with x, w in {-1, +1}
    (bit 1 = -1). Padded positions contribute nothing -- what a zero-padded float conv computes -- so the
    count of valid taps enters as sum(C - 2 * popcount(x XOR w)) in the kernels."""
    xpm = 1 - 2 * np.asarray(x_bits, dtype=np.int64)
    wpm = 1 - 2 * np.asarray(w_bits, dtype=np.int64)
    return conv2d_accumulate(xpm, 0, wpm, 0, stride, dilation, pads, out_hw)


def threshold_bits(acc, thresholds, flip) -> np.ndarray:
    """BatchNorm + Sign folded (DESIGN.md §8): bit = (acc < threshold[c]) XOR flip[c]."""
    return (i64(acc) < i64(thresholds)) ^ np.asarray(flip, dtype=bool)


def sign_thresholds(scale, offset) -> tuple[np.ndarray, np.ndarray]:
    """Per channel, the (threshold, flip) that make threshold_bits(dot, ...) the bits of sign(scale * dot +
    offset) for every integer dot, Sign(0) = +1 (bit 0).

    scale > 0: y >= 0 <=> dot >= -offset/scale, so bit 1 <=> dot < ceil(-offset/scale).
    scale < 0 (a negative BatchNorm gamma): y >= 0 <=> dot <= floor(-offset/scale), so bit 1 <=>
    dot > floor(..) <=> not (dot < floor(..) + 1): threshold floor(..) + 1, flipped.
    scale = 0: the sign of offset for every dot (threshold at the int32 extreme)."""
    scale = np.asarray(scale, dtype=np.float64)
    offset = np.asarray(offset, dtype=np.float64)
    thr = np.zeros(scale.shape, dtype=np.int64)
    flip = scale < 0
    safe = np.where(scale == 0, 1.0, scale)
    t = -offset / safe
    thr = np.where(scale > 0, np.ceil(t), np.floor(t) + 1)
    thr = np.where(scale == 0, np.where(offset < 0, INT32_MAX, INT32_MIN), thr)
    return np.clip(thr, INT32_MIN, INT32_MAX).astype(np.int64), flip


def binary_max_pool2d_bits(x_bits, *, filter, stride, pads, out_hw) -> np.ndarray:
    """Max of {-1, +1} values = -1 only if every one is -1: AND of the bits over the valid window positions."""
    canvas = padded(np.asarray(x_bits, dtype=bool), out_hw, stride, (1, 1), filter, pads, True)
    out = None
    for _, _, view in taps(canvas, out_hw, stride, (1, 1), filter):
        out = view.copy() if out is None else out & view
    return out


def _reference_sign(graph, op, args):
    """Sign. Float: ONNX's Sign (sign(0) = 0), what the imported model means. int8 (the activation of a binary
    network, DESIGN.md §8): +-1 with Sign(0) = +1 (Larq's convention), as the binary layers compute it."""
    x_t, out_t = graph.tensor(op.inputs[0]), graph.tensor(op.outputs[0])
    if kind_of(graph, op) == "float":
        return [np.sign(np.asarray(args[0], np.float32)).astype(np.float32)]
    _, z = qparams(op, x_t, "input")
    so, zo = qparams(op, out_t, "output")
    return [sign_int8(args[0], in_zp=z, out_scale=so, out_zp=zo, out_dtype=out_t.dtype)]


def _reference_binary_pack(graph, op, args):
    x_t = graph.tensor(op.inputs[0])
    _, z = qparams(op, x_t, "input")
    return [pack_bits(binary_sign_bits(args[0], z))]


def _binary_geometry(graph, op):
    """Conv geometry; a 2-D output (a binary fully connected layer) is a 1x1 image."""
    out_t = graph.tensor(op.outputs[0])
    a = op.attrs
    out_hw = out_hw_of(out_t) if len(out_t.shape) == 4 else (1, 1)
    return dict(stride=a.stride, dilation=a.dilation, pads=a.pads, out_hw=out_hw)


def _image(x: np.ndarray) -> np.ndarray:
    """A 2-D (N, C) value as an (N, 1, 1, C) image."""
    x = np.asarray(x)
    return x.reshape(x.shape[0], 1, 1, x.shape[-1]) if x.ndim == 2 else x


def _reference_binary_pack_conv2d(graph, op, args):
    x_t = graph.tensor(op.inputs[0])
    _, zx = qparams(op, x_t, "input")
    x, w, bias, thr = args
    acc = conv2d_accumulate(x, zx, w, 0, **_binary_geometry(graph, op))
    acc = wrap_int32(acc + i64(bias))
    return [pack_bits(threshold_bits(acc, thr, np.zeros(thr.shape, bool)))]


def _reference_binary_conv2d(graph, op, args):
    a = op.attrs
    out_t, w_t = graph.tensor(op.outputs[0]), graph.tensor(op.inputs[1])
    x_bits = unpack_bits(_image(args[0]), a.in_channels)
    w_bits = unpack_bits(args[1], a.in_channels)
    dot = binary_conv2d_dot(x_bits, w_bits, **_binary_geometry(graph, op))
    if out_t.dtype == "uint32":
        flip = unpack_bits(args[3], a.out_channels)
        return [pack_bits(threshold_bits(dot, args[2], flip))]
    so, zo = qparams(op, out_t, "output")
    mult, shift = conv_output_multipliers(1.0, w_t.quant.scale, so)
    lo, hi = activation_range(a.activation, so, zo, out_t.dtype)
    acc = wrap_int32(dot + i64(args[2]))
    return [requantize_accumulator(acc, mult, shift, zo, lo, hi)]


def _reference_binary_max_pool2d(graph, op, args):
    a = op.attrs
    x_bits = unpack_bits(args[0], a.channels)
    out = binary_max_pool2d_bits(x_bits, filter=a.filter, stride=a.stride, pads=a.pads,
                                 out_hw=out_hw_of(graph.tensor(op.outputs[0])))
    return [pack_bits(out)]


def sign_kernel_params(graph: Graph, op: Op) -> KernelParams:
    """int8 Sign (`--binarize off`): a lookup table of sign_int8 over the 256 input values (mcu_lut_s8)."""
    x, y = graph.tensor(op.inputs[0]), graph.tensor(op.outputs[0])
    _, zi = int8_qparams(op, x, "input")
    so, zo = int8_qparams(op, y, "output")
    table = sign_int8(np.arange(-128, 128), in_zp=zi, out_scale=so, out_zp=zo)
    return KernelParams("mcu_lut_s8", "mcu_lut_params", {"size": x.size, "table": CRef("table")},
                        arrays={"table": ("int8_t", byte_indexed(table))})


register("sign", NoAttrs, _reference_sign, sign_kernel_params)
register("binary_pack", BinaryPackAttrs, _reference_binary_pack)
register("binary_pack_conv2d", BinaryConv2DAttrs, _reference_binary_pack_conv2d)
register("binary_conv2d", BinaryConv2DAttrs, _reference_binary_conv2d)
register("binary_max_pool2d", BinaryPool2DAttrs, _reference_binary_max_pool2d)
