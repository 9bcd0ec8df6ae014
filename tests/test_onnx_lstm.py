"""The ONNX LSTM onto TFLite Micro's integer LSTM (issue 14): the Conv1D+LSTM keyword model as both PyTorch
exporters write it (tests/exporters/onnx/kws_conv1d_lstm_{torchscript,dynamo}.onnx, make_torch.py's
KwsConv1dLstm).

  * import: both files give the IR the TFLite converter gives the Keras model (reshape, conv2d, reshape, lstm,
    strided_slice, fully_connected), the same from either exporter, and the float graph equals onnxruntime;
  * quantization follows TFLite's LSTM rules (operator_property.cc; the MLIR quantizer's PowerOfTwoBound), checked
    against values derived here from the ONNX initializers and onnxruntime's cell states;
  * the quantized graph written as .tflite runs in the tflite-micro interpreter equal to mcutool's reference;
  * the firmware starts every inference from the zero state (ONNX's semantics) -- in QEMU, over a sequence;
  * an LSTM mcutool cannot run is refused with its reason.
Both files compiling and running bit-exact in QEMU: tests/test_exporters.py (ONNX_IN_QEMU).
"""
from __future__ import annotations

import dataclasses
import math

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

import exporters.cases as cases
from conftest import assert_no_floating_point, require_board_tools
from mcutool import reference
from mcutool.compiler import Options, compile_model, firmware_graph, run_build
from mcutool.errors import UserError
from mcutool.frontends.onnx import load_onnx
from mcutool.quantize.ptq import calibrate, integer_io, quantize_graph

NAME = "kws_conv1d_lstm"
FORMS = ("torchscript", "dynamo")
KINDS = ["reshape", "conv2d", "reshape", "lstm", "strided_slice", "fully_connected"]
ONNX_GATES = {"input": 0, "output": 1, "forget": 2, "cell": 3}  # ONNX's i, o, f, c


def _calibration(tmp_path, form):
    return cases.write_calibration(tmp_path / f"calib_{form}.npz", "input", form, NAME)


def _samples(form, n, seed):
    return {"input": cases.float_inputs(form, NAME, n, seed=seed)[:, 0]}


def _lstm(graph):
    return next(op for op in graph.ops if op.kind == "lstm")


def test_both_exporters_import_to_the_keras_ir_and_equal_onnxruntime():
    graphs = [load_onnx(cases.model_path(form, NAME)) for form in FORMS]
    for g in graphs:
        assert [op.kind for op in g.ops] == KINDS
    a, b = graphs
    for op_a, op_b in zip(a.ops, b.ops):
        assert op_a.attrs == op_b.attrs and op_a.inputs == op_b.inputs
        for n in op_a.inputs:
            if n and a.tensor(n).is_const:
                assert np.array_equal(a.tensor(n).data, b.tensor(n).data), n
    xs = cases.float_inputs("torchscript", NAME, 20)
    for form, g in zip(FORMS, graphs):
        ort = cases.onnxruntime_outputs(cases.model_path(form, NAME), xs)
        ours = np.stack([reference.run(g, {"input": x})["output"] for x in xs])
        assert np.abs(ours - ort).max() < 1e-5 * np.abs(ort).max() + 1e-6, form
        assert np.unique(ours).size == ours.size  # no constant output


def _onnx_lstm_operands(path):
    """X (the LSTM's input, computed by onnxruntime for the calibration inputs), W, R, B of the model's LSTM."""
    import onnxruntime as ort
    model = onnx.load(str(path))
    node = next(n for n in model.graph.node if n.op_type == "LSTM")
    inits = {t.name: numpy_helper.to_array(t) for t in model.graph.initializer}
    model.graph.output.append(helper.make_tensor_value_info(node.input[0], TensorProto.FLOAT, None))
    sess = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    xs = cases.float_inputs("torchscript", NAME, 32, seed=1000)
    x = np.stack([sess.run([node.input[0]], {"input": v})[0] for v in xs])  # (32, T, 1, 16)
    return x, inits[node.input[1]], inits[node.input[2]], inits[node.input[3]]


def _cell_bound(x, w, r, b) -> float:
    """max |cell state| over every step of every calibration input, from onnxruntime's LSTM run on the first t
    steps (Y_c) for each t."""
    import onnxruntime as ort
    steps, hidden = x.shape[1], r.shape[-1]
    graph = helper.make_graph(
        [helper.make_node("LSTM", ["X", "W", "R", "B"], ["", "", "Y_c"], hidden_size=hidden)], "lstm",
        [helper.make_tensor_value_info("X", TensorProto.FLOAT, None)],
        [helper.make_tensor_value_info("Y_c", TensorProto.FLOAT, None)],
        [numpy_helper.from_array(v, n) for n, v in (("W", w), ("R", r), ("B", b))])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    sess = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    return max(float(np.abs(sess.run(None, {"X": s[:t]})[0]).max()) for s in x for t in range(1, steps + 1))


def test_quantized_as_tflite_quantizes_an_lstm(tmp_path):
    """TFLite's rules, values derived from the ONNX file: per gate, input and recurrent weights int8 symmetric per
    tensor (scale max|w| / 127); bias = round((Wb + Rb) / (s_input * s_weights)) in int32; the hidden state int8
    with the output's quantization; the cell state int16 at 2^ceil(log2(max |cell|)) / 2^15 (its range over all
    steps of the calibration inputs, from onnxruntime)."""
    path = cases.model_path("torchscript", NAME)
    float_graph = load_onnx(path)
    g = integer_io(quantize_graph(float_graph, calibrate(float_graph, _samples("torchscript", 32, 1000))))
    op = _lstm(g)
    x_t, out = g.tensor(op.inputs[0]), g.tensor(op.outputs[0])
    x, w, r, b = _onnx_lstm_operands(path)
    hidden = r.shape[-1]
    for k, gate in enumerate(("input", "forget", "cell", "output")):
        rows = slice(ONNX_GATES[gate] * hidden, (ONNX_GATES[gate] + 1) * hidden)
        for idx, f in ((1 + k, w[0, rows]), (5 + k, r[0, rows])):
            t = g.tensor(op.inputs[idx])
            assert t.dtype == "int8" and not t.quant.per_channel
            assert np.isclose(t.quant.scale[0], np.abs(f).max() / 127, rtol=1e-6)
            assert np.array_equal(t.data, np.round(f / np.float32(t.quant.scale[0])).astype(np.int8))
        bias = g.tensor(op.inputs[12 + k])
        s = float(x_t.quant.scale[0]) * float(g.tensor(op.inputs[1 + k]).quant.scale[0])
        assert bias.dtype == "int32" and np.isclose(bias.quant.scale[0], s, rtol=1e-6)
        fb = b[0, rows].astype(np.float64) + b[0, 4 * hidden + rows.start:4 * hidden + rows.stop]
        assert np.abs(bias.data - fb / s).max() <= 0.5 + 1e-3
    h, c = g.tensor(op.inputs[18]), g.tensor(op.inputs[19])
    assert h.variable and c.variable and (h.dtype, c.dtype) == ("int8", "int16")
    assert np.float32(h.quant.scale[0]) == np.float32(out.quant.scale[0])
    assert h.quant.zero_point[0] == out.quant.zero_point[0]
    bound = _cell_bound(x, w, r, b)
    assert c.quant.zero_point[0] == 0
    assert c.quant.scale[0] == 2.0 ** math.ceil(math.log2(bound)) / 32768


@pytest.mark.parametrize("form", FORMS)
def test_written_tflite_runs_in_tflite_micro_equal_to_the_reference(form, tmp_path):
    """The independent check: the firmware graph written as .tflite (UNIDIRECTIONAL_SEQUENCE_LSTM) runs in TFLite
    Micro's interpreter (a fresh one per input: ONNX's zero initial state) equal to mcutool's reference, on the 20
    test inputs; and the int8 model stays close to onnxruntime's float outputs."""
    from mcutool.export.tflite import write_tflite
    path = cases.model_path(form, NAME)
    g, rep = firmware_graph(path, Options(calib=str(_calibration(tmp_path, form))))
    with pytest.warns(UserWarning, match="TFLite keeps an LSTM's state"):
        (tmp_path / "m.tflite").write_bytes(write_tflite(g))
    spec, ospec = g.tensor("input").quant, g.tensor("output").quant
    xf = cases.float_inputs(form, NAME, 20)
    xs = [cases.quantize_input(x, float(spec.scale[0]), int(spec.zero_point[0])) for x in xf]
    ours = [reference.run(g, {"input": x})["output"] for x in xs]
    micro = cases.tflite_micro_outputs(tmp_path / "m.tflite", xs)
    assert all(np.array_equal(a, m) for a, m in zip(ours, micro))
    assert np.unique(np.stack(ours)).size > 20
    ort = cases.onnxruntime_outputs(path, xf).reshape(20, -1)
    deq = (np.stack(ours).reshape(20, -1).astype(np.float64) - int(ospec.zero_point[0])) * float(ospec.scale[0])
    sqnr = 10 * np.log10(np.sum(ort.astype(np.float64) ** 2) / np.sum((deq - ort) ** 2))
    assert sqnr > 30, f"{form}: SQNR {sqnr:.1f} dB against onnxruntime"
    assert np.mean(deq.argmax(1) == ort.argmax(1)) >= 0.9


def _carried(graph):
    """`graph` with its LSTM keeping its state across inferences (TFLite's semantics)."""
    op = _lstm(graph)
    op.attrs = dataclasses.replace(op.attrs, reset_each_call=False)
    return graph


def test_every_inference_starts_from_the_zero_state(tmp_path):
    """ONNX's LSTM has no state across runs: the reference of a sequence equals each input run alone, where the
    same graph keeping TFLite's state would not. (A 5-step LSTM: the KWS model's 47 steps forget any start.)"""
    path = _lstm_model(tmp_path, attrs={"layout": 1}, outputs=("Y", "Y_h"))
    g = load_onnx(path)
    xs = np.random.default_rng(2).normal(0, 1, (3, 1, 5, 3)).astype(np.float32)
    alone = np.stack([reference.run(g, {"X": x})["Y_h"] for x in xs])
    assert np.array_equal(reference.run_sequence(g, {"X": xs})["Y_h"], alone)
    assert not np.allclose(reference.run_sequence(_carried(g), {"X": xs})["Y_h"][1:], alone[1:], atol=1e-3)


@pytest.mark.qemu
def test_firmware_starts_every_inference_from_the_zero_state_in_qemu(tmp_path):
    """A sequence of 3 inputs in one firmware run: each output equals the reference of that input alone (and the
    carried state would have given other int8 outputs)."""
    board = require_board_tools("stm32f746")
    path = _lstm_model(tmp_path, attrs={"layout": 1}, outputs=("Y", "Y_h"), read=("Y_h",))
    rng = np.random.default_rng(3)
    np.savez(tmp_path / "calib.npz", X=rng.normal(0, 1, (32, 5, 3)).astype(np.float32))
    opts = Options(calib=str(tmp_path / "calib.npz"))
    compile_model(path, "stm32f746", tmp_path / "fw", opts)
    g, _ = firmware_graph(path, opts)
    spec = g.tensor("X").quant
    xs = np.stack([cases.quantize_input(x, float(spec.scale[0]), int(spec.zero_point[0]))
                   for x in rng.normal(0, 1, (3, 1, 5, 3))])
    (ys,), _ = run_build(tmp_path / "fw", [xs], steps=3)
    want = np.stack([reference.run(g, {"X": x})["Y_h"] for x in xs])
    assert np.array_equal(ys, want)
    assert not np.array_equal(reference.run_sequence(_carried(g), {"X": xs})["Y_h"], want)
    assert_no_floating_point(board, tmp_path / "fw" / "emulator.elf")


def _lstm_model(tmp_path, attrs=None, extra_inputs=(), outputs=("Y",), read=None):
    """A float model: X (5, 1, 3) (layout 1: (1, 5, 3)) -> LSTM(4) with the given attributes / inputs -> the
    outputs named (graph outputs: `read`, by default all)."""
    rng = np.random.default_rng(0)
    inits = [numpy_helper.from_array(rng.normal(0, 0.5, s).astype(np.float32), n)
             for n, s in (("W", (1, 16, 3)), ("R", (1, 16, 4)), ("B", (1, 32)))]
    names = ["X", "W", "R", "B"]
    for k, (name, value) in extra_inputs:
        names += [""] * (k - len(names)) + [name]
        inits.append(numpy_helper.from_array(value.astype(np.float32), name))
    outs = list(outputs)
    node = helper.make_node("LSTM", names, outs, hidden_size=4, **(attrs or {}))
    graph_outs = [o for o in (read or outs) if o]
    d = 2 if (attrs or {}).get("direction") == "bidirectional" else 1
    if (attrs or {}).get("layout", 0):
        shapes = {"X": (1, 5, 3), "Y": (1, 5, d, 4), "Y_h": (1, d, 4), "Y_c": (1, d, 4)}
    else:
        shapes = {"X": (5, 1, 3), "Y": (5, d, 1, 4), "Y_h": (d, 1, 4), "Y_c": (d, 1, 4)}
    graph = helper.make_graph([node], "lstm", [helper.make_tensor_value_info("X", TensorProto.FLOAT, shapes["X"])],
                              [helper.make_tensor_value_info(o, TensorProto.FLOAT, shapes[o]) for o in graph_outs],
                              inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 14)])
    model.ir_version = 8
    path = tmp_path / "lstm.onnx"
    onnx.save(model, str(path))
    return path


REFUSED = {
    "bidirectional": (dict(attrs={"direction": "bidirectional"}), "direction 'bidirectional'"),
    "peepholes": (dict(extra_inputs=[(7, ("P", np.ones((1, 12))))]), "peephole weights P"),
    "clip": (dict(attrs={"clip": 3.0}), "clips the gate inputs"),
    "input_forget": (dict(attrs={"input_forget": 1}), "input_forget"),
    "activations": (dict(attrs={"activations": ["Sigmoid", "Relu", "Tanh"]}), "activations"),
    "initial_h": (dict(extra_inputs=[(5, ("h0", np.ones((1, 1, 4))))]), "initial_h is not zero"),
    "Y_c": (dict(outputs=("Y", "", "Y_c")), "final cell state Y_c"),
}


@pytest.mark.parametrize("case", sorted(REFUSED))
def test_an_lstm_mcutool_cannot_run_is_refused_with_the_reason(case, tmp_path):
    kwargs, reason = REFUSED[case]
    with pytest.raises(UserError, match="this LSTM cannot be imported") as err:
        load_onnx(_lstm_model(tmp_path, **kwargs))
    assert reason in str(err.value)


@pytest.mark.parametrize("layout", [0, 1])
def test_a_plain_lstm_model_imports_and_its_output_is_onnxruntimes(layout, tmp_path):
    """The refusal cases' model without the refused feature: Y and Y_h, in either layout, equal onnxruntime's
    (layout 0) or ONNX's reference evaluator's (layout 1, which onnxruntime does not run)."""
    import onnxruntime as ort
    path = _lstm_model(tmp_path, attrs={"layout": layout}, outputs=("Y", "Y_h"))
    g = load_onnx(path)
    x = np.random.default_rng(1).normal(0, 1, (1, 5, 3) if layout else (5, 1, 3)).astype(np.float32)
    got = reference.run(g, {"X": x})
    if layout == 0:
        want = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"]).run(None, {"X": x})
    else:  # onnxruntime runs no batch-first LSTM: ONNX's own reference implementation
        from onnx.reference import ReferenceEvaluator
        want = ReferenceEvaluator(str(path)).run(None, {"X": x})
    for name, w in zip(("Y", "Y_h"), want):
        assert got[name].shape == w.shape and np.abs(got[name] - w).max() < 1e-6


def test_the_cli_refuses_a_bidirectional_lstm_in_one_paragraph(tmp_path, capsys):
    from mcutool.cli import main
    path = _lstm_model(tmp_path, attrs={"direction": "bidirectional"})
    assert main(["inspect", str(path)]) == 1
    err = capsys.readouterr().err
    assert err.startswith("error: ") and "Traceback" not in err and "direction 'bidirectional'" in err


def test_a_time_major_input_cannot_be_calibrated_and_says_so(tmp_path, capsys):
    """A layout-0 LSTM reading the graph input (seq, 1, in): the calibration samples stack on axis 0, which is
    time here; the error says to export batch-first."""
    from mcutool.cli import main
    path = _lstm_model(tmp_path, outputs=("Y", "Y_h"))
    load_onnx(path)  # it imports
    assert main(["compile", str(path), "--board", "stm32f746", "--no-build", "-o", str(tmp_path / "p"),
                 "--calib", "random"]) == 1
    err = capsys.readouterr().err
    assert "first axis is not a batch of 1" in err and "layout=1" in err and "Traceback" not in err
