"""ONNX importer: an .onnx file -> the graph IR (`mcutool.ir`).

In order: read and parse the protobuf -> check every op is one we translate -> `onnx.checker` -> check the graph
inputs are static -> ONNX shape inference -> check every tensor is float32/int8/uint8 (int32 biases, int64 shape
operands) -> constant folding (Constant, Shape->Gather->Concat chains, DequantizeLinear of constant weights ...;
shape inference runs again if that settles a shape it had left open) -> local rewrites (Gemm/MatMul with constant B -> one fully-connected form, MatMul+Add -> bias, BatchNormalization
folded into the Conv/Gemm before it, Relu/Clip fused into their producer) -> translation, node by node.

Layout. ONNX is NCHW, the IR NHWC. An ONNX value may have several IR representations ("reps"): in ONNX's own
order ("same"), as NHWC ("nhwc", 4-D values only), or - for a flattened NHWC tensor - flattened in NHWC order
("flat"; the fully connected layer after it permutes its weight columns instead of transposing the activation).
Reps are made on demand by IR transpose/reshape ops, so a transpose appears only where a layout really changes:
at the graph's border, or before a reshape of a 4-D tensor whose NHWC and NCHW element orders differ. The graph's
own inputs and outputs keep the shape and dtype the model declares.

Quantization. int8 inside: an ONNX uint8 tensor becomes int8 with zero point - 128 (same scale); the graph's own
uint8 inputs/outputs stay uint8 and are converted by IR `quantize` ops at the border. QOperator ops (QLinearConv,
QLinearMatMul, ConvInteger, MatMulInteger, QuantizeLinear, DequantizeLinear) map to IR ops directly (the *Integer
ops to int32 raw-accumulator outputs without a Quant). QDQ (DequantizeLinear -> float op -> QuantizeLinear) folds
into one int8 IR op: a DequantizeLinear of a run-time tensor is kept "virtual" (the float value it stands for is
only materialized, with an IR `dequantize`, if a float op really reads it). Where an int8 IR op fixes its output
quantization (max/average pool, reshape, transpose, pad keep the input's; softmax and logistic give 1/256, -128)
and the model's differs, an IR `quantize` after the op requantizes. Scales and zero points must be constants;
`load_onnx(..., constants=...)` freezes graph inputs that carry them (ONNX's conformance cases do that).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from mcutool.errors import UserError
from mcutool.ops.lstm import LstmAttrs
from mcutool.ir import (AxisAttrs, BatchMatMulAttrs, ConcatAttrs, Conv2DAttrs, DepthwiseConv2DAttrs,
                        ElementwiseAttrs, FullyConnectedAttrs, GatherAttrs, Graph, LutAttrs, MeanAttrs, NoAttrs, Op, PadAttrs,
                        Pool2DAttrs, Quant, ResizeAttrs, SoftmaxAttrs, StridedSliceAttrs, Tensor, TransposeAttrs,
                        UnsupportedAttrs)

# ops translated into IR ops (BatchNormalization/Relu/Clip only by folding into the op before them)
COMPUTE_OPS = (
    "Conv", "QLinearConv", "ConvInteger", "Gemm", "MatMul", "QLinearMatMul", "MatMulInteger", "QuantizeLinear",
    "DequantizeLinear", "Add", "Sub", "Mul", "Div", "Concat", "MaxPool", "AveragePool", "GlobalAveragePool",
    "GlobalMaxPool", "ReduceMean", "Softmax", "Sigmoid", "Sign", "Relu", "Clip", "BatchNormalization", "Flatten",
    "Reshape", "Squeeze", "Unsqueeze", "Transpose", "Pad", "Identity", "Dropout", "Constant", "Split", "Slice",
    "Gather", "HardSwish", "Resize", "Upsample", "HardSigmoid", "LayerNormalization", "Pow", "LSTM",
)
# ops accepted only where they can be evaluated at import time (shape computations on constants)
FOLD_ONLY_OPS = (
    "Shape", "Size", "Gather", "Slice", "Cast", "ConstantOfShape", "Range", "Expand", "Equal", "Where", "Neg",
    "Floor", "Ceil", "Sqrt", "Reciprocal", "ReduceProd", "Min", "Max", "Tile", "Mod",
)

_ELEM_TYPES = {TensorProto.FLOAT: "float32", TensorProto.INT8: "int8", TensorProto.UINT8: "uint8",
               TensorProto.INT32: "int32", TensorProto.INT64: "int64", TensorProto.BOOL: "bool"}

NCHW_TO_NHWC = (0, 2, 3, 1)  # ir = onnx.transpose(NCHW_TO_NHWC)
NHWC_TO_NCHW = (0, 3, 1, 2)
NCL_TO_NLC = (0, 2, 1)  # its own inverse

_PASS_THROUGH = ("Reshape", "Flatten", "Squeeze", "Unsqueeze", "Transpose", "MaxPool", "GlobalMaxPool", "Concat",
                 "Split", "Slice", "Gather", "Resize", "Upsample",
                 "Pad")
# ops computed elementwise from their first k inputs (the rest: constant attributes-as-inputs): in a QDQ island
# whose values all depend on one int8 tensor they become one lookup table
_ELEMENTWISE = {op: 1 for op in ("Sigmoid", "Tanh", "HardSigmoid", "HardSwish", "Erf", "Gelu", "Relu", "LeakyRelu",
                                 "Elu", "Selu", "Celu", "Softplus", "Softsign", "Exp", "Log", "Neg", "Abs", "Sqrt",
                                 "Reciprocal", "Floor", "Ceil", "Round", "Mish", "ThresholdedRelu", "Clip")}
_ELEMENTWISE.update({op: 2 for op in ("Add", "Sub", "Mul", "Div", "Pow", "Min", "Max")})
# elementwise ops imported only inside such an island, or a float model's elementwise function of one tensor (as
# part of one lookup table)
ISLAND_OPS = tuple(op for op in _ELEMENTWISE if op not in COMPUTE_OPS)
_WEIGHTED_KINDS = ("conv2d", "depthwise_conv2d", "fully_connected", "transpose_conv2d")  # inputs: x, weights, bias
_FUSES_ACTIVATION = ("Conv", "_FC", "Add", "Sub", "Mul", "Div", "MaxPool", "AveragePool", "GlobalMaxPool", "Concat")


def load_onnx(path: str | Path, constants: dict[str, np.ndarray] | None = None,
              allow_unsupported: bool = False, input_shapes: dict[str, tuple[int, ...]] | None = None) -> Graph:
    """Import an ONNX model file as a validated IR graph.

    `constants` freezes graph inputs to the given values (they become initializers) - for models that take their
    quantization parameters (scales, zero points) as inputs, which the IR needs to know at compile time.
    `allow_unsupported` (for inspect): a node of an op type mcutool does not import becomes an IR op of kind
    "unsupported" instead of an error (other import errors still stop it).
    `input_shapes` fixes the shapes of inputs with dynamic dimensions (--input-shape NAME=1,3,96,96).
    """
    path = Path(path)
    model = _read_model(path)
    if constants:
        _freeze_inputs(model, constants, path)
    if input_shapes:
        _fix_input_shapes(model, input_shapes, path)
    if not allow_unsupported:
        _check_op_support(model, path)
    _run_checker(model, path)
    _check_static_inputs(model, path)
    model = _infer_shapes(model, path)
    _check_dtypes(model, path)
    graph = _Importer(model, path, allow_unsupported).run()
    graph.validate()
    return graph


# ---------------------------------------------------------------------------------------------------------------
# reading and checking the file


def _read_model(path: Path) -> onnx.ModelProto:
    if not path.exists():
        raise UserError(f"ONNX model file '{path}' does not exist. Check the path (relative paths are taken from "
                        f"the current directory, {Path.cwd()}).")
    if not path.is_file():
        raise UserError(f"'{path}' is not a file; give the path of an .onnx model file.")
    data = path.read_bytes()
    bad = (f"'{path}' is not a valid ONNX model: ")
    hint = (" The file may be truncated or corrupted (re-export or re-download it), or be another format "
            "(a .tflite file goes through the TFLite importer).")
    if not data:
        raise UserError(bad + "the file is empty." + hint)
    model = onnx.ModelProto()
    try:
        model.ParseFromString(data)
    except Exception as e:  # google.protobuf.message.DecodeError and relatives
        raise UserError(bad + f"it cannot be parsed as an ONNX protobuf ({e})." + hint) from None
    if not model.HasField("graph") or model.ir_version <= 0 or not model.opset_import or not model.graph.output:
        raise UserError(bad + "it parsed as a protobuf but holds no ONNX graph (no IR version, opset or outputs)."
                        + hint)
    if any(t.data_location == TensorProto.EXTERNAL for t in model.graph.initializer):
        try:
            from onnx.external_data_helper import load_external_data_for_model
            load_external_data_for_model(model, str(path.parent))
        except Exception as e:
            raise UserError(f"'{path}' keeps its weights in external data files that could not be read ({e}). "
                            f"Keep the data files beside the model, as they were exported.") from None
    return model


def _freeze_inputs(model: onnx.ModelProto, constants: dict, path: Path) -> None:
    inputs = {vi.name: vi for vi in model.graph.input}
    for name, value in constants.items():
        if name not in inputs:
            raise UserError(f"'{path}': cannot freeze '{name}': the model has no graph input of that name "
                            f"(its inputs: {', '.join(inputs)}).")
        np_dtype = helper.tensor_dtype_to_np_dtype(inputs[name].type.tensor_type.elem_type)
        model.graph.initializer.append(numpy_helper.from_array(np.asarray(value, dtype=np_dtype), name))
        model.graph.input.remove(inputs[name])


def _fix_input_shapes(model: onnx.ModelProto, shapes: dict[str, tuple[int, ...]], path: Path) -> None:
    """Give each named input the shape the user fixed; its static dimensions must agree."""
    inputs = {vi.name: vi for vi in model.graph.input}
    for name, shape in shapes.items():
        if name not in inputs:
            raise UserError(f"--input-shape {name}=...: '{path}' has no input of that name (its inputs: "
                            f"{', '.join(inputs)}).")
        dims = inputs[name].type.tensor_type.shape.dim
        if len(dims) != len(shape):
            raise UserError(f"--input-shape {name}={','.join(map(str, shape))}: input '{name}' has {len(dims)} "
                            f"dimensions, {len(shape)} given.")
        for axis, (d, size) in enumerate(zip(dims, shape)):
            if d.HasField("dim_value") and d.dim_value > 0 and d.dim_value != size:
                raise UserError(f"--input-shape {name}={','.join(map(str, shape))}: axis {axis} of input '{name}' "
                                f"is fixed to {d.dim_value} in the model, not {size}.")
            d.Clear()
            d.dim_value = size


def _supported_list() -> str:
    return (f"Supported ops: {', '.join(COMPUTE_OPS)} (BatchNormalization only right after a Conv/Gemm, Relu/Clip "
            f"only fused into the op before them); in constant shape computations also {', '.join(FOLD_ONLY_OPS)}; "
            f"in quantized (QDQ) models, between DequantizeLinear and QuantizeLinear, also {', '.join(ISLAND_OPS)}.")


def _unsupported(path: Path, name: str, op_type: str, why: str = "") -> UserError:
    if op_type in COMPUTE_OPS or op_type in FOLD_ONLY_OPS or op_type in ISLAND_OPS:  # known, not in this form
        what = f"node '{name}' ({op_type}) cannot be imported: {why}."
    else:
        what = f"node '{name}' uses the ONNX op {op_type}{f' ({why})' if why else ''}, which mcutool cannot import."
    return UserError(f"'{path}': {what} {_supported_list()} Replace the op (or re-export the model without it) "
                     f"and try again.")


# why an op mcutool does not import is not imported, where there is more to say than "not supported"
_WHY_NOT = {
    "GRU": "mcutool's only recurrent layer is TFLite Micro's integer LSTM (UNIDIRECTIONAL_SEQUENCE_LSTM, 8x8->16); "
           "a GRU has no integer kernel: train with an LSTM layer instead",
    "RNN": "mcutool's only recurrent layer is TFLite Micro's integer LSTM",
}


def _check_op_support(model: onnx.ModelProto, path: Path) -> None:
    """One error naming every op mcutool cannot import: each op type, how many nodes use it, the first one."""
    ok = set(COMPUTE_OPS) | set(FOLD_ONLY_OPS) | set(ISLAND_OPS)  # ISLAND_OPS: checked on translation
    groups: dict[str, list[str]] = {}
    for i, node in enumerate(model.graph.node):
        name = node.name or f"{node.op_type}_{i}"
        if node.domain not in ("", "ai.onnx"):
            groups.setdefault(f"{node.domain}.{node.op_type} (a custom domain)", []).append(name)
        elif node.op_type not in ok:
            groups.setdefault(node.op_type, []).append(name)
    if groups:
        listed = "; ".join((f"{op}: {len(names)} nodes, the first '{names[0]}'" if len(names) > 1 else
                            f"{op}: 1 node, '{names[0]}'") + (f" ({_WHY_NOT[op]})" if op in _WHY_NOT else "")
                           for op, names in groups.items())
        kinds = f"{len(groups)} ONNX op types" if len(groups) > 1 else "an ONNX op type"
        raise UserError(f"'{path}': {kinds} of the model cannot be imported by mcutool: {listed}. "
                        f"{_supported_list()} Replace the ops (or re-export the model without them) and try again.")


def _run_checker(model: onnx.ModelProto, path: Path) -> None:
    try:
        onnx.checker.check_model(model)
    except Exception as e:
        msg = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise UserError(f"'{path}' fails ONNX's model checker (onnx.checker.check_model): {msg}. The model is "
                        f"malformed; re-export it with a current exporter.") from None


def _dims(vi: onnx.ValueInfoProto, unknown=None) -> tuple | None:
    """A value's declared/inferred shape, `unknown` for each symbolic or missing dimension; None: unknown rank."""
    tt = vi.type.tensor_type
    if not tt.HasField("shape"):
        return None
    return tuple(d.dim_value if d.HasField("dim_value") and d.dim_value > 0 else unknown for d in tt.shape.dim)


def _check_static_inputs(model: onnx.ModelProto, path: Path) -> None:
    inits = {t.name for t in model.graph.initializer}
    for vi in model.graph.input:
        if vi.name in inits:
            continue
        tt = vi.type.tensor_type
        if not tt.HasField("shape"):
            raise UserError(f"'{path}': input '{vi.name}' has no declared shape (unknown rank); mcutool needs every "
                            f"input shape fixed at compile time. Re-export the model with a fixed input shape.")
        dims = [d.dim_value if d.HasField("dim_value") and d.dim_value > 0 else (d.dim_param or "?")
                for d in tt.shape.dim]
        dynamic = [f"'{d}' at axis {axis}" for axis, d in enumerate(dims) if not isinstance(d, int)]
        if dynamic:
            example = ",".join(str(d) if isinstance(d, int) else "1" if axis == 0 else "N"
                               for axis, d in enumerate(dims))
            raise UserError(
                f"'{path}': input '{vi.name}' has dynamic dimensions ({', '.join(dynamic)}; shape {dims}); mcutool "
                f"compiles for one fixed shape. Give it with --input-shape {vi.name}={example} (each N the size "
                f"the firmware takes, e.g. the height and width it was trained at; the batch is 1), or re-export "
                f"the model with fixed sizes.")


def _infer_shapes(model: onnx.ModelProto, path: Path) -> onnx.ModelProto:
    try:
        return onnx.shape_inference.infer_shapes(model, check_type=True, strict_mode=True, data_prop=True)
    except Exception as e:
        msg = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise UserError(f"'{path}': ONNX shape inference failed: {msg}. The model's shapes are inconsistent; "
                        f"re-export it with a current exporter.") from None


def _check_dtypes(model: onnx.ModelProto, path: Path) -> None:
    g = model.graph
    typed = [(vi.name, vi.type.tensor_type.elem_type) for vi in (*g.input, *g.output, *g.value_info)]
    typed += [(t.name, t.data_type) for t in g.initializer]
    for node in g.node:
        for a in node.attribute:
            if a.type == onnx.AttributeProto.TENSOR:
                typed.append((node.output[0] if node.output else node.name, a.t.data_type))
    for name, et in typed:
        if et == TensorProto.UNDEFINED or et in _ELEM_TYPES:
            continue
        dt = helper.tensor_dtype_to_np_dtype(et).name if et != TensorProto.BFLOAT16 else "bfloat16"
        raise UserError(f"'{path}': tensor '{name}' is {dt}; mcutool supports only float32, int8 and uint8 tensors "
                        f"(with int32 biases and int64 shape operands). Re-export the model in float32 (or quantize "
                        f"it to int8) and import that.")


# ---------------------------------------------------------------------------------------------------------------
# the importer's own data


@dataclass
class _QInfo:
    """Where a constant's real value came from: ints dequantized with scale/zero point (per channel on axis)."""

    ints: np.ndarray
    scale: np.ndarray
    zp: np.ndarray
    axis: int | None


@dataclass
class _Const:
    value: np.ndarray  # the (real) value ONNX computes with
    q: _QInfo | None = None


@dataclass
class _QP:
    scale: np.ndarray | None  # None: not known (ConvInteger/MatMulInteger declare only a zero point)
    zp: np.ndarray
    axis: int | None


@dataclass
class _Node:
    op: str
    name: str
    inputs: list[str]
    outputs: list[str]
    attrs: dict
    proto: onnx.NodeProto | None = None
    act: str = "none"
    skip: bool = False


@dataclass
class _Val:
    """One ONNX value and the IR tensors that hold it."""

    name: str
    shape: tuple
    dtype: str  # ONNX dtype
    const: _Const | None = None
    deq: _Val | None = None  # a virtual float value: DequantizeLinear of this int value
    reps: dict = field(default_factory=dict)  # layout ('same' | 'nhwc' | 'flat') -> IR tensor (internal dtype)
    border: str | None = None  # a uint8 graph input: the IR input tensor, before conversion to int8
    flat: tuple | None = None  # (N, C, H, W) of the NCHW tensor whose NHWC flattening the 'flat' rep holds


def _idt(dtype: str) -> str:
    """The IR dtype the importer uses inside for an ONNX dtype."""
    return "int8" if dtype == "uint8" else dtype


def _layout_perm(layout: str, rank: int) -> tuple:
    """ir = onnx.transpose(perm) for a rep of this layout ("nlc": a 3-D (N, C, L) value channels-last, as a 1-D
    convolution reads and writes it)."""
    return NCHW_TO_NHWC if layout == "nhwc" else NCL_TO_NLC if layout == "nlc" else tuple(range(rank))


def _to_int8(ints: np.ndarray, zp: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    if ints.dtype == np.uint8:
        return (ints.astype(np.int16) - 128).astype(np.int8), np.asarray(zp, np.int64) - 128
    return ints, np.asarray(zp, np.int64)


def _cmap(c: _Const, f, axis=None) -> _Const:
    """Apply an array rearrangement to a constant and its integer origin (axis: the quant axis afterwards)."""
    q = None
    if c.q is not None:
        q = _QInfo(f(c.q.ints), c.q.scale, c.q.zp, axis if c.q.axis is not None else None)
    return _Const(f(c.value), q)


def _ctranspose(c: _Const, perm) -> _Const:
    axis = list(perm).index(c.q.axis) if c.q is not None and c.q.axis is not None else None
    return _cmap(c, lambda a: np.ascontiguousarray(a.transpose(perm)), axis)


def _same_quant(a: Quant | None, b: Quant | None) -> bool:
    if a is None or b is None:
        return a is b
    return (a.scale.shape == b.scale.shape and np.array_equal(a.scale.astype(np.float32), b.scale.astype(np.float32))
            and np.array_equal(a.zero_point, b.zero_point) and (a.axis == b.axis or not a.per_channel))


# ---------------------------------------------------------------------------------------------------------------


class _Importer:
    def __init__(self, model: onnx.ModelProto, path: Path, allow_unsupported: bool = False):
        self.model = model
        self.allow_unsupported = allow_unsupported
        self.path = path
        self.opset = next((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")), 1)
        self.g = Graph(name=model.graph.name or path.stem)
        self.shapes: dict[str, tuple | None] = {}
        self.dtypes: dict[str, str] = {}
        self.consts: dict[str, _Const] = {}
        self.alias: dict[str, str] = {}
        self.vals: dict[str, _Val] = {}
        self.nodes: list[_Node] = []
        self.qp: dict[str, _QP] = {}
        self.uf: dict[str, str] = {}
        self.derived: dict[tuple, str] = {}
        self.op_names: set[str] = set()
        self.graph_outputs = [o.name for o in model.graph.output]
        self.out_set: set[str] = set()  # the graph outputs, alias-resolved
        self.reserved: set[str] = set()  # every ONNX value name: generated IR names avoid them

    def run(self) -> Graph:
        self._collect_types()
        self._make_nodes()
        self._fold_constants()
        self._reinfer_shapes()
        self.out_set = {self._resolve(o) for o in self.graph_outputs}
        self._rewrite_fc()
        self._fold_fc_bias_add()
        self._fold_batchnorm()
        self._zero_biases()
        self._move_qdq_through_data_movement()
        self._drop_identity_qdq()
        self._channel_permutations()
        self._qdq_lookup_tables()
        self._decompose_layer_norm()
        self._normalization_forms()
        self._float_functions()
        self._decompose_hard_sigmoid()
        self._fuse_activations()
        self._quant_params()
        self._graph_inputs()
        handlers = self._handlers()
        for node in self.nodes:
            if node.skip:
                continue
            if node.op in FOLD_ONLY_OPS and node.op not in handlers:
                live = next((i for i in node.inputs if i and i not in self.consts), "?")
                raise _unsupported(self.path, node.name, node.op, f"here it reads the run-time tensor '{live}'; "
                                   f"mcutool evaluates {node.op} only on constants, at import time")
            if node.op in ISLAND_OPS and node.op not in handlers and not self.allow_unsupported:
                raise _unsupported(self.path, node.name, node.op, "mcutool imports it only as part of an "
                                   "elementwise function of one tensor (with constants of one value), which becomes "
                                   "one int8 lookup table; here it reads several run-time tensors or a constant "
                                   "of several values")
            handlers.get(node.op, self._unsupported_node)(node)
        self._graph_outputs()
        self._collapse_reshapes()
        self._canonical_names()
        return self.g

    # -- errors ---------------------------------------------------------------------------------------------------
    def _err(self, node: _Node, what: str) -> UserError:
        return UserError(f"'{self.path}': node '{node.name}' ({node.op.lstrip('_')}): {what}")

    # -- types and shapes -----------------------------------------------------------------------------------------
    def _collect_types(self) -> None:
        g = self.model.graph
        self._take_types(g)
        for t in g.initializer:
            self.shapes[t.name] = tuple(t.dims)
            self.dtypes[t.name] = _ELEM_TYPES.get(t.data_type, "float32")
            try:
                self.consts[t.name] = _Const(numpy_helper.to_array(t))
            except ValueError as exc:
                raise UserError(f"'{self.path}': initializer '{t.name}' (dims {list(t.dims)}) does not hold the data "
                                f"its dims and type say ({exc}); the file is corrupt.") from None
        self.reserved = set(self.shapes) | {o for n in g.node for o in (*n.input, *n.output)}

    def _take_types(self, g: onnx.GraphProto) -> None:
        """Shapes and dtypes from a graph's value infos; a static shape replaces one that was not."""
        for vi in (*g.input, *g.output, *g.value_info):
            s, old = _dims(vi), self.shapes.get(vi.name)
            if old is None or None in old:
                self.shapes[vi.name] = s if s is not None else old
            et = vi.type.tensor_type.elem_type
            if et in _ELEM_TYPES:
                self.dtypes.setdefault(vi.name, _ELEM_TYPES[et])

    def _proto(self, node: _Node) -> onnx.NodeProto:
        """The node's NodeProto with its (alias-resolved) inputs."""
        p = onnx.NodeProto()
        p.CopyFrom(node.proto)
        del p.input[:]
        p.input.extend(node.inputs)
        return p

    def _make_nodes(self) -> None:
        used = set()
        for i, p in enumerate(self.model.graph.node):
            name = p.name or f"{p.op_type}_{i}"
            while name in used:
                name += "_"
            used.add(name)
            attrs = {}
            for a in p.attribute:
                v = helper.get_attribute_value(a)
                if isinstance(v, bytes):
                    v = v.decode()
                attrs[a.name] = v
            self.nodes.append(_Node(p.op_type, name, list(p.input), list(p.output), attrs, p))

    def _static_shape(self, name: str) -> tuple:
        s = self.shapes.get(name)
        if s is None or None in s:
            raise UserError(f"'{self.path}': the shape of tensor '{name}' is not static after shape inference "
                            f"({'unknown rank' if s is None else list(s)}); mcutool needs every shape fixed at "
                            f"compile time. Re-export the model with fixed input sizes (no dynamic axes).")
        return s

    # -- constant folding -----------------------------------------------------------------------------------------
    def _resolve(self, name: str) -> str:
        while name in self.alias:
            name = self.alias[name]
        return name

    def _fold_constants(self) -> None:
        """Evaluate what constants determine, in passes: a Shape whose input's shape inference could not fix yet
        (it follows a Reshape whose target an earlier Shape -> Concat chain computes, as in the TorchScript export
        of nn.MultiheadAttention) waits for shape inference with the constants folded so far."""
        while True:
            count = len(self.nodes)
            self._fold_pass()
            if len(self.nodes) == count:
                return
            self._reinfer_shapes()

    def _fold_pass(self) -> None:
        from onnx.reference import ReferenceEvaluator

        read = {i for n in self.nodes for i in n.inputs} | set(self.graph_outputs)
        kept = []
        for node in self.nodes:
            node.inputs = [self._resolve(i) if i else "" for i in node.inputs]
            op, ins = node.op, node.inputs
            if op == "Identity" or op == "Dropout":
                if op == "Dropout" and any(o and o in read for o in node.outputs[1:]):
                    raise _unsupported(self.path, node.name, op, "its mask output is used")
                self.alias[node.outputs[0]] = ins[0]
                continue
            if op == "Constant":
                self.consts[node.outputs[0]] = _Const(self._constant_attr(node))
                continue
            if op in ("Shape", "Size") and ins[0] not in self.consts:
                known = self.shapes.get(ins[0])
                if known is None or None in known:  # after the next shape inference (or an error in translation)
                    kept.append(node)
                    continue
                shape = np.array(known, dtype=np.int64)
                if op == "Size":
                    self.consts[node.outputs[0]] = _Const(np.array(int(np.prod(shape)), dtype=np.int64))
                else:
                    r = len(shape)
                    start, end = node.attrs.get("start", 0), node.attrs.get("end", r)
                    self.consts[node.outputs[0]] = _Const(shape[slice(start, end)])
                continue
            if op == "DequantizeLinear" and ins[0] in self.consts:
                self.consts[node.outputs[0]] = self._dequantize_const(node)
                continue
            if ins and all(i == "" or i in self.consts for i in ins) and any(ins):
                try:
                    ev = ReferenceEvaluator(self._proto(node), opsets={"": self.opset})
                    outs = ev.run(None, {i: self.consts[i].value for i in ins if i})
                except Exception as e:
                    raise self._err(node, f"evaluating it on its constant inputs failed ({e}).") from None
                for o, v in zip(node.outputs, outs):
                    self.consts[o] = _Const(np.asarray(v))
                continue
            kept.append(node)
        self.nodes = kept

    def _reinfer_shapes(self) -> None:
        """Shape inference once more with the folded constants as initializers, when the first pass left a shape
        open (a Reshape whose target shape a Shape->Gather->Concat chain computes, say)."""
        def static(n):
            s = self.shapes.get(n)
            return s is not None and None not in s

        if all(static(o) for n in self.nodes for o in n.outputs if o):
            return
        g = self.model.graph
        protos = [self._proto(n) for n in self.nodes]
        produced = {o for n in self.nodes for o in n.outputs} | {vi.name for vi in g.input}
        for o in self.graph_outputs:
            if o not in produced and self._resolve(o) not in self.consts:
                protos.append(helper.make_node("Identity", [self._resolve(o)], [o]))
        used = {i for p in protos for i in p.input if i in self.consts}
        inits = [numpy_helper.from_array(np.asarray(self.consts[i].value), i) for i in sorted(used)]
        inputs = [vi for vi in g.input if vi.name not in self.consts]
        outputs = [vi for vi in g.output if self._resolve(vi.name) not in self.consts]
        m = helper.make_model(helper.make_graph(protos, g.name, inputs, outputs, inits),
                              opset_imports=self.model.opset_import)
        m.ir_version = self.model.ir_version
        self._take_types(_infer_shapes(m, self.path).graph)

    def _constant_attr(self, node: _Node) -> np.ndarray:
        a = node.attrs
        if "value" in a:
            return numpy_helper.to_array(a["value"])
        for key, dt in (("value_float", np.float32), ("value_floats", np.float32), ("value_int", np.int64),
                        ("value_ints", np.int64)):
            if key in a:
                return np.array(a[key], dtype=dt)
        raise self._err(node, "only tensor, float and int Constants are supported.")

    def _qparam(self, node: _Node, idx: int, what: str) -> np.ndarray | None:
        """A scale or zero point operand: must be constant. None when the optional operand is absent."""
        name = node.inputs[idx] if idx < len(node.inputs) else ""
        if not name:
            return None
        if name not in self.consts:
            raise self._err(node, f"its {what} '{name}' is not a constant (a graph input or a computed tensor). "
                                  f"mcutool needs quantization parameters at compile time: make '{name}' an "
                                  f"initializer in the model (or pass it in load_onnx(..., constants=...)).")
        return np.asarray(self.consts[name].value)

    def _axis_param(self, node: _Node, rank: int, scale: np.ndarray) -> int | None:
        if scale.size <= 1:
            return None
        if node.attrs.get("block_size", 0):
            raise self._err(node, "blocked quantization (block_size) is not supported.")
        return node.attrs.get("axis", 1) % max(rank, 1)

    def _dequantize_const(self, node: _Node) -> _Const:
        x = np.asarray(self.consts[node.inputs[0]].value)
        scale = self._qparam(node, 1, "scale").astype(np.float64)
        zp = self._qparam(node, 2, "zero point")
        zp = np.zeros(1, np.int64) if zp is None else zp.astype(np.int64)
        axis = self._axis_param(node, x.ndim, scale)
        bshape = [1] * x.ndim
        if axis is not None:
            bshape[axis] = -1
        s = scale.reshape(bshape) if axis is not None else scale.reshape(())
        z = zp.reshape(bshape) if axis is not None else zp.reshape(())
        value = ((x.astype(np.int64) - z) * s).astype(np.float32)
        return _Const(value, _QInfo(x, scale.ravel(), zp.ravel(), axis))

    # -- local rewrites -------------------------------------------------------------------------------------------
    def _maps(self):
        prod, cons = {}, {}
        for n in self.nodes:
            for o in n.outputs:
                prod[o] = n
            for i in n.inputs:
                if i:
                    cons.setdefault(i, []).append(n)
        return prod, cons

    def _add_const(self, base: str, c: _Const) -> str:
        """A new ONNX-level constant (a rewritten weight); its IR tensor gets a name of its own later."""
        name = self._fresh(f"{base}/onnx")
        self.reserved.add(name)
        self.consts[name] = c
        self.shapes[name] = c.value.shape
        self.dtypes[name] = c.value.dtype.name
        return name

    def _rewrite_fc(self) -> None:
        """Gemm and MatMul -> '_FC' nodes: inputs (A, W (N,K) or B (K,N) when attrs['wT'], bias (N,) or '')."""
        for node in self.nodes:
            if node.op == "Gemm":
                a, b = node.inputs[0], node.inputs[1]
                c = node.inputs[2] if len(node.inputs) > 2 else ""
                alpha, beta = node.attrs.get("alpha", 1.0), node.attrs.get("beta", 1.0)
                if node.attrs.get("transA", 0):
                    raise self._err(node, "Gemm with transA=1 is not supported; re-export with A untransposed.")
                trans_b = node.attrs.get("transB", 0)
                n_out = self._static_shape(node.outputs[0])[-1]
                if b in self.consts:
                    w = self.consts[b] if trans_b else _ctranspose(self.consts[b], (1, 0))
                    if alpha != 1.0:
                        if w.q is not None:
                            raise self._err(node, "alpha != 1 with quantized weights is not supported.")
                        w = _Const(w.value * np.float32(alpha))
                    w_name, wt = self._add_const(f"{node.name}/weights", w), False
                else:
                    if alpha != 1.0:
                        raise self._err(node, "alpha != 1 with a run-time B is not supported.")
                    w_name, wt = b, not trans_b
                bias = self._fc_bias(node, c, beta, n_out) if c else ""
                node.op, node.inputs, node.attrs = "_FC", [a, w_name, bias], {"wT": wt}
            elif node.op == "MatMul":
                a, b = node.inputs
                if a in self.consts:
                    raise self._err(node, "MatMul with a constant first operand is not supported.")
                b_shape = self._static_shape(b)
                if b not in self.consts:  # between activations (attention): a batched matmul
                    node.op = "_BMM"
                    continue
                if len(b_shape) != 2:
                    raise self._err(node, f"MatMul with a {len(b_shape)}-D second operand is not supported "
                                          f"(only a 2-D B: a fully connected layer).")
                if b in self.consts:
                    w_name = self._add_const(f"{node.name}/weights", _ctranspose(self.consts[b], (1, 0)))
                    node.op, node.inputs, node.attrs = "_FC", [a, w_name, ""], {"wT": False}
                else:
                    node.op, node.inputs, node.attrs = "_FC", [a, b, ""], {"wT": True}

    def _fc_bias(self, node: _Node, c: str, beta: float, n_out: int) -> str:
        if c not in self.consts:
            raise self._err(node, f"its C input '{c}' is computed at run time; only a constant bias is supported.")
        cc = self.consts[c]
        if cc.value.size not in (1, n_out) or (cc.value.ndim == 2 and cc.value.shape[0] != 1):
            raise self._err(node, f"a bias of shape {list(cc.value.shape)} is not supported (only (N,) or (1, N)).")
        if cc.q is not None and beta == 1.0 and cc.value.size == n_out:
            bias = _cmap(cc, lambda a: a.reshape(n_out), 0 if cc.q.axis is not None else None)
        else:
            bias = _Const(np.broadcast_to(cc.value.reshape(-1) * np.float32(beta), (n_out,)).astype(np.float32))
        return self._add_const(f"{node.name}/bias", bias)

    def _fold_fc_bias_add(self) -> None:
        """MatMul followed by Add(constant (N,)) -> the fully connected layer's bias."""
        prod, cons = self._maps()
        for add in list(self.nodes):
            if add.op != "Add":
                continue
            for k in (0, 1):
                x, c = add.inputs[k], add.inputs[1 - k]
                fc = prod.get(x)
                if (fc is None or fc.op != "_FC" or fc.inputs[2] or c not in self.consts or len(cons[x]) != 1
                        or x in self.out_set):
                    continue
                n_out = self._static_shape(x)[-1]
                cv = self.consts[c]
                if cv.value.shape not in ((n_out,), (1, n_out)) or self._static_shape(add.outputs[0]) != \
                        self._static_shape(x):
                    continue
                fc.inputs[2] = self._add_const(f"{fc.name}/bias", _cmap(cv, lambda a: a.reshape(n_out), 0)
                                               if cv.q is not None else _Const(cv.value.reshape(n_out)))
                fc.outputs[0] = add.outputs[0]
                self.nodes.remove(add)
                prod, cons = self._maps()
                break

    def _fold_batchnorm(self) -> None:
        prod, cons = self._maps()
        for bn in [n for n in self.nodes if n.op == "BatchNormalization"]:
            if bn.attrs.get("training_mode", 0) or any(cons.get(o) for o in bn.outputs[1:]):
                raise _unsupported(self.path, bn.name, bn.op, "training mode")
            x = bn.inputs[0]
            p = prod.get(x)
            ok = (p is not None and p.op in ("Conv", "_FC") and p.act == "none" and len(cons[x]) == 1
                  and x not in self.out_set and p.inputs[1] in self.consts
                  and self.consts[p.inputs[1]].q is None and all(i in self.consts for i in bn.inputs[1:5]))
            if ok and p.op == "_FC" and len(self._static_shape(x)) != 2:
                ok = False
            if not ok and all(i in self.consts for i in bn.inputs[1:5]) and len(self._static_shape(x)) == 4:
                self._batchnorm_as_depthwise(bn)
                continue
            if not ok:
                raise _unsupported(self.path, bn.name, bn.op, "only a BatchNormalization of a 4-D tensor, or one "
                                   "directly after a Conv or Gemm with constant float weights (folded into it), "
                                   "with constant parameters, is supported")
            gamma, beta, mean, var = (self.consts[i].value.astype(np.float64) for i in bn.inputs[1:5])
            f = gamma / np.sqrt(var + bn.attrs.get("epsilon", 1e-5))
            w = self.consts[p.inputs[1]].value.astype(np.float64)
            w = w * f.reshape((-1,) + (1,) * (w.ndim - 1))
            b_in = p.inputs[2] if len(p.inputs) > 2 else ""
            b = self.consts[b_in].value.astype(np.float64) if b_in else np.zeros(w.shape[0])
            if b_in and self.consts[b_in].q is not None:
                raise _unsupported(self.path, bn.name, bn.op, "after a layer with a quantized bias")
            b = (b - mean) * f + beta
            p.inputs[1] = self._add_const(f"{p.name}/weights", _Const(w.astype(np.float32)))
            bias = self._add_const(f"{p.name}/bias", _Const(b.astype(np.float32)))
            if len(p.inputs) > 2:
                p.inputs[2] = bias
            else:
                p.inputs.append(bias)
            p.outputs[0] = bn.outputs[0]
            self.nodes.remove(bn)
            prod, cons = self._maps()

    def _zero_biases(self) -> None:
        """A Conv or fully connected layer with constant weights and no bias gets a zero one: exporters write the
        same layer either way (PyTorch's dynamo exporter omits a bias TorchScript writes as zeros), and one form
        compiles to one code (calibration corrects biases only where a layer has one)."""
        for node in self.nodes:
            if (node.op not in ("Conv", "_FC") or node.inputs[1] not in self.consts
                    or (len(node.inputs) > 2 and node.inputs[2])):
                continue
            n_out = self.consts[node.inputs[1]].value.shape[0]  # Conv (O, I/g, kH, kW), constant _FC W (N, K)
            bias = self._add_const(f"{node.name}/bias", _Const(np.zeros(n_out, np.float32)))
            node.inputs[2:] = [bias]

    # -- QDQ islands: float ops onnxruntime's quantizer leaves between DequantizeLinear and QuantizeLinear -------
    def _derived(self, base: str, like: str, shape) -> str:
        """A new ONNX-level run-time value named after `base`, with `like`'s dtype and the given shape."""
        name = self._fresh(base)
        self.reserved.add(name)
        self.shapes[name], self.dtypes[name] = tuple(shape), self.dtypes.get(like, "float32")
        return name

    def _per_tensor_qdq(self, node: _Node | None, op: str) -> bool:
        """`node` is a QuantizeLinear/DequantizeLinear (`op`) of a run-time tensor with one constant scale."""
        if node is None or node.op != op or node.inputs[0] in self.consts:
            return False
        s = node.inputs[1]
        z = node.inputs[2] if len(node.inputs) > 2 else ""
        return s in self.consts and self.consts[s].value.size == 1 and (not z or z in self.consts)

    def _move_qdq_through_data_movement(self) -> None:
        """Reshape/Flatten/Squeeze/Unsqueeze/Transpose/MaxPool commute with (de)quantization (the same values,
        moved or maxed; DequantizeLinear and QuantizeLinear are monotone), so a DequantizeLinear moves after them
        (DQ -> Reshape becomes Reshape -> DQ) and a QuantizeLinear before them (Reshape -> Q becomes Q -> Reshape):
        DQ -> ReduceMean -> Reshape -> Q, left in float by onnxruntime's quantizer, becomes an int8 ReduceMean and
        an int8 reshape. Exact: no value changes."""
        movable = ("Reshape", "Flatten", "Squeeze", "Unsqueeze", "Transpose", "MaxPool", "Slice", "Gather", "Split")
        # (a nearest-neighbour Resize would commute too; a linear one does not: it averages)
        changed = True
        while changed:
            changed = False
            prod, cons = self._maps()
            for i, p in enumerate(self.nodes):
                if p.op not in movable or p.act != "none" or (p.op == "MaxPool" and len(p.outputs) > 1
                                                              and p.outputs[1]):
                    continue
                x, y = p.inputs[0], p.outputs[0]
                dq = prod.get(x)
                if self._per_tensor_qdq(dq, "DequantizeLinear"):  # DQ -> P  =>  P -> DQ
                    outs = [o for o in p.outputs if o]
                    ints = [self._derived(f"{o}_quantized", dq.inputs[0], self._static_shape(o)) for o in outs]
                    moved = _Node(p.op, p.name, [dq.inputs[0], *p.inputs[1:]], ints, p.attrs, p.proto)
                    deqs = [_Node("DequantizeLinear", f"{dq.name}/after_{p.name}", [o_int, *dq.inputs[1:]], [o],
                                  dict(dq.attrs)) for o_int, o in zip(ints, outs)]
                    self.nodes[i:i + 1] = [moved, *deqs]
                    changed = True
                    break
                q = cons.get(y, [None])[0] if len(cons.get(y, [])) == 1 else None
                if (p.op != "Split" and self._per_tensor_qdq(q, "QuantizeLinear") and y not in self.out_set
                        and x not in self.consts
                        and self.dtypes.get(x) == "float32" and prod.get(x) is not None):  # P -> Q  =>  Q -> P
                    x_q = self._derived(f"{x}_quantized", q.outputs[0], self._static_shape(x))
                    quant = _Node("QuantizeLinear", f"{q.name}/before_{p.name}", [x, *q.inputs[1:]], [x_q],
                                  dict(q.attrs))
                    moved = _Node(p.op, p.name, [x_q, *p.inputs[1:]], list(q.outputs), p.attrs, p.proto)
                    self.nodes.remove(q)
                    self.nodes[i:i + 1] = [quant, moved]
                    changed = True
                    break

    def _same_qdq_params(self, a: _Node, b: _Node) -> bool:
        va = [np.asarray(self.consts[i].value).ravel() for i in a.inputs[1:3] if i]
        vb = [np.asarray(self.consts[i].value).ravel() for i in b.inputs[1:3] if i]
        if len(va) == 1:
            va.append(np.zeros(1, np.int64))
        if len(vb) == 1:
            vb.append(np.zeros(1, np.int64))
        return (np.float32(va[0][0]) == np.float32(vb[0][0]) and int(va[1][0]) == int(vb[1][0])
                and self.dtypes.get(a.inputs[0]) == self.dtypes.get(b.outputs[0]))

    def _drop_identity_qdq(self) -> None:
        """DequantizeLinear -> QuantizeLinear with the same scale, zero point and type gives back the same
        integers: readers of the QuantizeLinear read the DequantizeLinear's input instead (onnxruntime writes such
        pairs between data-movement ops, e.g. a channel shuffle's Reshape, Transpose, Reshape)."""
        prod, cons = self._maps()
        for q in [n for n in self.nodes if n.op == "QuantizeLinear"]:
            dq = prod.get(q.inputs[0])
            if (q.outputs[0] in self.out_set or not self._per_tensor_qdq(q, "QuantizeLinear")
                    or not self._per_tensor_qdq(dq, "DequantizeLinear") or not self._same_qdq_params(dq, q)):
                continue
            for n in cons.get(q.outputs[0], []):
                n.inputs = [dq.inputs[0] if i == q.outputs[0] else i for i in n.inputs]
            self.nodes.remove(q)
            prod, cons = self._maps()
        # DequantizeLinears nothing reads any more (their readers moved to the integers)
        self.nodes = [n for n in self.nodes if not (n.op == "DequantizeLinear" and n.outputs[0] not in self.out_set
                                                    and not cons.get(n.outputs[0]))]

    def _channel_permutations(self) -> None:
        """Reshape -> Transpose -> Reshape that only permutes the channels of a 4-D NCHW tensor (ShuffleNet's
        channel shuffle, through a 5-D tensor the firmware has no kernels for) -> one Gather of the channels,
        found by running the three ops on element indices."""
        prod, cons = self._maps()
        for c in [n for n in self.nodes if n.op == "Reshape"]:
            b = prod.get(c.inputs[0])
            a = prod.get(b.inputs[0]) if b is not None and b.op == "Transpose" else None
            if a is None or a.op != "Reshape" or any(v in self.out_set or len(cons.get(v, [])) != 1
                                                     for v in (a.outputs[0], b.outputs[0])):
                continue
            shape = self.shapes.get(a.inputs[0])
            if shape is None or len(shape) != 4 or None in shape or self.shapes.get(c.outputs[0]) != shape:
                continue
            idx = np.arange(int(np.prod(shape))).reshape(shape)
            moved = idx.reshape(self._static_shape(a.outputs[0])).transpose(b.attrs.get("perm")).reshape(shape)
            perm = moved[0, :, 0, 0] // (shape[2] * shape[3])
            if shape[0] != 1 or not np.array_equal(moved, idx[:, perm]):
                continue
            name = self._add_const(f"{c.name}/channels", _Const(perm.astype(np.int64)))
            gather = _Node("Gather", c.name, [a.inputs[0], name], list(c.outputs), {"axis": 1})
            self.nodes[self.nodes.index(c)] = gather
            self.nodes.remove(a)
            self.nodes.remove(b)
            prod, cons = self._maps()

    def _qdq_lookup_tables(self) -> None:
        """DQ -> elementwise float ops -> Q, where every float value in between depends on one int8 (uint8) tensor
        alone (Sigmoid, HardSwish, Div by a constant and Erf of a GELU, x * Sigmoid(x) ...), becomes one 256-entry
        lookup table: each entry is what ONNX computes for that input value (DequantizeLinear, the float ops,
        QuantizeLinear, run by onnx's reference evaluator at import time), so the output is rounded once, to the
        model's own output scale."""
        prod, cons = self._maps()
        for q in [n for n in self.nodes if n.op == "QuantizeLinear"]:
            island = self._elementwise_island(q, prod, cons)
            if island is None:
                continue
            dq, members = island
            table = self._island_table(dq, members, q)
            gone = {id(n) for n in members} | {id(q)}
            at = min(i for i, n in enumerate(self.nodes) if id(n) in gone)
            lut = _Node("_LUT", members[-1].name, [dq.inputs[0], *q.inputs[1:]], list(q.outputs), {"table": table})
            self.nodes = [n for n in self.nodes[:at] if id(n) not in gone] + [lut] + \
                         [n for n in self.nodes[at:] if id(n) not in gone]
            prod, cons = self._maps()

    def _elementwise_island(self, q: _Node, prod, cons):
        """(the DequantizeLinear, the float nodes in graph order) of a lookup-table island ending at `q`, or None."""
        if not self._per_tensor_qdq(q, "QuantizeLinear"):
            return None
        members, todo, source = [], [q.inputs[0]], None
        while todo:
            v = todo.pop()
            p = prod.get(v)
            if v in self.out_set or p is None:
                return None
            if p.op == "DequantizeLinear":
                if not self._per_tensor_qdq(p, "DequantizeLinear") or (source is not None and source is not p):
                    return None
                source = p
                continue
            if p.op not in _ELEMENTWISE or p.act != "none":
                return None
            if p not in members:
                members.append(p)
                if any(i and i not in self.consts for i in p.inputs[_ELEMENTWISE[p.op]:]):
                    return None
                for i in p.inputs[:_ELEMENTWISE[p.op]]:
                    if i and i in self.consts:
                        if self.consts[i].value.size != 1:
                            return None
                    elif i:
                        todo.append(i)
        if source is None or not members:
            return None
        inside = {id(n) for n in members} | {id(q)}
        for n in members:  # nothing outside the island reads a value inside it
            if any(o in self.out_set or any(id(c) not in inside for c in cons.get(o, [])) for o in n.outputs if o):
                return None
        if self._static_shape(q.outputs[0]) != self._static_shape(source.inputs[0]):
            return None
        order = {id(n): i for i, n in enumerate(self.nodes)}
        return source, sorted(members, key=lambda n: order[id(n)])

    def _island_table(self, dq: _Node, members: list[_Node], q: _Node) -> tuple[int, ...]:
        """The island's output for each of the 256 input codes, as ONNX defines it: DequantizeLinear and
        QuantizeLinear in float32 (round half to even, saturate), the float ops by onnx's reference evaluator."""
        from onnx.reference import ReferenceEvaluator

        src, x = dq.inputs[0], dq.outputs[0]
        signed = self.dtypes.get(src) == "int8"
        codes = np.arange(-128, 128) if signed else np.arange(256)
        s_in, z_in = self._qparam(dq, 1, "scale"), self._qparam(dq, 2, "zero point")
        xf = ((codes - (0 if z_in is None else int(z_in.ravel()[0]))).astype(np.float32)
              * np.float32(s_in.ravel()[0]))
        protos = [self._proto(n) for n in members]
        consts = sorted({i for p in protos for i in p.input if i in self.consts})
        inits = [numpy_helper.from_array(np.asarray(self.consts[i].value), i) for i in consts]
        g = helper.make_graph(protos, "table", [helper.make_tensor_value_info(x, TensorProto.FLOAT, [256])],
                              [helper.make_tensor_value_info(q.inputs[0], TensorProto.FLOAT, None)], inits)
        try:
            y = ReferenceEvaluator(helper.make_model(g, opset_imports=self.model.opset_import)).run(None, {x: xf})[0]
        except Exception as e:
            raise self._err(members[-1], f"computing its lookup table failed ({e}).") from None
        s_out, z_out = self._qparam(q, 1, "scale"), self._qparam(q, 2, "zero point")
        out_signed = self.dtypes.get(q.outputs[0]) == "int8"
        lo, hi = (-128, 127) if out_signed else (0, 255)
        yq = np.rint(np.asarray(y, np.float32).reshape(-1) / np.float32(s_out.ravel()[0]))
        yq = np.clip(yq + (0 if z_out is None else int(z_out.ravel()[0])), lo, hi).astype(np.int64)
        return tuple(int(v) for v in (yq if out_signed else yq - 128))

    def _float_functions(self) -> None:
        """In a float model, the elementwise ops around one that has no IR op (Erf, Gelu, Tanh, Exp ...: ISLAND_OPS)
        whose values all depend on one run-time tensor (a GELU: Div, Erf, Add, Mul by x, Mul by 0.5) -> one
        `float_function` op holding them as an ONNX graph; quantizing the model makes it one table."""
        prod, cons = self._maps()
        for seed in [n for n in self.nodes if n.op in ISLAND_OPS]:
            if not any(n is seed for n in self.nodes):
                continue  # already in a function
            found = self._function_around(seed, prod, cons)
            if found is None:
                continue
            source, members, out = found
            gone = {id(n) for n in members}
            at = min(i for i, n in enumerate(self.nodes) if id(n) in gone)
            label = "+".join(n.op for n in members)
            func = _Node("_FUNC", members[-1].name, [source], [out],
                         {"model": self._function_model(source, members, out), "label": label})
            self.nodes = [n for n in self.nodes[:at] if id(n) not in gone] + [func] + \
                         [n for n in self.nodes[at:] if id(n) not in gone]
            prod, cons = self._maps()

    def _function_around(self, seed: _Node, prod, cons):
        """(source, member nodes in graph order, output) of the elementwise function of one tensor around `seed`."""
        def usable(n):
            k = _ELEMENTWISE.get(n.op)
            return (k is not None and n.act == "none" and all(i in self.consts for i in n.inputs[k:] if i)
                    and all(self.consts[i].value.size == 1 for i in n.inputs[:k] if i in self.consts))

        def runtime(n):
            return [i for i in n.inputs[:_ELEMENTWISE[n.op]] if i and i not in self.consts]

        if not usable(seed):
            return None
        members = [seed]
        while True:  # backward, while the single outside input comes from an op of the function
            made = {o for m in members for o in m.outputs}
            ins = {i for m in members for i in runtime(m)} - made
            if len(ins) != 1:
                return None
            source = next(iter(ins))
            p = prod.get(source)
            if (p is None or not usable(p) or source in self.out_set or len(p.outputs) != 1
                    or not all(any(c is m for m in members) for c in cons.get(source, []))):
                break
            members.append(p)
        while True:  # forward, while the single output is read by one op of the function only
            outs = [o for m in members for o in m.outputs if o and (o in self.out_set or any(
                not any(c is m2 for m2 in members) for c in cons.get(o, [])))]
            if len(outs) != 1:
                return None
            out = outs[0]
            readers = cons.get(out, [])
            made = {o for m in members for o in m.outputs} | {source}
            if (out in self.out_set or len(readers) != 1 or not usable(readers[0])
                    or not set(runtime(readers[0])) <= made):
                break
            members.append(readers[0])
        if self.dtypes.get(source) != "float32" or self._static_shape(out) != self._static_shape(source):
            return None
        order = {id(n): i for i, n in enumerate(self.nodes)}
        return source, sorted(members, key=lambda n: order[id(n)]), out

    def _function_model(self, source: str, members: list[_Node], out: str) -> bytes:
        """The members as an ONNX model y = f(x) on a 1-D float tensor."""
        def renamed(n):
            return {source: "x", out: "y"}.get(n, n)

        protos = []
        for n in members:
            p = self._proto(n)
            p.input[:] = [renamed(i) for i in p.input]
            p.output[:] = [renamed(o) for o in p.output]
            protos.append(p)
        consts = sorted({i for p in protos for i in p.input if i in self.consts})
        inits = [numpy_helper.from_array(np.asarray(self.consts[i].value).reshape(()), i) for i in consts]
        g = helper.make_graph(protos, "function", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [None])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [None])], inits)
        model = helper.make_model(g, opset_imports=self.model.opset_import)
        model.ir_version = self.model.ir_version
        return model.SerializeToString()

    def _decompose_hard_sigmoid(self) -> None:
        """HardSigmoid outside a QDQ island (a float model): clip(alpha x + beta, 0, 1) = relu6(6 alpha x +
        6 beta) / 6 -> Mul (skipped when 6 alpha = 1, PyTorch's 1/6), Add with a fused relu6, Mul by 1/6: the ops
        TFLite's converter writes for Keras' hard_sigmoid."""
        for node in [n for n in self.nodes if n.op == "HardSigmoid"]:
            alpha, beta = node.attrs.get("alpha", 0.2), node.attrs.get("beta", 0.5)
            x, y = node.inputs[0], node.outputs[0]
            at = self.nodes.index(node)
            new = []
            if abs(6 * alpha - 1) > 1e-6:
                scaled = self._derived(f"{y}_scaled", x, self._static_shape(y))
                new.append(_Node("Mul", f"{node.name}/scale", [x, self._add_const(
                    f"{node.name}/6alpha", _Const(np.array(6 * alpha, np.float32)))], [scaled], {}))
                x = scaled
            clipped = self._derived(f"{y}_relu6", x, self._static_shape(y))
            new.append(_Node("Add", f"{node.name}/shift", [x, self._add_const(
                f"{node.name}/6beta", _Const(np.array(6 * beta, np.float32)))], [clipped], {}, act="relu6"))
            new.append(_Node("Mul", node.name, [clipped, self._add_const(
                f"{node.name}/sixth", _Const(np.array(1 / 6, np.float32)))], [y], {}))
            self.nodes[at:at + 1] = new

    def _decompose_layer_norm(self) -> None:
        """LayerNormalization over the last axis (a float model) -> the ops TFLite's converter writes for Keras'
        LayerNormalization: mean, x - mean, its square, mean, + epsilon, rsqrt, products with gamma, + beta. Each
        intermediate gets its own int8 scale from calibration."""
        prod, _ = self._maps()
        for node in [n for n in self.nodes if n.op == "LayerNormalization"]:
            x, gamma = node.inputs[0], node.inputs[1]
            if prod.get(x) is not None and prod[x].op == "DequantizeLinear":
                raise self._err(node, "a LayerNormalization between DequantizeLinear and QuantizeLinear (a QDQ "
                                      "model) is not supported: mcutool runs a layer norm as TFLite's int8 ops "
                                      "(mean, variance, rsqrt, products), each with its own scale, and the QDQ "
                                      "model gives none for those values. Give mcutool the float model with "
                                      "--calib, or leave LayerNormalization out of op_types_to_quantize and "
                                      "quantize its float model.")
            beta = node.inputs[2] if len(node.inputs) > 2 else ""
            shape = self._static_shape(x)
            axis = node.attrs.get("axis", -1) % len(shape)
            if axis != len(shape) - 1 or any(o for o in node.outputs[1:]):
                raise self._err(node, "only a LayerNormalization over the last axis, without its mean and "
                                      "inverse-deviation outputs, is supported.")
            y = node.outputs[0]
            stat = shape[:-1] + (1,)

            def value(base, shp):
                return self._derived(f"{y}_{base}", x, shp)

            m, d, d2, v, ve, r, n = (value("mean", stat), value("centred", shape), value("squared", shape),
                                     value("variance", stat), value("variance_eps", stat), value("rsqrt", stat),
                                     value("normalized", shape))
            eps = self._add_const(f"{node.name}/epsilon", _Const(np.array(node.attrs.get("epsilon", 1e-5),
                                                                          np.float32)))
            mean = {"axes": [axis], "keepdims": 1}
            new = [_Node("ReduceMean", f"{node.name}/mean", [x], [m], dict(mean)),
                   _Node("Sub", f"{node.name}/centre", [x, m], [d], {}),
                   _Node("Mul", f"{node.name}/square", [d, d], [d2], {}),
                   _Node("ReduceMean", f"{node.name}/variance", [d2], [v], dict(mean)),
                   _Node("Add", f"{node.name}/epsilon", [v, eps], [ve], {}),
                   _Node("_Rsqrt", f"{node.name}/rsqrt", [ve], [r], {}),
                   _Node("Mul", f"{node.name}/normalize", [d, r], [n], {})]
            if beta:
                ng = value("scaled", shape)
                new += [_Node("Mul", f"{node.name}/gamma", [n, gamma], [ng], {}),
                        _Node("Add", node.name, [ng, beta], [y], {})]
            else:
                new.append(_Node("Mul", node.name, [n, gamma], [y], {}))
            at = self.nodes.index(node)
            self.nodes[at:at + 1] = new

    def _normalization_forms(self) -> None:
        """The layer norm as PyTorch exports it below opset 17: Pow(x, 2) -> Mul(x, x), and Div(a, Sqrt(b)) ->
        Mul(a, rsqrt(b)) (TFLite has RSQRT, no SQRT)."""
        prod, cons = self._maps()
        for node in list(self.nodes):
            if node.op == "Pow" and node.inputs[1] in self.consts and node.inputs[0] not in self.consts \
                    and np.all(np.asarray(self.consts[node.inputs[1]].value) == 2):
                node.op, node.inputs, node.proto = "Mul", [node.inputs[0], node.inputs[0]], None
            elif node.op == "Div" and node.inputs[1] not in self.consts:
                sq = prod.get(node.inputs[1])
                if (sq is not None and sq.op == "Sqrt" and len(cons.get(sq.outputs[0], [])) == 1
                        and sq.outputs[0] not in self.out_set):
                    sq.op, sq.proto = "_Rsqrt", None
                    node.op, node.proto = "Mul", None

    def _batchnorm_as_depthwise(self, bn: _Node) -> None:
        """A BatchNormalization that cannot be folded into the layer before it (dynamo keeps it beside a QDQ conv,
        or it follows an Add or Concat): y = a x + b per channel, a 1x1 depthwise conv. Its weights a carry an
        integer form too (symmetric per channel, a = +-127 * scale exactly), used when the BatchNormalization sits
        between DequantizeLinear and QuantizeLinear."""
        gamma, beta, mean, var = (self.consts[i].value.astype(np.float64) for i in bn.inputs[1:5])
        with np.errstate(all="ignore"):
            a = gamma / np.sqrt(var + bn.attrs.get("epsilon", 1e-5))
            b = beta - mean * a
        if not (np.all(np.isfinite(a)) and np.all(np.isfinite(b))) or a.size != self._static_shape(bn.inputs[0])[1]:
            raise self._err(bn, "its parameters give a non-finite scale or shift (a negative variance?), or do not "
                                "match its input's channels; the model is corrupt.")
        scale = np.where(a != 0, np.abs(a) / 127.0, 1.0)
        ints = np.round(a / scale).astype(np.int8)
        c = a.size
        w = _Const((ints * scale).astype(np.float32).reshape(c, 1, 1, 1),
                   _QInfo(ints.reshape(c, 1, 1, 1), scale, np.zeros(c, np.int64), 0))
        w_name = self._add_const(f"{bn.name}/weights", w)
        b_name = self._add_const(f"{bn.name}/bias", _Const(b.astype(np.float32)))
        at = self.nodes.index(bn)
        self.nodes[at] = _Node("Conv", bn.name, [bn.inputs[0], w_name, b_name], [bn.outputs[0]],
                               {"group": c, "kernel_shape": [1, 1]})

    def _activation_kind(self, node: _Node) -> str:
        if node.op == "Relu":
            return "relu"
        if self.opset < 11:
            lo, hi = node.attrs.get("min", -np.inf), node.attrs.get("max", np.inf)
        else:
            bounds = []
            for k in (1, 2):
                n = node.inputs[k] if len(node.inputs) > k else ""
                if n and n not in self.consts:
                    raise self._err(node, f"its bound '{n}' is computed at run time; only constant bounds work.")
                bounds.append(float(self.consts[n].value) if n else None)
            lo = -np.inf if bounds[0] is None else bounds[0]
            hi = np.inf if bounds[1] is None else bounds[1]
        kinds = {(0.0, np.inf): "relu", (0.0, 6.0): "relu6", (-1.0, 1.0): "relu_n1_to_1"}
        if (lo, hi) not in kinds:
            raise self._err(node, f"Clip({lo}, {hi}) is not supported; only Clip(0, 6), Clip(0, inf) and "
                                  f"Clip(-1, 1), fused into the layer before them.")
        return kinds[(lo, hi)]

    def _fuse_activations(self) -> None:
        prod, cons = self._maps()
        for act in [n for n in self.nodes if n.op in ("Relu", "Clip")]:
            kind = self._activation_kind(act)
            x = act.inputs[0]
            p = prod.get(x)
            if (p is None or p.op not in _FUSES_ACTIVATION or p.act != "none" or len(cons[x]) != 1
                    or x in self.out_set):
                src = f"node '{p.name}' ({p.op.lstrip('_')})" if p is not None else "a graph input or constant"
                raise _unsupported(self.path, act.name, act.op, f"its input '{x}' comes from {src}; an activation "
                                   f"is imported only fused into the Conv, Gemm/MatMul, Add, Mul, Concat or pool "
                                   f"right before it, when nothing else reads that layer's output")
            p.act = kind
            p.outputs[0] = act.outputs[0]
            self.nodes.remove(act)
            prod, cons = self._maps()

    # -- quantization parameters of int8/uint8 run-time tensors ---------------------------------------------------
    def _find(self, x: str) -> str:
        while self.uf.get(x, x) != x:
            x = self.uf[x]
        return x

    def _union(self, a: str, b: str) -> None:
        ra, rb = self._find(a), self._find(b)
        if ra == rb:
            return
        qa, qb = self.qp.pop(ra, None), self.qp.pop(rb, None)
        self.uf[ra] = rb
        if qa is not None:
            self.qp[rb] = qa
        if qb is not None:
            self._declare(rb, qb, f"'{a}' and '{b}'")

    def _declare(self, name: str, qp: _QP, where: str) -> None:
        r = self._find(name)
        old = self.qp.get(r)
        if old is None:
            self.qp[r] = qp
            return
        same_zp = np.array_equal(np.broadcast_to(old.zp, qp.zp.shape) if old.zp.size == 1 else old.zp,
                                 np.broadcast_to(qp.zp, old.zp.shape) if qp.zp.size == 1 else qp.zp)
        same_scale = (old.scale is None or qp.scale is None
                      or np.array_equal(old.scale.astype(np.float32), qp.scale.astype(np.float32)))
        if not (same_zp and same_scale):
            raise UserError(f"'{self.path}': tensor '{name}' is given two different quantization parameters "
                            f"(by {where}): scale {old.scale}, zero point {old.zp} vs scale {qp.scale}, zero point "
                            f"{qp.zp}. mcutool needs one (scale, zero point) per int8/uint8 tensor.")
        if old.scale is None:
            self.qp[r] = _QP(qp.scale, old.zp, qp.axis if qp.axis is not None else old.axis)

    def _declare_from(self, node: _Node, tensor_idx: int, scale_idx: int | None, zp_idx: int,
                      axis: int | None = None) -> None:
        t = node.inputs[tensor_idx] if tensor_idx >= 0 else node.outputs[0]
        if t in self.consts:
            return
        scale = self._qparam(node, scale_idx, "scale").astype(np.float64).ravel() if scale_idx is not None else None
        zp = self._qparam(node, zp_idx, "zero point")
        zp = np.zeros(1, np.int64) if zp is None else zp.astype(np.int64).ravel()
        n = max(zp.size, 1 if scale is None else scale.size)
        ax = axis if n > 1 else None
        self._declare(t, _QP(scale, zp, ax), f"node '{node.name}'")

    def _quant_params(self) -> None:
        for node in self.nodes:
            if node.op in _PASS_THROUGH and self.dtypes.get(node.inputs[0]) in ("int8", "uint8"):
                data = node.inputs if node.op == "Concat" else node.inputs[:1]
                for i in data:
                    if i and i not in self.consts:
                        for o in (node.outputs if node.op == "Split" else node.outputs[:1]):
                            self._union(i, o)
        for node in self.nodes:
            op = node.op
            if op == "QuantizeLinear":
                s = self._qparam(node, 1, "scale")
                if s.size > 1:
                    raise self._err(node, "per-axis quantization of a run-time tensor is not supported.")
                self._declare_from(node, -1, 1, 2)
            elif op == "_LUT":
                self._declare_from(node, -1, 1, 2)
            elif op == "DequantizeLinear":
                s = self._qparam(node, 1, "scale")
                x = node.inputs[0]
                axis = self._axis_param(node, len(self._static_shape(x)), s)
                self._declare_from(node, 0, 1, 2, axis)
            elif op == "QLinearConv":
                self._declare_from(node, 0, 1, 2)
                self._declare_from(node, 3, 4, 5, 0)
                self._declare_from(node, -1, 6, 7)
            elif op == "QLinearMatMul":
                self._declare_from(node, 0, 1, 2)
                self._declare_from(node, 3, 4, 5, 1)
                self._declare_from(node, -1, 6, 7)
            elif op == "ConvInteger":
                self._declare_from(node, 0, None, 2)
                self._declare_from(node, 1, None, 3, 0)
            elif op == "MatMulInteger":
                self._declare_from(node, 0, None, 2)
                self._declare_from(node, 1, None, 3, 1)
        for node in self.nodes:  # the A operand's zero point must be one value (not per row)
            if node.op in ("MatMulInteger", "ConvInteger", "QLinearMatMul", "QLinearConv"):
                a = node.inputs[0]
                if a not in self.consts and self._qp(a).zp.size > 1:
                    raise self._err(node, f"a per-row zero point for '{a}' is not supported.")

    def _qp(self, name: str) -> _QP:
        qp = self.qp.get(self._find(name))
        if qp is None:
            return _QP(np.ones(1), np.zeros(1, np.int64), None)
        scale = np.ones(1) if qp.scale is None else qp.scale
        n = max(scale.size, qp.zp.size)
        return _QP(np.broadcast_to(scale, (n,)).copy(), np.broadcast_to(qp.zp, (n,)).copy(), qp.axis)

    def _act_quant(self, val: _Val, layout: str, internal: bool = True) -> Quant | None:
        if val.dtype not in ("int8", "uint8"):
            return None
        qp = self._qp(val.name)
        zp = qp.zp - 128 if (val.dtype == "uint8" and internal) else qp.zp
        axis = None
        if qp.axis is not None and max(qp.scale.size, qp.zp.size) > 1:
            if layout == "flat":
                raise UserError(f"'{self.path}': tensor '{val.name}' is quantized per channel where mcutool "
                                f"needs it per tensor (it is flattened).")
            axis = list(_layout_perm(layout, len(val.shape))).index(qp.axis)
        return Quant(qp.scale, zp, axis)

    # -- IR tensors and ops ---------------------------------------------------------------------------------------
    def _fresh(self, base: str) -> str:
        name, k = base, 1
        while name in self.reserved or name in self.g.tensors:
            name, k = f"{base}_{k}", k + 1
        return name

    def _tensor(self, name: str, shape, dtype: str, quant: Quant | None = None, data=None) -> str:
        self.g.add_tensor(Tensor(name, tuple(shape), dtype, quant, data))
        return name

    def _const_tensor(self, base: str, data: np.ndarray, quant: Quant | None = None) -> str:
        data = np.ascontiguousarray(data).reshape(np.shape(data))  # a 0-d one stays 0-d (a scalar Gather index)
        return self._tensor(self._fresh(base), data.shape, data.dtype.name, quant, data)

    def _op(self, name: str, kind: str, inputs, outputs, attrs=None) -> None:
        base, k = name, 1
        while name in self.op_names:
            name, k = f"{base}_{k}", k + 1
        self.op_names.add(name)
        self.g.ops.append(Op(name, kind, list(inputs), list(outputs), attrs))
        self.g.sources[name] = name

    def _val(self, name: str) -> _Val:
        name = self._resolve(name)
        v = self.vals.get(name)
        if v is None:
            if name in self.consts:
                c = self.consts[name]
                v = _Val(name, c.value.shape, c.value.dtype.name, const=c)
            else:
                v = _Val(name, self._static_shape(name), self.dtypes.get(name, "float32"))
            self.vals[name] = v
        return v

    def _ir_shape(self, val: _Val, layout: str) -> tuple:
        if layout in ("nhwc", "nlc"):
            return tuple(val.shape[i] for i in _layout_perm(layout, len(val.shape)))
        return val.shape

    def _new_rep(self, val: _Val, layout: str, quant: Quant | None | str = "auto") -> str:
        """Create the IR tensor for `val` in `layout` (its producer is the caller's business)."""
        dt = _idt(val.dtype)
        if layout == "same" and dt == val.dtype and val.name not in self.g.tensors:
            name = val.name
        else:
            name = self._fresh(f"{val.name}_{'i8' if dt != val.dtype and layout == 'same' else layout}")
        q = self._act_quant(val, layout) if isinstance(quant, str) else quant
        self._tensor(name, self._ir_shape(val, layout), dt, q)
        val.reps[layout] = name
        return name

    def _has(self, val: _Val, layout: str) -> bool:
        return layout in val.reps or (val.deq is not None and layout in val.deq.reps)

    def _layouts(self, val: _Val) -> list[str]:
        src = val.deq if val.deq is not None and not val.reps else val
        return [L for L in ("nhwc", "nlc", "flat", "same") if L in src.reps] or ["same"]

    def _rep(self, val: _Val, layouts=("same",)) -> tuple[str, str]:
        """An IR tensor holding `val` in one of `layouts` (made by conversion from another rep if needed)."""
        if val.const is not None:
            raise AssertionError(f"constant {val.name} used as an activation")
        for L in layouts:
            if L in val.reps:
                return val.reps[L], L
        rank = len(val.shape)
        target = next((L for L in layouts if L == "same" or (L == "nhwc" and rank == 4)
                       or (L == "nlc" and rank == 3)), "same")
        if val.deq is not None:  # materialize the float value of a DequantizeLinear
            src, L = self._rep(val.deq, (target,))
            out = self._new_rep(val, L)
            if L == "flat":
                val.flat = val.deq.flat
            self._op(f"{val.name}/dequantize", "dequantize", [src], [out])
            return out, L
        if not val.reps and val.border is not None:  # a uint8 graph input -> int8
            out = self._new_rep(val, "same")
            self._op(f"{val.name}/to_int8", "quantize", [val.border], [out])
            if target == "same":
                return out, "same"
        if "flat" in val.reps and "same" not in val.reps:
            n, c, h, w = val.flat
            t1 = self._tensor(self._fresh(f"{val.name}_nhwc4d"), (n, h, w, c), _idt(val.dtype),
                              self.g.tensor(val.reps["flat"]).quant)
            self._op(f"{val.name}/unflatten", "reshape", [val.reps["flat"]], [t1])
            t2 = self._tensor(self._fresh(f"{val.name}_nchw4d"), (n, c, h, w), _idt(val.dtype),
                              self.g.tensor(t1).quant)
            self._op(f"{val.name}/to_nchw", "transpose", [t1], [t2], TransposeAttrs(NHWC_TO_NCHW))
            out = self._new_rep(val, "same")
            self._op(f"{val.name}/flatten", "reshape", [t2], [out])
            if target == "same":
                return out, "same"
        if target in ("nhwc", "nlc"):
            src = val.reps["same"]
            out = self._new_rep(val, target)
            self._op(f"{val.name}/to_{target}", "transpose", [src], [out], TransposeAttrs(_layout_perm(target, rank)))
            return out, target
        if "nlc" in val.reps:  # a transpose, or a reshape where it moves only an axis of size 1
            out = self._new_rep(val, "same")
            kind = "reshape" if self._transpose_cost(val, "nlc", NCL_TO_NLC) <= 1 else "transpose"
            self._op(f"{val.name}/to_ncl", kind, [val.reps["nlc"]], [out],
                     TransposeAttrs(NCL_TO_NLC) if kind == "transpose" else None)
            return out, "same"
        src = val.reps["nhwc"]
        out = self._new_rep(val, "same")
        self._op(f"{val.name}/to_nchw", "transpose", [src], [out], TransposeAttrs(NHWC_TO_NCHW))
        return out, "same"

    def _runtime_weight(self, w: _Val) -> str:
        """The IR tensor of a weight operand that is not a constant (a graph input, say), in ONNX's layout.

        A uint8 graph input stays uint8 here: its per-channel zero points could not go through a per-tensor
        IR quantize, and weights need no int8 conversion to be read."""
        return w.border if w.border is not None else self._rep(w, ("same",))[0]

    def _transposed(self, src: str, perm: tuple, base: str) -> str:
        """An IR transpose of tensor `src` (cached); a per-channel quant axis follows its dimension."""
        key = (src, perm)
        if key not in self.derived:
            t = self.g.tensor(src)
            q = t.quant
            if q is not None and q.per_channel:
                q = Quant(q.scale, q.zero_point, list(perm).index(q.axis))
            out = self._tensor(self._fresh(base), tuple(t.shape[p] for p in perm), t.dtype, q)
            self._op(f"{base}/transpose", "transpose", [src], [out], TransposeAttrs(perm))
            self.derived[key] = out
        return self.derived[key]

    # -- mode of a float op: float, folded QDQ, or on ONNX int8 tensors -------------------------------------------
    def _qdq_consumer(self, y: str) -> _Node | None:
        if y in self.out_set:
            return None
        cons = [n for n in self.nodes if not n.skip and y in n.inputs]
        if len(cons) != 1 or cons[0].op != "QuantizeLinear" or cons[0].inputs[0] != y:
            return None
        return cons[0]

    def _mode(self, node: _Node, data: list, qdq: bool = True) -> tuple[str, _Node | None]:
        vals = [self._val(i) for i in data if i]
        acts = [v for v in vals if v.const is None]
        if any(v.dtype in ("int8", "uint8") for v in acts):
            return "int", None
        if qdq and acts:
            q = self._qdq_consumer(node.outputs[0])
            if q is not None and all(v.deq is not None or (v.const is not None and v.const.q is not None)
                                     for v in vals):
                return "qdq", q
        return "float", None

    def _src(self, val: _Val, mode: str) -> _Val:
        return val.deq if mode == "qdq" and val.const is None else val

    def _write(self, node: _Node, q: _Node | None, layout: str, kind: str, inputs, attrs=None,
               keep_quant: str | None = None, flat=None) -> str:
        """Emit `node` as one IR op writing its output (in QDQ mode: the QuantizeLinear's output).

        keep_quant: an IR input whose quantization the op's output must keep (max pool, reshape...); when the
        output's own differs, the op writes a temporary and an IR quantize requantizes it. The same happens for
        int8 softmax/logistic, whose output TFLite fixes at scale 1/256, zero point -128."""
        if q is not None:
            q.skip = True
        val = self._val(q.outputs[0] if q is not None else node.outputs[0])
        if flat is not None:
            val.flat = flat
        quant = self._act_quant(val, layout)
        if quant is not None and kind in ("softmax", "logistic"):
            keep_quant = Quant(1.0 / 256, -128)
        if keep_quant is not None and quant is not None:
            iq = keep_quant if isinstance(keep_quant, Quant) else self.g.tensor(keep_quant).quant
            if not _same_quant(iq, quant):
                tmp = self._tensor(self._fresh(f"{val.name}_{layout}_prequant"), self._ir_shape(val, layout),
                                   _idt(val.dtype), iq)
                self._op(node.name, kind, inputs, [tmp], attrs)
                out = self._new_rep(val, layout)
                self._op(f"{node.name}/requantize", "quantize", [tmp], [out])
                return out
        out = self._new_rep(val, layout, quant)
        self._op(node.name, kind, inputs, [out], attrs)
        return out

    # -- graph border ---------------------------------------------------------------------------------------------
    def _graph_inputs(self) -> None:
        for vi in self.model.graph.input:
            if vi.name in self.consts:
                continue
            val = self._val(vi.name)
            self._tensor(vi.name, val.shape, val.dtype, self._act_quant(val, "same", internal=False))
            self.g.inputs.append(vi.name)
            if val.dtype == "uint8":
                val.border = vi.name
            else:
                val.reps["same"] = vi.name

    def _rename(self, old: str, new: str) -> None:
        t = self.g.tensors.pop(old)
        t.name = new
        self.g.tensors[new] = t
        for op in self.g.ops:
            op.inputs = [new if i == old else i for i in op.inputs]
            op.outputs = [new if o == old else o for o in op.outputs]
        for v in self.vals.values():
            for L, n in v.reps.items():
                if n == old:
                    v.reps[L] = new

    def _graph_outputs(self) -> None:
        for name in self.graph_outputs:
            val = self._val(name)
            if val.const is not None:
                raise UserError(f"'{self.path}': graph output '{name}' is a constant; there is nothing to compute.")
            src, _ = self._rep(val, ("same",))
            declared = self.dtypes.get(name, val.dtype)
            if declared == "uint8":
                self._tensor(name, val.shape, "uint8", self._act_quant(val, "same", internal=False))
                self._op(f"{name}/to_uint8", "quantize", [src], [name])
            elif src != name:
                if src in self.g.inputs or src in self.g.outputs or name in self.g.tensors:
                    t = self.g.tensor(src)
                    self._tensor(name, t.shape, t.dtype, t.quant)
                    self._op(f"{name}/copy", "reshape", [src], [name])
                else:
                    self._rename(src, name)
            self.g.outputs.append(name)

    def _collapse_reshapes(self) -> None:
        """A reshape of a reshape's output that nothing else reads reshapes the first one's input (the exporters'
        Squeeze / Transpose of size-1 axes / Reshape around an LSTM); a reshape that keeps the shape goes."""
        keep = set(self.g.outputs) | set(self.g.inputs)
        reads: dict[str, int] = {}
        for op in self.g.ops:
            for i in op.inputs:
                reads[i] = reads.get(i, 0) + 1
        producer = {o: op for op in self.g.ops for o in op.outputs}
        alias: dict[str, str] = {}
        dropped = set()
        for op in self.g.ops:
            op.inputs = [alias.get(i, i) for i in op.inputs]
            if op.kind != "reshape":
                continue
            src = producer.get(op.inputs[0])
            if (src is not None and src.kind == "reshape" and op.inputs[0] not in keep and reads[op.inputs[0]] == 1
                    and _same_quant(self.g.tensor(src.inputs[0]).quant, self.g.tensor(op.outputs[0]).quant)):
                dropped.add(src.name)
                del self.g.tensors[op.inputs[0]]
                op.inputs = [src.inputs[0]]
            x, y = (self.g.tensor(n) for n in (op.inputs[0], op.outputs[0]))
            if x.shape == y.shape and y.name not in keep and _same_quant(x.quant, y.quant):
                alias[y.name] = x.name
                dropped.add(op.name)
                del self.g.tensors[y.name]
        self.g.ops = [op for op in self.g.ops if op.name not in dropped]
        for name in dropped:
            self.g.sources.pop(name, None)

    def _canonical_names(self) -> None:
        """IR names from the op kind and the place in execution order, not from the exporter's ONNX names, so
        that one network written by two exporters (PyTorch's TorchScript and dynamo ones name every node and
        value differently) imports to one graph and compiles to one code: ops `conv2d_0`, `conv2d_1`, ... (per
        kind, as the TFLite frontend names them), an op's output its op's name (`split_0:1` for a second output),
        a constant or state tensor `<first reader>/weights`, `/bias` or `/in<k>`. The graph's inputs and outputs
        keep their ONNX names (--calib data and the report's io use them); tensors no op reads or writes are
        dropped. Import errors name the ONNX nodes (they come before this); graph.sources keeps each op's ONNX
        name (the node's, or the name of the node it was made for with a suffix) for later messages and inspect."""
        border = set(self.g.inputs) | set(self.g.outputs)
        counts: dict[str, int] = {}
        new: dict[str, str] = {n: n for n in self.g.inputs}

        def assign(old: str, name: str) -> None:
            if old and old not in new:
                while name in border:
                    name += "_"
                new[old] = old if old in border else name

        sources = {}
        for op in self.g.ops:
            k = counts.get(op.kind, 0)
            counts[op.kind] = k + 1
            sources[f"{op.kind}_{k}"] = self.g.sources[op.name]
            op.name = f"{op.kind}_{k}"
            for j, t in enumerate(op.inputs):  # constants and state: not produced by an earlier op
                role = {1: "weights", 2: "bias"}.get(j, f"in{j}") if op.kind in _WEIGHTED_KINDS else f"in{j}"
                assign(t, f"{op.name}/{role}")
            for j, t in enumerate(op.outputs):
                assign(t, op.name if len(op.outputs) == 1 else f"{op.name}:{j}")
        for n in self.g.outputs:
            assign(n, n)
        tensors = {}
        for old, name in new.items():
            t = self.g.tensors[old]
            t.name = name
            tensors[name] = t
        self.g.tensors, self.g.sources = tensors, sources
        for op in self.g.ops:
            op.inputs = [new[i] if i else "" for i in op.inputs]
            op.outputs = [new[o] for o in op.outputs]

    # -- translation ----------------------------------------------------------------------------------------------
    def _handlers(self) -> dict:
        return {
            "Conv": self._conv_float, "QLinearConv": self._qlinear_conv, "ConvInteger": self._conv_integer,
            "_FC": self._fc_float, "QLinearMatMul": self._qlinear_matmul, "MatMulInteger": self._matmul_integer,
            "QuantizeLinear": self._quantize, "DequantizeLinear": self._dequantize,
            "Add": self._binary, "Sub": self._binary, "Mul": self._binary, "Div": self._binary,
            "Concat": self._concat, "MaxPool": self._pool, "AveragePool": self._pool,
            "GlobalAveragePool": self._global_pool, "GlobalMaxPool": self._global_pool,
            "ReduceMean": self._reduce_mean, "Softmax": self._softmax, "Sigmoid": self._sigmoid,
            "Sign": self._sign, "_LUT": self._lut,
            "Reshape": self._reshape, "Flatten": self._reshape, "Squeeze": self._reshape, "Unsqueeze": self._reshape,
            "Transpose": self._transpose, "Pad": self._pad,
            "Split": self._split, "Slice": self._slice, "Gather": self._gather, "HardSwish": self._hard_swish,
            "Resize": self._resize, "Upsample": self._resize, "_BMM": self._batch_matmul, "_Rsqrt": self._rsqrt,
            "Pow": self._pow, "_FUNC": self._float_function, "LSTM": self._lstm,
        }

    def _unsupported_node(self, node: _Node) -> None:
        """A node of an op type mcutool does not import (load_onnx(allow_unsupported=True), for inspect): an
        "unsupported" IR op from its run-time inputs to its first output, in its first input's layout when the
        ranks agree (an elementwise op's), else in ONNX's."""
        mode, q = self._mode(node, node.inputs)
        ins = [self._src(v, mode) for v in (self._val(i) for i in node.inputs if i) if v.const is None]
        reps = [self._rep(v, self._layouts(v)) for v in ins]
        out = self._val(node.outputs[0])
        layout = reps[0][1] if reps and len(out.shape) == len(ins[0].shape) and reps[0][1] != "flat" else "same"
        domain = node.proto.domain if node.proto is not None else ""
        label = f"{domain}.{node.op}" if domain not in ("", "ai.onnx") else node.op
        self._write(node, q, layout, "unsupported", [r for r, _ in reps], UnsupportedAttrs(label))

    def _no_int(self, node: _Node, mode: str) -> None:
        if mode == "int":
            raise self._err(node, "integer (int8/uint8) inputs are not supported for this op; quantized models "
                                  "must use QDQ (DequantizeLinear -> op -> QuantizeLinear) or QLinear* ops.")

    # conv ---------------------------------------------------------------------------------------------------------
    def _pads2d(self, node: _Node, hw, k, s, d) -> list[int]:
        auto = node.attrs.get("auto_pad", "NOTSET")
        if auto in ("NOTSET", ""):
            p = list(node.attrs.get("pads", [0, 0, 0, 0]))
            if len(p) != 4 or min(p) < 0:
                raise self._err(node, f"pads {p} are not supported.")
            return [p[0], p[1], p[2], p[3]]  # ONNX (top, left, bottom, right) = IR order
        if auto == "VALID":
            return [0, 0, 0, 0]
        begin, end = [], []
        for i in range(2):
            out = -(-hw[i] // s[i])
            total = max((out - 1) * s[i] + (k[i] - 1) * d[i] + 1 - hw[i], 0)
            small, big = total // 2, total - total // 2
            begin.append(small if auto == "SAME_UPPER" else big)
            end.append(big if auto == "SAME_UPPER" else small)
        return [begin[0], begin[1], end[0], end[1]]

    def _conv_float(self, node: _Node) -> None:
        mode, q = self._mode(node, node.inputs[:2])
        self._no_int(node, mode)
        x, w = self._val(node.inputs[0]), self._val(node.inputs[1])
        if len(x.shape) == 3:
            return self._conv1d(node, mode, x, w)
        b = node.inputs[2] if len(node.inputs) > 2 else ""
        x_ir, _ = self._rep(self._src(x, mode), ("nhwc",))
        wsrc, wq = self._weight(w, mode)
        bias = ""
        if b:
            if mode == "qdq":
                s_in = self._qp(x.deq.name).scale
                bias = self._int_bias(node, b, s_in * wq.scale)
            else:
                bias = self._float_bias(node, b)
        self._emit_conv(node, x_ir, x.shape, wsrc, wq, bias, q)

    def _conv1d(self, node: _Node, mode: str, x: _Val, w: _Val) -> None:
        """A float 1-D Conv (N, C, L) -> IR conv2d on (N, 1, L, C), reading and writing the "nlc" reps, as TFLite's
        converter lowers Keras' Conv1D (a reshape each side, no transpose)."""
        a = node.attrs
        if mode != "float" or w.const is None or a.get("group", 1) != 1 or a.get("auto_pad", "NOTSET") not in (
                "NOTSET", "", "VALID"):
            raise self._err(node, "only a float 1-D convolution with constant weights, group 1 and explicit pads "
                                  "is supported.")
        n, c, length = x.shape
        o, _, k = w.const.value.shape
        x_ir = self._rep(x, ("nlc",))[0]
        x4 = self._tensor(self._fresh(f"{x.name}_nhwc"), (n, 1, length, c), "float32")
        self._op(f"{node.name}/to_2d", "reshape", [x_ir], [x4])
        wt = self._const_tensor(f"{node.name}/weights", w.const.value.astype(np.float32).transpose(0, 2, 1)[:, None])
        bias = self._float_bias(node, node.inputs[2]) if len(node.inputs) > 2 and node.inputs[2] else ""
        y = self._val(node.outputs[0])
        y4 = self._tensor(self._fresh(f"{y.name}_nhwc"), (n, 1, y.shape[2], o), "float32")
        p = list(a.get("pads", [0, 0]))
        self._op(node.name, "conv2d", [x4, wt, bias], [y4],
                 Conv2DAttrs((1, a.get("strides", [1])[0]), (1, a.get("dilations", [1])[0]), (0, p[0], 0, p[1]),
                             node.act))
        self._op(f"{node.name}/to_1d", "reshape", [y4], [self._new_rep(y, "nlc")])

    def _weight(self, w: _Val, mode: str):
        """(weight source, its _QP or None): a _Const (float, or with integer origin) or a run-time _Val."""
        if w.const is not None:
            if mode == "qdq":
                c = w.const
                return c, _QP(c.q.scale, c.q.zp, c.q.axis)
            return w.const, None
        if mode == "qdq":
            return w.deq, self._qp(w.deq.name)
        return w, None

    def _float_bias(self, node: _Node, b: str) -> str:
        if b not in self.consts:
            raise self._err(node, f"its bias '{b}' is computed at run time; only a constant bias is supported.")
        return self._const_tensor(f"{node.name}/bias", self.consts[b].value.astype(np.float32).reshape(-1))

    def _int_bias(self, node: _Node, b: str, scale: np.ndarray, raw: bool = False) -> str:
        """int32 bias with scale s_in * s_w (per channel) and zero point 0. raw: the constant already is that."""
        if b not in self.consts:
            raise self._err(node, f"its bias '{b}' is computed at run time; only a constant bias is supported.")
        c = self.consts[b]
        scale = np.asarray(scale, np.float64).ravel()
        if raw:
            ints = np.asarray(c.value).astype(np.int32).reshape(-1)
        elif (c.q is not None and c.q.ints.dtype == np.int32 and not c.q.zp.any()
              and np.allclose(np.broadcast_to(c.q.scale, scale.shape), scale, rtol=1e-6, atol=0)):
            ints = c.q.ints.astype(np.int32).reshape(-1)
        else:
            ints = np.clip(np.round(c.value.astype(np.float64).reshape(-1) / scale), -2**31, 2**31 - 1)
            ints = ints.astype(np.int32)
        return self._const_tensor(f"{node.name}/bias", ints, Quant(scale, 0, 0 if scale.size > 1 else None))

    def _emit_conv(self, node: _Node, x_ir: str, xshape, w, wq: _QP | None, bias: str, q: _Node | None,
                   out_dtype_int32: bool = False) -> None:
        if len(xshape) != 4:
            raise self._err(node, f"only 2-D convolutions (4-D input) are supported, not a {len(xshape)}-D input.")
        n, c_in, h, wd = xshape
        wshape = w.value.shape if isinstance(w, _Const) else w.shape
        o, i_per_g, kh, kw = wshape
        group = node.attrs.get("group", 1)
        s = tuple(node.attrs.get("strides", (1, 1)))
        d = tuple(node.attrs.get("dilations", (1, 1)))
        pads = self._pads2d(node, (h, wd), (kh, kw), s, d)
        if i_per_g * group != c_in:
            raise self._err(node, f"its weights take {i_per_g * group} input channels ({i_per_g} per group, "
                                  f"group={group}) but its input has {c_in}; the model is inconsistent.")
        if group == 1:
            kind, depthwise = "conv2d", False
        elif group == c_in and i_per_g == 1 and o % c_in == 0:
            kind, depthwise = "depthwise_conv2d", True
        else:
            raise self._err(node, f"grouped convolution (group={group}, {c_in} input channels) is not supported; "
                                  f"only group=1 and depthwise (group = input channels).")
        out_shape = self._static_shape(q.outputs[0] if q is not None else node.outputs[0])
        for dim, (size, k, st, dl, p0, p1) in enumerate(((h, kh, s[0], d[0], pads[0], pads[2]),
                                                         (wd, kw, s[1], d[1], pads[1], pads[3]))):
            if (size + p0 + p1 - (k - 1) * dl - 1) // st + 1 != out_shape[2 + dim]:
                raise self._err(node, f"its output shape {list(out_shape)} does not follow from its attributes.")
        if wq is not None and max(wq.scale.size, wq.zp.size) > 1 and wq.axis not in (0, None):
            raise self._err(node, f"weights quantized per channel along axis {wq.axis} are not supported (only "
                                  f"along the output channels, axis 0).")
        if isinstance(w, _Const):
            if wq is not None:
                arr, zp = _to_int8(w.q.ints if w.q is not None else w.value, wq.zp)
            else:
                arr, zp = w.value.astype(np.float32), None
            arr = arr.reshape(o, kh, kw).transpose(1, 2, 0)[None] if depthwise else arr.transpose(0, 2, 3, 1)
            quant = None
            if wq is not None:
                per = max(wq.scale.size, zp.size) > 1
                quant = Quant(wq.scale, zp, (3 if depthwise else 0) if per else None)
            w_ir = self._const_tensor(f"{node.name}/weights", arr, quant)
        else:
            w_ir = self._transposed(self._runtime_weight(w), (1, 2, 3, 0) if depthwise else NCHW_TO_NHWC,
                                    f"{w.name}_ohwi")
        if depthwise:
            attrs = DepthwiseConv2DAttrs(s, d, tuple(pads), node.act, depth_multiplier=o // c_in,
                                         rounding=self._rounding(node, q))
        else:
            attrs = Conv2DAttrs(s, d, tuple(pads), node.act, rounding=self._rounding(node, q))
        self._write(node, q, "nhwc", kind, [x_ir, w_ir, bias], attrs)

    def _weight_qop(self, node: _Node, idx: int, scale: np.ndarray, zp: np.ndarray | None, axis: int):
        """The weight operand of a QOperator op: (_Const with integer origin, or run-time _Val), _QP."""
        name = node.inputs[idx]
        zp = np.zeros(1, np.int64) if zp is None else zp.astype(np.int64).ravel()
        scale = np.asarray(scale, np.float64).ravel()
        if name in self.consts:
            ints = np.asarray(self.consts[name].value)
            per = max(scale.size, zp.size) > 1
            c = _Const(ints.astype(np.float32), _QInfo(ints, scale, zp, axis if per else None))
            return c, _QP(scale, zp, axis if per else None)
        v = self._val(name)
        return v, self._qp(name)

    def _qlinear_conv(self, node: _Node) -> None:
        x = self._val(node.inputs[0])
        x_ir, _ = self._rep(x, ("nhwc",))
        x_scale = self._qparam(node, 1, "scale")
        w, wq = self._weight_qop(node, 3, self._qparam(node, 4, "scale"), self._qparam(node, 5, "zero point"), 0)
        bias = ""
        if len(node.inputs) > 8 and node.inputs[8]:
            bias = self._int_bias(node, node.inputs[8], x_scale.astype(np.float64) * wq.scale, raw=True)
        self._emit_conv(node, x_ir, x.shape, w, wq, bias, None)

    def _conv_integer(self, node: _Node) -> None:
        x = self._val(node.inputs[0])
        x_ir, _ = self._rep(x, ("nhwc",))
        zp = self._qparam(node, 3, "zero point")
        w, wq = self._weight_qop(node, 1, np.ones(1), zp, 0)
        if isinstance(w, _Const):
            wq = _QP(np.ones(max(wq.zp.size, 1)), wq.zp, wq.axis)
        self._emit_conv(node, x_ir, x.shape, w, wq, "", None)

    # fully connected ----------------------------------------------------------------------------------------------
    def _fc_float(self, node: _Node) -> None:
        a_name, w_name, b = node.inputs
        mode, q = self._mode(node, [a_name, w_name])
        self._no_int(node, mode)
        a = self._src(self._val(a_name), mode)
        wsrc, wq = self._weight(self._val(w_name), mode)
        bias = ""
        if b:
            if mode == "qdq":
                bias = self._int_bias(node, b, self._qp(a.name).scale * wq.scale)
            else:
                bias = self._float_bias(node, b)
        self._emit_fc(node, a, wsrc, wq, node.attrs["wT"], bias, q)

    def _emit_fc(self, node: _Node, a: _Val, w, wq: _QP | None, w_transposed: bool, bias: str,
                 q: _Node | None) -> None:
        if isinstance(w, _Const):
            a_ir, layout = self._rep(a, ("flat", "same"))
            if wq is not None:
                if wq.axis not in (None, 0):
                    raise self._err(node, "weights quantized per input feature are not supported (only per "
                                          "output feature or per tensor).")
                arr, zp = _to_int8(w.q.ints, wq.zp)
                per = max(wq.scale.size, zp.size) > 1
                quant = Quant(wq.scale, zp, 0 if per else None)
            else:
                arr, quant = w.value.astype(np.float32), None
            if layout == "flat":
                n, c, h, wd = a.flat
                arr = arr[:, np.arange(c * h * wd).reshape(c, h, wd).transpose(1, 2, 0).ravel()]
            w_ir = self._const_tensor(f"{node.name}/weights", arr, quant)
        else:
            a_ir, _ = self._rep(a, ("same",))
            src = self._runtime_weight(w)
            w_ir = self._transposed(src, (1, 0), f"{w.name}_t") if w_transposed else src
        self._write(node, q, "same", "fully_connected", [a_ir, w_ir, bias],
                    FullyConnectedAttrs(node.act, rounding=self._rounding(node, q)))

    @staticmethod
    def _rounding(node: _Node, q: _Node | None) -> str:
        """ir.ROUNDINGS of a conv, fully connected, batch matmul, mul or mean: "single" where the model's own arithmetic
        requantizes in float (DQ -> op -> Q, QLinearConv, QLinearMatMul: onnxruntime rounds acc * scale once),
        TFLite's where mcutool quantizes a float layer."""
        return "single" if q is not None or node.op.startswith("QLinear") else "tflite"

    def _batch_matmul(self, node: _Node) -> None:
        """MatMul of two run-time tensors (attention's Q K^T and P V) -> IR batch_matmul in ONNX's layout."""
        mode, q = self._mode(node, node.inputs[:2])
        self._no_int(node, mode)
        a, b = (self._src(self._val(n), mode) for n in node.inputs[:2])
        if min(len(a.shape), len(b.shape)) < 2:
            raise self._err(node, "a MatMul of a 1-D run-time operand is not supported.")
        a_ir, _ = self._rep(a, ("same",))
        b_ir, _ = self._rep(b, ("same",))
        self._write(node, q, "same", "batch_matmul", [a_ir, b_ir], BatchMatMulAttrs(rounding=self._rounding(node, q)))

    def _matmul_weight_qop(self, node: _Node, scale, zp):
        b = node.inputs[3] if node.op == "QLinearMatMul" else node.inputs[1]
        if len(self._static_shape(b)) != 2:
            raise self._err(node, "only a 2-D second operand is supported (a fully connected layer).")
        idx = 3 if node.op == "QLinearMatMul" else 1
        w, wq = self._weight_qop(node, idx, scale, zp, 1)
        if isinstance(w, _Const):  # (K, N) -> (N, K); per-column quantization becomes per-row
            w = _ctranspose(w, (1, 0))
            wq = _QP(wq.scale, wq.zp, 0 if wq.axis is not None else None)
        return w, wq

    def _qlinear_matmul(self, node: _Node) -> None:
        a = self._val(node.inputs[0])
        w, wq = self._matmul_weight_qop(node, self._qparam(node, 4, "scale"), self._qparam(node, 5, "zero point"))
        self._emit_fc(node, a, w, wq, True, "", None)

    def _matmul_integer(self, node: _Node) -> None:
        a = self._val(node.inputs[0])
        zp = self._qparam(node, 3, "zero point")
        w, wq = self._matmul_weight_qop(node, np.ones(1), zp)
        if isinstance(w, _Const):
            wq = _QP(np.ones(max(wq.zp.size, 1)), wq.zp, wq.axis)
        self._emit_fc(node, a, w, wq, True, "", None)

    # quantize / dequantize ----------------------------------------------------------------------------------------
    def _quantize(self, node: _Node) -> None:
        x = self._val(node.inputs[0])
        src_val = x.deq if x.deq is not None else x  # DequantizeLinear -> QuantizeLinear: one requantization
        src, layout = self._rep(src_val, self._layouts(src_val))
        out = self._val(node.outputs[0])
        if layout == "flat":
            out.flat = src_val.flat
        if (x.deq is not None and out.dtype == src_val.dtype and out.name not in self.out_set
                and _same_quant(self.g.tensor(src).quant, self._act_quant(out, layout))):
            out.reps[layout] = src  # DQ -> Q with the same scale and zero point: the same integers
            return
        self._op(node.name, "quantize", [src], [self._new_rep(out, layout)])

    def _dequantize(self, node: _Node) -> None:
        x = self._val(node.inputs[0])
        if x.dtype not in ("int8", "uint8"):
            raise self._err(node, f"dequantizing a run-time {x.dtype} tensor is not supported (int8/uint8 only).")
        self._val(node.outputs[0]).deq = x

    # elementwise --------------------------------------------------------------------------------------------------
    def _const_operand(self, node: _Node, c: _Const, layout: str, rank: int, quantized: bool) -> str:
        if quantized:
            if c.q is None or c.q.axis is not None:
                raise self._err(node, "a constant operand must be quantized per tensor (DequantizeLinear of int8).")
            arr, zp = _to_int8(c.q.ints, c.q.zp)
            quant = Quant(c.q.scale, zp)
        else:
            arr, quant = c.value.astype(np.float32), None
        if layout == "nhwc":
            arr = arr.reshape((1,) * (rank - arr.ndim) + arr.shape).transpose(NCHW_TO_NHWC)
        return self._const_tensor(f"{node.name}/const", arr, quant)

    def _pick_layout(self, vals: list[_Val], out_rank: int) -> str:
        acts = [v for v in vals if v.const is None]
        if out_rank == 4 and all(len(v.shape) == 4 for v in acts) and any(self._has(v, "nhwc") for v in acts):
            return "nhwc"
        return "same"

    def _binary(self, node: _Node) -> None:
        kind = {"Add": "add", "Sub": "add", "Mul": "mul", "Div": "mul"}[node.op]
        mode, q = self._mode(node, node.inputs[:2], qdq=node.op in ("Add", "Mul"))
        self._no_int(node, mode)
        a, b = self._val(node.inputs[0]), self._val(node.inputs[1])
        if node.op in ("Sub", "Div") and b.const is None:  # between activations: TFLite's SUB / DIV
            kind = node.op.lower()
        elif node.op in ("Sub", "Div"):
            v = b.const.value.astype(np.float32)
            b = _Val(b.name, b.shape, "float32", const=_Const(-v if node.op == "Sub" else 1.0 / v))
        out_shape = self._static_shape(node.outputs[0])
        layout = self._pick_layout([a, b], len(out_shape))
        ins = []
        for v in (a, b):
            if v.const is not None:
                ins.append(self._const_operand(node, v.const, layout, len(out_shape), mode == "qdq"))
            else:
                ins.append(self._rep(self._src(v, mode), (layout,))[0])
        rounding = self._rounding(node, q) if kind == "mul" else "tflite"  # add keeps TFLite's arithmetic
        self._write(node, q, layout, kind, ins, ElementwiseAttrs(node.act, rounding=rounding))

    def _concat(self, node: _Node) -> None:
        mode, q = self._mode(node, node.inputs)
        vals = [self._val(i) for i in node.inputs if i]
        out_shape = self._static_shape(node.outputs[0])
        rank = len(out_shape)
        axis = node.attrs.get("axis", 1) % rank
        layout = self._pick_layout(vals, rank)
        ins = []
        for v in vals:
            if v.const is not None:
                if mode == "int":
                    raise self._err(node, "concatenating an integer tensor with a constant is not supported.")
                ins.append(self._const_operand(node, v.const, layout, rank, mode == "qdq"))
            else:
                ins.append(self._rep(self._src(v, mode), (layout,))[0])
        ir_axis = list(_layout_perm(layout, rank)).index(axis)
        self._write(node, q, layout, "concat", ins, ConcatAttrs(ir_axis, node.act))

    def _sigmoid(self, node: _Node) -> None:
        mode, q = self._mode(node, node.inputs[:1])
        self._no_int(node, mode)
        x = self._src(self._val(node.inputs[0]), mode)
        x_ir, layout = self._rep(x, self._layouts(x))
        self._write(node, q, layout, "logistic", [x_ir], flat=x.flat if layout == "flat" else None)

    def _lut(self, node: _Node) -> None:
        """A QDQ island made one lookup table (_qdq_lookup_tables)."""
        x = self._val(node.inputs[0])
        x_ir, layout = self._rep(x, self._layouts(x))
        self._write(node, None, layout, "lut", [x_ir], LutAttrs(node.attrs["table"]),
                    flat=x.flat if layout == "flat" else None)

    def _sign(self, node: _Node) -> None:
        """Sign -> IR sign (+-1; a binary network's activation, DESIGN.md §8). The binarize pass turns a Sign
        feeding a Conv whose weights are +-alpha per output channel into packed bits."""
        mode, q = self._mode(node, node.inputs[:1])
        self._no_int(node, mode)
        x = self._src(self._val(node.inputs[0]), mode)
        x_ir, layout = self._rep(x, self._layouts(x))
        self._write(node, q, layout, "sign", [x_ir], flat=x.flat if layout == "flat" else None)

    def _softmax(self, node: _Node) -> None:
        mode, q = self._mode(node, node.inputs[:1])
        self._no_int(node, mode)
        x = self._src(self._val(node.inputs[0]), mode)
        r = len(x.shape)
        axis = node.attrs.get("axis", -1 if self.opset >= 13 else 1) % r
        axes = {axis} if self.opset >= 13 else set(range(axis, r))
        big = [a for a in axes if x.shape[a] > 1]
        if len(big) > 1:
            raise self._err(node, f"softmax over several axes {sorted(axes)} of shape {list(x.shape)} is not "
                                  f"supported.")
        a_star = big[0] if big else axis
        candidates = [L for L in self._layouts(x) if L != "flat"] + ["same", "nhwc"]
        for L in candidates:
            if L == "nhwc" and r != 4:
                continue
            if list(_layout_perm(L, r)).index(a_star) == r - 1:
                x_ir, _ = self._rep(x, (L,))
                self._write(node, q, L, "softmax", [x_ir], SoftmaxAttrs(1.0))
                return
        raise self._err(node, f"softmax along axis {axis} of shape {list(x.shape)} is not supported (only along "
                              f"the last axis, or the channel axis of a 4-D tensor).")

    # pools and means ----------------------------------------------------------------------------------------------
    def _pool(self, node: _Node) -> None:
        kind = "max_pool2d" if node.op == "MaxPool" else "avg_pool2d"
        if len(node.outputs) > 1 and node.outputs[1] and any(node.outputs[1] in n.inputs for n in self.nodes):
            raise self._err(node, "MaxPool's Indices output is not supported.")
        mode, q = self._mode(node, node.inputs[:1])
        if kind == "avg_pool2d":
            self._no_int(node, mode)
        x = self._src(self._val(node.inputs[0]), mode)
        if len(x.shape) != 4:
            raise self._err(node, "only 2-D pooling (4-D input) is supported.")
        k = tuple(node.attrs["kernel_shape"])
        s = tuple(node.attrs.get("strides", (1, 1)))
        if any(d != 1 for d in node.attrs.get("dilations", (1, 1))):
            raise self._err(node, "dilated pooling is not supported.")
        hw = x.shape[2:]
        pads = self._pads2d(node, hw, k, s, (1, 1))
        out_shape = self._static_shape(q.outputs[0] if q is not None else node.outputs[0])
        include_pad = bool(node.attrs.get("count_include_pad", 0))
        for i in range(2):
            floor_out = (hw[i] + pads[i] + pads[2 + i] - k[i]) // s[i] + 1
            want = out_shape[2 + i]
            if want > floor_out and node.attrs.get("ceil_mode", 0):
                if include_pad and kind == "avg_pool2d":
                    raise self._err(node, "ceil_mode=1 together with count_include_pad=1 is not supported.")
                pads[2 + i] += (want - 1) * s[i] + k[i] - (hw[i] + pads[i] + pads[2 + i])
            elif want != floor_out:
                raise self._err(node, f"its output shape {list(out_shape)} does not follow from its attributes.")
        x_ir, _ = self._rep(x, ("nhwc",))
        attrs = Pool2DAttrs(k, s, tuple(pads), node.act, include_pad and kind == "avg_pool2d")
        self._write(node, q, "nhwc", kind, [x_ir], attrs, keep_quant=x_ir)

    def _global_pool(self, node: _Node) -> None:
        mode, q = self._mode(node, node.inputs[:1])
        x = self._src(self._val(node.inputs[0]), mode)
        if len(x.shape) != 4:
            raise self._err(node, "only 4-D inputs are supported.")
        x_ir, _ = self._rep(x, ("nhwc",))
        if node.op == "GlobalMaxPool":
            hw = tuple(x.shape[2:])
            self._write(node, q, "nhwc", "max_pool2d", [x_ir], Pool2DAttrs(hw, (1, 1), (0, 0, 0, 0), node.act),
                        keep_quant=x_ir)
        else:
            self._no_int(node, mode)
            self._write(node, q, "nhwc", "mean", [x_ir], MeanAttrs((1, 2), True, rounding=self._rounding(node, q)))

    def _reduce_mean(self, node: _Node) -> None:
        mode, q = self._mode(node, node.inputs[:1])
        self._no_int(node, mode)
        x = self._src(self._val(node.inputs[0]), mode)
        r = len(x.shape)
        if self.opset >= 18 and len(node.inputs) > 1 and node.inputs[1]:
            if node.inputs[1] not in self.consts:
                raise self._err(node, "its axes are computed at run time; only constant axes are supported.")
            axes = [int(a) for a in np.asarray(self.consts[node.inputs[1]].value).ravel()]
        else:
            axes = list(node.attrs.get("axes", []))
        if not axes:
            if node.attrs.get("noop_with_empty_axes", 0):
                raise self._err(node, "noop_with_empty_axes is not supported.")
            axes = list(range(r))
        axes = sorted({a % r for a in axes})
        keep = bool(node.attrs.get("keepdims", 1))
        layout = "same"
        if r == 4 and self._has(x, "nhwc"):
            perm = list(NCHW_TO_NHWC)
            rest = [a for a in range(4) if a not in axes]
            if keep or sorted(rest, key=perm.index) == rest:
                layout = "nhwc"
        x_ir, _ = self._rep(x, (layout,))
        perm = list(_layout_perm(layout, r))
        out_layout = layout if keep else "same"
        self._write(node, q, out_layout, "mean", [x_ir], MeanAttrs(tuple(sorted(perm.index(a) for a in axes)), keep,
                                                                   rounding=self._rounding(node, q)))

    # shapes -------------------------------------------------------------------------------------------------------
    def _reshape(self, node: _Node) -> None:
        mode, q = self._mode(node, node.inputs[:1])
        x = self._src(self._val(node.inputs[0]), mode)
        out_name = q.outputs[0] if q is not None else node.outputs[0]
        out_shape = self._static_shape(out_name)
        layout, flat = "same", None
        if len(x.shape) == 4 and "same" not in x.reps and self._has(x, "nhwc") and x.deq is None:
            n, c, h, w = x.shape
            if c == 1 or h * w == 1:  # NHWC and NCHW hold the elements in the same order
                x_ir, _ = self._rep(x, ("nhwc",))
            elif tuple(out_shape) == (n, c * h * w) and self._feeds_only_fc(out_name):
                # a flatten whose readers are fully connected layers: they permute their weight columns instead
                x_ir, _ = self._rep(x, ("nhwc",))
                layout, flat = "flat", (n, c, h, w)
            else:
                x_ir, _ = self._rep(x, ("same",))
        else:
            x_ir, _ = self._rep(x, ("same",))
        self._write(node, q, layout, "reshape", [x_ir], keep_quant=x_ir, flat=flat)

    def _feeds_only_fc(self, name: str) -> bool:
        """Every reader of `name` is a fully connected layer with constant weights (through Q/DQ nodes)."""
        if name in self.out_set:
            return False
        readers = [n for n in self.nodes if not n.skip and name in n.inputs]
        for n in readers:
            if n.op in ("QuantizeLinear", "DequantizeLinear"):
                if not self._feeds_only_fc(n.outputs[0]):
                    return False
            elif not (n.op == "_FC" and n.inputs[0] == name and n.inputs[1] in self.consts):
                return False
        return bool(readers)

    def _transpose(self, node: _Node) -> None:
        mode, q = self._mode(node, node.inputs[:1])
        x = self._src(self._val(node.inputs[0]), mode)
        r = len(x.shape)
        perm = tuple(node.attrs.get("perm", tuple(reversed(range(r)))))
        choices = []
        for li in self._layouts(x):
            if li == "flat":
                continue
            inv_in = list(np.argsort(_layout_perm(li, r)))
            for lo in (("nhwc", "same") if r == 4 else ("nlc", "same") if self._feeds_conv1d(node.outputs[0])
                       else ("same",)):
                qperm = tuple(int(inv_in[perm[j]]) for j in _layout_perm(lo, r))
                choices.append((self._transpose_cost(x, li, qperm), li, lo, qperm))
        if not choices:
            choices = [(self._transpose_cost(x, "same", perm), "same", "same", perm)]
        cost, li, lo, qperm = min(choices, key=lambda t: t[0])
        x_ir, _ = self._rep(x, (li,))
        if cost == 0 and q is None:  # the IR tensor already holds the result: alias it
            self._val(node.outputs[0]).reps[lo] = x_ir
            return
        if cost <= 1:
            self._write(node, q, lo, "reshape", [x_ir], keep_quant=x_ir)
        else:
            self._write(node, q, lo, "transpose", [x_ir], TransposeAttrs(qperm), keep_quant=x_ir)

    def _feeds_conv1d(self, name: str) -> bool:
        """`name` is the input of a 1-D Conv (which reads it channels-last: the "nlc" rep)."""
        return len(self.shapes.get(name) or ()) == 3 and any(
            n.op == "Conv" and not n.skip and n.inputs[0] == name for n in self.nodes)

    def _transpose_cost(self, x: _Val, layout: str, perm: tuple) -> int:
        """0: `perm` keeps x's `layout` rep as it is; 1: it moves only axes of size 1 (a reshape); 2: a transpose."""
        if perm == tuple(range(len(perm))):
            return 0
        shape = self._ir_shape(x, layout)
        moved = [a for a in perm if shape[a] != 1]
        return 1 if moved == sorted(moved) else 2

    def _data_layout(self, x: _Val) -> str:
        """NHWC for a 4-D value that has (or is made from) an NHWC rep, else ONNX's own order."""
        return "nhwc" if len(x.shape) == 4 and self._has(x, "nhwc") else "same"

    def _split(self, node: _Node) -> None:
        """Split (sizes as the `split` attribute, as an input from opset 13, or num_outputs from opset 18: the
        outputs' shapes say them all) -> IR split, in the input's layout."""
        mode, _ = self._mode(node, node.inputs[:1], qdq=False)
        x = self._val(node.inputs[0])
        r = len(x.shape)
        axis = node.attrs.get("axis", 0) % r
        layout = self._data_layout(x)
        x_ir, _ = self._rep(x, (layout,))
        outs = [self._new_rep(self._val(o), layout) for o in node.outputs if o]
        if len(outs) != len(node.outputs):
            raise self._err(node, "an unused (empty-named) output is not supported.")
        self._op(node.name, "split", [x_ir], outs, AxisAttrs(list(_layout_perm(layout, r)).index(axis)))

    def _slice(self, node: _Node) -> None:
        """Slice with constant starts/ends/axes/steps (positive) -> IR strided_slice, each axis resolved as ONNX
        clamps it."""
        mode, q = self._mode(node, node.inputs[:1])
        x = self._src(self._val(node.inputs[0]), mode)
        r = len(x.shape)
        if self.opset < 10:
            starts, ends = node.attrs["starts"], node.attrs["ends"]
            axes, steps = node.attrs.get("axes", list(range(len(starts)))), [1] * len(starts)
        else:
            def const(i, default):
                name = node.inputs[i] if len(node.inputs) > i else ""
                if not name:
                    return default
                if name not in self.consts:
                    raise self._err(node, f"its input '{name}' is computed at run time; only constant starts, "
                                          f"ends, axes and steps are supported.")
                return [int(v) for v in np.asarray(self.consts[name].value).ravel()]
            starts, ends = const(1, None), const(2, None)
            axes = const(3, list(range(len(starts))))
            steps = const(4, [1] * len(starts))
        begin, end, stride = [0] * r, list(x.shape), [1] * r
        for a, st, en, sp in zip(axes, starts, ends, steps):
            a %= r
            if sp <= 0:
                raise self._err(node, f"step {sp} is not supported (only positive steps).")
            dim = x.shape[a]
            begin[a] = min(max(st + dim if st < 0 else st, 0), dim)
            end[a] = min(max(en + dim if en < 0 else en, 0), dim)
            stride[a] = sp
        layout = self._data_layout(x)
        x_ir, _ = self._rep(x, (layout,))
        perm = _layout_perm(layout, r)
        attrs = StridedSliceAttrs(tuple(begin[a] for a in perm), tuple(end[a] for a in perm),
                                  tuple(stride[a] for a in perm))
        self._write(node, q, layout, "strided_slice", [x_ir], attrs, keep_quant=x_ir)

    def _gather(self, node: _Node) -> None:
        """Gather of a run-time tensor by constant indices -> IR gather (int32 indices, negative ones resolved)."""
        mode, q = self._mode(node, node.inputs[:1])
        x = self._src(self._val(node.inputs[0]), mode)
        idx = node.inputs[1]
        if idx not in self.consts:
            raise self._err(node, "its indices are computed at run time; only constant indices are supported.")
        r = len(x.shape)
        axis = node.attrs.get("axis", 0) % r
        ind = np.asarray(self.consts[idx].value).astype(np.int64)
        ind = np.where(ind < 0, ind + x.shape[axis], ind).astype(np.int32)
        if ind.ndim == 0:  # one index drops the axis: a strided slice that shrinks it (as TFLite writes out[:, -1])
            x_ir, _ = self._rep(x, ("same",))
            begin = tuple(int(ind) if a == axis else 0 for a in range(r))
            end = tuple(int(ind) + 1 if a == axis else d for a, d in enumerate(x.shape))
            self._write(node, q, "same", "strided_slice", [x_ir],
                        StridedSliceAttrs(begin, end, (1,) * r, shrink_axis_mask=1 << axis), keep_quant=x_ir)
            return
        layout = self._data_layout(x) if ind.ndim == 1 else "same"  # a 1-D index keeps the rank
        x_ir, _ = self._rep(x, (layout,))
        ind_ir = self._const_tensor(f"{node.name}/indices", ind)
        ir_axis = list(_layout_perm(layout, r)).index(axis)
        self._write(node, q, layout, "gather", [x_ir, ind_ir], GatherAttrs(ir_axis, 0), keep_quant=x_ir)

    def _resize(self, node: _Node) -> None:
        """Resize/Upsample of the H and W of a 4-D tensor -> IR resize_nearest_neighbor / resize_bilinear, for
        the coordinate modes whose source pixels TFLite's kernels compute the same way (below); the output size
        is the output's inferred shape."""
        mode, q = self._mode(node, node.inputs[:1])
        x = self._src(self._val(node.inputs[0]), mode)
        out_shape = self._static_shape(q.outputs[0] if q is not None else node.outputs[0])
        if len(x.shape) != 4 or tuple(out_shape[:2]) != tuple(x.shape[:2]):
            raise self._err(node, f"only resizing the height and width of a 4-D NCHW tensor is supported "
                                  f"({list(x.shape)} -> {list(out_shape)}).")
        how = node.attrs.get("mode", "nearest")
        coords = node.attrs.get("coordinate_transformation_mode", "half_pixel" if self.opset >= 11 else
                                "asymmetric")
        nearest = node.attrs.get("nearest_mode", "round_prefer_floor" if self.opset >= 11 else "floor")
        if self.opset < 11:
            nearest = "floor"  # Resize-10 / Upsample: floor(out / scale), TFLite's default
        up = [o % i == 0 for o, i in zip(out_shape[2:], x.shape[2:])]
        if how == "nearest":
            table = {("asymmetric", "floor"): (False, False), ("align_corners", "round_prefer_ceil"): (True, False),
                     ("half_pixel", "round_prefer_ceil"): (False, True)}
            key = (coords, nearest)
            if key == ("half_pixel", "round_prefer_floor") and all(up):  # integer factors: no ties
                key = ("half_pixel", "round_prefer_ceil")
            if key == ("pytorch_half_pixel", nearest) and all(o > 1 for o in out_shape[2:]):
                key = ("half_pixel", nearest)
            kind = "resize_nearest_neighbor"
        elif how == "linear":
            table = {"asymmetric": (False, False), "align_corners": (True, False), "half_pixel": (False, True)}
            key = "half_pixel" if coords == "pytorch_half_pixel" and all(o > 1 for o in out_shape[2:]) else coords
            kind = "resize_bilinear"
        else:
            raise self._err(node, f"mode '{how}' is not supported (only nearest and linear).")
        if key not in table or node.attrs.get("antialias", 0) or node.attrs.get("exclude_outside", 0):
            raise self._err(node, f"mode '{how}' with coordinate_transformation_mode '{coords}'"
                                  f"{f' and nearest_mode {nearest!r}' if how == 'nearest' else ''} is not supported: "
                                  f"TFLite's resize kernels take asymmetric, align_corners or half_pixel source "
                                  f"coordinates (nearest: floor, round_prefer_ceil, round_prefer_ceil).")
        x_ir, _ = self._rep(x, ("nhwc",))
        self._write(node, q, "nhwc", kind, [x_ir], ResizeAttrs(*table[key]), keep_quant=x_ir)

    def _float_function(self, node: _Node) -> None:
        """A float model's elementwise function of one tensor (_float_functions) -> IR float_function."""
        from mcutool.ops.float_function import FunctionAttrs
        mode, _ = self._mode(node, node.inputs[:1], qdq=False)
        self._no_int(node, mode)
        x = self._val(node.inputs[0])
        x_ir, layout = self._rep(x, self._layouts(x))
        self._write(node, None, layout, "float_function", [x_ir],
                    FunctionAttrs(node.attrs["model"], node.attrs["label"]), flat=x.flat if layout == "flat" else None)

    def _pow(self, node: _Node) -> None:
        raise self._err(node, "only Pow(x, 2) of a run-time tensor (a layer norm's square) is supported, as x * x.")

    def _rsqrt(self, node: _Node) -> None:
        """1 / Sqrt(x) of a layer norm (_normalization_forms) -> IR rsqrt."""
        mode, q = self._mode(node, node.inputs[:1])
        self._no_int(node, mode)
        x = self._src(self._val(node.inputs[0]), mode)
        x_ir, layout = self._rep(x, [L for L in self._layouts(x) if L != "flat"] or ["same"])
        self._write(node, q, layout, "rsqrt", [x_ir], NoAttrs())

    def _hard_swish(self, node: _Node) -> None:
        """HardSwish outside a QDQ island (a float model, or int8 QOperator tensors) -> IR hard_swish (TFLite's
        arithmetic once quantized)."""
        mode, q = self._mode(node, node.inputs[:1])
        x = self._src(self._val(node.inputs[0]), mode)
        x_ir, layout = self._rep(x, self._layouts(x))
        self._write(node, q, layout, "hard_swish", [x_ir], NoAttrs(), flat=x.flat if layout == "flat" else None)

    def _pad(self, node: _Node) -> None:
        mode, q = self._mode(node, node.inputs[:1])
        x = self._src(self._val(node.inputs[0]), mode)
        r = len(x.shape)
        if node.attrs.get("mode", "constant") != "constant":
            raise self._err(node, f"pad mode '{node.attrs['mode']}' is not supported (only constant).")
        if self.opset < 11:
            pads, value = list(node.attrs["pads"]), node.attrs.get("value", 0.0)
            axes = list(range(r))
        else:
            if node.inputs[1] not in self.consts:
                raise self._err(node, "its pads are computed at run time; only constant pads are supported.")
            pads = [int(p) for p in np.asarray(self.consts[node.inputs[1]].value).ravel()]
            value = 0.0
            if len(node.inputs) > 2 and node.inputs[2]:
                if node.inputs[2] not in self.consts:
                    raise self._err(node, "its pad value is computed at run time.")
                value = float(np.asarray(self.consts[node.inputs[2]].value).ravel()[0])
            axes = list(range(r))
            if len(node.inputs) > 3 and node.inputs[3]:
                axes = [int(a) % r for a in np.asarray(self.consts[node.inputs[3]].value).ravel()]
        if value != 0.0:
            raise self._err(node, f"padding with {value} is not supported (only with zeros).")
        if min(pads) < 0:
            raise self._err(node, "negative pads (cropping) are not supported.")
        per_dim = [(0, 0)] * r
        for j, a in enumerate(axes):
            per_dim[a] = (pads[j], pads[j + len(axes)])
        layout = "nhwc" if r == 4 and self._has(x, "nhwc") else "same"
        x_ir, _ = self._rep(x, (layout,))
        ir_pads = tuple(per_dim[a] for a in _layout_perm(layout, r))
        self._write(node, q, layout, "pad", [x_ir], PadAttrs(ir_pads), keep_quant=x_ir)

    # LSTM -----------------------------------------------------------------------------------------------------
    # ONNX's gate order is i, o, f, c; TFLite's (the IR lstm's inputs 1-4, 5-8, 12-15) input, forget, cell, output
    _LSTM_GATES = (0, 2, 3, 1)  # the ONNX gate of each TFLite gate

    def _lstm_refusal(self, node: _Node) -> str | None:
        """Why this ONNX LSTM is not the standard one-direction LSTM TFLite Micro's integer kernel runs, or None."""
        a = node.attrs
        ins = node.inputs + [""] * (8 - len(node.inputs))
        acts = [s.decode() if isinstance(s, bytes) else s for s in a.get("activations", [])]
        if a.get("direction", "forward") != "forward":
            return (f"direction '{a['direction']}': only a forward LSTM runs (TFLite Micro's "
                    "UNIDIRECTIONAL_SEQUENCE_LSTM); export a bidirectional layer as two LSTMs")
        if ins[7]:
            return "it has peephole weights P; TFLite Micro's integer LSTM has none"
        if a.get("clip") is not None:
            return "it clips the gate inputs (clip); TFLite Micro's integer LSTM cannot"
        if a.get("input_forget", 0):
            return "it couples the input and forget gates (input_forget); TFLite Micro's integer LSTM cannot"
        if acts and acts != ["Sigmoid", "Tanh", "Tanh"] or a.get("activation_alpha") or a.get("activation_beta"):
            return f"activations {acts}: only the default Sigmoid, Tanh, Tanh run"
        if a.get("layout", 0) not in (0, 1):
            return f"layout {a['layout']} is not 0 or 1"
        if ins[4]:
            return "it takes sequence_lens; mcutool runs every sequence to its full length"
        if len(node.outputs) > 2 and node.outputs[2] in self._read_values():
            return "its final cell state Y_c is read; mcutool's LSTM gives its output sequence and last hidden state"
        for k, what in ((1, "W"), (2, "R"), (3, "B")):
            if ins[k] and ins[k] not in self.consts:
                return f"its {what} is computed at run time; mcutool needs constant weights"
        for k, what in ((5, "initial_h"), (6, "initial_c")):
            if ins[k] and (ins[k] not in self.consts or np.any(np.asarray(self.consts[ins[k]].value) != 0)):
                return f"its {what} is not zero; mcutool's LSTM starts from the zero state"
        return None

    def _read_values(self) -> set[str]:
        """The values some node still to import, or the graph's outputs, read."""
        return {i for n in self.nodes if not n.skip for i in n.inputs if i} | self.out_set

    def _lstm(self, node: _Node) -> None:
        """A forward ONNX LSTM -> the IR lstm TFLite's importer makes (UNIDIRECTIONAL_SEQUENCE_LSTM, batch-major),
        float weights per gate, float hidden and cell state tensors (variable; reset_each_call: every inference starts
        from the zero state, as ONNX's does, not from the last one's as TFLite's); quantize_graph makes
        it TFLite's 8x8->16 integer LSTM. Batch 1: X, Y and Y_h are reshapes of the IR input/output, Y_h is the last
        step of the output sequence."""
        why = self._lstm_refusal(node)
        mode, _ = self._mode(node, node.inputs[:1], qdq=False)
        if why is None and mode != "float":
            why = "it reads an integer tensor; mcutool imports a float ONNX LSTM (quantized from --calib)"
        if why is not None:
            raise self._err(node, f"this LSTM cannot be imported: {why}.")
        ins = node.inputs + [""] * (8 - len(node.inputs))
        x = self._val(ins[0])
        layout, hidden = node.attrs.get("layout", 0), int(self.consts[ins[2]].value.shape[-1])
        steps, batch, n_in = x.shape if layout == 0 else (x.shape[1], x.shape[0], x.shape[2])
        if batch != 1:
            raise self._err(node, f"this LSTM cannot be imported: batch {batch}; mcutool compiles batch 1.")
        x_ir = self._rep(x, ("same",))[0]
        seq = self._tensor(self._fresh(f"{node.name}/input"), (1, steps, n_in), "float32")
        self._op(f"{node.name}/input", "reshape", [x_ir], [seq])
        w, r = (np.asarray(self.consts[ins[k]].value, np.float32)[0] for k in (1, 2))
        b = (np.asarray(self.consts[ins[3]].value, np.float32)[0] if ins[3] else np.zeros(8 * hidden, np.float32))
        gate = lambda a, g: a[g * hidden:(g + 1) * hidden]  # noqa: E731
        names = ("input", "forget", "cell", "output")
        wx = [self._const_tensor(f"{node.name}/{n}_weights", gate(w, g)) for n, g in zip(names, self._LSTM_GATES)]
        wh = [self._const_tensor(f"{node.name}/{n}_recurrent_weights", gate(r, g))
              for n, g in zip(names, self._LSTM_GATES)]
        bias = [self._const_tensor(f"{node.name}/{n}_bias", gate(b, g) + gate(b, 4 + g))
                for n, g in zip(names, self._LSTM_GATES)]
        state = [self._fresh(f"{node.name}/{n}_state") for n in ("hidden", "cell")]
        for s in state:
            self.g.add_tensor(Tensor(s, (1, hidden), "float32", variable=True))
        inputs = [seq, *wx, *wh, "", "", "", *bias, "", "", *state, "", "", "", ""]
        out = self._tensor(self._fresh(f"{node.name}/output"), (1, steps, hidden), "float32")
        self._op(node.name, "lstm", inputs, [out], LstmAttrs("tanh", 0.0, False, reset_each_call=True))
        read = self._read_values()
        y, y_h = ((o if o in read else "") for o in (node.outputs + ["", ""])[:2])
        if y:
            self._op(f"{node.name}/Y", "reshape", [out], [self._new_rep(self._val(y), "same")])
        if y_h:
            self._op(f"{node.name}/Y_h", "strided_slice", [out], [self._new_rep(self._val(y_h), "same")],
                     StridedSliceAttrs((0, steps - 1, 0), (1, steps, hidden), (1, 1, 1)))
