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
from mcutool.ops.kernel import CRef, KernelParams, kernel_error


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


def c_array(name: str, ctype: str, values: list, prefix: str) -> str:
    items = [_c_value(v, prefix) for v in values]
    lines = [", ".join(items[i:i + 16]) for i in range(0, len(items), 16)]
    return f"static const {ctype} {name}[{len(items)}] = {{\n    " + ",\n    ".join(lines) + "\n};\n"


def c_definitions(kp: KernelParams, prefix: str) -> str:
    """File-scope C for one layer: its companion arrays, then `static const <struct> <prefix>_params`.
    Arrays of pointers come after the arrays they point to."""
    out = []
    ordered = sorted(kp.arrays.items(), key=lambda kv: kv[1][0].endswith("*const"))
    for suffix, (ctype, values) in ordered:
        out.append(c_array(f"{prefix}_{suffix}", ctype, values, prefix))
    out.append(f"static const {kp.struct} {prefix}_params = {c_struct_init(kp.fields, prefix)};\n")
    return "".join(out)


def c_call(kp: KernelParams, prefix: str, inputs: list[str], output: str, status: str | None = None) -> str:
    """The C statement that runs the kernel; `inputs` / `output` are C pointer expressions. The kernel's
    mcu_status is assigned to the variable `status` when given, else discarded (kernels only fail on
    parameters inconsistent with themselves, which runtime_params never produces)."""
    if len(inputs) + len(kp.const_inputs) != kp.num_inputs:
        raise ValueError(f"{kp.function} takes {kp.num_inputs} inputs, got {len(inputs)}")
    if kp.const_inputs:  # constant operands are companion arrays, in their input positions
        rest = iter(inputs)
        inputs = [f"{prefix}_{kp.const_inputs[k]}" if k in kp.const_inputs else next(rest)
                  for k in range(kp.num_inputs)]
    lhs = f"{status} = " if status else "(void)"
    if kp.input_array:
        items = ", ".join(f"(const int8_t *)({e})" for e in inputs)
        return (f"{{ const int8_t *const {prefix}_inputs[{len(inputs)}] = {{{items}}}; "
                f"{lhs}{kp.function}(&{prefix}_params, {prefix}_inputs, (int8_t *)({output})); }}")
    args = ", ".join(f"(const int8_t *)({e})" for e in inputs)
    return f"{lhs}{kp.function}(&{prefix}_params, {args}, (int8_t *)({output}));"


def kernel_code(graph: Graph, op: Op, prefix: str, inputs: list[str], output: str) -> tuple[str, str] | None:
    """(file-scope definitions, call statement) for `op`, or None for a reshape."""
    kp = kernel_params(graph, op)
    if kp is None:
        return None
    data_inputs = inputs[:kp.num_inputs - len(kp.const_inputs)]
    return c_definitions(kp, prefix), c_call(kp, prefix, data_inputs, output)
