"""int4 weights in firmware (issue 15, must-show 1 and 3): ResNet-8 quantized by `mcutool quantize --weights int4`
runs in the tflite-micro interpreter with outputs equal to mcutool's reference and bit-exact in QEMU on
stm32f746; KWS (conv, depthwise, fully connected) with int4 weights bit-exact on hifive1-revb; the --weights auto
model of a 60 % budget holds <= 0.60x the int8 weight bytes in report.json."""
import json
import subprocess
import sys

import numpy as np
import pytest

from conftest import assert_no_floating_point, require_board_tools, shared_model
from structured_images import structured_images
from tflite_builder import MicroInterpreter
from mcutool import reference
from mcutool.compiler import Options, compile_model, run_build
from mcutool.export.tflite import write_tflite
from mcutool.frontends import load_model
from mcutool.ir import Quant, Tensor
from mcutool.quantize.ptq import integer_io

pytestmark = pytest.mark.qemu


def _quantize(tmp_path, *args) -> "Path":
    np.savez(tmp_path / "cal.npz", input_1=structured_images(48, 1))
    out = tmp_path / "r8.tflite"
    done = subprocess.run([sys.executable, "-m", "mcutool", "quantize", str(shared_model("resnet8_float.tflite")),
                           "--calib", str(tmp_path / "cal.npz"), *args, "-o", str(out)], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    return out, done.stdout


def _int8_input(x: np.ndarray, spec: dict) -> np.ndarray:
    return reference.quantize_float(x[None].astype(np.float32), scale=spec["scale"], zero_point=spec["zero_point"],
                                    out_dtype="int8").astype(np.int8)


def test_resnet8_int4_equals_tflite_micro_and_is_bit_exact_on_stm32f746(tmp_path):
    board = require_board_tools("stm32f746")
    path, stdout = _quantize(tmp_path, "--weights", "int4")
    assert "conv2d_1 4" in stdout and "fully_connected_0 4" in stdout
    g = load_model(path)
    weighted = [op for op in g.ops if op.kind in ("conv2d", "fully_connected")]
    assert len(weighted) == 10 and all(g.tensor(op.inputs[1]).dtype == "int4" for op in weighted)
    # the tflite-micro interpreter runs the written flatbuffer (float I/O, QUANTIZE/DEQUANTIZE at the border)
    micro = MicroInterpreter(path)
    test = structured_images(6, 2)
    for x in test:
        want = micro(x[None].astype(np.float32))[0]
        got = reference.run(g, {g.inputs[0]: x[None].astype(np.float32)})[g.outputs[0]]
        assert np.array_equal(got, want)
    # firmware: bit-exact with the reference on the integer graph
    out = tmp_path / "proj"
    report = compile_model(path, "stm32f746", out, Options())
    ig = integer_io(g)
    spec = report["io"]["inputs"][0]
    classes = set()
    for x in test[:3]:
        xq = _int8_input(x, spec)
        ys, info = run_build(out, [xq])
        want = reference.run(ig, {ig.inputs[0]: xq})[ig.outputs[0]]
        assert np.array_equal(ys[0], want)
        classes.add(int(np.argmax(want)))
    assert info["instructions"] > 0
    assert report["flash"]["weights_bytes"] < 41_000  # 78,744 B of int8 constants; int4 weights are packed
    assert_no_floating_point(board, out / "emulator.elf")


def _int4_from_int8(graph):
    """The int8 model with every conv / depthwise / fully connected layer's weights requantized to int4
    (symmetric, -7..7, per channel as stored; FC per tensor) and its int32 bias rescaled to the new scales."""
    for op in graph.ops:
        if op.kind not in ("conv2d", "depthwise_conv2d", "fully_connected"):
            continue
        w = graph.tensor(op.inputs[1])
        axis = {"conv2d": 0, "depthwise_conv2d": 3, "fully_connected": None}[op.kind]
        s8 = w.quant.scale.astype(np.float64)
        shape = [1] * w.data.ndim
        if axis is not None and s8.size > 1:
            shape[axis] = -1
        real = w.data.astype(np.float64) * s8.reshape(shape)
        amax = np.abs(real).max() if s8.size == 1 else np.abs(np.moveaxis(real, axis, 0)).reshape(s8.size, -1).max(1)
        s4 = np.where(np.atleast_1d(amax) > 0, np.atleast_1d(amax) / 7, 1.0).astype(np.float32)
        q4 = np.clip(np.round(real / s4.astype(np.float64).reshape(shape if s4.size > 1 else [1] * w.data.ndim)),
                     -7, 7).astype(np.int8)
        graph.tensors[w.name] = Tensor(w.name, w.shape, "int4", Quant(s4, np.zeros(s4.size, np.int64), w.quant.axis), q4)
        if len(op.inputs) > 2 and op.inputs[2]:
            b = graph.tensor(op.inputs[2])
            s_in = float(graph.tensor(op.inputs[0]).quant.scale[0])
            data = np.round(b.data.astype(np.float64) * s8 / s4.astype(np.float64)).astype(np.int32)
            graph.tensors[b.name] = Tensor(b.name, b.shape, "int32",
                                           Quant(s_in * s4, np.zeros(s4.size, np.int64), b.quant.axis), data)
    return graph


def _half_width(graph, wide: int = 64, narrow: int = 32):
    """The trained KWS model with its first 32 of 64 channels in every layer (each 64-extent cut to 32, per-channel
    quantization with it): a KWS-shaped network whose int4 firmware fits HiFive1's 16 KB of SRAM without the int8
    kernels' in-place line buffers (its activations are 4,000 B instead of 8,000 B)."""
    for name, t in list(graph.tensors.items()):
        shape = tuple(narrow if d == wide else d for d in t.shape)
        data = None if t.data is None else t.data[tuple(slice(0, d) for d in shape)].copy()
        q = t.quant
        if q is not None and q.scale.size == wide:
            q = Quant(q.scale[:narrow], q.zero_point[:narrow], q.axis)
        graph.tensors[name] = Tensor(t.name, shape, t.dtype, q, data, t.variable)
    return graph


@pytest.mark.parametrize("board", ["hifive1-revb", "stm32f746"])
def test_kws_with_int4_weights_is_bit_exact(board, tmp_path):
    require_board_tools(board)
    g = _int4_from_int8(_half_width(load_model(shared_model("kws_ref_model.tflite"))))
    kinds = {op.kind for op in g.ops if op.kind in ("conv2d", "depthwise_conv2d", "fully_connected")
             and g.tensor(op.inputs[1]).dtype == "int4"}
    assert kinds == {"conv2d", "depthwise_conv2d", "fully_connected"}
    path = tmp_path / "kws_int4.tflite"
    path.write_bytes(write_tflite(g))
    g = load_model(path)
    micro = MicroInterpreter(path)
    rng = np.random.default_rng(4)
    xs = [rng.integers(-128, 128, g.tensor(g.inputs[0]).shape).astype(np.int8) for _ in range(3)]
    out = tmp_path / "proj"
    report = compile_model(path, board, out, Options())
    assert report["memory"]["sram_used_bytes"] <= report["memory"]["sram_limit_bytes"]
    outs = []
    for x in xs:
        want = reference.run(g, {g.inputs[0]: x})[g.outputs[0]]
        assert np.array_equal(micro(x)[0], want)
        ys, _ = run_build(out, [x])
        assert np.array_equal(ys[0], want)
        outs.append(want)
    assert not all(np.array_equal(outs[0], o) for o in outs[1:])


def test_the_60_percent_model_holds_at_most_0_6x_the_int8_weights(tmp_path):
    require_board_tools("stm32f746")
    np.savez(tmp_path / "cal.npz", input_1=structured_images(48, 1))
    model = shared_model("resnet8_float.tflite")
    int8 = compile_model(model, "stm32f746", tmp_path / "int8", Options(calib=str(tmp_path / "cal.npz"), build=False))
    budget = int(0.6 * int8["flash"]["weights_bytes"])
    report = compile_model(model, "stm32f746", tmp_path / "auto", Options(calib=str(tmp_path / "cal.npz"),
                                                                          weights="auto", flash_budget=budget))
    q = report["quantization"]
    assert report["flash"]["weights_bytes"] <= 0.60 * int8["flash"]["weights_bytes"]
    assert q["weights_bytes"] == report["flash"]["weights_bytes"]
    assert {r["weight_bits"] for r in q["layers"]} == {4, 8} and len(q["layers"]) == 10
    assert q["allocation"]["flash_budget_bytes"] == budget and q["allocation"]["measured_sqnr_db"] > 0
    stored = json.loads((tmp_path / "auto" / "report.json").read_text())
    assert stored["quantization"]["layers"] == q["layers"]
