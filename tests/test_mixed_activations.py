"""int16 activations as a per-layer choice (issue 15): `--activations auto` gives int8-weight layers TFLite's 16x8
scheme where that measures better, within an SRAM budget, never with int4 weights. Oracles: the tflite-micro
interpreter runs the written flatbuffer (TFLite Micro's 16x8 rules: int16 symmetric with zero point 0, int64
conv / fully connected biases); the SRAM bound by the liveness of the quantized graph."""
import subprocess
import sys

import numpy as np
import pytest

from conftest import assert_no_floating_point, require_board_tools, shared_model
from structured_images import structured_images
from tflite_builder import MicroInterpreter
from mcutool import reference
from mcutool.compiler import Options, compile_model, run_build
from mcutool.frontends import load_model
from mcutool.quantize import mixed
from mcutool.quantize.ptq import integer_io

WEIGHTED = ("conv2d", "depthwise_conv2d", "fully_connected")


@pytest.fixture(scope="module")
def mixed_resnet8(tmp_path_factory):
    """ResNet-8 quantized by `mcutool quantize --weights auto --flash-budget 47246 --activations auto` (60 % of
    its int8 weight bytes), on 48 calibration images."""
    tmp = tmp_path_factory.mktemp("mixed")
    np.savez(tmp / "cal.npz", input_1=structured_images(48, 1))
    out = tmp / "r8_mixed.tflite"
    done = subprocess.run([sys.executable, "-m", "mcutool", "quantize", str(shared_model("resnet8_float.tflite")),
                           "--calib", str(tmp / "cal.npz"), "--weights", "auto", "--flash-budget", "47246",
                           "--activations", "auto", "-o", str(out)], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    return out, done.stdout


def test_resnet8_with_int16_activations_and_int4_weights_equals_tflite_micro(mixed_resnet8):
    out, stdout = mixed_resnet8
    assert "x16" in stdout  # the per-layer line marks int16-activation layers
    g = load_model(out)
    weighted = [op for op in g.ops if op.kind in WEIGHTED]
    wide = [op for op in weighted if g.tensor(op.inputs[0]).dtype == "int16"]
    narrow = [op for op in weighted if g.tensor(op.inputs[1]).dtype == "int4"]
    assert wide and narrow
    for op in wide:  # TFLite's 16x8: int8 weights, int64 bias, int16 output
        assert g.tensor(op.inputs[1]).dtype == "int8"
        assert g.tensor(op.inputs[2]).dtype == "int64" and g.tensor(op.outputs[0]).dtype == "int16"
    for op in narrow:  # int4 weights only with int8 activations
        assert g.tensor(op.inputs[0]).dtype == "int8" and g.tensor(op.outputs[0]).dtype == "int8"
    for t in g.tensors.values():
        if t.dtype == "int16":
            assert not t.quant.zero_point.any()
    micro = MicroInterpreter(out)
    outs = []
    for x in structured_images(5, 2):
        want = micro(x[None].astype(np.float32))[0]
        got = reference.run(g, {g.inputs[0]: x[None].astype(np.float32)})[g.outputs[0]]
        assert np.array_equal(got, want)
        outs.append(got)
    assert not all(np.array_equal(outs[0], o) for o in outs[1:])


@pytest.fixture(scope="module")
def resnet8_chooser():
    g = load_model(shared_model("resnet8_float.tflite"))
    cal = {g.inputs[0]: structured_images(16, 1)}
    return g, cal, mixed.Calibration(g, cal)


def test_the_automatic_choice_is_never_worse_than_a_fixed_rule(resnet8_chooser):
    """On the calibration samples, at 75 % and 60 % of the int8 weight bytes: the choice fits, puts no int16
    activations on an int4 layer, and measures at least as well as every fixed rule that fits the budget."""
    g, cal, calib = resnet8_chooser
    chooser = mixed.WidthChooser(calib, cal, "auto")
    for frac in (0.75, 0.60):
        budget = int(frac * chooser.int8_bytes)
        choice = chooser.choose(budget)
        assert choice.weights_bytes <= budget
        assert all(choice.bits.get(n, 8) == 8 for n in choice.act16)
        for bits in mixed.fixed_rules(chooser.layers).values():
            if chooser.bytes_of(bits) <= budget:
                assert choice.measured_sqnr_db >= chooser.measured_db(bits)
                assert choice.measured_sqnr_db >= chooser.measured_db(bits, chooser.act16_for(bits))
        rows = choice.layers_json(g)
        assert [r["name"] for r in rows if r["activation_bits"] == 16] == [n for n in choice.act16 if n in choice.bits]
        assert all(r["weight_bits"] == 8 for r in rows if r["activation_bits"] == 16)


def test_int16_activations_stay_within_the_sram_budget(resnet8_chooser):
    g, cal, calib = resnet8_chooser
    free = mixed.WidthChooser(calib, cal, "auto")
    all8 = {n: 8 for n in free.layers}
    peak8, peak16 = free.sram_of(all8), free.sram_of(all8, free.act16_for(all8))
    assert peak16 > peak8  # int16 activations take twice the bytes
    budget = (peak8 + peak16) // 2
    bounded = mixed.WidthChooser(calib, cal, "auto", budget)
    act16 = bounded.act16_for(all8)
    assert 0 < len(act16) < len(free.layers) and bounded.sram_of(all8, act16) <= budget
    assert mixed.WidthChooser(calib, cal, "auto", peak8 - 1).act16_for(all8) == []


@pytest.mark.qemu
def test_resnet8_with_int16_activations_is_bit_exact_on_stm32f746(mixed_resnet8, tmp_path):
    board = require_board_tools("stm32f746")
    path, _ = mixed_resnet8
    g = load_model(path)
    report = compile_model(path, "stm32f746", tmp_path / "proj", Options())
    ig = integer_io(g)
    assert ig.tensor(ig.outputs[0]).dtype == "int16"  # the int16 softmax's output
    spec = report["io"]["inputs"][0]
    outs = []
    for x in structured_images(2, 2):
        xq = reference.quantize_float(x[None].astype(np.float32), scale=spec["scale"],
                                      zero_point=spec["zero_point"], out_dtype="int8").astype(np.int8)
        ys, _ = run_build(tmp_path / "proj", [xq])
        want = reference.run(ig, {ig.inputs[0]: xq})[ig.outputs[0]]
        assert np.array_equal(ys[0], want)
        outs.append(want)
    assert not np.array_equal(outs[0], outs[1])
    assert_no_floating_point(board, tmp_path / "proj" / "emulator.elf")
