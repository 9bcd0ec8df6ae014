"""Compile-time parameters of the hand-written runtime/ kernels (runtime/mcu_kernels.h), and their C text.

TFLite splits every op into Prepare (everything that depends only on shapes, scales and constants) and Eval
(touching data). mcutool runs Prepare here, in Python, when it generates a model, and the firmware runs only
Eval (the runtime/ kernels). The Prepare arithmetic itself -- QuantizeMultiplier, activation clamps, ADD's
rescaling, softmax's beta multiplier, logistic's lookup table, MEAN's folded multiplier -- is written once, in
the numpy reference (mcutool.reference, "op_common"), and called from here, so the C kernels and the reference
cannot disagree about it; this module only lays the numbers out as the kernels' parameter structs.

Per op kind there is a function `<kind>_params(graph, op) -> KernelParams` (`kernel_params` dispatches);
`c_definitions` renders a KernelParams as file-scope C (companion constant arrays, then
`static const mcu_<op>_params <prefix>_params = {...};`) and `c_call` renders the kernel call. A reshape has no
kernel (its output aliases its input): kernel_params returns None for it.

Layout: the kernels see every tensor as 4-D NHWC; a tensor of rank r < 4 gets 4 - r leading extents of 1
(NumPy/TFLite broadcasting aligns trailing dimensions the same way), and axes, pads and permutations shift
accordingly. Ranks above 4 are refused.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from mcutool import reference as ref
from mcutool.errors import UserError
from mcutool.ir import Graph, Op, Tensor

# TFLite's QuantizeMultiplier, as the reference implements it (real = multiplier * 2^(shift - 31)).
quantize_multiplier = ref.quantize_multiplier

INT8_MIN, INT8_MAX = -128, 127


# ---------------------------------------------------------------------------------------------- containers

@dataclass(frozen=True)
class CRef:
    """A field whose value is a companion array of the same layer: rendered as `<prefix>_<suffix>`."""
    suffix: str


@dataclass
class KernelParams:
    """One layer's kernel call: the function, its parameter struct type and values, companion arrays.

    `fields` maps struct fields to ints, nested dicts (mcu_dims, mcu_quant, mcu_activation), lists (fixed-size
    C arrays) or CRef (a pointer to a companion array). `arrays` maps a suffix to (C element type, values); a
    value list may hold CRef/None entries for an array of pointers (NULL for None)."""
    function: str
    struct: str
    fields: dict
    arrays: dict[str, tuple[str, list]] = field(default_factory=dict)
    num_inputs: int = 1          # data inputs the kernel takes
    input_array: bool = False    # inputs passed as one `const int8_t *const *` (concatenation)


# ---------------------------------------------------------------------------------------------- helpers

def _where(op: Op) -> str:
    return f"layer {op.name!r} ({op.kind})"


def _fail(op: Op, detail: str) -> UserError:
    return UserError(f"{_where(op)}: {detail}. The firmware kernels (runtime/) run int8 tensors with TFLite's "
                     "int8 quantization (per-tensor scale and zero point) of rank at most 4; change the layer or "
                     "quantize the model to int8.")


def _tensor(graph: Graph, name: str) -> Tensor:
    return graph.tensor(name)


def _int8(op: Op, t: Tensor, role: str) -> tuple[np.float32, int]:
    """(scale as float32, zero point) of an int8, per-tensor quantized tensor."""
    if t.dtype != "int8":
        raise _fail(op, f"{role} tensor {t.name!r} is {t.dtype}, not int8")
    if t.quant is None:
        raise _fail(op, f"{role} tensor {t.name!r} has no quantization parameters")
    if t.quant.per_channel:
        raise _fail(op, f"{role} tensor {t.name!r} is quantized per channel")
    return ref.f32(t.quant.scale[0]), int(t.quant.zero_point[0])


def _same_quant(a: tuple[np.float32, int], b: tuple[np.float32, int]) -> bool:
    return a[0] == b[0] and a[1] == b[1]


def _pad4(op: Op, shape) -> tuple[int, int]:
    """(4 - rank) for a tensor of rank <= 4."""
    if len(shape) > 4:
        raise _fail(op, f"a tensor of rank {len(shape)} (shape {tuple(shape)})")
    return 4 - len(shape), len(shape)


def dims4(shape) -> tuple[int, int, int, int]:
    """A shape of rank <= 4 as NHWC extents, leading extents 1."""
    shape = tuple(int(d) for d in shape)
    if len(shape) > 4:
        raise ValueError(f"shape {shape} has rank > 4")
    return (1,) * (4 - len(shape)) + shape


def _dims(shape) -> dict:
    n, h, w, c = dims4(shape)
    return {"n": n, "h": h, "w": w, "c": c}


def _act(lo: int, hi: int) -> dict:
    return {"min": int(lo), "max": int(hi)}


def _quant(multiplier: int, shift: int) -> dict:
    return {"multiplier": int(multiplier), "shift": int(shift)}


def _byte_indexed(table_by_value: np.ndarray) -> list[int]:
    """A table indexed by q - (-128) (the reference's layout) re-indexed by the byte (uint8_t)q."""
    t = np.asarray(table_by_value, dtype=np.int64).reshape(-1)
    if t.size != 256:
        raise ValueError("an int8 lookup table has 256 entries")
    return [int(v) for v in np.concatenate([t[128:], t[:128]])]


def _requant_table(in_q, out_q, lo: int, hi: int) -> list[int]:
    """table[(uint8_t)q] = clamp(Requantize(q), lo, hi): TFLite's int8 -> int8 QUANTIZE (reference_ops::
    Requantize), or the identity when the quantizations match, followed by the clamp."""
    q = np.arange(-128, 128, dtype=np.int64)
    if _same_quant(in_q, out_q):
        values = q
    else:
        m, sh = ref.requantize_multiplier(in_q[0], out_q[0])
        values = ref.requantize(q, in_zp=in_q[1], multiplier=m, shift=sh, out_zp=out_q[1], out_dtype="int8")
    return _byte_indexed(np.clip(values, lo, hi))


# ---------------------------------------------------------------------------------------------- per op kind

def pool_params(graph: Graph, op: Op) -> KernelParams:
    """AVERAGE_POOL_2D / MAX_POOL_2D: reference_integer_ops::AveragePool / MaxPool (pooling.h)."""
    x, y = _tensor(graph, op.inputs[0]), _tensor(graph, op.outputs[0])
    xq, yq = _int8(op, x, "input"), _int8(op, y, "output")
    if not _same_quant(xq, yq):
        raise _fail(op, "input and output quantization differ (TFLite's int8 pools require them equal)")
    if len(x.shape) != 4 or len(y.shape) != 4:
        raise _fail(op, f"pooling needs 4-D NHWC tensors, got {x.shape} -> {y.shape}")
    a = op.attrs
    lo, hi = ref.activation_range(a.activation, yq[0], yq[1], "int8")
    top, left, bottom, right = (int(p) for p in a.pads)
    fields = {
        "input": _dims(x.shape), "output": _dims(y.shape),
        "filter_h": int(a.filter[0]), "filter_w": int(a.filter[1]),
        "stride_h": int(a.stride[0]), "stride_w": int(a.stride[1]),
        "pad_top": top, "pad_left": left, "pad_bottom": bottom, "pad_right": right,
        "count_include_pad": int(bool(getattr(a, "count_include_pad", False))) if op.kind == "avg_pool2d" else 0,
        "pad_value": yq[1],
        "act": _act(lo, hi),
    }
    fn = "mcu_avg_pool2d_s8" if op.kind == "avg_pool2d" else "mcu_max_pool2d_s8"
    return KernelParams(fn, "mcu_pool_params", fields)


def _broadcast_dims(op: Op, a: Tensor, b: Tensor, y: Tensor) -> None:
    for t in (a, b, y):
        _pad4(op, t.shape)
    ya = dims4(y.shape)
    for t in (a, b):
        if any(d not in (1, o) for d, o in zip(dims4(t.shape), ya)):
            raise _fail(op, f"input {t.name!r} of shape {t.shape} does not broadcast to the output {y.shape}")


def add_params(graph: Graph, op: Op) -> KernelParams:
    """ADD: reference_integer_ops::Add / BroadcastAdd with add.cc's int8 Prepare (left shift 20)."""
    a, b, y = (_tensor(graph, n) for n in (op.inputs[0], op.inputs[1], op.outputs[0]))
    aq, bq, yq = _int8(op, a, "first input"), _int8(op, b, "second input"), _int8(op, y, "output")
    _broadcast_dims(op, a, b, y)
    p = ref.add_params(aq[0], bq[0], yq[0])
    lo, hi = ref.activation_range(op.attrs.activation, yq[0], yq[1], "int8")
    fields = {
        "input1": _dims(a.shape), "input2": _dims(b.shape), "output": _dims(y.shape),
        "input1_offset": -aq[1], "input2_offset": -bq[1], "output_offset": yq[1],
        "left_shift": p.left_shift,
        "input1_quant": _quant(p.input1_multiplier, p.input1_shift),
        "input2_quant": _quant(p.input2_multiplier, p.input2_shift),
        "output_quant": _quant(p.output_multiplier, p.output_shift),
        "act": _act(lo, hi),
    }
    return KernelParams("mcu_add_s8", "mcu_add_params", fields, num_inputs=2)


def mul_params(graph: Graph, op: Op) -> KernelParams:
    """MUL: reference_integer_ops::Mul / BroadcastMul with mul.cc's Prepare."""
    a, b, y = (_tensor(graph, n) for n in (op.inputs[0], op.inputs[1], op.outputs[0]))
    aq, bq, yq = _int8(op, a, "first input"), _int8(op, b, "second input"), _int8(op, y, "output")
    _broadcast_dims(op, a, b, y)
    m, sh = ref.mul_output_multiplier(aq[0], bq[0], yq[0])
    lo, hi = ref.activation_range(op.attrs.activation, yq[0], yq[1], "int8")
    fields = {
        "input1": _dims(a.shape), "input2": _dims(b.shape), "output": _dims(y.shape),
        "input1_offset": -aq[1], "input2_offset": -bq[1], "output_offset": yq[1],
        "output_quant": _quant(m, sh),
        "act": _act(lo, hi),
    }
    return KernelParams("mcu_mul_s8", "mcu_mul_params", fields, num_inputs=2)


def softmax_params(graph: Graph, op: Op) -> KernelParams:
    """SOFTMAX: reference_ops::Softmax (int8 -> int8) with SoftmaxPrepare<kReference>'s parameters."""
    x, y = _tensor(graph, op.inputs[0]), _tensor(graph, op.outputs[0])
    xq, yq = _int8(op, x, "input"), _int8(op, y, "output")
    if yq[1] != INT8_MIN or abs(float(yq[0]) - 1.0 / 256) > 0.001 / 256:
        raise _fail(op, f"an int8 softmax output needs scale 1/256 and zero point -128 (TFLite's requirement); "
                        f"it has scale {float(yq[0])} and zero point {yq[1]}")
    if x.shape != y.shape or len(x.shape) < 1:
        raise _fail(op, f"input shape {x.shape} and output shape {y.shape} differ")
    p = ref.softmax_params(op.attrs.beta, xq[0])
    depth = int(x.shape[-1])
    fields = {
        "outer": x.size // depth, "depth": depth,
        "input_beta_multiplier": p.input_multiplier, "input_beta_left_shift": p.input_left_shift,
        "diff_min": p.diff_min,
    }
    return KernelParams("mcu_softmax_s8", "mcu_softmax_params", fields)


def logistic_params(graph: Graph, op: Op) -> KernelParams:
    """LOGISTIC: TFLite 2.14's int8 kernel is a LUTPopulate table (activations.cc SigmoidPrepare) + lookup."""
    x, y = _tensor(graph, op.inputs[0]), _tensor(graph, op.outputs[0])
    xq, yq = _int8(op, x, "input"), _int8(op, y, "output")
    if yq[1] != INT8_MIN or float(yq[0]) != 1.0 / 256:
        raise _fail(op, f"an int8 logistic output needs scale 1/256 and zero point -128 (TFLite's requirement); "
                        f"it has scale {float(yq[0])} and zero point {yq[1]}")
    table = ref.logistic_lut(xq[0], xq[1], yq[0], yq[1], "int8")
    fields = {"size": x.size, "table": CRef("table")}
    return KernelParams("mcu_logistic_s8", "mcu_lut_params", fields, arrays={"table": ("int8_t", _byte_indexed(table))})


def pad_params(graph: Graph, op: Op) -> KernelParams:
    """PAD: reference_ops::Pad, padding with the output zero point."""
    x, y = _tensor(graph, op.inputs[0]), _tensor(graph, op.outputs[0])
    xq, yq = _int8(op, x, "input"), _int8(op, y, "output")
    if not _same_quant(xq, yq):
        raise _fail(op, "input and output quantization differ (PAD moves values without rescaling them)")
    k, r = _pad4(op, x.shape)
    pads = [tuple(int(v) for v in p) for p in op.attrs.pads]
    if len(pads) != r:
        raise _fail(op, f"{len(pads)} (before, after) pairs for a rank-{r} input")
    if any(b < 0 or e < 0 for b, e in pads):
        raise _fail(op, f"negative pads {pads}")
    expected = tuple(d + b + e for d, (b, e) in zip(x.shape, pads))
    if expected != tuple(y.shape):
        raise _fail(op, f"input {x.shape} padded by {pads} is {expected}, but the output is {y.shape}")
    fields = {
        "input": _dims(x.shape), "output": _dims(y.shape),
        "pad_before": [0] * k + [b for b, _ in pads],
        "pad_value": yq[1],
    }
    return KernelParams("mcu_pad_s8", "mcu_pad_params", fields)


def transpose_params(graph: Graph, op: Op) -> KernelParams:
    """TRANSPOSE: reference_ops::Transpose."""
    x, y = _tensor(graph, op.inputs[0]), _tensor(graph, op.outputs[0])
    xq, yq = _int8(op, x, "input"), _int8(op, y, "output")
    if not _same_quant(xq, yq):
        raise _fail(op, "input and output quantization differ (TRANSPOSE moves values without rescaling them)")
    k, r = _pad4(op, x.shape)
    perm = [int(p) % r if r else 0 for p in op.attrs.perm]
    if sorted(perm) != list(range(r)):
        raise _fail(op, f"perm {tuple(op.attrs.perm)} is not a permutation of {r} axes")
    if tuple(x.shape[p] for p in perm) != tuple(y.shape):
        raise _fail(op, f"input {x.shape} permuted by {tuple(perm)} is not the output shape {y.shape}")
    fields = {"input": _dims(x.shape), "perm": list(range(k)) + [p + k for p in perm]}
    return KernelParams("mcu_transpose_s8", "mcu_transpose_params", fields)


def mean_params(graph: Graph, op: Op) -> KernelParams:
    """MEAN: reference_ops::QuantizedMeanOrSum (TFLite 2.14's int8 MEAN for every keep_dims / axis set)."""
    x, y = _tensor(graph, op.inputs[0]), _tensor(graph, op.outputs[0])
    xq, yq = _int8(op, x, "input"), _int8(op, y, "output")
    k, r = _pad4(op, x.shape)
    axes = sorted({int(a) % r for a in op.attrs.axes}) if r else []
    count = int(np.prod([x.shape[a] for a in axes], dtype=np.int64)) if axes else 1
    if y.size * count != x.size:
        raise _fail(op, f"the mean of {x.shape} over axes {tuple(op.attrs.axes)} does not give {y.shape}")
    m, sh = ref.mean_multiplier(xq[0], yq[0], count)
    fields = {
        "input": _dims(x.shape),
        "axis_mask": sum(1 << (a + k) for a in axes),
        "input_offset": -xq[1], "output_offset": yq[1],
        "quant": _quant(m, sh),
    }
    return KernelParams("mcu_mean_s8", "mcu_mean_params", fields)


def concat_params(graph: Graph, op: Op) -> KernelParams:
    """CONCATENATION: reference_ops::Concatenation; inputs quantized differently from the output are
    requantized first (reference_ops::Requantize, as an int8 QUANTIZE in front of them would), through a
    256-entry table; a fused activation is folded into the tables too."""
    y = _tensor(graph, op.outputs[0])
    yq = _int8(op, y, "output")
    k, r = _pad4(op, y.shape)
    if r == 0:
        raise _fail(op, "concatenation of scalars")
    axis = int(op.attrs.axis) % r
    y4 = dims4(y.shape)
    ax4 = axis + k
    lo, hi = ref.activation_range(op.attrs.activation, yq[0], yq[1], "int8")
    inputs = [_tensor(graph, n) for n in op.inputs]
    total = 0
    copy_size, tables, arrays = [], [], {}
    inner = int(np.prod(y4[ax4 + 1:], dtype=np.int64))
    for i, t in enumerate(inputs):
        tq = _int8(op, t, f"input {i}")
        if len(t.shape) != r or any(d != e for j, (d, e) in enumerate(zip(t.shape, y.shape)) if j != axis):
            raise _fail(op, f"input {t.name!r} of shape {t.shape} does not match the output {y.shape} "
                            f"outside axis {axis}")
        total += t.shape[axis]
        copy_size.append(int(t.shape[axis]) * inner)
        if _same_quant(tq, yq) and (lo, hi) == (INT8_MIN, INT8_MAX):
            tables.append(None)
        else:
            arrays[f"table{i}"] = ("int8_t", _requant_table(tq, yq, lo, hi))
            tables.append(CRef(f"table{i}"))
    if total != y.shape[axis]:
        raise _fail(op, f"the inputs' extents along axis {axis} add up to {total}, the output has {y.shape[axis]}")
    arrays["copy_size"] = ("int32_t", copy_size)
    fields = {
        "num_inputs": len(inputs),
        "outer": int(np.prod(y4[:ax4], dtype=np.int64)),
        "copy_size": CRef("copy_size"),
        "table": None,
    }
    if any(t is not None for t in tables):
        arrays["tables"] = ("int8_t *const", tables)
        fields["table"] = CRef("tables")
    return KernelParams("mcu_concat_s8", "mcu_concat_params", fields, arrays=arrays,
                        num_inputs=len(inputs), input_array=True)


def quantize_params(graph: Graph, op: Op) -> KernelParams:
    """QUANTIZE int8 -> int8: reference_ops::Requantize with quantize.cc's (double)s_in / (double)s_out."""
    x, y = _tensor(graph, op.inputs[0]), _tensor(graph, op.outputs[0])
    if x.dtype == "float32" or y.dtype == "float32":
        raise _fail(op, "float <-> int8 conversion happens on the host (the firmware's I/O is integer); only "
                        "int8 -> int8 requantization runs in firmware")
    xq, yq = _int8(op, x, "input"), _int8(op, y, "output")
    m, sh = ref.requantize_multiplier(xq[0], yq[0])
    fields = {"size": x.size, "input_offset": -xq[1], "output_offset": yq[1], "quant": _quant(m, sh)}
    return KernelParams("mcu_quantize_s8", "mcu_quantize_params", fields)


PARAMS = {
    "avg_pool2d": pool_params,
    "max_pool2d": pool_params,
    "add": add_params,
    "mul": mul_params,
    "softmax": softmax_params,
    "logistic": logistic_params,
    "pad": pad_params,
    "transpose": transpose_params,
    "mean": mean_params,
    "concat": concat_params,
    "quantize": quantize_params,
}


def kernel_params(graph: Graph, op: Op) -> KernelParams | None:
    """The runtime kernel and its parameters for `op`; None for a reshape (no kernel: the output aliases)."""
    if op.kind == "reshape":
        return None
    fn = PARAMS.get(op.kind)
    if fn is None:
        raise _fail(op, "no runtime/ kernel implements this op kind")
    return fn(graph, op)


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


def _c_array(name: str, ctype: str, values: list, prefix: str) -> str:
    items = [_c_value(v, prefix) for v in values]
    lines = [", ".join(items[i:i + 16]) for i in range(0, len(items), 16)]
    return f"static const {ctype} {name}[{len(items)}] = {{\n    " + ",\n    ".join(lines) + "\n};\n"


def c_definitions(kp: KernelParams, prefix: str) -> str:
    """File-scope C for one layer: its companion arrays, then `static const <struct> <prefix>_params`.
    Arrays of pointers come after the arrays they point to."""
    out = []
    ordered = sorted(kp.arrays.items(), key=lambda kv: kv[1][0].endswith("*const"))
    for suffix, (ctype, values) in ordered:
        out.append(_c_array(f"{prefix}_{suffix}", ctype, values, prefix))
    out.append(f"static const {kp.struct} {prefix}_params = {c_struct_init(kp.fields, prefix)};\n")
    return "".join(out)


def c_call(kp: KernelParams, prefix: str, inputs: list[str], output: str, status: str | None = None) -> str:
    """The C statement that runs the kernel; `inputs` / `output` are C pointer expressions. The kernel's
    mcu_status is assigned to the variable `status` when given, else discarded (kernels only fail on
    parameters inconsistent with themselves, which runtime_params never produces)."""
    if len(inputs) != kp.num_inputs:
        raise ValueError(f"{kp.function} takes {kp.num_inputs} inputs, got {len(inputs)}")
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
    data_inputs = inputs[:kp.num_inputs]
    return c_definitions(kp, prefix), c_call(kp, prefix, data_inputs, output)
