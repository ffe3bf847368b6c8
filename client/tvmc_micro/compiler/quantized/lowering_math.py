"""Converters for the int8 arithmetic operators added after the first set: ABS, RSQRT (256-entry tables),
DIV, SUM, BATCH_MATMUL; and `REFUSED_INT8`, the operators TFLite Micro itself does not run on int8
(each with the reason the refusal gives). `MATH_CONVERTERS` is merged into `lowering.CONVERTERS`."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
from tvm import relax

from tvmc_micro.compiler.quantized import fixedpoint as fp
from tvmc_micro.compiler.quantized import fixedpoint_math as fm
from tvmc_micro.compiler.quantized import kernels_elementwise, kernels_math, kernels_reduce
from tvmc_micro.compiler.quantized.graph import QGraph, QOperator, QTensor
from tvmc_micro.compiler.quantized.lowering_base import (
    Converter,
    Lowerer,
    _activation,
    _check_io_int8,
    _const_ints,
    _is_int8_per_tensor,
)
from tvmc_micro.compiler.quantized.requant import Requant

# Operators TFLite Micro refuses on int8 tensors (checked with the tflite-micro package): refused here by
# name with the reason, never computed some other way.
REFUSED_INT8: dict[str, str] = {
    "EXP": "TFLite Micro's EXP runs on float32 only (it has no int8 kernel)",
    "LOG": "TFLite Micro's LOG runs on float32 only (it has no int8 kernel)",
    "GELU": "TFLite Micro has no GELU kernel (neither int8 nor float32)",
}


# --- ABS, RSQRT: one table each ------------------------------------------------------------------------


def _lower_table(
    kind: str, make: Callable[[QTensor, QTensor], np.ndarray]
) -> Callable[[Lowerer, QOperator], None]:
    def lower(lw: Lowerer, op: QOperator) -> None:
        inp, out = lw.t(op.inputs[0]), lw.t(op.outputs[0])
        func = kernels_elementwise.lookup_table(inp.shape, kind)
        table = relax.const(make(inp, out))
        lw.define(op.outputs[0], lw.call(func, kind, [lw.value(op.inputs[0]), table], out))

    return lower


def _abs(inp: QTensor, out: QTensor) -> np.ndarray:
    return fm.abs_table(inp.scale, inp.zero_point, out.scale, out.zero_point)


def _rsqrt(inp: QTensor, out: QTensor) -> np.ndarray:
    return fm.rsqrt_table(inp.scale, inp.zero_point, out.scale, out.zero_point)


def _check_unary(g: QGraph, op: QOperator) -> str | None:
    if len(op.inputs) != 1 or len(op.outputs) != 1:
        return "needs one input and one output"
    inp, out = g.tensors[op.inputs[0]], g.tensors[op.outputs[0]]
    for role, t in (("input", inp), ("output", out)):
        if not _is_int8_per_tensor(t):
            return (
                f"{role} {t.name!r} is {t.describe_quantization()}; the integer kernel needs int8 per-tensor"
            )
    if tuple(inp.shape) != tuple(out.shape):
        return f"input shape {list(inp.shape)} differs from output shape {list(out.shape)}"
    return None


# --- DIV ---------------------------------------------------------------------------------------------------


def _lower_div(lw: Lowerer, op: QOperator) -> None:
    a, b, out = lw.t(op.inputs[0]), lw.t(op.inputs[1]), lw.t(op.outputs[0])
    m, s = fm.div_multiplier(a.scale, b.scale, out.scale)
    params = kernels_math.DivParams(
        a.zero_point,
        b.zero_point,
        out.zero_point,
        m,
        s,
        fp.activation_range(_activation(op), out.scale, out.zero_point),
    )
    tables = [*fm.div_numerator_tables(a.zero_point), *fm.div_reciprocal_tables(b.zero_point)]
    func = kernels_math.div(a.shape, b.shape, out.shape, params, "div")
    args = [lw.value(op.inputs[0]), lw.value(op.inputs[1]), *(relax.const(t) for t in tables)]
    lw.define(op.outputs[0], lw.call(func, "div", args, out))


def _check_div(g: QGraph, op: QOperator) -> str | None:
    problem = _check_io_int8(g, op, 2)
    if problem:
        return problem
    a, b, out = (g.tensors[i] for i in (op.inputs[0], op.inputs[1], op.outputs[0]))
    try:
        full = np.broadcast_shapes(a.shape, b.shape)
    except ValueError:
        return f"input shapes {[list(a.shape), list(b.shape)]} do not broadcast"
    if tuple(full) != tuple(out.shape):
        return f"broadcast shape {list(full)} differs from the output shape"
    _, shift = fm.div_multiplier(a.scale, b.scale, out.scale)
    lo, _ = fm.div_exponent_range(a.zero_point, b.zero_point, shift)
    if lo < 0:
        return (
            f"scales {a.scale:.6g} / ({b.scale:.6g} * {out.scale:.6g}) give a multiplier above 2^22; "
            "TFLite's int8 DIV cannot shift its quotient left"
        )
    return None


# --- SUM -------------------------------------------------------------------------------------------------


def _sum_axes(g: QGraph, op: QOperator) -> list[int]:
    values = _const_ints(g, op.inputs[1]) or []
    rank = len(g.tensors[op.inputs[0]].shape)
    return sorted(set(a % rank for a in values))


def _lower_sum(lw: Lowerer, op: QOperator) -> None:
    """QuantizedMeanOrSum with compute_sum: Σ(x) - zp·count, one requantisation by s_in / s_out."""
    inp, out = lw.t(op.inputs[0]), lw.t(op.outputs[0])
    axes = _sum_axes(lw.graph, op)
    m, s = fp.quantize_multiplier(inp.scale / out.scale)
    rq = Requant(np.array([m], np.int32), np.array([s], np.int32))
    func = kernels_reduce.mean(inp.shape, axes, inp.zero_point, out.zero_point, rq, "sum")
    lw.define_reduction(op, func, "sum", axes)


def _check_sum(g: QGraph, op: QOperator) -> str | None:
    inp, out = g.tensors[op.inputs[0]], g.tensors[op.outputs[0]]
    for role, t in (("input", inp), ("output", out)):
        if not _is_int8_per_tensor(t):
            return (
                f"{role} {t.name!r} is {t.describe_quantization()}; the integer kernel needs int8 per-tensor"
            )
    values = _const_ints(g, op.inputs[1])
    if values is None:
        return "the reduction axes are computed at run time; only constant axes are supported"
    if any(not -len(inp.shape) <= a < len(inp.shape) for a in values):
        return f"axes {values} are outside the input's {len(inp.shape)} dimensions"
    axes = _sum_axes(g, op)
    kept = [1 if i in axes else d for i, d in enumerate(inp.shape)]
    if not axes or int(np.prod(kept)) != int(np.prod(out.shape)):
        return f"output shape {list(out.shape)} does not match reducing axes {values}"
    count = int(np.prod([inp.shape[a] for a in axes]))
    if not fm.max_sum_count(count):
        return f"summing {count} values could overflow TFLite's int32 accumulator"
    return None


# --- BATCH_MATMUL -------------------------------------------------------------------------------------------


def _adjoints(op: QOperator) -> tuple[bool, bool]:
    return bool(op.options.get("AdjX", False)), bool(op.options.get("AdjY", False))


def _matmul_out_shape(lhs: QTensor, rhs: QTensor, adj_x: bool, adj_y: bool) -> tuple[int, ...] | None:
    rows = lhs.shape[-1] if adj_x else lhs.shape[-2]
    depth_l = lhs.shape[-2] if adj_x else lhs.shape[-1]
    depth_r = rhs.shape[-1] if adj_y else rhs.shape[-2]
    cols = rhs.shape[-2] if adj_y else rhs.shape[-1]
    if depth_l != depth_r:
        return None
    try:
        batch = np.broadcast_shapes(tuple(lhs.shape[:-2]), tuple(rhs.shape[:-2]))
    except ValueError:
        return None
    return (*batch, rows, cols)


def _lower_batch_matmul(lw: Lowerer, op: QOperator) -> None:
    lhs, rhs, out = lw.t(op.inputs[0]), lw.t(op.inputs[1]), lw.t(op.outputs[0])
    adj_x, adj_y = _adjoints(op)
    shape = _matmul_out_shape(lhs, rhs, adj_x, adj_y)
    assert shape is not None
    # GetQuantizedConvolutionMultipler: (s_lhs * s_rhs) / s_out in double.
    rq = Requant.from_real([lhs.scale * rhs.scale / out.scale])
    func = kernels_math.batch_matmul(
        lhs.shape,
        rhs.shape,
        shape,
        adj_x,
        adj_y,
        lhs.zero_point,
        rhs.zero_point,
        out.zero_point,
        rq,
        "batch_matmul",
    )
    result = lw.call(func, "batch_matmul", [lw.value(op.inputs[0]), lw.value(op.inputs[1])], out, shape)
    if tuple(out.shape) != shape:
        result = lw.reshape(result, out.shape)
    lw.define(op.outputs[0], result)


def _check_batch_matmul(g: QGraph, op: QOperator) -> str | None:
    if len(op.inputs) != 2:
        return "needs two inputs"
    for role, i in (("lhs", op.inputs[0]), ("rhs", op.inputs[1]), ("output", op.outputs[0])):
        t = g.tensors[i]
        if not _is_int8_per_tensor(t):
            return (
                f"{role} {t.name!r} is {t.describe_quantization()}; the integer kernel needs int8 per-tensor"
            )
    lhs, rhs, out = (g.tensors[i] for i in (op.inputs[0], op.inputs[1], op.outputs[0]))
    if not (2 <= len(lhs.shape) <= 5 and 2 <= len(rhs.shape) <= 5):
        return (
            f"operand ranks {len(lhs.shape)} and {len(rhs.shape)}; TFLite Micro's BATCH_MATMUL takes 2 to 5"
        )
    shape = _matmul_out_shape(lhs, rhs, *_adjoints(op))
    if shape is None:
        return f"shapes {list(lhs.shape)} and {list(rhs.shape)} do not multiply (depth or batch dimensions)"
    if int(np.prod(shape)) != int(np.prod(out.shape)):
        return f"output shape {list(out.shape)} should be {list(shape)}"
    return None


MATH_CONVERTERS: dict[str, Converter] = {
    "ABS": Converter(_check_unary, _lower_table("abs", _abs)),
    "RSQRT": Converter(_check_unary, _lower_table("rsqrt", _rsqrt)),
    "DIV": Converter(_check_div, _lower_div),
    "SUM": Converter(_check_sum, _lower_sum),
    "BATCH_MATMUL": Converter(_check_batch_matmul, _lower_batch_matmul),
}
