"""PAD / PADV2 (`reference/pad.h`): constant padding; quantized tensors pad with the output zero point.
int8 and int16 (pad.cc runs both the same way). Kernels: runtime/mcu_pad_s8.c, runtime/mcu_pad_s16.c.
"""
from __future__ import annotations

import numpy as np

from mcutool.errors import UserError
from mcutool.ir import Graph, Op, PadAttrs
from mcutool.ops import register
from mcutool.ops.common import qparams, require_same_quant, where
from mcutool.ops.kernel import KernelParams, dims, int_qparams, kernel_error, kernel_for, rank_pad, same_qparams

KERNELS = {("int8", "int8"): "mcu_pad_s8", ("int16", "int16"): "mcu_pad_s16"}


def pad(x, pads, value) -> np.ndarray:
    """PAD (`reference/pad.h`): constant padding; quantized tensors pad with the output zero point."""
    return np.pad(np.asarray(x), [tuple(int(v) for v in p) for p in pads], mode="constant", constant_values=value)


def _reference_pad(graph, op, args):
    require_same_quant(graph, op)
    out_t = graph.tensor(op.outputs[0])
    value = 0 if out_t.dtype == "float32" else qparams(op, out_t, "output")[1]
    pads = op.attrs.pads
    if len(pads) != len(graph.tensor(op.inputs[0]).shape):
        raise UserError(f"{where(op)}: {len(pads)} (before, after) pairs for a rank-"
                        f"{len(graph.tensor(op.inputs[0]).shape)} input")
    return [pad(args[0], pads, value)]


# ---- the runtime/ kernel's parameters (TFLite's Prepare, at compile time)

def kernel_params(graph: Graph, op: Op) -> KernelParams:
    """PAD: reference_ops::Pad, padding with the output zero point."""
    x, y = graph.tensor(op.inputs[0]), graph.tensor(op.outputs[0])
    function, cin, cout = kernel_for(op, x, y, KERNELS)
    xq, yq = int_qparams(op, x, "input", (x.dtype,)), int_qparams(op, y, "output", (x.dtype,))
    if not same_qparams(xq, yq):
        raise kernel_error(op, "input and output quantization differ (PAD moves values without rescaling them)")
    k, r = rank_pad(op, x.shape)
    pads = [tuple(int(v) for v in p) for p in op.attrs.pads]
    if len(pads) != r:
        raise kernel_error(op, f"{len(pads)} (before, after) pairs for a rank-{r} input")
    if any(b < 0 or e < 0 for b, e in pads):
        raise kernel_error(op, f"negative pads {pads}")
    expected = tuple(d + b + e for d, (b, e) in zip(x.shape, pads))
    if expected != tuple(y.shape):
        raise kernel_error(op, f"input {x.shape} padded by {pads} is {expected}, but the output is {y.shape}")
    fields = {
        "input": dims(x.shape), "output": dims(y.shape),
        "pad_before": [0] * k + [b for b, _ in pads],
        "pad_value": yq[1],
    }
    return KernelParams(function, "mcu_pad_params", fields, in_ctype=cin, out_ctype=cout)


register("pad", PadAttrs, _reference_pad, kernel_params, dtypes=("int8", "int16"))
