"""A small int8 network made of the elementwise and activation operators of issue 10 (every one of them once),
written with tests/tflite_builder.py; the QEMU test and the host library test compile it whole.

    x ─ ABS ─ RSQRT ───────────────────────────────┐
    x ─ RELU6 ─┐                                    │
    x ─ ELU ───┴ MAXIMUM ─ MINIMUM(const) ─ PRELU(const alpha) ─ DIV ─> out0
    x ─ HARD_SWISH ─┐
    x ─ RELU ───────┴ SQUARED_DIFFERENCE ─ L2_NORMALIZATION ─> out1
    x ─ TANH ─> out2
    HARD_SWISH ─ CAST int32 ─ CAST int8 ─> out3 (raw values, through an int32 tensor)
"""
from __future__ import annotations

import numpy as np

from tflite_builder import ModelBuilder

SHAPE = (1, 6, 5, 8)


def elementwise_net() -> bytes:
    rng = np.random.default_rng(2026)
    b = ModelBuilder()

    def t(name, q, shape=SHAPE, data=None):
        return b.tensor(name, shape, "int8", scale=q[0], zero_point=q[1], data=data)

    x = t("x", (0.05, -3))
    ab, rs = t("abs", (0.04, -128)), t("rsqrt", (0.02, -128))
    r6, el = t("relu6", (0.05, -3)), t("elu", (0.05, -3))
    mx, mn = t("maximum", (0.05, -3)), t("minimum", (0.05, -3))
    bound = t("bound", (0.05, -3), (SHAPE[-1],), rng.integers(20, 127, SHAPE[-1]).astype(np.int8))
    alpha = t("alpha", (0.01, 0), (SHAPE[-1],), rng.integers(-60, 100, SHAPE[-1]).astype(np.int8))
    pr, dv = t("prelu", (0.05, -10)), t("out0", (0.1, 0))
    hs, r = t("hard_swish", (0.04, -90)), t("relu", (0.03, -128))
    sd, l2 = t("sqdiff", (0.001, -128)), t("out1", (1 / 128, 0))
    th = t("out2", (1 / 128, 0))
    wide, back = b.tensor("wide", SHAPE, "int32"), b.tensor("out3", SHAPE, "int8")
    b.op("ABS", [x], [ab])
    b.op("RSQRT", [ab], [rs])
    b.op("RELU6", [x], [r6])
    b.op("ELU", [x], [el])
    b.op("MAXIMUM", [r6, el], [mx])
    b.op("MINIMUM", [mx, bound], [mn])
    b.op("PRELU", [mn, alpha], [pr])
    b.op("DIV", [pr, rs], [dv], "DivOptions")
    b.op("HARD_SWISH", [x], [hs])
    b.op("RELU", [x], [r])
    b.op("SQUARED_DIFFERENCE", [hs, r], [sd])
    b.op("L2_NORMALIZATION", [sd], [l2], "L2NormOptions")
    b.op("TANH", [x], [th])
    b.op("CAST", [hs], [wide])
    b.op("CAST", [wide], [back])
    b.inputs, b.outputs = [x], [dv, l2, th, back]
    return b.build()


def net_inputs(n: int, seed: int = 7) -> list[np.ndarray]:
    """Inputs over the whole int8 range and narrower, structured ones (smooth ramps plus noise)."""
    rng = np.random.default_rng(seed)
    xs = []
    for i in range(n):
        if i % 2 == 0:
            xs.append(rng.integers(-128, 128, size=SHAPE, dtype=np.int8))
        else:
            ramp = np.linspace(-100, 100, int(np.prod(SHAPE))).reshape(SHAPE) * rng.uniform(0.3, 1.2)
            xs.append(np.clip(ramp + rng.normal(0, 10, SHAPE), -128, 127).astype(np.int8))
    return xs
