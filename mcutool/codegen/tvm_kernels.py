"""Shape-specialized int8 kernels generated with Apache TVM 0.27, emitted as plain C99.

API
---
    conv2d_s8(name, in_shape, weights (O,KH,KW,I), bias, multiplier, shift, *, input_zero_point,
              output_zero_point, act_min, act_max, stride, dilation, pads, schedule, const_attr, tuning)
    depthwise_conv2d_s8(name, in_shape, weights (1,KH,KW,C*m), ..., depth_multiplier, ...)
    fully_connected_s8(name, in_shape (N,I), weights (O,I), ...)
    kernel_for_op(graph, op, name=None, schedule="auto")      # from a mcutool.ir op (Prepare via reference.py)
  -> Kernel(name, source, prototype, includes, in_shape, out_shape, macs, stack_bytes, const_bytes, ...)

`Kernel.source` is one C99 fragment: `#include <stdint.h>`, the runtime headers it needs
(`mcu_requant.h`, and `mcu_dot_s8.h` for the SIMD schedules; both in runtime/, `static inline` only), the
constants as `static const` arrays named `<name>_w`, `<name>_bias`, `<name>_mult`, ... (`const_attr` is
appended to each, e.g. a section attribute), and

    void <name>(const int8_t* restrict in, int8_t* restrict out);

No TVM runtime, no DLTensor / TVMFFIAny, no allocation; local arrays are at most a few accumulators
(`Kernel.stack_bytes`). `in` and `out` must not overlap. Batch 1 for convs; `multiplier`/`shift` are TFLite's
QuantizeMultiplier output per output channel (or one value); `pads` = (top, left, bottom, right).

Arithmetic (TFLite int8, bit-exact with its reference kernels and with mcutool/reference.py)
-------------------------------------------------------------------------------------------
schedule "portable" (any core):    acc = sum x*w + (bias - in_zp * sum w)   (input offset folded into the
                                   bias at compile time; padded taps read in_zp, so they cancel exactly)
schedules "smlad", "smlad_w16":    acc = bias + sum (x - in_zp)*w over the taps inside the input, the
                                   input-channel reduction being one call of a runtime/mcu_dot_s8.h
                                   micro-kernel (SXTAB16 adds the offset for free, SMLAD does 2 MACs) for
                                   1, 2 or 4 output channels at once; "smlad_w16" stores the weights as
                                   int16 pre-widened in SXTB16 lane order (2x weight bytes, fewer
                                   instructions). Needs I % 4 == 0 -- or, with dilation 1 along x, kw * I % 4
                                   == 0 ("row mode": a kernel row's kw * I taps are contiguous and reduce as
                                   one vector; rows cut by left/right padding gather their taps, the missing
                                   ones set to the zero point); plain C fallback on cores without DSP.
    1x1 conv, stride 1, no padding:  a fully connected layer over the H*W pixels; its SIMD schedules take 2 rows
                                   (pixels) x 4 output channels per micro-kernel call (`mcu_dot4x2_s8[_w16]`,
                                   each weight word serves both pixels; the input offset is then folded into
                                   the bias); an odd row count ends with a 1-row call.
    depthwise, multiplier 1, C % 4 == 0: "smlad"/"smlad_w16" = 4 channels per tap, SXTAB16 + SMLABB/SMLATT
                                   into one accumulator per channel (`mcu_dw4_s8[_w16]`).
    depthwise with 1 input channel: an ordinary conv with depth_multiplier output channels (it is one).
output:  clamp(MultiplyByQuantizedMultiplier(acc, mult, shift) + out_zp, act_min, act_max), as
         `mcu_requant_fast_s8` (one SMLAL + one ASR, exact for right shifts >= 1, derivation in the header)
         or the literal TFLite sequence `mcu_requant_s8` when some channel has shift >= 0.
"auto" = "smlad" where a SIMD schedule applies, else "portable"; `kernel_for_op` makes it "smlad_w16" when
the model's conv/depthwise/FC weights total at most W16_AUTO_MAX_WEIGHT_BYTES (64 KB).
With "auto"/"auto_w16", a conv2d or fully connected layer that the shared kernel takes (codegen/gemm_kernels.py:
input channels % 4 == 0, even output channels, right-shift requantization) gets a source with two branches:
`#if MCU_GEMM` (cores with DSP) a wrapper calling runtime/mcu_conv_gemm_s8.h's one kernel, `#else` the TVM
kernel chosen as above (Kernel.schedule "gemm|<schedule>").
The kernel definitions carry MCU_KERNEL_OPT (mcu_requant.h: GCC `optimize("O3")`) and the micro-kernels are
always_inline: the firmware is built with -Os, under which GCC leaves the micro-kernels as calls and
spills their accumulators (KWS firmware: 7.20 M instructions with optimize("O2"), 5.54 M with "O3").

MACs per instruction on Cortex-M7 (arm-none-eabi-gcc 12.2 -O3, QEMU mps2-an500 -icount, whole layer
including requantization; KWS = kws_ref_model's layers). Earlier table:
    1x1 conv 25x5x64->64        portable 0.25   smlad 0.47   smlad_w16 0.59
    3x3 conv 16x16x16->16 pad1  portable 0.25   smlad 0.55   smlad_w16 0.74
    depthwise 3x3 25x5x64       portable 0.14
    KWS conv 10x4 s2, 1 channel portable 0.20
    KWS conv/dw/fc layers       portable 0.23   auto 0.33    smlad_w16 0.37   (TFLM+CMSIS-NN: 0.35, whole model)
With the schedules above (-Os + MCU_KERNEL_OPT, as in the firmware):
    1x1 conv 25x5x64->64        2 px x 4 ch: smlad_w16 0.66
    depthwise 3x3 25x5x64       smlad_w16 0.21 (requantization is ~1/3 of it: 9 MACs per output)
    KWS conv 10x4 s2, 1 channel row mode smlad_w16 0.34
    whole KWS firmware (bench)  0.48

What TVM 0.27 looks like from here (found while writing this; it differs a lot from <= 0.16)
-------------------------------------------------------------------------------------------
* Modules: `tvm.te`, `tvm.topi`, `tvm.s_tir` (schedulable TIR: `Schedule`, `TensorIntrin`, most
  transforms, the `s_tir` pipeline) and `tvm.tirx` (the IR: `Var`, `PrimFunc`, `DeclBuffer`, `call_extern`,
  `transform`). No `tvm.tir`, no `te.create_schedule`: `s_tir.Schedule(te.create_prim_func([...]))`, then
  `get_sblock` / `get_loops` / `split` / `reorder` / `reverse_compute_at` / `decompose_reduction` /
  `unroll` / `blockize` / `tensorize`; `sch.mod["main"]` is the scheduled PrimFunc.
* Buffers are no longer objects: a "Buffer" is an ordinary `tvm.ir.Var` whose type is `tirx.BufferType`
  (`tirx.is_buffer_var(v)`); `PrimFunc` has no `buffer_map`, its params *are* buffer vars;
  `tirx.DeclBuffer(buf, data=ptr_var)` binds a buffer var to a pointer; a block's read/write regions are
  `TensorRegion`s whose buffer is `.source`.
* `tvm.compile(mod, target="c")` always ends in MakePackedAPI (TVMFFIAny args, DLTensor unpacking; under
  `tirx.disable_assert` it still reads `.data` through a DLTensor). Instead of stripping that wrapper,
  `_lower()` runs the lowering passes of `tvm.s_tir.pipeline.default_s_tir_pipeline` itself (minus the GPU
  passes, MakePackedAPI and LowerTVMBuiltin), then a 10-line pass that turns each buffer-var param into a
  typed pointer param plus a `DeclBuffer`, then calls the C code generator (`target.build.c`) directly:
  the function comes out as a plain `void f(int8_t* in, int8_t* w, ..., int8_t* out)`. We cut that
  definition out of the file (which also carries TVM headers and a `__tvm_ffi_main` stub), give it our
  `const`/`restrict` signature and make the constant params `static const` arrays. Without
  LowerTVMBuiltin, temporaries are C local arrays instead of `TVMBackendAllocWorkspace` calls.
* `te.sum(..., where=cond)`: the condition is silently DROPPED by `te.create_prim_func` (the generated C
  then reads out of bounds). Put the condition in a `te.if_then_else` instead.
* `tirx.call_extern(dtype, "f", *args)` prints as a plain C call: the hook for the runtime helpers.
  `tirx.address_of(BufferLoad)` prints `&buf[i]`; it cannot be used inside `te.compute` (TE tensors are
  ProducerLoads). `tirx.if_then_else` rejects pointer-typed operands (and the op is "prim.if_then_else").
* `Schedule.tensorize` works with TVMScript intrinsics (see tvm_intrin.py) but SEGFAULTS with
  apache-tvm-ffi 0.1.15.post2 (what pip resolves for apache-tvm 0.27.0.post1): it deep-copies the
  intrinsic through tvm-ffi's JSON graph serializer, which crashes on any TIR node. With
  apache-tvm-ffi==0.1.14.post0 it works and gives the same C as our "tensorize by construction"
  (blockize + ScheduleState.replace, tvm_intrin.replace_loop_with_call), which the kernels use because
  it works with both versions and also handles padding.
* `Schedule.loop_partition` segfaults on these loop nests (both tvm-ffi versions), so the border /
  interior split that would remove padding tests from the interior is not available; the `LoopPartition`
  pass does nothing here either. GCC -O3 unswitches most of those tests itself.
* The C passes `gcc -std=c99 -Wall -Wextra -Werror` (also under -fsanitize=address,undefined) once cut out;
  `_cleanup` removes declared-but-unused locals should a schedule produce them.
"""
from __future__ import annotations

import dataclasses
import re
from dataclasses import dataclass, field

import numpy as np

from . import carray, gemm_kernels, tvm_intrin

INT8_MIN, INT8_MAX = -128, 127

# Temporaries TVM may leave in the body as C arrays (they live on the MCU stack); more is a schedule bug.
MAX_STACK_BYTES = 1024

_C_IDENT = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


@dataclass
class Kernel:
    """One generated layer kernel.

    `source` is a complete C99 translation-unit fragment: includes, the constant arrays (`static const`,
    named `<name>_w`, `<name>_bias`, ...), and the function. `prototype` is the declaration for a header.
    """

    name: str
    op: str
    in_shape: tuple[int, ...]
    out_shape: tuple[int, ...]
    macs: int
    source: str
    prototype: str
    includes: tuple[str, ...]  # runtime headers the source includes (in runtime/)
    stack_bytes: int  # bytes of local arrays in the function body
    const_bytes: int  # bytes of the constant arrays
    schedule: str
    tir: str = field(repr=False, default="")  # the scheduled TIR, for debugging
    const_source: str = field(repr=False, default="")  # the constant arrays part of `source`
    code_source: str = field(repr=False, default="")   # the functions part of `source` (helpers + kernel)


# ---------------------------------------------------------------------------------------------- lowering

def _tvm():
    """Import TVM lazily: importing it takes a second and only code generation needs it."""
    import tvm  # noqa: F401
    from tvm import s_tir, te, tirx  # noqa: F401
    return tvm


def _unpack_pass():
    """A PrimFunc pass: buffer-var params -> typed pointer params + DeclBuffer (a minimal MakeUnpackedAPI)."""
    tvm = _tvm()
    from tvm import tirx
    from tvm.ir import PointerType, PrimType

    def unpack(func, _mod, _ctx):
        params, decls = [], []
        for p in func.params:
            if not tirx.is_buffer_var(p):
                params.append(p)
                continue
            ptr = tirx.Var(p.name, PointerType(PrimType(p.dtype)))
            params.append(ptr)
            decls.append(tirx.DeclBuffer(p, data=ptr))
        return tirx.PrimFunc(params, tirx.SeqStmt(decls + [func.body]), func.ret_type, func.attrs)

    return tvm.tirx.transform.prim_func_pass(unpack, opt_level=0, name="mcutool.UnpackBufferParams")


def _passes():
    """`default_s_tir_pipeline` of TVM 0.27 minus GPU-only passes, MakePackedAPI and LowerTVMBuiltin."""
    _tvm()
    from tvm import s_tir, tirx

    st, tx = s_tir.transform, tirx.transform
    return [
        st.CanonicalizeLoop(), st.LowerCrossThreadReduction(), st.LowerInitBlock(),
        st.PlanAndUpdateBufferAllocationLocation(), st.ConvertBlocksToOpaque(), st.CompactBufferAllocation(),
        st.LowerMatchBuffer(), st.StmtSimplify(), st.LowerOpaqueBlock(),
        tx.FlattenBuffer(), tx.NarrowDataType(32), st.LoopPartition(), tx.VectorizeLoop(True),
        tx.StorageRewrite(), st.HoistIfThenElse(), tx.UnrollLoop(), st.RenormalizeSplitPattern(),
        tx.StmtSimplify(), tx.RemoveNoOp(), st.RewriteUnsafeSelect(), tx.CommonSubexprElim(),
        tx.VerifyMemory(), tx.AnnotateEntryFunc(),
        _unpack_pass(),
        tx.LowerIntrin(),
    ]


def _lower(func, name: str) -> tuple[str, list[str]]:
    """PrimFunc -> (C body of the function, its parameter names in order)."""
    tvm = _tvm()
    from tvm import tirx

    target = tvm.target.Target("c")
    mod = tvm.IRModule({name: func.with_attr("global_symbol", name)})
    mod = tirx.transform.BindTarget(target.with_host(target))(mod)
    with tvm.transform.PassContext(opt_level=3, config={"tirx.disable_assert": True}):
        mod = tvm.ir.transform.Sequential(_passes())(mod)
        src = tvm.get_global_func("target.build.c")(mod, target).inspect_source()
    m = re.search(r"^TVM_DLL void " + re.escape(name) + r"\(([^)]*)\) \{\n(.*?)\n\}\n", src, re.S | re.M)
    if m is None:
        raise RuntimeError(f"TVM's C output has no plain definition of {name}:\n{src}")
    params = [p.strip().split()[-1].lstrip("*") for p in m.group(1).split(",")]
    body = m.group(2)
    for bad in ("TVMBackend", "TVMFFI", "DLTensor", "TVMAPI", "__tvm"):
        if bad in body:
            raise RuntimeError(f"generated kernel {name} still uses the TVM runtime ({bad}):\n{body}")
    return _cleanup(body), params


_DECL = re.compile(r"^\s*(?:const\s+)?(?:u?int(?:8|16|32|64)_t|int|bool|float|double|void\*?)\s*\*?\s*"
                   r"([A-Za-z_]\w*)\s*(?:\[\d+\])?\s*(?:=\s*(.*))?;\s*$")


def _cleanup(body: str) -> str:
    """Drop locals that are declared and never used (TVM's C fails -Wall -Wextra -Werror on them)."""
    changed = True
    lines = body.split("\n")
    while changed:
        changed = False
        text = "\n".join(lines)
        for i, line in enumerate(lines):
            m = _DECL.match(line)
            if not m:
                continue
            init = m.group(2) or ""
            if "(" in init and re.search(r"[A-Za-z_]\w*\s*\(", init.replace("(int", "").replace("(uint", "")):
                continue  # a call in the initializer may have side effects: keep it
            if len(re.findall(r"\b" + re.escape(m.group(1)) + r"\b", text)) == 1:
                del lines[i]
                changed = True
                break
    return "\n".join(lines)


def _stack_bytes(body: str) -> int:
    sizes = {"int8_t": 1, "uint8_t": 1, "int16_t": 2, "uint16_t": 2, "int32_t": 4, "uint32_t": 4,
             "int64_t": 8, "uint64_t": 8}
    return sum(sizes.get(t, 8) * int(n) for t, n in re.findall(r"^\s*(\w+)\s+\w+\[(\d+)\];", body, re.M))


# ------------------------------------------------------------------------------------- C assembly helpers

_CTYPE = {"int8": "int8_t", "int16": "int16_t", "int32": "int32_t", "int64": "int64_t"}
_CBYTES = {"int8": 1, "int16": 2, "int32": 4, "int64": 8}


def _c_array(cname: str, values: np.ndarray, dtype: str, attr: str = "") -> str:
    vals = np.asarray(values).reshape(-1)
    attr = f" {attr}" if attr else ""
    head = f"static const {_CTYPE[dtype]} {cname}[{vals.size}]{attr}"
    if dtype == "int8" and vals.size >= carray.BYTES_LITERAL_MIN:  # MCU_NONSTRING: runtime/mcu_requant.h
        return f"{head} MCU_NONSTRING =\n    {carray.int8_initializer(vals)};\n"
    return f"{head} = {{\n    {carray.numbers(vals, 16 if dtype == 'int8' else 8)}\n}};\n"


def _assemble(name, op, body, params, consts, in_shape, out_shape, macs, includes, schedule, tir,
              const_attr, helpers="") -> Kernel:
    """Put the includes, the constant arrays and the function together."""
    if params[0] != "in" or params[-1] != "out" or set(params[1:-1]) != set(consts):
        raise RuntimeError(f"unexpected parameter list from TVM: {params}")
    stack = _stack_bytes(body) + _stack_bytes(helpers)
    if stack > MAX_STACK_BYTES:
        raise RuntimeError(f"kernel {name}: the schedule leaves {stack} B of local arrays (limit {MAX_STACK_BYTES})")
    proto = f"void {name}(const int8_t* restrict in, int8_t* restrict out)"
    parts = ["#include <stdint.h>\n"] + [f'#include "{h}"\n' for h in includes] + ["\n"]
    const_bytes = 0
    for cname in params[1:-1]:
        values, dtype = consts[cname]
        parts.append(_c_array(cname, values, dtype, const_attr))
        const_bytes += np.asarray(values).size * _CBYTES[dtype]
    n_head = len(parts)
    if helpers:
        parts.append("\n" + helpers)
    parts.append(f"\nMCU_KERNEL_OPT {proto}\n{{\n{body}\n}}\n")
    n_inc = len(includes) + 2
    return Kernel(name=name, op=op, in_shape=tuple(in_shape), out_shape=tuple(out_shape), macs=int(macs),
                  source="".join(parts), prototype=proto + ";", includes=tuple(includes), stack_bytes=stack,
                  const_bytes=const_bytes, schedule=schedule, tir=tir, const_source="".join(parts[n_inc:n_head]),
                  code_source="".join(parts[n_head:]))


# ---------------------------------------------------------------------------------- argument checking

def _check_common(name, bias, multiplier, shift, n_out, in_zp, out_zp, act_min, act_max):
    if not _C_IDENT.match(name):
        raise ValueError(f"kernel name {name!r} is not a C identifier")
    bias = np.zeros(n_out, np.int64) if bias is None else np.asarray(bias, np.int64).reshape(-1)
    mult = np.broadcast_to(np.asarray(multiplier, np.int64).reshape(-1), (n_out,)).copy()
    shift = np.broadcast_to(np.asarray(shift, np.int64).reshape(-1), (n_out,)).copy()
    if bias.shape != (n_out,):
        raise ValueError(f"{name}: bias has {bias.size} values, the layer has {n_out} output channels")
    if np.any(mult < 0) or np.any(mult > 2**31 - 1):
        raise ValueError(f"{name}: multipliers must be Q31 values in [0, 2^31)")
    if np.any(shift > 31) or np.any(shift < -31):
        raise ValueError(f"{name}: shifts must be in [-31, 31]")
    for v, what in ((in_zp, "input zero point"), (out_zp, "output zero point"),
                    (act_min, "act_min"), (act_max, "act_max")):
        if not INT8_MIN <= int(v) <= INT8_MAX:
            raise ValueError(f"{name}: {what} {v} is outside int8")
    if act_min > act_max:
        raise ValueError(f"{name}: act_min {act_min} > act_max {act_max}")
    return bias, mult, shift


def _fold_bias(name, bias, weights_2d, in_zp):
    """bias - in_zp * sum(w) per output row: the input offset moved out of the inner loop."""
    sums = weights_2d.astype(np.int64).sum(axis=1)
    folded = bias - int(in_zp) * sums
    if np.any(np.abs(folded) > 2**31 - 1):
        c = int(np.argmax(np.abs(folded)))
        raise ValueError(f"{name}: in output channel {c}, its int32 bias {int(bias[c])} minus the input zero "
                         f"point {int(in_zp)} x the sum of its weights {int(sums[c])} is {int(folded[c])}, outside "
                         "int32. The bias is too large for its scale (input scale x weight scale), as a (near-)dead "
                         "channel's is when its weight scale was not raised (TFLite's converter raises it: "
                         "AdjustWeightsForBiasScale); quantize the float model again, or give it to mcutool with "
                         "--calib")
    return folded


def _out_size(size, k, stride, dilation, pad_a, pad_b):
    return (size + pad_a + pad_b - dilation * (k - 1) - 1) // stride + 1


class _Requant:
    """The output stage of a layer: its constants (TE placeholders + C arrays) and the TIR call.

    Right shifts >= 1 on every channel (the normal case) use `mcu_requant_fast_s8` (one SMLAL and one shift,
    per-channel `round` = 2^30 + 2^(30+e) (+ zp * 2^(31+e), the output zero point, when every e <= 23) and
    `shift_hi` = e - 1, see runtime/mcu_requant.h); otherwise the
    literal TFLite sequence `mcu_requant_s8`. Per-tensor values are inlined as immediates.
    """

    def __init__(self, name, mult, shift, out_zp, act_min, act_max):
        from tvm import te
        n = mult.size
        self.fast = bool(np.all(shift <= -1))
        self.per_channel = bool(np.any(mult != mult[0]) or np.any(shift != shift[0]))
        self.zp, self.lo, self.hi = int(out_zp), int(act_min), int(act_max)
        if self.fast:
            e = -shift
            # the output zero point rides in the rounding constant when that stays well inside int64
            # (zp * 2^(31+e) added before the division by 2^(31+e) adds exactly zp): one ADD less per output
            fold = bool(np.all(e <= 23))
            round_ = (1 << 30) + (1 << (30 + e)) + (self.zp << (31 + e) if fold else 0)
            self.zp = 0 if fold else self.zp
            cols = {"mult": (mult, "int32"), "round": (round_, "int64"), "shift_hi": (e - 1, "int32")}
        else:
            cols = {"mult": (mult, "int32"), "shift": (shift, "int32")}
        self.consts, self.args, self.values = {}, [], []
        for key, (vals, dtype) in cols.items():
            if self.per_channel:
                ph = te.placeholder((n,), dtype, name=f"{name}_{key}")
                self.args.append(ph)
                self.values.append(ph)
                self.consts[f"{name}_{key}"] = (np.asarray(vals, np.int64), dtype)
            else:
                self.values.append(("const", int(np.asarray(vals).reshape(-1)[0]), dtype))

    def expr(self, acc, bias, o):
        from tvm import tirx
        vals = [v[o] if not isinstance(v, tuple) else tirx.const(v[1], v[2]) for v in self.values]
        fname = "mcu_requant_fast_s8" if self.fast else "mcu_requant_s8"
        return tirx.call_extern("int32", fname, acc + bias[o], *vals, self.zp, self.lo,
                                self.hi).astype("int8")


# ------------------------------------------------------------------------------------------------- conv

def conv2d_s8(name, in_shape, weights, bias, multiplier, shift, *, input_zero_point, output_zero_point,
              act_min=INT8_MIN, act_max=INT8_MAX, stride=(1, 1), dilation=(1, 1), pads=(0, 0, 0, 0),
              schedule="auto", const_attr="", tuning=None, op_label=None) -> Kernel:
    """int8 conv2d, NHWC input `in_shape` (1, H, W, I), weights (O, KH, KW, I) int8 per output channel.

    `multiplier`/`shift`: per output channel (or one value) Q31 multiplier and shift (TFLite's
    QuantizeMultiplier of s_in * s_w[o] / s_out). `pads` = (top, left, bottom, right); padded positions
    count as `input_zero_point`. `act_min`/`act_max` is the fused activation's clamp in output units.
    `schedule`: "portable" (plain C loops, input offset folded into the bias), "smlad" (the input-channel
    reduction is a call of a runtime/mcu_dot_s8.h micro-kernel for up to 4 output channels at once; needs
    I % 4 == 0; plain C where the core has no DSP extension), "smlad_w16" (the same with the weights stored
    as pre-widened int16: twice the weight flash, ~20 % fewer instructions) or "auto" (smlad when
    I % 4 == 0, else portable).
    `const_attr` is appended to every constant array (e.g. a section attribute for external flash).
    `tuning` overrides knobs of `TUNING` (channel_block for the SIMD schedules; unroll_ic, unroll_taps for
    the portable one).
    """
    weights = np.asarray(weights)
    if weights.dtype != np.int8 or weights.ndim != 4:
        raise ValueError(f"{name}: conv2d weights must be int8 (O, KH, KW, I), got {weights.dtype} {weights.shape}")
    n, _h, _w, c = (int(d) for d in in_shape)
    o = weights.shape[0]
    if n != 1 or weights.shape[3] != c:
        raise ValueError(f"{name}: input {tuple(in_shape)} does not match weights {weights.shape} (batch must be 1)")
    bias, mult, shift = _check_common(name, bias, multiplier, shift, o, input_zero_point, output_zero_point,
                                      act_min, act_max)
    from . import fast_kernels
    if schedule in ("auto", "auto_w16") and fast_kernels.applies_im2col(weights, bias, mult, shift, input_zero_point,
                                                                        output_zero_point, dilation):
        # kernel rows that are not whole words (3x3 over 3 channels): im2col per pixel (codegen/fast_kernels.py)
        return fast_kernels.conv2d_im2col_s8(name, op_label or "conv2d", tuple(in_shape), weights, bias, mult,
                                             shift, input_zero_point=input_zero_point,
                                             output_zero_point=output_zero_point, act_min=act_min,
                                             act_max=act_max, stride=stride, pads=pads, const_attr=const_attr)
    # fewer than 4 (or not a multiple of 4) input channels: with dilation 1 along x, a kernel row's kw * c
    # taps are contiguous and the SIMD schedules reduce over whole rows instead
    row = c % 4 != 0 and int(dilation[1]) == 1
    shared = schedule in ("auto", "auto_w16")  # the shared kernel (gemm_kernels) where it applies, on DSP cores
    schedule = _pick_schedule(name, schedule, weights.shape[2] * c if row else c)
    if (schedule in SIMD_SCHEDULES and weights.shape[1:3] == (1, 1) and tuple(int(v) for v in stride) == (1, 1)
            and not any(pads) and o % 4 == 0 and dict(TUNING, **(tuning or {}))["row_pairs"]):
        # a 1x1 conv with stride 1 and no padding is a fully connected layer over the H*W pixels, whose SIMD
        # schedule takes two pixels x four channels per micro-kernel call; a single pixel folds the input offset
        # too, so the band kernels of one in-place layer (codegen/row_inplace.py) share one set of constants
        k = fully_connected_s8(name, (_h * _w, c), weights.reshape(o, c), bias, mult, shift,
                               input_zero_point=input_zero_point, output_zero_point=output_zero_point,
                               act_min=act_min, act_max=act_max, schedule=schedule, const_attr=const_attr,
                               tuning=tuning, fold_offset=True)
        k = dataclasses.replace(k, op=op_label or "conv2d", in_shape=tuple(int(d) for d in in_shape),
                                out_shape=(1, _h, _w, o))
    else:
        k = _conv_like(name, op_label or "conv2d", tuple(int(d) for d in in_shape), weights, bias, mult, shift,
                       input_zero_point, output_zero_point, act_min, act_max, stride, dilation, pads,
                       None, schedule, const_attr, tuning)
    if shared and fast_kernels.applies_pointwise_small(weights, bias, mult, shift, input_zero_point,
                                                       output_zero_point, pads, dilation):
        # a 1x1 conv over 4..12 input channels: its inputs widened into registers (codegen/fast_kernels.py)
        g = fast_kernels.pointwise_small(name, in_shape, weights, bias, mult, shift,
                                         input_zero_point=input_zero_point, output_zero_point=output_zero_point,
                                         act_min=act_min, act_max=act_max, stride=stride, out_hw=k.out_shape[1:3],
                                         const_attr=const_attr)
        k = gemm_kernels.merge(k, g)
    elif shared:
        g = gemm_kernels.gemm_layer(name, in_shape, weights, bias, mult, shift, in_zp=input_zero_point,
                                    out_zp=output_zero_point, act_min=act_min, act_max=act_max, stride=stride,
                                    dilation=dilation, pads=pads, out_hw=k.out_shape[1:3], const_attr=const_attr)
        k = gemm_kernels.merge(k, g) if g is not None else k
    return k


def depthwise_conv2d_s8(name, in_shape, weights, bias, multiplier, shift, *, input_zero_point,
                        output_zero_point, depth_multiplier=1, act_min=INT8_MIN, act_max=INT8_MAX,
                        stride=(1, 1), dilation=(1, 1), pads=(0, 0, 0, 0), schedule="auto",
                        const_attr="", tuning=None) -> Kernel:
    """int8 depthwise conv2d, input (1, H, W, C), weights (1, KH, KW, C * depth_multiplier) (TFLite's layout).

    Output channel `oc` reads input channel `oc // depth_multiplier`. Other arguments as `conv2d_s8`.
    Schedules: "portable"; with depth multiplier 1 and C % 4 == 0 also "smlad" / "smlad_w16" (4 channels
    per tap: SXTAB16 widens channels 0,2 and 1,3 of one input word, SMLABB/SMLATT accumulate each lane into
    its own channel; "auto" picks "smlad"). One input channel: compiled as the conv it is (`conv2d_s8` with
    weights (m, KH, KW, 1)), so it gets the conv schedules (row mode).
    """
    weights = np.asarray(weights)
    if weights.dtype != np.int8 or weights.ndim != 4 or weights.shape[0] != 1:
        raise ValueError(f"{name}: depthwise weights must be int8 (1, KH, KW, C*m), "
                         f"got {weights.dtype} {weights.shape}")
    n, _h, _w, c = (int(d) for d in in_shape)
    oc = weights.shape[3]
    if n != 1 or oc != c * depth_multiplier:
        raise ValueError(f"{name}: input {tuple(in_shape)} and multiplier {depth_multiplier} do not match "
                         f"weights {weights.shape} (batch must be 1)")
    bias, mult, shift = _check_common(name, bias, multiplier, shift, oc, input_zero_point, output_zero_point,
                                      act_min, act_max)
    if c == 1:  # one input channel: every output channel reads the same input, an ordinary conv
        return conv2d_s8(name, in_shape, np.ascontiguousarray(weights.transpose(3, 1, 2, 0)), bias, mult, shift,
                         input_zero_point=input_zero_point, output_zero_point=output_zero_point,
                         act_min=act_min, act_max=act_max, stride=stride, dilation=dilation, pads=pads,
                         schedule=schedule, const_attr=const_attr, tuning=tuning, op_label="depthwise_conv2d")
    from . import fast_kernels
    if schedule in ("auto", "auto_w16") and fast_kernels.applies_depthwise(
            weights, bias, mult, shift, input_zero_point, output_zero_point, depth_multiplier, stride, dilation):
        # 3x3, stride 1 or 2: the hand-written kernel of codegen/fast_kernels.py (no border tests, SMLAD)
        return fast_kernels.depthwise_3x3_s8(name, in_shape, weights, bias, mult, shift,
                                             input_zero_point=input_zero_point, output_zero_point=output_zero_point,
                                             act_min=act_min, act_max=act_max, stride=stride, pads=pads,
                                             const_attr=const_attr)
    simd_ok = depth_multiplier == 1 and c % 4 == 0
    if schedule in ("auto", "auto_w16"):
        schedule = ("smlad_w16" if schedule == "auto_w16" else "smlad") if simd_ok else "portable"
    if schedule not in ("portable",) + SIMD_SCHEDULES:
        raise ValueError(f"{name}: unknown schedule {schedule!r} (portable, smlad, smlad_w16, auto)")
    if schedule != "portable" and not simd_ok:
        raise ValueError(f"{name}: depthwise schedule {schedule!r} needs depth multiplier 1 and channels % 4 == 0 "
                         f"(got {depth_multiplier}, {c})")
    return _conv_like(name, "depthwise_conv2d", tuple(int(d) for d in in_shape), weights, bias, mult, shift,
                      input_zero_point, output_zero_point, act_min, act_max, stride, dilation, pads,
                      depth_multiplier, schedule, const_attr, tuning)


# Schedule knobs, chosen from instruction counts on Cortex-M7 (QEMU mps2-an500, -icount, arm-none-eabi-gcc
# 12.2 -O3; the table in the module docstring):
#   channel_block  output channels per micro-kernel call in the SIMD schedules (4, else 2, else 1): 4 is as
#                  fast as 2 (0.473 vs 0.486 MAC/instr int8, 0.592 vs 0.584 int16) with 40 % of the code
#   unroll_ic      portable: split the input-channel loop by 4 and unroll it (1x1 conv: 0.19 -> 0.25)
#   unroll_taps    portable: unroll the kernel-window loops when they are the inner reduction (depthwise,
#                  or fewer than 4 input channels) and have at most 64 taps; "auto", True, "kw", False
TUNING = {"channel_block": 4, "unroll_ic": 4, "unroll_taps": "auto", "row_pairs": True}


SIMD_SCHEDULES = ("smlad", "smlad_w16")


def _pick_schedule(name, schedule, reduce_len):
    if schedule in ("auto", "auto_w16"):
        if reduce_len % 4:
            return "portable"
        return "smlad_w16" if schedule == "auto_w16" else "smlad"
    if schedule not in ("portable",) + SIMD_SCHEDULES:
        raise ValueError(f"{name}: unknown schedule {schedule!r} (portable, smlad, smlad_w16, auto)")
    if schedule != "portable" and reduce_len % 4:
        raise ValueError(f"{name}: schedule {schedule!r} needs input channels % 4 == 0 (got {reduce_len})")
    return schedule


def _widen_weights(w):
    """int8 weights -> int16 in SXTB16 lane order along the last axis (groups w0 w1 w2 w3 -> w0 w2 w1 w3)."""
    shape = w.shape
    g = w.astype(np.int16).reshape(shape[:-1] + (shape[-1] // 4, 4))
    return g[..., [0, 2, 1, 3]].reshape(shape)


def _channel_block(n_out, tuning):
    """Output channels per micro-kernel call: the tuned block size, or the largest of 4, 2, 1 dividing n_out."""
    want = dict(TUNING, **(tuning or {}))["channel_block"]
    return next(b for b in (4, 2, 1) if b <= want and n_out % b == 0)


def _unroll_acc(sch, init_blk, out_blk, blocked=True):
    """Unroll the accumulator init and requantization loops over a channel block, so that every access to the
    few accumulators has a constant index and GCC keeps them in registers (not in a stack array)."""
    if blocked:
        sch.unroll(sch.get_loops(init_blk)[-1])
        sch.unroll(sch.get_loops(out_blk)[-1])


def _conv_like(name, op, in_shape, weights, bias, mult, shift, in_zp, out_zp, act_min, act_max, stride,
               dilation, pads, depth_multiplier, schedule, const_attr, tuning=None):
    _tvm()
    from tvm import s_tir, te, tirx

    _, h, w, c = in_shape
    sh, sw = (int(v) for v in stride)
    dh, dw = (int(v) for v in dilation)
    pt, pl, pb, pr = (int(v) for v in pads)
    depthwise = depth_multiplier is not None
    _, kh, kw, _ = weights.shape
    n_out = weights.shape[3] if depthwise else weights.shape[0]
    oh = _out_size(h, kh, sh, dh, pt, pb)
    ow = _out_size(w, kw, sw, dw, pl, pr)
    if oh <= 0 or ow <= 0 or min(sh, sw, dh, dw) < 1 or min(pt, pl, pb, pr) < 0:
        raise ValueError(f"{name}: bad geometry: input {in_shape}, kernel {kh}x{kw}, stride {stride}, "
                         f"dilation {dilation}, pads {pads}")
    simd = schedule in SIMD_SCHEDULES
    w_dtype = "int16" if schedule == "smlad_w16" else "int8"
    w_rows = weights.reshape(kh * kw, n_out).T if depthwise else weights.reshape(n_out, -1)
    # portable: x * w with the input offset folded into the bias (padding reads as in_zp);
    # smlad: (x - in_zp) * w inside the micro-kernel (free in SXTAB16), padded taps skipped
    bias_c = bias if simd else _fold_bias(name, bias, w_rows, in_zp)
    rq = _Requant(name, mult, shift, out_zp, act_min, act_max)

    X = te.placeholder((1, h, w, c), "int8", name="in")
    # smlad_w16: the weights are int16 in the micro-kernel's lane order; the TE body below is then only the
    # loop skeleton (its update block is replaced by the micro-kernel call before lowering)
    W = te.placeholder(weights.shape, w_dtype, name=f"{name}_w")
    B = te.placeholder((n_out,), "int32", name=f"{name}_bias")
    w_c = weights
    if w_dtype == "int16":  # lane order along each kernel row (kw * c values; groups of 4 never straddle rows)
        w_c = _widen_weights(weights.reshape(weights.shape[0], kh, -1)).reshape(weights.shape)
    consts = {f"{name}_w": (w_c, w_dtype), f"{name}_bias": (bias_c, "int32"), **rq.consts}
    rh = te.reduce_axis((0, kh), "kh")
    rw = te.reduce_axis((0, kw), "kw")

    def tap(yo, xo, ky, kx, ch, wv):
        """The tap's product; padding as TFLite defines it (the input zero point)."""
        iy, ix = yo * sh + ky * dh - pt, xo * sw + kx * dw - pl
        conds = ([iy >= 0] if pt else []) + ([iy < h] if pb else []) + ([ix >= 0] if pl else []) + \
                ([ix < w] if pr else [])
        wv = wv.astype("int32")
        if simd:  # (x - zp) * w, 0 in the padding; the form the micro-kernel computes
            prod = (X[0, iy, ix, ch].astype("int32") + (-int(in_zp))) * wv
            return te.if_then_else(tirx.all(*conds), prod, 0) if conds else prod
        v = X[0, iy, ix, ch]
        if conds:
            v = te.if_then_else(tirx.all(*conds), v, tirx.const(int(in_zp), "int8"))
        return v.astype("int32") * wv

    if depthwise:
        m = depth_multiplier
        acc = te.compute((1, oh, ow, n_out), lambda _n, y, x, oc: te.sum(
            tap(y, x, rh, rw, oc // m, W[0, rh, rw, oc]), axis=[rh, rw]), name="acc")
    else:
        rc = te.reduce_axis((0, c), "ic")
        acc = te.compute((1, oh, ow, n_out), lambda _n, y, x, oc: te.sum(
            tap(y, x, rh, rw, rc, W[oc, rh, rw, rc]), axis=[rh, rw, rc]), name="acc")
    out = te.compute((1, oh, ow, n_out), lambda _n, y, x, oc: rq.expr(acc[_n, y, x, oc], B, oc), name="out")

    args = [X, W, B] + rq.args + [out]
    sch = s_tir.Schedule(te.create_prim_func(args))
    blk_acc, blk_out = sch.get_sblock("acc"), sch.get_sblock("out")
    loops = sch.get_loops(blk_acc)
    includes = ["mcu_requant.h"]
    if not simd:
        sch.reverse_compute_at(blk_out, loops[3])  # requantize each accumulator right after its reduction
        sch.decompose_reduction(blk_acc, loops[4])  # init outside the reduction loops: acc is a scalar
        t = dict(TUNING, **(tuning or {}))
        taps = t["unroll_taps"]
        if taps == "auto":
            taps = (depthwise or c < 4) and kh * kw <= 64
        if taps:
            sch.unroll(loops[5])
            if taps != "kw":
                sch.unroll(loops[4])
        if not depthwise and t.get("unroll_ic") and c % t["unroll_ic"] == 0 and c > t["unroll_ic"]:
            _ic_o, ic_i = sch.split(loops[6], [None, t["unroll_ic"]])
            sch.unroll(ic_i)
        elif not depthwise and t.get("unroll_ic") and c <= t["unroll_ic"]:
            sch.unroll(loops[6])
    elif depthwise:  # 4 channels per tap: SXTAB16 + SMLABB/SMLATT, one accumulator per channel
        includes.append("mcu_dot_s8.h")
        _n, _y, _x, o_loop, kh_loop, kw_loop = loops
        o_loop, o_in = sch.split(o_loop, [None, 4])
        sch.reorder(o_loop, kh_loop, kw_loop, o_in)
        sch.reverse_compute_at(blk_out, o_loop)
        _unroll_acc(sch, sch.decompose_reduction(blk_acc, kh_loop), blk_out)
        geom = dict(h=h, w=w, stride=(sh, sw), dilation=(dh, dw), pads=(pt, pl, pb, pr), in_name="in",
                    w_name=f"{name}_w", x_offset=-int(in_zp))
        tvm_intrin.replace_loop_with_call(sch, o_in, tvm_intrin.dw_call(geom))
        if dict(TUNING, **(tuning or {}))["unroll_taps"] and kh * kw <= 64:
            sch.unroll(kw_loop)
            sch.unroll(kh_loop)
    elif c % 4:  # row mode: the (kw, ic) taps of a kernel row are contiguous (dilation 1 along x)
        includes.append("mcu_dot_s8.h")
        _n, _y, _x, o_loop, kh_loop, kw_loop, ic_loop = loops
        block = _channel_block(n_out, tuning)
        o_in = None
        if block > 1:
            o_loop, o_in = sch.split(o_loop, [None, block])
            sch.reorder(o_loop, kh_loop, o_in, kw_loop, ic_loop)
        sch.reverse_compute_at(blk_out, o_loop)
        _unroll_acc(sch, sch.decompose_reduction(blk_acc, kh_loop), blk_out, block > 1)
        geom = dict(h=h, w=w, stride=(sh, sw), dilation=(dh, dw), pads=(pt, pl, pb, pr), c=c, kh=kh, kw=kw,
                    in_name="in", w_name=f"{name}_w", x_offset=-int(in_zp))
        tvm_intrin.replace_loop_with_call(sch, o_in if block > 1 else kw_loop,
                                          tvm_intrin.conv_row_call(geom, block))
    else:
        includes.append("mcu_dot_s8.h")
        _n, _y, _x, o_loop, kh_loop, kw_loop, ic_loop = loops
        block = _channel_block(n_out, tuning)
        o_in = None
        if block > 1:  # `block` output channels per micro-kernel call share the input vector
            o_loop, o_in = sch.split(o_loop, [None, block])
            sch.reorder(o_loop, kh_loop, kw_loop, o_in, ic_loop)
        sch.reverse_compute_at(blk_out, o_loop)
        sch.decompose_reduction(blk_acc, kh_loop)
        geom = dict(h=h, w=w, stride=(sh, sw), dilation=(dh, dw), pads=(pt, pl, pb, pr), c=c, kh=kh, kw=kw,
                    in_name="in", w_name=f"{name}_w", x_offset=-int(in_zp))
        tvm_intrin.replace_loop_with_call(sch, o_in if block > 1 else ic_loop, tvm_intrin.conv_dot_call(geom, block))
    func = sch.mod["main"]
    body, params = _lower(func, name)
    macs = oh * ow * n_out * kh * kw * (1 if depthwise else c)
    return _assemble(name, op, body, params, consts, in_shape, (1, oh, ow, n_out), macs, includes, schedule,
                     func.script(), const_attr)


# -------------------------------------------------------------------------------------- fully connected

def fully_connected_s8(name, in_shape, weights, bias, multiplier, shift, *, input_zero_point,
                       output_zero_point, act_min=INT8_MIN, act_max=INT8_MAX, schedule="auto",
                       const_attr="", tuning=None, fold_offset=False) -> Kernel:
    """int8 fully connected: input (N, I) (any shape with I elements per row), weights (O, I) -> (N, O).

    Per-tensor (TFLite) or per-channel multiplier/shift. Schedules as `conv2d_s8` ("smlad" needs I % 4 == 0).
    `fold_offset`: fold the input offset into the bias even when there is a single row (as the row-pair
    schedule does), so the constants do not depend on N.
    """
    weights = np.asarray(weights)
    if weights.dtype != np.int8 or weights.ndim != 2:
        raise ValueError(f"{name}: fully connected weights must be int8 (O, I), got {weights.dtype} {weights.shape}")
    o, i = weights.shape
    total = int(np.prod(in_shape))
    if total % i:
        raise ValueError(f"{name}: input {tuple(in_shape)} is not a multiple of {i} features")
    n = total // i
    bias, mult, shift = _check_common(name, bias, multiplier, shift, o, input_zero_point, output_zero_point,
                                      act_min, act_max)
    shared = schedule in ("auto", "auto_w16")  # the shared kernel (gemm_kernels) where it applies, on DSP cores
    schedule = _pick_schedule(name, schedule, i)
    simd = schedule in SIMD_SCHEDULES
    # two input rows per micro-kernel call (the pixels of a 1x1 conv): each weight word serves two rows; the
    # input offset is folded into the bias (SXTB16 instead of SXTAB16 frees a register for the 8 accumulators)
    pairs = simd and n >= 2 and o % 4 == 0 and dict(TUNING, **(tuning or {}))["row_pairs"]
    _tvm()
    from tvm import s_tir, te

    rq = _Requant(name, mult, shift, output_zero_point, act_min, act_max)
    w_dtype = "int16" if schedule == "smlad_w16" else "int8"
    W = te.placeholder((o, i), w_dtype, name=f"{name}_w")
    B = te.placeholder((o,), "int32", name=f"{name}_bias")
    fold = not simd or pairs or fold_offset
    consts = {f"{name}_w": (_widen_weights(weights) if w_dtype == "int16" else weights, w_dtype),
              f"{name}_bias": (_fold_bias(name, bias, weights, input_zero_point) if fold else bias, "int32"),
              **rq.consts}
    x_off = -int(input_zero_point) if not fold else 0
    includes = ["mcu_requant.h"] + (["mcu_dot_s8.h"] if simd else [])

    def build(fname, rows, pair_rows):
        """Schedule and lower the layer for `rows` input rows as C function `fname`: (body, params, tir)."""
        X = te.placeholder((rows, i), "int8", name="in")
        rk = te.reduce_axis((0, i), "k")
        acc = te.compute((rows, o), lambda b, oc: te.sum(
            (X[b, rk].astype("int32") + x_off) * W[oc, rk].astype("int32"), axis=rk), name="acc")
        out = te.compute((rows, o), lambda b, oc: rq.expr(acc[b, oc], B, oc), name="out")
        sch = s_tir.Schedule(te.create_prim_func([X, W, B] + rq.args + [out]))
        blk_acc, blk_out = sch.get_sblock("acc"), sch.get_sblock("out")
        b_loop, o_loop, k_loop = sch.get_loops(blk_acc)
        if not simd:
            sch.reverse_compute_at(blk_out, o_loop)
            sch.decompose_reduction(blk_acc, k_loop)
        elif pair_rows:  # rows is even here
            b_loop, b_in = sch.split(b_loop, [None, 2])
            o_loop, o_in = sch.split(o_loop, [None, 4])
            sch.reorder(b_loop, o_loop, b_in, o_in, k_loop)
            sch.reverse_compute_at(blk_out, o_loop)
            init = sch.decompose_reduction(blk_acc, b_in)
            for blk in (init, blk_out):
                for lp in sch.get_loops(blk)[-2:]:
                    sch.unroll(lp)
            tvm_intrin.replace_loop_with_call(sch, b_in, tvm_intrin.fc_pair_call(i, "in", f"{name}_w"))
        else:
            block = _channel_block(o, tuning)
            o_in = None
            if block > 1:
                o_loop, o_in = sch.split(o_loop, [None, block])
            sch.reverse_compute_at(blk_out, o_loop)
            init = sch.decompose_reduction(blk_acc, o_in if block > 1 else k_loop)
            if block > 1 and pairs:
                _unroll_acc(sch, init, blk_out)
            tvm_intrin.replace_loop_with_call(sch, o_in if block > 1 else k_loop,
                                              tvm_intrin.fc_dot_call(i, "in", f"{name}_w", x_off, block))
        func = sch.mod["main"]
        return _lower(func, fname) + (func.script(),)

    helpers = ""
    if pairs and n % 2:  # an odd row count: the pairs, then the last row on its own (same constants)
        body_p, params, tir = build(f"{name}_pairs", n - 1, True)
        body_t, params_t, tir_t = build(f"{name}_last", 1, False)
        if params_t != params:
            raise RuntimeError(f"{name}: parameter lists differ: {params} vs {params_t}")
        sig = "(const int8_t* restrict in, int8_t* restrict out)"
        helpers = (f"MCU_KERNEL_OPT static void {name}_pairs{sig}\n{{\n{body_p}\n}}\n\n"
                   f"MCU_KERNEL_OPT static void {name}_last{sig}\n{{\n{body_t}\n}}\n")
        body = f"  {name}_pairs(in, out);\n  {name}_last(in + {(n - 1) * i}, out + {(n - 1) * o});"
        tir += "\n" + tir_t
    else:
        body, params, tir = build(name, n, pairs)
    k = _assemble(name, "fully_connected", body, params, consts, tuple(in_shape), (n, o), n * o * i,
                  includes, schedule, tir, const_attr, helpers)
    from . import fast_kernels
    if shared and fast_kernels.applies_fc_w16(weights, bias, mult, shift, input_zero_point, output_zero_point):
        # a small layer: int16 weights, the input row widened once (codegen/fast_kernels.py)
        k = gemm_kernels.merge(k, fast_kernels.fc_w16(name, n, weights, bias, mult, shift,
                                                      input_zero_point=input_zero_point,
                                                      output_zero_point=output_zero_point, act_min=act_min,
                                                      act_max=act_max, const_attr=const_attr))
    elif shared:
        g = gemm_kernels.gemm_layer(name, (1, 1, n, i), weights.reshape(o, 1, 1, i), bias, mult, shift,
                                    in_zp=input_zero_point, out_zp=output_zero_point, act_min=act_min,
                                    act_max=act_max, out_hw=(1, n), const_attr=const_attr, fully_connected=True)
        k = gemm_kernels.merge(k, g) if g is not None else k
    return k


# ------------------------------------------------------------------------------------------- from the IR

# "auto" in kernel_for_op stores the weights of the SIMD schedules pre-widened to int16 ("smlad_w16": ~20 %
# fewer instructions, twice the weight flash) when the model's conv / depthwise / FC weights total at most
# this many bytes (int8): a function of the model only, doubling at most 64 KB, which every board supported
# here can hold next to the code.
W16_AUTO_MAX_WEIGHT_BYTES = 64 * 1024


def _model_weight_bytes(graph) -> int:
    total = 0
    for op in graph.ops:
        if op.kind in ("conv2d", "depthwise_conv2d", "fully_connected") and len(op.inputs) > 1:
            total += int(np.prod(graph.tensor(op.inputs[1]).shape))
    return total


def kernel_for_op(graph, op, name: str | None = None, schedule: str = "auto", const_attr: str = "") -> Kernel:
    """The kernel of one conv2d / depthwise_conv2d / fully_connected op of a `mcutool.ir.Graph`.

    int8 input and output, int8 weights with zero point 0 (TFLite's spec), optional int32 bias. The
    constants TFLite's Prepare computes (multipliers and shifts from the float32 scales, the fused
    activation's clamp) come from mcutool.reference, the one place that arithmetic is written.
    """
    build = layer_builder(graph, op, name, schedule, const_attr)
    x_t, out_t = graph.tensor(op.inputs[0]), graph.tensor(op.outputs[0])
    k = build(x_t.shape, None if op.kind == "fully_connected" else tuple(op.attrs.pads))
    same = k.out_shape == out_t.shape
    if op.kind == "fully_connected":  # keep_num_dims: (..., out_c) holds the same rows as the kernel's (rows, out_c)
        same = int(np.prod(k.out_shape)) == out_t.size and k.out_shape[-1] == out_t.shape[-1]
    if not same:
        raise ValueError(f"op {op.name!r}: the geometry gives {k.out_shape}, the output tensor is {out_t.shape}")
    return k


def layer_builder(graph, op, name: str | None = None, schedule: str = "auto", const_attr: str = ""):
    """`build(in_shape, pads) -> Kernel`: the kernel of `op` (its constants, quantization and schedule as
    `kernel_for_op` chooses them) for an input of `in_shape` padded by `pads` (top, left, bottom, right).
    The in-place row kernels (codegen/row_inplace.py) build one kernel per band of input rows with it; every
    band's kernel has the same constant arrays (they do not depend on the geometry)."""
    name = name or "mcu_" + re.sub(r"\W", "_", op.name)
    w, bias, mult, shift, qp = layer_quant(graph, op)
    if schedule == "auto" and _model_weight_bytes(graph) <= W16_AUTO_MAX_WEIGHT_BYTES:
        schedule = "auto_w16"  # a small model: the int16 pre-widened weights fit any board's flash
    common = dict(**qp, schedule=schedule, const_attr=const_attr)
    a = op.attrs

    def build(in_shape, pads) -> Kernel:
        if op.kind == "fully_connected":
            return fully_connected_s8(name, in_shape, w, bias, mult, shift, **common)
        geometry = dict(stride=tuple(a.stride), dilation=tuple(a.dilation), pads=tuple(pads))
        if op.kind == "depthwise_conv2d":
            return depthwise_conv2d_s8(name, in_shape, w, bias, mult, shift, depth_multiplier=a.depth_multiplier,
                                       **geometry, **common)
        return conv2d_s8(name, in_shape, w, bias, mult, shift, **geometry, **common)

    return build


def layer_quant(graph, op, weight_dtype: str = "int8"):
    """(weights, bias or None, multipliers, shifts, dict(input/output zero points, act_min, act_max)) of a conv2d /
    depthwise_conv2d / fully_connected op with int8 input and output and `weight_dtype` weights (their int8
    values: an int4 tensor's data holds them unpacked)."""
    from mcutool import reference as ref

    if op.kind not in ("conv2d", "depthwise_conv2d", "fully_connected"):
        raise ValueError(f"op {op.name!r}: no TVM kernel for {op.kind}")
    x_t, w_t, out_t = graph.tensor(op.inputs[0]), graph.tensor(op.inputs[1]), graph.tensor(op.outputs[0])
    b_t = graph.tensor(op.inputs[2]) if len(op.inputs) > 2 and op.inputs[2] else None
    if (x_t.dtype, w_t.dtype, out_t.dtype) != ("int8", weight_dtype, "int8") or None in (x_t.quant, w_t.quant,
                                                                                            out_t.quant):
        raise ValueError(f"op {op.name!r}: the TVM kernels need quantized int8 input, weights and output")
    if np.any(w_t.quant.zero_point != 0) or (b_t is not None and b_t.dtype != "int32"):
        raise ValueError(f"op {op.name!r}: weights must be symmetric (zero point 0) and the bias int32")
    x_s, x_zp = ref.f32(x_t.quant.scale[0]), int(x_t.quant.zero_point[0])
    o_s, o_zp = ref.f32(out_t.quant.scale[0]), int(out_t.quant.zero_point[0])
    lo, hi = ref.activation_range(op.attrs.activation, o_s, o_zp, "int8")
    mult, shift = ref.weighted_op_multipliers(op.kind, x_t, w_t, out_t, op.attrs.rounding)
    bias = None if b_t is None else np.asarray(b_t.data, np.int64)
    w = np.asarray(w_t.data).astype(np.int8)
    return w, bias, mult, shift, dict(input_zero_point=x_zp, output_zero_point=o_zp, act_min=lo, act_max=hi)
