"""The TFLite converter's 16x8 conv net (tests/converter_models/conv_16x8.tflite, made by make_models.py:
CONV_2D, DEPTHWISE_CONV_2D, MEAN, FULLY_CONNECTED and SOFTMAX with int16 activations, int8 weights, int64 biases,
int16 I/O): mcutool's reference equals the tflite-micro interpreter, and the firmware equals the reference on the
host (ASan/UBSan) and in QEMU on stm32f746."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from host_build import build_host_program, run_host_program
from mcutool import reference as R
from mcutool.compiler import Options, compile_model
from mcutool.frontends import load_model
from tflite_builder import MicroInterpreter

MODEL = Path(__file__).parent / "converter_models" / "conv_16x8.tflite"
SAMPLES = 6


def _inputs(graph, n=SAMPLES, seed=168):
    """Standard-normal features quantized with the input's scale (the 16x8 scheme: zero point 0)."""
    t = graph.tensor(graph.inputs[0])
    rng = np.random.default_rng(seed)
    scale = float(t.quant.scale[0])
    return [np.clip(np.round(rng.standard_normal(t.shape) / scale), -32768, 32767).astype(np.int16)
            for _ in range(n)]


def test_the_model_is_the_16x8_conv_net():
    graph = load_model(MODEL)
    assert [op.kind for op in graph.ops] == ["conv2d", "depthwise_conv2d", "conv2d", "mean", "fully_connected",
                                             "softmax"]
    assert {graph.tensor(n).dtype for op in graph.ops for n in op.outputs} == {"int16"}
    assert {graph.tensor(op.inputs[2]).dtype for op in graph.ops if len(op.inputs) > 2} == {"int64"}


def test_reference_matches_tflite_micro():
    graph = load_model(MODEL)
    oracle = MicroInterpreter(MODEL)
    out = graph.outputs[0]
    winners = set()
    for x in _inputs(graph):
        want = oracle(x)[0]
        got = R.run(graph, {graph.inputs[0]: x})[out]
        assert want.dtype == np.int16 and np.array_equal(got, want), f"{got} != {want}"
        winners.add(int(np.argmax(want)))
    assert len(winners) >= 2, "every input gives the same class: the test would not see a wrong layer"


def test_host_build_matches_reference(tmp_path):
    graph = load_model(MODEL)
    lib = tmp_path / "lib"
    compile_model(MODEL, "stm32f746", lib, Options(emit="library"))
    code = (lib / "model.c").read_text()
    for kernel in ("mcu_conv2d_s16(", "mcu_depthwise_conv2d_s16(", "mcu_mean_s16(", "mcu_softmax_s16("):
        assert kernel in code
    exe = build_host_program(lib, tmp_path / "host")
    y_t = graph.tensor(graph.outputs[0])
    for x in _inputs(graph):
        want = R.run(graph, {graph.inputs[0]: x})[y_t.name]
        assert np.array_equal(run_host_program(exe, [x], y_t.shape, np.int16), want)


@pytest.mark.qemu
def test_qemu_stm32f746_matches_reference(tmp_path):
    from conftest import assert_no_floating_point, require_board_tools
    from mcutool.compiler import run_build

    board = require_board_tools("stm32f746")
    graph = load_model(MODEL)
    out = tmp_path / "proj"
    compile_model(MODEL, "stm32f746", out, Options())
    for x in _inputs(graph):
        (y,), _ = run_build(out, [x])
        want = R.run(graph, {graph.inputs[0]: x})[graph.outputs[0]]
        assert y.dtype == np.int16 and np.array_equal(y, want), f"{y} != {want}"
    assert_no_floating_point(board, out / "board.elf")
