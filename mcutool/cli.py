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
