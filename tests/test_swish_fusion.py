"""Swish (x * LOGISTIC(x), as exporters write SiLU) fused into one in-place lookup table, and an
EfficientNet-B0-shaped network at 96x96 that fits stm32f746 because of it (issue 12, must-show 4).

Expected values: the unfused graph run by mcutool.reference (itself checked against tflite-runtime's
BUILTIN_REF kernels here), bytes derived by hand in the comments.
"""
import numpy as np
import pytest

from conftest import require_board_tools
from mcutool import reference
from mcutool.compiler import Options, compile_model, run_build
from mcutool.frontends import load_model
from mcutool.schedule.arena import plan_arena
from mcutool.schedule.fuse import fuse_swish
from patch_nets import EFFICIENTNET_B0, assert_not_degenerate, build_net, sample_images
from tflite_builder import RefInterpreter

SMALL = [("conv", 16, 3, 2, "SAME", "NONE"), ("swish",), ("mbconv", 4, 3, 1, 16), ("mbconv", 4, 3, 2, 24),
         ("gap",), ("fc", 10)]


def _check_fused_exact(model, graph, fused, seed=3):
    """The unfused graph equals tflite-runtime's reference kernels and the fused one equals it; the images."""
    images = sample_images(graph, 8, seed=seed)
    assert_not_degenerate(graph, images)
    oracle = RefInterpreter(model)
    for x in images[:4]:
        want = reference.run(graph, {graph.inputs[0]: x})[graph.outputs[0]]
        assert np.array_equal(oracle(x)[0], want)
        assert np.array_equal(reference.run(fused, {graph.inputs[0]: x})[graph.outputs[0]], want)
    return images


def test_swish_fused_into_one_table_bit_exact_and_in_place(tmp_path):
    model = build_net(tmp_path / "swish.tflite", SMALL, (1, 32, 32, 3), seed=2)
    graph = load_model(model)
    fused = fuse_swish(graph)
    kinds = [op.kind for op in fused.ops]
    # stem swish, 2 x (expand, depthwise, SE-squeeze) swishes become tables; the SE gates (LOGISTIC -> MUL of
    # another tensor) stay
    assert kinds.count("lut") == 7 and kinds.count("logistic") == kinds.count("mul") == 2
    _check_fused_exact(model, graph, fused)
    # the stem's 16x16x16 output (4,096 B) and its logistic (4,096 B) were both live at the MUL; fused, the
    # table writes over its input
    plan = plan_arena(fused)
    assert any(fused.ops[i].kind == "lut" for i in range(len(fused.ops)) if fused.ops[i].name in plan.in_place)
    assert plan.size < plan_arena(graph).size


HSWISH = [("conv", 16, 3, 2, "SAME", "NONE"), ("hswish",), ("dwconv", 3, 1, "SAME", "NONE"), ("hswish",),
          ("conv", 16, 1, 1, "VALID", "NONE"), ("gap",), ("fc", 10)]


@pytest.mark.qemu
def test_hard_swish_as_exported_fused_into_one_table(tmp_path):
    """Hard-swish through ONNX: ADD(x, 3) with a fused RELU6, MUL by x, MUL by 1/6 -- three ops of one input value
    become one table (the reference on the 256 values, so exact by construction), in place. By hand: unfused,
    the stem conv's 16x16x16 output x (4,096 B) is read again by the first MUL, so the ADD's output lies beside
    it: 8,192 B; fused, the table writes over x and the peak is the stem conv's 32x32x3 input and its output:
    3,072 + 4,096 = 7,168 B."""
    require_board_tools("stm32f746")
    model = build_net(tmp_path / "hswish.tflite", HSWISH, (1, 32, 32, 3), seed=1)
    graph = load_model(model)
    fused = fuse_swish(graph)
    assert [op.kind for op in graph.ops][:4] == ["conv2d", "add", "mul", "mul"]
    assert [op.kind for op in fused.ops][:5] == ["conv2d", "lut", "depthwise_conv2d", "lut", "conv2d"]
    assert plan_arena(graph).size == 8_192 and plan_arena(fused).size == 7_168
    images = _check_fused_exact(model, graph, fused)
    report = compile_model(model, "stm32f746", tmp_path / "proj", Options())
    assert report["memory"]["arena_bytes"] == 7_168
    for x in images[:2]:
        ys, _ = run_build(tmp_path / "proj", [x])
        assert np.array_equal(ys[0], reference.run(graph, {graph.inputs[0]: x})[graph.outputs[0]])


@pytest.mark.qemu
def test_efficientnet_b0_96_fits_stm32f746_bit_exact(tmp_path):
    require_board_tools("stm32f746")
    model = build_net(tmp_path / "efficientnet_b0_96.tflite", EFFICIENTNET_B0, (1, 96, 96, 3), seed=1, n_calib=6)
    graph = load_model(model)
    images = sample_images(graph, 8, seed=5)
    assert_not_degenerate(graph, images)
    # unfused, block 2's expansion (48x48x96 = 221,184 B) and its LOGISTIC (221,184 B) are live together
    assert plan_arena(graph).size >= 2 * 221_184
    report = compile_model(model, "stm32f746", tmp_path / "proj", Options())
    m = report["memory"]
    # fused: block 2's depthwise (stride 2) reads 48x48x96 and writes 24x24x96: 221,184 + 55,296 = 276,480 B
    assert m["arena_bytes"] == 276_480 and m["sram_used_bytes"] <= 327_680
    oracle = RefInterpreter(model)
    assert np.array_equal(oracle(images[0])[0], reference.run(graph, {graph.inputs[0]: images[0]})[graph.outputs[0]])
    for x in images[:2]:
        ys, info = run_build(tmp_path / "proj", [x], timeout=600)
        assert np.array_equal(ys[0], reference.run(graph, {graph.inputs[0]: x})[graph.outputs[0]])
    print(f"\nEfficientNet-B0 96: arena {m['arena_bytes']:,} B, SRAM {m['sram_used_bytes']:,} B, MACs "
          f"{report['macs']:,}, {info['instructions']:,} instructions")
