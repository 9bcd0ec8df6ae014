"""The hand-written shape-specialised kernels of mcutool/codegen/fast_kernels.py (depthwise 3x3 through int16
row rings, im2col first convs), bit-exact against TFLite's arithmetic written out in numpy
(test_tvm_kernels' _conv_acc / _requant) and the project reference, on the host (ASan/UBSan) and on Cortex-M7
in QEMU (the SMLAD paths), where the MAC/instruction floors are checked too."""
from __future__ import annotations

import subprocess
import zlib

import numpy as np
import pytest

from conftest import require_tool
from mcutool import reference as REF
from mcutool.paths import data_dir
from mcutool.codegen import tvm_kernels
from test_tvm_kernels import (CFLAGS, GCC, _check, _conv_acc, _inputs, _pick_requant, _requant, run_on_cortex_m7,
                              run_on_host)

DW_CASES = {
    # name: (in_shape, stride, pads, zi, zo, (act_min, act_max))
    "kws_25x5x64": ((1, 25, 5, 64), 1, (1, 1, 1, 1), -128, -128, (-128, 127)),
    "inplace_band_top": ((1, 2, 5, 64), 1, (1, 1, 0, 1), 7, -3, (-128, 127)),  # a row band of an in-place layer
    "inplace_band_bottom": ((1, 3, 5, 12), 1, (0, 1, 1, 1), -20, 5, (-128, 127)),
    "odd_width_c6_relu6": ((1, 7, 9, 6), 1, (1, 1, 1, 1), 30, -128, (-128, 40)),
    "s2_same_vww": ((1, 12, 12, 16), 2, (0, 0, 1, 1), -128, -128, (-128, 127)),
    "s2_pad1_odd": ((1, 9, 7, 8), 2, (1, 1, 1, 1), 20, -9, (-128, 127)),
    "valid_c5": ((1, 6, 8, 5), 1, (0, 0, 0, 0), 127, 0, (-100, 100)),
    "s2_valid_w1col": ((1, 5, 3, 4), 2, (0, 0, 0, 0), -1, 2, (-128, 127)),
    "pad2": ((1, 4, 4, 4), 1, (2, 2, 2, 2), 3, 1, (-128, 127)),
    "s2_same_w2": ((1, 6, 2, 8), 2, (0, 0, 1, 1), 9, -4, (-128, 127)),  # no window inside along x
    "s2_pad3": ((1, 8, 9, 4), 2, (3, 3, 2, 2), -7, 3, (-128, 127)),
    # stride 2 without top/left padding: the windows past the bottom / right edge (1 or 2 rows and columns
    # inside) take mcu_dw3x3_s2_edge
    "s2_pads_b2_r2": ((1, 7, 7, 12), 2, (0, 0, 2, 2), 13, -5, (-128, 127)),
    # over the columns (fast_kernels.dw3x3_by_cols: rows shorter than 8, columns longer), asymmetric pads
    "cols_tall_pads_t1_l0_b2_r1": ((1, 13, 3, 8), 1, (1, 0, 2, 1), 11, -6, (-128, 127)),
    "cols_tall_valid_relu": ((1, 10, 6, 5), 1, (0, 0, 0, 0), -40, -128, (-128, 127)),
}

CONV_CASES = {
    # name: (in_shape, (O, KH, KW), stride, pads, zi, zo, (act_min, act_max))
    "vww_first_s2_same": ((1, 20, 20, 3), (8, 3, 3), (2, 2), (0, 0, 1, 1), -1, -128, (-128, 127)),
    "resnet8_first_pad1": ((1, 12, 12, 3), (16, 3, 3), (1, 1), (1, 1, 1, 1), 5, 9, (-128, 127)),
    "c3_5x5_pad2_o6": ((1, 10, 9, 3), (6, 5, 5), (1, 1), (2, 2, 2, 2), -128, 12, (-128, 127)),
    "c2_3x3_relu6_o5": ((1, 7, 8, 2), (5, 3, 3), (2, 1), (1, 0, 1, 2), 40, -128, (-128, 60)),
}


def _dw_case(case):
    in_shape, s, pads, zi, zo, (lo, hi) = DW_CASES[case]
    rng = np.random.default_rng(zlib.crc32(case.encode()))
    c = in_shape[3]
    w = rng.integers(-128, 128, (1, 3, 3, c)).astype(np.int8)
    w[0, 0, 0, 0] = -128  # the int8 extreme (TFLite's weights are symmetric, but the arithmetic must hold)
    bias = rng.integers(-3000, 3000, c)
    xs = _inputs(rng, in_shape)
    acc = _conv_acc(xs[:, 0], w, bias, zi, (s, s), (1, 1), pads, depth_multiplier=1)
    mult, shift = _pick_requant(acc[:-2], rng)
    want = _requant(acc, mult, shift, zo, lo, hi)[:, None]
    golden = REF.depthwise_conv2d_int8(xs[:, 0], w, bias, x_zp=zi, w_zp=0, stride=(s, s), dilation=(1, 1),
                                       pads=pads, out_hw=acc.shape[1:3], depth_multiplier=1, multiplier=mult,
                                       shift=shift, out_zp=zo, act_min=lo, act_max=hi)
    assert np.array_equal(golden, want[:, 0])
    k = tvm_kernels.depthwise_conv2d_s8(f"dwf_{case}", in_shape, w, bias, mult, shift, input_zero_point=zi,
                                        output_zero_point=zo, act_min=lo, act_max=hi, stride=(s, s), pads=pads)
    assert k.schedule == "dw3x3" and k.macs == int(np.prod(k.out_shape)) * 9
    return k, xs, want, (lo, hi)


def _conv_case(case):
    in_shape, (o, kh, kw), stride, pads, zi, zo, (lo, hi) = CONV_CASES[case]
    rng = np.random.default_rng(zlib.crc32(case.encode()))
    c = in_shape[3]
    w = rng.integers(-127, 128, (o, kh, kw, c)).astype(np.int8)
    bias = rng.integers(-3000, 3000, o)
    xs = _inputs(rng, in_shape)
    acc = _conv_acc(xs[:, 0], w, bias, zi, stride, (1, 1), pads)
    mult, shift = _pick_requant(acc[:-2], rng)
    want = _requant(acc, mult, shift, zo, lo, hi)[:, None]
    golden = REF.conv2d_int8(xs[:, 0], w, bias, x_zp=zi, w_zp=0, stride=stride, dilation=(1, 1), pads=pads,
                             out_hw=acc.shape[1:3], multiplier=mult, shift=shift, out_zp=zo, act_min=lo,
                             act_max=hi)
    assert np.array_equal(golden, want[:, 0])
    k = tvm_kernels.conv2d_s8(f"im2col_{case}", in_shape, w, bias, mult, shift, input_zero_point=zi,
                              output_zero_point=zo, act_min=lo, act_max=hi, stride=stride, pads=pads)
    assert k.schedule == "im2col_w16" and k.macs == int(np.prod(k.out_shape)) * kh * kw * c
    return k, xs, want, (lo, hi)


@pytest.mark.parametrize("case", list(DW_CASES))
def test_depthwise_3x3_bit_exact_on_host(case, tmp_path):
    require_tool("gcc")
    k, xs, want, (lo, hi) = _dw_case(case)
    _check(run_on_host(k, xs, tmp_path), want, lo, hi)


@pytest.mark.parametrize("case", list(CONV_CASES))
def test_im2col_conv_bit_exact_on_host(case, tmp_path):
    require_tool("gcc")
    k, xs, want, (lo, hi) = _conv_case(case)
    _check(run_on_host(k, xs, tmp_path), want, lo, hi)


def test_explicit_schedules_keep_tvm_kernels():
    """Only "auto" picks the hand-written kernels; a named schedule is TVM's, as before."""
    rng = np.random.default_rng(0)
    w = rng.integers(-127, 128, (1, 3, 3, 8)).astype(np.int8)
    k = tvm_kernels.depthwise_conv2d_s8("dw_named", (1, 6, 6, 8), w, None, 1 << 30, -8, input_zero_point=0,
                                        output_zero_point=0, pads=(1, 1, 1, 1), schedule="smlad")
    assert k.schedule == "smlad"
    # a left shift somewhere: the fast requantization does not apply, TVM's kernel is used
    k = tvm_kernels.depthwise_conv2d_s8("dw_left", (1, 6, 6, 8), w, None, 1 << 30, 1, input_zero_point=0,
                                        output_zero_point=0, pads=(1, 1, 1, 1))
    assert k.schedule == "smlad"


M7_FLOORS = {  # MAC/instruction floors on Cortex-M7 (QEMU -icount, -O3), about 10 % under what was measured
    # (0.414, 0.318, 0.319, 0.225; 0.511, 0.530, 0.440): the TVM kernels they replace ran at 0.18-0.27
    "dw:kws_25x5x64": 0.37, "dw:s2_same_vww": 0.28, "dw:odd_width_c6_relu6": 0.28, "dw:s2_pad1_odd": 0.2,
    "dw:cols_tall_pads_t1_l0_b2_r1": 0.2, "dw:s2_pads_b2_r2": 0.2,
    "conv:vww_first_s2_same": 0.46, "conv:resnet8_first_pad1": 0.47, "conv:c3_5x5_pad2_o6": 0.39,
}


@pytest.mark.qemu
@pytest.mark.parametrize("case", list(M7_FLOORS))
def test_fast_kernels_bit_exact_on_cortex_m7(case, tmp_path):
    """The SMLAD paths (compiled only for cores with DSP) against numpy in QEMU, with their speed."""
    require_tool("arm-none-eabi-gcc")
    require_tool("qemu-system-arm")
    kind, name = case.split(":")
    k, xs, want, _ = _dw_case(name) if kind == "dw" else _conv_case(name)
    for i in (0, len(xs) - 1):  # a random input and the all-127 one
        got, instructions = run_on_cortex_m7(k, xs[i], tmp_path)
        assert np.array_equal(got, want[i].reshape(got.shape)), f"{np.sum(got != want[i].reshape(got.shape))} differ"
    print(f"{case}: {k.macs / instructions:.3f} MAC/instr")
    assert k.macs / instructions >= M7_FLOORS[case], f"{k.macs / instructions:.3f} MAC/instruction"



# ------------------------------------------------------------------------------ 1x1 convs over few input channels

PW_CASES = {
    # name: (in_shape, n_out, stride, zi, zo, (act_min, act_max), Cortex-M7 MAC/instr floor)
    "pw_vww_8_16_relu": ((1, 12, 12, 8), 16, (1, 1), -128, -128, (-128, 127), 0.5),  # 0.59 measured
    "pw_c4_o6_odd_width": ((1, 5, 7, 4), 6, (1, 1), 11, -3, (-128, 127), 0.0),
    "pw_c12_o10_s2_clamped": ((1, 9, 8, 12), 10, (2, 2), -7, 5, (-100, 100), 0.0),
    "pw_c8_o4_s2_odd": ((1, 7, 9, 8), 4, (2, 2), 30, -128, (-128, 60), 0.0),
    "pw_resnet8_16_32_s2": ((1, 16, 16, 16), 32, (2, 2), 17, -128, (-128, 127), 0.65),  # 0.72 measured
    "pw_c16_o6_odd_width": ((1, 3, 5, 16), 6, (1, 1), -60, 20, (-128, 127), 0.0),
    "pw_vww_32_32_relu": ((1, 12, 12, 32), 32, (1, 1), -128, -128, (-128, 127), 0.78),  # 0.87 measured
    "pw_c32_o10_odd_width_s2": ((1, 5, 7, 32), 10, (2, 2), 3, -7, (-128, 127), 0.0),
}


def _pw_case(case):
    in_shape, o, stride, zi, zo, (lo, hi), _ = PW_CASES[case]
    rng = np.random.default_rng(zlib.crc32(case.encode()))
    w = rng.integers(-127, 128, (o, 1, 1, in_shape[3])).astype(np.int8)
    bias = rng.integers(-3000, 3000, o)
    xs = _inputs(rng, in_shape)
    acc = _conv_acc(xs[:, 0], w, bias, zi, stride, (1, 1), (0, 0, 0, 0))
    mult, shift = _pick_requant(acc[:-2], rng)
    want = _requant(acc, mult, shift, zo, lo, hi)[:, None]
    k = tvm_kernels.conv2d_s8(f"pw_{case}", in_shape, w, bias, mult, shift, input_zero_point=zi,
                              output_zero_point=zo, act_min=lo, act_max=hi, stride=stride)
    assert "mcu_conv1x1_small_s8(in, out, " in k.source and k.schedule.startswith("gemm|")
    return k, xs, want, (lo, hi)


@pytest.mark.parametrize("case", list(PW_CASES))
def test_pointwise_small_bit_exact_on_host(case, tmp_path, monkeypatch):
    """The plain-C path of runtime/mcu_conv1x1_small_s8.h, selected as on DSP cores (MCU_GEMM=1)."""
    require_tool("gcc")
    import test_tvm_kernels as T
    k, xs, want, (lo, hi) = _pw_case(case)
    monkeypatch.setattr(T, "CFLAGS", T.CFLAGS + ["-DMCU_GEMM=1"])
    _check(T.run_on_host(k, xs, tmp_path), want, lo, hi)


@pytest.mark.qemu
@pytest.mark.parametrize("case", list(PW_CASES))
def test_pointwise_small_bit_exact_on_cortex_m7(case, tmp_path):
    require_tool("arm-none-eabi-gcc")
    require_tool("qemu-system-arm")
    k, xs, want, _ = _pw_case(case)
    for i in (0, len(xs) - 1):
        got, instructions = run_on_cortex_m7(k, xs[i], tmp_path)
        assert np.array_equal(got, want[i].reshape(got.shape)), f"{np.sum(got != want[i].reshape(got.shape))} differ"
    print(f"{case}: {k.macs / instructions:.3f} MAC/instr")
    assert k.macs / instructions >= PW_CASES[case][-1], f"{k.macs / instructions:.3f} MAC/instruction"


def test_pointwise_small_only_up_to_32_channels():
    """Other input channel counts keep the shared conv kernel and int8 weights (its tap loop amortizes the block
    cost from 64 on), as do padded 1x1 convs."""
    rng = np.random.default_rng(5)
    for c, pads in ((64, (0, 0, 0, 0)), (20, (0, 0, 0, 0)), (8, (1, 1, 1, 1))):
        w = rng.integers(-127, 128, (8, 1, 1, c)).astype(np.int8)
        k = tvm_kernels.conv2d_s8("pw_kept", (1, 6, 6, c), w, None, [1 << 30] * 8, [-9] * 8, input_zero_point=3,
                                  output_zero_point=-2, pads=pads)
        assert "mcu_conv1x1_small_s8(" not in k.source and "mcu_conv_gemm_s8(in, out, &p, buf);" in k.source


# ------------------------------------------------------------------------------ small fully connected layers

FC_CASES = {
    # name: (rows, inputs, outputs, zi, zo, (act_min, act_max), Cortex-M7 MAC/instr floor)
    "fc_vww_256_2": (1, 256, 2, -128, 7, (-128, 127), 0.7),  # 0.800 measured (widened per channel pair)
    "fc_resnet8_64_10_relu": (1, 64, 10, 5, -128, (-128, 127), 0.72),  # 0.800: its row widened once (10 outputs)
    "fc_widened_row_2_rows_48_11": (2, 48, 11, -17, 9, (-128, 127), 0.0),  # widened rows, an odd last channel
    "fc_3_rows_24_6": (3, 24, 6, 2, -3, (-128, 127), 0.0),
    "fc_odd_outputs_32_7_clamped": (1, 32, 7, -9, 4, (-90, 110), 0.0),
}


def _fc_case(case):
    import test_tvm_kernels as T
    rows, i, o, zi, zo, (lo, hi), _ = FC_CASES[case]
    rng = np.random.default_rng(zlib.crc32(case.encode()))
    w = rng.integers(-127, 128, (o, i)).astype(np.int8)
    w[0, 0] = -127
    bias = rng.integers(-3000, 3000, o)
    xs = _inputs(rng, (rows, i))
    acc = np.stack([T._fc_acc(x, w, bias, zi) for x in xs])
    mult, shift = _pick_requant(acc[:-2], rng, per_channel=False)
    want = _requant(acc, mult, shift, zo, lo, hi)
    k = tvm_kernels.fully_connected_s8(f"fc_{case}", (rows, i), w, bias, mult, shift, input_zero_point=zi,
                                       output_zero_point=zo, act_min=lo, act_max=hi)
    assert "mcu_fc_w16_s8(in, out, " in k.source and k.schedule.startswith("gemm|")
    from mcutool.codegen import fast_kernels
    widened = i <= fast_kernels.FC_W16_MAX_BUF_INPUTS and o >= fast_kernels.FC_W16_MIN_BUF_OUTPUTS
    assert ("int32_t xbuf[" in k.source) == widened  # both paths are among the cases
    return k, xs, want.reshape((len(xs),) + k.out_shape), (lo, hi)


@pytest.mark.parametrize("case", list(FC_CASES))
def test_fc_w16_bit_exact_on_host(case, tmp_path, monkeypatch):
    """The plain-C path of mcu_fc_w16_s8 (runtime/mcu_conv1x1_small_s8.h), selected as on DSP cores."""
    require_tool("gcc")
    import test_tvm_kernels as T
    k, xs, want, (lo, hi) = _fc_case(case)
    monkeypatch.setattr(T, "CFLAGS", T.CFLAGS + ["-DMCU_GEMM=1"])
    got = T.run_on_host(k, xs, tmp_path)
    assert np.array_equal(got, want), f"{np.sum(got != want)} of {want.size} differ"


@pytest.mark.qemu
@pytest.mark.parametrize("case", list(FC_CASES))
def test_fc_w16_bit_exact_on_cortex_m7(case, tmp_path):
    require_tool("arm-none-eabi-gcc")
    require_tool("qemu-system-arm")
    k, xs, want, _ = _fc_case(case)
    for i in (0, len(xs) - 1):
        got, instructions = run_on_cortex_m7(k, xs[i], tmp_path)
        assert np.array_equal(got, want[i].reshape(got.shape)), f"{np.sum(got != want[i].reshape(got.shape))} differ"
    print(f"{case}: {k.macs / instructions:.3f} MAC/instr")
    assert k.macs / instructions >= FC_CASES[case][-1], f"{k.macs / instructions:.3f} MAC/instruction"


def test_fc_w16_only_for_small_weights():
    """int16 weights only where they cost at most 4 KB more flash: AD's 128x128 keeps int8 and the shared kernel."""
    rng = np.random.default_rng(9)
    for o, i in ((128, 128), (8, 1024)):
        w = rng.integers(-127, 128, (o, i)).astype(np.int8)
        k = tvm_kernels.fully_connected_s8("fc_big", (1, i), w, None, [1 << 30], [-9], input_zero_point=3,
                                           output_zero_point=-2)
        assert "mcu_fc_w16_s8(" not in k.source and "mcu_conv_gemm_s8(in, out, &p, buf);" in k.source

# ------------------------------------------------------------------------------ one-SMMLAR requantization

_X2_CHECK = r"""
#include <stdint.h>
#include "mcu_requant.h"
static uint64_t s = 88172645463325252ull;
static uint32_t rnd(void) { s ^= s << 13; s ^= s >> 7; s ^= s << 17; return (uint32_t)(s >> 11); }
/* mismatches of mcu_requant_x2_s8 against mcu_requant_s8 (TFLite's sequence) over n random cases */
static long x2_mismatches(long n)
{
    long bad = 0;
    for (long i = 0; i < n; i++) {
        const int32_t e = 1 + (int32_t)(rnd() % 23);
        const int32_t m = (int32_t)((1u << 30) + (rnd() & 0x3FFFFFFFu));
        const int32_t zp = (int32_t)(rnd() % 256) - 128;
        int32_t acc = (int32_t)(rnd() >> 2) - (1 << 29) * 2 * (int32_t)(rnd() & 1); /* in [-2^30, 2^30) */
        if (i & 1) acc >>= rnd() % 30; /* small magnitudes, where the ties are */
        if (i % 4 == 2) acc = (acc & ~((1 << e) - 1)) + (1 << (e - 1)) * (int32_t)(rnd() % 3); /* near ties */
        if (acc >= (1 << 30))
            acc = (1 << 30) - 1; /* |2 acc| < 2^31 */
        const int32_t c = (1 << (e - 1)) + zp * (1 << e);
        const int64_t q = (int64_t)acc * m / ((int64_t)1 << 31);
        if ((q < 0 ? -q : q) + (c < 0 ? -c : c) + 2 >= ((int64_t)1 << 31))
            continue; /* outside the bound the generator checks */
        /* with the sign term: any clamp; without it: act_min >= zp */
        if (mcu_requant_x2_s8(2 * acc, m, c, e, 1, -128, 127) != mcu_requant_s8(acc, m, -e, zp, -128, 127))
            bad++;
        if (mcu_requant_x2_s8(2 * acc, m, c, e, 0, zp, 127) != mcu_requant_s8(acc, m, -e, zp, zp, 127))
            bad++;
    }
    return bad;
}
"""


def test_requant_x2_equals_tflite_requant_on_host(tmp_path):
    """mcu_requant_x2_s8 (portable path) == mcu_requant_s8 (TFLite's literal sequence; the kernel tests of
    test_tvm_kernels check it against numpy) on 2M random, small and near-tie accumulators."""
    require_tool("gcc")
    src = tmp_path / "x2.c"
    src.write_text(_X2_CHECK + '#include <stdio.h>\nint main(void) { long b = x2_mismatches(2000000); '
                   'printf("%ld\\n", b); return b != 0; }\n')
    res = subprocess.run([GCC, *CFLAGS, "-I", str(data_dir("runtime")), str(src), "-o", str(tmp_path / "x2")],
                         capture_output=True, text=True)
    assert res.returncode == 0, res.stderr
    res = subprocess.run([str(tmp_path / "x2")], capture_output=True, text=True, timeout=120)
    assert res.returncode == 0 and res.stdout.strip() == "0", res.stdout


@pytest.mark.qemu
def test_requant_x2_smmlar_equals_tflite_requant_on_cortex_m7(tmp_path):
    """The SMMLAR path of mcu_requant_x2_s8 against mcu_requant_s8 in QEMU (Cortex-M7), 100k cases."""
    require_tool("arm-none-eabi-gcc")
    require_tool("qemu-system-arm")
    src = _X2_CHECK + ("void x2_check(const int8_t* restrict in, int8_t* restrict out)\n{\n    (void)in;\n"
                       "    const long b = x2_mismatches(100000);\n    out[0] = (int8_t)(b > 127 ? 127 : b);\n"
                       "    out[1] = 42;\n}\n")
    k = tvm_kernels.Kernel(name="x2_check", op="test", in_shape=(1,), out_shape=(2,), macs=0, source=src,
                           prototype="void x2_check(const int8_t* restrict in, int8_t* restrict out);",
                           includes=("mcu_requant.h",), stack_bytes=0, const_bytes=0, schedule="test")
    got, _ = run_on_cortex_m7(k, np.zeros(1, np.int8), tmp_path)
    assert got.tolist() == [0, 42]
