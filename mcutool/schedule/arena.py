"""The static tensor arena: an offset for every activation tensor, so that tensors alive at once never overlap.

1. Storage sharing: a reshape's output is its input's bytes (an alias); an elementwise op may write its output
   over an input that dies there, and so may a stride-1 convolution whose output has its input's shape, given
   a line buffer (in place, rules in `inplace.py`). Tensors sharing storage become one buffer whose lifetime
   is the union of theirs; a line buffer is one more buffer, live only during its op.
2. Offsets: `placement.pack_best` (several orders x first/best fit, exact search for small graphs).

3. A patch stage (schedule/patch.py) whose input dies there writes its output over the input bytes its tiles no
   longer read ("input rows released", tile by tile): one buffer holds both, the output `release_lead` bytes
   before the input (`stage_overlaps`). The 96x96x3 image of a VWW network (27,648 B) then holds most of the
   stage's 24x24x32 output (18,432 B) instead of lying beside it.

The plan with in-place sharing (with and without released input rows) and the one without are packed, and the smaller arena wins (sharing forces
two buffers to one offset, which a packer could in rare cases have used better apart); ties go to in place.
"""
from __future__ import annotations

from dataclasses import dataclass, field

from ..ir import Graph
from .inplace import in_place_input, row_buffer
from .liveness import Lifetime, lifetimes
from .placement import ALIGN, align, pack_best  # noqa: F401  (ALIGN/align re-exported for other modules)

ALIAS_OPS = ("reshape",)  # ops whose output is the same bytes as their input


@dataclass
class ArenaPlan:
    size: int
    offsets: dict[str, int]            # tensor name -> byte offset in the arena
    strategy: str = ""
    aliases: dict[str, str] = field(default_factory=dict)  # alias tensor -> the tensor whose bytes it shares
    in_place: dict[str, str] = field(default_factory=dict)  # op name -> the input its output overwrites
    exact: bool = False                 # the offsets are proven optimal for these buffers and this op order
    line_buffers: dict[str, tuple[int, int]] = field(default_factory=dict)  # op name -> (offset, bytes)

    def to_json(self) -> dict:
        return {"arena_bytes": self.size, "strategy": self.strategy, "optimal_for_order": self.exact,
                "in_place_layers": sorted(self.in_place), "aliased_tensors": len(self.aliases),
                "line_buffer_bytes": {op: nbytes for op, (_, nbytes) in sorted(self.line_buffers.items())}}


def alias_roots(graph: Graph) -> dict[str, str]:
    """Each aliasing op's output -> the root tensor whose storage it reuses (chains of reshapes collapse)."""
    roots: dict[str, str] = {}
    for op in graph.ops:
        if op.kind in ALIAS_OPS:
            src = op.inputs[0]
            roots[op.outputs[0]] = roots.get(src, src)
    return roots


def _last_use(spans: dict[str, Lifetime], roots: dict[str, str]) -> dict[str, int]:
    last: dict[str, int] = {}
    for name, s in spans.items():
        r = roots.get(name, name)
        last[r] = max(last.get(r, s.last), s.last)
    return last


def storage_roots(graph: Graph, in_place: bool, line_buffers: bool = True) -> tuple[dict[str, str], dict[str, str]]:
    """(tensor -> storage root for every tensor sharing another's bytes, op name -> overwritten input).
    `line_buffers`: also convolutions in place (with a line buffer each, `line_buffer_spans`)."""
    spans = lifetimes(graph)
    roots = alias_roots(graph)
    chosen: dict[str, str] = {}
    if not in_place:
        return roots, chosen
    for i, op in enumerate(graph.ops):
        if op.kind in ALIAS_OPS or (not line_buffers and row_buffer(graph, op) is not None):
            continue
        name = in_place_input(graph, op, _last_use(spans, roots), i, roots)
        if name is None:
            continue
        r = roots.get(name, name)
        out = op.outputs[0]
        chosen[op.name] = name
        roots[out] = r
        for t, tr in list(roots.items()):  # later reshapes of `out` were recorded with `out` as their root
            if tr == out:
                roots[t] = r
    return roots, chosen


def stage_overlaps(graph: Graph, roots: dict[str, str]) -> dict[str, int]:
    """Adds to `roots` the input of each patch stage that dies at the stage, sharing the output's buffer (its
    tiles release its bytes: plan.release_lead); returns tensor -> its byte offset in that buffer."""
    shifts: dict[str, int] = {}
    spans = lifetimes(graph)
    last = _last_use(spans, roots)
    for i, op in enumerate(graph.ops):
        if op.kind != "patch_stage":
            continue
        src, out = op.inputs[0], op.outputs[0]
        if src in graph.outputs or src in roots or src in roots.values() or last.get(src) != i \
                or roots.get(out, out) != out:
            continue
        roots[src], shifts[src] = out, op.attrs.plan.release_lead
    return shifts


def buffers(graph: Graph, roots: dict[str, str], shifts: dict[str, int] | None = None) -> list[Lifetime]:
    """One buffer per storage root, its lifetime the union of the lifetimes of the tensors sharing it; a tensor
    lies `shifts[name]` bytes into its root's buffer (0 by default)."""
    merged: dict[str, Lifetime] = {}
    for name, s in lifetimes(graph).items():
        root = roots.get(name, name)
        end = (shifts or {}).get(name, 0) + s.nbytes
        m = merged.get(root)
        if m is None:
            merged[root] = Lifetime(root, s.first, s.last, end)
        else:
            merged[root] = Lifetime(root, min(s.first, m.first), max(s.last, m.last), max(end, m.nbytes))
    return list(merged.values())


def line_buffer_spans(graph: Graph, chosen: dict[str, str]) -> dict[str, Lifetime]:
    """op name -> the line buffer of each convolution run in place, live only while that op runs."""
    spans = {}
    for i, op in enumerate(graph.ops):
        rb = row_buffer(graph, op) if op.name in chosen else None
        if rb is not None:
            spans[op.name] = Lifetime(f"{op.name}#line_buffer", i, i, rb.nbytes)
    return spans


def plan_arena(graph: Graph, in_place: bool = True, line_buffers: bool = True) -> ArenaPlan:
    """`line_buffers=False`: no convolution in place (for code that emits the plain kernels whatever the plan)."""
    best: ArenaPlan | None = None
    overlaps = any(op.kind == "patch_stage" for op in graph.ops)
    variants = [(True, True)] * overlaps + [(True, False), (False, False)] if in_place else [(False, False)]
    for sharing, overlap in variants:
        roots, chosen = storage_roots(graph, sharing, line_buffers)
        shifts = stage_overlaps(graph, roots) if overlap else {}
        lines = line_buffer_spans(graph, chosen)
        p = pack_best(buffers(graph, roots, shifts) + list(lines.values()))
        if best is None or p.size < best.size:
            offsets = {t: o for t, o in p.offsets.items() if t not in {s.tensor for s in lines.values()}}
            for t, r in roots.items():
                offsets[t] = offsets[r] + shifts.get(t, 0)
            best = ArenaPlan(p.size, offsets, p.strategy, alias_roots(graph), chosen, p.exact,
                             {op: (p.offsets[s.tensor], s.nbytes) for op, s in lines.items()})
    return best


def arena_in_use_per_op(graph: Graph, plan: ArenaPlan) -> list[int]:
    """Highest arena byte in use while op i runs (the planned arena's profile; its maximum is the arena)."""
    spans = lifetimes(graph)
    index = {op.name: i for i, op in enumerate(graph.ops)}
    lines = [(index[op], off + align(nbytes)) for op, (off, nbytes) in plan.line_buffers.items()]
    return [max([plan.offsets[n] + align(s.nbytes) for n, s in spans.items() if s.first <= i <= s.last]
                + [end for j, end in lines if j == i], default=0)
            for i in range(len(graph.ops))]
