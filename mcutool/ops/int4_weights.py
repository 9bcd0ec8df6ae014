"""int4 weights (TFLite's INT4) for CONV_2D, DEPTHWISE_CONV_2D and FULLY_CONNECTED with int8 activations: the
parameters of their runtime/ kernels, which read the packed weights in place (mcu_conv2d_s4.c -- also the fully
connected layer, as a 1x1 conv -- and mcu_depthwise_conv2d_s4.c). Most int4 layers run the int8 layers' fast
kernels instead (codegen/int4_kernels.py); these are the fallback for the shapes those do not take, and the conv /
FC kernel of cores without the DSP extension.

The arithmetic is the int8 layer's (TFLite Micro unpacks INT4 filters to int8 in Prepare), so the reference is
conv.py / fully_connected.py on the unpacked values (ir.Tensor.data holds them). Only the firmware's byte layout
is int4's own (`kernel_weight_bytes`): a conv's (or FC's) filter rows of K = kh * kw * cin values, each padded
with zeros to a multiple of 8 (at most 3.5 bytes per output channel more than TFLite's packing), one after the
other; each group of 8 values w0..w7 is stored as bytes j = 0..3 = w_j | w_{j+4} << 4, which a Cortex-M core
with the DSP extension unpacks into SMLAD's int16 pairs with one mask and SXTB16 per pair. Depthwise weights
keep TFLite's order (low nibble first).
"""
from __future__ import annotations

import numpy as np

from mcutool.ir import Graph, Op, pack_int4
from mcutool.ops.common import qparams
from mcutool.ops.conv import bias_tensor, conv_kernel_params, weighted_op_multipliers
from mcutool.ops.fixedpoint import activation_range
from mcutool.ops.kernel import KernelParams, kernel_error

KERNELS = {"conv2d": "mcu_conv2d_s4", "depthwise_conv2d": "mcu_depthwise_conv2d_s4",
           "fully_connected": "mcu_conv2d_s4"}


def kernel_weight_bytes(values: np.ndarray, kind: str) -> np.ndarray:
    """The packed weights as the kernel reads them (uint8), from the int4 values in the IR's layout."""
    v = np.asarray(values, dtype=np.int64)
    if kind == "depthwise_conv2d":
        return pack_int4(v)
    rows = v.reshape(v.shape[0], -1)
    rows = np.pad(rows, ((0, 0), (0, -rows.shape[1] % 8)))  # rows padded with zeros to a multiple of 8
    groups = (rows.reshape(-1, 2, 4) & 0xF).astype(np.uint8)  # (groups, [w0..w3, w4..w7])
    return (groups[:, 0] | (groups[:, 1] << 4)).reshape(-1)


def is_int4_layer(graph: Graph, op: Op) -> bool:
    return op.kind in KERNELS and len(op.inputs) > 1 and graph.tensor(op.inputs[1]).dtype == "int4"


def kernel_params(graph: Graph, op: Op) -> KernelParams:
    """The mcu_conv_params call of an int4-weight layer (multipliers, clamp and offsets as its int8 twin's)."""
    x_t, w_t, out_t = graph.tensor(op.inputs[0]), graph.tensor(op.inputs[1]), graph.tensor(op.outputs[0])
    if (x_t.dtype, out_t.dtype) != ("int8", "int8") or not w_t.is_const:
        raise kernel_error(op, f"int4 weights run with int8 input and output and constant weights, not "
                               f"{x_t.dtype} -> {out_t.dtype}")
    bias_t = bias_tensor(graph, op, 2)
    if bias_t is not None and bias_t.dtype != "int32":
        raise kernel_error(op, f"an int4 layer takes an int32 bias, not {bias_t.dtype}")
    _, x_zp = qparams(op, x_t, "input")
    o_s, out_zp = qparams(op, out_t, "output")
    lo, hi = activation_range(op.attrs.activation, o_s, out_zp, "int8")
    mult, shift = weighted_op_multipliers(op.kind, x_t, w_t, out_t, op.attrs.rounding)
    common = dict(input_offset=-x_zp, output_offset=out_zp, lo=lo, hi=hi, multiplier=mult, shift=shift)
    if op.kind == "fully_connected":
        out_c, in_c = w_t.shape
        batches = x_t.size // in_c
        kp = conv_kernel_params(KERNELS[op.kind], x_t, w_t, out_t, bias_t, stride=(1, 1), dilation=(1, 1),
                                pad_top=0, pad_left=0, **common,
                                shapes=((batches, 1, 1, in_c), (out_c, 1, 1, in_c), (batches, 1, 1, out_c)))
    else:
        a = op.attrs
        kp = conv_kernel_params(KERNELS[op.kind], x_t, w_t, out_t, bias_t, stride=a.stride, dilation=a.dilation,
                                pad_top=a.pads[0], pad_left=a.pads[1], **common)
    packed = kernel_weight_bytes(w_t.data, op.kind)
    kp.arrays["weights"] = ("int8_t", [int(b) for b in packed.astype(np.int8)])
    return kp
