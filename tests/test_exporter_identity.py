"""One network, two exporters, one code (issue 14, must show 3). PyTorch's TorchScript exporter and its dynamo one
write the same MnasNet-0.5 with other node and value names (`/layers/layers.0/Conv` against `node_Conv_736`), and
dynamo leaves out the convolution biases TorchScript writes as zeros (it folds the BatchNorms of torch's fresh
initialisation, whose biases come out 0). The ONNX importer names IR ops and tensors by op kind and execution
order, and gives a Conv / Gemm without a bias a zero one, so both files compile to byte-identical model.c.
Host-side only: the C is generated, not built.
"""
from __future__ import annotations

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

import exporters.cases as cases
from mcutool.compiler import Options, compile_model
from mcutool.frontends.onnx import load_onnx
from test_onnx_import import _model, _ort, _save


def _model_c(path, work, calib) -> bytes:
    """model.c of `path` compiled for stm32f746 (library, not built), calibrated on `calib`."""
    out = work / f"{path.stem}-out"
    compile_model(path, "stm32f746", out, Options(emit="library", build=False, calib=str(calib)))
    return (out / "model.c").read_bytes()


def test_mnasnet_from_both_pytorch_exporters_compiles_to_identical_code(tmp_path):
    paths = {form: cases.model_path(form, "mnasnet_05") for form in ("torchscript", "dynamo")}
    protos = {f: onnx.load(str(p), load_external_data=False) for f, p in paths.items()}
    # the files do differ: names, and biases (dynamo writes 2-input Convs, TorchScript 3-input ones)
    assert {n.name for n in protos["torchscript"].graph.node}.isdisjoint(n.name for n in protos["dynamo"].graph.node)
    conv_inputs = {f: {len(n.input) for n in m.graph.node if n.op_type == "Conv"} for f, m in protos.items()}
    assert conv_inputs == {"torchscript": {3}, "dynamo": {2}}
    calib = cases.write_calibration(tmp_path / "calib.npz", "input", "torchscript", "mnasnet_05")
    assert protos["dynamo"].graph.input[0].name == "input"  # the same calibration data for both
    code = {f: _model_c(p, tmp_path, calib) for f, p in paths.items()}
    assert code["torchscript"].count(b"conv2d_") > 50  # the whole network, canonically named
    assert code["torchscript"] == code["dynamo"]


def _conv_gemm(names: dict, bias: bool, rng) -> onnx.ModelProto:
    """x (1,3,8,8) -> Conv 3x3 (+bias) -> Relu -> GlobalAveragePool -> Flatten -> Gemm (+bias) -> y, with the
    node and value names of `names` (keys: conv, relu, gap, flat, fc and their values' names with a _v suffix)."""
    w1 = rng.normal(0, 0.3, (6, 3, 3, 3)).astype(np.float32)
    w2 = rng.normal(0, 0.3, (4, 6)).astype(np.float32)
    inits = [numpy_helper.from_array(w1, names["w1"]), numpy_helper.from_array(w2, names["w2"])]
    conv_in, fc_in = ["x", names["w1"]], [names["flat_v"], names["w2"]]
    if bias:
        inits += [numpy_helper.from_array(np.zeros(6, np.float32), names["b1"]),
                  numpy_helper.from_array(np.zeros(4, np.float32), names["b2"])]
        conv_in.append(names["b1"])
        fc_in.append(names["b2"])
    nodes = [helper.make_node("Conv", conv_in, [names["conv_v"]], name=names["conv"], pads=[1, 1, 1, 1]),
             helper.make_node("Relu", [names["conv_v"]], [names["relu_v"]], name=names["relu"]),
             helper.make_node("GlobalAveragePool", [names["relu_v"]], [names["gap_v"]], name=names["gap"]),
             helper.make_node("Flatten", [names["gap_v"]], [names["flat_v"]], name=names["flat"]),
             helper.make_node("Gemm", fc_in, ["y"], name=names["fc"], transB=1)]
    return _model(nodes, [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3, 8, 8])],
                  [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 4])], inits)


def _names(style: str) -> dict:
    keys = ["conv", "relu", "gap", "flat", "fc"]
    if style == "torchscript":
        d = {k: f"/{k}/{k.capitalize()}" for k in keys} | {f"{k}_v": f"/{k}/{k.capitalize()}_output_0" for k in keys}
        return d | {"w1": "onnx::Conv_7", "b1": "onnx::Conv_8", "w2": "fc.weight", "b2": "fc.bias"}
    d = {k: f"node_{k}_{i}" for i, k in enumerate(keys)} | {f"{k}_v": f"{k}_{i}" for i, k in enumerate(keys)}
    return d | {"w1": "conv.weight", "b1": "conv.bias", "w2": "fc_weight", "b2": "fc_bias"}


def _calib(tmp_path, rng):
    """--calib data for the hand-built pairs: 8 normal samples of x."""
    path = tmp_path / "calib.npz"
    np.savez(path, x=rng.normal(0, 1, (8, 3, 8, 8)).astype(np.float32))
    return path


def test_onnx_names_do_not_reach_the_ir_or_the_code(tmp_path):
    """The same network under TorchScript-like and dynamo-like node, value and initializer names: one IR (names
    from op kind and order; the ONNX node names kept in graph.sources), one model.c."""
    paths = {}
    for style in ("torchscript", "dynamo"):
        (tmp_path / style).mkdir()
        paths[style] = _save(_conv_gemm(_names(style), True, np.random.default_rng(0)), tmp_path / style, "m.onnx")
    graphs = {s: load_onnx(p) for s, p in paths.items()}
    for s, g in graphs.items():
        assert [op.name for op in g.ops] == ["transpose_0", "conv2d_0", "mean_0", "reshape_0", "fully_connected_0"]
        assert g.sources["conv2d_0"] == _names(s)["conv"] and g.sources["fully_connected_0"] == _names(s)["fc"]
    assert list(graphs["torchscript"].tensors) == list(graphs["dynamo"].tensors)
    assert "conv2d_0/weights" in graphs["dynamo"].tensors and "y" in graphs["dynamo"].tensors
    calib = _calib(tmp_path, np.random.default_rng(1))
    assert _model_c(paths["torchscript"], tmp_path / "torchscript", calib) == \
        _model_c(paths["dynamo"], tmp_path / "dynamo", calib)


def test_a_missing_bias_compiles_as_a_zero_bias(tmp_path):
    """Conv and Gemm without a bias (as dynamo writes them) and with an all-zero one (as TorchScript does): the
    same model.c; the imported float graph without biases still computes what onnxruntime does."""
    paths = {}
    for bias in (True, False):
        (tmp_path / str(bias)).mkdir()
        paths[bias] = _save(_conv_gemm(_names("dynamo"), bias, np.random.default_rng(0)), tmp_path / str(bias),
                            "m.onnx")
    assert len(onnx.load(str(paths[False])).graph.initializer) == 2  # really no bias in the file
    graph = load_onnx(paths[False])
    for op in graph.ops:
        if op.kind in ("conv2d", "fully_connected"):
            assert not graph.tensor(op.inputs[2]).data.any()
    from mcutool import reference
    for x in np.random.default_rng(2).normal(0, 1, (3, 1, 3, 8, 8)).astype(np.float32):
        np.testing.assert_allclose(reference.run(graph, {"x": x})["y"], _ort(paths[False], {"x": x})["y"],
                                   rtol=1e-5, atol=1e-5)
    calib = _calib(tmp_path, np.random.default_rng(1))
    assert _model_c(paths[True], tmp_path / "True", calib) == _model_c(paths[False], tmp_path / "False", calib)


def test_mnasnet_qdq_from_both_pytorch_exporters_compiles_to_identical_code(tmp_path):
    """onnxruntime's quantize_static (per channel) of each export (make_torch.py): the dynamo one has no bias
    DequantizeLinears (118 against 171) and other names; both compile, as written, to one model.c."""
    paths = {"torchscript": cases.model_path("qdq_per_channel", "mnasnet_05"),
             "dynamo": cases.HERE / "onnx" / "mnasnet_05_dynamo_qdq_per_channel.onnx"}
    dq = {f: sum(n.op_type == "DequantizeLinear" for n in onnx.load(str(p)).graph.node) for f, p in paths.items()}
    assert dq == {"torchscript": 171, "dynamo": 118}
    code = {}
    for form, path in paths.items():
        out = tmp_path / form
        compile_model(path, "stm32f746", out, Options(emit="library", build=False))
        code[form] = (out / "model.c").read_bytes()
    assert code["torchscript"].count(b"conv2d_") > 50
    assert code["torchscript"] == code["dynamo"]
