"""The static tensor arena: an offset for every activation tensor, so that tensors alive at once never overlap.

1. Storage sharing: a reshape's output is its input's bytes (an alias); an elementwise op may write its output
   over an input that dies there (in place, rules in `inplace.py`). Tensors sharing storage become one buffer
   whose lifetime is the union of theirs.
2. Offsets: `placement.pack_best` (several orders x first/best fit, exact search for small graphs).

Both the plan with in-place sharing and the one without are packed, and the smaller arena wins (sharing forces
two buffers to one offset, which a packer could in rare cases have used better apart); ties go to in place.
"""
from __future__ import annotations

from dataclasses import dataclass, field

from ..ir import Graph
from .inplace import in_place_input
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

    def to_json(self) -> dict:
        return {"arena_bytes": self.size, "strategy": self.strategy, "optimal_for_order": self.exact,
                "in_place_layers": sorted(self.in_place), "aliased_tensors": len(self.aliases)}


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


def storage_roots(graph: Graph, in_place: bool) -> tuple[dict[str, str], dict[str, str]]:
    """(tensor -> storage root for every tensor sharing another's bytes, op name -> overwritten input)."""
    spans = lifetimes(graph)
    roots = alias_roots(graph)
    chosen: dict[str, str] = {}
    if not in_place:
        return roots, chosen
    for i, op in enumerate(graph.ops):
        if op.kind in ALIAS_OPS:
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


def buffers(graph: Graph, roots: dict[str, str]) -> list[Lifetime]:
    """One buffer per storage root, its lifetime the union of the lifetimes of the tensors sharing it."""
    merged: dict[str, Lifetime] = {}
    for name, s in lifetimes(graph).items():
        root = roots.get(name, name)
        m = merged.get(root)
        if m is None:
            merged[root] = Lifetime(root, s.first, s.last, s.nbytes)
        else:
            merged[root] = Lifetime(root, min(s.first, m.first), max(s.last, m.last), max(s.nbytes, m.nbytes))
    return list(merged.values())


def plan_arena(graph: Graph, in_place: bool = True) -> ArenaPlan:
    best: ArenaPlan | None = None
    for sharing in ((True, False) if in_place else (False,)):
        roots, chosen = storage_roots(graph, sharing)
        p = pack_best(buffers(graph, roots))
        if best is None or p.size < best.size:
            offsets = dict(p.offsets)
            for t, r in roots.items():
                offsets[t] = offsets[r]
            best = ArenaPlan(p.size, offsets, p.strategy, alias_roots(graph), chosen, p.exact)
    return best


def arena_in_use_per_op(graph: Graph, plan: ArenaPlan) -> list[int]:
    """Highest arena byte in use while op i runs (the planned arena's profile; its maximum is the arena)."""
    spans = lifetimes(graph)
    return [max((plan.offsets[n] + align(s.nbytes) for n, s in spans.items() if s.first <= i <= s.last), default=0)
            for i in range(len(graph.ops))]
