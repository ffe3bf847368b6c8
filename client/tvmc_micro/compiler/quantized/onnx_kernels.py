"""Integer kernels whose arithmetic is ONNX Runtime's (MLAS on x86-64) rather than TFLite's.

The conv/matmul/pool/mean kernels of `kernels.py` are shared (they take a `FloatRequant`); what is here
has a different formula in ORT, not only a different requantisation:

* QuantizeLinear: x / scale in float32 (a division, not a reciprocal), ties to even, saturated;
* QLinearAveragePool: dequantise, sum the window in float32 in row order, divide, quantise;
* QLinearAdd: MLAS's AVX2 kernel, c = fma(a, sA/sC, fma(b, sB/sC, zpC - (sA/sC*zpA + sB/sC*zpB)));
* QLinearMul: float((a - zpA)(b - zpB)) * (sA*sB/sC); QLinearMatMul of two activations;
* QLinearSoftmax: ORT's float exp table, float row sum, y = nearbyintf(e * floor(1/sY) / sum) + zp;
* float32 groups ORT does not fuse: ReduceMean, Sub/Div; ArgMax and Gather (index kernels);
* layout (NCHW <-> NHWC transposes) and uint8 <-> int8 storage conversions.

Float parameters (scales, ratios) reach every kernel as a small float32 constant tensor `fparams`, never
as immediates: TVM's C backend prints float immediates with 7 significant digits, which changes them.

All activations are stored as int8: a uint8 tensor u with zero point z is kept as u - 128 with zero point
z - 128 (same real values). `offset` arguments (0 or 128) recover the raw ONNX value where a formula
depends on it (QLinearAdd's folded constant).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from tvm import te, tirx

from tvmc_micro.compiler.quantized.kernels import ConvGeometry, _finish, _fuse_epilogue, _needs_bounds, _tap
from tvmc_micro.compiler.quantized.tir_fixedpoint import PrimExpr


def _f32(value: float) -> PrimExpr:
    return tirx.const(float(np.float32(value)), "float32")


def _round_clamp(value: PrimExpr, zero_point: int) -> PrimExpr:
    """nearbyint(value) + zero_point saturated to int8, with value bounded first (float->int is UB in C
    out of range); the bounds are integers, so bounding before rounding changes nothing."""
    lo, hi = _f32(-128 - zero_point), _f32(127 - zero_point)
    bounded = tirx.max(tirx.min(value, hi), lo)
    return (tirx.nearbyint(bounded).astype("int32") + zero_point).astype("int8")


def fparams(*values: float | np.floating[Any]) -> np.ndarray:
    """The float32 parameter tensor a kernel of this module takes after its inputs."""
    return np.array(values, dtype=np.float32)


def quantize(shape: tuple[int, ...], zero_point: int, name: str) -> tirx.PrimFunc:
    """QuantizeLinear float32 -> int8 storage (zero_point in the storage domain); fparams [scale]."""
    data = te.placeholder(shape, "float32", name="data")
    fp = te.placeholder((1,), "float32", name="fparams")
    out = te.compute(shape, lambda *i: _round_clamp(data[i] / fp[0], zero_point), name="out")
    return _finish([data, fp, out], name)


def dequantize(shape: tuple[int, ...], zero_point: int, name: str) -> tirx.PrimFunc:
    """DequantizeLinear int8 storage -> float32: float(x - zp) * scale; fparams [scale]."""
    data = te.placeholder(shape, "int8", name="data")
    fp = te.placeholder((1,), "float32", name="fparams")
    out = te.compute(
        shape, lambda *i: (data[i].astype("int32") - zero_point).astype("float32") * fp[0], name="out"
    )
    return _finish([data, fp, out], name)


def global_average_pool(
    data_shape: tuple[int, ...], in_zero_point: int, out_zero_point: int, name: str
) -> tirx.PrimFunc:
    """QLinearGlobalAveragePool (MLAS): int32 sum - zp * size, then float requantisation with
    fparams [x_scale / (y_scale * size)]. NHWC in, [N, 1, 1, C] out; zero points in the storage domain."""
    n, h, w, c = data_shape
    data = te.placeholder(data_shape, "int8", name="data")
    fp = te.placeholder((1,), "float32", name="fparams")
    ry = te.reduce_axis((0, h), name="ry")
    rx = te.reduce_axis((0, w), name="rx")
    acc = te.compute(
        (n, 1, 1, c),
        lambda b, _y, _x, ch: te.sum(data[b, ry, rx, ch].astype("int32"), axis=[ry, rx]),
        name="acc",
    )

    def epilogue(b: tirx.Var, y: tirx.Var, x: tirx.Var, ch: tirx.Var) -> PrimExpr:
        value = (acc[b, y, x, ch] - in_zero_point * h * w).astype("float32") * fp[0]
        return _round_clamp(value, out_zero_point)

    out = te.compute((n, 1, 1, c), epilogue, name="out")
    return _finish([data, fp, out], name, _fuse_epilogue("acc", "out", 4))


def shift_storage(shape: tuple[int, ...], in_dtype: str, out_dtype: str, name: str) -> tirx.PrimFunc:
    """uint8 <-> int8 storage: subtract or add 128 (a model input or output typed uint8)."""
    data = te.placeholder(shape, in_dtype, name="data")
    delta = -128 if in_dtype == "uint8" else 128
    out = te.compute(shape, lambda *i: (data[i].astype("int32") + delta).astype(out_dtype), name="out")
    return _finish([data, out], name)


def average_pool2d(
    data_shape: tuple[int, ...],
    out_shape: tuple[int, ...],
    filter_hw: tuple[int, int],
    geometry: ConvGeometry,
    count_include_pad: bool,
    in_zero_point: int,
    out_zero_point: int,
    out_offset: int,
    name: str,
) -> tirx.PrimFunc:
    """QLinearAveragePool as ORT computes it: float32 sum of x_scale*(x - zp) over the in-image taps,
    in row order; / count; then nearbyint(y / y_scale + y_zp) saturated. NHWC. in_zero_point is in the
    storage domain, out_zero_point raw (ORT adds it in float); fparams [x_scale, y_scale]."""
    _, in_h, in_w, _ = data_shape
    fh, fw = filter_hw
    data = te.placeholder(data_shape, "int8", name="data")
    fp = te.placeholder((2,), "float32", name="fparams")
    ry = te.reduce_axis((0, fh), name="ry")
    rx = te.reduce_axis((0, fw), name="rx")
    sh, sw = geometry.stride
    pt, pl = geometry.pad
    bounds = _needs_bounds((in_h, in_w), out_shape[1:3], filter_hw, geometry)
    # Out-of-image taps read the zero point, which dequantises to exactly 0.0 (adding it is exact).
    acc = te.compute(
        out_shape,
        lambda n, y, x, c: te.sum(
            (
                _tap(data, n, y * sh - pt + ry, x * sw - pl + rx, c, in_zero_point, bounds).astype("int32")
                - in_zero_point
            ).astype("float32")
            * fp[0],
            axis=[ry, rx],
        ),
        name="acc",
    )

    def count(o: PrimExpr, stride: int, pad: int, size: int, extent: int) -> PrimExpr:
        start = o * stride - pad
        return tirx.min(start + size, extent) - tirx.max(start, 0)

    def epilogue(n: tirx.Var, y: tirx.Var, x: tirx.Var, c: tirx.Var) -> PrimExpr:
        if count_include_pad:
            cnt: PrimExpr = tirx.const(fh * fw, "int32")
        else:
            cnt = count(y, sh, pt, fh, in_h) * count(x, sw, pl, fw, in_w)
        mean = acc[n, y, x, c] / cnt.astype("float32")
        value = mean / fp[1] + _f32(out_zero_point)
        return _round_clamp(value, -out_offset)

    out = te.compute(out_shape, epilogue, name="out")
    return _finish([data, fp, out], name, _fuse_epilogue("acc", "out", 4))


def _fma(a: PrimExpr, b: PrimExpr, c: PrimExpr) -> PrimExpr:
    """fmaf(a, b, c) for |a| <= 255 and float32 b, c: a*b is exact in double, so the double sum rounded
    to float32 is the single-rounded fused result except in double-rounding ties (~2^-29 of cases)."""
    return (a.astype("float64") * b.astype("float64") + c.astype("float64")).astype("float32")


def add(
    shape_a: tuple[int, ...],
    shape_b: tuple[int, ...],
    out_shape: tuple[int, ...],
    offset_a: int,
    offset_b: int,
    offset_out: int,
    name: str,
) -> tirx.PrimFunc:
    """QLinearAdd (numpy broadcasting) as MLAS's AVX2 kernel: raw inputs (storage + offset) as float,
    c = fma(a, ratio_a, fma(b, ratio_b, fixed)) rounded half to even and saturated to the raw output
    range; `fixed` holds zpC - (ratio_a*zpA + ratio_b*zpB) in the raw domain. Stored minus offset_out."""
    from tvmc_micro.compiler.quantized.kernels import _broadcast_index

    a = te.placeholder(shape_a, "int8", name="a")
    b = te.placeholder(shape_b, "int8", name="b")
    fp = te.placeholder((3,), "float32", name="fparams")

    def body(*idx: tirx.Var) -> PrimExpr:
        ia = tuple(_broadcast_index(shape_a, out_shape, idx))
        ib = tuple(_broadcast_index(shape_b, out_shape, idx))
        va = (a[ia].astype("int32") + offset_a).astype("float32")
        vb = (b[ib].astype("int32") + offset_b).astype("float32")
        inner = _fma(vb, fp[1], fp[2])
        return _round_clamp(_fma(va, fp[0], inner), -offset_out)

    out = te.compute(out_shape, body, name="out")
    return _finish([a, b, fp, out], name)


def mul(
    shape_a: tuple[int, ...],
    shape_b: tuple[int, ...],
    out_shape: tuple[int, ...],
    zero_point_a: int,
    zero_point_b: int,
    zero_point_out: int,
    name: str,
) -> tirx.PrimFunc:
    """QLinearMul (numpy broadcasting) as MLAS's SSE2 kernel: float((a - zpA) * (b - zpB)) (exact: at
    most 255^2) times the float32 ratio sA*sB/sC, rounded half to even, plus zpC, saturated.
    Zero points in the storage domain (the differences do not depend on it); fparams [ratio]."""
    from tvmc_micro.compiler.quantized.kernels import _broadcast_index

    a = te.placeholder(shape_a, "int8", name="a")
    b = te.placeholder(shape_b, "int8", name="b")
    fp = te.placeholder((1,), "float32", name="fparams")

    def body(*idx: tirx.Var) -> PrimExpr:
        va = a[tuple(_broadcast_index(shape_a, out_shape, idx))].astype("int32") - zero_point_a
        vb = b[tuple(_broadcast_index(shape_b, out_shape, idx))].astype("int32") - zero_point_b
        return _round_clamp((va * vb).astype("float32") * fp[0], zero_point_out)

    out = te.compute(out_shape, body, name="out")
    return _finish([a, b, fp, out], name)


def matmul(
    m: int, k: int, n: int, zero_point_a: int, zero_point_b: int, zero_point_out: int, name: str
) -> tirx.PrimFunc:
    """QLinearMatMul of two activations, A [M, K] x B [K, N]: int32 sum of (a - zpA)(b - zpB), then
    MlasRequantizeOutput: float32(acc) * scale rounded half to even, plus zpY, saturated. Zero points
    in the storage domain; fparams [sA * sB / sY] (computed in float32, left to right, as ORT does)."""
    a = te.placeholder((m, k), "int8", name="a")
    b = te.placeholder((k, n), "int8", name="b")
    fp = te.placeholder((1,), "float32", name="fparams")
    r = te.reduce_axis((0, k), name="r")
    acc = te.compute(
        (m, n),
        lambda i, j: te.sum(
            (a[i, r].astype("int32") - zero_point_a) * (b[r, j].astype("int32") - zero_point_b), axis=[r]
        ),
        name="acc",
    )
    out = te.compute(
        (m, n), lambda i, j: _round_clamp(acc[i, j].astype("float32") * fp[0], zero_point_out), name="out"
    )
    return _finish([a, b, fp, out], name, _fuse_epilogue("acc", "out", 2))


def softmax(rows: int, depth: int, zero_point: int, offset: int, name: str) -> tirx.PrimFunc:
    """com.microsoft QLinearSoftmax over the last axis of [rows, depth], as ORT's CPU kernel computes it.

    `table` (float32[256], built at import time) holds exp((k - 255 + shift) * x_scale) for k = 255 -
    (max - x); the row sum is accumulated in float32 in element order; y = nearbyintf(table * Y / sum)
    + zpY with Y = floor(1 / y_scale) (fparams [Y]), saturated at the type's top (a probability of 1 at
    scale 1/256 is 256: 127 for int8 with zero point -128, measured against ORT 1.32's int8 and uint8
    kernels). `zero_point` is the raw ONNX one; the result is stored minus `offset`."""
    data = te.placeholder((rows, depth), "int8", name="data")
    table = te.placeholder((256,), "float32", name="exp_table")
    fp = te.placeholder((1,), "float32", name="fparams")
    k = te.reduce_axis((0, depth), name="k")
    row_max = te.compute((rows,), lambda r: te.max(data[r, k], axis=[k]), name="row_max")

    def exp_of(r: PrimExpr, c: PrimExpr) -> PrimExpr:
        return table[255 - (row_max[r].astype("int32") - data[r, c].astype("int32"))]

    k2 = te.reduce_axis((0, depth), name="k2")
    row_sum = te.compute((rows,), lambda r: te.sum(exp_of(r, k2), axis=[k2]), name="row_sum")
    limit = _f32(float(1 << 24))

    def body(r: tirx.Var, c: tirx.Var) -> PrimExpr:
        # exp_of <= row_sum, so the quotient lies in [0, Y]; the bound only guards the float->int cast.
        q = tirx.nearbyint(tirx.min(exp_of(r, c) * fp[0] / row_sum[r], limit)).astype("int32") + zero_point
        return (tirx.min(q, 127 + offset) - offset).astype("int8")

    out = te.compute((rows, depth), body, name="out")
    return _finish([data, table, fp, out], name)


def reduce_mean(
    data_shape: tuple[int, ...], axes: Sequence[int], in_zero_point: int, out_zero_point: int, name: str
) -> tirx.PrimFunc:
    """DequantizeLinear -> ReduceMean -> QuantizeLinear run in float32 (ORT fuses no QLinear kernel for
    it): sum of x_scale * (x - zp) in index order, / count, / y_scale, rounded half to even. Reduced axes
    are kept as 1. Zero points in the storage domain; fparams [x_scale, count, y_scale]."""
    data = te.placeholder(data_shape, "int8", name="data")
    fp = te.placeholder((3,), "float32", name="fparams")
    out_shape = tuple(1 if i in axes else d for i, d in enumerate(data_shape))
    reduce_axes = {a: te.reduce_axis((0, data_shape[a]), name=f"r{a}") for a in sorted(axes)}

    def acc_body(*idx: tirx.Var) -> PrimExpr:
        src = [reduce_axes[i] if i in reduce_axes else v for i, v in enumerate(idx)]
        real = (data[tuple(src)].astype("int32") - in_zero_point).astype("float32") * fp[0]
        return te.sum(real, axis=list(reduce_axes.values()))

    acc = te.compute(out_shape, acc_body, name="acc")
    out = te.compute(out_shape, lambda *i: _round_clamp(acc[i] / fp[1] / fp[2], out_zero_point), name="out")
    return _finish([data, fp, out], name, _fuse_epilogue("acc", "out", len(out_shape)))


def binary_float(
    shape_a: tuple[int, ...],
    shape_b: tuple[int, ...],
    out_shape: tuple[int, ...],
    zero_point_a: int | None,
    zero_point_b: int | None,
    zero_point_out: int,
    op: str,
    name: str,
) -> tirx.PrimFunc:
    """DequantizeLinear -> Sub/Div -> QuantizeLinear run in float32 (ORT has no QLinear kernel for them):
    each operand dequantised as float(x - zp) * scale (an operand whose zero point is None is a float32
    constant, used as is), combined, divided by the output scale, rounded half to even, saturated.
    Zero points in the storage domain; fparams [scale_a, scale_b, scale_out]."""
    from tvmc_micro.compiler.quantized.kernels import _broadcast_index

    a = te.placeholder(shape_a, "int8" if zero_point_a is not None else "float32", name="a")
    b = te.placeholder(shape_b, "int8" if zero_point_b is not None else "float32", name="b")
    fp = te.placeholder((3,), "float32", name="fparams")

    def real(t: te.Tensor, zp: int | None, scale: PrimExpr, idx: list[PrimExpr]) -> PrimExpr:
        if zp is None:
            return t[tuple(idx)]
        return (t[tuple(idx)].astype("int32") - zp).astype("float32") * scale

    def body(*idx: tirx.Var) -> PrimExpr:
        va = real(a, zero_point_a, fp[0], _broadcast_index(shape_a, out_shape, idx))
        vb = real(b, zero_point_b, fp[1], _broadcast_index(shape_b, out_shape, idx))
        value = va - vb if op == "Sub" else va / vb
        return _round_clamp(value / fp[2], zero_point_out)

    out = te.compute(out_shape, body, name="out")
    return _finish([a, b, fp, out], name)


def resize_linear(
    data_shape: tuple[int, ...],
    out_shape: tuple[int, ...],
    in_zero_point: int,
    out_zero_point: int,
    name: str,
) -> tirx.PrimFunc:
    """DequantizeLinear -> Resize (mode 'linear', 2-D) -> QuantizeLinear run in float32 as ORT does (it
    keeps the float Resize between them): each of the four sources dequantised as float(x - zp) *
    x_scale, weighted by the products of ORT's distance tables (the far distance weighs the near
    source), summed left to right, / y_scale, rounded half to even. NHWC in and out; inputs after the
    data: rows int32 [2, OH] (y1, y2), cols int32 [2, OW] (x1, x2), row distances float32 [2, OH]
    (dy1, dy2), column distances [2, OW] (dx1, dx2), fparams [x_scale, y_scale]."""
    n, oh, ow, c = out_shape
    data = te.placeholder(data_shape, "int8", name="data")
    rows = te.placeholder((2, oh), "int32", name="rows")
    cols = te.placeholder((2, ow), "int32", name="cols")
    dy = te.placeholder((2, oh), "float32", name="dy")
    dx = te.placeholder((2, ow), "float32", name="dx")
    fp = te.placeholder((2,), "float32", name="fparams")

    def real(b: tirx.Var, y: PrimExpr, x: PrimExpr, ch: tirx.Var) -> PrimExpr:
        return (data[b, y, x, ch].astype("int32") - in_zero_point).astype("float32") * fp[0]

    def body(b: tirx.Var, y: tirx.Var, x: tirx.Var, ch: tirx.Var) -> PrimExpr:
        y1, y2, x1, x2 = rows[0, y], rows[1, y], cols[0, x], cols[1, x]
        value = (
            dx[1, x] * dy[1, y] * real(b, y1, x1, ch)
            + dx[0, x] * dy[1, y] * real(b, y1, x2, ch)
            + dx[1, x] * dy[0, y] * real(b, y2, x1, ch)
            + dx[0, x] * dy[0, y] * real(b, y2, x2, ch)
        )
        return _round_clamp(value / fp[1], out_zero_point)

    out = te.compute((n, oh, ow, c), body, name="out")
    return _finish([data, rows, cols, dy, dx, fp, out], name)


def argmax(data_shape: tuple[int, ...], axis: int, last: bool, name: str) -> tirx.PrimFunc:
    """ArgMax over `axis` of the stored values (int8 storage preserves the order of the raw uint8/int8
    values), int64 indices, the axis kept as 1: the first maximum, or the last with `last`
    (select_last_index). Two reductions: the maximum, then the extreme index holding it."""
    data = te.placeholder(data_shape, "int8", name="data")
    out_shape = tuple(1 if i == axis else d for i, d in enumerate(data_shape))
    extent = data_shape[axis]

    def at(idx: Sequence[PrimExpr], k: PrimExpr) -> PrimExpr:
        src = list(idx)
        src[axis] = k
        return data[tuple(src)]

    k = te.reduce_axis((0, extent), name="k")
    peak = te.compute(out_shape, lambda *i: te.max(at(i, k), axis=[k]), name="peak")
    k2 = te.reduce_axis((0, extent), name="k2")
    miss = tirx.const(-1 if last else extent, "int32")

    def index(*i: tirx.Var) -> PrimExpr:
        hit = tirx.Select(at(i, k2) == peak[i], k2, miss)
        return te.max(hit, axis=[k2]) if last else te.min(hit, axis=[k2])

    pos = te.compute(out_shape, index, name="pos")
    out = te.compute(out_shape, lambda *i: pos[i].astype("int64"), name="out")
    return _finish([data, out], name)


def batch_norm(
    data_shape: tuple[int, ...], channel_axis: int, in_zero_point: int, out_zero_point: int, name: str
) -> tirx.PrimFunc:
    """DequantizeLinear -> BatchNormalization (inference) -> QuantizeLinear as ORT runs it in float32:
    y = x_real * scale[c] + bias[c] (a product, then a sum: no fused multiply-add), with the per-channel
    scale = gamma / sqrt(var + eps) and bias = beta - mean * scale computed at import time in float32;
    then / y_scale, rounded half to even. Args data, scale [C], bias [C], fparams [x_scale, y_scale]."""
    channels = data_shape[channel_axis]
    data = te.placeholder(data_shape, "int8", name="data")
    scale = te.placeholder((channels,), "float32", name="scale")
    bias = te.placeholder((channels,), "float32", name="bias")
    fp = te.placeholder((2,), "float32", name="fparams")

    def body(*idx: tirx.Var) -> PrimExpr:
        c = idx[channel_axis]
        real = (data[idx].astype("int32") - in_zero_point).astype("float32") * fp[0]
        return _round_clamp((real * scale[c] + bias[c]) / fp[1], out_zero_point)

    out = te.compute(data_shape, body, name="out")
    return _finish([data, scale, bias, fp, out], name)
