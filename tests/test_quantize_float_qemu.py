"""Float models quantized on the fly and run in QEMU (issue 4, must-show 2 and 4).

A float ONNX CNN built here (Conv+BN+ReLU, depthwise conv, residual Add, GlobalAveragePool, Gemm) is calibrated
on structured images (tests/structured_images.py), compiled for stm32f746 and run in QEMU: the firmware equals
mcutool.reference on the int8 graph bit for bit, the int8 top-1 accuracy (labels: a hand-written colour rule) is
within 1 % of onnxruntime's float top-1 on test images that are neither calibration nor training images, and
the ELF holds no floating point.
"""

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from onnx import TensorProto, helper, numpy_helper

from mcutool import reference
from mcutool.compiler import Options, compile_model, firmware_graph, run_build
from structured_images import structured_images
from conftest import assert_no_floating_point, require_board_tools

pytestmark = pytest.mark.qemu

SIZE = 16
CH = 16
# The task: which of these colours an image's mean colour is nearest to (labels by hand-derived rule, 6 classes)
PROTOTYPES = np.array([[200, 60, 60], [60, 200, 60], [60, 60, 200], [200, 200, 60], [60, 200, 200],
                       [128, 128, 128]], np.float32)
CLASSES = len(PROTOTYPES)


def labels(images_nchw: np.ndarray) -> np.ndarray:
    mean = images_nchw.mean(axis=(2, 3))
    return np.argmin(((mean[:, None, :] - PROTOTYPES[None]) ** 2).sum(-1), axis=1)


def _cnn(rng) -> onnx.ModelProto:
    """x (1,3,16,16) -> Conv3x3(3->16)+BN+ReLU -> depthwise 3x3 + ReLU -> Conv1x1(16->16) -> Add(residual) -> ReLU
    -> GlobalAveragePool -> Flatten -> Gemm(16->6). The convolutions have random He-scaled weights (the first one
    sees pixels centred on mid-grey); the Gemm is fitted by ridge regression of one-hot labels (`labels`) on the
    pooled features of 300 training images (a third seed, neither calibration nor test), computed by onnxruntime.
    So the network is a real, if simple, classifier: it predicts every class and its top-1 accuracy means
    something, which random logits' near-ties would not."""
    def he(shape, fan_in):
        return (rng.standard_normal(shape) * np.sqrt(2.0 / fan_in)).astype(np.float32)
    inits = {
        "w1": he((CH, 3, 3, 3), 27) / 64.0, "b1": rng.uniform(-0.1, 0.1, CH).astype(np.float32),
        "bn_s": rng.uniform(0.5, 1.5, CH).astype(np.float32), "bn_b": rng.uniform(-0.2, 0.2, CH).astype(np.float32),
        "bn_m": rng.uniform(-0.1, 0.1, CH).astype(np.float32), "bn_v": rng.uniform(0.5, 1.5, CH).astype(np.float32),
        "w2": he((CH, 1, 3, 3), 9), "b2": rng.uniform(-0.1, 0.1, CH).astype(np.float32),
        "w3": he((CH, CH, 1, 1), CH), "b3": rng.uniform(-0.1, 0.1, CH).astype(np.float32),
        "w4": np.zeros((CLASSES, CH), np.float32), "b4": np.zeros(CLASSES, np.float32),
    }
    inits["b1"] -= inits["w1"].sum(axis=(1, 2, 3)) * 128
    nodes = [
        helper.make_node("Conv", ["x", "w1", "b1"], ["c1"], pads=[1, 1, 1, 1]),
        helper.make_node("BatchNormalization", ["c1", "bn_s", "bn_b", "bn_m", "bn_v"], ["n1"]),
        helper.make_node("Relu", ["n1"], ["r1"]),
        helper.make_node("Conv", ["r1", "w2", "b2"], ["c2"], pads=[1, 1, 1, 1], group=CH),
        helper.make_node("Relu", ["c2"], ["r2"]),
        helper.make_node("Conv", ["r2", "w3", "b3"], ["c3"]),
        helper.make_node("Add", ["c3", "r1"], ["s"]),
        helper.make_node("Relu", ["s"], ["r3"]),
        helper.make_node("GlobalAveragePool", ["r3"], ["p"]),
        helper.make_node("Flatten", ["p"], ["f"]),
        helper.make_node("Gemm", ["f", "w4", "b4"], ["y"], transB=1),
    ]
    graph = helper.make_graph(nodes, "cnn", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3, SIZE, SIZE])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, CLASSES])],
                              [numpy_helper.from_array(v, k) for k, v in inits.items()])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    model.graph.output.append(helper.make_tensor_value_info("f", TensorProto.FLOAT, [1, CH]))
    train = _images(300, 5)
    feats = _ort(model, train, output=1).astype(np.float64)
    del model.graph.output[1]
    a = np.hstack([feats, np.ones((len(feats), 1))])
    target = np.eye(CLASSES)[labels(train)] * 4 - 2
    coef = np.linalg.solve(a.T @ a + 1e-3 * np.eye(a.shape[1]), a.T @ target)
    for init in model.graph.initializer:
        if init.name == "w4":
            init.CopyFrom(numpy_helper.from_array(coef[:-1].T.astype(np.float32), "w4"))
        if init.name == "b4":
            init.CopyFrom(numpy_helper.from_array(coef[-1].astype(np.float32), "b4"))
    onnx.checker.check_model(model)
    return model


def _images(n, seed):
    return np.ascontiguousarray(structured_images(n, seed, SIZE).transpose(0, 3, 1, 2))  # NCHW, 0-255


def _ort(model, xs, output=0):
    sess = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    return np.concatenate([sess.run(None, {"x": x[None]})[output] for x in xs])


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    board = require_board_tools("stm32f746")
    tmp = tmp_path_factory.mktemp("float_cnn")
    model = _cnn(np.random.default_rng(7))
    path = tmp / "cnn.onnx"
    onnx.save(model, path)
    np.savez(tmp / "calib.npz", x=_images(64, 1))
    out = tmp / "proj"
    report = compile_model(path, "stm32f746", out, Options(calib=str(tmp / "calib.npz")))
    graph, _ = firmware_graph(path, Options(calib=str(tmp / "calib.npz")))
    return board, model, path, out, report, graph


def test_float_onnx_cnn_is_bit_exact_in_qemu_and_agrees_with_onnxruntime(built):
    board, model, path, out, report, graph = built
    test = _images(400, 2)  # neither the calibration (seed 1) nor the training images (seed 5)
    want_float = _ort(model, test)
    assert np.unique(want_float.argmax(1)).size >= 5, np.bincount(want_float.argmax(1))
    truth = labels(test)
    float_top1 = float(np.mean(want_float.argmax(1) == truth))
    assert float_top1 >= 0.6, f"the float classifier is too weak to judge ({float_top1:.1%})"
    # no constant intermediate tensor in the float model (DESIGN.md §11)
    from mcutool.frontends import load_model
    fg = load_model(path)
    values = [reference.run(fg, {"x": x[None]}, keep=True) for x in test[:8]]
    for name, t in fg.tensors.items():
        if not t.is_const:
            assert any(not np.array_equal(v[name], values[0][name]) for v in values[1:]), f"{name} is constant"
    # int8 top-1 (the reference on the integer graph, dequantized) within 1 % of onnxruntime's float top-1
    (inp,), (outp,) = graph.inputs, graph.outputs
    spec_in, spec_out = report["io"]["inputs"][0], report["io"]["outputs"][0]
    q_in = [reference.quantize_float(x[None], scale=spec_in["scale"], zero_point=spec_in["zero_point"],
                                     out_dtype="int8").astype(np.int8) for x in test]
    q_out = np.concatenate([reference.run(graph, {inp: x})[outp] for x in q_in])
    int8_top1 = float(np.mean(q_out.argmax(1) == truth))
    assert abs(int8_top1 - float_top1) <= 0.01, f"top-1: int8 {int8_top1:.1%}, onnxruntime float {float_top1:.1%}"
    agree = float(np.mean(q_out.argmax(1) == want_float.argmax(1)))
    assert agree >= 0.97, f"int8 and float predict the same class on only {agree:.1%} of the test images"
    assert report["quantization"]["samples"] == 64 and report["quantization"]["outputs"][0]["top1_agreement"] >= 0.95
    # QEMU == reference bit for bit, through the host's float I/O conversion
    for i in range(4):
        ys, info = run_build(out, [q_in[i]])
        assert ys[0].dtype == np.int8 and np.array_equal(ys[0], reference.run(graph, {inp: q_in[i]})[outp])
        yf, _ = run_build(out, [test[i][None].astype(np.float32)])
        expect = reference.dequantize(q_out[i:i + 1], scale=spec_out["scale"], zero_point=spec_out["zero_point"])
        assert yf[0].dtype == np.float32 and np.array_equal(yf[0], expect)
    assert info["instructions"] > 0


def test_quantized_float_model_firmware_has_no_floating_point(built):
    board, _, _, out, _, _ = built
    for elf in ("emulator.elf", "board.elf"):
        assert_no_floating_point(board, out / elf)
