"""Models as the exporters users have write them (issue 14; tests/exporters/, made by make_keras.py and
make_torch.py, which CI does not run). The whole matrix, with agreement figures, is benchmarks/exports.py's
README table; here, one QEMU run per model:

  (c) Keras 3 -> TFLiteConverter int8: mcutool's reference equals TFLite's own kernels on 4 inputs -- the
      tflite-micro interpreter, and the stored outputs of the converting TensorFlow's BUILTIN_REF kernels (the only
      oracle for the tiny ViT: TFLite Micro has no GELU or REDUCE_PROD kernel) -- and the firmware equals the
      reference in QEMU on stm32f746, with no floating point in the ELF.
  (a)/(b) PyTorch -> ONNX: the files mcutool compiles today, firmware == reference in QEMU (ONNX_IN_QEMU).
"""
from __future__ import annotations

import numpy as np
import pytest

import exporters.cases as cases
from conftest import assert_no_floating_point, require_board_tools
from mcutool import reference
from mcutool.compiler import Options, compile_model, firmware_graph, read_report, run_build
from mcutool.frontends.tflite import load_tflite

NO_TFLITE_MICRO = {"tiny_vit"}  # int8 GELU and REDUCE_PROD: TFLite Micro has no kernel
# (form, model) pairs of the PyTorch exports that compile on this branch; the others are in exports.py's table
ONNX_IN_QEMU = [("dynamo", "mnasnet_05"), ("qdq_per_channel", "mnasnet_05")]


def _keras(name: str):
    path = cases.model_path("keras", name)
    return path, load_tflite(path), np.load(path.with_suffix(".expected.npz"))


@pytest.mark.parametrize("name", cases.MODELS)
def test_keras_export_reference_equals_tflite(name):
    path, graph, data = _keras(name)
    ours = [reference.run(graph, {graph.inputs[0]: x})[graph.outputs[0]] for x in data["x"]]
    for got, want in zip(ours, data["y"]):
        assert got.dtype == np.int8 and np.array_equal(got, want), f"{name}: {got} != TFLite's {want}"
    if name not in NO_TFLITE_MICRO:
        for got, want in zip(ours, cases.tflite_micro_outputs(path, list(data["x"]))):
            assert np.array_equal(got, want), f"{name}: {got} != tflite-micro's {want}"
    assert np.unique(np.stack(ours)).size > 2, f"{name}: the outputs hardly vary; the test would see no wrong layer"


@pytest.mark.qemu
@pytest.mark.parametrize("name", cases.MODELS)
def test_keras_export_bit_exact_in_qemu(name, tmp_path):
    board = require_board_tools("stm32f746")
    path, graph, data = _keras(name)
    out = tmp_path / name
    compile_model(path, "stm32f746", out, Options())
    x = data["x"][0]
    (y,), _ = run_build(out, [x])
    assert np.array_equal(y, data["y"][0])
    assert_no_floating_point(board, out / "emulator.elf")


@pytest.mark.qemu
@pytest.mark.parametrize("form,name", ONNX_IN_QEMU)
def test_pytorch_export_bit_exact_in_qemu(form, name, tmp_path):
    import onnx
    require_board_tools("stm32f746")
    path = cases.model_path(form, name)
    input_name = onnx.load(str(path), load_external_data=False).graph.input[0].name
    opts = Options(calib=str(cases.write_calibration(tmp_path / "calib.npz", input_name, form, name))) \
        if form in ("torchscript", "dynamo") else Options()
    out = tmp_path / "proj"
    compile_model(path, "stm32f746", out, opts)
    graph, _ = firmware_graph(path, opts)
    spec = read_report(out)["io"]["inputs"][0]
    x = cases.quantize_input(cases.float_inputs(form, name, 1)[0], spec["scale"], spec["zero_point"])
    (y,), _ = run_build(out, [x])
    want = reference.run(graph, {graph.inputs[0]: x})[graph.outputs[0]]
    assert np.array_equal(y, want), f"{y} != {want}"
