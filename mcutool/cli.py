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
def inspect(model, as_json, memory):
    """Layers, shapes, dtypes, MACs, parameters and activation bytes of MODEL (.tflite or .onnx)."""
    from .frontends import load_model
    from .summary import model_summary

    summary = model_summary(load_model(model))
    summary["model"] = os.path.basename(model)
    if as_json:
        click.echo(json.dumps(summary, indent=2))
        return
    click.echo(_summary_table(summary))
    if memory:
        click.echo(_memory_profile(summary))


def _fmt_shape(shape) -> str:
    return "x".join(str(d) for d in shape) if shape else "-"


def _summary_table(s: dict) -> str:
    header = ("#", "layer", "op", "output", "dtype", "MACs", "params", "act. bytes", "live bytes")
    rows = [(str(i), r["name"], r["op"], _fmt_shape(r["out_shape"]), r["dtype"], f"{r['macs']:,}",
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
    return "\n".join(out)


def _memory_profile(s: dict, width: int = 50) -> str:
    peak = max((r["live_bytes"] for r in s["layers"]), default=0) or 1
    name_w = max((len(r["name"]) for r in s["layers"]), default=4)
    out = ["", "live bytes per layer (layer by layer, no patches)"]
    for r in s["layers"]:
        bar = "#" * max(1, round(width * r["live_bytes"] / peak))
        out.append(f"  {r['name']:<{name_w}}  {r['live_bytes']:>10,}  {bar}")
    return "\n".join(out)


def _progress(message: str) -> None:
    click.echo(f"  {message} ...", err=True)


def _compile_options(fn):
    fn = click.option("--board", required=True, help="Target board (mcutool boards lists them).")(fn)
    fn = click.option("-o", "out", type=click.Path(file_okay=False), default=None,
                      help="Project folder (default ./build/<model>-<board>/).")(fn)
    fn = click.option("--emit", type=click.Choice(["firmware", "library"]), default="firmware",
                      help="firmware: a complete project and ELF; library: model.c/h + runtime for your project.")(fn)
    fn = click.option("--no-build", is_flag=True, help="Generate the project without building it.")(fn)
    fn = _binarize_option(fn)
    return fn


def _binarize_option(fn):
    """--binarize auto|off|LAYER,... (DESIGN.md §8). Kept in the click context (ctx.meta) rather than as a
    parameter of every command, so commands that compile read it through _compile alone."""
    def remember(ctx, _param, value):
        ctx.meta["binarize"] = value
        return value
    return click.option("--binarize", default="auto", show_default=True, expose_value=False, callback=remember,
                        help="Binary (1-bit) layers: auto (convs with +-alpha weights after a Sign), off (all int8), "
                             "or a comma-separated list of conv layers to binarize.")(fn)


def _binarize_spec() -> str:
    ctx = click.get_current_context(silent=True)
    return ctx.meta.get("binarize", "auto") if ctx is not None else "auto"


def _compile(model, board, out, emit, no_build, profile_layers=False):
    from pathlib import Path
    from .compiler import Options, compile_model, default_out_dir
    model_path = Path(model)
    out_dir = Path(out) if out else default_out_dir(model_path, board)
    click.echo(f"compiling {model_path.name} for {board} into {out_dir}", err=True)
    opts = Options(emit=emit, build=not no_build, binarize=_binarize_spec(), profile_layers=profile_layers)
    report = compile_model(model_path, board, out_dir, opts, _progress)
    return out_dir, report


def _summary_line(report: dict) -> str:
    m, f = report["memory"], report["flash"]
    parts = [f"MACs {report['macs']:,}", f"arena {m['arena_bytes']:,} B (layer-wise bound {m['layerwise_peak_bytes']:,})"]
    if "sram_used_bytes" in m:
        parts.append(f"SRAM {m['sram_used_bytes']:,} / {m['sram_limit_bytes']:,} B")
    if "used_bytes" in f:
        parts.append(f"flash {f['used_bytes']:,} / {f['limit_bytes']:,} B")
    return ", ".join(parts)


@cli.command("compile")
@click.argument("model", type=click.Path())
@_compile_options
def compile_cmd(model, board, out, emit, no_build):
    """Generate C for MODEL on BOARD and build it; writes DIR/report.json."""
    out_dir, report = _compile(model, board, out, emit, no_build)
    click.echo(_summary_line(report))
    moved = (report.get("binarization") or {}).get("output_movement")
    if moved:
        click.echo(f"binarized {', '.join(report['binarization']['binary_layers'])}: outputs moved by "
                   f"{moved['mean_abs_lsb']} LSB on average (max {moved['max_abs_lsb']}), top-1 agreement "
                   f"{moved['top1_agreement']:.0%} on {moved['samples']} random inputs")
    click.echo(f"project: {out_dir}  (report.json, make run, make flash)")


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
def run(project, input_path, output_path):
    """Run the built firmware in PROJECT once in the board's emulator."""
    from pathlib import Path
    import numpy as np
    from .compiler import read_report, run_build
    out = Path(project)
    report = read_report(out)
    inputs = _load_inputs(input_path, report["io"]["inputs"])
    outputs, info = run_build(out, inputs)
    if output_path:
        if output_path.endswith(".npz"):
            np.savez(output_path, **{s["name"]: y for s, y in zip(report["io"]["outputs"], outputs)})
        else:
            np.save(output_path, outputs[0])
    click.echo(f"instructions per inference: {info['instructions']:,} ({info['macs_per_instruction']} MACs/instruction), "
               f"stack high water {info['stack_high_water_bytes']} B")
    if not output_path:
        for s, y in zip(report["io"]["outputs"], outputs):
            click.echo(f"{s['name']}: {y.reshape(-1).tolist()}")


def _random_inputs(report: dict, rng):
    import numpy as np
    out = []
    for s in report["io"]["inputs"]:
        info = np.iinfo(s["dtype"])
        out.append(rng.integers(info.min, info.max + 1, size=s["shape"]).astype(s["dtype"]))
    return out


@cli.command()
@click.argument("model", type=click.Path())
@_compile_options
@click.option("--samples", default=5, show_default=True, help="Random inputs to compare.")
@click.option("--seed", default=0, show_default=True)
def validate(model, board, out, emit, no_build, samples, seed):
    """Compile MODEL, run SAMPLES random inputs in the emulator, compare bit for bit with the reference."""
    import numpy as np
    from . import reference
    from .compiler import run_build
    from .frontends import load_model
    from .binarize import binarize, parse_selection
    out_dir, report = _compile(model, board, out, "firmware", False)
    graph, _ = binarize(load_model(model), parse_selection(_binarize_spec()))  # what the firmware computes
    rng = np.random.default_rng(seed)
    bad = 0
    with click.progressbar(range(samples), label="  emulating", file=sys.stderr) as bar:
        for i in bar:
            xs = _random_inputs(report, rng)
            ys, info = run_build(out_dir, xs)
            want = reference.run(graph, dict(zip(graph.inputs, xs)))
            for name, y in zip(graph.outputs, ys):
                if not np.array_equal(y, want[name]):
                    bad += 1
                    diff = int(np.max(np.abs(y.astype(np.int64) - want[name].astype(np.int64))))
                    click.echo(f"\nsample {i}: output {name!r} differs from the reference in "
                               f"{int(np.sum(y != want[name]))} values (max {diff} LSB)", err=True)
    if bad:
        raise UserError(f"validation failed: {bad} of {samples} samples differ from the reference on {board}.")
    click.echo(f"bit-exact: {samples} of {samples} random inputs equal the reference on {board} "
               f"({info['instructions']:,} instructions per inference)")


@cli.command()
@click.argument("model", type=click.Path())
@_compile_options
def bench(model, board, out, emit, no_build):
    """Instructions per inference, MACs/instruction, arena, SRAM and flash of MODEL on BOARD."""
    import numpy as np
    from .compiler import run_build
    out_dir, report = _compile(model, board, out, "firmware", False, profile_layers=True)
    _, info = run_build(out_dir, _random_inputs(report, np.random.default_rng(0)))
    m, f = report["memory"], report["flash"]
    rows = [("model", report["model"]), ("board", f"{board} ({info['emulator']}, -icount shift=0)"),
            ("instructions/inference", f"{info['instructions']:,}"),
            ("MACs", f"{report['macs']:,}"),
            ("MACs/instruction", f"{info['macs_per_instruction']:.3f}"),
            ("arena", f"{m['arena_bytes']:,} B (layer-wise bound {m['layerwise_peak_bytes']:,} B)"),
            ("SRAM used", f"{m['sram_used_bytes']:,} B of {m['sram_limit_bytes']:,} (stack reserve {m['stack_bytes']:,}, "
                          f"high water {info['stack_high_water_bytes']:,})"),
            ("flash used", f"{f['used_bytes']:,} B of {f['limit_bytes']:,} (code {f['code_bytes']:,}, weights {f['weights_bytes']:,})")]
    for k, v in rows:
        click.echo(f"{k:<24}{v}")
    click.echo(_layer_table(report, info))
    click.echo("(QEMU counts instructions, not cycles: it is not cycle accurate.)")


def _layer_table(report: dict, info: dict) -> str:
    """Per-layer instructions (a second, layer-by-layer inference) with MACs/instruction."""
    macs = {r["name"]: r["macs"] for r in report["layers"]}
    rows = info.get("layers", [])
    if not rows:
        return ""
    w = max(len(r["name"]) for r in rows)
    wo = max(len(r["op"]) for r in rows)
    out = ["", f"{'layer':<{w}}  {'op':<{wo}}  {'instructions':>12}  {'MACs/instr':>10}"]
    for r in rows:
        m = macs.get(r["name"], 0)
        ratio = f"{m / r['instructions']:.3f}" if m and r["instructions"] else "-"
        out.append(f"{r['name']:<{w}}  {r['op']:<{wo}}  {r['instructions']:>12,}  {ratio:>10}")
    binary = [r for r in rows if r["op"].startswith("binary_")]
    if binary:
        out.append(f"binary layers: {sum(r['instructions'] for r in binary):,} instructions in {len(binary)} layers")
    return "\n".join(out)


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
    from .compiler import read_report
    out = Path(project)
    board = load_board(read_report(out)["board"])
    elf = out / "board.elf"
    if not elf.exists():
        raise UserError(f"{out} has no board.elf: compile it without --no-build / --emit library first.")
    probes = [probe] if probe else [p for p in PROBES if board.flash_commands(str(elf), p)][:1]
    commands = board.flash_commands(str(elf), probes[0]) if probes else []
    if not commands:
        raise UserError(f"board {board.name} has no {probe or 'flash'} method in its board file.")
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


@cli.command()
def doctor():
    """Which toolchains, emulators and probes are present."""
    import shutil as sh
    from .boards import list_boards, load_board
    needed = {}
    for name in list_boards():
        b = load_board(name)
        needed.setdefault(b.toolchain.tool("gcc"), b.toolchain.install)
        needed.setdefault(b.emulator.program, b.emulator.install)
    needed.setdefault("openocd", "apt-get install openocd")
    needed.setdefault("make", "apt-get install make")
    missing = 0
    for tool, install in needed.items():
        path = sh.which(tool)
        missing += path is None
        click.echo(f"{'ok' if path else 'MISSING':<8}{tool:<28}{path or 'install: ' + install}")
    if missing:
        raise UserError(f"{missing} tool(s) missing; bash install.sh installs them all.")


def main(argv=None) -> int:
    """Entry point: user errors become one clear paragraph and exit code 1, never a traceback."""
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
