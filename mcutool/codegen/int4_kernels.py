"""int4-weight conv / depthwise / fully connected layers on the int8 layers' fast kernels.

TFLite Micro unpacks INT4 filters to int8 and runs the int8 kernel, so an int4 layer is its int8 twin holding the
unpacked values (ir.Tensor.data). In firmware the weights stay packed in flash and the fast kernels unpack them in
registers:

    1x1 conv over <= 32 ch.    runtime/mcu_conv1x1_small_s8.h's mcu_conv1x1_small_w4, small fully connected layers
                               its mcu_fc_w4_s8 (fast_kernels.pointwise_small / fc_w16 with `int4`: the int8
                               twins' kernels, nibbles unpacked by one AND per weight word), under DSP
    other conv2d / fully_conn. the shared conv kernel (gemm_kernels, runtime/mcu_conv_gemm_s8.h's
                               `mcu_conv_gemm_s8_w4`) where it applies and the core has the DSP extension; the
                               `#else` branch (RV32 and other cores without it) calls runtime/mcu_conv2d_s4.c
    depthwise_conv2d 3x3       the hand-written kernel (fast_kernels.depthwise_3x3_s8 with `int4`), each channel's
                               9 nibbles unpacked once per channel, on every core

Other int4 layers (a first conv over 1 or 3 channels, other depthwise shapes, what the fast kernels' bounds
exclude) call runtime/mcu_conv2d_s4.c / mcu_depthwise_conv2d_s4.c as before.
"""
from __future__ import annotations

import numpy as np

from ..ir import Op
from . import fast_kernels, gemm_kernels
from . import tvm_kernels as tk
from .model import Context, LayerCode


def int4_layer(ctx: Context, op: Op, fallback) -> LayerCode:
    """The layer on a fast kernel, or `fallback(ctx, op)` (the runtime/ s4 kernels)."""
    g = ctx.graph
    w, bias, mult, shift, qp = tk.layer_quant(g, op, "int4")
    x_t, out_t = g.tensor(op.inputs[0]), g.tensor(op.outputs[0])
    name, attr = ctx.prefix(op), ctx.const_attr(op)
    bias = np.zeros(w.shape[0] if op.kind != "depthwise_conv2d" else w.shape[3], np.int64) if bias is None else bias
    n = len(bias)
    mult = np.broadcast_to(np.asarray(mult, np.int64).reshape(-1), (n,))
    shift = np.broadcast_to(np.asarray(shift, np.int64).reshape(-1), (n,))
    call = f"{name}({ctx.ptr(op.inputs[0])}, {ctx.ptr(op.outputs[0])});"
    a = op.attrs
    zps = (qp["input_zero_point"], qp["output_zero_point"])
    if op.kind == "depthwise_conv2d":
        if x_t.shape[3] > 1 and fast_kernels.applies_depthwise(w, bias, mult, shift, *zps, a.depth_multiplier,
                                                               a.stride, a.dilation):
            k = fast_kernels.depthwise_3x3_s8(name, x_t.shape, w, bias, mult, shift, stride=a.stride,
                                              pads=tuple(a.pads), const_attr=attr, int4=True, **qp)
            return LayerCode(op.name, op.kind, k.source, call, "tvm")
        return fallback(ctx, op)
    req = dict(act_min=qp["act_min"], act_max=qp["act_max"], const_attr=attr, int4=True)
    if op.kind == "fully_connected" and fast_kernels.applies_fc_w4(w, bias, mult, shift, *zps):
        gm = fast_kernels.fc_w16(name, x_t.size // w.shape[1], w, bias, mult, shift, input_zero_point=zps[0],
                                 output_zero_point=zps[1], **req)
    elif op.kind == "conv2d" and fast_kernels.applies_pointwise_small_w4(w, bias, mult, shift, *zps, a.pads,
                                                                         a.dilation):
        gm = fast_kernels.pointwise_small(name, x_t.shape, w, bias, mult, shift, input_zero_point=zps[0],
                                          output_zero_point=zps[1], stride=a.stride, out_hw=out_t.shape[1:3], **req)
    elif op.kind == "fully_connected":
        o, i = w.shape
        rows = x_t.size // i
        gm = gemm_kernels.gemm_layer(name, (1, 1, rows, i), w.reshape(o, 1, 1, i), bias, mult, shift,
                                     in_zp=zps[0], out_zp=zps[1], act_min=qp["act_min"], act_max=qp["act_max"],
                                     out_hw=(1, rows), const_attr=attr, fully_connected=True, int4=True)
    else:
        gm = gemm_kernels.gemm_layer(name, x_t.shape, w, bias, mult, shift, in_zp=zps[0], out_zp=zps[1],
                                     act_min=qp["act_min"], act_max=qp["act_max"], stride=a.stride,
                                     dilation=a.dilation, pads=a.pads, out_hw=out_t.shape[1:3], const_attr=attr,
                                     int4=True)
    if gm is None:
        return fallback(ctx, op)
    other = fallback(ctx, op)  # cores without the DSP extension: the s4 kernel (shifts)
    source = f"#if MCU_GEMM\n{gm.consts}{gm.code}#else\n{other.definitions}#endif\n"
    both = f"#if MCU_GEMM\n    {call}\n#else\n    {other.call}\n#endif"
    return LayerCode(op.name, op.kind, source, both, "tvm",
                     headers=tuple(dict.fromkeys(other.headers + ("mcu_dot_s8.h", gemm_kernels.HEADER))))
