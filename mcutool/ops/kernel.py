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
from mcutool.ir import Op, Tensor
from mcutool.ops.fixedpoint import f32, requantize, requantize_multiplier

INT8_MIN, INT8_MAX = -128, 127


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
    input_array: bool = False    # inputs passed as one `const <in_ctype> *const *` (concatenation)
    in_ctype: str = "int8_t"     # C element type of the data inputs (the kernel's own signature)
    out_ctype: str = "int8_t"    # C element type of the output


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
