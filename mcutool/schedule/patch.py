"""Patch-based inference (MCUNetV2): run the memory-heavy first stage of a network tile by tile.

The stage is the first run of the op list (after an optional transpose/reshape prologue), ops[0..k], of spatially
local layers: conv, depthwise, pad, max/avg pool, and elementwise ops on equal shapes -- the residual adds between
them, activations and tables (swish fused or as LOGISTIC and MUL), requantization, channel concatenation; no tensor
made inside it but layer k's output is read after it. Layer k's output is cut into an n x n grid of equal tiles (the
last tile of a row/column is shifted back to stay inside, so neighbouring tiles may overlap and recompute identical
values). For each tile, receptive-field arithmetic walks back through the stage: output rows [a, a + t) of a layer
with kernel K, stride s, dilation d and top padding p need its input rows
[a*s - p, (a + t - 1)*s - p + d*(K - 1) + 1); a tensor with several readers gets the union of what they need, and a
reader needing less (a residual add's skip input) reads a crop of it. Every tile therefore has the same buffer
shapes, only their origins differ.

Each tile runs the stage's layers "valid" (no padding) on those buffers. Where a buffer's region lies outside
its tensor (the layer's padding), the positions are filled with the value the padding means in TFLite int8:
the input zero point for conv / depthwise / pad, the int8 minimum for max pool (which ignores padded taps);
an average pool inside a stage must have no padding (TFLite divides by the valid count). That makes every tile
bit-exact with layer-by-layer execution. The stage input buffer is filled the same way when it is loaded.

The tile buffers live in one scratch tensor, placed by the arena planner run on the tile's own program. The
graph rewrite (`apply_plan`) replaces ops[0..k] with one `patch_stage` op (inputs: the stage input; outputs:
layer k's output and the scratch), so the arena planner plans it like any other op.

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
from .arena import align, plan_arena
from .liveness import lifetimes, live_bytes_per_op

WINDOWED_KINDS = ("conv2d", "depthwise_conv2d", "pad", "max_pool2d", "avg_pool2d")
# output element (y, x, c) from the inputs' elements at (y, x) alone: a tile computes them from the same region of
# its inputs, and positions outside the tensor need no fill (a windowed reader's fill step comes after)
UNARY_KINDS = ("lut", "quantize", "logistic", "hard_swish", "relu", "relu6", "leaky_relu", "tanh", "elu", "abs")
BINARY_KINDS = ("add", "sub", "mul", "maximum", "minimum", "squared_difference")
ELEMENTWISE_KINDS = UNARY_KINDS + BINARY_KINDS + ("concat",)  # concat: along channels only
LOCAL_KINDS = WINDOWED_KINDS + ELEMENTWISE_KINDS
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


def activation_inputs(graph: Graph, op: Op) -> list[str]:
    return [n for n in op.inputs if n and not graph.tensor(n).is_const]


def _local(graph: Graph, op: Op) -> bool:
    """Can `op` run on a tile of its input(s) (windowed or elementwise, channels whole, exact with the fill)?"""
    if op.kind not in LOCAL_KINDS or len(op.outputs) != 1:
        return False
    acts = [graph.tensor(n) for n in activation_inputs(graph, op)]
    y = graph.tensor(op.outputs[0])
    if not acts or not all(_spatial(t) for t in acts + [y]):
        return False
    consts = [n for n in op.inputs if n and graph.tensor(n).is_const]
    if op.kind == "concat":  # along channels, of stage tensors only
        return op.attrs.axis in (3, -1) and not consts and all(t.shape[:3] == y.shape[:3] for t in acts)
    if op.kind in BINARY_KINDS:  # on equal shapes (no broadcasting, no constant operand)
        return len(acts) == 2 and not consts and all(t.shape == y.shape for t in acts)
    if op.kind in UNARY_KINDS:  # one activation input (a PReLU-like constant would broadcast: not here)
        return len(acts) == 1 and not consts and acts[0].shape == y.shape
    if len(acts) != 1 or op.inputs[0] != acts[0].name:
        return False
    if op.kind in ("conv2d", "depthwise_conv2d") and graph.tensor(op.inputs[1]).dtype == "int4":
        return False  # int4 weights: runtime/ kernels, not the tile kernels (not tried in patches yet)
    x = acts[0]
    if op.kind == "pad":
        pads = op.attrs.pads
        return len(pads) == 4 and tuple(pads[0]) == (0, 0) and tuple(pads[3]) == (0, 0) \
            and all(v >= 0 for p in pads for v in p) and x.quant.zero_point[0] == y.quant.zero_point[0]
    if op.kind == "avg_pool2d":  # divides by the count of valid taps: no fill value stands for its padding
        return not any(op.attrs.pads)
    return True


PROLOGUE_KINDS = ("transpose", "reshape", "quantize")  # e.g. a PyTorch export's NCHW -> NHWC transpose


def stage_ops(graph: Graph, start: int | None = None) -> list[Op]:
    """The patchable run of ops at the start of the network: after an optional prologue (a chain of
    transpose / reshape / quantize ops from a graph input), the local ops that read only the stage input and
    each other's outputs (residual adds included), up to the first op that does not. Which prefixes of it can
    be one stage (no inner tensor read after it) says `valid_split`. `start`: the run beginning at op
    `start` instead, reading a whole tensor made before it (a stage after layers run whole, or a second one)."""
    consumers = graph.consumers()
    stage: list[Op] = []
    inside: set[str] = set()
    chain, source = set(graph.inputs), None
    if start is not None:
        chain = {graph.ops[start].inputs[0]} if start < len(graph.ops) else set()
    for op in graph.ops[start or 0:]:
        src = op.inputs[0]
        if start is None and not stage and src in chain and op.kind in PROLOGUE_KINDS \
                and len(consumers[src]) == 1:
            chain = {op.outputs[0]}
            continue
        if not _local(graph, op):
            break
        if not stage:
            if src not in chain or len(activation_inputs(graph, op)) != 1:
                break
            source = src
        elif not all(n in inside or n == source for n in activation_inputs(graph, op)):
            break
        stage.append(op)
        inside.add(op.outputs[0])
        if op.outputs[0] in graph.outputs:
            break
    return stage


def valid_split(graph: Graph, stage: list[Op], split: int) -> bool:
    """Can stage[0..split] be one patched stage: is every tensor it makes but the last read inside it only?"""
    names = {op.name for op in stage[:split + 1]}
    consumers = graph.consumers()
    for op in stage[:split]:
        out = op.outputs[0]
        if out in graph.outputs or not consumers[out] or any(c.name not in names for c in consumers[out]):
            return False
    return True


@dataclass(frozen=True)
class Crop:
    """A sub-region copy inside a tile: `name` (h, w, c) = buffer `src` from (dy, dx), for a reader that needs
    less of a tensor than its other readers (the skip input of a residual add)."""
    name: str
    src: int
    shape: tuple[int, int, int]
    dy: int
    dx: int


@dataclass
class PatchPlan:
    """ops[0..split] run on an n x n grid of tiles of ops[split]'s output.

    Buffer j (0 <= j <= split + 1) holds tensor `tensors[j]` (the stage input, then each op's output)
    restricted to a `shapes[j]` region whose origin for patch p is `origins[p][j]` (rows, cols; may be
    negative or run past the tensor); `fills[j]` is the value of its positions outside the tensor. `steps` is
    one tile's program: ("crop", Crop), ("op", i) running ops[i] (as `tile.ops[i]`), ("fill", j)."""
    split: int
    grid: int
    ops: list[Op]
    tensors: list[str]
    shapes: list[tuple[int, int, int]]     # (h, w, c) of each buffer
    full: list[tuple[int, int, int]]       # (H, W, C) of each whole tensor
    origins: list[list[tuple[int, int]]]   # [patch][buffer] -> (y, x)
    fills: list[int]
    crops: list[Crop] = field(default_factory=list)
    steps: list[tuple] = field(default_factory=list)
    stage_macs: int = 0
    patched_macs: int = 0
    model_macs: int = 0
    arena_bytes: int = 0
    offsets: dict[str, int] = field(default_factory=dict)  # tile buffer -> byte offset in the scratch tensor
    scratch_bytes: int = 0
    tile: Graph | None = field(default=None, repr=False)  # one tile as a graph (see tile_graph)
    transpose: Op | None = None  # an NCHW -> NHWC transpose of a graph input the tile load does instead

    @property
    def source(self) -> str:
        """The tensor the tile load reads: the stage input, or the NCHW graph input it is a transpose of."""
        return self.transpose.inputs[0] if self.transpose else self.tensors[0]

    @property
    def split_layer(self) -> str:
        return self.ops[-1].name

    @property
    def extra_macs(self) -> int:
        return self.patched_macs - self.stage_macs

    @property
    def extra_macs_pct(self) -> float:
        return 100.0 * self.extra_macs / self.model_macs if self.model_macs else 0.0

    @staticmethod
    def buffer_name(j: int) -> str:
        return f"patch_buf{j}"

    def outside(self, j: int) -> bool:
        """Does buffer j extend outside its tensor for some patch (so it needs the border fill)?"""
        h, w, _ = self.shapes[j]
        H, W, _ = self.full[j]
        return any(y < 0 or x < 0 or y + h > H or x + w > W for y, x in (o[j] for o in self.origins))

    def _first_read(self, p: int) -> int:
        """The first byte of the stage input tile p loads; every byte it loads lies at or after it (its region's
        top-left position, clipped to the tensor; in an NCHW input, that position in channel 0's plane)."""
        (y, x), (_, w_in, c_in) = self.origins[p][0], self.full[0]
        pos = max(y, 0) * w_in + max(x, 0)
        return pos if self.transpose else pos * c_in

    def _written_end(self, p: int) -> int:
        """One past the last byte of the stage output tile p stores (its bottom-right position)."""
        (y, x), (th, tw, c), w = self.origins[p][-1], self.shapes[-1], self.full[-1][1]
        return ((y + th - 1) * w + x + tw) * c

    @property
    def release_lead(self) -> int:
        """How far before its input the output may start so that no tile stores over an input byte a later tile
        still loads: the output then shares the input's buffer (schedule/arena.py). Input bytes are released tile
        by tile: tile p loads its input region before it stores its output, and a later tile loads nothing before
        its region's first byte, so the lead is the largest (end of tile p's output) - (first byte any later
        tile loads), rounded up to keep tensors aligned. Tiles run row by row, so within a row of tiles the next
        tile's region starts further right in the same input rows. An NCHW input (read through strides) is
        released the same way up to its channel-0 plane, where every tile's region begins."""
        lead, later = 0, math.inf
        for p in reversed(range(len(self.origins))):
            lead = max(lead, self._written_end(p) - later)
            later = min(later, self._first_read(p))
        return align(int(lead))

    def _whole_bytes(self) -> int:
        """Bytes of the stage's input and output, sharing a buffer when input rows are released."""
        whole_in, whole_out = math.prod(self.full[0]), math.prod(self.full[-1])
        return max(self.release_lead + whole_in, whole_out)

    @property
    def stage_bytes(self) -> int:
        """Bytes live while the stage runs, whatever the planner does: its input and output and the tiles."""
        self.place()
        return self._whole_bytes() + self.scratch_bytes

    @property
    def stage_bound(self) -> int:
        """stage_bytes without planning the tile buffers (their live bytes instead): a bound the arena of any
        schedule with this stage cannot go below, cheap enough to rank every candidate by."""
        return self._whole_bytes() + self.scratch_bound

    def to_json(self) -> dict:
        self.place()
        return {"split_layer": self.split_layer, "grid": [self.grid, self.grid],
                "extra_macs_pct": round(self.extra_macs_pct, 2), "stage_layers": [op.name for op in self.ops],
                "extra_macs": self.extra_macs, "scratch_bytes": self.scratch_bytes,
                "release_lead_bytes": self.release_lead}

    def tile_graph(self, graph: Graph, reads: dict[tuple[int, int], str]) -> Graph:
        """One tile as a graph: buffers as tensors, the stage's ops with their padding removed ("valid"),
        reading the buffers (or crops) `reads[(op index, activation input index)]` names.
        `graph` is the original graph (the stage's inner tensors are gone from the rewritten one)."""
        g = Graph(f"{graph.name}_patch")
        for j, name in enumerate(self.tensors):
            t = graph.tensor(name)
            g.add_tensor(Tensor(self.buffer_name(j), (1,) + self.shapes[j], t.dtype, t.quant))
        for c in self.crops:
            t = graph.tensor(self.tensors[c.src])
            g.add_tensor(Tensor(c.name, (1,) + c.shape, t.dtype, t.quant))
        for i, op in enumerate(self.ops):
            inputs, pos = [], 0
            for n in op.inputs:
                if n and not graph.tensor(n).is_const:
                    inputs.append(reads[(i, pos)])
                    pos += 1
                else:
                    inputs.append(n)
                    if n and n not in g.tensors:
                        g.add_tensor(graph.tensor(n))
            g.ops.append(Op(op.name, op.kind, inputs, [self.buffer_name(i + 1)], _valid_attrs(op)))
        g.inputs, g.outputs = [self.buffer_name(0)], [self.buffer_name(len(self.ops))]
        return g

    def _program(self) -> Graph:
        """The tile's program as a graph for planning its buffers (a crop counts as an op reading its source and
        writing the crop; only the lifetimes matter)."""
        g = Graph("tile", dict(self.tile.tensors), inputs=list(self.tile.inputs), outputs=list(self.tile.outputs))
        for kind, arg in self.steps:
            if kind == "crop":
                g.ops.append(Op(f"crop_{arg.name}", "pad", [self.buffer_name(arg.src)], [arg.name]))
            elif kind == "op":
                g.ops.append(self.tile.ops[arg])
        return g

    @property
    def scratch_bound(self) -> int:
        """The most tile-buffer bytes live at one step: what the scratch tensor cannot be smaller than."""
        spans = lifetimes(self._program()).values()
        return max(sum(align(s.nbytes) for s in spans if s.first <= i <= s.last) for i in range(len(self.ops)))

    def place(self) -> None:
        """Offsets of the tile buffers in the scratch tensor (once): the arena planner on the tile's program."""
        if not self.offsets:
            arena = plan_arena(self._program(), line_buffers=False)  # the tile program runs the plain kernels
            self.offsets, self.scratch_bytes = dict(arena.offsets), arena.size


def _valid_attrs(op: Op):
    a = op.attrs
    if op.kind == "pad":
        return dataclasses.replace(a, pads=tuple((0, 0) for _ in a.pads))
    if op.kind in ELEMENTWISE_KINDS:
        return a
    return dataclasses.replace(a, pads=(0, 0, 0, 0))


def _fill_value(graph: Graph, op: Op) -> int | None:
    """What a padded position of `op`'s input means, as a stored int8 value (None: an elementwise op, which has
    no padding)."""
    if op.kind in ELEMENTWISE_KINDS:
        return None
    if op.kind == "max_pool2d":
        return -128
    return int(graph.tensor(op.inputs[0]).quant.zero_point[0])


def _union(a, b):
    """Bounding box of two (y, h, x, w) regions."""
    if a is None:
        return b
    y, x = min(a[0], b[0]), min(a[2], b[2])
    return (y, max(a[0] + a[1], b[0] + b[1]) - y, x, max(a[2] + a[3], b[2] + b[3]) - x)


def _tile_regions(graph: Graph, ops: list[Op], index: dict[str, int], out_region):
    """Walk back from the output tile: each buffer's region (the union of what its readers need) and what
    each reader needs: ({buffer j: (y, h, x, w)}, {(op i, input k): (y, h, x, w)})."""
    regions, needs = {len(ops): out_region}, {}
    for i in range(len(ops) - 1, -1, -1):
        op = ops[i]
        if i + 1 not in regions:
            raise ValueError(f"{op.outputs[0]} is not read inside the stage")
        y, h, x, w = regions[i + 1]
        for k, n in enumerate(activation_inputs(graph, op)):
            if op.kind in ELEMENTWISE_KINDS:
                need = (y, h, x, w)
            else:
                win = window(graph, op)
                (ny, nh), (nx, nw) = input_span(win, 0, y, h), input_span(win, 1, x, w)
                need = (ny, nh, nx, nw)
            needs[(i, k)] = need
            regions[index[n]] = _union(regions.get(index[n]), need)
    return regions, needs


NCHW_TO_NHWC = (0, 2, 3, 1)


def _absorbed_transpose(graph: Graph, ops: list[Op]) -> Op | None:
    """The NCHW -> NHWC transpose of a graph input that makes the stage input, when only the stage reads it: the
    tile load then reads the NCHW input through strides and the transposed copy never exists."""
    name = ops[0].inputs[0]
    producer = next((op for op in graph.ops if name in op.outputs), None)
    if producer is None or producer.kind != "transpose" or producer.inputs[0] not in graph.inputs \
            or tuple(producer.attrs.perm) != NCHW_TO_NHWC or name in graph.outputs:
        return None
    inside = {op.name for op in ops}
    return producer if all(c.name in inside for c in graph.consumers()[name]) else None


def make_plan(graph: Graph, stage: list[Op], split: int, grid: int) -> PatchPlan:
    """The plan for ops stage[0..split] on a grid x grid tiling of stage[split]'s output."""
    if not valid_split(graph, stage, split):
        raise ValueError(f"a tensor made inside stage[0..{split}] is read after it")
    ops = stage[:split + 1]
    tensors = [ops[0].inputs[0]] + [op.outputs[0] for op in ops]
    index = {n: j for j, n in enumerate(tensors)}
    full = [tuple(graph.tensor(n).shape[1:]) for n in tensors]
    H, W, C = full[-1]
    if grid < 1 or grid > min(H, W):
        raise ValueError(f"a {grid}x{grid} grid does not fit a {H}x{W} output")
    th, tw = math.ceil(H / grid), math.ceil(W / grid)
    # rows and columns are independent: walking back tile (i, i) gives the rows of tile row i and the columns of
    # tile column i
    rows, cols, shapes, reads_at = [], [], None, None
    for y0, x0 in zip(tile_starts(H, grid), tile_starts(W, grid)):
        regions, needs = _tile_regions(graph, ops, index, (y0, th, x0, tw))
        sh = [(regions[j][1], regions[j][3], full[j][2]) for j in range(len(tensors))]
        at = {key: (ny - regions[index[n]][0], nh, nx - regions[index[n]][2], nw)
              for key, (ny, nh, nx, nw) in needs.items()
              for n in [activation_inputs(graph, ops[key[0]])[key[1]]]}
        if shapes is None:
            shapes, reads_at = sh, at
        elif sh != shapes or at != reads_at:  # cannot happen for equal tiles; refuse rather than guess
            raise ValueError("tiles of different buffer shapes")
        rows.append([regions[j][0] for j in range(len(tensors))])
        cols.append([regions[j][2] for j in range(len(tensors))])
    origins = [list(zip(r, c)) for r in rows for c in cols]
    crops, reads = [], {}
    for (i, k), (dy, h, dx, w) in sorted(reads_at.items()):
        j = index[activation_inputs(graph, ops[i])[k]]
        if (dy, dx, h, w) == (0, 0, shapes[j][0], shapes[j][1]):
            reads[(i, k)] = PatchPlan.buffer_name(j)
            continue
        crop = Crop(f"patch_crop{len(crops)}", j, (h, w, shapes[j][2]), dy, dx)
        crops.append(crop)
        reads[(i, k)] = crop.name
    fills = []
    for j, name in enumerate(tensors):
        wanted = {_fill_value(graph, op) for op in ops if name in op.inputs} - {None}
        if len(wanted) > 1:
            raise ValueError(f"{name} is read by layers whose padding means different values")
        fills.append(wanted.pop() if wanted else int(graph.tensor(name).quant.zero_point[0]))
    per_patch = 0
    for i, op in enumerate(ops):
        out = graph.tensor(op.outputs[0])
        per_patch += op_macs(graph, op) // (out.shape[1] * out.shape[2]) * shapes[i + 1][0] * shapes[i + 1][1]
    plan = PatchPlan(split, grid, ops, tensors, shapes, full, origins, fills, crops=crops,
                     stage_macs=sum(op_macs(graph, op) for op in ops), patched_macs=per_patch * grid * grid,
                     model_macs=sum(op_macs(graph, op) for op in graph.ops),
                     transpose=_absorbed_transpose(graph, ops))
    for i in range(len(ops)):
        plan.steps += [("crop", c) for c in crops if reads.get((i, 0)) == c.name or reads.get((i, 1)) == c.name]
        plan.steps.append(("op", i))
        if i + 1 < len(ops) and plan.outside(i + 1):
            plan.steps.append(("fill", i + 1))
    plan.tile = plan.tile_graph(graph, reads)
    return plan


# ------------------------------------------------------------------------------------- graph rewrite

def apply_plan(graph: Graph, plan: PatchPlan) -> Graph:
    """A copy of `graph` whose ops[0..split] are one `patch_stage` op; the original graph is left as is."""
    inner = set(plan.tensors[1:-1]) | ({plan.tensors[0]} if plan.transpose else set())
    g = Graph(graph.name, {n: t for n, t in graph.tensors.items() if n not in inner},
              inputs=list(graph.inputs), outputs=list(graph.outputs))
    name = STAGE_OP
    while any(op.name == name for op in graph.ops):
        name += "_"
    scratch = SCRATCH
    while scratch in g.tensors:
        scratch += "_"
    plan.place()
    g.add_tensor(Tensor(scratch, (plan.scratch_bytes,), "int8"))
    stage = Op(name, STAGE_OP, [plan.source], [plan.tensors[-1], scratch], PatchStageAttrs(plan))
    first = next(i for i, op in enumerate(graph.ops) if op is plan.ops[0])
    g.ops = [op for op in graph.ops[:first] if op is not plan.transpose] + [stage] \
        + list(graph.ops[first + plan.split + 1:])
    g.validate()
    return g


# ------------------------------------------------------------------------------------------- search

@dataclass
class Choice:
    plan: PatchPlan | None  # the first stage
    arena_bytes: int        # of the schedule chosen
    unpatched_bytes: int    # arena layer by layer
    reason: str
    later: list[PatchPlan] = field(default_factory=list)  # stages after the first (on the graph it rewrites)

    @property
    def plans(self) -> list[PatchPlan]:
        return ([self.plan] if self.plan else []) + self.later

    @property
    def extra_macs_pct(self) -> float:
        return sum(p.extra_macs_pct for p in self.plans)

    def to_json(self) -> dict | None:
        """report.json schedule.patch: the first stage's split and grid, the extra MACs of all stages, and each
        stage under `stages` when there are several."""
        if not self.plan:
            return None
        out = dict(self.plan.to_json(), extra_macs_pct=round(self.extra_macs_pct, 2),
                   extra_macs=sum(p.extra_macs for p in self.plans))
        if self.later:
            out["stages"] = [p.to_json() for p in self.plans]
        return out

    def apply(self, graph: Graph) -> Graph:
        for p in self.plans:
            graph = apply_plan(graph, p)
        return graph


MAX_FIRST_STAGES = 3  # first stages (the lowest stage_bound, one per split layer) tried under a second stage


def _after_stage(graph: Graph) -> int:
    return max(i for i, op in enumerate(graph.ops) if op.kind == STAGE_OP) + 1


def second_stage(graph: Graph, firsts: list[PatchPlan], best: int, max_overhead: float):
    """A second patched stage, run on the whole output of a first one, when together they lower the arena below
    `best` within `max_overhead` % extra MACs: (first, second, arena) or None. The first stage of MobileNetV2
    ends where a tensor is small enough to hold whole (56x56x24); its next blocks expand to 144 channels at the
    same resolution, which a second grid cuts. Only first stages whose own live bytes (`stage_bound`) are under
    `best` are tried, and second-stage plans are planned only when theirs are."""
    found, tried = None, set()
    for p1 in sorted(firsts, key=lambda p: (p.stage_bound, p.extra_macs)):
        if p1.stage_bound > best or len(tried) == MAX_FIRST_STAGES:
            break
        if p1.split in tried:
            continue
        tried.add(p1.split)
        g1 = apply_plan(graph, p1)
        start = _after_stage(g1)
        stage = stage_ops(g1, start)
        for split in range(len(stage)):
            if not valid_split(g1, stage, split):
                continue
            _, H, W, _ = g1.tensor(stage[split].outputs[0]).shape
            for n in range(2, min(MAX_GRID, H, W) + 1):
                p2 = make_plan(g1, stage, split, n)
                if p1.extra_macs_pct + p2.extra_macs_pct > max_overhead:
                    break  # finer grids recompute more
                if p2.stage_bound > best:
                    continue
                arena = plan_arena(apply_plan(g1, p2)).size
                extra = p1.extra_macs + p2.extra_macs
                if arena < best or (found and arena == best and extra < found[0].extra_macs + found[1].extra_macs):
                    best, found = arena, (p1, p2, arena)
    return found


def stage_plans(graph: Graph, grids=None, start: int | None = None) -> list[PatchPlan]:
    """Every (split, grid) plan of the graph's patchable stage (the one from op `start`: `stage_ops`), not yet
    planned in the whole graph's arena (`evaluate`)."""
    stage = stage_ops(graph, start)
    plans = []
    for split in range(len(stage)):
        _, H, W, _ = graph.tensor(stage[split].outputs[0]).shape
        if not valid_split(graph, stage, split):
            continue
        plans += [make_plan(graph, stage, split, n) for n in grids or range(2, MAX_GRID + 1) if n <= min(H, W)]
    return plans


MAX_LATER_STARTS = 2  # stages beginning after whole layers tried: those over the most live bytes


def stage_starts(graph: Graph) -> list[int | None]:
    """Where a first patched stage may begin: at the network's input (None; after an optional prologue), and at
    ops that begin a run of local ops after a layer that runs whole (not local, not a prologue op: e.g. a
    SPACE_TO_DEPTH stem, or the layers after a squeeze-excitation gate), reading that layer's whole output. Of
    those, the MAX_LATER_STARTS runs holding the ops with the most live bytes (whole tensors): a stage lowers
    the arena only where it is highest, and each start multiplies the plans to search."""
    live = live_bytes_per_op(graph)
    index = {op.name: i for i, op in enumerate(graph.ops)}
    later = []
    for i in range(1, len(graph.ops)):
        op, before = graph.ops[i], graph.ops[i - 1]
        if _local(graph, op) and len(activation_inputs(graph, op)) == 1 and not _local(graph, before) \
                and before.kind not in PROLOGUE_KINDS:
            later.append((-max(live[index[o.name]] for o in stage_ops(graph, i)), i))
    return [None] + sorted(i for _, i in sorted(later)[:MAX_LATER_STARTS])


def first_stage_plans(graph: Graph, grids=None) -> list[PatchPlan]:
    """`stage_plans` of every stage a first patched stage may be (`stage_starts`)."""
    return [p for start in stage_starts(graph) for p in stage_plans(graph, grids, start)]


def evaluate(graph: Graph, plan: PatchPlan) -> int:
    """The arena of `graph` with `plan` applied (planned once, kept in plan.arena_bytes)."""
    if not plan.arena_bytes:
        plan.arena_bytes = plan_arena(apply_plan(graph, plan)).size
    return plan.arena_bytes


def lowest(graph: Graph, plans: list[PatchPlan]) -> PatchPlan | None:
    """The plan of the lowest arena (ties: fewer extra MACs). Plans are planned in the order of their
    `stage_bound`, a bound the arena cannot go below, until that bound passes the best arena found."""
    best = None
    for p in sorted(plans, key=lambda p: (p.stage_bound, p.extra_macs)):
        if best is not None and p.stage_bound > best.arena_bytes:
            break
        evaluate(graph, p)
        if best is None or (p.arena_bytes, p.extra_macs) < (best.arena_bytes, best.extra_macs):
            best = p
    return best


def candidates(graph: Graph, grids=None, start: int | None = None) -> list[PatchPlan]:
    """Every (split, grid) plan of the graph's patchable stage, each with the arena it gives."""
    plans = stage_plans(graph, grids, start)
    for p in plans:
        evaluate(graph, p)
    return plans


def lowest_reach(graph: Graph) -> Choice | None:
    """The lowest arena any patch schedule the search knows reaches (one stage of any (split, grid), or two
    stages), whatever its extra MACs; None when nothing is patchable."""
    plans = first_stage_plans(graph)
    low = lowest(graph, plans)
    if low is None:
        return None
    two = second_stage(graph, plans, low.arena_bytes, math.inf)
    if two:
        return Choice(two[0], two[2], 0, "two patched stages", [two[1]])
    return Choice(low, low.arena_bytes, 0, "one patched stage")


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


def positions_in(graph: Graph, scheduled: Graph) -> list[int]:
    """For each op of `graph`, the index of the op of `scheduled` that runs it: itself (scheduled may reorder
    ops), or the patch_stage op that runs it tile by tile."""
    index = {op.name: i for i, op in enumerate(scheduled.ops)}
    for i, op in enumerate(scheduled.ops):
        if op.kind == STAGE_OP:
            plan = op.attrs.plan
            index.update({inner.name: i for inner in plan.ops + ([plan.transpose] if plan.transpose else [])})
    return [index[op.name] for op in graph.ops]


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
    plans = first_stage_plans(graph, [mode] if isinstance(mode, int) else None)
    if not plans:
        if isinstance(mode, int):
            raise UserError(f"--patch {mode}: the model has no stage that a {mode}x{mode} grid can patch (the "
                            f"first layers must be conv/depthwise/pad/pool with a spatial output of at least "
                            f"{mode}x{mode}).")
        return Choice(None, base, base, "no patchable first stage")
    within = [p for p in plans if p.extra_macs_pct <= max_overhead]
    if isinstance(mode, int):
        best = lowest(graph, within or plans)
        return Choice(best, best.arena_bytes, base, f"--patch {mode}")
    if budget_given:
        for p in sorted(within, key=lambda p: (p.extra_macs, p.stage_bound)):
            if p.stage_bound + other_bytes <= limit_bytes and evaluate(graph, p) + other_bytes <= limit_bytes:
                return Choice(p, p.arena_bytes, base, "the least extra MACs that fits the SRAM budget")
        low, near = lowest(graph, plans), lowest(graph, within)
        raise UserError(
            f"no patch plan fits the SRAM budget of {limit_bytes:,} bytes with at most {max_overhead:g} % extra "
            f"MACs (--max-overhead): "
            + (f"the lowest arena within it is {near.arena_bytes:,} bytes ({near.grid}x{near.grid} patches up "
               f"to {near.split_layer}), " if near else "")
            + f"and about {other_bytes:,} bytes go to the stack and static data. The lowest arena of any plan "
            f"is {low.arena_bytes:,} bytes ({low.grid}x{low.grid} up to {low.split_layer}, "
            f"+{low.extra_macs_pct:.1f} % MACs). What would help: a larger --sram-budget or --max-overhead.")
    if not within:
        return Choice(None, base, base, f"no patch plan within --max-overhead {max_overhead:g} %")
    best = lowest(graph, within)
    two = second_stage(graph, within, min(best.arena_bytes, base), max_overhead)
    if two:
        return Choice(two[0], two[2], base, "the lowest arena within --max-overhead (two patched stages)", [two[1]])
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


def run_stage(graph: Graph, plan: PatchPlan, x: np.ndarray, lead: int | None = None) -> np.ndarray:
    """Layer `split`'s whole output, computed patch by patch with the reference kernels (the tile program
    the generated C runs, step for step). `lead`: the input and the output in one buffer as the arena lays them
    out when the input dies at the stage (the input `lead` bytes after the output's start, e.g.
    plan.release_lead), so a tile storing over input bytes a later tile loads changes the result."""
    from .. import reference
    tile = plan.tile
    out_shape = (1,) + plan.full[-1]
    if lead is None:
        out = np.zeros(out_shape, dtype=x.dtype)
    else:  # views of one buffer: stores into `out` show in `x`
        flat = np.zeros(max(lead + x.size, math.prod(out_shape)), dtype=x.dtype)
        shared = flat[lead:lead + x.size].reshape(x.shape)
        shared[...] = x
        x, out = shared, flat[:math.prod(out_shape)].reshape(out_shape)
    if plan.transpose:  # x is the NCHW graph input; the load reads it through strides
        x = x.transpose(NCHW_TO_NHWC)
    last = len(plan.ops)
    for org in plan.origins:
        (y, xo), (h, w, _) = org[0], plan.shapes[0]
        vals = {plan.buffer_name(0): _region(x, y, xo, h, w, plan.fills[0])}
        for kind, arg in plan.steps:
            if kind == "crop":
                (ch, cw, _), src = arg.shape, vals[plan.buffer_name(arg.src)]
                vals[arg.name] = src[:, arg.dy:arg.dy + ch, arg.dx:arg.dx + cw].copy()
            elif kind == "op":
                op = tile.ops[arg]
                args = [vals[n] if n in vals else (tile.tensor(n).data if n else None) for n in op.inputs]
                vals[op.outputs[0]] = reference.run_op(tile, op, args)[0]
            else:
                name = plan.buffer_name(arg)
                vals[name] = _refill(vals[name], *org[arg], *plan.full[arg][:2], plan.fills[arg])
        (y, xo), (h, w, _) = org[last], plan.shapes[last]
        out[0, y:y + h, xo:xo + w] = vals[plan.buffer_name(last)][0]
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
