"""The graph IR every stage shares.

A `Graph` is a list of `Op`s in execution order over named `Tensor`s. Layout is NHWC everywhere, shapes are
static, and a tensor's integer meaning is carried by its `Quant` (real = scale * (q - zero_point)).

Weight layouts (TFLite's, so an imported TFLite model needs no transposition):
  conv2d            weights (out_c, kh, kw, in_c)
  depthwise_conv2d  weights (1, kh, kw, in_c * depth_multiplier)
  fully_connected   weights (out_c, in_c)

This module imports nothing of mcutool.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

DTYPE_BYTES = {"int8": 1, "uint8": 1, "int16": 2, "int32": 4, "int64": 8, "float32": 4, "bool": 1,
               "uint32": 4,  # uint32: bit-packed binary activations/weights (DESIGN.md §8)
               "int4": 1}  # int4: weights only, two per byte when stored (Tensor.nbytes, pack_int4); data holds
#                           the values -8..7 as int8, one per element, so every reference reads them as int8 values


def pack_int4(values: np.ndarray) -> np.ndarray:
    """TFLite's INT4 storage: the flattened values two per byte, the first in the low nibble (an odd count
    leaves the last high nibble 0); uint8, (size + 1) // 2 bytes."""
    v = np.asarray(values, dtype=np.int64).reshape(-1)
    if v.size and (v.min() < -8 or v.max() > 7):
        raise ValueError(f"int4 values must lie in -8..7, not {int(v.min())}..{int(v.max())}")
    nib = (v & 0xF).astype(np.uint8)
    if nib.size % 2:
        nib = np.append(nib, np.uint8(0))
    return (nib[0::2] | (nib[1::2] << 4)).astype(np.uint8)


def unpack_int4(packed: np.ndarray, count: int) -> np.ndarray:
    """The inverse of pack_int4: `count` int8 values (sign-extended nibbles, low nibble first)."""
    b = np.asarray(packed, dtype=np.uint8).reshape(-1)
    nib = np.empty(b.size * 2, dtype=np.int16)
    nib[0::2], nib[1::2] = b & 0xF, b >> 4
    return np.where(nib >= 8, nib - 16, nib)[:count].astype(np.int8)

# Fused activations an op may carry; for quantized ops they become clamps of the output range.
ACTIVATIONS = ("none", "relu", "relu6", "relu_n1_to_1")
# The requantization of an int8 conv / depthwise conv / fully connected accumulator (mcutool/ops/conv.py
# weighted_op_multipliers): "tflite" is TFLite's MultiplyByQuantizedMultiplier with its two roundings (a rounding
# high multiply, then a rounding right shift); "single" rounds once (multiplier shift 0), which is what a float
# requantization round(acc * scale) does -- the meaning of an ONNX QDQ / QLinear model (onnxruntime's kernels).
ROUNDINGS = ("tflite", "single")


@dataclass
class Quant:
    """Affine quantization: real = scale * (q - zero_point); per channel along `axis` when it has several values."""

    scale: np.ndarray
    zero_point: np.ndarray
    axis: int | None = None

    def __post_init__(self):
        self.scale = np.atleast_1d(np.asarray(self.scale, dtype=np.float64))
        self.zero_point = np.atleast_1d(np.asarray(self.zero_point, dtype=np.int64))
        if self.zero_point.size == 1 and self.scale.size > 1:
            self.zero_point = np.full(self.scale.shape, int(self.zero_point[0]), dtype=np.int64)

    @property
    def per_channel(self) -> bool:
        return self.scale.size > 1

    def to_json(self) -> dict:
        d = {"scale": [float(s) for s in self.scale], "zero_point": [int(z) for z in self.zero_point]}
        if self.per_channel:
            d["axis"] = self.axis
        return d


@dataclass
class Tensor:
    name: str
    shape: tuple[int, ...]
    dtype: str
    quant: Quant | None = None
    data: np.ndarray | None = None  # set for constants (weights, biases, shape operands)
    variable: bool = False  # state of a stateful op (SVDF, LSTM): persists across inferences, outside the arena

    def __post_init__(self):
        self.shape = tuple(int(d) for d in self.shape)
        if self.dtype not in DTYPE_BYTES:
            raise ValueError(f"tensor {self.name!r}: unknown dtype {self.dtype!r}")

    @property
    def is_const(self) -> bool:
        return self.data is not None

    @property
    def size(self) -> int:
        return int(np.prod(self.shape, dtype=np.int64))

    @property
    def nbytes(self) -> int:
        if self.dtype == "int4":  # stored packed, two values per byte
            return (self.size + 1) // 2
        return self.size * DTYPE_BYTES[self.dtype]


@dataclass
class Conv2DAttrs:
    stride: tuple[int, int] = (1, 1)
    dilation: tuple[int, int] = (1, 1)
    pads: tuple[int, int, int, int] = (0, 0, 0, 0)  # top, left, bottom, right
    activation: str = "none"
    rounding: str = field(default="tflite", kw_only=True)  # ROUNDINGS: how the accumulator is requantized


@dataclass
class DepthwiseConv2DAttrs(Conv2DAttrs):
    depth_multiplier: int = 1


@dataclass
class TransposeConv2DAttrs:
    """TRANSPOSE_CONV: input pixel (iy, ix) adds w[:, ky, kx, :] into output (iy * sy - top + ky, ix * sx - left
    + kx); contributions falling outside the output are dropped. pads = (top, left, bottom, right), where
    bottom / right = the rows / columns of the full scatter ((in - 1) * s + k) cut after the output (negative
    when the output extends past it: those positions get the bias alone)."""
    stride: tuple[int, int] = (1, 1)
    pads: tuple[int, int, int, int] = (0, 0, 0, 0)
    activation: str = "none"


@dataclass
class FullyConnectedAttrs:
    activation: str = "none"
    rounding: str = field(default="tflite", kw_only=True)  # ROUNDINGS


@dataclass
class Pool2DAttrs:
    filter: tuple[int, int] = (1, 1)
    stride: tuple[int, int] = (1, 1)
    pads: tuple[int, int, int, int] = (0, 0, 0, 0)  # top, left, bottom, right
    activation: str = "none"
    count_include_pad: bool = False  # average pool only; TFLite and ONNX's default divide by the valid count


@dataclass
class ElementwiseAttrs:  # add, mul
    activation: str = "none"
    rounding: str = field(default="tflite", kw_only=True)  # ROUNDINGS (mul; add keeps TFLite's arithmetic)


@dataclass
class ConcatAttrs:
    axis: int = -1
    activation: str = "none"


@dataclass
class SoftmaxAttrs:
    beta: float = 1.0


@dataclass
class LeakyReluAttrs:
    alpha: float = 0.2  # the slope for x < 0, as the model stores it (float32)


@dataclass
class GeluAttrs:
    approximate: bool = False  # the tanh form instead of erf


@dataclass
class StridedSliceAttrs:
    """TFLite's STRIDED_SLICE with constant begin/end/strides (one value per input axis) and its masks (bit i is
    axis i): begin_mask / end_mask ignore begin[i] / end[i], shrink_axis_mask drops axis i (taking begin[i]).
    One entry per input axis: importers make TensorFlow's sparse spec (ellipsis, new axes) dense
    (mcutool.ops.strided_slice.dense_spec)."""
    begin: tuple[int, ...] = ()
    end: tuple[int, ...] = ()
    strides: tuple[int, ...] = ()
    begin_mask: int = 0
    end_mask: int = 0
    shrink_axis_mask: int = 0


@dataclass
class PadAttrs:
    pads: tuple[tuple[int, int], ...] = ()  # (before, after) per dimension; pads with the output zero point


@dataclass
class TransposeAttrs:
    perm: tuple[int, ...] = ()


@dataclass
class MeanAttrs:
    axes: tuple[int, ...] = ()
    keep_dims: bool = True
    rounding: str = field(default="tflite", kw_only=True)  # ROUNDINGS


# -- data movement (ops8b): values moved, never rescaled ----------------------------------------------------------
@dataclass
class SliceAttrs:  # slice
    begin: tuple[int, ...] = ()
    size: tuple[int, ...] = ()  # every extent resolved (TFLite's -1 "to the end" made explicit)


@dataclass
class GatherAttrs:  # gather: indices along `axis`; the first batch_dims axes of input and indices are paired
    axis: int = 0
    batch_dims: int = 0


@dataclass
class BlockAttrs:  # depth_to_space, space_to_depth
    block_size: int = 2


@dataclass
class ResizeAttrs:  # resize_nearest_neighbor, resize_bilinear (the output size is the output tensor's H, W)
    align_corners: bool = False
    half_pixel_centers: bool = False


@dataclass
class BatchMatMulAttrs:  # batch_matmul: output[..., i, j] = sum_k lhs[..., i, k] * rhs[..., k, j]
    adj_x: bool = False  # lhs stored transposed ([..., k, i])
    adj_y: bool = False  # rhs stored transposed ([..., j, k])
    rounding: str = field(default="tflite", kw_only=True)  # ROUNDINGS


@dataclass
class AxisAttrs:  # split (SPLIT, SPLIT_V: the outputs' extents along the axis say where), pack, unpack
    axis: int = 0


@dataclass
class PatchStageAttrs:
    """A patch-based stage (MCUNetV2): the ops it replaces, run tile by tile. `plan` is a
    mcutool.schedule.patch.PatchPlan (kept untyped here: the IR imports nothing of mcutool)."""
    plan: Any = None


@dataclass
class LutAttrs:
    """An int8 -> int8 lookup table (256 entries, indexed by the input value + 128): ops whose output depends on
    one input value alone, fused at compile time (schedule/fuse.py: swish x * logistic(x))."""
    table: tuple[int, ...] = ()


@dataclass
class NoAttrs:  # reshape, logistic, quantize, dequantize, sign
    pass


@dataclass
class UnsupportedAttrs:
    """A layer mcutool cannot run, kept so `inspect` can list the whole model: `op` is the operator as the model
    file names it (e.g. "TANH", "custom op ethos-u", "LSTM"), `reason` why it is refused when that is known."""
    op: str = ""
    reason: str = ""


# -- binary (1-bit) layers, DESIGN.md §8 ----------------------------------------------------------------------
# A binary tensor holds values in {-1, +1} packed 32 channels per uint32 along its last (channel) axis: value
# -1 is bit 1, +1 is bit 0 (Larq's convention), channel c is bit c % 32 of word c // 32, and the unused high
# bits of the last word are 0. Its IR shape is (N, H, W, ceil(C / 32)) with dtype "uint32"; C itself is an
# attribute of the ops that read or write it (`channels`).
#
#   binary_pack        int8 x -> bits: sign of x against its zero point, Sign(0) = +1.
#   binary_pack_conv2d int8 conv (x, int8 w (out, kh, kw, in), int32 bias, int32 thresholds) -> bits: the int32
#                      accumulator acc (bias included) gives bit 1 (= -1) where acc < threshold[c]. The fused
#                      first layer: conv + BatchNorm + Sign + packing, the int8 output never exists.
#   binary_conv2d      bits x, packed w (out, kh, kw, ceil(in / 32)) -> dot = sum over the *valid* taps of
#                      (in - 2 * popcount(x XOR w)); padded positions are skipped, which is what a zero-padded
#                      float conv computes (their products are 0). Output either
#                        bits (dtype uint32; inputs x, w, thresholds int32 (out,), flip uint32 packed (words,)):
#                          bit = (dot < threshold[c]) XOR flip[c]  (BatchNorm + Sign folded; flip when the
#                          folded scale is negative), or
#                        int8 (dtype int8; inputs x, w, bias int32 (out,)): the weight tensor's per-channel
#                          scale is alpha (w = alpha * (+-1)), the input's scale is 1, so
#                          out = MultiplyByQuantizedMultiplier(dot + bias, alpha[c] / s_out) + zp_out, clamped.
#                      A binary fully connected layer is a binary_conv2d with a 1x1 kernel over a 1x1 image: its
#                      packed input and output may be 2-D (N, words) / (N, C), read as (N, 1, 1, ...).
#   binary_max_pool2d  bits -> bits: the max of +-1 values is -1 only if all are -1: AND of the bits (padded
#                      positions skipped).


@dataclass
class BinaryPackAttrs:
    channels: int = 0  # real channel count of the packed output


@dataclass
class BinaryConv2DAttrs(Conv2DAttrs):
    in_channels: int = 0
    out_channels: int = 0


@dataclass
class BinaryPool2DAttrs(Pool2DAttrs):
    channels: int = 0


# op kind -> the attribute class it carries. Operators register their kinds (mcutool/ops/, imported by the
# package's __init__); the scheduler's own kinds are listed here.
OP_ATTRS: dict[str, type] = {
    "patch_stage": PatchStageAttrs,  # made by the scheduler (schedule/patch.py), never by an importer
    "unsupported": UnsupportedAttrs,  # only in a graph imported for inspection (frontends.load_model)
}


def register_kind(kind: str, attrs: type) -> None:
    """Make `kind` a valid Op kind carrying `attrs` (called by mcutool.ops.register)."""
    if OP_ATTRS.get(kind, attrs) is not attrs:
        raise ValueError(f"op kind {kind!r} already carries {OP_ATTRS[kind].__name__}")
    OP_ATTRS[kind] = attrs


BINARY_KINDS = ("binary_pack", "binary_pack_conv2d", "binary_conv2d", "binary_max_pool2d")


def packed_words(channels: int) -> int:
    """uint32 words holding `channels` bits."""
    return (int(channels) + 31) // 32


@dataclass
class Op:
    name: str  # the layer's name, unique in the graph
    kind: str  # a key of OP_ATTRS
    inputs: list[str]  # tensor names; "" for an absent optional input (e.g. no bias)
    outputs: list[str]
    attrs: Any = None

    def __post_init__(self):
        if self.kind not in OP_ATTRS:
            raise ValueError(f"op {self.name!r}: unknown kind {self.kind!r}")
        if self.attrs is None:
            self.attrs = OP_ATTRS[self.kind]()
        if not isinstance(self.attrs, OP_ATTRS[self.kind]):
            raise TypeError(f"op {self.name!r} ({self.kind}) needs {OP_ATTRS[self.kind].__name__}, "
                            f"got {type(self.attrs).__name__}")


@dataclass
class Graph:
    name: str
    tensors: dict[str, Tensor] = field(default_factory=dict)
    ops: list[Op] = field(default_factory=list)
    inputs: list[str] = field(default_factory=list)
    outputs: list[str] = field(default_factory=list)
    # op name -> the layer's name in the source file, where the frontend names ops otherwise (ONNX: by kind and
    # order); for messages and inspect. Graphs the later stages rebuild do not carry it.
    sources: dict[str, str] = field(default_factory=dict)

    def add_tensor(self, t: Tensor) -> Tensor:
        if t.name in self.tensors:
            raise ValueError(f"duplicate tensor name {t.name!r}")
        self.tensors[t.name] = t
        return t

    def tensor(self, name: str) -> Tensor:
        return self.tensors[name]

    def op_inputs(self, op: Op) -> list[Tensor | None]:
        return [self.tensors[n] if n else None for n in op.inputs]

    def activations(self) -> list[Tensor]:
        """Tensors that live in RAM at run time: everything that is not a constant."""
        return [t for t in self.tensors.values() if not t.is_const]

    def state_tensors(self) -> list[Tensor]:
        """Variable tensors: the persistent state of stateful ops, kept outside the arena."""
        return [t for t in self.tensors.values() if t.variable]

    def producers(self) -> dict[str, Op]:
        return {out: op for op in self.ops for out in op.outputs}

    def consumers(self) -> dict[str, list[Op]]:
        users: dict[str, list[Op]] = {n: [] for n in self.tensors}
        for op in self.ops:
            for n in op.inputs:
                if n:
                    users[n].append(op)
        return users

    def validate(self) -> None:
        """Check that the graph is well formed: ops in a valid order, names resolve, shapes static."""
        defined = {n for n, t in self.tensors.items() if t.is_const or t.variable} | set(self.inputs)
        names = set()
        for op in self.ops:
            if op.name in names:
                raise ValueError(f"duplicate op name {op.name!r}")
            names.add(op.name)
            for n in op.inputs:
                if n and n not in defined:
                    raise ValueError(f"op {op.name!r} reads {n!r} before it is produced")
            for n in op.outputs:
                if n not in self.tensors:
                    raise ValueError(f"op {op.name!r} writes unknown tensor {n!r}")
                defined.add(n)
        for n in self.outputs:
            if n not in defined:
                raise ValueError(f"graph output {n!r} is never produced")
        for t in self.tensors.values():
            if any(d <= 0 for d in t.shape):
                raise ValueError(f"tensor {t.name!r} has a non-static shape {t.shape}")


def op_macs(graph: Graph, op: Op) -> int:
    """Multiply-accumulates of conv, transpose conv, depthwise, fully connected and batch matmul ops (0 for every
    other op)."""
    if op.kind == "conv2d":
        w = graph.tensor(op.inputs[1])
        return graph.tensor(op.outputs[0]).size * int(np.prod(w.shape[1:]))
    if op.kind in ("binary_conv2d", "binary_pack_conv2d"):  # one MAC per (binary) weight and output position
        out = graph.tensor(op.outputs[0])
        w = graph.tensor(op.inputs[1])
        return int(np.prod(out.shape[:3])) * op.attrs.out_channels * w.shape[1] * w.shape[2] * op.attrs.in_channels
    if op.kind == "transpose_conv2d":  # the (input pixel, tap) pairs that land inside the output
        x, w, out = graph.tensor(op.inputs[0]), graph.tensor(op.inputs[1]), graph.tensor(op.outputs[0])
        pairs = 1
        for axis in (1, 2):
            stride, pad = op.attrs.stride[axis - 1], op.attrs.pads[axis - 1]
            pairs *= sum(1 for i in range(x.shape[axis]) for k in range(w.shape[axis])
                         if 0 <= i * stride - pad + k < out.shape[axis])
        return x.shape[0] * pairs * w.shape[0] * w.shape[3]
    if op.kind == "depthwise_conv2d":
        w = graph.tensor(op.inputs[1])
        return graph.tensor(op.outputs[0]).size * w.shape[1] * w.shape[2]
    if op.kind == "fully_connected":
        w = graph.tensor(op.inputs[1])
        return graph.tensor(op.outputs[0]).size * w.shape[1]
    if op.kind == "batch_matmul":  # each output element sums `depth` products
        lhs = graph.tensor(op.inputs[0])
        return graph.tensor(op.outputs[0]).size * lhs.shape[-2 if op.attrs.adj_x else -1]
    return 0


def op_weight_bytes(graph: Graph, op: Op) -> int:
    """Bytes of the constant operands an op reads (weights, biases, tables)."""
    return sum(t.nbytes for t in graph.op_inputs(op) if t is not None and t.is_const)
