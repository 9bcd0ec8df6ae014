"""ELU: TFLite Micro's `elu.cc`: int8 through a 256-entry table its Prepare fills in float32
(PopulateLookupTable with x < 0 ? exp(x) - 1 : x, glibc's expf as TFLite's std::exp(float)); float32 for
calibration. (tflite-runtime 2.14's BUILTIN_REF resolver has no ELU kernel; TFLite Micro is the oracle.)
Kernel: the same table in runtime/mcu_lut_s8.c.
"""
from __future__ import annotations

import numpy as np

from mcutool.ir import Graph, NoAttrs, Op
from mcutool.ops import register
from mcutool.ops.common import int8_operands, kind_of
from mcutool.ops.fixedpoint import expf, i64, lut_populate
from mcutool.ops.kernel import KernelParams, lut_kernel


def _elu_f32(v: np.float32) -> np.float32:
    return np.float32(expf(v) - np.float32(1.0)) if v < 0 else v


def elu_table(in_scale, in_zp: int, out_scale, out_zp: int) -> np.ndarray:
    """elu.cc's PopulateLookupTable<int8_t>: table[q + 128]."""
    return lut_populate(in_scale, in_zp, out_scale, out_zp, _elu_f32)


def _int8_function(graph: Graph, op: Op):
    (s, z), (so, zo) = int8_operands(graph, op, ("input", "output"))
    table = elu_table(s, z, so, zo)
    return lambda q: table[i64(q) + 128]


def _reference(graph, op, args):
    if kind_of(graph, op) == "float":
        x = np.asarray(args[0], np.float32)
        return [np.where(x < 0, np.expm1(x), x).astype(np.float32)]
    return [_int8_function(graph, op)(args[0])]


def kernel_params(graph: Graph, op: Op) -> KernelParams:
    return lut_kernel(graph, op, _int8_function(graph, op))


register("elu", NoAttrs, _reference, kernel_params)
