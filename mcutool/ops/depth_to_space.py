"""DEPTH_TO_SPACE (`reference/depth_to_space.h`): output[n, h*b + i, w*b + j, c] = input[n, h, w, (i*b + j)*C + c]
(TensorFlow's DCR order); values unchanged. No kernel of its own: viewed as (N*H, W, b, b*C) it is a transpose of
the middle axes, so it runs on runtime/mcu_transpose_s8.c (as SPACE_TO_DEPTH does, mcutool/ops/space_to_depth.py).
"""
from __future__ import annotations

import numpy as np

from mcutool.errors import UserError
from mcutool.ir import BlockAttrs, Graph, Op, Tensor
from mcutool.ops import register
from mcutool.ops.common import require_same_quant, where
from mcutool.ops.kernel import KernelParams, check_moved, dims


def check_blocks(op: Op, space: Tensor, depth: Tensor) -> tuple[int, int, int, int, int]:
    """(N, H, W, C, b) with `space` (N, H*b, W*b, C) and `depth` (N, H, W, b*b*C), or a UserError."""
    b = int(op.attrs.block_size)
    if len(space.shape) != 4 or len(depth.shape) != 4 or b < 1:
        raise UserError(f"{where(op)}: needs 4-D NHWC tensors and a block size >= 1 (got {space.shape}, "
                        f"{depth.shape}, block {b})")
    n, h, w, c = depth.shape[0], depth.shape[1], depth.shape[2], space.shape[3]
    if space.shape != (n, h * b, w * b, c) or depth.shape[3] != b * b * c:
        raise UserError(f"{where(op)}: {space.shape} and {depth.shape} are not a space/depth pair for block {b}")
    return n, h, w, c, b


def _reference_depth_to_space(graph, op, args):
    require_same_quant(graph, op)
    n, h, w, c, b = check_blocks(op, graph.tensor(op.outputs[0]), graph.tensor(op.inputs[0]))
    x = np.asarray(args[0]).reshape(n, h, w, b, b, c)
    return [x.transpose(0, 1, 3, 2, 4, 5).reshape(n, h * b, w * b, c)]


# ---- the runtime/ kernel's parameters (TFLite's Prepare, at compile time)

def middle_transpose(graph: Graph, op: Op, space: Tensor, depth: Tensor, from_depth: bool) -> KernelParams:
    """mcu_transpose_s8 with perm (0, 2, 1, 3) over the input viewed as (N*H, W, b, b*C) (depth to space) or
    (N*H, b, W, b*C) (space to depth)."""
    check_moved(op, [graph.tensor(op.inputs[0]), graph.tensor(op.outputs[0])])
    n, h, w, c, b = check_blocks(op, space, depth)
    view = (n * h, w, b, b * c) if from_depth else (n * h, b, w, b * c)
    return KernelParams("mcu_transpose_s8", "mcu_transpose_params", {"input": dims(view), "perm": [0, 2, 1, 3]})


def kernel_params(graph: Graph, op: Op) -> KernelParams:
    return middle_transpose(graph, op, graph.tensor(op.outputs[0]), graph.tensor(op.inputs[0]), from_depth=True)


register("depth_to_space", BlockAttrs, _reference_depth_to_space, kernel_params)
