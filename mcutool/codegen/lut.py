"""Code for a `lut` op (a fused elementwise op, schedule/fuse.py): mcu_lut_s8 over the op's own 256-entry table."""
from __future__ import annotations

from ..ir import Op
from . import runtime_params as rp
from .model import Context, LayerCode, emitter


@emitter("lut")
def lut_int8(ctx: Context, op: Op) -> LayerCode:
    p, x = ctx.prefix(op), ctx.graph.tensor(op.inputs[0])
    kp = rp.KernelParams("mcu_lut_s8", "mcu_lut_params", {"size": x.size, "table": rp.CRef("table")},
                         arrays={"table": ("int8_t", rp._byte_indexed(op.attrs.table))})
    return LayerCode(op.name, op.kind, rp.c_definitions(kp, p),
                     rp.c_call(kp, p, [ctx.ptr(op.inputs[0])], ctx.ptr(op.outputs[0])), "template",
                     ("mcu_kernels.h",))
