"""Integer kernels for int16 activations (TFLite's "16x8" quantisation: int16 data, int8 weights).

Same conventions as kernels.py (destination-passing PrimFuncs, NHWC / OHWI, epilogue fused into the
reduction), with TFLite Micro's int16 reference arithmetic: zero points of int16 tensors are 0 (the
converter guarantees it and the checks refuse anything else), CONV_2D and TRANSPOSE_CONV accumulate in
int64 (int32 when the model's bias is int32) and requantise with the int64 MultiplyByQuantizedMultiplier,
ADD/SUB rescale both sides with a left shift of 15. Data-movement and requantise kernels take any
integer dtype.
"""

from __future__ import annotations

import numpy as np
from tvm import te, tirx

from tvmc_micro.compiler.quantized import tir_fixedpoint as tfp
from tvmc_micro.compiler.quantized.kernels import (
    _broadcast_index,
    _finish,
)
from tvmc_micro.compiler.quantized.requant import clamp_to_int8
from tvmc_micro.compiler.quantized.tir_fixedpoint import PrimExpr


def _clamp(value: PrimExpr, lo: int, hi: int, dtype: str) -> PrimExpr:
    return clamp_to_int8(value, lo, hi, dtype)


def _dtype_range(dtype: str) -> tuple[int, int]:
    info = np.iinfo(dtype)
    return int(info.min), int(info.max)


def _mbqm(x: PrimExpr, multiplier: int, shift: int) -> PrimExpr:
    """MultiplyByQuantizedMultiplier (int32 overload, TFLite's double rounding) with constants."""
    return tfp.multiply_by_quantized_multiplier(x, multiplier, max(shift, 0), max(-shift, 0))


def leaky_relu(
    shape: tuple[int, ...],
    dtype: str,
    input_zero_point: int,
    output_zero_point: int,
    identity: tuple[int, int],
    alpha: tuple[int, int],
    alpha_negative: bool,
    name: str,
) -> tirx.PrimFunc:
    """QuantizeLeakyRelu: x - zp >= 0 scaled by the identity multiplier, else by alpha's (whose sign is
    applied after the multiplication, as TFLM does for a negative alpha)."""
    data = te.placeholder(shape, dtype, name="data")

    def body(*i: tirx.Var) -> PrimExpr:
        v = data[i].astype("int32") - input_zero_point
        neg = _mbqm(v, *alpha)
        scaled = tirx.Select(v >= 0, _mbqm(v, *identity), -neg if alpha_negative else neg)
        return _clamp(scaled + output_zero_point, *_dtype_range(dtype), dtype)

    out = te.compute(shape, body, name="out")
    return _finish([data, out], name)


def requantize(
    shape: tuple[int, ...],
    in_dtype: str,
    out_dtype: str,
    input_zero_point: int,
    output_zero_point: int,
    multiplier: int,
    shift: int,
    name: str,
) -> tirx.PrimFunc:
    """QUANTIZE between integer types (reference_ops::Requantize), saturated to the output type."""
    data = te.placeholder(shape, in_dtype, name="data")

    def body(*i: tirx.Var) -> PrimExpr:
        v = data[i].astype("int32") - input_zero_point
        raw = _mbqm(v, multiplier, shift) + output_zero_point
        if out_dtype == "int32":
            return raw
        return _clamp(raw, *_dtype_range(out_dtype), out_dtype)

    out = te.compute(shape, body, name="out")
    return _finish([data, out], name)


def quantize_float(
    shape: tuple[int, ...], scale: float, zero_point: int, out_dtype: str, name: str
) -> tirx.PrimFunc:
    """AffineQuantize float32 -> int: round(x / float(scale)) half away from zero, + zp, saturated."""
    data = te.placeholder(shape, "float32", name="data")
    lo, hi = _dtype_range(out_dtype)

    def body(*i: tirx.Var) -> PrimExpr:
        v = data[i] / tirx.const(np.float32(scale), "float32")
        t = tirx.trunc(v)
        frac = v - t
        half = tirx.const(0.5, "float32")
        rounded = tirx.Select(frac >= half, t + 1.0, tirx.Select(frac <= -half, t - 1.0, t))
        # Saturate in float: converting an out-of-range float to an integer is undefined in C.
        sat = tirx.max(
            tirx.min(rounded + float(zero_point), tirx.const(float(hi), "float32")),
            tirx.const(float(lo), "float32"),
        )
        return sat.astype(out_dtype)

    out = te.compute(shape, body, name="out")
    return _finish([data, out], name)


def mul(
    shape_a: tuple[int, ...],
    shape_b: tuple[int, ...],
    out_shape: tuple[int, ...],
    multiplier: tuple[int, int],
    act_range: tuple[int, int],
    name: str,
) -> tirx.PrimFunc:
    """int16 MUL (zero points 0, as TFLM requires): the int32 product requantised once, clamped."""
    a = te.placeholder(shape_a, "int16", name="a")
    b = te.placeholder(shape_b, "int16", name="b")

    def body(*idx: tirx.Var) -> PrimExpr:
        va = a[tuple(_broadcast_index(shape_a, out_shape, idx))].astype("int32")
        vb = b[tuple(_broadcast_index(shape_b, out_shape, idx))].astype("int32")
        return _clamp(_mbqm(va * vb, *multiplier), *act_range, "int16")

    out = te.compute(out_shape, body, name="out")
    return _finish([a, b, out], name)
