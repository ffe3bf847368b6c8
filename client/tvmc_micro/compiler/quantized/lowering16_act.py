"""Converters for int16 ("16x8") LOGISTIC, TANH, SOFTMAX, MEAN, RESIZE_NEAREST_NEIGHBOR, MAXIMUM and MINIMUM,
joined into
lowering16.CONVERTERS16. Each check refuses exactly what TFLite Micro's Prepare() refuses (naming the
requirement) plus parameters for which its C++ arithmetic would overflow; each lower computes what
Prepare() computes and emits one kernel call (kernels16_act).

SOFTMAX with an int8 input and an int16 output (keyword-spotting models) is the int8 kernel's case and
is handed to lowering.CONVERTERS. RESIZE_BILINEAR is not here: TFLite Micro's kernel accepts float32
and int8 only (an int16 model fails at Invoke), so the int8 converter refuses it by name.
"""

from __future__ import annotations

import numpy as np
from tvm import relax

from tvmc_micro.compiler.quantized import activation_tables16 as tables
from tvmc_micro.compiler.quantized import fixedpoint as fp
from tvmc_micro.compiler.quantized import kernels16_act
from tvmc_micro.compiler.quantized.graph import QGraph, QOperator, QTensor
from tvmc_micro.compiler.quantized.kernels_elementwise import (
    maximum_minimum,
)
from tvmc_micro.compiler.quantized.kernels_moves import (
    is_integer_ratio,
)
from tvmc_micro.compiler.quantized.lowering import CONVERTERS
from tvmc_micro.compiler.quantized.lowering_base import (
    Converter,
    Lowerer,
    _check_broadcast,
    _check_moves,
    _const_ints,
    _same_quantization,
)
from tvmc_micro.compiler.quantized.lowering_moves import _nearest_sources

_INT32_LIMIT = 1 << 31


def _int16(t: QTensor, role: str, zero_point_zero: bool = True) -> str | None:
    if t.dtype != "INT16" or not t.is_quantized or t.per_channel:
        return f"{role} {t.name!r} is {t.describe_quantization()}, needs int16 per-tensor"
    if zero_point_zero and t.zero_point != 0:
        return f"{role} {t.name!r} is {t.describe_quantization()}; TFLite Micro needs zero point 0 here"
    return None


# --- LOGISTIC / TANH ------------------------------------------------------------------------------


def _check_logistic_tanh(g: QGraph, op: QOperator) -> str | None:
    inp, out = g.tensors[op.inputs[0]], g.tensors[op.outputs[0]]
    problem = _int16(inp, "input") or _int16(out, "output")
    if problem:
        return problem
    if tables.checked_log2(out.scale) != -15:
        return (
            f"output scale {out.scale:.6g}; int16 {op.name} needs 2^-15 (3.05176e-05), "
            "as TFLite Micro requires"
        )
    multiplier, _ = tables.logistic_tanh_rescale(inp.scale, op.name == "TANH")
    if multiplier > 32767:
        return (
            f"input scale {inp.scale:.6g} is too large for TFLite's int16 {op.name} (its input multiplier "
            f"{multiplier} exceeds 32767)"
        )
    return None


def _logistic_tanh_converter(tanh: bool) -> Converter:
    kind = "tanh_int16" if tanh else "logistic_int16"

    def lower(lw: Lowerer, op: QOperator) -> None:
        inp, out = lw.t(op.inputs[0]), lw.t(op.outputs[0])
        multiplier, shift = tables.logistic_tanh_rescale(inp.scale, tanh)
        func = kernels16_act.logistic_tanh(inp.shape, multiplier, shift, tanh, kind)
        args = [lw.value(op.inputs[0]), relax.const(tables.SIGMOID_TABLE_UINT16)]
        lw.define(op.outputs[0], lw.call(func, kind, args, out))

    return Converter(_check_logistic_tanh, lower)


# --- SOFTMAX --------------------------------------------------------------------------------------


def _softmax_rescale(inp: QTensor, op: QOperator) -> tuple[int, int]:
    """input scale * beta / (10 / 65535), in double: [-65535, 0] input differences become [-10, 0]."""
    beta = float(np.float32(op.options.get("Beta", 1.0)))
    return fp.quantize_multiplier(inp.scale * beta / (10.0 / 65535.0))


def _check_softmax(g: QGraph, op: QOperator) -> str | None:
    inp, out = g.tensors[op.inputs[0]], g.tensors[op.outputs[0]]
    if inp.dtype == "INT8":
        return CONVERTERS["SOFTMAX"].check(g, op)
    problem = _int16(inp, "input") or _int16(out, "output")
    if problem:
        return problem
    if abs(float(np.float32(out.scale)) - 1 / 32768) > 0.001 / 32768:
        return f"output scale {out.scale:.6g}; int16 SOFTMAX needs 1/32768 (TFLite Micro rejects others)"
    if not inp.shape or inp.shape[-1] > 65536:
        return f"input shape {list(inp.shape)}: the softmax axis must hold 1 to 65536 values"
    multiplier, shift = _softmax_rescale(inp, op)
    if multiplier == 0:
        return "beta * input scale is too small for TFLite's int16 softmax (its multiplier is 0)"
    if shift > 15:
        return f"beta * input scale is too large for TFLite's int16 softmax (shift {shift} > 15 overflows)"
    return None


def _lower_softmax(lw: Lowerer, op: QOperator) -> None:
    inp, out = lw.t(op.inputs[0]), lw.t(op.outputs[0])
    if inp.dtype == "INT8":
        CONVERTERS["SOFTMAX"].lower(lw, op)
        return
    multiplier, shift = _softmax_rescale(inp, op)
    func = kernels16_act.softmax(inp.shape, multiplier, shift, "softmax_int16")
    args = [
        lw.value(op.inputs[0]),
        relax.const(tables.softmax_exp_lut()),
        relax.const(tables.softmax_reciprocal_lut()),
    ]
    lw.define(op.outputs[0], lw.call(func, "softmax_int16", args, out))


# --- MEAN -----------------------------------------------------------------------------------------


def _mean_plan(g: QGraph, op: QOperator) -> tuple[list[int], int, tuple[int, int]]:
    inp, out = g.tensors[op.inputs[0]], g.tensors[op.outputs[0]]
    axes_data = g.tensors[op.inputs[1]].data
    assert axes_data is not None
    axes = sorted({int(a) % len(inp.shape) for a in np.asarray(axes_data).reshape(-1)})
    count = int(np.prod([inp.shape[a] for a in axes]))
    return axes, count, fp.mean_multiplier(inp.scale, out.scale, count)


def _check_mean(g: QGraph, op: QOperator) -> str | None:
    inp, out = g.tensors[op.inputs[0]], g.tensors[op.outputs[0]]
    problem = _int16(inp, "input", False) or _int16(out, "output", False)
    if problem:
        return problem
    axes_t = g.tensors[op.inputs[1]]
    if axes_t.data is None:
        return "the reduction axes are computed at run time"
    rank = len(inp.shape)
    if rank == 0 or any(not -rank <= int(a) < rank for a in np.asarray(axes_t.data).reshape(-1)):
        return f"axes {np.asarray(axes_t.data).reshape(-1).tolist()} out of range for rank {rank}"
    _, count, (_, shift) = _mean_plan(g, op)
    # TFLM sums in int32: the sum minus zp * count, times 2^shift when the shift is a left shift, must fit.
    bound = count * (32768 + abs(inp.zero_point)) << max(shift, 0)
    if bound >= _INT32_LIMIT:
        return f"averaging {count} int16 values overflows TFLite's int32 accumulator"
    return None


def _lower_mean(lw: Lowerer, op: QOperator) -> None:
    inp, out = lw.t(op.inputs[0]), lw.t(op.outputs[0])
    axes, _, (multiplier, shift) = _mean_plan(lw.graph, op)
    func = kernels16_act.mean(
        inp.shape, axes, inp.zero_point, out.zero_point, multiplier, shift, "mean_int16"
    )
    lw.define_reduction(op, func, "mean_int16", axes)


# --- RESIZE_NEAREST_NEIGHBOR ----------------------------------------------------------------------


def _check_resize_nearest(g: QGraph, op: QOperator) -> str | None:
    problem = _check_moves(g, op, op.inputs[:1], "RESIZE_NEAREST_NEIGHBOR")
    if problem:
        return problem
    inp, out = g.tensors[op.inputs[0]], g.tensors[op.outputs[0]]
    size = _const_ints(g, op.inputs[1])
    if size is None:
        return "the output size is computed at run time; TFLite Micro needs a constant"
    if len(inp.shape) != 4 or len(out.shape) != 4:
        return "needs 4-D NHWC input and output"
    if list(size) != list(out.shape[1:3]) or inp.shape[0] != out.shape[0] or inp.shape[3] != out.shape[3]:
        return f"size {size} does not match the output shape {list(out.shape)}"
    return None


def _lower_resize_nearest(lw: Lowerer, op: QOperator) -> None:
    inp, out = lw.t(op.inputs[0]), lw.t(op.outputs[0])
    align, half = bool(op.options.get("AlignCorners", False)), bool(op.options.get("HalfPixelCenters", False))
    rows = _nearest_sources(inp.shape[1], out.shape[1], align, half)
    cols = _nearest_sources(inp.shape[2], out.shape[2], align, half)
    func = kernels16_act.resize_nearest(inp.shape, out.shape, rows, cols, "int16", "resize_nearest_int16")
    args: list[relax.Expr] = [lw.value(op.inputs[0])]
    for values, in_size in ((rows, inp.shape[1]), (cols, inp.shape[2])):
        if not is_integer_ratio(values, in_size):
            args.append(relax.const(np.asarray(values, np.int32)))
    lw.define(op.outputs[0], lw.call(func, "resize_nearest_int16", args, out))


# --- MAXIMUM / MINIMUM ---------------------------------------------------------------------------


def _check_max_min(g: QGraph, op: QOperator) -> str | None:
    out = g.tensors[op.outputs[0]]
    for i in (*op.inputs[:2], op.outputs[0]):
        problem = _int16(g.tensors[i], "input" if i != op.outputs[0] else "output", zero_point_zero=False)
        if problem:
            return problem
    for i in op.inputs[:2]:
        if not _same_quantization(g.tensors[i], out):
            return (
                f"input {g.tensors[i].name!r} is {g.tensors[i].describe_quantization()}, the output "
                f"{out.describe_quantization()}; TFLite Micro compares stored values, so they must match"
            )
    return _check_broadcast(g, op)


def _lower_max_min(lw: Lowerer, op: QOperator) -> None:
    """TFLM's int16 MAXIMUM/MINIMUM compare the stored values, as for int8."""
    a, b, out = lw.t(op.inputs[0]), lw.t(op.inputs[1]), lw.t(op.outputs[0])
    kind = "maximum_int16" if op.name == "MAXIMUM" else "minimum_int16"
    func = maximum_minimum(a.shape, b.shape, out.shape, op.name == "MAXIMUM", kind, "int16")
    lw.define(op.outputs[0], lw.call(func, kind, [lw.value(op.inputs[0]), lw.value(op.inputs[1])], out))


ACT_CONVERTERS16: dict[str, Converter] = {
    "MAXIMUM": Converter(_check_max_min, _lower_max_min),
    "MINIMUM": Converter(_check_max_min, _lower_max_min),
    "LOGISTIC": _logistic_tanh_converter(False),
    "TANH": _logistic_tanh_converter(True),
    "SOFTMAX": Converter(_check_softmax, _lower_softmax),
    "MEAN": Converter(_check_mean, _lower_mean),
    "RESIZE_NEAREST_NEIGHBOR": Converter(_check_resize_nearest, _lower_resize_nearest),
}
