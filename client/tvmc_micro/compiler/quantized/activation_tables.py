"""int8 -> int8 activations as 256-entry tables, each entry computed with TFLite Micro's integer arithmetic.

An int8 activation is a function of one int8 value, so evaluating TFLM's reference integer kernel once per
possible input at import time gives exactly its output for every input; the device then does one table load
per element (kernels_elementwise.lookup_table), in place when the planner allows. Entry k is input value
k - 128.

Each builder mirrors one TFLM Prepare()+Eval() pair; float parameters are float32 as in the flatbuffer and
the quotients are taken in the precision the C++ uses (noted per function).
"""

from __future__ import annotations

import numpy as np

from tvmc_micro.compiler.quantized import fixedpoint as fp

_INT8_VALUES = range(-128, 128)
f32 = np.float32


def _table(values: list[int]) -> np.ndarray:
    return np.clip(np.asarray(values, dtype=np.int64), -128, 127).astype(np.int8)


def relu_table(
    in_scale: float, in_zp: int, out_scale: float, out_zp: int, lo: float, hi: float
) -> np.ndarray:
    """ReluQuantized (TFLM activations.h) with CalculateReluOpData's range: requantise, then clamp to
    zp + roundf(lo / scale) .. zp + roundf(hi / scale) (float32 quotients), hi = inf meaning no upper bound.
    RELU is lo = 0, hi = inf; RELU_N1_TO_1 (TFLite's kernel; TFLM has none) is lo = -1, hi = 1."""
    m, s = fp.quantize_multiplier(float(f32(in_scale) / f32(out_scale)))
    qmin = max(-128, out_zp + fp.tflite_round(float(f32(lo) / f32(out_scale))))
    qmax = 127 if hi == float("inf") else min(127, out_zp + fp.tflite_round(float(f32(hi) / f32(out_scale))))
    return _table(
        [
            min(max(out_zp + fp.multiply_by_quantized_multiplier(x - in_zp, m, s), qmin), qmax)
            for x in _INT8_VALUES
        ]
    )


def relu6_table(in_scale: float, in_zp: int) -> np.ndarray:
    """Relu6Quantized: clamp the input value to [zero point, FloatToQuantizedType(6.0)] (no requantisation:
    TFLM assumes the output is quantized like the input)."""
    six = min(max(fp.tflite_round(float(f32(6.0) / f32(in_scale))) + in_zp, -128), 127)
    return _table([min(max(x, in_zp), six) for x in _INT8_VALUES])


def leaky_relu_table(in_scale: float, in_zp: int, out_scale: float, out_zp: int, alpha: float) -> np.ndarray:
    """QuantizeLeakyRelu: identity multiplier for x >= zp, alpha multiplier below (both float32 quotients
    widened to double, as CalculateOpDataLeakyRelu computes them); alpha must be >= 0."""
    m_id, s_id = fp.quantize_multiplier(float(f32(in_scale) / f32(out_scale)))
    m_alpha, s_alpha = fp.quantize_multiplier(float(f32(in_scale) * f32(alpha) / f32(out_scale)))
    values = []
    for x in _INT8_VALUES:
        v = x - in_zp
        if v >= 0:
            values.append(out_zp + fp.multiply_by_quantized_multiplier(v, m_id, s_id))
        else:
            values.append(out_zp + fp.multiply_by_quantized_multiplier(v, m_alpha, s_alpha))
    return _table(values)


def _wrap16(x: int) -> int:
    return ((x + (1 << 15)) & 0xFFFF) - (1 << 15)


def _srdhm16(a: int, b: int) -> int:
    """gemmlowp SaturatingRoundingDoublingHighMul on int16 (nudge 2^14, truncating division by 2^15)."""
    if a == b == -(1 << 15):
        return (1 << 15) - 1
    ab = a * b
    nudge = (1 << 14) if ab >= 0 else 1 - (1 << 14)
    q = abs(ab + nudge) >> 15
    return _wrap16(q if ab + nudge >= 0 else -q)


def _sdhm16(a: int, b: int) -> int:
    """hard_swish.h SaturatingDoublingHighMul: (a*b) / 2^15 truncated, no rounding nudge."""
    if a == b == -(1 << 15):
        return (1 << 15) - 1
    ab = a * b
    q = abs(ab) >> 15
    return _wrap16(q if ab >= 0 else -q)


def _rounding_divide_by_pot16(x: int, exponent: int) -> int:
    """gemmlowp RoundingDivideByPOT on int16 lanes, including what it does for exponents >= 16: the mask
    (1 << exponent) - 1 wraps to int16 (-1 from 16 on), so tiny products round to +-1, not to 0."""
    mask = _wrap16((1 << exponent) - 1)
    remainder = _wrap16(x & mask)
    threshold = _wrap16((mask >> 1) + (1 if x < 0 else 0))
    return _wrap16((x >> exponent) + (1 if remainder > threshold else 0))


def _saturating_left_shift16(value: int, amount: int) -> int:
    return min(max(value * (1 << amount), -(1 << 15)), (1 << 15) - 1)


def _downscale_to_int16(multiplier: int) -> int:
    """DownScaleInt32ToInt16Multiplier."""
    if multiplier >= fp.INT32_MAX - (1 << 15):
        return (1 << 15) - 1
    return (multiplier + (1 << 15)) >> 16


def hard_swish_params(in_scale: float, out_scale: float) -> tuple[int, int, int, int]:
    """HardSwishPrepare: (output multiplier, output exponent, reluish multiplier, reluish exponent), the
    multipliers downscaled to int16."""
    hires = f32(1.0 / 128.0) * f32(in_scale)
    out_m, out_e = fp.quantize_multiplier(float(hires / f32(out_scale)))
    rel_m, rel_e = fp.quantize_multiplier(float(hires / (f32(3.0) / f32(32768.0))))
    return _downscale_to_int16(out_m), out_e, _downscale_to_int16(rel_m), rel_e


def hard_swish_table(in_scale: float, in_zp: int, out_scale: float, out_zp: int) -> np.ndarray:
    """reference_ops::HardSwish<int8_t>, all int16 arithmetic (the caller checks output exponent <= 0)."""
    out_m, out_e, rel_m, rel_e = hard_swish_params(in_scale, out_scale)
    values = []
    for x in _INT8_VALUES:
        hires = _wrap16(_wrap16(x - in_zp) * (1 << 7))
        preshift = _srdhm16(hires, out_m)
        reluish = hires
        if rel_e > 0:
            reluish = _saturating_left_shift16(reluish, rel_e - 1)
        reluish = _srdhm16(reluish, rel_m)
        if rel_e > 0:
            reluish = _saturating_left_shift16(reluish, 1)
        if rel_e < 0:
            reluish = _rounding_divide_by_pot16(reluish, -rel_e)
        reluish = _wrap16((reluish + (1 << 15)) >> 1)
        out = _sdhm16(reluish, preshift)
        out = _wrap16(_rounding_divide_by_pot16(out, -out_e) + out_zp)
        values.append(out)
    return _table(values)
