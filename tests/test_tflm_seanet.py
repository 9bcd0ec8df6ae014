"""TFLite Micro's SEANet integration tests (../shared/models/tflm_seanet/<kind>/, SOURCES.md): single-operator
models with int16 activations, each with its shipped input(s). For every model, the reference equals TFLite
Micro's own interpreter (the tflite-micro pip package, the oracle) on the shipped input, and the generated C --
`--emit library` built on the host under ASan/UBSan (tests/host_build.py) -- gives the same output; one model
of each kind also runs in QEMU on stm32f746.

KINDS lists the folders covered here; a kind is added by extending it. TRANSPOSE_CONV's models also take the
output shape (int32) as their first input, which TFLite Micro ignores and mcutool's graph drops: the
interpreter gets every shipped input, mcutool's graph the others. The goldens are a second check: 4 leaky_relu goldens are 1 LSB off the interpreter
(KNOWN_GOLDEN_OFF; mcutool/ops/leaky_relu.py says why), every other one equals it.
"""
from functools import lru_cache

import numpy as np
import pytest

from conftest import SHARED_MODELS, assert_no_floating_point, require_board_tools
from host_build import build_host_program, run_host_program
from mcutool import reference
from mcutool.compiler import Options, compile_model, run_build
from mcutool.frontends import load_model
from tflite_builder import MicroInterpreter

SEANET = SHARED_MODELS / "tflm_seanet"
KINDS = ["add", "conv", "leaky_relu", "pad", "quantize", "strided_slice", "sub", "transpose_conv"]
COUNTS = {"add": 17, "conv": 22, "leaky_relu": 23, "pad": 19, "quantize": 2, "strided_slice": 34, "sub": 5,
          "transpose_conv": 5}
KNOWN_GOLDEN_OFF = {"leaky_relu3", "leaky_relu11", "leaky_relu18", "leaky_relu19"}
QEMU_MODELS = ["add/add0", "leaky_relu/leaky_relu0", "pad/pad0", "quantize/quantize0", "quantize/quantize1",
               "strided_slice/strided_slice0", "sub/sub0", "conv/conv5", "transpose_conv/transpose_conv2"]


def models(kinds) -> list[str]:
    return [f"{k}/{p.stem}" for k in kinds for p in sorted((SEANET / k).glob("*.tflite"),
                                                            key=lambda p: (len(p.stem), p.stem))]


MODELS = models(KINDS)


def _csv(path, dtype) -> np.ndarray:
    return np.loadtxt(path, delimiter=",", dtype=np.int64).reshape(-1).astype(dtype)


def model_input_names(path) -> list[str]:
    """The .tflite's input tensor names as mcutool's importer names them (an unnamed tensor i is tensor_i)."""
    import tflite
    sg = tflite.Model.GetRootAsModel(path.read_bytes(), 0).Subgraphs(0)
    return [(sg.Tensors(int(i)).Name() or b"").decode() or f"tensor_{int(i)}" for i in sg.InputsAsNumpy()]


@lru_cache(maxsize=None)
def case(model: str):
    """(path, graph, inputs, interpreter output, golden) of one SEANet model."""
    kind, name = model.split("/")
    path = SEANET / kind / f"{name}.tflite"
    graph = load_model(path)
    oracle = MicroInterpreter(path)
    feeds = []  # every input of the .tflite, in its order
    for i, input_name in enumerate(model_input_names(path)):
        detail = oracle.it.get_input_details(i)
        (csv,) = (SEANET / kind).glob(f"{name}_input{i}_*.csv")
        feeds.append((input_name, _csv(csv, detail["dtype"]).reshape(detail["shape"])))
    inputs = [dict(feeds)[n] for n in graph.inputs]
    out = graph.tensor(graph.outputs[0])
    (golden,) = (SEANET / kind).glob(f"{name}_golden_*.csv")
    expected = oracle(*(x for _, x in feeds))[0]
    assert expected.dtype == np.dtype(out.dtype) and expected.shape == out.shape
    return path, graph, inputs, expected, _csv(golden, out.dtype).reshape(out.shape)


def test_every_model_of_the_kinds_is_covered():
    assert {k: len(list((SEANET / k).glob("*.tflite"))) for k in KINDS} == COUNTS


@pytest.mark.parametrize("model", MODELS)
def test_reference_equals_tflite_micro(model):
    _, graph, inputs, expected, golden = case(model)
    got = reference.run(graph, dict(zip(graph.inputs, inputs)))[graph.outputs[0]]
    assert np.array_equal(got, expected)
    name = model.split("/")[1]
    assert np.array_equal(golden, expected) == (name not in KNOWN_GOLDEN_OFF)
    if name in KNOWN_GOLDEN_OFF:
        assert np.abs(golden.astype(np.int64) - expected).max() == 1


@pytest.mark.parametrize("model", MODELS)
def test_host_build_equals_tflite_micro(model, tmp_path):
    path, graph, inputs, expected, _ = case(model)
    lib = tmp_path / "lib"
    compile_model(path, "stm32f746", lib, Options(emit="library"))
    exe = build_host_program(lib, tmp_path / "host")
    out = graph.tensor(graph.outputs[0])
    assert np.array_equal(run_host_program(exe, inputs, out.shape, out.dtype), expected)


@pytest.mark.qemu
@pytest.mark.parametrize("model", [m for m in QEMU_MODELS if m.split("/")[0] in KINDS])
def test_one_model_of_each_kind_in_qemu(model, tmp_path):
    board = require_board_tools("stm32f746")
    path, graph, inputs, expected, _ = case(model)
    compile_model(path, "stm32f746", tmp_path / "proj", Options())
    ys, info = run_build(tmp_path / "proj", inputs)
    assert ys[0].dtype == expected.dtype and np.array_equal(ys[0], expected)
    assert info["instructions"] > 0
    assert_no_floating_point(board, tmp_path / "proj" / "board.elf")


@pytest.mark.parametrize("model", ["leaky_relu/leaky_relu0", "sub/sub0", "quantize/quantize0"])
def test_elementwise_int16_ops_run_in_place(model, tmp_path):
    """LEAKY_RELU and SUB (int16) write over their dying full-shaped input: the arena holds the inputs only.
    QUANTIZE int32 -> int16 cannot (its output is half the input's bytes): inputs and output."""
    path, graph, _, _, _ = case(model)
    report = compile_model(path, "stm32f746", tmp_path / "lib", Options(emit="library"))
    inputs = sum(graph.tensor(n).nbytes for n in graph.inputs)  # each a multiple of 8 bytes here
    x, y = graph.tensor(graph.inputs[0]), graph.tensor(graph.outputs[0])
    assert report["memory"]["arena_bytes"] == inputs + (y.nbytes if x.dtype != y.dtype else 0)
