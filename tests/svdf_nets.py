"""An int8 SVDF keyword-spotting net (TFLite Micro's keyword benchmark shape, smaller): written with the TFLite
builder, since the TFLite converter does not fuse SVDF. Input (1, 40) features per step -> SVDF (64 filters, rank
2, memory 8, int16 state) -> SVDF (16 units, rank 1, memory 6, int8 state) -> FULLY_CONNECTED 8 classes ->
SOFTMAX. Scales are set from the ranges the layers see on random features (DESIGN.md §11: the net must spread
its predictions over several classes)."""
from __future__ import annotations

import numpy as np

from tflite_builder import ModelBuilder

INPUTS, CLASSES = 40, 8


def _svdf(b, name, x, x_scale, inputs, filters, rank, memory, state_dtype, state_scale, state_zp, out_scale,
          out_zp, rng):
    units = filters // rank
    wf = rng.integers(-127, 128, (filters, inputs)).astype(np.int8)
    wf_scale = 1.0 / (127 * np.sqrt(inputs))
    lim = 32767 if state_dtype == "int16" else 127
    wt = rng.integers(-lim, lim + 1, (filters, memory)).astype(state_dtype)
    wt_scale = 1.0 / (lim * np.sqrt(memory * rank))
    bias = rng.integers(-200, 200, units).astype(np.int32)
    f = b.tensor(f"{name}/feature", (filters, inputs), "int8", scale=wf_scale, zero_point=0, data=wf)
    t = b.tensor(f"{name}/time", (filters, memory), state_dtype, scale=wt_scale, zero_point=0, data=wt)
    bi = b.tensor(f"{name}/bias", (units,), "int32", scale=state_scale * wt_scale, zero_point=0, data=bias)
    s = b.tensor(f"{name}/state", (1, filters * memory), state_dtype, scale=state_scale, zero_point=state_zp,
                 variable=True)
    y = b.tensor(f"{name}/out", (1, units), "int8", scale=out_scale, zero_point=out_zp)
    b.op("SVDF", [x, f, t, bi, s], [y], "SVDFOptions", Rank=rank)
    return y


def svdf_keyword_net(seed: int = 7) -> bytes:
    rng = np.random.default_rng(seed)
    b = ModelBuilder("mcutool SVDF keyword net")
    x = b.tensor("features", (1, INPUTS), "int8", scale=0.02, zero_point=-3)
    h1 = _svdf(b, "svdf1", x, 0.02, INPUTS, 64, 2, 8, "int16", 0.002 / 8, 0, 0.03, -5, rng)
    h2 = _svdf(b, "svdf2", h1, 0.03, 32, 16, 1, 6, "int8", 0.02, 4, 0.04, 2, rng)
    w = rng.integers(-127, 128, (CLASSES, 16)).astype(np.int8)
    wq = b.tensor("fc/weights", (CLASSES, 16), "int8", scale=0.01, zero_point=0, data=w)
    bq = b.tensor("fc/bias", (CLASSES,), "int32", scale=0.04 * 0.01, zero_point=0,
                  data=rng.integers(-100, 100, CLASSES).astype(np.int32))
    logits = b.tensor("logits", (1, CLASSES), "int8", scale=0.08, zero_point=0)
    b.op("FULLY_CONNECTED", [h2, wq, bq], [logits], "FullyConnectedOptions")
    probs = b.tensor("probs", (1, CLASSES), "int8", scale=1.0 / 256, zero_point=-128)
    b.op("SOFTMAX", [logits], [probs], "SoftmaxOptions", Beta=1.0)
    b.inputs, b.outputs = [x], [probs]
    return b.build()
