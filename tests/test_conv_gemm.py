"""The shared conv kernel (runtime/mcu_conv_gemm_s8.h, emitted by mcutool/codegen/gemm_kernels.py) against
TFLite's integer arithmetic (the numpy version in test_tvm_kernels.py: int64 sums, MultiplyByQuantizedMultiplier
with TFLite's double rounding).

Host: the kernel built with -DMCU_GEMM=1 (its SIMD instructions emulated in C) under ASan/UBSan, over the
geometries it takes (1x1, 3x3 with padding, strides, dilation, an odd tap-group count, an odd pixel count,
fully connected rows, a clamp narrower than int8). Cortex-M7 (`-m qemu`): the same kernel as the firmware
builds it, bit-exact, with a floor on MACs per instruction for the shapes of the MLPerf Tiny networks.
"""
from __future__ import annotations

import zlib

import numpy as np
import pytest

import test_tvm_kernels as T
from conftest import require_tool
from mcutool.codegen import tvm_kernels

# name: (kind, in_shape, n_out, kernel, stride, dilation, pads, zi, zo, (lo, hi), M7 floor in MAC/instr)
CASES = {
    "pointwise_64": ("conv", (1, 12, 12, 64), 64, (1, 1), (1, 1), (1, 1), (0, 0, 0, 0), -128, -128, (-128, 127),
                     0.74),
    "pointwise_128_6x6": ("conv", (1, 6, 6, 128), 128, (1, 1), (1, 1), (1, 1), (0, 0, 0, 0), 3, -128,
                          (-128, 127), 0.8),
    "pointwise_8_odd_pixels": ("conv", (1, 5, 7, 8), 16, (1, 1), (1, 1), (1, 1), (0, 0, 0, 0), -20, 7, (-128, 127),
                               0.0),
    "pointwise_c4_odd_groups": ("conv", (1, 4, 4, 4), 6, (1, 1), (1, 1), (1, 1), (0, 0, 0, 0), 11, -3, (-128, 127),
                                0.0),
    "pointwise_stride2": ("conv", (1, 16, 16, 16), 32, (1, 1), (2, 2), (1, 1), (0, 0, 0, 0), 17, -128,
                          (-128, 127), 0.0),
    "pointwise_padded_all_sides": ("conv", (1, 5, 6, 8), 4, (1, 1), (1, 1), (1, 1), (1, 2, 2, 1), 7, -3,
                                   (-128, 127), 0.0),
    "conv3x3_16_pad": ("conv", (1, 16, 16, 16), 16, (3, 3), (1, 1), (1, 1), (1, 1, 1, 1), -128, -128, (-128, 127),
                       0.75),
    "conv3x3_64_clamped": ("conv", (1, 8, 8, 64), 64, (3, 3), (1, 1), (1, 1), (1, 1, 1, 1), 5, -7, (-128, 100),
                           0.85),
    "conv3x3_stride2_uneven_pad": ("conv", (1, 9, 10, 8), 6, (3, 3), (2, 2), (1, 1), (1, 0, 1, 1), 17, -128,
                                   (-128, 60), 0.0),
    "conv3x3_dilated": ("conv", (1, 9, 9, 8), 4, (3, 3), (1, 1), (2, 2), (2, 2, 2, 2), -4, 2, (-128, 127), 0.0),
    "conv2x5_valid": ("conv", (1, 7, 11, 12), 10, (2, 5), (1, 2), (1, 1), (0, 0, 0, 0), 9, -1, (-128, 127), 0.0),
    # RELU-style clamps (act_min == the output zero point): the requantization without its sign correction, in
    # the 8-taps-per-branch loops (k4 % 4 == 2) and a fully connected row
    "conv3x3_8_relu_k4_18": ("conv", (1, 6, 8, 8), 6, (3, 3), (1, 1), (1, 1), (1, 1, 1, 1), 9, -128, (-128, 127),
                             0.0),
    "fc_128_relu": ("fc", (1, 128), 128, None, None, None, None, -5, -128, (-128, 127), 0.75),
    "fc_24_relu": ("fc", (1, 24), 8, None, None, None, None, 2, -128, (-128, 127), 0.0),
    # a pixel pair sharing its columns with an odd number of 4-channel groups (c = 12)
    "conv3x3_c12_pairs": ("conv", (1, 5, 8, 12), 4, (3, 3), (1, 1), (1, 1), (1, 1, 1, 1), -7, 5, (-128, 127), 0.0),
    "fc_640_128": ("fc", (1, 640), 128, None, None, None, None, -5, 14, (-128, 127), 0.72),
    "fc_5_rows": ("fc", (5, 32), 8, None, None, None, None, -3, 1, (-128, 127), 0.0),
    "fc_6_outputs": ("fc", (1, 64), 6, None, None, None, None, 0, 3, (-50, 127), 0.0),
    # the same edge shapes with input channels the small kernels of codegen/fast_kernels.py do not take (1x1 over
    # 4..32 channels, FC rows that are a multiple of 8 with <= 4 KB of weights), so they stay on the shared kernel
    "pointwise_20_odd_pixels_odd_groups": ("conv", (1, 5, 7, 20), 6, (1, 1), (1, 1), (1, 1), (0, 0, 0, 0), -20, 7,
                                           (-128, 127), 0.0),
    "pointwise_24_stride2": ("conv", (1, 9, 9, 24), 16, (1, 1), (2, 2), (1, 1), (0, 0, 0, 0), 17, -128,
                             (-128, 127), 0.0),
    "fc_36_relu": ("fc", (1, 36), 8, None, None, None, None, 2, -128, (-128, 127), 0.0),
    "fc_5_rows_36": ("fc", (5, 36), 8, None, None, None, None, -3, 1, (-128, 127), 0.0),
    "fc_6_outputs_68": ("fc", (1, 68), 6, None, None, None, None, 0, 3, (-50, 127), 0.0),
}
SHARED_ONLY = ("pointwise_20_odd_pixels_odd_groups", "pointwise_24_stride2", "fc_36_relu", "fc_5_rows_36",
               "fc_6_outputs_68")


def _kernel(case):
    kind, in_shape, o, kern, stride, dil, pads, zi, zo, (lo, hi), _ = CASES[case]
    rng = np.random.default_rng(zlib.crc32(case.encode()))
    xs = T._inputs(rng, in_shape)
    if kind == "conv":
        w = rng.integers(-127, 128, (o, *kern, in_shape[3])).astype(np.int8)
        bias = rng.integers(-3000, 3000, o)
        acc = np.stack([T._conv_acc(x, w, bias, zi, stride, dil, pads) for x in xs])
        mult, shift = T._pick_requant(acc[0], rng)
        k = tvm_kernels.conv2d_s8(f"g_{case}", in_shape, w, bias, mult, shift, input_zero_point=zi,
                                  output_zero_point=zo, act_min=lo, act_max=hi, stride=stride, dilation=dil,
                                  pads=pads)
    else:
        w = rng.integers(-127, 128, (o, in_shape[1])).astype(np.int8)
        bias = rng.integers(-3000, 3000, o)
        acc = np.stack([T._fc_acc(x, w, bias, zi) for x in xs])
        mult, shift = T._pick_requant(acc[0], rng, per_channel=False)
        k = tvm_kernels.fully_connected_s8(f"g_{case}", in_shape, w, bias, mult, shift, input_zero_point=zi,
                                           output_zero_point=zo, act_min=lo, act_max=hi)
    want = T._requant(acc, mult, shift, zo, lo, hi).reshape((len(xs),) + k.out_shape)
    return k, xs, want, (lo, hi)


@pytest.mark.parametrize("case", list(CASES))
def test_shared_kernel_bit_exact_on_host(case, tmp_path, monkeypatch):
    k, xs, want, (lo, hi) = _kernel(case)
    # (1x1 convs over 4..12 input channels and fully connected layers with at most 4 KB of weights take the small
    # kernels of codegen/fast_kernels.py in its place, under the same MCU_GEMM)
    assert k.schedule.startswith("gemm|") and any(call in k.source for call in (
        "mcu_conv_gemm_s8(in, out, &p, buf);", "mcu_conv1x1_small_s8(in, out, ", "mcu_fc_w16_s8(in, out, "))
    if case in SHARED_ONLY:
        assert "mcu_conv_gemm_s8(in, out, &p, buf);" in k.source
    monkeypatch.setattr(T, "CFLAGS", T.CFLAGS + ["-DMCU_GEMM=1"])
    T._check(T.run_on_host(k, xs, tmp_path), want, lo, hi)


def test_tvm_kernel_kept_without_dsp(tmp_path):
    """Without MCU_GEMM (the host, RV32IMAC) the same source is TVM's kernel, still bit-exact."""
    k, xs, want, (lo, hi) = _kernel("conv3x3_stride2_uneven_pad")
    assert "#else" in k.source
    T._check(T.run_on_host(k, xs, tmp_path), want, lo, hi)


def test_one_kernel_in_a_translation_unit(tmp_path):
    """Two layers in one file (as in model.c) define the shared kernel once and only call it."""
    a, _, _, _ = _kernel("pointwise_64")
    b, _, _, _ = _kernel("conv3x3_16_pad")
    src = tmp_path / "two.c"
    src.write_text(a.source + b.source)
    obj = tmp_path / "two.o"
    res = T.subprocess.run([T.GCC, "-std=c99", "-O2", "-Wall", "-Wextra", "-Werror", "-DMCU_GEMM=1", "-c",
                            "-I", str(T.data_dir("runtime")), str(src), "-o", str(obj)], capture_output=True,
                           text=True)
    assert res.returncode == 0, res.stderr
    nm = T.subprocess.run(["nm", str(obj)], capture_output=True, text=True).stdout
    assert sum(line.split()[-1].startswith("mcu_conv_gemm_s8") for line in nm.splitlines()) == 1, nm


@pytest.mark.qemu
@pytest.mark.parametrize("case", list(CASES))
def test_shared_kernel_bit_exact_on_cortex_m7(case, tmp_path):
    require_tool("arm-none-eabi-gcc")
    require_tool("qemu-system-arm")
    k, xs, want, _ = _kernel(case)
    got, instructions = T.run_on_cortex_m7(k, xs[0], tmp_path)
    assert np.array_equal(got, want[0]), f"{np.sum(got != want[0])} of {got.size} outputs differ"
    floor = CASES[case][-1]
    assert k.macs / instructions >= floor, f"{k.macs / instructions:.3f} MAC/instruction"


@pytest.mark.qemu
def test_firmware_reports_the_shared_kernel_once(tmp_path):
    """AD's ten fully connected layers in one stm32f746 image: one mcu_conv_gemm_s8 (its bytes in report.json
    flash.shared_kernel_bytes), each layer's own code only its wrapper, and the output still bit-exact."""
    import json

    from conftest import random_inputs, require_board_tools, shared_model
    from mcutool import reference
    from mcutool.compiler import Options, compile_model, run_build
    from mcutool.frontends import load_model

    require_board_tools("stm32f746")
    model, out = shared_model("ad01_int8.tflite"), tmp_path / "proj"
    compile_model(model, "stm32f746", out, Options())
    report = json.loads((out / "report.json").read_text())
    shared = report["flash"]["shared_kernel_bytes"]
    assert list(shared) == ["mcu_conv_gemm_s8"] and 1000 < shared["mcu_conv_gemm_s8"] < 8000
    fcs = [r for r in report["layers"] if r["op"] == "fully_connected"]
    assert len(fcs) == 10 and all(0 < r["code_bytes"] < 100 for r in fcs), [r["code_bytes"] for r in fcs]
    graph = load_model(model)
    xs = random_inputs(graph, np.random.default_rng(3))
    ys, _ = run_build(out, [xs[n] for n in graph.inputs])
    want = reference.run(graph, xs)
    assert np.array_equal(ys[0], want[graph.outputs[0]])


def test_sign_correction_dropped_only_under_a_relu_clamp():
    """The wrapper's `nosign` field (last before the pointers) is 1 exactly when act_min >= the output zero point."""
    from mcutool.codegen import gemm_kernels

    w = np.ones((4, 1, 1, 8), np.int8)
    for zo, lo, want in ((-128, -128, 1), (-5, -5, 1), (-5, 0, 1), (3, -128, 0), (-5, -6, 0)):
        g = gemm_kernels.gemm_layer("t", (1, 2, 2, 8), w, np.zeros(4), np.full(4, 1 << 30), np.full(4, -3),
                                    in_zp=0, out_zp=zo, act_min=lo, act_max=127, out_hw=(2, 2))
        fields = g.code.split("p = {")[1].split("}")[0].split(", ")
        assert int(fields[-3]) == want, (zo, lo, fields)


def test_conv_constants_do_not_depend_on_the_band_height():
    """The in-place row kernels (codegen/row_inplace.py) build a conv once per band of rows and share its
    constants: a one-pixel band must get the same weight layout as a taller one (a 1-D map, W = 1)."""
    rng = np.random.default_rng(7)
    w = rng.integers(-127, 128, (8, 1, 1, 16)).astype(np.int8)
    args = dict(input_zero_point=3, output_zero_point=-2)
    one, three = (tvm_kernels.conv2d_s8("g_band", (1, rows, 1, 16), w, None, [1 << 30] * 8, [-9] * 8, **args)
                  for rows in (1, 3))
    assert one.schedule.startswith("gemm|") and one.const_source == three.const_source
