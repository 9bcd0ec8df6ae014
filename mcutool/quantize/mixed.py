"""Per-layer weight widths (int8 or int4) chosen under a flash budget (issue 15).

    calib = Calibration(graph, samples)       # auto ranges, GPTQ second moments, bias corrections per width
    choice = choose_widths(calib, samples, budget_bytes)    # -> Choice (bits per layer, SQNRs, bytes)
    qgraph = calib.quantize(choice.bits)

Sensitivity: for each weighted layer TFLite Micro runs with int4 weights (CONV_2D, DEPTHWISE_CONV_2D,
FULLY_CONNECTED with int8 activations), the output SQNR against the float model on the calibration samples when
only that layer is int4. Its cost is the output noise it adds to the all-int8 model's; costs are taken as
additive (the predicted SQNR of a choice). The allocation is exact for that model: a 0/1 knapsack solved by
dynamic programming over bytes (`knapsack`), keeping at int8 the layers whose int4 noise is largest within the
bytes the budget leaves over all-int4. The optimum, and the fixed rules that fit the same budget (all int4;
first and last weighted layer int8, the rest int4), are then measured on the calibration samples, and the best
measured one is the choice: never worse there than a fixed rule.

Activations (`activations="auto"`, `--activations auto`): every candidate is also measured with int16
activations (TFLite's 16x8: int16 symmetric, int8 weights, int64 biases) on its int8-weight layers and every
softmax, fewer where the activations' layerwise peak would pass the SRAM budget; never on an int4-weight layer
(TFLite Micro runs int4 weights with int8 activations only). A second knapsack uses costs measured with the
other layers at int16 activations. The best measured candidate, with or without int16 activations, wins.
"""
from __future__ import annotations

import itertools
from dataclasses import dataclass, field

import numpy as np

from ..errors import UserError
from ..ir import Graph, Op
from ..ops.common import im2col, padded
from .ptq import Range, quantize_graph, run_batches, sqnr_db

INT4_KINDS = ("conv2d", "depthwise_conv2d", "fully_connected")  # TFLite Micro's int4-weight kernels
WEIGHT_MODES = ("int8", "int4", "auto")
ACTIVATION_MODES = ("int8", "auto")  # auto: int16 activations (16x8) on int8-weight layers where they measure better


def int4_layers(graph: Graph) -> list[str]:
    """The float graph's layers that may take int4 weights, in graph order."""
    return [op.name for op in graph.ops if op.kind in INT4_KINDS and len(op.inputs) > 1
            and graph.tensor(op.inputs[1]).is_const and graph.tensor(op.inputs[0]).dtype == "float32"]


def _op(graph: Graph, layer: str) -> Op:
    return next(op for op in graph.ops if op.name == layer)


def int4_saving(graph: Graph, layer: str) -> int:
    """Bytes a layer's weights shrink by from int8 to int4 (two values per byte)."""
    w = graph.tensor(_op(graph, layer).inputs[1])
    return w.size - (w.size + 1) // 2


def weight_bytes(graph: Graph, int8_bytes: int, bits: dict[str, int]) -> int:
    """Bytes of every constant of the quantized model when the layers in `bits` take those widths, from the
    all-int8 model's `int8_bytes` (`constant_bytes`): only the weights of int4 layers change size."""
    return int8_bytes - sum(int4_saving(graph, n) for n, b in bits.items() if b == 4)


def constant_bytes(qgraph: Graph) -> int:
    """Bytes of a quantized graph's constants, as report.json's flash.weights_bytes counts them."""
    return sum(t.nbytes for t in qgraph.tensors.values() if t.is_const)


def knapsack(sizes: list[int], values: list[float], capacity: int) -> tuple[float, list[int]]:
    """0/1 knapsack, exact: the items (indices) of largest total value whose sizes sum to at most `capacity`.
    Dynamic programming over bytes (sizes divided by their common divisor), O(items x capacity)."""
    if capacity < 0:
        return float("-inf"), []
    g = int(np.gcd.reduce([s for s in sizes if s > 0] or [1]))
    sz = [s // g for s in sizes]
    cap = min(capacity // g, sum(sz))
    best = np.zeros(cap + 1)
    take = np.zeros((len(sz), cap + 1), dtype=bool)
    for i, (s, v) in enumerate(zip(sz, values)):
        if s > cap:
            continue
        cand = best[:cap + 1 - s] + v
        better = cand > best[s:]
        take[i, s:] = better
        best[s:] = np.where(better, cand, best[s:])
    chosen, c = [], cap
    for i in range(len(sz) - 1, -1, -1):
        if take[i, c]:
            chosen.append(i)
            c -= sz[i]
    return float(best[cap]), sorted(chosen)


def knapsack_brute_force(sizes: list[int], values: list[float], capacity: int) -> float:
    """The best total value by trying every subset (tests compare `knapsack` with it on small cases)."""
    best = float("-inf") if capacity < 0 else 0.0
    for r in range(1, len(sizes) + 1):
        for subset in itertools.combinations(range(len(sizes)), r):
            if sum(sizes[i] for i in subset) <= capacity:
                best = max(best, sum(values[i] for i in subset))
    return best


HESSIAN_ROWS = 4096  # input vectors per batch a layer's second moments are estimated from (evenly spaced)


def _layer_inputs(graph: Graph, op: Op, x: np.ndarray) -> np.ndarray:
    """The input vectors (rows of K) a conv / fully connected layer's weights see: im2col of x, zero padded."""
    if op.kind == "fully_connected":
        return x.reshape(-1, graph.tensor(op.inputs[1]).shape[1])
    a, w = op.attrs, graph.tensor(op.inputs[1])
    out_hw = graph.tensor(op.outputs[0]).shape[1:3]
    canvas = padded(x, out_hw, a.stride, a.dilation, w.shape[1:3], a.pads, 0.0)
    return im2col(canvas, out_hw, a.stride, a.dilation, w.shape[1:3]).reshape(-1, w.size // w.shape[0])


def layer_hessians(graph: Graph, samples: dict[str, np.ndarray], layers: list[str]) -> dict[str, np.ndarray]:
    """Per conv / fully connected layer in `layers`: the second moments E[x x^T] of its float input vectors on
    the samples (what GPTQ rounds int4 weights against). Depthwise layers are left to round-to-nearest."""
    ops = [op for op in graph.ops if op.name in layers and op.kind in ("conv2d", "fully_connected")]
    sums = {op.name: 0.0 for op in ops}
    count = {op.name: 0 for op in ops}
    for values in run_batches(graph, samples, keep=True):
        for op in ops:
            rows = _layer_inputs(graph, op, values[op.inputs[0]].astype(np.float64))
            rows = rows[:: max(1, len(rows) // HESSIAN_ROWS)]
            sums[op.name] = sums[op.name] + rows.T @ rows
            count[op.name] += len(rows)
    return {name: sums[name] / max(count[name], 1) for name in sums}


def rounding_hessians(graph: Graph, samples: dict[str, np.ndarray], layers: list[str]) -> dict[str, np.ndarray]:
    """What GPTQ rounds each conv / fully connected layer's int4 weights against: per output channel, the
    second moments of the layer's inputs as the network's output sees its error, blended with the layer's own
    (output_hessians.py); the layer's own alone where the outputs are not reached through ops with a vjp."""
    from .output_hessians import blended, output_hessians
    plain = layer_hessians(graph, samples, layers)
    seen = output_hessians(graph, samples, list(plain))
    return {name: blended(seen[name], h) if name in seen else h for name, h in plain.items()}


class Calibration:
    """What the int4 / auto paths quantize with, made once per model: the activation ranges of `method` ("auto":
    autocalib's per-tensor choice on the bias-corrected int8 model), the second moments GPTQ rounds each
    layer's int4 weights against (rounding_hessians: per output channel, as the network's outputs see its error)
    and, for "auto", each bias's correction (Nagel) for its layer's int8 and for its int4 weights, so that every
    width assignment gets the correction of the weights it has (a layer's correction depends only on its own)."""

    def __init__(self, graph: Graph, samples: dict[str, np.ndarray], method: str = "auto"):
        from .autocalib import bias_shifts, choose_ranges
        from .ptq import activation_stats, calibrate
        self.graph, self.method = graph, method
        self.layers = int4_layers(graph)
        self.hessians = rounding_hessians(graph, samples, self.layers)
        self.shifts: dict[int, dict[str, np.ndarray]] = {}
        self.summary: dict = {}
        if method != "auto":
            self.ranges = calibrate(graph, samples, method)
            return
        stats = activation_stats(graph, samples)
        self.minmax = stats.ranges
        self.shifts = {b: bias_shifts(graph, samples, quantize_graph(graph, stats.ranges, {n: b for n in self.layers},
                                                                     self.hessians)) for b in (8, 4)}
        self.ranges, summary = choose_ranges(self.corrected({}), samples, stats, graph)
        self.summary = {"bias_corrected_layers": len(self.shifts[8]), "ranges": "per tensor", **summary}

    def corrected(self, bits: dict[str, int]) -> Graph:
        """The float graph with each bias corrected for its layer's weights at the width `bits` gives it."""
        if not self.shifts:
            return self.graph
        from .autocalib import with_bias_shifts
        owner = {op.inputs[2]: op.name for op in self.graph.ops if len(op.inputs) > 2 and op.inputs[2]}
        return with_bias_shifts(self.graph, {b: self.shifts[bits.get(owner[b], 8)][b] for b in self.shifts[8]})

    def quantize(self, bits: dict[str, int], ranges: dict[str, Range] | None = None, act16=frozenset()) -> Graph:
        """The quantized graph with those weight widths, int16 activations on the layers in `act16` (their
        int16 tensors take min/max ranges: a clip chosen for int8 costs more than it saves at 16 bits)."""
        return quantize_graph(self.corrected(bits), ranges or self.ranges, bits, self.hessians, set(act16),
                              getattr(self, "minmax", None))


@dataclass
class Choice:
    bits: dict[str, int]                  # every int4-capable layer -> 8 or 4
    rule: str                             # "auto (knapsack)", "all int8", "all int4", "first+last int8"
    budget_bytes: int | None
    weights_bytes: int
    int8_weights_bytes: int
    predicted_sqnr_db: float | None
    measured_sqnr_db: float | None        # on the calibration samples, first output, vs float
    sensitivity_db: dict[str, float] = field(default_factory=dict)  # layer -> output SQNR with only it int4
    candidates: list[dict] = field(default_factory=list)            # the measured alternatives
    act16: list[str] = field(default_factory=list)                  # layers with int16 activations (16x8)
    sram_bytes: int | None = None         # layerwise peak of live activations (int16 ones at 2 B), when act16
    sram_budget_bytes: int | None = None

    def layers_json(self, graph: Graph) -> list[dict]:
        rows = []
        for name, b in self.bits.items():
            op = _op(graph, name)
            w = graph.tensor(op.inputs[1])
            row = {"name": name, "op": op.kind, "weight_bits": b, "activation_bits": 16 if name in self.act16 else 8,
                   "weights_bytes": (w.size + 1) // 2 if b == 4 else w.size}
            if name in self.sensitivity_db:
                row["sqnr_db_int4_alone"] = round(self.sensitivity_db[name], 2)
            rows.append(row)
        return rows

    def to_json(self, graph: Graph) -> dict:
        return {"rule": self.rule, "flash_budget_bytes": self.budget_bytes, "weights_bytes": self.weights_bytes,
                "int8_weights_bytes": self.int8_weights_bytes,
                "weights_fraction_of_int8": round(self.weights_bytes / self.int8_weights_bytes, 4),
                "predicted_sqnr_db": None if self.predicted_sqnr_db is None else round(self.predicted_sqnr_db, 2),
                "measured_sqnr_db": None if self.measured_sqnr_db is None else round(self.measured_sqnr_db, 2),
                "int16_activation_ops": list(self.act16), "activations_sram_bytes": self.sram_bytes, "sram_budget_bytes": self.sram_budget_bytes,
                "layers": self.layers_json(graph),
                "candidates": self.candidates}


class _Scorer:
    """Output SQNR (first output, vs float) of quantized variants of one float graph on fixed samples."""

    def __init__(self, calib: Calibration, samples: dict[str, np.ndarray]):
        graph = calib.graph
        self.calib, self.samples = calib, samples
        self.out = graph.outputs[0]
        self.reference = np.concatenate([v[self.out] for v in run_batches(graph, samples)]).astype(np.float64)
        self.signal = float(np.sum(self.reference ** 2))

    def noise(self, bits: dict[str, int], act16=()) -> float:
        q = self.calib.quantize(bits, act16=act16)
        y = np.concatenate([v[self.out] for v in run_batches(q, self.samples)]).astype(np.float64)
        return float(np.sum((self.reference - y) ** 2))

    def db(self, noise: float) -> float:
        return float("inf") if noise <= 0 else float(10 * np.log10(self.signal / noise))


def fixed_rules(layers: list[str]) -> dict[str, dict[str, int]]:
    """The fixed width rules: all int8, all int4, first and last layer int8 with the rest int4."""
    rules = {"all int8": {n: 8 for n in layers}, "all int4": {n: 4 for n in layers}}
    if len(layers) > 2:
        rules["first+last int8"] = {n: 8 if i in (0, len(layers) - 1) else 4 for i, n in enumerate(layers)}
    return rules


class WidthChooser:
    """choose_widths for several budgets of one model: the calibration-time measurements (the all-int8 noise,
    each layer's sensitivity) are made once. With activations "auto", every candidate is also measured with
    int16 activations (TFLite's 16x8) on its int8-weight layers (never on int4 ones), as many as fit
    `sram_budget` (the layerwise peak of live activation bytes; None: no limit), and the best measured wins.
    Each layer's sensitivity is then also measured with the others' int16 activations, and a second knapsack
    solved on those costs (lowering a layer to int4 costs its weights' noise and its int16 activations; a
    layer whose int4 weights alone measure as well as all-int8 gets no value from int8-world costs)."""

    def __init__(self, calib: Calibration, samples: dict[str, np.ndarray], activations: str = "int8",
                 sram_budget: int | None = None):
        self.calib, self.graph, self.samples = calib, calib.graph, samples
        self.activations, self.sram_budget = activations, sram_budget
        graph = calib.graph
        self.layers = int4_layers(graph)
        self.int8_bytes = constant_bytes(calib.quantize({}))
        self.all4_bytes = weight_bytes(graph, self.int8_bytes, {n: 4 for n in self.layers})
        self._scorer: _Scorer | None = None
        self._alone: dict[int, tuple[float, dict[str, float]]] = {}
        self._measured: dict[tuple, float] = {}
        self.softmaxes = [op.name for op in graph.ops if op.kind == "softmax"]

    def _sensitivity(self, world: int = 8) -> tuple[_Scorer, float, dict[str, float]]:
        """The scorer, the noise of all int8 weights and each layer's noise with only it int4: with int8
        activations (world 8), or with act16_for's int16 activations on the other layers (world 16)."""
        if self._scorer is None:
            self._scorer = _Scorer(self.calib, self.samples)
        if world not in self._alone:
            act = (lambda bits: self.act16_for(bits)) if world == 16 else (lambda bits: ())
            self._alone[world] = (self._scorer.noise({}, act({})),
                                  {n: self._scorer.noise({n: 4}, act({n: 4})) for n in self.layers})
        return (self._scorer, *self._alone[world])

    def measured_db(self, bits: dict[str, int], act16=()) -> float:
        key = (tuple(sorted(bits.items())), tuple(sorted(act16)))
        if key not in self._measured:
            scorer = self._scorer or _Scorer(self.calib, self.samples)
            self._scorer = scorer
            self._measured[key] = scorer.db(scorer.noise(bits, act16))
        return self._measured[key]

    def sensitivity_db(self, layer: str) -> float:
        """Output SQNR on the samples with only `layer` int4 (int8 activations)."""
        scorer, _, alone = self._sensitivity()
        return scorer.db(alone[layer])

    def bytes_of(self, bits: dict[str, int]) -> int:
        return weight_bytes(self.graph, self.int8_bytes, bits)

    def sram_of(self, bits: dict[str, int], act16=()) -> int:
        """The layerwise peak of live activation bytes of the firmware's graph (integer I/O)."""
        from ..schedule.liveness import layerwise_peak_bytes
        from .ptq import integer_io
        return layerwise_peak_bytes(integer_io(self.calib.quantize(bits, act16=act16)))

    def act16_for(self, bits: dict[str, int]) -> list[str]:
        """The int8-weight layers that take int16 activations: all of them, less the ones with the largest
        outputs until the activations fit the SRAM budget (none with activations "int8"); and every softmax
        (its int16 output's 1/32768 steps instead of int8's 1/256, whatever its input's width)."""
        if self.activations != "auto":
            return []
        act16 = [n for n in self.layers if bits.get(n, 8) == 8] + self.softmaxes
        size = {n: self.graph.tensor(_op(self.graph, n).outputs[0]).size for n in act16}
        while act16 and self.sram_budget is not None and self.sram_of(bits, act16) > self.sram_budget:
            act16.remove(max(act16, key=lambda n: size[n]))
        return act16

    def _best(self, candidates: dict[str, dict[str, int]]) -> tuple[str, list[str], dict[str, float], list[dict]]:
        """The best measured of the candidates (rule -> widths), each also with int16 activations where
        act16_for gives some; the rule, its act16, every measured SQNR and the report rows."""
        options = {rule: (bits, []) for rule, bits in candidates.items()}
        for rule, bits in candidates.items():
            act16 = self.act16_for(bits)
            if act16:
                options[f"{rule} + int16 activations"] = (bits, act16)
        measured = {r: self.measured_db(b, a) for r, (b, a) in options.items()}
        rule = max(options, key=lambda r: (measured[r], r.startswith("auto")))
        rows = [{"rule": r, "weights_bytes": self.bytes_of(b), "int16_activation_layers": len(a),
                 "measured_sqnr_db": round(measured[r], 2)} for r, (b, a) in options.items()]
        return rule, options[rule][1], measured, rows

    def _choice(self, rule, bits, act16, budget_bytes, predicted, measured, sensitivity, rows) -> Choice:
        sram = self.sram_of(bits, act16) if self.activations == "auto" else None
        return Choice(bits, rule, budget_bytes, self.bytes_of(bits), self.int8_bytes, predicted, measured,
                      sensitivity, rows, list(act16), sram, self.sram_budget)

    def choose(self, budget_bytes: int) -> Choice:
        graph, layers, int8_bytes = self.graph, self.layers, self.int8_bytes
        if budget_bytes < self.all4_bytes:
            raise UserError(f"{graph.name}: --flash-budget {budget_bytes:,} B is below the smallest the model's "
                            f"weights reach, every conv/depthwise/fully connected layer int4: {self.all4_bytes:,} B "
                            f"(all int8: {int8_bytes:,} B).")
        if budget_bytes >= int8_bytes:  # nothing to lower (the agreement report measures the int8 model)
            all8 = {n: 8 for n in layers}
            if self.activations != "auto":
                return Choice(all8, "all int8", budget_bytes, int8_bytes, int8_bytes, None, None)
            rule, act16, measured, rows = self._best({"all int8": all8})
            return self._choice(rule, all8, act16, budget_bytes, None, measured[rule], {}, rows)
        candidates, predicted = {}, {}
        for world in (8, 16) if self.activations == "auto" else (8,):
            rule = "auto (knapsack)" if world == 8 else "auto (knapsack, int16-activation costs)"
            candidates[rule], predicted[rule] = self._knapsack(budget_bytes, world)
        candidates.update({rule: b for rule, b in fixed_rules(layers).items() if self.bytes_of(b) <= budget_bytes})
        rule, act16, measured, rows = self._best(candidates)
        base_rule = rule.replace(" + int16 activations", "")
        return self._choice(rule, candidates[base_rule], act16, budget_bytes, predicted.get(base_rule),
                            measured[rule], {n: self.sensitivity_db(n) for n in layers}, rows)

    def _knapsack(self, budget_bytes: int, world: int) -> tuple[dict[str, int], float]:
        """The widths the knapsack keeps at int8 under the budget, by the sensitivities of `world`, and the
        SQNR it predicts (the layers' added noise taken as additive)."""
        scorer, base, alone = self._sensitivity(world)
        layers = self.layers
        savings = [int4_saving(self.graph, n) for n in layers]
        added = [max(alone[n] - base, 0.0) for n in layers]
        _, keep = knapsack(savings, added, budget_bytes - self.all4_bytes)
        bits = {n: 8 if i in keep else 4 for i, n in enumerate(layers)}
        return bits, scorer.db(base + sum(added[i] for i in range(len(layers)) if i not in keep))


def choose_widths(calib: Calibration, samples: dict[str, np.ndarray], budget_bytes: int, activations: str = "int8",
                  sram_budget: int | None = None) -> Choice:
    """The widths whose weights fit `budget_bytes` (every constant of the quantized model) with the best output
    SQNR on `samples` (see the module docstring)."""
    return WidthChooser(calib, samples, activations, sram_budget).choose(budget_bytes)


def fixed_widths(graph: Graph, mode: str) -> dict[str, int]:
    """--weights int8 / int4: every int4-capable layer at that width."""
    return {n: 4 if mode == "int4" else 8 for n in int4_layers(graph)}


def widths_for(graph: Graph, calib: Calibration | None, samples: dict[str, np.ndarray], weights: str,
               budget_bytes: int | None, activations: str = "int8",
               sram_budget: int | None = None) -> tuple[dict[str, int], Choice | None]:
    """The per-layer widths of --weights int8 | int4 | auto (auto: chosen under budget_bytes, required), and
    the Choice (None for fixed widths with int8 activations)."""
    if weights not in WEIGHT_MODES:
        raise UserError(f"--weights {weights}: use one of {', '.join(WEIGHT_MODES)}.")
    if activations not in ACTIVATION_MODES:
        raise UserError(f"--activations {activations}: use one of {', '.join(ACTIVATION_MODES)}.")
    if weights == "auto" and budget_bytes is None:
        raise UserError("--weights auto chooses each layer's weight width to fit a flash budget: pass "
                        "--flash-budget BYTES (the bytes the model's weights may take).")
    if weights == "auto":
        choice = choose_widths(calib, samples, budget_bytes, activations, sram_budget)
        return choice.bits, choice
    bits = fixed_widths(graph, weights)
    if activations == "int8":
        return bits, None
    chooser = WidthChooser(calib, samples, activations, sram_budget)
    rule, act16, measured, rows = chooser._best({f"all {weights}": bits})
    return bits, chooser._choice(rule, bits, act16, budget_bytes, None, measured[rule], {}, rows)


def quantize_mixed(graph: Graph, samples: dict[str, np.ndarray], method: str = "auto", weights: str = "int8",
                   budget_bytes: int | None = None, activations: str = "int8",
                   sram_budget: int | None = None) -> tuple[Graph, dict]:
    """`ptq.quantize_model` with per-layer weight widths: the quantized graph and report.json's `quantization`
    section, which adds `weights` (the mode), `layers` (bits and bytes per weighted layer) and, for auto,
    `allocation` (budget, bytes, predicted and measured SQNR on the calibration samples, the alternatives)."""
    from .ptq import _worse, agreement_report, quantize_model
    if (weights not in WEIGHT_MODES or (weights == "auto" and budget_bytes is None)
            or activations not in ACTIVATION_MODES):
        widths_for(graph, None, samples, weights, budget_bytes, activations)  # the user error, before calibrating
    if weights == "int8" and budget_bytes is None and activations == "int8":
        qgraph, report = quantize_model(graph, samples, method)
        bits, choice = fixed_widths(graph, "int8"), None
    else:
        calib = Calibration(graph, samples, method)
        bits, choice = widths_for(graph, calib, samples, weights, budget_bytes, activations, sram_budget)
        act16 = choice.act16 if choice is not None else []
        qgraph = calib.quantize(bits, act16=act16)
        n = len(next(iter(samples.values())))
        report = {"method": method, "samples": n, "outputs": agreement_report(graph, qgraph, samples),
                  **calib.summary}
        if method == "auto":  # never worse than min/max ranges (with the same widths and bias correction)
            minmax = calib.quantize(bits, calib.minmax, act16)
            minmax_rows = agreement_report(graph, minmax, samples)
            if _worse(report["outputs"], minmax_rows):
                qgraph = minmax
                report.update(outputs=minmax_rows, ranges="minmax")
                report.pop("ranges_changed", None)
        if weights != "auto" and budget_bytes is not None and constant_bytes(qgraph) > budget_bytes:
            raise UserError(f"{graph.name}: with --weights {weights} the weights take {constant_bytes(qgraph):,} B, "
                            f"over --flash-budget {budget_bytes:,} B; use --weights auto to choose widths that fit.")
    report["weights"] = weights
    report["activations"] = activations
    report["weights_bytes"] = constant_bytes(qgraph)
    report["layers"] = (choice.layers_json(graph) if choice is not None
                        else Choice(bits, weights, None, 0, 1, None, None).layers_json(graph))
    if choice is not None:
        report["allocation"] = choice.to_json(graph)
        del report["allocation"]["layers"]
    return qgraph, report
