"""One network through every operator of this batch that runs in firmware -- SPLIT, SPLIT_V, RESIZE_BILINEAR,
RESIZE_NEAREST_NEIGHBOR, SPACE_TO_DEPTH, DEPTH_TO_SPACE, SLICE, UNPACK, PACK, GATHER, REDUCE_MAX, BATCH_MATMUL,
SUM, ARG_MAX (ARG_MIN shares its kernel) -- compiled for stm32f746: bit-exact in QEMU with the tflite-micro
interpreter (and the reference), with no floating point in the ELF, and on the host under ASan inside the exact
arena."""
from __future__ import annotations

import subprocess

import numpy as np
import pytest

from conftest import assert_no_floating_point, require_board_tools
from host_build import build_host_program
from tflite_builder import ModelBuilder

from mcutool import reference
from mcutool.compiler import Options, compile_model, run_build
from mcutool.frontends.tflite import load_tflite

Q = dict(scale=0.05, zero_point=-3)


def ops8b_net() -> bytes:
    b = ModelBuilder()
    t = lambda name, shape, **q: b.tensor(name, shape, "int8", **(q or Q))  # noqa: E731
    c = lambda name, v: b.const(name, np.asarray(v, np.int32))  # noqa: E731
    x = t("x", (1, 4, 4, 8))
    a, bb = t("a", (1, 4, 4, 4)), t("b", (1, 4, 4, 4))
    b.op("SPLIT", [c("split_axis", [3]), x], [a, bb], "SplitOptions", NumSplits=2)
    up = t("up", (1, 8, 8, 4))
    b.op("RESIZE_BILINEAR", [a, c("up_size", [8, 8])], [up], "ResizeBilinearOptions", HalfPixelCenters=True)
    s2d = t("s2d", (1, 4, 4, 16))
    b.op("SPACE_TO_DEPTH", [up], [s2d], "SpaceToDepthOptions", BlockSize=2)
    d2s = t("d2s", (1, 8, 8, 4))
    b.op("DEPTH_TO_SPACE", [s2d], [d2s], "DepthToSpaceOptions", BlockSize=2)
    nn = t("nn", (1, 8, 8, 4))
    b.op("RESIZE_NEAREST_NEIGHBOR", [bb, c("nn_size", [8, 8])], [nn], "ResizeNearestNeighborOptions")
    sl = t("sl", (1, 4, 4, 4))
    b.op("SLICE", [d2s, c("sl_begin", [0, 2, 1, 0]), c("sl_size", [1, 4, 4, -1])], [sl])
    rows = [t(f"row{i}", (1, 4, 4)) for i in range(4)]
    b.op("UNPACK", [sl], rows, "UnpackOptions", Num=4, Axis=1)
    half = t("half", (1, 4, 8, 4))
    b.op("SLICE", [nn, c("half_begin", [0, 0, 0, 0]), c("half_size", [1, 4, 8, 4])], [half])
    pooled = t("pooled", (1, 4, 4))
    b.op("REDUCE_MAX", [half, c("max_axes", [2])], [pooled], "ReducerOptions", KeepDims=False)
    packed = t("packed", (1, 3, 4, 4))
    b.op("PACK", [rows[3], pooled, rows[0]], [packed], "PackOptions", ValuesCount=3, Axis=1)
    g = t("g", (1, 3, 4, 3))
    b.op("GATHER", [packed, c("g_idx", [3, 0, 2])], [g], "GatherOptions", Axis=3)
    w = b.tensor("w", (3, 6), "int8", scale=0.02, zero_point=0,
                 data=np.random.default_rng(3).integers(-128, 128, size=(3, 6)))
    mm = b.tensor("mm", (1, 3, 4, 6), "int8", scale=0.04, zero_point=2)
    b.op("BATCH_MATMUL", [g, w], [mm], "BatchMatMulOptions")
    lo, hi = t("lo", (1, 3, 4, 2), scale=0.04, zero_point=2), t("hi", (1, 3, 4, 4), scale=0.04, zero_point=2)
    b.op("SPLIT_V", [mm, c("sv_sizes", [2, -1]), c("sv_axis", [3])], [lo, hi], "SplitVOptions", NumSplits=2)
    total = b.tensor("total", (1, 3, 4), "int8", scale=0.3, zero_point=-1)
    b.op("SUM", [hi, c("sum_axes", [3])], [total], "ReducerOptions", KeepDims=False)
    best = b.tensor("best", (1, 3), "int32")
    b.op("ARG_MAX", [total, c("am_axis", [2])], [best], "ArgMaxOptions", OutputType=2)
    b.inputs, b.outputs = [x], [lo, best]
    return b.build()


@pytest.fixture(scope="module")
def net(tmp_path_factory):
    path = tmp_path_factory.mktemp("ops8b_net") / "ops8b_net.tflite"
    path.write_bytes(ops8b_net())
    return path


def _inputs(n: int) -> list[np.ndarray]:
    rng = np.random.default_rng(8)
    return [rng.integers(-128, 128, size=(1, 4, 4, 8), dtype=np.int8) for _ in range(n)]


def _micro(path, x) -> list[np.ndarray]:
    from tflite_micro.python.tflite_micro import runtime
    micro = runtime.Interpreter.from_file(str(path))
    micro.set_input(x, 0)
    micro.invoke()
    return [micro.get_output(0), micro.get_output(1)]


def test_net_imports_every_op_and_matches_tflite_micro(net):
    g = load_tflite(net)
    assert {op.kind for op in g.ops} == {"split", "resize_bilinear", "space_to_depth", "depth_to_space",
                                         "resize_nearest_neighbor", "slice", "unpack", "reduce_max", "pack",
                                         "gather", "batch_matmul", "sum", "arg_max"}
    distinct = set()
    for x in _inputs(6):
        want = _micro(net, x)
        got = reference.run(g, {"x": x})
        for name, w in zip(g.outputs, want):
            assert np.array_equal(got[name], w), name
        distinct.add(got["best"].tobytes() + got["lo"].tobytes())
    assert len(distinct) == 6


def test_net_on_the_host_in_the_exact_arena(net, tmp_path):
    """--emit library, host gcc with ASan/UBSan, the arena malloc'ed to exactly MCU_MODEL_ARENA_SIZE."""
    lib = tmp_path / "lib"
    compile_model(net, "stm32f746", lib, Options(emit="library"))
    exe = build_host_program(lib, tmp_path / "net")
    g = load_tflite(net)
    for x in _inputs(3):
        (tmp_path / "x.bin").write_bytes(x.tobytes())
        subprocess.run([str(exe), str(tmp_path / "x.bin"), str(tmp_path / "y.bin")], check=True)
        got = np.frombuffer((tmp_path / "y.bin").read_bytes(), np.int8).reshape(1, 3, 4, 2)
        assert np.array_equal(got, reference.run(g, {"x": x})["lo"])


@pytest.mark.qemu
def test_net_bit_exact_in_qemu(net, tmp_path):
    board = require_board_tools("stm32f746")
    out = tmp_path / "proj"
    compile_model(net, "stm32f746", out, Options())
    for x in _inputs(5):
        ys, info = run_build(out, [x])
        want = _micro(net, x)
        assert [y.dtype for y in ys] == [np.int8, np.int32]
        for y, w in zip(ys, want):
            assert np.array_equal(y.reshape(w.shape), w)
        assert info["instructions"] > 0
    for elf in ("emulator.elf", "board.elf"):
        assert_no_floating_point(board, out / elf)
