"""The compile pipeline the CLI drives: import -> plan -> generate -> build -> report.json; and running a build.

Each step is a function of the stage modules; this module only sequences them and writes report.json.
"""
from __future__ import annotations

import hashlib
import json
import math
import re
import shutil
import subprocess
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from . import __version__
from .boards import Board, load_board
from .errors import UserError
from .frontends import load_model
from .ir import Graph
from .schedule.arena import arena_in_use_per_op
from .islands import fuse_float_islands
from .schedule.fuse import fuse_swish
from .schedule.liveness import layerwise_peak_bytes
from .schedule.order import schedule_ops
from .schedule.padding import explicit_row_padding, fold_pads
from .schedule.patch import choose_plan, parse_mode
from .schedule.weight_placement import EXT_FLASH, WeightPlacement, internal_weight_budget, place_weights
from .summary import layer_rows

# The stack reserve of a project generated without building it (--no-build): the call-graph analysis that sizes
# it (mcutool.codegen.stack) needs the compiled objects. Built projects get the analysed reserve.
STACK_RESERVE = 2048
ELF = "emulator.elf"
MAX_PLACEMENT_ROUNDS = 3  # links tried while moving weights to ext_flash until internal flash fits
PLACEMENT_SLACK_BYTES = 4096  # moved beyond the linker's overflow figure: alignment, code that shifts
# SRAM besides the arena (stack reserve, .data/.bss of the firmware layer), estimated before building to decide
# whether the layer-by-layer arena fits; the built ELF is checked exactly afterwards.
OTHER_SRAM_ESTIMATE = 2 * 1024
# The least SRAM the firmware needs besides the arena: the smallest stack reserve the linker script sets. An arena
# that leaves less than this under the limit cannot fit, whatever the build; that is decided before generating.
MIN_OTHER_SRAM = 256


class RegionOverflow(UserError):
    """The link failed because a memory region overflowed by `extra` bytes."""

    def __init__(self, message: str, region: str, extra: int):
        super().__init__(message)
        self.region, self.extra = region, extra


@dataclass
class Options:
    emit: str = "firmware"   # firmware | library
    build: bool = True
    stack_size: int | None = None  # None: sized from the call graph when building (STACK_RESERVE without)
    calib: str | None = None  # float models (and QDQ float islands): samples, DATA.npz or "random" (DESIGN.md §3)
    ext_flash: bool = True  # weights that do not fit internal flash may go to the board's ext_flash region
    io: str = "semihosting"  # the harness's I/O: semihosting (host files) | uart (frames on the serial port)
    patch: str = "auto"      # auto | off | N (an N x N grid); DESIGN.md section 3
    sram_budget_kib: float | None = None  # all SRAM the firmware may use; None: the board's SRAM
    max_overhead: float = 20.0  # largest extra-MAC percentage patching may add
    binarize: str = "auto"   # auto | off | LAYER,... (mcutool.binarize; DESIGN.md §8)
    force: bool = False      # replace a non-empty output folder mcutool did not write (mcutool.outdir)
    input_shapes: dict[str, tuple[int, ...]] | None = None  # fixed sizes for dynamic input dims (--input-shape)
    weights: str = "int8"    # float models: int8 | int4 | auto weight widths (mcutool.quantize.mixed)
    flash_budget: int | None = None  # --weights auto: bytes the weights may take; None: internal flash less code
    activations: str = "int8"  # float models: int8 | auto (int16 on int8-weight layers, within the SRAM budget)


def default_out_dir(model: Path, board: str, command: str = "compile") -> Path:
    """build/<model>-<board>/ for compile, build/<model>-<board>-validate/ (-bench/) for the others, so one
    command's project never silently replaces another's."""
    suffix = "" if command == "compile" else f"-{command}"
    return Path("build") / f"{model.stem}-{board}{suffix}"


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _is_float_model(graph: Graph) -> bool:
    return any(graph.tensor(n).dtype == "float32" for n in graph.inputs + graph.outputs)


def firmware_graph(model: Path, opts: Options) -> tuple[Graph, dict | None]:
    """The int8 graph the firmware runs (a float model quantized with opts.calib, its border QUANTIZE/DEQUANTIZE
    left to the host) and report.json's `quantization` section (None for an int8 model)."""
    graph, quantization, _ = _firmware_graph(model, opts)
    return graph, quantization


def _firmware_graph(model: Path, opts: Options, flash_bytes: int | None = None,
                    sram_bytes: int | None = None) -> tuple[Graph, dict | None, list[str]]:
    """firmware_graph, and the model's float inputs/outputs (the host converts them with their int8 scales).
    `flash_bytes`: the board's internal flash, whose part left after code is --weights auto's default budget;
    `sram_bytes`: the board's SRAM, --activations auto's default bound on the activations' layerwise peak."""
    from .quantize.calibdata import load_calibration
    from .quantize.ptq import has_integer_core, integer_io
    from .quantize.qdq_islands import island_ops, open_islands, quantize_islands
    graph = load_model(model, input_shapes=opts.input_shapes)
    _check_constant_weights(graph)
    if opts.weights != "int8" and (not _is_float_model(graph) or has_integer_core(graph)):
        warnings.warn(f"{Path(model).name} is already an integer model: --weights {opts.weights} is not used (its "
                      "weights compile as the model stores them, int4 ones included).", stacklevel=2)
    if not _is_float_model(graph):
        if opts.calib:
            warnings.warn(f"{Path(model).name} is already an integer model: --calib {opts.calib} is not used "
                          "(calibration quantizes float models).", stacklevel=2)
        return graph, None, []
    floats = [n for n in graph.inputs + graph.outputs if graph.tensor(n).dtype == "float32"]
    if opts.calib and island_ops(graph) and not open_islands(graph):  # QDQ float islands, quantized from --calib
        return _with_sources(integer_io(quantize_islands(graph, load_calibration(opts.calib, graph))), graph), \
            None, floats
    if has_integer_core(graph):  # already int8: QUANTIZE/DEQUANTIZE at the border only
        if opts.calib:
            warnings.warn(f"{graph.name}: --calib ignored: the model is already int8 (its float inputs/outputs "
                          "only pass through QUANTIZE/DEQUANTIZE, which the host does with the model's scales).",
                          stacklevel=2)
        return _with_sources(integer_io(graph), graph), None, floats
    _refuse_float_islands(graph)
    if not opts.calib:
        raise UserError(f"{graph.name}: the model has float inputs/outputs ({', '.join(floats)}), i.e. it is a "
                        "float model; mcutool quantizes it to int8 with calibration data: pass --calib DATA.npz "
                        "(per input name, float32 samples stacked on the batch axis, in the model's own layout and "
                        "range), or --calib random (random calibration gives poor scales).")
    from .quantize.mixed import quantize_mixed
    budget = opts.flash_budget
    if opts.weights == "auto" and budget is None and flash_bytes is not None:
        budget = internal_weight_budget(graph, flash_bytes)
    sram = opts.sram_budget_kib * 1024 if opts.sram_budget_kib is not None else sram_bytes
    qgraph, quantization = quantize_mixed(graph, load_calibration(opts.calib, graph), "auto", opts.weights, budget,
                                          opts.activations, None if sram is None else int(sram))
    quantization["data"] = calibration_data_name(opts.calib)
    return _with_sources(integer_io(qgraph), graph), quantization, floats


def _with_sources(out: Graph, imported: Graph) -> Graph:
    """`out`, rebuilt from the imported graph with its op names kept, with the imported graph's source names."""
    out.sources = dict(imported.sources)
    return out


def _refuse_float_islands(graph: Graph) -> None:
    """A quantized (QDQ) model whose import left ops computing in float between its int8 tensors (no
    QuantizeLinear after them says their output scale): the firmware is integer-only, so name those ops and say
    what quantizes them: --calib, unless an island reads a float graph input or writes a float graph output
    (nothing in the model gives that tensor an int8 scale; those are named alone)."""
    from .quantize.qdq_islands import island_ops, open_islands
    at_border = open_islands(graph)
    floats = at_border or island_ops(graph)
    if not floats:
        return
    named = ", ".join(f"'{graph.sources.get(op.name, op.name)}' ({op.kind})" for op in floats[:3]) \
        + (f" and {len(floats) - 3} more" if len(floats) > 3 else "")
    head = (f"{graph.name}: the model is quantized (QDQ), but {len(floats)} op(s) compute in float between its "
            f"int8 tensors: {named}. An op between DequantizeLinear and QuantizeLinear becomes an integer op (the "
            "QuantizeLinear gives its output's scale), and mcutool's firmware has no floating point. ")
    if at_border:
        raise UserError(head + "These read the model's float input or write its float output with no "
                        "QuantizeLinear between, so the model gives that tensor no int8 scale and mcutool does not "
                        "quantize them from --calib: quantize them in the model "
                        "(onnxruntime's quantize_static, their op types in op_types_to_quantize) or give mcutool "
                        "the float model with --calib.")
    raise UserError(head + "The model gives some of their values no scale (no QuantizeLinear after them): pass "
                    "--calib DATA.npz (float32 samples per input name, in the model's own layout and range), and "
                    "mcutool quantizes them from the ranges their values take on it, keeping the model's own "
                    "scales everywhere else (or quantize them in the model: onnxruntime's quantize_static, their "
                    "op types in op_types_to_quantize).")


WEIGHTED_KINDS = ("conv2d", "depthwise_conv2d", "fully_connected", "transpose_conv2d")


def _check_constant_weights(graph: Graph) -> None:
    """Firmware keeps weights in flash: a weight or bias computed from a graph input (known only at run time, as
    the reference can run it) cannot be compiled. Say so before anything else fails on it."""
    producers = graph.producers()
    for op in graph.ops:
        if op.kind not in WEIGHTED_KINDS:
            continue
        for name in op.inputs[1:]:
            if name and name in graph.tensors and not graph.tensor(name).is_const:
                sources = _graph_inputs_behind(graph, producers, name)
                raise UserError(f"{graph.name}: layer {op.name!r} ({op.kind}) takes its weights from the graph "
                                f"input(s) {', '.join(map(repr, sources))}, so they are known only at run time; "
                                "mcutool compiles weights into flash and needs them stored in the model file (ONNX "
                                "initializers). Re-export the model with its parameters "
                                "(torch.onnx.export(..., export_params=True)).")


def _graph_inputs_behind(graph: Graph, producers: dict, name: str) -> list[str]:
    """The graph inputs tensor `name` is computed from."""
    found, todo, seen = [], [name], set()
    while todo:
        n = todo.pop()
        if n in seen:
            continue
        seen.add(n)
        if n in graph.inputs:
            found.append(n)
        elif n in producers:
            todo += [i for i in producers[n].inputs if i]
    return sorted(found)


def calibration_data_name(calib: str) -> str:
    """What report.json's quantization section says the agreement was measured on."""
    return "random" if calib == "random" else Path(calib).name


@dataclass
class Planned:
    """A model imported and planned for a board: everything compile_model decides before generating code."""
    graph: Graph            # the firmware's graph in the model's own layer order (binarized, padding made explicit)
    scheduled: Graph        # what runs: patch stages, the chosen op order
    plan: object            # the arena plan (schedule.arena.ArenaPlan)
    choice: object          # the patch decision (schedule.patch)
    layerwise: int          # the model's layer-wise peak in its own op order
    model_order: list[str]  # op names before reordering
    placement: WeightPlacement
    quantization: dict | None
    binarized: object
    float_io: list[str]     # the model's float inputs/outputs: the host (de)quantizes them with their int8 scales


def plan_model(model: Path, board: Board, opts: Options, progress=None, graph: Graph | None = None,
               quantization: dict | None = None) -> Planned:
    """Import (and quantize) `model` and plan it for `board`: binarization, explicit padding, patches, op order,
    the arena, where weights live; a plan that cannot fit the board is refused here, before any code is
    generated. Nothing is written (the fuzzer's --no-build)."""
    step = progress or (lambda message, n=None, total=None: None)
    step("importing")
    float_io: list[str] = []
    if graph is None:
        graph, quantization, float_io = _firmware_graph(model, opts, board.flash_bytes, board.sram_bytes)
    sources = graph.sources
    graph = fuse_float_islands(graph)  # DEQUANTIZE -> float elementwise -> QUANTIZE: one table (islands.py)
    graph, binarized = _binarize(graph, opts.binarize, sources)
    layerwise = layerwise_peak_bytes(graph)  # in the model's own op order (what a layer-by-layer runtime runs)
    graph = explicit_row_padding(fold_pads(fuse_swish(graph)))
    choice = _choose_patch(graph, board, opts)
    scheduled = choice.apply(graph)
    for p in choice.plans:
        step(f"patch plan: layers {p.ops[0].name}..{p.split_layer} on a {p.grid}x{p.grid} grid, "
             f"+{p.extra_macs_pct:.1f} % MACs")
    if choice.plan:
        step(f"patched arena {choice.arena_bytes:,} B instead of {choice.unpatched_bytes:,} B")
    model_order = [op.name for op in scheduled.ops]
    scheduled, plan = schedule_ops(scheduled)
    _check_plan_fits(graph, board, opts, choice, plan.size)
    return Planned(graph, scheduled, plan, choice, layerwise, model_order, _place_weights(graph, board, opts),
                   quantization, binarized, float_io)


def compile_model(model: Path, board_name: str, out: Path, opts: Options, progress=None,
                  graph: Graph | None = None, quantization: dict | None = None) -> dict:
    """Generate (and build) the project for `model` on `board_name` in `out`; returns the report.
    `graph`: the model's IR when the caller already has it (e.g. quantized from a float model in a test);
    `model` then only names the project and its report (`quantization`: its report section). The project is
    written beside `out` and renamed into place when complete (mcutool.outdir): a failed compile leaves `out` as
    it was."""
    from .outdir import check_target, new_project
    check_target(out, opts.force)
    step = progress or (lambda message, n=None, total=None: None)
    board = load_board(board_name)
    if opts.emit == "firmware":
        board.check_io(opts.io)
    planned = plan_model(model, board, opts, step, graph, quantization)
    with new_project(out, opts.force) as tmp:
        return _generate_and_build(model, board, opts, planned, tmp, step)


def _generate_and_build(model: Path, board: Board, opts: Options, planned: Planned, out: Path, step) -> dict:
    """Write the project into `out` (a fresh folder), build it, and return the report; after a link that
    overflowed internal flash, move more weights to ext_flash and write it again."""
    graph, scheduled, plan, placement = planned.graph, planned.scheduled, planned.plan, planned.placement
    choice, quantization = planned.choice, planned.quantization
    from .codegen.model import generate_model
    from .codegen.project import write_firmware_project, write_library
    kernels: dict = {}  # generated kernels, reused by the next round for the layers whose placement is unchanged
    for attempt in range(MAX_PLACEMENT_ROUNDS):
        sources = generate_model(scheduled, plan, board.name, _const_sections(placement), kernels, step)
        if attempt:
            shutil.rmtree(out)
            out.mkdir()
        if opts.emit == "library":
            write_library(sources, out, graph.name, board.name)
        else:
            write_firmware_project(scheduled, board, sources, out, opts.stack_size or STACK_RESERVE, io=opts.io)
        report = _schedule_report(model, graph, scheduled, board, plan, choice, opts, planned.layerwise)
        report["schedule"]["arena"]["reordered"] = [op.name for op in scheduled.ops] != planned.model_order
        report["io_backend"] = opts.io
        report["binarization"] = planned.binarized.to_json()
        report["layers"] = _layers(graph, sources["model.c"], placement)
        report["flash"]["ext_flash_weights_bytes"] = placement.bytes_in(graph, EXT_FLASH)
        _write_memory_plot(out, graph, scheduled, plan)
        if quantization is not None:
            report["quantization"] = quantization
        for spec in report["io"]["inputs"] + report["io"]["outputs"]:
            if spec["name"] in planned.float_io or quantization is not None:
                spec["host_dtype"] = "float32"  # the model's own I/O is float: the host (de)quantizes with scale/zp
            if spec["name"] in planned.float_io and Path(model).suffix.lower() == ".onnx":
                spec["host_rounding"] = "half_to_even"  # a QDQ model's border QuantizeLinear rounds so (TFLite's
                # QUANTIZE half away from zero)
        if not (opts.emit == "firmware" and opts.build):
            break
        step("building")
        try:
            stack = build_project(board, out, opts.stack_size, _link_hints(opts))
        except RegionOverflow as overflow:
            # The code took more internal flash than the planner's reserve: move more weights out, link again.
            if overflow.region != "flash" or not placement.ext_flash_bytes or attempt + 1 == MAX_PLACEMENT_ROUNDS:
                raise
            placement = placement.with_more(graph, overflow.extra + PLACEMENT_SLACK_BYTES)
            continue
        functions = function_sizes(board, out / "board.elf")
        _add_kernel_code_bytes(report["layers"], functions)
        # the conv kernel the conv / FC layers share (codegen/gemm_kernels.py): its bytes, once for all of them
        report["flash"]["shared_kernel_bytes"] = {f: n for f, n in sorted(functions.items())
                                                  if f.startswith("mcu_conv_gemm_s8")}
        report["memory"].update(_memory_from_elf(board, out / "board.elf", stack["bytes"]))
        report["flash"].update(_flash_from_elf(board, out / "board.elf"))
        in_flash = report["flash"]["weights_bytes"] - report["flash"]["ext_flash_weights_bytes"]
        report["flash"]["code_bytes"] = report["flash"]["used_bytes"] - in_flash
        if EXT_FLASH in board.memory:
            report["flash"]["ext_flash_used_bytes"] = _region_bytes(board, out / "board.elf", EXT_FLASH)
            report["flash"]["ext_flash_limit_bytes"] = board.memory[EXT_FLASH].length
            if report["flash"]["ext_flash_used_bytes"]:
                _split_image(board, out)
        report["build"] = _build_info(board, model, out)
        report["build"]["stack_analysis"] = stack
        _check_fits(report, board, _link_hints(opts))
        break
    _write_report(out, report)
    return report


def _write_memory_plot(out: Path, graph: Graph, scheduled: Graph, plan) -> None:
    """memory.svg next to report.json: live bytes per layer of the model, layer-wise (every tensor whole), as
    the patched schedule holds them (when patched: a layer inside the stage counts the stage's tile buffers and
    its input and output), and as the planned arena uses them."""
    from .memory_plot import ARENA_SERIES, memory_svg
    from .schedule.liveness import live_bytes_per_op
    from .schedule.patch import positions_in
    at = positions_in(graph, scheduled)
    series = {"layer-wise (every tensor whole)": live_bytes_per_op(graph)}
    if any(op.kind == "patch_stage" for op in scheduled.ops):
        live = live_bytes_per_op(scheduled)
        series["patch-based (live)"] = [live[i] for i in at]
    arena = arena_in_use_per_op(scheduled, plan)
    series[ARENA_SERIES] = [arena[i] for i in at]
    (out / "memory.svg").write_text(memory_svg(graph.name, [op.name for op in graph.ops], series))


def _budget_bytes(opts: Options) -> int:
    return int(opts.sram_budget_kib * 1024)


def _sram_limit(board: Board, opts: Options) -> tuple[int, str]:
    """The SRAM the firmware may use and what sets it (the board, or --sram-budget)."""
    if opts.sram_budget_kib is not None and _budget_bytes(opts) < board.sram_bytes:
        return _budget_bytes(opts), f"--sram-budget {opts.sram_budget_kib:g} KiB"
    return board.sram_bytes, board.name


def _check_plan_fits(graph: Graph, board: Board, opts: Options, choice, arena: int) -> None:
    """Refuse, before any kernel is generated, an arena that cannot fit with the smallest stack beside it; the
    message names the smallest SRAM any patch plan reaches and only options the user has not already set."""
    limit, what = _sram_limit(board, opts)
    if arena + MIN_OTHER_SRAM <= limit:
        return
    from .schedule.patch import lowest_reach
    low = lowest_reach(graph)
    reach = (f"The smallest arena any patch schedule reaches is {low.arena_bytes:,} bytes ({_plan_words(low)}), "
             f"i.e. at least {low.arena_bytes + MIN_OTHER_SRAM:,} bytes of SRAM. " if low and low.arena_bytes < arena
             else "No patch plan lowers it (the largest tensors lie outside any patchable first stage). ")
    raise UserError(
        f"the model does not fit {what}: its planned arena is {arena:,} bytes "
        f"({_plan_words(choice)}); with the smallest stack ({MIN_OTHER_SRAM} B) that is "
        f"{arena + MIN_OTHER_SRAM:,} bytes of SRAM, and {limit:,} are available. {reach}What would help: "
        f"{_sram_hints(opts, low, limit)}a smaller model, or a board with more SRAM (mcutool boards lists them).")


def _plan_words(choice) -> str:
    if choice.plan is None:
        return f"layer by layer: {choice.reason}"
    stages = " then ".join(f"{p.grid}x{p.grid} patches up to {p.split_layer}" for p in choice.plans)
    return f"{stages}, +{choice.extra_macs_pct:.1f} % MACs"


def _sram_hints(opts: Options, low, limit: int) -> str:
    """Options that could lower the SRAM needed and that the user has not set that way already (`low`: the
    lowest patch schedule, a patch.Choice)."""
    mode = parse_mode(opts.patch)
    if low is None or low.arena_bytes + MIN_OTHER_SRAM > limit:
        return ""
    if mode == "off":
        return "--patch auto (patch-based inference lowers peak activation memory), "
    hints = []
    if low.extra_macs_pct > opts.max_overhead:
        hints.append(f"--max-overhead {math.ceil(low.extra_macs_pct)} (the lowest schedule adds "
                     f"{low.extra_macs_pct:.1f} % MACs; the bound now is {opts.max_overhead:g} %)")
    if isinstance(mode, int):
        hints.append(f"--patch auto instead of --patch {mode}")
    return "".join(h + ", " for h in hints)


def _link_hints(opts: Options) -> str:
    """What could lower the SRAM when the arena fitted but the linked image (stack, data) did not."""
    if parse_mode(opts.patch) == "off":
        return "--patch auto (patch-based inference lowers peak activation memory), "
    return "a larger --max-overhead or a finer --patch N (more recomputation, smaller tiles), "


def _choose_patch(graph: Graph, board: Board, opts: Options):
    if opts.max_overhead < 0:
        raise UserError(f"--max-overhead {opts.max_overhead:g}: the extra-MAC bound is a percentage >= 0.")
    if opts.sram_budget_kib is not None and opts.sram_budget_kib <= 0:
        raise UserError(f"--sram-budget {opts.sram_budget_kib:g}: the budget is in KiB and must be positive.")
    budget = opts.sram_budget_kib is not None
    limit = min(board.sram_bytes, _budget_bytes(opts)) if budget else board.sram_bytes
    return choose_plan(graph, opts.patch, limit, OTHER_SRAM_ESTIMATE, opts.max_overhead, budget_given=budget)


def _schedule_report(model: Path, graph: Graph, scheduled: Graph, board: Board, plan, choice, opts: Options,
                     layerwise: int) -> dict:
    """report.json before building: the model's layers (graph) and what runs (scheduled: patches, padding, order)."""
    report = _base_report(model, graph, board, plan.size, layerwise)
    report["schedule"]["patch"] = choice.to_json()
    report["schedule"]["patch_reason"] = choice.reason
    report["schedule"]["arena"] = dict(plan.to_json(), layerwise_peak_bytes_run_order=layerwise_peak_bytes(scheduled))
    report["schedule"]["run_order"] = [op.name for op in scheduled.ops]  # the layer calls of model.c, in order
    report["memory"]["unpatched_arena_bytes"] = choice.unpatched_bytes
    if opts.sram_budget_kib is not None:
        report["memory"]["sram_budget_bytes"] = _budget_bytes(opts)
    return report


def _binarize(graph: Graph, spec: str, sources: dict[str, str]):
    """binarize; --binarize may name a layer as the importer does ('conv2d_3') or as the model file does (its
    ONNX node, `sources`)."""
    from .binarize import binarize, parse_selection
    selection = parse_selection(spec)
    if isinstance(selection, frozenset):
        ops, by_source = {op.name for op in graph.ops}, {s: n for n, s in sources.items()}
        selection = frozenset(n if n in ops else by_source.get(n, n) for n in selection)
    return binarize(graph, selection)


def _base_report(model: Path, graph: Graph, board: Board, arena: int, layerwise: int) -> dict:
    """`layerwise`: the model's layer-wise peak in its own op order, before scheduling rewrites the graph."""
    rows = layer_rows(graph)
    return {
        "model": model.name, "board": board.name, "mcutool_version": __version__,
        "macs": sum(r["macs"] for r in rows),
        "memory": {"arena_bytes": arena, "layerwise_peak_bytes": layerwise,
                   "sram_limit_bytes": board.sram_bytes},
        "flash": {"weights_bytes": sum(t.nbytes for t in graph.tensors.values() if t.is_const),
                  "limit_bytes": board.flash_bytes},
        "schedule": {"patch": None},
        "quantization": None,
        "io": {"inputs": _io(graph, graph.inputs), "outputs": _io(graph, graph.outputs)},
    }


def _place_weights(graph: Graph, board: Board, opts: Options) -> WeightPlacement:
    """Weights in internal flash, or (when they do not fit and the board has ext_flash) the largest in ext_flash."""
    ext = board.memory[EXT_FLASH].length if opts.ext_flash and EXT_FLASH in board.memory else 0
    return place_weights(graph, board.flash_bytes, ext)


def _const_sections(placement: WeightPlacement) -> dict[str, str]:
    """Layer -> the linker section of its constants: the output section the linker script gives each region."""
    return {name: f".{EXT_FLASH}" for name in placement.moved}


def _io(graph: Graph, names: list[str]) -> list[dict]:
    out = []
    for n in names:
        t = graph.tensor(n)
        d = {"name": n, "shape": list(t.shape), "dtype": t.dtype}
        if t.quant is not None:
            d.update(scale=float(t.quant.scale[0]), zero_point=int(t.quant.zero_point[0]))
        out.append(d)
    return out


def _layers(graph: Graph, model_c: str, placement: WeightPlacement) -> list[dict]:
    kinds = dict(re.findall(r"^ \*   (\S+)\s+\S+\s+kernel: (\S+)$", model_c, flags=re.M))
    rows = layer_rows(graph)
    for r in rows:
        r["kernel"] = kinds.get(r["name"], "template")
        r["placement"] = placement.where(r["name"])
    return rows


def build_project(board: Board, out: Path, stack_size: int | None = None, sram_hints: str = "") -> dict:
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
    # link one image at a time (the linkers' messages stay whole) and both even if one fails: each must fit
    _make(board, out, "all", ["-j1", "-k"], sram_hints)
    return analysis


def _make(board: Board, out: Path, target: str, flags=("-j2",), sram_hints: str = "") -> None:
    done = subprocess.run(["make", "-C", str(out), *flags, target], capture_output=True, text=True)
    if done.returncode != 0:
        overflows: dict[str, int] = {}
        for region, extra in re.findall(r"region [`']?(\w+)'? overflowed by (\d+) bytes", done.stderr):
            overflows[region] = max(overflows.get(region, 0), int(extra))
        if overflows:
            region = "flash" if "flash" in overflows else next(iter(overflows))
            message = " ".join(_too_large_message(board, r, e, sram_hints) for r, e in overflows.items())
            raise RegionOverflow(message, region, overflows[region])
        tail = "\n".join(done.stderr.strip().splitlines()[-15:])
        raise UserError(f"building the firmware failed (make {target} exited {done.returncode}); rerun with "
                        f"MCUTOOL_DEBUG=1 to keep the project ({out}) to inspect. Last lines of the compiler's "
                        f"output:\n{tail}")


def _too_large_message(board: Board, region: str, extra: int, sram_hints: str = "") -> str:
    """`sram_hints`: options that could lower the SRAM needed, each followed by ", " (_link_hints)."""
    limit = board.memory[region].length if region in board.memory else 0
    what = "SRAM" if region == "sram" else "flash" if region == "flash" else region
    stack = " (stack reserve included)" if what == "SRAM" else ""
    return (f"the model does not fit {board.name}: {what} needs {limit + extra:,} bytes{stack} but the "
            f"board has {limit:,} ({extra:,} bytes too many). What would help: "
            f"{sram_hints if what == 'SRAM' else ''}"
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


def function_sizes(board: Board, elf: Path) -> dict[str, int]:
    """Function name -> bytes of code, from the ELF's symbol table."""
    text = subprocess.run([board.toolchain.tool("readelf"), "-sW", str(elf)], capture_output=True, text=True,
                          check=True).stdout
    sizes = {}
    for line in text.splitlines():
        parts = line.split()
        if len(parts) >= 8 and parts[3] == "FUNC" and parts[6] != "UND":
            sizes[parts[7]] = int(parts[2], 0)
    return sizes


def _add_kernel_code_bytes(layers: list[dict], functions: dict[str, int]) -> None:
    """layers[i]["code_bytes"]: the bytes of the functions generated for that layer (`L_<layer>` and its
    helpers `L_<layer>_...`; a function goes to the longest layer name it starts with); None for a layer that
    calls a shared runtime kernel (mcu_<op>_s8, whose code all such layers share)."""
    from .codegen.carray import c_identifier
    prefix = {"L_" + c_identifier(r["name"]): r for r in layers}
    for r in layers:
        r["code_bytes"] = 0 if r["kernel"] == "tvm" else None
    for fn, size in functions.items():
        owners = [p for p in prefix if fn == p or fn.startswith(p + "_")]
        if owners:
            r = prefix[max(owners, key=len)]
            r["code_bytes"] = (r["code_bytes"] or 0) + size


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


def rom_regions(report: dict) -> tuple[str, ...]:
    """The ROM regions a built project's board image fills: ("flash",) or ("flash", "ext_flash")."""
    return ("flash", EXT_FLASH) if report.get("flash", {}).get("ext_flash_used_bytes") else ("flash",)


def _split_image(board: Board, out: Path) -> None:
    """board-flash.bin and board-ext_flash.bin beside board.elf: what the programmer writes to each region."""
    for command in board.split_image_commands("board.elf", ("flash", EXT_FLASH)):
        subprocess.run(command, cwd=out, check=True, capture_output=True)


def _check_fits(report: dict, board: Board, sram_hints: str = "") -> None:
    m = report["memory"]
    if m["sram_used_bytes"] > board.sram_bytes:
        raise UserError(_too_large_message(board, "sram", m["sram_used_bytes"] - board.sram_bytes, sram_hints))
    if "sram_budget_bytes" in m and m["sram_used_bytes"] > m["sram_budget_bytes"]:
        raise UserError(f"the firmware uses {m['sram_used_bytes']:,} bytes of SRAM (arena {m['arena_bytes']:,}, "
                        f"stack {m['stack_bytes']:,}), more than --sram-budget {m['sram_budget_bytes']:,} bytes. "
                        f"What would help: a larger --max-overhead (more patches, more recomputation), "
                        f"--patch N for a finer grid, or a larger budget.")


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
def _to_firmware(x: np.ndarray, spec: dict) -> np.ndarray:
    """A float input of a quantized float model -> the firmware's integer input (the model's input scale)."""
    from .reference import quantize_float
    if spec.get("host_dtype") != "float32" or x.dtype != np.float32:
        return x
    return quantize_float(x, scale=spec["scale"], zero_point=spec["zero_point"], out_dtype=spec["dtype"],
                          half_to_even=spec.get("host_rounding") == "half_to_even").astype(spec["dtype"])


def _from_firmware(y: np.ndarray, spec: dict) -> np.ndarray:
    from .reference import dequantize
    return dequantize(y, scale=spec["scale"], zero_point=spec["zero_point"])


def run_build(out: Path, inputs: list[np.ndarray], timeout: float = 120.0,
              port: str | None = None, steps: int | None = None) -> tuple[list[np.ndarray], dict]:
    """Run the emulator image once on `inputs` (arrays as the model declares them); outputs + run info.
    For a quantized float model, float32 inputs are quantized on the host and the outputs dequantized (given
    integer inputs, the firmware's integer outputs are returned as they are).
    With `steps` T, each input has a leading axis of T steps of a sequence: the firmware resets the model's
    state once and runs T inferences; each output gets the same leading axis.
    A --io uart build talks frames over QEMU's serial port, or over the board's serial port `port`."""
    report = read_report(out)
    host_float = any(x.dtype == np.float32 and s.get("host_dtype") == "float32"
                     for x, s in zip(inputs, report["io"]["inputs"]))
    inputs = [_to_firmware(np.asarray(x), s) for x, s in zip(inputs, report["io"]["inputs"])]
    board = load_board(report["board"])
    io = report.get("io_backend", "semihosting")
    elf = out / ELF
    if port is None and not elf.exists():
        if (out / "Makefile").exists():
            raise UserError(f"{out} has no {ELF}: it was compiled with --no-build. Build it (make -C {out}) or "
                            "compile again without --no-build.")
        raise UserError(f"{out} is an --emit library folder (model code for your own project, no firmware to "
                        "run). Compile again with --emit firmware (the default) to run it here.")
    if port is not None and io != "uart":
        raise UserError(f"{out} was built with --io {io}; a board is reached over its serial port only by a "
                        "--io uart build: compile again with --io uart and flash that board.elf.")
    _check_inputs(report, inputs, steps)
    if steps is not None and io == "uart":
        raise UserError("sequences (--steps) run in semihosting builds; this one was built with --io uart.")
    if io == "uart":
        from .emulate.serial import run_uart
        outputs, records, emulator = run_uart(board, report["io"]["outputs"], elf, inputs, timeout, port)
    else:
        outputs, records, emulator = _run_semihosting(board, report, out, elf, inputs, timeout)
        lead = [] if steps is None else [steps]
        outputs = [y.reshape(lead + spec["shape"]) for y, spec in zip(outputs, report["io"]["outputs"])]
    outputs = [_from_firmware(y, spec) if host_float and spec.get("host_dtype") == "float32" else y
               for y, spec in zip(outputs, report["io"]["outputs"])]
    info = {"emulator": emulator, "instructions": 0, "stack_high_water_bytes": 0}
    for rec in records:
        if rec.kind == "count" and rec.fields.get("name") == "inference":
            info["instructions"] = int(rec.fields.get("instructions", 0))
            if "cycles" in rec.fields:  # a board's DWT->CYCCNT / mcycle
                info["cycles"] = int(rec.fields["cycles"])
        if rec.kind == "stack":
            info["stack_high_water_bytes"] = int(rec.fields["high_water"])
    macs = report["macs"]
    info["macs_per_instruction"] = round(macs / info["instructions"], 4) if info["instructions"] else 0.0
    report["run"] = info
    report["memory"]["stack_high_water_bytes"] = info["stack_high_water_bytes"]
    _write_report(out, report)
    return outputs, info


def _check_inputs(report: dict, inputs: list[np.ndarray], steps: int | None = None) -> None:
    specs = report["io"]["inputs"]
    if len(inputs) != len(specs):
        raise UserError(f"the model takes {len(specs)} input(s), {len(inputs)} given.")
    lead = [] if steps is None else [int(steps)]
    for i, (x, spec) in enumerate(zip(inputs, specs)):
        if list(x.shape) != lead + spec["shape"] or str(x.dtype) != spec["dtype"]:
            what = f"{steps} steps of " if steps is not None else ""
            raise UserError(f"input {spec['name']!r} must be {what}{spec['dtype']} {spec['shape']} (shape "
                            f"{lead + spec['shape']}), got {x.dtype} {list(x.shape)}.")


def _run_semihosting(board: Board, report: dict, out: Path, elf: Path, inputs: list[np.ndarray], timeout: float):
    from .emulate.qemu import run_firmware
    for i, x in enumerate(inputs):
        (out / f"input{i}.bin").write_bytes(np.ascontiguousarray(x).tobytes())
    for i in range(len(report["io"]["outputs"])):
        (out / f"output{i}.bin").unlink(missing_ok=True)
    run = run_firmware(board, elf, cwd=out, timeout=timeout)
    outputs = []
    for i, spec in enumerate(report["io"]["outputs"]):
        raw = (out / f"output{i}.bin").read_bytes()
        outputs.append(np.frombuffer(raw, dtype=spec["dtype"]).reshape([-1] + spec["shape"]).copy())  # per step
    return outputs, run.records, " ".join(run.command[:3])


def profile_layers(out: Path, inputs: list[np.ndarray], timeout: float = 120.0) -> list[dict]:
    """Instructions of each layer: builds and runs profile.elf (the emulator image with a count around every
    layer call; its stack reserve is 1 KB larger for the reports). Adds them to report.json run.layers."""
    report = read_report(out)
    board = load_board(report["board"])
    if report.get("io_backend", "semihosting") != "semihosting":
        raise UserError("per-layer profiles are taken from a semihosting build (the emulator's default); "
                        "this one was built with --io " + report["io_backend"] + ".")
    _make(board, out, "profile.elf")
    _check_inputs(report, inputs)
    _, records, _ = _run_semihosting(board, report, out, out / "profile.elf", inputs, timeout)
    counts = {int(rec.fields["name"][len("layer"):]): int(rec.fields.get("instructions", rec.fields.get("cycles", 0)))
              for rec in records if rec.kind == "count" and rec.fields.get("name", "").startswith("layer")}
    ops = {layer["name"]: layer["op"] for layer in report["layers"]}
    order = report["schedule"]["run_order"]  # what model.c calls: patch stages and inserted pads included
    layers = [{"name": name, "op": ops.get(name, "patch_stage" if name.startswith("patch_stage") else "pad"),
               "instructions": counts.get(i, 0)} for i, name in enumerate(order)]
    report.setdefault("run", {})["layers"] = layers
    _write_report(out, report)
    return layers
