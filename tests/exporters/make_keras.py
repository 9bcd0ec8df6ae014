"""Make the Keras exports of issue 14 (c): seven networks as Keras 3 writes them, converted with
`TFLiteConverter.from_keras_model`, `Optimize.DEFAULT`, a representative dataset, TFLITE_BUILTINS_INT8 and int8
I/O, nothing else (no batch-1 rebuild; the LSTM model declares a batch-1 Input, which its fused conversion needs).
The Conv1D+LSTM keyword model goes through tf_keras (Keras 2), as Keras 3 models with an LSTM do not convert to the
fused UNIDIRECTIONAL_SEQUENCE_LSTM.

    python3.11 -m venv /opt/tf219venv
    /opt/tf219venv/bin/pip install tensorflow-cpu==2.19.0 keras==3.15.1
    /opt/tf219venv/bin/pip install --no-deps tf_keras==2.19.0   # its dependency would add the full tensorflow
    /opt/tf219venv/bin/python tests/exporters/make_keras.py      # writes tests/exporters/keras/*.tflite

(tensorflow-cpu 2.16 with Keras 3 fails to convert: "missing attribute 'value'", a known TF 2.16 bug.) CI never
runs this (it installs no TensorFlow); the .tflite files are checked in, each with `<name>.expected.npz`: TFLite's
own outputs on 4 test inputs (see `expected`). Weights are Keras' random initialisation with fixed seeds;
MobileNetV3-small, ShuffleNetV2, MnasNet, MobileNetV2-0.35 and EfficientNet-B0 (64 px) are then trained briefly to
tell the four kinds of tests/structured_images.py apart, so top-1 agreement means something. The representative
data are structured images (seed 1000) in the model's own input range; tests draw theirs from other seeds.
"""
from __future__ import annotations

import os
import sys
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402
import keras  # noqa: E402
from keras import layers  # noqa: E402

PINS = {"tensorflow": (tf.__version__, "2.19.0"), "keras": (keras.__version__, "3.15.1")}
for name, (found, pinned) in PINS.items():
    assert found == pinned, f"pinned to {name} {pinned}, found {found}"

HERE = Path(__file__).resolve().parent
OUT = HERE / "keras"
sys.path.insert(0, str(HERE.parent))
sys.path.insert(0, str(HERE))
from structured_images import structured_images  # noqa: E402

CLASSES = 4  # the four kinds of structured image


def images(n: int, seed: int, size: int, lo: float, hi: float) -> np.ndarray:
    """Structured images scaled to [lo, hi] (the model's own input range)."""
    return structured_images(n, seed, size, 1.0) * (hi - lo) + lo


def train(model, size: int, lo: float, hi: float, epochs: int = 3, n: int = 512) -> None:
    """A brief training on structured images labelled by their kind (image i is of kind i % 4)."""
    x = images(n, 7, size, lo, hi)
    y = np.arange(n) % CLASSES
    model.compile(optimizer=keras.optimizers.Adam(1e-3), loss="sparse_categorical_crossentropy",
                  metrics=["accuracy"])
    hist = model.fit(x, y, batch_size=32, epochs=epochs, verbose=0, shuffle=True)
    print(f"  trained: accuracy {hist.history['accuracy'][-1]:.2f}")


def convert(model, name: str, representative) -> None:
    conv = tf.lite.TFLiteConverter.from_keras_model(model)
    conv.optimizations = [tf.lite.Optimize.DEFAULT]
    conv.representative_dataset = representative
    conv.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
    conv.inference_input_type = conv.inference_output_type = tf.int8
    data = conv.convert()
    OUT.mkdir(exist_ok=True)
    (OUT / f"{name}.tflite").write_bytes(data)
    print(f"{name}.tflite: {len(data):,} bytes")
    expected(name)


def expected(name: str, count: int = 4) -> None:
    """TFLite's own reference kernels (this TensorFlow's BUILTIN_REF) on test inputs (cases.float_inputs, seed
    2000, quantized with the model's input scale): `<name>.expected.npz` holds x and y, an oracle for the models
    TFLite Micro cannot run (int8 GELU, REDUCE_PROD) and a second one for the rest."""
    from cases import float_inputs, quantize_input
    path = OUT / f"{name}.tflite"
    xs, ys = [], []
    for xf in float_inputs("keras", name, count):
        it = tf.lite.Interpreter(model_path=str(path),
                                 experimental_op_resolver_type=tf.lite.experimental.OpResolverType.BUILTIN_REF)
        it.allocate_tensors()  # a fresh interpreter per input: an LSTM's state is not carried over
        d = it.get_input_details()[0]
        scale, zp = d["quantization"]
        x = quantize_input(xf, scale, zp)
        it.set_tensor(d["index"], x)
        it.invoke()
        xs.append(x)
        ys.append(it.get_tensor(it.get_output_details()[0]["index"]).copy())
    np.savez(OUT / f"{name}.expected.npz", x=np.stack(xs), y=np.stack(ys))


def image_representative(size: int, lo: float, hi: float, count: int = 64):
    x = images(count, 1000, size, lo, hi)

    def gen():
        for i in range(count):
            yield [x[i:i + 1]]
    return gen


# ---- the networks

def mobilenet_v3_small():
    keras.utils.set_random_seed(1)
    m = keras.applications.MobileNetV3Small(input_shape=(96, 96, 3), alpha=0.75, weights=None, classes=CLASSES,
                                            include_preprocessing=True)  # Rescaling: inputs 0..255
    train(m, 96, 0, 255)  # untrained, its logits span ~1e-6: a softmax input scale TFLite's Prepare refuses
    convert(m, "mobilenet_v3_small", image_representative(96, 0, 255))


def mobilenet_v2_035():
    keras.utils.set_random_seed(2)
    m = keras.applications.MobileNetV2(input_shape=(96, 96, 3), alpha=0.35, weights=None, classes=CLASSES)
    train(m, 96, -1, 1)  # MobileNetV2 takes inputs in [-1, 1]
    convert(m, "mobilenet_v2_035", image_representative(96, -1, 1))


def efficientnet_b0():
    keras.utils.set_random_seed(3)
    m = keras.applications.EfficientNetB0(input_shape=(64, 64, 3), weights=None, classes=CLASSES)
    train(m, 64, 0, 255)  # Rescaling + Normalization inside: inputs 0..255
    convert(m, "efficientnet_b0_64", image_representative(64, 0, 255))


def _channel_shuffle(x, groups=2):
    h, w, c = x.shape[1:]
    x = layers.Reshape((h, w, groups, c // groups))(x)
    x = layers.Permute((1, 2, 4, 3))(x)
    return layers.Reshape((h, w, c))(x)


def _shuffle_unit(x, out_c, stride):
    def branch(y, c_in):
        y = layers.Conv2D(out_c // 2, 1, use_bias=False)(y) if stride == 1 else y
        if stride == 1:
            y = layers.ReLU()(layers.BatchNormalization()(y))
        y = layers.BatchNormalization()(layers.DepthwiseConv2D(3, stride, padding="same", use_bias=False)(y))
        y = layers.Conv2D(out_c // 2, 1, use_bias=False)(y)
        return layers.ReLU()(layers.BatchNormalization()(y))

    if stride == 1:
        a, b = layers.Lambda(lambda t: keras.ops.split(t, 2, axis=-1))(x)
        b = branch(b, out_c // 2)
    else:
        a = layers.BatchNormalization()(layers.DepthwiseConv2D(3, 2, padding="same", use_bias=False)(x))
        a = layers.ReLU()(layers.BatchNormalization()(layers.Conv2D(out_c // 2, 1, use_bias=False)(a)))
        b = layers.ReLU()(layers.BatchNormalization()(layers.Conv2D(out_c // 2, 1, use_bias=False)(x)))
        b = branch(b, out_c // 2)
    return _channel_shuffle(layers.Concatenate()([a, b]))


def shufflenet_v2_x05():
    """ShuffleNetV2 x0.5 (torchvision's stages: 24, then 48/96/192 with 4/8/4 units, 1024 conv), 96 px."""
    keras.utils.set_random_seed(4)
    inp = keras.Input((96, 96, 3))
    x = layers.ReLU()(layers.BatchNormalization()(layers.Conv2D(24, 3, 2, padding="same", use_bias=False)(inp)))
    x = layers.MaxPooling2D(3, 2, padding="same")(x)
    for out_c, repeats in ((48, 4), (96, 8), (192, 4)):
        for i in range(repeats):
            x = _shuffle_unit(x, out_c, 2 if i == 0 else 1)
    x = layers.ReLU()(layers.BatchNormalization()(layers.Conv2D(1024, 1, use_bias=False)(x)))
    out = layers.Dense(CLASSES, activation="softmax")(layers.GlobalAveragePooling2D()(x))
    m = keras.Model(inp, out)
    train(m, 96, -1, 1)  # untrained, every image gets 1/4 per class: a test would see no wrong layer
    convert(m, "shufflenet_v2_x05", image_representative(96, -1, 1))


def _inverted_residual(x, out_c, kernel, stride, expand):
    in_c = x.shape[-1]
    y = layers.ReLU()(layers.BatchNormalization()(layers.Conv2D(in_c * expand, 1, use_bias=False)(x)))
    y = layers.ReLU()(layers.BatchNormalization()(layers.DepthwiseConv2D(kernel, stride, padding="same",
                                                                          use_bias=False)(y)))
    y = layers.BatchNormalization()(layers.Conv2D(out_c, 1, use_bias=False)(y))
    return layers.Add()([x, y]) if stride == 1 and in_c == out_c else y


def mnasnet_05():
    """MnasNet-B1 at depth multiplier 0.5 (torchvision's mnasnet0_5 layout: 16, 8, then 16/24/40/48/96/160 stages
    with depths 3/3/3/2/4/1, kernels 3/5/5/3/5/3, expansions 3/3/6/6/6/6, a 1280 conv), 96 px."""
    keras.utils.set_random_seed(5)
    inp = keras.Input((96, 96, 3))
    x = layers.ReLU()(layers.BatchNormalization()(layers.Conv2D(16, 3, 2, padding="same", use_bias=False)(inp)))
    x = layers.ReLU()(layers.BatchNormalization()(layers.DepthwiseConv2D(3, padding="same", use_bias=False)(x)))
    x = layers.BatchNormalization()(layers.Conv2D(8, 1, use_bias=False)(x))
    for out_c, depth, kernel, stride, expand in ((16, 3, 3, 2, 3), (24, 3, 5, 2, 3), (40, 3, 5, 2, 6),
                                                 (48, 2, 3, 1, 6), (96, 4, 5, 2, 6), (160, 1, 3, 1, 6)):
        for i in range(depth):
            x = _inverted_residual(x, out_c, kernel, stride if i == 0 else 1, expand)
    x = layers.ReLU()(layers.BatchNormalization()(layers.Conv2D(1280, 1, use_bias=False)(x)))
    out = layers.Dense(CLASSES, activation="softmax")(layers.GlobalAveragePooling2D()(x))
    m = keras.Model(inp, out)
    train(m, 96, -1, 1)
    convert(m, "mnasnet_05", image_representative(96, -1, 1))


class PositionEmbedding(layers.Layer):
    def build(self, shape):
        self.pos = self.add_weight(shape=shape[1:], initializer=keras.initializers.RandomNormal(0, 0.02), name="pos")

    def call(self, x):
        return x + self.pos


def tiny_vit():
    """A tiny ViT: 32x32 images, 8x8 patches (a strided conv) -> 16 tokens of 64, a learned position embedding,
    2 pre-norm encoder blocks (multi-head attention with 2 heads, layer norm, a GELU MLP of 128), mean over
    tokens, a dense classifier."""
    keras.utils.set_random_seed(6)
    inp = keras.Input((32, 32, 3))
    x = layers.Conv2D(64, 8, 8)(inp)
    x = PositionEmbedding()(layers.Reshape((16, 64))(x))
    for _ in range(2):
        y = layers.LayerNormalization(epsilon=1e-6)(x)
        x = layers.Add()([x, layers.MultiHeadAttention(num_heads=2, key_dim=32)(y, y)])
        y = layers.LayerNormalization(epsilon=1e-6)(x)
        y = layers.Dense(64)(layers.Dense(128, activation="gelu")(y))
        x = layers.Add()([x, y])
    x = layers.GlobalAveragePooling1D()(layers.LayerNormalization(epsilon=1e-6)(x))
    out = layers.Dense(CLASSES, activation="softmax")(x)
    convert(keras.Model(inp, out), "tiny_vit", image_representative(32, -1, 1))


def kws_conv1d_lstm():
    """Keyword spotting on 49 frames x 10 MFCCs: Conv1D(16, 3) + ReLU, LSTM(32), a dense softmax over 4 words;
    through tf_keras (Keras 2), whose LSTM the converter fuses into UNIDIRECTIONAL_SEQUENCE_LSTM."""
    import tf_keras
    assert tf_keras.__version__ == "2.19.0", f"pinned to tf_keras 2.19.0, found {tf_keras.__version__}"
    tf_keras.utils.set_random_seed(7)
    inp = tf_keras.Input((49, 10), batch_size=1)  # with batch None the converter cannot lower the LSTM's tensor
    # list (element_shape must be static); a batch-1 Input is how TF's LSTM conversion guide writes it
    x = tf_keras.layers.Conv1D(16, 3, activation="relu")(inp)
    x = tf_keras.layers.LSTM(32)(x)
    out = tf_keras.layers.Dense(CLASSES, activation="softmax")(x)
    rng = np.random.default_rng(1000)
    feats = rng.normal(0, 1, (64, 1, 49, 10)).astype(np.float32)

    def gen():
        for f in feats:
            yield [f]
    convert(tf_keras.Model(inp, out), "kws_conv1d_lstm", gen)


KERAS_FILE = {"efficientnet_b0": "efficientnet_b0_64"}
MODELS = {f.__name__: f for f in (mobilenet_v3_small, shufflenet_v2_x05, efficientnet_b0, mobilenet_v2_035,
                                  mnasnet_05, tiny_vit, kws_conv1d_lstm)}

if __name__ == "__main__":
    only_expected = "--expected-only" in sys.argv  # refresh the .expected.npz of the existing files
    for name in [a for a in sys.argv[1:] if not a.startswith("--")] or MODELS:
        print(name)
        expected(KERAS_FILE.get(name, name)) if only_expected else MODELS[name]()
