"""The README's exporter table (issue 14): every model of tests/exporters/ in every form its exporters write,
compiled for stm32f746 and run in QEMU.

    python benchmarks/exports.py                  # print the table (and the failures' messages)
    python benchmarks/exports.py --write-readme   # replace the table in README.md
    python benchmarks/exports.py --images 20 --only keras,qdq_per_channel
    python benchmarks/exports.py --cells build/exports.json [--only ...]    # resumable: measured cells are kept

Per form and model: `compiles` (yes, or the first line of mcutool's error), `bit-exact` (the firmware's int8
outputs in QEMU == mcutool's reference on the first --images test inputs; for Keras also the reference == TFLite's
own kernels on all of them:
the tflite-micro interpreter, or the TensorFlow that converted the model (.expected.npz) where TFLite Micro has no
kernel), and `agreement` against the exporter's own runtime on the test inputs: Keras: the TFLite outputs (so the
same as bit-exact); ONNX: top-1 agreement of mcutool's reference (what the firmware computes) with onnxruntime and
max / mean |difference| in output LSB. Test inputs are structured images (tests/structured_images.py, seed 2000;
20 for the two trained models' agreement, --images for the rest and for every QEMU run); float exports are
calibrated on 32 others (seed 1000), and so are QDQ exports whose import leaves ops in float (the tiny ViT's
LayerNorm): --calib quantizes those islands, marked in the compiles column. Files not present (the float exports
not checked in: make them with tests/exporters/make_torch.py) are marked "not made".
"""
from __future__ import annotations

import argparse
import json
import re
import sys
import tempfile
import traceback
import warnings
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests" / "exporters"))
import cases  # noqa: E402

UNMEASURED = "not measured yet"  # a cell --cells resumes later
BEGIN, END = "<!-- exporter table: python benchmarks/exports.py --write-readme -->", "<!-- end of exporter table -->"
TITLES = {"keras": "Keras → TFLite int8 (c)", "torchscript": "torch.onnx dynamo=False, float (a)",
          "dynamo": "torch.onnx dynamo=True, float (a)", "qdq_per_channel": "ORT QDQ per-channel (b)",
          "qdq_per_tensor": "ORT QDQ per-tensor (b)"}


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    return re.sub(r"\s+", " ", text).replace(f"{ROOT}/", "")[:160]


def measure(form: str, name: str, images: int, work: Path) -> dict:
    """One cell: {'compiles', 'bit_exact', 'agreement', 'arena', 'instructions', 'message'}."""
    from mcutool.compiler import Options, compile_model, firmware_graph, read_report, run_build
    from mcutool.errors import UserError
    from mcutool import reference

    path = cases.model_path(form, name)
    if path is None:
        return {"compiles": "not made"}
    out = work / f"{form}-{name}"
    opts = Options()
    if form in ("torchscript", "dynamo") or form.startswith("qdq") and _has_float_islands(path):
        import onnx
        input_name = onnx.load(str(path), load_external_data=False).graph.input[0].name
        opts = Options(calib=str(cases.write_calibration(work / f"{form}-{name}-calib.npz", input_name, form, name)))
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            compile_model(path, "stm32f746", out, opts)
            graph, _ = firmware_graph(path, opts)
    except UserError as exc:
        return {"compiles": "no", "message": _first_line(exc)}
    except Exception as exc:  # noqa: BLE001 (an internal error is a result here, reported with its type)
        return {"compiles": "no", "message": f"internal error: {type(exc).__name__}: {_first_line(exc)}"}
    report = read_report(out)
    spec_in, spec_out = report["io"]["inputs"][0], report["io"]["outputs"][0]
    n = 20 if name in cases.TRAINED else images
    xf = cases.float_inputs(form, name, n)
    xq = [cases.quantize_input(x, spec_in["scale"], spec_in["zero_point"]) for x in xf]
    cell = {"compiles": "yes", "arena": report["memory"]["arena_bytes"]}
    if opts.calib and form.startswith("qdq"):
        cell["calib"] = True  # the table says the QDQ model's float islands were quantized with --calib
    ours, exact = [], True
    try:
        for i, x in enumerate(xq):
            want = reference.run(graph, {graph.inputs[0]: x})[graph.outputs[0]]
            ours.append(want.astype(np.int64))
            if i < images:  # QEMU on the first `images`; the trained models' other inputs on the reference only
                (y,), info = run_build(out, [x])
                exact &= np.array_equal(y, want)
                cell["instructions"] = info["instructions"]
    except Exception as exc:  # noqa: BLE001
        cell.update(bit_exact="no run", message=f"run: {type(exc).__name__}: {_first_line(exc)}")
        return cell
    if form == "keras":
        oracle = _tflite_oracle(path, name, xq)
        cell["bit_exact"] = "yes" if exact and oracle == "equal" else f"no ({oracle})" if exact else "no (firmware)"
        cell["agreement"] = "= TFLite" if oracle == "equal" else "—"
        return cell
    cell["bit_exact"] = "yes" if exact else "no"
    ort = cases.onnxruntime_outputs(path, xf).reshape(n, -1)
    ours = (np.stack(ours).reshape(n, -1) - spec_out["zero_point"]) * spec_out["scale"]
    lsb = np.abs(ours - ort) / spec_out["scale"]
    top1 = float(np.mean(ours.argmax(1) == ort.argmax(1)))
    cell["agreement"] = f"top-1 {top1:.0%} of {n}, LSB max {lsb.max():.1f} / mean {lsb.mean():.2f}"
    return cell


def _has_float_islands(path: Path) -> bool:
    """A QDQ model whose import leaves ops in float (compiled with --calib, which quantizes them)."""
    from mcutool.frontends import load_model
    from mcutool.quantize.qdq_islands import island_ops
    return bool(island_ops(load_model(path)))


def _tflite_oracle(path: Path, name: str, xq: list[np.ndarray]) -> str:
    """'equal' when mcutool's reference equals TFLite's kernels on the inputs, else what differs."""
    from mcutool import reference
    from mcutool.frontends import load_model
    graph = load_model(path)
    ours = [reference.run(graph, {graph.inputs[0]: x})[graph.outputs[0]] for x in xq]
    try:
        theirs, who = cases.tflite_micro_outputs(path, xq), "tflite-micro"
    except Exception:  # noqa: BLE001 (TFLite Micro lacks a kernel: the converter's TensorFlow, stored)
        data = np.load(path.with_suffix(".expected.npz"))
        ours = [reference.run(graph, {graph.inputs[0]: x})[graph.outputs[0]] for x in data["x"]]
        theirs, who = list(data["y"]), "TF BUILTIN_REF"
    same = all(np.array_equal(a, b) for a, b in zip(ours, theirs))
    return "equal" if same else f"reference != {who}"


def table(results: dict) -> str:
    lines = ["| exporter | model | compiles | bit-exact | agreement | arena | instructions |",
             "|---|---|---|---|---|---|---|"]
    for (form, name), c in results.items():
        compiles = c["compiles"] if c["compiles"] in ("yes", "not made", UNMEASURED) else f"no: {c.get('message', '')}"
        if c.get("calib"):
            compiles += " (--calib: its float islands quantized)"
        arena = f"{c['arena']:,} B" if "arena" in c else "—"
        instr = f"{c['instructions']:,}" if c.get("instructions") else "—"
        lines.append(f"| {TITLES[form]} | {name} | {compiles} | {c.get('bit_exact', '—')} | "
                     f"{c.get('agreement', '—')} | {arena} | {instr} |")
    ok = sum(c["compiles"] == "yes" for c in results.values())
    exact = sum(c.get("bit_exact") == "yes" for c in results.values())
    made = sum(c["compiles"] not in ("not made", UNMEASURED) for c in results.values())
    unmeasured = sum(c["compiles"] == UNMEASURED for c in results.values())
    head = (f"{ok} of {made} exported files{' measured' if unmeasured else ''} compile for stm32f746; {exact} run "
            f"bit-exact in QEMU "
            f"(`python benchmarks/exports.py`, board stm32f746, QEMU mps2-an500)"
            + (f"; {unmeasured} not measured in this run" if unmeasured else "") + ".\n\n")
    return head + "\n".join(lines) + "\n"


def write_readme(text: str) -> None:
    from op_table import replace_readme_block  # benchmarks/ is on sys.path when this script runs
    replace_readme_block(BEGIN, END, text, "exporter table")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--write-readme", action="store_true")
    ap.add_argument("--images", type=int, default=4, help="test inputs per untrained model (trained ones: 20)")
    ap.add_argument("--only", default="", help="comma-separated forms and/or models")
    ap.add_argument("--cells", type=Path, help="a JSON file of measured cells: every cell measured is saved to it, "
                    "and the cells in it are taken from it, not measured again (the table is written in full; "
                    "delete the file to measure everything anew)")
    args = ap.parse_args()
    only = set(filter(None, args.only.split(",")))
    saved = json.loads(args.cells.read_text()) if args.cells and args.cells.exists() else {}
    results = {}
    with tempfile.TemporaryDirectory(prefix="mcutool-exports-") as tmp:
        for form in cases.FORMS:
            for name in cases.MODELS:
                if f"{form}/{name}" in saved:
                    results[form, name] = saved[f"{form}/{name}"]
                    continue
                if only and not ({form, name} & only):
                    continue
                try:
                    results[form, name] = measure(form, name, args.images, Path(tmp))
                except Exception as exc:  # noqa: BLE001 (the harness itself must not hide the rest)
                    traceback.print_exc()
                    results[form, name] = {"compiles": "no", "message": f"harness: {_first_line(exc)}"}
                print(form, name, results[form, name], flush=True)
                if args.cells:
                    saved[f"{form}/{name}"] = results[form, name]
                    args.cells.write_text(json.dumps(saved, indent=1) + "\n")
    if args.cells:  # the whole grid, in order: what neither the file nor this run measured is said so
        results = {(f, n): results.get((f, n), {"compiles": UNMEASURED}) for f in cases.FORMS for n in cases.MODELS}
    text = table(results)
    if args.write_readme:
        write_readme(text)
    print(text, end="")


if __name__ == "__main__":
    main()
