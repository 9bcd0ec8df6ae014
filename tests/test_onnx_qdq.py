"""QDQ ONNX models as onnxruntime's quantize_static writes them (issue 14): float input and output with
QuantizeLinear/DequantizeLinear at the border, int8 (or uint8) inside, and float islands the quantizer leaves
between DequantizeLinear and QuantizeLinear (HardSwish, ReduceMean -> Reshape, HardSigmoid, Div -> Erf).

Oracles: onnxruntime on the same file (it runs the islands in float and quantizes; DESIGN.md §6: its integer
kernels requantize in float, so layers may differ from TFLite's arithmetic by 1 LSB), and for the firmware
mcutool's reference, bit for bit.
"""
import subprocess
import sys
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from onnx import TensorProto, helper, numpy_helper

from conftest import require_board_tools
from mcutool import reference
from mcutool.compiler import Options, compile_model, firmware_graph, run_build
from mcutool.errors import UserError
from mcutool.frontends.onnx import load_onnx
from mcutool.quantize.ptq import has_integer_core

sys.path.insert(0, str(Path(__file__).parent))
import qdq_nets  # noqa: E402


def _mcutool(*args):
    return subprocess.run([sys.executable, "-m", "mcutool", *map(str, args)], capture_output=True, text=True)


def _session(path, optimize: bool):
    options = ort.SessionOptions()
    options.log_severity_level = 3
    if not optimize:  # DequantizeLinear, float op, QuantizeLinear: what the QDQ format defines
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


# ---------------------------------------------------------------------------------------------------------------
# one island, every input value

F = helper.make_node
ISLANDS = {  # name: (float nodes from x to y, opset)
    "Sigmoid": ([F("Sigmoid", ["x"], ["y"])], 13),
    "Tanh": ([F("Tanh", ["x"], ["y"])], 13),
    "HardSigmoid": ([F("HardSigmoid", ["x"], ["y"], alpha=1 / 6, beta=0.5)], 13),
    "HardSwish": ([F("HardSwish", ["x"], ["y"])], 14),
    "Erf-GELU": ([F("Div", ["x", "sqrt2"], ["a"]), F("Erf", ["a"], ["b"]), F("Add", ["b", "one"], ["c"]),
                  F("Mul", ["x", "c"], ["d"]), F("Mul", ["d", "half"], ["y"])], 13),
    "Gelu": ([F("Gelu", ["x"], ["y"])], 20),
    "Div by a constant": ([F("Div", ["x", "three"], ["y"])], 13),
    "swish": ([F("Sigmoid", ["x"], ["a"]), F("Mul", ["x", "a"], ["y"])], 13),
}


def _island(nodes, opset, dtype, s_in, z_in, s_out, z_out) -> onnx.ModelProto:
    a = numpy_helper.from_array
    elem = TensorProto.INT8 if dtype == np.int8 else TensorProto.UINT8
    inits = [a(np.float32(s_in), "si"), a(dtype(z_in), "zi"), a(np.float32(s_out), "so"), a(dtype(z_out), "zo")]
    consts = {"sqrt2": np.sqrt(2.0), "one": 1.0, "half": 0.5, "three": 3.0}
    used = {i for n in nodes for i in n.input}
    inits += [a(np.float32(v), k) for k, v in consts.items() if k in used]
    nodes = [F("DequantizeLinear", ["xq", "si", "zi"], ["x"]), *nodes, F("QuantizeLinear", ["y", "so", "zo"], ["yq"])]
    graph = helper.make_graph(nodes, "island", [helper.make_tensor_value_info("xq", elem, [1, 256])],
                              [helper.make_tensor_value_info("yq", elem, [1, 256])], inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])
    model.ir_version = 10
    return model


@pytest.mark.parametrize("dtype", [np.int8, np.uint8])
@pytest.mark.parametrize("name", list(ISLANDS))
def test_island_is_one_lookup_table_equal_to_onnxruntime(tmp_path, name, dtype):
    """DQ -> float ops -> Q becomes one `lut` op whose 256 entries equal onnxruntime's output for every input
    value (measured: 0 of 256 differ for each island, with and without onnxruntime's graph optimizations, which
    fuse some of them into its own QLinear kernels), for three (scale, zero point) pairs each. Sigmoid and Tanh
    are thus rounded once, to the model's output scale (not to TFLite's 1/256 and then again)."""
    nodes, opset = ISLANDS[name]
    offset = 0 if dtype == np.int8 else 128
    for s_in, z_in, s_out, z_out in [(0.05, 3, 0.02, -20), (0.031, -10, 1 / 256, -128), (0.11, 0, 0.043, 5)]:
        path = tmp_path / "island.onnx"
        onnx.save(_island(nodes, opset, dtype, s_in, z_in + offset, s_out, z_out + offset), path)
        graph = load_onnx(path)
        assert [op.kind for op in graph.ops if op.kind != "quantize"] == ["lut"]  # quantize: uint8 <-> int8 I/O
        codes = (np.arange(-128, 128) if dtype == np.int8 else np.arange(256)).astype(dtype)[None]
        got = reference.run(graph, {"xq": codes})["yq"]
        assert got.dtype == dtype and len(np.unique(got)) > 20  # the table is not flat
        for optimize in (False, True):
            want = _session(path, optimize).run(None, {"xq": codes})[0]
            assert np.array_equal(got, want), f"{name}: {int((got != want).sum())} of 256 differ"


@pytest.mark.parametrize("name", ["Erf-GELU", "Gelu", "Tanh"])
def test_float_model_function_becomes_one_table_when_quantized(tmp_path, name):
    """In a float model the same ops are one `float_function` (its float values onnx's own, equal to onnxruntime's);
    calibration makes it one `lut` between the calibrated scales, each entry f(dequantized input) rounded to the
    output's scale as TFLite builds its tables."""
    from mcutool.ops.float_function import table
    from mcutool.quantize.ptq import quantize_model
    nodes, opset = ISLANDS[name]
    model = _island(nodes, opset, np.int8, 0.05, 0, 0.05, 0)
    keep = [n for n in model.graph.node if n.op_type not in ("QuantizeLinear", "DequantizeLinear")]
    g = helper.make_graph(keep, "float", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 256])],
                          [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 256])],
                          [i for i in model.graph.initializer if i.name in ("sqrt2", "one", "half", "three")])
    float_model = helper.make_model(g, opset_imports=[helper.make_opsetid("", opset)])
    float_model.ir_version = 10
    onnx.save(float_model, tmp_path / "f.onnx")
    graph = load_onnx(tmp_path / "f.onnx")
    assert [op.kind for op in graph.ops] == ["float_function"]
    x = np.linspace(-4, 4, 256, dtype=np.float32)[None]
    want = _session(tmp_path / "f.onnx", optimize=True).run(None, {"x": x})[0]
    np.testing.assert_allclose(reference.run(graph, {"x": x})["y"], want, atol=1e-6)
    qgraph, _ = quantize_model(graph, {"x": x})
    lut = next(op for op in qgraph.ops if op.kind not in ("quantize", "dequantize"))
    assert lut.kind == "lut"
    qin, qout = qgraph.tensor(lut.inputs[0]).quant, qgraph.tensor(lut.outputs[0]).quant
    assert lut.attrs.table == table(graph.ops[0].attrs, qin, qout)
    codes = np.arange(-128, 128)
    real = (codes - int(qin.zero_point[0])) * np.float32(qin.scale[0])
    want = _session(tmp_path / "f.onnx", optimize=True).run(None, {"x": real.astype(np.float32)[None]})[0][0]
    got = (np.array(lut.attrs.table) - int(qout.zero_point[0])) * np.float32(qout.scale[0])
    assert np.abs(got - want).max() <= 0.5 * np.float32(qout.scale[0]) * 1.001  # rounded once, to the scale


# ---------------------------------------------------------------------------------------------------------------
# data movement across (de)quantization


def test_dequantize_and_quantize_move_across_data_movement(tmp_path):
    """DQ -> ReduceMean -> Reshape -> Q (onnxruntime leaves ReduceMean and the Reshape after it in float) and
    DQ -> Transpose -> Flatten -> Q: the Reshape/Transpose/Flatten run on int8 (no value changes), the ReduceMean
    becomes an int8 mean with the Q's scale: no float op, no dequantize inside. Within 1 LSB of onnxruntime
    (its mean is float, then rounded; TFLite's is integer)."""
    a = numpy_helper.from_array
    inits = [a(np.float32(0.05), "s"), a(np.int8(-3), "z"), a(np.float32(0.021), "s2"), a(np.int8(4), "z2"),
             a(np.array([2, 3], np.int64), "axes"), a(np.array([1, 6], np.int64), "shape")]
    nodes = [F("QuantizeLinear", ["x", "s", "z"], ["xq"]), F("DequantizeLinear", ["xq", "s", "z"], ["xf"]),
             F("ReduceMean", ["xf", "axes"], ["m"], keepdims=0), F("Reshape", ["m", "shape"], ["mr"]),
             F("QuantizeLinear", ["mr", "s2", "z2"], ["mq"]), F("DequantizeLinear", ["mq", "s2", "z2"], ["y1"]),
             F("Transpose", ["xf"], ["t"], perm=[0, 2, 3, 1]), F("Flatten", ["t"], ["tf"]),
             F("QuantizeLinear", ["tf", "s", "z"], ["tq"]), F("DequantizeLinear", ["tq", "s", "z"], ["y2"])]
    graph = helper.make_graph(nodes, "moves", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 6, 5, 4])],
                              [helper.make_tensor_value_info("y1", TensorProto.FLOAT, [1, 6]),
                               helper.make_tensor_value_info("y2", TensorProto.FLOAT, [1, 120])], inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)])
    model.ir_version = 10
    path = tmp_path / "moves.onnx"
    onnx.save(model, path)
    g = load_onnx(path)
    inner = [op for op in g.ops if not (op.inputs[0] in g.inputs or op.outputs[0] in g.outputs)]
    assert "mean" in [op.kind for op in inner] and "dequantize" not in [op.kind for op in inner]
    assert all(g.tensor(n).dtype == "int8" for op in inner for n in op.inputs[:1] + op.outputs)
    assert has_integer_core(g)
    sess = _session(path, optimize=False)
    rng = np.random.default_rng(3)
    for _ in range(8):
        x = (rng.standard_normal((1, 6, 5, 4)) * 2 + rng.standard_normal((1, 6, 1, 1))).astype(np.float32)
        want = dict(zip(["y1", "y2"], sess.run(None, {"x": x})))
        got = reference.run(g, {"x": x})
        assert np.abs(np.rint((got["y1"] - want["y1"]) / np.float32(0.021))).max() <= 1
        assert np.array_equal(got["y2"], want["y2"])  # data movement only: exact


# ---------------------------------------------------------------------------------------------------------------
# quantize_static models, whole


@pytest.fixture(scope="module")
def qdq_models(tmp_path_factory):
    """The MobileNetV3-like float net and its four quantize_static copies (per channel / per tensor weights,
    int8 / uint8 activations), calibrated on images apart from the test images."""
    d = tmp_path_factory.mktemp("qdq")
    float_path = d / "mobile.onnx"
    onnx.save(qdq_nets.mobile_net(), float_path)
    calib = qdq_nets.images(32, seed=0)
    models = {}
    for per_channel in (True, False):
        for act in ("int8", "uint8"):
            key = f"{'per_channel' if per_channel else 'per_tensor'}_{act}"
            models[key] = qdq_nets.quantize(float_path, d / f"{key}.onnx", calib, per_channel, act)
    return models


def _output_codes(path) -> tuple[float, int]:
    """The model's output scale and zero point: the DequantizeLinear writing the graph output."""
    model = onnx.load(path)
    inits = {t.name: numpy_helper.to_array(t) for t in model.graph.initializer}
    dq = next(n for n in model.graph.node if n.output[0] == model.graph.output[0].name)
    return float(inits[dq.input[1]]), int(inits[dq.input[2]])


def _lsb(a: np.ndarray, b: np.ndarray, scale: float) -> np.ndarray:
    """Two dequantized outputs of the same scale, apart in LSBs."""
    return np.abs(np.rint((a.astype(np.float64) - b.astype(np.float64)) / scale)).astype(int)


def _against_onnxruntime(path, graph, inputs) -> tuple[int, float, int, int]:
    """The QDQ model's output from the reference vs onnxruntime's (running it as QDQ defines it), over `inputs`:
    (max LSB, mean LSB, inputs with the same top-1, distinct top-1 classes of onnxruntime's)."""
    scale, _ = _output_codes(path)
    sess = _session(path, optimize=False)
    diffs, agree, classes = [], 0, set()
    for x in inputs:
        want = sess.run(None, {"x": x[None]})[0]
        got = reference.run(graph, {"x": x[None]})["y"]
        diffs.append(_lsb(got, want, scale))
        agree += int(np.argmax(got) == np.argmax(want))
        classes.add(int(np.argmax(want)))
    return int(np.max(diffs)), float(np.mean(diffs)), agree, len(classes)


def _layers_within_one_lsb(path, tmp_path, inputs) -> int:
    """Every int8 layer, given onnxruntime's int8 inputs, within 1 LSB of onnxruntime's int8 output (DESIGN.md
    §6); the number of layers checked."""
    from test_onnx_import import _layerwise
    every = _every_activation_an_output(path, tmp_path / "all.onnx")
    g_all, sess_all = load_onnx(every), _session(every, optimize=False)
    names = [o.name for o in sess_all.get_outputs()]
    layers = []
    for x in inputs:
        theirs = dict(zip(names, sess_all.run(None, {"x": x[None]})))
        layers.append(_layerwise(g_all, theirs, reference.run(g_all, {"x": x[None]}, keep=True)))
    return min(layers)


KEYS = ["per_channel_int8", "per_channel_uint8", "per_tensor_int8", "per_tensor_uint8"]


def _every_activation_an_output(path, out):
    """The model with each QuantizeLinear output also a graph output, so that layers can be checked one by one."""
    model = onnx.shape_inference.infer_shapes(onnx.load(path))
    infos = {vi.name: vi for vi in model.graph.value_info}
    for node in model.graph.node:
        info = infos.get(node.output[0])
        if node.op_type == "QuantizeLinear" and info is not None and info.type.tensor_type.HasField("shape"):
            model.graph.output.append(info)
    onnx.save(model, out)
    return out


@pytest.mark.parametrize("key", KEYS)
def test_quantize_static_model_is_integer_and_agrees_with_onnxruntime(qdq_models, key, tmp_path):
    """Every op between the border's QuantizeLinear and DequantizeLinear is an integer op (the islands: HardSwish,
    HardSigmoid, Div -> Erf, Sigmoid, Mul by 0.5 as tables; ReduceMean -> Reshape as an int8 mean and reshape),
    and the model needs no --calib. Each layer, given onnxruntime's int8 input, is within 1 LSB of onnxruntime's
    int8 output (DESIGN.md §6). End to end: the model's convs, fully connected layers, Muls and means round once
    as onnxruntime does (attrs.rounding "single"), and the output equalled onnxruntime's on all 16 test images in
    all four forms (with TFLite's two roundings it was up to 4 LSB off, 0.56 LSB on average)."""
    path = qdq_models[key]
    graph = load_onnx(path)
    assert has_integer_core(graph)
    kinds = [op.kind for op in graph.ops]
    assert kinds.count("lut") >= 5 and kinds.count("mean") == 2 and "logistic" not in kinds
    for op in graph.ops:
        if op.kind in ("quantize", "dequantize") and (op.inputs[0] in graph.inputs or op.outputs[0] in graph.outputs):
            continue
        assert all(graph.tensor(n).dtype in ("int8", "int32") for n in op.inputs + op.outputs if n), op
    fw, quantization = firmware_graph(path, Options())
    assert quantization is None and fw.tensor("x").dtype == fw.tensor("y").dtype == "int8"
    worst, mean, agree, classes = _against_onnxruntime(path, graph, qdq_nets.images(16, seed=1))
    assert worst <= 1 and mean <= 0.02 and agree == 16 and classes >= 5, (worst, mean, agree, classes)
    assert _layers_within_one_lsb(path, tmp_path, qdq_nets.images(4, seed=1)) >= 15


def test_tables_in_a_row_and_swish_become_one_table(qdq_models):
    """schedule/fuse.py on the imported QDQ model: swish (table of Sigmoid, then Mul by x) and the GELU (Div+Erf
    table, Add-1 table, Mul by x, Mul-by-0.5 table) each end as one table; outputs unchanged bit for bit."""
    from mcutool.schedule.fuse import fuse_swish
    graph = load_onnx(qdq_models["per_channel_int8"])
    fused = fuse_swish(graph)
    kinds = [op.kind for op in graph.ops]
    assert kinds.count("lut") == 6 and kinds.count("mul") == 3
    kinds = [op.kind for op in fused.ops]
    assert kinds.count("lut") == 4 and kinds.count("mul") == 1  # HardSwish, HardSigmoid, swish, GELU; SE's Mul
    for x in qdq_nets.images(4, seed=1):
        assert np.array_equal(reference.run(graph, {"x": x[None]})["y"], reference.run(fused, {"x": x[None]})["y"])


def test_compile_needs_no_calib_and_ignores_it_with_a_note(qdq_models, tmp_path):
    path = qdq_models["per_channel_int8"]
    done = _mcutool("compile", path, "--board", "stm32f746", "--no-build", "-o", tmp_path / "a")
    assert done.returncode == 0, done.stderr
    np.savez(tmp_path / "cal.npz", x=qdq_nets.images(2, seed=5))
    done = _mcutool("compile", path, "--board", "stm32f746", "--no-build", "-o", tmp_path / "b",
                    "--calib", tmp_path / "cal.npz")
    assert done.returncode == 0, done.stderr
    assert "--calib ignored" in done.stderr and "already int8" in done.stderr


def test_float_op_left_between_int8_tensors_is_refused_by_name(tmp_path):
    """Q -> DQ -> Softmax -> float output: no QuantizeLinear gives the Softmax an output scale. Without --calib
    and with it (which crashed with KeyError before), one message naming the op."""
    a = numpy_helper.from_array
    nodes = [F("QuantizeLinear", ["x", "s", "z"], ["xq"]), F("DequantizeLinear", ["xq", "s", "z"], ["xf"]),
             F("Softmax", ["xf"], ["y"], name="the_softmax")]
    graph = helper.make_graph(nodes, "float_tail", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 10])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 10])],
                              [a(np.float32(0.05), "s"), a(np.int8(0), "z")])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 10
    onnx.save(model, tmp_path / "tail.onnx")
    for extra in ([], ["--calib", "random"]):
        done = _mcutool("compile", tmp_path / "tail.onnx", "--board", "stm32f746", "--no-build",
                        "-o", tmp_path / "p", *extra)
        assert done.returncode == 1 and "Traceback" not in done.stderr and "internal error" not in done.stderr
        assert "'the_softmax' (softmax)" in done.stderr and "compute in float" in done.stderr


def _bit_exact_in_qemu(path, opts: Options, inputs: np.ndarray, out) -> None:
    """Compile `path` for stm32f746 and run it in QEMU on each float input quantized with the model's input scale:
    the firmware's int8 output equals the reference's on the firmware graph, bit for bit, and is not constant."""
    require_board_tools("stm32f746")
    compile_model(path, "stm32f746", out, opts)
    fw, _ = firmware_graph(path, opts)
    q = fw.tensor("x").quant
    outputs = []
    for x in inputs:
        xq = reference.quantize_float(x[None], scale=q.scale[0], zero_point=int(q.zero_point[0]),
                                      out_dtype="int8").astype(np.int8)
        (y,), _ = run_build(out, [xq])
        want = reference.run(fw, {"x": xq})["y"]
        assert y.dtype == want.dtype == np.int8 and np.array_equal(y, want)
        outputs.append(y)
    assert len({int(np.argmax(y)) for y in outputs}) >= 2


@pytest.mark.qemu
@pytest.mark.parametrize("key", ["per_channel_int8", "per_tensor_uint8"])
def test_quantize_static_model_bit_exact_in_qemu(qdq_models, key, tmp_path):
    """Compiled for stm32f746 without --calib and run in QEMU on int8 inputs: the firmware's output equals the
    reference's bit for bit (and so stays within the LSBs of onnxruntime measured above)."""
    _bit_exact_in_qemu(qdq_models[key], Options(), qdq_nets.images(3, seed=1), tmp_path / "p")


# ---------------------------------------------------------------------------------------------------------------
# ShuffleNetV2's ops: Split, channel shuffle, Slice, HardSwish, Gather; float (--calib) and QDQ


def _float_and_quantized(d, model, calib) -> dict:
    """The float model, its calibration samples as an .npz (for --calib), and quantize_static's per channel int8
    and per tensor uint8 copies, calibrated on the same samples."""
    float_path = d / "float.onnx"
    onnx.save(model, float_path)
    np.savez(d / "calib.npz", x=calib)
    return {"float": float_path, "calib": d / "calib.npz",
            "per_channel_int8": qdq_nets.quantize(float_path, d / "pc.onnx", calib, True, "int8"),
            "per_tensor_uint8": qdq_nets.quantize(float_path, d / "pt.onnx", calib, False, "uint8")}


@pytest.fixture(scope="module")
def shuffle_models(tmp_path_factory):
    return _float_and_quantized(tmp_path_factory.mktemp("shuffle"), qdq_nets.shuffle_net(), qdq_nets.images(32, 0))


def test_shuffle_float_model_imports_onto_nhwc_ops(shuffle_models):
    """Split, the channel shuffle (Reshape to 5-D, Transpose, Reshape: found to permute channels only, so one
    Gather of the channels), Slice, HardSwish and Gather map onto IR ops in NHWC, with no transpose inside, and
    the float import equals onnxruntime's float outputs (to float rounding)."""
    graph = load_onnx(shuffle_models["float"])
    kinds = [op.kind for op in graph.ops]
    assert kinds == ["transpose", "conv2d", "max_pool2d", "split", "conv2d", "depthwise_conv2d", "conv2d", "concat",
                     "gather", "strided_slice", "hard_swish", "gather", "mean", "reshape", "fully_connected"]
    assert all(len(graph.tensor(n).shape) <= 4 for n in graph.tensors)
    sess = _session(shuffle_models["float"], optimize=True)
    classes = set()
    for x in qdq_nets.images(16, seed=1):
        want = sess.run(None, {"x": x[None]})[0]
        np.testing.assert_allclose(reference.run(graph, {"x": x[None]})["y"], want, atol=1e-4, rtol=1e-4)
        classes.add(int(np.argmax(want)))
    assert len(classes) >= 5


@pytest.mark.parametrize("key", ["per_channel_int8", "per_tensor_uint8"])
def test_shuffle_qdq_model_is_integer_and_agrees_with_onnxruntime(shuffle_models, key, tmp_path):
    """The QDQ copies: DequantizeLinear -> QuantizeLinear pairs of the same scale between the shuffle's ops are
    dropped, so the shuffle is the same one Gather on int8; each layer within 1 LSB of onnxruntime, and the output
    within 1 LSB end to end on 16 test images (measured: 0 LSB in both forms since the convs and the fully connected
    layer round once as onnxruntime does; 1 / mean 0.21 LSB per channel, 0.08 per tensor, before), same top-1."""
    path = shuffle_models[key]
    graph = load_onnx(path)
    assert has_integer_core(graph)
    inner = [op.kind for op in graph.ops][2:-1]  # past the input's quantize + transpose, before the dequantize
    assert inner == ["conv2d", "max_pool2d", "split", "conv2d", "depthwise_conv2d", "conv2d", "concat", "gather",
                     "strided_slice", "lut", "gather", "mean", "reshape", "fully_connected"]
    worst, mean, agree, _ = _against_onnxruntime(path, graph, qdq_nets.images(16, seed=1))
    assert worst <= 1 and agree >= 15, (worst, agree)
    assert _layers_within_one_lsb(path, tmp_path, qdq_nets.images(4, seed=1)) >= 10


@pytest.mark.qemu
@pytest.mark.parametrize("key", ["float", "per_channel_int8"])
def test_shuffle_model_bit_exact_in_qemu(shuffle_models, key, tmp_path):
    """The float model compiled with --calib, and its QDQ copy as written, run in QEMU on stm32f746 bit-exact
    with the reference."""
    opts = Options(calib=str(shuffle_models["calib"])) if key == "float" else Options()
    _bit_exact_in_qemu(shuffle_models[key], opts, qdq_nets.images(3, seed=1), tmp_path / "p")


# ---------------------------------------------------------------------------------------------------------------
# Resize


RESIZES = [  # (attributes, output H, W) of a Resize of a 1x4x5x6 input, opset 13, sizes as an input
    (dict(mode="nearest", coordinate_transformation_mode="asymmetric", nearest_mode="floor"), (10, 12)),  # PyTorch
    (dict(mode="nearest"), (10, 12)),  # opset-11+ defaults: half_pixel, round_prefer_floor (integer factors)
    (dict(mode="nearest", coordinate_transformation_mode="half_pixel", nearest_mode="round_prefer_ceil"), (7, 9)),
    (dict(mode="linear", coordinate_transformation_mode="half_pixel"), (10, 12)),
    (dict(mode="linear", coordinate_transformation_mode="pytorch_half_pixel"), (7, 9)),
    (dict(mode="linear", coordinate_transformation_mode="align_corners"), (7, 9)),
    (dict(mode="linear", coordinate_transformation_mode="asymmetric"), (8, 12)),
]


def _resize_model(attrs, hw, quantized: bool) -> onnx.ModelProto:
    a = numpy_helper.from_array
    inits = [a(np.array([1, 4, *hw], np.int64), "sizes"), a(np.float32(0.04), "s"), a(np.int8(-5), "z")]
    x, y = ("xf", "yf") if quantized else ("x", "y")
    nodes = [F("Resize", [x, "", "", "sizes"], [y], name="resize", **attrs)]
    if quantized:  # DQ -> Resize -> Q with the input's scale, as onnxruntime writes it
        nodes = [F("QuantizeLinear", ["x", "s", "z"], ["xq"]), F("DequantizeLinear", ["xq", "s", "z"], ["xf"]),
                 *nodes, F("QuantizeLinear", ["yf", "s", "z"], ["yq"]), F("DequantizeLinear", ["yq", "s", "z"], ["y"])]
    graph = helper.make_graph(nodes, "resize", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 4, 5, 6])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 4, *hw])], inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 10
    return model


@pytest.mark.parametrize("attrs,hw", RESIZES)
def test_resize_modes_match_onnxruntime(tmp_path, attrs, hw):
    """Float: nearest exactly, linear to float rounding. QDQ (DQ -> Resize -> Q): an int8 resize with the
    model's scale; nearest moves values (exact), TFLite's integer bilinear is within 1 LSB of onnxruntime's
    float-then-round."""
    rng = np.random.default_rng(0)
    for quantized in (False, True):
        path = tmp_path / f"resize_{quantized}.onnx"
        onnx.save(_resize_model(attrs, hw, quantized), path)
        graph = load_onnx(path)
        kind = "resize_nearest_neighbor" if attrs["mode"] == "nearest" else "resize_bilinear"
        assert kind in [op.kind for op in graph.ops]
        if quantized:
            assert has_integer_core(graph)
        sess = _session(path, optimize=False)
        for _ in range(4):
            x = (rng.standard_normal((1, 4, 5, 6)) * 2).astype(np.float32)
            want, got = sess.run(None, {"x": x})[0], reference.run(graph, {"x": x})["y"]
            if not quantized:
                np.testing.assert_allclose(got, want, atol=1e-5, rtol=1e-5)
            elif attrs["mode"] == "nearest":
                assert np.array_equal(got, want)
            else:
                assert _lsb(got, want, 0.04).max() <= 1


def test_resize_mode_tflite_has_not_is_refused(tmp_path):
    path = tmp_path / "cubic.onnx"
    onnx.save(_resize_model(dict(mode="cubic"), (10, 12), False), path)
    with pytest.raises(UserError) as info:
        load_onnx(path)
    assert "cubic" in str(info.value) and "'resize'" in str(info.value)


# ---------------------------------------------------------------------------------------------------------------
# attention: MatMul between activations


@pytest.fixture(scope="module")
def attention_models(tmp_path_factory):
    return _float_and_quantized(tmp_path_factory.mktemp("attention"), qdq_nets.attention_net(),
                                qdq_nets.tokens(32, 0))


def test_attention_float_model_imports(attention_models):
    """Q K^T and P V (MatMul of two activations) become batch_matmul; Div by sqrt(d) a mul by a constant; the
    float import equals onnxruntime's float outputs."""
    graph = load_onnx(attention_models["float"])
    kinds = [op.kind for op in graph.ops]
    assert kinds.count("batch_matmul") == 2 and kinds.count("fully_connected") == 5 and "softmax" in kinds
    sess = _session(attention_models["float"], optimize=True)
    classes = set()
    for x in qdq_nets.tokens(16, seed=1):
        want = sess.run(None, {"x": x[None]})[0]
        np.testing.assert_allclose(reference.run(graph, {"x": x[None]})["y"], want, atol=1e-4, rtol=1e-4)
        classes.add(int(np.argmax(want)))
    assert len(classes) >= 5


def test_attention_qdq_model_is_integer_and_agrees_with_onnxruntime(attention_models):
    """quantize_static's copy: the MatMuls between activations are int8 batch_matmuls, Div by sqrt(d) a table;
    on 16 test inputs within 2 LSB of onnxruntime (measured: max 1, mean 0.35, top-1 15 of 16 with the batch
    matmuls rounding once; max 2, mean 0.43 before; what is left is int8 Softmax: TFLite's arithmetic to its 1/256
    output scale, then requantized to the model's)."""
    path = attention_models["per_channel_int8"]
    graph = load_onnx(path)
    assert has_integer_core(graph)
    kinds = [op.kind for op in graph.ops]
    assert kinds.count("batch_matmul") == 2 and "lut" in kinds and "dequantize" not in kinds[:-1]
    worst, mean, agree, _ = _against_onnxruntime(path, graph, qdq_nets.tokens(16, seed=1))
    assert worst <= 2 and agree >= 15, (worst, agree)


@pytest.mark.qemu
def test_attention_float_model_with_calib_bit_exact_in_qemu(attention_models, tmp_path):
    _bit_exact_in_qemu(attention_models["float"], Options(calib=str(attention_models["calib"])),
                       qdq_nets.tokens(3, seed=1), tmp_path / "p")


# ---------------------------------------------------------------------------------------------------------------
# MobileNetV3's HardSwish / HardSigmoid in a float model (--calib)


@pytest.mark.parametrize("alpha,beta", [(1 / 6, 0.5), (0.2, 0.5)])  # PyTorch's, ONNX's default
def test_hard_sigmoid_in_a_float_model(tmp_path, alpha, beta):
    """HardSigmoid outside a QDQ island: Mul (unless 6 alpha = 1), Add with relu6, Mul by 1/6, as TFLite writes
    Keras' hard_sigmoid; equal to onnxruntime's float output."""
    nodes = [F("HardSigmoid", ["x"], ["y"], alpha=alpha, beta=beta, name="hsig")]
    graph = helper.make_graph(nodes, "hsig", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 64])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 64])])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 10
    onnx.save(model, tmp_path / "hsig.onnx")
    g = load_onnx(tmp_path / "hsig.onnx")
    assert [op.kind for op in g.ops] == (["add", "mul"] if alpha == 1 / 6 else ["mul", "add", "mul"])
    x = np.linspace(-8, 8, 64, dtype=np.float32)[None]
    want = _session(tmp_path / "hsig.onnx", optimize=True).run(None, {"x": x})[0]
    np.testing.assert_allclose(reference.run(g, {"x": x})["y"], want, atol=1e-6)


@pytest.mark.qemu
def test_mobilenetv3_ops_float_model_with_calib_bit_exact_in_qemu(tmp_path):
    """The MobileNetV3-like float net (HardSwish, HardSigmoid squeeze-excite, swish, the Erf GELU as one
    float_function): equal to onnxruntime in float, compiled with --calib and bit-exact in QEMU."""
    path = tmp_path / "mobile.onnx"
    onnx.save(qdq_nets.mobile_net(), path)
    graph = load_onnx(path)
    kinds = [op.kind for op in graph.ops]
    assert "hard_swish" in kinds and kinds.count("float_function") == 1
    sess = _session(path, optimize=True)
    for x in qdq_nets.images(4, seed=1):
        np.testing.assert_allclose(reference.run(graph, {"x": x[None]})["y"], sess.run(None, {"x": x[None]})[0],
                                   atol=1e-4, rtol=1e-4)
    np.savez(tmp_path / "calib.npz", x=qdq_nets.images(32, seed=0))
    _bit_exact_in_qemu(path, Options(calib=str(tmp_path / "calib.npz")), qdq_nets.images(3, seed=1), tmp_path / "p")


@pytest.mark.parametrize("op", ["GRU"])  # the LSTM imports (tests/test_onnx_lstm.py: its refusals)
def test_recurrent_layers_refused_with_the_reason(tmp_path, op):
    gates = 3 if op == "GRU" else 4
    rng = np.random.default_rng(0)
    inits = [numpy_helper.from_array(rng.standard_normal((1, gates * 4, 3)).astype(np.float32), "w"),
             numpy_helper.from_array(rng.standard_normal((1, gates * 4, 4)).astype(np.float32), "r")]
    nodes = [F(op, ["x", "w", "r"], ["y"], hidden_size=4, name="recurrent")]
    graph = helper.make_graph(nodes, "rnn", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [5, 1, 3])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [5, 1, 1, 4])], inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 10
    onnx.save(model, tmp_path / "rnn.onnx")
    done = _mcutool("compile", tmp_path / "rnn.onnx", "--board", "stm32f746", "--no-build", "-o", tmp_path / "p",
                    "--calib", "random")
    assert done.returncode == 1 and "Traceback" not in done.stderr
    assert f"{op}: 1 node, 'recurrent'" in done.stderr and "integer LSTM" in done.stderr


# ---------------------------------------------------------------------------------------------------------------
# layer norm (float models)


def test_layer_norm_and_its_decomposed_form_import_to_the_same_ir(tmp_path):
    """LayerNormalization (opset 17) and PyTorch's older form (ReduceMean, Sub, Pow 2, ReduceMean, Add, Sqrt,
    Div, Mul, Add) become the same IR ops (mean, sub, mul, mean, add, rsqrt, mul, mul, add: TFLite's form of
    Keras' LayerNormalization), equal to onnxruntime in float."""
    from test_onnx_canonical import signature
    graphs = []
    for decomposed in (False, True):
        path = tmp_path / f"ln{int(decomposed)}.onnx"
        onnx.save(qdq_nets.layer_norm_net(decomposed), path)
        graph = load_onnx(path)
        sess = _session(path, optimize=True)
        for x in qdq_nets.tokens(8, seed=1):
            np.testing.assert_allclose(reference.run(graph, {"x": x[None]})["y"], sess.run(None, {"x": x[None]})[0],
                                       atol=1e-4, rtol=1e-4)
        graphs.append(graph)
    assert [op.kind for op in graphs[0].ops] == ["fully_connected", "mean", "sub", "mul", "mean", "add", "rsqrt",
                                                 "mul", "mul", "add", "mean", "fully_connected"]
    assert signature(graphs[0]) == signature(graphs[1])


@pytest.mark.qemu
def test_layer_norm_float_model_with_calib_bit_exact_in_qemu(tmp_path):
    path = tmp_path / "ln.onnx"
    onnx.save(qdq_nets.layer_norm_net(False), path)
    np.savez(tmp_path / "calib.npz", x=qdq_nets.tokens(32, seed=0))
    _bit_exact_in_qemu(path, Options(calib=str(tmp_path / "calib.npz")), qdq_nets.tokens(3, seed=1), tmp_path / "p")


def test_layer_norm_in_a_qdq_model_is_refused_with_the_reason(tmp_path):
    d = tmp_path
    models = _float_and_quantized(d, qdq_nets.layer_norm_net(False), qdq_nets.tokens(16, seed=0))
    done = _mcutool("compile", models["per_channel_int8"], "--board", "stm32f746", "--no-build", "-o", d / "p")
    assert done.returncode == 1 and "Traceback" not in done.stderr
    assert "(LayerNormalization)" in done.stderr and "--calib" in done.stderr


# ---------------------------------------------------------------------------------------------------------------
# BatchNormalization left beside a layer (no pre-processing before quantize_static; after an Add)


def test_batchnorm_not_folded_becomes_a_depthwise_conv(tmp_path):
    """quantize_static without onnxruntime's pre-processing keeps DQ -> BatchNormalization -> Q after the first
    conv: it becomes an int8 1x1 depthwise conv (weights +-127 per channel at scale |a|/127), within 1 LSB of
    onnxruntime layer by layer; the whole model agrees on top-1."""
    from test_onnx_import import _float_net, _inputs
    rng = np.random.default_rng(0)
    float_path = tmp_path / "float.onnx"
    onnx.save(_float_net(rng), float_path)
    calib = _inputs(rng, 16, (3, 12, 12))[:, 0]
    path = qdq_nets.quantize(float_path, tmp_path / "qdq.onnx", calib, True, "int8")
    assert "BatchNormalization" in [n.op_type for n in onnx.load(path).graph.node]
    graph = load_onnx(path)
    assert has_integer_core(graph)
    bn = next(op for op in graph.ops if graph.sources[op.name] == "bn1")
    assert bn.kind == "depthwise_conv2d" and graph.tensor(bn.inputs[1]).dtype == "int8"
    tests = _inputs(rng, 8, (3, 12, 12))[:, 0]
    assert _layers_within_one_lsb(path, tmp_path, tests[:4]) >= 15
    sess = _session(path, optimize=False)
    agree = sum(int(np.argmax(sess.run(None, {"x": x[None]})[0]) == np.argmax(reference.run(graph, {"x": x[None]})[
        "y"])) for x in tests)
    assert agree >= 7


def test_batchnorm_after_an_add_in_a_float_model(tmp_path):
    rng = np.random.default_rng(1)
    a = numpy_helper.from_array
    inits = [a((1 + 0.3 * rng.standard_normal(4)).astype(np.float32), "g"),
             a(rng.standard_normal(4).astype(np.float32), "b"), a(rng.standard_normal(4).astype(np.float32), "m"),
             a((0.5 + rng.random(4)).astype(np.float32), "v")]
    nodes = [F("Add", ["x", "x"], ["s"], name="add"),
             F("BatchNormalization", ["s", "g", "b", "m", "v"], ["y"], name="bn")]
    graph = helper.make_graph(nodes, "bn", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 4, 3, 3])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 4, 3, 3])], inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 10
    onnx.save(model, tmp_path / "bn.onnx")
    g = load_onnx(tmp_path / "bn.onnx")
    assert "depthwise_conv2d" in [op.kind for op in g.ops]
    x = rng.standard_normal((1, 4, 3, 3)).astype(np.float32)
    want = _session(tmp_path / "bn.onnx", optimize=True).run(None, {"x": x})[0]
    np.testing.assert_allclose(reference.run(g, {"x": x})["y"], want, atol=1e-5, rtol=1e-5)


def test_single_rounding_rounds_acc_times_scale_once():
    """The requantization of QDQ models (attrs.rounding "single": fixedpoint.single_rounding_multipliers):
    MultiplyByQuantizedMultiplier with the folded multiplier equals floor(acc * real + 1/2), computed exactly with
    Python's fractions, on 20,000 accumulators of int8-sized outputs for one multiplier per right shift 1..10;
    TFLite's two roundings (the same real's own (multiplier, shift)) are 1 off on about 20,000 * 2^-(e+1) of them."""
    from fractions import Fraction
    from mcutool.ops.fixedpoint import multiply_by_quantized_multiplier, quantize_multiplier, \
        single_rounding_multipliers
    rng = np.random.default_rng(0)
    for e in range(1, 11):
        real = float(rng.uniform(0.5, 1.0)) * 2.0 ** -e
        mult, shift = quantize_multiplier(real)
        assert shift == -e
        acc = rng.integers(-int(300 / real), int(300 / real), 20000)
        f = Fraction(real)
        exact = np.array([(2 * int(a) * f.numerator + f.denominator) // (2 * f.denominator) for a in acc])
        single = multiply_by_quantized_multiplier(acc, *single_rounding_multipliers(mult, shift))
        tflite = multiply_by_quantized_multiplier(acc, mult, shift)
        assert np.array_equal(single, exact), e
        assert 0.5 * 20000 * 2.0 ** -(e + 1) < np.sum(tflite != exact) < 2 * 20000 * 2.0 ** -(e + 1), e


def test_float_input_is_quantized_as_quantize_linear(qdq_models, tmp_path):
    """The border QuantizeLinear of a QDQ model becomes the host's conversion of the float input (run_build):
    rounded half to even as ONNX's QuantizeLinear (onnx's reference evaluator is the oracle), not half away from
    zero as TFLite's QUANTIZE; inputs at exact half steps tell the two apart."""
    from onnx.reference import ReferenceEvaluator
    from mcutool.compiler import _to_firmware, compile_model, read_report
    path = qdq_models["per_tensor_int8"]
    compile_model(path, "stm32f746", tmp_path / "p", Options(build=False))
    spec = read_report(tmp_path / "p")["io"]["inputs"][0]
    assert spec["host_rounding"] == "half_to_even"
    scale, zp = np.float32(spec["scale"]), np.int8(spec["zero_point"])
    x = ((np.arange(-40, 40, dtype=np.float32) + np.float32(0.5)) * scale).astype(np.float32)
    x = x[np.float32(x / scale) == np.arange(-40, 40) + 0.5]  # exactly half steps in float32
    assert x.size > 20
    node = onnx.helper.make_node("QuantizeLinear", ["x", "s", "z"], ["y"])
    want = ReferenceEvaluator(node).run(None, {"x": x, "s": scale, "z": zp})[0]
    got = _to_firmware(x, spec)
    assert got.dtype == np.int8 and np.array_equal(got, want)
    assert not np.array_equal(want, np.clip(np.sign(x / scale) * np.floor(np.abs(x / scale) + 0.5) + zp, -128, 127))


# ---------------------------------------------------------------------------------------------------------------
# a float island with an internal tensor (the tiny ViT's decomposed LayerNorm, in small): quantized by --calib


def _centring_model(dtype=np.int8) -> onnx.ModelProto:
    """x -> Q -> DQ -> (x - ReduceMean(x)) * gamma -> Q -> DQ: a LayerNorm's centring and gamma, left in float as
    quantize_static leaves them; the mean and the difference have no QuantizeLinear (no scale) in the model, and
    gamma is a float constant of 32 values."""
    a = numpy_helper.from_array
    nodes = [F("QuantizeLinear", ["x", "si", "z"], ["xq"]), F("DequantizeLinear", ["xq", "si", "z"], ["xf"]),
             F("ReduceMean", ["xf"], ["m"], axes=[-1], keepdims=1, name="the_mean"), F("Sub", ["xf", "m"], ["d"]),
             F("Mul", ["d", "gamma"], ["e"]),
             F("QuantizeLinear", ["e", "so", "z"], ["dq"]), F("DequantizeLinear", ["dq", "so", "z"], ["y"])]
    graph = helper.make_graph(nodes, "centre", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 8, 32])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 8, 32])],
                              [a(np.float32(0.02), "si"), a(np.float32(0.015), "so"),
                               a(dtype(0 if dtype == np.int8 else 128), "z"),
                               a(np.linspace(0.5, 1.5, 32).astype(np.float32), "gamma")])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 10
    return model


def _centring_inputs(n: int) -> np.ndarray:
    rng = np.random.default_rng(3)
    return (rng.normal(0, 1, (n, 1, 8, 32)) * np.linspace(0.3, 1.5, 8)[None, None, :, None]
            + rng.normal(0, 0.5, (n, 1, 8, 1))).astype(np.float32)


@pytest.fixture(params=[np.int8, np.uint8], ids=["int8", "uint8"])
def centring(tmp_path, request):
    onnx.save(_centring_model(request.param), tmp_path / "centre.onnx")
    np.savez(tmp_path / "cal.npz", x=_centring_inputs(40)[:32, 0])
    return tmp_path / "centre.onnx", Options(calib=str(tmp_path / "cal.npz"))


def test_float_island_quantized_with_calib_keeps_model_scales_and_agrees_with_onnxruntime(centring, tmp_path):
    """Without --calib the island is refused by name; with it (int8 and uint8 QDQ), ReduceMean, Sub and Mul become
    int8 ops: the mean and Sub read the model's int8 input, Mul writes at the model's output scale (the
    QuantizeLinear's 0.015, zero point 0), the mean and the difference get calibrated scales, gamma int8. Against
    onnxruntime running the island in float (0.5 LSB of output rounding, plus the int8 rounding of the mean, the
    difference -- its step, ~0.03, is twice the output's -- and gamma): within 2 LSB on 8 held-out inputs
    (measured: 2.0 on each)."""
    path, opts = centring
    done = _mcutool("compile", path, "--board", "stm32f746", "--no-build", "-o", tmp_path / "p")
    assert done.returncode == 1 and "'the_mean' (mean)" in done.stderr and "pass --calib" in done.stderr
    graph, _ = firmware_graph(path, opts)
    assert [op.kind for op in graph.ops] == ["mean", "sub", "mul"]
    assert all(t.dtype == "int8" for t in graph.tensors.values())
    y = graph.tensor("y").quant
    assert np.float32(y.scale[0]) == np.float32(0.015) and int(y.zero_point[0]) == 0  # uint8's 128, as int8
    session = _session(path, optimize=False)
    for x in _centring_inputs(40)[32:]:
        xq = np.clip(np.round(x / 0.02), -128, 127).astype(np.int8)
        ours = reference.run(graph, {"x": xq})["y"].astype(np.int64)
        assert np.abs(ours - session.run(None, {"x": x})[0] / 0.015).max() <= 2.0001


@pytest.mark.qemu
def test_float_island_quantized_with_calib_bit_exact_in_qemu(centring, tmp_path):
    path, opts = centring
    _bit_exact_in_qemu(path, opts, _centring_inputs(3)[:, 0], tmp_path / "p")


def test_float_island_reading_the_float_input_is_refused_with_calib(tmp_path):
    """The centring island fed by the model's float input itself (no QuantizeLinear before it): nothing gives that
    input an int8 scale, so --calib does not quantize the island either; one message naming both ops."""
    model = _centring_model()
    nodes = list(model.graph.node)[2:]  # without the input's QuantizeLinear / DequantizeLinear
    for node in nodes:
        node.input[:] = ["x" if name == "xf" else name for name in node.input]
    del model.graph.node[:]
    model.graph.node.extend(nodes)
    onnx.save(model, tmp_path / "open.onnx")
    np.savez(tmp_path / "cal.npz", x=_centring_inputs(8)[:, 0])
    done = _mcutool("compile", tmp_path / "open.onnx", "--board", "stm32f746", "--no-build", "-o", tmp_path / "p",
                    "--calib", tmp_path / "cal.npz")
    assert done.returncode == 1 and "Traceback" not in done.stderr and "internal error" not in done.stderr
    assert "'the_mean' (mean)" in done.stderr and "(sub)" in done.stderr and "float input" in done.stderr
