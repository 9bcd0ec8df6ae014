"""Small branched int8 networks for the arena-planner tests, with random weights and calibrated scales.

A `Net` is written as float layers (random weights); `write` runs the float network on calibration inputs
(mcutool.reference's float kernels, used here only to pick scales), quantizes it TFLite-style (weights
symmetric per output channel, activations asymmetric over the central 99 % of calibration values, bias int32
at s_in * s_w) and serializes it with tflite_builder.ModelBuilder. Inputs joined by CONCATENATION share their
output's quantization (TFLite Micro requires it for int8); pooling and reshape keep their input's.

Three graphs, each ending in a 10-class FULLY_CONNECTED:
- residual: a stem and two inverted-residual blocks (1x1 expand, 3x3 depthwise, 1x1 project, ADD);
- inception: four parallel branches (1x1; 1x1 -> 3x3; depthwise -> 1x1; 3x3 average pool -> 1x1) concatenated;
- diamond: one wide branch (expand x4 then project) and one narrow branch (1x1), joined by an ADD.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from mcutool import reference as R
from tflite_builder import ModelBuilder


def calibrate(real) -> tuple[float, int]:
    lo, hi = np.percentile(np.asarray(real, dtype=np.float64), [0.5, 99.5])
    lo, hi = min(lo, 0.0), max(hi, 0.0)
    scale = float(np.float32((hi - lo) / 255)) if hi > lo else 1.0
    return scale, int(np.clip(round(-128 - lo / scale), -128, 127))


def _merged(groups: list[list[str]]) -> list[list[str]]:
    """Groups that share a member become one group."""
    out: list[set[str]] = []
    for g in groups:
        g = set(g)
        for o in [o for o in out if o & g]:
            out.remove(o)
            g |= o
        out.append(g)
    return [sorted(g) for g in out]


def _same_pads(size: int, k: int, s: int) -> tuple[int, int, int]:
    out = -(-size // s)
    total = max((out - 1) * s + k - size, 0)
    return out, total // 2, total - total // 2


class Net:
    def __init__(self, name: str, in_shape: tuple[int, ...], seed: int):
        self.name = name
        self.rng = np.random.default_rng(seed)
        self.shapes = {"x": tuple(in_shape)}
        self.layers: list[dict] = []
        self.shared: list[list[str]] = []  # groups of tensors that must share one quantization
        self.output = "x"

    def _add(self, kind, inputs, shape, **p) -> str:
        name = f"t{len(self.layers)}_{kind}"
        self.shapes[name] = tuple(shape)
        self.layers.append(dict(kind=kind, inputs=list(inputs), out=name, **p))
        self.output = name
        return name

    def conv(self, x, cout, k=1, stride=1, act="RELU6"):
        n, h, w, c = self.shapes[x]
        oh, pt, pb = _same_pads(h, k, stride)
        ow, pl, pr = _same_pads(w, k, stride)
        wt = self.rng.normal(0, np.sqrt(2.0 / (k * k * c)), (cout, k, k, c)).astype(np.float32)
        b = self.rng.normal(0, 0.1, cout).astype(np.float32)
        return self._add("conv", [x], (n, oh, ow, cout), w=wt, b=b, stride=stride, pads=(pt, pl, pb, pr), act=act)

    def dw(self, x, k=3, stride=1, act="RELU6"):
        n, h, w, c = self.shapes[x]
        oh, pt, pb = _same_pads(h, k, stride)
        ow, pl, pr = _same_pads(w, k, stride)
        wt = self.rng.normal(0, np.sqrt(2.0 / (k * k)), (1, k, k, c)).astype(np.float32)
        b = self.rng.normal(0, 0.1, c).astype(np.float32)
        return self._add("dw", [x], (n, oh, ow, c), w=wt, b=b, stride=stride, pads=(pt, pl, pb, pr), act=act)

    def add(self, a, b):
        return self._add("add", [a, b], self.shapes[a])

    def concat(self, xs):
        n, h, w, _ = self.shapes[xs[0]]
        out = self._add("concat", xs, (n, h, w, sum(self.shapes[x][3] for x in xs)))
        self.shared.append(list(xs) + [out])
        return out

    def avgpool(self, x, k=3):
        n, h, w, c = self.shapes[x]
        out = self._add("avgpool", [x], (n, h, w, c), k=k, pads=(k // 2,) * 4)
        self.shared.append([x, out])
        return out

    def global_pool(self, x):
        n, h, w, c = self.shapes[x]
        out = self._add("gpool", [x], (n, 1, 1, c))
        self.shared.append([x, out])
        return out

    def classifier(self, x, classes=10):
        n, _, _, c = self.shapes[x]
        flat = self._add("reshape", [x], (n, c))
        self.shared.append([x, flat])
        wt = self.rng.normal(0, np.sqrt(1.0 / c), (classes, c)).astype(np.float32)
        b = self.rng.normal(0, 0.1, classes).astype(np.float32)
        return self._add("fc", [flat], (n, classes), w=wt, b=b)

    # -- float execution (calibration only) -----------------------------------------------------------------
    def run_float(self, x: np.ndarray) -> dict[str, np.ndarray]:
        v = {"x": x.astype(np.float32)}
        for L in self.layers:
            ins = [v[i] for i in L["inputs"]]
            shape = self.shapes[L["out"]]
            geo = dict(stride=(L.get("stride", 1),) * 2, dilation=(1, 1), pads=L.get("pads"), out_hw=shape[1:3])
            act = {"RELU6": "relu6", "NONE": "none"}.get(L.get("act", "NONE"))
            if L["kind"] == "conv":
                y = R.conv2d_float(ins[0], L["w"], L["b"], activation=act, **geo)
            elif L["kind"] == "dw":
                y = R.depthwise_conv2d_float(ins[0], L["w"], L["b"], depth_multiplier=1, activation=act, **geo)
            elif L["kind"] == "add":
                y = ins[0] + ins[1]
            elif L["kind"] == "concat":
                y = np.concatenate(ins, axis=-1)
            elif L["kind"] == "avgpool":
                k = L["k"]
                y = R.avg_pool2d_float(ins[0], filter=(k, k), stride=(1, 1), pads=L["pads"], out_hw=shape[1:3])
            elif L["kind"] == "gpool":
                y = ins[0].mean(axis=(1, 2), keepdims=True)
            elif L["kind"] == "reshape":
                y = ins[0].reshape(len(ins[0]), -1)
            else:
                y = R.fully_connected_float(ins[0], L["w"], L["b"])
            v[L["out"]] = y.astype(np.float32)
        return v

    # -- int8 model ---------------------------------------------------------------------------------------------
    def standardize_classifier(self, calib: np.ndarray) -> None:
        """Rescale the classifier so its inputs count as standardized features: global pooling of random
        features is nearly the same for every input, and the logits would otherwise always pick one class."""
        fc = self.layers[-1]
        feats = np.concatenate([self.run_float(x[None])[fc["inputs"][0]] for x in calib])
        mean, std = feats.mean(axis=0), feats.std(axis=0) + 1e-6
        fc["w"] = (fc["w"] / std).astype(np.float32)
        fc["b"] = (-(fc["w"] @ mean)).astype(np.float32)

    def quant_params(self, calib: np.ndarray) -> dict[str, tuple[float, int]]:
        values = {}
        for x in calib:
            for k, a in self.run_float(x[None]).items():
                values.setdefault(k, []).append(a.ravel())
        q = {k: calibrate(np.concatenate(a)) for k, a in values.items()}
        for group in _merged(self.shared):
            joint = calibrate(np.concatenate([np.concatenate(values[k]) for k in group]))
            for k in group:
                q[k] = joint
        return q

    def write(self, path: Path, calib: np.ndarray, float_io: bool = False) -> tuple[Path, dict]:
        """The int8 model; `float_io`: with float32 input and output wrapped in QUANTIZE / DEQUANTIZE, as the
        TFLite converter writes an int8 model by default (the int8 tensors are then "x_int8" and the last
        layer's; the float output is "y")."""
        self.standardize_classifier(calib)
        q = self.quant_params(calib)
        return self._build(path, q, float_io), q

    def write_float(self, path: Path, calib: np.ndarray) -> Path:
        """The float32 model (float weights and biases), as post-training quantization takes it."""
        self.standardize_classifier(calib)
        return self._build(path, None)

    def _weights(self, b: ModelBuilder, L: dict, q: dict | None) -> tuple[int, int]:
        """The weight and bias tensors of a conv / dw / fc layer: float, or int8 / int32 TFLite-style."""
        w, out = L["w"], L["out"]
        if q is None:
            return b.tensor(out + "_w", w.shape, "float32", data=w), b.tensor(out + "_b", L["b"].shape, "float32",
                                                                              data=L["b"])
        s_in = q[L["inputs"][0]][0]
        axis = 3 if L["kind"] == "dw" else 0
        reduce = tuple(a for a in range(w.ndim) if a != axis)
        s_w = (np.abs(w).max(axis=reduce) / 127).astype(np.float32)
        if L["kind"] == "fc":  # per tensor, as TFLite quantizes fully connected weights
            s_w = np.full(w.shape[0], np.float32(np.abs(w).max() / 127))
        shape = [1] * w.ndim
        shape[axis] = -1
        wq = np.clip(np.round(w / s_w.reshape(shape)), -127, 127).astype(np.int8)
        bias_scale = (np.float32(s_in) * s_w).astype(np.float32)
        bq = np.round(L["b"] / bias_scale).astype(np.int32)
        ws = float(s_w[0]) if L["kind"] == "fc" else s_w
        wi = b.tensor(out + "_w", w.shape, "int8", scale=ws, zero_point=0, axis=axis, data=wq)
        bi = b.tensor(out + "_b", bq.shape, "int32",
                      scale=float(bias_scale[0]) if L["kind"] == "fc" else bias_scale, zero_point=0, data=bq)
        return wi, bi

    def _build(self, path: Path, q: dict | None, float_io: bool = False) -> Path:
        """Serialize the layers: int8 with activation quantization `q`, or float32 when q is None."""
        b = ModelBuilder(self.name)

        def act(name, shape, as_name=None):
            if q is None:
                return b.tensor(as_name or name, shape, "float32")
            return b.tensor(as_name or name, shape, "int8", scale=q[name][0], zero_point=q[name][1])

        idx = {"x": act("x", self.shapes["x"], "x_int8" if float_io else None)}
        for L in self.layers:
            out = L["out"]
            idx[out] = act(out, self.shapes[out])
            ins = [idx[i] for i in L["inputs"]]
            if L["kind"] in ("conv", "dw", "fc"):
                wi, bi = self._weights(b, L, q)
                if L["kind"] == "fc":
                    b.op("FULLY_CONNECTED", [ins[0], wi, bi], [idx[out]], "FullyConnectedOptions",
                         FusedActivationFunction="NONE")
                else:
                    opts = dict(Padding="SAME", StrideH=L["stride"], StrideW=L["stride"], FusedActivationFunction=L["act"])
                    if L["kind"] == "conv":
                        b.op("CONV_2D", [ins[0], wi, bi], [idx[out]], "Conv2DOptions", **opts)
                    else:
                        b.op("DEPTHWISE_CONV_2D", [ins[0], wi, bi], [idx[out]], "DepthwiseConv2DOptions", version=2,
                             DepthMultiplier=1, **opts)
            elif L["kind"] == "add":
                b.op("ADD", ins, [idx[out]], "AddOptions", FusedActivationFunction="NONE")
            elif L["kind"] == "concat":
                b.op("CONCATENATION", ins, [idx[out]], "ConcatenationOptions", Axis=3, FusedActivationFunction="NONE")
            elif L["kind"] in ("avgpool", "gpool"):
                k = L.get("k")
                fh, fw = (k, k) if k else self.shapes[L["inputs"][0]][1:3]
                b.op("AVERAGE_POOL_2D", ins, [idx[out]], "Pool2DOptions", Padding="SAME" if k else "VALID",
                     StrideH=1, StrideW=1, FilterHeight=fh, FilterWidth=fw, FusedActivationFunction="NONE")
            elif L["kind"] == "reshape":
                shape = b.const(out + "_shape", np.array(self.shapes[out], dtype=np.int32))
                b.op("RESHAPE", [ins[0], shape], [idx[out]], "ReshapeOptions", NewShape=list(self.shapes[out]))
        b.inputs, b.outputs = [idx["x"]], [idx[self.output]]
        if float_io:
            x, y = b.tensor("x", self.shapes["x"], "float32"), b.tensor("y", self.shapes[self.output], "float32")
            b.op("QUANTIZE", [x], [idx["x"]])
            b.ops.insert(0, b.ops.pop())  # the first op
            b.op("DEQUANTIZE", [idx[self.output]], [y])
            b.inputs, b.outputs = [x], [y]
        return b.write(path)


def residual_net() -> Net:
    n = Net("residual", (1, 16, 16, 8), seed=11)
    x = n.conv("x", 16, k=3)
    for expand in (48, 48):
        h = n.conv(x, expand)
        h = n.dw(h)
        h = n.conv(h, 16, act="NONE")
        x = n.add(x, h)
    n.classifier(n.global_pool(x))
    return n


def inception_net() -> Net:
    n = Net("inception", (1, 12, 12, 8), seed=12)
    s = n.conv("x", 16, k=3)
    b1 = n.conv(s, 8)
    b2 = n.conv(n.conv(s, 8), 12, k=3)
    b3 = n.conv(n.dw(s), 6)
    b4 = n.conv(n.avgpool(s), 6)
    n.classifier(n.global_pool(n.concat([b1, b2, b3, b4])))
    return n


def diamond_net() -> Net:
    n = Net("diamond", (1, 16, 16, 8), seed=13)
    s = n.conv("x", 8)
    narrow = n.conv(s, 16, k=3, act="NONE")
    wide = n.conv(n.dw(n.conv(s, 64)), 16, act="NONE")
    n.classifier(n.global_pool(n.add(narrow, wide)))
    return n


NETS = {"residual": residual_net, "inception": inception_net, "diamond": diamond_net}


def inputs(shape, count: int, seed: int) -> np.ndarray:
    """Float inputs with spatial structure (smooth blobs plus noise), so features vary between samples."""
    rng = np.random.default_rng(seed)
    n, h, w, c = shape
    yy, xx = np.mgrid[0:h, 0:w] / max(h, w)
    out = []
    for _ in range(count):
        f = rng.normal(0, 1, (c, 3))
        img = np.stack([np.sin(6 * f[i, 0] * xx + 6 * f[i, 1] * yy + 3 * f[i, 2]) for i in range(c)], -1)
        out.append(img + 0.3 * rng.normal(0, 1, img.shape))
    return np.asarray(out, dtype=np.float32)
