"""The TFLite converter's own models (tests/converter_models/, made by make_models.py with tensorflow-cpu 2.14.1):
a MobileNetV3-style net (HARD_SWISH, squeeze-excitation MUL), an encoder-decoder with TRANSPOSE_CONV and both
RESIZE ops, a transformer block (BATCH_MATMUL, SOFTMAX, layer normalization as TFLite lowers it) and the 16x8
conv net. Each: mcutool's reference equals TFLite Micro's interpreter on 6 inputs, and the firmware equals the
reference in QEMU on stm32f746."""
from pathlib import Path

import numpy as np
import pytest

from conftest import assert_no_floating_point, require_board_tools
from mcutool import reference
from mcutool.compiler import Options, compile_model, run_build
from mcutool.frontends.tflite import load_tflite

MODELS = Path(__file__).resolve().parent / "converter_models"
NAMES = ["mobilenet_v3_style", "transpose_conv_resize", "transformer_block", "conv_16x8"]


def _inputs(graph, seed: int, count: int) -> list[np.ndarray]:
    """Standard-normal features quantized with the input's scale (what the converter calibrated on; other seeds)."""
    t = graph.tensor(graph.inputs[0])
    s, z = float(t.quant.scale[0]), int(t.quant.zero_point[0])
    info = np.iinfo(t.dtype)
    rng = np.random.default_rng(seed)
    return [np.clip(np.round(rng.normal(0, 1, t.shape) / s) + z, info.min, info.max).astype(t.dtype)
            for _ in range(count)]


@pytest.mark.parametrize("name", NAMES)
def test_converter_model_reference_equals_tflite_micro(name):
    from tflite_micro.python.tflite_micro import runtime

    path = MODELS / f"{name}.tflite"
    graph = load_tflite(path)
    micro = runtime.Interpreter.from_file(str(path))
    outs = []
    for x in _inputs(graph, 31, 6):
        micro.set_input(x, 0)
        micro.invoke()
        expected = micro.get_output(0)
        got = reference.run(graph, {graph.inputs[0]: x})[graph.outputs[0]]
        assert np.array_equal(got, expected)
        outs.append(got)
    assert np.unique(np.stack(outs)).size > 5, f"{name}: the output hardly varies"


@pytest.mark.qemu
@pytest.mark.parametrize("name", NAMES)
def test_converter_model_firmware_bit_exact_in_qemu(name, tmp_path):
    board = require_board_tools("stm32f746")
    path = MODELS / f"{name}.tflite"
    out = tmp_path / name
    compile_model(path, "stm32f746", out, Options())
    graph = load_tflite(path)
    for x in _inputs(graph, 32, 2):
        ys, _ = run_build(out, [x])
        want = reference.run(graph, {graph.inputs[0]: x})[graph.outputs[0]]
        assert np.array_equal(ys[0], want)
    assert_no_floating_point(board, out / "emulator.elf")
