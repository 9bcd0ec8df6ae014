"""GELU: TFLite's `kernels/gelu.cc` (TFLite Micro has no GELU kernel; tflite-runtime 2.14's BUILTIN_REF is the
oracle): int8 through a 256-entry table its Prepare fills with LUTPopulate and the float transforms of
`reference/gelu.h`; float32 for calibration. Kernel: the same table in runtime/mcu_lut_s8.c.

TFLite 2.14's transforms mix float and double: GeluTransform is 0.5f * x * (1.f + std::erf(x * M_SQRT1_2)) with
x * M_SQRT1_2 and erf in double (glibc's erf is Python's math.erf), the product rounded to float on return;
GeluTransformApproximate stays in float32 but for its constant sqrt(2/pi) (float) and std::tanh(float).
"""
from __future__ import annotations

import math

import numpy as np

from mcutool.ir import GeluAttrs, Graph, Op
from mcutool.ops import register
from mcutool.ops.common import int8_operands, kind_of
from mcutool.ops.fixedpoint import i64, lut_populate
from mcutool.ops.kernel import KernelParams, lut_kernel

_SQRT1_2 = 0.70710678118654752440
_SQRT_2_PI = np.float32(2.0 / math.sqrt(math.pi) * _SQRT1_2)  # M_2_SQRTPI * M_SQRT1_2, stored as a float


def _gelu_f32(v: np.float32) -> np.float32:
    half_x = float(np.float32(np.float32(0.5) * v))
    return np.float32(half_x * (1.0 + math.erf(float(v) * _SQRT1_2)))


def _gelu_approximate_f32(v: np.float32) -> np.float32:
    cube = np.float32(np.float32(np.float32(np.float32(0.044715) * v) * v) * v)
    inner = np.float32(_SQRT_2_PI * np.float32(v + cube))
    t = np.float32(np.tanh(inner))
    return np.float32(np.float32(np.float32(0.5) * v) * np.float32(np.float32(1.0) + t))


def gelu_table(in_scale, in_zp: int, out_scale, out_zp: int, approximate: bool) -> np.ndarray:
    """gelu.cc's Prepare for int8: LUTPopulate with the (approximate) transform; table[q + 128]."""
    return lut_populate(in_scale, in_zp, out_scale, out_zp, _gelu_approximate_f32 if approximate else _gelu_f32)


def _int8_function(graph: Graph, op: Op):
    (s, z), (so, zo) = int8_operands(graph, op, ("input", "output"))
    table = gelu_table(s, z, so, zo, op.attrs.approximate)
    return lambda q: table[i64(q) + 128]


def _reference(graph, op, args):
    if kind_of(graph, op) == "float":
        x = np.asarray(args[0], np.float32)
        f = _gelu_approximate_f32 if op.attrs.approximate else _gelu_f32
        return [np.vectorize(f, otypes=[np.float32])(x).reshape(x.shape)]
    return [_int8_function(graph, op)(args[0])]


def kernel_params(graph: Graph, op: Op) -> KernelParams:
    return lut_kernel(graph, op, _int8_function(graph, op))


register("gelu", GeluAttrs, _reference, kernel_params)
