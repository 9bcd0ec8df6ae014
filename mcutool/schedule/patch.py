"""Patch-based inference (MCUNetV2): run the memory-heavy first stage of a network tile by tile.

The stage is the first run of the op list (after an optional transpose/reshape prologue), ops[0..k], a chain of spatially local layers (conv, depthwise, pad,
max/avg pool). Layer k's output is cut into an n x n grid of equal tiles (the last tile of a row/column is
shifted back to stay inside, so neighbouring tiles may overlap and recompute identical values). For each tile,
receptive-field arithmetic walks back through the stage: output rows [a, a + t) of a layer with kernel K,
stride s, dilation d and top padding p need its input rows [a*s - p, (a + t - 1)*s - p + d*(K - 1) + 1).
Every tile therefore has the same buffer shapes, only their origins differ.

Each tile runs the stage's layers "valid" (no padding) on those buffers. Where a buffer's region lies outside
its tensor (the layer's padding), the positions are filled with the value the padding means in TFLite int8:
the input zero point for conv / depthwise / pad, the int8 minimum for max pool (which ignores padded taps);
an average pool inside a stage must have no padding (TFLite divides by the valid count). That makes every tile
bit-exact with layer-by-layer execution. The stage input buffer is filled the same way when it is loaded.

Buffers ping-pong between two halves of one scratch tensor (even-numbered buffers in the first, odd in the
second). The graph rewrite (`apply_plan`) replaces ops[0..k] with one `patch_stage` op (inputs: the stage
input; outputs: layer k's output and the scratch), so the arena planner plans it like any other op.

`choose_plan` searches (k, n): `auto` patches only when the layer-by-layer arena does not fit the SRAM limit;
it then takes the lowest arena whose extra MACs stay within `max_overhead` percent (or, given an SRAM budget,
the least overhead that fits). `run` executes a rewritten graph with the numpy reference, tile by tile.
"""
from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field

import numpy as np

from ..errors import UserError
from ..ir import Graph, Op, PatchStageAttrs, Tensor, op_macs
from .arena import ALIGN, plan_arena

LOCAL_KINDS = ("conv2d", "depthwise_conv2d", "pad", "max_pool2d", "avg_pool2d")
MAX_GRID = 8
SCRATCH = "patch_scratch"
STAGE_OP = "patch_stage"


# ------------------------------------------------------------------------------------ receptive fields

@dataclass(frozen=True)
class Window:
    """A layer's sliding window along (H, W): kernel, stride, dilation and the padding before (top, left)."""
    kernel: tuple[int, int]
    stride: tuple[int, int]
    dilation: tuple[int, int]
    before: tuple[int, int]


def window(graph: Graph, op: Op) -> Window:
    a = op.attrs
    if op.kind in ("conv2d", "depthwise_conv2d"):
        kh, kw = graph.tensor(op.inputs[1]).shape[1:3]
        return Window((kh, kw), tuple(a.stride), tuple(a.dilation), (a.pads[0], a.pads[1]))
    if op.kind in ("max_pool2d", "avg_pool2d"):
        return Window(tuple(a.filter), tuple(a.stride), (1, 1), (a.pads[0], a.pads[1]))
    if op.kind == "pad":
        return Window((1, 1), (1, 1), (1, 1), (a.pads[1][0], a.pads[2][0]))
    raise ValueError(f"{op.kind} is not spatially local")


def input_span(w: Window, axis: int, start: int, size: int) -> tuple[int, int]:
    """(start, size) of the input rows (axis 0) or columns (axis 1) that output [start, start + size) needs."""
    s, d, k, p = w.stride[axis], w.dilation[axis], w.kernel[axis], w.before[axis]
    return start * s - p, (size - 1) * s + d * (k - 1) + 1


def tile_starts(extent: int, n: int) -> list[int]:
    """Origins of n equal tiles of ceil(extent / n) covering [0, extent); the last ones shifted back inside."""
    t = math.ceil(extent / n)
    return [min(i * t, extent - t) for i in range(n)]


# --------------------------------------------------------------------------------------- the stage

def _spatial(t: Tensor) -> bool:
    return len(t.shape) == 4 and t.shape[0] == 1 and t.dtype == "int8" and t.quant is not None \
        and not t.quant.per_channel


def _local(graph: Graph, op: Op) -> bool:
    """Can `op` run on a tile of its input (windowed, channels whole, exact with the border fill)?"""
    if op.kind not in LOCAL_KINDS:
        return False
    x, y = graph.tensor(op.inputs[0]), graph.tensor(op.outputs[0])
    if not (_spatial(x) and _spatial(y)) or x.is_const:
        return False
    if op.kind == "pad":
        pads = op.attrs.pads
        return len(pads) == 4 and tuple(pads[0]) == (0, 0) and tuple(pads[3]) == (0, 0) \
            and all(v >= 0 for p in pads for v in p) and x.quant.zero_point[0] == y.quant.zero_point[0]
    if op.kind == "avg_pool2d":  # divides by the count of valid taps: no fill value stands for its padding
        return not any(op.attrs.pads)
    return True


PROLOGUE_KINDS = ("transpose", "reshape", "quantize")  # e.g. a PyTorch export's NCHW -> NHWC transpose


def stage_ops(graph: Graph) -> list[Op]:
    """The longest patchable run of ops at the start of the network: after an optional prologue (a chain of
    transpose / reshape / quantize ops from a graph input), a chain of local ops, every tensor inside it read
    by the next op alone (the last op's output may have any number of readers)."""
    consumers = graph.consumers()
    stage: list[Op] = []
    chain = set(graph.inputs)
    for op in graph.ops:
        src = op.inputs[0]
        if not stage and src in chain and op.kind in PROLOGUE_KINDS and len(consumers[src]) == 1:
            chain = {op.outputs[0]}
            continue
        if stage and src != stage[-1].outputs[0]:
            break
        if not stage and src not in chain:
            break
        if not _local(graph, op):
            break
        stage.append(op)
        out = op.outputs[0]
        if len(consumers[out]) != 1 or out in graph.outputs:
            break
    return stage


@dataclass
class PatchPlan:
    """ops[0..split] run on an n x n grid of tiles of ops[split]'s output.

    Buffer j (0 <= j <= split + 1) is tensor `tensors[j]` restricted to a `shapes[j]` region whose origin for
    patch p is `origins[p][j]` (rows, cols; may be negative or run past the tensor); buffer j is op j's input
    and buffer j + 1 its output. `fills[j]` is the value of buffer j's positions outside its tensor."""
    split: int
    grid: int
    ops: list[Op]
    tensors: list[str]
    shapes: list[tuple[int, int, int]]     # (h, w, c) of each buffer
    full: list[tuple[int, int, int]]       # (H, W, C) of each whole tensor
    origins: list[list[tuple[int, int]]]   # [patch][buffer] -> (y, x)
    fills: list[int]
    stage_macs: int = 0
    patched_macs: int = 0
    model_macs: int = 0
    arena_bytes: int = 0
    offsets: list[int] = field(default_factory=list)  # byte offset of each buffer in the scratch tensor
    scratch_bytes: int = 0
    tile: Graph | None = field(default=None, repr=False)  # one tile as a graph (see tile_graph)

    @property
    def split_layer(self) -> str:
        return self.ops[-1].name

    @property
    def extra_macs(self) -> int:
        return self.patched_macs - self.stage_macs

    @property
    def extra_macs_pct(self) -> float:
        return 100.0 * self.extra_macs / self.model_macs if self.model_macs else 0.0

    def buffer_name(self, j: int) -> str:
        return f"patch_buf{j}"

    def outside(self, j: int) -> bool:
        """Does buffer j extend outside its tensor for some patch (so it needs the border fill)?"""
        h, w, _ = self.shapes[j]
        H, W, _ = self.full[j]
        return any(y < 0 or x < 0 or y + h > H or x + w > W for y, x in (o[j] for o in self.origins))

    def to_json(self) -> dict:
        return {"split_layer": self.split_layer, "grid": [self.grid, self.grid],
                "extra_macs_pct": round(self.extra_macs_pct, 2), "stage_layers": [op.name for op in self.ops],
                "extra_macs": self.extra_macs, "scratch_bytes": self.scratch_bytes}

    def tile_graph(self, graph: Graph) -> Graph:
        """One tile as a graph: buffers as tensors, the stage's ops with their padding removed ("valid").
        `graph` is the original graph (the stage's inner tensors are gone from the rewritten one)."""
        g = Graph(f"{graph.name}_patch")
        for j, name in enumerate(self.tensors):
            t = graph.tensor(name)
            g.add_tensor(Tensor(self.buffer_name(j), (1,) + self.shapes[j], t.dtype, t.quant))
        ops = []
        for j, op in enumerate(self.ops):
            for n in op.inputs[1:]:
                if n and n not in g.tensors:
                    g.add_tensor(graph.tensor(n))
            ops.append(Op(op.name, op.kind, [self.buffer_name(j)] + list(op.inputs[1:]),
                          [self.buffer_name(j + 1)], _valid_attrs(op)))
        g.ops = ops
        g.inputs, g.outputs = [self.buffer_name(0)], [self.buffer_name(len(self.ops))]
        return g


def _valid_attrs(op: Op):
    a = op.attrs
    if op.kind == "pad":
        return dataclasses.replace(a, pads=tuple((0, 0) for _ in a.pads))
    return dataclasses.replace(a, pads=(0, 0, 0, 0))


def _fill_value(graph: Graph, op: Op) -> int:
    """What a padded position of `op`'s input means, as a stored int8 value."""
    if op.kind == "max_pool2d":
        return -128
    return int(graph.tensor(op.inputs[0]).quant.zero_point[0])


def _align(n: int) -> int:
    return (n + ALIGN - 1) // ALIGN * ALIGN


def make_plan(graph: Graph, stage: list[Op], split: int, grid: int) -> PatchPlan:
    """The plan for ops stage[0..split] on a grid x grid tiling of stage[split]'s output."""
    ops = stage[:split + 1]
    tensors = [ops[0].inputs[0]] + [op.outputs[0] for op in ops]
    full = [tuple(graph.tensor(n).shape[1:]) for n in tensors]
    H, W, C = full[-1]
    if grid < 1 or grid > min(H, W):
        raise ValueError(f"a {grid}x{grid} grid does not fit a {H}x{W} output")
    th, tw = math.ceil(H / grid), math.ceil(W / grid)
    windows = [window(graph, op) for op in ops]
    shapes: list[tuple[int, int, int]] = [(0, 0, 0)] * len(tensors)
    shapes[-1] = (th, tw, C)
    origins = []
    for y0 in tile_starts(H, grid):
        for x0 in tile_starts(W, grid):
            org = [(0, 0)] * len(tensors)
            org[-1] = (y0, x0)
            for j in range(len(ops) - 1, -1, -1):
                (y, h), (x, w) = (input_span(windows[j], 0, org[j + 1][0], shapes[j + 1][0]),
                                  input_span(windows[j], 1, org[j + 1][1], shapes[j + 1][1]))
                org[j] = (y, x)
                shapes[j] = (h, w, full[j][2])
            origins.append(org)
    fills = [_fill_value(graph, op) for op in ops] + [0]
    stage_macs = sum(op_macs(graph, op) for op in ops)
    per_patch = 0
    for j, op in enumerate(ops):
        out = graph.tensor(op.outputs[0])
        per_pixel = op_macs(graph, op) // (out.shape[1] * out.shape[2])
        per_patch += per_pixel * shapes[j + 1][0] * shapes[j + 1][1]
    nbytes = [h * w * c for h, w, c in shapes]
    half = [_align(max(nbytes[0::2])), _align(max(nbytes[1::2]))]
    offsets = [0 if j % 2 == 0 else half[0] for j in range(len(tensors))]
    plan = PatchPlan(split, grid, ops, tensors, shapes, full, origins, fills, stage_macs=stage_macs,
                     patched_macs=per_patch * grid * grid,
                     model_macs=sum(op_macs(graph, op) for op in graph.ops), offsets=offsets,
                     scratch_bytes=half[0] + half[1])
    plan.tile = plan.tile_graph(graph)
    return plan


# ------------------------------------------------------------------------------------- graph rewrite

def apply_plan(graph: Graph, plan: PatchPlan) -> Graph:
    """A copy of `graph` whose ops[0..split] are one `patch_stage` op; the original graph is left as is."""
    inner = set(plan.tensors[1:-1])
    g = Graph(graph.name, {n: t for n, t in graph.tensors.items() if n not in inner},
              inputs=list(graph.inputs), outputs=list(graph.outputs))
    name = STAGE_OP
    while any(op.name == name for op in graph.ops):
        name += "_"
    scratch = SCRATCH
    while scratch in g.tensors:
        scratch += "_"
    g.add_tensor(Tensor(scratch, (plan.scratch_bytes,), "int8"))
    stage = Op(name, STAGE_OP, [plan.tensors[0]], [plan.tensors[-1], scratch], PatchStageAttrs(plan))
    first = next(i for i, op in enumerate(graph.ops) if op is plan.ops[0])
    g.ops = list(graph.ops[:first]) + [stage] + list(graph.ops[first + plan.split + 1:])
    g.validate()
    return g


# ------------------------------------------------------------------------------------------- search

@dataclass
class Choice:
    plan: PatchPlan | None
    arena_bytes: int        # of the schedule chosen
    unpatched_bytes: int    # arena layer by layer
    reason: str


def candidates(graph: Graph, grids=None) -> list[PatchPlan]:
    """Every (split, grid) plan of the graph's patchable stage, each with the arena it gives."""
    stage = stage_ops(graph)
    plans = []
    for split in range(len(stage)):
        _, H, W, _ = graph.tensor(stage[split].outputs[0]).shape
        for n in grids or range(2, MAX_GRID + 1):
            if n > min(H, W):
                continue
            plan = make_plan(graph, stage, split, n)
            plan.arena_bytes = plan_arena(apply_plan(graph, plan)).size
            plans.append(plan)
    return plans


def parse_mode(value: str | int) -> str | int:
    """'auto' | 'off' | N (an int >= 1); anything else is the user's error."""
    if isinstance(value, int):
        n = value
    elif str(value).lower() in ("auto", "off"):
        return str(value).lower()
    elif str(value).isdigit():
        n = int(value)
    else:
        raise UserError(f"--patch takes auto, off or a grid size N (e.g. 4 for 4x4 patches), not {value!r}.")
    if not 1 <= n <= 64:
        raise UserError(f"--patch {n}: the grid size must be between 1 and 64.")
    return "off" if n == 1 else n


def choose_plan(graph: Graph, mode: str | int, limit_bytes: int, other_bytes: int, max_overhead: float,
                budget_given: bool = False) -> Choice:
    """Pick the patch plan (or none) for `mode`. `limit_bytes` is the SRAM the firmware may use, of which
    `other_bytes` (stack, static data) is not arena."""
    mode = parse_mode(mode)
    base = plan_arena(graph).size
    if mode == "off":
        return Choice(None, base, base, "--patch off")
    if mode == "auto" and base + other_bytes <= limit_bytes:
        return Choice(None, base, base, f"the layer-by-layer arena ({base:,} B) fits")
    plans = candidates(graph, [mode] if isinstance(mode, int) else None)
    if not plans:
        if isinstance(mode, int):
            raise UserError(f"--patch {mode}: the model has no stage that a {mode}x{mode} grid can patch (the "
                            f"first layers must be conv/depthwise/pad/pool with a spatial output of at least "
                            f"{mode}x{mode}).")
        return Choice(None, base, base, "no patchable first stage")
    within = [p for p in plans if p.extra_macs_pct <= max_overhead]
    if isinstance(mode, int):
        best = min(within or plans, key=lambda p: (p.arena_bytes, p.extra_macs))
        return Choice(best, best.arena_bytes, base, f"--patch {mode}")
    fits = [p for p in within if p.arena_bytes + other_bytes <= limit_bytes]
    if budget_given and fits:
        best = min(fits, key=lambda p: (p.extra_macs, p.arena_bytes))
        return Choice(best, best.arena_bytes, base, "the least extra MACs that fits the SRAM budget")
    if not within:
        return Choice(None, base, base, f"no patch plan within --max-overhead {max_overhead:g} %")
    best = min(within, key=lambda p: (p.arena_bytes, p.extra_macs))
    if best.arena_bytes >= base:
        return Choice(None, base, base, "patching does not lower the arena")
    return Choice(best, best.arena_bytes, base, "the lowest arena within --max-overhead")


# ----------------------------------------------------------------------------- numpy execution (golden)

def _region(x: np.ndarray, y: int, xo: int, h: int, w: int, fill: int) -> np.ndarray:
    """x[0, y:y+h, xo:xo+w, :] with positions outside x set to `fill`."""
    _, H, W, C = x.shape
    buf = np.full((1, h, w, C), fill, dtype=x.dtype)
    ys, ye, xs, xe = max(y, 0), min(y + h, H), max(xo, 0), min(xo + w, W)
    if ys < ye and xs < xe:
        buf[0, ys - y:ye - y, xs - xo:xe - xo] = x[0, ys:ye, xs:xe]
    return buf


def _refill(buf: np.ndarray, y: int, xo: int, H: int, W: int, fill: int) -> np.ndarray:
    _, h, w, _ = buf.shape
    rows = (np.arange(h) + y < 0) | (np.arange(h) + y >= H)
    cols = (np.arange(w) + xo < 0) | (np.arange(w) + xo >= W)
    buf = buf.copy()
    buf[0, rows] = fill
    buf[0, :, cols] = fill
    return buf


def run_stage(graph: Graph, plan: PatchPlan, x: np.ndarray) -> np.ndarray:
    """Layer `split`'s whole output, computed patch by patch with the reference kernels."""
    from .. import reference
    pg = plan.tile
    out = np.zeros((1,) + plan.full[-1], dtype=x.dtype)
    last = len(plan.ops)
    for org in plan.origins:
        (y, xo), (h, w, _) = org[0], plan.shapes[0]
        buf = _region(x, y, xo, h, w, plan.fills[0])
        for j, op in enumerate(pg.ops):
            args = [buf] + [pg.tensor(n).data if n else None for n in op.inputs[1:]]
            buf = reference.run_op(pg, op, args)[0]
            if j + 1 < last:
                buf = _refill(buf, *org[j + 1], *plan.full[j + 1][:2], plan.fills[j + 1])
        (y, xo), (h, w, _) = org[last], plan.shapes[last]
        out[0, y:y + h, xo:xo + w] = buf[0]
    return out


def run(graph: Graph, inputs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Execute a graph that may hold a `patch_stage` op (from apply_plan): the stage tile by tile, every
    other op with the reference."""
    from .. import reference
    values = {n: np.asarray(t.data) for n, t in graph.tensors.items() if t.is_const}
    values.update(inputs)
    for op in graph.ops:
        if op.kind == STAGE_OP:
            values[op.outputs[0]] = run_stage(graph, op.attrs.plan, values[op.inputs[0]])
            continue
        args = [values[n] if n else None for n in op.inputs]
        for name, v in zip(op.outputs, reference.run_op(graph, op, args)):
            values[name] = v
    return {n: values[n] for n in graph.outputs}
