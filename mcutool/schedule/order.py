"""Operator order where the graph branches: the topological order the firmware runs, chosen to lower the arena.

`graph.ops` is what code generation executes, in that order. On a chain there is one order. With branches
(residual adds, parallel branches joined by a concat), running one branch to its end before the next, or the
small branch first, changes which tensors are alive together. Candidates:

- the model's own order;
- the order with the lowest layer-wise peak, found by dynamic programming over the sets of ops already run
  (each set is closed under predecessors; the live bytes after running a set depend on the set alone, so the
  best peak to reach a set is the min over its last op). The number of such sets is bounded
  (`MAX_STATES`); beyond it, a greedy order (at each step the ready op that leaves the fewest live bytes) is
  the candidate instead;
- the same search counting what the arena does with ops in place (inplace.py): an op whose output may take
  the bytes of an input that dies at it (given the ops run before it) adds its output less that input (plus
  its line buffer, for a convolution). Orders that differ only there (e.g. the branch that still reads a
  tensor run first, so that an elementwise op can then overwrite it) tie on whole tensors.

Each candidate is planned (`plan_arena`) and the smallest arena wins; ties keep the model's order. Ties between
ops inside the search go to the op that comes first in the model, so the result is deterministic.
"""
from __future__ import annotations

from dataclasses import replace

from ..ir import Graph, Op
from .arena import ArenaPlan, alias_roots, plan_arena
from .inplace import in_place_input, row_buffer

MAX_STATES = 1_000  # sets of ops per step; bounds the search to well under a second on wide graphs


def _deps(graph: Graph) -> list[set[int]]:
    producer = {out: i for i, op in enumerate(graph.ops) for out in op.outputs}
    return [{producer[n] for n in op.inputs if n in producer} for op in graph.ops]


class _Live:
    """Live bytes after a set of ops has run (whole tensors, as the layer-wise bound counts them); with
    `in_place`, also what each op's output can reuse of an input dying at it (`saved`)."""

    def __init__(self, graph: Graph, in_place: bool = False):
        self.graph = graph
        self.users: dict[str, int] = {}  # tensor -> bitmask of ops reading it
        for i, op in enumerate(graph.ops):
            for n in op.inputs:
                if n and not graph.tensor(n).is_const:
                    self.users[n] = self.users.get(n, 0) | (1 << i)
        self.outputs = set(graph.outputs)
        self.out_bytes = [sum(graph.tensor(n).nbytes for n in op.outputs) for op in graph.ops]
        roots = alias_roots(graph) if in_place else {}
        self.reusable = [_reusable(graph, i, op, self.users, roots) if in_place else []
                         for i, op in enumerate(graph.ops)]

    def after(self, done: int) -> int:
        total = 0
        names = list(self.graph.inputs) + [n for i, op in enumerate(self.graph.ops) if done >> i & 1 for n in op.outputs]
        for n in names:
            if n in self.outputs or (self.users.get(n, 0) & ~done):
                total += self.graph.tensor(n).nbytes
        return total

    def saved(self, done: int, i: int) -> int:
        """Bytes op i's output takes over from an input no op after it reads (`done`: the ops run before it)."""
        later = ~(done | 1 << i)
        return max((nbytes for readers, nbytes in self.reusable[i] if not readers & later), default=0)


def _reusable(graph: Graph, i: int, op: Op, users: dict[str, int], roots: dict[str, str]) -> list[tuple[int, int]]:
    """(readers, bytes saved) for each input op i may overwrite when it dies there (inplace.in_place_input):
    `readers` is the bitmask of the ops reading its storage (a bit past the last op when it is a graph output),
    the bytes saved its size less the op's line buffer (`roots`: arena.alias_roots)."""
    found = []
    for n in op.inputs:
        r = roots.get(n, n)
        if not n or graph.tensor(n).is_const or in_place_input(graph, op, {r: i}, i, roots) != n:
            continue
        sharing = [t for t in graph.tensors if roots.get(t, t) == r]
        readers = 0
        for t in sharing:
            readers |= users.get(t, 0) | (1 << len(graph.ops) if t in graph.outputs else 0)
        rb = row_buffer(graph, op)
        found.append((readers, graph.tensor(n).nbytes - (rb.nbytes if rb else 0)))
    return found


def min_peak_order(graph: Graph, in_place: bool = False) -> list[int] | None:
    """Op indices in the order of lowest layer-wise peak, or None when the search space is too large.
    `in_place`: the peak with each op's output over an input that dies at it, where the arena can do that."""
    n = len(graph.ops)
    deps = _deps(graph)
    need = [sum(1 << d for d in ds) for ds in deps]
    live = _Live(graph, in_place)
    level: dict[int, tuple[int, tuple[int, ...]]] = {0: (0, ())}  # done-set -> (peak, order)
    for _ in range(n):
        nxt: dict[int, tuple[int, tuple[int, ...]]] = {}
        for done in sorted(level):
            peak, order = level[done]
            base = live.after(done)
            for i in range(n):
                if done >> i & 1 or need[i] & ~done:
                    continue
                cand = (max(peak, base + live.out_bytes[i] - live.saved(done, i)), order + (i,))
                key = done | 1 << i
                if key not in nxt or cand < nxt[key]:
                    nxt[key] = cand
        if len(nxt) > MAX_STATES:
            return None
        level = nxt
    return list(level[(1 << n) - 1][1])


def greedy_order(graph: Graph) -> list[int]:
    """At each step the ready op after which the fewest bytes are live (ties: model order)."""
    n = len(graph.ops)
    need = [sum(1 << d for d in ds) for ds in _deps(graph)]
    live = _Live(graph)
    done, order = 0, []
    for _ in range(n):
        ready = [i for i in range(n) if not done >> i & 1 and not need[i] & ~done]
        i = min(ready, key=lambda r: (live.after(done | 1 << r), r))
        done |= 1 << i
        order.append(i)
    return order


def reordered(graph: Graph, order: list[int]) -> Graph:
    return replace(graph, ops=[graph.ops[i] for i in order])


def schedule_ops(graph: Graph) -> tuple[Graph, ArenaPlan]:
    """The graph with the op order of the smallest planned arena, and that plan (ties: the model's order, then
    the whole-tensor search's)."""
    best_graph, best_plan = graph, plan_arena(graph)
    tried = [list(range(len(graph.ops)))]
    for in_place in (False, True):
        order = min_peak_order(graph, in_place)
        if order is None:
            order = greedy_order(graph)
        if order in tried:
            continue
        tried.append(order)
        g = reordered(graph, order)
        plan = plan_arena(g)
        if plan.size < best_plan.size:
            best_graph, best_plan = g, plan
    return best_graph, best_plan
