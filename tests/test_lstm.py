"""UNIDIRECTIONAL_SEQUENCE_LSTM (TFLite's 8x8->16 integer LSTM) on the TFLite converter's own model
(tests/converter_models/lstm_int8.tflite, from a Keras LSTM): the reference equals TFLite Micro's interpreter over
sequences of invocations (the hidden and cell states persist), and so do the ASan host build and the firmware in
QEMU."""
import re
import subprocess
from pathlib import Path

import numpy as np
import pytest

from conftest import require_board_tools
from host_build import build_host_program
from mcutool import reference
from mcutool.compiler import Options, compile_model, run_build
from mcutool.frontends.tflite import load_tflite
from mcutool.ops.fixedpoint import SIGMOID_TABLE_UINT16

MODEL = Path(__file__).resolve().parent / "converter_models" / "lstm_int8.tflite"
RUNTIME = Path(__file__).resolve().parents[1] / "runtime"
STEPS = 6


def _sequences(graph, seed: int, count: int) -> list[np.ndarray]:
    """Quantized standard-normal features (the distribution the converter calibrated on; other seeds)."""
    t = graph.tensor(graph.inputs[0])
    s, z = float(t.quant.scale[0]), int(t.quant.zero_point[0])
    rng = np.random.default_rng(seed)
    return [np.clip(np.round(rng.normal(0, 1, (STEPS, *t.shape)) / s) + z, -128, 127).astype(np.int8)
            for _ in range(count)]


def test_lstm_reference_equals_tflite_micro_over_invocations():
    from tflite_micro.python.tflite_micro import runtime

    graph = load_tflite(MODEL)
    assert [op.kind for op in graph.ops] == ["lstm", "strided_slice", "fully_connected", "softmax"]
    assert sorted(t.dtype for t in graph.state_tensors()) == ["int16", "int8"]
    micro = runtime.Interpreter.from_file(str(MODEL))
    classes = set()
    for seq in _sequences(graph, 21, 3):
        micro.reset()
        expected = []
        for x in seq:
            micro.set_input(x, 0)
            micro.invoke()
            expected.append(micro.get_output(0).copy())
        got = reference.run_sequence(graph, {graph.inputs[0]: seq})[graph.outputs[0]]
        assert np.array_equal(got, np.stack(expected))
        classes |= set(got.reshape(STEPS, -1).argmax(-1).tolist())
    assert len(classes) >= 5, f"the converter's LSTM predicts only {sorted(classes)}"


def test_the_firmware_sigmoid_table_is_the_references():
    text = (RUNTIME / "mcu_tables.c").read_text()
    body = text.split("mcu_sigmoid_table_u16[256] = {", 1)[1].split("};", 1)[0]
    values = [int(v) for v in re.findall(r"\d+", body)]
    assert values == SIGMOID_TABLE_UINT16.tolist()


def test_lstm_host_build_runs_sequences_bit_exact(tmp_path):
    lib = tmp_path / "lib"
    compile_model(MODEL, "stm32f746", lib, Options(emit="library"))
    assert "MCU_MODEL_STATE_BYTES 48u" in (lib / "model.h").read_text()  # 16 int8 hidden + 16 int16 cell
    exe = build_host_program(lib, tmp_path / "host")
    graph = load_tflite(MODEL)
    for i, seq in enumerate(_sequences(graph, 22, 2)):
        (tmp_path / "x.bin").write_bytes(seq.tobytes())
        done = subprocess.run([str(exe), str(tmp_path / "x.bin"), str(tmp_path / "y.bin")],
                              capture_output=True, text=True)
        assert done.returncode == 0, done.stderr
        y = np.frombuffer((tmp_path / "y.bin").read_bytes(), np.int8).reshape(STEPS, 1, -1)
        want = reference.run_sequence(graph, {graph.inputs[0]: seq})[graph.outputs[0]]
        assert np.array_equal(y, want), f"sequence {i}"


@pytest.mark.qemu
def test_lstm_firmware_runs_sequences_bit_exact_in_qemu(tmp_path):
    require_board_tools("stm32f746")
    out = tmp_path / "fw"
    compile_model(MODEL, "stm32f746", out, Options())
    graph = load_tflite(MODEL)
    for i, seq in enumerate(_sequences(graph, 23, 2)):
        ys, info = run_build(out, [seq], steps=STEPS)
        want = reference.run_sequence(graph, {graph.inputs[0]: seq})[graph.outputs[0]]
        assert np.array_equal(ys[0], want), f"sequence {i}"
