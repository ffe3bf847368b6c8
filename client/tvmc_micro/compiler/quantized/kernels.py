"""Integer kernels as TIR PrimFuncs (TE compute + a fixed schedule), one builder per operator family.

Each builder takes static shapes and the constants TFLite would compute in Prepare(), and returns a
PrimFunc in destination-passing style (inputs, then constant tables, then the output). Layout is
NHWC with OHWI weights, as in the model. The schedules are the ones an MCU wants and that the C
backend lowers without workspaces:

* padding is never materialised: out-of-image taps read the input zero point (which, with Σw·zp folded
  into the bias at import time, contributes exactly what TFLite's skipped taps contribute: nothing);
* the requantise/clamp epilogue is moved into the loop nest of the reduction (`reverse_compute_at`), so
  the int32 accumulator is a single scalar, and the reduction starts from the bias (no init branch).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import tvm.s_tir as s_tir
from tvm import te, tirx

from tvmc_micro.compiler.quantized.ckernels import SPEC_ATTR
from tvmc_micro.compiler.quantized.fixedpoint16 import Requant64
from tvmc_micro.compiler.quantized.requant import Requant, Requantizer, clamp_to_int8
from tvmc_micro.compiler.quantized.tir_fixedpoint import PrimExpr

# Relax's FuseOps must not merge our hand-scheduled kernels with each other (kOpaque == 8).
_OPAQUE = 8


def _finish(
    args: Sequence[te.Tensor], name: str, schedule: Callable[[s_tir.Schedule], None] | None = None
) -> tirx.PrimFunc:
    func = te.create_prim_func(list(args))
    if schedule is not None:
        sch = s_tir.Schedule(func)
        schedule(sch)
        func = sch.mod["main"]
    # create_prim_func names every function "main"; kernels are module-private until codegen names them.
    func = func.without_attr("global_symbol")
    return func.with_attr("op_pattern", _OPAQUE).with_attr("tvmc_micro.quantized_kernel", name)


def _fuse_epilogue(acc_name: str, out_name: str, n_spatial: int) -> Callable[[s_tir.Schedule], None]:
    """Epilogue into the reduction's loop nest; accumulator initialised once before the reduction
    loops (not by a test inside the innermost loop); short reduction loops unrolled, long ones
    unrolled by 4, because GCC at -O2 unrolls neither and loop overhead dominates int8 MACs."""

    def schedule(sch: s_tir.Schedule) -> None:
        try:
            acc = sch.get_sblock(acc_name)
        except s_tir.ScheduleError:
            # The output no longer reads the accumulator (a multiplier TFLite rounds to zero makes every
            # value the zero point, and create_prim_func drops the dead reduction): nothing to fuse.
            return
        out = sch.get_sblock(out_name)
        loops = sch.get_loops(acc)
        sch.reverse_compute_at(out, loops[n_spatial - 1])
        reduction = sch.get_loops(acc)[n_spatial:]
        if not reduction:
            return
        sch.decompose_reduction(acc, reduction[0])
        extents = [int(sch.get(loop).extent) for loop in reduction]
        for loop, extent in zip(reduction[:-1], extents[:-1], strict=True):
            if extent <= 4:
                sch.unroll(loop)
        inner, extent = reduction[-1], extents[-1]
        if extent <= 4:
            sch.unroll(inner)
        elif extent % 4 == 0:
            _, lane = sch.split(inner, [None, 4])
            sch.unroll(lane)

    return schedule


@dataclass(frozen=True)
class ConvGeometry:
    """Where output pixel (y, x) reads: in = out * stride - pad + k * dilation."""

    stride: tuple[int, int]
    dilation: tuple[int, int]
    pad: tuple[int, int]  # top, left (TFLite's reference kernels only ever use the leading padding)


def _tap(
    data: te.Tensor, n: PrimExpr, iy: PrimExpr, ix: PrimExpr, ic: PrimExpr, pad_value: int, needs_bounds: bool
) -> PrimExpr:
    if not needs_bounds:
        return data[n, iy, ix, ic]
    h, w = data.shape[1], data.shape[2]
    inside = tirx.all(iy >= 0, iy < h, ix >= 0, ix < w)
    return tirx.if_then_else(inside, data[n, iy, ix, ic], tirx.const(pad_value, data.dtype))


def _needs_bounds(in_hw: Sequence[int], out_hw: Sequence[int], k_hw: Sequence[int], g: ConvGeometry) -> bool:
    for axis in (0, 1):
        first = -g.pad[axis]
        last = (out_hw[axis] - 1) * g.stride[axis] - g.pad[axis] + (k_hw[axis] - 1) * g.dilation[axis]
        if first < 0 or last >= in_hw[axis]:
            return True
    return False


def _acc_dtype(requant: Requantizer | Requant64) -> str:
    """int64 accumulation (and bias) for TFLM's 16x8 kernels with int64 bias, else int32."""
    return "int64" if isinstance(requant, Requant64) else "int32"


def conv2d(
    data_shape: tuple[int, ...],
    weight_shape: tuple[int, ...],
    out_shape: tuple[int, ...],
    geometry: ConvGeometry,
    input_zero_point: int,
    output_zero_point: int,
    requant: Requantizer | Requant64,
    act_range: tuple[int, int],
    name: str,
    dtype: str = "int8",
) -> tirx.PrimFunc:
    """CONV_2D (grouped when the filter has fewer input channels than the data): args data, weight,
    bias (Σw·zp folded), [requant tables], out. `dtype` int16 is 16x8 (zero points 0); a Requant64 means
    int64 accumulation and bias (TFLM's default for int16)."""
    _, in_h, in_w, in_c = data_shape
    out_c, kh, kw, filt_c = weight_shape
    groups = in_c // filt_c
    oc_per_group = out_c // groups
    acc_dtype = _acc_dtype(requant)
    data = te.placeholder(data_shape, dtype, name="data")
    weight = te.placeholder(weight_shape, "int8", name="weight")
    bias = te.placeholder((out_c,), acc_dtype, name="bias")
    tables = requant.placeholders("rq")
    ry = te.reduce_axis((0, kh), name="ry")
    rx = te.reduce_axis((0, kw), name="rx")
    rc = te.reduce_axis((0, filt_c), name="rc")
    sh, sw = geometry.stride
    dh, dw = geometry.dilation
    pt, pl = geometry.pad
    bounds = _needs_bounds((in_h, in_w), out_shape[1:3], (kh, kw), geometry)

    def acc_body(n: tirx.Var, y: tirx.Var, x: tirx.Var, c: tirx.Var) -> PrimExpr:
        ic = rc if groups == 1 else (c // oc_per_group) * filt_c + rc
        v = _tap(data, n, y * sh - pt + ry * dh, x * sw - pl + rx * dw, ic, input_zero_point, bounds)
        return te.sum(v.astype(acc_dtype) * weight[c, ry, rx, rc].astype(acc_dtype), axis=[ry, rx, rc])

    acc = te.compute(out_shape, acc_body, name="acc")
    out = te.compute(
        out_shape,
        lambda n, y, x, c: clamp_to_int8(
            requant.apply(acc[n, y, x, c] + bias[c], c, tables) + output_zero_point, *act_range, dtype
        ),
        name="out",
    )
    func = _finish([data, weight, bias, *tables, out], name, _fuse_epilogue("acc", "out", 4))
    # The DSP kernels do int8 with TFLite fixed point only.
    if groups != 1 or not isinstance(requant, Requant) or dtype != "int8":
        return func
    spec = _conv_spec(
        "conv2d",
        data_shape,
        weight_shape,
        out_shape,
        geometry,
        input_zero_point,
        output_zero_point,
        requant,
        act_range,
    )
    return func.with_attr(SPEC_ATTR, spec)


def _conv_spec(
    kind: str,
    data_shape: tuple[int, ...],
    weight_shape: tuple[int, ...],
    out_shape: tuple[int, ...],
    geometry: ConvGeometry,
    input_zero_point: int,
    output_zero_point: int,
    requant: Requant,
    act_range: tuple[int, int],
) -> str:
    """What ckernels.generate needs to write this layer as a DSP C kernel (JSON, a PrimFunc attribute);
    only for TFLite fixed-point requantisation (callers check `requant.mode`)."""
    rq = _requant_spec(requant)
    return json.dumps(
        {
            "kind": kind,
            "data_shape": [int(d) for d in data_shape],
            "weight_shape": [int(d) for d in weight_shape],
            "out_shape": [int(d) for d in out_shape],
            "stride": list(geometry.stride),
            "dilation": list(geometry.dilation),
            "pad": list(geometry.pad),
            "in_zp": int(input_zero_point),
            "out_zp": int(output_zero_point),
            "requant": rq,
            "act_range": [int(a) for a in act_range],
        }
    )


def _requant_spec(requant: Requant) -> dict[str, object]:
    """The requantisation part of a ckernels spec. Per-channel values are kernel arguments: left out so
    identical layers still share a kernel."""
    shift = 0 if requant.per_channel else int(requant.shifts[0])
    mults, rights = requant.multipliers.astype(np.int64), -requant.shifts.astype(np.int64)
    canonical = (mults == 0) | ((mults >= 1 << 30) & (mults < 1 << 31))
    return {
        # every channel inside the fast epilogue's domain (ckernels._RQZ_*): no per-channel branch needed
        "in_domain": bool(np.all(canonical & (rights >= 2) & (rights <= 22))),
        "per_channel": requant.per_channel,
        "has_left": requant.needs_left_shift,
        "mult": 0 if requant.per_channel else int(requant.multipliers[0]),
        "left": max(shift, 0),
        "right": max(-shift, 0),
    }


# Largest weight tensor a one-input-channel depthwise layer transposes into its DSP kernel's workspace.
_HWO_WEIGHT_BYTES = 4096


def depthwise_conv2d(
    data_shape: tuple[int, ...],
    weight_shape: tuple[int, ...],
    out_shape: tuple[int, ...],
    geometry: ConvGeometry,
    depth_multiplier: int,
    input_zero_point: int,
    output_zero_point: int,
    requant: Requantizer | Requant64,
    act_range: tuple[int, int],
    name: str,
    dtype: str = "int8",
) -> tirx.PrimFunc:
    """DEPTHWISE_CONV_2D: weight [1, kh, kw, in_c * depth_multiplier]; `dtype` and the accumulator as
    for conv2d."""
    _, in_h, in_w, _ = data_shape
    _, kh, kw, out_c = weight_shape
    acc_dtype = _acc_dtype(requant)
    data = te.placeholder(data_shape, dtype, name="data")
    weight = te.placeholder(weight_shape, "int8", name="weight")
    bias = te.placeholder((out_c,), acc_dtype, name="bias")
    tables = requant.placeholders("rq")
    ry = te.reduce_axis((0, kh), name="ry")
    rx = te.reduce_axis((0, kw), name="rx")
    sh, sw = geometry.stride
    dh, dw = geometry.dilation
    pt, pl = geometry.pad
    bounds = _needs_bounds((in_h, in_w), out_shape[1:3], (kh, kw), geometry)

    def acc_body(n: tirx.Var, y: tirx.Var, x: tirx.Var, c: tirx.Var) -> PrimExpr:
        ic = c if depth_multiplier == 1 else c // depth_multiplier
        v = _tap(data, n, y * sh - pt + ry * dh, x * sw - pl + rx * dw, ic, input_zero_point, bounds)
        return te.sum(v.astype(acc_dtype) * weight[0, ry, rx, c].astype(acc_dtype), axis=[ry, rx])

    acc = te.compute(out_shape, acc_body, name="acc")
    out = te.compute(
        out_shape,
        lambda n, y, x, c: clamp_to_int8(
            requant.apply(acc[n, y, x, c] + bias[c], c, tables) + output_zero_point, *act_range, dtype
        ),
        name="out",
    )
    func = _finish([data, weight, bias, *tables, out], name, _fuse_epilogue("acc", "out", 4))
    if not isinstance(requant, Requant) or dtype != "int8":
        return func
    if data_shape[3] == 1 and out_c > 1 and out_c * kh * kw <= _HWO_WEIGHT_BYTES:
        # One input channel, multiplier out_c (person_detect's first layer): a CONV_2D with [out_c, kh, kw, 1]
        # weights, which the DSP conv kernel computes with SMLAD after transposing the weights per call.
        conv_spec = json.loads(
            _conv_spec(
                "conv2d",
                data_shape,
                (out_c, kh, kw, 1),
                out_shape,
                geometry,
                input_zero_point,
                output_zero_point,
                requant,
                act_range,
            )
        )
        conv_spec["weight_hwo"] = True
        return func.with_attr(SPEC_ATTR, json.dumps(conv_spec))
    if depth_multiplier != 1 or data_shape[3] > 1024:
        return func
    spec = _conv_spec(
        "depthwise",
        data_shape,
        weight_shape,
        out_shape,
        geometry,
        input_zero_point,
        output_zero_point,
        requant,
        act_range,
    )
    return func.with_attr(SPEC_ATTR, spec)


def fully_connected(
    batches: int,
    depth: int,
    units: int,
    output_zero_point: int,
    requant: Requantizer | Requant64,
    act_range: tuple[int, int],
    name: str,
    has_bias: bool = True,
    dtype: str = "int8",
) -> tirx.PrimFunc:
    """FULLY_CONNECTED on [batches, depth] x [units, depth]^T; `dtype` and the accumulator as for conv2d.

    The bias carries Σw·zp, so it exists even when the model has none."""
    acc_dtype = _acc_dtype(requant)
    data = te.placeholder((batches, depth), dtype, name="data")
    weight = te.placeholder((units, depth), "int8", name="weight")
    bias = te.placeholder((units,), acc_dtype, name="bias")
    tables = requant.placeholders("rq")
    k = te.reduce_axis((0, depth), name="k")
    acc = te.compute(
        (batches, units),
        lambda b, u: te.sum(data[b, k].astype(acc_dtype) * weight[u, k].astype(acc_dtype), axis=[k]),
        name="acc",
    )
    out = te.compute(
        (batches, units),
        lambda b, u: clamp_to_int8(
            requant.apply(acc[b, u] + bias[u], u, tables) + output_zero_point, *act_range, dtype
        ),
        name="out",
    )
    del has_bias
    func = _finish([data, weight, bias, *tables, out], name, _fuse_epilogue("acc", "out", 2))
    # The DSP kernels do int8 with TFLite fixed point only.
    if not isinstance(requant, Requant) or dtype != "int8":
        return func
    spec = {
        "kind": "fully_connected",
        "batches": int(batches),
        "depth": int(depth),
        "units": int(units),
        "out_zp": int(output_zero_point),
        "requant": _requant_spec(requant),
        "act_range": [int(a) for a in act_range],
    }
    return func.with_attr(SPEC_ATTR, json.dumps(spec))


def average_pool2d(
    data_shape: tuple[int, ...],
    out_shape: tuple[int, ...],
    filter_hw: tuple[int, int],
    geometry: ConvGeometry,
    act_range: tuple[int, int],
    name: str,
    dtype: str = "int8",
) -> tirx.PrimFunc:
    """AVERAGE_POOL_2D (int8, or int16 for 16x8): int32 sum of the in-image taps, divided by their count
    rounding half away from zero."""
    _, in_h, in_w, _ = data_shape
    fh, fw = filter_hw
    data = te.placeholder(data_shape, dtype, name="data")
    ry = te.reduce_axis((0, fh), name="ry")
    rx = te.reduce_axis((0, fw), name="rx")
    sh, sw = geometry.stride
    pt, pl = geometry.pad
    bounds = _needs_bounds((in_h, in_w), out_shape[1:3], filter_hw, geometry)

    acc = te.compute(
        out_shape,
        lambda n, y, x, c: te.sum(
            _tap(data, n, y * sh - pt + ry, x * sw - pl + rx, c, 0, bounds).astype("int32"), axis=[ry, rx]
        ),
        name="acc",
    )

    def count(o: PrimExpr, stride: int, pad: int, size: int, extent: int) -> PrimExpr:
        origin = o * stride - pad
        return tirx.min(tirx.const(size, "int32"), extent - origin) - tirx.max(
            tirx.const(0, "int32"), -origin
        )

    def epilogue(n: tirx.Var, y: tirx.Var, x: tirx.Var, c: tirx.Var) -> PrimExpr:
        cnt = count(y, sh, pt, fh, in_h) * count(x, sw, pl, fw, in_w)
        s = acc[n, y, x, c]
        half = tirx.truncdiv(cnt, 2)
        avg = tirx.Select(s > 0, tirx.truncdiv(s + half, cnt), tirx.truncdiv(s - half, cnt))
        return clamp_to_int8(avg, *act_range, dtype)

    out = te.compute(out_shape, epilogue, name="out")
    func = _finish([data, out], name, _fuse_epilogue("acc", "out", 4))
    if fh * fw > _POOL_LANE_TAPS or dtype != "int8":
        return func
    spec = {
        "kind": "avg_pool",
        "data_shape": [int(d) for d in data_shape],
        "out_shape": [int(d) for d in out_shape],
        "filter": [int(fh), int(fw)],
        "stride": [int(sh), int(sw)],
        "pad": [int(pt), int(pl)],
        "act_range": [int(a) for a in act_range],
    }
    return func.with_attr(SPEC_ATTR, json.dumps(spec))


# The DSP average pool sums in 16-bit lanes: at most 255 int8 taps per window (255 * 128 < 2^15).
_POOL_LANE_TAPS = 255


def max_pool2d(
    data_shape: tuple[int, ...],
    out_shape: tuple[int, ...],
    filter_hw: tuple[int, int],
    geometry: ConvGeometry,
    act_range: tuple[int, int],
    name: str,
    dtype: str = "int8",
) -> tirx.PrimFunc:
    """MAX_POOL_2D (int8, or int16 for 16x8) over the in-image taps."""
    _, in_h, in_w, _ = data_shape
    fh, fw = filter_hw
    data = te.placeholder(data_shape, dtype, name="data")
    ry = te.reduce_axis((0, fh), name="ry")
    rx = te.reduce_axis((0, fw), name="rx")
    sh, sw = geometry.stride
    pt, pl = geometry.pad
    bounds = _needs_bounds((in_h, in_w), out_shape[1:3], filter_hw, geometry)
    lowest = int(np.iinfo(dtype).min)  # out-of-image taps never win
    acc = te.compute(
        out_shape,
        lambda n, y, x, c: te.max(
            _tap(data, n, y * sh - pt + ry, x * sw - pl + rx, c, lowest, bounds), axis=[ry, rx]
        ),
        name="acc",
    )
    out = te.compute(
        out_shape,
        lambda n, y, x, c: clamp_to_int8(acc[n, y, x, c].astype("int32"), *act_range, dtype),
        name="out",
    )
    return _finish([data, out], name, _fuse_epilogue("acc", "out", 4))


def _broadcast_index(
    shape: tuple[int, ...], out_shape: tuple[int, ...], idx: Sequence[PrimExpr]
) -> list[PrimExpr]:
    lead = len(out_shape) - len(shape)
    return [
        tirx.const(0, "int32") if d == 1 and out_shape[lead + i] != 1 else idx[lead + i]
        for i, d in enumerate(shape)
    ]


def quantize_float(shape: tuple[int, ...], scale: float, zero_point: int, name: str) -> tirx.PrimFunc:
    """QUANTIZE float32 -> int8: round(x / scale) (float32 division, ties away from zero) + zp, saturated."""
    data = te.placeholder(shape, "float32", name="data")

    def body(*i: tirx.Var) -> PrimExpr:
        v = data[i] / tirx.const(np.float32(scale), "float32")
        t = tirx.trunc(v)
        frac = v - t
        half = tirx.const(0.5, "float32")
        rounded = tirx.Select(frac >= half, t + 1.0, tirx.Select(frac <= -half, t - 1.0, t))
        # Saturate in float first: converting an out-of-range float to int is undefined in C.
        sat = tirx.max(
            tirx.min(rounded + float(zero_point), tirx.const(127.0, "float32")), tirx.const(-128.0, "float32")
        )
        return sat.astype("int8")

    out = te.compute(shape, body, name="out")
    return _finish([data, out], name)


def dequantize(
    shape: tuple[int, ...], scale: float, zero_point: int, in_dtype: str, name: str
) -> tirx.PrimFunc:
    """DEQUANTIZE -> float32: scale * (x - zp).

    One float32 rounding of the exact product, which is what TFLite's double product cast to float gives."""
    data = te.placeholder(shape, in_dtype, name="data")
    out = te.compute(
        shape,
        lambda *i: (
            (data[i].astype("int32") - zero_point).astype("float32")
            * tirx.const(np.float32(scale), "float32")
        ),
        name="out",
    )
    return _finish([data, out], name)


def transpose_conv2d(
    data_shape: tuple[int, ...],
    weight_shape: tuple[int, ...],
    out_shape: tuple[int, ...],
    stride: tuple[int, int],
    pad: tuple[int, int],
    input_zero_point: int,
    output_zero_point: int,
    requant: Requantizer | Requant64,
    act_range: tuple[int, int],
    name: str,
    dtype: str = "int8",
) -> tirx.PrimFunc:
    """TRANSPOSE_CONV: args data, weight [out_c, kh, kw, in_c], bias [out_c], [requant tables], out; int8,
    or int16 (16x8, int64 accumulator and bias with a Requant64).

    TFLM scatters every input pixel into an integer scratch image; here each output element gathers the
    taps that scatter into it: out = in * stride - pad + k, so for out + pad = q * stride + m only the
    taps k = m + r * stride (r = 0, 1, ...) reach it, from in = q - r. Integer sums do not depend on their
    order, and the reduction visits ceil(k / stride) taps per axis instead of k. The input zero point is
    subtracted per tap: at the borders the set of taps differs per pixel, so it cannot be folded into the
    bias."""
    _, in_h, in_w, in_c = data_shape
    out_c, kh, kw, _ = weight_shape
    sh, sw = stride
    pt, pl = pad
    acc_dtype = _acc_dtype(requant)
    data = te.placeholder(data_shape, dtype, name="data")
    weight = te.placeholder(weight_shape, "int8", name="weight")
    bias = te.placeholder((out_c,), acc_dtype, name="bias")
    tables = requant.placeholders("rq")
    ry = te.reduce_axis((0, -(-kh // sh)), name="ry")
    rx = te.reduce_axis((0, -(-kw // sw)), name="rx")
    rc = te.reduce_axis((0, in_c), name="rc")

    def taps(
        o: PrimExpr, r: PrimExpr, p: int, s: int, k: int, size: int
    ) -> tuple[PrimExpr, PrimExpr, PrimExpr]:
        """(input index, filter index, whether the tap exists) along one axis."""
        t = o + p
        tap = tirx.floormod(t, s) + r * s if s > 1 else r
        src = tirx.floordiv(t, s) - r if s > 1 else t - r
        conditions = [src >= 0, src < size]
        if k % s:
            conditions.append(tap < k)
        return src, tap, tirx.all(*conditions)

    def acc_body(n: tirx.Var, y: tirx.Var, x: tirx.Var, c: tirx.Var) -> PrimExpr:
        iy, ky, oky = taps(y, ry, pt, sh, kh, in_h)
        ix, kx, okx = taps(x, rx, pl, sw, kw, in_w)
        v = data[n, iy, ix, rc].astype(acc_dtype) - input_zero_point
        product = v * weight[c, ky, kx, rc].astype(acc_dtype)
        return te.sum(
            tirx.if_then_else(tirx.all(oky, okx), product, tirx.const(0, acc_dtype)), axis=[ry, rx, rc]
        )

    acc = te.compute(out_shape, acc_body, name="acc")
    out = te.compute(
        out_shape,
        lambda n, y, x, c: clamp_to_int8(
            requant.apply(acc[n, y, x, c] + bias[c], c, tables) + output_zero_point, *act_range, dtype
        ),
        name="out",
    )
    return _finish([data, weight, bias, *tables, out], name, _fuse_epilogue("acc", "out", 4))


def _flatten(idx: Sequence[PrimExpr], shape: tuple[int, ...]) -> tuple[PrimExpr, PrimExpr]:
    r: PrimExpr = tirx.const(0, "int32")
    for i, d in zip(idx[:-1], shape[:-1], strict=True):
        r = r * d + i
    return r, idx[-1]


def _unflatten(r: PrimExpr, c: PrimExpr, shape: tuple[int, ...]) -> tuple[PrimExpr, ...]:
    lead: list[PrimExpr] = []
    for d in reversed(shape[:-1]):
        lead.append(tirx.floormod(r, d))
        r = tirx.floordiv(r, d)
    return (*reversed(lead), c)
