"""Integer element-wise kernels as TIR PrimFuncs: ADD/SUB, MUL, lookup tables (the activations),
SOFTMAX, MAXIMUM/MINIMUM, SQUARED_DIFFERENCE and PRELU, with TFLite Micro's broadcasting and
requantisation. Shared helpers (epilogue fusion, broadcast indexing) live in kernels.py.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

import numpy as np
import tvm.s_tir as s_tir
from tvm import te, tirx

from tvmc_micro.compiler.quantized import tir_fixedpoint as tfp
from tvmc_micro.compiler.quantized.ckernels import SPEC_ATTR
from tvmc_micro.compiler.quantized.kernels import (
    _broadcast_index,
    _finish,
    _flatten,
    _requant_spec,
    _unflatten,
)
from tvmc_micro.compiler.quantized.requant import Requant, Requantizer, clamp_to_int8
from tvmc_micro.compiler.quantized.tir_fixedpoint import PrimExpr


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
