"""Post-training quantization of a float graph to TFLite's int8 scheme (DESIGN.md §7).

    ranges = calibrate(graph, samples)            # min/max of every activation over the calibration set
    qgraph = quantize_graph(graph, ranges)        # same ops, int8 tensors; float I/O kept at the border
    fw = integer_io(qgraph)                       # the border QUANTIZE/DEQUANTIZE dropped: int8 I/O for firmware

Weights: int8 symmetric, per output channel for conv2d/depthwise/transpose_conv2d (axis 0 / 3 / 0), per tensor for
fully_connected.
Biases: int32 at scale s_in·s_w (zero point 0). Activations: int8 asymmetric from the calibrated range (always
containing 0). Ops that TFLite requires to keep their input's quantization (reshape, pools, pad, transpose)
keep it; softmax and logistic outputs are fixed at scale 1/256, zero point -128. The graph's float inputs
get a QUANTIZE op and its float outputs a DEQUANTIZE op, so the result is the same IR an imported int8 model
with float I/O gives, and everything downstream is shared.
"""
from __future__ import annotations

import copy
import dataclasses
import warnings
from dataclasses import dataclass

import numpy as np

from .. import reference
from ..errors import UserError
from ..ir import Graph, LutAttrs, NoAttrs, Op, Quant, Tensor
from ..ops import lstm
from ..ops.float_function import table as function_table
from ..ops.strided_slice import axis_ranges
from .gptq import gptq_clip_round

SAME_QUANT_OPS = ("reshape", "max_pool2d", "avg_pool2d", "pad", "transpose", "strided_slice",
                  "relu6",  # TFLite Micro's int8 RELU6 clamps raw values
                  "split", "slice", "gather", "resize_nearest_neighbor",  # move values without rescaling them
                  "resize_bilinear")  # TFLite's int8 kernel needs the input's quantization
FIXED_OUTPUT_QUANT = {"softmax": (1.0 / 256.0, -128), "logistic": (1.0 / 256.0, -128),
                      "tanh": (1.0 / 128.0, 0), "l2_normalization": (1.0 / 128.0, 0)}
# ops whose inputs and output share one quantization (TFLite compares raw values): the output gets the union of
# the inputs' ranges, and an input quantized otherwise is requantized to it by an int8 QUANTIZE first
SHARED_QUANT_OPS = ("maximum", "minimum")
# ops whose constant float operands are quantized like activations (per tensor, from their own range)
CONST_ACTIVATION_OPERANDS = ("maximum", "minimum", "prelu", "squared_difference", "div", "mul", "add")
WEIGHTED_OPS = {"conv2d": 0, "depthwise_conv2d": 3, "fully_connected": None,  # per-channel axis (None: per tensor)
                "transpose_conv2d": 0}


@dataclass
class Range:
    lo: float
    hi: float

    def widen(self, values: np.ndarray) -> "Range":
        return Range(min(self.lo, float(values.min())), max(self.hi, float(values.max())))


BATCH = 64  # samples per reference call: the numpy executor runs a whole batch in one pass


def _batched_op(op: Op) -> Op:
    """`op` as it runs on a batch: a strided slice that keeps the whole batch axis of 1 (start 0, one element,
    no shrink) keeps the whole batch of n (its begin/end mask bit 0 set)."""
    a = op.attrs
    if op.kind != "strided_slice" or a.shrink_axis_mask & 1 or axis_ranges((1,), a)[0] != (0, 1, 1):
        return op
    return Op(op.name, op.kind, op.inputs, op.outputs,
              dataclasses.replace(a, begin_mask=a.begin_mask | 1, end_mask=a.end_mask | 1))


def batched(graph: Graph, n: int) -> Graph:
    """A copy of `graph` whose activations have batch size n (constants are shared, not copied)."""
    g = Graph(name=graph.name, ops=[_batched_op(op) for op in graph.ops], inputs=list(graph.inputs),
              outputs=list(graph.outputs))
    for name, t in graph.tensors.items():
        if t.is_const or not t.shape or t.shape[0] != 1:
            g.tensors[name] = t
        else:
            g.tensors[name] = Tensor(t.name, (n, *t.shape[1:]), t.dtype, t.quant, variable=t.variable)
    return g


def batches(graph: Graph, samples: dict[str, np.ndarray]):
    """The samples BATCH at a time: yields (graph batched to the batch's size, the batch's inputs). One at a time
    when some activation's axis 0 is not a batch axis of 1 (a transformer's (tokens, 1, features) between the
    transposes of PyTorch's nn.MultiheadAttention): stacking samples on it would mix them."""
    n = len(next(iter(samples.values())))
    step = BATCH if all(t.shape and t.shape[0] == 1 for t in graph.tensors.values() if not t.is_const) else 1
    for start in range(0, n, step):
        stop = min(n, start + step)
        yield batched(graph, stop - start), {k: np.ascontiguousarray(samples[k][start:stop]).astype(np.float32)
                                             for k in graph.inputs}


def run_batches(graph: Graph, samples: dict[str, np.ndarray], keep: bool = False):
    """reference.run over the samples BATCH at a time; yields each batch's values (sample axis first)."""
    for g, x in batches(graph, samples):
        yield reference.run(g, x, keep=keep)


SAMPLED_VALUES = 1 << 16  # values of each activation kept for the percentile and MSE ranges


def sample_values(v: np.ndarray, rng: np.random.Generator, share: float = 1.0) -> np.ndarray:
    """About SAMPLED_VALUES * share of v's values, drawn at random. (A strided pick sees only some channels of
    an NHWC tensor whenever the stride is a multiple of the channel count: the percentile and MSE ranges were
    then those of one channel, and clipped the others -- 3.9 / 4.9 dB where min/max gave 17.9 dB.)"""
    flat = v.reshape(-1)
    k = max(1, round(SAMPLED_VALUES * share))
    return flat if flat.size <= k else flat[rng.integers(0, flat.size, k)]


def calibrate(graph: Graph, samples: dict[str, np.ndarray], method: str = "minmax",
              percentile: float = 99.99) -> dict[str, Range]:
    """Range of every float activation over the samples (axis 0 of each array is the sample axis).

    method "minmax" keeps the extremes; "percentile" clips each tensor's range to the given percentile of its
    values per side, pooled over all samples (robust to outliers); "mse" to the clip whose int8 rounding error
    on the tensor itself is smallest. (The default of quantize_model, "auto", chooses per tensor: autocalib.py.)"""
    if method not in ("minmax", "percentile", "mse"):
        raise UserError(f"unknown calibration method {method!r}: use minmax, percentile or mse.")
    _check_samples(graph, samples)
    stats = activation_stats(graph, samples)
    if method == "percentile":
        return {name: Range(float(np.percentile(v, 100 - percentile)), float(np.percentile(v, percentile)))
                for name, v in stats.values.items()}
    if method == "mse":
        return {name: mse_range(v, stats.ranges[name]) for name, v in stats.values.items()}
    return stats.ranges


@dataclass
class Stats:
    ranges: dict[str, Range]        # min/max of each float activation
    values: dict[str, np.ndarray]   # a random sample of its values (sample_values)


def activation_stats(graph: Graph, samples: dict[str, np.ndarray]) -> Stats:
    """Min/max and a seeded random sample of the values of every float activation, in one float pass."""
    rng = np.random.default_rng(0)
    n = len(next(iter(samples.values())))
    ranges: dict[str, Range] = {}
    seen: dict[str, list[np.ndarray]] = {}
    for values in run_batches(graph, samples, keep=True):
        values.update(lstm_cell_values(graph, values))
        for name, v in values.items():
            t = graph.tensor(name)
            if t.is_const or t.dtype != "float32":
                continue
            ranges[name] = ranges[name].widen(v) if name in ranges else Range(float(v.min()), float(v.max()))
            seen.setdefault(name, []).append(sample_values(v, rng, len(v) / n))
    return Stats(ranges, {name: np.concatenate(chunks) for name, chunks in seen.items()})


def lstm_cell_values(graph: Graph, values: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Each float LSTM's cell state after every step of the batch (the state tensor in `values` holds only the
    last): its int16 scale comes from the range over all steps, as TFLite's calibration records it."""
    cells = {}
    for op in graph.ops:
        if op.kind == "lstm" and graph.tensor(op.inputs[0]).dtype == "float32":
            x, wx, wh, b, _, _ = lstm.float_operands(graph, op, values)
            h0, c0 = (np.zeros_like(values[op.inputs[i]]) for i in (lstm.HIDDEN_STATE, lstm.CELL_STATE))
            cells[op.inputs[lstm.CELL_STATE]] = lstm.lstm_float(x, wx, wh, b, h0, c0, op.attrs.activation == "sigmoid",
                                                               op.attrs.cell_clip)[3]
    return cells


def mse_range(values: np.ndarray, full: Range) -> Range:
    """The clipped range (a fraction of the min/max range) whose int8 rounding error is smallest on `values`."""
    best, best_err = full, None
    for frac in np.linspace(1.0, 0.3, 36):
        r = Range(full.lo * frac, full.hi * frac)
        q = activation_quant(r)
        s, z = float(q.scale[0]), int(q.zero_point[0])
        fake = (np.clip(np.round(values / s) + z, -128, 127) - z) * s
        err = float(np.mean((fake - values) ** 2))
        if best_err is None or err < best_err:
            best, best_err = r, err
    return best


def _check_samples(graph: Graph, samples: dict[str, np.ndarray]) -> None:
    for name in graph.inputs:
        if graph.tensor(name).dtype != "float32":
            raise UserError(f"input {name!r} is {graph.tensor(name).dtype}: only float models are quantized.")
        if name not in samples:
            raise UserError(f"the calibration data has no samples for input {name!r} (it has: "
                            f"{', '.join(samples) or 'nothing'}); key each array by the model's input name.")
        if graph.tensor(name).shape[:1] != (1,):
            raise UserError(f"input {name!r} has shape {list(graph.tensor(name).shape)}: its first axis is not a "
                            "batch of 1, and calibration stacks samples on that axis. Export the model with the batch "
                            "first and of size 1 (a time-major ONNX LSTM input: layout=1, or batch_first=True in "
                            "PyTorch).")
        want = graph.tensor(name).shape[1:]
        if tuple(samples[name].shape[1:]) != tuple(want):
            raise UserError(f"calibration samples for {name!r} have shape {list(samples[name].shape)}; expected "
                            f"(N, {', '.join(map(str, want))}) — samples stacked on the batch axis.")


def activation_quant(r: Range) -> Quant:
    """int8 asymmetric parameters for [lo, hi] widened to contain 0 (TFLite's nudging: zero is exact)."""
    lo, hi = min(r.lo, 0.0), max(r.hi, 0.0)
    if not np.isfinite([lo, hi]).all():  # the float model overflows (absurd weights or inputs): no int8 scale
        raise UserError(f"calibration found a non-finite activation range [{lo}, {hi}]: the float model's "
                        "arithmetic overflows on the calibration data (weights or inputs far too large).")
    if hi - lo < 1e-8:
        hi = lo + 1e-8
    scale = (hi - lo) / 255.0
    zero_point = int(np.clip(round(-128 - lo / scale), -128, 127))
    return Quant(np.float32(scale), zero_point)


INT16_OPS = ("conv2d", "depthwise_conv2d", "fully_connected", "add", "avg_pool2d", "max_pool2d", "reshape",
             "softmax", "relu", "relu6")  # ops mcutool's quantizer may run in TFLite's 16x8 scheme
FIXED_OUTPUT_QUANT16 = {"softmax": 1.0 / 32768.0, "logistic": 1.0 / 32768.0, "tanh": 1.0 / 32768.0}


def activation_quant16(r: Range) -> Quant:
    """int16 parameters for [lo, hi] in TFLite's 16x8 scheme: symmetric, zero point 0."""
    amax = max(abs(min(r.lo, 0.0)), abs(max(r.hi, 0.0)), 1e-8)
    if not np.isfinite(amax):
        activation_quant(r)  # its user error
    return Quant(np.float32(amax / 32767.0), 0)


def weight_quant(w: np.ndarray, axis: int | None, bias: np.ndarray | None = None,
                 input_scale: float | None = None, bits: int = 8,
                 hessian: np.ndarray | None = None) -> tuple[np.ndarray, Quant]:
    """Symmetric int8 (or, with bits=4, int4: -7..7) weights (zero point 0), per channel along `axis` or per
    tensor. Given the layer's float bias and input scale, a scale under which the int32 bias would overflow is
    raised (`bias_safe_scale`). Given the second moments of a conv's / fully connected layer's inputs
    (`hessian`, K x K over its output channel's K weights), low-bit weights are rounded by GPTQ (gptq.py)."""
    qmax = 2 ** (bits - 1) - 1
    if axis is None:
        amax = np.array([np.abs(w).max()])
    else:
        amax = np.abs(np.moveaxis(w, axis, 0).reshape(w.shape[axis], -1)).max(axis=1)
    shape = [1] * w.ndim
    if axis is not None:
        shape[axis] = -1
    if hessian is not None and bits < 8 and axis in (0, None):  # clip and round by the layer's output error
        rows = w.reshape(w.shape[0], -1)
        fix = (lambda s: bias_safe_scale(s, bias, input_scale)) if bias is not None else (lambda s: s)
        q, scale = gptq_clip_round(rows, amax, hessian, qmax, fix)
        scale = np.asarray(scale, np.float32)
        return (q.reshape(w.shape),
                Quant(scale, np.zeros(scale.shape, np.int64), axis if axis is not None and scale.size > 1 else None))
    if bits < 8:  # few levels: clip each channel where its rounding error is smallest (mse_weight_scale)
        amax = mse_weight_amax(w, amax, shape, qmax)
    scale = np.where(amax > 0, amax / qmax, 1.0).astype(np.float32)
    if bias is not None:
        scale = bias_safe_scale(scale, bias, input_scale)
    q = np.clip(np.round(w / scale.reshape(shape)), -qmax, qmax).astype(np.int8)
    return q, Quant(scale, np.zeros(scale.shape, np.int64), axis if axis is not None and scale.size > 1 else None)


def mse_weight_amax(w: np.ndarray, amax: np.ndarray, shape: list[int], qmax: int) -> np.ndarray:
    """Per channel (or tensor), the clipping bound among 100 %..40 % of max |w| whose symmetric rounding to
    -qmax..qmax has the smallest squared error: with 15 levels (int4) the extremes are worth clipping."""
    best, best_err = amax.copy(), None
    axes = tuple(i for i, s in enumerate(shape) if s == 1) if len(amax) > 1 else None
    for frac in np.linspace(1.0, 0.4, 61):
        bound = amax * frac
        s = np.where(bound > 0, bound / qmax, 1.0).reshape(shape)
        err = np.sum((np.clip(np.round(w / s), -qmax, qmax) * s - w) ** 2, axis=axes)
        err = np.atleast_1d(err)
        if best_err is None:
            best_err = err
            continue
        better = err < best_err
        best, best_err = np.where(better, bound, best), np.where(better, err, best_err)
    return best


INT32_MAX = 2**31 - 1


def bias_safe_scale(scale: np.ndarray, bias: np.ndarray, input_scale: float) -> np.ndarray:
    """TFLite's AdjustWeightsForBiasScale (tensorflow/lite/tools/optimize/quantization_utils.cc): where the
    quantized bias |b| / (s_in * s_w) would reach half the int32 range, the weight scale becomes
    2 |b| / (s_in * (2^31 - 1)), so that bias is 2^30 -- a (near-)dead channel, weights ~1e-30 but bias not 0,
    whose weights then quantize to 0. Per tensor (one scale), the largest |b| decides."""
    b = np.abs(np.asarray(bias, np.float64)).reshape(-1)
    if scale.size == 1:
        b = b.max(initial=0.0, keepdims=True)
    over = b >= 0.5 * input_scale * scale.astype(np.float64) * INT32_MAX
    return np.where(over, 2.0 * b / INT32_MAX * (127 / input_scale) / 127, scale).astype(np.float32)


def quantize_graph(graph: Graph, ranges: dict[str, Range], weight_bits: dict[str, int] | None = None,
                   hessians: dict[str, np.ndarray] | None = None, act16: set[str] | frozenset = frozenset(),
                   ranges16: dict[str, Range] | None = None) -> Graph:
    """A new graph with int8 activations and weights; float graph inputs/outputs keep their float tensors.
    `weight_bits` (layer name -> 4) gives layers int4 weights (mcutool.quantize.mixed chooses them), rounded by
    GPTQ where `hessians` has the layer's input second moments (mixed.layer_hessians). The conv / depthwise /
    fully connected layers (and other INT16_OPS) named in `act16` run in TFLite's 16x8 scheme (int16 input and output, symmetric,
    int64 bias, int8 weights); the INT16_OPS after one take int16 while any activation input is int16, and a
    QUANTIZE converts a tensor where a reader runs at the other width (`_at_width`). int16 tensors take their
    range from `ranges16` (default `ranges`: a clip chosen for int8's 256 levels costs more than it saves in
    int16, so mixed.Calibration passes min/max)."""
    ranges16 = ranges16 or ranges
    q = Graph(name=graph.name, inputs=list(graph.inputs), outputs=list(graph.outputs))
    quant: dict[str, Quant] = {}
    for name in graph.inputs:
        t = graph.tensor(name)
        q.add_tensor(copy.deepcopy(t))
        inner = name + "/int8"
        quant[inner] = activation_quant(ranges[name])
        q.add_tensor(Tensor(inner, t.shape, "int8", quant[inner]))
        q.ops.append(Op(f"quantize_input_{len(q.ops)}", "quantize", [name], [inner], NoAttrs()))
    renamed = {name: name + "/int8" for name in graph.inputs}
    for op in graph.ops:
        q.ops.append(_quantize_op(graph, q, op, ranges, quant, renamed, (weight_bits or {}).get(op.name, 8),
                                  (hessians or {}).get(op.name), act16, ranges16))
    for name in graph.outputs:
        inner = renamed[name]
        t = graph.tensor(name)
        q.add_tensor(Tensor(name, t.shape, "float32"))
        q.ops.append(Op(f"dequantize_output_{len(q.ops)}", "dequantize", [inner], [name], NoAttrs()))
    q.validate()
    return q


def _op_width(graph: Graph, q: Graph, op: Op, renamed, act16) -> int:
    """16 for a layer in act16 and for an INT16_OPS op without constant operands that is in act16 or reads an
    int16 activation."""
    if op.kind in WEIGHTED_OPS:
        return 16 if op.name in act16 else 8
    if op.kind not in INT16_OPS or any(n and graph.tensor(n).is_const for n in op.inputs):
        return 8
    return 16 if op.name in act16 or any(n and q.tensor(renamed[n]).dtype == "int16" for n in op.inputs) else 8


def _at_width(q: Graph, name: str, width: int, quant: dict, ranges, ranges16, source: str) -> str:
    """The activation `name` of q at `width` bits: itself, or the output of a QUANTIZE to int8 / int16 from the
    range of the float tensor `source` it stands for (one per tensor and width)."""
    dtype = f"int{width}"
    if q.tensor(name).dtype == dtype:
        return name
    out = f"{name}/as_{dtype}"
    if out not in q.tensors:
        quant[out] = activation_quant16(ranges16[source]) if width == 16 else activation_quant(ranges[source])
        q.add_tensor(Tensor(out, q.tensor(name).shape, dtype, quant[out]))
        q.ops.append(Op(f"{name}_to_{dtype}_{len(q.ops)}", "quantize", [name], [out], NoAttrs()))
    return out


def _quantize_op(graph: Graph, q: Graph, op: Op, ranges, quant, renamed, bits: int = 8, hessian=None,
                 act16=frozenset(), ranges16=None) -> Op:
    if op.kind == "lstm":
        return _quantize_lstm(graph, q, op, ranges, quant, renamed)
    ins = []
    width = _op_width(graph, q, op, renamed, act16)
    if width == 16 and bits != 8:
        raise UserError(f"layer {op.name!r}: int4 weights run with int8 activations only (TFLite Micro).")
    here = {n: _at_width(q, renamed[n], width, quant, ranges, ranges16 or ranges, n) for n in op.inputs  # activations at its width
            if n and not graph.tensor(n).is_const}
    x_name = here.get(op.inputs[0], op.inputs[0])
    for i, name in enumerate(op.inputs):
        if not name:
            ins.append("")
            continue
        t = graph.tensor(name)
        if not t.is_const:
            ins.append(here[name])
            continue
        if op.kind in WEIGHTED_OPS and i == 1:
            bias = graph.tensor(op.inputs[2]).data if len(op.inputs) > 2 and op.inputs[2] else None
            data, wq = weight_quant(t.data.astype(np.float32), WEIGHTED_OPS[op.kind], bias,
                                    float(quant[x_name].scale[0]), bits, hessian)
            q.add_tensor(Tensor(name, t.shape, "int4" if bits == 4 else "int8", wq, data))
        elif op.kind in WEIGHTED_OPS and i == 2:
            s_in = float(quant[x_name].scale[0])
            s_w = q.tensor(ins[1]).quant.scale.astype(np.float64)
            bias_scale = s_in * s_w
            real = np.round(t.data.astype(np.float64) / bias_scale)
            bad = ~(np.abs(real) <= INT32_MAX)  # bias_safe_scale keeps |bias| at 2^30; a non-finite one is not
            if np.any(bad):
                c = int(np.argmax(bad.reshape(-1)))
                raise UserError(f"layer {op.name!r} ({op.kind}): its float bias in output channel {c} is "
                                f"{float(t.data.reshape(-1)[c]):g}, which no int32 bias can hold. Check the float "
                                "model's biases for non-finite or huge values.")
            bias_dtype = "int64" if width == 16 else "int32"  # TFLite's 16x8 layers take int64 biases
            data = real.astype(bias_dtype)
            q.add_tensor(Tensor(name, t.shape, bias_dtype, Quant(bias_scale, np.zeros(bias_scale.shape, np.int64),
                                                               0 if bias_scale.size > 1 else None), data))
        elif t.dtype == "float32" and op.kind in CONST_ACTIVATION_OPERANDS:
            data_f = t.data.astype(np.float32)
            cq = (_shared_quant(graph, op, ranges) if op.kind in SHARED_QUANT_OPS
                  else activation_quant(Range(float(data_f.min()), float(data_f.max()))))
            s, z = float(cq.scale[0]), int(cq.zero_point[0])
            data = np.clip(np.round(data_f / s) + z, -128, 127).astype(np.int8)
            q.add_tensor(Tensor(name, t.shape, "int8", cq, data))
        elif t.dtype == "float32":
            raise UserError(f"layer {op.name!r} ({op.kind}) has a float constant operand {name!r}; mcutool cannot "
                            "quantize it yet.")
        else:
            q.add_tensor(copy.deepcopy(t))
        ins.append(name)
    if op.kind in SHARED_QUANT_OPS:
        ins = [_requantized(q, n, _shared_quant(graph, op, ranges), quant, op) if n in quant else n for n in ins]
    outs = []
    for name in op.outputs:
        t = graph.tensor(name)
        inner = name + "/int8"
        if op.kind in SHARED_QUANT_OPS:
            oq = _shared_quant(graph, op, ranges)
        elif op.kind in SAME_QUANT_OPS:
            oq = copy.deepcopy(quant[x_name])
        elif width == 16:
            inner = name + "/int16"
            oq = (Quant(np.float32(FIXED_OUTPUT_QUANT16[op.kind]), 0) if op.kind in FIXED_OUTPUT_QUANT16
                  else activation_quant16((ranges16 or ranges)[name]))
        elif op.kind in FIXED_OUTPUT_QUANT:
            oq = Quant(np.float32(FIXED_OUTPUT_QUANT[op.kind][0]), FIXED_OUTPUT_QUANT[op.kind][1])
        else:
            oq = activation_quant(ranges[name])
        if width == 16 and op.kind in SAME_QUANT_OPS:
            inner = name + "/int16"
        quant[inner] = oq
        q.add_tensor(Tensor(inner, t.shape, f"int{width}", oq))
        renamed[name] = inner
        outs.append(inner)
    if op.kind == "float_function":  # an elementwise float function: its int8 table between the two scales
        return Op(op.name, "lut", ins, outs, LutAttrs(function_table(op.attrs, quant[x_name], quant[outs[0]])))
    return Op(op.name, op.kind, ins, outs, copy.deepcopy(op.attrs))


def power_of_two_quant(r: Range, bits: int = 16) -> Quant:
    """TFLite's state-tensor rule (operator_property.cc's extend_to_power_of_two; the MLIR quantizer's
    PowerOfTwoBound): symmetric, scale 2^ceil(log2(max |range|)) / 2^(bits-1)."""
    bound = max(abs(r.lo), abs(r.hi), 2.0 ** -(bits - 1))
    return Quant(np.float32(2.0 ** np.ceil(np.log2(bound)) / 2 ** (bits - 1)), 0)


def _quantize_lstm(graph: Graph, q: Graph, op: Op, ranges, quant, renamed) -> Op:
    """A float LSTM as TFLite's converter quantizes UNIDIRECTIONAL_SEQUENCE_LSTM (8x8->16, operator_property.cc):
    input and output int8 from their calibrated ranges; the hidden state int8 with the output's quantization
    (restrict_scale {18, 0}); each gate's input and recurrent weights int8 symmetric per tensor; each gate's
    bias int32 at s_input * s_input_weights; the cell state int16 symmetric with a power-of-two scale from its
    range over all steps. The gates' own scales are the kernel's fixed ones (lstm.py)."""
    ins = list(op.inputs)
    x = renamed[op.inputs[0]]
    ins[0] = x
    s_in = float(quant[x].scale[0])
    out = op.outputs[0]
    oq = activation_quant(ranges[out])
    for k, (w_idx, b_idx) in enumerate(zip(lstm.INPUT_WEIGHTS, lstm.BIASES)):
        for idx in (w_idx, lstm.RECURRENT_WEIGHTS[k]):
            t = graph.tensor(op.inputs[idx])
            data, wq = weight_quant(t.data.astype(np.float32), None)
            q.add_tensor(Tensor(t.name, t.shape, "int8", wq, data))
        b = graph.tensor(op.inputs[b_idx])
        scale = s_in * float(q.tensor(op.inputs[w_idx]).quant.scale[0])
        data = np.clip(np.round(b.data.astype(np.float64) / scale), -INT32_MAX - 1, INT32_MAX).astype(np.int32)
        q.add_tensor(Tensor(b.name, b.shape, "int32", Quant(scale, 0), data))
    for idx, dtype, sq in ((lstm.HIDDEN_STATE, "int8", oq),
                           (lstm.CELL_STATE, "int16", power_of_two_quant(ranges[op.inputs[lstm.CELL_STATE]]))):
        t = graph.tensor(op.inputs[idx])
        ins[idx] = f"{t.name}/{dtype}"
        q.add_tensor(Tensor(ins[idx], t.shape, dtype, copy.deepcopy(sq), variable=True))
    inner = out + "/int8"
    quant[inner] = oq
    renamed[out] = inner
    q.add_tensor(Tensor(inner, graph.tensor(out).shape, "int8", oq))
    return Op(op.name, op.kind, ins, [inner], copy.deepcopy(op.attrs))


def _border(qgraph: Graph) -> dict[str, str]:
    """int8 tensor -> the float graph input it is quantized from / the float graph output dequantized from it."""
    border = {}
    for op in qgraph.ops:
        if op.kind == "quantize" and op.inputs[0] in qgraph.inputs and qgraph.tensor(op.inputs[0]).dtype == "float32":
            border[op.outputs[0]] = op.inputs[0]
        elif op.kind == "dequantize" and op.outputs[0] in qgraph.outputs:
            border[op.inputs[0]] = op.outputs[0]
    return border


def has_integer_core(graph: Graph) -> bool:
    """An integer model with float I/O: its only float tensors are float inputs, each read by one QUANTIZE only,
    and float outputs, each written by a DEQUANTIZE (the TFLite converter's default int8 output, and what
    `quantize_graph` / `mcutool quantize` write). `integer_io` gives the graph the firmware runs."""
    readers: dict[str, list[Op]] = {}
    for op in graph.ops:
        for name in op.inputs:
            readers.setdefault(name, []).append(op)
    border = set(_border(graph).values())
    for name, t in graph.tensors.items():
        if t.dtype != "float32":
            continue
        if name not in border or name in graph.inputs and len(readers.get(name, [])) != 1:
            return False
    return True


def _shared_quant(graph: Graph, op: Op, ranges) -> Quant:
    """One quantization for every input and the output of a SHARED_QUANT_OPS op: the union of their ranges."""
    lo, hi = 0.0, 0.0
    for name in op.inputs + op.outputs:
        t = graph.tensor(name)
        r = Range(float(t.data.min()), float(t.data.max())) if t.is_const else ranges[name]
        lo, hi = min(lo, r.lo), max(hi, r.hi)
    return activation_quant(Range(lo, hi))


def _requantized(q: Graph, name: str, target: Quant, quant: dict, op: Op) -> str:
    """`name` (an int8 activation of q) as quantized by `target`: itself, or the output of an int8 QUANTIZE."""
    have = quant[name]
    if np.float32(have.scale[0]) == np.float32(target.scale[0]) and int(have.zero_point[0]) == int(target.zero_point[0]):
        return name
    out = f"{name}/requantized_for_{op.name}"
    quant[out] = target
    q.add_tensor(Tensor(out, q.tensor(name).shape, "int8", target))
    q.ops.append(Op(f"{op.name}_requantize_{len(q.ops)}", "quantize", [name], [out], NoAttrs()))
    return out


def integer_io(qgraph: Graph) -> Graph:
    """The quantized graph without its border QUANTIZE/DEQUANTIZE ops: inputs and outputs are the int8 tensors,
    under the model's own I/O names, so the firmware's I/O is integer and the host converts with their scales."""
    g = Graph(name=qgraph.name, inputs=list(qgraph.inputs), outputs=list(qgraph.outputs))
    border = _border(qgraph)
    io = set(border.values())
    for name, t in qgraph.tensors.items():
        if name in io:
            continue
        g.add_tensor(Tensor(border[name], t.shape, t.dtype, t.quant, t.data) if name in border else t)
    for op in qgraph.ops:
        if op.kind in ("quantize", "dequantize") and (op.inputs[0] in io or op.outputs[0] in io):
            continue
        g.ops.append(Op(op.name, op.kind, [border.get(n, n) for n in op.inputs],
                        [border.get(n, n) for n in op.outputs], op.attrs))
    g.validate()
    return g


@dataclass
class Agreement:
    samples: int
    top1_agreement: float   # fraction of samples whose argmax matches (classifiers)
    sqnr_db: float          # 10·log10(Σ float² / Σ (float − int8)²) over the first output

    def to_json(self) -> dict:
        return {"samples": self.samples, "top1_agreement": round(self.top1_agreement, 4),
                "sqnr_db": round(self.sqnr_db, 2)}


def sqnr_db(reference_values: np.ndarray, approx: np.ndarray) -> float:
    f, g = reference_values.astype(np.float64), approx.astype(np.float64)
    noise = float(np.sum((f - g) ** 2))
    return float("inf") if noise == 0 else float(10 * np.log10(float(np.sum(f * f)) / noise))


def is_classifier(t: Tensor) -> bool:
    """A (batch, classes) output with several classes."""
    return len(t.shape) == 2 and t.shape[1] > 1


def agreement_report(float_graph: Graph, int8_graph: Graph, samples: dict[str, np.ndarray]) -> list[dict]:
    """Per output of the float model: SQNR (dB) of the int8 graph's dequantized output against the float one,
    and for classifiers the top-1 agreement (the fraction of samples whose argmax is the same)."""
    fo = {n: [] for n in float_graph.outputs}
    qo = {n: [] for n in float_graph.outputs}
    for values in run_batches(float_graph, samples):
        for n in fo:
            fo[n].append(values[n])
    for values in run_batches(int8_graph, samples):
        for n in qo:
            qo[n].append(values[n])
    rows = []
    for n in float_graph.outputs:
        f, q = np.concatenate(fo[n]), np.concatenate(qo[n])
        row = {"name": n, "sqnr_db": round(sqnr_db(f, q), 2)}
        if is_classifier(float_graph.tensor(n)):
            row["top1_agreement"] = round(float(np.mean(f.argmax(-1) == q.argmax(-1))), 4)
            row["float_classes"] = int(np.unique(f.argmax(-1)).size)
        rows.append(row)
    return rows


def agreement(float_graph: Graph, int8_graph: Graph, samples: dict[str, np.ndarray]) -> Agreement:
    """How the quantized graph's first output compares with the float graph's on `samples`."""
    row = agreement_report(float_graph, int8_graph, samples)[0]
    n = len(next(iter(samples.values())))
    return Agreement(n, row.get("top1_agreement", float("nan")), row["sqnr_db"])


METHODS = ("auto", "minmax", "percentile", "mse")


def quantize_model(graph: Graph, samples: dict[str, np.ndarray], method: str = "auto") -> tuple[Graph, dict]:
    """Calibrate, quantize and measure: the int8 graph (float I/O at the border) and the `quantization` section
    of report.json (method, samples, per-output agreement on the calibration set).

    "auto" (autocalib.py) corrects the biases and chooses each activation's range by the output error it causes;
    that, or the corrected graph with min/max ranges, whichever measures better on the calibration samples, is
    kept where it measures at least as good as min/max in SQNR and top-1 agreement (else min/max is, and the
    report says so). "percentile" and "mse" are applied as asked, with a warning when they measure worse than
    min/max."""
    if method not in METHODS:
        raise UserError(f"unknown calibration method {method!r}: use {', '.join(METHODS)}.")
    _check_samples(graph, samples)
    n = len(next(iter(samples.values())))
    minmax = quantize_graph(graph, calibrate(graph, samples))
    minmax_rows = agreement_report(graph, minmax, samples)
    if method == "minmax":
        return minmax, {"method": method, "samples": n, "outputs": minmax_rows}
    if method == "auto":
        from .autocalib import auto_candidates
        measured = [(qg, {"method": method, "samples": n, "outputs": agreement_report(graph, qg, samples), **detail})
                    for qg, detail in auto_candidates(graph, samples)]
        better = [m for m in measured if not _worse(m[1]["outputs"], minmax_rows)]
        if better:
            return min(better, key=lambda m: _noise(m[1]["outputs"]))
        rows = min(measured, key=lambda m: _noise(m[1]["outputs"]))[1]["outputs"]
    else:
        qgraph = quantize_graph(graph, calibrate(graph, samples, method))
        rows = agreement_report(graph, qgraph, samples)
        report = {"method": method, "samples": n, "outputs": rows}
        if not _worse(rows, minmax_rows):
            return qgraph, report
    worse = f"{_figures(rows)} against {_figures(minmax_rows)} with min/max ranges"
    if method == "auto":
        return minmax, {"method": "minmax", "samples": n, "outputs": minmax_rows,
                        "note": f"auto calibration measured worse on the calibration samples ({worse}): "
                                "kept min/max"}
    warnings.warn(f"--method {method} measures worse than min/max on the calibration samples ({worse}); its "
                  "clipped ranges cut values the network needs. The default, --method auto, chooses each "
                  "tensor's range by the output error and is never worse than min/max there.", stacklevel=2)
    return qgraph, {**report, "minmax_outputs": minmax_rows}


def _worse(rows: list[dict], minmax_rows: list[dict]) -> bool:
    """Whether agreement_report's `rows` measure worse than min/max's on either figure: the outputs' noise
    relative to their power, summed (from their SQNR), or a classifier output's top-1 agreement."""
    return _noise(rows) > _noise(minmax_rows) or any(r.get("top1_agreement", 1) < m.get("top1_agreement", 1)
                                                   for r, m in zip(rows, minmax_rows))


def _noise(rows: list[dict]) -> float:
    return sum(10 ** (-r["sqnr_db"] / 10) for r in rows)


def _figures(rows: list[dict]) -> str:
    return "; ".join(f"{r['name']}: SQNR {r['sqnr_db']:.1f} dB"
                     + (f", top-1 agreement {r['top1_agreement'] * 100:.1f} %" if "top1_agreement" in r else "")
                     for r in rows)
