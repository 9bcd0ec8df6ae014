"""Map int8 channel reductions of TVM schedules onto the micro-kernels of runtime/mcu_dot_s8.h.

The SIMD schedules ("smlad", "smlad_w16") compute, per output and kernel tap, a dot product over input
channels, for B = 1, 2 or 4 output channels whose weight rows are S apart:

    acc      += sum_k (x[k] + x_offset) * w[k]                 -> mcu_dot_s8(&x, &w, K, x_offset, acc)
    acc[0:B] += sum_k (x[k] + x_offset) * w[j*S + k], j < B    -> mcu_dotB_s8(&x, &w, S, K, x_offset, &acc)

(x_offset = -input zero point; SXTAB16 adds it for free; `_w16` variants read int16 weights). Two ways to
put the call into the loop nest:

* `replace_loop_with_call` -- "tensorize by construction": `sch.blockize(loop)`, then swap the block's body
  for the call (`ScheduleState.replace`). Used by tvm_kernels: it works with every apache-tvm-ffi, and for a
  padded conv the body becomes `if (tap inside the input) acc = mcu_dot_s8(...)`, which no fixed
  TensorIntrin description can express (the padding test depends on the outer loop variables).
* `dot_intrin` / `dot2_intrin` -- the same micro-kernels as real `s_tir.TensorIntrin`s (TVMScript
  desc + impl; `sch.tensorize(loop, name)` pattern-matches the desc). Works on unpadded layers, and
  only with apache-tvm-ffi 0.1.14.post0: with 0.1.15.post2 (what pip resolves for apache-tvm 0.27.0.post1
  today) `Schedule.tensorize` segfaults, because it deep-copies the intrinsic through the JSON graph
  serializer and that crashes on any TIR node (`tvm_ffi.serialization.to_json_graph_str(tirx.const(1))`
  is enough). `tensorize_works()` probes for it in a child process.
"""
from __future__ import annotations

_REGISTERED: set[str] = set()


# ------------------------------------------------------------------------------ real TensorIntrins

def dot_intrin(k: int, x_offset: int) -> str:
    """Register (once) the length-`k` dot-product intrinsic with input offset `x_offset`; return its name."""
    name = f"mcu_dot_s8_k{k}_off{x_offset}".replace("-", "m")
    if name in _REGISTERED:
        return name
    from tvm import s_tir
    from tvm.script import tirx as T

    @T.prim_func(s_tir=True)
    def desc(a: T.handle, b: T.handle, c: T.handle) -> None:
        A = T.match_buffer(a, (k,), "int8", offset_factor=1)
        B = T.match_buffer(b, (k,), "int8", offset_factor=1)
        C = T.match_buffer(c, (1,), "int32", offset_factor=1)
        with T.sblock("root"):
            T.reads(C[0], A[0:k], B[0:k])
            T.writes(C[0])
            for i in T.serial(0, k):
                with T.sblock("update"):
                    vi = T.axis.remap("R", [i])
                    C[0] = C[0] + (T.Cast("int32", A[vi]) + x_offset) * T.Cast("int32", B[vi])

    @T.prim_func(s_tir=True)
    def impl(a: T.handle, b: T.handle, c: T.handle) -> None:
        A = T.match_buffer(a, (k,), "int8", offset_factor=1)
        B = T.match_buffer(b, (k,), "int8", offset_factor=1)
        C = T.match_buffer(c, (1,), "int32", offset_factor=1)
        with T.sblock("root"):
            T.reads(C[0], A[0:k], B[0:k])
            T.writes(C[0])
            C[0] = T.call_extern("int32", "mcu_dot_s8", A.access_ptr("r"), B.access_ptr("r"), k, x_offset, C[0])

    s_tir.TensorIntrin.register(name, desc, impl, override=True)
    _REGISTERED.add(name)
    return name


def dot2_intrin(k: int, stride: int, x_offset: int) -> str:
    """Two weight rows `stride` apart against one input vector of length `k` (2 output channels at once)."""
    name = f"mcu_dot2_s8_k{k}_s{stride}_off{x_offset}".replace("-", "m")
    if name in _REGISTERED:
        return name
    from tvm import s_tir
    from tvm.script import tirx as T

    @T.prim_func(s_tir=True)
    def desc(a: T.handle, b: T.handle, c: T.handle) -> None:
        A = T.match_buffer(a, (k,), "int8", offset_factor=1)
        B = T.match_buffer(b, (2, k), "int8", strides=(stride, 1), offset_factor=1)
        C = T.match_buffer(c, (2,), "int32", offset_factor=1)
        with T.sblock("root"):
            T.reads(C[0:2], A[0:k], B[0:2, 0:k])
            T.writes(C[0:2])
            for j, i in T.grid(2, k):
                with T.sblock("update"):
                    vj, vi = T.axis.remap("SR", [j, i])
                    C[vj] = C[vj] + (T.Cast("int32", A[vi]) + x_offset) * T.Cast("int32", B[vj, vi])

    @T.prim_func(s_tir=True)
    def impl(a: T.handle, b: T.handle, c: T.handle) -> None:
        A = T.match_buffer(a, (k,), "int8", offset_factor=1)
        B = T.match_buffer(b, (2, k), "int8", strides=(stride, 1), offset_factor=1)
        C = T.match_buffer(c, (2,), "int32", offset_factor=1)
        with T.sblock("root"):
            T.reads(C[0:2], A[0:k], B[0:2, 0:k])
            T.writes(C[0:2])
            T.evaluate(T.call_extern("void", "mcu_dot2_s8", A.access_ptr("r"), B.access_ptr("r"), stride, k,
                                     x_offset, C.access_ptr("rw")))

    s_tir.TensorIntrin.register(name, desc, impl, override=True)
    _REGISTERED.add(name)
    return name


_TENSORIZE_OK: bool | None = None


def tensorize_works() -> bool:
    """Whether `Schedule.tensorize` can run in this installation (probed once in a child process,
    because with a mismatched apache-tvm-ffi it kills the process with SIGSEGV)."""
    global _TENSORIZE_OK
    if _TENSORIZE_OK is None:
        import subprocess
        import sys
        probe = ("import tvm, tvm_ffi\nfrom tvm import tirx\n"
                 "tvm_ffi.serialization.to_json_graph_str(tirx.const(1, 'int32'))\n")
        try:
            _TENSORIZE_OK = subprocess.run([sys.executable, "-c", probe], capture_output=True,
                                           timeout=120).returncode == 0
        except (OSError, subprocess.TimeoutExpired):
            _TENSORIZE_OK = False
    return _TENSORIZE_OK


# ------------------------------------------------------------------------------ tensorize by construction

def replace_loop_with_call(sch, loop, make_stmt) -> None:
    """Blockize `loop` and replace the new block's body by `make_stmt(block)` (what tensorize does after its
    pattern match, minus the match and minus the JSON deep copy that crashes with tvm-ffi 0.1.15)."""
    from tvm import s_tir

    blk_rv = sch.blockize(loop)
    blk = sch.get(blk_rv)
    new = s_tir.SBlock(blk.iter_vars, blk.reads, blk.writes, blk.name_hint, make_stmt(blk), blk.init,
                       blk.alloc_buffers, blk.match_buffers, blk.annotations)
    sch.state.replace(sch.get_sref(blk_rv), new, {blk: new})


def region_start(blk, name):
    """(buffer var, start indices) of the region of buffer `name` that block `blk` reads or writes."""
    for r in list(blk.reads) + list(blk.writes):
        if r.source.name == name:
            return r.source, [rg.min for rg in r.region]
    raise KeyError(f"block {blk.name_hint} does not access {name}")


def _ptr(buf, idx):
    from tvm import tirx
    return tirx.address_of(tirx.BufferLoad(buf, idx))


def _dot_stmt(blk, x_ptr, w_buf, w_idx, k, w_stride, x_offset, block):
    """The micro-kernel call for `block` (1, 2 or 4) output channels; `_w16` variants for int16 weights."""
    from tvm import tirx
    acc_buf, acc_idx = region_start(blk, "acc")
    w_ptr = _ptr(w_buf, w_idx)
    suffix = "_w16" if str(w_buf.dtype) == "int16" else ""
    if block > 1:
        return tirx.Evaluate(tirx.call_extern("void", f"mcu_dot{block}_s8{suffix}", x_ptr, w_ptr, w_stride, k,
                                              x_offset, _ptr(acc_buf, acc_idx)))
    cur = tirx.BufferLoad(acc_buf, acc_idx)
    return tirx.BufferStore(acc_buf, tirx.call_extern("int32", f"mcu_dot_s8{suffix}", x_ptr, w_ptr, k, x_offset,
                                                      cur), acc_idx)


def conv_dot_call(g: dict, block: int):
    """make_stmt for `replace_loop_with_call` on a conv's input-channel loop (or its (o_in, ic) block).

    The blockized block's iter vars are (n, y, x, o, kh, kw, ...); the input pointer is computed from them
    with the conv geometry `g`; taps that fall into the padding are skipped (they add (zp - zp) * w = 0).
    """
    def make(blk):
        from tvm import tirx
        n, y, x, _o, ky, kx = [iv.var for iv in blk.iter_vars[:6]]
        sh, sw = g["stride"]
        dh, dw = g["dilation"]
        pt, pl, pb, pr = g["pads"]
        iy, ix = y * sh + ky * dh - pt, x * sw + kx * dw - pl
        in_buf, _ = region_start(blk, g["in_name"])
        w_buf, w_idx = region_start(blk, g["w_name"])
        stmt = _dot_stmt(blk, _ptr(in_buf, [n, iy, ix, 0]), w_buf, w_idx, g["c"], g["kh"] * g["kw"] * g["c"],
                         g["x_offset"], block)
        conds = ([iy >= 0] if pt else []) + ([iy < g["h"]] if pb else []) + \
                ([ix >= 0] if pl else []) + ([ix < g["w"]] if pr else [])
        return tirx.IfThenElse(tirx.all(*conds), stmt, None) if conds else stmt
    return make


def fc_dot_call(k: int, in_name: str, w_name: str, x_offset: int, block: int):
    """make_stmt for a fully connected layer's reduction loop (or its (o_in, k) block)."""
    def make(blk):
        in_buf, in_idx = region_start(blk, in_name)
        w_buf, w_idx = region_start(blk, w_name)
        return _dot_stmt(blk, _ptr(in_buf, in_idx), w_buf, w_idx, k, k, x_offset, block)
    return make


def conv_row_call(g: dict, block: int):
    """make_stmt for a conv whose (kw, ic) taps are one contiguous run (dilation 1 along x): the blockized
    (o_in, kw, ic) block, iter vars (n, y, x, o, kh). A row entirely inside the input is one micro-kernel call
    of length kw * c; a row cut by the left/right padding calls `mcu_dot_s8[_w16]_clip` on its inside part;
    rows in the top/bottom padding are skipped."""
    def make(blk):
        from tvm import tirx
        n, y, x, _o, ky = [iv.var for iv in blk.iter_vars[:5]]
        sh, sw = g["stride"]
        dh, _dw = g["dilation"]
        pt, pl, pb, pr = g["pads"]
        kw, c = g["kw"], g["c"]
        iy, ix = y * sh + ky * dh - pt, x * sw - pl
        in_buf, _ = region_start(blk, g["in_name"])
        w_buf, w_idx = region_start(blk, g["w_name"])
        w_stride = g["kh"] * kw * c
        stmt = _dot_stmt(blk, _ptr(in_buf, [n, iy, ix, 0]), w_buf, w_idx, kw * c, w_stride, g["x_offset"], block)
        inside = ([ix >= 0] if pl else []) + ([ix + kw <= g["w"]] if pr else [])
        if inside:
            lo = tirx.Max(tirx.const(0, "int32"), 0 - ix) if pl else tirx.const(0, "int32")
            hi = tirx.Min(tirx.const(kw, "int32"), g["w"] - ix) if pr else tirx.const(kw, "int32")
            acc_buf, acc_idx = region_start(blk, "acc")
            suffix = "_w16" if str(w_buf.dtype) == "int16" else ""
            clip = tirx.Evaluate(tirx.call_extern(
                "void", f"mcu_dot_s8{suffix}_clip", _ptr(in_buf, [n, iy, ix + lo, 0]), _ptr(w_buf, w_idx),
                w_stride, block, lo * c, hi * c, g["x_offset"], _ptr(acc_buf, acc_idx)))
            stmt = tirx.IfThenElse(tirx.all(*inside), stmt, clip)
        rows = ([iy >= 0] if pt else []) + ([iy < g["h"]] if pb else [])
        return tirx.IfThenElse(tirx.all(*rows), stmt, None) if rows else stmt
    return make


def dw_call(g: dict):
    """make_stmt for a depthwise conv (multiplier 1) whose 4-channel loop is blockized: iter vars
    (n, y, x, o, kh, kw); one `mcu_dw4_s8[_w16]` call per tap, skipped in the padding."""
    def make(blk):
        from tvm import tirx
        n, y, x, _o, ky, kx = [iv.var for iv in blk.iter_vars[:6]]
        sh, sw = g["stride"]
        dh, dw = g["dilation"]
        pt, pl, pb, pr = g["pads"]
        iy, ix = y * sh + ky * dh - pt, x * sw + kx * dw - pl
        in_buf, _ = region_start(blk, g["in_name"])
        w_buf, w_idx = region_start(blk, g["w_name"])
        acc_buf, acc_idx = region_start(blk, "acc")
        o = acc_idx[3]  # first channel of the block (the block's own iter var counts blocks of 4)
        suffix = "_w16" if str(w_buf.dtype) == "int16" else ""
        stmt = tirx.Evaluate(tirx.call_extern("void", f"mcu_dw4_s8{suffix}", _ptr(in_buf, [n, iy, ix, o]),
                                              _ptr(w_buf, w_idx), g["x_offset"], _ptr(acc_buf, acc_idx)))
        conds = ([iy >= 0] if pt else []) + ([iy < g["h"]] if pb else []) + \
                ([ix >= 0] if pl else []) + ([ix < g["w"]] if pr else [])
        return tirx.IfThenElse(tirx.all(*conds), stmt, None) if conds else stmt
    return make


def fc_pair_call(k: int, in_name: str, w_name: str):
    """make_stmt for the blockized (row pair, 4 channels, k) block of a fully connected layer: one
    `mcu_dot4x2_s8[_w16]` call for two input rows (input offset folded into the bias); the row count is even."""
    def make(blk):
        from tvm import tirx
        in_buf, in_idx = region_start(blk, in_name)
        w_buf, w_idx = region_start(blk, w_name)
        acc_buf, acc_idx = region_start(blk, "acc")
        r0, o0 = in_idx[0], acc_idx[1]
        suffix = "_w16" if str(w_buf.dtype) == "int16" else ""
        two = tirx.Evaluate(tirx.call_extern(
            "void", f"mcu_dot4x2_s8{suffix}", _ptr(in_buf, [r0, 0]), _ptr(w_buf, w_idx),
            k, k, 0, _ptr(acc_buf, [r0, o0]), _ptr(acc_buf, [r0 + 1, o0])))
        return two
    return make
