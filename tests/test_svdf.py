"""SVDF, the first stateful operator: its reference equals TFLite Micro's interpreter over sequences (the state
persisting across invocations, reset once), the generated C equals the reference on the host under ASan/UBSan and
in QEMU, and the state lives outside the arena with a reset call in model.h."""
import subprocess

import numpy as np
import pytest

from conftest import require_board_tools
from host_build import build_host_program
from svdf_nets import INPUTS, svdf_keyword_net
from mcutool import reference
from mcutool.compiler import Options, compile_model, read_report, run_build
from mcutool.frontends.tflite import load_tflite

STEPS = 12


@pytest.fixture(scope="module")
def model(tmp_path_factory):
    path = tmp_path_factory.mktemp("svdf") / "svdf_kws.tflite"
    path.write_bytes(svdf_keyword_net())
    return path


def _sequences(seed: int, count: int) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    return [rng.integers(-128, 128, (STEPS, 1, INPUTS)).astype(np.int8) for _ in range(count)]


def test_svdf_reference_equals_tflite_micro_over_sequences(model):
    from tflite_micro.python.tflite_micro import runtime

    graph = load_tflite(model)
    assert [t.name for t in graph.state_tensors()] == ["svdf1/state", "svdf2/state"]
    assert [t.dtype for t in graph.state_tensors()] == ["int16", "int8"]
    micro = runtime.Interpreter.from_file(str(model))
    classes, hidden = set(), []
    for seq in _sequences(11, 3):
        micro.reset()  # ResetVariableTensors, as mcu_model_reset() does
        expected = []
        for x in seq:
            micro.set_input(x, 0)
            micro.invoke()
            expected.append(micro.get_output(0).copy())
        got = reference.run_sequence(graph, {graph.inputs[0]: seq})[graph.outputs[0]]
        assert np.array_equal(got, np.stack(expected))
        classes |= set(got.argmax(-1).ravel().tolist())
        state = reference.reset_state(graph)
        hidden += [reference.run(graph, {graph.inputs[0]: x}, keep=True, state=state)["svdf2/out"] for x in seq]
    assert len(classes) >= 5, f"the test net predicts only {sorted(classes)}"
    assert np.unique(np.stack(hidden)).size > 5, "the second SVDF's output hardly varies"


def test_svdf_state_is_outside_the_arena_and_reset_by_model_h(model, tmp_path):
    lib = tmp_path / "lib"
    compile_model(model, "stm32f746", lib, Options(emit="library"))
    header, source = (lib / "model.h").read_text(), (lib / "model.c").read_text()
    # int16 state 64 filters x 8 memory (1,024 B) + int8 state 16 x 6 (96 B)
    assert "#define MCU_MODEL_STATE_BYTES 1120u" in header
    assert "void mcu_model_reset(void);" in header
    assert "static int16_t mcu_state_svdf1_state[512]" in source
    assert "static int8_t mcu_state_svdf2_state[96]" in source
    assert "(int8_t)(4)" in source  # the int8 state resets to its zero point, as TFLite Micro's does
    report = read_report(lib)
    graph = load_tflite(model)
    activations = {"features": 40, "svdf1/out": 32, "svdf2/out": 16, "logits": 8, "probs": 8}
    assert report["memory"]["arena_bytes"] <= sum(activations.values()) + 8
    assert set(activations) == {t.name for t in graph.activations() if not t.variable}


def test_svdf_host_build_runs_sequences_bit_exact(model, tmp_path):
    lib = tmp_path / "lib"
    compile_model(model, "stm32f746", lib, Options(emit="library"))
    exe = build_host_program(lib, tmp_path / "host")
    graph = load_tflite(model)
    for i, seq in enumerate(_sequences(12, 3)):
        (tmp_path / "x.bin").write_bytes(seq.tobytes())
        done = subprocess.run([str(exe), str(tmp_path / "x.bin"), str(tmp_path / "y.bin")],
                              capture_output=True, text=True)
        assert done.returncode == 0, done.stderr
        y = np.frombuffer((tmp_path / "y.bin").read_bytes(), np.int8).reshape(STEPS, 1, -1)
        want = reference.run_sequence(graph, {graph.inputs[0]: seq})[graph.outputs[0]]
        assert np.array_equal(y, want), f"sequence {i}"


@pytest.mark.qemu
@pytest.mark.parametrize("board_name", ["stm32f746", "hifive1-revb"])
def test_svdf_firmware_runs_sequences_bit_exact_in_qemu(model, board_name, tmp_path):
    require_board_tools(board_name)
    out = tmp_path / "fw"
    compile_model(model, board_name, out, Options())
    graph = load_tflite(model)
    for i, seq in enumerate(_sequences(13, 2)):
        ys, info = run_build(out, [seq], steps=STEPS)
        want = reference.run_sequence(graph, {graph.inputs[0]: seq})[graph.outputs[0]]
        assert ys[0].shape == want.shape and np.array_equal(ys[0], want), f"sequence {i}"
        assert info["instructions"] > 0
