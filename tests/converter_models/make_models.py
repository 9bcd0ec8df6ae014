"""Make the TFLite converter's models the tests compile (issue: every model TFLite Micro runs), with the
converter's own quantizer: int8 (and 16x8) full-integer models with int8 (int16) I/O.

    python -m venv /tmp/tf && /tmp/tf/bin/pip install "tensorflow-cpu==2.14.1" "numpy<2"
    /tmp/tf/bin/python tests/converter_models/make_models.py       # writes tests/converter_models/*.tflite

CI never runs this (it does not install TensorFlow): the small .tflite files it writes are checked in. Weights
are Keras' random initialisation with a fixed seed; classifiers are then trained for 8 epochs on random features
labelled by a fixed random projection (images: by their mean intensity) (so their predictions spread over the classes); the representative data
are random normal features from another fixed seed, the tests' inputs are drawn apart from both.
"""
from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import tensorflow as tf

assert tf.__version__ == "2.14.1", f"pinned to tensorflow-cpu 2.14.1, found {tf.__version__}"
OUT = Path(__file__).resolve().parent
keras = tf.keras
layers = keras.layers


def _representative(shape, count=64, seed=0, scale=1.0):
    rng = np.random.default_rng(seed)

    def gen():
        for _ in range(count):
            yield [rng.normal(0, scale, (1, *shape)).astype(np.float32)]
    return gen


def _fit(model, shape, classes=8, seed=2):
    """Train briefly on random features labelled by a fixed random projection, so the classifier spreads its
    predictions over the classes (DESIGN.md §11) instead of collapsing to one."""
    rng = np.random.default_rng(seed)
    x = rng.normal(0, 1, (512, *shape)).astype(np.float32)
    flat = x.reshape(len(x), -1)
    if len(shape) == 3:  # images: a conv + global-pool net learns the mean intensity, in 8 quantile bins
        score = flat.mean(-1)
        y = np.digitize(score, np.quantile(score, np.linspace(0, 1, classes + 1)[1:-1]))
    else:
        y = (flat @ rng.normal(0, 1, (flat.shape[1], classes))).argmax(-1)
    model.compile(optimizer=keras.optimizers.Adam(0.01), loss="sparse_categorical_crossentropy")
    model.fit(x, y, batch_size=32, epochs=8, verbose=0)


def _convert(model, shape, name, int16=False, scale=1.0):
    if model.output_shape[-1] == 8 and len(model.output_shape) == 2:
        _fit(model, shape)
    conv = tf.lite.TFLiteConverter.from_keras_model(model)
    conv.optimizations = [tf.lite.Optimize.DEFAULT]
    conv.representative_dataset = _representative(shape, scale=scale)
    if int16:
        conv.target_spec.supported_ops = [tf.lite.OpsSet.EXPERIMENTAL_TFLITE_BUILTINS_ACTIVATIONS_INT16_WEIGHTS_INT8]
        conv.inference_input_type = conv.inference_output_type = tf.int16
    else:
        conv.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
        conv.inference_input_type = conv.inference_output_type = tf.int8
    data = conv.convert()
    (OUT / f"{name}.tflite").write_bytes(data)
    print(f"{name}.tflite: {len(data):,} bytes")


def lstm_keyword():
    """Conv1D-free keyword LSTM: 8 frames x 12 features -> LSTM(16) -> Dense(8) softmax. The converter writes
    UNIDIRECTIONAL_SEQUENCE_LSTM with its states as variable tensors."""
    inp = keras.Input((8, 12), batch_size=1)
    x = layers.LSTM(16)(inp)
    out = layers.Dense(8, activation="softmax")(x)
    _convert(keras.Model(inp, out), (8, 12), "lstm_int8")


def conv_16x8():
    inp = keras.Input((16, 16, 3), batch_size=1)
    x = layers.Conv2D(8, 3, padding="same", activation="relu")(inp)
    x = layers.DepthwiseConv2D(3, strides=2, padding="same", activation="relu")(x)
    x = layers.Conv2D(16, 1, activation="relu")(x)
    x = layers.GlobalAveragePooling2D()(x)
    out = layers.Dense(8, activation="softmax")(x)
    _convert(keras.Model(inp, out), (16, 16, 3), "conv_16x8", int16=True)


def _hard_swish(x):
    return layers.Multiply()([x, layers.ReLU(6.0)(x + 3.0) * (1.0 / 6.0)])


def mobilenet_v3_style():
    """HARD_SWISH activations and a squeeze-excitation block (MUL by a per-channel gate)."""
    inp = keras.Input((32, 32, 3), batch_size=1)
    x = _hard_swish(layers.Conv2D(16, 3, strides=2, padding="same")(inp))
    x = layers.DepthwiseConv2D(3, padding="same")(x)
    se = layers.GlobalAveragePooling2D(keepdims=True)(x)
    se = layers.Conv2D(8, 1, activation="relu")(se)
    se = layers.Conv2D(16, 1, activation="hard_sigmoid")(se)
    x = _hard_swish(layers.Multiply()([x, se]))
    x = layers.Conv2D(24, 1)(x)
    x = layers.GlobalAveragePooling2D()(x)
    out = layers.Dense(8, activation="softmax")(x)
    _convert(keras.Model(inp, out), (32, 32, 3), "mobilenet_v3_style")


def transpose_conv_resize():
    """An encoder-decoder: strided convs, TRANSPOSE_CONV, RESIZE_NEAREST_NEIGHBOR and RESIZE_BILINEAR."""
    inp = keras.Input((16, 16, 3), batch_size=1)
    x = layers.Conv2D(8, 3, strides=2, padding="same", activation="relu")(inp)
    x = layers.Conv2D(16, 3, strides=2, padding="same", activation="relu")(x)
    x = layers.Conv2DTranspose(8, 3, strides=2, padding="same", activation="relu")(x)
    x = layers.UpSampling2D(2, interpolation="nearest")(x)
    x = layers.Conv2D(4, 3, padding="same")(x)
    x = layers.Resizing(24, 24, interpolation="bilinear")(x)
    out = layers.Conv2D(2, 1)(x)
    _convert(keras.Model(inp, out), (16, 16, 3), "transpose_conv_resize")


def transformer_block():
    """One encoder block: multi-head self-attention (BATCH_MATMUL, SOFTMAX), layer normalization as TFLite lowers it
    (MEAN, SQUARED_DIFFERENCE, RSQRT, MUL, SUB, ADD) and a GELU-free MLP, on 8 tokens of 16 features."""
    inp = keras.Input((8, 16), batch_size=1)
    a = layers.MultiHeadAttention(num_heads=2, key_dim=8)(inp, inp)
    x = layers.LayerNormalization()(layers.Add()([inp, a]))
    m = layers.Dense(32, activation="relu")(x)
    m = layers.Dense(16)(m)
    x = layers.LayerNormalization()(layers.Add()([x, m]))
    x = layers.GlobalAveragePooling1D()(x)
    out = layers.Dense(8, activation="softmax")(x)
    _convert(keras.Model(inp, out), (8, 16), "transformer_block")


MODELS = {f.__name__: f for f in (lstm_keyword, conv_16x8, mobilenet_v3_style, transpose_conv_resize,
                                  transformer_block)}

if __name__ == "__main__":
    tf.random.set_seed(1)
    keras.utils.set_random_seed(1)
    for name in sys.argv[1:] or MODELS:
        MODELS[name]()
