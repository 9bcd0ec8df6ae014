"""The stack reserve, sized from the call graph GCC writes at compile time (`-fcallgraph-info=su`).

Each object's `.ci` file (VCG format) holds a node per function defined in it, labelled with its frame size
("24 bytes (static)", the same number `-fstack-usage` writes to the `.su` file: locals, spills and the saved
registers, the return address included), ellipse nodes for the functions it calls but does not define, and an
edge per call. The worst-case stack depth from an entry point is the largest sum of frame sizes along a call
path; the reserve is the worst over the image's entry points, plus what the hardware pushes on an exception:

- Cortex-M: the start-up code (Reset_Handler, assembly, no frame of its own) calls `mcu_counter_init`, `main`
  and `mcu_exit` one after another on the empty stack. A fault taken at the deepest point stacks the basic
  exception frame (8 words = 32 bytes; the FPU is never enabled, so no floating-point context) plus up to 4
  bytes of padding to keep it 8-byte aligned (CCR.STKALIGN) *below* that point, before `mcu_fault_entry`
  moves SP back to the top of the reserve and calls `mcu_fault_report`. So
  reserve = max(max(depth(main), ...) + 36, depth(mcu_fault_report)).
- RISC-V: a trap pushes nothing; `mcu_trap_entry` moves SP to the top and calls `mcu_trap_report`. So
  reserve = max(depth(main), ..., depth(mcu_trap_report)).

Rounded up to 8 bytes (the AAPCS / RISC-V ABI keep SP 8-/16-byte aligned; the linker script aligns the top)
and to at least 256 bytes (the linker script's floor). Recursion, calls through a pointer, a frame of unbounded
dynamic size, or a call to a function no `.ci` file defines and `KNOWN_LEAVES` does not bound are errors:
the reserve could not be proven.

    stack_reserve(Path("obj"), "cortex-m")  # bytes, for templates/linker/*.ld.j2's stack_size
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import UserError

# Functions called from C that no .ci file describes, with the stack they use (verified by disassembly):
# the firmware's assembly leaves (firmware/<arch>/startup.S) and libgcc helpers that are leaves.
KNOWN_LEAVES = {
    "mcu_semihost_call": 0,  # bkpt 0xab / slli-ebreak-srai; returns
    "mcu_spin": 0,           # a subs/bne loop
    "__clzsi2": 0,           # libgcc (rv32): table lookup, no frame
    "__ashldi3": 0,          # libgcc (rv32): 64-bit shifts, a few register moves, no frame
    "__ashrdi3": 0,
    "__lshrdi3": 0,
}

# What the start-up code calls on the empty stack, and what the fault path calls on a fresh one.
ENTRY_POINTS = {
    "cortex-m": {"normal": ("mcu_counter_init", "main", "mcu_exit"), "fault": ("mcu_fault_report",)},
    "riscv": {"normal": ("mcu_counter_init", "main", "mcu_exit"), "fault": ("mcu_trap_report",)},
}
# Bytes the hardware pushes on exception entry below the interrupted stack pointer (frame + alignment pad).
EXCEPTION_FRAME = {"cortex-m": 32 + 4, "riscv": 0}
MIN_RESERVE = 256
INDIRECT = "__indirect_call"


class StackAnalysisError(UserError):
    pass


@dataclass
class CallGraph:
    frames: dict[str, int] = field(default_factory=dict)      # function title -> frame bytes
    qualifier: dict[str, str] = field(default_factory=dict)   # "static", "dynamic", "dynamic,bounded"
    names: dict[str, str] = field(default_factory=dict)       # title -> function name
    calls: dict[str, list[str]] = field(default_factory=dict)  # title -> callee titles
    where: dict[str, str] = field(default_factory=dict)       # title -> the .ci file that defines it


_NODE = re.compile(r'node:\s*\{\s*title:\s*"([^"]+)"\s*label:\s*"([^"]*)"')
_EDGE = re.compile(r'edge:\s*\{\s*sourcename:\s*"([^"]+)"\s*targetname:\s*"([^"]+)"')
_FRAME = re.compile(r"(\d+) bytes \(([^)]*)\)")


def read_call_graph(files: list[Path]) -> CallGraph:
    """Merge the .ci files of one image (every object linked into it) into one call graph."""
    graph = CallGraph()
    for path in files:
        text = Path(path).read_text()
        for title, label in _NODE.findall(text):
            frame = _FRAME.search(label)
            if frame is None:
                graph.names.setdefault(title, label.split("\\n")[0])
                continue  # declared here, defined elsewhere (or nowhere: assembly, libgcc)
            if title in graph.frames:
                raise StackAnalysisError(f"stack analysis: {title} is defined twice ({graph.where[title]} and "
                                         f"{path}); pass the .ci files of one image only.")
            graph.frames[title] = int(frame.group(1))
            graph.qualifier[title] = frame.group(2)
            graph.names[title] = label.split("\\n")[0]
            graph.where[title] = str(path)
        for source, target in _EDGE.findall(text):
            graph.calls.setdefault(source, []).append(target)
    return graph


def worst_case_depth(graph: CallGraph, entry: str, known: dict[str, int] | None = None) -> tuple[int, list[str]]:
    """The largest stack depth reachable from `entry` (sum of frames along a call path) and that path."""
    known = KNOWN_LEAVES if known is None else known
    memo: dict[str, tuple[int, list[str]]] = {}
    active: list[str] = []

    def visit(title: str, caller: str | None) -> tuple[int, list[str]]:
        if title in memo:
            return memo[title]
        if title in active:
            cycle = active[active.index(title):] + [title]
            raise StackAnalysisError("stack analysis: recursion " + " -> ".join(graph.names.get(t, t) for t in cycle)
                                     + ": the stack depth has no static bound. Remove the recursion (or size the "
                                     "stack by hand with Options(stack_size=...)).")
        if title == INDIRECT:
            raise StackAnalysisError(f"stack analysis: {graph.names.get(caller, caller)} calls through a function "
                                     "pointer; the call graph cannot bound the stack from there.")
        if title not in graph.frames:
            if title in known:
                memo[title] = (known[title], [title])
                return memo[title]
            raise StackAnalysisError(f"stack analysis: {graph.names.get(caller, caller)} calls {title}, which no "
                                     ".ci file defines (assembly or a library routine) and whose stack use is not "
                                     "known; add it to mcutool.codegen.stack.KNOWN_LEAVES with its bound.")
        qualifier = graph.qualifier[title]
        if "dynamic" in qualifier and "bounded" not in qualifier:
            raise StackAnalysisError(f"stack analysis: {graph.names[title]} ({graph.where[title]}) has a frame of "
                                     "unbounded dynamic size (a variable-length array or alloca); bound it.")
        active.append(title)
        deepest, path = 0, []
        for callee in graph.calls.get(title, []):
            depth, sub = visit(callee, title)
            if depth > deepest:
                deepest, path = depth, sub
        active.pop()
        memo[title] = (graph.frames[title] + deepest, [title] + path)
        return memo[title]

    if entry not in graph.frames:
        raise StackAnalysisError(f"stack analysis: the entry point {entry} is in no .ci file.")
    depth, path = visit(entry, None)
    return depth, [graph.names.get(t, t) for t in path]


def image_reserve(files: list[Path], arch: str, known: dict[str, int] | None = None) -> dict:
    """The stack reserve of one image from its .ci files: {"bytes", "depth", "path", "fault_depth"}."""
    graph = read_call_graph(files)
    entries = ENTRY_POINTS[arch]
    normal = max((worst_case_depth(graph, e, known) for e in entries["normal"]), key=lambda d: d[0])
    fault = max((worst_case_depth(graph, e, known) for e in entries["fault"]), key=lambda d: d[0])
    need = max(normal[0] + EXCEPTION_FRAME[arch], fault[0])
    reserve = max(MIN_RESERVE, (need + 7) // 8 * 8)
    return {"bytes": reserve, "need": need, "depth": normal[0], "path": normal[1], "fault_depth": fault[0],
            "exception_frame": EXCEPTION_FRAME[arch]}


def project_analysis(obj_dir: Path, arch: str, images: tuple[str, ...] = ("emulator", "board")) -> dict:
    """The analysis of a firmware project's obj/ folder (obj/app/ plus each image's obj/<image>/): the image
    needing the most. Both images get that reserve, so their memory layouts stay the same."""
    obj_dir = Path(obj_dir)
    app = sorted((obj_dir / "app").rglob("*.ci"))
    if not app:
        raise StackAnalysisError(f"stack analysis: {obj_dir / 'app'} holds no .ci files (compile with "
                                 "-fcallgraph-info=su).")
    found = [dict(image_reserve(app + sorted((obj_dir / image).rglob("*.ci")), arch), image=image)
             for image in images]
    return max(found, key=lambda f: f["bytes"])


def stack_reserve(obj_dir: Path, arch: str, images: tuple[str, ...] = ("emulator", "board")) -> int:
    """Bytes of stack reserve for the project whose objects are in `obj_dir`."""
    return project_analysis(obj_dir, arch, images)["bytes"]
