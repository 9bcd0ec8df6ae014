"""The compile pipeline the CLI drives: import -> plan -> generate -> build -> report.json; and running a build.

Each step is a function of the stage modules; this module only sequences them and writes report.json.
"""
from __future__ import annotations

import hashlib
import json
import re
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from . import __version__
from .boards import Board, load_board
from .errors import UserError
from .frontends import load_model
from .ir import Graph
from .schedule.arena import plan_arena
from .summary import layer_rows

# The stack reserve of a project generated without building it (--no-build): the call-graph analysis that sizes
# it (mcutool.codegen.stack) needs the compiled objects. Built projects get the analysed reserve.
STACK_RESERVE = 2048
ELF = "emulator.elf"


@dataclass
class Options:
    emit: str = "firmware"   # firmware | library
    build: bool = True
    stack_size: int | None = None  # None: sized from the call graph when building (STACK_RESERVE without)
    binarize: str = "auto"   # auto | off | LAYER,... (mcutool.binarize; DESIGN.md §8)
    profile_layers: bool = False  # main.c also counts each layer's instructions (bench: report run.layers)


def default_out_dir(model: Path, board: str) -> Path:
    return Path("build") / f"{model.stem}-{board}"


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _check_integer_graph(graph: Graph) -> None:
    floats = [n for n in graph.inputs + graph.outputs if graph.tensor(n).dtype == "float32"]
    if floats:
        raise UserError(f"{graph.name}: the model has float inputs/outputs ({', '.join(floats)}), i.e. it is a "
                        "float model. This version of mcutool compiles int8 models only: post-training quantization "
                        "(--calib DATA.npz) is not built yet. Convert the model with full-integer quantization "
                        "(e.g. the TFLite converter with a representative dataset) and compile the int8 file.")


def compile_model(model: Path, board_name: str, out: Path, opts: Options, progress=None,
                  graph: Graph | None = None) -> dict:
    """Generate (and build) the project for `model` on `board_name` in `out`; returns the report.
    `graph`: the model's IR when the caller already has it (e.g. quantized from a float model in a test);
    `model` then only names the project and its report."""
    step = progress or (lambda message: None)
    board = load_board(board_name)
    step("importing")
    graph = load_model(model) if graph is None else graph
    _check_integer_graph(graph)
    graph, binarized = _binarize(graph, opts.binarize)
    plan = plan_arena(graph)
    step("generating kernels (TVM)")
    from .codegen.model import generate_model, emit_layers  # noqa: F401
    from .codegen.project import write_firmware_project, write_library
    sources = generate_model(graph, plan, board.name, profile_layers=opts.profile_layers)
    if out.exists():
        shutil.rmtree(out)
    if opts.emit == "library":
        write_library(sources, out)
    else:
        write_firmware_project(graph, board, sources, out, opts.stack_size or STACK_RESERVE)
    report = _base_report(model, graph, board, plan.size)
    report["binarization"] = binarized.to_json()
    report["layers"] = _layers(graph, sources["model.c"])
    if opts.emit == "firmware" and opts.build:
        step("building")
        stack = build_project(board, out, opts.stack_size)
        report["memory"].update(_memory_from_elf(board, out / "board.elf", stack["bytes"]))
        report["flash"].update(_flash_from_elf(board, out / "board.elf"))
        report["flash"]["code_bytes"] = report["flash"]["used_bytes"] - report["flash"]["weights_bytes"]
        report["build"] = _build_info(board, model, out)
        report["build"]["stack_analysis"] = stack
        _check_fits(report, board)
    _write_report(out, report)
    return report


def _binarize(graph: Graph, spec: str):
    from .binarize import binarize, parse_selection
    return binarize(graph, parse_selection(spec))


def _base_report(model: Path, graph: Graph, board: Board, arena: int) -> dict:
    from .schedule.liveness import layerwise_peak_bytes
    rows = layer_rows(graph)
    return {
        "model": model.name, "board": board.name, "mcutool_version": __version__,
        "macs": sum(r["macs"] for r in rows),
        "memory": {"arena_bytes": arena, "layerwise_peak_bytes": layerwise_peak_bytes(graph),
                   "sram_limit_bytes": board.sram_bytes},
        "flash": {"weights_bytes": sum(t.nbytes for t in graph.tensors.values() if t.is_const),
                  "limit_bytes": board.flash_bytes},
        "schedule": {"patch": None},
        "quantization": None,
        "io": {"inputs": _io(graph, graph.inputs), "outputs": _io(graph, graph.outputs)},
    }


def _io(graph: Graph, names: list[str]) -> list[dict]:
    out = []
    for n in names:
        t = graph.tensor(n)
        d = {"name": n, "shape": list(t.shape), "dtype": t.dtype}
        if t.quant is not None:
            d.update(scale=float(t.quant.scale[0]), zero_point=int(t.quant.zero_point[0]))
        out.append(d)
    return out


def _layers(graph: Graph, model_c: str) -> list[dict]:
    kinds = dict(re.findall(r"^ \*   (\S+)\s+\S+\s+kernel: (\S+)$", model_c, flags=re.M))
    rows = layer_rows(graph)
    for r in rows:
        r["kernel"] = kinds.get(r["name"], "template")
        r["placement"] = "flash"
    return rows


def build_project(board: Board, out: Path, stack_size: int | None = None) -> dict:
    """Build in two phases: compile every object (make objects), size the stack reserve from the call graph
    the compiler wrote (obj/**/*.ci) and render the linker scripts with it, then link (make all).
    `stack_size` given: that reserve instead. Returns the stack analysis ({"bytes": reserve, ...})."""
    from .codegen.project import write_linker_scripts
    from .codegen.stack import project_analysis
    compiler = board.toolchain.tool("gcc")
    if shutil.which(compiler) is None:
        raise UserError(f"{compiler} is not installed; board {board.name} needs it. Install it with: "
                        f"{board.toolchain.install}")
    _make(board, out, "objects")
    analysis = project_analysis(out / "obj", board.arch)
    if stack_size is None:
        stack_size = analysis["bytes"]
        note = (f"sized from the call graph: worst case {analysis['depth']} B ({' -> '.join(analysis['path'])}) "
                f"+ {analysis['exception_frame']} B exception frame; fault path {analysis['fault_depth']} B; "
                f"rounded up to 8, at least 256")
    else:
        note = f"given: {stack_size} B (the call graph needs {analysis['need']} B)"
        analysis = dict(analysis, bytes=stack_size)
    write_linker_scripts(board, out, stack_size, note)
    _make(board, out, "all")
    return analysis


def _make(board: Board, out: Path, target: str) -> None:
    done = subprocess.run(["make", "-C", str(out), "-j2", target], capture_output=True, text=True)
    if done.returncode != 0:
        overflow = re.search(r"region [`']?(\w+)'? overflowed by (\d+) bytes", done.stderr)
        if overflow:
            region, extra = overflow.group(1), int(overflow.group(2))
            raise UserError(_too_large_message(board, region, extra))
        tail = "\n".join(done.stderr.strip().splitlines()[-15:])
        raise UserError(f"building the firmware in {out} failed (make exited {done.returncode}); the project is "
                        f"left there to inspect. Last lines of the compiler's output:\n{tail}")


def _too_large_message(board: Board, region: str, extra: int) -> str:
    limit = board.memory[region].length if region in board.memory else 0
    what = "SRAM" if region == "sram" else "flash" if region == "flash" else region
    stack = " (stack reserve included)" if what == "SRAM" else ""
    return (f"the model does not fit {board.name}: {what} needs {limit + extra:,} bytes{stack} but the "
            f"board has {limit:,} ({extra:,} bytes too many). What would help: "
            f"{'--patch auto or --sram-budget (patch-based inference lowers peak activation memory), ' if what == 'SRAM' else ''}"
            f"a smaller model, or a board with more {what} (mcutool boards lists them).")


def _sections(board: Board, elf: Path) -> dict[str, tuple[int, int]]:
    """section name -> (size, address) from `size -A`."""
    text = subprocess.run([board.toolchain.tool("size"), "-A", str(elf)], capture_output=True, text=True,
                          check=True).stdout
    found = {}
    for line in text.splitlines():
        parts = line.split()
        if len(parts) == 3 and parts[1].isdigit():
            found[parts[0]] = (int(parts[1]), int(parts[2]))
    return found


def _region_bytes(board: Board, elf: Path, region: str, loaded_only: bool = False) -> int:
    r = board.memory[region]
    total = 0
    for name, (size, addr) in _sections(board, elf).items():
        if r.origin <= addr < r.origin + r.length and name not in (".comment",):
            total += size
    return total


def _memory_from_elf(board: Board, elf: Path, stack: int) -> dict:
    used = _region_bytes(board, elf, "sram")
    return {"stack_bytes": stack, "sram_used_bytes": used}


def _flash_from_elf(board: Board, elf: Path) -> dict:
    """Bytes of flash the image occupies: the end of its last loadable segment stored in flash (by load
    address, so .data's initial values count and so do the alignment gaps the linker leaves)."""
    text = subprocess.run([board.toolchain.tool("readelf"), "-lW", str(elf)], capture_output=True, text=True,
                          check=True).stdout
    flash = board.memory["flash"]
    end = flash.origin
    for line in text.splitlines():
        parts = line.split()
        if parts[:1] == ["LOAD"] and len(parts) >= 5:
            paddr, filesz = int(parts[3], 16), int(parts[4], 16)
            if filesz and flash.origin <= paddr < flash.origin + flash.length:
                end = max(end, paddr + filesz)
    return {"used_bytes": end - flash.origin}


def _check_fits(report: dict, board: Board) -> None:
    if report["memory"]["sram_used_bytes"] > board.sram_bytes:
        raise UserError(_too_large_message(board, "sram", report["memory"]["sram_used_bytes"] - board.sram_bytes))


def _build_info(board: Board, model: Path, out: Path) -> dict:
    version = subprocess.run([board.toolchain.tool("gcc"), "--version"], capture_output=True,
                             text=True).stdout.splitlines()[0]
    objects = sorted((out / "obj" / "app").rglob("*.o"))
    return {"toolchain": version, "mcutool_version": __version__, "model_sha256": _sha256(model),
            "objects_sha256": {str(p.relative_to(out / "obj" / "app")): _sha256(p) for p in objects}}


def _write_report(out: Path, report: dict) -> None:
    (out / "report.json").write_text(json.dumps(report, indent=2) + "\n")


def read_report(out: Path) -> dict:
    path = out / "report.json"
    if not path.exists():
        raise UserError(f"{out} holds no report.json: it is not a folder written by mcutool compile.")
    return json.loads(path.read_text())


# -- running a build ---------------------------------------------------------------------------------------------
def run_build(out: Path, inputs: list[np.ndarray], timeout: float = 120.0) -> tuple[list[np.ndarray], dict]:
    """Run the emulator image once on `inputs` (int arrays as the model declares them); outputs + run info."""
    from .emulate.qemu import run_firmware
    report = read_report(out)
    board = load_board(report["board"])
    elf = out / ELF
    if not elf.exists():
        raise UserError(f"{out} has no {ELF}: it was compiled with --no-build or --emit library. Run make there "
                        "or compile again.")
    specs = report["io"]["inputs"]
    if len(inputs) != len(specs):
        raise UserError(f"the model takes {len(specs)} input(s), {len(inputs)} given.")
    for i, (x, spec) in enumerate(zip(inputs, specs)):
        if list(x.shape) != spec["shape"] or str(x.dtype) != spec["dtype"]:
            raise UserError(f"input {spec['name']!r} must be {spec['dtype']} {spec['shape']}, got {x.dtype} "
                            f"{list(x.shape)}.")
        (out / f"input{i}.bin").write_bytes(np.ascontiguousarray(x).tobytes())
    for i in range(len(report["io"]["outputs"])):
        (out / f"output{i}.bin").unlink(missing_ok=True)
    run = run_firmware(board, elf, cwd=out, timeout=timeout)
    outputs = []
    for i, spec in enumerate(report["io"]["outputs"]):
        raw = (out / f"output{i}.bin").read_bytes()
        outputs.append(np.frombuffer(raw, dtype=spec["dtype"]).reshape(spec["shape"]).copy())
    info = {"emulator": " ".join(run.command[:3]), "instructions": 0, "stack_high_water_bytes": 0}
    for rec in run.records:
        if rec.kind == "count" and rec.fields.get("name") == "inference":
            info["instructions"] = int(rec.fields.get("instructions", rec.fields.get("cycles", 0)))
        if rec.kind == "stack":
            info["stack_high_water_bytes"] = int(rec.fields["high_water"])
        if rec.kind == "layer":  # a profiling build (Options.profile_layers): one record per layer
            row = report["layers"][int(rec.fields["index"])]
            info.setdefault("layers", []).append(
                {"name": row["name"], "op": row["op"],
                 "instructions": int(rec.fields.get("instructions", rec.fields.get("cycles", 0)))})
    macs = report["macs"]
    info["macs_per_instruction"] = round(macs / info["instructions"], 4) if info["instructions"] else 0.0
    report["run"] = info
    report["memory"]["stack_high_water_bytes"] = info["stack_high_water_bytes"]
    _write_report(out, report)
    return outputs, info
