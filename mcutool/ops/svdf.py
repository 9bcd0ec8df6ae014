"""SVDF (a stateful op): TFLite Micro's `svdf_common.cc` EvalIntegerSvdfReference, int8 input and output with an
int8 or int16 activation state (a variable tensor) and int8 or int16 time weights; float32 for calibration.

Per inference: the state (batch, filters * memory) shifts left by one element; each filter's feature dot product
over the input, requantized to the state's scale (+ its zero point, clamped to its type), enters the last memory
slot; each filter's time dot product with the state sums over `rank` filters per unit, plus bias, and is
requantized to the output. TFLite Micro's integer path applies no fused activation.
Kernels: runtime/mcu_svdf_s8.c (mcu_svdf_s8 for an int8 state, mcu_svdf_state_s16_s8 for an int16 one); the
state lives outside the arena (model.c's mcu_state_* arrays, reset by mcu_model_reset()).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from mcutool.errors import UserError
from mcutool.ir import Graph, Op
from mcutool.ops import register
from mcutool.ops.common import float_activation, qparams, where
from mcutool.ops.fixedpoint import (clamp, dtype_range, f32, i64, multiply_by_quantized_multiplier,
                                    quantize_multiplier, wrap_int32)
from mcutool.ops.kernel import CRef, CState, KernelParams, int8_qparams, kernel_error, quant


@dataclass
class SvdfAttrs:
    rank: int = 1
    activation: str = "none"  # float path only: TFLite Micro's integer SVDF applies none


@dataclass(frozen=True)
class SvdfGeometry:
    batch: int
    inputs: int
    filters: int
    units: int
    memory: int


def _geometry(graph: Graph, op: Op) -> SvdfGeometry:
    """Shapes as svdf_common.cc's PrepareSvdf checks them."""
    if len(op.inputs) != 5 or not op.inputs[4]:
        raise UserError(f"{where(op)}: SVDF takes input, feature weights, time weights, bias and the state tensor")
    x, wf, wt, _, state = graph.op_inputs(op)
    out = graph.tensor(op.outputs[0])
    rank = int(op.attrs.rank)
    if len(x.shape) != 2 or len(wf.shape) != 2 or len(wt.shape) != 2 or len(state.shape) != 2:
        raise UserError(f"{where(op)}: input, weights and state must be 2-D (got {x.shape}, {wf.shape}, {wt.shape}, "
                        f"{state.shape})")
    batch, inputs = x.shape
    filters, memory = wt.shape
    if rank <= 0 or filters % rank or wf.shape != (filters, inputs):
        raise UserError(f"{where(op)}: feature weights {wf.shape} and time weights {wt.shape} do not fit input "
                        f"{x.shape} with rank {rank}")
    geo = SvdfGeometry(batch, inputs, filters, filters // rank, memory)
    if state.shape != (batch, filters * memory) or out.shape != (batch, geo.units):
        raise UserError(f"{where(op)}: state {state.shape} / output {out.shape} should be "
                        f"{(batch, filters * memory)} / {(batch, geo.units)}")
    if not state.variable:
        raise UserError(f"{where(op)}: its state tensor {state.name!r} is not a variable tensor")
    return geo


def svdf_multipliers(input_scale, feature_scale, state_scale, time_scale, output_scale):
    """PrepareSvdf's two requantizations: (double)(s_in * s_feature / s_state) and (double)(s_state * s_time /
    s_out), each product and quotient in float32 first, as TFLite Micro computes them."""
    e1 = np.float32(np.float32(f32(input_scale) * f32(feature_scale)) / f32(state_scale))
    e2 = np.float32(np.float32(f32(state_scale) * f32(time_scale)) / f32(output_scale))
    return quantize_multiplier(float(e1)), quantize_multiplier(float(e2))


def svdf_int8(x, w_feature, w_time, bias, state, *, rank, x_zp, state_zp, out_zp, scale1, scale2, state_dtype):
    """One step of the integer SVDF; returns (output int8 (batch, units), new state (batch, filters * memory))."""
    x = i64(x)
    batch = x.shape[0]
    filters, memory = np.shape(w_time)
    units = filters // rank
    flat = i64(state).reshape(-1)
    shifted = np.concatenate([flat[1:], flat[-1:]])  # the whole buffer moves left by one element
    st = shifted.reshape(batch, filters, memory)
    lo, hi = dtype_range(state_dtype)
    feature = wrap_int32((x - int(x_zp)) @ i64(w_feature).T)                      # (batch, filters)
    feature = multiply_by_quantized_multiplier(feature, *scale1) + int(state_zp)
    st[:, :, memory - 1] = clamp(feature, lo, hi)
    time = wrap_int32(np.einsum("bfm,fm->bf", st - int(state_zp), i64(w_time)))  # (batch, filters)
    acc = time.reshape(batch, units, rank).sum(axis=-1)
    if bias is not None:
        acc = acc + i64(bias)
    acc = wrap_int32(acc)
    out = clamp(multiply_by_quantized_multiplier(acc, *scale2) + int(out_zp), -128, 127)
    return out, st.reshape(batch, filters * memory)


def svdf_float(x, w_feature, w_time, bias, state, *, rank, activation):
    x = np.asarray(x, np.float32)
    batch = x.shape[0]
    filters, memory = np.shape(w_time)
    flat = np.asarray(state, np.float32).reshape(-1)
    st = np.concatenate([flat[1:], flat[-1:]]).reshape(batch, filters, memory)
    st[:, :, memory - 1] = x @ np.asarray(w_feature, np.float32).T
    time = np.einsum("bfm,fm->bf", st, np.asarray(w_time, np.float32))
    out = time.reshape(batch, filters // rank, rank).sum(axis=-1)
    if bias is not None:
        out = out + np.asarray(bias, np.float32)
    return float_activation(out.astype(np.float32), activation), st.reshape(batch, -1)


def _quantization(graph: Graph, op: Op) -> dict:
    x, wf, wt, _, state = graph.op_inputs(op)
    out = graph.tensor(op.outputs[0])
    if x.dtype != "int8" or wf.dtype != "int8" or out.dtype != "int8" or wt.dtype not in ("int8", "int16") \
            or state.dtype not in ("int8", "int16"):
        raise UserError(f"{where(op)}: an integer SVDF takes int8 input, feature weights and output and int8 or "
                        f"int16 time weights and state (TFLite Micro's); got {x.dtype}, {wf.dtype}, {wt.dtype}, "
                        f"{state.dtype} -> {out.dtype}")
    (sx, zx), (sf, _), (st, zs), (sw, _), (so, zo) = (qparams(op, t, role) for t, role in (
        (x, "input"), (wf, "feature weights"), (state, "state"), (wt, "time weights"), (out, "output")))
    scale1, scale2 = svdf_multipliers(sx, sf, st, sw, so)
    return {"x_zp": zx, "state_zp": zs, "out_zp": zo, "scale1": scale1, "scale2": scale2,
            "state_dtype": state.dtype}


def _reference(graph: Graph, op: Op, args):
    _geometry(graph, op)
    x, wf, wt, bias, state = args
    if graph.tensor(op.inputs[0]).dtype == "float32":
        return list(svdf_float(x, wf, wt, bias, state, rank=op.attrs.rank, activation=op.attrs.activation))
    return list(svdf_int8(x, wf, wt, bias, state, rank=op.attrs.rank, **_quantization(graph, op)))


def kernel_params(graph: Graph, op: Op) -> KernelParams:
    """mcu_svdf_s8 / mcu_svdf_state_s16_s8: the weights as companion arrays, the state as its model.c array."""
    geo = _geometry(graph, op)
    x, wf, wt, bias, state = graph.op_inputs(op)
    int8_qparams(op, x, "input")
    int8_qparams(op, graph.tensor(op.outputs[0]), "output")
    if wt.dtype != state.dtype:
        raise kernel_error(op, f"time weights ({wt.dtype}) and state ({state.dtype}) of different types")
    q = _quantization(graph, op)
    wide = state.dtype == "int16"
    ctype = "int16_t" if wide else "int8_t"
    arrays = {"weights_feature": ("int8_t", [int(v) for v in wf.data.reshape(-1)]),
              "weights_time": (ctype, [int(v) for v in wt.data.reshape(-1)])}
    if bias is not None:
        arrays["bias"] = ("int32_t", [int(v) for v in bias.data.reshape(-1)])
    fields = {
        "batch": geo.batch, "input_size": geo.inputs, "filters": geo.filters, "units": geo.units,
        "rank": int(op.attrs.rank), "memory": geo.memory,
        "input_offset": -q["x_zp"], "state_zero_point": q["state_zp"], "output_offset": q["out_zp"],
        "feature_quant": quant(*q["scale1"]), "output_quant": quant(*q["scale2"]),
        "weights_feature": CRef("weights_feature"), "weights_time": CRef("weights_time"),
        "bias": CRef("bias") if bias is not None else None,
        "state": CState(state.name),
    }
    fn = "mcu_svdf_state_s16_s8" if wide else "mcu_svdf_s8"
    return KernelParams(fn, "mcu_svdf_params", fields, arrays=arrays)


register("svdf", SvdfAttrs, _reference, kernel_params)
