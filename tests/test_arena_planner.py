"""The tensor-arena planner (issue 5, must-show 1): never above the layer-wise bound + 5 % on the shared models,
never above TFLite Micro's greedy planner or TFLite Micro's arena need on branched graphs, and the plan is safe:
branched graphs with in-place adds and a reordered diamond run bit-exact in QEMU and under AddressSanitizer.

Expected values: the layer-wise bounds are DESIGN.md §4's hand-derived numbers; the greedy planner and TFLite
Micro's arena need come from tests/arena_yardsticks.py (written here, not mcutool's code); outputs are compared
with tflite-runtime 2.14 BUILTIN_REF; the exact search is checked against a brute force over all offsets.
"""
import itertools
import json
import subprocess
import sys
import xml.dom.minidom
from pathlib import Path

import numpy as np
import pytest

from conftest import require_tool, shared_model
from host_build import build_host_program
from mcutool import reference
from mcutool.compiler import Options, compile_model, run_build
from mcutool.frontends import load_model
from mcutool.ir import ElementwiseAttrs, Graph, NoAttrs, Op, Pool2DAttrs, Quant, Tensor
from mcutool.schedule.arena import plan_arena
from mcutool.schedule.liveness import Lifetime
from mcutool.schedule.order import min_peak_order, reordered, schedule_ops
from mcutool.schedule.placement import exact_packing, heuristic_packings, pack_best

sys.path.insert(0, str(Path(__file__).parent))
import branched_models as nets  # noqa: E402
from arena_yardsticks import greedy_by_size_arena, tflm_arena_need  # noqa: E402
from tflite_builder import RefInterpreter  # noqa: E402

# DESIGN.md §4: max over ops of the bytes live at that op, every tensor whole (hand-derived)
LAYERWISE_BOUND = {"kws_ref_model.tflite": 16_000, "ad01_int8.tflite": 768,
                   "micro_speech_quantized.tflite": 5_960, "hello_world_int8.tflite": 32}


# -------------------------------------------------------------------------------------- shared models

@pytest.mark.parametrize("model", sorted(LAYERWISE_BOUND))
def test_shared_model_arena_within_layerwise_bound(model, tmp_path):
    report = compile_model(shared_model(model), "stm32f746", tmp_path / "p", Options(build=False))
    bound = LAYERWISE_BOUND[model]
    assert report["memory"]["layerwise_peak_bytes"] == bound
    assert report["memory"]["arena_bytes"] <= bound * 1.05
    assert report["schedule"]["patch"] is None


# -------------------------------------------------------------------------------------- placement

def _brute_force(bufs: list[Lifetime], top: int | None = None, unit: int = 8) -> int:
    """The smallest arena over every assignment of offsets (multiples of `unit`) below `top` -- exhaustive."""
    sizes = [b.nbytes // unit for b in bufs]
    top = sum(sizes) if top is None else top // unit
    clash = [(i, j) for i, j in itertools.combinations(range(len(bufs)), 2)
             if bufs[i].first <= bufs[j].last and bufs[j].first <= bufs[i].last]
    best = top
    for offs in itertools.product(*[range(top - s + 1) for s in sizes]):
        end = max(o + s for o, s in zip(offs, sizes))
        if end < best and all(offs[i] + sizes[i] <= offs[j] or offs[j] + sizes[j] <= offs[i] for i, j in clash):
            best = end
    return best * unit


# (name, first op, last op, bytes). TFLite Micro's order (largest first, lowest offset) is not optimal on any
# of them; on the last, none of the four orders with first or best fit is: only the exact search finds it.
HARD_INSTANCES = [
    [("a", 4, 4, 40), ("b", 2, 3, 32), ("c", 2, 2, 16), ("d", 3, 4, 24), ("e", 1, 3, 16)],
    [("a", 4, 5, 40), ("b", 1, 2, 40), ("c", 0, 0, 16), ("d", 3, 5, 32), ("e", 2, 3, 24)],
    [("a", 1, 2, 40), ("b", 1, 2, 8), ("c", 0, 1, 8), ("d", 3, 4, 16), ("e", 4, 6, 40), ("f", 2, 3, 16)],
]


@pytest.mark.parametrize("seed", range(6))
def test_exact_search_equals_brute_force(seed):
    rng = np.random.default_rng(seed)
    bufs = []
    for i in range(5):
        first = int(rng.integers(0, 5))
        bufs.append(Lifetime(f"t{i}", first, first + int(rng.integers(0, 3)), 8 * int(rng.integers(1, 5))))
    best = _brute_force(bufs)
    heuristics = heuristic_packings(bufs)
    assert min(p.size for p in heuristics) >= best
    exact = exact_packing(bufs, min(heuristics, key=lambda p: p.size))
    assert exact.exact and exact.size == best
    assert pack_best(bufs).size == best


@pytest.mark.parametrize("case", range(len(HARD_INSTANCES)))
def test_best_of_strategies_beats_greedy_and_reaches_the_optimum(case):
    bufs = [Lifetime(n, f, l, s) for n, f, l, s in HARD_INSTANCES[case]]
    heuristics = heuristic_packings(bufs)
    greedy = next(p for p in heuristics if p.strategy == "by_size+first_fit")
    best = _brute_force(bufs, top=greedy.size)
    plan = pack_best(bufs)
    assert plan.size == best < greedy.size
    _assert_no_overlap(bufs, plan.offsets)
    if case == len(HARD_INSTANCES) - 1:
        assert min(p.size for p in heuristics) > best and plan.strategy == "exact_search" and plan.exact


def _assert_no_overlap(bufs, offsets):
    for a, b in itertools.combinations(bufs, 2):
        if a.first <= b.last and b.first <= a.last:
            assert (offsets[a.tensor] + a.nbytes <= offsets[b.tensor]
                    or offsets[b.tensor] + b.nbytes <= offsets[a.tensor]), (a, b)


# -------------------------------------------------------------------------------------- in place

def _add_graph(a_shape, b_shape, read_a_later: bool) -> Graph:
    q = Quant(0.05, 0)
    g = Graph("adds")
    for name, shape in (("a", a_shape), ("b", b_shape), ("y", (1, 4, 4, 8)), ("z", (1, 4, 4, 8))):
        g.add_tensor(Tensor(name, shape, "int8", q))
    g.inputs = ["a", "b"]
    g.ops = [Op("add0", "add", ["a", "b"], ["y"], ElementwiseAttrs())]
    if read_a_later:
        g.ops.append(Op("add1", "add", ["y", "a"], ["z"], ElementwiseAttrs()))
    else:
        g.ops.append(Op("add1", "add", ["y", "y"], ["z"], ElementwiseAttrs()))
    g.outputs = ["z"]
    return g


def test_in_place_only_over_a_dying_input_of_the_output_shape():
    full, row = (1, 4, 4, 8), (1, 1, 1, 8)
    plan = plan_arena(_add_graph(full, row, read_a_later=False))
    assert plan.in_place == {"add0": "a", "add1": "y"}
    assert plan.offsets["a"] == plan.offsets["y"] == plan.offsets["z"]
    assert plan.size == 128 + 8  # one 4x4x8 buffer shared three times, plus the broadcast row
    # `a` is read again by add1: add0 must not overwrite it, nor the broadcast `b` (its shape is not y's)
    plan = plan_arena(_add_graph(full, row, read_a_later=True))
    assert plan.in_place.get("add0") is None
    assert plan.offsets["y"] != plan.offsets["a"]


# -------------------------------------------------------------------------------------- branched graphs

CALIB, TEST = 32, 8


@pytest.fixture(scope="module")
def branched(tmp_path_factory):
    """name -> (tflite path, input quantization) for the three nets, written once."""
    root = tmp_path_factory.mktemp("branched")
    out = {}
    for name, make in nets.NETS.items():
        net = make()
        path, q = net.write(root / f"{name}.tflite", nets.inputs(net.shapes["x"], CALIB, seed=1))
        out[name] = (path, q["x"], net.shapes["x"])
    return out


def _test_inputs(q, shape):
    scale, zp = q
    xs = nets.inputs(shape, TEST, seed=2)  # separate from the calibration inputs
    return [np.clip(np.round(x / scale) + zp, -128, 127).astype(np.int8)[None] for x in xs]


@pytest.mark.parametrize("name", list(nets.NETS))
def test_branched_arena_beats_greedy_and_tflite_micro(branched, name, tmp_path):
    path = branched[name][0]
    report = compile_model(path, "stm32f746", tmp_path / "p", Options(build=False))
    ours = report["memory"]["arena_bytes"]
    graph = load_model(path)
    greedy = greedy_by_size_arena(graph)
    tflm = tflm_arena_need(path)
    assert ours <= greedy
    assert ours <= tflm
    assert ours <= report["memory"]["layerwise_peak_bytes"]


def _relu_pool_add() -> Graph:
    """x (8x8x16, 1,024 B) -> relu -> r; x -> 3x3 max pool (SAME, stride 1) -> m; add(r, m): in that order."""
    q = Quant(0.05, 0)
    g = Graph("relu_pool_add")
    for name in ("x", "r", "m", "y"):
        g.add_tensor(Tensor(name, (1, 8, 8, 16), "int8", q))
    g.inputs, g.outputs = ["x"], ["y"]
    g.ops = [Op("relu0", "relu", ["x"], ["r"], NoAttrs()),
             Op("pool0", "max_pool2d", ["x"], ["m"], Pool2DAttrs((3, 3), (1, 1), (1, 1, 1, 1))),
             Op("add0", "add", ["r", "m"], ["y"], ElementwiseAttrs())]
    return g


def test_op_order_ranked_by_the_in_place_arena():
    """Hand-derived: whole tensors peak at 3 x 1,024 = 3,072 B in either order of the two branches (x, r and m
    live at the pool, or x, m and r at the relu), so the whole-tensor search keeps the model's order, where the
    relu cannot overwrite x (the pool reads it after) and the pool is never in place: 3,072 B. Pool first, x dies
    at the relu, which writes r over it, and the add writes y over r: 2,048 B."""
    g = _relu_pool_add()
    assert min_peak_order(g) == [0, 1, 2] and plan_arena(g).size == 3_072
    assert min_peak_order(g, in_place=True) == [1, 0, 2]
    scheduled, plan = schedule_ops(g)
    assert [op.name for op in scheduled.ops] == ["pool0", "relu0", "add0"]
    assert plan.size == 2_048 and plan.in_place["relu0"] == "x"


def test_diamond_runs_the_wide_branch_first(branched, tmp_path):
    """Hand-derived: model order keeps the narrow branch's 16x16x16 output (4,096 B) alive across the wide
    branch, whose 64-channel expand and depthwise outputs (16,384 B each) meet the stem's (2,048 B) at the
    depthwise: 36,864 B. Wide branch first, the narrow output does not exist yet: 2,048 + 2 x 16,384 = 34,816.
    That is the plan without convolutions in place. With them the depthwise writes over the expand output
    through a 2-row line buffer (2 x 16 x 64 = 2,048 B): model order peaks there at 2,048 + 4,096 + 16,384 +
    2,048 = 24,576 B, the order found above at the project conv (16,384 + 4,096 narrow + 4,096 out) = 24,576 B
    too. The search counting ops in place runs the whole wide branch first, the narrow conv last: the stem's
    output (2,048) stays live across the wide branch and peaks at the project conv with the depthwise output
    and its own: 2,048 + 16,384 + 4,096 = 22,528 B (the depthwise in place: 2,048 + 16,384 + 2,048 line
    buffer = 20,480)."""
    path = branched["diamond"][0]
    graph = load_model(path)
    order = min_peak_order(graph)
    assert order.index(2) < order.index(1)  # conv2d_2 (the wide expand) before conv2d_1 (the narrow conv)
    assert plan_arena(reordered(graph, order), line_buffers=False).size == 34_816
    report = compile_model(path, "stm32f746", tmp_path / "p", Options(build=False))
    assert report["memory"]["layerwise_peak_bytes"] == 36_864
    assert report["memory"]["arena_bytes"] == 22_528
    assert report["schedule"]["run_order"][:5] == ["conv2d_0", "conv2d_2", "depthwise_conv2d_0", "conv2d_3",
                                                   "conv2d_1"]
    assert report["schedule"]["arena"]["line_buffer_bytes"]["depthwise_conv2d_0"] == 2_048
    assert greedy_by_size_arena(graph) >= 36_864


def _check_network_is_not_degenerate(graph, xs):
    """DESIGN.md §11: >= 5 classes predicted and no constant intermediate tensor on the test inputs."""
    seen: dict[str, set] = {}
    classes = set()
    for x in xs:
        values = reference.run(graph, {graph.inputs[0]: x}, keep=True)
        classes.add(int(np.argmax(values[graph.outputs[0]])))
        for k, v in values.items():
            if not graph.tensor(k).is_const:
                seen.setdefault(k, set()).add(v.tobytes())
    assert len(classes) >= 5, f"only classes {sorted(classes)}"
    constant = [k for k, v in seen.items() if len(v) == 1]
    assert not constant, f"constant tensors: {constant}"


@pytest.mark.qemu
@pytest.mark.parametrize("name", list(nets.NETS))
def test_branched_graphs_bit_exact_in_qemu(branched, name, tmp_path):
    from mcutool.boards import load_board
    board = load_board("stm32f746")
    require_tool(board.toolchain.tool("gcc"))
    require_tool(board.emulator.program)
    path, q, shape = branched[name]
    out = tmp_path / "p"
    report = compile_model(path, "stm32f746", out, Options())
    if name in ("residual", "diamond"):
        assert report["schedule"]["arena"]["in_place_layers"], "the in-place path is not exercised"
    graph = load_model(path)
    xs = _test_inputs(q, shape)
    _check_network_is_not_degenerate(graph, xs)
    oracle = RefInterpreter(path)
    for x in xs:
        (y,), _ = run_build(out, [x])
        assert np.array_equal(y, oracle(x)[0])




def test_branched_graphs_in_place_under_address_sanitizer(branched, tmp_path):
    """The host build gets an arena of exactly MCU_MODEL_ARENA_SIZE bytes: in-place adds and the reordered
    diamond must stay inside it and give tflite-runtime's outputs."""
    for name in ("residual", "diamond"):
        path, q, shape = branched[name]
        lib = tmp_path / name
        report = compile_model(path, "stm32f746", lib, Options(emit="library"))
        assert report["schedule"]["arena"]["in_place_layers"]
        exe = build_host_program(lib, tmp_path / f"{name}.exe")
        oracle = RefInterpreter(path)
        for x in _test_inputs(q, shape)[:4]:
            (tmp_path / "x.bin").write_bytes(x.tobytes())
            done = subprocess.run([str(exe), str(tmp_path / "x.bin"), str(tmp_path / "y.bin")],
                                  capture_output=True, text=True)
            assert done.returncode == 0, done.stderr
            y = np.frombuffer((tmp_path / "y.bin").read_bytes(), np.int8)
            assert np.array_equal(y, oracle(x)[0].reshape(-1))


# -------------------------------------------------------------------------------------- memory profile plot

def _polylines(svg_path: Path):
    doc = xml.dom.minidom.parse(str(svg_path))
    return doc.getElementsByTagName("polyline"), " ".join(t.firstChild.data for t in doc.getElementsByTagName("text")
                                                        if t.firstChild)


def test_compile_writes_memory_svg_next_to_report(tmp_path):
    out = tmp_path / "p"
    compile_model(shared_model("kws_ref_model.tflite"), "stm32f746", out, Options(build=False))
    report = json.loads((out / "report.json").read_text())
    lines, text = _polylines(out / "memory.svg")
    assert len(lines) == 2
    # one step (two points) per layer
    assert all(len(p.getAttribute("points").split()) == 2 * len(report["layers"]) for p in lines)
    assert "peak 16,000 B" in text  # the layer-wise line's peak is the hand-derived bound


def test_inspect_memory_writes_the_plot_where_asked(tmp_path):
    svg = tmp_path / "ad.svg"
    done = subprocess.run([sys.executable, "-m", "mcutool", "inspect", str(shared_model("ad01_int8.tflite")),
                           "--memory", "--plot", str(svg)], capture_output=True, text=True,
                          cwd=Path(__file__).parents[1])
    assert done.returncode == 0, done.stderr
    lines, text = _polylines(svg)
    assert len(lines) == 2 and "peak 768 B" in text
    done = subprocess.run([sys.executable, "-m", "mcutool", "inspect", str(shared_model("ad01_int8.tflite")),
                           "--memory"], capture_output=True, text=True, cwd=Path(__file__).parents[1])
    assert "live bytes per layer" in done.stdout
