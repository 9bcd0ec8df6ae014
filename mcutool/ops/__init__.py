"""Operators, one module each: what an op kind means and what its firmware kernel is given.

An op module (`mcutool/ops/<op>.py`) holds everything about one operator that is not a file format or C text:
  * its reference: the op on numpy values in TFLite Micro's integer arithmetic (and float32, for calibrating float
    models), with the IR checks that make it well defined (shapes, dtypes, quantization) -- the golden model the
    generated C is compared with (mcutool/reference.py runs a graph through these);
  * its Prepare: every number TFLite computes once from scales and shapes (multipliers, clamps, tables);
  * for the float ops calibration differentiates through, `vjp`: the gradient of each input from the
    outputs' (quantize/output_hessians.py);
  * `kernel_params(graph, op)`: the parameter struct its runtime/ C kernel (`runtime/mcu_<op>_s8.c`, and
    `mcu_<op>_s16.c` where it runs in int16: a `KERNELS` table by (input, output) dtype, `kernel.kernel_for`)
    gets, for the ops whose kernel is hand-written (TVM generates conv, depthwise and fully connected;
    codegen/binary_kernels.py lays out the binary kernels).
It registers itself with `register(kind, attrs, reference, kernel, dtypes)`. Shared fixed-point math lives in
`fixedpoint.py`, shared reference helpers in `common.py`, the kernel-parameter containers in `kernel.py`.
Op modules import nothing of codegen, schedule or emulate. Adding an operator: one module here, its runtime/ C
file, a line in each importer's table (mcutool/frontends/), and its tests.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

from mcutool import ir


@dataclass(frozen=True)
class OpDef:
    kind: str
    attrs: type                      # the IR attribute class an op of this kind carries
    reference: Callable              # (graph, op, args) -> [numpy outputs]
    kernel: Callable | None = None   # (graph, op) -> KernelParams of its runtime/ kernel; None: emitted elsewhere
    dtypes: tuple[str, ...] = ("int8",)  # activation dtypes its firmware runs (README's operator table)
    vjp: Callable | None = None      # float only: (graph, op, args, outs, out_grads) -> a gradient per input


OPS: dict[str, OpDef] = {}


def register(kind: str, attrs: type, reference: Callable, kernel: Callable | None = None,
             dtypes: tuple[str, ...] = ("int8",), vjp: Callable | None = None) -> OpDef:
    """Make `kind` an operator: its IR attributes, its reference, its runtime kernel's parameters (None when the
    kernel is generated elsewhere: TVM, binary kernels, or no code), the activation dtypes its firmware runs
    (() for an op that never reaches firmware, e.g. a float-only or host-side one) and, where calibration
    needs the network's output error as a function of a layer's (quantize/output_hessians.py), the float
    op's vector-Jacobian product: the gradient of each input (None: a constant) from its outputs'."""
    if kind in OPS:
        raise ValueError(f"op kind {kind!r} registered twice")
    ir.register_kind(kind, attrs)
    OPS[kind] = OpDef(kind, attrs, reference, kernel, tuple(dtypes), vjp)
    return OPS[kind]


def op_def(kind: str) -> OpDef | None:
    return OPS.get(kind)


# Every operator module, imported once so that each registers its kinds.
from mcutool.ops import (add, binary, concat, conv, fully_connected, leaky_relu, logistic, lstm, lut, mean,  # noqa: E402,F401
                         mul, pad, pool, quantize, reshape, softmax, strided_slice, sub, svdf, transpose,
                         transpose_conv)
# data movement, reductions, matmul and the constant-folded shape ops (ops8b). (Submodules `slice` and `sum`
# become attributes of this package, as any submodule does; nothing here calls the builtins of those names.)
from mcutool.ops import (arg_min_max, batch_matmul, broadcast_to, depth_to_space, fill, gather, pack,  # noqa: E402,F401
                         reduce_max, reduce_prod, resize_bilinear, resize_nearest_neighbor, shape, slice,
                         space_to_depth, split, sum)
# elementwise and activation operators (ops8a)
from mcutool.ops import (abs, cast, div, elu, gelu, hard_swish, l2_normalization, minmax, prelu, relu,  # noqa: E402,F401
                         rsqrt, squared_difference, tanh)
# an ONNX float model's elementwise function of one tensor (Erf GELU ...): float only, a `lut` once quantized
from mcutool.ops import float_function  # noqa: E402,F401
