"""Float32 arithmetic ONNX Runtime does at run time, precomputed at import time as numpy tables.

Elementwise functions of one quantised input become 256-entry tables (`LUT_FUNCS`: each maps the
dequantised float32 values to float32 results the way ORT computes them, e.g. HardSwish as its ONNX
function body); QLinearSoftmax's exp table; the source pixel of each nearest-neighbour Resize output.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import numpy as np

from tvmc_micro.compiler.quantized.onnx_values import Unmappable, f32


def _original_coordinate(
    o: int, out_size: int, in_size: int, scale: np.float32, transform: str
) -> np.float32:
    """ORT's Resize coordinate transformation of output coordinate `o`, in float32."""
    f = np.float32
    if transform == "half_pixel":
        return f((f(o) + f(0.5)) / scale - f(0.5))
    if transform == "pytorch_half_pixel":
        return f((f(o) + f(0.5)) / scale - f(0.5)) if out_size > 1 else f(0)
    if transform == "asymmetric":
        return f(f(o) / scale)
    if transform == "tf_half_pixel_for_nn":
        return f((f(o) + f(0.5)) / scale)
    if transform == "align_corners":
        return f(0) if out_size == 1 else f(f(o) * f(in_size - 1) / f(out_size - 1))
    raise Unmappable(f"Resize coordinate_transformation_mode {transform!r} is not supported")


def linear_sources(
    out_size: int, in_size: int, scale: np.float32, transform: str
) -> tuple[list[int], list[int], np.ndarray, np.ndarray]:
    """ORT's bilinear setup along one axis: for every output coordinate the two source indices (i1, i2)
    and the distances to them (d1 = |x - i1|, d2 = |x - i2|, both 0.5 where i1 == i2), in float32.
    A scale of exactly 1 keeps the coordinate (ORT skips the transformation there)."""
    f = np.float32
    i1s, i2s, d1s, d2s = [], [], [], []
    if transform == "tf_half_pixel_for_nn":
        raise Unmappable("Resize coordinate_transformation_mode 'tf_half_pixel_for_nn' is for nearest only")
    for o in range(out_size):
        x = f(o) if scale == f(1) else _original_coordinate(o, out_size, in_size, scale, transform)
        x = max(f(0), min(x, f(in_size - 1)))
        i1 = min(int(x), in_size - 1)
        i2 = min(i1 + 1, in_size - 1)
        d1, d2 = (f(0.5), f(0.5)) if i1 == i2 else (abs(x - f(i1)), abs(x - f(i2)))
        i1s.append(i1)
        i2s.append(i2)
        d1s.append(d1)
        d2s.append(d2)
    return i1s, i2s, np.array(d1s, np.float32), np.array(d2s, np.float32)


def nearest_sources(
    out_size: int, in_size: int, scale: np.float32, transform: str, nearest: str
) -> list[int]:
    """ORT's nearest-neighbour source index per output coordinate (float32 arithmetic, then clamped)."""
    f = np.float32
    result = []
    for o in range(out_size):
        x = _original_coordinate(o, out_size, in_size, scale, transform)
        if nearest == "round_prefer_floor":
            k = np.floor(x) if x == np.floor(x) + f(0.5) else np.round(x)
        elif nearest == "round_prefer_ceil":
            k = np.ceil(x) if x == np.floor(x) + f(0.5) else np.round(x)
        elif nearest == "floor":
            k = np.floor(x)
        elif nearest == "ceil":
            k = np.ceil(x)
        else:
            raise Unmappable(f"Resize nearest_mode {nearest!r} is not supported")
        result.append(int(min(max(int(k), 0), in_size - 1)))
    return result


def softmax_table(x_scale: np.float32, depth: int) -> np.ndarray:
    """QLinearSoftmax's float table: entry k is exp((k - 255 + shift) * x_scale) in double, stored as
    float32, with shift = max(0, log(FLT_MAX / depth) - 5) / x_scale keeping the row sum finite (ORT
    divides in float32, then takes the double log)."""
    ratio = np.float32(np.finfo(np.float32).max) / np.float32(depth)
    shift = max(0.0, math.log(float(ratio)) - 5.0) / float(x_scale)
    return np.array([math.exp((k - 255 + shift) * float(x_scale)) for k in range(256)], dtype=np.float32)


def _erf(v: np.ndarray) -> np.ndarray:
    return np.array([math.erf(float(x)) for x in v.reshape(-1)], np.float32).reshape(v.shape)


def _elu(a: dict[str, Any]) -> Callable[[np.ndarray], np.ndarray]:
    alpha = f32(a.get("alpha", 1.0))
    return lambda v: np.where(v >= 0, v, alpha * (np.exp(v.astype(np.float64)) - 1).astype(np.float32))


def _leaky_relu(a: dict[str, Any]) -> Callable[[np.ndarray], np.ndarray]:
    alpha = f32(a.get("alpha", 0.01))
    return lambda v: np.where(v >= 0, v, v * alpha).astype(np.float32)


def _hard_sigmoid_of(v: np.ndarray, alpha: np.float32, beta: np.float32) -> np.ndarray:
    clipped: np.ndarray = np.minimum(np.maximum(alpha * v + beta, np.float32(0)), np.float32(1))
    return clipped.astype(np.float32)


def _hard_sigmoid(a: dict[str, Any]) -> Callable[[np.ndarray], np.ndarray]:
    alpha, beta = f32(a.get("alpha", 0.2)), f32(a.get("beta", 0.5))
    return lambda v: _hard_sigmoid_of(v, alpha, beta)


def _hard_swish(a: dict[str, Any]) -> Callable[[np.ndarray], np.ndarray]:
    # ORT has no HardSwish kernel: it runs the ONNX function body, x * HardSigmoid(x, 1/6, 0.5).
    return lambda v: (v * _hard_sigmoid_of(v, f32(1.0 / 6.0), f32(0.5))).astype(np.float32)


# Elementwise float ops a DequantizeLinear -> op -> QuantizeLinear group computes as a 256-entry table.
LUT_FUNCS: dict[str, Callable[[dict[str, Any]], Callable[[np.ndarray], np.ndarray]]] = {
    "LeakyRelu": _leaky_relu,
    "HardSigmoid": _hard_sigmoid,
    "HardSwish": _hard_swish,
    "Tanh": lambda _a: lambda v: np.tanh(v.astype(np.float64)).astype(np.float32),
    "Abs": lambda _a: np.abs,
    "Neg": lambda _a: np.negative,
    "Floor": lambda _a: np.floor,
    "Ceil": lambda _a: np.ceil,
    "Round": lambda _a: np.rint,  # ONNX Round: half to even
    "Sign": lambda _a: np.sign,
    "Exp": lambda _a: lambda v: np.exp(v.astype(np.float64)).astype(np.float32),
    "Erf": lambda _a: _erf,
    "Softplus": lambda _a: lambda v: np.log1p(np.exp(v.astype(np.float64))).astype(np.float32),
    "Softsign": lambda _a: lambda v: (v / (np.float32(1) + np.abs(v))).astype(np.float32),
    "Elu": _elu,
    "ThresholdedRelu": lambda a: lambda v: np.where(v > f32(a.get("alpha", 1.0)), v, np.float32(0)),
}


def sigmoid(v: np.ndarray) -> np.ndarray:
    return (1.0 / (1.0 + np.exp(-v.astype(np.float64)))).astype(np.float32)
