"""Patch-based inference (issue 5, MCUNetV2): tiles of the first stage computed from their receptive fields give
the layer-by-layer output bit for bit, on the host (numpy) and in firmware (QEMU); the MobileNetV2-style network
at 224x224 fits the 320 KB stm32f746 only with patches.

Expected values come from mcutool.reference run layer by layer (the golden model, itself checked against
tflite-runtime's BUILTIN_REF on these networks below), or are derived by hand in the comments.
"""
import dataclasses
import json
import re
import time

import numpy as np
import pytest

from conftest import require_tool, shared_model
from host_build import build_host_program
from mcutool import reference
from mcutool.boards import load_board
from mcutool.compiler import OTHER_SRAM_ESTIMATE, Options, compile_model, run_build
from mcutool.errors import UserError
from mcutool.frontends import load_model
from mcutool.ir import NoAttrs, Op
from mcutool.schedule import patch
from mcutool.schedule.arena import plan_arena
from mcutool.schedule.fuse import fuse_swish
from mcutool.schedule.padding import fold_pads
from patch_nets import MOBILENETV1_025, MOBILENETV2_035, assert_not_degenerate, build_net, sample_images
from tflite_builder import RefInterpreter

qemu = pytest.mark.qemu

# name -> (layer specs, input shape, seed). Each puts a different layer mix in the patchable first stage; the
# seeds are ones whose random weights give >= 5 classes on the test images (DESIGN.md section 11).
NETS = {
    "strided_same": ([("conv", 8, 3, 2, "SAME", "RELU"), ("dwconv", 3, 1, "SAME", "RELU6"),
                      ("conv", 8, 1, 1, "VALID", "NONE"), ("gap",), ("fc", 10)], (1, 20, 20, 3), 4),
    "pad_maxpool": ([("pad", 1, 2, 1, 0), ("conv", 8, 3, 2, "VALID", "RELU"), ("maxpool", 3, 2, "SAME"),
                     ("conv", 12, 3, 1, "SAME", "RELU6"), ("gap",), ("fc", 10)], (1, 23, 21, 3), 1),
    "avgpool_dilated": ([("conv", 8, 3, 1, "SAME", "RELU"), ("avgpool", 2, 2, "VALID"),
                         ("dwconv", 3, 1, "SAME", "RELU", 2), ("dwconv", 3, 2, "SAME", "RELU6"),
                         ("conv", 16, 1, 1, "VALID", "NONE"), ("gap",), ("fc", 10)], (1, 24, 24, 3), 6),
    "inverted_residual": ([("conv", 16, 3, 2, "SAME", "RELU6"), ("block", 1, 8, 1), ("block", 6, 8, 2),
                           ("block", 6, 8, 1), ("gap",), ("fc", 10)], (1, 32, 32, 3), 2),
    "k5_then_padded_avgpool": ([("conv", 4, 5, 1, "SAME", "RELU"), ("dwconv", 5, 2, "SAME", "RELU"),
                                ("maxpool", 2, 2, "VALID"), ("avgpool", 3, 1, "SAME"), ("gap",), ("fc", 10)],
                               (1, 22, 22, 2), 2),
    "nchw_transpose_pad": ([("nchw",), ("pad", 1, 1, 1, 1), ("conv", 8, 3, 2, "VALID", "RELU"),
                            ("dwconv", 3, 1, "SAME", "RELU6"), ("conv", 8, 1, 1, "VALID", "NONE"), ("gap",),
                            ("fc", 10)], (1, 18, 18, 3), 1),
    # elementwise ops inside the stage: LOGISTIC and MUL (swish as exported; a `lut` once fused), CONCATENATION
    "swish_stem": ([("conv", 8, 3, 2, "SAME", "NONE"), ("swish",), ("dwconv", 3, 2, "SAME", "NONE"), ("swish",),
                    ("conv", 8, 1, 1, "VALID", "NONE"), ("gap",), ("fc", 10)], (1, 24, 24, 3), 3),
    "fire_concat": ([("conv", 8, 3, 2, "SAME", "RELU"), ("fire", 4, 8, 8), ("maxpool", 3, 2, "SAME"),
                     ("conv", 8, 1, 1, "VALID", "NONE"), ("gap",), ("fc", 10)], (1, 20, 20, 3), 1),
}
N_TEST = 8


@pytest.fixture(scope="module")
def nets(tmp_path_factory):
    d = tmp_path_factory.mktemp("nets")
    return {name: build_net(d / f"{name}.tflite", specs, shape, seed=seed)
            for name, (specs, shape, seed) in NETS.items()}


# ------------------------------------------------------------------------------- hand-derived geometry

def test_receptive_field_and_tiles_by_hand():
    # 3x3 stride 2, top pad 0 (TFLite SAME on an even size pads bottom only): rows [0, 16) read [0, 33)
    w = patch.Window((3, 3), (2, 2), (1, 1), (0, 0))
    assert patch.input_span(w, 0, 0, 16) == (0, 33)
    assert patch.input_span(w, 0, 40, 16) == (80, 33)
    # 3x3 stride 1 pad 1, dilation 2: rows [5, 9) read rows 5 - 1 .. 8 - 1 + 4 -> (4, 8)
    w = patch.Window((3, 3), (1, 1), (2, 2), (1, 1))
    assert patch.input_span(w, 1, 5, 4) == (4, 8)
    # 56 rows in 3 tiles of 19: the last one shifted back to end at 56
    assert patch.tile_starts(56, 3) == [0, 19, 37]
    assert patch.tile_starts(8, 2) == [0, 4]


def test_extra_macs_by_hand(tmp_path):
    # two 3x3 stride-1 SAME convs 1 -> 1 channel on 8x8, split after the second, 2x2 grid: each 4x4 output tile
    # needs a 6x6 tile of the first conv's output, so the first conv computes 4 * 36 = 144 pixels instead of
    # 64: 80 extra pixels of 9 MACs = 720 extra MACs; the model has 2 * 64 * 9 = 1,152 MACs -> 62.5 %
    path = build_net(tmp_path / "two.tflite", [("conv", 1, 3, 1, "SAME", "RELU"), ("conv", 1, 3, 1, "SAME", "NONE")],
                     (1, 8, 8, 1))
    graph = load_model(path)
    plan = patch.make_plan(graph, patch.stage_ops(graph), 1, 2)
    assert plan.extra_macs == 720
    assert plan.extra_macs_pct == pytest.approx(62.5)
    assert plan.shapes == [(8, 8, 1), (6, 6, 1), (4, 4, 1)]
    # tile origins of the first conv's output: -1 and 3 along each axis (one row of padding at the border)
    assert sorted({o[1] for o in plan.origins}) == [(-1, -1), (-1, 3), (3, -1), (3, 3)]


def test_stage_spans_residual_blocks_and_stops_at_padded_average_pool(nets):
    g = load_model(nets["inverted_residual"])
    stage = patch.stage_ops(g)
    # conv, block 1 (dw, project), block 2 (expand, dw, project), block 3 (expand, dw, project, add); the mean
    # (global pooling) is not local
    assert [op.kind for op in stage] == ["conv2d", "depthwise_conv2d", "conv2d", "conv2d", "depthwise_conv2d",
                                         "conv2d", "conv2d", "depthwise_conv2d", "conv2d", "add"]
    # block 2's output is read by block 3's expand and by its add: a stage may end at it or after the add, not
    # inside block 3
    assert [patch.valid_split(g, stage, k) for k in range(len(stage))] == [True] * 6 + [False] * 3 + [True]
    plan = patch.make_plan(g, stage, 9, 2)
    # the add needs block 2's output only where its own output tile is: a crop of the (wider) tile that the
    # expand conv + 3x3 depthwise read; 8x8 output, 2x2 grid: 4x4 tiles, the block input tile 6x6 (one-pixel
    # halo of the depthwise), the crop 4x4 from (1, 1)
    assert plan.shapes[6][:2] == (6, 6)
    assert [(c.src, c.shape[:2], c.dy, c.dx) for c in plan.crops] == [(6, (4, 4), 1, 1)]
    g = load_model(nets["k5_then_padded_avgpool"])
    assert [op.kind for op in patch.stage_ops(g)] == ["conv2d", "depthwise_conv2d", "max_pool2d"]
    g = load_model(nets["nchw_transpose_pad"])  # a PyTorch-style NCHW input: the transpose is no stage layer
    assert g.ops[0].kind == "transpose" and [op.kind for op in patch.stage_ops(g)] == [
        "pad", "conv2d", "depthwise_conv2d", "conv2d"]


# ---------------------------------------------------------------------- host: patched == layer by layer

def _check_patched(graph, images, grids=(2, 3, 4)):
    plans = patch.candidates(graph, grids)
    assert len(plans) >= 3
    wants = [reference.run(graph, {graph.inputs[0]: x}, keep=True) for x in images]
    for plan in plans:
        rewritten = patch.apply_plan(graph, plan)
        for x, want in zip(images, wants):
            got = patch.run(rewritten, {graph.inputs[0]: x})
            for name in graph.outputs:
                assert np.array_equal(got[name], want[name]), f"split {plan.split_layer}, grid {plan.grid}"
            stage_out = patch.run_stage(graph, plan, want[plan.source])
            assert np.array_equal(stage_out, want[plan.tensors[-1]]), f"split {plan.split_layer}, grid {plan.grid}"
            # the output over the input bytes its tiles release, as the arena places them: still exact
            released = patch.run_stage(graph, plan, want[plan.source], lead=plan.release_lead)
            assert np.array_equal(released, want[plan.tensors[-1]]), f"split {plan.split_layer}, grid {plan.grid}"
    return plans


@pytest.mark.parametrize("name", sorted(NETS))
def test_patched_equals_layer_by_layer(nets, name):
    graph = load_model(nets[name])
    images = sample_images(graph, N_TEST, seed=100)
    assert_not_degenerate(graph, images)
    oracle = RefInterpreter(nets[name])  # the golden model equals tflite-runtime's reference kernels here too
    for x in images[:2]:
        assert np.array_equal(oracle(x)[0], reference.run(graph, {graph.inputs[0]: x})[graph.outputs[0]])
    plans = _check_patched(graph, images[:3])
    assert {p.grid for p in plans} == {2, 3, 4} and len({p.split for p in plans}) >= 2


def test_exporter_pads_fold_and_the_tile_load_reads_nchw(nets):
    """A PAD before a VALID conv becomes the conv's padding (same quantization: the fill is the zero point);
    the NCHW -> NHWC transpose of the input is absorbed by the tile load, so neither copy exists whole."""
    graph = load_model(nets["nchw_transpose_pad"])
    folded = fold_pads(graph)
    assert [op.kind for op in folded.ops][:2] == ["transpose", "conv2d"] and folded.ops[1].attrs.pads == (1, 1, 1, 1)
    images = sample_images(graph, 3, seed=101)
    for x in images:  # folding is exact: the layer-by-layer reference gives the same output
        assert np.array_equal(reference.run(folded, {graph.inputs[0]: x})[graph.outputs[0]],
                              reference.run(graph, {graph.inputs[0]: x})[graph.outputs[0]])
    plans = _check_patched(folded, images)
    assert all(p.transpose is folded.ops[0] and p.source == graph.inputs[0] for p in plans)
    rewritten = patch.apply_plan(folded, plans[0])
    assert "transpose" not in [op.kind for op in rewritten.ops] and rewritten.ops[0].inputs == graph.inputs
    # 18x18x3 input (972 B), 9x9x8 after the stride-2 conv (648 B): the transposed copy would add 972 B
    assert folded.tensors[folded.ops[0].outputs[0]].nbytes == 972 and folded.ops[0].outputs[0] not in rewritten.tensors


def test_elementwise_ops_inside_the_stage(nets):
    """LOGISTIC, MUL (swish as exported), the `lut` that fuses them, and a channel CONCATENATION (a fire module)
    run tile by tile: an output element depends on its inputs' elements at the same position only, so a tile
    needs the same region of each input; the patched stage equals layer by layer."""
    graph = load_model(nets["swish_stem"])
    assert [op.kind for op in patch.stage_ops(graph)] == ["conv2d", "logistic", "mul", "depthwise_conv2d", "logistic",
                                                          "mul", "conv2d"]
    fused = fuse_swish(graph)
    assert [op.kind for op in patch.stage_ops(fused)] == ["conv2d", "lut", "depthwise_conv2d", "lut", "conv2d"]
    plans = _check_patched(fused, sample_images(graph, 3, seed=102))
    assert any(p.ops[-1].kind == "conv2d" and p.split == 4 for p in plans)  # the whole stage, both tables in it
    fire = load_model(nets["fire_concat"])
    kinds = [op.kind for op in patch.stage_ops(fire)]
    assert kinds[:5] == ["conv2d", "conv2d", "conv2d", "conv2d", "concat"]
    plans = _check_patched(fire, sample_images(fire, 3, seed=103))
    assert any(p.split >= kinds.index("concat") for p in plans)


def test_patched_kws_equals_layer_by_layer():
    graph = load_model(shared_model("kws_ref_model.tflite"))
    rng = np.random.default_rng(5)
    t = graph.tensor(graph.inputs[0])
    images = [rng.integers(-128, 128, t.shape).astype(np.int8) for _ in range(2)]
    plans = _check_patched(graph, images, grids=(2, 5))
    assert len({p.split for p in plans}) == 9  # conv2d_0 .. conv2d_4 (the 1x1 average pool takes no grid)


# -------------------------------------------------------------------------------------------- choice

@pytest.fixture(scope="module")
def mobilenet(tmp_path_factory):
    return build_net(tmp_path_factory.mktemp("mbv2") / "mobilenetv2_035.tflite", MOBILENETV2_035,
                     (1, 224, 224, 3), seed=1, n_calib=12)


def test_auto_patches_only_when_needed(nets, mobilenet):
    small = load_model(nets["strided_same"])
    limit = 320 * 1024
    assert patch.choose_plan(small, "auto", limit, OTHER_SRAM_ESTIMATE, 20.0).plan is None
    graph = load_model(mobilenet)
    auto = patch.choose_plan(graph, "auto", limit, OTHER_SRAM_ESTIMATE, 20.0)
    assert auto.unpatched_bytes > limit and auto.plan is not None
    assert auto.extra_macs_pct <= 20.0 and auto.arena_bytes + OTHER_SRAM_ESTIMATE <= limit
    # no higher than the lowest arena of one stage within the overhead bound; here a second stage (on the first
    # one's whole output) goes lower, and the arena is what the planner gives the graph with both stages
    within = [p for p in patch.candidates(graph) if p.extra_macs_pct <= 20.0]
    assert auto.arena_bytes < min(p.arena_bytes for p in within) and len(auto.plans) == 2
    assert plan_arena(auto.apply(graph)).size == auto.arena_bytes
    assert all(p.stage_bytes <= auto.arena_bytes for p in auto.plans)
    # with a budget: the least extra MACs among the plans that fit it
    budget = 280 * 1024
    cheap = patch.choose_plan(graph, "auto", budget, OTHER_SRAM_ESTIMATE, 20.0, budget_given=True)
    fitting = [p for p in within if p.arena_bytes + OTHER_SRAM_ESTIMATE <= budget]
    assert cheap.plan.extra_macs == min(p.extra_macs for p in fitting)
    assert cheap.plan.extra_macs_pct <= auto.plan.extra_macs_pct
    assert patch.choose_plan(graph, "off", limit, OTHER_SRAM_ESTIMATE, 20.0).plan is None
    forced = patch.choose_plan(graph, 3, limit, OTHER_SRAM_ESTIMATE, 20.0)
    assert forced.plan.grid == 3
    # the arena holds the stage input, its output and the tile buffers at once
    # (or, when the input dies there, the output overlaps its released rows: release_lead bytes before it)
    p = min(within, key=lambda p: (p.arena_bytes, p.extra_macs))
    stage_in, stage_out = graph.tensor(p.tensors[0]).nbytes, graph.tensor(p.tensors[-1]).nbytes
    lead = p.release_lead
    assert 0 < lead < stage_out  # the first row of output tiles lies before the input, the rest over it
    assert p.arena_bytes >= max(lead + stage_in, stage_out) + p.scratch_bytes == p.stage_bytes
    assert plan_arena(patch.apply_plan(graph, p)).size == p.arena_bytes


def test_bad_patch_option_is_a_clear_error():
    with pytest.raises(UserError, match="auto, off or a grid size"):
        patch.parse_mode("fast")
    assert patch.parse_mode("4") == 4 and patch.parse_mode("OFF") == "off"


# ------------------------------------------------------------------------------------------ firmware

def require_board_tools(board_name):
    board = load_board(board_name)
    require_tool(board.toolchain.tool("gcc"))
    require_tool(board.emulator.program)


@qemu
@pytest.mark.parametrize("name,grid", [("pad_maxpool", 3), ("avgpool_dilated", 2), ("inverted_residual", 4),
                                       ("nchw_transpose_pad", 3), ("swish_stem", 3), ("fire_concat", 2)])
def test_patched_firmware_bit_exact(nets, name, grid, tmp_path):
    require_board_tools("stm32f746")
    out = tmp_path / "proj"
    report = compile_model(nets[name], "stm32f746", out, Options(patch=grid, max_overhead=1000))
    assert report["schedule"]["patch"]["grid"] == [grid, grid]
    graph = load_model(nets[name])
    for x in sample_images(graph, 3, seed=200):
        ys, _ = run_build(out, [x])
        assert np.array_equal(ys[0], reference.run(graph, {graph.inputs[0]: x})[graph.outputs[0]])


@qemu
def test_hard_swish_and_requantization_inside_the_stage_bit_exact(nets, tmp_path):
    """The swish stem with its two tables replaced by a HARD_SWISH and a QUANTIZE (int8 -> int8, a new scale):
    patched equals layer by layer on the host for every plan, and in QEMU with a 3x3 grid, whose lowest arena
    cuts the stage after the stride-2 depthwise, HARD_SWISH inside it."""
    require_board_tools("stm32f746")
    fused = fuse_swish(load_model(nets["swish_stem"]))
    kinds = iter(["hard_swish", "quantize"])
    graph = dataclasses.replace(fused, ops=[Op(op.name, next(kinds), op.inputs, op.outputs, NoAttrs())
                                            if op.kind == "lut" else op for op in fused.ops])
    assert [op.kind for op in patch.stage_ops(graph)] == ["conv2d", "hard_swish", "depthwise_conv2d", "quantize",
                                                          "conv2d"]
    images = sample_images(graph, 3, seed=104)
    _check_patched(graph, images)
    out = tmp_path / "proj"
    report = compile_model(nets["swish_stem"], "stm32f746", out, Options(patch=3, max_overhead=1000), graph=graph)
    assert report["schedule"]["patch"]["stage_layers"][:3] == ["conv2d_0", "mul_0", "depthwise_conv2d_0"]
    for x in images[:2]:
        ys, _ = run_build(out, [x])
        assert np.array_equal(ys[0], reference.run(graph, {graph.inputs[0]: x})[graph.outputs[0]])


FOCUS_NET = [("s2d", 2), ("conv", 32, 3, 1, "SAME", "RELU"), ("dwconv", 3, 2, "SAME", "RELU6"),
             ("conv", 8, 1, 1, "VALID", "NONE"), ("gap",), ("fc", 10)]


@qemu
def test_stage_begins_after_a_layer_run_whole(tmp_path):
    """A SPACE_TO_DEPTH stem (YOLOv5's focus layer) is not local, so no stage begins at the input; one begins at
    the conv after it, reading its whole output. By hand: layer by layer the conv reads 32x32x12 (12,288 B) and
    writes 32x32x32 (32,768 B): 45,056 B; the SPACE_TO_DEPTH's 64x64x3 input and its output (12,288 B each) stay a
    bound no plan goes below. Patched within 20 %, on the host equal to layer by layer; in QEMU with
    --sram-budget 40 (the layer-by-layer arena does not fit), bit-exact."""
    require_board_tools("stm32f746")
    model = build_net(tmp_path / "focus.tflite", FOCUS_NET, (1, 64, 64, 3), seed=2)
    graph = load_model(model)
    images = sample_images(graph, N_TEST, seed=100)
    assert_not_degenerate(graph, images)
    oracle = RefInterpreter(model)
    assert np.array_equal(oracle(images[0])[0], reference.run(graph, {graph.inputs[0]: images[0]})[graph.outputs[0]])
    assert graph.ops[0].kind == "space_to_depth" and patch.stage_ops(graph) == []
    assert patch.stage_starts(graph) == [None, 1]
    choice = patch.choose_plan(graph, "auto", 0, 0, 20.0)
    assert choice.unpatched_bytes == 45_056 and choice.plan.ops[0].name == "conv2d_0"
    assert 2 * 12_288 <= choice.arena_bytes < 45_056 and choice.extra_macs_pct <= 20.0
    wants = [reference.run(graph, {graph.inputs[0]: x}, keep=True) for x in images[:3]]
    for plan in patch.first_stage_plans(graph, (2, 3, 4)):
        rewritten = patch.apply_plan(graph, plan)
        for x, want in zip(images[:3], wants):
            assert np.array_equal(patch.run(rewritten, {graph.inputs[0]: x})[graph.outputs[0]], want[graph.outputs[0]])
            released = patch.run_stage(graph, plan, want[plan.source], lead=plan.release_lead)
            assert np.array_equal(released, want[plan.tensors[-1]])
    out = tmp_path / "proj"
    report = compile_model(model, "stm32f746", out, Options(sram_budget_kib=40))
    assert report["schedule"]["patch"]["stage_layers"][0] == "conv2d_0"
    assert report["memory"]["sram_used_bytes"] <= 40 * 1024
    for x in images[:2]:
        ys, _ = run_build(out, [x])
        assert np.array_equal(ys[0], reference.run(graph, {graph.inputs[0]: x})[graph.outputs[0]])


@qemu
def test_mobilenetv2_224_fits_stm32f746_with_patches_bit_exact(mobilenet, tmp_path):
    require_board_tools("stm32f746")
    graph = load_model(mobilenet)
    # hand-derived layer-wise peak: block 2's depthwise (stride 2) reads 112x112x48 and writes 56x56x48
    # int8: 602,112 + 150,528 = 752,640 B (735 KiB)
    out = tmp_path / "proj"
    report = compile_model(mobilenet, "stm32f746", out, Options())
    m = report["memory"]
    assert m["layerwise_peak_bytes"] == 752_640
    assert report["flash"]["weights_bytes"] < 1_000_000
    assert m["unpatched_arena_bytes"] > m["sram_limit_bytes"] == 327_680
    p = report["schedule"]["patch"]
    assert p is not None and p["extra_macs_pct"] <= 20.0 and p["grid"][0] >= 2
    # two patched stages: the first ends at 56x56x8 (25,088 B), small enough to hold whole over the 224x224x3
    # input (150,528 B) -- starting 2,672 B before it, the others over input bytes no later tile loads: tile
    # (0, 0) stores output rows 0-6, columns 0-6, ending at byte (6 * 56 + 7) * 8 = 2,744, while tile (0, 1)
    # loads from input row 0, column 26 (output column 7 -> 28 at the input's stride 4, less 2 of halo), byte
    # 78; 2,666 aligned to 8 (each later tile of the row needs 28 B less) -- beside its tiles; the second cuts the
    # 56x56 blocks that expand to 48 channels (one 56x56x48 tensor is 150,528 B) into tiles. One stage gave
    # 200,704 B.
    first, second = p["stages"]
    assert first["split_layer"] == "conv2d_3" and first["grid"] == [8, 8] and second["stage_layers"][0] == "conv2d_4"
    assert first["release_lead_bytes"] == 2_672
    assert 2_672 + 150_528 + first["scratch_bytes"] <= m["arena_bytes"] < 200_704
    assert m["arena_bytes"] < m["sram_used_bytes"] <= 327_680
    written = json.loads((out / "report.json").read_text())
    assert written["schedule"]["patch"]["stages"] == p["stages"]
    # memory.svg beside it draws the layer-wise and the patch-based profile
    svg = (out / "memory.svg").read_text()
    assert f"layer-wise (every tensor whole) (peak {752_640:,} B)" in svg
    patched_peak = int(re.search(r"patch-based \(live\) \(peak ([\d,]+) B\)", svg).group(1).replace(",", ""))
    assert m["arena_bytes"] <= patched_peak < 752_640
    images = sample_images(graph, N_TEST, seed=99)
    assert_not_degenerate(graph, images)
    for x in images:
        start = time.monotonic()
        ys, info = run_build(out, [x])
        assert time.monotonic() - start < 120
        assert np.array_equal(ys[0], reference.run(graph, {graph.inputs[0]: x})[graph.outputs[0]])
    assert info["instructions"] > report["macs"] / 2


@pytest.mark.parametrize("name,grid", [("pad_maxpool", 3), ("k5_then_padded_avgpool", 4), ("nchw_transpose_pad", 3)])
def test_patched_library_under_asan_on_the_host(nets, name, grid, tmp_path):
    """The tile loop's copies and fills stay inside the arena (AddressSanitizer, arena of exactly its size)."""
    import subprocess
    lib = tmp_path / "lib"
    report = compile_model(nets[name], "stm32f746", lib, Options(emit="library", patch=grid, max_overhead=1000))
    assert report["schedule"]["patch"]["grid"] == [grid, grid]
    exe = build_host_program(lib, tmp_path / "host")
    graph = load_model(nets[name])
    for x in sample_images(graph, 3, seed=300):
        (tmp_path / "x.bin").write_bytes(x.tobytes())
        done = subprocess.run([str(exe), str(tmp_path / "x.bin"), str(tmp_path / "y.bin")], capture_output=True,
                              text=True)
        assert done.returncode == 0, done.stderr
        y = np.frombuffer((tmp_path / "y.bin").read_bytes(), np.int8)
        assert np.array_equal(y, reference.run(graph, {graph.inputs[0]: x})[graph.outputs[0]].reshape(-1))


def test_cli_patch_options(nets, tmp_path):
    from test_bad_input import assert_clear_error, run_cli
    done = run_cli("compile", nets["pad_maxpool"], "--board", "stm32f746", "-o", tmp_path / "p", "--no-build",
                   "--patch", "3", "--max-overhead", "50")
    assert done.returncode == 0, done.stderr
    report = json.loads((tmp_path / "p" / "report.json").read_text())
    p = report["schedule"]["patch"]
    assert p["grid"] == [3, 3] and p["extra_macs_pct"] <= 50
    assert f"on a 3x3 grid, split layer {p['split_layer']}" in done.stdout
    done = run_cli("compile", nets["pad_maxpool"], "--board", "stm32f746", "-o", tmp_path / "q", "--no-build")
    assert "patches: none" in done.stdout and json.loads((tmp_path / "q" / "report.json").read_text())[
        "schedule"]["patch"] is None
    assert_clear_error(run_cli("compile", nets["pad_maxpool"], "--board", "stm32f746", "-o", tmp_path / "r",
                               "--patch", "many"), "--patch", "auto, off")


@qemu
def test_sram_budget_patches_to_fit_and_refuses_what_cannot(nets, tmp_path):
    require_board_tools("stm32f746")
    # layer by layer the arena is 2,416 B (its PAD folded into the conv's padding); with ~2 KiB of stack and data that is over a 4 KiB budget
    report = compile_model(nets["pad_maxpool"], "stm32f746", tmp_path / "a", Options(sram_budget_kib=4))
    assert report["schedule"]["patch"] is not None
    assert report["memory"]["sram_used_bytes"] <= 4 * 1024 == report["memory"]["sram_budget_bytes"]
    graph = load_model(nets["pad_maxpool"])
    x = sample_images(graph, 1, seed=400)[0]
    ys, _ = run_build(tmp_path / "a", [x])
    assert np.array_equal(ys[0], reference.run(graph, {graph.inputs[0]: x})[graph.outputs[0]])
    with pytest.raises(UserError, match="no patch plan fits the SRAM budget of 1,024 bytes"):
        compile_model(nets["pad_maxpool"], "stm32f746", tmp_path / "b", Options(sram_budget_kib=1))
    assert not (tmp_path / "b").exists()  # refused before any project was written


# ----------------------------------------------------------------------- "does not fit" from the plan (issue 12)

# 96x96x3 input (27,648 B) -> 48x48x8 (18,432 B) -> 24x24x8 (4,608 B): layer by layer the first conv needs its
# input and output, 46,080 B. Any patch plan holds the whole input while its first tile runs (27,648 B) and
# some of the split output besides it: more than hifive1-revb's 16 KiB, however the tiles are cut.
TOO_BIG = ([("conv", 8, 3, 2, "SAME", "RELU"), ("conv", 8, 3, 2, "SAME", "RELU6"), ("gap",), ("fc", 10)],
           (1, 96, 96, 3), 3)
SMALLEST = re.compile(r"smallest arena any patch schedule reaches is ([\d,]+) bytes \((\d+)x\d+ patches up to (\S+), "
                      r"\+([\d.]+) % MACs\), i\.e\. at least ([\d,]+) bytes of SRAM")


@pytest.fixture(scope="module")
def too_big(tmp_path_factory):
    specs, shape, seed = TOO_BIG
    return build_net(tmp_path_factory.mktemp("too_big") / "too_big.tflite", specs, shape, seed=seed)


def test_does_not_fit_is_decided_from_the_plan_before_any_kernel(too_big, tmp_path, monkeypatch):
    import mcutool.codegen.model as codegen_model

    def no_kernels(*args, **kwargs):
        raise AssertionError("kernels were generated for a model that cannot fit")
    monkeypatch.setattr(codegen_model, "generate_model", no_kernels)
    start = time.perf_counter()
    with pytest.raises(UserError) as err:
        compile_model(too_big, "hifive1-revb", tmp_path / "p", Options())
    seconds = time.perf_counter() - start
    message = str(err.value)
    assert "does not fit hifive1-revb" in message and "16,384 are available" in message
    found = SMALLEST.search(message)
    assert found, message
    arena, grid, split, _, sram = found.groups()
    arena, sram = int(arena.replace(",", "")), int(sram.replace(",", ""))
    assert 27_648 < arena < 46_080 and sram == arena + 256  # bounds by hand (above); 256 B: the least stack
    assert split == "conv2d_1"  # the only split whose output is smaller than the first conv's
    assert "--patch auto" not in message  # it is the default, already in use
    assert not (tmp_path / "p").exists()
    print(f"\ndoes-not-fit decided in {seconds:.2f} s")


def test_does_not_fit_suggests_only_options_not_in_use(too_big, tmp_path):
    from test_bad_input import assert_clear_error, run_cli
    # 40 KiB: layer by layer (46,080 B) is too much, a patch plan (at most 46,080 - 18,432 + 4,608 + tiles) is not
    off = run_cli("compile", too_big, "--board", "stm32f746", "-o", tmp_path / "a", "--patch", "off",
                  "--sram-budget", "40")
    assert_clear_error(off, "does not fit --sram-budget 40 KiB", "layer by layer: --patch off", "--patch auto")
    # on hifive1-revb no plan gets under 16 KiB: patching is not suggested
    off = run_cli("compile", too_big, "--board", "hifive1-revb", "-o", tmp_path / "c", "--patch", "off")
    assert_clear_error(off, "does not fit hifive1-revb")
    assert "--patch auto" not in off.stderr
    auto = run_cli("compile", too_big, "--board", "hifive1-revb", "-o", tmp_path / "b")
    assert_clear_error(auto, "does not fit hifive1-revb", "smallest arena any patch schedule reaches")
    assert "--patch auto" not in auto.stderr


def test_vww_input_bytes_released_tile_by_tile(tmp_path):
    """MobileNetV1-0.25 at 96x96x3 (VWW-shaped), 4x4 tiles of conv2d_2's 24x24x32 output (6x6 each): the output
    starts release_lead bytes before the 96x96x3 input in one buffer, and a tile's store may cover input bytes
    no later tile loads, even in the row of tiles still running (issue 12, must-show 3)."""
    model = build_net(tmp_path / "vww.tflite", MOBILENETV1_025, (1, 96, 96, 3), seed=1)
    graph = load_model(model)
    stage = patch.stage_ops(graph)
    plan = patch.make_plan(graph, stage, [op.name for op in stage].index("conv2d_2"), 4)
    # by hand: tile (0, 2) stores output rows 0-5, columns 12-17, ending at byte (5 * 24 + 18) * 32 = 4,416; the
    # next tile (0, 3) loads from input row 0, column 70 (output columns 18.. -> 36.. at the stride-2 depthwise,
    # 35.. at the 3x3 depthwise, 70.. at the stride-2 first conv), byte 70 * 3 = 210; no later pair needs more.
    # 4,416 - 210 = 4,206, aligned to 8 bytes: 4,208 (a whole row of tiles before the input would be 4,608)
    assert plan.release_lead == 4_208
    assert plan.stage_bytes == 4_208 + 27_648 + plan.scratch_bytes <= 36_864
    assert plan_arena(patch.apply_plan(graph, plan)).size == plan.stage_bytes
    for x in sample_images(graph, 2, seed=7):
        want = reference.run(graph, {graph.inputs[0]: x}, keep=True)
        got = patch.run_stage(graph, plan, want[plan.source], lead=plan.release_lead)
        assert np.array_equal(got, want[plan.tensors[-1]])
        # 8 bytes less and tile (0, 2)'s store lands on input row 0, columns 70-71, before tile (0, 3) loads them
        clobbered = patch.run_stage(graph, plan, want[plan.source], lead=plan.release_lead - 8)
        assert not np.array_equal(clobbered, want[plan.tensors[-1]])


@qemu
def test_vww_mobilenetv1_in_40_kib_releases_input_rows(tmp_path):
    """MobileNetV1-0.25 at 96x96x3 (VWW-shaped) with --sram-budget 40: the 96x96x3 input (27,648 B) and a whole
    24x24 split output fit beside the tiles only when the output is written over input rows no tile reads any
    more (issue 12, must-show 3)."""
    require_board_tools("stm32f746")
    model = build_net(tmp_path / "vww.tflite", MOBILENETV1_025, (1, 96, 96, 3), seed=1)
    graph = load_model(model)
    images = sample_images(graph, N_TEST, seed=7)
    assert_not_degenerate(graph, images)
    report = compile_model(model, "stm32f746", tmp_path / "proj", Options(sram_budget_kib=40))
    m, p = report["memory"], report["schedule"]["patch"]
    # by hand: conv2d_1 reads 48x48x8 and writes 48x48x16: 18,432 + 36,864 = 55,296 B layer-wise
    assert m["layerwise_peak_bytes"] == 55_296
    assert p["extra_macs_pct"] <= 10.0 and m["sram_used_bytes"] <= 40 * 1024
    # 4x4 tiles of conv2d_2's 24x24x32 output (18,432 B), stored over input bytes no later tile loads: it starts
    # 4,208 B before the input (test_vww_input_bytes_released_tile_by_tile); then the tile buffers
    assert (p["grid"], p["split_layer"]) == ([4, 4], "conv2d_2") and p["release_lead_bytes"] == 4_208
    assert m["arena_bytes"] == 4_208 + 27_648 + p["scratch_bytes"] <= 36_864
    oracle = RefInterpreter(model)
    assert np.array_equal(oracle(images[0])[0], reference.run(graph, {graph.inputs[0]: images[0]})[graph.outputs[0]])
    for x in images[:2]:
        ys, _ = run_build(tmp_path / "proj", [x])
        assert np.array_equal(ys[0], reference.run(graph, {graph.inputs[0]: x})[graph.outputs[0]])


@qemu
def test_two_stages_with_released_input_rows_bit_exact_on_hifive1(nets, tmp_path):
    """hifive1-revb (16 KiB): layer by layer the inverted-residual net needs 15,360 B of arena plus its stack;
    two patched stages, each writing its output over its input's released rows, run bit-exact on RV32."""
    require_board_tools("hifive1-revb")
    report = compile_model(nets["inverted_residual"], "hifive1-revb", tmp_path / "p", Options())
    m, p = report["memory"], report["schedule"]["patch"]
    assert m["unpatched_arena_bytes"] == 15_360 and len(p["stages"]) == 2
    assert all(s["release_lead_bytes"] is not None for s in p["stages"])
    assert m["arena_bytes"] < 15_360 and m["sram_used_bytes"] <= 16_384
    graph = load_model(nets["inverted_residual"])
    for x in sample_images(graph, 3, seed=9):
        ys, _ = run_build(tmp_path / "p", [x])
        assert np.array_equal(ys[0], reference.run(graph, {graph.inputs[0]: x})[graph.outputs[0]])
