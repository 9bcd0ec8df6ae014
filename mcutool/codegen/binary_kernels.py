"""Code for the binary op kinds (DESIGN.md §8): parameter structs of runtime/mcu_binary*.c and their calls.

As for the int8 runtime kernels (runtime_params.py), everything that depends only on shapes and constants is
computed here (weights packed by the binarize pass, thresholds, requantization pairs from the reference's
helpers) and the firmware only touches data.
"""
from __future__ import annotations

import numpy as np

from ..errors import UserError
from ..ir import Op
from ..ops.binary import pack_bits, unpack_bits
from ..ops.conv import conv_output_multipliers
from ..ops.fixedpoint import activation_range
from ..ops.kernel import CRef, dims4, int8_qparams
from . import runtime_params as rp
from .model import Context, LayerCode, emitter

HEADERS = ("mcu_kernels.h", "mcu_binary.h")
BITSLICE_PLANES = 12  # MCU_BINARY_BITSLICE_PLANES
SMALL_PATCH = 12      # MCU_BINARY_SMALL_PATCH


def _geometry(op: Op) -> dict:
    a = op.attrs
    if tuple(a.dilation if hasattr(a, "dilation") else (1, 1)) != (1, 1):
        raise UserError(f"layer {op.name!r} ({op.kind}): dilated binary convolutions have no kernel yet.")
    top, left = int(a.pads[0]), int(a.pads[1])
    kh, kw = a.filter if hasattr(a, "filter") else (None, None)
    return {"stride_h": int(a.stride[0]), "stride_w": int(a.stride[1]), "pad_top": top, "pad_left": left,
            **({"filter_h": int(kh), "filter_w": int(kw)} if kh is not None else {})}


def _dims(shape, channels: int) -> dict:
    n, h, w, _ = _image_shape(shape)
    return {"n": int(n), "h": int(h), "w": int(w), "c": int(channels)}


def _u32_array(name: str, values: list[int]) -> str:
    items = [f"0x{v:08x}u" for v in values]
    lines = [", ".join(items[i:i + 8]) for i in range(0, len(items), 8)]
    return f"static const uint32_t {name}[{len(items)}] = {{\n    " + ",\n    ".join(lines) + "\n};\n"


def _struct(struct: str, prefix: str, fields: dict) -> str:
    return f"static const {struct} {prefix}_params = {rp.c_struct_init(fields, prefix)};\n"


def _call(function: str, prefix: str, x: str, y: str) -> str:
    return f"(void){function}(&{prefix}_params, {x}, {y});"


@emitter("binary_pack")
def binary_pack(ctx: Context, op: Op) -> LayerCode:
    p = ctx.prefix(op)
    x = ctx.graph.tensor(op.inputs[0])
    _, zp = int8_qparams(op, x, "input")
    shape = dims4(x.shape)
    fields = {"input": _dims(shape, op.attrs.channels), "zero_point": zp}
    return LayerCode(op.name, op.kind, _struct("mcu_binary_pack_params", p, fields),
                     _call("mcu_binary_pack_s8", p, ctx.ptr(op.inputs[0], "const int8_t"),
                           ctx.ptr(op.outputs[0], "uint32_t")), "template", HEADERS)


@emitter("binary_pack_conv2d")
def binary_pack_conv2d(ctx: Context, op: Op) -> LayerCode:
    g, p = ctx.graph, ctx.prefix(op)
    x, w, bias, thr = (g.tensor(n) for n in op.inputs)
    _, zp = int8_qparams(op, x, "input")
    a = op.attrs
    if w.shape[1] * w.shape[2] * w.shape[3] > 512:
        raise UserError(f"layer {op.name!r} ({op.kind}): a {w.shape[1]}x{w.shape[2]}x{w.shape[3]} window exceeds "
                        "the fused first layer's 512-value patch (MCU_BINARY_MAX_PATCH).")
    k = w.shape[1] * w.shape[2] * w.shape[3]
    small = k <= SMALL_PATCH  # the unrolled path: weights pre-widened to int16, zero-padded to 12 per channel
    fields = {"input": _dims(x.shape, x.shape[3]), "output": _dims(g.tensor(op.outputs[0]).shape, a.out_channels),
              "filter_h": w.shape[1], "filter_w": w.shape[2], **_geometry(op), "input_offset": -zp,
              "weights": None if small else CRef("weights"), "weights16": CRef("weights16") if small else None,
              "bias": CRef("bias"), "thresholds": CRef("thresholds")}
    if small:
        w16 = np.zeros((w.shape[0], SMALL_PATCH), np.int64)
        w16[:, :k] = w.data.reshape(w.shape[0], k)
        weights = rp.c_array(f"{p}_weights16", "int16_t", [int(v) for v in w16.reshape(-1)], p)
    else:
        weights = rp.c_array(f"{p}_weights", "int8_t", [int(v) for v in w.data.reshape(-1)], p)
    defs = (weights
            + rp.c_array(f"{p}_bias", "int32_t", [int(v) for v in bias.data], p)
            + rp.c_array(f"{p}_thresholds", "int32_t", [int(v) for v in thr.data], p)
            + _struct("mcu_binary_pack_conv2d_params", p, fields))
    return LayerCode(op.name, op.kind, defs, _call("mcu_binary_pack_conv2d_s8", p,
                                                   ctx.ptr(op.inputs[0], "const int8_t"),
                                                   ctx.ptr(op.outputs[0], "uint32_t")), "template", HEADERS)


@emitter("binary_conv2d")
def binary_conv2d(ctx: Context, op: Op) -> LayerCode:
    g, p = ctx.graph, ctx.prefix(op)
    x, w, y = g.tensor(op.inputs[0]), g.tensor(op.inputs[1]), g.tensor(op.outputs[0])
    a = op.attrs
    fields = {"input": _dims(x.shape, a.in_channels), "output": _dims(y.shape, a.out_channels),
              "filter_h": w.shape[1], "filter_w": w.shape[2], **_geometry(op), "weights": CRef("weights")}
    if w.shape[1] * w.shape[2] * w.shape[3] > 128:
        raise UserError(f"layer {op.name!r} ({op.kind}): a {w.shape[1]}x{w.shape[2]} window of {a.in_channels} "
                        "channels exceeds the binary kernel's 128-word window (MCU_BINARY_MAX_WINDOW).")
    defs = _u32_array(f"{p}_weights", [int(v) for v in w.data.reshape(-1)])
    if (a.in_channels % 32 == 0 and a.out_channels % 32 == 0
            and w.shape[1] * w.shape[2] * a.in_channels < (1 << BITSLICE_PLANES) - 1):
        return _bitslice_conv2d(ctx, op)
    if y.dtype == "uint32":
        thr, flip = g.tensor(op.inputs[2]), g.tensor(op.inputs[3])
        defs += rp.c_array(f"{p}_thresholds", "int32_t", [int(v) for v in thr.data], p)
        defs += _u32_array(f"{p}_flip", [int(v) for v in flip.data.reshape(-1)])
        fields.update(thresholds=CRef("thresholds"), flip=CRef("flip"), bias=None, quant=None,
                      output_offset=0, act={"min": 0, "max": 0})
        function, out = "mcu_binary_conv2d_s1", ctx.ptr(op.outputs[0], "uint32_t")
    else:
        so, zo = int8_qparams(op, y, "output")
        mult, shift = conv_output_multipliers(1.0, w.quant.scale, so)
        lo, hi = activation_range(a.activation, so, zo, "int8")
        defs += rp.c_array(f"{p}_bias", "int32_t", [int(v) for v in g.tensor(op.inputs[2]).data], p)
        defs += rp.c_array(f"{p}_quant", "mcu_quant", [{"multiplier": int(m), "shift": int(s)}
                                                        for m, s in zip(mult, shift)], p)
        fields.update(thresholds=None, flip=None, bias=CRef("bias"), quant=CRef("quant"), output_offset=zo,
                      act={"min": lo, "max": hi})
        function, out = "mcu_binary_conv2d_s1_s8", ctx.ptr(op.outputs[0])
    defs += _struct("mcu_binary_conv2d_params", p, fields)
    return LayerCode(op.name, op.kind, defs, _call(function, p, ctx.ptr(op.inputs[0], "const uint32_t"), out),
                     "template", HEADERS)


def _image_shape(shape) -> tuple:
    """(N, H, W, C) of a 4-D shape; a 2-D (N, C) one (a binary fully connected layer) as (N, 1, 1, C)."""
    return tuple(shape) if len(shape) == 4 else (shape[0], 1, 1, shape[-1])


def _border_classes(out_len: int, in_len: int, kernel: int, stride: int, pad: int) -> tuple[list[int], list]:
    """Per output row (or column): the index of its (first valid tap, end of valid taps) class; the classes."""
    ranges = []
    for o in range(out_len):
        start = o * stride - pad
        ranges.append((max(0, -start), min(kernel, in_len - start)))
    classes = sorted(set(ranges))
    return [classes.index(r) for r in ranges], classes


def _mismatch_tables(bits: np.ndarray) -> np.ndarray:
    """The bit-lane kernels' lookup tables from weight bits (out, tap, c): for every window word n (tap, c // 32),
    group g of its 4 input bits (bits 4g..4g+3) and value idx of those bits, the bit-sliced count (0..4) of the
    output channels' mismatches with them, planes weight 1, 2, 4: uint32 (ocw, n, 8, 3, 16), bit j = output
    channel 32 * ocw + j (mcu_binary.h, MCU_BINARY_BITSLICE_TABLE)."""
    out, taps, cin = bits.shape
    w = bits.transpose(1, 2, 0).reshape(taps * cin // 32, 8, 4, out)       # (n, g, i, out)
    x = ((np.arange(16)[:, None] >> np.arange(4)) & 1).astype(bool)        # (idx, i): input bit i is -1
    count = (w[:, :, None] ^ x[None, None, :, :, None]).sum(axis=3)        # (n, g, idx, out)
    planes = (count[..., None] >> np.arange(3)) & 1                        # (n, g, idx, out, plane)
    return pack_bits(planes.transpose(0, 1, 4, 2, 3)).transpose(4, 0, 1, 2, 3)


def _bitslice_conv2d(ctx: Context, op: Op) -> LayerCode:
    """in_c % 32 == 0 and out_c % 32 == 0: the bit-lane kernels. With padded taps gathered as +1, a pixel of
    border pattern P has dot = N_all - 2 * count - corr[P], where corr is what P's padded taps add to dot
    (in_c - 2 * popcount of their weights, per output channel).
      bits out: bit = dot < thr <=> count >= floor((N_all - thr - corr) / 2) + 1 = k, stored bit-sliced;
      int8 out: acc = dot + bias = bias_p[P] - 2 * count with bias_p = bias + N_all - corr."""
    g, p, a = ctx.graph, ctx.prefix(op), op.attrs
    x, w, y = g.tensor(op.inputs[0]), g.tensor(op.inputs[1]), g.tensor(op.outputs[0])
    cin, cout = a.in_channels, a.out_channels
    _, kh, kw, _ = w.shape
    bits = unpack_bits(w.data, cin).reshape(cout, kh * kw, cin)          # (out, tap, c)
    tables = _mismatch_tables(bits)
    n_all = kh * kw * cin
    xs, ys = _image_shape(x.shape), _image_shape(y.shape)
    rows, row_classes = _border_classes(ys[1], xs[1], kh, a.stride[0], a.pads[0])
    cols, col_classes = _border_classes(ys[2], xs[2], kw, a.stride[1], a.pads[1])
    tap_sum = cin - 2 * bits.sum(axis=2)                                    # (out, tap): a +1 input's share
    corrs = []
    for ry in row_classes:
        for rx in col_classes:
            valid = np.zeros((kh, kw), bool)
            valid[ry[0]:ry[1], rx[0]:rx[1]] = True
            corrs.append(tap_sum[:, ~valid.reshape(-1)].sum(axis=1))
    fields = {"input": _dims(x.shape, cin), "output": _dims(y.shape, cout), "filter_h": kh, "filter_w": kw,
              **_geometry(op), "col_classes": len(col_classes), "tables": CRef("tables"),
              "row_class": CRef("row_class"), "col_class": CRef("col_class")}
    defs = (_u32_array(f"{p}_tables", [int(v) for v in tables.reshape(-1)])
            + rp.c_array(f"{p}_row_class", "uint8_t", rows, p) + rp.c_array(f"{p}_col_class", "uint8_t", cols, p))
    if y.dtype == "uint32":
        thr = g.tensor(op.inputs[2]).data.astype(np.int64)
        k_planes = []
        for corr in corrs:
            k = np.clip((n_all - thr - corr) // 2 + 1, 0, (1 << BITSLICE_PLANES) - 1)
            plane_bits = ((k[:, None] >> np.arange(BITSLICE_PLANES)) & 1).astype(bool)  # (out, plane)
            k_planes.append(pack_bits(plane_bits.T).T)                              # (ocw, plane)
        defs += (_u32_array(f"{p}_k", [int(v) for v in np.stack(k_planes).reshape(-1)])
                 + _u32_array(f"{p}_flip", [int(v) for v in g.tensor(op.inputs[3]).data.reshape(-1)]))
        fields.update(k=CRef("k"), flip=CRef("flip"), bias_p=None, quant=None, output_offset=0,
                      act={"min": 0, "max": 0})
        function, out = "mcu_binary_conv2d_bitslice_s1", ctx.ptr(op.outputs[0], "uint32_t")
    else:
        bias = g.tensor(op.inputs[2]).data.astype(np.int64)
        bias_p = np.stack([bias + n_all - corr for corr in corrs])
        so, zo = int8_qparams(op, y, "output")
        mult, shift = conv_output_multipliers(1.0, w.quant.scale, so)
        lo, hi = activation_range(a.activation, so, zo, "int8")
        defs += (rp.c_array(f"{p}_bias_p", "int32_t", [int(v) for v in bias_p.reshape(-1)], p)
                 + rp.c_array(f"{p}_quant", "mcu_quant", [{"multiplier": int(m), "shift": int(s)}
                                                          for m, s in zip(mult, shift)], p))
        fields.update(k=None, flip=None, bias_p=CRef("bias_p"), quant=CRef("quant"), output_offset=zo,
                      act={"min": lo, "max": hi})
        function, out = "mcu_binary_conv2d_bitslice_s1_s8", ctx.ptr(op.outputs[0])
    defs += _struct("mcu_binary_conv2d_bitslice_params", p, fields)
    return LayerCode(op.name, op.kind, defs, _call(function, p, ctx.ptr(op.inputs[0], "const uint32_t"), out),
                     "template", HEADERS)


@emitter("binary_max_pool2d")
def binary_max_pool2d(ctx: Context, op: Op) -> LayerCode:
    g, p = ctx.graph, ctx.prefix(op)
    x, y = g.tensor(op.inputs[0]), g.tensor(op.outputs[0])
    c = op.attrs.channels
    fields = {"input": _dims(x.shape, c), "output": _dims(y.shape, c), **_geometry(op)}
    return LayerCode(op.name, op.kind, _struct("mcu_binary_pool_params", p, fields),
                     _call("mcu_binary_max_pool2d_s1", p, ctx.ptr(op.inputs[0], "const uint32_t"),
                           ctx.ptr(op.outputs[0], "uint32_t")), "template", HEADERS)
