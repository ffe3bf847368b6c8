"""TFLite / TFLite Micro integer arithmetic, reproduced exactly in Python.

Everything that TFLM computes once in `Prepare()` (multipliers, shifts, activation ranges, input radii)
and every per-value function of an int8 input (logistic, tanh, the softmax exp) is computed here at
import time, with the same rounding and overflow behaviour as the C++ reference, so the kernels only
do what TFLM does per element at run time. Doubles are Python floats (IEEE binary64, like C `double`);
`float` tensor parameters are read as float32 and promoted exactly like `static_cast<double>(float)`.

Names follow the C++ functions they mirror (`tensorflow/lite/kernels/internal/quantization_util.cc`,
`common.h`, gemmlowp `fixedpoint.h`) so a reader can check one against the other.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np

INT32_MIN = -(1 << 31)
INT32_MAX = (1 << 31) - 1


def wrap_int32(x: int) -> int:
    """Two's-complement wrap, what a C `int32_t` cast (or overflowing arithmetic) does in practice."""
    return ((x + (1 << 31)) & 0xFFFFFFFF) - (1 << 31)


def f32(x: float) -> float:
    """A float32 value (as stored in the flatbuffer) promoted to double."""
    return float(np.float32(x))


def tflite_round(x: float) -> int:
    """std::round: to nearest, ties away from zero (not Python's banker's rounding)."""
    whole = math.floor(abs(x))
    # |x| - floor(|x|) is exact in binary floating point, so the tie test is exact too.
    if abs(x) - whole >= 0.5:
        whole += 1
    return int(math.copysign(whole, x)) if whole else 0


class RequantRangeError(ValueError):
    """A requantisation scale TFLite's fixed point cannot represent (TFLite Micro's kernels would shift
    an int32 left by 31 or more: undefined behaviour, not a result to match)."""


# The largest left shift MultiplyByQuantizedMultiplier takes on an int32 accumulator without overflow.
MAX_LEFT_SHIFT = 30


def quantize_multiplier(real: float) -> tuple[int, int]:
    """QuantizeMultiplier (double rounding build): real ≈ m · 2^(shift-31), m in [2^30, 2^31)."""
    if real == 0.0:
        return 0, 0
    if not math.isfinite(real):
        raise RequantRangeError(f"requantisation scale {real!r} is not finite")
    q, shift = math.frexp(real)
    q_fixed = tflite_round(q * (1 << 31))
    if q_fixed > (1 << 31):
        raise ValueError(f"QuantizeMultiplier({real!r}): mantissa out of range")
    if q_fixed == (1 << 31):
        q_fixed //= 2
        shift += 1
    if shift < -31:
        shift, q_fixed = 0, 0
    return q_fixed, shift


def check_requant_shift(real: float, shift: int) -> None:
    """MultiplyByQuantizedMultiplier shifts the int32 accumulator left by `shift` first: past 30 bits that
    overflows in TFLite Micro (undefined behaviour), so such a requantisation is refused. (Other users
    of QuantizeMultiplier, e.g. SOFTMAX's input scaling, take larger shifts legitimately.)"""
    if shift > MAX_LEFT_SHIFT:
        raise RequantRangeError(
            f"requantisation scale {real:.6g} needs a left shift of {shift} bits; TFLite's fixed point "
            f"takes at most {MAX_LEFT_SHIFT} (input scale × weight scale / output scale is absurdly large)"
        )


def saturating_rounding_doubling_high_mul(a: int, b: int) -> int:
    """gemmlowp SaturatingRoundingDoublingHighMul on int32: (a·b·2 + round) >> 32, ties away from zero."""
    if a == b == INT32_MIN:
        return INT32_MAX
    ab = a * b
    nudge = (1 << 30) if ab >= 0 else 1 - (1 << 30)
    # C++ integer division truncates toward zero.
    return wrap_int32(_trunc_div(ab + nudge, 1 << 31))


def _trunc_div(n: int, d: int) -> int:
    q = abs(n) // abs(d)
    return q if (n >= 0) == (d > 0) else -q


def rounding_divide_by_pot(x: int, exponent: int) -> int:
    """gemmlowp RoundingDivideByPOT: x / 2^exponent rounded to nearest, ties away from zero."""
    if not 0 <= exponent <= 31:
        raise ValueError(f"RoundingDivideByPOT exponent {exponent} outside [0, 31]")
    mask = (1 << exponent) - 1
    remainder = x & mask
    threshold = (mask >> 1) + (1 if x < 0 else 0)
    return (x >> exponent) + (1 if remainder > threshold else 0)


def multiply_by_quantized_multiplier(x: int, multiplier: int, shift: int) -> int:
    """MultiplyByQuantizedMultiplier (TFLite's default double-rounding variant)."""
    left = shift if shift > 0 else 0
    right = -shift if shift < 0 else 0
    return rounding_divide_by_pot(
        saturating_rounding_doubling_high_mul(wrap_int32(x * (1 << left)), multiplier), right
    )


def saturating_rounding_multiply_by_pot(x: int, exponent: int) -> int:
    """gemmlowp SaturatingRoundingMultiplyByPOT<exponent> on int32."""
    if exponent == 0:
        return x
    if exponent < 0:
        return rounding_divide_by_pot(x, -exponent)
    threshold = (1 << (31 - exponent)) - 1
    if x > threshold:
        return INT32_MAX
    if x < -threshold:
        return INT32_MIN
    return wrap_int32(x << exponent)


def rounding_half_sum(a: int, b: int) -> int:
    s = a + b
    return _trunc_div(s + (1 if s >= 0 else -1), 2)


# --- gemmlowp fixed-point transcendental functions (raw int32 values; integer bits noted per call) ---


def _fx_mul(a: int, b: int) -> int:
    """FixedPoint<a_bits> * FixedPoint<b_bits> -> FixedPoint<a_bits + b_bits>: raw SRDHM."""
    return saturating_rounding_doubling_high_mul(a, b)


def _fx_one(integer_bits: int) -> int:
    return INT32_MAX if integer_bits == 0 else 1 << (31 - integer_bits)


def exp_on_interval_between_negative_one_quarter_and_0_excl(a: int) -> int:
    """F0 -> F0."""
    constant_term = 1895147668
    constant_1_over_3 = 715827883
    x = wrap_int32(a + (1 << 28))  # a + ConstantPOT<-3> in F0
    x2 = _fx_mul(x, x)
    x3 = _fx_mul(x2, x)
    x4 = _fx_mul(x2, x2)
    x4_over_4 = saturating_rounding_multiply_by_pot(x4, -2)
    poly = saturating_rounding_multiply_by_pot(
        wrap_int32(_fx_mul(wrap_int32(x4_over_4 + x3), constant_1_over_3) + x2), -1
    )
    return wrap_int32(constant_term + _fx_mul(constant_term, wrap_int32(x + poly)))


_EXP_BARREL = (
    (-2, 1672461947),
    (-1, 1302514674),
    (0, 790015084),
    (1, 290630308),
    (2, 39332535),
    (3, 720401),
    (4, 242),
)


def exp_on_negative_values(a: int, integer_bits: int) -> int:
    """exp(a) for a <= 0: FixedPoint<integer_bits> -> F0."""
    fractional_bits = 31 - integer_bits
    one_quarter = 1 << (fractional_bits - 2)
    mask = one_quarter - 1
    a_mod_quarter_minus_one_quarter = wrap_int32((a & mask) - one_quarter)
    # Rescale<0> of an F<integer_bits> value: SaturatingRoundingMultiplyByPOT<integer_bits>.
    result = exp_on_interval_between_negative_one_quarter_and_0_excl(
        saturating_rounding_multiply_by_pot(a_mod_quarter_minus_one_quarter, integer_bits)
    )
    remainder = wrap_int32(a_mod_quarter_minus_one_quarter - a)
    for exponent, multiplier in _EXP_BARREL:
        if integer_bits > exponent:
            shift_amount = fractional_bits + exponent
            if remainder & (1 << shift_amount):
                result = _fx_mul(result, multiplier)
    if integer_bits > 5:
        clamp = -(1 << (36 - integer_bits))
        if a < clamp:
            result = 0
    if a == 0:
        result = INT32_MAX
    return result


def _newton_reciprocal_f2(half_denominator: int) -> int:
    """The Newton-Raphson loop shared by 1/(1+x) and (1-x)/(1+x): returns x ≈ 1/half_denominator in F2."""
    constant_48_over_17 = 1515870810
    constant_neg_32_over_17 = -1010580540
    x = wrap_int32(constant_48_over_17 + _fx_mul(half_denominator, constant_neg_32_over_17))
    one_f2 = _fx_one(2)
    for _ in range(3):
        half_denominator_times_x = _fx_mul(half_denominator, x)
        one_minus = wrap_int32(one_f2 - half_denominator_times_x)
        # x * one_minus is an F4; Rescale<2> multiplies by 2^2 with saturation.
        x = wrap_int32(x + saturating_rounding_multiply_by_pot(_fx_mul(x, one_minus), 2))
    return x


def one_over_one_plus_x_for_x_in_0_1(a: int) -> int:
    """F0 -> F0."""
    half_denominator = rounding_half_sum(a, INT32_MAX)
    x = _newton_reciprocal_f2(half_denominator)
    # ExactMulByPot<-1> reinterprets F2 as F1; Rescale<0> from F1 multiplies by 2 with saturation.
    return saturating_rounding_multiply_by_pot(x, 1)


def one_minus_x_over_one_plus_x_for_x_in_0_1(a: int) -> int:
    """F0 -> F0."""
    half_denominator = rounding_half_sum(a, INT32_MAX)
    x = _newton_reciprocal_f2(half_denominator)
    return saturating_rounding_multiply_by_pot(wrap_int32(x - _fx_one(2)), 2)


def gemmlowp_logistic(a: int, integer_bits: int) -> int:
    """gemmlowp::logistic: F<integer_bits> -> F0."""
    if a == 0:
        return 1 << 30
    abs_input = a if a > 0 else wrap_int32(-a)
    result_if_positive = one_over_one_plus_x_for_x_in_0_1(
        exp_on_negative_values(wrap_int32(-abs_input), integer_bits)
    )
    if a > 0:
        return result_if_positive
    return wrap_int32(INT32_MAX - result_if_positive)


def gemmlowp_tanh(a: int, integer_bits: int) -> int:
    """gemmlowp::tanh: F<integer_bits> -> F0."""
    if a == 0:
        return 0
    n = a if a < 0 else wrap_int32(-a)
    # ExactMulByPot<1>: the same raw value read with one more integer bit.
    t = one_minus_x_over_one_plus_x_for_x_in_0_1(exp_on_negative_values(n, integer_bits + 1))
    return wrap_int32(-t) if a < 0 else t


def count_leading_zeros32(x: int) -> int:
    x &= 0xFFFFFFFF
    return 32 - x.bit_length()


def get_reciprocal(x: int, x_integer_digits: int) -> tuple[int, int]:
    """TFLite GetReciprocal: (F0 raw of 1/x-ish scale, num_bits_over_unit)."""
    headroom_plus_one = count_leading_zeros32(x)
    num_bits_over_unit = x_integer_digits - headroom_plus_one
    shifted_sum_minus_one = wrap_int32(((x & 0xFFFFFFFF) << headroom_plus_one) - (1 << 31))
    return one_over_one_plus_x_for_x_in_0_1(shifted_sum_minus_one), num_bits_over_unit


def calculate_input_radius(
    input_integer_bits: int, input_left_shift: int, total_signed_bits: int = 31
) -> int:
    max_input_rescaled = (
        1.0
        * ((1 << input_integer_bits) - 1)
        * (1 << (total_signed_bits - input_integer_bits))
        / (1 << input_left_shift)
    )
    return math.floor(max_input_rescaled)


def activation_range(
    activation: str, scale: float, zero_point: int, qmin: int = -128, qmax: int = 127
) -> tuple[int, int]:
    """CalculateActivationRangeQuantized: `f / scale` is a float32 division in TFLite."""

    def quantize(f: float) -> int:
        return zero_point + tflite_round(float(np.float32(f) / np.float32(scale)))

    if activation == "NONE":
        return qmin, qmax
    if activation == "RELU":
        return max(qmin, quantize(0.0)), qmax
    if activation == "RELU6":
        return max(qmin, quantize(0.0)), min(qmax, quantize(6.0))
    if activation == "RELU_N1_TO_1":
        return max(qmin, quantize(-1.0)), min(qmax, quantize(1.0))
    raise ValueError(f"fused activation {activation} has no quantized range")


# --- per-op parameter and table computation (what TFLM's Prepare() does) ---


def softmax_exp_table(input_scale: float, beta: float) -> np.ndarray:
    """exp(diff) in F0 for every int8 difference diff = x - max in [-255, 0]; 0 below diff_min.

    Index k holds diff = k - 255. A zero entry makes the element contribute nothing to the sum and
    come out as -128, exactly the `input_diff < diff_min` branch of the reference kernel. The kernel
    stores only the tail from the first non-zero entry (`trim_exp_table`).
    """
    scaled_diff_integer_bits = 5
    real = min(beta * input_scale * (1 << (31 - scaled_diff_integer_bits)), (1 << 31) - 1.0)
    multiplier, left_shift = quantize_multiplier(real)
    if left_shift < 0:
        raise ValueError("softmax input multiplier below one")
    diff_min = -calculate_input_radius(scaled_diff_integer_bits, left_shift)
    table = np.zeros(256, dtype=np.int32)
    for k in range(256):
        diff = k - 255
        if diff >= diff_min:
            rescaled = saturating_rounding_doubling_high_mul(wrap_int32(diff * (1 << left_shift)), multiplier)
            table[k] = exp_on_negative_values(rescaled, scaled_diff_integer_bits)
    return table


def trim_exp_table(table: np.ndarray) -> tuple[np.ndarray, int]:
    """(table[first:], first): the leading zeros (differences below diff_min) need not be stored."""
    nonzero = np.flatnonzero(table)
    first = int(nonzero[0]) if nonzero.size else table.size - 1
    return table[first:].copy(), first


def _sigmoid_like_params(input_scale: float) -> tuple[int, int, int]:
    input_integer_bits = 4
    real = input_scale * float(1 << (31 - input_integer_bits))
    q, left_shift = math.frexp(real)
    # TFLM casts without the 2^31 overflow check QuantizeMultiplier has: mirror the wrap.
    multiplier = wrap_int32(tflite_round(q * (1 << 31)))
    radius = calculate_input_radius(input_integer_bits, left_shift, 31)
    return multiplier, left_shift, radius


def _sigmoid_like_table(
    input_scale: float, input_zero_point: int, curve: Callable[[int, int], int], out_bits: int, offset: int
) -> np.ndarray:
    """int8 output for every int8 input (index x + 128) of reference_integer_ops::Logistic / Tanh:
    saturated beyond the input radius, else `curve` on the Q4 rescaled input, its Q0.31 result rounded
    to `out_bits` fractional bits and offset."""
    multiplier, left_shift, radius = _sigmoid_like_params(input_scale)
    table = np.zeros(256, dtype=np.int8)
    for k in range(256):
        inp = (k - 128) - input_zero_point
        if inp <= -radius:
            out = -128
        elif inp >= radius:
            out = 127
        else:
            in_q4 = multiply_by_quantized_multiplier(inp, multiplier, left_shift)
            out_q0 = curve(in_q4, 4)
            out = min(max(rounding_divide_by_pot(out_q0, 31 - out_bits) + offset, -128), 127)
        table[k] = out
    return table


def logistic_table(input_scale: float, input_zero_point: int) -> np.ndarray:
    """int8 LOGISTIC output for every int8 input (index x + 128), as reference_integer_ops::Logistic."""
    return _sigmoid_like_table(input_scale, input_zero_point, gemmlowp_logistic, 8, -128)


def tanh_table(input_scale: float, input_zero_point: int) -> np.ndarray:
    """int8 TANH output for every int8 input (index x + 128), as reference_integer_ops::Tanh."""
    return _sigmoid_like_table(input_scale, input_zero_point, gemmlowp_tanh, 7, 0)


def mean_multiplier(input_scale: float, output_scale: float, num_elements: int) -> tuple[int, int]:
    """QuantizedMeanOrSum's multiplier with 1/num_elements folded in."""
    multiplier, shift = quantize_multiplier(input_scale / output_scale)
    s = 63 - (64 - num_elements.bit_length())  # 63 - CountLeadingZeros(uint64)
    s = min(s, 32)
    s = min(s, 31 + shift)
    multiplier = wrap_int32((multiplier << s) // num_elements)  # int64 division, both non-negative
    return multiplier, shift - s
