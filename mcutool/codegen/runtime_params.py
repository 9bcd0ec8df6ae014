"""The C text of a runtime/ kernel call: a KernelParams (mcutool/ops/kernel.py) rendered as file-scope C and one
call statement.

TFLite splits every op into Prepare (everything that depends only on shapes, scales and constants) and Eval
(touching data). mcutool runs Prepare in Python when it generates a model -- each operator's module
(mcutool/ops/<op>.py) computes its kernel's parameters in `kernel_params(graph, op)` -- and the firmware runs
only Eval (the runtime/ kernels). This module only lays those numbers out as C: `c_definitions` renders the
companion constant arrays and `static const mcu_<op>_params <prefix>_params = {...};`, `c_call` the kernel call.
A reshape has no kernel (its output aliases its input): kernel_params returns None for it.
"""
from __future__ import annotations

import numpy as np

from mcutool.ir import Graph, Op
from mcutool.ops import op_def
from mcutool.ops.kernel import CRef, CState, KernelParams, kernel_error

from .carray import state_symbol


def kernel_params(graph: Graph, op: Op) -> KernelParams | None:
    """The runtime kernel and its parameters for `op`; None for a reshape (no kernel: the output aliases)."""
    if op.kind == "reshape":
        return None
    spec = op_def(op.kind)
    if spec is None or spec.kernel is None:
        raise kernel_error(op, "no runtime/ kernel implements this op kind")
    return spec.kernel(graph, op)


# ---------------------------------------------------------------------------------------------- C text

def _c_value(value, prefix: str) -> str:
    if isinstance(value, CRef):
        return f"{prefix}_{value.suffix}"
    if isinstance(value, CState):
        return state_symbol(value.tensor)
    if value is None:
        return "NULL"
    if isinstance(value, dict):
        return c_struct_init(value, prefix)
    if isinstance(value, (list, tuple)):
        return "{" + ", ".join(_c_value(v, prefix) for v in value) + "}"
    if isinstance(value, (bool, np.bool_)):
        return "1" if value else "0"
    if isinstance(value, (int, np.integer)):
        v = int(value)
        if v == -(1 << 31):
            return "(-2147483647 - 1)"
        return str(v)
    raise TypeError(f"cannot render {value!r} as a C initializer")


def c_struct_init(fields: dict, prefix: str = "") -> str:
    """A C99 designated initializer: {.a = 1, .b = {.n = 1, ...}, .c = {1, 2}, .p = <prefix>_suffix}."""
    return "{" + ", ".join(f".{k} = {_c_value(v, prefix)}" for k, v in fields.items()) + "}"


def c_array(name: str, ctype: str, values: list, prefix: str, attr: str = "") -> str:
    """`static const <ctype> <name>[n] <attr> = {...};` (attr: e.g. the section attribute of weights in ext_flash)."""
    items = [_c_value(v, prefix) for v in values]
    lines = [", ".join(items[i:i + 16]) for i in range(0, len(items), 16)]
    attr = f" {attr}" if attr else ""
    return f"static const {ctype} {name}[{len(items)}]{attr} = {{\n    " + ",\n    ".join(lines) + "\n};\n"


def c_definitions(kp: KernelParams, prefix: str, const_attr: str = "") -> str:
    """File-scope C for one layer: its companion arrays (with `const_attr`, the layer's weight placement), then
    `static const <struct> <prefix>_params`. Arrays of pointers come after the arrays they point to."""
    out = []
    ordered = sorted(kp.arrays.items(), key=lambda kv: kv[1][0].endswith("*const"))
    for suffix, (ctype, values) in ordered:
        out.append(c_array(f"{prefix}_{suffix}", ctype, values, prefix, const_attr))
    out.append(f"static const {kp.struct} {prefix}_params = {c_struct_init(kp.fields, prefix)};\n")
    return "".join(out)


def _pointers(prefix: str, role: str, ctype: str, exprs: list[str], as_array: bool) -> tuple[str, str]:
    """(declaration, argument) for a kernel's data pointers: each cast to `ctype *` and passed one by one, or
    gathered in a local array `<prefix>_<role>` passed as `ctype *const *`."""
    casts = [f"({ctype} *)({e})" for e in exprs]
    if not as_array:
        return "", ", ".join(casts)
    return (f"{ctype} *const {prefix}_{role}[{len(casts)}] = {{{', '.join(casts)}}}; ", f"{prefix}_{role}")


def c_call(kp: KernelParams, prefix: str, inputs: list[str], outputs: str | list[str],
           status: str | None = None) -> str:
    """The C statement that runs the kernel; `inputs` / `outputs` are C pointer expressions (one output may be
    given as a string). `inputs` are the activations; the constant operands a kernel takes as data inputs
    (KernelParams.const_inputs) are inserted at their positions as their companion arrays. Inputs, then outputs,
    are passed one by one or, for a kernel taking them as an array (KernelParams.input_array /
    output_array), as one local array of pointers; every pointer is cast to the kernel's element type
    (KernelParams.in_ctype / out_ctype). The kernel's mcu_status is
    assigned to the variable `status` when given, else discarded (kernels only fail on parameters inconsistent
    with themselves, which kernel_params never produces)."""
    outputs = [outputs] if isinstance(outputs, str) else list(outputs)
    inputs = list(inputs)
    for position, suffix in sorted(kp.const_inputs.items()):
        inputs.insert(position, f"{prefix}_{suffix}")
    if len(inputs) != kp.num_inputs:
        raise ValueError(f"{kp.function} takes {kp.num_inputs} inputs, got {len(inputs)}")
    if len(outputs) != kp.num_outputs:
        raise ValueError(f"{kp.function} writes {kp.num_outputs} outputs, got {len(outputs)}")
    lhs = f"{status} = " if status else "(void)"
    in_decl, in_arg = _pointers(prefix, "inputs", f"const {kp.in_ctype}", inputs, kp.input_array)
    out_decl, out_arg = _pointers(prefix, "outputs", kp.out_ctype, outputs, kp.output_array)
    call = f"{lhs}{kp.function}(&{prefix}_params, {in_arg}, {out_arg});"
    return f"{{ {in_decl}{out_decl}{call} }}" if in_decl or out_decl else call


def kernel_code(graph: Graph, op: Op, prefix: str, inputs: list[str], outputs: str | list[str],
                const_attr: str = "") -> tuple[str, str] | None:
    """(file-scope definitions, call statement) for `op`, or None for a reshape. `const_attr` goes on its arrays
    (a 16x8 conv / FC layer whose weights schedule/weight_placement.py moved to ext_flash)."""
    kp = kernel_params(graph, op)
    if kp is None:
        return None
    data_inputs = inputs[:kp.num_inputs - len(kp.const_inputs)]
    return c_definitions(kp, prefix, const_attr), c_call(kp, prefix, data_inputs, outputs)
