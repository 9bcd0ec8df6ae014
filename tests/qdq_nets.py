"""Small float ONNX networks as PyTorch exports them, and their onnxruntime quantize_static QDQ copies (issue 14).

`mobile_net` is a MobileNetV3-like block stack at 16x16: Conv + HardSwish, depthwise + Relu, squeeze-excite
(ReduceMean with axes as an input, opset 18, Conv 1x1, Relu, Conv 1x1, HardSigmoid, Mul), a 1x1 Conv, swish
(x * Sigmoid(x)), MaxPool, a GELU written as exporters write it (x * 0.5 * (1 + Erf(x / sqrt 2))), then
ReduceMean over H, W (keepdims 0) -> Reshape -> Gemm. onnxruntime's quantizer leaves HardSwish, ReduceMean, HardSigmoid, Div and Erf in
float between DequantizeLinear and QuantizeLinear: the float islands issue 14 lists.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

H = W = 16
CLASSES = 10


def _init(rng, name, shape, gain=1.0):
    fan_in = int(np.prod(shape[1:])) if len(shape) > 1 else 1
    return numpy_helper.from_array((rng.standard_normal(shape) * gain * np.sqrt(2.0 / fan_in)).astype(np.float32),
                                   name)


def mobile_net(seed: int = 0, opset: int = 18, gelu: bool = True) -> onnx.ModelProto:
    """(gelu=False: the GELU's five ops left out, for a float model mcutool compiles with --calib: Erf has no
    float import.)"""
    rng = np.random.default_rng(seed)
    f = helper.make_node
    c = numpy_helper.from_array
    inits = [
        _init(rng, "w1", (8, 3, 3, 3)), c((0.1 * rng.standard_normal(8)).astype(np.float32), "b1"),
        _init(rng, "wdw", (8, 1, 3, 3)), c((0.1 * rng.standard_normal(8)).astype(np.float32), "bdw"),
        _init(rng, "wse1", (4, 8, 1, 1)), c((0.1 * rng.standard_normal(4)).astype(np.float32), "bse1"),
        _init(rng, "wse2", (8, 4, 1, 1)), c((0.5 + 0.1 * rng.standard_normal(8)).astype(np.float32), "bse2"),
        _init(rng, "w2", (16, 8, 1, 1)), c((0.1 * rng.standard_normal(16)).astype(np.float32), "b2"),
        _init(rng, "wfc", (CLASSES, 16), 2.0), c((0.1 * rng.standard_normal(CLASSES)).astype(np.float32), "bfc"),
        c(np.array([2, 3], np.int64), "hw_axes"), c(np.array([1, 16], np.int64), "flat_shape"),
    ] + ([c(np.float32(np.sqrt(2.0)), "sqrt2"), c(np.float32(1.0), "one"), c(np.float32(0.5), "half")] if gelu else [])
    mean_hw = (lambda i, o, keep, name: f("ReduceMean", [i, "hw_axes"], [o], keepdims=keep, name=name)) \
        if opset >= 18 else (lambda i, o, keep, name: f("ReduceMean", [i], [o], axes=[2, 3], keepdims=keep, name=name))
    nodes = [
        f("Conv", ["x", "w1", "b1"], ["c1"], pads=[1, 1, 1, 1], strides=[2, 2], name="conv1"),
        f("HardSwish", ["c1"], ["a1"], name="hswish1"),
        f("Conv", ["a1", "wdw", "bdw"], ["c2"], pads=[1, 1, 1, 1], group=8, name="dw"),
        f("Relu", ["c2"], ["a2"], name="relu2"),
        mean_hw("a2", "se0", 1, "se_mean"),
        f("Conv", ["se0", "wse1", "bse1"], ["se1"], name="se_fc1"),
        f("Relu", ["se1"], ["se1r"], name="se_relu"),
        f("Conv", ["se1r", "wse2", "bse2"], ["se2"], name="se_fc2"),
        f("HardSigmoid", ["se2"], ["se3"], alpha=1.0 / 6, beta=0.5, name="se_hsigmoid"),
        f("Mul", ["a2", "se3"], ["a3"], name="se_mul"),
        f("Conv", ["a3", "w2", "b2"], ["c3"], name="conv2"),
        f("Sigmoid", ["c3"], ["c3s"], name="swish_sigmoid"),
        f("Mul", ["c3", "c3s"], ["c3w"], name="swish_mul"),
        f("MaxPool", ["c3w"], ["p3"], kernel_shape=[2, 2], strides=[2, 2], name="maxpool"),
        *([f("Div", ["p3", "sqrt2"], ["g0"], name="gelu_div"),
           f("Erf", ["g0"], ["g1"], name="gelu_erf"),
           f("Add", ["g1", "one"], ["g2"], name="gelu_add"),
           f("Mul", ["p3", "g2"], ["g3"], name="gelu_mul"),
           f("Mul", ["g3", "half"], ["g4"], name="gelu_half")] if gelu else []),
        mean_hw("g4" if gelu else "p3", "m", 0, "pool"),
        f("Reshape", ["m", "flat_shape"], ["m2"], name="flatten"),
        f("Gemm", ["m2", "wfc", "bfc"], ["y"], transB=1, name="fc"),
    ]
    graph = helper.make_graph(nodes, "mobile_net", [helper.make_tensor_value_info("x", TensorProto.FLOAT,
                                                                                    [1, 3, H, W])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, CLASSES])], inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])
    model.ir_version = 10  # onnxruntime rejects onnx 1.23's default
    onnx.checker.check_model(model)
    return _centred(model, "m2", "wfc", "bfc")


def _centred(model: onnx.ModelProto, features: str, w: str, b: str, tokens: bool = False) -> onnx.ModelProto:
    """The classifier's bias set so that its logits average 0 over training-like inputs (images(64, seed=99), or
    tokens(64, seed=99)): with random weights one or two classes would otherwise win on every input
    (DESIGN.md §11)."""
    import onnxruntime as ort
    probe = onnx.ModelProto()
    probe.CopyFrom(model)
    probe.graph.output.append(helper.make_tensor_value_info(features, TensorProto.FLOAT, None))
    sess = ort.InferenceSession(probe.SerializeToString(), providers=["CPUExecutionProvider"])
    samples = globals()["tokens"](64, 99) if tokens else images(64, 99)
    feats = np.concatenate([sess.run([features], {"x": x[None]})[0] for x in samples])
    inits = {t.name: t for t in model.graph.initializer}
    weights = numpy_helper.to_array(inits[w])
    inits[b].CopyFrom(numpy_helper.from_array((-weights @ feats.mean(axis=0)).astype(np.float32), b))
    return model


def images(n: int, seed: int) -> np.ndarray:
    """n test images (N, 3, H, W) that differ in more than noise: channel offsets, row and column ramps."""
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, 3, H, W)) + 1.5 * rng.standard_normal((n, 3, 1, 1))
    x += rng.standard_normal((n, 1, H, 1)) * np.linspace(-1, 1, W) + rng.standard_normal((n, 1, 1, W))
    return x.astype(np.float32)


def quantize(float_path: Path, out: Path, calib: np.ndarray, per_channel: bool, activations: str = "int8") -> Path:
    """onnxruntime's quantize_static, QDQ format, as a user runs it (int8 weights, int8 or uint8 activations)."""
    from onnxruntime.quantization import CalibrationDataReader, QuantFormat, QuantType, quantize_static

    class Reader(CalibrationDataReader):
        def __init__(self):
            self.samples = iter([{"x": x[None]} for x in calib])

        def get_next(self):
            return next(self.samples, None)

    quantize_static(str(float_path), str(out), Reader(), quant_format=QuantFormat.QDQ, per_channel=per_channel,
                    activation_type=QuantType.QInt8 if activations == "int8" else QuantType.QUInt8,
                    weight_type=QuantType.QInt8)
    return out


def shuffle_net(seed: int = 1, opset: int = 14) -> onnx.ModelProto:
    """A ShuffleNetV2-like net at 16x16: Conv + Relu, MaxPool, a unit that Splits the channels in two (PyTorch's
    chunk), convolves one half (1x1, depthwise 3x3, 1x1) and Concats it with the other, the channel shuffle
    (Reshape to 5-D, Transpose, Reshape back), a Slice of the channels, a HardSwish, Gather of one row, then
    GlobalAveragePool -> Flatten -> Gemm."""
    rng = np.random.default_rng(seed)
    f = helper.make_node
    c = numpy_helper.from_array
    inits = [
        _init(rng, "w1", (16, 3, 3, 3)), c((0.1 * rng.standard_normal(16)).astype(np.float32), "b1"),
        _init(rng, "wa", (8, 8, 1, 1)), c((0.1 * rng.standard_normal(8)).astype(np.float32), "ba"),
        _init(rng, "wd", (8, 1, 3, 3)), c((0.1 * rng.standard_normal(8)).astype(np.float32), "bd"),
        _init(rng, "wb", (8, 8, 1, 1)), c((0.1 * rng.standard_normal(8)).astype(np.float32), "bb"),
        _init(rng, "wfc", (CLASSES, 12), 2.0), c(np.zeros(CLASSES, np.float32), "bfc"),
        c(np.array([8, 8], np.int64), "halves"),
        c(np.array([1, 2, 8, 8, 8], np.int64), "s5"), c(np.array([1, 16, 8, 8], np.int64), "s4"),
        c(np.array([2], np.int64), "st"), c(np.array([14], np.int64), "en"), c(np.array([1], np.int64), "ax"),
        c(np.array([1, 3, 5, 7], np.int64), "rows"),
    ]
    nodes = [
        f("Conv", ["x", "w1", "b1"], ["c1"], pads=[1, 1, 1, 1], name="conv1"),
        f("Relu", ["c1"], ["a1"], name="relu1"),
        f("MaxPool", ["a1"], ["p1"], kernel_shape=[3, 3], strides=[2, 2], pads=[1, 1, 1, 1], name="maxpool"),
        f("Split", ["p1", "halves"], ["h1", "h2"], axis=1, name="split"),
        f("Conv", ["h2", "wa", "ba"], ["u1"], name="unit_pw1"),
        f("Relu", ["u1"], ["u1r"], name="unit_relu1"),
        f("Conv", ["u1r", "wd", "bd"], ["u2"], pads=[1, 1, 1, 1], group=8, name="unit_dw"),
        f("Conv", ["u2", "wb", "bb"], ["u3"], name="unit_pw2"),
        f("Relu", ["u3"], ["u3r"], name="unit_relu2"),
        f("Concat", ["h1", "u3r"], ["cat"], axis=1, name="concat"),
        f("Reshape", ["cat", "s5"], ["r5"], name="shuffle_reshape"),
        f("Transpose", ["r5"], ["t5"], perm=[0, 2, 1, 3, 4], name="shuffle_transpose"),
        f("Reshape", ["t5", "s4"], ["sh"], name="shuffle_back"),
        f("Slice", ["sh", "st", "en", "ax"], ["sl"], name="slice"),
        f("HardSwish", ["sl"], ["hs"], name="hswish"),
        f("Gather", ["hs", "rows"], ["g"], axis=2, name="gather_rows"),
        f("GlobalAveragePool", ["g"], ["gap"], name="gap"),
        f("Flatten", ["gap"], ["fl"], name="flatten"),
        f("Gemm", ["fl", "wfc", "bfc"], ["y"], transB=1, name="fc"),
    ]
    graph = helper.make_graph(nodes, "shuffle_net", [helper.make_tensor_value_info("x", TensorProto.FLOAT,
                                                                                     [1, 3, H, W])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, CLASSES])], inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])
    model.ir_version = 10
    onnx.checker.check_model(model)
    return _centred(model, "fl", "wfc", "bfc")


TOKENS, DIM, HEADS = 8, 16, 2


def attention_net(seed: int = 0, opset: int = 13) -> onnx.ModelProto:
    """One multi-head self-attention block as PyTorch exports it, on (1, 8 tokens, 16): MatMul projections (with
    Add biases), heads by Reshape + Transpose, Q K^T (MatMul between activations), Div by sqrt(d), Softmax, P V,
    heads merged, output projection, a residual Add, mean over tokens, classifier."""
    rng = np.random.default_rng(seed)
    f = helper.make_node
    c = numpy_helper.from_array
    d = DIM // HEADS
    inits = [c(np.array([1, TOKENS, HEADS, d], np.int64), "heads"), c(np.array([1, TOKENS, DIM], np.int64), "merged"),
             c(np.float32(np.sqrt(d)), "sqrt_d"), _init(rng, "wc", (CLASSES, DIM), 2.0),
             c(np.zeros(CLASSES, np.float32), "bc")]
    for name in ("q", "k", "v", "o"):
        inits += [numpy_helper.from_array((rng.standard_normal((DIM, DIM)) / np.sqrt(DIM)).astype(np.float32),
                                          f"w{name}"),
                  c((0.1 * rng.standard_normal(DIM)).astype(np.float32), f"b{name}")]
    nodes = []
    for name in ("q", "k", "v"):
        nodes += [f("MatMul", ["x", f"w{name}"], [f"{name}0"], name=f"proj_{name}"),
                  f("Add", [f"{name}0", f"b{name}"], [f"{name}1"], name=f"proj_{name}_bias"),
                  f("Reshape", [f"{name}1", "heads"], [f"{name}2"], name=f"split_heads_{name}"),
                  f("Transpose", [f"{name}2"], [f"{name}3"], perm=[0, 2, 3, 1] if name == "k" else [0, 2, 1, 3],
                    name=f"heads_first_{name}")]
    nodes += [f("MatMul", ["q3", "k3"], ["s0"], name="scores"),  # (1, H, T, d) @ (1, H, d, T)
              f("Div", ["s0", "sqrt_d"], ["s1"], name="scale"),
              f("Softmax", ["s1"], ["p"], axis=-1, name="softmax"),
              f("MatMul", ["p", "v3"], ["o0"], name="context"),
              f("Transpose", ["o0"], ["o1"], perm=[0, 2, 1, 3], name="tokens_first"),
              f("Reshape", ["o1", "merged"], ["o2"], name="merge_heads"),
              f("MatMul", ["o2", "wo"], ["o3"], name="proj_o"),
              f("Add", ["o3", "bo"], ["o4"], name="proj_o_bias"),
              f("Add", ["x", "o4"], ["r"], name="residual"),
              f("ReduceMean", ["r"], ["m"], axes=[1], keepdims=0, name="token_mean"),
              f("Gemm", ["m", "wc", "bc"], ["y"], transB=1, name="classifier")]
    graph = helper.make_graph(nodes, "attention", [helper.make_tensor_value_info("x", TensorProto.FLOAT,
                                                                                   [1, TOKENS, DIM])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, CLASSES])], inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])
    model.ir_version = 10
    onnx.checker.check_model(model)
    return _centred(model, "m", "wc", "bc", tokens=True)


def tokens(n: int, seed: int) -> np.ndarray:
    """n inputs (N, TOKENS, DIM): per-sample offsets per feature and per token, plus noise."""
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, TOKENS, DIM)) + 1.5 * rng.standard_normal((n, 1, DIM))
    return (x + rng.standard_normal((n, TOKENS, 1))).astype(np.float32)


def layer_norm_net(decomposed: bool, seed: int = 0) -> onnx.ModelProto:
    """tokens (1, 8, 16) -> MatMul + Add -> layer norm over the features -> Relu -> mean over tokens -> Gemm. The
    layer norm as LayerNormalization (opset 17) or as PyTorch exports it below opset 17 (ReduceMean, Sub, Pow 2,
    ReduceMean, Add epsilon, Sqrt, Div, Mul gamma, Add beta)."""
    rng = np.random.default_rng(seed)
    f = helper.make_node
    c = numpy_helper.from_array
    inits = [c((rng.standard_normal((DIM, DIM)) / np.sqrt(DIM)).astype(np.float32), "w"),
             c((0.1 * rng.standard_normal(DIM)).astype(np.float32), "b"),
             c((1 + 0.2 * rng.standard_normal(DIM)).astype(np.float32), "gamma"),
             c((0.2 * rng.standard_normal(DIM)).astype(np.float32), "beta"),
             _init(rng, "wc", (CLASSES, DIM), 2.0), c(np.zeros(CLASSES, np.float32), "bc"),
             c(np.float32(2.0), "two"), c(np.float32(1e-5), "eps")]
    nodes = [f("MatMul", ["x", "w"], ["h0"], name="proj"), f("Add", ["h0", "b"], ["h"], name="proj_bias")]
    if decomposed:
        nodes += [f("ReduceMean", ["h"], ["m"], axes=[-1], name="ln_mean"), f("Sub", ["h", "m"], ["d"], name="ln_sub"),
                  f("Pow", ["d", "two"], ["d2"], name="ln_pow"),
                  f("ReduceMean", ["d2"], ["v"], axes=[-1], name="ln_var"),
                  f("Add", ["v", "eps"], ["ve"], name="ln_eps"), f("Sqrt", ["ve"], ["sd"], name="ln_sqrt"),
                  f("Div", ["d", "sd"], ["n"], name="ln_div"), f("Mul", ["n", "gamma"], ["ng"], name="ln_gamma"),
                  f("Add", ["ng", "beta"], ["ln"], name="ln_beta")]
    else:
        nodes += [f("LayerNormalization", ["h", "gamma", "beta"], ["ln"], axis=-1, epsilon=1e-5, name="ln")]
    nodes += [f("Relu", ["ln"], ["a"], name="relu"),
              f("ReduceMean", ["a"], ["mt"], axes=[1], keepdims=0, name="token_mean"),
              f("Gemm", ["mt", "wc", "bc"], ["y"], transB=1, name="classifier")]
    graph = helper.make_graph(nodes, "layer_norm", [helper.make_tensor_value_info("x", TensorProto.FLOAT,
                                                                                    [1, TOKENS, DIM])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, CLASSES])], inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 10
    onnx.checker.check_model(model)
    return _centred(model, "mt", "wc", "bc", tokens=True)
