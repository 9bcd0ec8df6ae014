"""SUB, LEAKY_RELU, STRIDED_SLICE and QUANTIZE on small models built here (tests/tflite_builder.py), int8 and
int16: the reference equals TFLite Micro's interpreter (the oracle), and the generated C built on the host
(ASan/UBSan, tests/host_build.py) equals it too -- random inputs over the dtype's whole range. STRIDED_SLICE's
sparse spec (ellipsis, new axes, fewer entries than axes), which TFLite Micro's kernel does not implement, is
checked against tflite-runtime 2.14's BUILTIN_REF instead."""
import numpy as np
import pytest

from host_build import build_host_program, run_host_program
from mcutool import reference
from mcutool.compiler import Options, compile_model, firmware_graph
from mcutool.frontends import load_model
from tflite_builder import MicroInterpreter, ModelBuilder, RefInterpreter

ZP = {"int8": (-7, 11, 3), "int16": (0, 0, 0)}  # (first input, second input, output) zero points


def sub_model(dtype, a_shape, b_shape, scales, activation="NONE"):
    z1, z2, zo = ZP[dtype]
    b = ModelBuilder()
    out_shape = np.broadcast_shapes(a_shape, b_shape)
    x1 = b.tensor("a", a_shape, dtype, scale=scales[0], zero_point=z1)
    x2 = b.tensor("b", b_shape, dtype, scale=scales[1], zero_point=z2)
    y = b.tensor("y", out_shape, dtype, scale=scales[2], zero_point=zo)
    b.op("SUB", [x1, x2], [y], "SubOptions", FusedActivationFunction=activation)
    b.inputs, b.outputs = [x1, x2], [y]
    return b.build()


def leaky_relu_model(dtype, shape, alpha, s_in, s_out):
    b = ModelBuilder()
    zi, _, zo = ZP[dtype]
    x = b.tensor("x", shape, dtype, scale=s_in, zero_point=zi)
    y = b.tensor("y", shape, dtype, scale=s_out, zero_point=zo)
    b.op("LEAKY_RELU", [x], [y], "LeakyReluOptions", Alpha=alpha)
    b.inputs, b.outputs = [x], [y]
    return b.build()


def strided_slice_model(dtype, shape, begin, end, strides, out_shape, begin_mask=0, end_mask=0, shrink=0,
                        ellipsis=0, new_axis=0):
    b = ModelBuilder()
    zp = ZP[dtype][0]
    x = b.tensor("x", shape, dtype, scale=0.02, zero_point=zp)
    y = b.tensor("y", out_shape, dtype, scale=0.02, zero_point=zp)
    consts = [b.const(n, np.array(v, dtype=np.int32)) for n, v in (("begin", begin), ("end", end),
                                                                     ("strides", strides))]
    b.op("STRIDED_SLICE", [x, *consts], [y], "StridedSliceOptions", version=4, BeginMask=begin_mask,
         EndMask=end_mask, ShrinkAxisMask=shrink, EllipsisMask=ellipsis, NewAxisMask=new_axis)
    b.inputs, b.outputs = [x], [y]
    return b.build()


def quantize_model(in_dtype, out_dtype, shape, s_in, s_out):
    b = ModelBuilder()
    x = b.tensor("x", shape, in_dtype, scale=s_in, zero_point=ZP[in_dtype][0])
    y = b.tensor("y", shape, out_dtype, scale=s_out, zero_point=ZP[out_dtype][2])
    b.op("QUANTIZE", [x], [y])
    b.inputs, b.outputs = [x], [y]
    return b.build()


def check(data: bytes, tmp_path, samples=3, seed=0, oracle=MicroInterpreter):
    """Reference and host build equal the oracle (TFLite Micro) on `samples` random inputs; returns the outputs
    seen."""
    model = tmp_path / "m.tflite"
    model.write_bytes(data)
    graph = load_model(model)
    oracle = oracle(model)
    lib = tmp_path / "lib"
    compile_model(model, "stm32f746", lib, Options(emit="library"))
    exe = build_host_program(lib, tmp_path / "host")
    out = graph.tensor(graph.outputs[0])
    rng = np.random.default_rng(seed)
    seen = []
    for _ in range(samples):
        xs = []
        for n in graph.inputs:
            t = graph.tensor(n)
            info = np.iinfo(t.dtype)
            xs.append(rng.integers(info.min, info.max + 1, size=t.shape).astype(t.dtype))
        want = oracle(*xs)[0]
        assert np.array_equal(reference.run(graph, dict(zip(graph.inputs, xs)))[out.name], want)
        assert np.array_equal(run_host_program(exe, xs, out.shape, out.dtype), want)
        seen.append(want)
    assert len({w.tobytes() for w in seen}) > 1
    return seen


@pytest.mark.parametrize("dtype", ["int8", "int16"])
@pytest.mark.parametrize("a_shape,b_shape,scales,activation", [
    ((1, 4, 5, 6), (1, 4, 5, 6), (0.05, 0.02, 0.06), "NONE"),
    ((1, 3, 4, 8), (8,), (0.011, 0.037, 0.03), "RELU"),
    ((2, 1, 5, 3), (1, 4, 1, 3), (0.5, 0.25, 0.9), "NONE"),
])
def test_sub(dtype, a_shape, b_shape, scales, activation, tmp_path):
    ys = check(sub_model(dtype, a_shape, b_shape, scales, activation), tmp_path)
    if activation == "RELU":
        assert min(int(y.min()) for y in ys) >= ZP[dtype][2]


@pytest.mark.parametrize("dtype", ["int8", "int16"])
@pytest.mark.parametrize("alpha,s_in,s_out", [(0.2, 0.05, 0.04), (0.3, 0.0142143, 0.0059588), (1.7, 0.02, 0.05)])
def test_leaky_relu(dtype, alpha, s_in, s_out, tmp_path):
    check(leaky_relu_model(dtype, (1, 3, 7, 5), alpha, s_in, s_out), tmp_path)


SLICES = [  # shape, begin, end, strides, output shape, begin_mask, end_mask, shrink_axis_mask
    ((1, 6, 7, 4), (0, 1, 0, 0), (1, 5, 7, 4), (1, 1, 2, 1), (1, 4, 4, 4), 0, 0, 0),
    ((1, 6, 7, 4), (0, -2, 6, 3), (1, 0, 0, 0), (1, -1, -2, -1), (1, 4, 4, 3), 0, 0b0100, 0),
    ((2, 6, 7, 4), (1, 0, 2, 1), (0, 0, 0, 3), (1, 2, 1, 1), (3, 2), 0b0010, 0b0010, 0b0101),
    ((5, 9), (-3, 1), (100, -1), (2, 3), (2, 3), 0, 0, 0),
    ((3, 4, 5), (0, 3, 4), (0, 0, 0), (1, -1, -1), (3, 4, 5), 0b001, 0b111, 0),
]


@pytest.mark.parametrize("dtype", ["int8", "int16"])
@pytest.mark.parametrize("shape,begin,end,strides,out_shape,bm,em,sm", SLICES)
def test_strided_slice(dtype, shape, begin, end, strides, out_shape, bm, em, sm, tmp_path):
    check(strided_slice_model(dtype, shape, begin, end, strides, out_shape, bm, em, sm), tmp_path)


SPARSE_SLICES = [  # shape, begin, end, strides, output shape, begin_mask, end_mask, shrink, ellipsis, new_axis
    ((4, 5, 6, 7), (1, 0, 2), (3, 0, 3), (1, 1, 1), (2, 5, 6), 0, 0, 0b100, 0b010, 0),        # x[1:3, ..., 2]
    ((4, 5), (0, 0, 1), (0, 0, 3), (1, 1, 1), (4, 1, 2), 0b001, 0b001, 0, 0, 0b010),          # x[:, None, 1:3]
    ((4, 5, 6), (1,), (3,), (1,), (2, 5, 6), 0, 0, 0, 0, 0),                                  # x[1:3]
    ((3, 4, 5), (0, 0, 0), (0, 0, 0), (1, -1, 1), (3, 4, 5, 1), 0b010, 0b010, 0, 0b001, 0b100),  # x[..., ::-1, None]
    ((1, 6, 7, 3), (0, 2), (0, -1), (1, 2), (1, 6, 7), 0b01, 0, 0b10, 0b01, 0),               # x[..., 2]
]


@pytest.mark.parametrize("dtype", ["int8", "int16"])
@pytest.mark.parametrize("shape,begin,end,strides,out_shape,bm,em,sm,el,na", SPARSE_SLICES)
def test_strided_slice_sparse_spec_like_tflite_runtime(dtype, shape, begin, end, strides, out_shape, bm, em, sm, el,
                                                       na, tmp_path):
    data = strided_slice_model(dtype, shape, begin, end, strides, out_shape, bm, em, sm, el, na)
    check(data, tmp_path, oracle=lambda path: RefInterpreter(path))


@pytest.mark.parametrize("in_dtype,out_dtype,s_in,s_out", [
    ("int8", "int16", 0.05, 0.0004), ("int16", "int8", 0.0004, 0.05), ("int16", "int16", 0.0007, 0.0003),
    ("int8", "int8", 0.05, 0.08),
])
def test_quantize_requantizes(in_dtype, out_dtype, s_in, s_out, tmp_path):
    check(quantize_model(in_dtype, out_dtype, (1, 4, 6, 3), s_in, s_out), tmp_path)


def test_float_model_with_sub_leaky_relu_and_strided_slice_quantizes(tmp_path):
    """A float model with these ops goes through post-training quantization (the slice keeps its input's
    quantization; calibration batches a slice whose batch range is [0, 1)): the int8 result stays within two
    output steps of the float one, the written TFLite file runs in tflite-runtime and TFLite Micro as the
    reference does, and the int8 firmware graph built on the host equals the reference."""
    from mcutool.export.tflite import write_tflite
    from mcutool.quantize.ptq import calibrate, integer_io, quantize_graph

    b = ModelBuilder()
    x = b.tensor("x", (1, 6, 8, 4), "float32")
    c = b.tensor("c", (1, 1, 1, 4), "float32")
    s, l = b.tensor("s", (1, 6, 8, 4), "float32"), b.tensor("l", (1, 6, 8, 4), "float32")
    y = b.tensor("y", (1, 3, 8, 2), "float32")
    b.op("SUB", [x, c], [s], "SubOptions")
    b.op("LEAKY_RELU", [s], [l], "LeakyReluOptions", Alpha=0.2)
    consts = [b.const(n, np.array(v, dtype=np.int32)) for n, v in (("b", (0, 0, 0, 1)), ("e", (1, 6, 8, 4)),
                                                                     ("st", (1, 2, 1, 2)))]
    b.op("STRIDED_SLICE", [l, *consts], [y], "StridedSliceOptions")
    b.inputs, b.outputs = [x, c], [y]
    (tmp_path / "f.tflite").write_bytes(b.build())
    graph = load_model(tmp_path / "f.tflite")
    rng = np.random.default_rng(3)
    calib = {"x": rng.normal(size=(16, 6, 8, 4)).astype(np.float32),
             "c": rng.normal(size=(16, 1, 1, 4)).astype(np.float32)}
    qgraph = quantize_graph(graph, calibrate(graph, calib))
    fw = integer_io(qgraph)
    assert [op.kind for op in fw.ops] == ["sub", "leaky_relu", "strided_slice"]
    assert fw.tensor("y").quant.scale[0] == fw.tensor(fw.ops[2].inputs[0]).quant.scale[0]
    xs = {"x": rng.normal(size=(1, 6, 8, 4)).astype(np.float32), "c": rng.normal(size=(1, 1, 1, 4)).astype(np.float32)}
    step = float(fw.tensor("y").quant.scale[0])
    assert np.abs(reference.run(qgraph, xs)["y"] - reference.run(graph, xs)["y"]).max() <= 2 * step
    (tmp_path / "q.tflite").write_bytes(write_tflite(qgraph))  # what `mcutool quantize` writes
    for oracle in (RefInterpreter, MicroInterpreter):
        got = oracle(tmp_path / "q.tflite")(xs["x"], xs["c"])[0]
        assert np.array_equal(got, reference.run(qgraph, xs)["y"]), oracle.__name__
    lib, options = tmp_path / "lib", Options(emit="library", calib=_npz(tmp_path, calib))
    compile_model(tmp_path / "f.tflite", "stm32f746", lib, options)
    fw, _ = firmware_graph(tmp_path / "f.tflite", options)  # what the firmware computes
    exe = build_host_program(lib, tmp_path / "host")
    xq = [rng.integers(-128, 128, size=fw.tensor(n).shape).astype(np.int8) for n in fw.inputs]
    want = reference.run(fw, dict(zip(fw.inputs, xq)))["y"]
    assert np.array_equal(run_host_program(exe, xq, want.shape, np.int8), want)


def _npz(tmp_path, arrays):
    np.savez(tmp_path / "calib.npz", **arrays)
    return str(tmp_path / "calib.npz")
