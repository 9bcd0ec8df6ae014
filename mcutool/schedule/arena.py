"""The static tensor arena: an offset for every activation tensor, so that tensors alive at once never overlap.

Reshapes are aliases (their output is their input's bytes). Offsets come from several placement orders (by
size, by first use, by lifetime length, by size×lifetime), each packed best-fit into the gaps left by tensors
whose lifetimes overlap; the smallest arena wins. TFLite Micro's planner is the first of these orders alone.
"""
from __future__ import annotations

from dataclasses import dataclass, field

from ..ir import Graph
from .liveness import Lifetime, lifetimes

ALIGN = 8  # bytes; keeps every tensor word-aligned for 32-bit loads (and SIMD pairs)

ALIAS_OPS = ("reshape",)  # ops whose output is the same bytes as their input


@dataclass
class ArenaPlan:
    size: int
    offsets: dict[str, int]            # tensor name -> byte offset in the arena
    strategy: str = ""
    aliases: dict[str, str] = field(default_factory=dict)  # alias tensor -> the tensor whose bytes it shares


def _align(n: int) -> int:
    return (n + ALIGN - 1) // ALIGN * ALIGN


def alias_roots(graph: Graph) -> dict[str, str]:
    """Each aliasing op's output -> the root tensor whose storage it reuses (chains of reshapes collapse)."""
    roots: dict[str, str] = {}
    for op in graph.ops:
        if op.kind in ALIAS_OPS:
            src = op.inputs[0]
            roots[op.outputs[0]] = roots.get(src, src)
    return roots


def _buffers(graph: Graph) -> list[Lifetime]:
    """One buffer per storage root, its lifetime the union of the lifetimes of the tensors sharing it."""
    spans = lifetimes(graph)
    roots = alias_roots(graph)
    merged: dict[str, Lifetime] = {}
    for name, s in spans.items():
        root = roots.get(name, name)
        m = merged.get(root)
        size = max(s.nbytes, m.nbytes if m else 0)
        merged[root] = Lifetime(root, min(s.first, m.first) if m else s.first,
                                max(s.last, m.last) if m else s.last, size)
    return list(merged.values())


def _overlap(a: Lifetime, b: Lifetime) -> bool:
    return a.first <= b.last and b.first <= a.last


def _pack(order: list[Lifetime]) -> tuple[int, dict[str, int]]:
    """Place buffers in the given order, each into the smallest gap that fits among lifetime-overlapping ones."""
    placed: list[tuple[int, int, Lifetime]] = []  # (offset, end, buffer)
    offsets: dict[str, int] = {}
    for buf in order:
        size = _align(buf.nbytes)
        busy = sorted((o, e) for o, e, other in placed if _overlap(buf, other))
        best, best_gap, cursor = None, None, 0
        for o, e in busy:
            gap = o - cursor
            if gap >= size and (best_gap is None or gap < best_gap):
                best, best_gap = cursor, gap
            cursor = max(cursor, e)
        offset = best if best is not None else cursor
        placed.append((offset, offset + size, buf))
        offsets[buf.tensor] = offset
    return max((e for _, e, _ in placed), default=0), offsets


STRATEGIES = {
    "greedy_by_size": lambda b: (-b.nbytes, b.first),
    "by_first_use": lambda b: (b.first, -b.nbytes),
    "by_lifetime": lambda b: (-(b.last - b.first), -b.nbytes),
    "by_area": lambda b: (-b.nbytes * (b.last - b.first + 1), b.first),
}


def plan_arena(graph: Graph) -> ArenaPlan:
    buffers = _buffers(graph)
    best: ArenaPlan | None = None
    for name, key in STRATEGIES.items():
        size, offsets = _pack(sorted(buffers, key=key))
        if best is None or size < best.size:
            best = ArenaPlan(size, offsets, name)
    roots = alias_roots(graph)
    for alias, root in roots.items():
        best.offsets[alias] = best.offsets[root]
    best.aliases = roots
    return best
