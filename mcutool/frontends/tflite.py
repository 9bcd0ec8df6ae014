"""TFLite importer: a .tflite flatbuffer -> the graph IR.

The file is parsed with the `tflite` package (Python bindings of TFLite's schema), never by running an
interpreter. TFLite is NHWC with the IR's weight layouts already, so this only translates: options become typed
attributes, SAME/VALID padding becomes explicit pads, constant operands (paddings, perms, axes) become attributes.
Ops whose inputs are all constants (a Keras model's batch-None shape arithmetic) are folded into constants by
mcutool/fold.py once the graph is read, or earlier when an attribute is read from such an op's output.
"""
from __future__ import annotations

import re
import struct
from pathlib import Path

import numpy as np
import tflite
from tflite.BuiltinOperator import BuiltinOperator as BO
from tflite.TensorType import TensorType as TT

from ..errors import UserError
from ..fold import fold_ops, prune_unread
from ..ir import (AxisAttrs, BatchMatMulAttrs, BlockAttrs, ConcatAttrs, Conv2DAttrs, DepthwiseConv2DAttrs, GeluAttrs,
                  ElementwiseAttrs, FullyConnectedAttrs, GatherAttrs, Graph, LeakyReluAttrs, MeanAttrs, NoAttrs, Op,
                  PadAttrs, Pool2DAttrs, Quant, ResizeAttrs, SliceAttrs, SoftmaxAttrs, StridedSliceAttrs, Tensor,
                  TransposeAttrs, TransposeConv2DAttrs, UnsupportedAttrs, unpack_int4)
from ..ops.lstm import LstmAttrs
from ..ops.slice import resolve_slice
from ..ops.strided_slice import dense_spec, sliced_shape
from ..ops.svdf import SvdfAttrs
from . import refuse_unsupported

_DTYPES = {TT.FLOAT32: "float32", TT.INT32: "int32", TT.UINT8: "uint8", TT.INT64: "int64", TT.BOOL: "bool",
           TT.INT16: "int16", TT.INT8: "int8", TT.INT4: "int4"}
_NUMPY = {"float32": np.float32, "int32": np.int32, "uint8": np.uint8, "int64": np.int64, "bool": np.bool_,
          "int16": np.int16, "int8": np.int8, "int4": np.uint8}  # int4: packed bytes, unpacked on import
_ACTIVATIONS = {0: "none", 1: "relu", 2: "relu_n1_to_1", 3: "relu6"}
_OP_NAMES = {v: k for k, v in vars(BO).items() if not k.startswith("_")}
_TYPE_NAMES = {v: k for k, v in vars(TT).items() if not k.startswith("_")}


# Why a custom operator cannot run, for those whose reason is known.
_CUSTOM_REASONS = {
    "ethos-u": "the model was compiled by Vela for an Arm Ethos-U NPU, and it needs an Ethos-U NPU, which no mcutool "
               "board has; give mcutool the int8 .tflite from before Vela",
}


def load_tflite(path: str | Path, allow_unsupported: bool = False) -> Graph:
    """The model's graph; operators mcutool cannot run are refused in one message (frontends.load_model), or
    with `allow_unsupported` kept as ops of kind "unsupported"."""
    path = Path(path)
    buf = path.read_bytes()
    model = _parse_model(path, buf)
    if model.SubgraphsLength() != 1:
        raise UserError(f"{path.name}: the model has {model.SubgraphsLength()} subgraphs (control flow such as "
                        "WHILE/IF). mcutool compiles single-subgraph models only.")
    try:
        graph = _Importer(path, buf, model).run()
    except (struct.error, TypeError, ValueError) as exc:
        if not _from_flatbuffers(exc):
            raise
        raise _corrupt(path, exc) from None
    if not allow_unsupported:
        supported = ", ".join(sorted(_OP_NAMES[c] for c in _HANDLERS))
        refuse_unsupported(graph, path.name, f"Supported TFLite operators: {supported}.")
    return graph


def _from_flatbuffers(exc: Exception) -> bool:
    """True when `exc` was raised while reading the flatbuffer (its generated accessors), not by mcutool."""
    tb = exc.__traceback__
    while tb.tb_next is not None:
        tb = tb.tb_next
    where = Path(tb.tb_frame.f_code.co_filename).parts
    return "flatbuffers" in where or "tflite" in where or isinstance(exc, struct.error)


def _corrupt(path: Path, exc: Exception) -> UserError:
    return UserError(f"{path.name} could not be read as a TFLite model ({type(exc).__name__}: {exc}); the file "
                     "is truncated or corrupt. Re-export it with the TFLite converter.")


def _parse_model(path: Path, buf: bytes):
    if len(buf) < 8 or buf[4:8] != b"TFL3":
        raise UserError(f"{path.name} is not a TFLite flatbuffer (its file identifier is not 'TFL3'); "
                        "the file is damaged or of another format. Pass a .tflite written by the TFLite converter.")
    try:
        model = tflite.Model.GetRootAsModel(buf, 0)
        model.SubgraphsLength()
        sg = model.Subgraphs(0)
        for i in range(sg.TensorsLength()):
            t = sg.Tensors(i)
            t.ShapeAsNumpy(), t.Name(), t.Buffer()
        for i in range(model.BuffersLength()):
            model.Buffers(i).DataLength()
    except Exception as exc:  # a truncated or corrupt flatbuffer fails inside the generated accessors
        raise _corrupt(path, exc) from None
    return model


def _vector(table, field: str) -> list[int]:
    """An int vector field of a flatbuffer table; [] when absent (the generated XAsNumpy returns 0 then)."""
    return [int(i) for i in getattr(table, f"{field}AsNumpy")()] if getattr(table, f"{field}Length")() else []


def _tflite_padding(padding: int, in_size: int, filt: int, stride: int, dilation: int, out_size: int):
    """TFLite's ComputePaddingHeightWidth: (before, after) for SAME (0), zeros for VALID (1)."""
    if padding == 1:
        return 0, 0
    eff = (filt - 1) * dilation + 1
    total = max((out_size - 1) * stride + eff - in_size, 0)
    return total // 2, total - total // 2


def _produces(kind: str):
    """Mark an importer handler with the IR op kind it makes (the README's operator table reads it)."""
    def mark(handler):
        handler.kind = kind
        return handler
    return mark


class _Importer:
    def __init__(self, path: Path, buf: bytes, model):
        self.path, self.buf, self.model = path, buf, model
        self.sg = model.Subgraphs(0)
        self.graph = Graph(name=path.stem)
        self.names: dict[int, str] = {}
        self.counts: dict[str, int] = {}
        self.folded: set[str] = set()  # tensors constant folding touched (mcutool/fold.py)
        self.shape_operands: set[str] = set()  # TRANSPOSE_CONV output-shape graph inputs, ignored as TFLM does
        self.dynamic: set[str] = set()  # tensors whose shape signature has an unknown (-1) extent

    # -- tensors -------------------------------------------------------------------------------------------------
    def run(self) -> Graph:
        for i in sorted(self._referenced()):
            self._tensor(i)
        self.graph.inputs = [self._tensor_name(i, "the model's inputs") for i in _vector(self.sg, "Inputs")]
        self.graph.outputs = [self._tensor_name(i, "the model's outputs") for i in _vector(self.sg, "Outputs")]
        if not self.graph.inputs or not self.graph.outputs:
            raise UserError(f"{self.path.name}: the model declares no inputs or no outputs; the file is corrupt.")
        self._check_static()
        for i in range(self.sg.OperatorsLength()):
            self._op(i, self.sg.Operators(i))
        self.folded |= fold_ops(self.graph)
        prune_unread(self.graph, self.folded)
        self._drop_unread_inputs(self.shape_operands)
        try:
            self.graph.validate()
        except ValueError as exc:
            raise UserError(f"{self.path.name}: the model's graph is inconsistent ({exc}).") from None
        return self.graph

    def _referenced(self) -> set[int]:
        """The tensors the graph's inputs, outputs and operators name. Others (an LSTM's `intermediates`, which
        TFLite's calibrator leaves behind with no shape) play no part in inference and are not imported."""
        used = {int(i) for i in self.sg.InputsAsNumpy()} | {int(i) for i in self.sg.OutputsAsNumpy()}
        for k in range(self.sg.OperatorsLength()):
            op = self.sg.Operators(k)
            for vec in (op.InputsAsNumpy() if op.InputsLength() else [], op.OutputsAsNumpy()):
                used |= {int(i) for i in vec if i >= 0}
        return {i for i in used if 0 <= i < self.sg.TensorsLength()}

    def _drop_unread_inputs(self, names) -> None:
        """Remove graph inputs that only fed operands mcutool ignores (and that no op reads)."""
        read = {n for op in self.graph.ops for n in op.inputs}
        for n in names:
            if n in self.graph.inputs and n not in read and n not in self.graph.outputs:
                self.graph.inputs.remove(n)
                del self.graph.tensors[n]

    def _tensor(self, i: int) -> None:
        t = self.sg.Tensors(i)
        name = (t.Name() or b"").decode("utf-8", "replace") or f"tensor_{i}"
        if name in self.graph.tensors:
            name = f"{name}:{i}"
        ttype = t.Type()
        if ttype not in _DTYPES:
            kind = _TYPE_NAMES.get(ttype, str(ttype))
            raise UserError(f"{self.path.name}: tensor {name!r} is {kind}. mcutool supports float32, int8, uint8, "
                            "int16, int32 and int64 tensors and int4 weights; convert a float16 model to float32 (or "
                            "quantize it to int8 with the TFLite converter) first.")
        dtype = _DTYPES[ttype]
        shape = tuple(int(d) for d in t.ShapeAsNumpy()) if t.ShapeLength() else ()
        if any(d == 0 or d < -1 for d in shape):
            raise UserError(f"{self.path.name}: tensor {name!r} has shape {list(shape)}; a dimension of 0 or below -1 "
                            "is not a tensor mcutool can compile. The file is corrupt.")
        if t.ShapeSignatureLength() and (t.ShapeSignatureAsNumpy() < 0).any():
            self.dynamic.add(name)
        variable = bool(t.IsVariable())  # a stateful op's state: TFLite Micro resets it, whatever its buffer holds
        data = None if variable else self._buffer(t.Buffer(), dtype, shape, name)
        self.names[i] = name
        self.graph.add_tensor(Tensor(name, shape, dtype, self._quant(t), data, variable))

    def _tensor_name(self, index, where: str) -> str:
        if int(index) not in self.names:
            raise UserError(f"{self.path.name}: {where} refer to tensor {int(index)}, but the model has "
                            f"{self.sg.TensorsLength()} tensors; the file is corrupt.")
        return self.names[int(index)]

    def _buffer(self, index: int, dtype: str, shape, name: str):
        if not 0 <= index < self.model.BuffersLength():
            raise UserError(f"{self.path.name}: tensor {name!r} refers to buffer {index}, but the model has "
                            f"{self.model.BuffersLength()} buffers; the file is corrupt.")
        b = self.model.Buffers(index)
        if b.Offset() > 1:  # large models keep the bytes after the flatbuffer
            if b.Offset() + b.Size() > len(self.buf):
                raise UserError(f"{self.path.name}: the data of tensor {name!r} lies past the end of the file "
                                f"({b.Offset() + b.Size():,} > {len(self.buf):,} bytes); the file is truncated.")
            raw = self.buf[b.Offset():b.Offset() + b.Size()]
        elif b.DataLength():
            raw = b.DataAsNumpy().tobytes()
        else:
            return None
        count = int(np.prod(shape, dtype=np.int64))
        if dtype == "int4":  # two values per byte, low nibble first (TFLite Micro's UnpackDenseInt4IntoInt8)
            if len(raw) != (count + 1) // 2:
                raise UserError(f"{self.path.name}: constant int4 tensor {name!r} holds {len(raw)} bytes but its "
                                f"shape {list(shape)} needs {(count + 1) // 2}; the file is corrupt.")
            return unpack_int4(np.frombuffer(raw, dtype=np.uint8), count).reshape(shape)
        itemsize = np.dtype(_NUMPY[dtype]).itemsize
        if len(raw) % itemsize:
            raise UserError(f"{self.path.name}: constant tensor {name!r} ({dtype}) holds {len(raw)} bytes, not a "
                            f"whole number of {itemsize}-byte values; the file is corrupt.")
        arr = np.frombuffer(raw, dtype=_NUMPY[dtype])
        if arr.size != int(np.prod(shape, dtype=np.int64)):
            raise UserError(f"{self.path.name}: constant tensor {name!r} holds {arr.size} values but its shape "
                            f"{list(shape)} needs {int(np.prod(shape))}; the file is corrupt.")
        return arr.reshape(shape).copy()

    @staticmethod
    def _quant(t) -> Quant | None:
        q = t.Quantization()
        if q is None or q.ScaleLength() == 0:
            return None
        scale = q.ScaleAsNumpy()
        zp = q.ZeroPointAsNumpy() if q.ZeroPointLength() else np.zeros_like(scale, dtype=np.int64)
        return Quant(scale, zp, int(q.QuantizedDimension()) if q.ScaleLength() > 1 else None)

    def _check_static(self) -> None:
        for idx in list(self.sg.InputsAsNumpy()):
            t = self.sg.Tensors(int(idx))
            name = self.names[int(idx)]
            sig = t.ShapeSignatureAsNumpy() if t.ShapeSignatureLength() else t.ShapeAsNumpy()
            shape = t.ShapeAsNumpy() if t.ShapeLength() else []
            dyn = [d for d, s in enumerate(sig) if s < 0 and d > 0] + [d for d, s in enumerate(shape) if s <= 0]
            if dyn:
                raise UserError(f"{self.path.name}: input {name!r} has a dynamic shape (signature {list(sig)}, "
                                f"dimension {dyn[0]} unknown). mcutool plans memory statically and needs every "
                                "dimension fixed: re-export the model with a fixed input shape.")

    # -- ops -----------------------------------------------------------------------------------------------------
    def _opcode(self, op) -> tuple[int, str]:
        if op.OpcodeIndex() >= self.model.OperatorCodesLength():
            raise UserError(f"{self.path.name}: an operator refers to operator code {op.OpcodeIndex()}, but the "
                            f"model has {self.model.OperatorCodesLength()}; the file is corrupt.")
        oc = self.model.OperatorCodes(op.OpcodeIndex())
        code = max(oc.BuiltinCode(), oc.DeprecatedBuiltinCode())
        if code == BO.CUSTOM:
            return code, "custom op " + (oc.CustomCode() or b"?").decode("utf-8", "replace")
        return code, _OP_NAMES.get(code, f"builtin {code}")

    def _options(self, op, cls, required: bool = False):
        """The operator's builtin options as `cls`; None when absent (an error when `required`)."""
        opts = cls()
        table = op.BuiltinOptions()
        if table is not None:
            opts.Init(table.Bytes, table.Pos)
            return opts
        if required:
            raise UserError(f"{self.path.name}: an operator needs its {cls.__name__} (strides, padding, axis) but the "
                            "file has none for it; the file is corrupt.")
        return None

    def _activation(self, options) -> str:
        """The fused activation of an operator's options ("none" without options)."""
        code = options.FusedActivationFunction() if options is not None else 0
        if code not in _ACTIVATIONS:
            raise UserError(f"{self.path.name}: fused activation {code} is not one mcutool knows (none, relu, "
                            "relu_n1_to_1, relu6); the file is corrupt or uses a TANH/SIGN_BIT fused activation, "
                            "which mcutool does not support.")
        return _ACTIVATIONS[code]

    def _const(self, name: str, what: str, layer: str) -> np.ndarray:
        t = self.graph.tensor(name)
        if not t.is_const:  # computed from constants or shapes only (a Keras batch-None shape chain)?
            self.folded |= fold_ops(self.graph)
        if not t.is_const:
            raise UserError(f"{self.path.name}: layer {layer!r} takes its {what} from a computed tensor {name!r}; "
                            "mcutool needs it to be a constant (static shapes).")
        return t.data

    def _name(self, kind: str) -> str:
        n = self.counts.get(kind, 0)
        self.counts[kind] = n + 1
        return f"{kind}_{n}"

    def _op(self, index: int, op) -> None:
        code, opname = self._opcode(op)
        where = f"the inputs or outputs of operator {index} ({opname})"
        ins = [self._tensor_name(i, where) if i != -1 else "" for i in _vector(op, "Inputs")]
        outs = [self._tensor_name(i, where) for i in _vector(op, "Outputs")]
        self._check_outputs(index, opname, outs)
        handler = _HANDLERS.get(code)
        if handler is None:  # kept, so that inspect lists the whole model; load_tflite refuses it
            custom = opname.removeprefix("custom op ")
            attrs = UnsupportedAttrs(opname, _CUSTOM_REASONS.get(custom, "") if code == BO.CUSTOM else "")
            label = re.sub(r"\W+", "_", custom if code == BO.CUSTOM else opname).strip("_").lower() or "op"
            self.graph.ops.append(Op(self._name(label), "unsupported", [n for n in ins if n], outs, attrs))
            return
        try:
            kind, ins, attrs = handler(self, op, ins, outs)
        except (IndexError, ValueError):  # an operand or a dimension the operator must have is missing
            raise UserError(f"{self.path.name}: operator {index} ({opname}) lacks operands or has operands of the "
                            f"wrong rank (inputs {[list(self.graph.tensor(n).shape) if n else None for n in ins]}, "
                            f"output {list(self.graph.tensor(outs[0]).shape)}); the file is corrupt.") from None
        if kind in ("conv2d", "depthwise_conv2d", "fully_connected", "add", "mul") and (len(ins) < 2 or not all(ins[:2])):
            raise UserError(f"{self.path.name}: operator {index} ({opname}) has {len(ins)} input(s); it needs two "
                            "(its input and weights, or both operands). The file is corrupt.")
        if kind in ("conv2d", "depthwise_conv2d", "fully_connected"):
            self._check_channels(kind, ins, outs)
        self._check_hybrid(kind, ins, outs)
        self.graph.ops.append(Op(self._name(kind), kind, ins, outs, attrs))

    def _check_outputs(self, index: int, opname: str, outs: list[str]) -> None:
        """Each tensor is written by one operator, never a model input or a constant."""
        written = {o for op in self.graph.ops for o in op.outputs}
        for o in outs:
            if o in written or o in self.graph.inputs or self.graph.tensor(o).is_const:
                raise UserError(f"{self.path.name}: operator {index} ({opname}) writes tensor {o!r}, which is "
                                "already a model input, a constant or another operator's output; the file is corrupt.")
        if not outs:
            raise UserError(f"{self.path.name}: operator {index} ({opname}) has no output; the file is corrupt.")

    def _check_hybrid(self, kind: str, ins: list[str], outs: list[str]) -> None:
        if kind in ("conv2d", "depthwise_conv2d", "fully_connected", "transpose_conv2d") and len(ins) > 1:
            x, w = self.graph.tensor(ins[0]), self.graph.tensor(ins[1])
            if x.dtype == "float32" and w.dtype in ("int8", "uint8"):
                raise UserError(f"{self.path.name}: the layer producing {outs[0]!r} is hybrid-quantized (float "
                                "activations, int8 weights: the converter's dynamic-range quantization). TFLite Micro "
                                "refuses such models too: its conv and fully connected kernels need input and weights "
                                "of one type (\"Input type: FLOAT32 with filter type: INT8 not supported.\"; older "
                                "releases: \"Hybrid models are not supported on TFLite Micro.\"), and mcutool runs "
                                "integer-only models. Give it the float model with --calib, or convert with full "
                                "integer quantization (a representative dataset and "
                                "tf.lite.OpsSet.TFLITE_BUILTINS_INT8).")

    def _spatial(self, x: str, out: str, filt, stride, dilation, padding):
        _, ih, iw, _ = self.graph.tensor(x).shape
        _, oh, ow, _ = self.graph.tensor(out).shape
        if min(*stride, *dilation, *filt) < 1:
            raise UserError(f"{self.path.name}: the layer producing {out!r} has stride {list(stride)}, dilation "
                            f"{list(dilation)} and filter {list(filt)}; each must be at least 1. The file is corrupt.")
        top, bottom = _tflite_padding(padding, ih, filt[0], stride[0], dilation[0], oh)
        left, right = _tflite_padding(padding, iw, filt[1], stride[1], dilation[1], ow)
        for size, k, st, dl, p0, p1, got in ((ih, filt[0], stride[0], dilation[0], top, bottom, oh),
                                             (iw, filt[1], stride[1], dilation[1], left, right, ow)):
            if (size + p0 + p1 - (k - 1) * dl - 1) // st + 1 != got:
                raise UserError(f"{self.path.name}: the layer producing {out!r} declares output shape "
                                f"{list(self.graph.tensor(out).shape)}, which its input {list(self.graph.tensor(x).shape)}, "
                                "filter, stride and padding do not give; the file is corrupt.")
        return (top, left, bottom, right)

    def _check_channels(self, kind: str, ins: list[str], outs: list[str]) -> None:
        """The weights agree with the input and the output (the reference would compute on until it noticed)."""
        x, w, y = (self.graph.tensor(n).shape for n in (ins[0], ins[1], outs[0]))
        size = int(np.prod(x, dtype=np.int64))
        if kind == "conv2d":
            ok = len(x) == len(w) == len(y) == 4 and x[3] == w[3] and y[3] == w[0]
        elif kind == "depthwise_conv2d":
            ok = len(x) == len(w) == len(y) == 4 and x[3] and w[3] % x[3] == 0 and y[3] == w[3]
        else:  # fully_connected: the input flattened to (batches, in_features)
            ok = len(w) == 2 and w[1] and size % w[1] == 0 and size // w[1] * w[0] == int(np.prod(y, dtype=np.int64))
        if not ok:
            raise UserError(f"{self.path.name}: the {kind} layer producing {outs[0]!r} has input {list(x)}, weights "
                            f"{list(w)} and output {list(y)}, which do not agree; the file is corrupt.")

    @_produces("conv2d")
    def _conv(self, op, ins, outs):
        o = self._options(op, tflite.Conv2DOptions, required=True)
        w = self.graph.tensor(ins[1])
        stride, dil = (o.StrideH(), o.StrideW()), (o.DilationHFactor(), o.DilationWFactor())
        pads = self._spatial(ins[0], outs[0], w.shape[1:3], stride, dil, o.Padding())
        return "conv2d", ins, Conv2DAttrs(stride, dil, pads, self._activation(o))

    @_produces("depthwise_conv2d")
    def _depthwise(self, op, ins, outs):
        o = self._options(op, tflite.DepthwiseConv2DOptions, required=True)
        w = self.graph.tensor(ins[1])
        stride, dil = (o.StrideH(), o.StrideW()), (o.DilationHFactor(), o.DilationWFactor())
        pads = self._spatial(ins[0], outs[0], w.shape[1:3], stride, dil, o.Padding())
        mult = w.shape[3] // self.graph.tensor(ins[0]).shape[3]
        return "depthwise_conv2d", ins, DepthwiseConv2DAttrs(stride, dil, pads, self._activation(o),
                                                             depth_multiplier=mult)

    @_produces("transpose_conv2d")
    def _transpose_conv(self, op, ins, outs):
        """Inputs (output_shape, weights, input[, bias]) -> IR (input, weights[, bias]). The output shape operand
        is dropped, as TFLite Micro ignores it (the output tensor's static shape rules); a constant one must
        agree with that shape, and a graph input holding it is removed from the graph's inputs in `run`."""
        o = self._options(op, tflite.TransposeConvOptions)
        shape_name, w_name, x_name = ins[0], ins[1], ins[2]
        out_shape = self.graph.tensor(outs[0]).shape
        shape_t = self.graph.tensor(shape_name)
        if shape_t.is_const and tuple(int(d) for d in shape_t.data.reshape(-1)) != tuple(out_shape):
            raise UserError(f"{self.path.name}: TRANSPOSE_CONV producing {outs[0]!r} has the output shape operand "
                            f"{list(shape_t.data.reshape(-1))} but its output tensor is {list(out_shape)}.")
        if not shape_t.is_const:
            self.shape_operands.add(shape_name)
        w = self.graph.tensor(w_name)
        _, ih, iw, _ = self.graph.tensor(x_name).shape
        _, oh, ow, _ = out_shape
        stride = (o.StrideH(), o.StrideW())
        pads = []
        for out_size, k, s in ((oh, w.shape[1], stride[0]), (ow, w.shape[2], stride[1])):
            # TFLite's ComputePaddingHeightWidth with the output as the "input" of the equivalent conv
            conv_out = (out_size + s - 1) // s if o.Padding() == 0 else (out_size + s - k) // s
            pads.append(_tflite_padding(o.Padding(), out_size, k, s, 1, conv_out)[0])
        pads += [(ih - 1) * stride[0] + w.shape[1] - pads[0] - oh, (iw - 1) * stride[1] + w.shape[2] - pads[1] - ow]
        act = _ACTIVATIONS[o.FusedActivationFunction()]
        bias = ins[3:4] if len(ins) > 3 and ins[3] else []
        return "transpose_conv2d", [x_name, w_name, *bias], TransposeConv2DAttrs(stride, tuple(pads), act)


    @_produces("fully_connected")
    def _fully_connected(self, op, ins, outs):
        o = self._options(op, tflite.FullyConnectedOptions)
        act = self._activation(o)
        if o is not None and o.WeightsFormat() != 0:
            raise UserError(f"{self.path.name}: FULLY_CONNECTED producing {outs[0]!r} uses shuffled weights; "
                            "mcutool reads the default weights format only.")
        if outs[0] in self.dynamic and len(ins) > 1:  # batch-None rows: the stored shape is a placeholder
            x, w = self.graph.tensor(ins[0]).shape, self.graph.tensor(ins[1]).shape
            keep = o is not None and o.KeepNumDims()
            self._set_shape(outs[0], x[:-1] + w[:1] if keep else (int(np.prod(x)) // w[1], w[0]))
        return "fully_connected", ins, FullyConnectedAttrs(act)

    @_produces("reshape")
    def _reshape(self, op, ins, outs):
        if outs[0] in self.dynamic and len(ins) > 1 and ins[1]:
            # a Keras batch-None reshape (Dense on a 3-D input: Tensordot) stores a placeholder shape such as
            # [1, 1]; its shape operand, folded from SHAPE arithmetic, gives the real extents
            target = [int(d) for d in self._const(ins[1], "shape", outs[0]).reshape(-1)]
            size = self.graph.tensor(ins[0]).size
            if target.count(-1) == 1:
                rest = int(np.prod([d for d in target if d != -1]))
                target[target.index(-1)] = size // rest if rest else 0
            self._set_shape(outs[0], tuple(target))
        return "reshape", ins[:1], NoAttrs()

    def _set_shape(self, name: str, shape: tuple[int, ...]) -> None:
        """Give a tensor with a dynamic shape signature the static shape its producer computes."""
        t = self.graph.tensor(name)
        if any(d <= 0 for d in shape) or (t.quant is not None and t.quant.per_channel):
            raise UserError(f"{self.path.name}: tensor {name!r} (shape signature with unknown extents) would get "
                            f"shape {list(shape)}; mcutool cannot make its shape static.")
        t.shape = tuple(int(d) for d in shape)

    @_produces("softmax")
    def _softmax(self, op, ins, outs):
        o = self._options(op, tflite.SoftmaxOptions)
        return "softmax", ins, SoftmaxAttrs(float(o.Beta()) if o else 1.0)

    @_produces("pad")
    def _pad(self, op, ins, outs):
        pads = self._const(ins[1], "paddings", outs[0]).astype(np.int64)
        if len(ins) > 2 and ins[2]:  # PADV2's constant value must be the output zero point
            value = self._const(ins[2], "pad value", outs[0]).reshape(-1)[0]
            q = self.graph.tensor(outs[0]).quant
            zp = int(q.zero_point[0]) if q is not None else 0
            if int(value) != zp:
                raise UserError(f"{self.path.name}: PADV2 producing {outs[0]!r} pads with {value}, not the zero "
                                "point; mcutool supports padding with zero (the zero point) only.")
        return "pad", ins[:1], PadAttrs(tuple((int(a), int(b)) for a, b in pads))

    @_produces("transpose")
    def _transpose(self, op, ins, outs):
        perm = self._const(ins[1], "permutation", outs[0])
        return "transpose", ins[:1], TransposeAttrs(tuple(int(p) for p in perm))

    @_produces("mean")
    def _mean(self, op, ins, outs):
        o = self._options(op, tflite.ReducerOptions)
        rank = len(self.graph.tensor(ins[0]).shape)
        axes = tuple(sorted(int(a) % rank for a in np.atleast_1d(self._const(ins[1], "axes", outs[0]))))
        return "mean", ins[:1], MeanAttrs(axes, bool(o.KeepDims()) if o else False)

    @_produces("lstm")
    def _lstm(self, op, ins, outs):
        o = self._options(op, tflite.UnidirectionalSequenceLSTMOptions)
        act = {4: "tanh"}.get(o.FusedActivationFunction(), f"activation {o.FusedActivationFunction()}")
        return "lstm", ins, LstmAttrs(act, float(o.CellClip()), bool(o.TimeMajor()))

    @_produces("svdf")
    def _svdf(self, op, ins, outs):
        o = self._options(op, tflite.SVDFOptions)
        return "svdf", ins, SvdfAttrs(int(o.Rank()), _ACTIVATIONS[o.FusedActivationFunction()])

    @_produces("concat")
    def _concat(self, op, ins, outs):
        o = self._options(op, tflite.ConcatenationOptions, required=True)
        rank = len(self.graph.tensor(outs[0]).shape)
        return "concat", ins, ConcatAttrs(o.Axis() % rank, self._activation(o))

    # -- data movement (ops8b) ---------------------------------------------------------------------------------
    @_produces("slice")
    def _slice(self, op, ins, outs):
        begin = self._const(ins[1], "begin", outs[0]).reshape(-1)
        size = self._const(ins[2], "size", outs[0]).reshape(-1)
        try:
            begin, size = resolve_slice(self.graph.tensor(ins[0]).shape, begin, size)
        except ValueError as exc:
            raise UserError(f"{self.path.name}: SLICE producing {outs[0]!r}: {exc}.") from None
        return "slice", ins[:1], SliceAttrs(begin, size)

    @_produces("l2_normalization")
    def _l2_normalization(self, op, ins, outs):
        o = self._options(op, tflite.L2NormOptions)
        if o is not None and o.FusedActivationFunction() != 0:
            raise UserError(f"{self.path.name}: L2_NORMALIZATION producing {outs[0]!r} has a fused activation; "
                            "TFLite Micro (and mcutool) support it without one.")
        return "l2_normalization", ins[:1], NoAttrs()

    @_produces("split")
    def _split(self, op, ins, outs):  # SPLIT: (axis, input)
        return "split", ins[1:2], AxisAttrs(int(self._const(ins[0], "axis", outs[0]).reshape(-1)[0]))

    @_produces("split")
    def _split_v(self, op, ins, outs):  # SPLIT_V: (input, size_splits, axis); the outputs' shapes say the sizes
        return "split", ins[:1], AxisAttrs(int(self._const(ins[2], "axis", outs[0]).reshape(-1)[0]))

    @_produces("broadcast_to")
    def _broadcast_to(self, op, ins, outs):  # the shape operand is the output tensor's shape
        return "broadcast_to", ins[:1], NoAttrs()

    @_produces("depth_to_space")
    def _depth_to_space(self, op, ins, outs):
        o = self._options(op, tflite.DepthToSpaceOptions)
        return "depth_to_space", ins[:1], BlockAttrs(o.BlockSize())

    @_produces("space_to_depth")
    def _space_to_depth(self, op, ins, outs):
        o = self._options(op, tflite.SpaceToDepthOptions)
        return "space_to_depth", ins[:1], BlockAttrs(o.BlockSize())

    @_produces("gather")
    def _gather(self, op, ins, outs):
        o = self._options(op, tflite.GatherOptions)
        return "gather", ins[:2], GatherAttrs(o.Axis() if o else 0, o.BatchDims() if o else 0)

    def _resize(self, op, ins, outs):  # (input, size); the size is the output tensor's H, W
        kind, cls = {BO.RESIZE_BILINEAR: ("resize_bilinear", tflite.ResizeBilinearOptions),
                     BO.RESIZE_NEAREST_NEIGHBOR: ("resize_nearest_neighbor", tflite.ResizeNearestNeighborOptions)}[
                         self._opcode(op)[0]]
        size = [int(v) for v in self._const(ins[1], "size", outs[0]).reshape(-1)]
        if size != list(self.graph.tensor(outs[0]).shape[1:3]):
            raise UserError(f"{self.path.name}: {kind.upper()} producing {outs[0]!r} resizes to {size}, but its "
                            f"output has shape {self.graph.tensor(outs[0]).shape}; the file is inconsistent.")
        o = self._options(op, cls)
        return kind, ins[:1], ResizeAttrs(bool(o.AlignCorners()) if o else False,
                                          bool(o.HalfPixelCenters()) if o else False)

    def _reducer(self, op, ins, outs):  # REDUCE_MAX, SUM, REDUCE_PROD: MEAN's operands and options
        kind, ins, attrs = self._mean(op, ins, outs)
        kinds = {BO.REDUCE_MAX: "reduce_max", BO.SUM: "sum", BO.REDUCE_PROD: "reduce_prod"}
        return kinds[self._opcode(op)[0]], ins, attrs

    def _arg_min_max(self, op, ins, outs):  # (input, axis)
        kind = {BO.ARG_MAX: "arg_max", BO.ARG_MIN: "arg_min"}[self._opcode(op)[0]]
        return kind, ins[:1], AxisAttrs(int(self._const(ins[1], "axis", outs[0]).reshape(-1)[0]))

    @_produces("batch_matmul")
    def _batch_matmul(self, op, ins, outs):
        o = self._options(op, tflite.BatchMatMulOptions)
        if o is not None and o.AsymmetricQuantizeInputs():
            raise UserError(f"{self.path.name}: BATCH_MATMUL producing {outs[0]!r} quantizes its inputs at run time "
                            "(asymmetric_quantize_inputs, a hybrid model); mcutool runs integer-only models.")
        return "batch_matmul", ins[:2], BatchMatMulAttrs(bool(o.AdjX()) if o else False,
                                                         bool(o.AdjY()) if o else False)

    @_produces("fill")
    def _fill(self, op, ins, outs):  # (dims, value)
        return "fill", ins[:2], NoAttrs()

    @_produces("shape")
    def _shape(self, op, ins, outs):
        return "shape", ins[:1], NoAttrs()

    @_produces("pack")
    def _pack(self, op, ins, outs):
        o = self._options(op, tflite.PackOptions)
        return "pack", ins, AxisAttrs(o.Axis() if o else 0)

    @_produces("unpack")
    def _unpack(self, op, ins, outs):
        o = self._options(op, tflite.UnpackOptions)
        return "unpack", ins[:1], AxisAttrs(o.Axis() if o else 0)


    @_produces("gelu")
    def _gelu(self, op, ins, outs):
        o = self._options(op, tflite.GeluOptions)
        return "gelu", ins[:1], GeluAttrs(bool(o.Approximate()) if o else False)

    @_produces("leaky_relu")
    def _leaky_relu(self, op, ins, outs):
        o = self._options(op, tflite.LeakyReluOptions)
        return "leaky_relu", ins[:1], LeakyReluAttrs(float(o.Alpha()) if o else 0.0)

    @_produces("strided_slice")
    def _strided_slice(self, op, ins, outs):
        o = self._options(op, tflite.StridedSliceOptions)
        begin, end, strides = (tuple(int(v) for v in self._const(n, what, outs[0]).reshape(-1))
                               for n, what in zip(ins[1:4], ("begin", "end", "strides")))
        if o is not None and o.Offset():
            raise UserError(f"{self.path.name}: STRIDED_SLICE producing {outs[0]!r} sets `offset` (end relative to "
                            "begin), which TFLite Micro's kernel ignores; mcutool does not run it. Re-export the "
                            "model with absolute end indices.")
        masks = ((o.BeginMask(), o.EndMask(), o.EllipsisMask(), o.NewAxisMask(), o.ShrinkAxisMask()) if o
                 else (0, 0, 0, 0, 0))
        x = self.graph.tensor(ins[0])
        try:
            attrs = dense_spec(len(x.shape), begin, end, strides, *masks)
        except ValueError as exc:
            raise UserError(f"{self.path.name}: STRIDED_SLICE producing {outs[0]!r}: {exc}.") from None
        if not masks[3]:  # no new axis: one op
            return "strided_slice", ins[:1], attrs
        # new axes only insert extents of 1: the dense slice, then a reshape to the model's output
        y = self.graph.tensor(outs[0])
        mid = self.graph.add_tensor(Tensor(f"{outs[0]}/dense", sliced_shape(x.shape, attrs), y.dtype, y.quant))
        self.graph.ops.append(Op(self._name("strided_slice"), "strided_slice", ins[:1], [mid.name], attrs))
        return "reshape", [mid.name], NoAttrs()

def _pool(kind):
    def handler(self, op, ins, outs):
        o = self._options(op, tflite.Pool2DOptions, required=True)
        filt, stride = (o.FilterHeight(), o.FilterWidth()), (o.StrideH(), o.StrideW())
        pads = self._spatial(ins[0], outs[0], filt, stride, (1, 1), o.Padding())
        return kind, ins, Pool2DAttrs(filt, stride, pads, self._activation(o))
    handler.kind = kind
    return handler


def _elementwise(kind, options_cls):
    def handler(self, op, ins, outs):
        o = self._options(op, options_cls)
        return kind, ins, ElementwiseAttrs(self._activation(o))
    handler.kind = kind
    return handler


def _plain(kind):
    def handler(self, op, ins, outs):
        return kind, ins[:1], NoAttrs()
    handler.kind = kind
    return handler


def _binary(kind):
    def handler(self, op, ins, outs):
        return kind, ins[:2], NoAttrs()
    handler.kind = kind
    return handler


def _labelled(kind: str, handler):
    """A handler shared by several builtins, labelled with the IR kind it makes for one of them."""
    def labelled(self, op, ins, outs):
        return handler(self, op, ins, outs)
    labelled.kind = kind
    return labelled


def builtin_kinds() -> dict[str, str]:
    """TFLite builtin operator name -> the IR op kind its importer makes, for every builtin mcutool imports."""
    return {_OP_NAMES[code]: handler.kind for code, handler in _HANDLERS.items()}


_HANDLERS = {
    BO.CONV_2D: _Importer._conv,
    BO.TRANSPOSE_CONV: _Importer._transpose_conv,
    BO.DEPTHWISE_CONV_2D: _Importer._depthwise,
    BO.FULLY_CONNECTED: _Importer._fully_connected,
    BO.AVERAGE_POOL_2D: _pool("avg_pool2d"),
    BO.MAX_POOL_2D: _pool("max_pool2d"),
    BO.ADD: _elementwise("add", tflite.AddOptions),
    BO.SUB: _elementwise("sub", tflite.SubOptions),
    BO.MUL: _elementwise("mul", tflite.MulOptions),
    BO.RESHAPE: _Importer._reshape,
    BO.SQUEEZE: _Importer._reshape,
    BO.EXPAND_DIMS: _Importer._reshape,
    BO.SOFTMAX: _Importer._softmax,
    BO.LOGISTIC: _plain("logistic"),
    BO.PAD: _Importer._pad,
    BO.PADV2: _Importer._pad,
    BO.TRANSPOSE: _Importer._transpose,
    BO.MEAN: _Importer._mean,
    BO.CONCATENATION: _Importer._concat,
    BO.LEAKY_RELU: _Importer._leaky_relu,
    BO.STRIDED_SLICE: _Importer._strided_slice,
    BO.QUANTIZE: _plain("quantize"),
    BO.DEQUANTIZE: _plain("dequantize"),
    BO.SVDF: _Importer._svdf,
    BO.UNIDIRECTIONAL_SEQUENCE_LSTM: _Importer._lstm,
    # data movement, reductions, matmul, constant-folded shape ops (ops8b)
    BO.ARG_MAX: _labelled("arg_max", _Importer._arg_min_max),
    BO.ARG_MIN: _labelled("arg_min", _Importer._arg_min_max),
    BO.BATCH_MATMUL: _Importer._batch_matmul,
    BO.BROADCAST_TO: _Importer._broadcast_to,
    BO.DEPTH_TO_SPACE: _Importer._depth_to_space,
    BO.FILL: _Importer._fill,
    BO.GATHER: _Importer._gather,
    BO.PACK: _Importer._pack,
    BO.REDUCE_MAX: _labelled("reduce_max", _Importer._reducer),
    BO.RESIZE_BILINEAR: _labelled("resize_bilinear", _Importer._resize),
    BO.RESIZE_NEAREST_NEIGHBOR: _labelled("resize_nearest_neighbor", _Importer._resize),
    BO.SHAPE: _Importer._shape,
    BO.SLICE: _Importer._slice,
    BO.SPACE_TO_DEPTH: _Importer._space_to_depth,
    BO.SPLIT: _Importer._split,
    BO.SPLIT_V: _Importer._split_v,
    BO.SUM: _labelled("sum", _Importer._reducer),
    BO.REDUCE_PROD: _labelled("reduce_prod", _Importer._reducer),  # folded: Keras' Tensordot shape arithmetic
    BO.UNPACK: _Importer._unpack,
    # elementwise and activation operators (ops8a)
    BO.ABS: _plain("abs"),
    BO.CAST: _plain("cast"),
    BO.DIV: _elementwise("div", tflite.DivOptions),
    BO.ELU: _plain("elu"),
    BO.GELU: _Importer._gelu,
    BO.HARD_SWISH: _plain("hard_swish"),
    BO.L2_NORMALIZATION: _Importer._l2_normalization,
    BO.MAXIMUM: _binary("maximum"),
    BO.MINIMUM: _binary("minimum"),
    BO.NEG: _plain("neg"),
    BO.PRELU: _binary("prelu"),
    BO.RELU: _plain("relu"),
    BO.RELU6: _plain("relu6"),
    BO.RSQRT: _plain("rsqrt"),
    BO.SQUARED_DIFFERENCE: _binary("squared_difference"),
    BO.TANH: _plain("tanh"),
}
