"""Small int8 TFLite networks for the patch-based inference tests, and a MobileNetV2-style one at 224x224.

A network is a list of layer specs. `build_net` draws float weights, runs a float forward pass (the float32
functions of mcutool.reference) over calibration inputs to set every activation's scale and zero point
(min/max over the calibration set), quantizes weights per output channel and writes the int8 model with
tests/tflite_builder.py. Specs:

    ("conv", out_c, k, stride, padding, act)      padding "SAME" | "VALID"; act "NONE" | "RELU" | "RELU6"
    ("dwconv", k, stride, padding, act[, dilation])
    ("pad", top, bottom, left, right)
    ("maxpool", k, stride, padding)   ("avgpool", k, stride, padding)
    ("block", expand, out_c, stride)             MobileNetV2 inverted residual (add when stride 1, in == out)
    ("gap",)                                     MEAN over H, W (keep dims) then RESHAPE to (1, C)
    ("nchw",)   (first only) the model's input is NCHW and a TRANSPOSE to NHWC comes first (PyTorch exports)
    ("swish",)                                   x * LOGISTIC(x) (a LOGISTIC and a MUL, as exporters write SiLU)
    ("mbconv", expand, k, stride, out_c)         EfficientNet's block: expand 1x1 + swish, depthwise k + swish,
                                                 squeeze-excitation (MEAN, 1x1 to in_c / 4 + swish, 1x1 back +
                                                 LOGISTIC, MUL), project 1x1; add when stride 1 and in == out
    ("fire", squeeze, e1, e3)                    SqueezeNet's fire module: 1x1 squeeze (RELU), then a 1x1 and a 3x3
                                                 SAME expand (RELU) of it, CONCATENATION along channels
    ("s2d", b)                                   SPACE_TO_DEPTH with block b (a YOLOv5-style "focus" stem)
    ("hswish",)                                  hard-swish as written through ONNX: ADD(x, 3) with a fused RELU6,
                                                 MUL by x, MUL by 1/6 (one-element constants)
    ("fc", n)

`build_net(..., explicit_pad=True)` writes every padded 3x3 conv/depthwise ("SAME", and the block's depthwise)
as PyTorch -> ONNX -> TensorFlow exports do: a PAD of 1 on every side, then the conv with VALID padding.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from mcutool import reference as R
from tflite_builder import ModelBuilder


def same_pads(size: int, k: int, s: int, d: int = 1) -> tuple[int, int, int]:
    """TFLite SAME: (out, before, after)."""
    eff = (k - 1) * d + 1
    out = -(-size // s)
    total = max((out - 1) * s + eff - size, 0)
    return out, total // 2, total - total // 2


def _geometry(h, w, k, s, padding, d=1):
    if padding == "SAME":
        oh, pt, pb = same_pads(h, k, s, d)
        ow, pl, pr = same_pads(w, k, s, d)
        return (oh, ow), (pt, pl, pb, pr)
    eff = (k - 1) * d + 1
    return ((h - eff) // s + 1, (w - eff) // s + 1), (0, 0, 0, 0)


def _range(values: list[np.ndarray]) -> tuple[float, int]:
    """Scale and zero point covering every calibration value (and 0)."""
    lo = min(0.0, min(float(v.min()) for v in values))
    hi = max(0.0, max(float(v.max()) for v in values))
    scale = (hi - lo) / 255.0 if hi > lo else 1.0
    zp = int(np.clip(round(-128 - lo / scale), -128, 127))
    return float(np.float32(scale)), zp


class _Net:
    """Float layers with their float values on the calibration set, turned into an int8 TFLite model."""

    def __init__(self, rng, calib: np.ndarray):
        self.rng = rng
        self.layers = []  # (kind, inputs (value ids), params, out id)
        self.values = {0: calib}
        self.next = 1

    def _new(self, value) -> int:
        vid = self.next
        self.next += 1
        self.values[vid] = value
        return vid

    def conv(self, x, out_c, k, s, padding, act, depthwise=False, d=1):
        v = self.values[x]
        n, h, w, c = v.shape
        out_hw, pads = _geometry(h, w, k, s, padding, d)
        fan_in = k * k * (1 if depthwise else c)
        wshape = (1, k, k, c) if depthwise else (out_c, k, k, c)
        wf = (self.rng.standard_normal(wshape) * np.sqrt(2.0 / fan_in)).astype(np.float32)
        bf = (self.rng.standard_normal(wshape[3] if depthwise else out_c) * 0.1).astype(np.float32)
        a = {"NONE": "none", "RELU": "relu", "RELU6": "relu6"}[act]
        geom = dict(stride=(s, s), dilation=(d, d), pads=pads, out_hw=out_hw, activation=a)
        outs = []
        for i in range(n):
            xi = v[i:i + 1]
            outs.append(R.depthwise_conv2d_float(xi, wf, bf, depth_multiplier=1, **geom) if depthwise
                        else R.conv2d_float(xi, wf, bf, **geom))
        y = self._new(np.concatenate(outs))
        self.layers.append(("dw" if depthwise else "conv", [x], dict(w=wf, b=bf, k=k, s=s, d=d, padding=padding,
                                                                      act=act), y))
        return y

    def transpose(self, x, perm):
        y = self._new(np.ascontiguousarray(self.values[x].transpose(perm)))
        self.layers.append(("transpose", [x], dict(perm=perm), y))
        return y

    def pad(self, x, t, bo, le, r):
        v = self.values[x]
        y = self._new(np.pad(v, ((0, 0), (t, bo), (le, r), (0, 0))))
        self.layers.append(("pad", [x], dict(pads=[[0, 0], [t, bo], [le, r], [0, 0]]), y))
        return y

    def pool(self, x, kind, k, s, padding):
        v = self.values[x]
        out_hw, pads = _geometry(v.shape[1], v.shape[2], k, s, padding)
        fn = R.max_pool2d_float if kind == "max" else R.avg_pool2d_float
        out = np.concatenate([fn(v[i:i + 1], filter=(k, k), stride=(s, s), pads=pads, out_hw=out_hw)
                              for i in range(v.shape[0])])
        y = self._new(out)
        # pools keep their input's quantization: the output value shares the input's range
        self.layers.append((kind + "pool", [x], dict(k=k, s=s, padding=padding), y))
        return y

    def logistic(self, x):
        y = self._new((1.0 / (1.0 + np.exp(-self.values[x]))).astype(np.float32))
        self.layers.append(("logistic", [x], {}, y))
        return y

    def mul(self, a, b):  # b may broadcast (an SE block's per-channel scale)
        y = self._new(self.values[a] * self.values[b])
        self.layers.append(("mul", [a, b], {}, y))
        return y

    def space_to_depth(self, x, b):
        n, h, w, c = self.values[x].shape
        v = self.values[x].reshape(n, h // b, b, w // b, b, c).transpose(0, 1, 3, 2, 4, 5)
        y = self._new(np.ascontiguousarray(v.reshape(n, h // b, w // b, b * b * c)))
        self.layers.append(("s2d", [x], dict(b=b), y))
        return y

    def scalar(self, x, kind, value, act="NONE"):  # ADD or MUL by a one-element constant, then act
        v = self.values[x] + value if kind == "add" else self.values[x] * value
        y = self._new(np.clip(v, 0, 6).astype(np.float32) if act == "RELU6" else v.astype(np.float32))
        self.layers.append((kind + "_const", [x], dict(value=value, act=act), y))
        return y

    def concat(self, a, b):  # along channels
        y = self._new(np.concatenate([self.values[a], self.values[b]], axis=3))
        self.layers.append(("concat", [a, b], {}, y))
        return y

    def mean(self, x):
        y = self._new(self.values[x].mean(axis=(1, 2), keepdims=True))
        self.layers.append(("mean", [x], {}, y))
        return y

    def add(self, a, b):
        y = self._new(self.values[a] + self.values[b])
        self.layers.append(("add", [a, b], {}, y))
        return y

    def gap(self, x):
        y = self._new(self.values[x].mean(axis=(1, 2), keepdims=True))
        self.layers.append(("mean", [x], {}, y))
        z = self._new(self.values[y].reshape(self.values[y].shape[0], -1))
        self.layers.append(("reshape", [y], {}, z))
        return z

    def fc(self, x, n, features=None):
        # weights over the features' deviations from their calibration mean (scaled by their spread), so the
        # logits follow what differs between images instead of what all images share
        v = self.values[x] if features is None else features
        mu, sd = v.mean(axis=0), v.std(axis=0) + 1e-3
        wf = (self.rng.standard_normal((n, v.shape[1])) / sd.mean() / np.sqrt(v.shape[1])).astype(np.float32)
        bf = (-(wf @ mu)).astype(np.float32)
        if features is not None:  # refit the head of a built network on its int8 features
            kind, ins, _p, y = self.layers[-1]
            self.layers[-1] = (kind, ins, dict(w=wf, b=bf), y)
            logits = v @ wf.T + bf
            self.values[y] = np.concatenate([logits, 2 * logits])  # margin: test images are not these
            return y
        y = self._new(v @ wf.T + bf)
        self.layers.append(("fc", [x], dict(w=wf, b=bf), y))
        return y

    # ---- quantized model
    def write(self, path: Path, out_id: int) -> Path:
        b = ModelBuilder("mcutool patch test network")
        q = {}
        same_as = {}  # pools and pads keep their input's quantization (TFLite requires it)
        for kind, ins, _p, y in self.layers:
            if kind in ("maxpool", "avgpool", "pad", "reshape", "transpose", "s2d"):
                same_as[y] = same_as.get(ins[0], ins[0])
        for vid, v in self.values.items():
            if vid not in same_as:
                q[vid] = _range([v])
        for vid, root in same_as.items():
            q[vid] = q[root]
        for kind, ins, _p, y in self.layers:
            if kind == "concat":  # TFLite's int8 CONCATENATION copies values: inputs share the output's scale
                for vid in ins:
                    q[vid] = q[y]
        for kind, _ins, _p, y in self.layers:
            if kind == "logistic":  # TFLite's int8 LOGISTIC output
                q[y] = (1.0 / 256, -128)
        t = {}

        def tensor(vid):
            if vid not in t:
                s, z = q[vid]
                t[vid] = b.tensor(f"t{vid}", (1,) + self.values[vid].shape[1:], "int8", scale=s, zero_point=z)
            return t[vid]

        for i, (kind, ins, p, y) in enumerate(self.layers):
            xt = tensor(ins[0])
            yt = tensor(y)
            s_in = q[ins[0]][0]
            if kind in ("conv", "dw"):
                w = p["w"]
                axis = 3 if kind == "dw" else 0
                red = tuple(a for a in range(4) if a != axis)
                ws = np.maximum(np.abs(w).max(axis=red), 1e-6) / 127.0
                shape = [1, 1, 1, -1] if kind == "dw" else [-1, 1, 1, 1]
                wq = np.clip(np.round(w / ws.reshape(shape)), -127, 127).astype(np.int8)
                bq = np.round(p["b"] / (np.float32(s_in) * ws.astype(np.float32))).astype(np.int32)
                wt = b.tensor(f"w{i}", w.shape, "int8", scale=ws.astype(np.float32), zero_point=0, axis=axis,
                              data=wq)
                bt = b.tensor(f"b{i}", bq.shape, "int32", scale=(np.float32(s_in) * ws).astype(np.float32),
                              zero_point=0, data=bq)
                opts = dict(Padding=p["padding"], StrideH=p["s"], StrideW=p["s"], FusedActivationFunction=p["act"],
                            DilationHFactor=p["d"], DilationWFactor=p["d"])
                if kind == "dw":
                    b.op("DEPTHWISE_CONV_2D", [xt, wt, bt], [yt], "DepthwiseConv2DOptions", version=3,
                         DepthMultiplier=1, **opts)
                else:
                    b.op("CONV_2D", [xt, wt, bt], [yt], "Conv2DOptions", version=3, **opts)
            elif kind == "transpose":
                pt = b.const(f"perm{i}", np.asarray(p["perm"], np.int32))
                b.op("TRANSPOSE", [xt, pt], [yt], version=2)
            elif kind == "pad":
                pt = b.const(f"pads{i}", np.asarray(p["pads"], np.int32))
                b.op("PAD", [xt, pt], [yt], version=2)
            elif kind in ("maxpool", "avgpool"):
                b.op("MAX_POOL_2D" if kind == "maxpool" else "AVERAGE_POOL_2D", [xt], [yt], "Pool2DOptions",
                     version=2, Padding=p["padding"], StrideH=p["s"], StrideW=p["s"], FilterHeight=p["k"],
                     FilterWidth=p["k"], FusedActivationFunction="NONE")
            elif kind == "add":
                b.op("ADD", [xt, tensor(ins[1])], [yt], "AddOptions", version=2, FusedActivationFunction="NONE")
            elif kind == "mul":
                b.op("MUL", [xt, tensor(ins[1])], [yt], "MulOptions", version=2, FusedActivationFunction="NONE")
            elif kind == "logistic":
                b.op("LOGISTIC", [xt], [yt], version=2)
            elif kind in ("add_const", "mul_const"):  # the constant: scale |value| / 127, zero point 0
                cs = float(np.float32(abs(p["value"]) / 127.0))
                ct = b.tensor(f"c{i}", (1,), "int8", scale=cs, zero_point=0,
                              data=np.asarray([127 if p["value"] > 0 else -127], np.int8))
                if kind == "add_const":
                    b.op("ADD", [xt, ct], [yt], "AddOptions", version=2, FusedActivationFunction=p["act"])
                else:
                    b.op("MUL", [xt, ct], [yt], "MulOptions", version=2, FusedActivationFunction=p["act"])
            elif kind == "s2d":
                b.op("SPACE_TO_DEPTH", [xt], [yt], "SpaceToDepthOptions", BlockSize=p["b"])
            elif kind == "concat":
                b.op("CONCATENATION", [xt, tensor(ins[1])], [yt], "ConcatenationOptions", version=2, Axis=3,
                     FusedActivationFunction="NONE")
            elif kind == "mean":
                at = b.const(f"axes{i}", np.asarray([1, 2], np.int32))
                b.op("MEAN", [xt, at], [yt], "ReducerOptions", version=2, KeepDims=True)
            elif kind == "reshape":
                st = b.const(f"shape{i}", np.asarray([1, self.values[y].shape[1]], np.int32))
                b.op("RESHAPE", [xt, st], [yt])
            elif kind == "fc":
                w = p["w"]
                ws = float(np.float32(np.abs(w).max() / 127.0))
                wq = np.clip(np.round(w / ws), -127, 127).astype(np.int8)
                bq = np.round(p["b"] / (np.float32(s_in) * np.float32(ws))).astype(np.int32)
                wt = b.tensor(f"w{i}", w.shape, "int8", scale=ws, zero_point=0, data=wq)
                bt = b.tensor(f"b{i}", bq.shape, "int32", scale=float(np.float32(s_in) * np.float32(ws)),
                              zero_point=0, data=bq)
                b.op("FULLY_CONNECTED", [xt, wt, bt], [yt], "FullyConnectedOptions", version=4,
                     FusedActivationFunction="NONE")
        b.inputs, b.outputs = [tensor(0)], [tensor(out_id)]
        return b.write(path)


def calibration_images(rng, n: int, shape) -> np.ndarray:
    """Float images in [-1, 1] with structure that differs per image (smooth fields of random frequency and
    per-channel offsets), so pooled features and predictions vary between images."""
    _, h, w, c = shape
    yy, xx = np.meshgrid(np.linspace(0, 1, h), np.linspace(0, 1, w), indexing="ij")
    out = np.empty((n, h, w, c), np.float32)
    for i in range(n):
        for ch in range(c):
            fy, fx, ph = rng.uniform(0.5, 6, 2).tolist() + [rng.uniform(0, 6.3)]
            field = np.sin(2 * np.pi * (fy * yy + fx * xx) + ph) * rng.uniform(0.2, 0.8) + rng.uniform(-0.4, 0.4)
            out[i, :, :, ch] = field + rng.normal(0, 0.15, (h, w))
    return np.clip(out, -1, 1)


def _padded_conv(net: _Net, x, out_c, k, s, padding, act, explicit_pad: bool, depthwise=False, d=1):
    """A conv; with `explicit_pad`, a SAME 3x3 one as an exporter writes it (PAD 1 on each side, VALID)."""
    if explicit_pad and padding == "SAME" and k == 3 and d == 1:
        x, padding = net.pad(x, 1, 1, 1, 1), "VALID"
    return net.conv(x, out_c, k, s, padding, act, depthwise=depthwise, d=d)


def _swish(net: _Net, x):
    return net.mul(x, net.logistic(x))


def _mbconv(net: _Net, x, expand: int, k: int, s: int, out_c: int):
    c = net.values[x].shape[3]
    h = _swish(net, net.conv(x, c * expand, 1, 1, "VALID", "NONE")) if expand != 1 else x
    h = _swish(net, net.conv(h, None, k, s, "SAME", "NONE", depthwise=True))
    se = _swish(net, net.conv(net.mean(h), max(1, c // 4), 1, 1, "VALID", "NONE"))
    h = net.mul(h, net.logistic(net.conv(se, net.values[h].shape[3], 1, 1, "VALID", "NONE")))
    h = net.conv(h, out_c, 1, 1, "VALID", "NONE")
    return net.add(x, h) if s == 1 and c == out_c else h


def build_net(path: Path, specs, in_shape, seed: int = 0, n_calib: int = 8, explicit_pad: bool = False) -> Path:
    """The int8 model of `specs` for an NHWC `in_shape` (the model takes it as NCHW after ("nchw",))."""
    rng = np.random.default_rng(seed)
    images = calibration_images(rng, n_calib, in_shape)
    nchw = specs[0] == ("nchw",)
    net = _Net(rng, images.transpose(0, 3, 1, 2) if nchw else images)
    x = net.transpose(0, (0, 2, 3, 1)) if nchw else 0
    for spec in specs[1:] if nchw else specs:
        kind, args = spec[0], spec[1:]
        if kind == "conv":
            x = _padded_conv(net, x, *args, explicit_pad)
        elif kind == "dwconv":
            k, s, padding, act, *d = args
            x = _padded_conv(net, x, None, k, s, padding, act, explicit_pad, depthwise=True, d=d[0] if d else 1)
        elif kind == "pad":
            x = net.pad(x, *args)
        elif kind in ("maxpool", "avgpool"):
            x = net.pool(x, kind[:3], *args)
        elif kind == "block":
            t, out_c, s = args
            c = net.values[x].shape[3]
            h = net.conv(x, c * t, 1, 1, "VALID", "RELU6") if t != 1 else x
            h = _padded_conv(net, h, None, 3, s, "SAME", "RELU6", explicit_pad, depthwise=True)
            h = net.conv(h, out_c, 1, 1, "VALID", "NONE")
            x = net.add(x, h) if s == 1 and c == out_c else h
        elif kind == "swish":
            x = net.mul(x, net.logistic(x))
        elif kind == "s2d":
            x = net.space_to_depth(x, *args)
        elif kind == "hswish":
            x = net.scalar(net.mul(x, net.scalar(x, "add", 3.0, "RELU6")), "mul", 1.0 / 6.0)
        elif kind == "fire":
            squeeze, e1, e3 = args
            sq = net.conv(x, squeeze, 1, 1, "VALID", "RELU")
            x = net.concat(net.conv(sq, e1, 1, 1, "VALID", "RELU"), _padded_conv(net, sq, e3, 3, 1, "SAME", "RELU",
                                                                                explicit_pad))
        elif kind == "mbconv":
            x = _mbconv(net, x, *args)
        elif kind == "gap":
            x = net.gap(x)
        elif kind == "fc":
            x = net.fc(x, *args)
        else:
            raise ValueError(kind)
    path = net.write(path, x)
    if specs[-1][0] == "fc":
        # the quantized features differ from the float ones; fit the classifier head to what the int8 network
        # computes on the calibration images, so its outputs neither saturate nor collapse to one class
        from mcutool.frontends import load_model
        graph = load_model(path)
        fc = graph.ops[-1]
        t = graph.tensor(fc.inputs[0])
        s, z = float(t.quant.scale[0]), int(t.quant.zero_point[0])
        feats = []
        for img in _quantized(graph, images, nchw):
            q = R.run(graph, {graph.inputs[0]: img}, keep=True)[fc.inputs[0]]
            feats.append((q.astype(np.float32) - z) * s)
        net.fc(None, specs[-1][1], features=np.concatenate(feats).reshape(len(feats), -1))
        path = net.write(path, x)
    return path


def _quantized(graph, imgs: np.ndarray, nchw: bool) -> list[np.ndarray]:
    """NHWC float images -> the graph's int8 inputs (transposed to NCHW when the graph takes NCHW)."""
    t = graph.tensor(graph.inputs[0])
    s, z = float(t.quant.scale[0]), int(t.quant.zero_point[0])
    if nchw:
        imgs = imgs.transpose(0, 3, 1, 2)
    return [np.clip(np.round(im / s) + z, -128, 127).astype(np.int8)[None] for im in imgs]


def _takes_nchw(graph) -> bool:
    return graph.ops[0].kind == "transpose"


def sample_images(graph, n: int, seed: int) -> list[np.ndarray]:
    """int8 inputs for `graph` made like the calibration images (other seed), quantized with its input scale."""
    nchw = _takes_nchw(graph)
    shape = graph.tensor(graph.ops[0].outputs[0] if nchw else graph.inputs[0]).shape
    return _quantized(graph, calibration_images(np.random.default_rng(seed), n, shape), nchw)


# MobileNetV2, width 0.35 (Keras' channel rounding to multiples of 8: 16, 8, 8, 16, 24, 32, 56, 112; the last
# conv keeps 1280), its 17 inverted residual blocks with expansion 6 (1 for the first), 10 classes, 224x224x3:
# 58.0 M MACs, 423 KB of weights, layer-wise peak 752,640 B.
MOBILENETV2_035 = [
    ("conv", 16, 3, 2, "SAME", "RELU6"),
    ("block", 1, 8, 1),
    ("block", 6, 8, 2), ("block", 6, 8, 1),
    ("block", 6, 16, 2), ("block", 6, 16, 1), ("block", 6, 16, 1),
    ("block", 6, 24, 2), ("block", 6, 24, 1), ("block", 6, 24, 1), ("block", 6, 24, 1),
    ("block", 6, 32, 1), ("block", 6, 32, 1), ("block", 6, 32, 1),
    ("block", 6, 56, 2), ("block", 6, 56, 1), ("block", 6, 56, 1),
    ("block", 6, 112, 1),
    ("conv", 1280, 1, 1, "VALID", "RELU6"),
    ("gap",),
    ("fc", 10),
]


# MobileNetV2, width 1.0, 1000 classes, 224x224x3 (Sandler et al. 2018, table 2): 300.8 M MACs, 3.54 MB of
# weights (more than the 1 MB of stm32f746's internal flash), layer-wise peak 1,505,280 B.
MOBILENETV2_100 = [
    ("conv", 32, 3, 2, "SAME", "RELU6"),
    ("block", 1, 16, 1),
    ("block", 6, 24, 2), ("block", 6, 24, 1),
    ("block", 6, 32, 2), ("block", 6, 32, 1), ("block", 6, 32, 1),
    ("block", 6, 64, 2), ("block", 6, 64, 1), ("block", 6, 64, 1), ("block", 6, 64, 1),
    ("block", 6, 96, 1), ("block", 6, 96, 1), ("block", 6, 96, 1),
    ("block", 6, 160, 2), ("block", 6, 160, 1), ("block", 6, 160, 1),
    ("block", 6, 320, 1),
    ("conv", 1280, 1, 1, "VALID", "RELU6"),
    ("gap",),
    ("fc", 1000),
]


def assert_not_degenerate(graph, images, min_classes=5):
    """DESIGN.md section 11: >= 5 predicted classes on the test inputs, no constant intermediate tensor."""
    classes = {int(np.argmax(R.run(graph, {graph.inputs[0]: x})[graph.outputs[0]])) for x in images}
    assert len(classes) >= min_classes, f"only {len(classes)} distinct classes: {classes}"
    values = R.run(graph, {graph.inputs[0]: images[0]}, keep=True)
    constant = [n for n, t in graph.tensors.items() if not t.is_const and np.unique(values[n]).size < 2]
    assert not constant, f"constant intermediate tensors: {constant}"


# MobileNetV1, width 0.25, 96x96x3: the Visual Wake Words shape (MLPerf Tiny's VWW model is this
# network: 13 depthwise-separable blocks after a stride-2 conv, global average pooling), with 10 classes instead of
# 2 so that tests can check >= 5 predicted classes (DESIGN.md section 11); 7.49 M MACs as VWW itself + 2,048.
MOBILENETV1_025 = [
    ("conv", 8, 3, 2, "SAME", "RELU6"),
    ("dwconv", 3, 1, "SAME", "RELU6"), ("conv", 16, 1, 1, "VALID", "RELU6"),
    ("dwconv", 3, 2, "SAME", "RELU6"), ("conv", 32, 1, 1, "VALID", "RELU6"),
    ("dwconv", 3, 1, "SAME", "RELU6"), ("conv", 32, 1, 1, "VALID", "RELU6"),
    ("dwconv", 3, 2, "SAME", "RELU6"), ("conv", 64, 1, 1, "VALID", "RELU6"),
    ("dwconv", 3, 1, "SAME", "RELU6"), ("conv", 64, 1, 1, "VALID", "RELU6"),
    ("dwconv", 3, 2, "SAME", "RELU6"), ("conv", 128, 1, 1, "VALID", "RELU6"),
] + [("dwconv", 3, 1, "SAME", "RELU6"), ("conv", 128, 1, 1, "VALID", "RELU6")] * 5 + [
    ("dwconv", 3, 2, "SAME", "RELU6"), ("conv", 256, 1, 1, "VALID", "RELU6"),
    ("dwconv", 3, 1, "SAME", "RELU6"), ("conv", 256, 1, 1, "VALID", "RELU6"),
    ("gap",),
    ("fc", 10),
]


# EfficientNet-B0 (Tan & Le 2019, table 1) at 96x96x3, 1000 classes: stem conv + swish, 16 MBConv blocks with
# squeeze-excitation (ratio 0.25 of the block input), head 1x1 conv to 1280 + swish, pooling, classifier.
EFFICIENTNET_B0 = [
    ("conv", 32, 3, 2, "SAME", "NONE"), ("swish",),
    ("mbconv", 1, 3, 1, 16),
    ("mbconv", 6, 3, 2, 24), ("mbconv", 6, 3, 1, 24),
    ("mbconv", 6, 5, 2, 40), ("mbconv", 6, 5, 1, 40),
    ("mbconv", 6, 3, 2, 80), ("mbconv", 6, 3, 1, 80), ("mbconv", 6, 3, 1, 80),
    ("mbconv", 6, 5, 1, 112), ("mbconv", 6, 5, 1, 112), ("mbconv", 6, 5, 1, 112),
    ("mbconv", 6, 5, 2, 192), ("mbconv", 6, 5, 1, 192), ("mbconv", 6, 5, 1, 192), ("mbconv", 6, 5, 1, 192),
    ("mbconv", 6, 3, 1, 320),
    ("conv", 1280, 1, 1, "VALID", "NONE"), ("swish",),
    ("gap",),
    ("fc", 1000),
]
