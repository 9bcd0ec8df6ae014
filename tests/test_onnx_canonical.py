"""The same network written in the forms the two PyTorch exporters (TorchScript-based and dynamo) use imports to
the same IR (issue 14): opset-18 operands that were attributes (ReduceMean axes, Split sizes), Flatten vs
Reshape(-1), Gemm vs MatMul + Add, the channel shuffle as Reshape/Transpose/Reshape. Pairs built here by hand."""
import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from mcutool.frontends.onnx import load_onnx

F = helper.make_node
C = numpy_helper.from_array


def _save(tmp_path, name, nodes, inits, opset, y_shape, x_shape=(1, 8, 6, 6)):
    y = [helper.make_tensor_value_info(n, TensorProto.FLOAT, list(s)) for n, s in y_shape.items()]
    graph = helper.make_graph(nodes, "net", [helper.make_tensor_value_info("x", TensorProto.FLOAT, list(x_shape))],
                              y, inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])
    model.ir_version = 10
    onnx.checker.check_model(model)
    path = tmp_path / f"{name}.onnx"
    onnx.save(model, path)
    return path


def signature(graph) -> list:
    """The graph up to tensor names: each op's kind, attributes, and its inputs' and outputs' shapes, dtypes and
    (for constants) values, in op order, each input named by where it comes from (graph input, an earlier op's
    output, or a constant)."""
    made = {name: f"input{i}" for i, name in enumerate(graph.inputs)}
    sig = []
    for k, op in enumerate(graph.ops):
        ins = []
        for n in op.inputs:
            if not n:
                ins.append(None)
                continue
            t = graph.tensor(n)
            ins.append((made.get(n, "const"), t.shape, t.dtype, None if t.data is None else t.data.tobytes()))
        for j, n in enumerate(op.outputs):
            made[n] = f"op{k}.{j}"
        sig.append((op.kind, repr(op.attrs), ins, [graph.tensor(n).shape for n in op.outputs]))
    return sig


def _weights(shape, seed):
    return np.random.default_rng(seed).standard_normal(shape).astype(np.float32)


def test_reduce_mean_axes_attribute_and_input(tmp_path):
    y = {"y": (1, 8, 1, 1)}
    old = _save(tmp_path, "a", [F("ReduceMean", ["x"], ["y"], axes=[2, 3], keepdims=1, name="m")], [], 13, y)
    new = _save(tmp_path, "b", [F("ReduceMean", ["x", "axes"], ["y"], keepdims=1, name="m")],
                [C(np.array([2, 3], np.int64), "axes")], 18, y)
    assert signature(load_onnx(old)) == signature(load_onnx(new))
    assert [op.kind for op in load_onnx(new).ops] == ["mean"]


def test_split_sizes_attribute_input_and_num_outputs(tmp_path):
    conv = [C(_weights((8, 8, 1, 1), 0), "w")]
    tail = [F("Conv", ["x", "w"], ["c"], name="conv"), ]
    outs = {"y1": (1, 4, 6, 6), "y2": (1, 4, 6, 6)}
    forms = [
        (11, [F("Split", ["c"], ["y1", "y2"], axis=1, split=[4, 4], name="s")], []),
        (13, [F("Split", ["c", "sizes"], ["y1", "y2"], axis=1, name="s")], [C(np.array([4, 4], np.int64), "sizes")]),
        (18, [F("Split", ["c"], ["y1", "y2"], axis=1, num_outputs=2, name="s")], []),
    ]
    sigs = [signature(load_onnx(_save(tmp_path, f"s{opset}", tail + nodes, conv + inits, opset, outs)))
            for opset, nodes, inits in forms]
    assert sigs[0] == sigs[1] == sigs[2]
    assert [s[0] for s in sigs[0]] == ["transpose", "conv2d", "split", "transpose", "transpose"]


@pytest.mark.parametrize("flatten", [
    [F("Flatten", ["p"], ["f"], axis=1, name="flat")],
    [F("Reshape", ["p", "minus1"], ["f"], name="flat")],
    [F("Reshape", ["p", "minus1_8"], ["f"], name="flat")],
])
@pytest.mark.parametrize("fc", ["gemm", "matmul_add"])
def test_flatten_forms_and_gemm_forms(tmp_path, flatten, fc):
    """GlobalAveragePool -> Flatten | Reshape(1, -1) | Reshape(-1 ...) -> Gemm | MatMul + Add: one IR."""
    w, b = _weights((10, 8), 1), _weights((10,), 2)
    inits = [C(np.array([1, -1], np.int64), "minus1"), C(np.array([-1, 8], np.int64), "minus1_8"),
             C(w, "w"), C(b, "b"), C(np.ascontiguousarray(w.T), "wt")]
    head = [F("GlobalAveragePool", ["x"], ["p"], name="gap")]
    tail = ([F("Gemm", ["f", "w", "b"], ["y"], transB=1, name="fc")] if fc == "gemm" else
            [F("MatMul", ["f", "wt"], ["mm"], name="fc"), F("Add", ["mm", "b"], ["y"], name="fc_bias")])
    reference = _save(tmp_path, "ref", head + [F("Flatten", ["p"], ["f"], name="flat"),
                                               F("Gemm", ["f", "w", "b"], ["y"], transB=1, name="fc")], inits, 13,
                      {"y": (1, 10)})
    other = _save(tmp_path, "other", head + flatten + tail, inits, 13, {"y": (1, 10)})
    assert signature(load_onnx(other)) == signature(load_onnx(reference))


def test_channel_shuffle_forms(tmp_path):
    """ShuffleNet's shuffle written through a 5-D tensor, and as a Gather of the channels: the same IR."""
    perm = np.arange(8).reshape(2, 4).T.ravel()
    a = _save(tmp_path, "a", [F("Reshape", ["x", "s5"], ["r"], name="shuffle"),
                              F("Transpose", ["r"], ["t"], perm=[0, 2, 1, 3, 4], name="t"),
                              F("Reshape", ["t", "s4"], ["y"], name="shuffle")],
              [C(np.array([1, 2, 4, 6, 6], np.int64), "s5"), C(np.array([1, 8, 6, 6], np.int64), "s4")], 13,
              {"y": (1, 8, 6, 6)})
    b = _save(tmp_path, "b", [F("Gather", ["x", "perm"], ["y"], axis=1, name="shuffle")],
              [C(perm.astype(np.int64), "perm")], 13, {"y": (1, 8, 6, 6)})
    ga, gb = load_onnx(a), load_onnx(b)
    assert signature(ga) == signature(gb)
    x = np.arange(8 * 36, dtype=np.float32).reshape(1, 8, 6, 6)
    from mcutool import reference
    np.testing.assert_array_equal(reference.run(ga, {"x": x})["y"], x[:, perm])
