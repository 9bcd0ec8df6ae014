"""Float vs int8 agreement of mcutool's post-training quantization on ResNet-8 (issue 4, must-show 1).

    python benchmarks/ptq_agreement.py [--tflite-int8 MODEL]

Calibrates on 200 structured images (tests/structured_images.py, seed 1) -- with mcutool's default calibration
(auto: per-tensor ranges and bias correction) and with plain min/max -- and measures top-1 agreement and output
SQNR against the float model on 500 others (seed 2). With --tflite-int8, also measures an int8 model made
from the same float model and calibration images by another tool (benchmarks/tflite_converter_int8.py: TFLite's
own converter), run in tflite-runtime 2.14 (BUILTIN_REF kernels), on the same 500 images.
"""
import argparse
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]
from mcutool.frontends import load_model  # noqa: E402
from mcutool.quantize.ptq import agreement_report, quantize_model, run_batches  # noqa: E402
from structured_images import structured_images  # noqa: E402

MODEL = ROOT.parent / "shared" / "models" / "resnet8_float.tflite"


def tflite_outputs(path: Path, xs: np.ndarray) -> np.ndarray:
    from tflite_runtime.interpreter import Interpreter, OpResolverType
    it = Interpreter(model_path=str(path), experimental_op_resolver_type=OpResolverType.BUILTIN_REF)
    it.allocate_tensors()
    i, o = it.get_input_details()[0]["index"], it.get_output_details()[0]["index"]
    out = []
    for x in xs:
        it.set_tensor(i, x[None])
        it.invoke()
        out.append(it.get_tensor(o)[0].copy())
    return np.array(out)


def figures(f: np.ndarray, q: np.ndarray) -> str:
    agree = float(np.mean(f.argmax(1) == q.argmax(1)))
    sqnr = 10 * np.log10(np.sum(f ** 2) / np.sum((f - q) ** 2))
    return f"top-1 agreement {agree * 100:.1f} %, output SQNR {sqnr:.1f} dB"


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--tflite-int8", type=Path, default=None)
    args = ap.parse_args()
    g = load_model(MODEL)
    cal, test = structured_images(200, 1), structured_images(500, 2)
    for method in ("auto", "minmax"):
        qg, report = quantize_model(g, {g.inputs[0]: cal}, method)
        (row,) = agreement_report(g, qg, {g.inputs[0]: test})
        if method == "auto":
            print(f"float model's classes on the 500 test images: {row['float_classes']}")
        print(f"mcutool quantize {'(default, auto)' if method == 'auto' else '--method minmax'}: ".ljust(42)
              + f"top-1 agreement {row['top1_agreement'] * 100:.1f} %, output SQNR {row['sqnr_db']:.1f} dB"
              + (f" (kept: {report['method']}, ranges {report.get('ranges', 'minmax')}, "
                 f"{report.get('bias_corrected_layers', 0)} biases corrected)" if method == "auto" else ""))
    if args.tflite_int8:
        f = np.concatenate([v[g.outputs[0]] for v in run_batches(g, {g.inputs[0]: test})])
        print("TFLite converter int8:".ljust(42) + f"{figures(f, tflite_outputs(args.tflite_int8, test))}")


if __name__ == "__main__":
    main()
