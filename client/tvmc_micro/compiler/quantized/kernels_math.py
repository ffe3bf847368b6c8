"""Integer kernels for int8 DIV and BATCH_MATMUL as TIR PrimFuncs (same conventions as `kernels`:
destination-passing, inputs then constant tables then the output; no left shift of a negative value)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from tvm import te, tirx

from tvmc_micro.compiler.quantized import tir_fixedpoint as tfp
from tvmc_micro.compiler.quantized.kernels import _broadcast_index, _finish, _fuse_epilogue
from tvmc_micro.compiler.quantized.requant import Requant, clamp_to_int8
from tvmc_micro.compiler.quantized.tir_fixedpoint import PrimExpr


@dataclass(frozen=True)
class DivParams:
    zero_point_a: int
    zero_point_b: int
    output_zero_point: int
    multiplier: int  # QuantizeMultiplier(s_a / (s_b * s_out))
    shift: int
    act_range: tuple[int, int]


def _i32(v: int) -> PrimExpr:
    return tirx.const(v, "int32")


def _div_value(
    scaled: PrimExpr, headroom: PrimExpr, inv: PrimExpr, recip_shift: PrimExpr, p: DivParams
) -> PrimExpr:
    """TFLite's DivElementwise for one pair (double rounding), from the numerator's x * 2^headroom and
    headroom (x = a - zp, negated for a negative denominator) and the denominator's GetReciprocal.

    Where the reference right-shifts an int32 by 32 or more (its RoundingDivideByPOT with an exponent
    above 31: undefined in C++), this computes what the tflite-micro package does on x86-64: an all-ones
    mask and the shift count taken modulo 32."""
    high = tfp.srdhm(tfp.srdhm(scaled, inv), p.multiplier)
    exponent = headroom.astype("int32") + recip_shift.astype("int32") - _i32(p.shift)
    normal = tfp.rounding_divide_by_pot(high, tirx.min(exponent, _i32(31)))
    wrapped = (high >> (exponent & _i32(31))) + tirx.Select(high >= _i32(0), _i32(1), _i32(0))
    result = tirx.Select(exponent <= _i32(31), normal, wrapped)
    return clamp_to_int8(result + p.output_zero_point, *p.act_range)


def div(
    shape_a: tuple[int, ...],
    shape_b: tuple[int, ...],
    out_shape: tuple[int, ...],
    params: DivParams,
    name: str,
) -> tirx.PrimFunc:
    """int8 DIV (numpy broadcasting): args a, b, then the tables of fixedpoint_math: numerator x * 2^h
    [512] int32 and h [512] int8 (entry a + 128, + 256 for a negative denominator), reciprocal
    multiplier [256] int32 and shift [256] int8 per denominator value (entry b + 128), then out."""
    a = te.placeholder(shape_a, "int8", name="a")
    b = te.placeholder(shape_b, "int8", name="b")
    num_scaled = te.placeholder((512,), "int32", name="num_scaled")
    num_headroom = te.placeholder((512,), "int8", name="num_headroom")
    inv = te.placeholder((256,), "int32", name="recip_multiplier")
    rshift = te.placeholder((256,), "int8", name="recip_shift")

    def body(*idx: tirx.Var) -> PrimExpr:
        av = a[tuple(_broadcast_index(shape_a, out_shape, idx))].astype("int32")
        bv = b[tuple(_broadcast_index(shape_b, out_shape, idx))].astype("int32")
        row = av + 128 + tirx.Select(bv < _i32(params.zero_point_b), _i32(256), _i32(0))
        return _div_value(num_scaled[row], num_headroom[row], inv[bv + 128], rshift[bv + 128], params)

    out = te.compute(out_shape, body, name="out")
    return _finish([a, b, num_scaled, num_headroom, inv, rshift, out], name)


def batch_matmul(
    lhs_shape: tuple[int, ...],
    rhs_shape: tuple[int, ...],
    out_shape: tuple[int, ...],
    adj_x: bool,
    adj_y: bool,
    zero_point_lhs: int,
    zero_point_rhs: int,
    output_zero_point: int,
    requant: Requant,
    name: str,
) -> tirx.PrimFunc:
    """int8 BATCH_MATMUL: out[..., r, c] = requant(Σ_k (lhs[..., r, k] - zp_l)(rhs[..., k, c] - zp_r)) +
    zp_out, batch dimensions broadcast (numpy rules), lhs/rhs read transposed for adj_x/adj_y. The int32
    sum is exact, so its order does not matter."""
    lhs = te.placeholder(lhs_shape, "int8", name="lhs")
    rhs = te.placeholder(rhs_shape, "int8", name="rhs")
    depth = lhs_shape[-2] if adj_x else lhs_shape[-1]
    k = te.reduce_axis((0, depth), name="k")
    batch_out = out_shape[:-2]

    def operand(
        t: te.Tensor, shape: Sequence[int], idx: Sequence[PrimExpr], m: PrimExpr, n: PrimExpr
    ) -> PrimExpr:
        lead = _broadcast_index(tuple(shape[:-2]), tuple(batch_out), list(idx)) if len(shape) > 2 else []
        return t[(*lead, m, n)]

    def acc_body(*idx: tirx.Var) -> PrimExpr:
        batch, r, c = idx[:-2], idx[-2], idx[-1]
        lv = operand(lhs, lhs_shape, batch, k, r) if adj_x else operand(lhs, lhs_shape, batch, r, k)
        rv = operand(rhs, rhs_shape, batch, c, k) if adj_y else operand(rhs, rhs_shape, batch, k, c)
        return te.sum((lv.astype("int32") - zero_point_lhs) * (rv.astype("int32") - zero_point_rhs), axis=[k])

    acc = te.compute(out_shape, acc_body, name="acc")
    out = te.compute(
        out_shape,
        lambda *i: clamp_to_int8(requant.apply(acc[i], None, []) + output_zero_point, -128, 127),
        name="out",
    )
    return _finish([lhs, rhs, out], name, _fuse_epilogue("acc", "out", len(out_shape)))


__all__ = ["DivParams", "batch_matmul", "div"]
