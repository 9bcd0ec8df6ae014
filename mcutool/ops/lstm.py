"""UNIDIRECTIONAL_SEQUENCE_LSTM (a stateful op): TFLite Micro's integer LSTM (`micro/kernels/lstm_eval.h`
EvalLstm / LstmStep, Prepare in `unidirectional_sequence_lstm.cc`) in the 8x8->16 scheme: int8 input, hidden state
and output, int8 weights, int32 biases, int16 cell state. The standard Keras LSTM only (no peephole, projection or
layer norm, as TFLite Micro's kernel).

Per time step: each gate is FC(x) + FC(h) (int8 -> int16 at scale 2^-12, saturating add), then sigmoid (the cell
gate: the fused activation, tanh) in int16 Q0.15; cell = forget * cell + input * cell_gate (int16 multiplies,
saturating add, clipped by cell_clip); hidden = tanh(cell) * output_gate, requantized to the hidden state's int8;
the output at step t is the new hidden state. The hidden and cell states are variable tensors (they persist across
invocations, mcu_model_reset() resets them). Kernel: runtime/mcu_lstm_s8.c.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from mcutool.errors import UserError
from mcutool.ir import Graph, Op
from mcutool.ops import register
from mcutool.ops.common import qparams, where
from mcutool.ops.conv import legacy_conv_output_multiplier
from mcutool.ops.fixedpoint import (f32, i64, logistic_int16, multiply_by_quantized_multiplier,
                                    quantize_multiplier, tanh_int16, wrap_int32)
from mcutool.ops.kernel import CRef, CState, KernelParams, int8_qparams, kernel_error, quant

GATES = ("input", "forget", "cell", "output")
# TFLite's 24 LSTM inputs (lstm_shared.h): 1-4 input-to-gate weights, 5-8 recurrent-to-gate weights, 12-15 gate
# biases (input, forget, cell, output), 18 hidden (output) state, 19 cell state; the rest are LSTM variants.
INPUT_WEIGHTS, RECURRENT_WEIGHTS, BIASES = (1, 2, 3, 4), (5, 6, 7, 8), (12, 13, 14, 15)
HIDDEN_STATE, CELL_STATE = 18, 19
VARIANTS = (9, 10, 11, 16, 17, 20, 21, 22, 23)
GATE_INPUT_SCALE = 2.0 ** -12   # FC outputs: Q3.12 (PrepareGateParametersInteger's nonlinear_input_scale)
GATE_OUTPUT_SCALE = 2.0 ** -15  # sigmoid / tanh outputs: Q0.15


@dataclass
class LstmAttrs:
    activation: str = "tanh"   # the cell gate's nonlinearity: tanh (Keras) or sigmoid
    cell_clip: float = 0.0
    time_major: bool = False
    reset_each_call: bool = False  # ONNX's LSTM: every inference starts from the zero state (TFLite's keeps it)


@dataclass(frozen=True)
class LstmQuant:
    """Everything LstmStep needs besides the data (UnidirectionalSequenceLstmPrepare, integer path)."""
    x_zp: int
    h_zp: int
    input_fc: tuple   # per gate (multiplier, shift) of FC(input) -> Q3.12
    recurrent_fc: tuple
    forget_cell_mul: tuple   # forget (Q0.15) x cell -> cell
    input_mul: tuple         # input gate x cell gate (Q0.15 x Q0.15) -> cell
    hidden_mul: tuple        # tanh(cell) x output gate -> hidden (int8, its zero point)
    cell_tanh_shift: tuple   # (input multiplier, left shift) of Tanh(cell) (lstm_internal::Tanh)
    cell_clip: int           # quantized cell clip, 0: none


def _mul_multiplier(s1: float, s2: float, so) -> tuple[int, int]:
    """CreateInterGateMulParams: (double)s1 * (double)s2 / (double)s_out."""
    return quantize_multiplier(float(f32(s1)) * float(f32(s2)) / float(f32(so)))


def _checked_log2(x: float) -> int:
    """TFLite's CheckedLog2: log2 in float32, rounded; the cell state's scale must be a power of two."""
    value = np.float32(math.log(np.float32(x))) * np.float32(1.0 / math.log(2.0))
    rounded = round(float(value))
    if abs(float(value) - rounded) >= 1e-3:
        raise UserError(f"the LSTM cell state's scale {x} is not a power of two (TFLite's integer LSTM needs one)")
    return int(rounded)


def _check(graph: Graph, op: Op):
    ins = op.inputs + [""] * (24 - len(op.inputs))
    if len(op.inputs) != 24 or any(ins[i] for i in VARIANTS):
        raise UserError(f"{where(op)}: only the standard LSTM (24 inputs; no peephole, projection or layer "
                        "normalization) runs, as in TFLite Micro")
    if not all(ins[i] for i in INPUT_WEIGHTS + RECURRENT_WEIGHTS + BIASES):
        raise UserError(f"{where(op)}: a CIFG LSTM (no input gate) is not supported, as in TFLite Micro")
    if op.attrs.time_major:
        raise UserError(f"{where(op)}: a time-major LSTM is not supported yet; export it batch-major")
    x, h, c = (graph.tensor(ins[i]) for i in (0, HIDDEN_STATE, CELL_STATE))
    if not (h.variable and c.variable):
        raise UserError(f"{where(op)}: its hidden and cell states must be variable tensors")
    if x.dtype != "int8" or h.dtype != "int8" or c.dtype != "int16" \
            or any(graph.tensor(ins[i]).dtype != "int8" for i in INPUT_WEIGHTS + RECURRENT_WEIGHTS) \
            or any(graph.tensor(ins[i]).dtype != "int32" for i in BIASES):
        raise UserError(f"{where(op)}: the integer LSTM runs int8 input and hidden state, int16 cell state, int8 "
                        f"weights and int32 biases (TFLite's 8x8->16 scheme); this one has input {x.dtype}, hidden "
                        f"{h.dtype}, cell {c.dtype}")
    if op.attrs.activation not in ("tanh", "sigmoid"):
        raise UserError(f"{where(op)}: cell gate activation {op.attrs.activation!r} (tanh or sigmoid only)")
    return ins, x, h, c


def lstm_quant(graph: Graph, op: Op) -> LstmQuant:
    ins, x, h, c = _check(graph, op)
    sx, zx = qparams(op, x, "input")
    sh, zh = qparams(op, h, "hidden state")
    sc, _ = qparams(op, c, "cell state")
    weights = lambda idx: [qparams(op, graph.tensor(ins[i]), "weights")[0] for i in idx]  # noqa: E731
    input_fc = tuple(legacy_conv_output_multiplier(sx, w, GATE_INPUT_SCALE) for w in weights(INPUT_WEIGHTS))
    recurrent_fc = tuple(legacy_conv_output_multiplier(sh, w, GATE_INPUT_SCALE) for w in weights(RECURRENT_WEIGHTS))
    power = _checked_log2(float(sc))
    shift = 15 + power - 3
    cell_tanh = (0, shift) if shift >= 0 else (3, -shift)
    clip = 0
    if op.attrs.cell_clip > 0:
        clip = int(min(max(float(f32(op.attrs.cell_clip)) / float(sc), -32768.0), 32767.0))
    return LstmQuant(zx, zh, input_fc, recurrent_fc,
                     _mul_multiplier(GATE_OUTPUT_SCALE, sc, sc),
                     _mul_multiplier(GATE_OUTPUT_SCALE, GATE_OUTPUT_SCALE, sc),
                     _mul_multiplier(GATE_OUTPUT_SCALE, GATE_OUTPUT_SCALE, sh),
                     cell_tanh, clip)


def _fc_int16(x, x_zp, w, bias, multiplier) -> np.ndarray:
    """reference_integer_ops::FullyConnected, int8 -> int16 (output zero point 0)."""
    acc = wrap_int32((i64(x) - x_zp) @ i64(w).T + (0 if bias is None else i64(bias)))
    return np.clip(multiply_by_quantized_multiplier(acc, *multiplier), -32768, 32767)


def _mul(a, b, multiplier, zp: int, lo: int, hi: int) -> np.ndarray:
    """reference_integer_ops::MulElementwise on int16 inputs (offsets 0)."""
    return np.clip(multiply_by_quantized_multiplier(i64(a) * i64(b), *multiplier) + zp, lo, hi)


def lstm_int8(x, weights_x, weights_h, biases, hidden, cell, q: LstmQuant, cell_sigmoid: bool):
    """The integer LSTM over x (batch, time, input); returns (output (batch, time, units), hidden, cell)."""
    x = i64(x)
    batch, steps, _ = x.shape
    h = i64(hidden).reshape(batch, -1).copy()
    c = i64(cell).reshape(batch, -1).copy()
    out = np.zeros((batch, steps, h.shape[1]), dtype=np.int64)
    gate_index = {g: k for k, g in enumerate(GATES)}

    def gate(name, xt, hb, activation):
        k = gate_index[name]
        a = _fc_int16(xt, q.x_zp, weights_x[k], biases[k], q.input_fc[k])
        r = _fc_int16(hb, q.h_zp, weights_h[k], None, q.recurrent_fc[k])
        s = np.clip(a + r, -32768, 32767)
        return logistic_int16(s) if activation == "sigmoid" else tanh_int16(s)

    for b in range(batch):
        for t in range(steps):
            xt, hb = x[b, t], h[b]
            f = gate("forget", xt, hb, "sigmoid")
            i = gate("input", xt, hb, "sigmoid")
            z = gate("cell", xt, hb, "sigmoid" if cell_sigmoid else "tanh")
            cb = _mul(f, c[b], q.forget_cell_mul, 0, -32768, 32767)
            cb = np.clip(cb + _mul(i, z, q.input_mul, 0, -32768, 32767), -32768, 32767)
            if q.cell_clip > 0:
                cb = np.clip(cb, -q.cell_clip, q.cell_clip)
            c[b] = cb
            o = gate("output", xt, hb, "sigmoid")
            h[b] = _mul(tanh_int16(cb, *q.cell_tanh_shift), o, q.hidden_mul, q.h_zp, -128, 127)
            out[b, t] = h[b]
    return out, h.reshape(np.shape(hidden)), c.reshape(np.shape(cell))


def _sigmoid(v):
    return (1.0 / (1.0 + np.exp(-v))).astype(np.float32)


def lstm_float(x, weights_x, weights_h, biases, hidden, cell, cell_sigmoid: bool = False, cell_clip: float = 0.0):
    """The float32 LSTM (TFLite's float kernel, gates input, forget, cell, output) over x (batch, time, input).
    Returns (output (batch, time, units), hidden, cell, the cell state after every step (batch, time, units)) --
    the last for calibration, which needs the cell state's range over all steps, not only its final value."""
    x = np.asarray(x, np.float32)
    batch, steps, _ = x.shape
    h = np.asarray(hidden, np.float32).reshape(batch, -1).copy()
    c = np.asarray(cell, np.float32).reshape(batch, -1).copy()
    out = np.zeros((batch, steps, h.shape[1]), np.float32)
    cells = np.zeros_like(out)
    wx = [np.asarray(w, np.float32) for w in weights_x]
    wh = [np.asarray(w, np.float32) for w in weights_h]
    b = [np.zeros(w.shape[0], np.float32) if v is None else np.asarray(v, np.float32) for w, v in zip(wx, biases)]
    for t in range(steps):
        i, f, z, o = (x[:, t] @ wx[k].T + h @ wh[k].T + b[k] for k in range(4))
        c = _sigmoid(f) * c + _sigmoid(i) * (_sigmoid(z) if cell_sigmoid else np.tanh(z))
        if cell_clip > 0:
            c = np.clip(c, -cell_clip, cell_clip)
        h = _sigmoid(o) * np.tanh(c)
        out[:, t], cells[:, t] = h, c
    return out, h.reshape(np.shape(hidden)), c.reshape(np.shape(cell)), cells


def float_operands(graph: Graph, op: Op, values: dict) -> tuple:
    """(x, input weights, recurrent weights, biases, hidden, cell) of a float LSTM from `values` by tensor name."""
    get = lambda i: values.get(op.inputs[i]) if op.inputs[i] else None  # noqa: E731
    return (get(0), [get(i) for i in INPUT_WEIGHTS], [get(i) for i in RECURRENT_WEIGHTS], [get(i) for i in BIASES],
            get(HIDDEN_STATE), get(CELL_STATE))


def _reference(graph: Graph, op: Op, args):
    if op.attrs.reset_each_call:  # the states as mcu_model_reset() leaves them (reference.reset_state)
        h, c = (graph.tensor(op.inputs[i]) for i in (HIDDEN_STATE, CELL_STATE))
        args[HIDDEN_STATE] = np.full(h.shape, 0 if h.quant is None else int(h.quant.zero_point[0]))
        args[CELL_STATE] = np.zeros(c.shape)
    if graph.tensor(op.inputs[0]).dtype == "float32":  # a float model's LSTM (ONNX), for calibration
        out, h, c, _ = lstm_float(args[0], [args[i] for i in INPUT_WEIGHTS], [args[i] for i in RECURRENT_WEIGHTS],
                                  [args[i] for i in BIASES], args[HIDDEN_STATE], args[CELL_STATE],
                                  op.attrs.activation == "sigmoid", op.attrs.cell_clip)
        return [out, h, c]
    q = lstm_quant(graph, op)
    wx = [args[i] for i in INPUT_WEIGHTS]
    wh = [args[i] for i in RECURRENT_WEIGHTS]
    biases = [args[i] for i in BIASES]
    out, h, c = lstm_int8(args[0], wx, wh, biases, args[HIDDEN_STATE], args[CELL_STATE], q,
                          op.attrs.activation == "sigmoid")
    return [out, h, c]  # the output, then the new values of its variable inputs (hidden, cell) in input order


def kernel_params(graph: Graph, op: Op) -> KernelParams:
    """mcu_lstm_s8: weights and biases as companion arrays (gate order input, forget, cell, output), the states as
    model.c's arrays; four int16 gate vectors of scratch on the kernel's stack (units <= MCU_LSTM_MAX_UNITS)."""
    ins, x, h, c = _check(graph, op)
    int8_qparams(op, x, "input")
    q = lstm_quant(graph, op)
    batch, steps, inputs = x.shape
    units = int(graph.tensor(ins[INPUT_WEIGHTS[0]]).shape[0])
    if units > 128:
        raise kernel_error(op, f"{units} LSTM units; the kernel keeps its gate vectors on the stack for up to 128")
    arrays = {
        "weights_x": ("int8_t", [int(v) for i in INPUT_WEIGHTS for v in graph.tensor(ins[i]).data.reshape(-1)]),
        "weights_h": ("int8_t", [int(v) for i in RECURRENT_WEIGHTS for v in graph.tensor(ins[i]).data.reshape(-1)]),
        "bias": ("int32_t", [int(v) for i in BIASES for v in graph.tensor(ins[i]).data.reshape(-1)]),
        "input_fc": ("mcu_quant", [quant(*m) for m in q.input_fc]),
        "recurrent_fc": ("mcu_quant", [quant(*m) for m in q.recurrent_fc]),
    }
    fields = {
        "batch": int(batch), "time_steps": int(steps), "input_size": int(inputs), "units": units,
        "input_offset": -q.x_zp, "hidden_zero_point": q.h_zp,
        "weights_x": CRef("weights_x"), "weights_h": CRef("weights_h"), "bias": CRef("bias"),
        "input_fc": CRef("input_fc"), "recurrent_fc": CRef("recurrent_fc"),
        "forget_cell_mul": quant(*q.forget_cell_mul), "input_mul": quant(*q.input_mul),
        "hidden_mul": quant(*q.hidden_mul),
        "cell_tanh_multiplier": q.cell_tanh_shift[0], "cell_tanh_shift": q.cell_tanh_shift[1],
        "cell_clip": q.cell_clip, "cell_gate_sigmoid": int(op.attrs.activation == "sigmoid"),
        "reset_each_call": int(op.attrs.reset_each_call),
        "hidden": CState(h.name), "cell": CState(c.name),
    }
    return KernelParams("mcu_lstm_s8", "mcu_lstm_params", fields, arrays=arrays)


register("lstm", LstmAttrs, _reference, kernel_params)
