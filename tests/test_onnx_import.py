"""ONNX importer: ONNX's own conformance cases (exact), models built here against onnxruntime, and user errors."""
import subprocess
import sys
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from onnx import TensorProto, helper, numpy_helper

from mcutool import reference
from mcutool.errors import UserError
from mcutool.frontends.onnx import load_onnx

NODE_CASES = Path(__file__).resolve().parents[2] / "shared" / "models" / "onnx_node"

# which inputs of a QOperator node are scales / zero points: the conformance cases feed them as graph inputs,
# and the IR needs them at compile time, so they are frozen into the model on import
QPARAM_SLOTS = {"QLinearConv": (1, 2, 4, 5, 6, 7), "QLinearMatMul": (1, 2, 4, 5, 6, 7), "ConvInteger": (2, 3),
                "MatMulInteger": (2, 3), "QuantizeLinear": (1, 2), "DequantizeLinear": (1, 2)}

INTEGER_CASES = ["test_qlinearconv", "test_convinteger_with_padding", "test_convinteger_without_padding",
                 "test_matmulinteger", "test_qlinearmatmul_2D_int8_float32", "test_qlinearmatmul_2D_uint8_float32",
                 "test_quantizelinear", "test_dequantizelinear"]
FLOAT_CASES = ["test_basic_conv_with_padding", "test_conv_with_strides_and_asymmetric_padding",
               "test_averagepool_2d_pads", "test_maxpool_2d_pads"]


def _read_pb(path: Path) -> np.ndarray:
    t = onnx.TensorProto()
    t.ParseFromString(path.read_bytes())
    return numpy_helper.to_array(t)


def _node_case(name: str):
    case = NODE_CASES / name
    if not case.is_dir():
        pytest.fail(f"conformance case {case} is missing: the tests expect ../shared/models beside the checkout")
    model = onnx.load(case / "model.onnx")
    data = case / "test_data_set_0"
    inputs = {vi.name: _read_pb(data / f"input_{i}.pb") for i, vi in enumerate(model.graph.input)}
    expected = [_read_pb(data / f"output_{i}.pb") for i in range(len(model.graph.output))]
    qparams = {n.input[i] for n in model.graph.node for i in QPARAM_SLOTS.get(n.op_type, ()) if i < len(n.input)}
    frozen = {k: v for k, v in inputs.items() if k in qparams}
    graph = load_onnx(case / "model.onnx", constants=frozen)
    feeds = {k: v for k, v in inputs.items() if k not in frozen}
    # the graph's own I/O stay exactly as the model declares them
    for name, value in feeds.items():
        assert name in graph.inputs
        assert graph.tensor(name).shape == value.shape and graph.tensor(name).dtype == value.dtype.name
    for vi, value in zip(model.graph.output, expected):
        assert graph.tensor(vi.name).shape == value.shape and graph.tensor(vi.name).dtype == value.dtype.name
    return graph, feeds, expected


@pytest.mark.parametrize("case", INTEGER_CASES)
def test_integer_conformance_case_is_exact(case):
    graph, feeds, expected = _node_case(case)
    got = reference.run(graph, feeds)
    for name, want in zip(graph.outputs, expected):
        assert got[name].dtype == want.dtype
        assert np.array_equal(got[name], want), f"{case}: {got[name]} != {want}"


@pytest.mark.parametrize("case", FLOAT_CASES)
def test_float_conformance_case_layout_and_padding(case):
    graph, feeds, expected = _node_case(case)
    got = reference.run(graph, feeds)
    for name, want in zip(graph.outputs, expected):
        np.testing.assert_allclose(got[name], want, atol=1e-5, rtol=1e-5)


def test_weights_become_ir_layouts():
    graph, _, _ = _node_case("test_conv_with_strides_and_asymmetric_padding")
    conv = next(op for op in graph.ops if op.kind == "conv2d")
    assert conv.attrs.pads == (1, 0, 1, 0) and conv.attrs.stride == (2, 2)  # (top, left, bottom, right)
    assert graph.tensor(conv.inputs[0]).shape == (1, 7, 5, 1)  # NHWC inside
    assert graph.tensor(conv.outputs[0]).shape == (1, 4, 2, 1)


# ---------------------------------------------------------------------------------------------------------------
# models built here

def _model(nodes, inputs, outputs, inits, opset=13, check=True) -> onnx.ModelProto:
    graph = helper.make_graph(nodes, "test", inputs, outputs, inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])
    model.ir_version = 10  # onnxruntime rejects onnx 1.23's default IR version
    if check:
        onnx.checker.check_model(model)
    return model


def _save(model: onnx.ModelProto, tmp_path: Path, name: str = "model.onnx") -> Path:
    path = tmp_path / name
    onnx.save(model, path)
    return path


def _ort(path: Path, feeds: dict, optimize: bool = True) -> dict:
    """onnxruntime's outputs. optimize=False runs a QDQ model as ONNX defines it (DequantizeLinear, float op,
    QuantizeLinear) instead of through onnxruntime's fused integer kernels - whose x86 uint8-activation x
    int8-weight path saturates int16 pair sums (VPMADDUBSW) and was seen 46 LSB off the exact result here."""
    options = ort.SessionOptions()
    if not optimize:
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    sess = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    return dict(zip([o.name for o in sess.get_outputs()], sess.run(None, feeds)))


def _init(rng, name, shape, scale=None):
    fan_in = int(np.prod(shape[1:])) if len(shape) > 1 else 1
    w = rng.standard_normal(shape) * (scale if scale is not None else np.sqrt(2.0 / fan_in))
    return numpy_helper.from_array(w.astype(np.float32), name)


def _inputs(rng, n: int, shape) -> np.ndarray:
    """n test images (1, C, H, W) that differ in more than noise: per-image channel offsets and row patterns."""
    c, h, _ = shape
    x = rng.standard_normal((n, 1, *shape)) + 1.5 * rng.standard_normal((n, 1, c, 1, 1))
    return (x + 0.5 * rng.standard_normal((n, 1, 1, h, 1))).astype(np.float32)


def _float_net(rng) -> onnx.ModelProto:
    """Conv+BN+Relu, depthwise+Clip, Add+Relu, Pad, AveragePool, squeeze-excite (ReduceMean, Sigmoid, Mul),
    GlobalAveragePool+Flatten, MaxPool (SAME_UPPER) + Reshape through a Shape->Gather->Unsqueeze->Concat chain,
    Gemm (transB 0 and 1) + Relu, Concat, MatMul+Add, Softmax; a 4-D NCHW tensor is a second output."""
    f = helper.make_node
    inits = [
        _init(rng, "w1", (8, 3, 3, 3)), _init(rng, "b1", (8,), 0.1),
        numpy_helper.from_array((1 + 0.2 * rng.standard_normal(8)).astype(np.float32), "bn_g"),
        numpy_helper.from_array((0.1 * rng.standard_normal(8)).astype(np.float32), "bn_b"),
        numpy_helper.from_array((0.1 * rng.standard_normal(8)).astype(np.float32), "bn_m"),
        numpy_helper.from_array((0.5 + rng.random(8)).astype(np.float32), "bn_v"),
        _init(rng, "wdw", (8, 1, 3, 3)), _init(rng, "bdw", (8,), 0.1),
        numpy_helper.from_array(np.float32(0), "zero"), numpy_helper.from_array(np.float32(6), "six"),
        _init(rng, "w2", (16, 8, 1, 1)), _init(rng, "b2", (16,), 0.1),
        numpy_helper.from_array(np.array([0, 0, 0, 1, 0, 0, 0, 1], np.int64), "pads"),
        _init(rng, "wfc1", (16, 192)), _init(rng, "bfc1", (16,), 0.1),  # Gemm transB=1
        _init(rng, "wfc2", (32, 12), np.sqrt(2 / 32)), _init(rng, "bfc2", (12,), 0.1),  # Gemm transB=0
        _init(rng, "wmm", (12, 10), np.sqrt(1 / 12)), _init(rng, "bmm", (10,), 0.1),  # MatMul + Add
        numpy_helper.from_array(np.array(0, np.int64), "i0"), numpy_helper.from_array(np.array([0], np.int64), "ax0"),
        numpy_helper.from_array(np.array([-1], np.int64), "minus1"),
    ]
    nodes = [
        f("Conv", ["x", "w1", "b1"], ["c1"], pads=[1, 1, 1, 1], name="conv1"),
        f("BatchNormalization", ["c1", "bn_g", "bn_b", "bn_m", "bn_v"], ["bn1"], name="bn1"),
        f("Relu", ["bn1"], ["a"], name="relu1"),
        f("Conv", ["a", "wdw", "bdw"], ["dw"], group=8, pads=[1, 1, 1, 1], name="dw"),
        f("Clip", ["dw", "zero", "six"], ["b"], name="relu6"),
        f("Add", ["a", "b"], ["s"], name="add"),
        f("Relu", ["s"], ["c"], name="relu2"),
        f("Pad", ["c", "pads"], ["cp"], name="pad"),
        f("Conv", ["cp", "w2", "b2"], ["c2"], name="conv2"),
        f("AveragePool", ["c2"], ["d"], kernel_shape=[2, 2], strides=[2, 2], name="avgpool"),  # (1,16,6,7)
        f("ReduceMean", ["d"], ["se_m"], axes=[2, 3], keepdims=1, name="se_mean"),
        f("Sigmoid", ["se_m"], ["se_s"], name="se_sigmoid"),
        f("Mul", ["d", "se_s"], ["d2"], name="se_mul"),
        f("GlobalAveragePool", ["d2"], ["gap"], name="gap"),
        f("Flatten", ["gap"], ["g1"], name="flatten"),
        f("MaxPool", ["d2"], ["e"], kernel_shape=[3, 3], strides=[2, 2], auto_pad="SAME_UPPER", name="maxpool"),
        f("Shape", ["e"], ["e_shape"], name="shape"),
        f("Gather", ["e_shape", "i0"], ["e_n"], axis=0, name="gather"),
        f("Unsqueeze", ["e_n", "ax0"], ["e_n1"], name="unsqueeze"),
        f("Concat", ["e_n1", "minus1"], ["e_new"], axis=0, name="shape_concat"),
        f("Reshape", ["e", "e_new"], ["ef"], name="reshape"),  # (1, 192): the NCHW flatten of a 16x3x4 tensor
        f("Gemm", ["ef", "wfc1", "bfc1"], ["h1"], transB=1, name="fc1"),
        f("Relu", ["h1"], ["g2"], name="relu3"),
        f("Concat", ["g1", "g2"], ["g"], axis=1, name="concat"),
        f("Gemm", ["g", "wfc2", "bfc2"], ["h2"], name="fc2"),
        f("Relu", ["h2"], ["h2r"], name="relu4"),
        f("MatMul", ["h2r", "wmm"], ["mm"], name="fc3"),
        f("Add", ["mm", "bmm"], ["logits"], name="fc3_bias"),
        f("Softmax", ["logits"], ["y"], axis=-1, name="softmax"),
    ]
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3, 12, 12])
    outs = [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 10]),
            helper.make_tensor_value_info("d2", TensorProto.FLOAT, [1, 16, 6, 7])]
    return _model(nodes, [x], outs, inits)


def test_float_model_matches_onnxruntime(tmp_path):
    rng = np.random.default_rng(0)
    path = _save(_float_net(rng), tmp_path)
    graph = load_onnx(path)
    kinds = [op.kind for op in graph.ops]
    # BatchNorm folded, activations fused, MatMul+Add one layer, no float op left unaccounted for
    assert kinds.count("conv2d") == 2 and kinds.count("depthwise_conv2d") == 1
    assert kinds.count("fully_connected") == 3
    acts = {graph.sources[op.name]: op.attrs.activation for op in graph.ops if hasattr(op.attrs, "activation")}
    assert acts["conv1"] == "relu" and acts["dw"] == "relu6" and acts["add"] == "relu" and acts["fc1"] == "relu"
    # the Reshape-flatten of a 16x3x4 map is done by permuting fc1's weight columns, not by a transpose
    assert [op.attrs.perm for op in graph.ops if op.kind == "transpose"] == [(0, 2, 3, 1), (0, 3, 1, 2)]
    assert graph.tensor("x").shape == (1, 3, 12, 12) and graph.tensor("d2").shape == (1, 16, 6, 7)
    classes = set()
    xs = _inputs(rng, 16, (3, 12, 12))
    for x in xs:
        want = _ort(path, {"x": x})
        got = reference.run(graph, {"x": x})
        np.testing.assert_allclose(got["y"], want["y"], atol=1e-4)
        np.testing.assert_allclose(got["d2"], want["d2"], atol=1e-4, rtol=1e-4)
        classes.add(int(np.argmax(want["y"])))
    assert len(classes) >= 5  # the comparison is not trivially between two constant outputs


def _q(name, x, s, z):
    return helper.make_node("QuantizeLinear", [x, s, z], [name], name=f"q_{name}")


def _dq(name, x, s, z, **kw):
    return helper.make_node("DequantizeLinear", [x, s, z], [name], name=f"dq_{name}", **kw)


QDQ_TENSORS = ["xq", "c1q", "c2q", "s3q", "mpq", "gapq", "flq", "y_q"]  # the model's quantized activations


def _qdq_net(rng, calib: np.ndarray, dtype=np.int8) -> onnx.ModelProto:
    """A QDQ model: Q -> DQ -> Conv (per-channel int8 weights, int32 bias) + Relu -> Q -> DQ -> depthwise -> Q ->
    DQ -> Add -> Q -> DQ -> MaxPool -> Q -> DQ -> GlobalAveragePool -> Q -> DQ -> Flatten -> Q -> DQ -> Gemm -> Q
    (int8 output y_q, also dequantized to y). Activation scales come from the float model on `calib`. Every
    quantized activation is also a graph output, so that each layer can be checked on its own."""
    f = helper.make_node
    w1 = rng.standard_normal((8, 3, 3, 3)).astype(np.float32) * 0.3
    b1 = rng.standard_normal(8).astype(np.float32) * 0.1
    wdw = rng.standard_normal((8, 1, 3, 3)).astype(np.float32) * 0.4
    wfc = rng.standard_normal((10, 8)).astype(np.float32) * 0.5
    bfc = rng.standard_normal(10).astype(np.float32) * 0.1

    # float reference for ranges
    def conv(x, w, b=None, group=1):
        nodes = [f("Conv", ["x", "w"] + (["b"] if b is not None else []), ["y"], pads=[1, 1, 1, 1], group=group)]
        inits = [numpy_helper.from_array(w, "w")] + ([numpy_helper.from_array(b, "b")] if b is not None else [])
        m = _model(nodes, [helper.make_tensor_value_info("x", TensorProto.FLOAT, list(x.shape))],
                   [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)], inits, check=False)
        return ort.InferenceSession(m.SerializeToString(), providers=["CPUExecutionProvider"]).run(None, {"x": x})[0]

    qmin, qmax = (-128, 127) if dtype == np.int8 else (0, 255)

    def qparams(v):
        lo, hi = min(float(v.min()), 0.0), max(float(v.max()), 0.0)
        s = (hi - lo) / (qmax - qmin)
        return np.float32(s), dtype(np.clip(round(qmin - lo / s), qmin, qmax))

    x = calib
    c1 = np.maximum(conv(x, w1, b1), 0)
    c2 = conv(c1, wdw, None, group=8)
    s3 = c1 + c2
    gap = s3.reshape(*s3.shape[:2], 4, 2, 4, 2).max(axis=(3, 5)).mean(axis=(2, 3))  # MaxPool 2x2/2, GAP
    y = gap @ wfc.T + bfc
    sx, zx = qparams(x)
    s1, z1 = qparams(c1)
    s2, z2 = qparams(c2)
    s3_, z3 = qparams(s3)
    sg, zg = qparams(gap)
    sy, zy = qparams(y)
    ws1 = (np.abs(w1).reshape(8, -1).max(axis=1) / 127).astype(np.float32)  # per output channel
    wq1 = np.round(w1 / ws1[:, None, None, None]).astype(np.int8)
    bq1 = np.round(b1 / (sx * ws1)).astype(np.int32)
    wsdw = (np.abs(wdw).reshape(8, -1).max(axis=1) / 127).astype(np.float32)
    wqdw = np.round(wdw / wsdw[:, None, None, None]).astype(np.int8)
    wsfc = np.float32(np.abs(wfc).max() / 127)
    wqfc = np.round(wfc / wsfc).astype(np.int8)
    bqfc = np.round(bfc / (sg * wsfc)).astype(np.int32)
    a = numpy_helper.from_array
    inits = [a(sx, "sx"), a(zx, "zx"), a(s1, "s1"), a(z1, "z1"), a(s2, "s2"), a(z2, "z2"), a(s3_, "sc3"),
             a(z3, "z3"), a(sg, "sg"), a(zg, "zg"), a(sy, "sy"), a(zy, "zy"),
             a(wq1, "wq1"), a(ws1, "ws1"), a(np.zeros(8, np.int8), "wz1"),
             a(bq1, "bq1"), a((sx * ws1).astype(np.float32), "bs1"), a(np.zeros(8, np.int32), "bz1"),
             a(wqdw, "wqdw"), a(wsdw, "wsdw"), a(np.zeros(8, np.int8), "wzdw"),
             a(wqfc, "wqfc"), a(wsfc, "wsfc"), a(np.int8(0), "wzfc"),
             a(bqfc, "bqfc"), a(np.float32(sg * wsfc), "bsfc"), a(np.int32(0), "bzfc")]
    nodes = [
        _q("xq", "x", "sx", "zx"), _dq("xf", "xq", "sx", "zx"),
        _dq("w1f", "wq1", "ws1", "wz1", axis=0), _dq("b1f", "bq1", "bs1", "bz1", axis=0),
        f("Conv", ["xf", "w1f", "b1f"], ["c1"], pads=[1, 1, 1, 1], name="conv1"),
        f("Relu", ["c1"], ["c1r"], name="relu1"),
        _q("c1q", "c1r", "s1", "z1"), _dq("c1f", "c1q", "s1", "z1"),
        _dq("wdwf", "wqdw", "wsdw", "wzdw", axis=0),
        f("Conv", ["c1f", "wdwf"], ["c2"], pads=[1, 1, 1, 1], group=8, name="dw"),
        _q("c2q", "c2", "s2", "z2"), _dq("c2f", "c2q", "s2", "z2"),
        f("Add", ["c1f", "c2f"], ["s3"], name="add"),
        _q("s3q", "s3", "sc3", "z3"), _dq("s3f", "s3q", "sc3", "z3"),
        f("MaxPool", ["s3f"], ["mp"], kernel_shape=[2, 2], strides=[2, 2], name="maxpool"),
        _q("mpq", "mp", "sc3", "z3"), _dq("mpf", "mpq", "sc3", "z3"),
        f("GlobalAveragePool", ["mpf"], ["gap"], name="gap"),
        _q("gapq", "gap", "sg", "zg"), _dq("gapf", "gapq", "sg", "zg"),
        f("Flatten", ["gapf"], ["fl"], name="flatten"),
        _q("flq", "fl", "sg", "zg"), _dq("flf", "flq", "sg", "zg"),
        _dq("wfcf", "wqfc", "wsfc", "wzfc"), _dq("bfcf", "bqfc", "bsfc", "bzfc"),
        f("Gemm", ["flf", "wfcf", "bfcf"], ["yf"], transB=1, name="fc"),
        _q("y_q", "yf", "sy", "zy"), _dq("y", "y_q", "sy", "zy"),
    ]
    elem = TensorProto.INT8 if dtype == np.int8 else TensorProto.UINT8
    shapes = {"xq": [1, 3, 8, 8], "c1q": [1, 8, 8, 8], "c2q": [1, 8, 8, 8], "s3q": [1, 8, 8, 8],
              "mpq": [1, 8, 4, 4], "gapq": [1, 8, 1, 1], "flq": [1, 8], "y_q": [1, 10]}
    outputs = [helper.make_tensor_value_info(n, elem, shapes[n]) for n in QDQ_TENSORS]
    return _model(nodes, [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3, 8, 8])],
                  outputs + [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 10])], inits)


def _int8_views(graph) -> dict:
    """IR tensor -> (graph output name, perm, offset): the int8 IR tensors that are a quantized graph output
    seen through the importer's border ops (NCHW<->NHWC transposes, uint8<->int8 conversions)."""
    views = {n: (n, None, 0) for n in graph.outputs if graph.tensor(n).dtype in ("int8", "uint8")}
    prod = graph.producers()
    for name in list(views):
        t, perm, offset = name, None, 0
        while t in prod and prod[t].kind in ("transpose", "quantize") and prod[t].inputs[0] not in graph.inputs:
            op = prod[t]
            if op.kind == "transpose":
                perm = (0, 2, 3, 1)
            elif graph.tensor(op.inputs[0]).dtype == "int8" and graph.tensor(t).dtype == "uint8":
                offset = -128
            else:
                break
            t = op.inputs[0]
            views[t] = (name, perm, offset)
    for op in graph.ops:  # and forward: an NHWC transpose of a viewed NCHW tensor
        if op.kind == "transpose" and op.inputs[0] in views and views[op.inputs[0]][1] is None:
            name, _, offset = views[op.inputs[0]]
            views[op.outputs[0]] = (name, tuple(op.attrs.perm), offset)
    return views


def _as_ir(value, view):
    _, perm, offset = view
    v = value.astype(np.int64) + offset
    return (v.transpose(perm) if perm else v).astype(np.int8 if offset or value.dtype == np.int8 else value.dtype)


def _layerwise(graph, theirs: dict, ours: dict) -> int:
    """Run every int8 layer of `graph` on onnxruntime's values of its inputs (theirs: the quantized graph outputs)
    and compare with onnxruntime's value of its output: within 1 LSB (DESIGN.md §6: onnxruntime requantizes in
    float). A layer is an IR op plus the requantization the importer may put after it. Returns the layer count."""
    views = _int8_views(graph)
    consumers = graph.consumers()
    layers = 0
    for op in graph.ops:
        if op.kind in ("transpose", "quantize", "dequantize") or op.inputs[0] not in views:
            continue
        vals = {n: _as_ir(theirs[views[n][0]], views[n]) if n in views else ours[n] for n in op.inputs if n}
        current = op
        while True:
            args = [vals[n] if n in vals else ours.get(n) for n in current.inputs]
            vals[current.outputs[0]] = reference.run_op(graph, current, args)[0]
            if current.outputs[0] in views:
                break
            current = consumers[current.outputs[0]][0]
        out = current.outputs[0]
        diff = np.abs(vals[out].astype(int) - _as_ir(theirs[views[out][0]], views[out]).astype(int))
        assert diff.max() <= 1, f"layer {op.name}: {diff.max()} LSB from onnxruntime"
        layers += 1
    return layers


@pytest.mark.parametrize("dtype", [np.int8, np.uint8])
def test_qdq_model_folds_into_int8_ops_and_matches_onnxruntime(tmp_path, dtype):
    rng = np.random.default_rng(0)
    calib = _inputs(rng, 16, (3, 8, 8))[:, 0]
    path = _save(_qdq_net(rng, calib, dtype), tmp_path)
    graph = load_onnx(path)
    compute = [op for op in graph.ops if op.kind not in ("transpose", "reshape", "quantize", "dequantize")]
    assert [op.kind for op in compute] == ["conv2d", "depthwise_conv2d", "add", "max_pool2d", "mean",
                                           "fully_connected"]
    for op in compute:  # every compute op runs on int8, with the model's scales
        for name in [op.inputs[0], op.outputs[0]]:
            assert graph.tensor(name).dtype == "int8" and graph.tensor(name).quant is not None
    conv = compute[0]
    assert conv.attrs.activation == "relu"
    assert graph.tensor(conv.inputs[1]).quant.per_channel and graph.tensor(conv.inputs[1]).quant.axis == 0
    assert graph.tensor(compute[1].inputs[1]).quant.axis == 3  # depthwise weights (1, KH, KW, C)
    assert graph.tensor(conv.inputs[2]).dtype == "int32"
    _assert_float_only_at_border(graph)
    assert graph.tensor("y_q").dtype == np.dtype(dtype).name
    outputs, worst = [], 0
    for x in _inputs(rng, 16, (3, 8, 8)):  # not the calibration images
        want, got = _ort(path, {"x": x}, optimize=False), reference.run(graph, {"x": x}, keep=True)
        assert _layerwise(graph, want, got) == len(compute) + 1  # + the Flatten (a reshape)
        # end to end, the layers' 1-LSB differences add up a little
        worst = max(worst, int(np.abs(got["y_q"].astype(int) - want["y_q"].astype(int)).max()))
        q = graph.tensor("y_q").quant
        assert np.array_equal(got["y"], reference.dequantize(got["y_q"], scale=q.scale[0], zero_point=q.zero_point[0]))
        outputs.append(got["y_q"])
    assert worst <= 3
    outputs = np.array(outputs)
    assert len({int(np.argmax(o)) for o in outputs}) >= 5 and outputs.std() > 3  # not saturated or constant


def _assert_float_only_at_border(graph):
    """float32 only where the float input is quantized and the float outputs are dequantized."""
    for op in graph.ops:
        if any(graph.tensor(n).dtype == "float32" for n in op.inputs + op.outputs if n):
            assert op.kind in ("quantize", "dequantize"), op
            assert op.inputs[0] in graph.inputs or op.outputs[0] in graph.outputs, op


def test_onnxruntime_quantized_model(tmp_path):
    """The float model through onnxruntime's own static quantizer (QDQ, per-channel int8): all int8 inside."""
    from onnxruntime.quantization import CalibrationDataReader, QuantFormat, QuantType, quantize_static
    from onnxruntime.quantization.shape_inference import quant_pre_process

    rng = np.random.default_rng(0)
    float_path = _save(_float_net(rng), tmp_path, "float.onnx")
    calib = _inputs(rng, 16, (3, 12, 12))

    class Reader(CalibrationDataReader):
        def __init__(self):
            self.samples = iter([{"x": x} for x in calib])

        def get_next(self):
            return next(self.samples, None)

    pre, qdq = tmp_path / "pre.onnx", tmp_path / "qdq.onnx"
    quant_pre_process(str(float_path), str(pre))  # folds BatchNorm, as the quantizer expects
    quantize_static(str(pre), str(qdq), Reader(), quant_format=QuantFormat.QDQ, per_channel=True,
                    activation_type=QuantType.QInt8, weight_type=QuantType.QInt8)
    model = onnx.shape_inference.infer_shapes(onnx.load(qdq))
    infos = {vi.name: vi for vi in model.graph.value_info}
    for node in model.graph.node:  # every quantized activation becomes a graph output: checked layer by layer
        if node.op_type == "QuantizeLinear" and node.output[0] in infos:
            model.graph.output.append(infos[node.output[0]])
    path = _save(model, tmp_path, "qdq_all.onnx")
    graph = load_onnx(path)
    _assert_float_only_at_border(graph)
    kinds = [op.kind for op in graph.ops]
    for kind in ("conv2d", "depthwise_conv2d", "add", "mul", "avg_pool2d", "max_pool2d", "mean", "lut",
                 "concat", "fully_connected", "softmax"):  # lut: the Sigmoid, one table to the model's scale
        assert kind in kinds
    agree = 0
    for x in _inputs(rng, 8, (3, 12, 12)):
        want, got = _ort(path, {"x": x}, optimize=False), reference.run(graph, {"x": x}, keep=True)
        assert _layerwise(graph, want, got) >= 15
        agree += int(np.argmax(want["y"]) == np.argmax(got["y"]))
    assert agree >= 6


@pytest.mark.parametrize("op,attrs", [
    ("AveragePool", dict(kernel_shape=[3, 3], strides=[2, 2], pads=[1, 1, 1, 1], count_include_pad=1)),
    ("AveragePool", dict(kernel_shape=[3, 2], strides=[2, 2], ceil_mode=1)),
    ("MaxPool", dict(kernel_shape=[3, 3], strides=[2, 2], pads=[0, 1, 1, 0], ceil_mode=1)),
    ("MaxPool", dict(kernel_shape=[2, 3], strides=[1, 2], auto_pad="SAME_LOWER")),
    ("Conv", dict(kernel_shape=[3, 3], strides=[2, 1], dilations=[2, 2], pads=[2, 1, 2, 3])),
    ("Conv", dict(kernel_shape=[3, 3], strides=[2, 3], auto_pad="SAME_UPPER")),
    ("Conv", dict(kernel_shape=[3, 3], strides=[2, 2], auto_pad="VALID", group=4)),
])
def test_window_attributes_match_onnxruntime(tmp_path, op, attrs):
    rng = np.random.default_rng(7)
    inits, ins = [], ["x"]
    if op == "Conv":
        c_in = 4 // attrs.get("group", 1)
        inits, ins = [_init(rng, "w", (8, c_in, 3, 3))], ["x", "w"]
    node = helper.make_node(op, ins, ["y"], name="window", **attrs)
    model = _model([node], [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 4, 9, 8])],
                   [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)], inits, check=False)
    path = _save(onnx.shape_inference.infer_shapes(model), tmp_path)  # the output's shape declared
    x = rng.standard_normal((1, 4, 9, 8)).astype(np.float32)
    want = _ort(path, {"x": x})["y"]
    got = reference.run(load_onnx(path), {"x": x})["y"]
    assert got.shape == want.shape
    np.testing.assert_allclose(got, want, atol=1e-5)


def test_more_float_ops_match_onnxruntime(tmp_path):
    """Sub/Div by constants, Concat with a constant, general Transpose, Squeeze/Unsqueeze, channel Softmax,
    ReduceMean without keepdims, GlobalMaxPool, Dropout/Identity, opset 18 operands."""
    rng = np.random.default_rng(8)
    f = helper.make_node
    a = numpy_helper.from_array
    inits = [_init(rng, "w", (6, 3, 3, 3)), a(np.float32(0.5), "half"),
             a((1 + rng.random((1, 6, 1, 1))).astype(np.float32), "scale"),
             a(rng.standard_normal((1, 2, 5, 5)).astype(np.float32), "extra"),
             a(np.array([1], np.int64), "ax1"), a(np.array([0, 1], np.int64), "ax01"),
             a(np.array([2, 3], np.int64), "ax23")]
    nodes = [f("Conv", ["x", "w"], ["c"], pads=[1, 1, 1, 1]),
             f("Sub", ["c", "half"], ["c1"]),
             f("Div", ["c1", "scale"], ["c2"]),
             f("Dropout", ["c2"], ["c3"]),
             f("Concat", ["c3", "extra"], ["cat"], axis=1),  # (1, 8, 5, 5)
             f("Softmax", ["cat"], ["sm"], axis=1),
             f("Identity", ["sm"], ["out_softmax"]),
             f("ReduceMean", ["cat", "ax1"], ["rm"], keepdims=0),  # (1, 5, 5): over channels
             f("Transpose", ["rm"], ["rt"], perm=[0, 2, 1]),
             f("Unsqueeze", ["rt", "ax01"], ["ru"]),  # (1, 1, 1, 5, 5)
             f("Squeeze", ["ru", "ax01"], ["out_mean"]),
             f("GlobalMaxPool", ["cat"], ["gmp"]),
             f("Squeeze", ["gmp", "ax23"], ["out_gmp"]),
             f("Transpose", ["cat"], ["out_t"], perm=[0, 3, 1, 2])]
    outs = [helper.make_tensor_value_info("out_softmax", TensorProto.FLOAT, [1, 8, 5, 5]),
            helper.make_tensor_value_info("out_mean", TensorProto.FLOAT, [1, 5, 5]),
            helper.make_tensor_value_info("out_gmp", TensorProto.FLOAT, [1, 8]),
            helper.make_tensor_value_info("out_t", TensorProto.FLOAT, [1, 5, 8, 5])]
    model = _model(nodes, [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3, 5, 5])], outs, inits,
                   opset=18)
    path = _save(model, tmp_path)
    graph = load_onnx(path)
    x = rng.standard_normal((1, 3, 5, 5)).astype(np.float32)
    want, got = _ort(path, {"x": x}), reference.run(graph, {"x": x})
    for name in want:
        np.testing.assert_allclose(got[name], want[name], atol=1e-5, rtol=1e-5, err_msg=name)


def test_flatten_of_spatial_map_permutes_fc_weights(tmp_path):
    rng = np.random.default_rng(2)
    f = helper.make_node
    nodes = [f("Conv", ["x", "w"], ["c"], pads=[1, 1, 1, 1], name="conv"),
             f("Flatten", ["c"], ["fl"], name="flatten"),
             f("Gemm", ["fl", "wfc"], ["fc"], transB=1, name="fc"),
             f("Flatten", ["c"], ["fl2"], name="flatten2"),  # also a graph output: needs the NCHW order
             ]
    inits = [_init(rng, "w", (4, 2, 3, 3)), _init(rng, "wfc", (5, 4 * 5 * 6))]
    model = _model(nodes, [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 2, 5, 6])],
                   [helper.make_tensor_value_info("fc", TensorProto.FLOAT, [1, 5]),
                    helper.make_tensor_value_info("fl2", TensorProto.FLOAT, [1, 120])], inits)
    path = _save(model, tmp_path)
    graph = load_onnx(path)
    x = rng.standard_normal((1, 2, 5, 6)).astype(np.float32)
    want, got = _ort(path, {"x": x}), reference.run(graph, {"x": x})
    np.testing.assert_allclose(got["fc"], want["fc"], atol=1e-5)
    np.testing.assert_allclose(got["fl2"], want["fl2"], atol=1e-6)


def test_transpose_to_nchw_at_input_costs_nothing(tmp_path):
    """A model that takes NHWC and transposes to NCHW itself: the two layout changes cancel."""
    rng = np.random.default_rng(3)
    f = helper.make_node
    nodes = [f("Transpose", ["x"], ["xt"], perm=[0, 3, 1, 2], name="to_nchw"),
             f("Conv", ["xt", "w", "b"], ["c"], strides=[2, 2], auto_pad="SAME_LOWER", name="conv"),
             f("Relu", ["c"], ["r"], name="relu"),
             f("Transpose", ["r"], ["y"], perm=[0, 2, 3, 1], name="to_nhwc")]
    inits = [_init(rng, "w", (4, 3, 3, 3)), _init(rng, "b", (4,), 0.1)]
    model = _model(nodes, [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 7, 6, 3])],
                   [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 4, 3, 4])], inits)
    path = _save(model, tmp_path)
    graph = load_onnx(path)
    assert [op.kind for op in graph.ops] == ["conv2d"]
    x = rng.standard_normal((1, 7, 6, 3)).astype(np.float32)
    np.testing.assert_allclose(reference.run(graph, {"x": x})["y"], _ort(path, {"x": x})["y"], atol=1e-5)


# ---------------------------------------------------------------------------------------------------------------
# QOperator models with constant weights (the conformance cases feed their weights as inputs)


def _onnx_reference(model, feeds: dict) -> dict:
    from onnx.reference import ReferenceEvaluator
    ev = ReferenceEvaluator(model)
    return dict(zip([o.name for o in model.graph.output], ev.run(None, feeds)))


@pytest.mark.parametrize("dtype,group,auto_pad", [(np.uint8, 1, "NOTSET"), (np.int8, 1, "SAME_UPPER"),
                                                  (np.int8, 4, "NOTSET"), (np.uint8, 4, "SAME_LOWER")])
def test_qlinearconv_with_constant_weights(tmp_path, dtype, group, auto_pad):
    rng = np.random.default_rng(4)
    lo, hi = np.iinfo(dtype).min, np.iinfo(dtype).max
    a = numpy_helper.from_array
    w = rng.integers(lo, hi + 1, (8, 4 // group, 3, 3)).astype(dtype)
    w_zp = (rng.integers(100, 156, 8) if dtype == np.uint8 else np.zeros(8)).astype(dtype)  # per channel
    inits = [a(np.float32(0.02), "xs"), a(dtype(rng.integers(lo, hi)), "xz"), a(w, "w"),
             a((0.002 + 0.004 * rng.random(8)).astype(np.float32), "ws"), a(w_zp, "wz"),
             a(np.float32(0.05), "ys"), a(dtype((lo + hi) // 2 + 5), "yz"),
             a(rng.integers(-3000, 3000, 8).astype(np.int32), "b")]
    pads = {"pads": [1, 0, 1, 2]} if auto_pad == "NOTSET" else {"auto_pad": auto_pad}
    node = helper.make_node("QLinearConv", ["x", "xs", "xz", "w", "ws", "wz", "ys", "yz", "b"], ["y"],
                            group=group, strides=[2, 1], name="qconv", **pads)
    elem = TensorProto.UINT8 if dtype == np.uint8 else TensorProto.INT8
    model = _model([node], [helper.make_tensor_value_info("x", elem, [1, 4, 7, 7])],
                   [helper.make_tensor_value_info("y", elem, [1, 8, 4, 7])], inits)
    graph = load_onnx(_save(model, tmp_path))
    conv = next(op for op in graph.ops if op.kind in ("conv2d", "depthwise_conv2d"))
    assert conv.kind == ("depthwise_conv2d" if group == 4 else "conv2d")
    assert graph.tensor(conv.inputs[1]).dtype == "int8" and graph.tensor(conv.inputs[1]).quant.per_channel
    x = rng.integers(lo, hi + 1, (1, 4, 7, 7)).astype(dtype)
    want = _onnx_reference(model, {"x": x})["y"].astype(int)
    got = reference.run(graph, {"x": x})["y"]
    assert got.dtype == dtype
    diff = np.abs(got.astype(int) - want)
    assert diff.max() <= 1 and (diff == 0).mean() > 0.9  # ONNX requantizes in float, the IR in Q31
    assert len(np.unique(want)) > 20


@pytest.mark.parametrize("op", ["QLinearMatMul", "MatMulInteger"])
def test_matmul_with_constant_weights(tmp_path, op):
    rng = np.random.default_rng(5)
    a = numpy_helper.from_array
    b = rng.integers(-128, 128, (16, 6)).astype(np.int8)
    if op == "QLinearMatMul":
        inits = [a(np.float32(0.03), "as"), a(np.int8(-3), "az"), a(b, "b"),
                 a((0.004 + 0.004 * rng.random(6)).astype(np.float32), "bs"), a(np.zeros(6, np.int8), "bz"),
                 a(np.float32(0.3), "ys"), a(np.int8(4), "yz")]
        node = helper.make_node(op, ["a", "as", "az", "b", "bs", "bz", "ys", "yz"], ["y"], name="mm")
        out = TensorProto.INT8
    else:
        inits = [a(np.int8(-3), "az"), a(b, "b"), a(np.int8(7), "bz")]
        node = helper.make_node(op, ["a", "b", "az", "bz"], ["y"], name="mm")
        out = TensorProto.INT32
    model = _model([node], [helper.make_tensor_value_info("a", TensorProto.INT8, [3, 16])],
                   [helper.make_tensor_value_info("y", out, [3, 6])], inits, opset=21)
    graph = load_onnx(_save(model, tmp_path))
    assert [op.kind for op in graph.ops] == ["fully_connected"]
    x = rng.integers(-128, 128, (3, 16)).astype(np.int8)
    want = _onnx_reference(model, {"a": x})["y"]
    got = reference.run(graph, {"a": x})["y"]
    assert got.dtype == want.dtype
    assert np.abs(got.astype(int) - want.astype(int)).max() <= (1 if op == "QLinearMatMul" else 0)


def test_qoperator_chain_through_maxpool_and_reshape(tmp_path):
    """uint8 QLinearConv -> MaxPool -> Flatten -> QLinearMatMul: the integer tensors between keep one quant."""
    rng = np.random.default_rng(6)
    a = numpy_helper.from_array
    inits = [a(np.float32(0.02), "xs"), a(np.uint8(120), "xz"),
             a(rng.integers(0, 256, (4, 2, 3, 3)).astype(np.uint8), "w"), a(np.float32(0.003), "ws"),
             a(np.uint8(128), "wz"), a(np.float32(0.04), "cs"), a(np.uint8(100), "cz"),
             a(rng.integers(0, 256, (36, 5)).astype(np.uint8), "m"), a(np.float32(0.01), "ms"),
             a(np.uint8(127), "mz"), a(np.float32(0.2), "ys"), a(np.uint8(128), "yz")]
    f = helper.make_node
    nodes = [f("QLinearConv", ["x", "xs", "xz", "w", "ws", "wz", "cs", "cz"], ["c"], pads=[1, 1, 1, 1]),
             f("MaxPool", ["c"], ["p"], kernel_shape=[2, 2], strides=[2, 2]),
             f("Flatten", ["p"], ["fl"]),
             f("QLinearMatMul", ["fl", "cs", "cz", "m", "ms", "mz", "ys", "yz"], ["y"])]
    model = _model(nodes, [helper.make_tensor_value_info("x", TensorProto.UINT8, [1, 2, 6, 6])],
                   [helper.make_tensor_value_info("y", TensorProto.UINT8, [1, 5])], inits)
    graph = load_onnx(_save(model, tmp_path))
    assert [op.kind for op in graph.ops if op.kind not in ("transpose", "quantize")] == \
        ["conv2d", "max_pool2d", "reshape", "fully_connected"]
    xs = rng.integers(0, 256, (6, 1, 2, 6, 6)).astype(np.uint8)
    for x in xs:
        want = _onnx_reference(model, {"x": x})["y"].astype(int)
        got = reference.run(graph, {"x": x})["y"].astype(int)
        assert np.abs(got - want).max() <= 2  # two requantizations, each within 1 LSB


# ---------------------------------------------------------------------------------------------------------------
# errors a user can cause


def _tiny(op="Relu", dims=(1, 4), elem=TensorProto.FLOAT, **attrs):
    node = helper.make_node(op, ["x"], ["y"], name="the_node", **attrs)
    return _model([node], [helper.make_tensor_value_info("x", elem, list(dims))],
                  [helper.make_tensor_value_info("y", elem, list(dims))], [])


def _error(path, *words) -> str:
    with pytest.raises(UserError) as info:
        load_onnx(path)
    msg = str(info.value)
    for w in words:
        assert w.lower() in msg.lower(), f"{w!r} not in {msg!r}"
    return msg


def test_missing_file(tmp_path):
    _error(tmp_path / "nope.onnx", "does not exist", "nope.onnx")


def test_truncated_file(tmp_path):
    data = _float_net(np.random.default_rng(0)).SerializeToString()
    path = tmp_path / "cut.onnx"
    path.write_bytes(data[: len(data) // 2])
    _error(path, "cut.onnx", "not a valid ONNX model")


def test_random_bytes(tmp_path):
    path = tmp_path / "noise.onnx"
    path.write_bytes(np.random.default_rng(0).integers(0, 256, 4096, dtype=np.uint8).tobytes())
    _error(path, "noise.onnx", "not a valid ONNX model")


def test_checker_failure(tmp_path):
    model = _tiny("Sigmoid")
    model.graph.node[0].input[0] = "undefined_tensor"
    path = tmp_path / "bad.onnx"
    path.write_bytes(model.SerializeToString())
    _error(path, "checker", "undefined_tensor")


@pytest.mark.parametrize("op", ["Cos", "Sin"])
def test_unsupported_op(tmp_path, op):
    msg = _error(_save(_tiny(op), tmp_path), op, "the_node", "Supported ops", "Conv", "QLinearConv")
    assert "Traceback" not in msg


def test_every_unsupported_op_type_in_one_message(tmp_path):
    """Issue 10: Cos twice and Sin once: one message names both op types, their node counts and first nodes."""
    nodes = [helper.make_node("Cos", ["x"], ["a"], name="erf_a"), helper.make_node("Sin", ["a"], ["b"], name="tanh_b"),
             helper.make_node("Cos", ["b"], ["y"], name="erf_y")]
    model = _model(nodes, [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 4])],
                   [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 4])], [])
    _error(_save(model, tmp_path), "2 ONNX op types", "Cos: 2 nodes, the first 'erf_a'", "Sin: 1 node, 'tanh_b'",
           "Supported ops")


def test_inspect_lists_the_layers_with_the_unsupported_ones_marked(tmp_path):
    """Conv -> Sin -> Conv -> Cos -> GlobalAveragePool -> Flatten: inspect lists every layer, Sin and Cos
    marked, the convs as usual (hand-derived MACs: 8x8x8 outputs x 3x3x3 taps = 13,824; 8x8x4 x 8 = 2,048);
    compile refuses the model, naming both."""
    rng = np.random.default_rng(0)
    inits = [numpy_helper.from_array(rng.normal(size=(8, 3, 3, 3)).astype(np.float32), "w1"),
             numpy_helper.from_array(rng.normal(size=(4, 8, 1, 1)).astype(np.float32), "w2")]
    nodes = [helper.make_node("Conv", ["x", "w1"], ["c1"], name="conv1", pads=[1, 1, 1, 1]),
             helper.make_node("Sin", ["c1"], ["t"], name="tanh1"),
             helper.make_node("Conv", ["t", "w2"], ["c2"], name="conv2"),
             helper.make_node("Cos", ["c2"], ["e"], name="erf1"),
             helper.make_node("GlobalAveragePool", ["e"], ["p"], name="pool"),
             helper.make_node("Flatten", ["p"], ["y"], name="flat")]
    path = _save(_model(nodes, [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3, 8, 8])],
                        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 4])], inits), tmp_path)
    done = subprocess.run([sys.executable, "-m", "mcutool", "inspect", str(path), "--json"], capture_output=True,
                          text=True)
    assert done.returncode == 0, done.stderr
    import json
    rows = {r["source"]: r for r in json.loads(done.stdout)["layers"]}  # the ONNX node names
    assert rows["tanh1"]["op"] == "Sin (unsupported)" and rows["erf1"]["op"] == "Cos (unsupported)"
    assert rows["tanh1"]["out_shape"] == [1, 8, 8, 8] and rows["erf1"]["out_shape"] == [1, 8, 8, 4]
    assert rows["conv1"]["macs"] == 13_824 and rows["conv2"]["macs"] == 2_048
    _error(path, "2 ONNX op types", "Sin: 1 node, 'tanh1'", "Cos: 1 node, 'erf1'")


def test_sign_conformance_case_is_exact():
    """Sign imports (binary networks, issue 6) with ONNX's meaning for float tensors, sign(0) = 0."""
    graph, feeds, expected = _node_case("test_sign")
    got = reference.run(graph, feeds)
    assert np.array_equal(got[graph.outputs[0]], expected[0]) and 0 in feeds[graph.inputs[0]]


def test_relu_without_a_producer_to_fuse_into(tmp_path):
    _error(_save(_tiny("Relu"), tmp_path), "Relu", "the_node", "graph input")


def test_dynamic_shape(tmp_path):
    path = _save(_tiny("Sigmoid", dims=("N", 4)), tmp_path)
    _error(path, "input 'x'", "'N'", "axis 0", "--input-shape x=1,4", "re-export")
    # the suggested option works (issue 13: --input-shape instead of a command that set every dynamic dim to 1)
    graph = load_onnx(path, input_shapes={"x": (1, 4)})
    assert graph.tensor("x").shape == (1, 4) and graph.tensor("y").shape == (1, 4)


@pytest.mark.parametrize("elem,name", [(TensorProto.FLOAT16, "float16"), (TensorProto.DOUBLE, "float64"),
                                       (TensorProto.BFLOAT16, "bfloat16")])
def test_float16_and_other_float_types(tmp_path, elem, name):
    _error(_save(_tiny("Sigmoid", elem=elem), tmp_path), name, "float32", "int8", "uint8")


def test_runtime_quantization_parameters(tmp_path):
    """A model taking its scale as an input cannot be compiled; the message says what to do."""
    node = helper.make_node("QuantizeLinear", ["x", "s"], ["y"], name="q")
    model = _model([node], [helper.make_tensor_value_info("x", TensorProto.FLOAT, [4]),
                            helper.make_tensor_value_info("s", TensorProto.FLOAT, [])],
                   [helper.make_tensor_value_info("y", TensorProto.UINT8, [4])], [])
    _error(_save(model, tmp_path), "'s'", "not a constant", "initializer")
