"""mcutool's default int8 calibration ("auto", issue 15): each activation's range chosen by the error it causes at
the network's output, after bias correction.

    stats = activation_stats(graph, samples)        # min/max and a random sample of every float activation
    graph = bias_corrected(graph, samples, ranges)  # each layer's bias less the mean error its int8 weights cause
    ranges = choose_ranges(graph, samples, stats)   # per tensor: min/max, a percentile or the MSE range

Bias correction is Nagel et al.'s data-aware one ("Data-Free Quantization Through Weight Equalization and Bias
Correction", 2019, §4.2, with the empirical mean): over the calibration samples, a layer's int8 weights shift
its pre-activation output by E[(W_q - W) x] per output channel, x the float input; that is subtracted from the
float bias before the bias is quantized.

The range choice is greedy, tensor by tensor in topological order: for each activation that owns a quantization
(not one that keeps its input's, as pools and reshapes do in TFLite's scheme), the candidates are the min/max,
the 99.9 and 99.99 percentiles and the MSE-optimal clip of that tensor and of the tensors that share its
quantization (an average pool's output has its input's scale, so the pooled range is a candidate for the tensor
before the pool); each is tried with the choices made so far, on a simulation of the int8 network (the float
network on int8 weights and biases, every activation rounded and clipped to its int8 grid), and kept if the
network's output error, summed over outputs relative to their power, goes down. Only the ops from the tensor's
producer on are run again. quantize_model (ptq.py) then measures the integer model against plain min/max on
the calibration samples and keeps min/max if that is better in SQNR or top-1 agreement, so "auto" is never
worse there.
"""
from __future__ import annotations

import dataclasses

import numpy as np

from .. import reference
from ..ir import Graph, Op, Quant, Tensor
from .ptq import (FIXED_OUTPUT_QUANT, SAME_QUANT_OPS, Range, Stats, activation_quant, activation_stats, batches,
                  mse_range, quantize_graph)

BIAS_CORRECTED = ("conv2d", "depthwise_conv2d", "fully_connected")
PERCENTILES = (99.9, 99.99)
CACHE_BYTES = 192 << 20  # the simulation keeps every activation of the samples it runs on: at most this much


def real_value(t: Tensor) -> np.ndarray:
    """A quantized constant as the real numbers it stands for: scale * (q - zero_point), per channel on its axis."""
    q = t.quant
    shape = [1] * t.data.ndim
    if q.per_channel:
        shape[q.axis] = -1
    real = (t.data.astype(np.float64) - q.zero_point.reshape(shape)) * q.scale.reshape(shape)
    return real.astype(np.float32)


def bias_corrected(graph: Graph, samples: dict[str, np.ndarray], ranges: dict[str, Range]) -> tuple[Graph, int]:
    """A copy of `graph` whose conv / depthwise / fully connected biases are corrected for the mean output error
    their int8 weights cause on the samples (module docstring), and the number of layers corrected. Layers
    without a bias are left as they are."""
    shifts = bias_shifts(graph, samples, quantize_graph(graph, ranges))
    return with_bias_shifts(graph, shifts), len(shifts)


def bias_shifts(graph: Graph, samples: dict[str, np.ndarray], qgraph: Graph) -> dict[str, np.ndarray]:
    """Per conv / depthwise / fully connected bias (tensor name): the mean output error E[(W_q - W) x] per output
    channel that the layer's quantized weights in `qgraph` (int8 or int4) cause on the samples, x the float
    input. A layer's shift depends only on its own weights."""
    layers = [op for op in graph.ops if op.kind in BIAS_CORRECTED and len(op.inputs) > 2 and op.inputs[2]
              and graph.tensor(op.inputs[2]).is_const]
    error_ops, dws = {}, {}
    for op in layers:
        attrs = dataclasses.replace(op.attrs, activation="none") if hasattr(op.attrs, "activation") else op.attrs
        error_ops[op.name] = Op(op.name, op.kind, op.inputs, op.outputs, attrs)
        dws[op.name] = real_value(qgraph.tensor(op.inputs[1])) - graph.tensor(op.inputs[1]).data.astype(np.float32)
    sums = {op.name: np.zeros(graph.tensor(op.inputs[2]).data.size) for op in layers}
    count = {op.name: 0 for op in layers}
    for g, x in batches(graph, samples):
        values = reference.run(g, x, keep=True)
        for op in layers:
            zero = np.zeros(graph.tensor(op.inputs[2]).shape, np.float32)
            (y,) = reference.run_op(g, error_ops[op.name], [values[op.inputs[0]], dws[op.name], zero])
            y = y.reshape(-1, zero.size).astype(np.float64)
            sums[op.name] += y.sum(axis=0)
            count[op.name] += len(y)
    return {op.inputs[2]: (sums[op.name] / count[op.name]).reshape(graph.tensor(op.inputs[2]).data.shape)
            for op in layers}


def with_bias_shifts(graph: Graph, shifts: dict[str, np.ndarray]) -> Graph:
    """A copy of `graph` whose biases named in `shifts` are less their shift (bias_shifts)."""
    out = Graph(name=graph.name, ops=list(graph.ops), inputs=list(graph.inputs), outputs=list(graph.outputs))
    out.tensors = dict(graph.tensors)
    for name, shift in shifts.items():
        b = graph.tensor(name)
        out.tensors[name] = Tensor(name, b.shape, b.dtype, b.quant, (b.data.astype(np.float64) - shift).astype(np.float32))
    return out


def _fake_quant(v: np.ndarray, q: Quant) -> np.ndarray:
    s, z = float(q.scale[0]), int(q.zero_point[0])
    return ((np.clip(np.round(v / s) + z, -128, 127) - z) * s).astype(np.float32)


class Simulation:
    """The float network with int8 weights and int8-rounded activations (module docstring) on a fixed set of
    samples, and its output error against the float network. `run` returns the values of every tensor per batch
    (to start a later run from) and the error."""

    def __init__(self, graph: Graph, samples: dict[str, np.ndarray], target: Graph):
        self.graph = graph
        self.batches = list(batches(graph, samples))
        self.reference = [reference.run(g, x) for g, x in batches(target, samples)]
        self.power = {o: sum(float(np.sum(np.square(r[o], dtype=np.float64))) for r in self.reference) or 1.0
                      for o in graph.outputs}
        self.activations = [n for n, t in graph.tensors.items()  # a stateful op's state is no activation
                            if not t.is_const and t.dtype == "float32" and not t.variable]

    def run(self, qgraph: Graph, start: int = 0, cache: list[dict] | None = None) -> tuple[list[dict], float]:
        """Ops from index `start` on (the graph inputs are quantized first when start is 0), the others' values
        taken from `cache` (a previous run's values)."""
        consts = {n: real_value(qgraph.tensor(n)) for n, t in self.graph.tensors.items() if t.is_const
                  and t.dtype == "float32" and n in qgraph.tensors and qgraph.tensor(n).dtype != "float32"}
        grid = {n: qgraph.tensor(n + "/int8").quant for n in self.activations}
        with np.errstate(divide="ignore", invalid="ignore"):  # int8-rounded inputs may be all 0 (L2 norm: 0/0)
            return self._run(consts, grid, start, cache)

    def _run(self, consts, grid, start, cache):
        runs, error = [], 0.0
        for i, (g, x) in enumerate(self.batches):
            fresh = {n: np.asarray(t.data) for n, t in g.tensors.items() if t.is_const}
            values = dict(cache[i]) if cache else {**reference.reset_state(g), **fresh}
            values.update(consts)
            if start == 0:
                values.update({n: _fake_quant(x[n], grid[n]) for n in g.inputs})
            for op in g.ops[start:]:
                outs = reference.run_op(g, op, [values[n] if n else None for n in op.inputs])
                values.update({n: _fake_quant(v, grid[n]) if n in grid else v for n, v in zip(op.outputs, outs)})
            error += sum(float(np.sum(np.square(values[o] - self.reference[i][o], dtype=np.float64))) / self.power[o]
                         for o in g.outputs)
            runs.append(values)
        return runs, error if np.isfinite(error) else float("inf")  # a NaN (0/0 in a float op) never wins


def candidate_ranges(graph: Graph, name: str, stats: Stats) -> list[Range]:
    """The ranges tried for `name`: min/max, percentiles and the MSE clip of it and of every tensor that takes
    its quantization (SAME_QUANT_OPS chains), min/max first; without repeats."""
    group = [name]
    for op in graph.ops:
        if op.kind in SAME_QUANT_OPS and op.inputs[0] in group:
            group.extend(op.outputs)
    out: list[Range] = []
    for n in group:
        v, full = stats.values[n], stats.ranges[n]
        out.append(full)
        out.extend(Range(float(np.percentile(v, 100 - p)), float(np.percentile(v, p))) for p in PERCENTILES)
        out.append(mse_range(v, full))
    unique: dict[tuple, Range] = {}
    for r in out:
        unique.setdefault(grid_of(r), r)
    return list(unique.values())


def grid_of(r: Range) -> tuple[float, int]:
    """The int8 grid a range gives (scale, zero point): ranges with the same grid quantize alike."""
    q = activation_quant(r)
    return float(np.float32(q.scale[0])), int(q.zero_point[0])


def owners(graph: Graph) -> list[tuple[str, int]]:
    """The activations whose range sets a quantization, each with the index of the op that produces it (0 for a
    graph input), in topological order."""
    out = [(n, 0) for n in graph.inputs if graph.tensor(n).dtype == "float32"]
    for i, op in enumerate(graph.ops):
        if op.kind in SAME_QUANT_OPS or op.kind in FIXED_OUTPUT_QUANT:
            continue
        out.extend((n, i) for n in op.outputs if graph.tensor(n).dtype == "float32")
    return out


def selection_samples(graph: Graph, samples: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """The first calibration samples, as many as the simulation's cache holds (CACHE_BYTES), at least 8."""
    per_sample = sum(4 * t.size for t in graph.tensors.values() if not t.is_const and t.dtype == "float32")
    n = max(8, CACHE_BYTES // max(1, per_sample))
    return {k: v[:n] for k, v in samples.items()}


def auto_candidates(graph: Graph, samples: dict[str, np.ndarray]) -> list[tuple[Graph, dict]]:
    """The int8 graphs auto calibration offers (module docstring), each with report.json's summary of it: the
    bias-corrected graph with its chosen ranges, and with min/max ranges (the simulation is not the integer
    model: quantize_model measures both and keeps the better)."""
    stats = activation_stats(graph, samples)
    corrected, layers = bias_corrected(graph, samples, stats.ranges)
    ranges, summary = choose_ranges(corrected, samples, stats, graph)
    corrections = {"bias_corrected_layers": layers}
    return [(quantize_graph(corrected, ranges), {**corrections, "ranges": "per tensor", **summary}),
            (quantize_graph(corrected, stats.ranges), {**corrections, "ranges": "minmax"})]


def choose_ranges(graph: Graph, samples: dict[str, np.ndarray], stats: Stats,
                  target: Graph | None = None) -> tuple[dict[str, Range], dict]:
    """Greedy per-tensor range choice (module docstring), starting from min/max, for `graph` to approximate
    `target` (by default itself; the float graph a bias-corrected `graph` came from). Returns the ranges and
    a summary: how many tensors left min/max, and the simulated output SQNR before and after."""
    sim = Simulation(graph, selection_samples(graph, samples), target or graph)
    ranges = dict(stats.ranges)
    cache, best = sim.run(quantize_graph(graph, ranges))
    start_error, changed = best, 0
    for name, producer in owners(graph):
        for r in candidate_ranges(graph, name, stats):
            if grid_of(r) == grid_of(ranges[name]):
                continue
            trial = {**ranges, name: r}
            runs, error = sim.run(quantize_graph(graph, trial), producer, cache)
            if error < best:
                ranges, cache, best = trial, runs, error
        changed += grid_of(ranges[name]) != grid_of(stats.ranges[name])
    outputs = len(graph.outputs)
    return ranges, {"ranges_changed": changed, "simulated_sqnr_db": [_db(start_error / outputs),
                                                                    _db(best / outputs)]}


def _db(relative_noise: float) -> float:
    return round(float("inf") if relative_noise == 0 else float(-10 * np.log10(relative_noise)), 2)
