"""Make a VWW-shaped float network for the mixed-precision benchmark (issue 15, must-show 2): MLPerf Tiny's
visual-wake-words model shape -- MobileNetV1 at width 0.25 (8 filters first), 96x96x3 input, 2 classes -- briefly
trained, because random weights make SQNR and agreement meaningless (DESIGN.md §11).

    /opt/tfvenv/bin/python tests/converter_models/make_vww_float.py   # writes tests/converter_models/vww_float.tflite

(or a venv with `pip install "tensorflow-cpu==2.14.1" "numpy<2"`). CI never runs this (it does not install
TensorFlow): the .tflite it writes is checked in.

Network (MLPerf Tiny's benchmark/training/visual_wake_words/vww_model.py layout): conv 3x3/2 with 8 filters, then
13 depthwise-separable blocks (depthwise 3x3 + pointwise 1x1, each batch-normalised and ReLU; 16, 32/2, 32, 64/2,
64, 128/2, 5x128, 256/2, 256 filters), average pooling over the remaining 3x3, flatten, dense 2 with softmax. The
converter folds the batch norms into the convolutions: the float .tflite holds CONV_2D, DEPTHWISE_CONV_2D,
AVERAGE_POOL_2D, RESHAPE, FULLY_CONNECTED and SOFTMAX.

Task: tests/structured_images.py at 96x96, values in [0, 1] (scale=1.0, the range the model takes). Class 1
("something with edges") is kinds 2 and 3 (shapes, textures), class 0 kinds 0 and 1 (smooth fields, gradients).
Trained for 5 epochs (batch-norm momentum 0.9, so that its running statistics settle in so few steps) on
2,000 images of seed 3: seeds 1 and 2 (the benchmarks' calibration and test images) were never seen in
training. The script prints the float model's accuracy on 500 images of seed 2 (87.2 %) and how its predictions
split between the classes (38.4 % class 1).
"""
from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import tensorflow as tf

assert tf.__version__ == "2.14.1", f"pinned to tensorflow-cpu 2.14.1, found {tf.__version__}"
assert np.__version__.startswith("1."), f"pinned to numpy<2 (TensorFlow 2.14's), found {np.__version__}"
OUT = Path(__file__).resolve().parent / "vww_float.tflite"
sys.path.insert(0, str(OUT.parent.parent))
from structured_images import structured_images  # noqa: E402

keras = tf.keras
layers = keras.layers
SIZE, TRAIN_SEED, TEST_SEED, TRAIN_IMAGES, EPOCHS = 96, 3, 2, 2000, 5
# (filters, stride) of the 13 depthwise-separable blocks of MobileNetV1, at width 0.25
BLOCKS = [(16, 1), (32, 2), (32, 1), (64, 2), (64, 1), (128, 2), (128, 1), (128, 1), (128, 1), (128, 1),
          (128, 1), (256, 2), (256, 1)]


def images(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """n structured images in [0, 1] and their labels: 1 for shapes and textures (kinds 2, 3), 0 otherwise."""
    x = structured_images(n, seed, size=SIZE, scale=1.0)
    return x, (np.arange(n) % 4 >= 2).astype(np.int32)


def _bn_relu(x):
    return layers.ReLU()(layers.BatchNormalization(momentum=0.9)(x))


def mobilenet_v1_025(batch_size: int | None) -> keras.Model:
    reg = keras.regularizers.l2(1e-4)
    inp = keras.Input((SIZE, SIZE, 3), batch_size=batch_size, name="image")
    x = _bn_relu(layers.Conv2D(8, 3, strides=2, padding="same", kernel_regularizer=reg)(inp))
    for filters, stride in BLOCKS:
        x = _bn_relu(layers.DepthwiseConv2D(3, strides=stride, padding="same", depthwise_regularizer=reg)(x))
        x = _bn_relu(layers.Conv2D(filters, 1, padding="same", kernel_regularizer=reg)(x))
    x = layers.AveragePooling2D(pool_size=tuple(x.shape[1:3]))(x)
    out = layers.Dense(2, activation="softmax")(layers.Flatten()(x))
    return keras.Model(inp, out)


def main() -> None:
    keras.utils.set_random_seed(1)
    x, y = images(TRAIN_IMAGES, TRAIN_SEED)
    train = mobilenet_v1_025(None)  # trained on batches of 32; the converted copy has batch 1, as MCU models do
    train.compile(optimizer=keras.optimizers.Adam(1e-3), loss="sparse_categorical_crossentropy",
                  metrics=["accuracy"])
    train.fit(x, y, batch_size=32, epochs=EPOCHS, verbose=2)
    model = mobilenet_v1_025(1)
    model.set_weights(train.get_weights())
    xt, yt = images(500, TEST_SEED)
    pred = model.predict(xt, batch_size=1, verbose=0).argmax(-1)
    print(f"float accuracy on 500 images of seed {TEST_SEED}: {np.mean(pred == yt) * 100:.1f} %, "
          f"predicted class 1 for {np.mean(pred) * 100:.1f} %")
    data = tf.lite.TFLiteConverter.from_keras_model(model).convert()
    OUT.write_bytes(data)
    print(f"{OUT.name}: {len(data):,} bytes, {model.count_params():,} parameters")


if __name__ == "__main__":
    main()
