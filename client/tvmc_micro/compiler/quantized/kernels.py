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

from tvmc_micro.compiler.quantized import tir_fixedpoint as tfp
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


def add(
    shape_a: tuple[int, ...],
    shape_b: tuple[int, ...],
    out_shape: tuple[int, ...],
    params: AddParams,
    name: str,
    dtype: str = "int8",
) -> tirx.PrimFunc:
    """ADD/SUB (numpy broadcasting): both inputs shifted left (20 bits for int8, 15 for int16), rescaled to
    a common base, summed (or subtracted), requantised."""
    a = te.placeholder(shape_a, dtype, name="a")
    b = te.placeholder(shape_b, dtype, name="b")

    def body(*idx: tirx.Var) -> PrimExpr:
        va = a[tuple(_broadcast_index(shape_a, out_shape, idx))].astype("int32") - params.zero_point_a
        vb = b[tuple(_broadcast_index(shape_b, out_shape, idx))].astype("int32") - params.zero_point_b
        sa = params.requant_a.apply(va << params.left_shift, None, [])
        sb = params.requant_b.apply(vb << params.left_shift, None, [])
        raw = (
            params.requant_out.apply(sa - sb if params.subtract else sa + sb, None, [])
            + params.output_zero_point
        )
        return clamp_to_int8(raw, *params.act_range, dtype)

    out = te.compute(out_shape, body, name="out")
    func = _finish([a, b, out], name)
    elems = int(np.prod(out_shape))
    same_shapes = tuple(shape_a) == tuple(out_shape) == tuple(shape_b)
    if not same_shapes or elems < _ADD_TABLE_MIN or dtype != "int8":
        return func

    def rescale(rq: Requant) -> dict[str, int]:
        return {"mult": int(rq.multipliers[0]), "shift": int(rq.shifts[0])}

    spec = {
        "kind": "add",
        "elements": elems,
        "subtract": params.subtract,
        "zp_a": int(params.zero_point_a),
        "zp_b": int(params.zero_point_b),
        "left_shift": int(params.left_shift),
        "rq_a": rescale(params.requant_a),
        "rq_b": rescale(params.requant_b),
        "requant": _requant_spec(params.requant_out),
        "out_zp": int(params.output_zero_point),
        "act_range": [int(v) for v in params.act_range],
    }
    return func.with_attr(SPEC_ATTR, json.dumps(spec))


# Same-shape ADD/SUB of at least this many elements gets the DSP C kernel (whose per-call tables cost about
# 512 rescales, so smaller ones keep the TIR kernel).
_ADD_TABLE_MIN = 1024


@dataclass
class AddParams:
    zero_point_a: int
    zero_point_b: int
    output_zero_point: int
    left_shift: int
    requant_a: Requant
    requant_b: Requant
    requant_out: Requant
    act_range: tuple[int, int]
    subtract: bool = False  # SUB: the same arithmetic with the rescaled inputs subtracted


def mul(
    shape_a: tuple[int, ...],
    shape_b: tuple[int, ...],
    out_shape: tuple[int, ...],
    zero_point_a: int,
    zero_point_b: int,
    output_zero_point: int,
    requant: Requantizer,
    act_range: tuple[int, int],
    name: str,
) -> tirx.PrimFunc:
    a = te.placeholder(shape_a, "int8", name="a")
    b = te.placeholder(shape_b, "int8", name="b")

    def body(*idx: tirx.Var) -> PrimExpr:
        va = a[tuple(_broadcast_index(shape_a, out_shape, idx))].astype("int32") - zero_point_a
        vb = b[tuple(_broadcast_index(shape_b, out_shape, idx))].astype("int32") - zero_point_b
        return clamp_to_int8(requant.apply(va * vb, None, []) + output_zero_point, *act_range)

    out = te.compute(out_shape, body, name="out")
    return _finish([a, b, out], name)


def lookup_table(
    shape: tuple[int, ...], name: str, in_dtype: str = "int8", out_dtype: str = "int8"
) -> tirx.PrimFunc:
    """out[i] = table[x[i] - min(in_dtype)]: LOGISTIC, TANH and requantisation between int8 and uint8,
    precomputed per input value (entry k is input value k + min)."""
    offset = 128 if in_dtype == "int8" else 0
    data = te.placeholder(shape, in_dtype, name="data")
    table = te.placeholder((256,), out_dtype, name="table")
    out = te.compute(shape, lambda *i: table[data[i].astype("int32") + offset], name="out")
    return _finish([data, table, out], name)


def softmax(shape: tuple[int, ...], table_start: int, name: str, out_dtype: str = "int8") -> tirx.PrimFunc:
    """int8 SOFTMAX over the last axis, exactly TFLite's reference_ops::Softmax (gemmlowp fixed point);
    the output is int8 (zero point -128) or int16 (zero point -32768, as keyword-spotting models end).

    exp(x - max) comes from an F0 table computed at import time (it depends only on the difference
    x - max + 255 = k); only entries k >= table_start are stored, smaller k read as 0. The per-row
    reciprocal (GetReciprocal: clz + Newton-Raphson) runs here.
    """
    rows = int(np.prod(shape[:-1])) if len(shape) > 1 else 1
    depth = shape[-1]
    data = te.placeholder(shape, "int8", name="data")
    table = te.placeholder((256 - table_start,), "int32", name="exp_table")
    flat = te.compute((rows, depth), lambda r, c: data[_unflatten(r, c, shape)], name="flat")
    k = te.reduce_axis((0, depth), name="k")
    row_max = te.compute((rows,), lambda r: te.max(flat[r, k], axis=[k]), name="row_max")

    def exp_of(r: PrimExpr, c: PrimExpr) -> PrimExpr:
        k_idx = flat[r, c].astype("int32") - row_max[r].astype("int32") + (255 - table_start)
        if table_start == 0:
            return table[k_idx]
        # Clamp the (unselected) index too, so the load stays in bounds in the generated C.
        safe = table[tirx.max(k_idx, tirx.const(0, "int32"))]
        return tirx.Select(k_idx < tirx.const(0, "int32"), tirx.const(0, "int32"), safe)

    k2 = te.reduce_axis((0, depth), name="k2")
    sum_exps = te.compute(
        (rows,), lambda r: te.sum(tfp.rounding_divide_by_pot(exp_of(r, k2), 12), axis=[k2]), name="sum_exps"
    )

    # GetReciprocal, one small stage per step: deeply nested Lets make TVM's simplifier blow up.
    headroom = te.compute((rows,), lambda r: tfp.count_leading_zeros_u32(sum_exps[r]), name="headroom")
    # (sum << headroom) lies in [2^31, 2^32): minus 2^31 it fits int32 (int64 avoids uint folding bugs).
    shifted = te.compute(
        (rows,),
        lambda r: (
            (sum_exps[r].astype("int64") << headroom[r].astype("int64")) - tirx.const(1 << 31, "int64")
        ).astype("int32"),
        name="shifted",
    )
    half_denominator = te.compute(
        (rows,), lambda r: tfp.rounding_half_sum_with_one(shifted[r]), name="half_denominator"
    )
    x = te.compute((rows,), lambda r: tfp.newton_reciprocal_start(half_denominator[r]), name="nr_x0")
    for k in range(3):
        x = _newton_stage(x, half_denominator, f"nr_x{k + 1}")
    final = x
    scale = te.compute((rows,), lambda r: tfp.saturating_rounding_multiply_by_pot(final[r], 1), name="scale")
    # exponent = num_bits_over_unit + 31 - (output bits), with num_bits_over_unit = 12 - headroom
    bits = 16 if out_dtype == "int16" else 8
    lo, hi = -(1 << (bits - 1)), (1 << (bits - 1)) - 1
    exponent = te.compute((rows,), lambda r: 43 - bits - headroom[r], name="exponent")

    def body(*idx: tirx.Var) -> PrimExpr:
        r, c = _flatten(idx, shape)
        unsat = tfp.rounding_divide_by_pot(tfp.srdhm(scale[r], exp_of(r, c)), exponent[r])
        return clamp_to_int8(unsat + lo, lo, hi, out_dtype)

    out = te.compute(shape, body, name="out")

    def schedule(sch: s_tir.Schedule) -> None:
        sch.compute_inline(sch.get_sblock("flat"))

    return _finish([data, table, out], name, schedule)


def _newton_stage(prev: te.Tensor, half_denominator: te.Tensor, name: str) -> te.Tensor:
    product = te.compute(
        prev.shape,
        lambda r: tfp.newton_reciprocal_product(prev[r], half_denominator[r]),
        name=f"{name}_product",
    )
    return te.compute(prev.shape, lambda r: tfp.newton_reciprocal_update(prev[r], product[r]), name=name)


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


def pad(
    data_shape: tuple[int, ...],
    out_shape: tuple[int, ...],
    before: Sequence[int],
    pad_value: int,
    dtype: str,
    name: str,
) -> tirx.PrimFunc:
    data = te.placeholder(data_shape, dtype, name="data")

    def body(*idx: tirx.Var) -> PrimExpr:
        src = [i - b for i, b in zip(idx, before, strict=True)]
        inside = tirx.all(*[tirx.all(s >= 0, s < d) for s, d in zip(src, data_shape, strict=True)])
        return tirx.if_then_else(inside, data[tuple(src)], tirx.const(pad_value, dtype))

    out = te.compute(out_shape, body, name="out")
    return _finish([data, out], name)


def concatenate(
    shapes: Sequence[tuple[int, ...]], out_shape: tuple[int, ...], axis: int, dtype: str, name: str
) -> tirx.PrimFunc:
    inputs = [te.placeholder(s, dtype, name=f"in{i}") for i, s in enumerate(shapes)]
    offsets = np.cumsum([0] + [s[axis] for s in shapes])

    def body(*idx: tirx.Var) -> PrimExpr:
        result: PrimExpr = tirx.const(0, dtype)
        for k in range(len(inputs) - 1, -1, -1):
            src = list(idx)
            src[axis] = idx[axis] - int(offsets[k])
            # Clamp so every branch's (unselected) load stays in bounds for the C backend.
            src[axis] = tirx.max(tirx.min(src[axis], shapes[k][axis] - 1), 0)
            value = inputs[k][tuple(src)]
            result = (
                value if k == len(inputs) - 1 else tirx.Select(idx[axis] < int(offsets[k + 1]), value, result)
            )
        return result

    out = te.compute(out_shape, body, name="out")
    return _finish([*inputs, out], name)


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


# --- data movement (any element type: TFLM's kernels copy bytes, they never requantise) -----------


def transpose(shape: tuple[int, ...], perm: Sequence[int], dtype: str, name: str) -> tirx.PrimFunc:
    """TRANSPOSE: output dimension i is input dimension perm[i]."""
    data = te.placeholder(shape, dtype, name="data")
    out_shape = tuple(shape[p] for p in perm)

    def body(*idx: tirx.Var) -> PrimExpr:
        src: list[PrimExpr] = [tirx.const(0, "int32")] * len(shape)
        for i, p in enumerate(perm):
            src[p] = idx[i]
        return data[tuple(src)]

    out = te.compute(out_shape, body, name="out")
    return _finish([data, out], name)


def strided_slice(
    shape: tuple[int, ...],
    begin: Sequence[int],
    strides: Sequence[int],
    out_shape: tuple[int, ...],
    dtype: str,
    name: str,
) -> tirx.PrimFunc:
    """out[i] = in[begin + i * stride] per dimension (STRIDED_SLICE, SLICE, SPLIT, UNPACK); `out_shape`
    has the input's rank (shrunk axes are extent 1 here, the caller reshapes)."""
    data = te.placeholder(shape, dtype, name="data")

    def body(*idx: tirx.Var) -> PrimExpr:
        src = []
        for i, b, s, n in zip(idx, begin, strides, out_shape, strict=True):
            src.append(tirx.const(int(b), "int32") if n == 1 else i * int(s) + int(b))
        return data[tuple(src)]

    out = te.compute(out_shape, body, name="out")
    return _finish([data, out], name)


def maximum_minimum(
    shape_a: tuple[int, ...],
    shape_b: tuple[int, ...],
    out_shape: tuple[int, ...],
    take_max: bool,
    name: str,
    dtype: str = "int8",
) -> tirx.PrimFunc:
    """MAXIMUM/MINIMUM on the stored int8 (or int16) values (numpy broadcasting), as TFLM compares them."""
    a = te.placeholder(shape_a, dtype, name="a")
    b = te.placeholder(shape_b, dtype, name="b")
    pick = tirx.max if take_max else tirx.min

    def body(*idx: tirx.Var) -> PrimExpr:
        va = a[tuple(_broadcast_index(shape_a, out_shape, idx))]
        vb = b[tuple(_broadcast_index(shape_b, out_shape, idx))]
        return pick(va, vb)

    out = te.compute(out_shape, body, name="out")
    return _finish([a, b, out], name)


def is_integer_ratio(values: Sequence[int], in_size: int) -> bool:
    """True when source index i is i * in_size // len(values) for all i (no table needed)."""
    return all(v == (i * in_size) // len(values) for i, v in enumerate(values))


def resize_nearest(
    data_shape: tuple[int, ...],
    out_shape: tuple[int, ...],
    rows: Sequence[int],
    cols: Sequence[int],
    name: str,
) -> tirx.PrimFunc:
    """RESIZE_NEAREST_NEIGHBOR (NHWC): out[n, y, x, c] = in[n, rows[y], cols[x], c].

    The source row/column of every output row/column is computed at import time (it depends only on the
    sizes and flags); a mapping that is a plain integer ratio (`is_integer_ratio`) is an index expression,
    any other one a small int32 table argument (rows table, then columns table, before the output)."""
    data = te.placeholder(data_shape, "int8", name="data")
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


def squared_difference(
    shape_a: tuple[int, ...],
    shape_b: tuple[int, ...],
    out_shape: tuple[int, ...],
    params: AddParams,
    name: str,
) -> tirx.PrimFunc:
    """SQUARED_DIFFERENCE int8 (TFLM): both inputs rescaled as ADD does (left shift 7), the difference
    squared in int32, requantised (the output multiplier may exceed 1)."""
    a = te.placeholder(shape_a, "int8", name="a")
    b = te.placeholder(shape_b, "int8", name="b")

    def body(*idx: tirx.Var) -> PrimExpr:
        va = a[tuple(_broadcast_index(shape_a, out_shape, idx))].astype("int32") - params.zero_point_a
        vb = b[tuple(_broadcast_index(shape_b, out_shape, idx))].astype("int32") - params.zero_point_b
        diff = params.requant_a.apply(va << params.left_shift, None, []) - params.requant_b.apply(
            vb << params.left_shift, None, []
        )
        raw = params.requant_out.apply(diff * diff, None, []) + params.output_zero_point
        return clamp_to_int8(raw, *params.act_range)

    out = te.compute(out_shape, body, name="out")
    return _finish([a, b, out], name)


def prelu(
    shape: tuple[int, ...],
    alpha_shape: tuple[int, ...],
    input_zero_point: int,
    alpha_zero_point: int,
    output_zero_point: int,
    requant_pos: Requant,
    requant_neg: Requant,
    name: str,
) -> tirx.PrimFunc:
    """PRELU int8 (TFLM BroadcastPrelu4DSlow): x - zp >= 0 is rescaled alone, below it the product with
    alpha - alpha_zp is rescaled by the second multiplier; alpha broadcasts against the input."""
    data = te.placeholder(shape, "int8", name="data")
    alpha = te.placeholder(alpha_shape, "int8", name="alpha")

    def body(*idx: tirx.Var) -> PrimExpr:
        v = data[idx].astype("int32") - input_zero_point
        a = alpha[tuple(_broadcast_index(alpha_shape, shape, idx))].astype("int32") - alpha_zero_point
        pos = requant_pos.apply(v, None, [])
        neg = requant_neg.apply(v * a, None, [])
        return clamp_to_int8(tirx.Select(v >= 0, pos, neg) + output_zero_point, -128, 127)

    out = te.compute(shape, body, name="out")
    return _finish([data, alpha, out], name)


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


def depth_to_space(shape: tuple[int, ...], block: int, dtype: str, name: str) -> tirx.PrimFunc:
    """DEPTH_TO_SPACE (NHWC, TFLite's DCR order):
    out[b, y, x, c] = in[b, y / s, x / s, ((y % s) s + x % s) C + c]."""
    n, h, w, c = shape
    oc = c // (block * block)
    data = te.placeholder(shape, dtype, name="data")
    out = te.compute(
        (n, h * block, w * block, oc),
        lambda b, y, x, k: data[b, y // block, x // block, ((y % block) * block + x % block) * oc + k],
        name="out",
    )
    return _finish([data, out], name)


def space_to_depth(shape: tuple[int, ...], block: int, dtype: str, name: str) -> tirx.PrimFunc:
    """SPACE_TO_DEPTH (NHWC): out[b, y, x, (dy s + dx) C + c] = in[b, y s + dy, x s + dx, c]."""
    n, h, w, c = shape
    data = te.placeholder(shape, dtype, name="data")

    def body(b: tirx.Var, y: tirx.Var, x: tirx.Var, k: tirx.Var) -> PrimExpr:
        sub, ch = k // c, k % c
        return data[b, y * block + sub // block, x * block + sub % block, ch]

    out = te.compute((n, h // block, w // block, c * block * block), body, name="out")
    return _finish([data, out], name)


# --- GATHER, BATCH_TO_SPACE_ND / SPACE_TO_BATCH_ND, MIRROR_PAD, RESIZE_BILINEAR ----------------------------


def gather(data_shape: tuple[int, ...], axis: int, count: int, dtype: str, name: str) -> tirx.PrimFunc:
    """GATHER with constant indices, flattened to `count` entries of an int32 table argument (checked
    in range at import): out[pre, k, post] = data[pre, table[k], post]; the caller reshapes to the
    indices' shape."""
    data = te.placeholder(data_shape, dtype, name="data")
    table = te.placeholder((count,), "int32", name="indices")
    out_shape = (*data_shape[:axis], count, *data_shape[axis + 1 :])

    def body(*idx: tirx.Var) -> PrimExpr:
        src = list(idx)
        src[axis] = table[idx[axis]]
        return data[tuple(src)]

    return _finish([data, table, te.compute(out_shape, body, name="out")], name)


def batch_to_space(
    in_shape: tuple[int, int, int, int],
    out_shape: tuple[int, int, int, int],
    block: tuple[int, int],
    crop: tuple[int, int],
    dtype: str,
    name: str,
) -> tirx.PrimFunc:
    """BATCH_TO_SPACE_ND (NHWC, 3-D inputs extended to N, H, 1, C by the caller): output pixel (b, y, x)
    is input batch ((Y % bh) bw + X % bw) B + b at (Y / bh, X / bw), where (Y, X) = (y + crop top,
    x + crop left)."""
    bh, bw = block
    batches = out_shape[0]
    data = te.placeholder(in_shape, dtype, name="data")

    def body(b: tirx.Var, y: tirx.Var, x: tirx.Var, c: tirx.Var) -> PrimExpr:
        yy, xx = y + crop[0], x + crop[1]
        src_batch = ((yy % bh) * bw + xx % bw) * batches + b
        return data[src_batch, yy // bh, xx // bw, c]

    return _finish([data, te.compute(out_shape, body, name="out")], name)


def space_to_batch(
    in_shape: tuple[int, int, int, int],
    out_shape: tuple[int, int, int, int],
    block: tuple[int, int],
    pad: tuple[int, int],
    pad_value: int,
    dtype: str,
    name: str,
) -> tirx.PrimFunc:
    """SPACE_TO_BATCH_ND (NHWC, 3-D extended to N, H, 1, C): output batch ob reads input batch ob % B at
    row y bh + (ob / B) / bw - pad top and column x bw + (ob / B) % bw - pad left; outside the input it
    holds `pad_value`: the output zero point, as LiteRT fills it (TFLite Micro's reference kernel fills an
    `output_offset` its Prepare never sets)."""
    bh, bw = block
    _, h, w, _ = in_shape
    batches = in_shape[0]
    data = te.placeholder(in_shape, dtype, name="data")

    def body(ob: tirx.Var, y: tirx.Var, x: tirx.Var, c: tirx.Var) -> PrimExpr:
        shift = ob // batches
        iy = y * bh + shift // bw - pad[0]
        ix = x * bw + shift % bw - pad[1]
        inside = tirx.all(iy >= 0, iy < h, ix >= 0, ix < w)
        return tirx.if_then_else(inside, data[ob % batches, iy, ix, c], tirx.const(pad_value, dtype))

    return _finish([data, te.compute(out_shape, body, name="out")], name)


def mirror_pad(
    shape: tuple[int, ...], pads: Sequence[tuple[int, int]], offset: int, dtype: str, name: str
) -> tirx.PrimFunc:
    """MIRROR_PAD (offset 1: REFLECT, the edge not repeated; 0: SYMMETRIC): per axis, output index o reads
    L + offset - 1 - o before the data (L the leading pad), o - L inside, and n - 1 - offset - (o - L - n)
    after it (n the axis size); the import checks the pads are within TFLite's limits."""
    out_shape = tuple(n + a + b for n, (a, b) in zip(shape, pads, strict=True))
    data = te.placeholder(shape, dtype, name="data")

    def source(o: PrimExpr, n: int, lead: int) -> PrimExpr:
        inner = o - lead
        before = tirx.const(lead + offset - 1, "int32") - o
        after = tirx.const(2 * n - 1 - offset, "int32") - inner
        return tirx.Select(inner < 0, before, tirx.Select(inner >= n, after, inner))

    def body(*idx: tirx.Var) -> PrimExpr:
        src = [
            o if a == 0 and b == 0 else source(o, n, a)
            for o, n, (a, b) in zip(idx, shape, pads, strict=True)
        ]
        return data[tuple(src)]

    return _finish([data, te.compute(out_shape, body, name="out")], name)


def resize_bilinear(
    data_shape: tuple[int, ...],
    out_shape: tuple[int, ...],
    scale_10: tuple[int, int],
    half_pixel: bool,
    name: str,
) -> tirx.PrimFunc:
    """RESIZE_BILINEAR int8 as TFLM's ResizeBilinearInteger: source coordinates in 1/1024 units
    (value * scale_10, or value * scale_10 + scale_10 / 2 - 512 with half-pixel centres), the four
    neighbours weighted by their 10-bit distances, the 2^20-scaled sum rounded half away from zero
    (TFLM's default double-rounding build) and truncated. Every term fits int32: |weight| <= 2048 per
    axis, |value| <= 128."""
    _, in_h, in_w, _ = data_shape
    data = te.placeholder(data_shape, "int8", name="data")
    one = tirx.const(1 << 10, "int32")

    def coords(o: PrimExpr, scale: int, size: int) -> tuple[PrimExpr, PrimExpr, PrimExpr]:
        v = o * scale + (scale // 2 - (1 << 9) if half_pixel else 0)
        lo = tirx.max(tirx.truncdiv(v, one), 0)
        hi = tirx.min(tirx.truncdiv(v + (1 << 10) - 1, one), size - 1)
        return lo, hi, v - lo * one

    def body(n: tirx.Var, y: tirx.Var, x: tirx.Var, c: tirx.Var) -> PrimExpr:
        y0, y1, dy = coords(y, scale_10[0], in_h)
        x0, x1, dx = coords(x, scale_10[1], in_w)

        def px(yy: PrimExpr, xx: PrimExpr) -> PrimExpr:
            return data[n, yy, xx, c].astype("int32")

        total = (
            px(y0, x0) * (one - dy) * (one - dx)
            + px(y1, x0) * dy * (one - dx)
            + px(y0, x1) * (one - dy) * dx
            + px(y1, x1) * dy * dx
        )
        rounded = tirx.Select(total > 0, total + (1 << 19), total - (1 << 19))
        return tirx.truncdiv(rounded, tirx.const(1 << 20, "int32")).astype("int8")

    return _finish([data, te.compute(out_shape, body, name="out")], name)
