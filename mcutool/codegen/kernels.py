"""Which code each op kind gets: TVM-generated kernels for conv/depthwise/FC, runtime/ kernels for the rest."""
from __future__ import annotations

from ..errors import UserError
from ..ir import Op
from ..ops import OPS
from ..schedule.inplace import row_buffer
from . import int4_kernels, row_inplace, runtime_params, tvm_kernels
from .model import Context, LayerCode, emitter

TVM_KINDS = ("conv2d", "depthwise_conv2d", "fully_connected")
RUNTIME_KINDS = tuple(sorted(kind for kind, spec in OPS.items() if spec.kernel is not None and kind not in TVM_KINDS))


@emitter(*TVM_KINDS)
def tvm_layer(ctx: Context, op: Op) -> LayerCode:
    if ctx.graph.tensor(op.inputs[0]).dtype == "int16":
        return runtime_layer(ctx, op)  # TVM's kernels are int8; 16x8 ones are in runtime/
    if ctx.graph.tensor(op.inputs[1]).dtype == "int4":  # the fast int8 kernels reading packed weights, or runtime/
        return int4_kernels.int4_layer(ctx, op, runtime_layer)
    name = ctx.prefix(op)
    line = ctx.plan.line_buffers.get(op.name)
    key = (op.name, ctx.const_attr(op))
    if key not in ctx.kernels:
        ctx.kernels[key] = _generate(ctx, op, name, line is not None)
    k = ctx.kernels[key]
    second = f"(int8_t *)(arena + {line[0]}u)" if line is not None else ctx.ptr(op.outputs[0])
    call = f"{name}({ctx.ptr(op.inputs[0])}, {second});"
    return LayerCode(op.name, op.kind, k.source, call, "tvm")


def _generate(ctx: Context, op: Op, name: str, in_place: bool) -> tvm_kernels.Kernel:
    try:
        if in_place:  # over its input, through the line buffer (schedule/inplace.py)
            return row_inplace.row_kernel(ctx.graph, op, row_buffer(ctx.graph, op), name, ctx.const_attr(op))
        return tvm_kernels.kernel_for_op(ctx.graph, op, name=name, const_attr=ctx.const_attr(op))
    except ValueError as exc:
        raise UserError(f"layer {op.name!r} ({op.kind}) cannot be compiled to firmware: {exc}.") from None


@emitter(*RUNTIME_KINDS)
def runtime_layer(ctx: Context, op: Op) -> LayerCode:
    prefix = ctx.prefix(op)
    inputs = [ctx.addr(n) for n in op.inputs if n and not ctx.graph.tensor(n).is_const
              and not ctx.graph.tensor(n).variable]  # a variable tensor is reached through the kernel's params
    definitions, call = runtime_params.kernel_code(ctx.graph, op, prefix, inputs, [ctx.addr(n) for n in op.outputs],
                                                   ctx.const_attr(op))
    return LayerCode(op.name, op.kind, definitions, call, "template", headers=("mcu_kernels.h",))


from . import binary_kernels  # noqa: E402,F401  (registers the emitters of the binary op kinds)
