"""The int8 average pool's word-wide sums (runtime/mcu_avg_pool2d_s8.c: SXTAB16 into 16-bit lanes on Cortex-M7)
bit-exact in QEMU with the tflite-micro interpreter: a 256-pixel global pool (the lanes' limit) over 8 + 4
channels, a 3x3 stride-2 SAME pool (border windows of 4 and 6 pixels), over 6 channels (unaligned words and a
2-channel tail) a 2x2 pool and a 63-pixel global one, and a 272-pixel global pool (past the lanes: one element at a
time); inputs include all -128 and all 127."""
from __future__ import annotations

import numpy as np
import pytest

from conftest import require_board_tools
from tflite_builder import ModelBuilder

from mcutool.compiler import Options, compile_model, run_build

Q = dict(scale=0.05, zero_point=-3)


def pool_net() -> bytes:
    b = ModelBuilder()
    x1 = b.tensor("x1", (1, 16, 16, 12), "int8", **Q)
    x2 = b.tensor("x2", (1, 9, 7, 6), "int8", **Q)
    x3 = b.tensor("x3", (1, 17, 16, 4), "int8", **Q)
    outs = []
    for name, x, shape, filt, stride, padding in [("g256", x1, (1, 1, 1, 12), (16, 16), (1, 1), "VALID"),
                                                  ("s2", x1, (1, 8, 8, 12), (3, 3), (2, 2), "SAME"),
                                                  ("c6", x2, (1, 8, 6, 6), (2, 2), (1, 1), "VALID"),
                                                  ("g63", x2, (1, 1, 1, 6), (9, 7), (1, 1), "VALID"),
                                                  ("g272", x3, (1, 1, 1, 4), (17, 16), (1, 1), "VALID")]:
        y = b.tensor(name, shape, "int8", **Q)
        b.op("AVERAGE_POOL_2D", [x], [y], "Pool2DOptions", Padding=padding, StrideH=stride[0], StrideW=stride[1],
             FilterHeight=filt[0], FilterWidth=filt[1], FusedActivationFunction="NONE")
        outs.append(y)
    b.inputs, b.outputs = [x1, x2, x3], outs
    return b.build()


def _inputs(n: int) -> list[list[np.ndarray]]:
    rng = np.random.default_rng(11)
    shapes = [(1, 16, 16, 12), (1, 9, 7, 6), (1, 17, 16, 4)]
    runs = [[np.full(s, v, np.int8) for s in shapes] for v in (-128, 127)]
    runs += [[rng.integers(-128, 128, size=s, dtype=np.int8) for s in shapes] for _ in range(n - 2)]
    return runs


def _micro(path, xs) -> list[np.ndarray]:
    from tflite_micro.python.tflite_micro import runtime
    micro = runtime.Interpreter.from_file(str(path))
    for i, x in enumerate(xs):
        micro.set_input(x, i)
    micro.invoke()
    return [micro.get_output(i) for i in range(5)]


@pytest.mark.qemu
def test_avg_pool_word_sums_bit_exact_in_qemu(tmp_path):
    require_board_tools("stm32f746")
    net = tmp_path / "pool_net.tflite"
    net.write_bytes(pool_net())
    out = tmp_path / "proj"
    compile_model(net, "stm32f746", out, Options())
    for xs in _inputs(5):
        ys, _ = run_build(out, xs)
        want = _micro(net, xs)
        assert len(ys) == 5
        for y, w in zip(ys, want):
            assert np.array_equal(y.reshape(w.shape), w)
