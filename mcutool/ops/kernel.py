"""What a runtime/ kernel call is made of: the function, its parameter struct and companion arrays
(`KernelParams`), computed at compile time -- TFLite's Prepare, run in Python -- from the IR alone.
Each op module's `kernel_params(graph, op)` returns one; mcutool/codegen/runtime_params.py renders it as C.

Layout: the kernels see every tensor as 4-D NHWC; a tensor of rank r < 4 gets 4 - r leading extents of 1
(NumPy/TFLite broadcasting aligns trailing dimensions the same way), and axes, pads and permutations shift
accordingly. Ranks above 4 are refused.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from mcutool.errors import UserError
from mcutool.ir import DTYPE_BYTES, Op, Tensor
from mcutool.ops.fixedpoint import f32, requantize, requantize_multiplier

INT8_MIN, INT8_MAX = -128, 127


@dataclass(frozen=True)
class CRef:
    """A field whose value is a companion array of the same layer: rendered as `<prefix>_<suffix>`."""
    suffix: str


@dataclass(frozen=True)
class CState:
    """A field whose value is the model's persistent array of a variable tensor (model.c's mcu_state_<name>)."""
    tensor: str


@dataclass
class KernelParams:
    """One layer's kernel call: the function, its parameter struct type and values, companion arrays.

    `fields` maps struct fields to ints, nested dicts (mcu_dims, mcu_quant, mcu_activation), lists (fixed-size
    C arrays), CRef (a pointer to a companion array) or CState (a pointer to a variable tensor's state array). `arrays` maps a suffix to (C element type, values); a
    value list may hold CRef/None entries for an array of pointers (NULL for None)."""
    function: str
    struct: str
    fields: dict
    arrays: dict[str, tuple[str, list]] = field(default_factory=dict)
    num_inputs: int = 1          # data inputs the kernel takes
    input_array: bool = False    # inputs passed as one `const <in_ctype> *const *` (concatenation, pack)
    in_ctype: str = "int8_t"     # C element type of the data inputs (the kernel's own signature)
    out_ctype: str = "int8_t"    # C element type of the outputs (int32_t: arg_max / arg_min indices)
    num_outputs: int = 1         # outputs the kernel writes
    output_array: bool = False   # outputs passed as one `<out_ctype> *const *` (split, unpack)
    const_inputs: dict[int, str] = field(default_factory=dict)  # data input position -> companion array suffix
    # (an operand that may be an activation or a constant, e.g. BATCH_MATMUL's: the call passes the array)


def kernel_where(op: Op) -> str:
    return f"layer {op.name!r} ({op.kind})"


def kernel_error(op: Op, detail: str) -> UserError:
    return UserError(f"{kernel_where(op)}: {detail}. The firmware kernels (runtime/) run int8 tensors with TFLite's "
                     "int8 quantization (per-tensor scale and zero point), int16 ones (TFLite's 16x8 scheme, zero "
                     "point 0) for the ops the README lists as int16, of rank at most 4; change the layer or "
                     "quantize the model to int8.")


# C element type of each tensor dtype a runtime/ kernel reads or writes.
CTYPES = {"int8": "int8_t", "int16": "int16_t", "int32": "int32_t"}


def int_qparams(op: Op, t: Tensor, role: str, dtypes=("int8",)) -> tuple[np.float32, int]:
    """(scale as float32, zero point) of a per-tensor quantized tensor of one of `dtypes`. int16 tensors follow
    TFLite's 16x8 scheme: zero point 0 (TFLite Micro's int16 kernels check it)."""
    if t.dtype not in dtypes:
        raise kernel_error(op, f"{role} tensor {t.name!r} is {t.dtype}, not {' or '.join(dtypes)}")
    if t.quant is None:
        raise kernel_error(op, f"{role} tensor {t.name!r} has no quantization parameters")
    if t.quant.per_channel:
        raise kernel_error(op, f"{role} tensor {t.name!r} is quantized per channel")
    zp = int(t.quant.zero_point[0])
    if t.dtype == "int16" and zp != 0:
        raise kernel_error(op, f"{role} tensor {t.name!r} is int16 with zero point {zp} (TFLite's 16x8 scheme "
                           "has zero point 0)")
    return f32(t.quant.scale[0]), zp


def int8_qparams(op: Op, t: Tensor, role: str) -> tuple[np.float32, int]:
    """(scale as float32, zero point) of an int8, per-tensor quantized tensor."""
    return int_qparams(op, t, role)


def kernel_for(op: Op, x: Tensor, y: Tensor, kernels: dict) -> tuple[str, str, str]:
    """(function, input C type, output C type) of the kernel that runs (x.dtype, y.dtype): `kernels` maps each
    (input dtype, output dtype) pair an op's runtime/ kernels cover to the function's name."""
    function = kernels.get((x.dtype, y.dtype))
    if function is None:
        allowed = ", ".join(f"{a} -> {b}" for a, b in kernels)
        raise kernel_error(op, f"{x.dtype} -> {y.dtype} is not a combination its kernels run ({allowed})")
    return function, CTYPES[x.dtype], CTYPES[y.dtype]


def int8_or_int16_qparams(op: Op, t: Tensor, role: str) -> tuple[np.float32, int]:
    """(scale as float32, zero point) of an int8 or int16, per-tensor quantized tensor."""
    if t.dtype == "int16" and t.quant is not None and not t.quant.per_channel:
        return f32(t.quant.scale[0]), int(t.quant.zero_point[0])
    return int8_qparams(op, t, role)


def same_qparams(a: tuple[np.float32, int], b: tuple[np.float32, int]) -> bool:
    return a[0] == b[0] and a[1] == b[1]


def rank_pad(op: Op, shape) -> tuple[int, int]:
    """(4 - rank) for a tensor of rank <= 4."""
    if len(shape) > 4:
        raise kernel_error(op, f"a tensor of rank {len(shape)} (shape {tuple(shape)})")
    return 4 - len(shape), len(shape)


def dims4(shape) -> tuple[int, int, int, int]:
    """A shape of rank <= 4 as NHWC extents, leading extents 1."""
    shape = tuple(int(d) for d in shape)
    if len(shape) > 4:
        raise ValueError(f"shape {shape} has rank > 4")
    return (1,) * (4 - len(shape)) + shape


def dims(shape) -> dict:
    n, h, w, c = dims4(shape)
    return {"n": n, "h": h, "w": w, "c": c}


def act(lo: int, hi: int) -> dict:
    return {"min": int(lo), "max": int(hi)}


def quant(multiplier: int, shift: int) -> dict:
    return {"multiplier": int(multiplier), "shift": int(shift)}


def byte_indexed(table_by_value: np.ndarray) -> list[int]:
    """A table indexed by q - (-128) (the reference's layout) re-indexed by the byte (uint8_t)q."""
    t = np.asarray(table_by_value, dtype=np.int64).reshape(-1)
    if t.size != 256:
        raise ValueError("an int8 lookup table has 256 entries")
    return [int(v) for v in np.concatenate([t[128:], t[:128]])]


def requant_table(in_q, out_q, lo: int, hi: int) -> list[int]:
    """table[(uint8_t)q] = clamp(Requantize(q), lo, hi): TFLite's int8 -> int8 QUANTIZE (reference_ops::
    Requantize), or the identity when the quantizations match, followed by the clamp."""
    q = np.arange(-128, 128, dtype=np.int64)
    if same_qparams(in_q, out_q):
        values = q
    else:
        m, sh = requantize_multiplier(in_q[0], out_q[0])
        values = requantize(q, in_zp=in_q[1], multiplier=m, shift=sh, out_zp=out_q[1], out_dtype="int8")
    return byte_indexed(np.clip(values, lo, hi))


def check_broadcast(op: Op, a: Tensor, b: Tensor, y: Tensor) -> None:
    for t in (a, b, y):
        rank_pad(op, t.shape)
    ya = dims4(y.shape)
    for t in (a, b):
        if any(d not in (1, o) for d, o in zip(dims4(t.shape), ya)):
            raise kernel_error(op, f"input {t.name!r} of shape {t.shape} does not broadcast to the output {y.shape}")


MOVED_DTYPES = ("int8", "int16")  # what the byte-moving kernels (slice, split, concat for pack, resize_nn) take


def check_moved(op: Op, tensors: list[Tensor], dtypes=("int8",)) -> int:
    """A data-movement op's tensors (inputs then outputs) share one dtype of `dtypes`, scale and zero point: the
    kernel moves values without rescaling them, as TFLite Micro's does. Returns the element size in bytes: the
    kernels move bytes, so an int16 tensor is moved as a tensor of twice as many int8 channels (byte_dims)."""
    first = int_qparams(op, tensors[0], "input", dtypes)
    for t in tensors[1:]:
        if t.dtype != tensors[0].dtype or not same_qparams(first, int_qparams(op, t, "input/output", dtypes)):
            raise kernel_error(op, f"tensor {t.name!r} differs from {tensors[0].name!r} in dtype or quantization "
                               f"({op.kind} moves values without rescaling them)")
    return DTYPE_BYTES[tensors[0].dtype]


def byte_dims(shape, element_bytes: int) -> dict:
    """dims() of a tensor seen as bytes: the innermost extent times the element size."""
    n, h, w, c = dims4(shape)
    return {"n": n, "h": h, "w": w, "c": c * element_bytes}


def lut_kernel(graph, op: Op, int8_function) -> KernelParams:
    """An int8 -> int8 elementwise op as a 256-entry table (runtime/mcu_lut_s8.c): `int8_function(q)` -- the op's
    reference on int8 values -- evaluated once per input value at compile time, so the firmware's lookup gives
    the reference's result for every input. (TFLite does the same for LOGISTIC and ELU at Prepare time.)"""
    x, y = graph.tensor(op.inputs[0]), graph.tensor(op.outputs[0])
    int8_qparams(op, x, "input")
    int8_qparams(op, y, "output")
    if x.size != y.size:
        raise kernel_error(op, f"input {x.shape} and output {y.shape} differ in size")
    table = np.asarray(int8_function(np.arange(INT8_MIN, INT8_MAX + 1, dtype=np.int64)), dtype=np.int64)
    if table.min() < INT8_MIN or table.max() > INT8_MAX:
        raise ValueError(f"{kernel_where(op)}: a table value lies outside int8")
    fields = {"size": x.size, "table": CRef("table")}
    return KernelParams("mcu_lut_s8", "mcu_lut_params", fields, arrays={"table": ("int8_t", byte_indexed(table))})


def const_operands(graph, op: Op, kp: KernelParams) -> KernelParams:
    """Constant int8/int16 data inputs of `op` (a MAXIMUM with a constant, PRELU's alpha) become companion arrays
    passed in their input position (`const_inputs`); the other inputs come from the arena."""
    for k, name in enumerate(op.inputs[:kp.num_inputs]):
        t = graph.tensor(name)
        if t.is_const:
            ctype = {"int8": "int8_t", "int16": "int16_t"}[t.dtype]
            kp.arrays[f"in{k}"] = (ctype, [int(v) for v in np.asarray(t.data).reshape(-1)])
            kp.const_inputs[k] = f"in{k}"
    return kp


def requant_clamp_s16_kernel(graph, op: Op, fn) -> KernelParams:
    """An int16 elementwise op given as a RequantClamp (ops/common.py: RELU, RELU6, ABS) for
    runtime/mcu_requant_clamp_s16.c."""
    x, y = graph.tensor(op.inputs[0]), graph.tensor(op.outputs[0])
    if x.size != y.size or (x.dtype, y.dtype) != ("int16", "int16"):
        raise kernel_error(op, f"input {x.dtype} {x.shape} and output {y.dtype} {y.shape}")
    fields = {"size": x.size, "input_offset": -fn.in_zp, "output_offset": fn.out_zp, "take_abs": int(fn.take_abs),
              "rescale": int(fn.multiplier is not None), "quant": quant(fn.multiplier or 0, fn.shift),
              "act": act(fn.lo, fn.hi)}
    return KernelParams("mcu_requant_clamp_s16", "mcu_requant_clamp_params", fields)
