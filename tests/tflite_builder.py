"""Build small TFLite flatbuffers in memory (one or a few ops) for tests.

Uses the `tflite` package's generated flatbuffer builder functions (schema bindings), so a test can write a
model with exactly the tensors, quantization and builtin options it wants and run it through both tflite-runtime
and mcutool.

    b = ModelBuilder()
    x = b.tensor("x", (1, 8, 8, 3), "int8", scale=0.05, zero_point=-3)
    w = b.tensor("w", (4, 3, 3, 3), "int8", scale=[0.01, 0.02, 0.03, 0.04], zero_point=0, axis=0, data=wq)
    bias = b.tensor("b", (4,), "int32", scale=..., zero_point=0, data=bq)
    y = b.tensor("y", (1, 4, 4, 4), "int8", scale=0.1, zero_point=5)
    b.op("CONV_2D", [x, w, bias], [y], "Conv2DOptions", Padding="SAME", StrideH=2, StrideW=2)
    b.inputs, b.outputs = [x], [y]
    data = b.build()
"""
from __future__ import annotations

import importlib
from pathlib import Path

import flatbuffers
import numpy as np
from tflite.ActivationFunctionType import ActivationFunctionType
from tflite.BuiltinOperator import BuiltinOperator
from tflite.BuiltinOptions import BuiltinOptions
from tflite.Padding import Padding
from tflite.TensorType import TensorType

_TYPES = {
    "float32": (TensorType.FLOAT32, np.float32),
    "int32": (TensorType.INT32, np.int32),
    "uint8": (TensorType.UINT8, np.uint8),
    "int8": (TensorType.INT8, np.int8),
    "int16": (TensorType.INT16, np.int16),
    "int64": (TensorType.INT64, np.int64),
}


def _m(name: str):
    """The generated module tflite.<name> (the package re-exports classes under the same names)."""
    return importlib.import_module(f"tflite.{name}")


# Option fields given as names (e.g. Padding="SAME", FusedActivationFunction="RELU6") are translated here.
_ENUM_FIELDS = {
    "Padding": Padding,
    "FusedActivationFunction": ActivationFunctionType,
}


class ModelBuilder:
    """Collects tensors and operators, then serializes one subgraph into a .tflite flatbuffer."""

    def __init__(self, description: str = "mcutool test model"):
        self.description = description
        self.tensors: list[dict] = []
        self.buffers: list[bytes] = [b""]  # buffer 0 is the empty buffer, by convention
        self.ops: list[dict] = []
        self.opcodes: list[tuple[int, int]] = []  # (builtin code, version)
        self.inputs: list[int] = []
        self.outputs: list[int] = []

    # ---- model content ----
    def tensor(self, name: str, shape, dtype: str, scale=None, zero_point=None, axis: int = 0,
               data: np.ndarray | None = None) -> int:
        """Add a tensor; `data` makes it a constant. Returns its index."""
        if dtype not in _TYPES:
            raise ValueError(f"unsupported dtype {dtype}")
        buffer = 0
        if data is not None:
            arr = np.ascontiguousarray(np.asarray(data, dtype=_TYPES[dtype][1]).reshape(shape))
            self.buffers.append(arr.tobytes())
            buffer = len(self.buffers) - 1
        quant = None
        if scale is not None:
            scale = np.atleast_1d(np.asarray(scale, dtype=np.float32))
            zp = np.atleast_1d(np.asarray(0 if zero_point is None else zero_point, dtype=np.int64))
            if zp.size == 1 and scale.size > 1:
                zp = np.full(scale.shape, zp[0], dtype=np.int64)
            quant = (scale, zp, axis)
        self.tensors.append({"name": name, "shape": [int(d) for d in shape], "type": _TYPES[dtype][0],
                             "buffer": buffer, "quant": quant})
        return len(self.tensors) - 1

    def const(self, name: str, data, dtype: str = "int32", **quant) -> int:
        arr = np.asarray(data)
        return self.tensor(name, arr.shape, dtype, data=arr, **quant)

    def op(self, opname: str, inputs: list[int], outputs: list[int], options: str | None = None,
           version: int = 1, **fields) -> None:
        """Add an operator. `options` is the builtin options table name (e.g. "Conv2DOptions"), `fields` its
        fields by schema name (Padding, StrideW, FusedActivationFunction, ...); enum fields accept names."""
        code = getattr(BuiltinOperator, opname)
        if (code, version) not in self.opcodes:
            self.opcodes.append((code, version))
        self.ops.append({"opcode": self.opcodes.index((code, version)), "inputs": list(inputs),
                         "outputs": list(outputs), "options": options, "fields": fields})

    # ---- serialization ----
    def build(self) -> bytes:
        b = flatbuffers.Builder(1024)

        def ivec(values, dtype=np.int32):
            return b.CreateNumpyVector(np.asarray(values, dtype=dtype))

        # buffers
        buf_offsets = []
        for data in self.buffers:
            d = b.CreateNumpyVector(np.frombuffer(data, dtype=np.uint8)) if data else None
            _m("Buffer").BufferStart(b)
            if d is not None:
                _m("Buffer").BufferAddData(b, d)
            buf_offsets.append(_m("Buffer").BufferEnd(b))

        # tensors
        t_offsets = []
        for t in self.tensors:
            name = b.CreateString(t["name"])
            shape = ivec(t["shape"])
            q_off = None
            if t["quant"] is not None:
                scale, zp, axis = t["quant"]
                s_vec = b.CreateNumpyVector(scale.astype(np.float32))
                z_vec = b.CreateNumpyVector(zp.astype(np.int64))
                _m("QuantizationParameters").QuantizationParametersStart(b)
                _m("QuantizationParameters").QuantizationParametersAddScale(b, s_vec)
                _m("QuantizationParameters").QuantizationParametersAddZeroPoint(b, z_vec)
                _m("QuantizationParameters").QuantizationParametersAddQuantizedDimension(b, int(axis))
                q_off = _m("QuantizationParameters").QuantizationParametersEnd(b)
            _m("Tensor").TensorStart(b)
            _m("Tensor").TensorAddShape(b, shape)
            _m("Tensor").TensorAddType(b, t["type"])
            _m("Tensor").TensorAddBuffer(b, t["buffer"])
            _m("Tensor").TensorAddName(b, name)
            if q_off is not None:
                _m("Tensor").TensorAddQuantization(b, q_off)
            t_offsets.append(_m("Tensor").TensorEnd(b))

        # operators
        op_offsets = []
        for op in self.ops:
            opt_off, opt_type = None, BuiltinOptions.NONE
            if op["options"]:
                opt_off = self._build_options(b, op["options"], op["fields"])
                opt_type = getattr(BuiltinOptions, op["options"])
            ins = ivec(op["inputs"])
            outs = ivec(op["outputs"])
            _m("Operator").OperatorStart(b)
            _m("Operator").OperatorAddOpcodeIndex(b, op["opcode"])
            _m("Operator").OperatorAddInputs(b, ins)
            _m("Operator").OperatorAddOutputs(b, outs)
            if opt_off is not None:
                _m("Operator").OperatorAddBuiltinOptionsType(b, opt_type)
                _m("Operator").OperatorAddBuiltinOptions(b, opt_off)
            op_offsets.append(_m("Operator").OperatorEnd(b))

        def table_vec(start_fn, offsets):
            start_fn(b, len(offsets))
            for o in reversed(offsets):
                b.PrependUOffsetTRelative(o)
            return b.EndVector()

        tensors_vec = table_vec(_m("SubGraph").SubGraphStartTensorsVector, t_offsets)
        ops_vec = table_vec(_m("SubGraph").SubGraphStartOperatorsVector, op_offsets)
        in_vec = ivec(self.inputs)
        out_vec = ivec(self.outputs)
        sg_name = b.CreateString("main")
        _m("SubGraph").SubGraphStart(b)
        _m("SubGraph").SubGraphAddTensors(b, tensors_vec)
        _m("SubGraph").SubGraphAddInputs(b, in_vec)
        _m("SubGraph").SubGraphAddOutputs(b, out_vec)
        _m("SubGraph").SubGraphAddOperators(b, ops_vec)
        _m("SubGraph").SubGraphAddName(b, sg_name)
        subgraph = _m("SubGraph").SubGraphEnd(b)

        code_offsets = []
        for code, version in self.opcodes:
            _m("OperatorCode").OperatorCodeStart(b)
            _m("OperatorCode").OperatorCodeAddDeprecatedBuiltinCode(b, min(code, 127))
            _m("OperatorCode").OperatorCodeAddBuiltinCode(b, code)
            _m("OperatorCode").OperatorCodeAddVersion(b, version)
            code_offsets.append(_m("OperatorCode").OperatorCodeEnd(b))

        codes_vec = table_vec(_m("Model").ModelStartOperatorCodesVector, code_offsets)
        subgraphs_vec = table_vec(_m("Model").ModelStartSubgraphsVector, [subgraph])
        buffers_vec = table_vec(_m("Model").ModelStartBuffersVector, buf_offsets)
        desc = b.CreateString(self.description)
        _m("Model").ModelStart(b)
        _m("Model").ModelAddVersion(b, 3)
        _m("Model").ModelAddOperatorCodes(b, codes_vec)
        _m("Model").ModelAddSubgraphs(b, subgraphs_vec)
        _m("Model").ModelAddDescription(b, desc)
        _m("Model").ModelAddBuffers(b, buffers_vec)
        model = _m("Model").ModelEnd(b)
        b.Finish(model, file_identifier=b"TFL3")
        return bytes(b.Output())

    @staticmethod
    def _build_options(b, table: str, fields: dict) -> int:
        module = _m(table)
        # vectors must be created before the table is started
        prepared = {}
        for key, value in fields.items():
            if isinstance(value, (list, tuple, np.ndarray)):
                prepared[key] = b.CreateNumpyVector(np.asarray(value, dtype=np.int32))
            elif isinstance(value, str):
                prepared[key] = getattr(_ENUM_FIELDS[key], value)
            else:
                prepared[key] = value
        getattr(module, f"{table}Start")(b)
        for key, value in prepared.items():
            getattr(module, f"{table}Add{key}")(b, value)
        return getattr(module, f"{table}End")(b)

    def write(self, path: Path) -> Path:
        path = Path(path)
        path.write_bytes(self.build())
        return path


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
