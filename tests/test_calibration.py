"""int8 calibration quality (issue 15): the value sample behind the percentile and MSE ranges sees every channel;
bias correction removes the mean error int8 weights cause (checked against the hand-computed shift); a method
that measures worse than min/max says so, and the default (auto) never does worse than min/max. ResNet-8's
figures against TFLite's converter are in test_quantize_ptq.py (test_resnet8_agreement_on_structured_images)."""
import numpy as np
import pytest

from conftest import shared_model
from structured_images import structured_images
from mcutool.frontends import load_model
from mcutool.ir import FullyConnectedAttrs, Graph, Op, Tensor
from mcutool.quantize.autocalib import bias_corrected
from mcutool.quantize.ptq import (activation_stats, agreement_report, calibrate, quantize_graph, quantize_model,
                                  sample_values)


def test_the_value_sample_sees_every_channel_of_an_nhwc_tensor():
    """Channel c holds the value c. The old strided pick (stride 64*32*32*16 // 4096 = 256, a multiple of the 16
    channels) saw channel 0 only; the random one sees all 16, in about equal shares."""
    v = np.broadcast_to(np.arange(16, dtype=np.float32), (64, 32, 32, 16))
    picked = sample_values(v, np.random.default_rng(0))
    counts = np.bincount(picked.astype(int), minlength=16)
    assert len(picked) == 1 << 16 and counts.min() > 0.8 * len(picked) / 16, counts
    small = np.arange(10, dtype=np.float32).reshape(2, 5)
    assert sorted(sample_values(small, np.random.default_rng(0))) == list(range(10))  # small tensors: all values


def test_percentile_and_mse_ranges_are_no_longer_one_channels_range():
    """On ResNet-8, with the old strided value pick, percentile and MSE gave 8.8 / 9.6 dB output SQNR on these
    held-out images where min/max gave 13.5 dB; with every channel in the sample they are within 1 dB of it."""
    g = load_model(shared_model("resnet8_float.tflite"))
    cal, test = {"input_1": structured_images(16, 1)}, {"input_1": structured_images(64, 2)}
    sqnr = {m: agreement_report(g, quantize_graph(g, calibrate(g, cal, m)), test)[0]["sqnr_db"]
            for m in ("minmax", "percentile", "mse")}
    assert sqnr["percentile"] > sqnr["minmax"] - 1 and sqnr["mse"] > sqnr["minmax"] - 1, sqnr


def _fc_graph(w: np.ndarray, b: np.ndarray) -> Graph:
    g = Graph(name="fc", inputs=["x"], outputs=["y"])
    g.add_tensor(Tensor("x", (1, w.shape[1]), "float32"))
    g.add_tensor(Tensor("w", w.shape, "float32", None, w.astype(np.float32)))
    g.add_tensor(Tensor("b", b.shape, "float32", None, b.astype(np.float32)))
    g.add_tensor(Tensor("y", (1, w.shape[0]), "float32"))
    g.ops.append(Op("fc", "fully_connected", ["x", "w", "b"], ["y"], FullyConnectedAttrs()))
    g.validate()
    return g


def test_bias_correction_subtracts_the_mean_error_of_the_int8_weights():
    """A fully connected layer (per-tensor int8 weights, one large weight making the scale coarse) on inputs of
    mean 3: the corrected bias is b - mean((W_q - W) x), W_q = round(W / s) s with s = max|W| / 127, computed
    here by hand; and the int8 model's mean output error per channel shrinks."""
    rng = np.random.default_rng(0)
    w = rng.normal(0, 0.05, (4, 8))
    w[0, 0] = 3.0
    b = rng.normal(0, 1, 4)
    g = _fc_graph(w, b)
    x = rng.normal(3, 1, (256, 8)).astype(np.float32)
    w32 = w.astype(np.float32).astype(np.float64)
    s = np.float32(np.abs(w32).max() / 127)
    shift = ((np.round(w32 / s) * s - w32) @ x.astype(np.float64).T).mean(axis=1)
    assert np.abs(shift).max() > 1e-3  # the layer has a mean error worth correcting
    corrected, layers = bias_corrected(g, {"x": x}, activation_stats(g, {"x": x}).ranges)
    assert layers == 1
    np.testing.assert_allclose(corrected.tensor("b").data, b.astype(np.float32) - shift, rtol=0, atol=1e-5)
    assert g.tensor("b").data is not corrected.tensor("b").data  # the float graph itself is left as it was
    ranges = calibrate(g, {"x": x})
    y = x.astype(np.float64) @ w32.T + b.astype(np.float32)

    def mean_error(graph):
        from mcutool.quantize.ptq import run_batches
        q = np.concatenate([v["y"] for v in run_batches(quantize_graph(graph, ranges), {"x": x})])
        return np.abs((q - y).mean(axis=0))
    before, after = mean_error(g), mean_error(corrected)
    assert after.sum() < 0.5 * before.sum(), (before, after)


def _outlier_net():
    """A fully connected layer on 1,024 samples of 16 standard-normal features, one of the 16,384 values 1,000:
    the 99.99th percentile range clips that outlier, which dominates the output's power."""
    rng = np.random.default_rng(1)
    g = _fc_graph(rng.normal(0, 0.5, (4, 16)), rng.normal(0, 0.1, 4))
    x = rng.normal(0, 1, (1024, 16)).astype(np.float32)
    x[100, 3] = 1000.0
    return g, {"x": x}


def test_a_method_that_measures_worse_than_minmax_warns_and_auto_keeps_minmax_or_better():
    g, cal = _outlier_net()
    _, minmax = quantize_model(g, cal, "minmax")
    with pytest.warns(UserWarning, match="percentile measures worse than min/max"):
        _, pct = quantize_model(g, cal, "percentile")
    assert pct["outputs"][0]["sqnr_db"] < minmax["outputs"][0]["sqnr_db"] - 10  # the clip loses the outlier
    assert pct["minmax_outputs"] == minmax["outputs"]
    _, auto = quantize_model(g, cal)
    assert auto["outputs"][0]["sqnr_db"] >= minmax["outputs"][0]["sqnr_db"]
