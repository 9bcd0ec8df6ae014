"""TVM-generated int8 kernels (mcutool/codegen/tvm_kernels.py) against TFLite's integer arithmetic.

Host: every kernel is compiled with `gcc -std=c99 -O2 -Wall -Wextra -Werror -fsanitize=address,undefined`
together with a small driver that reads input vectors from a file and writes the outputs; its bytes are
compared with a compact numpy version of TFLite's reference kernels (int64, MultiplyByQuantizedMultiplier
with TFLite's double rounding) and with mcutool/reference.py (the golden model), op by op, through
`kernel_for_op` on one-op graphs, and layer by layer on real TFLite models.
Cortex-M7 (`-m qemu`): the SMLAD micro-kernels only exist for cores with the DSP extension, so they are
cross-compiled and run in QEMU (mps2-an500), compared the same way, with a floor on MACs per instruction.
"""
from __future__ import annotations

import math
import shutil
import subprocess
import zlib
from pathlib import Path

import numpy as np
import pytest

from conftest import IN_CI, require_tool, shared_model
from mcutool import ir  # noqa: E402
from mcutool.codegen import tvm_intrin, tvm_kernels  # noqa: E402
from mcutool.paths import data_dir  # noqa: E402
from mcutool import reference as REF  # noqa: E402  the project's golden model

GCC = shutil.which("gcc")
CFLAGS = ["-std=c99", "-O2", "-Wall", "-Wextra", "-Werror", "-fsanitize=address,undefined",
          "-fno-sanitize-recover=all"]


@pytest.fixture(scope="module", autouse=True)
def _need_gcc():
    require_tool("gcc")


# ------------------------------------------------------------------------------ TFLite arithmetic in numpy

def quantize_multiplier(real: float) -> tuple[int, int]:
    """TFLite's QuantizeMultiplier: real = q * 2^shift with q a Q31 value in [2^30, 2^31)."""
    if real == 0.0:
        return 0, 0
    q, shift = math.frexp(real)
    q_fixed = int(math.floor(abs(q) * (1 << 31) + 0.5)) * (1 if q > 0 else -1)  # std::round
    if q_fixed == 1 << 31:
        q_fixed //= 2
        shift += 1
    if shift < -31:
        return 0, 0
    return q_fixed, shift


def multiply_by_quantized_multiplier(x, mult, shift):
    """MultiplyByQuantizedMultiplier, element-wise, int64 numpy; mult/shift broadcast against x."""
    x = np.asarray(x, np.int64)
    mult = np.asarray(mult, np.int64)
    shift = np.asarray(shift, np.int64)
    left = np.maximum(shift, 0)
    right = np.maximum(-shift, 0)
    x = ((x << left) + (1 << 31)) % (1 << 32) - (1 << 31)  # x * (1 << left) in int32 (wraps as TFLite's does)
    ab = x * mult
    nudge = np.where(ab >= 0, 1 << 30, 1 - (1 << 30))
    t = ab + nudge
    high = np.where(t >= 0, t >> 31, -((-t) >> 31))  # C++ division truncates toward zero
    high = np.where((x == -(1 << 31)) & (mult == -(1 << 31)), (1 << 31) - 1, high)
    mask = (np.int64(1) << right) - 1
    remainder = high & mask
    threshold = (mask >> 1) + (high < 0)
    return (high >> right) + (remainder > threshold)


def _requant(acc, mult, shift, zo, lo, hi):
    return np.clip(multiply_by_quantized_multiplier(acc, mult, shift) + zo, lo, hi).astype(np.int8)


def _conv_acc(x, w, bias, zi, stride, dilation, pads, depth_multiplier=None):
    """int64 accumulators of TFLite's conv / depthwise conv (padding = input zero point), NHWC."""
    n, h, wd, c = x.shape
    pt, pl, pb, pr = pads
    sh, sw = stride
    dh, dw = dilation
    xp = np.pad(x.astype(np.int64) - zi, ((0, 0), (pt, pb), (pl, pr), (0, 0)))
    if depth_multiplier is None:
        o, kh, kw, _ = w.shape
    else:
        _, kh, kw, o = w.shape
    oh = (h + pt + pb - dh * (kh - 1) - 1) // sh + 1
    ow = (wd + pl + pr - dw * (kw - 1) - 1) // sw + 1
    acc = np.zeros((n, oh, ow, o), np.int64)
    for ky in range(kh):
        for kx in range(kw):
            patch = xp[:, ky * dh: ky * dh + (oh - 1) * sh + 1: sh, kx * dw: kx * dw + (ow - 1) * sw + 1: sw, :]
            if depth_multiplier is None:
                acc += np.einsum("nhwc,oc->nhwo", patch, w[:, ky, kx, :].astype(np.int64))
            else:
                acc += np.repeat(patch, depth_multiplier, axis=-1) * w[0, ky, kx, :].astype(np.int64)
    return acc + np.asarray(bias, np.int64)


def _fc_acc(x, w, bias, zi):
    return (x.astype(np.int64).reshape(-1, w.shape[1]) - zi) @ w.astype(np.int64).T + np.asarray(bias, np.int64)


def _pick_requant(acc, rng, per_channel=True, spread=30.0):
    """Multipliers that map the accumulators' spread onto ~`spread` output steps (no saturated test data)."""
    std = np.maximum(acc.reshape(-1, acc.shape[-1]).std(axis=0), 1.0) if per_channel else \
        np.array([max(acc.std(), 1.0)])
    reals = spread / std * rng.uniform(0.7, 1.4, std.shape)
    qs = [quantize_multiplier(float(r)) for r in reals]
    return np.array([q for q, _ in qs], np.int64), np.array([s for _, s in qs], np.int64)


# ------------------------------------------------------------------------------ host build and run

_DRIVER = r"""
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
%(prototype)s
int main(int argc, char** argv)
{
    if (argc != 4) return 2;
    FILE* fi = fopen(argv[1], "rb");
    FILE* fo = fopen(argv[2], "wb");
    int count = atoi(argv[3]);
    int8_t* in = malloc(%(in_size)d);
    int8_t* out = malloc(%(out_size)d);
    if (!fi || !fo || !in || !out) return 3;
    for (int i = 0; i < count; i++) {
        if (fread(in, 1, %(in_size)d, fi) != %(in_size)d) return 4;
        %(name)s(in, out);
        if (fwrite(out, 1, %(out_size)d, fo) != %(out_size)d) return 5;
    }
    free(in);
    free(out);
    fclose(fi);
    fclose(fo);
    return 0;
}
"""


def run_on_host(kernel: tvm_kernels.Kernel, inputs: np.ndarray, tmp: Path) -> np.ndarray:
    """Compile `kernel` with the host gcc (warnings are errors, sanitizers on) and run it on each input."""
    in_size = int(np.prod(kernel.in_shape))
    out_size = int(np.prod(kernel.out_shape))
    src = tmp / f"{kernel.name}.c"
    drv = tmp / f"{kernel.name}_main.c"
    exe = tmp / kernel.name
    src.write_text(kernel.source)
    drv.write_text(_DRIVER % dict(prototype=kernel.prototype, in_size=in_size, out_size=out_size,
                                  name=kernel.name))
    cmd = [GCC, *CFLAGS, "-I", str(data_dir("runtime")), str(src), str(drv), "-o", str(exe)]
    res = subprocess.run(cmd, capture_output=True, text=True)
    assert res.returncode == 0, f"{' '.join(cmd)}\n{res.stderr}\n{kernel.source[-3000:]}"
    inputs = np.ascontiguousarray(inputs, np.int8).reshape(-1, in_size)
    (tmp / "in.bin").write_bytes(inputs.tobytes())
    res = subprocess.run([str(exe), str(tmp / "in.bin"), str(tmp / "out.bin"), str(len(inputs))],
                         capture_output=True, text=True, timeout=60)
    assert res.returncode == 0, res.stderr
    return np.frombuffer((tmp / "out.bin").read_bytes(), np.int8).reshape((len(inputs),) + kernel.out_shape)


def _inputs(rng, shape, count=3):
    """Random inputs plus the two extremes (all -128, all 127)."""
    xs = [rng.integers(-128, 128, shape, dtype=np.int64).astype(np.int8) for _ in range(count)]
    xs.append(np.full(shape, -128, np.int8))
    xs.append(np.full(shape, 127, np.int8))
    return np.stack(xs)


def _check(got, want, lo, hi):
    assert got.shape == want.shape
    mism = np.argwhere(got != want)
    assert mism.size == 0, f"{len(mism)} of {want.size} outputs differ, first at {mism[0]}: " \
                           f"got {got[tuple(mism[0])]}, want {want[tuple(mism[0])]}"
    random_part = want[:-2]  # the test data must exercise the arithmetic, not just the clamps
    assert len(np.unique(random_part)) >= min(20, random_part.size // 3)
    assert np.mean((random_part == lo) | (random_part == hi)) < 0.75  # a relu clamps about half


# ------------------------------------------------------------------------------ cases

CONV_CASES = {
    # name: (in_shape, (O, KH, KW), stride, dilation, pads, zi, zo, (act_min, act_max))
    "3x3_pad1": ((1, 8, 8, 4), (6, 3, 3), (1, 1), (1, 1), (1, 1, 1, 1), -3, 5, (-128, 127)),
    "3x3_stride2_same_relu6": ((1, 9, 10, 8), (6, 3, 3), (2, 2), (1, 1), (1, 0, 1, 1), 17, -128, (-128, 60)),
    "3x3_dilation2": ((1, 10, 10, 8), (8, 3, 3), (1, 1), (2, 2), (2, 2, 2, 2), 10, -7, (-128, 127)),
    "1x1_kws": ((1, 25, 5, 64), (64, 1, 1), (1, 1), (1, 1), (0, 0, 0, 0), -128, -128, (-128, 127)),
    "1x1_stride2_odd_out": ((1, 7, 7, 12), (7, 1, 1), (2, 2), (1, 1), (0, 0, 0, 0), 3, 0, (0, 127)),
    "10x4_stride2_c1_kws_first": ((1, 49, 10, 1), (16, 10, 4), (2, 2), (1, 1), (4, 1, 5, 2), -20, -128,
                                  (-128, 127)),
    "5x5_c3_pad2": ((1, 12, 12, 3), (8, 5, 5), (1, 1), (1, 1), (2, 2, 2, 2), -128, 12, (-128, 127)),
    "3x1_asym_stride_c12": ((1, 9, 6, 12), (4, 3, 1), (2, 1), (1, 1), (1, 0, 1, 0), 0, 3, (-100, 100)),
    # row mode of the SIMD schedules (c % 4 != 0, kw * c % 4 == 0): rows cut by left and right padding
    "3x2_c2_rows_pad": ((1, 7, 8, 2), (5, 3, 2), (1, 1), (1, 1), (1, 1, 1, 1), 9, -4, (-128, 127)),
    "2x4_c1_stride_rows": ((1, 9, 11, 1), (8, 2, 4), (2, 3), (2, 1), (0, 3, 1, 2), -128, 0, (-128, 127)),
    # 1x1 stride 1 unpadded = fully connected over the pixels, 2 pixels x 4 channels per call
    "1x1_pairs_even": ((1, 4, 6, 8), (8, 1, 1), (1, 1), (1, 1), (0, 0, 0, 0), 7, 3, (-128, 127)),
}

DW_CASES = {
    # name: (in_shape, multiplier, (KH, KW), stride, dilation, pads, zi, zo, (act_min, act_max))
    "3x3_kws": ((1, 25, 5, 64), 1, (3, 3), (1, 1), (1, 1), (1, 1, 1, 1), -128, -128, (-128, 127)),
    "3x3_mult2_stride2": ((1, 9, 9, 4), 2, (3, 3), (2, 2), (1, 1), (1, 1, 1, 1), 5, 2, (-128, 127)),
    "3x3_dilation2": ((1, 10, 10, 8), 1, (3, 3), (1, 1), (2, 2), (2, 2, 2, 2), -1, 0, (-128, 127)),
    "2x2_mult3_nopad": ((1, 6, 7, 3), 3, (2, 2), (1, 2), (1, 1), (0, 0, 0, 0), 100, -50, (-128, 127)),
    "3x3_relu6": ((1, 8, 8, 16), 1, (3, 3), (1, 1), (1, 1), (0, 1, 1, 0), -128, -128, (-128, 40)),
    # one input channel: compiled as an ordinary conv (micro_speech's first layer)
    "c1_mult8_like_micro_speech": ((1, 13, 10, 1), 8, (4, 4), (2, 2), (1, 1), (1, 1, 2, 1), 3, -2, (-128, 127)),
    "3x3_stride2_c8": ((1, 9, 7, 8), 1, (3, 3), (2, 2), (1, 1), (1, 1, 1, 1), 20, -9, (-128, 127)),
}

FC_CASES = {
    # name: (in_shape, O, zi, zo, (act_min, act_max), per_channel)
    "kws_64x12": ((1, 64), 12, -5, 14, (-128, 127), False),
    "batch2_per_channel": ((2, 32), 10, 2, -3, (-128, 127), True),
    "odd_30x7": ((1, 30), 7, -128, 0, (-128, 127), False),
    "256x5_relu": ((1, 256), 5, 127, -128, (-128, 127), False),
    "rows3_pairs_per_channel": ((3, 16), 8, -7, 5, (-128, 127), True),
    "rows4_pairs": ((4, 12), 4, 60, -1, (-100, 127), False),
}


def _schedules(channels, row=None):
    """Schedules a layer supports: SIMD when the reduction (input channels, or a whole kernel row of kw * c
    contiguous taps for convs with dilation 1 along x: `row`) is a multiple of 4."""
    ok = channels % 4 == 0 or (row is not None and row % 4 == 0)
    return ["portable", "smlad", "smlad_w16"] if ok else ["portable"]


@pytest.mark.parametrize("case", list(CONV_CASES))
def test_conv2d_bit_exact(case, tmp_path):
    in_shape, (o, kh, kw), stride, dilation, pads, zi, zo, (lo, hi) = CONV_CASES[case]
    rng = np.random.default_rng(zlib.crc32(case.encode()))
    c = in_shape[3]
    w = rng.integers(-127, 128, (o, kh, kw, c)).astype(np.int8)
    bias = rng.integers(-3000, 3000, o)
    xs = _inputs(rng, in_shape)
    acc = _conv_acc(xs[:, 0], w, bias, zi, stride, dilation, pads)
    mult, shift = _pick_requant(acc[:-2], rng)
    want = _requant(acc, mult, shift, zo, lo, hi)[:, None]
    golden = REF.conv2d_int8(xs[:, 0], w, bias, x_zp=zi, w_zp=0, stride=stride, dilation=dilation, pads=pads,
                             out_hw=acc.shape[1:3], multiplier=mult, shift=shift, out_zp=zo, act_min=lo,
                             act_max=hi)
    assert np.array_equal(golden, want[:, 0])
    for sched in _schedules(c, kw * c if dilation[1] == 1 else None):
        k = tvm_kernels.conv2d_s8(f"mcu_{case}_{sched}", in_shape, w, bias, mult, shift, input_zero_point=zi,
                                  output_zero_point=zo, act_min=lo, act_max=hi, stride=stride,
                                  dilation=dilation, pads=pads, schedule=sched)
        assert k.schedule == sched and k.macs == int(np.prod(k.out_shape)) * kh * kw * c
        _check(run_on_host(k, xs, tmp_path), want, lo, hi)


def test_conv2d_left_shift(tmp_path):
    """Multipliers > 1 (shift > 0): the `x * (1 << left_shift)` branch of MultiplyByQuantizedMultiplier."""
    rng = np.random.default_rng(7)
    in_shape, o = (1, 6, 6, 4), 4
    w = rng.integers(-2, 3, (o, 1, 1, 4)).astype(np.int8)
    xs = _inputs(rng, in_shape)
    xs[:-2] //= 12  # small inputs, small accumulators: the multipliers come out > 1
    acc = _conv_acc(xs[:, 0], w, np.zeros(o), 0, (1, 1), (1, 1), (0, 0, 0, 0))
    mult, shift = _pick_requant(acc[:-2], rng, spread=60.0)
    assert np.all(shift > 0)
    want = _requant(acc, mult, shift, 0, -128, 127)[:, None]
    for sched in ("portable", "smlad", "smlad_w16"):
        k = tvm_kernels.conv2d_s8(f"ls_{sched}", in_shape, w, None, mult, shift, input_zero_point=0,
                                  output_zero_point=0, schedule=sched)
        _check(run_on_host(k, xs, tmp_path), want, -128, 127)


@pytest.mark.parametrize("case", list(DW_CASES))
def test_depthwise_bit_exact(case, tmp_path):
    in_shape, m, (kh, kw), stride, dilation, pads, zi, zo, (lo, hi) = DW_CASES[case]
    rng = np.random.default_rng(zlib.crc32(case.encode()))
    oc = in_shape[3] * m
    w = rng.integers(-127, 128, (1, kh, kw, oc)).astype(np.int8)
    bias = rng.integers(-2000, 2000, oc)
    xs = _inputs(rng, in_shape)
    acc = _conv_acc(xs[:, 0], w, bias, zi, stride, dilation, pads, depth_multiplier=m)
    mult, shift = _pick_requant(acc[:-2], rng)
    want = _requant(acc, mult, shift, zo, lo, hi)[:, None]
    golden = REF.depthwise_conv2d_int8(xs[:, 0], w, bias, x_zp=zi, w_zp=0, stride=stride, dilation=dilation,
                                       pads=pads, out_hw=acc.shape[1:3], depth_multiplier=m, multiplier=mult,
                                       shift=shift, out_zp=zo, act_min=lo, act_max=hi)
    assert np.array_equal(golden, want[:, 0])
    c = in_shape[3]
    if c == 1:  # an ordinary conv: its schedules
        scheds = ["auto"] + _schedules(1, kw if dilation[1] == 1 else None)
    else:
        scheds = ["auto"] + (["portable", "smlad", "smlad_w16"] if m == 1 and c % 4 == 0 else ["portable"])
    for sched in scheds:
        k = tvm_kernels.depthwise_conv2d_s8(f"dw_{case}_{sched}", in_shape, w, bias, mult, shift,
                                            input_zero_point=zi, output_zero_point=zo, depth_multiplier=m,
                                            act_min=lo, act_max=hi, stride=stride, dilation=dilation, pads=pads,
                                            schedule=sched)
        assert k.macs == int(np.prod(k.out_shape)) * kh * kw
        if sched == "auto":  # 3x3, stride 1 or 2, dilation 1: the hand-written kernel (codegen/fast_kernels.py)
            fast = (kh, kw) == (3, 3) and m == 1 and c > 1 and dilation == (1, 1) and stride in ((1, 1), (2, 2))
            assert k.schedule == ("dw3x3" if fast else "smlad" if (c == 1 and kw % 4 == 0) or (c % 4 == 0 and m == 1)
                                  else "portable")
        _check(run_on_host(k, xs, tmp_path), want, lo, hi)


@pytest.mark.parametrize("case", list(FC_CASES))
def test_fully_connected_bit_exact(case, tmp_path):
    in_shape, o, zi, zo, (lo, hi), per_channel = FC_CASES[case]
    rng = np.random.default_rng(zlib.crc32(case.encode()))
    i = in_shape[-1]
    w = rng.integers(-127, 128, (o, i)).astype(np.int8)
    bias = rng.integers(-5000, 5000, o)
    xs = _inputs(rng, in_shape)
    acc = np.stack([_fc_acc(x, w, bias, zi) for x in xs])
    mult, shift = _pick_requant(acc[:-2], rng, per_channel=per_channel)
    want = _requant(acc, mult, shift, zo, lo, hi)
    golden = REF.fully_connected_int8(xs, w, bias, x_zp=zi, w_zp=0, multiplier=mult, shift=shift, out_zp=zo,
                                      act_min=lo, act_max=hi)
    assert np.array_equal(golden.reshape(want.shape), want)
    for sched in _schedules(i):
        k = tvm_kernels.fully_connected_s8(f"fc_{case}_{sched}", in_shape, w, bias, mult, shift,
                                           input_zero_point=zi, output_zero_point=zo, act_min=lo, act_max=hi,
                                           schedule=sched)
        got = run_on_host(k, xs, tmp_path).reshape(want.shape)
        _check(got, want, lo, hi)


# ------------------------------------------------------------------------------ the C itself

_REQUANT_CHECK = r"""
#include <stdio.h>
#include "mcu_requant.h"
static uint64_t s = 88172645463325252ull;
static uint32_t rnd(void) { s ^= s << 13; s ^= s >> 7; s ^= s << 17; return (uint32_t)(s >> 11); }
int main(void)
{
    long bad = 0;
    for (long i = 0; i < 4000000; i++) {
        const int32_t e = 1 + (int32_t)(rnd() % 31);
        const int32_t m = (int32_t)((1u << 30) + (rnd() & 0x3FFFFFFFu));
        int32_t acc = (int32_t)rnd();
        if (i & 1) acc >>= rnd() % 31;  /* small magnitudes too */
        if (i % 1000 == 0) acc = (i % 3000 == 0) ? INT32_MIN : (i % 2000 == 0 ? INT32_MAX : 0);
        const int64_t round = ((int64_t)1 << 30) + ((int64_t)1 << (30 + e));
        const int32_t want = mcu_requant_s8(acc, m, -e, 0, INT32_MIN, INT32_MAX);
        const int32_t got = mcu_requant_fast_s8(acc, m, round, e - 1, 0, INT32_MIN, INT32_MAX);
        if (want != got && bad++ < 5) printf("acc %ld m %ld e %ld: %ld != %ld\n", (long)acc, (long)m, (long)e,
                                             (long)got, (long)want);
    }
    printf("%ld\n", bad);
    return bad != 0;
}
"""


def test_fast_requant_equals_tflite_requant(tmp_path):
    """mcu_requant_fast_s8 (one SMLAL + shift) == mcu_requant_s8 (TFLite's literal sequence) for right
    shifts >= 1, on 4M random and extreme accumulators (the kernel tests check mcu_requant_s8 itself)."""
    src = tmp_path / "rq.c"
    src.write_text(_REQUANT_CHECK)
    exe = tmp_path / "rq"
    res = subprocess.run([GCC, *CFLAGS, "-I", str(data_dir("runtime")), str(src), "-o", str(exe)],
                         capture_output=True, text=True)
    assert res.returncode == 0, res.stderr
    res = subprocess.run([str(exe)], capture_output=True, text=True, timeout=60)
    assert res.returncode == 0 and res.stdout.strip() == "0", res.stdout

def test_generated_c_is_plain():
    """No TVM runtime, no DLTensor, no allocation, the signature the firmware calls, few stack bytes."""
    rng = np.random.default_rng(1)
    k = tvm_kernels.conv2d_s8("mcu_l3_conv2d", (1, 25, 5, 64), rng.integers(-127, 128, (64, 3, 3, 64)).astype(np.int8),
                              None, [1 << 30] * 64, [-7] * 64, input_zero_point=-128, output_zero_point=-128,
                              pads=(1, 1, 1, 1), schedule="smlad")  # TVM's kernel ("auto" is the shared one
    # on DSP cores, with its kh*kw*c-word im2col buffer: tests/test_conv_gemm.py)
    assert k.prototype == "void mcu_l3_conv2d(const int8_t* restrict in, int8_t* restrict out);"
    for bad in ("TVM", "DLTensor", "tvm_", "malloc", "Workspace", "TVMFFIAny"):
        assert bad not in k.source
    assert k.stack_bytes <= 16  # the accumulators of one micro-kernel call
    assert k.includes == ("mcu_requant.h", "mcu_dot_s8.h")
    assert "static const int8_t mcu_l3_conv2d_w[36864]" in k.source


def test_bad_arguments():
    w = np.zeros((4, 3, 3, 4), np.int8)
    with pytest.raises(ValueError, match="C identifier"):
        tvm_kernels.conv2d_s8("l-3", (1, 8, 8, 4), w, None, 1 << 30, 0, input_zero_point=0, output_zero_point=0)
    with pytest.raises(ValueError, match="does not match"):
        tvm_kernels.conv2d_s8("l3", (1, 8, 8, 3), w, None, 1 << 30, 0, input_zero_point=0, output_zero_point=0)
    with pytest.raises(ValueError, match="smlad"):
        tvm_kernels.conv2d_s8("l3", (1, 8, 8, 3), np.zeros((4, 3, 3, 3), np.int8), None, 1 << 30, 0,
                              input_zero_point=0, output_zero_point=0, schedule="smlad")
    with pytest.raises(ValueError, match="outside int8"):
        tvm_kernels.fully_connected_s8("fc", (1, 4), np.zeros((2, 4), np.int8), None, 1 << 30, 0,
                                       input_zero_point=200, output_zero_point=0)


def test_real_tensorize_matches_construction():
    """TVM's own `Schedule.tensorize` with the TensorIntrins of tvm_intrin gives the loop nest that
    tvm_kernels builds by blockize + replace (only where tensorize does not crash, see tvm_intrin)."""
    if not tvm_intrin.tensorize_works():
        message = "Schedule.tensorize crashes with this apache-tvm-ffi (0.1.15.x); pin apache-tvm-ffi==0.1.14.post0"
        if IN_CI:  # pyproject pins 0.1.14.post0, so CI has a working tensorize
            pytest.fail(message)
        pytest.skip(message)
    from tvm import s_tir, te

    k_len, o = 16, 4
    X = te.placeholder((1, k_len), "int8", name="in")
    W = te.placeholder((o, k_len), "int8", name="fc_w")
    rk = te.reduce_axis((0, k_len), "k")
    acc = te.compute((1, o), lambda b, oc: te.sum((X[b, rk].astype("int32") + 3) * W[oc, rk].astype("int32"),
                                                  axis=rk), name="acc")

    def schedule():
        sch = s_tir.Schedule(te.create_prim_func([X, W, acc]))
        blk = sch.get_sblock("acc")
        _b, oc, kk = sch.get_loops(blk)
        oc0, oc1 = sch.split(oc, [None, 2])
        sch.decompose_reduction(blk, oc1)
        return sch, oc1

    sch_a, loop_a = schedule()
    sch_a.tensorize(loop_a, tvm_intrin.dot2_intrin(k_len, k_len, 3))
    sch_b, loop_b = schedule()
    tvm_intrin.replace_loop_with_call(sch_b, loop_b, tvm_intrin.fc_dot_call(k_len, "in", "fc_w", 3, 2))
    body_a, _ = tvm_kernels._lower(sch_a.mod["main"], "k")
    body_b, _ = tvm_kernels._lower(sch_b.mod["main"], "k")
    assert "mcu_dot2_s8" in body_a
    assert body_a == body_b


def test_requant_matches_project_reference():
    """mcutool/reference.py (the golden model) and this file's requantization agree."""
    reference = REF
    rng = np.random.default_rng(3)
    for real in [0.0003, 0.017, 0.5, 0.99999, 1.7, 3.0e-7]:
        assert tuple(int(v) for v in reference.quantize_multiplier(real)) == quantize_multiplier(real)
    xs = np.concatenate([rng.integers(-(1 << 31), 1 << 31, 2000), [0, 1, -1, (1 << 31) - 1, -(1 << 31)]])
    for real in [0.0003, 0.017, 0.5, 1.7]:
        m, s = quantize_multiplier(real)
        want = multiply_by_quantized_multiplier(xs if s <= 0 else xs >> s, m, s)
        got = np.array([int(reference.multiply_by_quantized_multiplier(int(x), m, s))
                        for x in (xs if s <= 0 else xs >> s)])
        assert np.array_equal(got, want)


def _one_op_graph(kind, x_shape, w, bias, attrs, rng, out_shape):
    """A graph with one quantized op, TFLite-style scales (per-channel weights except per-tensor FC)."""
    g = ir.Graph("one")
    n_out = w.shape[3] if kind == "depthwise_conv2d" else w.shape[0]
    per_channel = kind != "fully_connected"
    w_scale = rng.uniform(0.002, 0.02, n_out if per_channel else 1)
    x_q = ir.Quant(scale=0.006, zero_point=-7)
    g.add_tensor(ir.Tensor("x", x_shape, "int8", x_q))
    g.add_tensor(ir.Tensor("w", w.shape, "int8", ir.Quant(w_scale, np.zeros(w_scale.size, np.int64),
                                                          axis=3 if kind == "depthwise_conv2d" else 0), data=w))
    g.add_tensor(ir.Tensor("b", bias.shape, "int32", ir.Quant(0.006 * w_scale, 0), data=bias.astype(np.int32)))
    g.add_tensor(ir.Tensor("y", out_shape, "int8", ir.Quant(scale=0.1, zero_point=3)))  # relu6 = 60 steps
    g.ops.append(ir.Op("layer", kind, ["x", "w", "b"], ["y"], attrs))
    g.inputs, g.outputs = ["x"], ["y"]
    g.validate()
    return g


@pytest.mark.parametrize("kind", ["conv2d", "depthwise_conv2d", "fully_connected"])
def test_kernel_for_op_matches_reference_run(kind, tmp_path):
    """IR op -> kernel_for_op -> host C equals reference.run on the same one-op graph."""
    rng = np.random.default_rng(11)
    if kind == "conv2d":
        x_shape, w = (1, 9, 9, 8), rng.integers(-127, 128, (12, 3, 3, 8)).astype(np.int8)
        attrs, out_shape = ir.Conv2DAttrs(stride=(2, 2), pads=(1, 1, 1, 1), activation="relu6"), (1, 5, 5, 12)
    elif kind == "depthwise_conv2d":
        x_shape, w = (1, 9, 9, 8), rng.integers(-127, 128, (1, 3, 3, 8)).astype(np.int8)
        attrs, out_shape = ir.DepthwiseConv2DAttrs(pads=(1, 1, 1, 1), activation="relu"), (1, 9, 9, 8)
    else:
        x_shape, w = (1, 48), rng.integers(-127, 128, (10, 48)).astype(np.int8)
        attrs, out_shape = ir.FullyConnectedAttrs(), (1, 10)
    bias = rng.integers(-2000, 2000, w.shape[3] if kind == "depthwise_conv2d" else w.shape[0])
    g = _one_op_graph(kind, x_shape, w, bias, attrs, rng, out_shape)
    xs = _inputs(rng, x_shape)
    want = np.stack([REF.run(g, {"x": x})["y"] for x in xs])
    k = tvm_kernels.kernel_for_op(g, g.ops[0])
    assert k.name == "mcu_layer"
    got = run_on_host(k, xs, tmp_path)
    lo = -128 if attrs.activation == "none" else 3
    _check(got, want, lo, 127 if attrs.activation != "relu6" else int(want.max()))


# ------------------------------------------------------------------------------ the SIMD path on Cortex-M7

ARM_GCC = shutil.which("arm-none-eabi-gcc")
QEMU_ARM = shutil.which("qemu-system-arm")
M7_FLAGS = ["-mcpu=cortex-m7", "-mthumb", "-O3", "-mfloat-abi=soft", "-std=c99", "-Wall", "-Wextra", "-Werror"]

_M7_STARTUP = r"""
#include <stdint.h>
extern uint32_t _estack, _sidata, _sdata, _edata, _sbss, _ebss;
int main(void);
static int semi(int op, const void* arg)
{
    register int r0 __asm__("r0") = op;
    register const void* r1 __asm__("r1") = arg;
    __asm__ volatile("bkpt 0xab" : "+r"(r0) : "r"(r1) : "memory");
    return r0;
}
void mcu_puts(const char* s) { semi(0x04, s); }
static void mcu_exit(int code)
{
    uint32_t blk[2] = {0x20026u, (uint32_t)code};
    semi(0x20, blk);
    for (;;) {}
}
void Reset_Handler(void)
{
    uint32_t *s = &_sidata, *d = &_sdata;
    while (d < &_edata) *d++ = *s++;
    for (d = &_sbss; d < &_ebss;) *d++ = 0;
    mcu_exit(main());
}
void Fault_Handler(void) { mcu_puts("FAULT\n"); mcu_exit(3); }
__attribute__((section(".vectors"), used)) const void* const vectors[16] = {
    &_estack, (void*)Reset_Handler, (void*)Fault_Handler, (void*)Fault_Handler, (void*)Fault_Handler,
    (void*)Fault_Handler, (void*)Fault_Handler};
"""

_M7_LINK = """
MEMORY { FLASH (rx) : ORIGIN = 0x00000000, LENGTH = 4M
         RAM (rwx) : ORIGIN = 0x20000000, LENGTH = 4M }
_estack = ORIGIN(RAM) + LENGTH(RAM);
SECTIONS {
  .text : { KEEP(*(.vectors)) *(.text*) *(.rodata*) . = ALIGN(4); } > FLASH
  _sidata = LOADADDR(.data);
  .data : { _sdata = .; *(.data*) . = ALIGN(4); _edata = .; } > RAM AT > FLASH
  .bss : { _sbss = .; *(.bss*) *(COMMON) . = ALIGN(4); _ebss = .; } > RAM
}
"""

# The CMSDK dual timer of QEMU's mps2 machines counts 25 MHz; under -icount shift=0 one tick = 40 instructions.
_M7_MAIN = r"""
#include <stdint.h>
void mcu_puts(const char* s);
%(prototype)s
static const int8_t input[%(in_size)d] __attribute__((aligned(4))) = {%(input)s};
static int8_t in_ram[%(in_size)d] __attribute__((aligned(4)));
static int8_t out_ram[%(out_size)d] __attribute__((aligned(4)));
#define T1_LOAD (*(volatile uint32_t*)0x40002000)
#define T1_VALUE (*(volatile uint32_t*)0x40002004)
#define T1_CTRL (*(volatile uint32_t*)0x40002008)
static void put_hex(const int8_t* p, int n)
{
    static const char hex[] = "0123456789abcdef";
    char line[2 * 64 + 2];
    for (int i = 0; i < n; i += 64) {
        int k = 0;
        for (int j = i; j < n && j < i + 64; j++) {
            line[k++] = hex[((uint8_t)p[j]) >> 4];
            line[k++] = hex[((uint8_t)p[j]) & 15];
        }
        line[k++] = '\n';
        line[k] = 0;
        mcu_puts(line);
    }
}
int main(void)
{
    for (int i = 0; i < %(in_size)d; i++) in_ram[i] = input[i];
    T1_LOAD = 0xFFFFFFFFu;
    T1_CTRL = 0x82u;  /* enabled, 32-bit, free running */
    const uint32_t t0 = T1_VALUE;
    %(name)s(in_ram, out_ram);
    const uint32_t t1 = T1_VALUE;
    char buf[24];
    uint32_t v = t0 - t1;
    int k = 0;
    char digits[12];
    do { digits[k++] = (char)('0' + v %% 10); v /= 10; } while (v);
    int j = 0;
    buf[j++] = 'T';
    while (k) buf[j++] = digits[--k];
    buf[j++] = '\n';
    buf[j] = 0;
    mcu_puts(buf);
    put_hex(out_ram, %(out_size)d);
    return 0;
}
"""


def run_on_cortex_m7(kernel: tvm_kernels.Kernel, x: np.ndarray, tmp: Path) -> tuple[np.ndarray, int]:
    """Cross-compile `kernel` for Cortex-M7, run it once in QEMU (mps2-an500); (output, instructions)."""
    in_size, out_size = int(np.prod(kernel.in_shape)), int(np.prod(kernel.out_shape))
    files = {"kernel.c": kernel.source, "startup.c": _M7_STARTUP, "link.ld": _M7_LINK,
             "main.c": _M7_MAIN % dict(prototype=kernel.prototype, in_size=in_size, out_size=out_size,
                                       name=kernel.name, input=", ".join(str(int(v)) for v in x.reshape(-1)))}
    for fname, text in files.items():
        (tmp / fname).write_text(text)
    elf = tmp / "k.elf"
    cmd = [ARM_GCC, *M7_FLAGS, "-I", str(data_dir("runtime")), str(tmp / "kernel.c"), str(tmp / "main.c"),
           str(tmp / "startup.c"), "-nostartfiles", "--specs=nano.specs", "--specs=nosys.specs",
           "-T", str(tmp / "link.ld"), "-o", str(elf)]
    res = subprocess.run(cmd, capture_output=True, text=True)
    assert res.returncode == 0, res.stderr
    res = subprocess.run([QEMU_ARM, "-M", "mps2-an500", "-nographic", "-semihosting-config",
                          "enable=on,target=native", "-icount", "shift=0", "-kernel", str(elf)],
                         capture_output=True, text=True, timeout=60)
    text = res.stdout + res.stderr
    assert res.returncode == 0 and "FAULT" not in text, text[-2000:]
    lines = [ln for ln in text.splitlines() if ln]
    ticks = int(next(ln for ln in lines if ln.startswith("T"))[1:])
    data = bytes.fromhex("".join(ln for ln in lines if not ln.startswith("T")))
    return np.frombuffer(data, np.int8).reshape(kernel.out_shape), ticks * 40


M7_CASES = {
    # name: (kind, in_shape, n_out, kernel, stride, pads, zi, zo, (lo, hi), schedule, channel_block, min MAC/instr)
    "kws_pointwise_smlad": ("conv", (1, 25, 5, 64), 64, (1, 1), (1, 1), (0, 0, 0, 0), -128, -128, (-128, 127),
                            "smlad", 2, 0.45),
    "kws_pointwise_smlad_w16": ("conv", (1, 25, 5, 64), 64, (1, 1), (1, 1), (0, 0, 0, 0), -128, -128,
                                (-128, 127), "smlad_w16", 4, 0.55),
    "3x3_stride2_pad_smlad": ("conv", (1, 9, 10, 8), 6, (3, 3), (2, 2), (1, 0, 1, 1), 17, -128, (-128, 60),
                              "smlad", 2, 0.0),
    "3x3_pad_w16_block1": ("conv", (1, 8, 8, 12), 5, (3, 3), (1, 1), (1, 1, 1, 1), -3, 4, (-128, 127),
                           "smlad_w16", 1, 0.0),
    "fc_smlad_block4": ("fc", (1, 64), 12, None, None, None, -5, 14, (-128, 127), "smlad", 4, 0.0),
    "fc_w16_odd": ("fc", (1, 48), 7, None, None, None, 9, -2, (-128, 127), "smlad_w16", 2, 0.0),
    "fc_pairs_odd_rows": ("fc", (5, 32), 8, None, None, None, -3, 1, (-128, 127), "smlad", 4, 0.0),
    # a 1x1 conv on one pixel (the last band of an in-place 1x1 conv on a 1-D map): input offset in the bias
    "pointwise_one_pixel_w16": ("conv", (1, 1, 1, 16), 16, (1, 1), (1, 1), (0, 0, 0, 0), 37, -5, (-128, 127),
                                "smlad_w16", 4, 0.0),
    # new SIMD schedules: 1x1 conv as 2 pixels x 4 channels (above, kws_pointwise_*), depthwise SMLABB/SMLATT,
    # row mode for 1 input channel (KWS's first layer, padded on both sides)
    "kws_depthwise_smlad_w16": ("dw", (1, 25, 5, 64), 64, (3, 3), (1, 1), (1, 1, 1, 1), -128, -128, (-128, 127),
                                "smlad_w16", 4, 0.18),
    "depthwise_smlad_stride2": ("dw", (1, 9, 7, 8), 8, (3, 3), (2, 2), (1, 1, 1, 1), 20, -9, (-128, 127),
                                "smlad", 4, 0.0),
    "kws_first_c1_rows_w16": ("conv", (1, 49, 10, 1), 64, (10, 4), (2, 2), (4, 1, 5, 2), -83, -128, (-128, 127),
                              "smlad_w16", 4, 0.28),
    "c2_rows_smlad_block1": ("conv", (1, 7, 8, 2), 5, (3, 2), (1, 1), (1, 1, 1, 1), 9, -4, (-128, 127),
                             "smlad", 1, 0.0),
}


@pytest.mark.qemu
@pytest.mark.parametrize("case", list(M7_CASES))
def test_simd_kernels_bit_exact_on_cortex_m7(case, tmp_path):
    """The SMLAD micro-kernels (only compiled for cores with the DSP extension) against numpy, in QEMU."""
    require_tool("arm-none-eabi-gcc")
    require_tool("qemu-system-arm")
    kind, in_shape, o, kern, stride, pads, zi, zo, (lo, hi), sched, block, floor = M7_CASES[case]
    rng = np.random.default_rng(zlib.crc32(case.encode()))
    x = rng.integers(-128, 128, in_shape).astype(np.int8)
    if kind == "dw":
        w = rng.integers(-127, 128, (1, *kern, o)).astype(np.int8)
        bias = rng.integers(-3000, 3000, o)
        acc = _conv_acc(x, w, bias, zi, stride, (1, 1), pads, depth_multiplier=1)
        mult, shift = _pick_requant(acc, rng)
        k = tvm_kernels.depthwise_conv2d_s8(f"m7_{case}", in_shape, w, bias, mult, shift, input_zero_point=zi,
                                            output_zero_point=zo, act_min=lo, act_max=hi, stride=stride,
                                            pads=pads, schedule=sched)
    elif kind == "conv":
        w = rng.integers(-127, 128, (o, *kern, in_shape[3])).astype(np.int8)
        bias = rng.integers(-3000, 3000, o)
        acc = _conv_acc(x, w, bias, zi, stride, (1, 1), pads)
        mult, shift = _pick_requant(acc, rng)
        k = tvm_kernels.conv2d_s8(f"m7_{case}", in_shape, w, bias, mult, shift, input_zero_point=zi,
                                  output_zero_point=zo, act_min=lo, act_max=hi, stride=stride, pads=pads,
                                  schedule=sched, tuning={"channel_block": block})
    else:
        w = rng.integers(-127, 128, (o, in_shape[1])).astype(np.int8)
        bias = rng.integers(-3000, 3000, o)
        acc = _fc_acc(x, w, bias, zi)
        mult, shift = _pick_requant(acc, rng, per_channel=False)
        k = tvm_kernels.fully_connected_s8(f"m7_{case}", in_shape, w, bias, mult, shift, input_zero_point=zi,
                                           output_zero_point=zo, act_min=lo, act_max=hi, schedule=sched,
                                           tuning={"channel_block": block})
    want = _requant(acc, mult, shift, zo, lo, hi).reshape(k.out_shape)
    got, instructions = run_on_cortex_m7(k, x, tmp_path)
    assert np.array_equal(got, want), f"{np.sum(got != want)} of {want.size} outputs differ"
    assert k.macs / instructions >= floor, f"{k.macs / instructions:.3f} MAC/instruction"


# ------------------------------------------------------------------------------ real models

@pytest.mark.parametrize("model,schedules", [("kws_ref_model.tflite", ("portable", "auto", "smlad_w16")),
                                             ("ad01_int8.tflite", ("auto",))])
def test_real_model_layers_bit_exact(model, schedules, tmp_path):
    """Every conv / depthwise / fully connected layer of a real TFLite model, fed the reference's own
    intermediate tensors, reproduces the reference's output bytes."""
    path = shared_model(model)
    from mcutool.frontends import load_model

    g = load_model(path)
    x_t = g.tensor(g.inputs[0])
    x = np.random.default_rng(5).integers(-128, 128, x_t.shape).astype(np.int8)
    values = REF.run(g, {g.inputs[0]: x}, keep=True)
    checked = 0
    for op in g.ops:
        if op.kind not in ("conv2d", "depthwise_conv2d", "fully_connected"):
            continue
        channels = g.tensor(op.inputs[0]).shape[-1] if op.kind != "fully_connected" else g.tensor(op.inputs[1]).shape[1]
        for sched in schedules:
            if sched == "smlad_w16" and (op.kind == "depthwise_conv2d" or channels % 4):
                continue
            k = tvm_kernels.kernel_for_op(g, op, schedule=sched)
            got = run_on_host(k, values[op.inputs[0]][None], tmp_path)[0]
            want = values[op.outputs[0]].reshape(got.shape)
            assert np.array_equal(got, want), f"{op.name} ({k.schedule}): {np.sum(got != want)} outputs differ"
            checked += 1
    assert checked >= 5
