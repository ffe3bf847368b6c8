"""Single-operator TFLite models with int16 activations (TFLite's "16x8" quantisation) for the tests.

Each builder returns the model bytes; weights and parameters come from a seeded generator, so a model
is the same in every run. Scales are random (not round numbers) so the tests also check that the
requantisation multipliers are computed exactly as TFLite Micro computes them.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from tflite_builder import ModelBuilder, conv_options, random_weights
from tflite_micro.tensorflow.lite.micro.python import schema_py_generated as schema

_ACT = {"NONE": 0, "RELU": 1, "RELU_N1_TO_1": 2, "RELU6": 3}


def _scale(rng: np.random.Generator, lo: float = 1e-4, hi: float = 3e-3) -> float:
    return float(np.float32(np.exp(rng.uniform(np.log(lo), np.log(hi)))))


def quantize(seed: int, in_dtype: str, out_dtype: str, shape: tuple[int, ...] = (1, 3, 10, 4)) -> bytes:
    """QUANTIZE in_dtype -> out_dtype (int8/int16/int32 or float32 input); DEQUANTIZE for float32 out."""
    rng = np.random.default_rng(seed)
    b = ModelBuilder()
    in_q: dict[str, Any] = {}
    out_q: dict[str, Any] = {}
    # The output scale follows the input's real range, so most outputs land inside the output type.
    real_max = 40.0  # float inputs are drawn from [-40, 40]
    if in_dtype != "float32":
        in_q = {"scale": _scale(rng, 1e-9, 1e-8) if in_dtype == "int32" else _scale(rng), "zero_point": 0}
        if in_dtype == "int8":
            in_q = {"scale": _scale(rng, 0.01, 0.1), "zero_point": int(rng.integers(-20, 20))}
        real_max = in_q["scale"] * float(np.iinfo(in_dtype).max)
    if out_dtype != "float32":
        top = {"int8": 127.0, "int16": 32767.0, "int32": 1e9}[out_dtype]
        out_q = {"scale": float(np.float32(real_max / (top * rng.uniform(0.6, 1.2)))), "zero_point": 0}
        if out_dtype == "int8":
            out_q["zero_point"] = int(rng.integers(-20, 20))
    x = b.tensor("x", list(shape), in_dtype, **in_q)
    y = b.tensor("y", list(shape), out_dtype, **out_q)
    b.op("DEQUANTIZE" if out_dtype == "float32" else "QUANTIZE", [x], [y])
    return b.build([x], [y])


def pad(seed: int, paddings: list[list[int]], value: int | None = None) -> bytes:
    rng = np.random.default_rng(seed)
    shape = [1, 3, 7, 2]
    out_shape = [d + p0 + p1 for d, (p0, p1) in zip(shape, paddings, strict=True)]
    b = ModelBuilder()
    s = _scale(rng)
    x = b.tensor("x", shape, "int16", s, 0)
    pads = b.const_int32("paddings", np.asarray(paddings, np.int32))
    inputs = [x, pads]
    if value is not None:
        inputs.append(b.tensor("value", [1], "int16", s, 0, data=np.array([value], np.int16)))
    y = b.tensor("y", out_shape, "int16", s, 0)
    b.op("PADV2" if value is not None else "PAD", inputs, [y])
    return b.build([x], [y])


def strided_slice(
    shape: list[int],
    begin: list[int],
    end: list[int],
    strides: list[int],
    out_shape: list[int],
    masks: tuple[int, int, int] = (0, 0, 0),
) -> bytes:
    """masks: (begin_mask, end_mask, shrink_axis_mask)."""
    b = ModelBuilder()
    x = b.tensor("x", shape, "int16", 0.001, 0)
    ins = [x, b.const_int32("begin", begin), b.const_int32("end", end), b.const_int32("strides", strides)]
    y = b.tensor("y", out_shape, "int16", 0.001, 0)
    o = schema.StridedSliceOptionsT()
    o.beginMask, o.endMask, o.shrinkAxisMask = masks
    b.op("STRIDED_SLICE", ins, [y], o, "StridedSliceOptions")
    return b.build([x], [y])


def conv2d(
    seed: int,
    data_shape: tuple[int, int, int, int],
    out_c: int,
    kernel: tuple[int, int],
    padding: str = "SAME",
    stride: tuple[int, int] = (1, 1),
    dilation: tuple[int, int] = (1, 1),
    activation: str = "NONE",
    bias: str | None = "int64",
    per_channel: bool = True,
    filter_c: int | None = None,
) -> bytes:
    """16x8 CONV_2D; bias int64 (TFLM's default), int32 (int32 accumulation) or None."""
    rng = np.random.default_rng(seed)
    n, h, w, c = data_shape
    fc = filter_c or c
    b = ModelBuilder()
    s_in = _scale(rng)
    w_scales = [float(v) for v in rng.uniform(0.002, 0.02, out_c)] if per_channel else 0.01
    s_out = _conv_out_scale(rng, s_in, w_scales, kernel[0] * kernel[1] * (filter_c or c))
    x = b.tensor("x", list(data_shape), "int16", s_in, 0)
    weights = random_weights(rng, [out_c, kernel[0], kernel[1], fc])
    wt = b.tensor("w", [out_c, kernel[0], kernel[1], fc], "int8", w_scales, 0, data=weights)
    inputs = [x, wt]
    if bias is not None:
        values = rng.integers(-(1 << 20), 1 << 20, out_c).astype(bias)
        scales = [s_in * s for s in np.atleast_1d(w_scales)]
        inputs.append(b.tensor("b", [out_c], bias, scales, 0, data=values))
    oh = _out_size(h, kernel[0], stride[0], dilation[0], padding)
    ow = _out_size(w, kernel[1], stride[1], dilation[1], padding)
    y = b.tensor("y", [n, oh, ow, out_c], "int16", s_out, 0)
    opts = conv_options(padding, stride, dilation, activation)
    opts.quantizedBiasType = schema.TensorType.INT32 if bias == "int32" else 0
    b.op("CONV_2D", inputs, [y], opts, version=3)
    return b.build([x], [y])


def _conv_out_scale(rng: np.random.Generator, s_in: float, w_scales: Any, taps: int) -> float:
    """An output scale that keeps a full-range int16 input mostly unsaturated: the accumulator's
    standard deviation is about sqrt(taps) * 73 * 18900 weight-input units."""
    typical = float(np.sqrt(taps)) * 73 * 18900 * s_in * float(np.mean(w_scales))
    return float(np.float32(typical / (10000 * rng.uniform(0.7, 1.4))))


def _out_size(size: int, k: int, stride: int, dilation: int, padding: str) -> int:
    eff = (k - 1) * dilation + 1
    return (size + stride - 1) // stride if padding == "SAME" else (size - eff + stride) // stride


def transpose_conv(
    seed: int,
    data_shape: tuple[int, int, int, int],
    out_c: int,
    kernel: tuple[int, int],
    stride: tuple[int, int],
    padding: str = "SAME",
    with_bias: bool = True,
) -> bytes:
    """16x8 TRANSPOSE_CONV; its output-shape input is a constant, as converters write it."""
    rng = np.random.default_rng(seed)
    n, h, w, c = data_shape
    if padding == "SAME":
        oh, ow = h * stride[0], w * stride[1]
    else:
        oh, ow = (h - 1) * stride[0] + kernel[0], (w - 1) * stride[1] + kernel[1]
    b = ModelBuilder()
    s_in = _scale(rng)
    w_scales = [float(v) for v in rng.uniform(0.002, 0.02, out_c)]
    s_out = _conv_out_scale(rng, s_in, w_scales, kernel[0] * kernel[1] * c)
    shape_t = b.const_int32("output_shape", [n, oh, ow, out_c])
    wt = b.tensor(
        "w", [out_c, *kernel, c], "int8", w_scales, 0, data=random_weights(rng, [out_c, *kernel, c])
    )
    x = b.tensor("x", list(data_shape), "int16", s_in, 0)
    inputs = [shape_t, wt, x]
    if with_bias:
        values = rng.integers(-(1 << 20), 1 << 20, out_c).astype(np.int64)
        inputs.append(b.tensor("b", [out_c], "int64", [s_in * s for s in w_scales], 0, data=values))
    y = b.tensor("y", [n, oh, ow, out_c], "int16", s_out, 0)
    o = schema.TransposeConvOptionsT()
    o.padding = 0 if padding == "SAME" else 1
    o.strideH, o.strideW = stride
    b.op("TRANSPOSE_CONV", inputs, [y], o, "TransposeConvOptions", version=3)
    return b.build([x], [y])


def add_sub(
    seed: int,
    op: str,
    shape_a: list[int],
    shape_b: list[int],
    activation: str = "NONE",
    zero_points: tuple[int, int, int] = (0, 0, 0),
) -> bytes:
    rng = np.random.default_rng(seed)
    out_shape = list(np.broadcast_shapes(tuple(shape_a), tuple(shape_b)))
    b = ModelBuilder()
    s_a, s_b = _scale(rng), _scale(rng, 1e-5, 3e-3)
    a = b.tensor("a", shape_a, "int16", s_a, zero_points[0])
    c = b.tensor("b", shape_b, "int16", s_b, zero_points[1])
    y = b.tensor(
        "y", out_shape, "int16", float(np.float32(max(s_a, s_b) * rng.uniform(1.0, 2.0))), zero_points[2]
    )
    o: Any = schema.AddOptionsT() if op == "ADD" else schema.SubOptionsT()
    o.fusedActivationFunction = _ACT[activation]
    o.potScaleInt16 = False
    b.op(op, [a, c], [y], o, "AddOptions" if op == "ADD" else "SubOptions", version=2)
    return b.build([a, c], [y])


def leaky_relu(seed: int, alpha: float, shape: tuple[int, ...] = (1, 2, 9, 8)) -> bytes:
    rng = np.random.default_rng(seed)
    b = ModelBuilder()
    s_in = _scale(rng)
    x = b.tensor("x", list(shape), "int16", s_in, 0)
    y = b.tensor(
        "y", list(shape), "int16", float(np.float32(s_in * max(alpha, 1.0) * rng.uniform(0.6, 1.5))), 0
    )
    o = schema.LeakyReluOptionsT()
    o.alpha = alpha
    b.op("LEAKY_RELU", [x], [y], o, "LeakyReluOptions", version=2)
    return b.build([x], [y])


def random_inputs(rng: np.random.Generator, model: bytes) -> list[np.ndarray]:
    """Full-range values of each model input's dtype (float32 inputs: a range that saturates int16)."""
    import tflite

    sg = tflite.Model.GetRootAsModel(model, 0).Subgraphs(0)
    out = []
    for i in range(sg.InputsLength()):
        t = sg.Tensors(sg.Inputs(i))
        shape = tuple(int(d) for d in t.ShapeAsNumpy())
        kind = {9: np.int8, 7: np.int16, 2: np.int32}.get(t.Type())
        if kind is None:
            out.append(rng.uniform(-40.0, 40.0, size=shape).astype(np.float32))
            continue
        info = np.iinfo(kind)
        out.append(rng.integers(int(info.min), int(info.max) + 1, size=shape, dtype=np.int64).astype(kind))
    return out


def depthwise(
    seed: int,
    data_shape: tuple[int, int, int, int],
    multiplier: int,
    kernel: tuple[int, int],
    padding: str = "SAME",
    stride: tuple[int, int] = (1, 1),
    activation: str = "NONE",
) -> bytes:
    from tflite_builder import depthwise_options

    rng = np.random.default_rng(seed)
    n, h, w, c = data_shape
    out_c = c * multiplier
    b = ModelBuilder()
    s_in = _scale(rng)
    w_scales = [float(v) for v in rng.uniform(0.002, 0.02, out_c)]
    s_out = _conv_out_scale(rng, s_in, w_scales, kernel[0] * kernel[1])
    x = b.tensor("x", list(data_shape), "int16", s_in, 0)
    wt = b.tensor(
        "w", [1, *kernel, out_c], "int8", w_scales, 0, qdim=3, data=random_weights(rng, [1, *kernel, out_c])
    )
    values = rng.integers(-(1 << 18), 1 << 18, out_c).astype(np.int64)
    bias = b.tensor("b", [out_c], "int64", [s_in * s for s in w_scales], 0, data=values)
    oh, ow = (_out_size(h, kernel[0], stride[0], 1, padding), _out_size(w, kernel[1], stride[1], 1, padding))
    y = b.tensor("y", [n, oh, ow, out_c], "int16", s_out, 0)
    b.op(
        "DEPTHWISE_CONV_2D",
        [x, wt, bias],
        [y],
        depthwise_options(padding, stride, (1, 1), multiplier, activation),
    )
    return b.build([x], [y])


def fully_connected(seed: int, batches: int, depth: int, units: int, bias: str | None = "int64") -> bytes:
    from tflite_builder import fc_options

    rng = np.random.default_rng(seed)
    b = ModelBuilder()
    s_in = _scale(rng)
    w_scales = [float(v) for v in rng.uniform(0.002, 0.02, units)]
    x = b.tensor("x", [batches, depth], "int16", s_in, 0)
    wt = b.tensor("w", [units, depth], "int8", w_scales, 0, data=random_weights(rng, [units, depth]))
    inputs = [x, wt]
    if bias is not None:
        values = rng.integers(-(1 << 18), 1 << 18, units).astype(bias)
        inputs.append(b.tensor("b", [units], bias, [s_in * s for s in w_scales], 0, data=values))
    else:
        inputs.append(-1)
    y = b.tensor("y", [batches, units], "int16", _conv_out_scale(rng, s_in, w_scales, depth), 0)
    o = fc_options()
    o.quantizedBiasType = schema.TensorType.INT32 if bias == "int32" else 0
    b.op("FULLY_CONNECTED", inputs, [y], o, "FullyConnectedOptions", version=7)
    return b.build([x], [y])


def pool(kind: str, filter_hw: tuple[int, int], stride: tuple[int, int], padding: str) -> bytes:
    from tflite_builder import pool_options

    shape = [1, 7, 9, 3]
    oh = _out_size(7, filter_hw[0], stride[0], 1, padding)
    ow = _out_size(9, filter_hw[1], stride[1], 1, padding)
    b = ModelBuilder()
    x = b.tensor("x", shape, "int16", 0.0005, 0)
    y = b.tensor("y", [1, oh, ow, 3], "int16", 0.0005, 0)
    b.op(kind, [x], [y], pool_options(filter_hw, stride, padding), "Pool2DOptions")
    return b.build([x], [y])


def concatenation(axis: int) -> bytes:
    from tflite_builder import concat_options

    shapes = [[1, 2, 3, 4], [1, 2, 3, 4]]
    shapes[1][axis] = 5
    out = list(shapes[0])
    out[axis] = shapes[0][axis] + 5
    b = ModelBuilder()
    xs = [b.tensor(f"x{i}", s, "int16", 0.0007, 0) for i, s in enumerate(shapes)]
    y = b.tensor("y", out, "int16", 0.0007, 0)
    b.op("CONCATENATION", xs, [y], concat_options(axis), "ConcatenationOptions")
    return b.build(xs, [y])


def mul(seed: int, shape_a: list[int], shape_b: list[int], activation: str = "NONE") -> bytes:
    from tflite_builder import mul_options

    rng = np.random.default_rng(seed)
    out_shape = list(np.broadcast_shapes(tuple(shape_a), tuple(shape_b)))
    b = ModelBuilder()
    s_a, s_b = _scale(rng), _scale(rng)
    a = b.tensor("a", shape_a, "int16", s_a, 0)
    c = b.tensor("b", shape_b, "int16", s_b, 0)
    # a * b spans about 2^28 * s_a * s_b: an output scale that uses the int16 range.
    y = b.tensor(
        "y", out_shape, "int16", float(np.float32(s_a * s_b * (1 << 28) / 20000 * rng.uniform(0.7, 1.4))), 0
    )
    b.op("MUL", [a, c], [y], mul_options(activation), "MulOptions")
    return b.build([a, c], [y])
