"""Quantized TFLite operators to Relax `call_tir`s of integer kernels, constants prepared in Python.

One converter per operator. Each first states what it supports (`check`, returning the reason it does
not, or None) so the importer can list every unsupported operator at once before building anything;
`lower` then computes what TFLite Micro computes in Prepare() (multipliers, shifts, folded biases,
tables) and emits one kernel call.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
from tvm import relax, tirx

from tvmc_micro.compiler.quantized import activation_tables, kernels
from tvmc_micro.compiler.quantized import fixedpoint as fp
from tvmc_micro.compiler.quantized.graph import QGraph, QOperator, QTensor
from tvmc_micro.compiler.quantized.requant import Requant

_ACTIVATIONS = {0: "NONE", 1: "RELU", 2: "RELU_N1_TO_1", 3: "RELU6", 4: "TANH", 5: "SIGN_BIT"}
_NUMPY_DTYPE = {
    "INT8": "int8",
    "INT32": "int32",
    "FLOAT32": "float32",
    "INT16": "int16",
    "UINT8": "uint8",
    "INT64": "int64",
}


class Lowerer:
    """Holds the Relax builder and the tensor-index -> Relax value map while `main` is built."""

    def __init__(self, graph: QGraph) -> None:
        self.graph = graph
        self.bb = relax.BlockBuilder()
        self.values: dict[int, relax.Expr] = {}
        # Variable (state) tensor index -> its value after this invocation (stateful.py's converters).
        self.state_updates: dict[int, relax.Expr] = {}

    def t(self, index: int) -> QTensor:
        return self.graph.tensors[index]

    def value(self, index: int) -> relax.Expr:
        if index in self.values:
            return self.values[index]
        tensor = self.t(index)
        if tensor.data is None:
            raise KeyError(f"tensor {index} ({tensor.name}) is used before it is computed")
        const = relax.const(tensor.data)
        self.values[index] = const
        return const

    def call(
        self,
        func: tirx.PrimFunc,
        kind: str,
        args: list[relax.Expr],
        out: QTensor,
        out_shape: tuple[int, ...] | None = None,
    ) -> relax.Expr:
        gv = self.bb.add_func(func, kind)
        shape = out.shape if out_shape is None else out_shape
        ty = relax.TensorType(list(shape), _NUMPY_DTYPE[out.dtype]) if hasattr(relax, "TensorType") else None
        return self.bb.emit(relax.call_tir(gv, args, ty), name_hint=kind)

    def define(self, index: int, value: relax.Expr) -> None:
        self.values[index] = value

    def reshape(self, value: relax.Expr, shape: tuple[int, ...]) -> relax.Expr:
        return self.bb.emit(relax.op.reshape(value, list(shape)))


@dataclass
class Converter:
    check: Callable[[QGraph, QOperator], str | None]
    lower: Callable[[Lowerer, QOperator], None]


# --- shared checks -------------------------------------------------------------------------------


def _is_int8_per_tensor(t: QTensor) -> bool:
    return t.dtype == "INT8" and t.is_quantized and not t.per_channel


def _describe(g: QGraph, op: QOperator) -> str:
    parts = []
    for role, idxs in (("in", op.inputs), ("out", op.outputs)):
        for i in idxs:
            if i >= 0:
                parts.append(f"{role} {g.tensors[i].describe_quantization()}")
    return "; ".join(parts)


def _activation(op: QOperator) -> str:
    return _ACTIVATIONS.get(int(op.options.get("FusedActivationFunction", 0)), "UNKNOWN")


def _check_io_int8(g: QGraph, op: QOperator, n_inputs: int) -> str | None:
    for i in op.inputs[:n_inputs]:
        if not _is_int8_per_tensor(g.tensors[i]):
            t = g.tensors[i]
            return f"input {t.name!r} is {t.describe_quantization()}, needs int8 per-tensor"
    out = g.tensors[op.outputs[0]]
    if not _is_int8_per_tensor(out):
        return f"output {out.name!r} is {out.describe_quantization()}, needs int8 per-tensor"
    act = _activation(op)
    if act not in ("NONE", "RELU", "RELU6", "RELU_N1_TO_1"):
        return f"fused activation {act} has no integer form"
    return None


def _check_weighted(g: QGraph, op: QOperator) -> str | None:
    problem = _check_io_int8(g, op, 1)
    if problem:
        return problem
    w = g.tensors[op.inputs[1]]
    if w.dtype != "INT8" or not w.is_quantized:
        return f"weights {w.name!r} are {w.describe_quantization()}, needs int8"
    if w.data is None:
        return f"weights {w.name!r} are computed at run time; only constant weights are supported"
    if np.any(w.zero_points != 0):
        return f"weights {w.name!r} are {w.describe_quantization()}; TFLite requires symmetric (zero point 0)"
    if len(op.inputs) > 2 and op.inputs[2] >= 0:
        b = g.tensors[op.inputs[2]]
        if b.dtype != "INT32" or b.data is None:
            kind = b.dtype.lower() + ("" if b.data is not None else ", computed at run time")
            return f"bias {b.name!r} is {kind}; needs a constant int32 bias"
    return None


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
    params = kernels.AddParams(
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
    func = kernels.add(a.shape, b.shape, out.shape, params, kind)
    lw.define(op.outputs[0], lw.call(func, kind, [lw.value(op.inputs[0]), lw.value(op.inputs[1])], out))


def _lower_sub(lw: Lowerer, op: QOperator) -> None:
    """SUB: ADD's Prepare() arithmetic (double multipliers, left shift 20), the rescaled inputs subtracted."""
    _lower_add(lw, op, subtract=True)


def _lower_mul(lw: Lowerer, op: QOperator) -> None:
    a, b, out = lw.t(op.inputs[0]), lw.t(op.inputs[1]), lw.t(op.outputs[0])
    rq = Requant.from_real([a.scale * b.scale / out.scale])
    func = kernels.mul(
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
    problem = _check_io_int8(g, op, 2)
    if problem:
        return problem
    shapes = [g.tensors[i].shape for i in op.inputs[:2]]
    try:
        full = np.broadcast_shapes(*shapes)
    except ValueError:
        return f"input shapes {[list(s) for s in shapes]} do not broadcast"
    if tuple(full) != tuple(g.tensors[op.outputs[0]].shape):
        return f"broadcast shape {list(full)} differs from the output shape"
    return None


def _lower_table(kind: str) -> Callable[[Lowerer, QOperator], None]:
    def lower(lw: Lowerer, op: QOperator) -> None:
        inp, out = lw.t(op.inputs[0]), lw.t(op.outputs[0])
        if kind == "logistic":
            table = fp.logistic_table(inp.scale, inp.zero_point)
        elif kind == "tanh":
            table = fp.tanh_table(inp.scale, inp.zero_point)
        else:
            table = _requantize_table(inp, out)
        func = kernels.lookup_table(inp.shape, kind, str(np.dtype(_NUMPY_DTYPE[inp.dtype])), str(table.dtype))
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
    func = kernels.softmax(inp.shape, start, "softmax", _NUMPY_DTYPE[out.dtype])
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


# --- data movement ---------------------------------------------------------------------------------


def _lower_reshape(lw: Lowerer, op: QOperator) -> None:
    lw.define(op.outputs[0], lw.reshape(lw.value(op.inputs[0]), lw.t(op.outputs[0]).shape))


def _same_quantization(a: QTensor, b: QTensor) -> bool:
    return (
        a.dtype == b.dtype
        and np.array_equal(a.scales, b.scales)
        and np.array_equal(a.zero_points, b.zero_points)
    )


def _check_reshape(g: QGraph, op: QOperator) -> str | None:
    inp, out = g.tensors[op.inputs[0]], g.tensors[op.outputs[0]]
    if inp.dtype != out.dtype:
        return f"changes the type from {inp.dtype.lower()} to {out.dtype.lower()}"
    if int(np.prod(inp.shape)) != int(np.prod(out.shape)):
        return "element counts of input and output differ"
    if inp.is_quantized and not _same_quantization(inp, out):
        return "input and output quantization differ"
    return None


def _pad_amounts(g: QGraph, op: QOperator) -> np.ndarray:
    pads = g.tensors[op.inputs[1]].data
    assert pads is not None
    return np.asarray(pads, dtype=np.int64).reshape(-1, 2)


def _lower_pad(lw: Lowerer, op: QOperator) -> None:
    inp, out = lw.t(op.inputs[0]), lw.t(op.outputs[0])
    pads = _pad_amounts(lw.graph, op)
    value = out.zero_point
    if len(op.inputs) > 2 and op.inputs[2] >= 0:
        cv = lw.t(op.inputs[2]).data
        assert cv is not None
        value = int(np.asarray(cv).reshape(-1)[0])
    func = kernels.pad(inp.shape, out.shape, [int(p) for p in pads[:, 0]], value, "int8", "pad")
    lw.define(op.outputs[0], lw.call(func, "pad", [lw.value(op.inputs[0])], out))


def _check_pad(g: QGraph, op: QOperator) -> str | None:
    inp, out = g.tensors[op.inputs[0]], g.tensors[op.outputs[0]]
    if not _is_int8_per_tensor(inp) or not _same_quantization(inp, out):
        return "needs int8 per-tensor input with the output's quantization"
    if g.tensors[op.inputs[1]].data is None:
        return "paddings are computed at run time; only constant paddings are supported"
    if len(op.inputs) > 2 and op.inputs[2] >= 0 and g.tensors[op.inputs[2]].data is None:
        return "the pad value is computed at run time"
    pads = _pad_amounts(g, op)
    if pads.shape[0] != len(inp.shape) or np.any(pads < 0):
        return "paddings must be non-negative, one pair per input dimension"
    return None


def _lower_concat(lw: Lowerer, op: QOperator) -> None:
    out = lw.t(op.outputs[0])
    axis = int(op.options.get("Axis", 0)) % len(out.shape)
    shapes = [lw.t(i).shape for i in op.inputs]
    func = kernels.concatenate(shapes, out.shape, axis, "int8", "concatenation")
    lw.define(op.outputs[0], lw.call(func, "concatenation", [lw.value(i) for i in op.inputs], out))


def _check_concat(g: QGraph, op: QOperator) -> str | None:
    out = g.tensors[op.outputs[0]]
    if not _is_int8_per_tensor(out):
        return f"output is {out.describe_quantization()}, needs int8 per-tensor"
    for i in op.inputs:
        if not _same_quantization(g.tensors[i], out):
            return (
                f"input {g.tensors[i].name!r} is {g.tensors[i].describe_quantization()}; int8 CONCATENATION "
                "needs every input quantized like the output (TFLite Micro requires it)"
            )
    if _activation(op) != "NONE":
        return f"fused activation {_activation(op)} on CONCATENATION is not supported"
    return None


def _lower_mean(lw: Lowerer, op: QOperator) -> None:
    inp, out = lw.t(op.inputs[0]), lw.t(op.outputs[0])
    axes_data = lw.t(op.inputs[1]).data
    assert axes_data is not None
    axes = sorted(set(int(a) % len(inp.shape) for a in np.asarray(axes_data).reshape(-1)))
    count = int(np.prod([inp.shape[a] for a in axes]))
    m, s = fp.mean_multiplier(inp.scale, out.scale, count)
    rq = Requant(np.array([m], np.int32), np.array([s], np.int32))
    func = kernels.mean(inp.shape, axes, inp.zero_point, out.zero_point, rq, "mean")
    kept = tuple(1 if i in axes else d for i, d in enumerate(inp.shape))
    result = lw.call(func, "mean", [lw.value(op.inputs[0])], out, kept)
    if tuple(out.shape) != kept:
        result = lw.reshape(result, out.shape)
    lw.define(op.outputs[0], result)


def _check_mean(g: QGraph, op: QOperator) -> str | None:
    inp, out = g.tensors[op.inputs[0]], g.tensors[op.outputs[0]]
    if not _is_int8_per_tensor(inp) or not _is_int8_per_tensor(out):
        return "needs int8 per-tensor input and output"
    if g.tensors[op.inputs[1]].data is None:
        return "the reduction axes are computed at run time"
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


# --- more data movement: TRANSPOSE, slices, splits, packs (copies, or views where the bytes agree) -----

_MOVABLE = ("INT8", "INT16")


def _check_moves(g: QGraph, op: QOperator, data_inputs: Sequence[int], kind: str) -> str | None:
    """Pure data movement: int8/int16 per-tensor in and out, quantised alike (TFLM copies the bytes)."""
    outs = [g.tensors[i] for i in op.outputs]
    for i in data_inputs:
        t = g.tensors[i]
        if t.dtype not in _MOVABLE or not t.is_quantized or t.per_channel:
            return f"input {t.name!r} is {t.describe_quantization()}, needs int8 or int16 per-tensor"
        if t.data is not None:
            return f"input {t.name!r} is a constant; {kind} of constants is not supported"
        for out in outs:
            if not _same_quantization(t, out):
                return (
                    f"input {t.describe_quantization()} and output {out.describe_quantization()} differ; "
                    f"{kind} needs them quantized alike (TFLite Micro copies the values)"
                )
    return None


def _const_ints(g: QGraph, index: int) -> list[int] | None:
    data = g.tensors[index].data
    return None if data is None else [int(v) for v in np.asarray(data).reshape(-1)]


def _is_view(shape: Sequence[int], perm: Sequence[int]) -> bool:
    """True when a permutation only moves size-1 dimensions: the bytes stay in order, a reshape does it."""
    moved = [p for p in perm if shape[p] != 1]
    return moved == sorted(moved)


def _lower_transpose(lw: Lowerer, op: QOperator) -> None:
    inp, out = lw.t(op.inputs[0]), lw.t(op.outputs[0])
    perm = _const_ints(lw.graph, op.inputs[1])
    assert perm is not None
    if _is_view(inp.shape, perm):
        lw.define(op.outputs[0], lw.reshape(lw.value(op.inputs[0]), out.shape))
        return
    func = kernels.transpose(inp.shape, perm, _NUMPY_DTYPE[inp.dtype], "transpose")
    lw.define(op.outputs[0], lw.call(func, "transpose", [lw.value(op.inputs[0])], out))


def _check_transpose(g: QGraph, op: QOperator) -> str | None:
    problem = _check_moves(g, op, op.inputs[:1], "TRANSPOSE")
    if problem:
        return problem
    inp, out = g.tensors[op.inputs[0]], g.tensors[op.outputs[0]]
    perm = _const_ints(g, op.inputs[1])
    if perm is None:
        return "the permutation is computed at run time; TFLite Micro needs a constant one"
    if not 1 <= len(inp.shape) <= 5:
        return f"input has rank {len(inp.shape)}; TFLite Micro's TRANSPOSE supports ranks 1 to 5"
    if sorted(perm) != list(range(len(inp.shape))):
        return f"permutation {perm} is not a permutation of the input's {len(inp.shape)} dimensions"
    if tuple(inp.shape[p] for p in perm) != tuple(out.shape):
        return f"output shape {list(out.shape)} does not match the permuted input shape"
    return None


def _emit_slice(
    lw: Lowerer,
    src: int,
    dst: int,
    begin: Sequence[int],
    strides: Sequence[int],
    kept: tuple[int, ...],
    kind: str,
) -> None:
    """Output `dst` = input `src` at begin + i * stride (`kept`: the slice's shape at the input's rank).

    A slice that keeps every element is a reshape view; otherwise one copy kernel (the arena has no
    views at an offset), reshaped to the output's shape (shrunk or unpacked axes dropped)."""
    inp, out = lw.t(src), lw.t(dst)
    if tuple(kept) == tuple(inp.shape) and all(b == 0 for b in begin) and all(s == 1 for s in strides):
        lw.define(dst, lw.reshape(lw.value(src), out.shape))
        return
    func = kernels.strided_slice(inp.shape, begin, strides, kept, _NUMPY_DTYPE[inp.dtype], kind)
    result = lw.call(func, kind, [lw.value(src)], out, kept)
    if tuple(out.shape) != tuple(kept):
        result = lw.reshape(result, out.shape)
    lw.define(dst, result)


def _clamp(v: int, lo: int, hi: int) -> int:
    return hi if v > hi else lo if v < lo else v


def _strided_slice_plan(g: QGraph, op: QOperator) -> tuple[list[int], list[int], tuple[int, ...]]:
    """begin, strides and per-axis counts as TFLM's reference StridedSlice iterates them
    (StridedSliceStartForAxis / StridedSliceEndForAxis; TFLM never sets `offset`)."""
    shape = g.tensors[op.inputs[0]].shape
    starts, stops, strides = (_const_ints(g, i) or [] for i in op.inputs[1:4])
    o = op.options
    begin_mask, end_mask = int(o.get("BeginMask", 0)), int(o.get("EndMask", 0))
    shrink = int(o.get("ShrinkAxisMask", 0))
    begins, counts = [], []
    for axis, size in enumerate(shape):
        stride = strides[axis]
        start = starts[axis] + (size if starts[axis] < 0 else 0)
        start = _clamp(start, 0, size) if stride > 0 else _clamp(start, -1, size - 1)
        if begin_mask & (1 << axis):
            start = 0 if stride > 0 else size - 1
        if shrink & (1 << axis):
            end = start if start >= size else start + 1
        else:
            end = stops[axis] + (size if stops[axis] < 0 else 0)
            end = _clamp(end, 0, size) if stride > 0 else _clamp(end, -1, size - 1)
            if end_mask & (1 << axis):
                end = size if stride > 0 else -1
        n = -(-(end - start) // stride) if stride > 0 else -(-(start - end) // -stride)
        begins.append(start)
        counts.append(max(n, 0))
    return begins, strides, tuple(counts)


def _lower_strided_slice(lw: Lowerer, op: QOperator) -> None:
    begins, strides, counts = _strided_slice_plan(lw.graph, op)
    _emit_slice(lw, op.inputs[0], op.outputs[0], begins, strides, counts, "strided_slice")


def _check_strided_slice(g: QGraph, op: QOperator) -> str | None:
    problem = _check_moves(g, op, op.inputs[:1], "STRIDED_SLICE")
    if problem:
        return problem
    inp, out = g.tensors[op.inputs[0]], g.tensors[op.outputs[0]]
    values = [_const_ints(g, i) for i in op.inputs[1:4]]
    if any(v is None for v in values):
        return "begin, end or strides are computed at run time; TFLite Micro needs constants"
    if any(len(v or []) != len(inp.shape) for v in values):
        return f"begin/end/strides need one value per input dimension ({len(inp.shape)})"
    if not 1 <= len(inp.shape) <= 4:
        return f"input has rank {len(inp.shape)}; TFLite Micro's STRIDED_SLICE supports ranks 1 to 4"
    o = op.options
    for mask in ("EllipsisMask", "NewAxisMask"):
        if int(o.get(mask, 0)):
            return f"{mask} is set; TFLite Micro ignores it (re-export without ellipsis/new axes)"
    if bool(o.get("Offset", False)):
        return "offset=True (end relative to begin) is not supported by TFLite Micro"
    if any(s == 0 for s in values[2] or []):
        return "a stride is zero"
    _, _, counts = _strided_slice_plan(g, op)
    shrink = int(o.get("ShrinkAxisMask", 0))
    expected = tuple(c for a, c in enumerate(counts) if not shrink & (1 << a))
    if expected != tuple(out.shape) or 0 in counts:
        return f"the slice has shape {list(expected)} but the output is {list(out.shape)}"
    return None


def _lower_slice(lw: Lowerer, op: QOperator) -> None:
    begin = _const_ints(lw.graph, op.inputs[1])
    assert begin is not None
    out = lw.t(op.outputs[0])
    _emit_slice(lw, op.inputs[0], op.outputs[0], begin, [1] * len(begin), out.shape, "slice")


def _check_slice(g: QGraph, op: QOperator) -> str | None:
    problem = _check_moves(g, op, op.inputs[:1], "SLICE")
    if problem:
        return problem
    inp, out = g.tensors[op.inputs[0]], g.tensors[op.outputs[0]]
    begin, size = _const_ints(g, op.inputs[1]), _const_ints(g, op.inputs[2])
    if begin is None or size is None:
        return "begin or size is computed at run time; only constant slices are supported"
    if not 1 <= len(inp.shape) <= 5 or len(begin) != len(inp.shape) or len(out.shape) != len(inp.shape):
        return f"needs rank 1 to 5 and one begin/size per dimension (input rank {len(inp.shape)})"
    for b, n, d in zip(begin, out.shape, inp.shape, strict=True):
        if b < 0 or b + n > d or n <= 0:
            return (
                f"slice begin {begin} with output shape {list(out.shape)} leaves the input {list(inp.shape)}"
            )
    return None


def _split_axis(g: QGraph, index: int, rank: int) -> int:
    axis = _const_ints(g, index)
    assert axis is not None
    return axis[0] + rank if axis[0] < 0 else axis[0]


def _lower_split_along(lw: Lowerer, op: QOperator, src: int, axis: int, kind: str) -> None:
    """One copy kernel per output (the graph has no tuple values), each a slice along `axis`."""
    inp = lw.t(src)
    offset = 0
    for dst in op.outputs:
        out = lw.t(dst)
        begin = [offset if a == axis else 0 for a in range(len(inp.shape))]
        kept = tuple(out.shape[a] if a == axis else d for a, d in enumerate(inp.shape))
        _emit_slice(lw, src, dst, begin, [1] * len(inp.shape), kept, kind)
        offset += out.shape[axis]


def _check_split_outputs(g: QGraph, op: QOperator, src: int, axis: int, kind: str) -> str | None:
    problem = _check_moves(g, op, [src], kind)
    if problem:
        return problem
    inp = g.tensors[src]
    if not 0 <= axis < len(inp.shape):
        return f"axis {axis} is outside the input's {len(inp.shape)} dimensions"
    total = 0
    for dst in op.outputs:
        out = g.tensors[dst]
        same = len(out.shape) == len(inp.shape) and all(
            o == d for a, (o, d) in enumerate(zip(out.shape, inp.shape, strict=True)) if a != axis
        )
        if not same:
            return f"output shape {list(out.shape)} does not match input {list(inp.shape)} off axis {axis}"
        total += out.shape[axis]
    if total != inp.shape[axis]:
        return f"outputs cover {total} of the {inp.shape[axis]} elements along axis {axis}"
    return None


def _lower_split(lw: Lowerer, op: QOperator) -> None:
    src = op.inputs[1]
    _lower_split_along(lw, op, src, _split_axis(lw.graph, op.inputs[0], len(lw.t(src).shape)), "split")


def _check_split(g: QGraph, op: QOperator) -> str | None:
    if _const_ints(g, op.inputs[0]) is None:
        return "the split axis is computed at run time; TFLite Micro needs a constant"
    src = op.inputs[1]
    return _check_split_outputs(g, op, src, _split_axis(g, op.inputs[0], len(g.tensors[src].shape)), "SPLIT")


def _lower_split_v(lw: Lowerer, op: QOperator) -> None:
    src = op.inputs[0]
    _lower_split_along(lw, op, src, _split_axis(lw.graph, op.inputs[2], len(lw.t(src).shape)), "split_v")


def _check_split_v(g: QGraph, op: QOperator) -> str | None:
    if _const_ints(g, op.inputs[2]) is None:
        return "the split axis is computed at run time; TFLite Micro needs a constant"
    src = op.inputs[0]
    return _check_split_outputs(
        g, op, src, _split_axis(g, op.inputs[2], len(g.tensors[src].shape)), "SPLIT_V"
    )


def _unpack_axis(g: QGraph, op: QOperator) -> int:
    axis = int(op.options.get("Axis", 0))
    rank = len(g.tensors[op.inputs[0]].shape)
    return axis + rank if axis < 0 else axis


def _lower_unpack(lw: Lowerer, op: QOperator) -> None:
    inp = lw.t(op.inputs[0])
    axis = _unpack_axis(lw.graph, op)
    for k, dst in enumerate(op.outputs):
        begin = [k if a == axis else 0 for a in range(len(inp.shape))]
        kept = tuple(1 if a == axis else d for a, d in enumerate(inp.shape))
        _emit_slice(lw, op.inputs[0], dst, begin, [1] * len(inp.shape), kept, "unpack")


def _check_unpack(g: QGraph, op: QOperator) -> str | None:
    problem = _check_moves(g, op, op.inputs[:1], "UNPACK")
    if problem:
        return problem
    inp = g.tensors[op.inputs[0]]
    axis = _unpack_axis(g, op)
    if not 0 <= axis < len(inp.shape):
        return f"axis {op.options.get('Axis')} is outside the input's {len(inp.shape)} dimensions"
    if len(op.outputs) != inp.shape[axis]:
        return f"{len(op.outputs)} outputs for {inp.shape[axis]} elements along axis {axis}"
    want = tuple(d for a, d in enumerate(inp.shape) if a != axis)
    for dst in op.outputs:
        if tuple(g.tensors[dst].shape) != want:
            return f"output shape {list(g.tensors[dst].shape)} should be {list(want)}"
    return None


def _pack_axis(g: QGraph, op: QOperator) -> int:
    axis = int(op.options.get("Axis", 0))
    rank = len(g.tensors[op.outputs[0]].shape)
    return axis + rank if axis < 0 else axis


def _lower_pack(lw: Lowerer, op: QOperator) -> None:
    """PACK is CONCATENATION of the inputs, each viewed with a unit dimension at `axis`."""
    out = lw.t(op.outputs[0])
    axis = _pack_axis(lw.graph, op)
    unit = tuple(1 if a == axis else d for a, d in enumerate(out.shape))
    parts = [lw.reshape(lw.value(i), unit) for i in op.inputs]
    if len(parts) == 1:
        lw.define(op.outputs[0], lw.reshape(parts[0], out.shape))
        return
    func = kernels.concatenate([unit] * len(parts), out.shape, axis, _NUMPY_DTYPE[out.dtype], "pack")
    lw.define(op.outputs[0], lw.call(func, "pack", parts, out))


def _check_pack(g: QGraph, op: QOperator) -> str | None:
    problem = _check_moves(g, op, op.inputs, "PACK")
    if problem:
        return problem
    out = g.tensors[op.outputs[0]]
    axis = _pack_axis(g, op)
    if not 0 <= axis < len(out.shape):
        return f"axis {op.options.get('Axis')} is outside the output's {len(out.shape)} dimensions"
    want = tuple(d for a, d in enumerate(out.shape) if a != axis)
    if out.shape[axis] != len(op.inputs):
        return f"{len(op.inputs)} inputs but the output has {out.shape[axis]} along axis {axis}"
    for i in op.inputs:
        if tuple(g.tensors[i].shape) != want:
            return f"input shape {list(g.tensors[i].shape)} should be {list(want)}"
    return None


# --- standalone int8 activations: one 256-entry table each (activation_tables) ------------------------


def _lower_lut(
    kind: str, make: Callable[[QTensor, QTensor, QOperator], np.ndarray]
) -> Callable[[Lowerer, QOperator], None]:
    def lower(lw: Lowerer, op: QOperator) -> None:
        inp, out = lw.t(op.inputs[0]), lw.t(op.outputs[0])
        table = make(inp, out, op)
        func = kernels.lookup_table(inp.shape, kind)
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
        func = kernels.maximum_minimum(a.shape, b.shape, out.shape, take_max, kind)
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


def _nearest_sources(in_size: int, out_size: int, align_corners: bool, half_pixel: bool) -> list[int]:
    """GetNearestNeighbor for every output index, in float32 as the C++ computes it."""
    f32 = np.float32
    if align_corners and out_size > 1:
        scale = f32(in_size - 1) / f32(out_size - 1)
    else:
        scale = f32(in_size) / f32(out_size)
    offset = f32(0.5) if half_pixel else f32(0.0)
    result = []
    for i in range(out_size):
        v = (f32(i) + offset) * scale
        src = fp.tflite_round(float(v)) if align_corners else int(np.floor(v))
        src = min(src, in_size - 1)
        result.append(max(src, 0) if half_pixel else src)
    return result


def _lower_resize_nearest(lw: Lowerer, op: QOperator) -> None:
    inp, out = lw.t(op.inputs[0]), lw.t(op.outputs[0])
    align, half = bool(op.options.get("AlignCorners", False)), bool(op.options.get("HalfPixelCenters", False))
    rows = _nearest_sources(inp.shape[1], out.shape[1], align, half)
    cols = _nearest_sources(inp.shape[2], out.shape[2], align, half)
    func = kernels.resize_nearest(inp.shape, out.shape, rows, cols, "resize_nearest")
    args: list[relax.Expr] = [lw.value(op.inputs[0])]
    for values, in_size in ((rows, inp.shape[1]), (cols, inp.shape[2])):
        if not kernels.is_integer_ratio(values, in_size):
            args.append(relax.const(np.asarray(values, np.int32)))
    lw.define(op.outputs[0], lw.call(func, "resize_nearest", args, out))


def _check_resize_nearest(g: QGraph, op: QOperator) -> str | None:
    problem = _check_moves(g, op, op.inputs[:1], "RESIZE_NEAREST_NEIGHBOR")
    if problem:
        return problem
    inp, out = g.tensors[op.inputs[0]], g.tensors[op.outputs[0]]
    if inp.dtype != "INT8":
        return f"input is {inp.describe_quantization()}; only int8 is supported"
    size = _const_ints(g, op.inputs[1])
    if size is None:
        return "the output size is computed at run time; TFLite Micro needs a constant"
    if len(inp.shape) != 4 or len(out.shape) != 4:
        return "needs 4-D NHWC input and output"
    if list(size) != list(out.shape[1:3]) or inp.shape[0] != out.shape[0] or inp.shape[3] != out.shape[3]:
        return f"size {size} does not match the output shape {list(out.shape)}"
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
    params = kernels.AddParams(
        zero_point_a=a.zero_point,
        zero_point_b=b.zero_point,
        output_zero_point=out.zero_point,
        left_shift=left_shift,
        requant_a=Requant.from_real([a.scale / twice_max]),
        requant_b=Requant.from_real([b.scale / twice_max]),
        requant_out=Requant.from_real([twice_max * twice_max / float((1 << 2 * left_shift) * out.scales[0])]),
        act_range=(-128, 127),
    )
    func = kernels.squared_difference(a.shape, b.shape, out.shape, params, "squared_difference")
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
    func = kernels.prelu(
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
        func = kernels.arg_min_max(inp.shape, axis, take_max, _NUMPY_DTYPE[out.dtype], dtype, kind)
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
        inp, out = lw.t(op.inputs[0]), lw.t(op.outputs[0])
        axes = _reduce_axes(lw.graph, op)
        kept = tuple(1 if i in axes else d for i, d in enumerate(inp.shape))
        func = kernels.reduce_max_min(inp.shape, axes, take_max, _NUMPY_DTYPE[inp.dtype], kind)
        result = lw.call(func, kind, [lw.value(op.inputs[0])], out, kept)
        if tuple(out.shape) != kept:
            result = lw.reshape(result, out.shape)
        lw.define(op.outputs[0], result)

    return lower


def _check_int8_only(g: QGraph, op: QOperator) -> str | None:
    """For copies TFLM implements for int8 (and float) only: refuse int16 rather than guess."""
    t = g.tensors[op.inputs[0]]
    if t.dtype != "INT8":
        return f"input is {t.describe_quantization()}; TFLite Micro's {op.name} supports int8 only"
    return None


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


def _lower_space_depth(to_space: bool) -> Callable[[Lowerer, QOperator], None]:
    kind = "depth_to_space" if to_space else "space_to_depth"

    def lower(lw: Lowerer, op: QOperator) -> None:
        inp, out = lw.t(op.inputs[0]), lw.t(op.outputs[0])
        block = int(op.options.get("BlockSize", 1))
        builder = kernels.depth_to_space if to_space else kernels.space_to_depth
        func = builder(inp.shape, block, _NUMPY_DTYPE[inp.dtype], kind)
        lw.define(op.outputs[0], lw.call(func, kind, [lw.value(op.inputs[0])], out))

    return lower


def _check_space_depth(g: QGraph, op: QOperator) -> str | None:
    problem = _check_moves(g, op, op.inputs[:1], op.name) or _check_int8_only(g, op)
    if problem:
        return problem
    inp, out = g.tensors[op.inputs[0]], g.tensors[op.outputs[0]]
    block = int(op.options.get("BlockSize", 0))
    if len(inp.shape) != 4 or block < 1:
        return f"needs 4-D NHWC input and a block size >= 1 (got rank {len(inp.shape)}, block {block})"
    n, h, w, c = inp.shape
    if op.name == "DEPTH_TO_SPACE":
        want = (n, h * block, w * block, c // (block * block)) if c % (block * block) == 0 else None
    else:
        want = (n, h // block, w // block, c * block * block) if h % block == 0 and w % block == 0 else None
    if want is None or tuple(out.shape) != want:
        return f"input {list(inp.shape)} with block size {block} does not give the output {list(out.shape)}"
    return None


# --- GATHER, BATCH_TO_SPACE_ND / SPACE_TO_BATCH_ND, MIRROR_PAD, RESIZE_BILINEAR ---------------------------


def _lower_gather(lw: Lowerer, op: QOperator) -> None:
    inp, out = lw.t(op.inputs[0]), lw.t(op.outputs[0])
    axis = int(op.options.get("Axis", 0)) % len(inp.shape)
    indices = _const_ints(lw.graph, op.inputs[1])
    assert indices is not None
    func = kernels.gather(inp.shape, axis, len(indices), _NUMPY_DTYPE[inp.dtype], "gather")
    args = [lw.value(op.inputs[0]), relax.const(np.asarray(indices, np.int32))]
    flat = (*inp.shape[:axis], len(indices), *inp.shape[axis + 1 :])
    result = lw.call(func, "gather", args, out, flat)
    lw.define(op.outputs[0], result if flat == tuple(out.shape) else lw.reshape(result, out.shape))


def _check_gather(g: QGraph, op: QOperator) -> str | None:
    problem = _check_moves(g, op, op.inputs[:1], "GATHER") or _check_int8_only(g, op)
    if problem:
        return problem
    inp, idx, out = g.tensors[op.inputs[0]], g.tensors[op.inputs[1]], g.tensors[op.outputs[0]]
    indices = _const_ints(g, op.inputs[1])
    if indices is None:
        return "the indices are computed at run time; only constant indices are supported"
    if int(op.options.get("BatchDims", 0)) != 0:
        return f"batch_dims {int(op.options.get('BatchDims', 0))} is not supported (only 0)"
    axis = int(op.options.get("Axis", 0))
    if not -len(inp.shape) <= axis < len(inp.shape):
        return f"axis {axis} is out of range for a rank-{len(inp.shape)} input"
    axis %= len(inp.shape)
    bad = [i for i in indices if not 0 <= i < inp.shape[axis]]
    if bad:  # TFLite Micro fails such a model at run time
        return f"index {bad[0]} is outside [0, {inp.shape[axis]}) on axis {axis}"
    want = (*inp.shape[:axis], *idx.shape, *inp.shape[axis + 1 :])
    if tuple(out.shape) != want:
        return f"output shape {list(out.shape)} does not match {list(want)}"
    return None


def _space_batch_4d(shape: Sequence[int]) -> tuple[int, int, int, int]:
    """TFLM runs 3-D inputs (N, H, C) of the space/batch ops as N, H, 1, C."""
    if len(shape) == 3:
        return (shape[0], shape[1], 1, shape[2])
    n, h, w, c = shape
    return (n, h, w, c)


def _space_batch_params(g: QGraph, op: QOperator) -> tuple[tuple[int, int], tuple[int, int, int, int]]:
    """(block height, width), (pad or crop top, bottom, left, right); width terms 1 / 0 for 3-D inputs."""
    block = _const_ints(g, op.inputs[1]) or []
    amounts = _const_ints(g, op.inputs[2]) or []
    if len(g.tensors[op.inputs[0]].shape) == 3:
        return (block[0], 1), (amounts[0], amounts[1], 0, 0)
    return (block[0], block[1]), (amounts[0], amounts[1], amounts[2], amounts[3])


def _lower_space_batch(to_batch: bool) -> Callable[[Lowerer, QOperator], None]:
    kind = "space_to_batch" if to_batch else "batch_to_space"

    def lower(lw: Lowerer, op: QOperator) -> None:
        inp, out = lw.t(op.inputs[0]), lw.t(op.outputs[0])
        block, (top, _, left, _) = _space_batch_params(lw.graph, op)
        in4, out4 = _space_batch_4d(inp.shape), _space_batch_4d(out.shape)
        dtype = _NUMPY_DTYPE[inp.dtype]
        if to_batch:
            func = kernels.space_to_batch(in4, out4, block, (top, left), out.zero_point, dtype, kind)
        else:
            func = kernels.batch_to_space(in4, out4, block, (top, left), dtype, kind)
        data = lw.value(op.inputs[0])
        if in4 != tuple(inp.shape):
            data = lw.reshape(data, in4)
        result = lw.call(func, kind, [data], out, out4)
        lw.define(op.outputs[0], result if out4 == tuple(out.shape) else lw.reshape(result, out.shape))

    return lower


def _check_space_batch(g: QGraph, op: QOperator) -> str | None:
    problem = _check_moves(g, op, op.inputs[:1], op.name) or _check_int8_only(g, op)
    if problem:
        return problem
    inp, out = g.tensors[op.inputs[0]], g.tensors[op.outputs[0]]
    if len(inp.shape) not in (3, 4) or len(out.shape) != len(inp.shape):
        return f"needs 3-D or 4-D input and output of one rank (got {list(inp.shape)} -> {list(out.shape)})"
    spatial = len(inp.shape) - 2
    block, amounts = _const_ints(g, op.inputs[1]), _const_ints(g, op.inputs[2])
    what = "paddings" if op.name == "SPACE_TO_BATCH_ND" else "crops"
    if block is None or amounts is None:
        return f"the block shape or {what} are computed at run time; only constants are supported"
    if len(block) != spatial or len(amounts) != 2 * spatial or min(block) < 1 or min(amounts) < 0:
        return f"block shape {block} and {what} {amounts} do not fit a rank-{len(inp.shape)} input"
    (bh, bw), (a_top, a_bottom, a_left, a_right) = _space_batch_params(g, op)
    n, h, w, c = _space_batch_4d(inp.shape)
    if op.name == "SPACE_TO_BATCH_ND":
        ph, pw = h + a_top + a_bottom, w + a_left + a_right
        ok = ph % bh == 0 and pw % bw == 0
        want = (n * bh * bw, ph // bh if ok else -1, pw // bw if ok else -1, c)
    else:
        ok = n % (bh * bw) == 0
        want = (n // (bh * bw), h * bh - a_top - a_bottom, w * bw - a_left - a_right, c)
    if not ok or min(want) <= 0 or _space_batch_4d(out.shape) != want:
        got = list(out.shape)
        return f"input {list(inp.shape)} with block {block} and {what} {amounts} does not give {got}"
    return None


def _lower_mirror_pad(lw: Lowerer, op: QOperator) -> None:
    inp, out = lw.t(op.inputs[0]), lw.t(op.outputs[0])
    pads = [(int(a), int(b)) for a, b in _pad_amounts(lw.graph, op)]
    offset = 1 if int(op.options.get("Mode", 0)) == 0 else 0  # REFLECT skips the edge, SYMMETRIC repeats it
    func = kernels.mirror_pad(inp.shape, pads, offset, _NUMPY_DTYPE[inp.dtype], "mirror_pad")
    lw.define(op.outputs[0], lw.call(func, "mirror_pad", [lw.value(op.inputs[0])], out))


def _check_mirror_pad(g: QGraph, op: QOperator) -> str | None:
    problem = _check_moves(g, op, op.inputs[:1], "MIRROR_PAD") or _check_int8_only(g, op)
    if problem:
        return problem
    inp, out = g.tensors[op.inputs[0]], g.tensors[op.outputs[0]]
    if g.tensors[op.inputs[1]].data is None:
        return "paddings are computed at run time; only constant paddings are supported"
    pads = _pad_amounts(g, op)
    if pads.shape[0] != len(inp.shape) or np.any(pads < 0):
        return "paddings must be non-negative, one pair per input dimension"
    reflect = int(op.options.get("Mode", 0)) == 0
    limit = [n - 1 if reflect else n for n in inp.shape]
    for axis, ((a, b), most) in enumerate(zip(pads.tolist(), limit, strict=True)):
        if a > most or b > most:
            mode = "REFLECT" if reflect else "SYMMETRIC"
            size = inp.shape[axis]
            return f"padding ({a}, {b}) on axis {axis} exceeds {most}, the most {mode} allows for size {size}"
    if tuple(out.shape) != tuple(int(n + a + b) for n, (a, b) in zip(inp.shape, pads.tolist(), strict=True)):
        return f"output shape {list(out.shape)} does not match the paddings"
    return None


def _resize_scale_10(in_size: int, out_size: int, align: bool) -> int:
    """TFLM's ResizeBilinearInteger scale in 1/1024 units (rounded integer division)."""
    if align and out_size > 1:
        return ((1 << 10) * (in_size - 1) + (out_size - 1) // 2) // (out_size - 1)
    return ((1 << 10) * in_size + out_size // 2) // out_size


def _lower_resize_bilinear(lw: Lowerer, op: QOperator) -> None:
    inp, out = lw.t(op.inputs[0]), lw.t(op.outputs[0])
    align, half = bool(op.options.get("AlignCorners", False)), bool(op.options.get("HalfPixelCenters", False))
    scale = (
        _resize_scale_10(inp.shape[1], out.shape[1], align),
        _resize_scale_10(inp.shape[2], out.shape[2], align),
    )
    func = kernels.resize_bilinear(inp.shape, out.shape, scale, half, "resize_bilinear")
    lw.define(op.outputs[0], lw.call(func, "resize_bilinear", [lw.value(op.inputs[0])], out))


def _check_resize_bilinear(g: QGraph, op: QOperator) -> str | None:
    problem = _check_moves(g, op, op.inputs[:1], "RESIZE_BILINEAR") or _check_int8_only(g, op)
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
    if bool(op.options.get("AlignCorners", False)) and bool(op.options.get("HalfPixelCenters", False)):
        return "align_corners and half_pixel_centers together (TFLite Micro refuses them)"
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
    "RESHAPE": Converter(_check_reshape, _lower_reshape),
    "SQUEEZE": Converter(_check_reshape, _lower_reshape),
    "EXPAND_DIMS": Converter(_check_reshape, _lower_reshape),
    "CONCATENATION": Converter(_check_concat, _lower_concat),
    "PAD": Converter(_check_pad, _lower_pad),
    "PADV2": Converter(_check_pad, _lower_pad),
    "MEAN": Converter(_check_mean, _lower_mean),
    "QUANTIZE": Converter(_check_quantize, _lower_quantize),
    "DEQUANTIZE": Converter(_check_dequantize, _lower_dequantize),
    "TRANSPOSE": Converter(_check_transpose, _lower_transpose),
    "STRIDED_SLICE": Converter(_check_strided_slice, _lower_strided_slice),
    "SLICE": Converter(_check_slice, _lower_slice),
    "SPLIT": Converter(_check_split, _lower_split),
    "SPLIT_V": Converter(_check_split_v, _lower_split_v),
    "UNPACK": Converter(_check_unpack, _lower_unpack),
    "PACK": Converter(_check_pack, _lower_pack),
    "RELU": Converter(_check_int8_unary, _lower_lut("relu", _relu_range(0.0, float("inf")))),
    "RELU_N1_TO_1": Converter(_check_int8_unary, _lower_lut("relu_n1_to_1", _relu_range(-1.0, 1.0))),
    "RELU6": Converter(_check_relu6, _lower_lut("relu6", _relu6)),
    "LEAKY_RELU": Converter(_check_leaky_relu, _lower_lut("leaky_relu", _leaky_relu)),
    "HARD_SWISH": Converter(_check_hard_swish, _lower_lut("hard_swish", _hard_swish)),
    "MAXIMUM": Converter(_check_max_min, _lower_max_min(True)),
    "MINIMUM": Converter(_check_max_min, _lower_max_min(False)),
    "RESIZE_NEAREST_NEIGHBOR": Converter(_check_resize_nearest, _lower_resize_nearest),
    "TRANSPOSE_CONV": Converter(_check_transpose_conv, _lower_transpose_conv),
    "SQUARED_DIFFERENCE": Converter(_check_squared_difference, _lower_squared_difference),
    "PRELU": Converter(_check_prelu, _lower_prelu),
    "ARG_MAX": Converter(_check_arg, _lower_arg(True)),
    "ARG_MIN": Converter(_check_arg, _lower_arg(False)),
    "REDUCE_MAX": Converter(_check_reduce, _lower_reduce(True)),
    "REDUCE_MIN": Converter(_check_reduce, _lower_reduce(False)),
    "DEPTH_TO_SPACE": Converter(_check_space_depth, _lower_space_depth(True)),
    "SPACE_TO_DEPTH": Converter(_check_space_depth, _lower_space_depth(False)),
    "GATHER": Converter(_check_gather, _lower_gather),
    "BATCH_TO_SPACE_ND": Converter(_check_space_batch, _lower_space_batch(False)),
    "SPACE_TO_BATCH_ND": Converter(_check_space_batch, _lower_space_batch(True)),
    "MIRROR_PAD": Converter(_check_mirror_pad, _lower_mirror_pad),
    "RESIZE_BILINEAR": Converter(_check_resize_bilinear, _lower_resize_bilinear),
}


def describe_operator(g: QGraph, op: QOperator) -> str:
    return _describe(g, op)
