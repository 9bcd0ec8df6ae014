"""Constant folding (Graph -> Graph): every op whose inputs are all constants, and every SHAPE (the IR's shapes
are static), is run once through the reference (`mcutool.reference.run_op`) and its outputs become constants.

This is what makes Keras models converted with batch-None shapes compile: their shape arithmetic (SHAPE ->
STRIDED_SLICE -> PACK -> RESHAPE's shape operand, FILL, BROADCAST_TO of constants) is all constant once the
input shape is fixed. An op producing a graph output is kept (the graph still computes its outputs).
The TFLite importer runs it (`fold_ops`, then `prune_unread` on what it touched) once the graph is read, and
earlier when an attribute must be read from such an op's output.
"""
from __future__ import annotations

from mcutool.errors import UserError
from mcutool.ir import Graph, Op

# ops whose outputs depend on their inputs' shapes only, never on values
SHAPE_ONLY = frozenset({"shape"})


def foldable(graph: Graph, op: Op) -> bool:
    if set(op.outputs) & set(graph.outputs):
        return False
    return op.kind in SHAPE_ONLY or all(not n or graph.tensor(n).is_const for n in op.inputs)


def fold_ops(graph: Graph) -> set[str]:
    """Fold in place; returns the names of the tensors the folded ops read or wrote (see prune_unread)."""
    from mcutool.reference import run_op

    kept, touched = [], set()
    for op in graph.ops:
        if not foldable(graph, op):
            kept.append(op)
            continue
        args = [graph.tensor(n).data if n else None for n in op.inputs]
        try:
            values = run_op(graph, op, args)
        except UserError:
            raise
        except Exception as exc:  # a malformed constant operand the reference cannot take
            raise UserError(f"op {op.name!r} ({op.kind}) reads only constants, so mcutool computes it at compile "
                            f"time, and that failed ({type(exc).__name__}: {exc}); the model's constant operands "
                            "do not fit the operator.") from None
        for name, value in zip(op.outputs, values):
            graph.tensor(name).data = value
        touched.update(n for n in op.inputs + op.outputs if n)
    graph.ops = kept
    return touched


def prune_unread(graph: Graph, names: set[str]) -> None:
    """Drop the constants among `names` that no op reads and that are not graph inputs or outputs."""
    read = {n for op in graph.ops for n in op.inputs} | set(graph.outputs) | set(graph.inputs)
    for name in sorted(names - read):
        if name in graph.tensors and graph.tensor(name).is_const:
            del graph.tensors[name]
