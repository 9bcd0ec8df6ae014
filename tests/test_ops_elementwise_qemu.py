"""The elementwise/activation network of tests/elementwise_net.py (every operator of mcutool/ops/{abs, relu,
hard_swish, tanh, elu, rsqrt, minmax, prelu, squared_difference, div, l2_normalization}.py) compiled whole: its
outputs equal TFLite Micro's interpreter (the model as a whole; DIV where TFLite's arithmetic is defined) and the
firmware's outputs, in QEMU, equal mcutool.reference bit for bit; the ELF holds no floating point."""
import numpy as np
import pytest

from conftest import assert_no_floating_point, require_board_tools
from elementwise_net import elementwise_net, net_inputs
from mcutool import reference
from mcutool.compiler import Options, compile_model, run_build
from mcutool.frontends.tflite import load_tflite
from test_ops_elementwise import div_undefined_in_tflite


def micro(model: bytes, x: np.ndarray) -> list[np.ndarray]:
    from tflite_micro.python.tflite_micro import runtime

    it = runtime.Interpreter.from_bytes(model)
    it.set_input(x, 0)
    it.invoke()
    return [it.get_output(i).copy() for i in range(4)]


def test_elementwise_net_reference_equals_tflite_micro(tmp_path):
    path = tmp_path / "elementwise_net.tflite"
    path.write_bytes(elementwise_net())
    graph = load_tflite(path)
    assert len(graph.ops) == 15
    div_quants = [(0.05, -10), (0.02, -128), (0.1, 0)]  # prelu, rsqrt, out0 (tests/elementwise_net.py)
    for x in net_inputs(6):
        want = micro(path.read_bytes(), x)
        got = reference.run(graph, {"x": x}, keep=True)
        # DIV: TFLite Micro's result is undefined where it shifts by >= 32 (see mcutool/ops/div.py and
        # test_ops_elementwise.test_div_reference_equals_tflite_micro); there the quotient rounds to 0
        undefined = div_undefined_in_tflite(got["prelu"], got["rsqrt"], div_quants)
        assert 0 < undefined.sum() < undefined.size / 4
        assert np.array_equal(got["out0"][~undefined], want[0][~undefined])
        assert np.all(got["out0"][undefined] == 0)
        for name, w in zip(graph.outputs[1:], want[1:]):
            assert np.array_equal(got[name], w), f"output {name} differs from TFLite Micro"
        for t in graph.activations():
            assert np.unique(got[t.name]).size > 3, f"tensor {t.name} is (nearly) constant"
        assert got["wide"].dtype == np.int32 and np.array_equal(got["out3"], got["hard_swish"])


@pytest.mark.qemu
def test_elementwise_net_bit_exact_in_qemu(tmp_path):
    board = require_board_tools("stm32f746")
    path = tmp_path / "elementwise_net.tflite"
    path.write_bytes(elementwise_net())
    out = tmp_path / "proj"
    compile_model(path, "stm32f746", out, Options())
    graph = load_tflite(path)
    distinct = set()
    for x in net_inputs(5):
        ys, info = run_build(out, [x])
        want = reference.run(graph, {"x": x})
        for name, y in zip(graph.outputs, ys):
            assert np.array_equal(y, want[name]), f"output {name} differs in QEMU"
            distinct.add(y.tobytes())
        assert info["instructions"] > 0
    assert len(distinct) > 3
    assert_no_floating_point(board, out / "emulator.elf")


def int16_net() -> bytes:
    """Every int16 kernel of this branch once: an int8 input CAST to int16 (read at scale 2^-5), then RELU, RELU6,
    MAXIMUM, MINIMUM, PRELU (constant int8 alpha), SQUARED_DIFFERENCE, RSQRT, TANH and ABS, all int16 (16x8 scales,
    zero points 0); three int16 outputs."""
    from tflite_builder import ModelBuilder

    b = ModelBuilder()
    s = (1, 8, 8, 4)

    def t16(name, scale):
        return b.tensor(name, s, "int16", scale=scale, zero_point=0)

    x = b.tensor("x", s, "int8", scale=0.05, zero_point=0)
    w, r, r6, mx, mn = t16("w", 2**-5), t16("r", 0.02), t16("r6", 2**-5), t16("mx", 2**-5), t16("mn", 2**-5)
    alpha = b.tensor("alpha", (4,), "int8", scale=0.01, zero_point=0, data=np.array([-50, 10, 60, 100], np.int8))
    pr, sd, rs, th, y = t16("pr", 0.01), t16("sd", 0.05), t16("rs", 0.0003), t16("th", 2**-15), t16("y", 2**-14)
    for op, ins, out in [("CAST", [x], w), ("RELU", [w], r), ("RELU6", [w], r6), ("MAXIMUM", [w, r6], mx),
                         ("MINIMUM", [mx, w], mn), ("PRELU", [mn, alpha], pr), ("SQUARED_DIFFERENCE", [r, pr], sd),
                         ("RSQRT", [r], rs), ("TANH", [r], th), ("ABS", [th], y)]:
        b.op(op, ins, [out])
    b.inputs, b.outputs = [x], [y, sd, rs]
    return b.build()


@pytest.mark.qemu
def test_int16_net_bit_exact_in_qemu_and_equal_to_tflite_micro(tmp_path):
    require_board_tools("stm32f746")
    path = tmp_path / "int16_net.tflite"
    path.write_bytes(int16_net())
    out = tmp_path / "proj"
    compile_model(path, "stm32f746", out, Options())
    graph = load_tflite(path)
    assert {graph.tensor(n).dtype for op in graph.ops for n in op.outputs} == {"int16"}
    rng = np.random.default_rng(1)
    from tflite_micro.python.tflite_micro import runtime
    micro = runtime.Interpreter.from_bytes(path.read_bytes())
    distinct = set()
    for _ in range(3):
        x = rng.integers(-128, 128, size=(1, 8, 8, 4), dtype=np.int8)
        ys, _ = run_build(out, [x])
        micro.set_input(x, 0)
        micro.invoke()
        want = reference.run(graph, {"x": x})
        for i, name in enumerate(graph.outputs):
            assert ys[i].dtype == np.int16 and np.array_equal(ys[i], want[name]), f"{name} differs in QEMU"
            assert np.array_equal(micro.get_output(i), want[name]), f"{name} differs from TFLite Micro"
            assert np.unique(want[name]).size > 20
            distinct.add(ys[i].tobytes())
    assert len(distinct) == 9
