"""TFLite Micro's SEANet integration tests for CONV_2D (22 models) and TRANSPOSE_CONV (5), int16 activations
with int8 weights and int64 biases (../shared/models/tflm_seanet/, SOURCES.md): mcutool's reference equals the
tflite-micro interpreter on the shipped input (and the shipped golden, a second check)."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from mcutool import reference as R
from mcutool.frontends.tflite import load_tflite

from conftest import SHARED_MODELS

SEANET = SHARED_MODELS / "tflm_seanet"
COUNTS = {"conv": 22, "transpose_conv": 5}
MODELS = [(kind, f"{kind}{i}") for kind, n in COUNTS.items() for i in range(n)]


def read_csv(path: Path, dtype, shape) -> np.ndarray:
    return np.loadtxt(path, delimiter=",", dtype=np.int64).astype(dtype).reshape(shape)


def seanet_case(kind: str, name: str):
    """(model path, the interpreter's inputs in the model's order, the golden output)."""
    from tflite_micro.python.tflite_micro import runtime

    folder = SEANET / kind
    path = folder / f"{name}.tflite"
    if not path.exists():
        pytest.fail(f"{path} is missing: the tests expect ../shared/models beside the checkout")
    micro = runtime.Interpreter.from_file(str(path), arena_size=1 << 22)
    inputs = []
    for i, csv in enumerate(sorted(folder.glob(f"{name}_input*_*.csv"))):
        detail = micro.get_input_details(i)
        inputs.append(read_csv(csv, detail["dtype"], detail["shape"]))
    golden = read_csv(folder / f"{name}_golden_int16.csv", np.int16, micro.get_output_details(0)["shape"])
    return path, inputs, golden


def interpreter_output(path: Path, inputs: list[np.ndarray]) -> np.ndarray:
    from tflite_micro.python.tflite_micro import runtime

    micro = runtime.Interpreter.from_file(str(path), arena_size=1 << 22)
    for i, x in enumerate(inputs):
        micro.set_input(x, i)
    micro.invoke()
    return micro.get_output(0)


def data_input(inputs: list[np.ndarray]) -> np.ndarray:
    """The activation input: TRANSPOSE_CONV's models also take the output shape (int32) as their first input,
    which TFLite Micro ignores and mcutool's graph drops."""
    return inputs[-1]


@pytest.mark.parametrize("kind,name", MODELS, ids=[m[1] for m in MODELS])
def test_reference_matches_tflite_micro(kind, name):
    path, inputs, golden = seanet_case(kind, name)
    graph = load_tflite(path)
    (x_name,), (y_name,) = graph.inputs, graph.outputs
    expected = interpreter_output(path, inputs)
    got = R.run(graph, {x_name: data_input(inputs)})[y_name]
    assert got.dtype == np.int16 and got.shape == expected.shape
    assert np.array_equal(got, expected), f"{name}: {int((got != expected).sum())} of {got.size} values differ"
    assert np.array_equal(expected, golden), f"{name}: the interpreter differs from the shipped golden"
    assert np.unique(expected).size >= min(64, expected.size // 4), f"{name}: the output is nearly constant"
