"""What the operators' reference functions share: how a layer names itself in errors, per-tensor quantization
parameters, the float/quantized split, window geometry (padding canvases, taps, im2col).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from mcutool.errors import UserError
from mcutool.ir import Graph, Op, Tensor
from mcutool.ops.fixedpoint import QUANTIZED, QUANTIZED_16, f32, i64, multiply_by_quantized_multiplier


def where(op: Op) -> str:
    return f"op {op.name!r} ({op.kind})"


def unsupported(op: Op, detail: str) -> UserError:
    return UserError(f"{where(op)}: {detail}. The numpy reference (mcutool/reference.py) supports int8/uint8 "
                     "tensors with TFLite quantization (int16 ones, TFLite's 16x8 scheme, for the ops the README "
                     "lists as int16) and all-float32 ops; quantize the model, or change this layer to a "
                     "supported form.")


def qparams(op: Op, t: Tensor, role: str) -> tuple[np.float32, int]:
    """(scale, zero_point) of a per-tensor quantized tensor."""
    if t.quant is None:
        raise unsupported(op, f"{role} tensor {t.name!r} ({t.dtype}) has no quantization parameters")
    if t.quant.per_channel:
        raise unsupported(op, f"{role} tensor {t.name!r} is quantized per channel, which this op does not allow")
    return f32(t.quant.scale[0]), int(t.quant.zero_point[0])


def same_quant(a: Tensor, b: Tensor) -> bool:
    if a.quant is None or b.quant is None:
        return a.quant is None and b.quant is None
    return (a.quant.scale.size == b.quant.scale.size
            and np.array_equal(a.quant.scale.astype(np.float32), b.quant.scale.astype(np.float32))
            and np.array_equal(a.quant.zero_point, b.quant.zero_point))


def kind_of(graph: Graph, op: Op, int16: bool = False) -> str:
    """'float' when the op's data tensors are all float32, 'quant' when they are all int8 or all uint8 (or, for
    an op TFLite Micro runs in 16x8, `int16`, all int16), else unsupported."""
    data = [graph.tensor(n) for n in op.inputs[:1] + op.outputs if n]
    if op.kind in ("add", "sub", "mul", "concat"):
        data = [graph.tensor(n) for n in op.inputs + op.outputs if n]
    dtypes = {t.dtype for t in data}
    if dtypes == {"float32"}:
        return "float"
    if dtypes <= set(QUANTIZED_16 if int16 else QUANTIZED) and len(dtypes) == 1:
        return "quant"
    raise unsupported(op, f"tensor dtypes {sorted(dtypes)} are not a supported combination")


def out_hw_of(out: Tensor) -> tuple[int, int]:
    return out.shape[1], out.shape[2]


def check_window(op: Op, x: Tensor, out: Tensor, kernel, stride, dilation, pads) -> None:
    """The output size the explicit pads imply must be the output tensor's."""
    for i, (size, k, s, d, before, after) in enumerate(zip(x.shape[1:3], kernel, stride, dilation,
                                                           pads[:2], pads[2:])):
        span = (k - 1) * d + 1
        expected = (size + before + after - span) // s + 1
        if expected != out.shape[1 + i]:
            raise UserError(f"{where(op)}: input {x.shape}, kernel {tuple(kernel)}, stride {tuple(stride)}, "
                            f"dilation {tuple(dilation)} and pads {tuple(pads)} give an output of "
                            f"{expected} along axis {1 + i}, but the output tensor {out.name!r} has shape "
                            f"{out.shape}")


def padded(x: np.ndarray, out_hw, stride, dilation, kernel, pads, fill) -> np.ndarray:
    """x (N, H, W, C) embedded in a canvas covering every input position the windows touch; positions outside
    the input hold `fill`. Windows then start at canvas[oy * sy + ky * dy, ox * sx + kx * dx]."""
    n, h, w, c = x.shape
    span_h = (kernel[0] - 1) * dilation[0] + 1
    span_w = (kernel[1] - 1) * dilation[1] + 1
    top, need_h = -pads[0], (out_hw[0] - 1) * stride[0] + span_h
    left, need_w = -pads[1], (out_hw[1] - 1) * stride[1] + span_w
    canvas = np.full((n, need_h, need_w, c), fill, dtype=x.dtype)
    y0, y1 = max(0, top), min(h, top + need_h)
    x0, x1 = max(0, left), min(w, left + need_w)
    if y1 > y0 and x1 > x0:
        canvas[:, y0 - top:y1 - top, x0 - left:x1 - left, :] = x[:, y0:y1, x0:x1, :]
    return canvas


def unpadded(canvas: np.ndarray, x_shape, pads) -> np.ndarray:
    """The adjoint of `padded`: the part of a canvas-shaped array that lies on the input x (shape `x_shape`),
    positions outside it dropped (a gradient over the canvas becomes one over x)."""
    n, h, w, c = x_shape
    top, left = -pads[0], -pads[1]
    out = np.zeros(x_shape, dtype=canvas.dtype)
    y0, y1 = max(0, top), min(h, top + canvas.shape[1])
    x0, x1 = max(0, left), min(w, left + canvas.shape[2])
    if y1 > y0 and x1 > x0:
        out[:, y0:y1, x0:x1, :] = canvas[:, y0 - top:y1 - top, x0 - left:x1 - left, :]
    return out


def taps(canvas: np.ndarray, out_hw, stride, dilation, kernel):
    """Yield (ky, kx, view) where view[n, oy, ox, c] = canvas[n, oy*sy + ky*dy, ox*sx + kx*dx, c]."""
    oh, ow = out_hw
    sy, sx = stride
    for ky in range(kernel[0]):
        for kx in range(kernel[1]):
            y0, x0 = ky * dilation[0], kx * dilation[1]
            yield ky, kx, canvas[:, y0:y0 + (oh - 1) * sy + 1:sy, x0:x0 + (ow - 1) * sx + 1:sx, :]


def im2col(canvas: np.ndarray, out_hw, stride, dilation, kernel) -> np.ndarray:
    """(N, OH, OW, KH, KW, C) patches of the canvas."""
    views = [v for _, _, v in taps(canvas, out_hw, stride, dilation, kernel)]
    stacked = np.stack(views, axis=3)  # (N, OH, OW, KH*KW, C)
    n, oh, ow, _, c = stacked.shape
    return stacked.reshape(n, oh, ow, kernel[0], kernel[1], c)


def float_activation(y, activation: str):
    if activation == "none":
        return y
    if activation == "relu":
        return np.maximum(y, np.float32(0))
    if activation == "relu6":
        return np.clip(y, np.float32(0), np.float32(6))
    if activation == "relu_n1_to_1":
        return np.clip(y, np.float32(-1), np.float32(1))
    raise UserError(f"unknown fused activation {activation!r}")


def activation_grad(y: np.ndarray, activation: str) -> np.ndarray:
    """d activation / d pre-activation at the float output y of a fused activation (1 where it passes its input,
    0 where it clamps), for the float ops' vector-Jacobian products (OpDef.vjp)."""
    if activation == "none":
        return np.ones_like(y)
    lo, hi = {"relu": (0.0, np.inf), "relu6": (0.0, 6.0), "relu_n1_to_1": (-1.0, 1.0)}[activation]
    return ((y > lo) & (y < hi)).astype(y.dtype)


def unbroadcast(grad: np.ndarray, shape) -> np.ndarray:
    """The adjoint of numpy broadcasting: `grad` summed over the axes along which an operand of `shape` was
    broadcast to grad's shape."""
    shape = tuple(shape)
    extra = grad.ndim - len(shape)
    g = grad.sum(axis=tuple(range(extra))) if extra > 0 else grad
    axes = tuple(i for i, s in enumerate(shape) if s == 1 and g.shape[i] != 1)
    return (g.sum(axis=axes, keepdims=True) if axes else g).reshape(shape)


def require_same_quant(graph, op):
    x_t, out_t = graph.tensor(op.inputs[0]), graph.tensor(op.outputs[0])
    if x_t.dtype != out_t.dtype:
        raise unsupported(op, f"input dtype {x_t.dtype} differs from output dtype {out_t.dtype}")
    if x_t.dtype in QUANTIZED_16 and not same_quant(x_t, out_t):
        raise unsupported(op, "input and output quantization differ (this op moves values without rescaling "
                          "them, as TFLite's does); insert a quantize op")


def require_moved_values(graph, op, names):
    """Every tensor of `names` has the dtype and quantization of the first: the op moves values without
    rescaling them (PACK's inputs and output, SPLIT's input and outputs, GATHER's data)."""
    first = graph.tensor(names[0])
    for n in names[1:]:
        t = graph.tensor(n)
        if t.dtype != first.dtype or not same_quant(t, first):
            raise unsupported(op, f"tensor {n!r} differs from {first.name!r} in dtype or quantization ({op.kind} "
                              "moves values without rescaling them)")


def weights_ok(x: Tensor, w: Tensor) -> bool:
    """Quantized weights the layer's input allows: int8/uint8, or int4 (TFLite's INT4: values -8..7, which TFLite
    Micro unpacks to int8 in Prepare and runs the int8 kernel on) with int8 input only."""
    return w.dtype in QUANTIZED or (w.dtype == "int4" and x.dtype == "int8")


def weight_zero_point(op: Op, w: Tensor, channel_axis: int):
    """The weights' zero point: an int, or a vector along the output channels (whose axis is checked)."""
    q = w.quant
    if q.per_channel or q.zero_point.size > 1:
        axis = channel_axis if q.axis is None else q.axis % len(w.shape)
        if axis != channel_axis or q.scale.size not in (1, w.shape[channel_axis]):
            raise unsupported(op, f"weights {w.name!r} are quantized per channel along axis {q.axis} with "
                              f"{q.scale.size} scales; {op.kind} needs one scale per output channel "
                              f"(axis {channel_axis}, {w.shape[channel_axis]} channels)")
    zp = q.zero_point
    return int(zp[0]) if zp.size == 1 else i64(zp)


def kind_of_all(graph: Graph, op: Op) -> str:
    """kind_of over every input and output of a binary elementwise op (MINIMUM, MAXIMUM, SQUARED_DIFFERENCE,
    DIV, PRELU): 'float' when all are float32, 'quant' when all are the same 8-bit type."""
    dtypes = {graph.tensor(n).dtype for n in op.inputs + op.outputs if n}
    if dtypes == {"float32"}:
        return "float"
    if dtypes <= set(QUANTIZED) and len(dtypes) == 1:
        return "quant"
    raise unsupported(op, f"tensor dtypes {sorted(dtypes)} are not a supported combination")


def require_int8(op: Op, t: Tensor, role: str) -> None:
    """The int8 arithmetic of TFLite Micro's kernels; uint8 (TFLite's legacy scheme) has no such kernel there."""
    if t.dtype != "int8":
        raise unsupported(op, f"{role} tensor {t.name!r} is {t.dtype}; TFLite Micro runs this op on int8 (and "
                          "float32) tensors only")


def int8_operands(graph: Graph, op: Op, roles: tuple[str, ...], qp=qparams) -> list:
    """(scale, zero point) of the op's first len(roles) - 1 inputs and its output, each required to be int8 (the
    int8-only kernels of TFLite Micro); `qp` reads one tensor's (the kernels' int8_qparams, or qparams)."""
    tensors = [graph.tensor(n) for n in op.inputs[:len(roles) - 1]] + [graph.tensor(op.outputs[0])]
    for t, role in zip(tensors, roles):
        require_int8(op, t, role)
    return [qp(op, t, role) for t, role in zip(tensors, roles)]


@dataclass(frozen=True)
class RequantClamp:
    """The elementwise arithmetic TFLite Micro's quantized RELU, RELU6 and ABS share (int8 and int16):
    v = x - in_zp, |v| when take_abs, MultiplyByQuantizedMultiplier(v, multiplier, shift) when multiplier is not
    None, then v + out_zp clamped to [lo, hi]."""
    in_zp: int
    out_zp: int
    multiplier: int | None
    shift: int
    lo: int
    hi: int
    take_abs: bool = False

    def __call__(self, x) -> np.ndarray:
        v = i64(x) - self.in_zp
        if self.take_abs:
            v = np.abs(v)
        if self.multiplier is not None:
            v = multiply_by_quantized_multiplier(v, self.multiplier, self.shift)
        return np.minimum(np.maximum(v + self.out_zp, self.lo), self.hi)


def quantized_operands(graph: Graph, op: Op, dtypes=("int8", "int16")) -> list:
    """(scale, zero point) of a unary op's input and output, both of one dtype among `dtypes`; int16 takes zero
    point 0 (TFLite's 16x8 scheme)."""
    x_t, y_t = graph.tensor(op.inputs[0]), graph.tensor(op.outputs[0])
    if x_t.dtype not in dtypes or y_t.dtype != x_t.dtype:
        raise unsupported(op, f"input {x_t.dtype} and output {y_t.dtype}: TFLite Micro runs this op on "
                          f"{' or '.join(dtypes)} tensors of one type")
    q = [qparams(op, x_t, "input"), qparams(op, y_t, "output")]
    if x_t.dtype == "int16" and (q[0][1] != 0 or q[1][1] != 0):
        raise unsupported(op, "int16 tensors take zero point 0 (TFLite's 16x8 scheme)")
    return q
