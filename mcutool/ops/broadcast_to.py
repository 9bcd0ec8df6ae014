"""BROADCAST_TO (`micro/kernels/broadcast_to.cc`, `reference/broadcast_to.h`): the input repeated along its
extents of 1 to the output's shape (NumPy's rule). Keras models broadcast constants with it, which
mcutool/fold.py folds; it has no runtime/ kernel.
"""
from __future__ import annotations

import numpy as np

from mcutool.errors import UserError
from mcutool.ir import NoAttrs
from mcutool.ops import register
from mcutool.ops.common import require_same_quant, where


def _reference_broadcast_to(graph, op, args):
    require_same_quant(graph, op)
    out_t = graph.tensor(op.outputs[0])
    try:
        return [np.broadcast_to(np.asarray(args[0]), out_t.shape).copy()]
    except ValueError:
        raise UserError(f"{where(op)}: input of shape {np.shape(args[0])} does not broadcast to the output "
                        f"{out_t.name!r} of shape {out_t.shape}") from None


register("broadcast_to", NoAttrs, _reference_broadcast_to, dtypes=())
