"""Build small TFLite flatbuffers in memory (one or a few ops) for tests, and run them in the oracle.

The builder is mcutool's own TFLite writer (`mcutool.export.tflite.ModelBuilder`, which `mcutool quantize` uses);
see its docstring for an example. `RefInterpreter` runs a model in tflite-runtime's reference kernels.
"""
from __future__ import annotations

import numpy as np

from mcutool.export.tflite import ModelBuilder  # noqa: F401  (re-exported for the tests)


class RefInterpreter:
    """tflite-runtime with its reference kernels (OpResolverType.BUILTIN_REF), the oracle of DESIGN.md §6;
    allocated once, called once per input set: `outputs = oracle(x1, x2, ...)`."""

    def __init__(self, path):
        from tflite_runtime.interpreter import Interpreter, OpResolverType

        self.it = Interpreter(model_path=str(path), experimental_op_resolver_type=OpResolverType.BUILTIN_REF)
        self.it.allocate_tensors()
        self.input_details = self.it.get_input_details()
        self.output_details = self.it.get_output_details()

    def __call__(self, *inputs: np.ndarray) -> list[np.ndarray]:
        for detail, x in zip(self.input_details, inputs):
            self.it.set_tensor(detail["index"], x)
        self.it.invoke()
        return [self.it.get_tensor(d["index"]).copy() for d in self.output_details]


class MicroInterpreter:
    """TFLite Micro's own interpreter (the `tflite-micro` pip package), the oracle for the ops and dtypes
    TFLite Micro runs (int16 activations among them): `[output0] = oracle(x1, x2, ...)`. `model` is a path or the
    flatbuffer's bytes."""

    ARENA = 1 << 22  # plenty for the single-op test models; TFLite Micro fails to allocate, never truncates

    def __init__(self, model):
        from tflite_micro.python.tflite_micro import runtime

        if isinstance(model, (bytes, bytearray)):
            self.it = runtime.Interpreter.from_bytes(bytes(model), arena_size=self.ARENA)
        else:
            self.it = runtime.Interpreter.from_file(str(model), arena_size=self.ARENA)

    def __call__(self, *inputs: np.ndarray) -> list[np.ndarray]:
        for i, x in enumerate(inputs):
            self.it.set_input(x, i)
        self.it.invoke()
        return [self.it.get_output(0).copy()]
