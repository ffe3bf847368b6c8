"""TFLite's run-time integer arithmetic as TIR expressions (int64 intermediates, no intrinsics).

`tvm.tirx.q_multiply_shift` rounds once, half up; TFLite rounds twice, half away from zero
(SaturatingRoundingDoublingHighMul, then RoundingDivideByPOT). Only the latter is bit-exact with
TFLite Micro, so it is spelled out here in plain integer operations that every TIR backend (C, LLVM)
lowers without target-specific intrinsics. The Python twins in `fixedpoint.py` define the semantics;
the tests compare the two on edge cases.
"""

from __future__ import annotations

from typing import Any, TypeAlias

from tvm import tirx
from tvm.ir import Expr as PrimExpr  # TIR expressions are tvm.ir.Expr in TVM 0.27

# An expression, a Python int, or a TE tensor element (TensorSlice).
Expr: TypeAlias = Any

__all__ = ["Expr", "PrimExpr"]

INT32_MIN = -(1 << 31)
INT32_MAX = (1 << 31) - 1


def i32(v: Expr) -> PrimExpr:
    return tirx.const(v, "int32") if isinstance(v, int) else v


def i64(v: Expr) -> PrimExpr:
    return tirx.const(v, "int64") if isinstance(v, int) else v.astype("int64")


def _load(value: Expr) -> PrimExpr:
    if hasattr(value, "asobject"):  # a TE tensor element (TensorSlice) becomes a load expression
        return value.asobject()
    return i32(value) if isinstance(value, int) else value


# No TIR `Let` anywhere: TVM 0.27's bound analysis rejects Let variables that lowering sees twice
# ("Detected bound ... conflicts with memorization"). Instead each formula below uses its operand at
# most twice, so nesting (ADD requantises a sum of two requantised values) stays small; the C and LLVM
# compilers remove the repeated subexpressions.


def srdhm(a: Expr, b: Expr, *, may_both_be_min: bool = False) -> PrimExpr:
    """SaturatingRoundingDoublingHighMul(a, b) on int32 values.

    gemmlowp adds a nudge of 2^30 (or 1 - 2^30 when a·b < 0) and divides by 2^31 truncating; for
    every product that equals floor((a·b + 2^30) / 2^31), an arithmetic shift with one use of a·b.
    The one saturating case (a == b == INT32_MIN) cannot occur when one side is a quantized multiplier
    (always >= 0); callers multiplying two run-time values pass `may_both_be_min=True`.
    """
    product = i64(_load(a)) * i64(_load(b))
    result = ((product + tirx.const(1 << 30, "int64")) >> tirx.const(31, "int64")).astype("int32")
    if may_both_be_min:
        # Only INT32_MIN * INT32_MIN gives 2^62; test the product, not the operands (the simplifier
        # would otherwise fold `c + y == INT32_MIN` into an out-of-range int32 literal).
        result = tirx.Select(product == tirx.const(1 << 62, "int64"), tirx.const(INT32_MAX, "int32"), result)
    return result


def rounding_divide_by_pot(x: Expr, exponent: Expr) -> PrimExpr:
    """RoundingDivideByPOT(x, exponent): x / 2^exponent, ties away from zero (0 <= exponent <= 31).

    gemmlowp compares the remainder with a sign-dependent threshold; that equals
    floor((x + 2^(e-1) - [x < 0]) / 2^e) for e >= 1 (and x for e == 0), computed in int64.
    """
    x = _load(x)
    neg = (x >> tirx.const(31, "int32")).astype("int64")  # -1 when x < 0, else 0
    if isinstance(exponent, int):
        if exponent == 0:
            return x
        total = i64(x) + tirx.const(1 << (exponent - 1), "int64") + neg
        return (total >> tirx.const(exponent, "int64")).astype("int32")
    e = i64(_load(exponent))
    one = tirx.const(1, "int64")
    half = (one << e) >> one
    # For e == 0 the result is x: no half, no sign correction.
    correction = tirx.Select(e > tirx.const(0, "int64"), neg, tirx.const(0, "int64"))
    return ((i64(x) + half + correction) >> e).astype("int32")


def shift_left(x: Expr, amount: Expr) -> PrimExpr:
    """int32 x << amount (0 <= amount <= 31), wrapping like the shift TFLite compiles to, without C's
    undefined behaviour: shifting a negative value left is undefined in C99/C11.

    Computed as x * 2^amount in int64 (exact) and narrowed to int32 (implementation-defined, two's
    complement wrap on every compiler we target); the C compiler emits the same single shift. Not as a
    shift of the unsigned representation: TVM's bound analysis takes int32(<uint32 value>) for
    non-negative and then drops the lower clamp of a requantised value (wrong results). tir_codegen
    rewrites any remaining signed `<<` into the unsigned form after simplification, where that is safe."""
    v = _load(x)
    if isinstance(amount, int):
        scale: PrimExpr = tirx.const(1 << amount, "int64")
    else:
        scale = tirx.const(1, "int64") << i64(_load(amount))
    return (i64(v) * scale).astype("int32")


def multiply_by_quantized_multiplier(
    x: Expr, multiplier: Expr, left_shift: Expr, right_shift: Expr
) -> PrimExpr:
    """MultiplyByQuantizedMultiplier with the shift already split into its left and right parts.

    TFLite computes left = max(shift, 0), right = max(-shift, 0) at run time; splitting at import time
    lets per-tensor kernels drop the left shift entirely (it is almost always zero).
    """
    x = i32(x)
    if not (isinstance(left_shift, int) and left_shift == 0):
        x = shift_left(x, left_shift)
    return rounding_divide_by_pot(srdhm(x, multiplier), right_shift)


def saturating_rounding_multiply_by_pot(x: PrimExpr, exponent: int) -> PrimExpr:
    """gemmlowp SaturatingRoundingMultiplyByPOT<exponent> for a constant exponent."""
    if exponent <= 0:
        return rounding_divide_by_pot(x, -exponent)
    threshold = (1 << (31 - exponent)) - 1
    v = _load(x)
    shifted = shift_left(v, exponent)
    return tirx.Select(
        v > tirx.const(threshold, "int32"),
        tirx.const(INT32_MAX, "int32"),
        tirx.Select(v < tirx.const(-threshold, "int32"), tirx.const(INT32_MIN, "int32"), shifted),
    )


def count_leading_zeros_u32(x: PrimExpr) -> PrimExpr:
    """Leading zeros of a 32-bit value (32 for 0), as 32 independent compares: no nesting, no Lets,
    and the C target has no clz intrinsic. Used once per softmax row."""

    # Unsigned compares on the value widened to int64 (TVM's folder refuses some uint arithmetic).
    def body(v: PrimExpr) -> PrimExpr:
        total: PrimExpr = tirx.const(0, "int32")
        for k in range(32):
            total = total + tirx.Select(
                v < tirx.const(1 << k, "int64"), tirx.const(1, "int32"), tirx.const(0, "int32")
            )
        return total

    return body(_load(x).astype("int64") & tirx.const(0xFFFFFFFF, "int64"))


def rounding_half_sum_with_one(a: PrimExpr) -> PrimExpr:
    """gemmlowp RoundingHalfSum(a, F0::One()) for int32 a (the half denominator of 1/(1+a))."""

    def body(s: PrimExpr) -> PrimExpr:
        sign = tirx.Select(s >= tirx.const(0, "int64"), tirx.const(1, "int64"), tirx.const(-1, "int64"))
        return tirx.truncdiv(s + sign, tirx.const(2, "int64")).astype("int32")

    return body(i64(_load(a)) + tirx.const(INT32_MAX, "int64"))


def newton_reciprocal_start(half_denominator: PrimExpr) -> PrimExpr:
    """x0 = 48/17 - 32/17 * half_denominator, in F2 (gemmlowp's Newton-Raphson initial guess)."""
    return tirx.const(1515870810, "int32") + srdhm(half_denominator, -1010580540)


def newton_reciprocal_product(x: PrimExpr, half_denominator: PrimExpr) -> PrimExpr:
    """x * (1 - half_denominator * x), an F4 value (first half of one Newton-Raphson iteration)."""
    one_minus = tirx.const(1 << 29, "int32") - srdhm(half_denominator, x, may_both_be_min=True)
    return srdhm(x, one_minus, may_both_be_min=True)


def newton_reciprocal_update(x: PrimExpr, product: PrimExpr) -> PrimExpr:
    """x + Rescale<2>(product): the F2 estimate after one Newton-Raphson iteration."""
    return i32(x) + saturating_rounding_multiply_by_pot(product, 2)
