"""The IR -> a TFLite flatbuffer, so a model mcutool quantized runs in TFLite's own tools.

`ModelBuilder` writes a flatbuffer with the `tflite` package's generated builder functions (tensors, quantization,
builtin options by schema name); `write_tflite(graph)` translates a quantized graph op by op into it. Explicit
pads become SAME/VALID where TFLite's own padding rule gives them, else a PAD op before the layer.

    b = ModelBuilder()
    x = b.tensor("x", (1, 8, 8, 3), "int8", scale=0.05, zero_point=-3)
    w = b.tensor("w", (4, 3, 3, 3), "int8", scale=[0.01, 0.02, 0.03, 0.04], zero_point=0, axis=0, data=wq)
    y = b.tensor("y", (1, 4, 4, 4), "int8", scale=0.1, zero_point=5)
    b.op("CONV_2D", [x, w, -1], [y], "Conv2DOptions", Padding="SAME", StrideH=2, StrideW=2)
    b.inputs, b.outputs = [x], [y]
    data = b.build()
"""
from __future__ import annotations

import importlib
import warnings
from pathlib import Path

import flatbuffers
import numpy as np
from tflite.ActivationFunctionType import ActivationFunctionType
from tflite.BuiltinOperator import BuiltinOperator
from tflite.BuiltinOptions import BuiltinOptions
from tflite.Padding import Padding
from tflite.TensorType import TensorType

from ..errors import UserError
from ..ir import pack_int4

_TYPES = {
    "float32": (TensorType.FLOAT32, np.float32),
    "int32": (TensorType.INT32, np.int32),
    "uint8": (TensorType.UINT8, np.uint8),
    "int8": (TensorType.INT8, np.int8),
    "int16": (TensorType.INT16, np.int16),
    "int64": (TensorType.INT64, np.int64),
    "int4": (TensorType.INT4, np.int8),  # values -8..7, stored packed two per byte (ir.pack_int4)
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
        self.opcodes: list[tuple[int, int, str | None]] = []  # (builtin code, version, custom code)
        self.inputs: list[int] = []
        self.outputs: list[int] = []

    # ---- model content ----
    def tensor(self, name: str, shape, dtype: str, scale=None, zero_point=None, axis: int = 0,
               data: np.ndarray | None = None, variable: bool = False) -> int:
        """Add a tensor; `data` makes it a constant, `variable` a stateful op's state. Returns its index."""
        if dtype not in _TYPES:
            raise ValueError(f"unsupported dtype {dtype}")
        buffer = 0
        if data is not None:
            arr = np.ascontiguousarray(np.asarray(data, dtype=_TYPES[dtype][1]).reshape(shape))
            self.buffers.append(pack_int4(arr).tobytes() if dtype == "int4" else arr.tobytes())
            buffer = len(self.buffers) - 1
        quant = None
        if scale is not None:
            scale = np.atleast_1d(np.asarray(scale, dtype=np.float32))
            zp = np.atleast_1d(np.asarray(0 if zero_point is None else zero_point, dtype=np.int64))
            if zp.size == 1 and scale.size > 1:
                zp = np.full(scale.shape, zp[0], dtype=np.int64)
            quant = (scale, zp, axis)
        self.tensors.append({"name": name, "shape": [int(d) for d in shape], "type": _TYPES[dtype][0],
                             "buffer": buffer, "quant": quant, "variable": variable})
        return len(self.tensors) - 1

    def const(self, name: str, data, dtype: str = "int32", **quant) -> int:
        arr = np.asarray(data)
        return self.tensor(name, arr.shape, dtype, data=arr, **quant)

    def op(self, opname: str, inputs: list[int], outputs: list[int], options: str | None = None,
           version: int = 1, custom_code: str | None = None, **fields) -> None:
        """Add an operator. `options` is the builtin options table name (e.g. "Conv2DOptions"), `fields` its
        fields by schema name (Padding, StrideW, FusedActivationFunction, ...); enum fields accept names.
        A custom operator is opname "CUSTOM" with its `custom_code` (e.g. "ethos-u")."""
        key = (getattr(BuiltinOperator, opname), version, custom_code)
        if key not in self.opcodes:
            self.opcodes.append(key)
        self.ops.append({"opcode": self.opcodes.index(key), "inputs": list(inputs),
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
            if t.get("variable"):
                _m("Tensor").TensorAddIsVariable(b, True)
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
        for code, version, custom in self.opcodes:
            custom_off = b.CreateString(custom) if custom else None
            _m("OperatorCode").OperatorCodeStart(b)
            if custom_off is not None:
                _m("OperatorCode").OperatorCodeAddCustomCode(b, custom_off)
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




# -- the IR -> TFLite ----------------------------------------------------------------------------------------------
# IR kinds written as the TFLite builtin of the same name, without options
_SAME_NAME_OPS = ("abs", "cast", "elu", "hard_swish", "l2_normalization", "maximum", "minimum", "neg", "prelu",
                  "relu", "relu6", "rsqrt", "squared_difference", "tanh")
_ACTIVATION_NAMES = {"none": "NONE", "relu": "RELU", "relu6": "RELU6", "relu_n1_to_1": "RELU_N1_TO_1"}


def _same_pads(in_hw, out_hw, kernel, stride, dilation) -> tuple[int, int, int, int]:
    """TFLite's SAME padding (ComputePaddingHeightWidth) as (top, left, bottom, right)."""
    pads = []
    for size, out, k, s, d in zip(in_hw, out_hw, kernel, stride, dilation):
        total = max((out - 1) * s + (k - 1) * d + 1 - size, 0)
        pads.append((total // 2, total - total // 2))
    return (pads[0][0], pads[1][0], pads[0][1], pads[1][1])


class _Writer:
    def __init__(self, graph):
        self.graph = graph
        self.b = ModelBuilder("mcutool quantized model")
        self.index: dict[str, int] = {}

    def tensor(self, name: str) -> int:
        if name not in self.index:
            t = self.graph.tensor(name)
            q = t.quant
            quant = {} if q is None else dict(scale=q.scale, zero_point=q.zero_point, axis=q.axis or 0)
            self.index[name] = self.b.tensor(name, t.shape, t.dtype, data=t.data, variable=t.variable, **quant)
        return self.index[name]

    def const(self, name: str, values) -> int:
        return self.b.const(name, np.asarray(values, np.int32), "int32")

    def padding(self, op, kernel) -> tuple[str, int]:
        """SAME or VALID for the op's explicit pads, and its input (a PAD op's output when neither fits)."""
        a = op.attrs
        x, out = self.graph.tensor(op.inputs[0]), self.graph.tensor(op.outputs[0])
        pads = tuple(a.pads)
        dilation = getattr(a, "dilation", (1, 1))
        if pads == (0, 0, 0, 0):
            return "VALID", self.tensor(op.inputs[0])
        if pads == _same_pads(x.shape[1:3], out.shape[1:3], kernel, a.stride, dilation):
            return "SAME", self.tensor(op.inputs[0])
        if op.kind in ("avg_pool2d", "max_pool2d"):
            raise UserError(f"layer {op.name!r}: pool padding {pads} is neither SAME nor VALID; TFLite cannot "
                            "express it.")
        top, left, bottom, right = pads
        shape = (x.shape[0], x.shape[1] + top + bottom, x.shape[2] + left + right, x.shape[3])
        q = x.quant
        padded = self.b.tensor(f"{op.name}/padded", shape, x.dtype, scale=q.scale, zero_point=q.zero_point)
        paddings = self.const(f"{op.name}/paddings", [[0, 0], [top, bottom], [left, right], [0, 0]])
        self.b.op("PAD", [self.tensor(op.inputs[0]), paddings], [padded])
        return "VALID", padded

    def op(self, op) -> None:
        a = op.attrs
        outs = [self.tensor(n) for n in op.outputs]
        rest = [self.tensor(n) if n else -1 for n in op.inputs[1:]]
        act = _ACTIVATION_NAMES.get(getattr(a, "activation", "none"))
        if op.kind in ("conv2d", "depthwise_conv2d"):
            w = self.graph.tensor(op.inputs[1])
            padding, x = self.padding(op, w.shape[1:3])
            common = dict(Padding=padding, StrideH=a.stride[0], StrideW=a.stride[1], DilationHFactor=a.dilation[0],
                          DilationWFactor=a.dilation[1], FusedActivationFunction=act)
            if len(rest) < 2:
                rest.append(-1)
            if op.kind == "conv2d":
                self.b.op("CONV_2D", [x] + rest, outs, "Conv2DOptions", **common)
            else:
                self.b.op("DEPTHWISE_CONV_2D", [x] + rest, outs, "DepthwiseConv2DOptions",
                          DepthMultiplier=a.depth_multiplier, **common)
            return
        x = self.tensor(op.inputs[0])
        if op.kind == "fully_connected":
            self.b.op("FULLY_CONNECTED", [x] + rest + [-1] * (2 - len(rest)), outs, "FullyConnectedOptions",
                      FusedActivationFunction=act)
        elif op.kind in ("avg_pool2d", "max_pool2d"):
            if op.kind == "avg_pool2d" and a.count_include_pad and any(a.pads):
                raise UserError(f"layer {op.name!r}: an average pool that counts padding has no TFLite form.")
            padding, x = self.padding(op, a.filter)
            self.b.op("AVERAGE_POOL_2D" if op.kind == "avg_pool2d" else "MAX_POOL_2D", [x], outs, "Pool2DOptions",
                      Padding=padding, StrideH=a.stride[0], StrideW=a.stride[1], FilterHeight=a.filter[0],
                      FilterWidth=a.filter[1], FusedActivationFunction=act)
        elif op.kind in ("add", "sub", "mul"):
            self.b.op(op.kind.upper(), [x] + rest, outs, f"{op.kind.capitalize()}Options", FusedActivationFunction=act)
        elif op.kind == "leaky_relu":
            self.b.op("LEAKY_RELU", [x], outs, "LeakyReluOptions", Alpha=float(a.alpha))
        elif op.kind == "strided_slice":
            consts = [self.const(f"{op.name}/{k}", list(getattr(a, k))) for k in ("begin", "end", "strides")]
            self.b.op("STRIDED_SLICE", [x] + consts, outs, "StridedSliceOptions", BeginMask=a.begin_mask,
                      EndMask=a.end_mask, ShrinkAxisMask=a.shrink_axis_mask)
        elif op.kind == "reshape":
            shape = list(self.graph.tensor(op.outputs[0]).shape)
            self.b.op("RESHAPE", [x, self.const(f"{op.name}/shape", shape)], outs, "ReshapeOptions", NewShape=shape)
        elif op.kind == "softmax":
            self.b.op("SOFTMAX", [x], outs, "SoftmaxOptions", Beta=float(a.beta))
        elif op.kind == "mean":
            self.b.op("MEAN", [x, self.const(f"{op.name}/axes", list(a.axes))], outs, "ReducerOptions",
                      KeepDims=bool(a.keep_dims))
        elif op.kind == "pad":
            self.b.op("PAD", [x, self.const(f"{op.name}/paddings", [list(p) for p in a.pads])], outs)
        elif op.kind == "transpose":
            self.b.op("TRANSPOSE", [x, self.const(f"{op.name}/perm", list(a.perm))], outs)
        elif op.kind == "concat":
            self.b.op("CONCATENATION", [x] + rest, outs, "ConcatenationOptions", Axis=a.axis,
                      FusedActivationFunction=act)
        elif op.kind in ("logistic", "quantize", "dequantize"):
            self.b.op(op.kind.upper(), [x], outs)
        elif op.kind in _SAME_NAME_OPS:  # elementwise and activation operators (issue 10, branch ops8a)
            self.b.op(op.kind.upper(), [x] + rest, outs)
        elif op.kind == "lstm":  # 24 inputs, the absent ones -1 (the TFLite importer's order)
            if a.reset_each_call:
                warnings.warn(f"layer {op.name!r}: the ONNX LSTM starts every inference from the zero state; TFLite "
                              "keeps an LSTM's state across invocations, so reset the interpreter's variable "
                              "tensors before each inference to get the ONNX model's outputs.", stacklevel=2)
            cell_gate = {"tanh": "TANH", "sigmoid": "SIGN_BIT"}[a.activation]  # SIGN_BIT: TFLite's sigmoid
            self.b.op("UNIDIRECTIONAL_SEQUENCE_LSTM", [x] + rest + [-1] * (23 - len(rest)), outs,
                      "UnidirectionalSequenceLSTMOptions", FusedActivationFunction=cell_gate,
                      CellClip=float(a.cell_clip), TimeMajor=bool(a.time_major))
        elif op.kind == "div":
            self.b.op("DIV", [x] + rest, outs, "DivOptions", FusedActivationFunction=act)
        else:
            raise UserError(f"layer {op.name!r} ({op.kind}) has no TFLite form in mcutool's writer.")

    def build(self) -> bytes:
        self.b.inputs = [self.tensor(n) for n in self.graph.inputs]
        for op in self.graph.ops:
            self.op(op)
        self.b.outputs = [self.tensor(n) for n in self.graph.outputs]
        return self.b.build()


def write_tflite(graph) -> bytes:
    """The flatbuffer of `graph` (an IR graph: a quantized model, float I/O with QUANTIZE/DEQUANTIZE or int8)."""
    return _Writer(graph).build()
