"""Each weighted layer's rounding error as the network's output sees it: the second moments GPTQ rounds int4
weights against (issue 15).

GPTQ (gptq.py) minimises a layer's own output error E||(W - Q) x||^2 under H = E[x x^T]. The network's output is
what counts: an error on a channel that a ReLU then zeroes costs nothing, errors that a global pool sums
over positions add up when they share a sign, and a channel the classifier weighs little costs little. To first
order the network's output moves by J e, e the layer's pre-activation output error and J the Jacobian of the
outputs with respect to it. With e[p, c] = (W_c - Q_c) . x_p at output position p and channel c, and the
cross-channel terms left out (the channels' rounding errors are independent), that is

    E||J e||^2 ~= sum_c (W_c - Q_c) H_c (W_c - Q_c)^T,   H_c = E[z z^T],   z = sum_p g[p, c] x_p,

with g = J^T r the vector-Jacobian product of a seed r at the outputs: each output's one-hot vectors when it has
at most SEEDS values per sample (then sum_r g g^T is exactly J^T J), else SEEDS random +-1 projections, each
output weighted by 1 / its mean power (the outputs' SQNRs count alike). The gradients come from each float op's
`vjp` (mcutool/ops, OpDef.vjp), one backward pass per seed and batch of samples; a layer whose output reaches
an output only through an op without one gets no output hessian (GPTQ keeps its own H for it).

    h = output_hessians(graph, samples, ["conv2d_7", ...])   # name -> (out, K, K), K as mixed._layer_inputs
    h_c = blended(h["conv2d_7"], plain_h)                      # what gptq_clip_round is given per channel

`blended` adds the plain H to each channel's (both scaled to a mean diagonal of 1, PLAIN_SHARE of it): the
output hessians come from as many samples x seeds as the calibration has, which a 3x3x64 layer's 576 weights per
channel can overfit, and the layer's own error keeps the rounding sensible where the first-order picture is not.
"""
from __future__ import annotations

import numpy as np

from ..ir import Graph, Op
from ..ops import op_def
from ..ops.common import activation_grad
from .. import reference

SEEDS = 16           # seeds per output: one-hot up to this many values per sample, else random +-1 projections
PLAIN_SHARE = 1.0    # the layer's own (GPTQ) second moments in `blended`, relative to the output ones
MAX_ENTRIES = 1 << 27  # out x K x K float64 values kept over all layers (1 GiB), in graph order; the rest keep
                       # GPTQ's own H (a MobileNetV2's 320 -> 1280 pointwise alone would take 1 GiB)


def output_hessians(graph: Graph, samples: dict[str, np.ndarray], layers: list[str]) -> dict[str, np.ndarray]:
    """Per conv / fully connected layer in `layers` whose output reaches the graph's outputs through ops with a
    vjp, while the layers' (out, K, K) values fit MAX_ENTRIES: H_c for each output channel c (module
    docstring), shape (out, K, K), averaged over the samples."""
    from .mixed import _layer_inputs
    from .ptq import batches
    ops, entries = {}, 0
    for op in graph.ops:
        if op.name in layers and op.kind in ("conv2d", "fully_connected"):
            size = graph.tensor(op.inputs[1]).shape[0] * _width(graph, op) ** 2
            if entries + size <= MAX_ENTRIES:
                ops[op.name], entries = op, entries + size
    sums: dict[str, np.ndarray] = {}
    count = 0
    rng = np.random.default_rng(0)
    for g, x in batches(graph, samples):
        values = reference.run(g, x, keep=True)
        n = len(next(iter(x.values())))
        count += n
        cols_of: dict[str, np.ndarray] = {}  # each layer's input vectors of this batch, made once for all seeds
        for seeds in _seeds(g, values, rng):
            for name, grad in _layer_output_grads(g, values, seeds, set(ops)).items():
                op = ops[name]
                if name not in cols_of:
                    x_in = values[op.inputs[0]].astype(np.float64)
                    cols_of[name] = _layer_inputs(graph, op, x_in).reshape(n, -1, _width(graph, op))
                cols = cols_of[name]
                z = np.matmul(grad.reshape(n, cols.shape[1], -1).transpose(0, 2, 1), cols)  # (n, out, K)
                h = np.matmul(z.transpose(1, 2, 0), z.transpose(1, 0, 2))                     # (out, K, K)
                sums[name] = sums[name] + h if name in sums else h
    return {name: h / max(count, 1) for name, h in sums.items()}


def _width(graph: Graph, op: Op) -> int:
    w = graph.tensor(op.inputs[1])
    return w.size // w.shape[0]


def _seeds(g: Graph, values: dict[str, np.ndarray], rng: np.random.Generator):
    """Yield {output: seed} dicts, one output seeded at a time (module docstring)."""
    for out in g.outputs:
        y = np.asarray(values[out], np.float64)
        n, size = y.shape[0], y[0].size
        weight = 1.0 / np.sqrt(max(float(np.mean(np.square(y))) * size, 1e-30))
        if size <= SEEDS:
            for i in range(size):
                seed = np.zeros((n, size))
                seed[:, i] = weight
                yield {out: seed.reshape(y.shape)}
        else:
            for _ in range(SEEDS):
                yield {out: (rng.choice([-1.0, 1.0], size=y.shape) * weight / np.sqrt(SEEDS))}


def _layer_output_grads(g: Graph, values: dict[str, np.ndarray], seeds: dict[str, np.ndarray],
                        layers: set[str]) -> dict[str, np.ndarray]:
    """One backward pass from `seeds`: for each op named in `layers` that the pass reaches, the gradient at
    its pre-activation output (its output's gradient times its fused activation's derivative). A tensor read
    by an op without a vjp is marked unknown, and so is everything upstream of it."""
    grads = {name: np.asarray(s, np.float64) for name, s in seeds.items()}
    unknown: set[str] = set()
    out: dict[str, np.ndarray] = {}
    for op in reversed(g.ops):
        outs = [o for o in op.outputs if o]
        if any(o in unknown for o in outs):
            unknown.update(n for n in op.inputs if n)
            continue
        if not any(o in grads for o in outs):
            continue
        d = op_def(op.kind)
        if d is None or d.vjp is None or len(op.outputs) != 1:
            unknown.update(n for n in op.inputs if n)
            continue
        y = np.asarray(values[op.outputs[0]], np.float64)
        gy = grads.get(op.outputs[0], np.zeros_like(y))
        if op.name in layers:
            out[op.name] = gy * activation_grad(y, getattr(op.attrs, "activation", "none"))
        args = [values[n] if n else None for n in op.inputs]
        for name, gx in zip(op.inputs, d.vjp(g, op, args, [y], [gy])):
            if name and gx is not None and not g.tensor(name).is_const:
                grads[name] = grads[name] + gx if name in grads else np.asarray(gx, np.float64)
    return {name: v for name, v in out.items() if name not in unknown}


def blended(h_out: np.ndarray, h_plain: np.ndarray, plain_share: float | None = None) -> np.ndarray:
    """Per output channel: its output hessian and the layer's plain one, each scaled to a mean diagonal of 1,
    the plain one weighted `plain_share` (a channel the outputs never see keeps the plain one alone)."""
    def unit(h):
        d = np.mean(np.diagonal(h, axis1=-2, axis2=-1), axis=-1)
        return h / np.where(d > 0, d, 1.0)[..., None, None]
    share = PLAIN_SHARE if plain_share is None else plain_share
    return unit(h_out) + share * unit(h_plain)[None]
