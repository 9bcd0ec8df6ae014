"""model.c / model.h from the IR and the arena plan.

Every layer becomes a `LayerCode`: file-scope definitions (its constants and, for TVM kernels, its function) and
one call statement inside `mcu_model_run`. Which code a layer gets is chosen by its op kind from `EMITTERS`;
the MAC-heavy kinds come from TVM (`tvm_kernels`), the rest call hand-written `runtime/` kernels.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

from .. import __version__
from ..errors import UserError
from ..ir import Graph, Op
from ..schedule.arena import ArenaPlan
from .carray import C_TYPES, c_identifier, state_symbol
from .render import render


@dataclass
class LayerCode:
    name: str
    op: str
    definitions: str  # file-scope C: constant arrays, parameter structs, the kernel function
    call: str         # the statement in mcu_model_run ('' when the layer needs no code, e.g. an aliased reshape)
    kernel: str       # "tvm" or "template" (hand-written runtime/ kernel)
    headers: tuple[str, ...] = ()


@dataclass
class Context:
    """What an emitter needs besides the op: the graph, where tensors live, and a unique C prefix per layer."""
    graph: Graph
    plan: ArenaPlan
    sections: dict[str, str] = field(default_factory=dict)  # layer -> linker section of its constants (".ext_flash")
    # generated kernels by (layer, constants' section), kept across the calls of one compile: when the link asks
    # for more weights in ext_flash, only the layers whose section changed are generated again
    kernels: dict = field(default_factory=dict)

    def const_attr(self, op: Op) -> str:
        """The attribute that puts `op`'s constant arrays in their section ('' for the default, .rodata)."""
        section = self.sections.get(op.name)
        return f'__attribute__((section("{section}")))' if section else ""

    def ptr(self, tensor: str, ctype: str = "int8_t") -> str:
        """C expression for a tensor's address in the arena (`arena` is mcu_model_run's parameter)."""
        return f"({ctype} *)({self.addr(tensor)})"

    def addr(self, tensor: str) -> str:
        """A tensor's address in the arena as a `uint8_t *` expression (the caller casts it)."""
        return f"arena + {self.plan.offsets[tensor]}u"

    @staticmethod
    def prefix(op: Op) -> str:
        return "L_" + c_identifier(op.name)


Emitter = Callable[[Context, Op], LayerCode]
EMITTERS: dict[str, Emitter] = {}


def emitter(*kinds: str):
    """Register a function as the code emitter of the given op kinds."""
    def register(fn: Emitter) -> Emitter:
        for k in kinds:
            EMITTERS[k] = fn
        return fn
    return register


@emitter("reshape")
def _reshape(ctx: Context, op: Op) -> LayerCode:
    src, dst = op.inputs[0], op.outputs[0]
    if ctx.plan.offsets[src] == ctx.plan.offsets[dst]:
        return LayerCode(op.name, op.kind, "", "", "template")
    nbytes = ctx.graph.tensor(dst).nbytes
    return LayerCode(op.name, op.kind, "", f"__builtin_memmove(arena + {ctx.plan.offsets[dst]}u, "
                     f"arena + {ctx.plan.offsets[src]}u, {nbytes}u);", "template")


def emit_layers(graph: Graph, plan: ArenaPlan, sections: dict[str, str] | None = None,
                kernel_cache: dict | None = None, progress=None) -> list[LayerCode]:
    """Each layer's code; `progress(message, n, total)` is told each layer as it starts (TVM takes seconds)."""
    from . import kernels, patch_stage  # noqa: F401  (register the emitters of the remaining op kinds)

    ctx = Context(graph, plan, dict(sections or {}), {} if kernel_cache is None else kernel_cache)
    layers = []
    for i, op in enumerate(graph.ops):
        if progress:
            progress(f"generating kernels: {op.name}", i + 1, len(graph.ops))
        fn = EMITTERS.get(op.kind)
        if fn is None:
            raise UserError(f"layer {op.name!r} ({op.kind}) has no code generator yet; the reference can run it but "
                            "firmware cannot. Supported in firmware: " + ", ".join(sorted(EMITTERS)) + ".")
        layers.append(fn(ctx, op))
    return layers


def _io(graph: Graph, plan: ArenaPlan, names: list[str]) -> list[dict]:
    out = []
    for n in names:
        t = graph.tensor(n)
        q = t.quant
        out.append({"name": n, "shape": list(t.shape), "size": t.nbytes, "offset": plan.offsets[n],
                    "ctype": C_TYPES.get(t.dtype, "uint8_t"),
                    "scale": f"{float(q.scale[0]):.9g}" if q is not None else None,
                    "zero_point": int(q.zero_point[0]) if q is not None else 0})
    return out


def _states(graph: Graph) -> list[dict]:
    """The variable tensors: model.c's persistent arrays and the value mcu_model_reset() fills them with
    (TFLite Micro's ResetVariableTensors: an int8 variable its zero point, every other one 0)."""
    out = []
    for t in graph.state_tensors():
        fill = int(t.quant.zero_point[0]) if t.dtype == "int8" and t.quant is not None else 0
        out.append({"name": t.name, "symbol": state_symbol(t.name), "ctype": C_TYPES[t.dtype], "size": t.size,
                    "nbytes": t.nbytes, "fill": fill})
    return out


def generate_model(graph: Graph, plan: ArenaPlan, board: str, sections: dict[str, str] | None = None,
                   kernel_cache: dict | None = None, progress=None) -> dict[str, str]:
    """The sources model.c and model.h, as {file name: text}. `sections`: layer name -> the linker section its
    constants go to (".ext_flash"); other layers' constants stay in .rodata. `kernel_cache`: a dict the caller
    passes to every call for the same graph and plan (generated kernels are reused from it). `progress`: see
    emit_layers."""
    layers = emit_layers(graph, plan, sections, kernel_cache, progress)
    inputs, outputs = _io(graph, plan, graph.inputs), _io(graph, plan, graph.outputs)
    ctypes = {t["ctype"] for t in inputs + outputs}
    values = {
        "model": graph.name, "version": __version__, "board": board, "arena_size": plan.size,
        "layers": layers, "inputs": inputs, "outputs": outputs, "states": _states(graph),
        "io_ctype": ctypes.pop() if len(ctypes) == 1 else "void",
        "headers": sorted({h for layer in layers for h in layer.headers}),
    }
    return {"model.c": render("project/model.c.j2", values), "model.h": render("project/model.h.j2", values)}
