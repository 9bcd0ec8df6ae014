"""Tensor lifetimes over the op order, and the layer-wise peak: the memory bound of any layer-by-layer planner."""
from __future__ import annotations

from dataclasses import dataclass

from ..ir import Graph


@dataclass(frozen=True)
class Lifetime:
    tensor: str
    first: int  # index of the op that produces it (-1 for a graph input)
    last: int   # index of the last op that reads it (len(ops) for a graph output)
    nbytes: int


def lifetimes(graph: Graph) -> dict[str, Lifetime]:
    """Lifetime of every non-constant tensor: from its producer (or the start) to its last reader (or the end)."""
    first = {name: -1 for name in graph.inputs}
    last: dict[str, int] = {}
    for i, op in enumerate(graph.ops):
        for name in op.outputs:
            first.setdefault(name, i)
            last.setdefault(name, i)
        for name in op.inputs:
            if name and not graph.tensor(name).is_const:
                last[name] = i
    for name in graph.outputs:
        last[name] = len(graph.ops)
    return {n: Lifetime(n, first[n], last.get(n, first[n]), graph.tensor(n).nbytes) for n in first}


def live_bytes_per_op(graph: Graph) -> list[int]:
    """Bytes live while op i runs, every tensor materialized whole and distinct (a reshape's output counts too)."""
    spans = lifetimes(graph).values()
    return [sum(s.nbytes for s in spans if s.first <= i <= s.last) for i in range(len(graph.ops))]


def layerwise_peak_bytes(graph: Graph) -> int:
    return max(live_bytes_per_op(graph), default=sum(graph.tensor(n).nbytes for n in graph.inputs))
