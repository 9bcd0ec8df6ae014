"""A small binarized CNN as a float ONNX model (issue 6's must-show network), built with onnx.helper.

    x (1x1x32x32) -> Conv 3x3 1->32 + BN + Sign                       (first layer: stays int8, output binarized)
      -> Conv 3x3 32->32 (+-alpha) + BN + Sign -> MaxPool 2
      -> Conv 3x3 32->64 (+-alpha) + BN + Sign -> MaxPool 2
      -> Conv 3x3 64->64 (+-alpha) + BN + Sign -> MaxPool 2
      -> Conv 3x3 64->64 (+-alpha) + BN                                (last binary layer: int8 output)
      -> Flatten -> Gemm 1024->10                                       (float, quantized to int8)

Binary conv weights are +-alpha per output channel (alpha > 0 random). BatchNorm means are the channel medians
of the layer's pre-activations on sample inputs, so every Sign splits its inputs about in half (no constant
tensor), and some gammas are negative (a flipped comparison after folding). Every conv is zero-padded: the
binary kernels must match it by counting the valid taps.

`float_to_int8_graph` imports, calibrates and quantizes it (mcutool.quantize.ptq) and gives the firmware int8
I/O (the graph's own QUANTIZE/DEQUANTIZE border removed; their scales are the I/O scales).
"""
from __future__ import annotations

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

CHANNELS = (32, 32, 64, 64, 64)  # conv0 (int8) then four binary convs
POOL_AFTER = (False, True, True, True, False)
CLASSES = 10


def random_inputs(n: int, seed: int) -> np.ndarray:
    """Random images on the int8 input grid k/128, k in [-128, 127]: a random low-frequency field plus noise.

    On that grid (and with the first conv's weights on an int8 grid, below) the int8 first layer computes
    exactly what the float one does, so the comparison with onnxruntime measures the binary layers and the
    int8 tail, not the rounding of the input. (A random BNN is chaotic: one flipped sign in 500 after the
    first layer becomes one in five after the fourth.) Every set holds both grid extremes, so calibration
    finds the range [-1, 127/128] and the input scale 1/128 exactly."""
    rng = np.random.default_rng(seed)
    low = rng.uniform(-1, 1, size=(n, 1, 8, 8))
    up = np.kron(low, np.ones((1, 1, 4, 4)))
    x = 0.6 * up + 0.4 * rng.uniform(-1, 1, size=(n, 1, 32, 32))
    k = np.clip(np.round(x * 128), -128, 127)
    k[0, 0, 0, 0], k[0, 0, 0, 1] = -128, 127
    return (k / 128).astype(np.float32)


def _conv_node(i, x, w, b, out):
    return helper.make_node("Conv", [x, w, b], [out], name=f"conv{i}", kernel_shape=[3, 3], pads=[1, 1, 1, 1])


def _model(weights: list, bns: list, fc_w=None, fc_b=None, pool_after=POOL_AFTER) -> onnx.ModelProto:
    nodes, inits = [], []
    x = "input"
    for i, (w, b) in enumerate(weights):
        inits += [numpy_helper.from_array(w, f"w{i}"), numpy_helper.from_array(b, f"b{i}")]
        nodes.append(_conv_node(i, x, f"w{i}", f"b{i}", f"c{i}"))
        x = f"c{i}"
        if i < len(bns) and bns[i] is not None:
            g, beta, mean, var = bns[i]
            for n, v in zip(("g", "beta", "mean", "var"), (g, beta, mean, var)):
                inits.append(numpy_helper.from_array(v.astype(np.float32), f"bn{i}_{n}"))
            nodes.append(helper.make_node("BatchNormalization", [x, f"bn{i}_g", f"bn{i}_beta", f"bn{i}_mean",
                                                                  f"bn{i}_var"], [f"n{i}"], name=f"bn{i}",
                                          epsilon=1e-5))
            x = f"n{i}"
        if i < len(weights) - 1:
            nodes.append(helper.make_node("Sign", [x], [f"s{i}"], name=f"sign{i}"))
            x = f"s{i}"
            if pool_after[i]:
                nodes.append(helper.make_node("MaxPool", [x], [f"p{i}"], name=f"pool{i}", kernel_shape=[2, 2],
                                              strides=[2, 2]))
                x = f"p{i}"
    nodes.append(helper.make_node("Flatten", [x], ["flat"], name="flatten", axis=1))
    out = helper.make_tensor_value_info("flat", TensorProto.FLOAT, None)
    if fc_w is not None and fc_w.size:
        inits += [numpy_helper.from_array(fc_w, "fc_w"), numpy_helper.from_array(fc_b, "fc_b")]
        nodes.append(helper.make_node("Gemm", ["flat", "fc_w", "fc_b"], ["logits"], name="fc", transB=1))
        out = helper.make_tensor_value_info("logits", TensorProto.FLOAT, [1, CLASSES])
    graph = helper.make_graph(nodes, "bnn", [helper.make_tensor_value_info("input", TensorProto.FLOAT,
                                                                           [1, 1, 32, 32])], [out], inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    return model


def _run(model: onnx.ModelProto, x: np.ndarray, output: str) -> np.ndarray:
    import onnxruntime as ort
    m = onnx.ModelProto()
    m.CopyFrom(model)
    if output not in [o.name for o in m.graph.output]:
        m.graph.output.append(helper.make_tensor_value_info(output, TensorProto.FLOAT, None))
    sess = ort.InferenceSession(m.SerializeToString(), providers=["CPUExecutionProvider"])
    return np.concatenate([sess.run([output], {"input": x[i:i + 1]})[0] for i in range(len(x))])


def build_bnn(seed: int = 0, samples: np.ndarray | None = None, channels=CHANNELS) -> onnx.ModelProto:
    """The float ONNX BNN; BatchNorm statistics set from `samples` (default: 16 fresh random images).
    `channels`: output channels of the five convs (the issue's network: CHANNELS)."""
    rng = np.random.default_rng(seed)
    samples = random_inputs(16, seed + 1000) if samples is None else samples
    weights, bns = [], []
    cin = 1
    for i, cout in enumerate(channels):
        if i == 0:  # int8-grid weights with a +-127 in every channel: per-channel int8 quantization is exact
            k = np.clip(np.round(rng.normal(0, 50, size=(cout, cin, 3, 3))), -126, 126)
            k.reshape(cout, -1)[:, 0] = 127 * rng.choice([-1, 1], size=cout)
            w = (k / 128).astype(np.float32)
        else:
            alpha = rng.uniform(0.5, 1.5, size=(cout, 1, 1, 1))
            w = (alpha * rng.choice([-1.0, 1.0], size=(cout, cin, 3, 3))).astype(np.float32)
        b = (rng.normal(0, 0.1, size=cout) if i else np.zeros(cout)).astype(np.float32)
        weights.append((w, b))
        # pre-activation statistics of this conv on the samples, with the BNs so far in place
        pre = _run(_model(weights, bns), samples, f"c{i}")
        mean = np.median(pre, axis=(0, 2, 3))
        std = pre.std(axis=(0, 2, 3)) + 1e-3
        gamma = rng.uniform(0.5, 1.5, size=cout) * rng.choice([-1.0, 1.0], size=cout, p=[0.25, 0.75])
        beta = rng.normal(0, 0.05, size=cout)
        if i == 0:  # threshold a quarter accumulator step off the grid (scale 1/128 * 1/128): no value lies on it
            step = 1.0 / (128 * 128)
            mean = (np.round(mean / step) - 0.25 * np.sign(gamma)) * step
            beta = np.zeros(cout)
        bns.append((gamma, beta, mean, std ** 2))
        cin = cout
    feat = _run(_model(weights, bns), samples, "flat")
    fc_w = rng.normal(0, 1, size=(CLASSES, feat.shape[1])).astype(np.float32) / np.sqrt(feat.shape[1])
    logits = feat @ fc_w.T
    fc_b = (-logits.mean(axis=0)).astype(np.float32)  # centre the classes so several of them win
    return _model(weights, bns, fc_w, fc_b)


def float_to_int8_graph(path, calib: np.ndarray):
    """Import the float ONNX, calibrate on `calib` (N, 1, 32, 32), quantize; int8 graph I/O, ops named as the
    ONNX nodes they come from."""
    from mcutool.frontends import load_model
    from mcutool.quantize import ptq
    graph = load_model(path)
    ranges = ptq.calibrate(graph, {graph.inputs[0]: calib})
    g8 = integer_io(ptq.quantize_graph(graph, ranges))
    for op in g8.ops:  # the tests name layers by their ONNX nodes ('conv1'); the importer names them 'conv2d_1'
        op.name = graph.sources.get(op.name, op.name)
    return g8


def integer_io(graph):
    """Drop a quantized graph's QUANTIZE-input / DEQUANTIZE-output border: the int8 tensors become its I/O."""
    inputs, outputs = [], []
    keep = []
    for op in graph.ops:
        if op.kind == "quantize" and op.inputs[0] in graph.inputs:
            inputs.append(op.outputs[0])
        elif op.kind == "dequantize" and op.outputs[0] in graph.outputs:
            outputs.append(op.inputs[0])
        else:
            keep.append(op)
    for name in graph.inputs + graph.outputs:
        del graph.tensors[name]
    graph.ops, graph.inputs, graph.outputs = keep, inputs, outputs
    graph.validate()
    return graph


def to_qdq_onnx(float_model: onnx.ModelProto, g8) -> onnx.ModelProto:
    """The int8 graph `g8` (float_to_int8_graph of `float_model`) written back as a QDQ ONNX model with int8 I/O:
    every Conv/Sign/MaxPool/Gemm between DequantizeLinear and QuantizeLinear with g8's scales, zero points and
    int8/int32 weights (BatchNorm folded). mcutool imports it as the same int8 graph, so the CLI can compile it
    with --binarize auto|off (`mcutool bench bnn_int8.onnx --board stm32f746 --binarize off`)."""
    ops = {op.name: op for op in g8.ops}
    nodes, inits, names = [], [], {"input": "input"}

    def const(name, value):
        inits.append(numpy_helper.from_array(np.asarray(value), name))
        return name

    def quant_of(ir_name):
        q = g8.tensor(ir_name).quant
        return float(q.scale[0]), int(q.zero_point[0])

    def dq(onnx_name, ir_name):
        s, z = quant_of(ir_name)
        out = onnx_name + "_dq"
        nodes.append(helper.make_node("DequantizeLinear", [onnx_name, const(out + "_s", np.float32(s)),
                                                           const(out + "_z", np.int8(z))], [out]))
        return out

    def q(onnx_float, onnx_name, ir_name):
        s, z = quant_of(ir_name)
        nodes.append(helper.make_node("QuantizeLinear", [onnx_float, const(onnx_name + "_s", np.float32(s)),
                                                         const(onnx_name + "_z", np.int8(z))], [onnx_name]))

    def weights(prefix, op, wq, axis):
        w, b = g8.tensor(op.inputs[1]), g8.tensor(op.inputs[2])
        ws = w.quant.scale.astype(np.float32)
        w_dq = prefix + "_w_dq"
        nodes.append(helper.make_node("DequantizeLinear", [const(prefix + "_w", wq), const(prefix + "_ws", ws if
                                      ws.size > 1 else ws[0]), const(prefix + "_wz", np.zeros(ws.shape, np.int8) if
                                      ws.size > 1 else np.int8(0))], [w_dq], **({"axis": axis} if ws.size > 1 else {})))
        bs = (b.quant.scale.astype(np.float32))
        b_dq = prefix + "_b_dq"
        nodes.append(helper.make_node("DequantizeLinear", [const(prefix + "_b", b.data.astype(np.int32)),
                                                           const(prefix + "_bs", bs if bs.size > 1 else bs[0]),
                                      const(prefix + "_bz", np.zeros(bs.shape, np.int32) if bs.size > 1 else
                                            np.int32(0))], [b_dq], **({"axis": 0} if bs.size > 1 else {})))
        return w_dq, b_dq

    last = None
    for node in float_model.graph.node:
        if node.op_type == "BatchNormalization":
            names[node.output[0]] = names[node.input[0]]
            continue
        op = ops[node.name]
        x = names[node.input[0]]
        out = node.name + "_q"
        if node.op_type == "Flatten":
            nodes.append(helper.make_node("Flatten", [x], [out], name=node.name, axis=1))
        else:
            xf = dq(x, op.inputs[0])
            extra = []
            attrs = {a.name: helper.get_attribute_value(a) for a in node.attribute}
            w = g8.tensor(op.inputs[1]) if len(op.inputs) > 1 else None
            if node.op_type == "Conv":  # IR weights (out, kh, kw, in) -> ONNX's (out, in, kh, kw)
                extra = list(weights(node.name, op, np.ascontiguousarray(w.data.transpose(0, 3, 1, 2)), 0))
            elif node.op_type == "Gemm":  # IR columns are NHWC-flat (h, w, c); ONNX's Flatten gives (c, h, w)
                flatten = g8.producers()[op.inputs[0]]
                _, hh, ww, c = g8.tensor(flatten.inputs[0]).shape
                cols = np.arange(w.shape[1]).reshape(hh, ww, c).transpose(2, 0, 1).reshape(-1)
                extra = list(weights(node.name, op, np.ascontiguousarray(w.data[:, cols]), 0))
            nodes.append(helper.make_node(node.op_type, [xf, *extra], [node.name + "_f"], name=node.name, **attrs))
            q(node.name + "_f", out, op.outputs[0])
        names[node.output[0]] = out
        last = out
    graph = helper.make_graph(nodes, "bnn_int8", [helper.make_tensor_value_info("input", TensorProto.INT8,
                                                                                 [1, 1, 32, 32])],
                              [helper.make_tensor_value_info(last, TensorProto.INT8, [1, CLASSES])], inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    return model


MLP_HIDDEN = (128, 64)  # binary fully connected layers after the first conv


def build_bnn_mlp(seed: int = 0) -> onnx.ModelProto:
    """A binary network with fully connected binary layers: x (1x1x16x16) -> Conv 3x3 1->32 + BN + Sign ->
    MaxPool 2 -> Flatten (2048) -> Gemm +-alpha 2048->128 + BN + Sign -> Gemm +-alpha 128->64 + BN (the last
    binary layer, int8 output) -> Gemm 64->10 (float). Same input grid and first-layer care as build_bnn."""
    rng = np.random.default_rng(seed)
    samples = random_inputs(16, seed + 1000)[:, :, :16, :16]
    inits, nodes = [], []

    def add(name, value):
        inits.append(numpy_helper.from_array(np.asarray(value, np.float32), name))
        return name

    def bn(i, x, pre, first=False):
        mean, std = np.median(pre, axis=tuple(a for a in range(pre.ndim) if a != 1)), pre.std(
            axis=tuple(a for a in range(pre.ndim) if a != 1)) + 1e-3
        gamma = rng.uniform(0.5, 1.5, size=mean.size) * rng.choice([-1.0, 1.0], size=mean.size, p=[0.25, 0.75])
        beta = rng.normal(0, 0.05, size=mean.size)
        if first:
            step = 1.0 / (128 * 128)
            mean, beta = (np.round(mean / step) - 0.25 * np.sign(gamma)) * step, np.zeros(mean.size)
        names = [add(f"bn{i}_{k}", v) for k, v in (("g", gamma), ("b", beta), ("m", mean), ("v", std ** 2))]
        nodes.append(helper.make_node("BatchNormalization", [x, *names], [f"n{i}"], name=f"bn{i}", epsilon=1e-5))
        return f"n{i}"

    def partial(output):
        graph = helper.make_graph(list(nodes), "bnn_mlp", [helper.make_tensor_value_info(
            "input", TensorProto.FLOAT, [1, 1, 16, 16])], [helper.make_tensor_value_info(output, TensorProto.FLOAT,
                                                                                          None)], list(inits))
        model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
        model.ir_version = 8
        return model

    k = np.clip(np.round(rng.normal(0, 50, size=(32, 1, 3, 3))), -126, 126)
    k.reshape(32, -1)[:, 0] = 127 * rng.choice([-1, 1], size=32)
    nodes.append(helper.make_node("Conv", ["input", add("w0", k / 128), add("b0", np.zeros(32))], ["c0"],
                                  name="conv0", kernel_shape=[3, 3], pads=[1, 1, 1, 1]))
    x = bn(0, "c0", _run(partial("c0"), samples, "c0"), first=True)
    nodes.append(helper.make_node("Sign", [x], ["s0"], name="sign0"))
    nodes.append(helper.make_node("MaxPool", ["s0"], ["p0"], name="pool0", kernel_shape=[2, 2], strides=[2, 2]))
    nodes.append(helper.make_node("Flatten", ["p0"], ["flat"], name="flatten", axis=1))
    x, width = "flat", 32 * 8 * 8
    for i, out in enumerate(MLP_HIDDEN, start=1):
        alpha = rng.uniform(0.5, 1.5, size=(out, 1))
        w = alpha * rng.choice([-1.0, 1.0], size=(out, width))
        nodes.append(helper.make_node("Gemm", [x, add(f"w{i}", w), add(f"b{i}", rng.normal(0, 0.1, out))], [f"g{i}"],
                                      name=f"fc{i}", transB=1))
        x = bn(i, f"g{i}", _run(partial(f"g{i}"), samples, f"g{i}"))
        if i < len(MLP_HIDDEN):
            nodes.append(helper.make_node("Sign", [x], [f"s{i}"], name=f"sign{i}"))
            x = f"s{i}"
        width = out
    feat = _run(partial(x), samples, x)
    w = rng.normal(0, 1, size=(CLASSES, width)) / np.sqrt(width)
    nodes.append(helper.make_node("Gemm", [x, add("w_out", w), add("b_out", -(feat @ w.T).mean(axis=0))], ["logits"],
                                  name="fc_out", transB=1))
    graph = helper.make_graph(nodes, "bnn_mlp", [helper.make_tensor_value_info("input", TensorProto.FLOAT,
                                                                               [1, 1, 16, 16])],
                              [helper.make_tensor_value_info("logits", TensorProto.FLOAT, [1, CLASSES])], inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    return model


def random_inputs_16(n: int, seed: int) -> np.ndarray:
    """random_inputs cropped to 16x16 (both grid extremes kept in the first image)."""
    return np.ascontiguousarray(random_inputs(n, seed)[:, :, :16, :16])
