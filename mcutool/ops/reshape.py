"""RESHAPE (also SQUEEZE, EXPAND_DIMS, Flatten): values unchanged; in firmware its output aliases its input
(or is one memmove, mcutool/codegen/model.py), so it has no runtime/ kernel.
"""
from __future__ import annotations

import numpy as np

from mcutool.ir import NoAttrs
from mcutool.ops import register
from mcutool.ops.common import require_same_quant


def _reference_reshape(graph, op, args):
    require_same_quant(graph, op)
    return [np.asarray(args[0]).reshape(graph.tensor(op.outputs[0]).shape)]


def _vjp_reshape(graph, op, args, outs, grads):
    return [grads[0].reshape(np.shape(args[0]))] + [None] * (len(op.inputs) - 1)


register("reshape", NoAttrs, _reference_reshape, dtypes=("int8", "int16"), vjp=_vjp_reshape)
