"""The numpy golden model: integer-only inference with TFLite Micro's arithmetic, bit for bit.

Every generated C kernel is compared against this module, and this module is compared against tflite-runtime
2.14's reference kernels (`OpResolverType.BUILTIN_REF`), which agree bit for bit with TFLite Micro
(DESIGN.md §6). The arithmetic itself lives with each operator (mcutool/ops/<op>.py, one module an op, each
naming the TFLite kernel it follows; shared fixed-point math in mcutool/ops/fixedpoint.py); this module runs a
`Graph` through them op by op (`run`, `run_op`) and re-exports the operators' functions under one name, so
`reference.conv2d_int8`, `reference.quantize_multiplier`... stay where callers expect them.
"""
from __future__ import annotations

import numpy as np

from mcutool.errors import UserError
from mcutool.ir import Graph, Op, Tensor
from mcutool.ops import op_def
from mcutool.ops.common import unsupported, where
from mcutool.ops.fixedpoint import NP_DTYPES
# The operators' functions, re-exported so that callers keep using reference.<name>:
from mcutool.ops.fixedpoint import (INT32_MIN, INT32_MAX, dtype_range, i64, wrap_int32, c_div,
                                    saturating_rounding_doubling_high_mul, rounding_divide_by_pot,
                                    multiply_by_quantized_multiplier, multiply_by_quantized_multiplier_greater_than_one,
                                    saturating_rounding_multiply_by_pot, rounding_half_sum,
                                    exp_on_interval_between_negative_one_quarter_and_0_excl, exp_on_negative_values,
                                    one_over_one_plus_x_for_x_in_0_1, count_leading_zeros_u32, get_reciprocal,
                                    logistic_fixed_point, f32, tflite_round, quantize_multiplier, quantize_multipliers,
                                    quantize_multiplier_smaller_than_one_exp, quantize_multiplier_greater_than_one,
                                    calculate_input_radius, activation_range, requantize_multiplier, expf, clamp,
                                    cast_to, requantize_accumulator, requantize)
from mcutool.ops.conv import (legacy_conv_output_multiplier, conv_output_multipliers, weighted_op_multipliers,
                              conv2d_accumulate, conv2d_int8, depthwise_conv2d_accumulate, depthwise_conv2d_int8,
                              conv2d_float, depthwise_conv2d_float)
from mcutool.ops.fully_connected import (fully_connected_accumulate, fully_connected_int8, fully_connected_float)
from mcutool.ops.pool import (avg_pool2d_int8, max_pool2d_int8, avg_pool2d_float, max_pool2d_float)
from mcutool.ops.add import (AddParams, add_params, add_int8)
from mcutool.ops.mul import (mul_output_multiplier, mul_int8)
from mcutool.ops.softmax import (SoftmaxParams, SOFTMAX_SCALED_DIFF_INTEGER_BITS, SOFTMAX_ACCUMULATION_INTEGER_BITS,
                                 softmax_params, softmax_int8, softmax_float)
from mcutool.ops.logistic import (logistic_lut, LogisticParams, logistic_params, logistic_int8_lut,
                                  logistic_int8_fixed_point, logistic_float)
from mcutool.ops.mean import (fold_mean_divisor, mean_multiplier, mean_int8)
from mcutool.ops.pad import pad
from mcutool.ops.transpose import transpose
from mcutool.ops.quantize import (quantize_float, dequantize)
from mcutool.ops.binary import (pack_bits, unpack_bits, binary_sign_bits, sign_int8, binary_conv2d_dot, threshold_bits,
                                sign_thresholds, binary_max_pool2d_bits)


def _check_input(t: Tensor, value) -> np.ndarray:
    arr = np.asarray(value)
    want = np.dtype(NP_DTYPES[t.dtype])
    if arr.dtype != want:
        raise UserError(f"graph input {t.name!r} must be {t.dtype} of shape {t.shape}; got {arr.dtype}")
    if tuple(arr.shape) != t.shape:
        raise UserError(f"graph input {t.name!r} must have shape {t.shape}; got {tuple(arr.shape)}")
    return arr


def _checked(graph: Graph, op: Op, name: str, value) -> np.ndarray:
    t = graph.tensor(name)
    value = np.asarray(value)
    if value.size != t.size:
        raise UserError(f"{where(op)}: computed {value.size} values for {name!r} of shape {t.shape}")
    return cast_to(value.reshape(t.shape), t.dtype)


def run_op(graph: Graph, op: Op, args: list, state: dict[str, np.ndarray] | None = None) -> list[np.ndarray]:
    """Execute one op on numpy values (in the order of op.inputs; None for an absent optional input);
    returns its outputs with the output tensors' dtypes and shapes. A stateful op's reference returns its
    outputs followed by the new values of its variable inputs, which are written into `state` (by name)."""
    spec = op_def(op.kind)
    if spec is None:
        raise unsupported(op, "this op kind is not implemented")
    outs = list(spec.reference(graph, op, list(args)))
    result = [_checked(graph, op, name, value) for name, value in zip(op.outputs, outs)]
    variables = [n for n in op.inputs if n and graph.tensor(n).variable]
    if state is not None:
        for name, value in zip(variables, outs[len(op.outputs):]):
            state[name] = _checked(graph, op, name, value)
    return result


def reset_state(graph: Graph) -> dict[str, np.ndarray]:
    """The variable tensors as TFLite Micro resets them (ResetVariableTensors): an int8 variable holds its zero
    point, every other one 0."""
    state = {}
    for t in graph.state_tensors():
        fill = int(t.quant.zero_point[0]) if t.dtype == "int8" and t.quant is not None else 0
        state[t.name] = np.full(t.shape, fill, dtype=NP_DTYPES[t.dtype])
    return state


def run(graph: Graph, inputs: dict[str, np.ndarray], keep: bool = False,
        state: dict[str, np.ndarray] | None = None) -> dict[str, np.ndarray]:
    """Execute graph.ops in order on numpy arrays.

    `inputs` maps every graph input name to an array of exactly the declared dtype and shape. Returns the
    graph outputs by name, or, with keep=True, the value of every tensor (constants included). A stateful graph
    reads and updates `state` (reset_state's dict, carried from one inference to the next); without it, the
    inference runs from a freshly reset state."""
    if state is None:
        state = reset_state(graph)
    values: dict[str, np.ndarray] = dict(state)
    for name, t in graph.tensors.items():
        if t.is_const:
            values[name] = np.asarray(t.data)
    missing = [n for n in graph.inputs if n not in inputs]
    if missing:
        raise UserError(f"graph {graph.name!r}: no value given for input(s) {missing}")
    for name in graph.inputs:
        values[name] = _check_input(graph.tensor(name), inputs[name])
    for op in graph.ops:
        args = []
        for n in op.inputs:
            if not n:
                args.append(None)
            elif n not in values:
                raise UserError(f"{where(op)} reads tensor {n!r} before any op produces it")
            else:
                args.append(values[n])
        for name, value in zip(op.outputs, run_op(graph, op, args, state)):
            values[name] = value
        values.update(state)
    if keep:
        return values
    return {n: values[n] for n in graph.outputs}


def run_sequence(graph: Graph, inputs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Run a sequence: `inputs` holds each graph input with a leading axis of T steps; the state is reset once,
    before the first step, and carried across the steps. Returns each output with the same leading axis."""
    steps = {int(np.shape(v)[0]) for v in inputs.values()}
    if len(steps) != 1:
        raise UserError(f"graph {graph.name!r}: the inputs of a sequence hold different step counts {sorted(steps)}")
    state = reset_state(graph)
    outs = [run(graph, {n: v[i] for n, v in inputs.items()}, state=state) for i in range(steps.pop())]
    return {n: np.stack([o[n] for o in outs]) for n in graph.outputs}
