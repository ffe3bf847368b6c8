"""ONNX converters that average or normalise over axes: AveragePool, GlobalAveragePool, ReduceMean and
Softmax (QDQ groups), and QLinearAveragePool, QLinearGlobalAveragePool and QLinearSoftmax.

Each follows the ORT kernel that runs the group: MLAS's integer-sum global average pool, the float32
window sum of QLinearAveragePool, ReduceMean in float32, QLinearSoftmax's exp table. (MaxPool and
GlobalMaxPool only move stored values: see `onnx_convert_moves`.)
"""

from __future__ import annotations

from typing import Any

import numpy as np
from tvm import relax

from tvmc_micro.compiler.quantized import kernels, kernels_moves, onnx_kernels
from tvmc_micro.compiler.quantized.onnx_tables import softmax_table
from tvmc_micro.compiler.quantized.onnx_values import (
    Pending,
    QAct,
    QParams,
    Unmappable,
    f32,
    group_input,
    node_attrs,
    window_pads,
)
from tvmc_micro.compiler.quantized.onnx_view import GroupConverter, LowererView, QOperatorConverter

# --- the kernels ------------------------------------------------------------------------------------


def avg_pool(lw: LowererView, node: Any, x: QAct, xq: QParams, yq: QParams) -> QAct:
    a = node_attrs(node)
    if len(x.shape) != 4 or int(a.get("ceil_mode", 0)):
        raise Unmappable("only 2-D average pooling with ceil_mode=0 is supported")
    kh, kw = (int(k) for k in a["kernel_shape"])
    strides = tuple(int(s) for s in a.get("strides", [1, 1]))
    n, c, h, w = x.shape
    pads = window_pads(a, (h, w), (kh, kw), strides, (1, 1))
    if (kh, kw) == (h, w) and not any(pads):
        # A window over the whole image: ORT 1.32 runs MLAS's global average pool (integer sum, one
        # float requantisation), not its float window sum (measured: the two differ in rare values).
        return global_avg_pool(lw, x, xq, yq)
    oh = (h + pads[0] + pads[2] - kh) // strides[0] + 1
    ow = (w + pads[1] + pads[3] - kw) // strides[1] + 1
    x = lw.nhwc(x)
    geo = kernels.ConvGeometry((strides[0], strides[1]), (1, 1), (pads[0], pads[1]))
    func = onnx_kernels.average_pool2d(
        x.physical_shape,
        (n, oh, ow, c),
        (kh, kw),
        geo,
        bool(a.get("count_include_pad", 0)),
        xq.zero_point - xq.offset,
        yq.zero_point,
        yq.offset,
        "average_pool2d",
    )
    fp = relax.const(onnx_kernels.fparams(xq.scale, yq.scale))
    out = lw.call(func, "average_pool2d", [x.expr, fp], (n, oh, ow, c), "int8")
    return QAct(out, (n, c, oh, ow), True, yq.offset)


def global_avg_pool(lw: LowererView, x: QAct, xq: QParams, yq: QParams) -> QAct:
    if len(x.shape) != 4:
        raise Unmappable("only 4-D GlobalAveragePool is supported")
    n, c, h, w = x.shape
    x = lw.nhwc(x)
    # MLAS: ScaleInput / (ScaleOutput * float(ImageSize)), then MlasRequantizeOutput of sum - zp*size.
    scale = f32(xq.scale) / (f32(yq.scale) * f32(h * w))
    func = onnx_kernels.global_average_pool(
        x.physical_shape, xq.zero_point - xq.offset, yq.zero_point - yq.offset, "global_average_pool"
    )
    fp = relax.const(onnx_kernels.fparams(scale))
    out = lw.call(func, "global_average_pool", [x.expr, fp], (n, 1, 1, c), "int8")
    return QAct(out, (n, c, 1, 1), True, yq.offset)


def softmax(lw: LowererView, node: Any, x: QAct, xq: QParams, yq: QParams, opset: int) -> QAct:
    """QLinearSoftmax: opset < 13 normalises over the flattened axes from `axis` on, opset >= 13
    over `axis` alone (ORT transposes it last and back)."""
    if not xq.per_tensor or not yq.per_tensor:
        raise Unmappable("Softmax needs per-tensor quantisation")
    x = lw.nchw(x)
    rank = len(x.shape)
    axis = int(node_attrs(node).get("axis", 1 if opset < 13 else -1)) % rank
    src, perm = x.expr, None
    if opset >= 13 and axis != rank - 1:
        perm = list(range(rank))
        perm[axis], perm[-1] = rank - 1, axis
        moved = tuple(x.shape[p] for p in perm)
        func = kernels_moves.transpose(x.shape, perm, "int8", "transpose")
        src = lw.call(func, "transpose", [src], moved, "int8")
        shape: tuple[int, ...] = moved
        depth = moved[-1]
    else:
        shape = x.shape
        depth = int(np.prod(x.shape[axis:])) if opset < 13 else x.shape[-1]
    rows = int(np.prod(shape)) // depth
    flat = lw.bb.emit(relax.op.reshape(src, [rows, depth]))
    table = softmax_table(f32(xq.scale), depth)
    y_mult = np.floor(np.float32(1.0) / f32(yq.scale)).astype(np.float32)
    func = onnx_kernels.softmax(rows, depth, yq.zero_point, yq.offset, "softmax")
    out = lw.call(
        func,
        "softmax",
        [flat, relax.const(table), relax.const(onnx_kernels.fparams(y_mult))],
        (rows, depth),
        "int8",
    )
    out = lw.bb.emit(relax.op.reshape(out, list(shape)))
    if perm is not None:
        func = kernels_moves.transpose(shape, perm, "int8", "transpose")
        out = lw.call(func, "transpose", [out], x.shape, "int8")
    return QAct(out, x.shape, False, yq.offset)


def reduce_mean(lw: LowererView, p: Pending, x: QAct, xq: QParams, yq: QParams) -> QAct:
    # Per-tensor already: DequantizeLinear/QuantizeLinear of an activation refuse anything else.
    a = node_attrs(p.node)
    rank = len(x.shape)
    if "axes" in a:
        axes_list = [int(v) for v in a["axes"]]
    elif len(p.args) > 1 and p.args[1] is not None:
        if not isinstance(p.args[1], np.ndarray):
            raise Unmappable("the ReduceMean axes are not a constant int64 tensor")
        axes_list = [int(v) for v in p.args[1].reshape(-1)]
    else:
        axes_list = list(range(rank))
    axes = sorted(set(v % rank for v in axes_list))
    keep = bool(int(a.get("keepdims", 1)))
    count = int(np.prod([x.shape[v] for v in axes]))
    logical = tuple(1 if i in axes else d for i, d in enumerate(x.shape))
    if rank == 4 and axes == [2, 3]:
        x = lw.nhwc(x)  # the spatial mean of an NHWC tensor: one contiguous channel vector out
        phys_axes, nhwc = [1, 2], True
    else:
        x = lw.nchw(x)
        phys_axes, nhwc = axes, False
    func = onnx_kernels.reduce_mean(
        x.physical_shape, phys_axes, xq.zero_point - xq.offset, yq.zero_point - yq.offset, "reduce_mean"
    )
    out_phys = tuple(1 if i in phys_axes else d for i, d in enumerate(x.physical_shape))
    fp = relax.const(onnx_kernels.fparams(xq.scale, np.float32(count), yq.scale))
    out = QAct(lw.call(func, "reduce_mean", [x.expr, fp], out_phys, "int8"), logical, nhwc, yq.offset)
    if keep:
        return out
    out = lw.nchw(out)
    kept = tuple(d for i, d in enumerate(logical) if i not in axes)
    return QAct(lw.bb.emit(relax.op.reshape(out.expr, list(kept))), kept, False, yq.offset)


# --- QDQ groups -------------------------------------------------------------------------------------


def _avg_pool_group(lw: LowererView, p: Pending, out_q: QParams) -> QAct:
    xa, xq = group_input(p, 0)
    return avg_pool(lw, p.node, xa, xq, out_q)


def _global_avg_pool_group(lw: LowererView, p: Pending, out_q: QParams) -> QAct:
    xa, xq = group_input(p, 0)
    return global_avg_pool(lw, xa, xq, out_q)


def _reduce_mean_group(lw: LowererView, p: Pending, out_q: QParams) -> QAct:
    xa, xq = group_input(p, 0)
    return reduce_mean(lw, p, xa, xq, out_q)


def _softmax_group(lw: LowererView, p: Pending, out_q: QParams) -> QAct:
    xa, xq = group_input(p, 0)
    return softmax(lw, p.node, xa, xq, out_q, lw.opset)  # ORT fuses the group into QLinearSoftmax


POOL_GROUP_CONVERTERS: dict[str, GroupConverter] = {
    "AveragePool": _avg_pool_group,
    "GlobalAveragePool": _global_avg_pool_group,
    "ReduceMean": _reduce_mean_group,
    "Softmax": _softmax_group,
}


# --- QOperator nodes (all parameters are inputs) ------------------------------------------------------


def _qlinear_pool(lw: LowererView, node: Any) -> None:
    i = list(node.input)
    xq, yq = lw.qparams(i[1], i[2]), lw.qparams(i[3], i[4] if len(i) > 4 else None)
    if int(node_attrs(node).get("channels_last", 0)):
        raise Unmappable("channels_last=1 is not supported")
    x = lw.act_input(lw.get(i[0]), xq, f"{node.op_type} input")
    if node.op_type == "QLinearGlobalAveragePool":
        lw.values[node.output[0]] = global_avg_pool(lw, x, xq, yq)
    else:
        lw.values[node.output[0]] = avg_pool(lw, node, x, xq, yq)


def _qlinear_softmax(lw: LowererView, node: Any) -> None:
    i = list(node.input)
    xq, yq = lw.qparams(i[1], i[2]), lw.qparams(i[3], i[4] if len(i) > 4 else None)
    x = lw.act_input(lw.get(i[0]), xq, "QLinearSoftmax input")
    a = node_attrs(node)
    if "opset" not in a:
        raise Unmappable("QLinearSoftmax has no 'opset' attribute (ORT requires it)")
    lw.values[node.output[0]] = softmax(lw, node, x, xq, yq, int(a["opset"]))


POOL_QOPERATOR_CONVERTERS: dict[str, QOperatorConverter] = {
    "QLinearAveragePool": _qlinear_pool,
    "QLinearGlobalAveragePool": _qlinear_pool,
    "QLinearSoftmax": _qlinear_softmax,
}
