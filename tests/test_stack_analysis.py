"""The stack reserve is sized from GCC's call graph (-fcallgraph-info=su): mcutool.codegen.stack.

A tiny C program's worst-case depth is derived by hand from its .su numbers; recursion, unbounded dynamic frames,
indirect and unknown calls are errors; and on real builds the measured high-water mark stays within the reserve.
"""
import subprocess
from pathlib import Path

import numpy as np
import pytest

from conftest import require_tool, shared_model
from mcutool import reference
from mcutool.codegen.stack import (EXCEPTION_FRAME, StackAnalysisError, image_reserve, read_call_graph,
                                   worst_case_depth)
from mcutool.compiler import Options, compile_model, run_build
from mcutool.frontends import load_model

TINY = r"""
#include <stdint.h>
void mcu_semihost_call(int op, int arg);            /* assembly: a KNOWN_LEAVES entry */
__attribute__((noinline)) static int leaf(volatile int *p) { volatile int t[2]; t[0] = p[0]; t[1] = p[3]; return t[0] + t[1]; }
__attribute__((noinline)) int deep(int n) { volatile int buf[24]; buf[3] = n; buf[0] = n; return leaf(buf) + 1; }
__attribute__((noinline)) int shallow(int n) { volatile int buf[4]; buf[3] = n; buf[0] = n; return leaf(buf); }
__attribute__((noinline)) int middle(int n) { volatile int b[2]; b[0] = n; b[1] = n; return shallow(b[0]) + b[1]; }
int main(void) { int r = middle(1) + deep(2); mcu_semihost_call(4, r); return r; }
void mcu_counter_init(void) { }
void mcu_exit(int32_t status) { mcu_semihost_call(0x20, status); for (;;) { } }
void mcu_fault_report(uint32_t sp) { volatile uint32_t keep[6]; keep[0] = sp; mcu_exit((int32_t)keep[0]); }
"""


def compile_tiny(tmp_path: Path) -> tuple[Path, dict[str, int]]:
    gcc = require_tool("arm-none-eabi-gcc")
    src = tmp_path / "tiny.c"
    src.write_text(TINY)
    subprocess.run([gcc, "-mcpu=cortex-m7", "-mthumb", "-Os", "-ffreestanding", "-fstack-usage",
                    "-fcallgraph-info=su", "-c", str(src), "-o", str(tmp_path / "tiny.o")], cwd=tmp_path, check=True)
    su = {}
    for line in (tmp_path / "tiny.su").read_text().splitlines():
        where, size, kind = line.split("\t")
        assert kind == "static"
        su[where.rsplit(":", 1)[-1]] = int(size)
    return tmp_path / "tiny.ci", su


def test_tiny_program_depth_from_su_numbers(tmp_path):
    ci, su = compile_tiny(tmp_path)
    # main calls middle -> shallow -> leaf, deep -> leaf, and mcu_semihost_call (0 bytes): by hand,
    want = su["main"] + max(su["middle"] + su["shallow"] + su["leaf"], su["deep"] + su["leaf"])
    depth, path = worst_case_depth(read_call_graph([ci]), "main")
    assert depth == want
    assert path[0] == "main" and path[-1] == "leaf"
    # deep's 96-byte buffer dominates: the worst path goes through it
    assert su["leaf"] > 0 and su["deep"] >= 96 and path == ["main", "deep", "leaf"]
    # the reserve: main's path + the 32-byte exception frame + 4 alignment bytes, vs the fault path (fresh stack)
    fault = su["mcu_fault_report"] + su["mcu_exit"]
    need = max(want + 36, fault)
    result = image_reserve([ci], "cortex-m")
    assert EXCEPTION_FRAME["cortex-m"] == 36
    assert result["need"] == need and result["fault_depth"] == fault
    assert result["bytes"] == max(256, (need + 7) // 8 * 8)


def _ci(body: str, tmp_path: Path) -> Path:
    path = tmp_path / "x.ci"
    path.write_text('graph: { title: "x.c"\n' + body + "\n}\n")
    return path


def node(name, size, kind="static"):
    return f'node: {{ title: "{name}" label: "{name}\\nx.c:1:1\\n{size} bytes ({kind})" }}'


def edge(a, b):
    return f'edge: {{ sourcename: "{a}" targetname: "{b}" label: "x.c:2:3" }}'


def test_hand_written_graph_takes_the_max_over_paths(tmp_path):
    ci = _ci("\n".join([node("main", 16), node("a", 40), node("b", 8), node("c", 100, "dynamic,bounded"),
                        edge("main", "a"), edge("a", "b"), edge("main", "c"), edge("main", "b")]), tmp_path)
    assert worst_case_depth(read_call_graph([ci]), "main") == (116, ["main", "c"])


def test_recursion_is_an_error_naming_the_cycle(tmp_path):
    ci = _ci("\n".join([node("main", 16), node("f", 8), node("g", 8),
                        edge("main", "f"), edge("f", "g"), edge("g", "f")]), tmp_path)
    with pytest.raises(StackAnalysisError, match=r"recursion f -> g -> f"):
        worst_case_depth(read_call_graph([ci]), "main")


def test_unbounded_dynamic_frame_is_an_error(tmp_path):
    ci = _ci("\n".join([node("main", 16), node("vla", 32, "dynamic"), edge("main", "vla")]), tmp_path)
    with pytest.raises(StackAnalysisError, match="unbounded dynamic size"):
        worst_case_depth(read_call_graph([ci]), "main")


def test_indirect_and_unknown_calls_are_errors(tmp_path):
    ci = _ci("\n".join([node("main", 16), edge("main", "__indirect_call")]), tmp_path)
    with pytest.raises(StackAnalysisError, match="function pointer"):
        worst_case_depth(read_call_graph([ci]), "main")
    ci = _ci("\n".join([node("main", 16), 'node: { title: "ext" label: "ext\\n<built-in>" shape : ellipse }',
                        edge("main", "ext")]), tmp_path)
    with pytest.raises(StackAnalysisError, match="calls ext, which no .ci file defines"):
        worst_case_depth(read_call_graph([ci]), "main")


@pytest.mark.qemu
@pytest.mark.parametrize("model,board", [("kws_ref_model.tflite", "stm32f746"),
                                         ("hello_world_int8.tflite", "hifive1-revb")])
def test_measured_high_water_within_the_analysed_reserve(model, board, tmp_path):
    from mcutool.boards import load_board
    b = load_board(board)
    require_tool(b.toolchain.tool("gcc"))
    require_tool(b.emulator.program)
    path = shared_model(model)
    out = tmp_path / "proj"
    report = compile_model(path, board, out, Options())
    analysis = report["build"]["stack_analysis"]
    reserve = report["memory"]["stack_bytes"]
    assert reserve == analysis["bytes"] and reserve % 8 == 0
    for image in ("emulator.ld", "board.ld"):  # the reserve, plus what only the profiling link adds
        assert f"__stack_size = {reserve} + (DEFINED(__mcu_profile_stack)" in (out / image).read_text()
    graph = load_model(path)
    rng = np.random.default_rng(7)
    xs = {n: rng.integers(-128, 128, size=graph.tensor(n).shape).astype(graph.tensor(n).dtype) for n in graph.inputs}
    ys, info = run_build(out, [xs[n] for n in graph.inputs])
    want = reference.run(graph, xs)
    assert all(np.array_equal(y, want[n]) for n, y in zip(graph.outputs, ys))
    measured = info["stack_high_water_bytes"]
    assert 0 < measured <= analysis["need"] <= reserve
    # the analysis is not wildly pessimistic either: the measured run reaches the analysed path's depth or near it
    assert measured >= analysis["depth"] // 2
