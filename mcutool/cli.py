"""The `mcutool` command line: parses options, calls the stages, prints results. No stage imports this module."""
from __future__ import annotations

import json
import os
import sys

import click

from . import __version__
from .errors import UserError


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="mcutool")
def cli():
    """mcutool: compile ONNX/TFLite networks into integer-only, bit-exact microcontroller firmware."""


@cli.command()
@click.argument("model", type=click.Path(dir_okay=True))
@click.option("--json", "as_json", is_flag=True, help="Print the summary as JSON.")
@click.option("--memory", is_flag=True, help="Also draw the live-bytes profile, layer by layer.")
@click.option("-o", "--plot", "plot", type=click.Path(dir_okay=False), default=None,
              help="With --memory: write the profile as an SVG plot to this file instead of printing it.")
def inspect(model, as_json, memory, plot):
    """Layers, shapes, dtypes, MACs, parameters and activation bytes of MODEL (.tflite or .onnx)."""
    from .frontends import load_model
    from .summary import model_summary

    graph = load_model(model, allow_unsupported=True)  # the layers mcutool cannot run are listed, marked
    summary = model_summary(graph)
    summary["model"] = os.path.basename(model)
    if plot and not memory:
        raise UserError("-o/--plot writes the memory profile: add --memory.")
    if as_json:
        click.echo(json.dumps(summary, indent=2))
        return
    click.echo(_summary_table(summary))
    if memory and plot:
        _write_memory_plot(graph, summary["model"], plot)
    elif memory:
        click.echo(_memory_profile(summary))


def _write_memory_plot(graph, title: str, path: str) -> None:
    """The layer-wise profile and the planned arena's (model's op order, no patches) as an SVG."""
    from .memory_plot import ARENA_SERIES, memory_svg
    from .schedule.arena import arena_in_use_per_op, plan_arena
    from .schedule.liveness import live_bytes_per_op
    plan = plan_arena(graph)
    series = {"layer-wise (every tensor whole)": live_bytes_per_op(graph),
              ARENA_SERIES: arena_in_use_per_op(graph, plan)}
    with open(path, "w") as f:
        f.write(memory_svg(title, [op.name for op in graph.ops], series))
    click.echo(f"\nmemory profile written to {path} (layer-wise peak {max(series[next(iter(series))], default=0):,} B, "
               f"planned arena {plan.size:,} B)")


def _fmt_shape(shape) -> str:
    return "x".join(str(d) for d in shape) if shape else "-"


def _summary_table(s: dict) -> str:
    header = ("#", "layer", "op", "output", "dtype", "MACs", "params", "act. bytes", "live bytes")
    rows = [(str(i), r["name"], r["op"], _fmt_shape(r["out_shape"]),
             r["dtype"] + (f" w{r['weight_bits']}" if r.get("weight_bits") == 4 else ""), f"{r['macs']:,}",
             f"{r['params']:,}", f"{r['out_bytes']:,}", f"{r['live_bytes']:,}") for i, r in enumerate(s["layers"])]
    widths = [max(len(x) for x in col) for col in zip(header, *rows)]
    right = {0, 5, 6, 7, 8}

    def line(cells):
        return "  ".join(c.rjust(w) if i in right else c.ljust(w) for i, (c, w) in enumerate(zip(cells, widths)))

    out = [f"{s['model']}"]
    for kind in ("inputs", "outputs"):
        for t in s[kind]:
            q = f", scale {t['scale']:.6g}, zero point {t['zero_point']}" if "scale" in t else ""
            out.append(f"  {kind[:-1]:<6} {t['name']}: {t['dtype']} {_fmt_shape(t['shape'])}{q}")
    out += ["", line(header), line(["-" * w for w in widths])] + [line(r) for r in rows]
    out += ["",
            f"MACs                  {s['macs']:,}",
            f"parameters            {s['params']:,} ({s['weights_bytes']:,} bytes)",
            f"layer-wise peak       {s['layerwise_peak_bytes']:,} bytes (live activations, every tensor whole)"]
    if s["unsupported"]:
        out += ["", f"not supported by mcutool (compile refuses the model): {s['unsupported']}"]
    return "\n".join(out)


def _memory_profile(s: dict, width: int = 50) -> str:
    peak = max((r["live_bytes"] for r in s["layers"]), default=0) or 1
    name_w = max((len(r["name"]) for r in s["layers"]), default=4)
    out = ["", "live bytes per layer (layer by layer, no patches)"]
    for r in s["layers"]:
        bar = "#" * max(1, round(width * r["live_bytes"] / peak))
        out.append(f"  {r['name']:<{name_w}}  {r['live_bytes']:>10,}  {bar}")
    return "\n".join(out)


WEIGHTS_OPTION = click.option(
    "--weights", type=click.Choice(["int8", "int4", "auto"]), default="int8", show_default=True,
    help="Float models: weight width of conv/depthwise/fully connected layers: int8, int4 (packed, two a byte), "
         "or auto (each layer int8 or int4, chosen by its measured sensitivity to fit --flash-budget).")
ACTIVATIONS_OPTION = click.option(
    "--activations", type=click.Choice(["int8", "auto"]), default="int8", show_default=True,
    help="Float models: activation width: int8, or auto (int16 activations, TFLite's 16x8, on int8-weight "
         "layers where that measures better; with compile, within --sram-budget or the board's SRAM).")
FLASH_BUDGET_OPTION = click.option(
    "--flash-budget", "flash_budget", type=int, default=None, metavar="BYTES",
    help="Bytes the weights may take (every constant of the model) with --weights auto; compile's default is "
         "the board's internal flash left after code.")


def _weights_lines(q: dict) -> str:
    """The per-layer weight widths of a quantization report, and the allocation under a budget."""
    bits = [f"{r['name']} {r['weight_bits']}" + ("x16" if r.get("activation_bits") == 16 else "")
            for r in q.get("layers", [])]
    out = [f"weights: {q.get('weights', 'int8')}, {q.get('weights_bytes', 0):,} B; bits per layer: "
           + ", ".join(bits)]
    a = q.get("allocation")
    if a:
        pred = "-" if a["predicted_sqnr_db"] is None else f"{a['predicted_sqnr_db']:.1f} dB"
        meas = "-" if a["measured_sqnr_db"] is None else f"{a['measured_sqnr_db']:.1f} dB"
        budget = ("" if a["flash_budget_bytes"] is None
                  else f" of --flash-budget {a['flash_budget_bytes']:,} ({a['weights_fraction_of_int8']:.0%} of int8)")
        out.append(f"allocation: {a['rule']}, {a['weights_bytes']:,} B{budget}; SQNR predicted {pred}, measured "
                   f"{meas} on the calibration samples")
        if a.get("activations_sram_bytes") is not None:
            limit = "" if a["sram_budget_bytes"] is None else f" of {a['sram_budget_bytes']:,} B"
            out.append(f"activations: {a['activations_sram_bytes']:,} B layerwise peak{limit}; int16 in "
                       + (", ".join(a["int16_activation_ops"]) or "none"))
    return "\n".join(out)


# The options of validate and bench (they compile first), in the order --help lists them; compile adds
# COMPILE_ONLY. Each goes to mcutool.api.options by name (_api_options), so a new option is one entry here and
# one keyword there.
SHARED_OPTIONS = [
    click.option("--board", required=True, help="Target board (mcutool boards lists them)."),
    click.option("-o", "out", type=click.Path(file_okay=False), default=None,
                  help="Project folder (default ./build/<model>-<board>/; validate and bench add -validate and "
                       "-bench). Written beside it and renamed into place when complete; replaces only a folder "
                       "mcutool wrote."),
    click.option("--force", is_flag=True, help="Replace -o DIR even if it is a non-empty folder mcutool did not "
                 "write (its contents are deleted). Never '.' or a parent of the current folder."),
    click.option("--calib", default=None, metavar="DATA.npz|random",
                  help="Float models: calibration samples per input name (or random, with poor scales). Not "
                       "used for an integer model, except for the ops a QDQ model leaves in float between "
                       "DequantizeLinear and QuantizeLinear, which it quantizes."),
    click.option("--input-shape", "input_shape", multiple=True, metavar="NAME=D0,D1,...",
                  help="ONNX inputs with dynamic dimensions: the shape to compile for, e.g. input=1,3,96,96 "
                       "(repeat for several inputs)."),
    click.option("--io", "io", type=click.Choice(["semihosting", "uart"]), default="semihosting",
                  show_default=True, help="Harness I/O: semihosting (a debugger or QEMU serves host files) or "
                  "uart (framed tensors over the board's serial port; no debugger needed)."),
    click.option("--patch", default="auto", show_default=True, metavar="auto|off|N",
                  help="Patch-based inference of the first stage: auto (only when needed to fit), off, or an "
                       "N x N grid."),
    click.option("--sram-budget", type=float, default=None, metavar="KIB",
                  help="SRAM the firmware may use, in KiB (arena, stack, other data); default: the board's."),
    click.option("--max-overhead", type=float, default=20.0, show_default=True, metavar="PCT",
                  help="Largest extra-MAC percentage patch-based inference may add."),
    click.option("--binarize", default="auto", show_default=True, metavar="auto|off|LAYER,...",
                  help="Binary (1-bit) layers: auto (convs with +-alpha weights after a Sign), off (all int8), "
                       "or a comma-separated list of conv layers to binarize."),
    WEIGHTS_OPTION,
    FLASH_BUDGET_OPTION,
    ACTIVATIONS_OPTION,
]
COMPILE_ONLY = [
    click.option("--emit", type=click.Choice(["firmware", "library"]), default="firmware", show_default=True,
                  help="firmware: a complete project and ELF; library: model.c/h + runtime for your project."),
    click.option("--no-build", is_flag=True, help="Generate the project without building it."),
]


def _options(options):
    def apply(fn):
        for option in reversed(options):
            fn = option(fn)
        return fn
    return apply


def _input_shapes(specs) -> dict | None:
    """--input-shape NAME=1,3,96,96 (repeated) -> {NAME: (1, 3, 96, 96)}."""
    shapes = {}
    for spec in specs:
        name, _, dims = spec.rpartition("=")
        try:
            shape = tuple(int(d) for d in dims.split(","))
        except ValueError:
            shape = ()
        if not name or not shape or min(shape) < 1:
            raise UserError(f"--input-shape {spec}: give NAME=D0,D1,... with positive sizes, e.g. "
                            "--input-shape input=1,3,96,96.")
        shapes[name] = shape
    return shapes or None


def _api_options(input_shape=(), sram_budget=None, **options) -> dict:
    return dict(options, input_shapes=_input_shapes(input_shape), sram_budget=sram_budget)


def _announce(command: str, model: str, board: str, out) -> None:
    from pathlib import Path
    from .compiler import default_out_dir
    folder = out or default_out_dir(Path(model), board, command)
    click.echo(f"{command} {Path(model).name} for {board} in {folder}", err=True)


def _print_quantization(report: dict) -> None:
    if report.get("quantization"):
        click.echo(_quantization_line(report["quantization"]))
        if report["quantization"].get("layers"):
            click.echo(_weights_lines(report["quantization"]))


def _quantization_line(q: dict) -> str:
    parts = []
    for o in q["outputs"]:
        top1 = f"top-1 agreement {o['top1_agreement'] * 100:.1f} %, " if "top1_agreement" in o else ""
        parts.append(f"{o['name']}: {top1}SQNR {o['sqnr_db']:.1f} dB")
    data = q.get("data")
    if data == "random":
        on = (f"on the {q['samples']} random calibration samples themselves (not real data: this says nothing of "
              "accuracy on real inputs)")
    else:
        on = f"on the calibration set{f' ({data})' if data else ''}"
    return (f"quantized to int8 ({q['method']}, {q['samples']} calibration samples); float vs int8 {on}: "
            f"{'; '.join(parts)}" + (f" ({q['note']})" if q.get("note") else ""))


def _summary_line(report: dict) -> str:
    m, f = report["memory"], report["flash"]
    parts = [f"MACs {report['macs']:,}", f"arena {m['arena_bytes']:,} B (layer-wise bound {m['layerwise_peak_bytes']:,})"]
    if "sram_used_bytes" in m:
        parts.append(f"SRAM {m['sram_used_bytes']:,} / {m['sram_limit_bytes']:,} B")
    if "used_bytes" in f:
        parts.append(f"flash {f['used_bytes']:,} / {f['limit_bytes']:,} B")
    moved = [r["name"] for r in report.get("layers", []) if r.get("placement") == "ext_flash"]
    if moved:
        used = f"{f['ext_flash_used_bytes']:,} / {f['ext_flash_limit_bytes']:,} B" if "ext_flash_used_bytes" in f else \
            f"{f['ext_flash_weights_bytes']:,} B"
        parts.append(f"ext_flash {used} (weights of {', '.join(moved)}: internal flash too small)")
    return ", ".join(parts) + "\n" + _patch_line(report)


def _patch_line(report: dict) -> str:
    p = report["schedule"].get("patch")
    if not p:
        return f"patches: none ({report['schedule'].get('patch_reason', 'not needed')})"
    stages = "; then ".join(f"{' -> '.join(s['stage_layers'])} on a {s['grid'][0]}x{s['grid'][1]} grid, split layer "
                            f"{s['split_layer']}" for s in p.get("stages", [p]))
    return (f"patches: {stages}, +{p['extra_macs_pct']:.2f} % MACs, arena {report['memory']['arena_bytes']:,} B "
            f"instead of {report['memory']['unpatched_arena_bytes']:,} B")


@cli.command("compile")
@click.argument("model", type=click.Path())
@_options(SHARED_OPTIONS[:3] + COMPILE_ONLY + SHARED_OPTIONS[3:])
def compile_cmd(model, board, out, no_build, **options):
    """Generate C for MODEL on BOARD and build it; writes DIR/report.json."""
    from . import api
    from .progress import Progress
    _announce("compile", model, board, out)
    fw = api.compile(model, board, out, progress=Progress(), build=not no_build, **_api_options(**options))
    report = fw.report
    _print_quantization(report)
    click.echo(_summary_line(report))
    moved = (report.get("binarization") or {}).get("output_movement")
    if moved:
        click.echo(f"binarized {', '.join(report['binarization']['binary_layers'])}: outputs moved by "
                   f"{moved['mean_abs_lsb']} LSB on average (max {moved['max_abs_lsb']}), top-1 agreement "
                   f"{moved['top1_agreement']:.0%} on {moved['samples']} random inputs")
    click.echo(_where_line(fw.path, options.get("emit", "firmware"), not no_build))


def _where_line(folder, emit: str, built: bool) -> str:
    if emit == "library":
        return (f"library: {folder}  (no Makefile: add model.c and runtime/*.c to your own build, include . and "
                "runtime; README.txt there says how, sources.mk lists them; model.h has the I/O sizes, scales, zero "
                "points and the arena size)")
    if not built:
        return f"project: {folder}  (not built: make there builds it; then make run, make flash)"
    return (f"project: {folder}  (report.json; make run runs it in QEMU on a default input, "
            f"mcutool run {folder} --input x.npy on yours; make flash)")


def _load_inputs(path: str, specs: list[dict]):
    import numpy as np
    if path.endswith(".npz"):
        data = np.load(path)
        missing = [s["name"] for s in specs if s["name"] not in data]
        if missing:
            raise UserError(f"{path} lacks the input(s) {', '.join(missing)}; keys must be the model's input names.")
        return [np.asarray(data[s["name"]]) for s in specs]
    try:
        return [np.load(path)]
    except (OSError, ValueError) as exc:
        raise UserError(f"cannot read {path} as a .npy file ({exc}).") from None


@cli.command()
@click.argument("project", type=click.Path(file_okay=False, exists=True))
@click.option("--input", "input_path", required=True, type=click.Path(exists=True), help="Input tensor (.npy, or .npz by name).")
@click.option("--output", "output_path", type=click.Path(), default=None, help="Where to write the output (.npy/.npz).")
@click.option("--port", default=None, help="Serial port of a board running the --io uart build (e.g. /dev/ttyACM0) "
              "instead of the emulator.")
@click.option("--steps", type=click.IntRange(min=1), default=None,
              help="The input is a sequence of STEPS inputs (a leading axis): the model's state is reset once, "
                   "then each step runs; the output gets the same leading axis (stateful models: SVDF, LSTM).")
def run(project, input_path, output_path, port, steps):
    """Run the built firmware in PROJECT once in the board's emulator (or on a board over --port)."""
    from pathlib import Path
    import numpy as np
    from .compiler import read_report, run_build
    out = Path(project)
    report = read_report(out)
    inputs = _load_inputs(input_path, report["io"]["inputs"])
    outputs, info = run_build(out, inputs, port=port, steps=steps)
    if output_path:
        if output_path.endswith(".npz"):
            np.savez(output_path, **{s["name"]: y for s, y in zip(report["io"]["outputs"], outputs)})
        else:
            np.save(output_path, outputs[0])
    if "cycles" in info:  # a board: DWT->CYCCNT / mcycle
        click.echo(f"cycles per inference: {info['cycles']:,} (on {info['emulator']}), "
                   f"stack high water {info['stack_high_water_bytes']} B")
    else:
        click.echo(f"instructions per inference: {info['instructions']:,} ({info['macs_per_instruction']} "
                   f"MACs/instruction), stack high water {info['stack_high_water_bytes']} B")
    if not output_path:
        for s, y in zip(report["io"]["outputs"], outputs):
            click.echo(f"{s['name']}: {y.reshape(-1).tolist()}")


@cli.command()
@click.argument("model", type=click.Path())
@_options(SHARED_OPTIONS)
@click.option("--samples", type=int, default=5, show_default=True,
              help="How many random inputs to run and compare (at least 1).")
@click.option("--seed", type=int, default=0, show_default=True,
              help="Seed of the random inputs (the same seed gives the same inputs).")
@click.option("--steps", type=click.IntRange(min=1), default=None,
              help="Each sample is a sequence of STEPS random inputs, the state reset before each sample and every "
                   "step's output compared (stateful models: SVDF, LSTM).")
def validate(model, board, out, samples, seed, steps, **options):
    """Compile MODEL, run SAMPLES random inputs in the emulator, compare bit for bit with the reference."""
    from . import api
    from .progress import Progress
    _announce("validate", model, board, out)
    result = api.validate(model, board, samples, seed, out, progress=Progress(), steps=steps,
                          **_api_options(**options))
    _print_quantization(result.firmware.report)
    for m in result.mismatches:
        click.echo(f"sample {m.sample}: output {m.output!r} differs from the reference in {m.values} values "
                   f"(max {m.max_lsb} LSB)", err=True)
    if not result.passed:
        failed = len({m.sample for m in result.mismatches})
        raise UserError(f"validation failed: {failed} of {samples} samples differ from the reference on {board}.")
    click.echo(f"bit-exact: {samples} of {samples} random inputs equal the reference on {board} "
               f"({result.instructions:,} instructions per inference)")


@cli.command()
@click.argument("model", type=click.Path())
@_options(SHARED_OPTIONS)
def bench(model, board, out, **options):
    """Instructions per inference, MACs/instruction, arena, SRAM and flash of MODEL on BOARD."""
    from . import api
    from .progress import Progress
    _announce("bench", model, board, out)
    result = api.bench(model, board, out, progress=Progress(), **_api_options(**options))
    report = result.firmware.report
    _print_quantization(report)
    info = report["run"]
    m, f = report["memory"], report["flash"]
    rows = [("model", report["model"]), ("board", f"{board} ({info['emulator']}, -icount shift=0)"),
            ("instructions/inference", f"{result.instructions:,}"),
            ("MACs", f"{report['macs']:,}"),
            ("MACs/instruction", f"{result.macs_per_instruction:.3f}"),
            ("arena", f"{m['arena_bytes']:,} B (layer-wise bound {m['layerwise_peak_bytes']:,} B)"),
            ("patches", _patch_line(report).split(": ", 1)[1]),
            ("SRAM used", f"{m['sram_used_bytes']:,} B of {m['sram_limit_bytes']:,} (stack reserve {m['stack_bytes']:,}, "
                          f"high water {result.stack_high_water_bytes:,})"),
            ("flash used", f"{f['used_bytes']:,} B of {f['limit_bytes']:,} (code {f['code_bytes']:,}, weights {f['weights_bytes']:,})")]
    for k, v in rows:
        click.echo(f"{k:<24}{v}")
    if result.layers is not None:
        _print_layer_profile(report, result.layers)
    else:
        click.echo("\nper-layer instructions: not measured for a --io uart build (the profiling image reports "
                   "through semihosting); run bench without --io uart for the table.")
    click.echo("(QEMU counts instructions, not cycles: it is not cycle accurate.)")


def _print_layer_profile(report: dict, counts: list[dict]) -> None:
    """Per layer: op, MACs, instructions (from the profiling build) and MACs per instruction."""
    click.echo(f"\n{'layer':<32}{'op':<20}{'MACs':>12}{'instructions':>14}{'MACs/instr':>12}{'code B':>9}")
    rows = {layer["name"]: layer for layer in report["layers"]}
    patch = report["schedule"].get("patch")
    for count in counts:
        name, n = count["name"], count["instructions"]
        code = None
        if name in rows:
            op, macs, code = rows[name]["op"], rows[name]["macs"], rows[name].get("code_bytes")
        elif patch and name.startswith("patch_stage"):  # the patched stage: its layers' MACs + the recomputed halo
            op, macs = "patch_stage", sum(rows[s]["macs"] for s in patch["stage_layers"] if s in rows) + patch["extra_macs"]
        else:  # a layer the scheduler inserted (an explicit pad)
            op, macs = "pad", 0
        ratio = f"{macs / n:.3f}" if n and macs else "-"
        code = "shared" if code is None else f"{code:,}"  # None: a runtime kernel all such layers share
        click.echo(f"{name[:31]:<32}{op:<20}{macs:>12,}{n:>14,}{ratio:>12}{code:>9}")
    for fn, size in report["flash"].get("shared_kernel_bytes", {}).items():
        click.echo(f"{fn}: {size:,} B of code, shared by the conv / fully connected layers whose code B is small")
    binary = [c for c in counts if c["op"].startswith("binary_")]
    if binary:
        click.echo(f"binary layers: {sum(c['instructions'] for c in binary):,} instructions in {len(binary)} layers")


@cli.command()
@click.argument("model", type=click.Path(exists=True, dir_okay=False))
@click.option("--calib", required=True, metavar="DATA.npz|random",
              help="Calibration samples per input name (or random, with poor scales).")
@click.option("-o", "out", required=True, type=click.Path(dir_okay=False), help="The int8 model to write (.tflite).")
@click.option("--method", type=click.Choice(["auto", "minmax", "percentile", "mse"]), default="auto", show_default=True,
              help="How activation ranges are chosen from the calibration set: auto (per tensor, by the output "
                   "error it causes, with bias correction; never worse than minmax there) or one rule for all.")
@WEIGHTS_OPTION
@FLASH_BUDGET_OPTION
@ACTIVATIONS_OPTION
def quantize(model, calib, out, method, weights, flash_budget, activations):
    """Quantize float MODEL to int8 and write it as a TFLite flatbuffer (float I/O with QUANTIZE/DEQUANTIZE at
    the border, as the TFLite converter writes it)."""
    from pathlib import Path
    from .export.tflite import write_tflite
    from .frontends import load_model
    from .quantize.calibdata import load_calibration
    from .quantize.mixed import quantize_mixed
    from .quantize.ptq import has_integer_core
    if not out.endswith(".tflite"):
        raise UserError(f"-o {out}: mcutool quantize writes TFLite flatbuffers; name the output *.tflite.")
    graph = load_model(model)
    if not any(graph.tensor(n).dtype == "float32" for n in graph.inputs) or has_integer_core(graph):
        raise UserError(f"{model} is already an integer model (float I/O, if any, only passes through "
                        "QUANTIZE/DEQUANTIZE); quantize takes a float model. Compile it as it is.")
    from .compiler import calibration_data_name
    qgraph, report = quantize_mixed(graph, load_calibration(calib, graph), method, weights, flash_budget,
                                    activations)
    report["data"] = calibration_data_name(calib)
    Path(out).write_bytes(write_tflite(qgraph))
    click.echo(_quantization_line(report))
    click.echo(_weights_lines(report))
    click.echo(f"wrote {out}")


@cli.command()
@click.argument("project", type=click.Path(file_okay=False, exists=True))
@click.option("--probe", type=click.Choice(["openocd", "pyocd", "stlink"]), default=None,
              help="Programmer (default: the board's first method).")
@click.option("--dry-run", is_flag=True, help="Print the commands instead of running them.")
def flash(project, probe, dry_run):
    """Program the board image of PROJECT into the dev board."""
    import shlex
    import shutil as sh
    import subprocess
    from pathlib import Path
    from .boards import PROBES, load_board
    from .compiler import read_report, rom_regions
    out = Path(project)
    report = read_report(out)
    board = load_board(report["board"])
    elf = out / "board.elf"
    if not elf.exists():
        raise UserError(f"{out} has no board.elf: compile it without --no-build / --emit library first.")
    regions = rom_regions(report)  # weights in ext_flash: one binary and one programming command per region
    probes = [probe] if probe else [p for p in PROBES if board.flash_commands(str(elf), p, regions)][:1]
    commands = board.flash_commands(str(elf), probes[0], regions) if probes else []
    if not commands:
        extra = f" that can program {' and '.join(regions)}" if len(regions) > 1 else ""
        raise UserError(f"board {board.name} has no {probe or 'flash'} method{extra} in its board file.")
    for command in commands:
        click.echo(shlex.join(command))
        if dry_run:
            continue
        if sh.which(command[0]) is None:
            raise UserError(f"{command[0]} is not installed; install it (openocd: apt-get install openocd; "
                            "pyocd: pip install pyocd; st-flash: apt-get install stlink-tools).")
        if subprocess.run(command).returncode != 0:
            raise UserError(f"{command[0]} failed; is the board connected and powered?")


@cli.command()
def boards():
    """The boards and their emulators."""
    from .boards import list_boards, load_board
    for name in list_boards():
        b = load_board(name)
        click.echo(f"{name:<16}{b.core:<12}flash {b.flash_bytes // 1024:>5} KiB  SRAM {b.sram_bytes // 1024:>4} KiB  "
                   f"emulator: {b.emulator.program} -M {b.emulator.machine}")


# The C library of each cross toolchain, by prefix: (name, flags that select it, how to install it). mcutool's
# firmware links none (it needs only the compiler's own <stdint.h>/<stddef.h>); a user's own code may.
LIBC_PACKAGES = {"arm-none-eabi-": ("newlib", (), "apt-get install libnewlib-arm-none-eabi"),
                 "riscv64-unknown-elf-": ("picolibc", ("--specs=picolibc.specs",),
                                          "apt-get install picolibc-riscv64-unknown-elf")}
PROBE_TOOLS = {"openocd": "apt-get install openocd", "pyocd": "pip install pyocd",
               "st-flash": "apt-get install stlink-tools"}
# The oracles the test suite compares with (DESIGN.md §6): Python modules, not needed to compile.
ORACLES = {"tflite_runtime": "pip install tflite-runtime==2.14.0 (numpy<2)", "tflite_micro": "pip install --pre tflite-micro",
           "onnxruntime": "pip install onnxruntime"}


def _preprocesses(gcc: str, header: str, flags=()) -> bool:
    """True when `gcc` finds `header` (with `flags`)."""
    import subprocess
    done = subprocess.run([gcc, *flags, "-E", "-x", "c", "-", "-o", os.devnull], input=f"#include <{header}>\n",
                          capture_output=True, text=True)
    return done.returncode == 0


@cli.command()
def doctor():
    """Which toolchains, C libraries, emulators, flash probes and test oracles are present."""
    import importlib.util
    import shutil as sh
    from .boards import list_boards, load_board
    required, libcs = {}, {}
    for name in list_boards():
        b = load_board(name)
        required.setdefault(b.toolchain.tool("gcc"), b.toolchain.install)
        required.setdefault(b.emulator.program, b.emulator.install)
        libcs.setdefault(b.toolchain.prefix, b.toolchain.tool("gcc"))
    required.setdefault("make", "apt-get install make")
    missing = 0
    click.echo("needed to compile and run in the emulator:")
    for tool, install in required.items():
        path = sh.which(tool)
        missing += path is None
        click.echo(f"  {'ok' if path else 'MISSING':<8}{tool:<36}{path or 'install: ' + install}")
    for gcc in libcs.values():
        ok = sh.which(gcc) is not None and _preprocesses(gcc, "stdint.h", ("-ffreestanding",))
        missing += not ok
        click.echo(f"  {'ok' if ok else 'MISSING':<8}{gcc + ' <stdint.h>':<36}"
                   f"{'freestanding headers found' if ok else 'reinstall the cross compiler'}")
    click.echo("C libraries (optional: mcutool's firmware links none; for your own code on the board):")
    for prefix, gcc in libcs.items():
        lib, flags, install = LIBC_PACKAGES.get(prefix, ("C library", (), f"the C library for {gcc}"))
        ok = sh.which(gcc) is not None and _preprocesses(gcc, "string.h", flags)
        click.echo(f"  {'ok' if ok else 'absent':<8}{lib:<36}{'<string.h> found' if ok else 'install: ' + install}")
    click.echo("flash probes (one is needed to program a board; mcutool flash --probe chooses):")
    for tool, install in PROBE_TOOLS.items():
        path = sh.which(tool)
        click.echo(f"  {'ok' if path else 'absent':<8}{tool:<36}{path or 'install: ' + install}")
    click.echo("test oracles (python -m pytest compares with them; not needed to compile):")
    for module, install in ORACLES.items():
        found = importlib.util.find_spec(module) is not None
        click.echo(f"  {'ok' if found else 'absent':<8}{module:<36}{'importable' if found else 'install: ' + install}")
    if missing:
        raise UserError(f"{missing} tool(s) needed to compile or emulate are missing; bash install.sh installs them all.")


def main(argv=None) -> int:
    """Entry point: user errors become one clear paragraph and exit code 1, never a traceback."""
    import warnings
    warnings.showwarning = lambda message, *args, **kwargs: click.echo(f"warning: {message}", err=True)
    try:
        cli.main(args=argv, prog_name="mcutool", standalone_mode=False)
    except UserError as exc:
        click.echo(f"error: {exc}", err=True)
        return 1
    except click.exceptions.Abort:
        click.echo("aborted", err=True)
        return 130
    except click.ClickException as exc:
        exc.show()
        return exc.exit_code
    except Exception as exc:  # a bug in mcutool: say so plainly; the traceback is one variable away
        if os.environ.get("MCUTOOL_DEBUG"):
            raise
        click.echo(f"internal error: {type(exc).__name__}: {exc}\nThis is a bug in mcutool {__version__}; "
                   "rerun with MCUTOOL_DEBUG=1 to see the traceback and report it.", err=True)
        return 70
    return 0


if __name__ == "__main__":
    sys.exit(main())
