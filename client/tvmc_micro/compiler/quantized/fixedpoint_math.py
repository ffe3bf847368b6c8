"""Compile-time tables for int8 ABS, RSQRT and DIV, computed as TFLite Micro's kernels compute them.

ABS and RSQRT are functions of one int8 value, so each becomes a 256-entry table (entry k is input value
k - 128). DIV depends on both operands; its per-denominator part (TFLite's GetReciprocal of |b - zp|)
becomes two 256-entry tables, the rest is computed per element (kernels_math.div).

The multipliers follow the `tflite-micro` package, the reference (its DIV multiplier is computed in
double, where the GitHub sources compute it in float32; the package wins, as for SUB).
"""

from __future__ import annotations

import numpy as np

from tvmc_micro.compiler.quantized import fixedpoint as fp


def abs_table(in_scale: float, in_zp: int, out_scale: float, out_zp: int) -> np.ndarray:
    """TFLM's AbsEvalQuantized: |x - zp_in|, rescaled only when the float32 scales differ, + zp_out."""
    rescale = np.float32(in_scale) != np.float32(out_scale)
    m, s = fp.quantize_multiplier(float(np.float32(in_scale) / np.float32(out_scale))) if rescale else (0, 0)
    table = np.zeros(256, np.int8)
    for k in range(256):
        value = abs(k - 128 - in_zp)
        out = (fp.multiply_by_quantized_multiplier(value, m, s) if rescale else value) + out_zp
        table[k] = min(max(out, -128), 127)
    return table


def _f3_mul(a: int, b: int) -> int:
    return fp.saturating_rounding_doubling_high_mul(a, b)


def inv_sqrt_multiplier_exp(value: int) -> tuple[int, int]:
    """TFLite's GetInvSqrtQuantizedMultiplierExp(value, kReverseShift = -1): (multiplier, shift)."""
    if value <= 1:
        return fp.INT32_MAX, 0
    shift = 11
    while value >= (1 << 29):
        value //= 4
        shift += 1
    max_left_shift_bits = fp.count_leading_zeros32(value) - 1
    left_shift_bit_pairs = max_left_shift_bits // 2 - 1
    shift -= left_shift_bit_pairs
    value <<= 2 * left_shift_bit_pairs
    fx_input = value >> 1  # F3
    half_input = fp.rounding_divide_by_pot(fx_input, 1)
    half_three = (1 << 28) + (1 << 27)
    x = 1 << 28  # F3 one
    for _ in range(5):
        # x * x * x is an F9; Rescale<3> multiplies by 2^6 with saturation.
        x3 = fp.saturating_rounding_multiply_by_pot(_f3_mul(_f3_mul(x, x), x), 6)
        # Two F6 products, their (wrapping) difference rescaled to F3: by 2^3 with saturation.
        diff = fp.wrap_int32(_f3_mul(half_three, x) - _f3_mul(half_input, x3))
        x = fp.saturating_rounding_multiply_by_pot(diff, 3)
    x = _f3_mul(x, 1518500250)  # times sqrt(2)/2 in F0
    if shift < 0:
        x = fp.wrap_int32(x * (1 << -shift))
        shift = 0
    return x, -shift


def rsqrt_table(in_scale: float, in_zp: int, out_scale: float, out_zp: int) -> np.ndarray:
    """TFLM's RsqrtEvalQuantized per input value. Zero gives 127 as in TFLM; TFLM stops with an error on a
    value below the zero point (a negative real value), where this table also gives 127."""
    real = 1.0 / float(np.float32(np.sqrt(np.float32(in_scale)) * np.float32(out_scale)))
    m, s = fp.quantize_multiplier(real)
    shift_bits = 20
    table = np.zeros(256, np.int8)
    for k in range(256):
        value = k - 128 - in_zp
        if value <= 0:
            table[k] = 127
            continue
        inv, inv_shift = inv_sqrt_multiplier_exp(value)
        data = fp.multiply_by_quantized_multiplier(1, inv, inv_shift + shift_bits)
        out = fp.multiply_by_quantized_multiplier(data, m, s - shift_bits) + out_zp
        table[k] = min(max(out, -128), 127)
    return table


def div_multiplier(scale1: float, scale2: float, out_scale: float) -> tuple[int, int]:
    """DIV's output multiplier: s1 / (s2 * s_out) in double (the tflite-micro package's arithmetic)."""
    f = np.float32
    return fp.quantize_multiplier(float(f(scale1)) / (float(f(scale2)) * float(f(out_scale))))


def div_reciprocal_tables(zp2: int) -> tuple[np.ndarray, np.ndarray]:
    """Per denominator value b (entry b + 128): TFLite's GetReciprocal(|b - zp2|, 31) as (multiplier,
    shift). A denominator equal to its zero point divides by zero (no check in TFLM): the entry is what
    GetReciprocal(0) computes on the reference's host."""
    inv = np.zeros(256, np.int32)
    shift = np.zeros(256, np.int8)
    for k in range(256):
        m, s = fp.get_reciprocal(abs(k - 128 - zp2), 31)
        inv[k], shift[k] = m, s
    return inv, shift


def div_numerator_tables(zp1: int) -> tuple[np.ndarray, np.ndarray]:
    """Per numerator value a and denominator sign (entry a + 128, then a + 128 + 256 for a negative
    denominator, where TFLite negates the numerator): x * 2^headroom and headroom, with headroom =
    CountLeadingSignBits(x) for x = ±(a - zp1)."""
    scaled = np.zeros(512, np.int32)
    headroom = np.zeros(512, np.int8)
    for sign in (0, 1):
        for k in range(256):
            x = k - 128 - zp1
            x = -x if sign else x
            h = count_leading_sign_bits(x)
            scaled[sign * 256 + k] = fp.wrap_int32(x * (1 << h))
            headroom[sign * 256 + k] = h
    return scaled, headroom


def count_leading_sign_bits(x: int) -> int:
    """TFLite's CountLeadingSignBits on int32 (GCC's __builtin_clrsb; 31 for 0)."""
    return 31 if x == 0 else fp.count_leading_zeros32(x if x >= 0 else ~x) - 1


def div_exponent_range(zp1: int, zp2: int, out_shift: int) -> tuple[int, int]:
    """The smallest and largest right shift DIV applies over every pair of int8 operands (numerators
    and denominators at their zero points included)."""
    numerators = {abs(a - zp1) for a in range(-128, 128)} | {-abs(a - zp1) for a in range(-128, 128)}
    headrooms = {count_leading_sign_bits(x) for x in numerators}
    recips = {fp.get_reciprocal(abs(b - zp2), 31)[1] for b in range(-128, 128)}
    lo = min(headrooms) + min(recips) - out_shift
    hi = max(headrooms) + max(recips) - out_shift
    return lo, hi


def max_sum_count(count: int) -> bool:
    """True when an int8 sum over `count` values cannot overflow TFLite's int32 accumulator."""
    return count * 256 < (1 << 31)


__all__ = [
    "abs_table",
    "count_leading_sign_bits",
    "div_exponent_range",
    "div_multiplier",
    "div_numerator_tables",
    "div_reciprocal_tables",
    "inv_sqrt_multiplier_exp",
    "max_sum_count",
    "rsqrt_table",
]
