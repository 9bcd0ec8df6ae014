"""Yardsticks for mcutool's arena, written independently of mcutool.schedule (the code under test).

- `greedy_by_size_arena`: TFLite Micro's GreedyMemoryPlanner algorithm (micro/memory_planner/
  greedy_memory_planner.cc): every non-constant tensor is its own buffer, alive from the op that writes it (or
  the start, for a graph input) to the last op that reads it (or the end, for a graph output), in the model's op
  order; buffers sorted by size, largest first; each placed at the lowest offset where it overlaps no placed
  buffer alive at the same time. Sizes rounded up to 8 bytes (TFLM rounds to 16, which could only make it
  larger). No aliasing and no in-place reuse: TFLM copies a RESHAPE's bytes into their own buffer.
- `tflm_arena_need`: the smallest `arena_size` TFLite Micro's own interpreter (the `tflite-micro` pip package,
  a 64-bit host build) accepts for the model. It counts more than activations: TfLiteEvalTensor and node
  structures, per-channel quantization multipliers and other persistent kernel data, the planner's own
  bookkeeping and scratch buffers -- everything a TFLM deployment must reserve in its arena.
"""
from __future__ import annotations

from pathlib import Path

ALIGN = 8


def _round(n: int) -> int:
    return (n + ALIGN - 1) // ALIGN * ALIGN


def tensor_intervals(graph) -> list[tuple[int, int, int]]:
    """(size, first op, last op) of every non-constant tensor of an mcutool IR graph, in its op order."""
    first = {n: -1 for n in graph.inputs}
    last = {}
    for i, op in enumerate(graph.ops):
        for n in op.inputs:
            if n and graph.tensor(n).data is None:
                last[n] = i
        for n in op.outputs:
            first.setdefault(n, i)
            last.setdefault(n, i)
    for n in graph.outputs:
        last[n] = len(graph.ops)
    return [(graph.tensor(n).nbytes, first[n], last[n]) for n in first]


def greedy_by_size_arena(graph) -> int:
    bufs = sorted(tensor_intervals(graph), key=lambda b: -b[0])
    placed = []  # (offset, size, first, last)
    for size, first, last in bufs:
        size = _round(size)
        offset = 0
        for o, s, f, l in sorted(p for p in placed if p[2] <= last and first <= p[3]):
            if o >= offset + size:
                break
            offset = max(offset, o + s)
        placed.append((offset, size, first, last))
    return max((o + s for o, s, _, _ in placed), default=0)


def tflm_arena_need(model: Path, hi: int = 1 << 22) -> int:
    """Binary search for the smallest arena_size with which TFLite Micro's interpreter allocates the model."""
    from tflite_micro.python.tflite_micro import runtime

    def fits(n: int) -> bool:
        try:
            runtime.Interpreter.from_file(str(model), arena_size=n)
            return True
        except Exception:  # TFLM reports "Failed to allocate ..." as a RuntimeError
            return False

    if not fits(hi):
        raise AssertionError(f"TFLite Micro cannot allocate {model} even in {hi} bytes")
    lo = 0  # does not fit
    while hi - lo > 1:
        mid = (lo + hi) // 2
        if fits(mid):
            hi = mid
        else:
            lo = mid
    return hi
