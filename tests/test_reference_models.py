"""mcutool.reference on the real models in ../shared/models, against tflite-runtime 2.14's reference kernels
(BUILTIN_REF) and TFLite Micro's own interpreter: bit for bit on the int8 models (DESIGN.md §6, §11)."""
from __future__ import annotations

import time

import numpy as np
import pytest

from mcutool import reference as R
from mcutool.frontends.tflite import load_tflite

from conftest import shared_model
from tflite_builder import RefInterpreter

INT8_MODELS = ["kws_ref_model", "ad01_int8", "hello_world_int8", "micro_speech_quantized"]
N_INPUTS = 20


def _random_input(rng, t):
    return rng.integers(-128, 128, t.shape).astype(np.int8)


def _structured_input(rng, t, i):
    """Besides uniform noise, smooth inputs (closer to real features) so that the softmax / regression outputs
    are not all driven by saturated noise."""
    if i % 2 == 0:
        return _random_input(rng, t)
    base = rng.normal(0, 40, t.shape)
    smooth = np.cumsum(base.reshape(-1), axis=0).reshape(t.shape) / np.sqrt(np.arange(1, t.size + 1)).reshape(t.shape)
    return np.clip(np.round(smooth * 3 + rng.integers(-60, 60)), -128, 127).astype(np.int8)


@pytest.mark.parametrize("name", INT8_MODELS)
def test_int8_model_matches_tflite_runtime(name):
    path = shared_model(f"{name}.tflite")
    graph = load_tflite(path)
    oracle = RefInterpreter(path)
    rng = np.random.default_rng(len(name))
    (in_name,), (out_name,) = graph.inputs, graph.outputs
    t = graph.tensor(in_name)
    outputs = []
    elapsed = 0.0
    for i in range(N_INPUTS):
        x = _structured_input(rng, t, i)
        expected = oracle(x)[0]
        start = time.perf_counter()
        got = R.run(graph, {in_name: x})[out_name]
        elapsed += time.perf_counter() - start
        assert got.dtype == expected.dtype and got.shape == expected.shape
        assert np.array_equal(got, expected), f"{name}: input {i} differs in {int((got != expected).sum())} values"
        outputs.append(expected)
    assert np.unique(np.stack(outputs)).size >= 3, f"{name}: outputs are (nearly) constant"
    assert elapsed / N_INPUTS < 0.5, f"{name}: the reference takes {elapsed / N_INPUTS:.2f} s per inference"


@pytest.mark.parametrize("name", INT8_MODELS)
def test_intermediate_tensors_are_not_constant(name):
    """Every activation the reference computes varies with the input (no collapsed layer hides a mismatch)."""
    path = shared_model(f"{name}.tflite")
    graph = load_tflite(path)
    rng = np.random.default_rng(7)
    t = graph.tensor(graph.inputs[0])
    runs = [R.run(graph, {t.name: _structured_input(rng, t, i)}, keep=True) for i in range(6)]
    for tensor in graph.activations():
        values = np.stack([r[tensor.name] for r in runs])
        assert np.unique(values).size > 1, f"{name}: tensor {tensor.name!r} is constant"


@pytest.mark.parametrize("name", INT8_MODELS)
def test_int8_model_matches_tflite_micro(name):
    from tflite_micro.python.tflite_micro import runtime

    path = shared_model(f"{name}.tflite")
    graph = load_tflite(path)
    micro = runtime.Interpreter.from_file(str(path))
    rng = np.random.default_rng(100 + len(name))
    t = graph.tensor(graph.inputs[0])
    for i in range(4):
        x = _structured_input(rng, t, i)
        micro.set_input(x, 0)
        micro.invoke()
        expected = micro.get_output(0)
        got = R.run(graph, {t.name: x})[graph.outputs[0]]
        assert np.array_equal(got, expected), f"{name}: input {i} differs from TFLite Micro"


@pytest.mark.parametrize("name,make_input", [
    ("hello_world_float", lambda rng, shape: rng.uniform(0, 2 * np.pi, shape).astype(np.float32)),
    ("resnet8_float", lambda rng, shape: rng.uniform(0, 255, shape).astype(np.float32)),
])
def test_float_model_close_to_tflite_runtime(name, make_input):
    """The float32 path (for calibrating float models) agrees with tflite-runtime up to float rounding."""
    path = shared_model(f"{name}.tflite")
    graph = load_tflite(path)
    oracle = RefInterpreter(path)
    rng = np.random.default_rng(3)
    t = graph.tensor(graph.inputs[0])
    for _ in range(3):
        x = make_input(rng, t.shape)
        expected = oracle(x)[0]
        got = R.run(graph, {t.name: x})[graph.outputs[0]]
        assert got.dtype == np.float32 and got.shape == expected.shape
        np.testing.assert_allclose(got, expected, rtol=1e-4, atol=1e-5)
