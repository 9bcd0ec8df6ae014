"""RESIZE_BILINEAR, int8 (`reference/resize_bilinear.h` ResizeBilinearInteger, which TFLite Micro runs for int8):
source coordinates in 10-bit fixed point, the four neighbours weighted in 20 bits and rounded half away from
zero (TFLite's default, not TFLITE_SINGLE_ROUNDING); float32 (reference_ops::ResizeBilinear) for calibration.
Input and output share scale and zero point. The per-row
and per-column coordinates (lower, upper, fraction) depend on sizes only: computed at compile time into tables
for runtime/mcu_resize_bilinear_s8.c.
"""
from __future__ import annotations

import numpy as np

from mcutool.ir import Graph, Op, ResizeAttrs
from mcutool.ops import register
from mcutool.ops.common import require_same_quant, unsupported
from mcutool.ops.fixedpoint import c_div, i64
from mcutool.ops.kernel import CRef, KernelParams, check_moved, dims
from mcutool.ops.resize_nearest_neighbor import check_resize

ONE = 1 << 10


def interpolation_tables(in_size: int, out_size: int, align_corners: bool,
                         half_pixel_centers: bool) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(lower, upper, fraction) per output coordinate: ComputeInterpolationValuesInteger, fraction =
    scaled - 1024 * lower (negative near the start with half-pixel centers, as in TFLite)."""
    if align_corners and out_size > 1:
        scale = (ONE * (in_size - 1) + (out_size - 1) // 2) // (out_size - 1)
    else:
        scale = (ONE * in_size + out_size // 2) // out_size
    v = np.arange(out_size, dtype=np.int64)
    scaled = v * scale + scale // 2 - (1 << 9) if half_pixel_centers else v * scale
    lower = np.maximum(c_div(scaled, ONE), 0)
    upper = np.minimum(c_div(scaled + ONE - 1, ONE), in_size - 1)
    return lower, upper, scaled - ONE * lower


def _tables(graph: Graph, op: Op):
    (_, ih, iw, _), (_, oh, ow, _) = check_resize(graph, op)
    a = op.attrs
    return (interpolation_tables(ih, oh, a.align_corners, a.half_pixel_centers),
            interpolation_tables(iw, ow, a.align_corners, a.half_pixel_centers))


def _float_coordinates(in_size: int, out_size: int, align_corners: bool, half_pixel_centers: bool):
    """reference_ops::ResizeBilinear's ComputeInterpolationValues in float32: (lower, upper, position)."""
    if align_corners and out_size > 1:
        scale = np.float32(in_size - 1) / np.float32(out_size - 1)
    else:
        scale = np.float32(in_size) / np.float32(out_size)
    v = np.arange(out_size, dtype=np.float32)
    pos = (v + np.float32(0.5)) * scale - np.float32(0.5) if half_pixel_centers else v * scale
    lower = np.maximum(np.floor(pos).astype(np.int64), 0)
    upper = np.minimum(np.ceil(pos).astype(np.int64), in_size - 1)
    return lower, upper, pos.astype(np.float32)


def _resize_bilinear_float(graph, op, x):
    """float32 RESIZE_BILINEAR (reference_ops::ResizeBilinear), for calibrating float models."""
    (_, ih, iw, _), (_, oh, ow, _) = check_resize(graph, op)
    a = op.attrs
    y0, y1, py = _float_coordinates(ih, oh, a.align_corners, a.half_pixel_centers)
    x0, x1, px = _float_coordinates(iw, ow, a.align_corners, a.half_pixel_centers)
    dy = (py - y0.astype(np.float32))[None, :, None, None]
    dx = (px - x0.astype(np.float32))[None, None, :, None]
    one = np.float32(1)
    x = np.asarray(x, np.float32)
    return (x[:, y0][:, :, x0] * (one - dy) * (one - dx) + x[:, y1][:, :, x0] * dy * (one - dx)
            + x[:, y0][:, :, x1] * (one - dy) * dx + x[:, y1][:, :, x1] * dy * dx).astype(np.float32)


def _reference_resize_bilinear(graph, op, args):
    require_same_quant(graph, op)
    dtype = graph.tensor(op.inputs[0]).dtype
    if dtype == "float32":
        return [_resize_bilinear_float(graph, op, args[0])]
    if dtype not in ("int8", "int16"):
        raise unsupported(op, f"RESIZE_BILINEAR on {dtype} tensors (the reference runs TFLite's int8/int16 "
                          "integer kernel and its float32 one)")
    (y0, y1, fy), (x0, x1, fx) = _tables(graph, op)
    x = i64(args[0])
    wy, wx = fy[None, :, None, None], fx[None, None, :, None]
    acc = (x[:, y0][:, :, x0] * (ONE - wy) * (ONE - wx) + x[:, y1][:, :, x0] * wy * (ONE - wx)
           + x[:, y0][:, :, x1] * (ONE - wy) * wx + x[:, y1][:, :, x1] * wy * wx)
    half = np.where(acc > 0, 1 << 19, -(1 << 19))
    return [c_div(acc + half, 1 << 20)]


# ---- the runtime/ kernel's parameters (TFLite's Prepare, at compile time)

def kernel_params(graph: Graph, op: Op) -> KernelParams:
    x, y = graph.tensor(op.inputs[0]), graph.tensor(op.outputs[0])
    check_moved(op, [x, y])
    (y0, y1, fy), (x0, x1, fx) = _tables(graph, op)
    arrays = {name: ("int32_t", [int(v) for v in values])
              for name, values in (("y0", y0), ("y1", y1), ("fy", fy), ("x0", x0), ("x1", x1), ("fx", fx))}
    fields = {"input": dims(x.shape), "output": dims(y.shape), **{name: CRef(name) for name in arrays}}
    return KernelParams("mcu_resize_bilinear_s8", "mcu_resize_bilinear_params", fields, arrays=arrays)


register("resize_bilinear", ResizeAttrs, _reference_resize_bilinear, kernel_params)
