"""A convolution that writes its output over its input, through a line buffer (schedule/inplace.py RowBuffer).

The layer becomes one C function `void <name>(int8_t *buf, int8_t *restrict ring)`: `buf` holds the input
and, on return, the output; `ring` is the op's line buffer in the arena. Step s computes output rows
[s * step, s * step + step) from the input rows they read into ring slot s % slots, then copies slot s - pt
back over rows (s - pt) * step.. of `buf`, whose input rows no later step reads (pt = the top padding; with
step > 1 the kernel has one row, so pt = 0). The last pt slots are copied back after the loop.

Each step's kernel is the layer's TVM kernel (tvm_kernels.layer_builder) for the band of input rows it reads:
(1, band, W, C) with the top / bottom padding that the band lacks inside the image, so the rows touching
the top or bottom border get their own specialization (pt top variants, pb bottom ones, one interior; one more
when a last partial step has fewer rows). All variants share the layer's constant arrays.

A 3x3 depthwise conv whose hand-written kernel applies (codegen/fast_kernels.py) needs none of this: it works
channel by channel through its own ring of int16 rows and writes over its input directly (`fast_kernels.in_place`);
the line buffer planned for the op is then unused.
"""
from __future__ import annotations

import re
from dataclasses import dataclass

from ..schedule.inplace import RowBuffer
from . import fast_kernels, tvm_kernels


@dataclass(frozen=True)
class Step:
    rows: int        # output rows of this step
    band_start: int  # first input row it reads
    band: int        # input rows it reads
    pad_top: int     # rows of top padding the band lacks
    pad_bottom: int

    @property
    def key(self) -> tuple[int, int, int]:
        return self.rows, self.pad_top, self.pad_bottom


def steps(rb: RowBuffer) -> list[Step]:
    out = []
    for y in range(0, rb.height, rb.step):
        rows = min(rb.step, rb.height - y)
        first, last = y - rb.pad_top, y + rows - 1 + rb.pad_bottom  # input rows read, padding included
        start, end = max(first, 0), min(last, rb.height - 1)
        out.append(Step(rows, start, end - start + 1, start - first, last - end))
    return out


def _renamed(code: str, name: str, new: str) -> str:
    """The kernel's functions (`name`, and its helpers `name_pairs`, `name_last`) renamed to `new...`, static."""
    code = re.sub(r"\b" + re.escape(name) + r"(_pairs|_last)?\(", lambda m: new + (m.group(1) or "") + "(", code)
    return code.replace(f"MCU_KERNEL_OPT void {new}(", f"MCU_KERNEL_OPT static void {new}(")


def row_kernel(graph, op, rb: RowBuffer, name: str, const_attr: str = "") -> tvm_kernels.Kernel:
    """The in-place kernel of `op` (see the module docstring)."""
    build = tvm_kernels.layer_builder(graph, op, name, const_attr=const_attr)
    _, h, w, c = graph.tensor(op.inputs[0]).shape
    w_shape = graph.tensor(op.inputs[1]).shape
    dw3x3 = op.kind == "depthwise_conv2d" and tuple(w_shape[1:3]) == (3, 3) and tuple(op.attrs.dilation) == (1, 1)
    whole = build((1, h, w, c), tuple(op.attrs.pads)) if dw3x3 else None
    if whole is not None and whole.schedule == "dw3x3":  # runs over its input directly (fast_kernels.in_place)
        return fast_kernels.in_place(whole)
    _pt, pl, _pb, pr = (int(p) for p in op.attrs.pads)
    plan = steps(rb)
    variants: dict[tuple[int, int, int], str] = {}
    consts, codes, stack, first = None, [], 0, None
    for s in plan:
        if s.key in variants:
            continue
        k = build((1, s.band, w, c), (s.pad_top, pl, s.pad_bottom, pr))
        if k.out_shape != (1, s.rows, w, graph.tensor(op.outputs[0]).shape[3]):
            raise RuntimeError(f"{name}: band kernel {s} gives {k.out_shape}")
        if consts is None:
            consts, first = k.const_source, k
        elif k.const_source != consts:
            raise RuntimeError(f"{name}: the band kernels' constants differ")
        fname = f"{name}_r{s.rows}t{s.pad_top}b{s.pad_bottom}"
        variants[s.key] = fname
        codes.append(_renamed(k.code_source, name, fname))
        stack = max(stack, k.stack_bytes)
    macs = sum(first.macs // first.out_shape[1] * s.rows for s in plan)  # MACs per output row x rows
    body = _driver(plan, variants, rb)
    proto = f"void {name}(int8_t* buf, int8_t* restrict ring)"
    includes = first.includes
    source = ("#include <stdint.h>\n" + "".join(f'#include "{i}"\n' for i in includes) + "\n" + consts
              + "".join(codes) + f"\nMCU_KERNEL_OPT {proto}\n{{\n{body}\n}}\n")
    return tvm_kernels.Kernel(name=name, op=op.kind, in_shape=(1, h, w, c), out_shape=(1, h, w, c), macs=macs,
                              source=source, prototype=proto + ";", includes=includes, stack_bytes=stack,
                              const_bytes=first.const_bytes, schedule=first.schedule + "+in_place_rows",
                              tir=first.tir)


def _driver(plan: list[Step], variants: dict, rb: RowBuffer) -> str:
    """The C loop over the steps: the variant for each step's rows, then the copy back of slot s - pt."""
    n, pt, row, slot = len(plan), rb.pad_top, rb.row_bytes, rb.step * rb.row_bytes
    full = (rb.step, 0, 0)
    interior = full if any(s.key == full for s in plan) else None
    calls = [f"if (s == {i}) {variants[s.key]}(buf + {s.band_start * row}, out);"
             for i, s in enumerate(plan) if s.key != interior]
    if interior is not None:
        start = f"(s * {rb.step} - {pt}) * {row}" if pt else f"s * {slot}"
        calls.append(f"{variants[interior]}(buf + {start}, out);")
    chain = "\n    else ".join(calls)
    last = plan[-1].rows * row

    def copy(step: str, slot_of: str) -> str:
        nbytes = f"({step} == {n - 1} ? {last}u : {slot}u)" if last != slot else f"{slot}u"
        return f"__builtin_memcpy(buf + {step} * {slot}, ring + ({slot_of}) * {slot}, {nbytes});"

    def slot_of(step: str) -> str:
        return f"{step} % {rb.slots}" if rb.slots > 1 else "0"

    lines = [
        "  int32_t s;",
        f"  for (s = 0; s < {n}; ++s) {{",
        f"    int8_t* out = ring + ({slot_of('s')}) * {slot};",
        "    " + chain,
    ]
    if pt:
        lines += [f"    if (s >= {pt}) {{", f"      int32_t d = s - {pt};", "      " + copy("d", slot_of("d")), "    }"]
    else:
        lines.append("    " + copy("s", "0"))
    lines.append("  }")
    if pt:
        lines += [f"  for (s = {max(n - pt, 0)}; s < {n}; ++s) {{", "    " + copy("s", slot_of("s")), "  }"]
    return "\n".join(lines)
