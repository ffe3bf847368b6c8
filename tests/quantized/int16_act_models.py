"""Single-operator 16x8 TFLite models for the int16 activations, SOFTMAX, MEAN and RESIZE operators.

Quantisation follows the converter's int16 conventions: symmetric (zero point 0) int16 activations;
LOGISTIC/TANH outputs at TFLite's fixed scale 2^-15, SOFTMAX output at 1/32768. Inputs scales are
either TFLite's power-of-two scales (the LSTM case) or random ones (TFLM's general rescaling path).
"""

from __future__ import annotations

import numpy as np
from tflite_builder import ModelBuilder, reducer_options, softmax_options
from tflite_micro.tensorflow.lite.micro.python import schema_py_generated as schema


def _scale(rng: np.random.Generator, lo: float, hi: float) -> float:
    return float(np.float32(np.exp(rng.uniform(np.log(lo), np.log(hi)))))


def activation(
    kind: str,
    input_scale: float,
    shape: tuple[int, ...] = (2, 3, 7, 5),
    output_scale: float = 2.0**-15,
    input_zero_point: int = 0,
) -> bytes:
    """LOGISTIC or TANH, int16 -> int16."""
    b = ModelBuilder()
    x = b.tensor("x", list(shape), "int16", input_scale, input_zero_point)
    y = b.tensor("y", list(shape), "int16", output_scale, 0)
    b.op(kind, [x], [y])
    return b.build([x], [y])


def softmax(
    seed: int,
    shape: tuple[int, ...],
    beta: float = 1.0,
    input_scale: float | None = None,
    output_scale: float = 1.0 / 32768,
) -> bytes:
    rng = np.random.default_rng(seed)
    b = ModelBuilder()
    s_in = input_scale if input_scale is not None else _scale(rng, 1e-5, 1e-3)
    x = b.tensor("x", list(shape), "int16", s_in, 0)
    y = b.tensor("y", list(shape), "int16", output_scale, 0)
    b.op("SOFTMAX", [x], [y], softmax_options(beta), "SoftmaxOptions")
    return b.build([x], [y])


def mean(
    seed: int,
    shape: tuple[int, ...],
    axes: list[int],
    keep_dims: bool,
    zero_points: tuple[int, int] = (0, 0),
) -> bytes:
    rng = np.random.default_rng(seed)
    b = ModelBuilder()
    s_in = _scale(rng, 1e-4, 3e-3)
    s_out = float(np.float32(s_in * rng.uniform(0.3, 1.5)))
    x = b.tensor("x", list(shape), "int16", s_in, zero_points[0])
    norm = sorted({a % len(shape) for a in axes})
    if keep_dims:
        out_shape = [1 if i in norm else d for i, d in enumerate(shape)]
    else:
        out_shape = [d for i, d in enumerate(shape) if i not in norm]
    y = b.tensor("y", out_shape, "int16", s_out, zero_points[1])
    b.op("MEAN", [x, b.const_int32("axes", axes)], [y], reducer_options(keep_dims), "ReducerOptions")
    return b.build([x], [y])


def resize(
    kind: str,
    shape: tuple[int, int, int, int],
    size: tuple[int, int],
    align_corners: bool = False,
    half_pixel: bool = False,
) -> bytes:
    """RESIZE_NEAREST_NEIGHBOR or RESIZE_BILINEAR, int16 in and out quantised alike."""
    b = ModelBuilder()
    x = b.tensor("x", list(shape), "int16", 0.0007, 0)
    y = b.tensor("y", [shape[0], size[0], size[1], shape[3]], "int16", 0.0007, 0)
    if kind == "RESIZE_NEAREST_NEIGHBOR":
        o = schema.ResizeNearestNeighborOptionsT()
        kind_name = "ResizeNearestNeighborOptions"
    else:
        o = schema.ResizeBilinearOptionsT()
        kind_name = "ResizeBilinearOptions"
    o.alignCorners, o.halfPixelCenters = align_corners, half_pixel
    b.op(kind, [x, b.const_int32("size", list(size))], [y], o, kind_name)
    return b.build([x], [y])
