"""Random but realistic Keras networks, converted with the TFLite converter (for scripts/stress_models.py).

Runs only in a Python environment with TensorFlow and tf_keras (the project itself does not depend on
them), for example:

    python3 -m venv /tmp/tfvenv && /tmp/tfvenv/bin/pip install tensorflow tf_keras
    /tmp/tfvenv/bin/python scripts/stress_models.py gen-tflite -n 100 --out /tmp/stress

Each seed gives one network (an image network of convolution/pooling/residual/concat/resize blocks with a
head, or a sequence network around an LSTM) and one quantization: float, int8 full-integer, int8 with
float I/O, or 16x8 (int16 activations, int8 weights).
"""

from __future__ import annotations

import os
import random
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")  # tf_keras: the converter's best-trodden path
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

QUANTS = ("float", "int8", "int8_float_io", "16x8")


def _activation(rng: random.Random, L: Any, x: Any) -> Any:
    kind = rng.choice(
        ["relu", "relu6", "none", "tanh", "sigmoid", "leaky", "prelu", "elu", "swish", "hswish"]
    )
    if kind == "none":
        return x
    if kind == "relu6":
        return L.ReLU(6.0)(x)
    if kind == "leaky":
        return L.LeakyReLU(rng.choice([0.1, 0.2, 0.3]))(x)
    if kind == "prelu":
        return L.PReLU(shared_axes=[1, 2] if len(x.shape) == 4 else None)(x)
    if kind == "hswish":
        import tensorflow as tf

        return L.Lambda(lambda t: t * tf.nn.relu6(t + 3.0) / 6.0)(x)
    if kind == "swish":
        import tensorflow as tf

        return L.Lambda(lambda t: t * tf.sigmoid(t))(x)
    return L.Activation(kind)(x)


def _image_block(rng: random.Random, L: Any, x: Any, tf: Any) -> Any:
    h, w, c = (int(d) for d in x.shape[1:])
    choices = ["conv", "dwconv", "sepconv", "pool", "residual_pad", "residual", "concat", "bn", "zeropad"]
    if h <= 16 and w <= 16:
        choices += ["resize", "tconv"]
    kind = rng.choice(choices)
    if kind == "conv":
        k = rng.choice([1, 3, 3, 5])
        s = rng.choice([1, 1, 2]) if h >= 4 else 1
        x = L.Conv2D(
            rng.choice([4, 6, 8, 12, 16]),
            k,
            strides=s,
            padding=rng.choice(["same", "valid"]) if h > k else "same",
            use_bias=rng.random() < 0.8,
            dilation_rate=rng.choice([1, 1, 2]) if s == 1 and h > 5 else 1,
        )(x)
        return _activation(rng, L, x)
    if kind == "dwconv":
        s = rng.choice([1, 2]) if h >= 4 else 1
        x = L.DepthwiseConv2D(
            rng.choice([3, 5]), strides=s, padding="same", depth_multiplier=rng.choice([1, 1, 2])
        )(x)
        return _activation(rng, L, x)
    if kind == "sepconv":
        return _activation(rng, L, L.SeparableConv2D(rng.choice([4, 8, 16]), 3, padding="same")(x))
    if kind == "pool":
        if h < 2 or w < 2:
            return x
        pool = L.MaxPooling2D if rng.random() < 0.5 else L.AveragePooling2D
        return pool(rng.choice([2, 3]) if h >= 3 else 2, strides=2, padding=rng.choice(["same", "valid"]))(x)
    if kind == "residual_pad":
        # BlazeFace: the shortcut is (optionally pooled and) zero-padded along channels to match the branch.
        extra = rng.choice([2, 4, 8])
        s = 2 if h >= 4 and rng.random() < 0.5 else 1
        y = L.DepthwiseConv2D(3, strides=s, padding="same")(x)
        y = L.Conv2D(c + extra, 1)(y)
        short = L.MaxPooling2D(2, 2)(x) if s == 2 else x
        short = L.Lambda(lambda t, e=extra: tf.pad(t, [[0, 0], [0, 0], [0, 0], [0, e]]))(short)
        return _activation(rng, L, L.Add()([y, short]))
    if kind == "residual":
        y = _activation(rng, L, L.Conv2D(c, 3, padding="same")(x))
        y = L.Conv2D(c, 1)(y)
        merge = rng.choice([L.Add(), L.Multiply(), L.Subtract(), L.Maximum(), L.Average()])
        return merge([x, y])
    if kind == "concat":
        a = L.Conv2D(rng.choice([2, 4, 8]), 1, activation="relu")(x)
        b = L.DepthwiseConv2D(3, padding="same")(x)
        return L.Concatenate(axis=-1)([a, b, x] if rng.random() < 0.5 else [a, b])
    if kind == "bn":
        return L.BatchNormalization()(x)
    if kind == "zeropad":
        return L.ZeroPadding2D(
            ((rng.randint(0, 2), rng.randint(0, 2)), (rng.randint(0, 2), rng.randint(0, 2)))
        )(x)
    if kind == "resize":
        if rng.random() < 0.5:
            return L.UpSampling2D(2, interpolation=rng.choice(["nearest", "bilinear"]))(x)
        size = (rng.randint(max(1, h // 2), 2 * h), rng.randint(max(1, w // 2), 2 * w))
        method = rng.choice(["bilinear", "nearest"])
        return L.Lambda(lambda t: tf.image.resize(t, size, method=method))(x)
    # tconv
    return _activation(
        rng,
        L,
        L.Conv2DTranspose(
            rng.choice([4, 8]), rng.choice([2, 3]), strides=2, padding=rng.choice(["same", "valid"])
        )(x),
    )


def _image_head(rng: random.Random, L: Any, x: Any, tf: Any) -> Any:
    kind = rng.choice(["gap", "mean_keep", "flatten_dense", "conv_out", "softmax_map", "gmp"])
    if kind == "gap":
        x = L.GlobalAveragePooling2D()(x)
    elif kind == "gmp":
        x = L.GlobalMaxPooling2D()(x)
    elif kind == "mean_keep":
        return L.Lambda(lambda t: tf.reduce_mean(t, axis=[1, 2], keepdims=True))(x)
    elif kind == "conv_out":
        return L.Conv2D(rng.choice([1, 2, 4]), 1)(x)
    elif kind == "softmax_map":
        return L.Softmax(axis=-1)(L.Conv2D(4, 1)(x))
    else:
        x = L.Flatten()(x)
    x = L.Dense(rng.choice([4, 10, 16]))(x)
    if rng.random() < 0.5:
        x = L.Softmax()(x)
    return x


def _image_model(rng: random.Random, tf: Any) -> Any:
    L = tf.keras.layers
    size = rng.choice([8, 12, 16, 20, 24])
    inp = tf.keras.Input(
        (size, size if rng.random() < 0.7 else size + 4, rng.choice([1, 3, 4])), batch_size=1
    )
    x = inp
    for _ in range(rng.randint(2, 5)):
        x = _image_block(rng, L, x, tf)
    outs = [_image_head(rng, L, x, tf)]
    if rng.random() < 0.2:  # a second output (e.g. boxes and scores)
        outs.append(L.Conv2D(2, 1)(x))
    return tf.keras.Model(inp, outs)


def _sequence_model(rng: random.Random, tf: Any) -> Any:
    L = tf.keras.layers
    steps, feats = rng.choice([4, 6, 8, 10]), rng.choice([3, 5, 8, 12])
    inp = tf.keras.Input((steps, feats), batch_size=1)
    x = inp
    if rng.random() < 0.3:
        x = L.Dense(rng.choice([4, 8]), activation="relu")(x)
    x = L.LSTM(rng.choice([4, 8, 12, 16]), return_sequences=rng.random() < 0.5, unroll=False)(x)
    if len(x.shape) == 3 and rng.random() < 0.5:
        x = L.LSTM(rng.choice([4, 8]))(x)
    if len(x.shape) == 3:
        x = L.Flatten()(x)
    x = L.Dense(rng.choice([3, 10]))(x)
    if rng.random() < 0.5:
        x = L.Softmax()(x)
    return tf.keras.Model(inp, x)


def _dense_model(rng: random.Random, tf: Any) -> Any:
    L = tf.keras.layers
    inp = tf.keras.Input((rng.choice([8, 16, 32]),), batch_size=1)
    x = inp
    for _ in range(rng.randint(1, 3)):
        x = _activation(rng, L, L.Dense(rng.choice([8, 16, 24]))(x))
    x = L.Dense(rng.choice([2, 5]))(x)
    if rng.random() < 0.5:
        x = L.Softmax()(x)
    return tf.keras.Model(inp, x)


def _convert(model: Any, quant: str, tf: Any, rng: random.Random) -> bytes:
    import numpy as np

    nprng = np.random.default_rng(rng.randint(0, 2**31))
    shapes = [tuple(int(d) for d in i.shape) for i in model.inputs]

    def representative() -> Iterator[list[Any]]:
        for _ in range(20):
            yield [nprng.uniform(-1, 1, s).astype(np.float32) for s in shapes]

    conv = tf.lite.TFLiteConverter.from_keras_model(model)
    if quant != "float":
        conv.optimizations = [tf.lite.Optimize.DEFAULT]
        conv.representative_dataset = representative
    if quant in ("int8", "int8_float_io"):
        conv.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
    if quant == "int8":
        conv.inference_input_type = conv.inference_output_type = tf.int8
    if quant == "16x8":
        conv.target_spec.supported_ops = [
            tf.lite.OpsSet.EXPERIMENTAL_TFLITE_BUILTINS_ACTIVATIONS_INT16_WEIGHTS_INT8
        ]
        if rng.random() < 0.5:
            conv.inference_input_type = conv.inference_output_type = tf.int16
    return bytes(conv.convert())


def generate(out: Path, n: int, seed: int, log: Callable[[str], None] = print) -> list[Path]:
    """Write up to `n` models to `out` (a model the converter rejects is skipped and logged)."""
    import numpy as np
    import tensorflow as tf

    out.mkdir(parents=True, exist_ok=True)
    written = []
    for i in range(n):
        rng = random.Random(f"{seed}:{i}")
        tf.keras.utils.set_random_seed(rng.randint(0, 2**31))
        family = rng.choices(["image", "sequence", "dense"], [0.7, 0.2, 0.1])[0]
        quant = rng.choice(QUANTS)
        name = f"k{seed}_{i:04d}_{family}_{quant}.tflite"
        try:
            model = {"image": _image_model, "sequence": _sequence_model, "dense": _dense_model}[family](
                rng, tf
            )
            # Non-trivial batch-norm statistics and biases, so folded constants matter.
            for layer in model.layers:
                ws = layer.get_weights()
                if ws:
                    layer.set_weights(
                        [
                            w + np.random.default_rng(i).normal(0, 0.1, w.shape).astype(w.dtype)
                            if w.ndim == 1 and "batch_normalization" not in layer.name
                            else (np.abs(w) + 0.5 if "batch_normalization" in layer.name else w)
                            for w in ws
                        ]
                    )
            data = _convert(model, quant, tf, rng)
        except Exception as err:  # the converter refuses some random combinations; skip them
            log(f"{name}: not generated: {type(err).__name__}: {str(err).splitlines()[0][:200]}")
            continue
        (out / name).write_bytes(data)
        written.append(out / name)
        log(f"{name}: {len(data)} bytes")
    return written
