"""The yardstick for mcutool's post-training quantization: TFLite's own converter on the same images.

Run it where TensorFlow 2.14 is installed (it is not an mcutool dependency), e.g.
    python -m venv /tmp/tfenv && /tmp/tfenv/bin/pip install "tensorflow-cpu==2.14.1" "numpy<2"
    /tmp/tfenv/bin/python benchmarks/tflite_converter_int8.py ../shared/models/resnet8_float.tflite r8_tf_int8.tflite
It quantizes the float model with TFLite's calibrator (the converter's full-integer path: min/max ranges, int8
per-channel conv weights, float I/O with QUANTIZE/DEQUANTIZE at the border) on the 200 calibration images
that mcutool's agreement test uses (tests/structured_images.py, seed 1). Compare with
    python benchmarks/ptq_agreement.py --tflite-int8 r8_tf_int8.tflite
"""
import sys
from pathlib import Path

import tensorflow as tf
from tensorflow.lite.python.optimize import calibrator

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
from structured_images import structured_images  # noqa: E402


def main(model: str, out: str, samples: int = 200) -> None:
    cal = structured_images(samples, 1)

    def gen():
        for i in range(len(cal)):
            yield [cal[i:i + 1]]
    q = calibrator.Calibrator(Path(model).read_bytes()).calibrate_and_quantize(
        gen, tf.float32, tf.float32, False, activations_type=tf.int8)
    Path(out).write_bytes(q)
    print(f"wrote {out} ({len(q):,} bytes), calibrated on {samples} structured images")


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
