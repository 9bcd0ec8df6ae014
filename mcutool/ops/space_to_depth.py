"""SPACE_TO_DEPTH (`reference/space_to_depth.h`): output[n, h, w, (i*b + j)*C + c] = input[n, h*b + i, w*b + j, c];
values unchanged. Runs on runtime/mcu_transpose_s8.c (see mcutool/ops/depth_to_space.py).
"""
from __future__ import annotations

import numpy as np

from mcutool.ir import BlockAttrs, Graph, Op
from mcutool.ops import register
from mcutool.ops.common import require_same_quant
from mcutool.ops.depth_to_space import check_blocks, middle_transpose
from mcutool.ops.kernel import KernelParams


def _reference_space_to_depth(graph, op, args):
    require_same_quant(graph, op)
    n, h, w, c, b = check_blocks(op, graph.tensor(op.inputs[0]), graph.tensor(op.outputs[0]))
    x = np.asarray(args[0]).reshape(n, h, b, w, b, c)
    return [x.transpose(0, 1, 3, 2, 4, 5).reshape(n, h, w, b * b * c)]


def kernel_params(graph: Graph, op: Op) -> KernelParams:
    return middle_transpose(graph, op, graph.tensor(op.inputs[0]), graph.tensor(op.outputs[0]), from_depth=False)


register("space_to_depth", BlockAttrs, _reference_space_to_depth, kernel_params)
