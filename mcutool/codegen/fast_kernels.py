"""Shape-specialised int8 kernels that TVM's schedules cannot express: thin C wrappers around hand-written
always-inline kernels in runtime/, every shape argument a literal (so GCC specialises the loops), with the
constants pre-arranged at compile time. They return the same `Kernel` as tvm_kernels (same C signature, same
constant-array naming), so model.c and the in-place row bands (row_inplace.py) use them unchanged.

    depthwise_3x3_s8   runtime/mcu_depthwise_conv2d_3x3_s8.h: 3x3, depth multiplier 1, stride 1 or 2, dilation 1;
                       one channel at a time through a ring of 3 int16 rows padded with the zero point (no
                       border tests; the input offset folded into the bias), one SMLAD per two taps of a kernel
                       row, per-channel constants hoisted
    pointwise_small    runtime/mcu_conv1x1_small_s8.h: a 1x1 conv (any stride, no padding) over 4, 8, 12, 16 or
                       32 input channels, each pixel's inputs widened once, one SMLAD per weight word and pixel
                       (weights pre-widened to int16: n_out x c x 2 B, in one record per channel with the bias
                       and requantization constants); returned as a gemm_kernels.Gemm,
                       the shared conv kernel's stand-in on cores with DSP (TVM's kernel elsewhere)
    conv2d_im2col_s8   runtime/mcu_conv2d_im2col_s8.h: a conv whose kernel rows are not whole words (kw * c % 4,
                       e.g. 3x3 over 3 colour channels) and whose window has at most IM2COL_MAX_TAPS taps: the
                       window gathered into a word-padded buffer per pixel, 4 output channels per SMLAD pass
                       (weights pre-widened to int16: n_out x taps x 2 B, under 4 KB for such layers)

`applies_*` say when tvm_kernels hands a layer here ("auto" schedules only; an explicit schedule keeps TVM's).
Both requantize with mcu_requant_x2_s8 (one SMMLAR per output on the doubled accumulator): they need right
shifts 1..23 on every channel and accumulators bounded as it says (`x2_requant`), as a normal network's convs
have; other layers keep TVM's kernels.
"""
from __future__ import annotations

import dataclasses

import numpy as np

from ..ir import pack_int4
from . import tvm_kernels as tk

# the largest window gathered per pixel (kh * kw * c): a first conv over 3 channels (27 for 3x3, 75 for 5x5)
IM2COL_MAX_TAPS = 80


def x2_requant(w_rows, bias, mult, shift, in_zp, out_zp) -> tuple[np.ndarray, np.ndarray] | None:
    """(c, e) per output channel of runtime/mcu_requant.h's mcu_requant_x2_s8 (out = (SMMLAR(2 acc, m, c) -
    [acc < 0]) >> e, c = 2^(e-1) + zp * 2^e), or None where it does not apply: a right shift e < 1 or > 23, or an
    accumulator that could leave the bounds it needs (|2 acc| < 2^31, |q| + |c| + 1 < 2^31) for some input.
    `w_rows`: (n_out, taps) int8 weights; the bound is |bias| + max|x - zp| * sum|w| per channel."""
    e = -np.asarray(shift, np.int64)
    if np.any(e < 1) or np.any(e > 23):
        return None
    x_max = max(127 - int(in_zp), int(in_zp) + 128)
    bound = np.abs(np.asarray(bias, np.int64)) + x_max * np.abs(w_rows.astype(np.int64)).sum(axis=1)
    c = (np.int64(1) << (e - 1)) + (np.int64(out_zp) << e)
    q_max = bound * np.asarray(mult, np.int64) // (1 << 31) + 1
    if np.any(2 * bound >= 1 << 31) or np.any(q_max + np.abs(c) + 1 >= 1 << 31):
        return None
    return c, e


def _dw_rows_bias(weights, bias, in_zp):
    """(C, 9) weight rows and the bias with the input offset folded in (the ring holds x, padding zp)."""
    rows = weights.reshape(9, -1).T
    return rows, np.asarray(bias, np.int64) - int(in_zp) * rows.astype(np.int64).sum(axis=1)


def applies_depthwise(weights, bias, mult, shift, in_zp, out_zp, depth_multiplier, stride, dilation) -> bool:
    return (weights.shape[1:3] == (3, 3) and depth_multiplier == 1 and tuple(dilation) == (1, 1)
            and tuple(stride) in ((1, 1), (2, 2))
            and x2_requant(*_dw_rows_bias(weights, bias, in_zp), mult, shift, 0, out_zp) is not None)


def applies_im2col(weights, bias, mult, shift, in_zp, out_zp, dilation) -> bool:
    o, kh, kw, c = weights.shape
    return ((kw * c) % 4 != 0 and kh * kw * c <= IM2COL_MAX_TAPS and tuple(dilation) == (1, 1)
            and x2_requant(weights.reshape(o, -1), bias, mult, shift, in_zp, out_zp) is not None)


def dw3x3_ring_width(w, stride, pl, ow) -> int:
    """int16 columns per ring row (stride 1): the padded row, and the last word any output reads (2 past its
    last tap); 0 for stride 2, which reads the input directly."""
    if stride != 1:
        return 0
    need = max(pl + w, ow + 3)
    return need + (need % 2)


def dw3x3_by_cols(stride, oh, ow) -> bool:
    """Stride 1 over the columns when the rows are too short for four outputs per step (fewer than 8) and the
    columns longer: KWS's 25 x 5 layers went from 179,167 to 155,396 instructions each on stm32f746 (with the PKHBT ring fill)."""
    return stride == 1 and ow < 8 and oh > ow


def _kernel(name, op, in_shape, out_shape, macs, arrays, call, locals_, stack, include, schedule, const_attr):
    """The Kernel: the constant arrays, then `void name(in, out)` calling the runtime kernel."""
    consts = "".join(tk._c_array(f"{name}_{key}", vals, dtype, const_attr) for key, (vals, dtype) in arrays.items())
    proto = f"void {name}(const int8_t* restrict in, int8_t* restrict out)"
    code = f"\nMCU_KERNEL_OPT {proto}\n{{\n{locals_}  {call}\n}}\n"
    includes = ("mcu_requant.h", "mcu_dot_s8.h", include)
    head = "#include <stdint.h>\n" + "".join(f'#include "{h}"\n' for h in includes) + "\n"
    const_bytes = sum(np.asarray(v).size * tk._CBYTES[d] for v, d in arrays.values())
    return tk.Kernel(name=name, op=op, in_shape=tuple(in_shape), out_shape=tuple(out_shape), macs=int(macs),
                     source=head + consts + code, prototype=proto + ";", includes=includes, stack_bytes=stack,
                     const_bytes=int(const_bytes), schedule=schedule, const_source=consts, code_source=code)


def _requant_arrays(w_rows, bias, mult, shift, in_zp, out_zp):
    """The doubled bias and the constants of mcu_requant_x2_s8."""
    c, e = x2_requant(w_rows, bias, mult, shift, in_zp, out_zp)
    return {"bias": (2 * np.asarray(bias, np.int64), "int32"), "mult": (mult, "int32"), "cst": (c, "int32"),
            "e": (e, "int32")}


def _sign_fix(act_min, out_zp) -> int:
    """mcu_requant_x2_s8's rounding of negative values matters only below the output zero point: a fused RELU /
    RELU6 (act_min >= zp) clamps them all to act_min, one instruction less per output."""
    return int(int(act_min) < int(out_zp))


def _dw_weight_words(weights) -> np.ndarray:
    """(1, 3, 3, C) int8 -> (C, 6) int32: W01 = (2 w0, 2 w1) and W12 = (2 w1, 2 w2) of each kernel row, low
    halfword first (the words SMLAD / SMLABT read)."""
    w = 2 * weights[0].astype(np.int64)  # (3, 3, C), doubled for mcu_requant_x2_s8

    def pair(lo, hi):
        return (lo & 0xFFFF) | ((hi & 0xFFFF) << 16)

    w01 = [pair(w[r, 0], w[r, 1]) for r in range(3)]
    w12 = [pair(w[r, 1], w[r, 2]) for r in range(3)]
    words = np.stack(w01 + w12, axis=1)  # (C, 6) as unsigned 32-bit values
    return np.where(words >= 1 << 31, words - (1 << 32), words)


def _dw_int4_bytes(weights) -> np.ndarray:
    """(1, 3, 3, C) int4 values -> (C, 5) bytes: each channel's 9 values packed low nibble first (the kernel
    unpacks them per channel, mcu_dw3x3_unpack4)."""
    rows = np.pad(weights[0].reshape(9, -1).T.astype(np.int64), ((0, 0), (0, 1)))  # (C, 10)
    return pack_int4(rows.reshape(-1)).reshape(-1, 5)


def depthwise_3x3_s8(name, in_shape, weights, bias, mult, shift, *, input_zero_point, output_zero_point,
                     act_min, act_max, stride, pads, const_attr="", int4=False) -> tk.Kernel:
    """int8 depthwise 3x3 conv, multiplier 1 (arguments checked by tvm_kernels.depthwise_conv2d_s8); `int4`:
    the weights' values are int4, stored packed (5 bytes a channel)."""
    _, h, w, c = (int(d) for d in in_shape)
    s = int(stride[0])
    pt, pl, pb, pr = (int(p) for p in pads)
    oh, ow = tk._out_size(h, 3, s, 1, pt, pb), tk._out_size(w, 3, s, 1, pl, pr)
    if oh <= 0 or ow <= 0 or min(pads) < 0:
        raise ValueError(f"{name}: bad geometry: input {tuple(in_shape)}, stride {stride}, pads {pads}")
    by_cols = dw3x3_by_cols(s, oh, ow)
    ordered = weights.transpose(0, 2, 1, 3) if by_cols else weights
    if int4:
        arrays = {"w4": (_dw_int4_bytes(ordered).astype(np.int8), "int8")}
    else:
        arrays = {"w": (_dw_weight_words(ordered), "int32")}
    arrays.update({
              **_requant_arrays(*_dw_rows_bias(weights, bias, input_zero_point), mult, shift, 0, output_zero_point)})
    rw = dw3x3_ring_width(h, s, pt, oh) if by_cols else dw3x3_ring_width(w, s, pl, ow)
    wk, wk4 = ("(const int32_t*)0", f"(const uint8_t*){name}_w4") if int4 else (f"{name}_w", "(const uint8_t*)0")
    call = (f"mcu_depthwise_conv2d_3x3_s8(in, out, {h}, {w}, {c}, {s}, {pt}, {pl}, {oh}, {ow}, "
            f"{int(input_zero_point)}, {wk}, {name}_bias, {name}_mult, "
            f"{name}_cst, {name}_e, {_sign_fix(act_min, output_zero_point)}, {int(act_min)}, {int(act_max)}, "
            f"{'rows' if rw else '(int16_t*)0'}, {rw}, {int(by_cols)}, {wk4});")
    ring = f"  MCU_DW3X3_RING(rows, {3 * rw});\n" if rw else ""
    return _kernel(name, "depthwise_conv2d", in_shape, (1, oh, ow, c), oh * ow * c * 9, arrays, call, ring,
                   6 * rw, "mcu_depthwise_conv2d_3x3_s8.h", "dw3x3", const_attr)


def in_place(k: tk.Kernel) -> tk.Kernel:
    """A stride-1 "same" depthwise kernel of `depthwise_3x3_s8` rewritten to work over its input in place, with
    the signature of the in-place row kernels (row_inplace.py): `void name(int8_t* buf, int8_t* ring)`, the
    arena's line buffer unused. Channel ch of output row y only depends on channel ch of input rows y - 1 .. y + 1,
    which are in the kernel's int16 ring when output row y is stored over input row y, and rows are read from
    `buf` only ahead of the rows written (the ring is filled with row y + 2 before row y + 1 is stored): so
    nothing is read after it was overwritten, and the output rows need no copy-back."""
    if k.schedule != "dw3x3" or k.in_shape != k.out_shape:
        raise ValueError(f"{k.name}: only a same-shaped dw3x3 kernel runs in place, not {k.schedule} {k.out_shape}")
    sig = f"void {k.name}(const int8_t* restrict in, int8_t* restrict out)"
    new_sig = f"void {k.name}(int8_t* buf, int8_t* ring)"
    call = "mcu_depthwise_conv2d_3x3_s8(in, out, "
    assert k.code_source.count(sig) == 1 and k.code_source.count(call) == 1
    code = k.code_source.replace(sig, new_sig).replace(call, "(void)ring;\n  mcu_depthwise_conv2d_3x3_s8(buf, buf, ")
    return dataclasses.replace(k, source=k.source.replace(k.code_source, code), code_source=code,
                               prototype=new_sig + ";", schedule=k.schedule + "+in_place")


def conv2d_im2col_s8(name, op, in_shape, weights, bias, mult, shift, *, input_zero_point, output_zero_point,
                     act_min, act_max, stride, pads, const_attr="") -> tk.Kernel:
    """int8 conv2d by im2col (arguments checked by tvm_kernels.conv2d_s8); weights (O, KH, KW, I)."""
    _, h, w, c = (int(d) for d in in_shape)
    o, kh, kw, _ = weights.shape
    sh, sw = (int(v) for v in stride)
    pt, pl, pb, pr = (int(p) for p in pads)
    oh, ow = tk._out_size(h, kh, sh, 1, pt, pb), tk._out_size(w, kw, sw, 1, pl, pr)
    if oh <= 0 or ow <= 0 or min(pads) < 0:
        raise ValueError(f"{name}: bad geometry: input {tuple(in_shape)}, kernel {kh}x{kw}, stride {stride}, "
                         f"pads {pads}")
    taps = kh * kw * c
    kp = -(-taps // 4) * 4
    rows = np.zeros((o, kp), np.int8)
    rows[:, :taps] = weights.reshape(o, taps)
    arrays = {"w": (tk._widen_weights(2 * rows.astype(np.int16)), "int16"),
              **_requant_arrays(rows, bias, mult, shift, input_zero_point, output_zero_point)}
    call = (f"mcu_conv2d_im2col_s8(in, out, {h}, {w}, {c}, {kh}, {kw}, {sh}, {sw}, {pt}, {pl}, {oh}, {ow}, {o}, "
            f"{kp}, {-int(input_zero_point)}, {name}_w, {name}_bias, {name}_mult, {name}_cst, {name}_e, "
            f"{_sign_fix(act_min, output_zero_point)}, {int(act_min)}, {int(act_max)}, col);")
    return _kernel(name, op, in_shape, (1, oh, ow, o), oh * ow * o * taps, arrays, call,
                   f"  int8_t col[{2 * kp}];\n", 2 * kp, "mcu_conv2d_im2col_s8.h", "im2col_w16", const_attr)


# input channels of the 1x1 convs that take runtime/mcu_conv1x1_small_s8.h (on stm32f746: 8 -> 16 0.58 MAC/instr
# against the shared conv kernel's 0.39, 16 -> 32 0.72 against 0.60, 32 -> 32 0.87 against 0.75); their weights are
# stored int16 (at most 2 B x 32 x n_out per layer); from 64 on the shared kernel keeps int8 weights
POINTWISE_SMALL_C = (4, 8, 12, 16, 32)


def applies_pointwise_small(weights, bias, mult, shift, in_zp, out_zp, pads, dilation) -> bool:
    o, kh, kw, c = weights.shape
    return ((kh, kw) == (1, 1) and c in POINTWISE_SMALL_C and not any(int(p) for p in pads)
            and tuple(int(d) for d in dilation) == (1, 1)
            and x2_requant(weights.reshape(o, c), bias, mult, shift, in_zp, out_zp) is not None)


def pointwise_small(name, in_shape, weights, bias, mult, shift, *, input_zero_point, output_zero_point, act_min,
                    act_max, stride, out_hw, const_attr="", int4=False):
    """The wrapper of a 1x1 conv over few input channels (`applies_pointwise_small`) around
    runtime/mcu_conv1x1_small_s8.h, as a gemm_kernels.Gemm for gemm_kernels.merge (`#if MCU_GEMM`: cores with DSP;
    the header is included with the constants, so the in-place row kernels, which rebuild a source from the
    includes, constants and code, keep it). int4: packed weights for mcu_conv1x1_small_w4
    (`applies_pointwise_small_w4`)."""
    from .gemm_kernels import Gemm

    _, _h, w, c = (int(d) for d in in_shape)
    o = weights.shape[0]
    recs = (_records_w4 if int4 else _records)(weights.reshape(o, c), bias, mult, shift, input_zero_point,
                                               output_zero_point)
    attr = (const_attr + " " if const_attr else "") + "__attribute__((aligned(8)))"
    consts = '#include "mcu_conv1x1_small_s8.h"\n' + tk._c_array(f"{name}_pr", recs.reshape(-1), "int32", attr)
    sh, sw = (int(v) for v in stride)
    oh, ow = (int(v) for v in out_hw)
    code = (f"MCU_KERNEL_OPT void {name}(const int8_t* restrict in, int8_t* restrict out)\n{{\n"
            f"  mcu_conv1x1_small_{'w4' if int4 else 's8'}(in, out, {w}, {c}, {sh}, {sw}, {oh}, {ow}, {o}, "
            f"{-int(input_zero_point)}, "
            f"{name}_pr, {_sign_fix(act_min, output_zero_point)}, {int(act_min)}, {int(act_max)});\n}}\n")
    return Gemm(consts, code, 0)


# fully connected layers whose int8 weights take at most this many bytes pre-widen them to int16 for
# runtime/mcu_conv1x1_small_s8.h's mcu_fc_w16_s8 (at most 4 KB more flash per layer; larger ones keep the shared
# conv kernel and int8 weights)
FC_W16_MAX_WEIGHT_BYTES = 4096
# and with at most this many inputs and at least this many outputs widen their row once into a stack buffer of 2 B
# per input (else per channel pair; on stm32f746 the buffer paid from 5 pairs on: 64->12 0.69 -> 0.80 MAC/instr,
# 128->8 0.75 -> 0.71, 256->2 0.80 -> 0.44)
FC_W16_MAX_BUF_INPUTS = 256
FC_W16_MIN_BUF_OUTPUTS = 10
# (int4: from 4 on, the unpacking making the widened row's LDRD pay sooner: 128->8 1.29x -> 1.24x of int8)
FC_W4_MIN_BUF_OUTPUTS = 4


def applies_fc_w16(weights, bias, mult, shift, in_zp, out_zp) -> bool:
    o, k = weights.shape
    return (k % 8 == 0 and k >= 16 and o * k <= FC_W16_MAX_WEIGHT_BYTES
            and x2_requant(weights, bias, mult, shift, in_zp, out_zp) is not None)


def _records(rows, bias, mult, shift, in_zp, out_zp) -> np.ndarray:
    """(O, K / 2 + 4) int32 records of runtime/mcu_conv1x1_small_s8.h: the weights doubled and widened to int16 in
    SXTB16 lane order (two per word, low half first), the doubled bias, mult, cst, e."""
    w16 = tk._widen_weights(2 * rows.astype(np.int16)).astype(np.int64) & 0xFFFF
    words = w16[:, 0::2] | (w16[:, 1::2] << 16)
    words = np.where(words >= 1 << 31, words - (1 << 32), words)
    req = _requant_arrays(rows, bias, mult, shift, in_zp, out_zp)
    return np.concatenate([words] + [np.asarray(req[k][0], np.int64)[:, None] for k in ("bias", "mult", "cst", "e")],
                          axis=1)


# int4 forms (runtime/mcu_conv1x1_small_s8.h's mcu_conv1x1_small_w4 / mcu_fc_w4_s8): the taps of each 8 in nibbles
# 0..7 of a word, so that (word << 4 j) & 0xF000F000 is weight word j (SXTB16 lane order, 4096 x w per lane)
W4_NIBBLE_TAPS = (5, 4, 1, 0, 7, 6, 3, 2)


def w4_sums_fit(rows, bias, in_zp) -> bool:
    """The int4 kernels' accumulators (4096 x (bias + sum)) stay within int32 on every channel."""
    xmax = max(abs(-128 - int(in_zp)), abs(127 - int(in_zp)))
    worst = np.abs(np.asarray(rows, np.int64)).sum(axis=1) * xmax + np.abs(np.asarray(bias, np.int64))
    return bool((4096 * worst < 2**31).all())


def applies_pointwise_small_w4(weights, bias, mult, shift, in_zp, out_zp, pads, dilation) -> bool:
    o, _, _, c = weights.shape
    return (applies_pointwise_small(weights, bias, mult, shift, in_zp, out_zp, pads, dilation)
            and w4_sums_fit(weights.reshape(o, c), bias, in_zp))


def applies_fc_w4(weights, bias, mult, shift, in_zp, out_zp) -> bool:
    o, k = weights.shape
    return (applies_fc_w16(weights, bias, mult, shift, in_zp, out_zp) and w4_sums_fit(weights, bias, in_zp))


def _records_w4(rows, bias, mult, shift, in_zp, out_zp) -> np.ndarray:
    """(O, ceil(K / 8) + 4) int32 records of the int4 kernels: the words of nibbles (W4_NIBBLE_TAPS; K % 8 == 4:
    the last word's upper 4 taps zero), 4096 x bias, mult, cst, e."""
    o, k = rows.shape
    padded = np.zeros((o, -(-k // 8) * 8), np.int64)
    padded[:, :k] = rows
    g = (padded & 0xF).reshape(o, -1, 8)[..., list(W4_NIBBLE_TAPS)]
    words = sum(g[..., i] << (4 * i) for i in range(8))
    words = np.where(words >= 1 << 31, words - (1 << 32), words)
    req = _requant_arrays(rows, bias, mult, shift, in_zp, out_zp)
    return np.concatenate([words, 2048 * np.asarray(req["bias"][0], np.int64)[:, None]]
                          + [np.asarray(req[k][0], np.int64)[:, None] for k in ("mult", "cst", "e")], axis=1)


def _pair_records_w4(rows, bias, mult, shift, in_zp, out_zp) -> np.ndarray:
    """(ceil(O / 2), K / 4 + 8) int32 records of mcu_fc_w4_s8: per pair of channels (an odd last one with a copy of
    itself) their `_records_w4` nibble words interleaved, then the 4 constants of each."""
    rec = _records_w4(rows, bias, mult, shift, in_zp, out_zp)
    if len(rec) % 2:
        rec = np.concatenate([rec, rec[-1:]])
    n = rows.shape[1] // 8
    c0, c1 = rec[0::2], rec[1::2]
    words = np.stack([c0[:, :n], c1[:, :n]], axis=2).reshape(len(c0), 2 * n)
    return np.concatenate([words, c0[:, n:], c1[:, n:]], axis=1)


def fc_w16(name, n_rows, weights, bias, mult, shift, *, input_zero_point, output_zero_point, act_min, act_max,
           const_attr="", int4=False):
    """The wrapper of a small fully connected layer (`applies_fc_w16`, weights (O, K)) around mcu_fc_w16_s8, as a
    gemm_kernels.Gemm for gemm_kernels.merge (`#if MCU_GEMM`). int4: packed weights for mcu_fc_w4_s8
    (`applies_fc_w4`)."""
    from .gemm_kernels import Gemm

    o, k = weights.shape
    buffered = k <= FC_W16_MAX_BUF_INPUTS and o >= (FC_W4_MIN_BUF_OUTPUTS if int4 else FC_W16_MIN_BUF_OUTPUTS)
    recs = (_pair_records_w4 if int4 else _records)(weights, bias, mult, shift, input_zero_point,
                                                    output_zero_point)
    attr = (const_attr + " " if const_attr else "") + "__attribute__((aligned(8)))"
    consts = '#include "mcu_conv1x1_small_s8.h"\n' + tk._c_array(f"{name}_fr", recs.reshape(-1), "int32", attr)
    code = (f"MCU_KERNEL_OPT void {name}(const int8_t* restrict in, int8_t* restrict out)\n{{\n"
            + (f"  int32_t xbuf[{k // 2}] __attribute__((aligned(8)));\n" if buffered else "")
            + f"  mcu_fc_{'w4' if int4 else 'w16'}_s8(in, out, {int(n_rows)}, {k}, {o}, {-int(input_zero_point)}, "
            f"{name}_fr, "
            f"{_sign_fix(act_min, output_zero_point)}, {int(act_min)}, {int(act_max)}, "
            f"{'xbuf' if buffered else '(int32_t*)0'});\n}}\n")
    return Gemm(consts, code, 2 * k if buffered else 0)
