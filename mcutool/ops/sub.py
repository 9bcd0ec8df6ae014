"""SUB: `reference/sub.h` (SubElementwise, BroadcastQuantSubSlow) with TFLite Micro's sub_common.cc Prepare for
int8 and int16: ADD's (left shift 20 / 15, inputs rescaled to 2 max(s1, s2), real multipliers in double). A
2025 sub_common.cc computed the multipliers in float32 before the cast to double; the tflite-micro build this is
checked against (pip 0.dev20261023) does not -- with float32, 3 of the 5 SEANet SUB models differ from it by one
LSB. float32 for calibration. Kernels: ADD's family (runtime/mcu_add_s8.c, mcu_add_s16.c, with subtract = 1).
"""
from __future__ import annotations

from mcutool.ir import ElementwiseAttrs, Graph, Op
from mcutool.ops import register
from mcutool.ops.add import add_params, elementwise_kernel, elementwise_reference
from mcutool.ops.kernel import KernelParams


def _reference(graph, op, args):
    return elementwise_reference(graph, op, args, add_params, subtract=True)


def kernel_params(graph: Graph, op: Op) -> KernelParams:
    """SUB: reference_ops::Sub / BroadcastQuantSubSlow (int8, int16) on ADD's kernel with subtract = 1."""
    return elementwise_kernel(graph, op, add_params, subtract=True)


register("sub", ElementwiseAttrs, _reference, kernel_params, dtypes=("int8", "int16"))
