"""Converters for operators on int16 activations (TFLite "16x8": int16 data, int8 weights, int64 bias).

`converter_for` picks, per operator, this module's converter when the operator reads or writes a
non-constant int16 tensor, and the int8 converter (lowering.CONVERTERS) otherwise, so the two tables
grow independently. Operators not listed here fall back to the int8 table, whose dtype-agnostic
converters (RESHAPE, ...) then apply and whose int8 ones refuse int16 naming the quantisation.
Each `lower` computes what TFLite Micro's Prepare() computes for int16 and emits one kernel call.
"""

from __future__ import annotations

import numpy as np
from tvm import relax

from tvmc_micro.compiler.quantized import fixedpoint as fp
from tvmc_micro.compiler.quantized import kernels, kernels16, kernels_elementwise, kernels_moves
from tvmc_micro.compiler.quantized.fixedpoint16 import Requant64, activation_range16
from tvmc_micro.compiler.quantized.graph import QGraph, QOperator, QTensor
from tvmc_micro.compiler.quantized.lowering import CONVERTERS, _geometry, _same_padding
from tvmc_micro.compiler.quantized.lowering16_act import ACT_CONVERTERS16
from tvmc_micro.compiler.quantized.lowering_base import _NUMPY_DTYPE, Converter, Lowerer, _activation
from tvmc_micro.compiler.quantized.requant import Requant

_FUSABLE = ("NONE", "RELU", "RELU6", "RELU_N1_TO_1")
_INT_TYPES = ("INT8", "INT16", "INT32")


def is_int16_op(g: QGraph, op: QOperator) -> bool:
    """True when the operator computes on int16 activations (a constant int16 bias does not count)."""
    for i in (*op.inputs, *op.outputs):
        if i >= 0 and g.tensors[i].dtype == "INT16" and g.tensors[i].data is None:
            return True
    return False


def converter_for(g: QGraph, op: QOperator) -> Converter | None:
    if is_int16_op(g, op) and op.name in CONVERTERS16:
        return CONVERTERS16[op.name]
    return CONVERTERS.get(op.name)


# --- shared checks -------------------------------------------------------------------------------


def _per_tensor(t: QTensor, dtype: str = "INT16") -> bool:
    return t.dtype == dtype and t.is_quantized and not t.per_channel


def _need16(t: QTensor, role: str, zero_point_zero: bool = False) -> str | None:
    if not _per_tensor(t):
        return f"{role} {t.name!r} is {t.describe_quantization()}, needs int16 per-tensor"
    if zero_point_zero and t.zero_point != 0:
        return f"{role} {t.name!r} is {t.describe_quantization()}; 16x8 needs zero point 0"
    return None


def _check_act(op: QOperator) -> str | None:
    act = _activation(op)
    return None if act in _FUSABLE else f"fused activation {act} has no integer form"


def _act_range16(op: QOperator, out: QTensor) -> tuple[int, int]:
    return activation_range16(_activation(op), out.scale, out.zero_point)


def _check_weights(g: QGraph, op: QOperator, w_index: int, axis: int, channels: int) -> str | None:
    w = g.tensors[w_index]
    if w.dtype != "INT8" or not w.is_quantized:
        return f"weights {w.name!r} are {w.describe_quantization()}; 16x8 needs int8 weights"
    if w.data is None:
        return f"weights {w.name!r} are computed at run time; only constant weights are supported"
    if np.any(w.zero_points != 0):
        return f"weights {w.name!r} are {w.describe_quantization()}; TFLite requires symmetric (zero point 0)"
    if w.per_channel and (w.quantized_dimension != axis or w.scales.size != channels):
        return f"per-channel weights quantized on axis {w.quantized_dimension}; expected axis {axis}"
    return None


def _channel_reals(inp: QTensor, w: QTensor, out: QTensor, channels: int) -> list[float]:
    """PopulateConvolutionQuantizationParams: input_scale * filter_scale / output_scale in double."""
    scales = [float(s) for s in w.scales] if w.per_channel else [float(w.scales[0])] * channels
    return [inp.scale * s / out.scale for s in scales]


def _bias_tensor(g: QGraph, op: QOperator, index: int) -> QTensor | None:
    return g.tensors[op.inputs[index]] if len(op.inputs) > index and op.inputs[index] >= 0 else None


def _bias_values(g: QGraph, op: QOperator, index: int, channels: int, dtype: str) -> np.ndarray:
    b = _bias_tensor(g, op, index)
    if b is None:
        return np.zeros(channels, dtype)
    assert b.data is not None
    return b.data.astype(dtype).reshape(-1)


# --- CONV_2D --------------------------------------------------------------------------------------


def _conv_accumulates_int32(g: QGraph, op: QOperator) -> bool:
    """TFLM: int32 accumulator when the bias is int32, or when there is no bias and the operator's
    quantized_bias_type says int32 (TensorType INT32 == 2); int64 otherwise."""
    b = _bias_tensor(g, op, 2)
    if b is not None:
        return b.dtype == "INT32"
    return int(op.options.get("QuantizedBiasType", 0)) == 2


def _check_conv2d(g: QGraph, op: QOperator) -> str | None:
    inp, out = g.tensors[op.inputs[0]], g.tensors[op.outputs[0]]
    problem = _need16(inp, "input", True) or _need16(out, "output", True) or _check_act(op)
    if problem:
        return problem
    w = g.tensors[op.inputs[1]]
    if len(inp.shape) != 4 or len(w.shape) != 4 or len(out.shape) != 4:
        return "needs 4-D NHWC data and OHWI weights"
    problem = _check_weights(g, op, op.inputs[1], 0, w.shape[0])
    if problem:
        return problem
    if inp.shape[3] % w.shape[3] or w.shape[0] % (inp.shape[3] // w.shape[3]):
        return f"filter input channels {w.shape[3]} do not divide data channels {inp.shape[3]} into groups"
    return _check_bias_and_shifts(g, op, "CONV_2D")


def _check_bias_and_shifts(g: QGraph, op: QOperator, kind: str) -> str | None:
    """CONV_2D / FULLY_CONNECTED 16x8 (weights [out channels, ...] at input 1, bias at input 2): a constant
    int64 or int32 bias, and with int64 accumulation shifts Requant64 can apply."""
    inp, w, out = g.tensors[op.inputs[0]], g.tensors[op.inputs[1]], g.tensors[op.outputs[0]]
    b = _bias_tensor(g, op, 2)
    if b is not None and (b.dtype not in ("INT64", "INT32") or b.data is None):
        what = b.dtype.lower() + ("" if b.data is not None else ", computed at run time")
        return f"bias {b.name!r} is {what}; 16x8 {kind} needs a constant int64 or int32 bias"
    if not _conv_accumulates_int32(g, op):
        return Requant64.check_shifts(_channel_reals(inp, w, out, w.shape[0]))
    return None


def _requant_and_bias(lw: Lowerer, op: QOperator) -> tuple[Requant64 | Requant, np.ndarray]:
    """The requantisation and bias TFLM uses for a 16x8 CONV_2D / FULLY_CONNECTED: int32 accumulation
    when the model's bias is int32, else int64."""
    inp, w, out = lw.t(op.inputs[0]), lw.t(op.inputs[1]), lw.t(op.outputs[0])
    reals = _channel_reals(inp, w, out, w.shape[0])
    if _conv_accumulates_int32(lw.graph, op):
        return Requant.from_real(reals), _bias_values(lw.graph, op, 2, w.shape[0], "int32")
    return Requant64.from_real(reals), _bias_values(lw.graph, op, 2, w.shape[0], "int64")


def _lower_conv2d(lw: Lowerer, op: QOperator) -> None:
    inp, w, out = lw.t(op.inputs[0]), lw.t(op.inputs[1]), lw.t(op.outputs[0])
    geo = _geometry(op, inp.shape[1:3], w.shape[1:3])
    rq, bias = _requant_and_bias(lw, op)
    func = kernels.conv2d(
        inp.shape, w.shape, out.shape, geo, 0, 0, rq, _act_range16(op, out), "conv2d_16x8", dtype="int16"
    )
    tables = [relax.const(t) for t in rq.constant_tensors()]
    args = [lw.value(op.inputs[0]), lw.value(op.inputs[1]), relax.const(bias, str(bias.dtype)), *tables]
    lw.define(op.outputs[0], lw.call(func, "conv2d_16x8", args, out))


# --- TRANSPOSE_CONV -------------------------------------------------------------------------------


def _check_transpose_conv(g: QGraph, op: QOperator) -> str | None:
    if len(op.inputs) < 3:
        return "needs output shape, weights and data inputs"
    inp, out = g.tensors[op.inputs[2]], g.tensors[op.outputs[0]]
    problem = _need16(inp, "input", True) or _need16(out, "output", True) or _check_act(op)
    if problem:
        return problem
    w = g.tensors[op.inputs[1]]
    if len(inp.shape) != 4 or len(w.shape) != 4 or len(out.shape) != 4:
        return "needs 4-D NHWC data and [out, kh, kw, in] weights"
    problem = _check_weights(g, op, op.inputs[1], 0, w.shape[0])
    if problem:
        return problem
    if w.shape[3] != inp.shape[3] or w.shape[0] != out.shape[3] or inp.shape[0] != out.shape[0]:
        return f"weights {list(w.shape)} do not match input {list(inp.shape)} and output {list(out.shape)}"
    b = _bias_tensor(g, op, 3)
    if b is not None and (b.dtype not in ("INT64", "INT16") or b.data is None):
        kind = b.dtype.lower() + ("" if b.data is not None else ", computed at run time")
        return f"bias {b.name!r} is {kind}; 16x8 TRANSPOSE_CONV needs a constant int64 (or int16) bias"
    return Requant64.check_shifts(_channel_reals(inp, w, out, w.shape[0]))


def _lower_transpose_conv(lw: Lowerer, op: QOperator) -> None:
    inp, w, out = lw.t(op.inputs[2]), lw.t(op.inputs[1]), lw.t(op.outputs[0])
    o = op.options
    stride = (int(o.get("StrideH", 1)), int(o.get("StrideW", 1)))
    padding = int(o.get("Padding", 0))
    # TFLM pads as a forward convolution from the output image (ComputePaddingHeightWidth on the output).
    _, pt = _same_padding(out.shape[1], w.shape[1], stride[0], 1, padding)
    _, pl = _same_padding(out.shape[2], w.shape[2], stride[1], 1, padding)
    rq = Requant64.from_real(_channel_reals(inp, w, out, w.shape[0]))
    bias = _bias_values(lw.graph, op, 3, w.shape[0], "int64")
    act = _act_range16(op, out)
    geo = (stride, (pt, pl))
    func = kernels.transpose_conv2d(
        inp.shape, w.shape, out.shape, *geo, 0, 0, rq, act, "transpose_conv_16x8", dtype="int16"
    )
    tables = [relax.const(t) for t in rq.constant_tensors()]
    args = [lw.value(op.inputs[2]), lw.value(op.inputs[1]), relax.const(bias, str(bias.dtype)), *tables]
    lw.define(op.outputs[0], lw.call(func, "transpose_conv_16x8", args, out))


# --- ADD / SUB ------------------------------------------------------------------------------------


def _check_add_sub(g: QGraph, op: QOperator) -> str | None:
    a, b, out = (g.tensors[i] for i in (*op.inputs[:2], op.outputs[0]))
    problem = _need16(a, "input") or _need16(b, "input") or _need16(out, "output") or _check_act(op)
    if problem:
        return problem
    try:
        full = np.broadcast_shapes(a.shape, b.shape)
    except ValueError:
        return f"input shapes {[list(a.shape), list(b.shape)]} do not broadcast"
    if tuple(full) != tuple(out.shape):
        return f"broadcast shape {list(full)} differs from the output shape"
    for t in (a, b, out):
        if abs(t.zero_point) >= (1 << 15) - 1:
            return f"zero point {t.zero_point} of {t.name!r} is outside what TFLite's int16 ADD/SUB accept"
    return None


def _add_sub_multipliers(a: QTensor, b: QTensor, out: QTensor) -> list[float]:
    """The three real multipliers of CalculateOpDataAdd/Sub, in double from the float32 scales.

    (Older sub_common.cc divided in float; the tflite-micro build we compare with matches double for
    SUB too, measured on TFLM's own SEANet SUB models, so both use ADD's formula.)"""
    twice = 2 * max(a.scale, b.scale)
    return [a.scale / twice, b.scale / twice, twice / ((1 << 15) * out.scale)]


def _add_sub_converter(sub: bool) -> Converter:
    def lower(lw: Lowerer, op: QOperator) -> None:
        a, b, out = lw.t(op.inputs[0]), lw.t(op.inputs[1]), lw.t(op.outputs[0])
        ra, rb, ro = (Requant.from_real([r]) for r in _add_sub_multipliers(a, b, out))
        params = kernels_elementwise.AddParams(
            a.zero_point, b.zero_point, out.zero_point, 15, ra, rb, ro, _act_range16(op, out), subtract=sub
        )
        kind = "sub_int16" if sub else "add_int16"
        func = kernels_elementwise.add(a.shape, b.shape, out.shape, params, kind, dtype="int16")
        lw.define(op.outputs[0], lw.call(func, kind, [lw.value(op.inputs[0]), lw.value(op.inputs[1])], out))

    return Converter(_check_add_sub, lower)


def _check_mul(g: QGraph, op: QOperator) -> str | None:
    a, b, out = (g.tensors[i] for i in (*op.inputs[:2], op.outputs[0]))
    for role, t in (("input", a), ("input", b), ("output", out)):
        problem = _need16(t, role, True)
        if problem:
            return problem
    try:
        full = np.broadcast_shapes(a.shape, b.shape)
    except ValueError:
        return f"input shapes {[list(a.shape), list(b.shape)]} do not broadcast"
    if tuple(full) != tuple(out.shape):
        return f"broadcast shape {list(full)} differs from the output shape"
    return _check_act(op)


def _lower_mul(lw: Lowerer, op: QOperator) -> None:
    a, b, out = lw.t(op.inputs[0]), lw.t(op.inputs[1]), lw.t(op.outputs[0])
    rq = fp.quantize_multiplier(a.scale * b.scale / out.scale)
    func = kernels16.mul(a.shape, b.shape, out.shape, rq, _act_range16(op, out), "mul_int16")
    lw.define(
        op.outputs[0], lw.call(func, "mul_int16", [lw.value(op.inputs[0]), lw.value(op.inputs[1])], out)
    )


# --- LEAKY_RELU -----------------------------------------------------------------------------------


def _check_leaky_relu(g: QGraph, op: QOperator) -> str | None:
    inp, out = g.tensors[op.inputs[0]], g.tensors[op.outputs[0]]
    return _need16(inp, "input") or _need16(out, "output")


def _lower_leaky_relu(lw: Lowerer, op: QOperator) -> None:
    inp, out = lw.t(op.inputs[0]), lw.t(op.outputs[0])
    f = np.float32
    alpha = f(op.options.get("Alpha", 0.2))
    # Both ratios in double from the float32 scales and alpha: the tflite-micro build we compare with
    # matches that (measured on its SEANet LEAKY_RELU models), not the float expressions of older sources.
    alpha_m, alpha_s = fp.quantize_multiplier(inp.scale * float(alpha) / out.scale)
    ident = fp.quantize_multiplier(inp.scale / out.scale)
    func = kernels16.leaky_relu(
        inp.shape,
        "int16",
        inp.zero_point,
        out.zero_point,
        ident,
        (abs(alpha_m), alpha_s),
        alpha_m < 0,
        "leaky_relu_int16",
    )
    lw.define(op.outputs[0], lw.call(func, "leaky_relu_int16", [lw.value(op.inputs[0])], out))


# --- QUANTIZE / DEQUANTIZE ------------------------------------------------------------------------


def _check_quantize(g: QGraph, op: QOperator) -> str | None:
    """TFLM's QUANTIZE pairs that involve int16: float32 -> int16 and requantisation between int8,
    int16 and int32 (int8 <-> int16, int16 -> int16/int32, int32 -> int16)."""
    inp, out = g.tensors[op.inputs[0]], g.tensors[op.outputs[0]]
    if not out.is_quantized or out.per_channel or out.dtype not in _INT_TYPES:
        return f"output is {out.describe_quantization()}, needs int8, int16 or int32 per-tensor"
    if inp.dtype == "FLOAT32":
        return None if out.dtype == "INT16" else "float32 input needs an int16 output here"
    if inp.dtype not in _INT_TYPES or not inp.is_quantized or inp.per_channel:
        return f"input is {inp.describe_quantization()}; supported: float32, int8, int16 or int32 per-tensor"
    if (inp.dtype, out.dtype) == ("INT32", "INT32"):
        return "int32 -> int32 requantisation is not supported by TFLite Micro"
    return None


def _lower_quantize(lw: Lowerer, op: QOperator) -> None:
    inp, out = lw.t(op.inputs[0]), lw.t(op.outputs[0])
    out_dtype = _NUMPY_DTYPE[out.dtype]
    if inp.dtype == "FLOAT32":
        func = kernels16.quantize_float(inp.shape, out.scale, out.zero_point, out_dtype, "quantize_int16")
    else:
        m, s = fp.quantize_multiplier(inp.scale / out.scale)
        func = kernels16.requantize(
            inp.shape, _NUMPY_DTYPE[inp.dtype], out_dtype, inp.zero_point, out.zero_point, m, s, "requantize"
        )
    kind = "quantize_int16" if inp.dtype == "FLOAT32" else "requantize"
    lw.define(op.outputs[0], lw.call(func, kind, [lw.value(op.inputs[0])], out))


def _check_dequantize(g: QGraph, op: QOperator) -> str | None:
    inp, out = g.tensors[op.inputs[0]], g.tensors[op.outputs[0]]
    if not _per_tensor(inp) or out.dtype != "FLOAT32":
        return f"{inp.describe_quantization()} -> {out.dtype.lower()}; supported: int16 per-tensor -> float32"
    return None


def _lower_dequantize(lw: Lowerer, op: QOperator) -> None:
    inp, out = lw.t(op.inputs[0]), lw.t(op.outputs[0])
    func = kernels.dequantize(inp.shape, inp.scale, inp.zero_point, "int16", "dequantize_int16")
    lw.define(op.outputs[0], lw.call(func, "dequantize_int16", [lw.value(op.inputs[0])], out))


# --- PAD ------------------------------------------------------------------------------------------


def _check_pad(g: QGraph, op: QOperator) -> str | None:
    inp, out = g.tensors[op.inputs[0]], g.tensors[op.outputs[0]]
    if inp.dtype != "INT16" or out.dtype != "INT16":
        return f"int16 PAD needs int16 input and output, got {inp.dtype.lower()} -> {out.dtype.lower()}"
    pads_t = g.tensors[op.inputs[1]]
    if pads_t.data is None:
        return "paddings are computed at run time; only constant paddings are supported"
    if len(op.inputs) > 2 and op.inputs[2] >= 0 and g.tensors[op.inputs[2]].data is None:
        return "the pad value is computed at run time"
    pads = np.asarray(pads_t.data, np.int64).reshape(-1, 2)
    if pads.shape[0] != len(inp.shape) or np.any(pads < 0):
        return "paddings must be non-negative, one pair per input dimension"
    if tuple(int(d) + int(p.sum()) for d, p in zip(inp.shape, pads, strict=True)) != tuple(out.shape):
        return f"paddings do not turn {list(inp.shape)} into the output shape {list(out.shape)}"
    return None


def _lower_pad(lw: Lowerer, op: QOperator) -> None:
    inp, out = lw.t(op.inputs[0]), lw.t(op.outputs[0])
    pads_data = lw.t(op.inputs[1]).data
    assert pads_data is not None
    before = [int(p) for p in np.asarray(pads_data, np.int64).reshape(-1, 2)[:, 0]]
    # TFLM pads int16 with the constant value, or 0 (not the zero point) when there is none.
    value = 0
    if len(op.inputs) > 2 and op.inputs[2] >= 0:
        cv = lw.t(op.inputs[2]).data
        assert cv is not None
        value = int(np.asarray(cv).reshape(-1)[0])
    func = kernels_moves.pad(inp.shape, out.shape, before, value, "int16", "pad_int16")
    lw.define(op.outputs[0], lw.call(func, "pad_int16", [lw.value(op.inputs[0])], out))


# --- DEPTHWISE_CONV_2D / FULLY_CONNECTED ---------------------------------------------------------


def _check_depthwise(g: QGraph, op: QOperator) -> str | None:
    inp, out = g.tensors[op.inputs[0]], g.tensors[op.outputs[0]]
    problem = _need16(inp, "input", True) or _need16(out, "output", True) or _check_act(op)
    if problem:
        return problem
    w = g.tensors[op.inputs[1]]
    if len(inp.shape) != 4 or len(w.shape) != 4 or w.shape[0] != 1:
        return "needs 4-D NHWC data and [1, kh, kw, channels] weights"
    if w.shape[3] % inp.shape[3]:
        return f"output channels {w.shape[3]} are not a multiple of input channels {inp.shape[3]}"
    problem = _check_weights(g, op, op.inputs[1], 3, w.shape[3])
    if problem:
        return problem
    b = _bias_tensor(g, op, 2)
    if b is not None and (b.dtype != "INT64" or b.data is None):
        kind = b.dtype.lower() + ("" if b.data is not None else ", computed at run time")
        return f"bias {b.name!r} is {kind}; 16x8 DEPTHWISE_CONV_2D needs a constant int64 bias (TFLite Micro)"
    return Requant64.check_shifts(_channel_reals(inp, w, out, w.shape[3]))


def _lower_depthwise(lw: Lowerer, op: QOperator) -> None:
    inp, w, out = lw.t(op.inputs[0]), lw.t(op.inputs[1]), lw.t(op.outputs[0])
    geo = _geometry(op, inp.shape[1:3], w.shape[1:3])
    rq = Requant64.from_real(_channel_reals(inp, w, out, w.shape[3]))
    bias = _bias_values(lw.graph, op, 2, w.shape[3], "int64")
    mult = w.shape[3] // inp.shape[3]
    func = kernels.depthwise_conv2d(
        inp.shape,
        w.shape,
        out.shape,
        geo,
        mult,
        0,
        0,
        rq,
        _act_range16(op, out),
        "depthwise_conv2d_16x8",
        dtype="int16",
    )
    tables = [relax.const(t) for t in rq.constant_tensors()]
    args = [lw.value(op.inputs[0]), lw.value(op.inputs[1]), relax.const(bias, "int64"), *tables]
    lw.define(op.outputs[0], lw.call(func, "depthwise_conv2d_16x8", args, out))


def _check_fully_connected(g: QGraph, op: QOperator) -> str | None:
    inp, out = g.tensors[op.inputs[0]], g.tensors[op.outputs[0]]
    problem = _need16(inp, "input", True) or _need16(out, "output", True) or _check_act(op)
    if problem:
        return problem
    w = g.tensors[op.inputs[1]]
    if int(op.options.get("WeightsFormat", 0)) != 0:
        return "shuffled weights format is not supported"
    if len(w.shape) != 2 or int(np.prod(inp.shape)) % w.shape[1]:
        return f"weights shape {list(w.shape)} does not match input shape {list(inp.shape)}"
    if int(np.prod(out.shape)) != int(np.prod(inp.shape)) // w.shape[1] * w.shape[0]:
        return f"output shape {list(out.shape)} does not match"
    problem = _check_weights(g, op, op.inputs[1], 0, w.shape[0])
    if problem:
        return problem
    return _check_bias_and_shifts(g, op, "FULLY_CONNECTED")


def _lower_fully_connected(lw: Lowerer, op: QOperator) -> None:
    inp, w, out = lw.t(op.inputs[0]), lw.t(op.inputs[1]), lw.t(op.outputs[0])
    units, depth = w.shape
    batches = int(np.prod(inp.shape)) // depth
    rq, bias = _requant_and_bias(lw, op)
    func = kernels.fully_connected(
        batches, depth, units, 0, rq, _act_range16(op, out), "fully_connected_16x8", dtype="int16"
    )
    data = lw.value(op.inputs[0])
    if tuple(inp.shape) != (batches, depth):
        data = lw.reshape(data, (batches, depth))
    tables = [relax.const(t) for t in rq.constant_tensors()]
    args = [data, lw.value(op.inputs[1]), relax.const(bias, str(bias.dtype)), *tables]
    result = lw.call(func, "fully_connected_16x8", args, out, (batches, units))
    if tuple(out.shape) != (batches, units):
        result = lw.reshape(result, out.shape)
    lw.define(op.outputs[0], result)


# --- pooling, CONCATENATION -----------------------------------------------------------------------


def _check_pool(g: QGraph, op: QOperator) -> str | None:
    inp, out = g.tensors[op.inputs[0]], g.tensors[op.outputs[0]]
    problem = _need16(inp, "input") or _need16(out, "output") or _check_act(op)
    if problem:
        return problem
    if len(inp.shape) != 4:
        return "needs 4-D NHWC data"
    return None


def _pool_converter(kind: str) -> Converter:
    def lower(lw: Lowerer, op: QOperator) -> None:
        inp, out = lw.t(op.inputs[0]), lw.t(op.outputs[0])
        fhw = (int(op.options["FilterHeight"]), int(op.options["FilterWidth"]))
        geo = _geometry(op, inp.shape[1:3], fhw)
        name = f"{kind}_pool2d_int16"
        build = kernels.max_pool2d if kind == "max" else kernels.average_pool2d
        func = build(inp.shape, out.shape, fhw, geo, _act_range16(op, out), name, dtype="int16")
        lw.define(op.outputs[0], lw.call(func, name, [lw.value(op.inputs[0])], out))

    return Converter(_check_pool, lower)


def _check_concat(g: QGraph, op: QOperator) -> str | None:
    out = g.tensors[op.outputs[0]]
    problem = _need16(out, "output")
    if problem:
        return problem
    for i in op.inputs:
        t = g.tensors[i]
        if t.dtype != out.dtype or not np.array_equal(t.scales, out.scales) or t.zero_point != out.zero_point:
            return (
                f"input {t.name!r} is {t.describe_quantization()}; int16 CONCATENATION needs every input "
                "quantized like the output"
            )
    if _activation(op) != "NONE":
        return f"fused activation {_activation(op)} on CONCATENATION is not supported"
    return None


def _lower_concat(lw: Lowerer, op: QOperator) -> None:
    out = lw.t(op.outputs[0])
    axis = int(op.options.get("Axis", 0)) % len(out.shape)
    shapes = [lw.t(i).shape for i in op.inputs]
    func = kernels_moves.concatenate(shapes, out.shape, axis, "int16", "concatenation_int16")
    lw.define(op.outputs[0], lw.call(func, "concatenation_int16", [lw.value(i) for i in op.inputs], out))


CONVERTERS16: dict[str, Converter] = {
    "CONV_2D": Converter(_check_conv2d, _lower_conv2d),
    "TRANSPOSE_CONV": Converter(_check_transpose_conv, _lower_transpose_conv),
    "ADD": _add_sub_converter(False),
    "SUB": _add_sub_converter(True),
    "MUL": Converter(_check_mul, _lower_mul),
    "LEAKY_RELU": Converter(_check_leaky_relu, _lower_leaky_relu),
    "QUANTIZE": Converter(_check_quantize, _lower_quantize),
    "DEQUANTIZE": Converter(_check_dequantize, _lower_dequantize),
    "PAD": Converter(_check_pad, _lower_pad),
    "PADV2": Converter(_check_pad, _lower_pad),
    "DEPTHWISE_CONV_2D": Converter(_check_depthwise, _lower_depthwise),
    "FULLY_CONNECTED": Converter(_check_fully_connected, _lower_fully_connected),
    "MAX_POOL_2D": _pool_converter("max"),
    "AVERAGE_POOL_2D": _pool_converter("average"),
    "CONCATENATION": Converter(_check_concat, _lower_concat),
    **ACT_CONVERTERS16,  # LOGISTIC, TANH, SOFTMAX, MEAN, RESIZE_NEAREST_NEIGHBOR, MAXIMUM, MINIMUM
}
