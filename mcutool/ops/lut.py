"""A fused elementwise int8 op (`lut`, made by schedule/fuse.py, e.g. swish x * logistic(x)): its output depends
on one input value alone, so its 256 values are computed at compile time with the reference's own arithmetic and
the firmware looks them up (runtime/mcu_lut_s8.c). Never made by an importer.
"""
from __future__ import annotations

import numpy as np

from mcutool.ir import Graph, LutAttrs, Op
from mcutool.ops import register
from mcutool.ops.kernel import CRef, KernelParams, byte_indexed


def _reference(graph: Graph, op: Op, args):
    return [np.asarray(op.attrs.table, np.int8)[np.asarray(args[0]).astype(np.int16) + 128]]


def kernel_params(graph: Graph, op: Op) -> KernelParams:
    x = graph.tensor(op.inputs[0])
    return KernelParams("mcu_lut_s8", "mcu_lut_params", {"size": x.size, "table": CRef("table")},
                        arrays={"table": ("int8_t", byte_indexed(op.attrs.table))})


register("lut", LutAttrs, _reference, kernel_params)
