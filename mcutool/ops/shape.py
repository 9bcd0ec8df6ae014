"""SHAPE (`micro/kernels/shape.cc`): a tensor's static extents as int32 (or int64). It reads no values, so it
never reaches firmware: mcutool/fold.py replaces it by a constant once the input shape is static.
"""
from __future__ import annotations

import numpy as np

from mcutool.ir import NoAttrs
from mcutool.ops import register
from mcutool.ops.common import unsupported


def _reference_shape(graph, op, args):
    out_t = graph.tensor(op.outputs[0])
    if out_t.dtype not in ("int32", "int64"):
        raise unsupported(op, f"a shape of dtype {out_t.dtype} (TFLite writes int32 or int64)")
    return [np.asarray(graph.tensor(op.inputs[0]).shape, dtype=np.int64)]


register("shape", NoAttrs, _reference_shape, dtypes=())
