"""Layers that call the one shared conv kernel of runtime/mcu_conv_gemm_s8.h (im2col + 2x2 SMLAD blocks).

A regular or pointwise conv (any kernel size, stride, padding, dilation) or a fully connected layer whose input
channels are a multiple of 4 and whose output channels are even becomes, on cores with the DSP extension, a
wrapper of a few instructions that passes the layer's shapes and constants to `mcu_conv_gemm_s8`: one kernel
in the image for all such layers (shapes as arguments) instead of one generated function per layer. Its
constants: the weights reordered to (O/2, K/4, 2 channels, 4 taps) as little-endian int32 words, the int32 bias
as given (the kernel subtracts the input zero point while widening), and the fast requantization's
per-channel multiplier, rounding constant (output zero point folded in) and shift.

With `int4` (codegen/int4_kernels.py), the weights' values are int4 and stored packed for `mcu_conv_gemm_s8_w4`
(two channels' 4 taps a word), the bias records 16 times the bias; input channels that are not a multiple of 4
are then taken too (windows gathered as bytes, taps padded with zero weights to a multiple of 8).

`merge(tvm_kernel, gemm)` puts both into one source: `#if MCU_GEMM` the wrapper, `#else` TVM's kernel (cores
without DSP, e.g. RV32IMAC, keep exactly the kernels they had). The wrapper's name and signature are the TVM
kernel's, so the callers (model.c, the in-place row kernels) do not change.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import numpy as np

HEADER = "mcu_conv_gemm_s8.h"

# the im2col buffer of a pixel pair is kh * kw * c words on the stack
MAX_BUF_WORDS = 1024


@dataclass(frozen=True)
class Gemm:
    consts: str   # the constant arrays
    code: str     # the wrapper function
    stack_bytes: int


def _round_consts(mult: np.ndarray, shift: np.ndarray, out_zp: int):
    """(round, shift_hi) of mcu_requant.h's fast requantization with the output zero point folded, or None
    when some channel shifts left or right by more than 23 (then the zero point does not fold exactly)."""
    e = -np.asarray(shift, np.int64)
    if np.any(e < 1) or np.any(e > 23):
        return None
    rnd = [(1 << 30) + (1 << (30 + int(v))) + (int(out_zp) << (31 + int(v))) for v in e]
    return np.asarray(rnd, np.int64), e - 1


def _int64(v: int) -> str:
    return f"INT64_C({v})"


def _words(weights_2d: np.ndarray, block: int) -> np.ndarray:
    """(O, K) int8 -> (O/block, K/4, block channels, 4 taps) bytes as little-endian int32 words."""
    o, k = weights_2d.shape
    w = np.ascontiguousarray(weights_2d.reshape(o // block, block, k // 4, 4).transpose(0, 2, 1, 3), np.int8)
    return np.frombuffer(w.tobytes(), "<i4")


def _int4_words(weights_2d: np.ndarray, block: int) -> np.ndarray:
    """(O, K) int4 values -> mcu_conv_gemm_s8_w4's words: per (block of channels, 4 taps) the int8 layout's
    channel pairs merged into one word, byte j = (even channel's tap j) << 4 | (odd channel's tap j) & 15."""
    o, k = weights_2d.shape
    w = weights_2d.astype(np.int64).reshape(o // block, block // 2, 2, k // 4, 4).transpose(0, 3, 1, 2, 4)
    b = (((w[..., 0, :] & 0xF) << 4) | (w[..., 1, :] & 0xF)).astype(np.uint8)  # (O/block, K/4, block/2, 4)
    return np.frombuffer(np.ascontiguousarray(b).tobytes(), "<i4")


def int4_fits(weights_2d, bias, in_zp) -> bool:
    """The int4 loops accumulate 16 (bias + sum x w): it must stay an int32 for every input."""
    x_max = max(127 - int(in_zp), int(in_zp) + 128)
    bias = np.zeros(len(weights_2d), np.int64) if bias is None else np.asarray(bias, np.int64)
    bound = np.abs(bias) + x_max * np.abs(weights_2d.astype(np.int64)).sum(axis=1)
    return bool(np.all(16 * bound < 1 << 31))


def gemm_layer(name, in_shape, weights, bias, mult, shift, *, in_zp, out_zp, act_min, act_max, stride=(1, 1),
               dilation=(1, 1), pads=(0, 0, 0, 0), out_hw, const_attr="", fully_connected=False,
               int4=False) -> Gemm | None:
    """The wrapper of a conv (`weights` (O, KH, KW, I), input (1, H, W, I)) or None when the shared kernel does
    not apply. A fully connected layer is passed as a 1x1 conv over (1, 1, N, I) with `fully_connected`: one
    row then takes 4 channels per step (weights (O/4, K/4, 4, 4)). A conv's constants never depend on its
    geometry (the in-place row kernels build one kernel per band of rows and share the constants).
    `int4`: the weights' values are int4 and are stored packed for `mcu_conv_gemm_s8_w4` (half the int8 bytes),
    the bias records 16 times the bias."""
    from .tvm_kernels import _c_array

    _, h, w, c = (int(d) for d in in_shape)
    o, kh, kw, _ = weights.shape
    rc = _round_consts(shift, shift, out_zp)
    sh, sw = (int(v) for v in stride)
    dh, dw = (int(v) for v in dilation)
    pt, pl = int(pads[0]), int(pads[1])
    small = all(0 <= v <= 127 for v in (kh, kw, sh, sw, dh, dw, pt, pl)) and max(h, w, c, o, *out_hw) < 32768
    # int4 layers over input channels that are not a multiple of 4 gather each window as bytes first
    # (mcu_conv_gemm_body_w4): its taps padded with zero weights to a multiple of 8 (an even number of groups of
    # 4, for the loop without the odd group), the buffer two windows' bytes longer
    gather = int4 and c % 4 != 0 and (dh, dw) == (1, 1)
    k4 = -(-kh * kw * c // 8) * 2 if gather else kh * kw * c // 4
    buf_words = 6 * k4 + 2 if gather else kh * kw * c
    if rc is None or (c % 4 and not gather) or o % 2 or buf_words > MAX_BUF_WORDS or not small:
        return None
    rows = np.pad(weights.reshape(o, -1), ((0, 0), (0, 4 * k4 - kh * kw * c)))  # zero weights on the pad taps
    if int4 and not int4_fits(rows, bias, in_zp):
        return None
    rnd, shift_hi = rc
    rec = np.zeros((o, 3), np.int64)  # mcu_gemm_channel: bias (int4: 16 bias, below), mult, shift_hi, (0), round
    rec[:, 0], rec[:, 1], rec[:, 2] = np.asarray(bias, np.int64), np.asarray(mult, np.int64), shift_hi
    rec[:, 0] *= 16 if int4 else 1
    attr = (const_attr + " " if const_attr else "") + "__attribute__((aligned(8)))"
    oh, ow = out_hw
    # one fully connected row: 4 channels per step
    quad = int(fully_connected and oh * ow == 1 and o % 4 == 0 and not gather)
    words = (_int4_words if int4 else _words)(rows, 4 if quad else 2)
    const_src = (_c_array(f"{name}_gw", words, "int32", attr)
                 + f"static const mcu_gemm_channel {name}_gq[{o}] {attr} = {{\n"
                 + "".join(f"    {{{r[0]}, {r[1]}, {r[2]}, 0, {_int64(int(v))}}},\n" for r, v in zip(rec, rnd))
                 + "};\n")
    nosign = int(act_min >= out_zp)  # the requantization's sign correction cannot change a clamped output
    fields = [h, w, c, oh, ow, o, kh, kw, sh, sw, dh, dw, pt, pl, -int(in_zp), int(act_min), int(act_max), quad,
              nosign]
    init = ", ".join(str(v) for v in fields) + f", {name}_gw, {name}_gq"
    code = (f"MCU_KERNEL_OPT void {name}(const int8_t* restrict in, int8_t* restrict out)\n{{\n"
            f"  static const mcu_conv_gemm_params p = {{{init}}};\n"
            f"  int32_t buf[{buf_words}] __attribute__((aligned(8)));\n"
            f"  mcu_conv_gemm_s8{'_w4' if int4 else ''}(in, out, &p, buf);\n}}\n")
    return Gemm(const_src, code, 4 * buf_words)


def merge(k, g: Gemm):
    """One Kernel whose source is the shared-kernel wrapper on cores with DSP and TVM's kernel elsewhere."""
    includes = tuple(dict.fromkeys(k.includes + ("mcu_dot_s8.h", HEADER)))
    head = "#include <stdint.h>\n" + "".join(f'#include "{h}"\n' for h in includes) + "\n"
    consts = f"#if MCU_GEMM\n{g.consts}#else\n{k.const_source}#endif\n"
    code = f"#if MCU_GEMM\n{g.code}#else\n{k.code_source.lstrip()}#endif\n"
    return dataclasses.replace(k, source=head + consts + "\n" + code, includes=includes,
                               stack_bytes=max(k.stack_bytes, g.stack_bytes), schedule="gemm|" + k.schedule,
                               const_source=consts, code_source=code)
