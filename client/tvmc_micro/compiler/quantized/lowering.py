"""Quantized TFLite operators to Relax `call_tir`s of integer kernels, constants prepared in Python: the
arithmetic operators here (convolutions, pools, elementwise, activations, softmax, reductions), the ones
that only move values in `lowering_moves`, shared pieces in `lowering_base`; `CONVERTERS` has them all.

One converter per operator. Each first states what it supports (`check`, returning the reason it does
not, or None) so the importer can list every unsupported operator at once before building anything;
`lower` then computes what TFLite Micro computes in Prepare() (multipliers, shifts, folded biases,
tables) and emits one kernel call.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
from tvm import relax

from tvmc_micro.compiler.quantized import activation_tables, kernels, kernels_elementwise, kernels_reduce
from tvmc_micro.compiler.quantized import fixedpoint as fp
from tvmc_micro.compiler.quantized.graph import QGraph, QOperator, QTensor
from tvmc_micro.compiler.quantized.lowering_base import (
    _NUMPY_DTYPE,
    Converter,
    Lowerer,
    _activation,
    _check_broadcast,
    _check_int8_only,
    _check_io_int8,
    _check_moves,
    _check_weighted,
    _const_ints,
    _is_int8_per_tensor,
    _same_quantization,
)
from tvmc_micro.compiler.quantized.lowering_math import MATH_CONVERTERS
from tvmc_micro.compiler.quantized.lowering_moves import MOVE_CONVERTERS
from tvmc_micro.compiler.quantized.requant import Requant

# --- convolution family --------------------------------------------------------------------------


def _same_padding(in_size: int, k: int, stride: int, dilation: int, padding: int) -> tuple[int, int]:
    """(output size, leading padding) exactly as TFLite's ComputePaddingHeightWidth."""
    eff = (k - 1) * dilation + 1
    out = (in_size + stride - 1) // stride if padding == 0 else (in_size - eff + stride) // stride
    pad = max(((out - 1) * stride + eff - in_size) // 2, 0)
    return out, pad


def _geometry(op: QOperator, in_hw: Sequence[int], k_hw: Sequence[int]) -> kernels.ConvGeometry:
    o = op.options
    stride = (int(o.get("StrideH", 1)), int(o.get("StrideW", 1)))
    dilation = (int(o.get("DilationHFactor", 1) or 1), int(o.get("DilationWFactor", 1) or 1))
    padding = int(o.get("Padding", 0))
    _, pt = _same_padding(in_hw[0], k_hw[0], stride[0], dilation[0], padding)
    _, pl = _same_padding(in_hw[1], k_hw[1], stride[1], dilation[1], padding)
    return kernels.ConvGeometry(stride, dilation, (pt, pl))


def _bias_with_zero_point(g: QGraph, op: QOperator, weight_sums: np.ndarray, input_zp: int) -> np.ndarray:
    """bias + (-input_zp)·Σw per output channel, wrapped like TFLite's int32 accumulator."""
    bias: np.ndarray = np.zeros(weight_sums.shape, np.int64)
    if len(op.inputs) > 2 and op.inputs[2] >= 0:
        bias_data = g.tensors[op.inputs[2]].data
        assert bias_data is not None  # checked by _check_weighted
        bias = bias_data.astype(np.int64).reshape(-1)
    folded = bias + (-input_zp) * weight_sums.astype(np.int64)
    return ((folded + (1 << 31)) % (1 << 32) - (1 << 31)).astype(np.int32)


def _conv_requant(inp: QTensor, w: QTensor, out: QTensor, channels: int) -> Requant:
    scales = [float(s) for s in w.scales] if w.per_channel else [float(w.scales[0])] * channels
    return Requant.from_real([inp.scale * s / out.scale for s in scales])


def _act_range(op: QOperator, out: QTensor) -> tuple[int, int]:
    return fp.activation_range(_activation(op), out.scale, out.zero_point)


def _requant_args(lw: Lowerer, rq: Requant) -> list[relax.Expr]:
    return [relax.const(t) for t in rq.constant_tensors()]


def _lower_conv2d(lw: Lowerer, op: QOperator) -> None:
    inp, w, out = lw.t(op.inputs[0]), lw.t(op.inputs[1]), lw.t(op.outputs[0])
    geo = _geometry(op, inp.shape[1:3], w.shape[1:3])
    assert w.data is not None
    sums = w.data.astype(np.int64).sum(axis=(1, 2, 3))
    bias = _bias_with_zero_point(lw.graph, op, sums, inp.zero_point)
    rq = _conv_requant(inp, w, out, w.shape[0])
    func = kernels.conv2d(
        inp.shape, w.shape, out.shape, geo, inp.zero_point, out.zero_point, rq, _act_range(op, out), "conv2d"
    )
    args = [lw.value(op.inputs[0]), lw.value(op.inputs[1]), relax.const(bias), *_requant_args(lw, rq)]
    lw.define(op.outputs[0], lw.call(func, "conv2d", args, out))


def _check_conv2d(g: QGraph, op: QOperator) -> str | None:
    problem = _check_weighted(g, op)
    if problem:
        return problem
    inp, w = g.tensors[op.inputs[0]], g.tensors[op.inputs[1]]
    if len(inp.shape) != 4 or len(w.shape) != 4:
        return "needs 4-D NHWC data and OHWI weights"
    if inp.shape[3] % w.shape[3] or w.shape[0] % (inp.shape[3] // w.shape[3]):
        return f"filter input channels {w.shape[3]} do not divide data channels {inp.shape[3]} into groups"
    if w.per_channel and (w.quantized_dimension != 0 or w.scales.size != w.shape[0]):
        return f"per-channel weights quantized on axis {w.quantized_dimension}; expected axis 0"
    return None


def _lower_depthwise(lw: Lowerer, op: QOperator) -> None:
    inp, w, out = lw.t(op.inputs[0]), lw.t(op.inputs[1]), lw.t(op.outputs[0])
    geo = _geometry(op, inp.shape[1:3], w.shape[1:3])
    assert w.data is not None
    mult = w.shape[3] // inp.shape[3]
    sums = w.data.astype(np.int64).sum(axis=(0, 1, 2))
    bias = _bias_with_zero_point(lw.graph, op, sums, inp.zero_point)
    rq = _conv_requant(inp, w, out, w.shape[3])
    func = kernels.depthwise_conv2d(
        inp.shape,
        w.shape,
        out.shape,
        geo,
        mult,
        inp.zero_point,
        out.zero_point,
        rq,
        _act_range(op, out),
        "depthwise_conv2d",
    )
    args = [lw.value(op.inputs[0]), lw.value(op.inputs[1]), relax.const(bias), *_requant_args(lw, rq)]
    lw.define(op.outputs[0], lw.call(func, "depthwise_conv2d", args, out))


def _check_depthwise(g: QGraph, op: QOperator) -> str | None:
    problem = _check_weighted(g, op)
    if problem:
        return problem
    inp, w = g.tensors[op.inputs[0]], g.tensors[op.inputs[1]]
    if len(inp.shape) != 4 or len(w.shape) != 4 or w.shape[0] != 1:
        return "needs 4-D NHWC data and [1, kh, kw, channels] weights"
    if w.shape[3] % inp.shape[3]:
        return f"output channels {w.shape[3]} are not a multiple of input channels {inp.shape[3]}"
    if w.per_channel and (w.quantized_dimension != 3 or w.scales.size != w.shape[3]):
        return f"per-channel weights quantized on axis {w.quantized_dimension}; expected axis 3"
    return None


def _lower_fully_connected(lw: Lowerer, op: QOperator) -> None:
    inp, w, out = lw.t(op.inputs[0]), lw.t(op.inputs[1]), lw.t(op.outputs[0])
    units, depth = w.shape
    batches = int(np.prod(inp.shape)) // depth
    assert w.data is not None
    bias = _bias_with_zero_point(lw.graph, op, w.data.astype(np.int64).sum(axis=1), inp.zero_point)
    rq = _conv_requant(inp, w, out, units)
    func = kernels.fully_connected(
        batches, depth, units, out.zero_point, rq, _act_range(op, out), "fully_connected"
    )
    data = lw.value(op.inputs[0])
    if tuple(inp.shape) != (batches, depth):
        data = lw.reshape(data, (batches, depth))
    args = [data, lw.value(op.inputs[1]), relax.const(bias), *_requant_args(lw, rq)]
    result = lw.call(func, "fully_connected", args, out, (batches, units))
    if tuple(out.shape) != (batches, units):
        result = lw.reshape(result, out.shape)
    lw.define(op.outputs[0], result)


def _check_fully_connected(g: QGraph, op: QOperator) -> str | None:
    problem = _check_weighted(g, op)
    if problem:
        return problem
    inp, w, out = g.tensors[op.inputs[0]], g.tensors[op.inputs[1]], g.tensors[op.outputs[0]]
    if int(op.options.get("WeightsFormat", 0)) != 0:
        return "shuffled weights format is not supported"
    if len(w.shape) != 2 or int(np.prod(inp.shape)) % w.shape[1]:
        return f"weights shape {list(w.shape)} does not match input shape {list(inp.shape)}"
    if w.per_channel and (w.quantized_dimension != 0 or w.scales.size != w.shape[0]):
        return f"per-channel weights quantized on axis {w.quantized_dimension}; expected axis 0"
    if int(np.prod(out.shape)) != int(np.prod(inp.shape)) // w.shape[1] * w.shape[0]:
        return f"output shape {list(out.shape)} does not match"
    return None


# --- pooling ---------------------------------------------------------------------------------------


def _lower_pool(kind: str) -> Callable[[Lowerer, QOperator], None]:
    def lower(lw: Lowerer, op: QOperator) -> None:
        inp, out = lw.t(op.inputs[0]), lw.t(op.outputs[0])
        fhw = (int(op.options["FilterHeight"]), int(op.options["FilterWidth"]))
        geo = _geometry(op, inp.shape[1:3], fhw)
        builder = kernels.average_pool2d if kind == "average_pool2d" else kernels.max_pool2d
        func = builder(inp.shape, out.shape, fhw, geo, _act_range(op, out), kind)
        lw.define(op.outputs[0], lw.call(func, kind, [lw.value(op.inputs[0])], out))

    return lower


def _check_pool(g: QGraph, op: QOperator) -> str | None:
    problem = _check_io_int8(g, op, 1)
    if problem:
        return problem
    if len(g.tensors[op.inputs[0]].shape) != 4:
        return "needs 4-D NHWC data"
    return None


# --- elementwise -----------------------------------------------------------------------------------


def _lower_add(lw: Lowerer, op: QOperator, subtract: bool = False) -> None:
    a, b, out = lw.t(op.inputs[0]), lw.t(op.inputs[1]), lw.t(op.outputs[0])
    left_shift = 20
    twice_max = 2 * float(max(np.float32(a.scales[0]), np.float32(b.scales[0])))
    params = kernels_elementwise.AddParams(
        zero_point_a=a.zero_point,
        zero_point_b=b.zero_point,
        output_zero_point=out.zero_point,
        left_shift=left_shift,
        requant_a=Requant.from_real([a.scale / twice_max]),
        requant_b=Requant.from_real([b.scale / twice_max]),
        requant_out=Requant.from_real([twice_max / ((1 << left_shift) * out.scale)]),
        act_range=_act_range(op, out),
        subtract=subtract,
    )
    kind = "sub" if subtract else "add"
    func = kernels_elementwise.add(a.shape, b.shape, out.shape, params, kind)
    lw.define(op.outputs[0], lw.call(func, kind, [lw.value(op.inputs[0]), lw.value(op.inputs[1])], out))


def _lower_sub(lw: Lowerer, op: QOperator) -> None:
    """SUB: ADD's Prepare() arithmetic (double multipliers, left shift 20), the rescaled inputs subtracted."""
    _lower_add(lw, op, subtract=True)


def _lower_mul(lw: Lowerer, op: QOperator) -> None:
    a, b, out = lw.t(op.inputs[0]), lw.t(op.inputs[1]), lw.t(op.outputs[0])
    rq = Requant.from_real([a.scale * b.scale / out.scale])
    func = kernels_elementwise.mul(
        a.shape,
        b.shape,
        out.shape,
        a.zero_point,
        b.zero_point,
        out.zero_point,
        rq,
        _act_range(op, out),
        "mul",
    )
    lw.define(op.outputs[0], lw.call(func, "mul", [lw.value(op.inputs[0]), lw.value(op.inputs[1])], out))


def _check_binary(g: QGraph, op: QOperator) -> str | None:
    return _check_io_int8(g, op, 2) or _check_broadcast(g, op)


def _lower_table(kind: str) -> Callable[[Lowerer, QOperator], None]:
    def lower(lw: Lowerer, op: QOperator) -> None:
        inp, out = lw.t(op.inputs[0]), lw.t(op.outputs[0])
        if kind == "logistic":
            table = fp.logistic_table(inp.scale, inp.zero_point)
        elif kind == "tanh":
            table = fp.tanh_table(inp.scale, inp.zero_point)
        else:
            table = _requantize_table(inp, out)
        in_dtype = str(np.dtype(_NUMPY_DTYPE[inp.dtype]))
        func = kernels_elementwise.lookup_table(inp.shape, kind, in_dtype, str(table.dtype))
        lw.define(op.outputs[0], lw.call(func, kind, [lw.value(op.inputs[0]), relax.const(table)], out))

    return lower


def _requantize_table(inp: QTensor, out: QTensor) -> np.ndarray:
    """QUANTIZE between int8 and uint8 (TFLM's Requantize) for every input value: entry k is input value
    k + min(input dtype), saturated to the output dtype's range."""
    m, s = fp.quantize_multiplier(inp.scale / out.scale)
    in_info, out_dtype = np.iinfo(_NUMPY_DTYPE[inp.dtype]), np.dtype(_NUMPY_DTYPE[out.dtype])
    out_info = np.iinfo(out_dtype)
    table = np.zeros(256, out_dtype)
    for k in range(256):
        v = fp.multiply_by_quantized_multiplier(k + int(in_info.min) - inp.zero_point, m, s) + out.zero_point
        table[k] = min(max(v, int(out_info.min)), int(out_info.max))
    return table


def _check_unary_int8(g: QGraph, op: QOperator) -> str | None:
    return _check_io_int8(g, op, 1)


def _check_logistic(g: QGraph, op: QOperator) -> str | None:
    problem = _check_io_int8(g, op, 1)
    if problem is None and g.tensors[op.outputs[0]].zero_point != -128:
        return "int8 LOGISTIC needs output zero point -128 (TFLite Micro rejects others)"
    return problem


def _lower_softmax(lw: Lowerer, op: QOperator) -> None:
    inp, out = lw.t(op.inputs[0]), lw.t(op.outputs[0])
    beta = float(np.float32(op.options.get("Beta", 1.0)))
    table, start = fp.trim_exp_table(fp.softmax_exp_table(inp.scale, beta))
    func = kernels_elementwise.softmax(inp.shape, start, "softmax", _NUMPY_DTYPE[out.dtype])
    lw.define(op.outputs[0], lw.call(func, "softmax", [lw.value(op.inputs[0]), relax.const(table)], out))


def _check_softmax(g: QGraph, op: QOperator) -> str | None:
    out = g.tensors[op.outputs[0]]
    if out.dtype == "INT16" and _is_int8_per_tensor(g.tensors[op.inputs[0]]) and not out.per_channel:
        # int8 -> int16 (keyword-spotting models): TFLM checks zero point -32768 and scale ~ 1/65536.
        if out.zero_point != -32768 or abs(float(np.float32(out.scales[0])) - 1 / 65536) > 0.001 / 65536:
            return "int8->int16 SOFTMAX needs output scale 1/65536 and zero point -32768 (as TFLite Micro)"
    else:
        problem = _check_io_int8(g, op, 1)
        if problem:
            return problem
        if out.zero_point != -128 or np.float32(out.scales[0]) != np.float32(1.0 / 256):
            return "int8 SOFTMAX needs output scale 1/256 and zero point -128 (TFLite Micro rejects others)"
    if float(np.float32(op.options.get("Beta", 1.0))) * g.tensors[op.inputs[0]].scale * (1 << 26) <= 1.0:
        return "beta * input scale is too small for TFLite's fixed-point softmax"
    return None


# --- boundaries ------------------------------------------------------------------------------------


def _lower_quantize(lw: Lowerer, op: QOperator) -> None:
    inp, out = lw.t(op.inputs[0]), lw.t(op.outputs[0])
    if inp.dtype == "FLOAT32":
        func = kernels.quantize_float(inp.shape, out.scale, out.zero_point, "quantize")
        lw.define(op.outputs[0], lw.call(func, "quantize", [lw.value(op.inputs[0])], out))
    else:
        _lower_table("requantize")(lw, op)


def _is_uint8_per_tensor(t: QTensor) -> bool:
    return t.dtype == "UINT8" and t.is_quantized and not t.per_channel


def _check_quantize(g: QGraph, op: QOperator) -> str | None:
    """float32 -> int8, int8 -> int8, and the uint8 edges the converter writes for uint8 model I/O
    (uint8 -> int8 at an input, int8 -> uint8 at an output)."""
    inp, out = g.tensors[op.inputs[0]], g.tensors[op.outputs[0]]
    if _is_uint8_per_tensor(out):
        if _is_int8_per_tensor(inp):
            return None
        return f"input is {inp.describe_quantization()}; a uint8 output needs an int8 per-tensor input"
    if not _is_int8_per_tensor(out):
        return f"output is {out.describe_quantization()}, needs int8 or uint8 per-tensor"
    if inp.dtype == "FLOAT32" or _is_int8_per_tensor(inp) or _is_uint8_per_tensor(inp):
        return None
    return f"input is {inp.describe_quantization()}; supported: float32, int8 or uint8 per-tensor"


def _lower_dequantize(lw: Lowerer, op: QOperator) -> None:
    inp, out = lw.t(op.inputs[0]), lw.t(op.outputs[0])
    func = kernels.dequantize(inp.shape, inp.scale, inp.zero_point, "int8", "dequantize")
    lw.define(op.outputs[0], lw.call(func, "dequantize", [lw.value(op.inputs[0])], out))


def _check_dequantize(g: QGraph, op: QOperator) -> str | None:
    inp, out = g.tensors[op.inputs[0]], g.tensors[op.outputs[0]]
    if not _is_int8_per_tensor(inp) or out.dtype != "FLOAT32":
        return f"{inp.describe_quantization()} -> {out.dtype.lower()}; supported: int8 per-tensor -> float32"
    return None


# --- standalone int8 activations: one 256-entry table each (activation_tables) ------------------------


def _lower_lut(
    kind: str, make: Callable[[QTensor, QTensor, QOperator], np.ndarray]
) -> Callable[[Lowerer, QOperator], None]:
    def lower(lw: Lowerer, op: QOperator) -> None:
        inp, out = lw.t(op.inputs[0]), lw.t(op.outputs[0])
        table = make(inp, out, op)
        func = kernels_elementwise.lookup_table(inp.shape, kind)
        lw.define(op.outputs[0], lw.call(func, kind, [lw.value(op.inputs[0]), relax.const(table)], out))

    return lower


def _check_int8_unary(g: QGraph, op: QOperator) -> str | None:
    inp, out = g.tensors[op.inputs[0]], g.tensors[op.outputs[0]]
    for role, t in (("input", inp), ("output", out)):
        if not _is_int8_per_tensor(t):
            return (
                f"{role} {t.name!r} is {t.describe_quantization()}; the integer kernel needs int8 per-tensor"
            )
    if tuple(inp.shape) != tuple(out.shape):
        return f"input shape {list(inp.shape)} differs from output shape {list(out.shape)}"
    return None


def _check_relu6(g: QGraph, op: QOperator) -> str | None:
    problem = _check_int8_unary(g, op)
    if problem is None and not _same_quantization(g.tensors[op.inputs[0]], g.tensors[op.outputs[0]]):
        return "input and output quantization differ; TFLite Micro's int8 RELU6 clamps without requantising"
    return problem


def _check_leaky_relu(g: QGraph, op: QOperator) -> str | None:
    problem = _check_int8_unary(g, op)
    if problem is None and float(op.options.get("Alpha", 0.0)) < 0:
        return f"alpha {op.options.get('Alpha')} is negative; only alpha >= 0 is supported"
    return problem


def _check_hard_swish(g: QGraph, op: QOperator) -> str | None:
    problem = _check_int8_unary(g, op)
    if problem:
        return problem
    inp, out = g.tensors[op.inputs[0]], g.tensors[op.outputs[0]]
    if activation_tables.hard_swish_params(inp.scale, out.scale)[1] > 0:
        return "input scale / (128 * output scale) exceeds 1; TFLite Micro's int8 HARD_SWISH rejects it"
    return None


def _relu_range(lo: float, hi: float) -> Callable[[QTensor, QTensor, QOperator], np.ndarray]:
    def make(inp: QTensor, out: QTensor, op: QOperator) -> np.ndarray:
        return activation_tables.relu_table(inp.scale, inp.zero_point, out.scale, out.zero_point, lo, hi)

    return make


def _relu6(inp: QTensor, out: QTensor, op: QOperator) -> np.ndarray:
    return activation_tables.relu6_table(inp.scale, inp.zero_point)


def _leaky_relu(inp: QTensor, out: QTensor, op: QOperator) -> np.ndarray:
    alpha = float(op.options.get("Alpha", 0.0))
    return activation_tables.leaky_relu_table(inp.scale, inp.zero_point, out.scale, out.zero_point, alpha)


def _hard_swish(inp: QTensor, out: QTensor, op: QOperator) -> np.ndarray:
    return activation_tables.hard_swish_table(inp.scale, inp.zero_point, out.scale, out.zero_point)


# --- MAXIMUM / MINIMUM, RESIZE_NEAREST_NEIGHBOR -------------------------------------------------------------


def _lower_max_min(take_max: bool) -> Callable[[Lowerer, QOperator], None]:
    kind = "maximum" if take_max else "minimum"

    def lower(lw: Lowerer, op: QOperator) -> None:
        a, b, out = lw.t(op.inputs[0]), lw.t(op.inputs[1]), lw.t(op.outputs[0])
        func = kernels_elementwise.maximum_minimum(a.shape, b.shape, out.shape, take_max, kind)
        lw.define(op.outputs[0], lw.call(func, kind, [lw.value(op.inputs[0]), lw.value(op.inputs[1])], out))

    return lower


def _check_max_min(g: QGraph, op: QOperator) -> str | None:
    problem = _check_binary(g, op)
    if problem:
        return problem
    out = g.tensors[op.outputs[0]]
    for i in op.inputs[:2]:
        if not _same_quantization(g.tensors[i], out):
            return (
                f"input {g.tensors[i].name!r} is {g.tensors[i].describe_quantization()}, the output "
                f"{out.describe_quantization()}; TFLite Micro compares stored values, so they must match"
            )
    return None


# --- TRANSPOSE_CONV ----------------------------------------------------------------------------------------


def _lower_transpose_conv(lw: Lowerer, op: QOperator) -> None:
    """Inputs: output shape, weights [out_c, kh, kw, in_c], data, optional bias. TFLM computes the padding
    from the *output* size (ComputePaddingHeightWidth with the output as the 'input') and never reads the
    output-shape tensor at run time (the output tensor's shape is used)."""
    w, inp, out = lw.t(op.inputs[1]), lw.t(op.inputs[2]), lw.t(op.outputs[0])
    stride = (int(op.options.get("StrideH", 1)), int(op.options.get("StrideW", 1)))
    padding = int(op.options.get("Padding", 0))
    _, pt = _same_padding(out.shape[1], w.shape[1], stride[0], 1, padding)
    _, pl = _same_padding(out.shape[2], w.shape[2], stride[1], 1, padding)
    bias = np.zeros(w.shape[0], np.int32)
    if len(op.inputs) > 3 and op.inputs[3] >= 0:
        bias_data = lw.t(op.inputs[3]).data
        assert bias_data is not None
        bias = bias_data.astype(np.int32).reshape(-1)
    rq = _conv_requant(inp, w, out, w.shape[0])
    func = kernels.transpose_conv2d(
        inp.shape,
        w.shape,
        out.shape,
        stride,
        (pt, pl),
        inp.zero_point,
        out.zero_point,
        rq,
        _act_range(op, out),
        "transpose_conv",
    )
    args = [lw.value(op.inputs[2]), lw.value(op.inputs[1]), relax.const(bias), *_requant_args(lw, rq)]
    lw.define(op.outputs[0], lw.call(func, "transpose_conv", args, out))


def _check_transpose_conv(g: QGraph, op: QOperator) -> str | None:
    if len(op.inputs) < 3:
        return "needs output shape, weights and input"
    # Reorder as (data, weights, bias) for the shared weighted-operator checks.
    view = QOperator(
        op.index, op.name, op.version, [op.inputs[2], op.inputs[1], *op.inputs[3:4]], op.outputs, op.options
    )
    problem = _check_weighted(g, view)
    if problem:
        return problem
    w, inp, out = g.tensors[op.inputs[1]], g.tensors[op.inputs[2]], g.tensors[op.outputs[0]]
    if len(inp.shape) != 4 or len(w.shape) != 4 or len(out.shape) != 4:
        return "needs 4-D NHWC data and output, OHWI weights"
    if w.shape[3] != inp.shape[3] or w.shape[0] != out.shape[3] or inp.shape[0] != out.shape[0]:
        return f"weights {list(w.shape)} do not match input {list(inp.shape)} and output {list(out.shape)}"
    if w.per_channel and (w.quantized_dimension != 0 or w.scales.size != w.shape[0]):
        return f"per-channel weights quantized on axis {w.quantized_dimension}; expected axis 0"
    shape = _const_ints(g, op.inputs[0])
    if shape is not None and list(shape) != list(out.shape):
        return f"the output-shape tensor {shape} differs from the output tensor's shape {list(out.shape)}"
    return None


# --- SQUARED_DIFFERENCE ------------------------------------------------------------------------------------


def _lower_squared_difference(lw: Lowerer, op: QOperator) -> None:
    """TFLM's PrepareQuantized with left shift 7: input multipliers as ADD's, output multiplier
    twice_max^2 / (2^14 * output scale) where 2^14 * scale is a float32 product (exact)."""
    a, b, out = lw.t(op.inputs[0]), lw.t(op.inputs[1]), lw.t(op.outputs[0])
    left_shift = 7
    twice_max = 2.0 * float(max(np.float32(a.scales[0]), np.float32(b.scales[0])))
    params = kernels_elementwise.AddParams(
        zero_point_a=a.zero_point,
        zero_point_b=b.zero_point,
        output_zero_point=out.zero_point,
        left_shift=left_shift,
        requant_a=Requant.from_real([a.scale / twice_max]),
        requant_b=Requant.from_real([b.scale / twice_max]),
        requant_out=Requant.from_real([twice_max * twice_max / float((1 << 2 * left_shift) * out.scales[0])]),
        act_range=(-128, 127),
    )
    func = kernels_elementwise.squared_difference(a.shape, b.shape, out.shape, params, "squared_difference")
    args = [lw.value(op.inputs[0]), lw.value(op.inputs[1])]
    lw.define(op.outputs[0], lw.call(func, "squared_difference", args, out))


def _check_squared_difference(g: QGraph, op: QOperator) -> str | None:
    problem = _check_binary(g, op)
    if problem is None and len(g.tensors[op.outputs[0]].shape) > 4:
        return "TFLite Micro's SQUARED_DIFFERENCE supports up to 4 dimensions"
    return problem


# --- PRELU, ARG_MAX/ARG_MIN, REDUCE_MAX/REDUCE_MIN, DEPTH_TO_SPACE/SPACE_TO_DEPTH ---------------------------


def _lower_prelu(lw: Lowerer, op: QOperator) -> None:
    """CalculatePreluParams: in/out and in*alpha/out, both in double from the float32 scales."""
    inp, alpha, out = lw.t(op.inputs[0]), lw.t(op.inputs[1]), lw.t(op.outputs[0])
    pos = Requant.from_real([inp.scale / out.scale])
    neg = Requant.from_real([inp.scale * alpha.scale / out.scale])
    func = kernels_elementwise.prelu(
        inp.shape, alpha.shape, inp.zero_point, alpha.zero_point, out.zero_point, pos, neg, "prelu"
    )
    lw.define(op.outputs[0], lw.call(func, "prelu", [lw.value(op.inputs[0]), lw.value(op.inputs[1])], out))


def _check_prelu(g: QGraph, op: QOperator) -> str | None:
    for role, i in (("input", op.inputs[0]), ("alpha", op.inputs[1]), ("output", op.outputs[0])):
        t = g.tensors[i]
        if not _is_int8_per_tensor(t):
            return f"{role} {t.name!r} is {t.describe_quantization()}, needs int8 per-tensor"
    inp, alpha, out = (g.tensors[i] for i in (op.inputs[0], op.inputs[1], op.outputs[0]))
    try:
        full = np.broadcast_shapes(inp.shape, alpha.shape)
    except ValueError:
        return f"alpha shape {list(alpha.shape)} does not broadcast to the input {list(inp.shape)}"
    if tuple(full) != tuple(inp.shape) or tuple(out.shape) != tuple(inp.shape) or len(inp.shape) > 4:
        return f"alpha {list(alpha.shape)} must broadcast to the input {list(inp.shape)} (rank <= 4)"
    return None


def _lower_arg(take_max: bool) -> Callable[[Lowerer, QOperator], None]:
    kind = "arg_max" if take_max else "arg_min"

    def lower(lw: Lowerer, op: QOperator) -> None:
        inp, out = lw.t(op.inputs[0]), lw.t(op.outputs[0])
        axis_values = _const_ints(lw.graph, op.inputs[1])
        assert axis_values is not None
        axis = axis_values[0] % len(inp.shape)
        dtype = _NUMPY_DTYPE[inp.dtype]
        func = kernels_reduce.arg_min_max(inp.shape, axis, take_max, _NUMPY_DTYPE[out.dtype], dtype, kind)
        lw.define(op.outputs[0], lw.call(func, kind, [lw.value(op.inputs[0])], out))

    return lower


def _check_arg(g: QGraph, op: QOperator) -> str | None:
    inp, out = g.tensors[op.inputs[0]], g.tensors[op.outputs[0]]
    if not _is_int8_per_tensor(inp):
        return f"input {inp.name!r} is {inp.describe_quantization()}; TFLite Micro's {op.name} needs int8"
    if out.dtype not in ("INT32", "INT64"):
        return f"output is {out.dtype.lower()}; needs int32 or int64 indices"
    axis = _const_ints(g, op.inputs[1])
    if axis is None or len(axis) != 1:
        return "the axis is computed at run time (or not a single value); only a constant axis is supported"
    if not -len(inp.shape) <= axis[0] < len(inp.shape):
        return f"axis {axis[0]} is outside the input's {len(inp.shape)} dimensions"
    want = tuple(d for i, d in enumerate(inp.shape) if i != axis[0] % len(inp.shape))
    if tuple(out.shape) != want:
        return f"output shape {list(out.shape)} should be {list(want)}"
    return None


def _reduce_axes(g: QGraph, op: QOperator) -> list[int]:
    values = _const_ints(g, op.inputs[1]) or []
    rank = len(g.tensors[op.inputs[0]].shape)
    return sorted(set(a % rank for a in values))


def _lower_reduce(take_max: bool) -> Callable[[Lowerer, QOperator], None]:
    kind = "reduce_max" if take_max else "reduce_min"

    def lower(lw: Lowerer, op: QOperator) -> None:
        inp = lw.t(op.inputs[0])
        axes = _reduce_axes(lw.graph, op)
        func = kernels_reduce.reduce_max_min(inp.shape, axes, take_max, _NUMPY_DTYPE[inp.dtype], kind)
        lw.define_reduction(op, func, kind, axes)

    return lower


def _check_reduce(g: QGraph, op: QOperator) -> str | None:
    problem = _check_moves(g, op, op.inputs[:1], op.name) or _check_int8_only(g, op)
    if problem:
        return problem
    inp, out = g.tensors[op.inputs[0]], g.tensors[op.outputs[0]]
    values = _const_ints(g, op.inputs[1])
    if values is None:
        return "the reduction axes are computed at run time; only constant axes are supported"
    if any(not -len(inp.shape) <= a < len(inp.shape) for a in values):
        return f"axes {values} are outside the input's {len(inp.shape)} dimensions"
    axes = _reduce_axes(g, op)
    kept = [1 if i in axes else d for i, d in enumerate(inp.shape)]
    if int(np.prod(kept)) != int(np.prod(out.shape)) or not axes:
        return f"output shape {list(out.shape)} does not match reducing axes {values}"
    return None


CONVERTERS: dict[str, Converter] = {
    "CONV_2D": Converter(_check_conv2d, _lower_conv2d),
    "DEPTHWISE_CONV_2D": Converter(_check_depthwise, _lower_depthwise),
    "FULLY_CONNECTED": Converter(_check_fully_connected, _lower_fully_connected),
    "AVERAGE_POOL_2D": Converter(_check_pool, _lower_pool("average_pool2d")),
    "MAX_POOL_2D": Converter(_check_pool, _lower_pool("max_pool2d")),
    "ADD": Converter(_check_binary, _lower_add),
    "MUL": Converter(_check_binary, _lower_mul),
    "SUB": Converter(_check_binary, _lower_sub),
    "SOFTMAX": Converter(_check_softmax, _lower_softmax),
    "LOGISTIC": Converter(_check_logistic, _lower_table("logistic")),
    "TANH": Converter(_check_unary_int8, _lower_table("tanh")),
    "QUANTIZE": Converter(_check_quantize, _lower_quantize),
    "DEQUANTIZE": Converter(_check_dequantize, _lower_dequantize),
    "RELU": Converter(_check_int8_unary, _lower_lut("relu", _relu_range(0.0, float("inf")))),
    "RELU_N1_TO_1": Converter(_check_int8_unary, _lower_lut("relu_n1_to_1", _relu_range(-1.0, 1.0))),
    "RELU6": Converter(_check_relu6, _lower_lut("relu6", _relu6)),
    "LEAKY_RELU": Converter(_check_leaky_relu, _lower_lut("leaky_relu", _leaky_relu)),
    "HARD_SWISH": Converter(_check_hard_swish, _lower_lut("hard_swish", _hard_swish)),
    "MAXIMUM": Converter(_check_max_min, _lower_max_min(True)),
    "MINIMUM": Converter(_check_max_min, _lower_max_min(False)),
    "TRANSPOSE_CONV": Converter(_check_transpose_conv, _lower_transpose_conv),
    "SQUARED_DIFFERENCE": Converter(_check_squared_difference, _lower_squared_difference),
    "PRELU": Converter(_check_prelu, _lower_prelu),
    "ARG_MAX": Converter(_check_arg, _lower_arg(True)),
    "ARG_MIN": Converter(_check_arg, _lower_arg(False)),
    "REDUCE_MAX": Converter(_check_reduce, _lower_reduce(True)),
    "REDUCE_MIN": Converter(_check_reduce, _lower_reduce(False)),
    **MOVE_CONVERTERS,
    **MATH_CONVERTERS,
}
