"""Offsets for buffers with known lifetimes: the dynamic-storage-allocation half of arena planning.

Input: buffers (a size and an interval [first, last] of op indices each). Output: an offset per buffer such that
two buffers whose intervals intersect never share a byte; the arena is the highest end. Several strategies:

- an order (by size -- TFLite Micro's GreedyMemoryPlanner --, by first use, by lifetime length, by
  size x lifetime) combined with a placement rule: first fit (the lowest offset where the buffer fits between
  the already placed buffers it overlaps in time, TFLM's rule) or best fit (the smallest such gap);
- for small problems, an exact search: every optimal packing is reached by placing the buffers in some order,
  each at its lowest fitting offset (moving a buffer down, in offset order, never collides with the buffers
  above it), so a branch-and-bound over orders with first fit finds the optimum. A node budget bounds the time;
  `exact` says whether the search finished.

`pack_best` runs them all and keeps the smallest arena (ties: the first strategy in the list, so the result is
deterministic).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

from .liveness import Lifetime

ALIGN = 8  # bytes; keeps every tensor word-aligned for 32-bit loads (and SIMD pairs)
EXACT_MAX_BUFFERS = 12
EXACT_NODE_BUDGET = 50_000


def align(n: int) -> int:
    return (n + ALIGN - 1) // ALIGN * ALIGN


@dataclass
class Packing:
    size: int
    offsets: dict[str, int]
    strategy: str
    exact: bool = False  # proven the smallest arena for these buffers (exact search finished)


def overlap(a: Lifetime, b: Lifetime) -> bool:
    return a.first <= b.last and b.first <= a.last


def _gaps(size: int, busy: list[tuple[int, int]]):
    """(offset, gap length or None for the open top) of every place a buffer of `size` fits among `busy`."""
    cursor = 0
    for o, e in sorted(busy):
        if o - cursor >= size:
            yield cursor, o - cursor
        cursor = max(cursor, e)
    yield cursor, None


def first_fit(size: int, busy: list[tuple[int, int]]) -> int:
    return next(_gaps(size, busy))[0]


def best_fit(size: int, busy: list[tuple[int, int]]) -> int:
    fits = list(_gaps(size, busy))
    closed = [(gap, off) for off, gap in fits if gap is not None]
    return min(closed)[1] if closed else fits[-1][0]


def pack(order: list[Lifetime], place: Callable[[int, list[tuple[int, int]]], int]) -> tuple[int, dict[str, int]]:
    """Place buffers in `order`, each where `place` puts it among the placed buffers alive at the same time."""
    placed: list[tuple[int, int, Lifetime]] = []
    offsets: dict[str, int] = {}
    for buf in order:
        size = align(buf.nbytes)
        offset = place(size, [(o, e) for o, e, other in placed if overlap(buf, other)])
        placed.append((offset, offset + size, buf))
        offsets[buf.tensor] = offset
    return max((e for _, e, _ in placed), default=0), offsets


ORDERS: dict[str, Callable[[Lifetime], tuple]] = {
    "by_size": lambda b: (-b.nbytes, b.first, b.tensor),          # TFLite Micro's GreedyMemoryPlanner order
    "by_first_use": lambda b: (b.first, -b.nbytes, b.tensor),
    "by_lifetime": lambda b: (-(b.last - b.first), -b.nbytes, b.tensor),
    "by_area": lambda b: (-b.nbytes * (b.last - b.first + 1), b.first, b.tensor),
}
PLACEMENTS = {"first_fit": first_fit, "best_fit": best_fit}


def lower_bound(buffers: list[Lifetime]) -> int:
    """No packing is smaller than the aligned bytes alive at the busiest op."""
    points = {b.first for b in buffers} | {b.last for b in buffers}
    return max((sum(align(b.nbytes) for b in buffers if b.first <= t <= b.last) for t in points), default=0)


def heuristic_packings(buffers: list[Lifetime]) -> list[Packing]:
    out = []
    for order_name, key in ORDERS.items():
        for place_name, place in PLACEMENTS.items():
            size, offsets = pack(sorted(buffers, key=key), place)
            out.append(Packing(size, offsets, f"{order_name}+{place_name}"))
    return out


def exact_packing(buffers: list[Lifetime], incumbent: Packing, budget: int = EXACT_NODE_BUDGET) -> Packing:
    """Branch and bound over placement orders (first fit), starting from the best heuristic packing."""
    bufs = sorted(buffers, key=ORDERS["by_size"])
    n = len(bufs)
    sizes = [align(b.nbytes) for b in bufs]
    conflicts = [[overlap(bufs[i], bufs[j]) for j in range(n)] for i in range(n)]
    bound = lower_bound(bufs)
    best = {"size": incumbent.size, "offsets": None}
    nodes = [0]
    finished = [True]

    def search(chosen: list[int], offsets: list[int], top: int, last: int) -> None:
        if best["size"] <= bound:
            return
        if len(chosen) == n:
            if top < best["size"]:
                best["size"], best["offsets"] = top, {bufs[i].tensor: offsets[k] for k, i in enumerate(chosen)}
            return
        nodes[0] += 1
        if nodes[0] > budget:
            finished[0] = False
            return
        used = set(chosen)
        for j in range(n):
            if j in used:
                continue
            # placing two buffers that never coexist in either order gives the same offsets: keep one order
            if last >= 0 and j < last and not conflicts[j][last]:
                continue
            busy = [(offsets[k], offsets[k] + sizes[i]) for k, i in enumerate(chosen) if conflicts[i][j]]
            off = first_fit(sizes[j], busy)
            end = off + sizes[j]
            if max(top, end) >= best["size"]:
                continue
            chosen.append(j)
            offsets.append(off)
            search(chosen, offsets, max(top, end), j)
            chosen.pop()
            offsets.pop()
            if nodes[0] > budget:
                return

    search([], [], 0, -1)
    exact = finished[0] or best["size"] <= bound
    if best["offsets"] is None:
        return Packing(incumbent.size, incumbent.offsets, incumbent.strategy, exact)
    return Packing(best["size"], best["offsets"], "exact_search", exact)


def pack_best(buffers: list[Lifetime]) -> Packing:
    """The smallest arena any strategy finds for `buffers`."""
    if not buffers:
        return Packing(0, {}, "empty", True)
    candidates = heuristic_packings(buffers)
    best = min(candidates, key=lambda p: p.size)  # min keeps the first of equals
    if best.size <= lower_bound(buffers):
        best.exact = True
    elif len(buffers) <= EXACT_MAX_BUFFERS:
        best = exact_packing(buffers, best)
    return best
