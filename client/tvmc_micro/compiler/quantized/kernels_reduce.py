"""Integer reductions as TIR PrimFuncs: MEAN / SUM (an int32 sum over axes, then TFLite's requantisation),
ARG_MIN / ARG_MAX and REDUCE_MAX / REDUCE_MIN.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from tvm import te, tirx

from tvmc_micro.compiler.quantized.kernels import (
    _finish,
    _fuse_epilogue,
)
from tvmc_micro.compiler.quantized.requant import Requantizer, clamp_to_int8
from tvmc_micro.compiler.quantized.tir_fixedpoint import PrimExpr


def int32_sum_over_axes(data: te.Tensor, axes: Sequence[int]) -> tuple[te.Tensor, int]:
    """The int32 sum of integer `data` over `axes` (negative ones allowed), the reduced axes kept as 1,
    and how many values each sum adds: the core of TFLite's QuantizedMeanOrSum for every integer type."""
    shape = [int(d) for d in data.shape]
    kept = sorted(set(a % len(shape) for a in axes))
    count = int(np.prod([shape[a] for a in kept]))
    reduce_axes = {a: te.reduce_axis((0, shape[a]), name=f"r{a}") for a in kept}

    def acc_body(*idx: tirx.Var) -> PrimExpr:
        src = [reduce_axes[i] if i in reduce_axes else v for i, v in enumerate(idx)]
        return te.sum(data[tuple(src)].astype("int32"), axis=list(reduce_axes.values()))

    out_shape = tuple(1 if i in kept else d for i, d in enumerate(shape))
    return te.compute(out_shape, acc_body, name="acc"), count


def mean(
    data_shape: tuple[int, ...],
    axes: Sequence[int],
    input_zero_point: int,
    output_zero_point: int,
    requant: Requantizer,
    name: str,
) -> tirx.PrimFunc:
    """MEAN over `axes`, output with the reduced axes kept as 1 (the caller reshapes for keep_dims=False).

    QuantizedMeanOrSum: integer sum, minus zp·count, one requantisation with 1/count folded in."""
    data = te.placeholder(data_shape, "int8", name="data")
    acc, count = int32_sum_over_axes(data, axes)
    out_shape = tuple(int(d) for d in acc.shape)
    out = te.compute(
        out_shape,
        lambda *i: clamp_to_int8(
            requant.apply(acc[i] - input_zero_point * count, None, []) + output_zero_point, -128, 127
        ),
        name="out",
    )
    return _finish([data, out], name, _fuse_epilogue("acc", "out", len(out_shape)))


def arg_min_max(
    shape: tuple[int, ...], axis: int, take_max: bool, out_dtype: str, in_dtype: str, name: str
) -> tirx.PrimFunc:
    """ARG_MAX/ARG_MIN along `axis` (output drops it): the first index holding the extreme value, as
    TFLM's strict comparison keeps the first one."""
    data = te.placeholder(shape, in_dtype, name="data")
    out_shape = tuple(d for i, d in enumerate(shape) if i != axis)
    r = te.reduce_axis((0, shape[axis]), name="r")
    r2 = te.reduce_axis((0, shape[axis]), name="r2")

    def at(idx: Sequence[PrimExpr], k: PrimExpr) -> PrimExpr:
        full = list(idx)
        full.insert(axis, k)
        return data[tuple(full)]

    pick = te.max if take_max else te.min
    best = te.compute(out_shape, lambda *i: pick(at(i, r), axis=[r]), name="best")
    first = te.compute(
        out_shape,
        lambda *i: te.min(
            tirx.Select(at(i, r2) == best[i], r2.var.astype("int32"), tirx.const(shape[axis], "int32")),
            axis=[r2],
        ),
        name="first",
    )
    out = te.compute(out_shape, lambda *i: first[i].astype(out_dtype), name="out")
    return _finish([data, out], name)


def reduce_max_min(
    shape: tuple[int, ...], axes: Sequence[int], take_max: bool, dtype: str, name: str
) -> tirx.PrimFunc:
    """REDUCE_MAX/REDUCE_MIN on stored values, reduced axes kept as 1 (the caller reshapes)."""
    data = te.placeholder(shape, dtype, name="data")
    out_shape = tuple(1 if i in axes else d for i, d in enumerate(shape))
    raxes = {a: te.reduce_axis((0, shape[a]), name=f"r{a}") for a in axes}
    pick = te.max if take_max else te.min

    def body(*idx: tirx.Var) -> PrimExpr:
        src = [raxes[i] if i in raxes else v for i, v in enumerate(idx)]
        return pick(data[tuple(src)], axis=list(raxes.values()))

    out = te.compute(out_shape, body, name="out")
    return _finish([data, out], name)
