"""RESIZE_NEAREST_NEIGHBOR (`reference/resize_nearest_neighbor.h`): output pixel (y, x) copies input pixel
(in_y[y], in_x[x]); values unchanged. TFLite computes each source coordinate in float32 (GetNearestNeighbor);
mcutool computes the same float32 arithmetic at compile time into two index tables, so the firmware kernel
(runtime/mcu_resize_nearest_neighbor_s8.c) only copies.
"""
from __future__ import annotations

import numpy as np

from mcutool.errors import UserError
from mcutool.ir import Graph, Op, ResizeAttrs
from mcutool.ops import register
from mcutool.ops.common import require_same_quant, where
from mcutool.ops.fixedpoint import tflite_round
from mcutool.ops.kernel import MOVED_DTYPES, CRef, KernelParams, byte_dims, check_moved


def nearest_indices(in_size: int, out_size: int, align_corners: bool, half_pixel_centers: bool) -> np.ndarray:
    """GetNearestNeighbor for every output coordinate, in float32 as TFLite computes it."""
    if align_corners and out_size > 1:
        scale = np.float32(in_size - 1) / np.float32(out_size - 1)
    else:
        scale = np.float32(in_size) / np.float32(out_size)
    offset = np.float32(0.5 if half_pixel_centers else 0.0)
    pos = (np.arange(out_size, dtype=np.float32) + offset) * scale
    idx = tflite_round(pos) if align_corners else np.floor(pos)
    idx = np.minimum(idx.astype(np.int64), in_size - 1)
    return np.maximum(idx, 0) if half_pixel_centers else idx


def check_resize(graph: Graph, op: Op) -> tuple[tuple[int, ...], tuple[int, ...]]:
    """(input shape, output shape), both 4-D NHWC with the same N and C; align_corners and half_pixel_centers
    not both set (TFLite's rule)."""
    x, y = graph.tensor(op.inputs[0]), graph.tensor(op.outputs[0])
    if len(x.shape) != 4 or len(y.shape) != 4 or x.shape[0] != y.shape[0] or x.shape[3] != y.shape[3]:
        raise UserError(f"{where(op)}: resizes 4-D NHWC tensors over H and W only (input {x.shape}, output "
                        f"{y.shape})")
    if op.attrs.align_corners and op.attrs.half_pixel_centers:
        raise UserError(f"{where(op)}: align_corners and half_pixel_centers are both set, which TFLite refuses")
    return x.shape, y.shape


def _tables(graph: Graph, op: Op) -> tuple[np.ndarray, np.ndarray]:
    (_, ih, iw, _), (_, oh, ow, _) = check_resize(graph, op)
    a = op.attrs
    return (nearest_indices(ih, oh, a.align_corners, a.half_pixel_centers),
            nearest_indices(iw, ow, a.align_corners, a.half_pixel_centers))


def _reference_resize_nearest_neighbor(graph, op, args):
    require_same_quant(graph, op)
    ys, xs = _tables(graph, op)
    return [np.asarray(args[0])[:, ys][:, :, xs]]


# ---- the runtime/ kernel's parameters (TFLite's Prepare, at compile time)

def kernel_params(graph: Graph, op: Op) -> KernelParams:
    x, y = graph.tensor(op.inputs[0]), graph.tensor(op.outputs[0])
    es = check_moved(op, [x, y], MOVED_DTYPES)  # int16 pixels are copied as bytes
    ys, xs = _tables(graph, op)
    fields = {"input": byte_dims(x.shape, es), "output": byte_dims(y.shape, es), "in_y": CRef("in_y"),
              "in_x": CRef("in_x")}
    return KernelParams("mcu_resize_nearest_neighbor_s8", "mcu_resize_nearest_neighbor_params", fields,
                        arrays={"in_y": ("int32_t", [int(v) for v in ys]), "in_x": ("int32_t", [int(v) for v in xs])})


register("resize_nearest_neighbor", ResizeAttrs, _reference_resize_nearest_neighbor, kernel_params,
         dtypes=MOVED_DTYPES)
