"""FILL (`micro/kernels/fill.cc`): a tensor of the output's shape holding one value. Its inputs (the extents and
the value) are constants in the models mcutool takes, so mcutool/fold.py replaces it by a constant; it has no
runtime/ kernel.
"""
from __future__ import annotations

import numpy as np

from mcutool.errors import UserError
from mcutool.ir import NoAttrs
from mcutool.ops import register
from mcutool.ops.common import where


def _reference_fill(graph, op, args):
    out_t = graph.tensor(op.outputs[0])
    dims = tuple(int(d) for d in np.asarray(args[0]).reshape(-1))
    if dims != out_t.shape:
        raise UserError(f"{where(op)}: fills extents {dims}, but the output {out_t.name!r} has shape {out_t.shape}")
    return [np.full(out_t.shape, np.asarray(args[1]).reshape(-1)[0])]


register("fill", NoAttrs, _reference_fill, dtypes=())
