"""Integer kernels for int16 LOGISTIC, TANH, SOFTMAX, MEAN and RESIZE_NEAREST_NEIGHBOR, with TFLite
Micro's reference arithmetic (reference_integer_ops::Logistic / Tanh for int16, reference_ops::
SoftmaxInt16 with its two interpolated 513-entry tables, QuantizedMeanOrSum<int16_t>).

Conventions as in kernels.py (destination-passing PrimFuncs, tables as constant arguments). No signed
value is ever shifted left: left shifts are multiplications by a power of two in a type wide enough for
the product (the converters refuse parameters for which it would not be), so the C is clean under
-fsanitize=undefined. Table indices are clamped even in the branch a Select discards, so every load
in the generated C stays in bounds.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
from tvm import s_tir, te, tirx

from tvmc_micro.compiler.quantized import tir_fixedpoint as tfp
from tvmc_micro.compiler.quantized.kernels import (
    _finish,
    _flatten,
    _fuse_epilogue,
    _unflatten,
)
from tvmc_micro.compiler.quantized.kernels_moves import (
    is_integer_ratio,
)
from tvmc_micro.compiler.quantized.kernels_reduce import (
    int32_sum_over_axes,
)
from tvmc_micro.compiler.quantized.tir_fixedpoint import PrimExpr


def _i32(v: int) -> PrimExpr:
    return tirx.const(v, "int32")


def _i64(v: int) -> PrimExpr:
    return tirx.const(v, "int64")


def _clamp(value: PrimExpr, lo: int, hi: int) -> PrimExpr:
    return tirx.max(tirx.min(value, _i32(hi)), _i32(lo))


def mbqm(x: PrimExpr, multiplier: int, shift: int) -> PrimExpr:
    """MultiplyByQuantizedMultiplier(int32 x, multiplier, shift): x * 2^max(shift, 0) as a multiplication
    (the caller guarantees it fits int32), then gemmlowp's doubling high multiply and rounding shift."""
    if shift > 0:
        x = x * _i32(1 << shift)
    return tfp.multiply_by_quantized_multiplier(x, multiplier, 0, max(-shift, 0))


def _sigmoid_interpolation(
    data: te.Tensor, table: te.Tensor, idx: Sequence[PrimExpr], multiplier: int, shift: int, tanh: bool
) -> PrimExpr:
    """reference_integer_ops::Logistic / Tanh (int16): rescale, interpolate |x| in the sigmoid table
    (9 fraction bits for LOGISTIC, 8 for TANH), mirror negative inputs, back to Q0.15."""
    x = data[tuple(idx)].astype("int32") * _i32(multiplier)
    if shift > 0:
        x = (x + _i32(1 << (shift - 1))) >> _i32(shift)  # arithmetic shift right, as the C++ does
    a = tirx.Select(x < _i32(0), -x, x)
    frac_bits = 8 if tanh else 9
    uh = a >> _i32(frac_bits)
    safe = tirx.min(uh, _i32(254))
    ua = table[safe].astype("int32")
    ub = table[safe + 1].astype("int32")
    ut = a & _i32((1 << frac_bits) - 1)
    interp = (ua << _i32(frac_bits)) + ut * (ub - ua)  # ua >= 0: a left shift of a non-negative value
    saturated = _i32(0xFFFF << 8) if tanh else _i32(0x7FFF << 10)
    result = tirx.Select(uh >= _i32(255), saturated, interp)
    if tanh:
        pos = result - _i32(1 << 23) + _i32(1 << 7)
        neg = _i32(1 << 23) + _i32((1 << 7) - 1) - result
        return (tirx.Select(x >= _i32(0), pos, neg) >> _i32(8)).astype("int16")
    pos = result + _i32(1 << 9)
    neg = _i32(1 << 25) - result + _i32((1 << 9) - 1)
    return (tirx.Select(x >= _i32(0), pos, neg) >> _i32(10)).astype("int16")


def logistic_tanh(
    shape: tuple[int, ...], multiplier: int, shift: int, tanh: bool, name: str
) -> tirx.PrimFunc:
    """int16 LOGISTIC or TANH (zero points 0, output scale 2^-15); takes the data and the uint16 sigmoid
    table. |x * multiplier| < 2^30 (multiplier <= 32767), so the rescale fits int32."""
    data = te.placeholder(shape, "int16", name="data")
    table = te.placeholder((256,), "uint16", name="sigmoid_table")
    out = te.compute(
        shape, lambda *i: _sigmoid_interpolation(data, table, i, multiplier, shift, tanh), name="out"
    )
    return _finish([data, table, out], name)


def _lut_lookup(lut: te.Tensor, value: PrimExpr) -> PrimExpr:
    """LUTLookup(int16 value, 513-entry lut): base at 256 + (value >> 7), slope to the next entry (as
    int16), the low 7 bits interpolated with rounding; the sum truncated to int16."""
    index = tirx.floordiv(value, _i32(128)) + _i32(256)
    offset = tirx.floormod(value, _i32(128))
    base = lut[index].astype("int32")
    slope = (lut[index + 1].astype("int32") - base).astype("int16").astype("int32")
    delta = (slope * offset + _i32(64)) >> _i32(7)
    return (base + delta).astype("int16").astype("int32")


def softmax(shape: tuple[int, ...], multiplier: int, shift: int, name: str) -> tirx.PrimFunc:
    """reference_ops::SoftmaxInt16 over the last axis; takes the data, the exp table and the 1/(1+x)
    table (513 int16 each, activation_tables16).

    exp(x - max) is looked up after scaling the difference so that [-65535, 0] is [-10, 0]; the row's
    sum of exps is normalised by its leading zeros, its reciprocal looked up, and each exp multiplied by
    it in int64. The exps are recomputed for the output instead of cached (no scratch buffer). The
    converter keeps shift <= 15 (|diff| * 2^15 < 2^31) and the depth <= 65536 (the sum fits int32)."""
    rows = int(np.prod(shape[:-1])) if len(shape) > 1 else 1
    depth = shape[-1]
    data = te.placeholder(shape, "int16", name="data")
    exp_lut = te.placeholder((513,), "int16", name="exp_lut")
    recip_lut = te.placeholder((513,), "int16", name="reciprocal_lut")
    flat = te.compute((rows, depth), lambda r, c: data[_unflatten(r, c, shape)], name="flat")
    k = te.reduce_axis((0, depth), name="k")
    row_max = te.compute((rows,), lambda r: te.max(flat[r, k], axis=[k]), name="row_max")

    def exp_of(r: PrimExpr, c: PrimExpr) -> PrimExpr:
        diff = flat[r, c].astype("int32") - row_max[r].astype("int32")
        scaled = mbqm(diff, multiplier, shift) + _i32(32767)
        return _lut_lookup(exp_lut, _clamp(scaled, -32768, 32767))

    k2 = te.reduce_axis((0, depth), name="k2")
    sum_exps = te.compute((rows,), lambda r: te.sum(exp_of(r, k2), axis=[k2]), name="sum_exps")
    headroom = te.compute((rows,), lambda r: tfp.count_leading_zeros_u32(sum_exps[r]), name="headroom")

    def reciprocal_of(r: PrimExpr) -> PrimExpr:
        # sum > 0, so (sum << (headroom - 1)) is a left shift of a non-negative int64.
        normalised = sum_exps[r].astype("int64") << (headroom[r].astype("int64") - _i64(1))
        shifted = ((normalised + _i64(1 << 13)) >> _i64(14)).astype("int32")
        return _lut_lookup(recip_lut, _clamp(shifted - _i32((1 << 15) + (1 << 16)), -32768, 32767))

    reciprocal = te.compute((rows,), reciprocal_of, name="reciprocal")

    def body(*idx: tirx.Var) -> PrimExpr:
        r, c = _flatten(idx, shape)
        right = (_i32(31) - headroom[r]).astype("int64")
        prod = exp_of(r, c).astype("int64") * reciprocal[r].astype("int64")
        result = ((prod + (_i64(1) << (right - _i64(1)))) >> right).astype("int32")
        return _clamp(result, 0, 32767).astype("int16")

    out = te.compute(shape, body, name="out")

    def schedule(sch: s_tir.Schedule) -> None:
        sch.compute_inline(sch.get_sblock("flat"))

    return _finish([data, exp_lut, recip_lut, out], name, schedule)


def mean(
    data_shape: tuple[int, ...],
    axes: Sequence[int],
    input_zero_point: int,
    output_zero_point: int,
    multiplier: int,
    shift: int,
    name: str,
) -> tirx.PrimFunc:
    """QuantizedMeanOrSum<int16_t>: int32 sum over `axes` (kept as 1; the caller reshapes), minus
    zp * count, one requantisation with 1/count folded into (multiplier, shift), clamped to int16. The
    converter checks that the sum, and the sum times 2^shift, fit int32."""
    data = te.placeholder(data_shape, "int16", name="data")
    acc, count = int32_sum_over_axes(data, axes)
    out_shape = tuple(int(d) for d in acc.shape)
    out = te.compute(
        out_shape,
        lambda *i: _clamp(
            mbqm(acc[i] - _i32(input_zero_point * count), multiplier, shift) + _i32(output_zero_point),
            -32768,
            32767,
        ).astype("int16"),
        name="out",
    )
    return _finish([data, out], name, _fuse_epilogue("acc", "out", len(out_shape)))


def resize_nearest(
    data_shape: tuple[int, ...],
    out_shape: tuple[int, ...],
    rows: Sequence[int],
    cols: Sequence[int],
    dtype: str,
    name: str,
) -> tirx.PrimFunc:
    """RESIZE_NEAREST_NEIGHBOR (NHWC) on any element type: out[n, y, x, c] = in[n, rows[y], cols[x], c],
    a plain integer ratio as an index expression, any other mapping an int32 table argument (rows, then
    columns) as kernels_moves.resize_nearest does for int8."""
    data = te.placeholder(data_shape, dtype, name="data")
    args = [data]

    def source(values: Sequence[int], in_size: int, tname: str) -> Callable[[PrimExpr], PrimExpr]:
        if is_integer_ratio(values, in_size):
            return lambda i: tirx.floordiv(i * in_size, len(values))
        table = te.placeholder((len(values),), "int32", name=tname)
        args.append(table)
        return lambda i: table[i]

    row_of = source(rows, data_shape[1], "rows")
    col_of = source(cols, data_shape[2], "cols")
    out = te.compute(out_shape, lambda n, y, x, c: data[n, row_of(y), col_of(x), c], name="out")
    return _finish([*args, out], name)
