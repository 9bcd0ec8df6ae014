"""CONV_2D and DEPTHWISE_CONV_2D: `reference/integer_ops/conv.h` ConvPerChannel and `depthwise_conv.h`
DepthwiseConvPerChannel (uint8: `reference/conv.h`, `depthwiseconv_uint8.h`); float32 versions for calibration.
They share geometry, checks and the requantization, so they live together. Their firmware kernels are
generated per layer by TVM (mcutool/codegen/tvm_kernels.py); `weighted_op_multipliers` is the requantization
those kernels get. CONV_2D in TFLite's 16x8 scheme (int16 activations, int8 weights, int64 bias) has a
hand-written kernel instead (runtime/mcu_conv2d_s16.c, `conv2d_kernel_params`), whose parameter struct the
transpose conv kernels share (`conv_kernel_params`).
"""
from __future__ import annotations

import numpy as np

from mcutool.errors import UserError
from mcutool.ir import Conv2DAttrs, DepthwiseConv2DAttrs, Graph, Op, Tensor
from mcutool.ops import register
from mcutool.ops.common import (activation_grad, check_window, float_activation, im2col, out_hw_of, padded, qparams,
                                taps, unpadded, unsupported, weight_zero_point, weights_ok, where)
from mcutool.ops.kernel import CTYPES, CRef, KernelParams, act, dims, kernel_error, kernel_for
from mcutool.ops.fixedpoint import (INT32_MAX, INT32_MIN, QUANTIZED, activation_range, clamp, f32, i64,
                                    multiply_by_quantized_multiplier, multiply_by_quantized_multiplier_int64,
                                    quantize_multiplier, quantize_multipliers, requantize_accumulator,
                                    single_rounding_multipliers, wrap_int32)


def legacy_conv_output_multiplier(input_scale, weight_scale, output_scale) -> tuple[int, int]:
    """Per-tensor requantization of FULLY_CONNECTED (and of uint8 CONV_2D / DEPTHWISE_CONV_2D).

    TFLite's GetQuantizedConvolutionMultipler (`kernel_util.cc`) in 2.14:
    input_product_scale = (double)(input_scale * filter_scale) -- the product in float32 (verified against
    tflite-runtime 2.14: the double product differs in the last multiplier bit and in outputs) --, then
    multiplier = input_product_scale / (double)output_scale."""
    product = float(np.float32(f32(input_scale) * f32(weight_scale)))
    return quantize_multiplier(product / float(f32(output_scale)))


def conv_output_multipliers(input_scale, weight_scales, output_scale) -> tuple[np.ndarray, np.ndarray]:
    """Per-channel requantization of conv / depthwise conv / per-channel fully connected.

    TFLite's PopulateConvolutionQuantizationParams (`kernel_util.cc`):
    effective = (double)input_scale * (double)filter_scale[c] / (double)output_scale, from float32 scales."""
    w = np.atleast_1d(np.asarray(weight_scales, dtype=np.float32)).astype(np.float64)
    effective = float(f32(input_scale)) * w / float(f32(output_scale))
    return quantize_multipliers(effective)


def weighted_op_multipliers(kind: str, x: Tensor, w: Tensor, out: Tensor, rounding: str = "tflite"):
    """The requantization (multiplier, shift) of conv2d / depthwise_conv2d / fully_connected -- ints, or
    int64 vectors with one entry per output channel -- computed the way tflite-runtime 2.14 does for that
    layer (each rule verified against it):
      * per-channel weights (any of the three kinds): conv_output_multipliers, in double;
      * conv2d / depthwise_conv2d with int8 input: conv_output_multipliers, also for per-tensor weights;
      * fully_connected with per-tensor weights, and uint8 conv2d / depthwise_conv2d (per-tensor):
        legacy_conv_output_multiplier (float32 scale product).
    rounding "single" (the op's attrs.rounding, ir.ROUNDINGS: ONNX QDQ models) folds the right shift into the
    multiplier so that the accumulator is rounded once (single_rounding_multipliers)."""
    x_scale, w_scales, o_scale = x.quant.scale[0], w.quant.scale, out.quant.scale[0]
    legacy = w_scales.size == 1 and (kind == "fully_connected" or x.dtype == "uint8")
    if legacy:
        mult, shift = legacy_conv_output_multiplier(x_scale, w_scales[0], o_scale)
    else:
        mult, shift = conv_output_multipliers(x_scale, w_scales, o_scale)
        if mult.size == 1:
            mult, shift = int(mult[0]), int(shift[0])
    return single_rounding_multipliers(mult, shift) if rounding == "single" else (mult, shift)


def conv2d_sums(x, x_zp, w, w_zp, stride, dilation, pads, out_hw) -> np.ndarray:
    """Exact (int64) sums of a conv: acc[n, oy, ox, oc] = sum (x - x_zp) * (w - w_zp), padding contributing 0.

    x (N, H, W, Cin) integers; w (Cout, KH, KW, Cin); w_zp scalar or per output channel."""
    w64 = i64(w)
    cout, kh, kw, cin = w64.shape
    wz = i64(w_zp).reshape(-1, 1, 1, 1) if np.ndim(w_zp) else i64(w_zp)
    x0 = i64(x) - int(x_zp)
    canvas = padded(x0, out_hw, stride, dilation, (kh, kw), pads, 0)
    cols = im2col(canvas, out_hw, stride, dilation, (kh, kw))  # (N, OH, OW, KH, KW, Cin)
    n, oh, ow = cols.shape[:3]
    wmat = (w64 - wz).reshape(cout, kh * kw * cin).T
    acc = cols.reshape(n * oh * ow, kh * kw * cin) @ wmat
    return acc.reshape(n, oh, ow, cout)


def conv2d_accumulate(x, x_zp, w, w_zp, stride, dilation, pads, out_hw) -> np.ndarray:
    """int32 accumulators of a conv (conv2d_sums wrapped to int32, as TFLite's int32 accumulator wraps)."""
    return wrap_int32(conv2d_sums(x, x_zp, w, w_zp, stride, dilation, pads, out_hw))


def conv2d_int8(x, w, bias, *, x_zp, w_zp, stride, dilation, pads, out_hw, multiplier, shift, out_zp,
                act_min, act_max) -> np.ndarray:
    """CONV_2D, quantized (`reference/integer_ops/conv.h` ConvPerChannel; uint8: `reference/conv.h`).

    multiplier/shift per output channel (or scalar). With multiplier None the raw int32 accumulator (plus
    bias) is returned (ONNX ConvInteger)."""
    acc = conv2d_accumulate(x, x_zp, w, w_zp, stride, dilation, pads, out_hw)
    if bias is not None:
        acc = wrap_int32(acc + i64(bias))
    if multiplier is None:
        return acc
    return requantize_accumulator(acc, multiplier, shift, out_zp, act_min, act_max)


def requantize_16x8(sums, bias, multiplier, shift, act_min, act_max, wide: bool) -> np.ndarray:
    """The output stage of TFLite's 16x8 conv / transpose conv (`reference/integer_ops/conv.h`
    ConvPerChannel<AccumScalar>, `transpose_conv.h`): zero points are 0, so no offsets. A `wide` (int64)
    accumulator is requantized by the int64 MultiplyByQuantizedMultiplier (16-bit multiplier), an int32 one
    (wrapping) by the int32 one."""
    if wide:
        acc = i64(sums) + (0 if bias is None else i64(bias))
        out = multiply_by_quantized_multiplier_int64(acc, multiplier, shift)
    else:
        acc = wrap_int32(i64(sums) + (0 if bias is None else i64(bias)))
        out = multiply_by_quantized_multiplier(acc, multiplier, shift)
    return clamp(out, act_min, act_max)


def conv2d_16x8(x, w, bias, *, stride, dilation, pads, out_hw, multiplier, shift, act_min, act_max) -> np.ndarray:
    """CONV_2D with int16 input and output, int8 weights (TFLite's 16x8 scheme; `reference/integer_ops/conv.h`
    ConvPerChannel for int16 data, as `micro/kernels/conv.cc` calls it: an int32 accumulator with an int32
    bias, else int64 -- also without bias: the tflite-micro interpreter takes the int64 path then, checked in
    tests/test_transpose_conv.py, although the conv.cc read here routes a missing bias to int32)."""
    sums = conv2d_sums(x, 0, w, 0, stride, dilation, pads, out_hw)
    wide = bias is None or np.asarray(bias).dtype == np.int64
    return requantize_16x8(sums, bias, multiplier, shift, act_min, act_max, wide)


def depthwise_conv2d_sums(x, x_zp, w, w_zp, stride, dilation, pads, out_hw, depth_multiplier) -> np.ndarray:
    """Exact (int64) sums of a depthwise conv; output channel c*dm + m reads input channel c.

    w (1, KH, KW, Cin * dm); w_zp scalar or per output channel."""
    w64 = i64(w)
    _, kh, kw, cout = w64.shape
    wz = i64(w_zp)
    x0 = i64(x) - int(x_zp)
    if depth_multiplier != 1:
        x0 = np.repeat(x0, depth_multiplier, axis=-1)
    canvas = padded(x0, out_hw, stride, dilation, (kh, kw), pads, 0)
    n = x0.shape[0]
    acc = np.zeros((n, out_hw[0], out_hw[1], cout), dtype=np.int64)
    wsub = w64[0] - wz
    for ky, kx, view in taps(canvas, out_hw, stride, dilation, (kh, kw)):
        acc += view * wsub[ky, kx]
    return acc


def depthwise_conv2d_accumulate(x, x_zp, w, w_zp, stride, dilation, pads, out_hw, depth_multiplier) -> np.ndarray:
    """int32 accumulators of a depthwise conv (depthwise_conv2d_sums wrapped to int32)."""
    return wrap_int32(depthwise_conv2d_sums(x, x_zp, w, w_zp, stride, dilation, pads, out_hw, depth_multiplier))


def depthwise_conv2d_16x8(x, w, bias, *, stride, dilation, pads, out_hw, depth_multiplier, multiplier, shift,
                          act_min, act_max) -> np.ndarray:
    """DEPTHWISE_CONV_2D with int16 input and output, int8 weights (`reference/integer_ops/depthwise_conv.h`
    DepthwiseConvPerChannel for int16 data, as `micro/kernels/depthwise_conv.cc` calls it: always an int64
    accumulator and an int64 bias)."""
    sums = depthwise_conv2d_sums(x, 0, w, 0, stride, dilation, pads, out_hw, depth_multiplier)
    return requantize_16x8(sums, bias, multiplier, shift, act_min, act_max, wide=True)


def depthwise_conv2d_int8(x, w, bias, *, x_zp, w_zp, stride, dilation, pads, out_hw, depth_multiplier,
                          multiplier, shift, out_zp, act_min, act_max) -> np.ndarray:
    """DEPTHWISE_CONV_2D, quantized (`reference/integer_ops/depthwise_conv.h` DepthwiseConvPerChannel;
    uint8: `reference/depthwiseconv_uint8.h`)."""
    acc = depthwise_conv2d_accumulate(x, x_zp, w, w_zp, stride, dilation, pads, out_hw, depth_multiplier)
    if bias is not None:
        acc = wrap_int32(acc + i64(bias))
    if multiplier is None:
        return acc
    return requantize_accumulator(acc, multiplier, shift, out_zp, act_min, act_max)


def conv2d_float(x, w, bias, *, stride, dilation, pads, out_hw, activation="none") -> np.ndarray:
    w = np.asarray(w, dtype=np.float32)
    cout, kh, kw, _ = w.shape
    canvas = padded(np.asarray(x, dtype=np.float32), out_hw, stride, dilation, (kh, kw), pads, 0.0)
    cols = im2col(canvas, out_hw, stride, dilation, (kh, kw))
    n, oh, ow = cols.shape[:3]
    y = (cols.reshape(n * oh * ow, -1) @ w.reshape(cout, -1).T).reshape(n, oh, ow, cout)
    if bias is not None:
        y = y + np.asarray(bias, dtype=np.float32)
    return float_activation(y.astype(np.float32), activation)


def depthwise_conv2d_float(x, w, bias, *, stride, dilation, pads, out_hw, depth_multiplier,
                           activation="none") -> np.ndarray:
    w = np.asarray(w, dtype=np.float32)
    _, kh, kw, cout = w.shape
    x = np.asarray(x, dtype=np.float32)
    if depth_multiplier != 1:
        x = np.repeat(x, depth_multiplier, axis=-1)
    canvas = padded(x, out_hw, stride, dilation, (kh, kw), pads, 0.0)
    y = np.zeros((x.shape[0], out_hw[0], out_hw[1], cout), dtype=np.float32)
    for ky, kx, view in taps(canvas, out_hw, stride, dilation, (kh, kw)):
        y += view * w[0, ky, kx]
    if bias is not None:
        y = y + np.asarray(bias, dtype=np.float32)
    return float_activation(y, activation)


def _conv_like(graph: Graph, op: Op, args, depthwise: bool):
    x_t, w_t = graph.tensor(op.inputs[0]), graph.tensor(op.inputs[1])
    out_t = graph.tensor(op.outputs[0])
    a = op.attrs
    kernel = w_t.shape[1:3]
    check_window(op, x_t, out_t, kernel, a.stride, a.dilation, a.pads)
    x, w = args[0], args[1]
    bias = args[2] if len(args) > 2 else None
    geometry = dict(stride=tuple(a.stride), dilation=tuple(a.dilation), pads=tuple(a.pads), out_hw=out_hw_of(out_t))
    if depthwise:
        dm = a.depth_multiplier
        if dm * x_t.shape[3] != w_t.shape[3]:
            raise UserError(f"{where(op)}: {x_t.shape[3]} input channels x depth multiplier {dm} != "
                            f"{w_t.shape[3]} weight channels")
        geometry["depth_multiplier"] = dm
    if x_t.dtype == "float32" or out_t.dtype == "float32":
        if not (x_t.dtype == w_t.dtype == out_t.dtype == "float32"):
            raise unsupported(op, f"input {x_t.dtype}, weights {w_t.dtype}, output {out_t.dtype} (hybrid "
                              "float/integer layers are not supported)")
        fn = depthwise_conv2d_float if depthwise else conv2d_float
        return [fn(x, w, bias, activation=a.activation, **geometry)]
    return [_quantized_conv_like(graph, op, x_t, w_t, out_t, x, w, bias, geometry, depthwise)]


def check_16x8(op: Op, x_t: Tensor, w_t: Tensor, out_t: Tensor, bias_t: Tensor | None,
               bias_dtypes=("int32", "int64")) -> None:
    """TFLite's 16x8 scheme: int16 input and output, int8 weights, all with zero point 0 (the 16x8 kernels
    ignore zero points, so others would be silently wrong); bias of one of `bias_dtypes`."""
    if not (x_t.dtype == out_t.dtype == "int16" and w_t.dtype == "int8"):
        raise unsupported(op, f"input {x_t.dtype}, weights {w_t.dtype}, output {out_t.dtype} (the 16x8 scheme is "
                          "int16 input and output with int8 weights)")
    for role, t in (("input", x_t), ("weights", w_t), ("output", out_t)):
        if t.quant is None:
            raise unsupported(op, f"{role} tensor {t.name!r} has no quantization parameters")
        if np.any(t.quant.zero_point != 0):
            raise unsupported(op, f"{role} tensor {t.name!r} has a zero point other than 0, which TFLite's 16x8 "
                              "scheme does not allow")
    if bias_t is not None and bias_t.dtype not in bias_dtypes:
        raise unsupported(op, f"a {bias_t.dtype} bias with int16 activations (TFLite Micro takes "
                          f"{' or '.join(bias_dtypes)})")


# TFLite Micro's 16x8 depthwise conv always reads its bias as int64 (depthwise_conv.cc)
DEPTHWISE_16X8_BIAS = ("int64",)


def _quantized_16x8_conv(graph, op, x_t, w_t, out_t, x, w, bias, geometry, depthwise):
    bias_t = graph.tensor(op.inputs[2]) if len(op.inputs) > 2 and op.inputs[2] else None
    check_16x8(op, x_t, w_t, out_t, bias_t, DEPTHWISE_16X8_BIAS if depthwise else ("int32", "int64"))
    weight_zero_point(op, w_t, 3 if depthwise else 0)
    lo, hi = activation_range(op.attrs.activation, out_t.quant.scale[0], 0, "int16")
    mult, shift = conv_output_multipliers(x_t.quant.scale[0], w_t.quant.scale, out_t.quant.scale[0])
    fn = depthwise_conv2d_16x8 if depthwise else conv2d_16x8
    return fn(x, w, bias, **geometry, multiplier=mult, shift=shift, act_min=lo, act_max=hi)


def _quantized_conv_like(graph, op, x_t, w_t, out_t, x, w, bias, geometry, depthwise):
    if x_t.dtype == "int16":
        return _quantized_16x8_conv(graph, op, x_t, w_t, out_t, x, w, bias, geometry, depthwise)
    if x_t.dtype not in QUANTIZED or not weights_ok(x_t, w_t):
        raise unsupported(op, f"input {x_t.dtype} with weights {w_t.dtype}")
    _, x_zp = qparams(op, x_t, "input")
    if w_t.quant is None:
        raise unsupported(op, f"weights {w_t.name!r} have no quantization parameters")
    w_zp = weight_zero_point(op, w_t, 3 if depthwise else 0)
    if out_t.dtype == "int32" and out_t.quant is None:
        mult = shift = None
        out_zp, lo, hi = 0, INT32_MIN, INT32_MAX
        if op.attrs.activation != "none":
            raise unsupported(op, "a raw int32 accumulator output cannot carry a fused activation")
    elif out_t.dtype in QUANTIZED:
        o_s, out_zp = qparams(op, out_t, "output")
        lo, hi = activation_range(op.attrs.activation, o_s, out_zp, out_t.dtype)
        mult, shift = weighted_op_multipliers(op.kind, x_t, w_t, out_t, op.attrs.rounding)
    else:
        raise unsupported(op, f"output dtype {out_t.dtype} (expected int8/uint8, or int32 without quantization)")
    common = dict(x_zp=x_zp, w_zp=w_zp, multiplier=mult, shift=shift, out_zp=out_zp, act_min=lo, act_max=hi)
    if depthwise:
        return depthwise_conv2d_int8(x, w, bias, **geometry, **common)
    return conv2d_int8(x, w, bias, **geometry, **common)


# ---- the runtime/ kernels' parameters (TFLite's Prepare, at compile time): the 16x8 conv here, the transpose
# conv in transpose_conv.py; int8 conv / depthwise kernels are TVM's (mcutool/codegen/tvm_kernels.py)

def conv_kernel_params(function: str, x_t: Tensor, w_t: Tensor, out_t: Tensor, bias_t: Tensor | None, *, stride,
                       dilation, pad_top: int, pad_left: int, input_offset: int, output_offset: int, lo: int, hi: int,
                       multiplier, shift, shapes=None) -> KernelParams:
    """The mcu_conv_params call of mcu_conv2d_s16 / mcu_transpose_conv2d_s8 / _s16 (runtime/mcu_kernels.h): shapes,
    geometry, offsets, the clamp, and companion arrays for the weights, the bias (int32 as bias32; int64, or
    int16 widened as TFLM does, as bias64) and the per-channel multipliers and shifts. `shapes` (input, filter,
    output) overrides the tensors' shapes (a fully connected layer runs as a 1x1 conv)."""
    in_shape, w_shape, out_shape = shapes or (x_t.shape, w_t.shape, out_t.shape)
    cout = dims(out_shape)["c"]
    fields = {
        "input": dims(in_shape), "filter": dims(w_shape), "output": dims(out_shape),
        "stride_h": int(stride[0]), "stride_w": int(stride[1]),
        "dilation_h": int(dilation[0]), "dilation_w": int(dilation[1]),
        "pad_top": int(pad_top), "pad_left": int(pad_left),
        "input_offset": int(input_offset), "output_offset": int(output_offset), "act": act(lo, hi),
        "weights": CRef("weights"), "bias32": None, "bias64": None,
        "multiplier": CRef("multiplier"), "shift": CRef("shift"),
    }
    arrays = {
        "weights": ("int8_t", [int(v) for v in np.asarray(w_t.data).reshape(-1)]),
        "multiplier": ("int32_t", [int(v) for v in np.broadcast_to(multiplier, (cout,))]),
        "shift": ("int32_t", [int(v) for v in np.broadcast_to(shift, (cout,))]),
    }
    if bias_t is not None:
        key, ctype = ("bias32", "int32_t") if bias_t.dtype == "int32" else ("bias64", "int64_t")
        fields[key] = CRef(key)
        arrays[key] = (ctype, [int(v) for v in np.asarray(bias_t.data).reshape(-1)])
    return KernelParams(function, "mcu_conv_params", fields, arrays, in_ctype=CTYPES[x_t.dtype],
                        out_ctype=CTYPES[out_t.dtype])


def bias_tensor(graph: Graph, op: Op, index: int) -> Tensor | None:
    """The op's constant bias operand at `index`, or None when it has none."""
    if len(op.inputs) <= index or not op.inputs[index]:
        return None
    t = graph.tensor(op.inputs[index])
    if not t.is_const:
        raise kernel_error(op, f"its bias {t.name!r} is computed, not a constant")
    return t


def kernel_operands_16x8(graph: Graph, op: Op, bias_dtypes):
    """(input, weights, output, bias or None) of a 16x8 conv / depthwise / fully connected layer whose runtime/
    kernel is being prepared, checked: int16 activations (int8 layers get TVM kernels), constant weights."""
    x_t, w_t, out_t = graph.tensor(op.inputs[0]), graph.tensor(op.inputs[1]), graph.tensor(op.outputs[0])
    if x_t.dtype != "int16":
        raise kernel_error(op, f"a {x_t.dtype} {op.kind} has a TVM kernel, not a runtime/ one")
    bias_t = bias_tensor(graph, op, 2)
    check_16x8(op, x_t, w_t, out_t, bias_t, bias_dtypes)
    if not w_t.is_const:
        raise kernel_error(op, f"its weights {w_t.name!r} are computed, not constants")
    return x_t, w_t, out_t, bias_t


def _conv_16x8_kernel_params(graph: Graph, op: Op, function: str, bias_dtypes) -> KernelParams:
    x_t, w_t, out_t, bias_t = kernel_operands_16x8(graph, op, bias_dtypes)
    a = op.attrs
    lo, hi = activation_range(a.activation, out_t.quant.scale[0], 0, "int16")
    mult, shift = conv_output_multipliers(x_t.quant.scale[0], w_t.quant.scale, out_t.quant.scale[0])
    return conv_kernel_params(function, x_t, w_t, out_t, bias_t, stride=a.stride, dilation=a.dilation,
                              pad_top=a.pads[0], pad_left=a.pads[1], input_offset=0, output_offset=0, lo=lo, hi=hi,
                              multiplier=mult, shift=shift)


def conv2d_kernel_params(graph: Graph, op: Op) -> KernelParams:
    """CONV_2D in the 16x8 scheme: runtime/mcu_conv2d_s16.c; with int4 weights runtime/mcu_conv2d_s4.c
    (mcutool/ops/int4_weights.py); int8 convolutions get TVM kernels instead."""
    if graph.tensor(op.inputs[1]).dtype == "int4":
        from mcutool.ops import int4_weights  # it builds on this module's conv_kernel_params
        return int4_weights.kernel_params(graph, op)
    return _conv_16x8_kernel_params(graph, op, "mcu_conv2d_s16", ("int32", "int64"))


def depthwise_conv2d_kernel_params(graph: Graph, op: Op) -> KernelParams:
    """DEPTHWISE_CONV_2D in the 16x8 scheme: runtime/mcu_depthwise_conv2d_s16.c; with int4 weights
    runtime/mcu_depthwise_conv2d_s4.c (mcutool/ops/int4_weights.py); int8: TVM kernels."""
    if graph.tensor(op.inputs[1]).dtype == "int4":
        from mcutool.ops import int4_weights  # it builds on this module's conv_kernel_params
        return int4_weights.kernel_params(graph, op)
    return _conv_16x8_kernel_params(graph, op, "mcu_depthwise_conv2d_s16", DEPTHWISE_16X8_BIAS)


def _reference_conv2d(graph, op, args):
    return _conv_like(graph, op, args, depthwise=False)


def _reference_depthwise_conv2d(graph, op, args):
    return _conv_like(graph, op, args, depthwise=True)


def _vjp_conv_like(graph, op, args, outs, grads, depthwise: bool):
    """The float conv's gradient with respect to its input x (the weights and bias are constants): the
    output gradient through the fused activation, back through each tap of the window onto the padded canvas
    (the adjoint of conv2d_float / depthwise_conv2d_float), cropped to x."""
    a, x, w = op.attrs, np.asarray(args[0], np.float32), np.asarray(args[1], np.float32)
    out_hw = out_hw_of(graph.tensor(op.outputs[0]))
    g = grads[0] * activation_grad(outs[0], a.activation)
    kh, kw = w.shape[1:3]
    dm = a.depth_multiplier if depthwise else 1
    canvas = np.zeros_like(padded(np.repeat(x, dm, axis=-1) if depthwise else x, out_hw, a.stride, a.dilation,
                                  (kh, kw), a.pads, 0.0))
    if not depthwise:
        cols = (g.reshape(-1, w.shape[0]) @ w.reshape(w.shape[0], -1)).reshape(*g.shape[:3], kh, kw, -1)
    for ky, kx, view in taps(canvas, out_hw, a.stride, a.dilation, (kh, kw)):
        view += g * w[0, ky, kx] if depthwise else cols[:, :, :, ky, kx, :]
    dx = unpadded(canvas, x.shape[:3] + canvas.shape[3:], a.pads)
    if dm != 1:
        dx = dx.reshape(*x.shape, dm).sum(axis=-1)
    return [dx, None, None][:len(op.inputs)]


def _vjp_conv2d(graph, op, args, outs, grads):
    return _vjp_conv_like(graph, op, args, outs, grads, depthwise=False)


def _vjp_depthwise_conv2d(graph, op, args, outs, grads):
    return _vjp_conv_like(graph, op, args, outs, grads, depthwise=True)


register("conv2d", Conv2DAttrs, _reference_conv2d, conv2d_kernel_params, dtypes=("int8", "int16"), vjp=_vjp_conv2d)
register("depthwise_conv2d", DepthwiseConv2DAttrs, _reference_depthwise_conv2d, depthwise_conv2d_kernel_params,
         dtypes=("int8", "int16"), vjp=_vjp_depthwise_conv2d)
