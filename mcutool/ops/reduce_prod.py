"""REDUCE_PROD (`kernels/reduce.cc` EvalProd, TFLite; TFLite Micro has no kernel): the product over axes. Keras'
Dense on a 3-D input (Tensordot) computes its reshape's extents as SHAPE -> GATHER -> REDUCE_PROD, all constant
once the input shape is static, so mcutool/fold.py replaces it by a constant; it has no runtime/ kernel and is
refused anywhere else (only integer shape arithmetic is computed).
"""
from __future__ import annotations

import numpy as np

from mcutool.ir import MeanAttrs
from mcutool.ops import register
from mcutool.ops.common import unsupported


def _reference_reduce_prod(graph, op, args):
    out_t = graph.tensor(op.outputs[0])
    if out_t.dtype not in ("int32", "int64") or not graph.tensor(op.inputs[0]).is_const:
        raise unsupported(op, f"a product of computed {out_t.dtype} values (mcutool folds REDUCE_PROD of constant "
                              "integer shapes only)")
    x = np.asarray(args[0])
    axes = tuple(a % x.ndim for a in op.attrs.axes) if x.ndim else ()
    return [np.prod(x, axis=axes, keepdims=op.attrs.keep_dims).astype(x.dtype).reshape(out_t.shape)]


register("reduce_prod", MeanAttrs, _reference_reduce_prod, dtypes=())
