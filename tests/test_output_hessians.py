"""The float ops' vector-Jacobian products and the output hessians int4 rounding is given (issue 15,
quantize/output_hessians.py), checked against finite differences of the float reference itself: no gradient
code is shared with the check."""
import numpy as np
import pytest

from mcutool import reference
from mcutool.ir import (Conv2DAttrs, DepthwiseConv2DAttrs, ElementwiseAttrs, FullyConnectedAttrs, Graph, NoAttrs,
                        Op, Pool2DAttrs, SoftmaxAttrs, Tensor)
from mcutool.ops import op_def
from mcutool.quantize.gptq import gptq_clip_round
from mcutool.quantize.output_hessians import blended, output_hessians


def _graph(ops, tensors, inputs, outputs):
    g = Graph(name="t", inputs=inputs, outputs=outputs)
    for name, shape, data in tensors:
        g.add_tensor(Tensor(name, shape, "float32", None, None if data is None else data.astype(np.float32)))
    g.ops.extend(ops)
    return g


def _one_op(kind, attrs, x_shape, out_shape, consts=(), rng=None, second_input=None):
    names = ["x"] + ([second_input[0]] if second_input else []) + [f"c{i}" for i in range(len(consts))]
    tensors = [("x", x_shape, None), ("y", out_shape, None)]
    if second_input:
        tensors.append((second_input[0], second_input[1], None))
    tensors += [(f"c{i}", c.shape, c) for i, c in enumerate(consts)]
    return _graph([Op("op", kind, names, ["y"], attrs)], tensors, names[:1 + bool(second_input)], ["y"])


rng0 = np.random.default_rng(0)
CASES = {
    "conv2d 3x3 s2 same relu": ("conv2d", Conv2DAttrs((2, 2), (1, 1), (1, 1, 1, 1), "relu"), (2, 7, 7, 3),
                                (2, 4, 4, 5), [rng0.normal(0, 1, (5, 3, 3, 3)), rng0.normal(0, 1, 5)]),
    "conv2d 3x3 dilated relu6": ("conv2d", Conv2DAttrs((1, 1), (2, 2), (2, 2, 2, 2), "relu6"), (1, 6, 6, 2),
                                 (1, 6, 6, 4), [rng0.normal(0, 1, (4, 3, 3, 2)), rng0.normal(0, 1, 4)]),
    "depthwise 3x3 multiplier 2": ("depthwise_conv2d", DepthwiseConv2DAttrs((1, 1), (1, 1), (1, 1, 1, 1), "relu",
                                                                            depth_multiplier=2),
                                   (2, 5, 5, 3), (2, 5, 5, 6), [rng0.normal(0, 1, (1, 3, 3, 6)), rng0.normal(0, 1, 6)]),
    "fully connected": ("fully_connected", FullyConnectedAttrs("relu"), (3, 8), (3, 5),
                        [rng0.normal(0, 1, (5, 8)), rng0.normal(0, 1, 5)]),
    "avg pool 3x3 s2 same": ("avg_pool2d", Pool2DAttrs((3, 3), (2, 2), (1, 1, 1, 1)), (2, 7, 7, 3), (2, 4, 4, 3), []),
    "global avg pool": ("avg_pool2d", Pool2DAttrs((4, 4), (1, 1)), (2, 4, 4, 3), (2, 1, 1, 3), []),
    "reshape": ("reshape", NoAttrs(), (2, 1, 1, 6), (2, 6), []),
    "softmax beta 0.5": ("softmax", SoftmaxAttrs(0.5), (3, 7), (3, 7), []),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_vjp_agrees_with_finite_differences(case):
    """<g, J v> from central differences of the float reference equals <vjp(g), v> for random g and v."""
    kind, attrs, x_shape, out_shape, consts = CASES[case]
    g = _one_op(kind, attrs, x_shape, out_shape, consts)
    op = g.ops[0]
    rng = np.random.default_rng(1)
    x = rng.normal(0, 1, x_shape).astype(np.float32)
    args = [x] + [c.astype(np.float32) for c in consts]
    (y,) = reference.run_op(g, op, args)
    gy = rng.normal(0, 1, y.shape)
    (dx, *_) = op_def(kind).vjp(g, op, args, [y], [gy])
    for _ in range(3):
        v = rng.normal(0, 1, x_shape)
        eps = 1e-3
        hi = reference.run_op(g, op, [(x + eps * v).astype(np.float32)] + args[1:])[0].astype(np.float64)
        lo = reference.run_op(g, op, [(x - eps * v).astype(np.float32)] + args[1:])[0].astype(np.float64)
        fd = np.sum(gy * (hi - lo) / (2 * eps))
        assert np.sum(dx * v) == pytest.approx(fd, rel=5e-3, abs=1e-3)


def test_add_vjp_sums_over_broadcast_axes():
    g = _one_op("add", ElementwiseAttrs("relu"), (2, 3, 4), (2, 3, 4), second_input=("b", (1, 1, 4)))
    rng = np.random.default_rng(2)
    a, b = rng.normal(0, 1, (2, 3, 4)).astype(np.float32), rng.normal(0, 1, (1, 1, 4)).astype(np.float32)
    (y,) = reference.run_op(g, g.ops[0], [a, b])
    gy = rng.normal(0, 1, y.shape)
    da, db = op_def("add").vjp(g, g.ops[0], [a, b], [y], [gy])
    mask = (a + b) > 0
    assert np.allclose(da, gy * mask) and np.allclose(db, (gy * mask).sum(axis=(0, 1), keepdims=True))


def _small_cnn(rng):
    """conv 3x3 (relu) -> conv 3x3 s2 -> global average pool -> reshape -> fully connected -> softmax."""
    w1, b1 = rng.normal(0, 0.5, (4, 3, 3, 2)), rng.normal(0, 0.1, 4)
    w2, b2 = rng.normal(0, 0.5, (6, 3, 3, 4)), rng.normal(0, 0.1, 6)
    w3, b3 = rng.normal(0, 0.5, (5, 6)), rng.normal(0, 0.1, 5)
    tensors = [("x", (1, 6, 6, 2), None), ("a", (1, 6, 6, 4), None), ("b", (1, 3, 3, 6), None),
               ("p", (1, 1, 1, 6), None), ("f", (1, 6), None), ("l", (1, 5), None), ("y", (1, 5), None),
               ("w1", w1.shape, w1), ("b1", b1.shape, b1), ("w2", w2.shape, w2), ("b2", b2.shape, b2),
               ("w3", w3.shape, w3), ("b3", b3.shape, b3)]
    ops = [Op("c1", "conv2d", ["x", "w1", "b1"], ["a"], Conv2DAttrs((1, 1), (1, 1), (1, 1, 1, 1), "relu")),
           Op("c2", "conv2d", ["a", "w2", "b2"], ["b"], Conv2DAttrs((2, 2), (1, 1), (1, 1, 1, 1))),
           Op("pool", "avg_pool2d", ["b"], ["p"], Pool2DAttrs((3, 3), (1, 1))),
           Op("flat", "reshape", ["p"], ["f"], NoAttrs()),
           Op("fc", "fully_connected", ["f", "w3", "b3"], ["l"], FullyConnectedAttrs()),
           Op("sm", "softmax", ["l"], ["y"], SoftmaxAttrs(1.0))]
    return _graph(ops, tensors, ["x"], ["y"])


@pytest.mark.parametrize("layer, weights", [("c1", "w1"), ("c2", "w2"), ("fc", "w3")])
def test_output_hessian_is_the_weights_jacobian_gram_matrix(layer, weights):
    """For each output channel c, H_c = E[J_c^T J_c] / (mean output power x outputs), J_c the Jacobian of the
    network's softmax output with respect to that channel's weights, here by central differences of the whole
    float graph on each sample (module docstring: one-hot seeds give exactly J^T J)."""
    rng = np.random.default_rng(4)
    g = _small_cnn(rng)
    x = rng.normal(0, 1, (6, 6, 6, 2)).astype(np.float32)
    h = output_hessians(g, {"x": x}, ["c1", "c2", "fc"])[layer]
    w = g.tensor(weights).data
    out, k = w.shape[0], w.size // w.shape[0]
    assert h.shape == (out, k, k)
    expect = np.zeros_like(h)
    ys0 = np.concatenate([reference.run(g, {"x": x[i:i + 1]})["y"] for i in range(len(x))]).astype(np.float64)
    power = np.mean(ys0 ** 2) * ys0[0].size  # over the samples (of one batch)
    for i in range(len(x)):
        y0 = ys0[i]
        for c in range(out):
            jac = np.zeros((y0.size, k))
            for j in range(k):
                ys = []
                for sign in (1, -1):
                    wj = w.astype(np.float64).reshape(out, k).copy()
                    wj[c, j] += sign * 1e-3
                    g.tensors[weights] = Tensor(weights, w.shape, "float32", None, wj.reshape(w.shape).astype(np.float32))
                    ys.append(reference.run(g, {"x": x[i:i + 1]})["y"].astype(np.float64).reshape(-1))
                g.tensors[weights] = Tensor(weights, w.shape, "float32", None, w)
                jac[:, j] = (ys[0] - ys[1]) / 2e-3
            expect[c] += jac.T @ jac / power
    expect /= len(x)
    scale = np.abs(expect).max()
    assert np.abs(h - expect).max() < 5e-3 * scale  # float32 differences across the ReLU kinks


def test_a_layer_behind_an_op_without_vjp_keeps_no_output_hessian():
    """A tanh (no vjp) between the conv and the output: the conv gets no output hessian, the layer after it does."""
    rng = np.random.default_rng(5)
    w1, w2 = rng.normal(0, 1, (3, 1, 1, 2)), rng.normal(0, 1, (4, 3))
    g = _graph([Op("c1", "conv2d", ["x", "w1"], ["a"], Conv2DAttrs()),
                Op("t", "tanh", ["a"], ["b"], NoAttrs()),
                Op("flat", "reshape", ["b"], ["f"], NoAttrs()),
                Op("fc", "fully_connected", ["f", "w2"], ["y"], FullyConnectedAttrs())],
               [("x", (1, 1, 1, 2), None), ("a", (1, 1, 1, 3), None), ("b", (1, 1, 1, 3), None), ("f", (1, 3), None),
                ("y", (1, 4), None), ("w1", w1.shape, w1), ("w2", w2.shape, w2)], ["x"], ["y"])
    h = output_hessians(g, {"x": rng.normal(0, 1, (8, 1, 1, 2)).astype(np.float32)}, ["c1", "fc"])
    assert set(h) == {"fc"}


def test_per_row_hessians_round_as_the_shared_one_when_equal():
    """gptq_clip_round with one hessian per row equals the shared-hessian call when every row's is the same, and
    a row's hessian changes only that row's rounding."""
    rng = np.random.default_rng(6)
    w = rng.normal(0, 1, (5, 12))
    a = rng.normal(0, 1, (40, 12))
    h = a.T @ a / 40
    amax = np.abs(w).max(axis=1)
    q, s = gptq_clip_round(w, amax, h, 7)
    q3, s3 = gptq_clip_round(w, amax, np.broadcast_to(h, (5, 12, 12)), 7)
    assert np.array_equal(q, q3) and np.array_equal(np.asarray(s), np.asarray(s3))
    other = np.stack([h] * 5)
    b = rng.normal(0, 1, (40, 12)) * np.linspace(0.1, 3, 12)
    other[2] = b.T @ b / 40
    q4, _ = gptq_clip_round(w, amax, other, 7)
    assert np.array_equal(np.delete(q4, 2, axis=0), np.delete(q, 2, axis=0)) and not np.array_equal(q4[2], q[2])


def test_blended_scales_both_to_a_unit_mean_diagonal():
    h_out = np.stack([np.diag([2.0, 4.0]), np.zeros((2, 2))])
    h = blended(h_out, np.diag([1.0, 3.0]), 1.0)
    assert np.allclose(h[0], np.diag([2 / 3 + 0.5, 4 / 3 + 1.5])) and np.allclose(h[1], np.diag([0.5, 1.5]))


def test_layers_past_the_memory_cap_keep_no_output_hessian(monkeypatch):
    """MAX_ENTRIES bounds the values kept, in graph order: with room for c1's 4 x 18 x 18 only, c2 and fc get none."""
    import mcutool.quantize.output_hessians as oh
    rng = np.random.default_rng(7)
    g = _small_cnn(rng)
    monkeypatch.setattr(oh, "MAX_ENTRIES", 4 * 18 * 18)
    h = oh.output_hessians(g, {"x": rng.normal(0, 1, (4, 6, 6, 2)).astype(np.float32)}, ["c1", "c2", "fc"])
    assert set(h) == {"c1"}
