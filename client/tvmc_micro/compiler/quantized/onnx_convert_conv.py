"""ONNX converters with constant weights: Conv, ConvTranspose, MatMul and Gemm (QDQ groups) and their
QOperator forms QLinearConv, QLinearMatMul and com.microsoft QGemm; also a MatMul of two activations.

Weights must be symmetric (int8 zero point 0, or uint8 zero point 128, which shifts exactly); the input's
zero point is folded into the int32 bias, and the output is requantised with ORT's float32 multiplier
(`FloatRequant`), a fused Relu/Clip clamping in the kernel's epilogue.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from tvm import relax

from tvmc_micro.compiler.quantized import kernels, onnx_kernels
from tvmc_micro.compiler.quantized.onnx_values import (
    Deq,
    Pending,
    QAct,
    QParams,
    Unmappable,
    attr_text,
    f32,
    group_input,
    node_attrs,
    window_pads,
)
from tvmc_micro.compiler.quantized.onnx_view import GroupConverter, LowererView, QOperatorConverter
from tvmc_micro.compiler.quantized.requant import FloatRequant

# --- the kernels ------------------------------------------------------------------------------------


def conv(
    lw: LowererView,
    node: Any,
    x: QAct,
    xq: QParams,
    w: np.ndarray,
    wq: QParams,
    bias: np.ndarray | None,
    yq: QParams,
    activation: tuple[float, float] | None,
) -> QAct:
    a = node_attrs(node)
    if len(x.shape) != 4 or w.ndim != 4:
        raise Unmappable("only 2-D convolutions (4-D NCHW data, OIHW weights) are supported")
    groups = int(a.get("group", 1))
    n, cin, h, wd = x.shape
    cout, cin_g, kh, kw = w.shape
    strides = tuple(a.get("strides", [1, 1]))
    dil = tuple(a.get("dilations", [1, 1]))
    pads = window_pads(a, (h, wd), (kh, kw), strides, dil)
    oh = (h + pads[0] + pads[2] - ((kh - 1) * dil[0] + 1)) // strides[0] + 1
    ow = (wd + pads[1] + pads[3] - ((kw - 1) * dil[1] + 1)) // strides[1] + 1
    ws = _symmetric_weights(w, wq, "Conv weights")
    rq = FloatRequant.from_scales(f32(xq.scale) * _per_out(wq, cout) / f32(yq.scale))
    geo = kernels.ConvGeometry(
        (int(strides[0]), int(strides[1])), (int(dil[0]), int(dil[1])), (pads[0], pads[1])
    )
    x = lw.nhwc(x)
    in_zp, out_zp = xq.zero_point - xq.offset, yq.zero_point - yq.offset
    act = _act_range(activation, yq)
    out_shape = (n, oh, ow, cout)
    if groups == cin and cin_g == 1 and groups > 1:
        wt = np.ascontiguousarray(ws.transpose(1, 2, 3, 0))  # [1, kh, kw, cout]
        sums = wt.astype(np.int64).sum(axis=(0, 1, 2))
        func = kernels.depthwise_conv2d(
            x.physical_shape,
            wt.shape,
            out_shape,
            geo,
            cout // cin,
            in_zp,
            out_zp,
            rq,
            act,
            "depthwise_conv2d",
        )
        kind = "depthwise_conv2d"
    else:
        if cin != cin_g * groups or cout % groups:
            raise Unmappable(f"group={groups} does not divide {cin} input / {cout} output channels")
        wt = np.ascontiguousarray(ws.transpose(0, 2, 3, 1))  # OHWI
        sums = wt.astype(np.int64).sum(axis=(1, 2, 3))
        func = kernels.conv2d(x.physical_shape, wt.shape, out_shape, geo, in_zp, out_zp, rq, act, "conv2d")
        kind = "conv2d"
    folded = _fold_bias(bias, sums, in_zp, cout)
    args = [
        x.expr,
        relax.const(wt),
        relax.const(folded),
        *[relax.const(t) for t in rq.constant_tensors()],
    ]
    out = lw.call(func, kind, args, out_shape, "int8")
    return QAct(out, (n, cout, oh, ow), True, yq.offset)


def conv_transpose(
    lw: LowererView,
    node: Any,
    x: QAct,
    xq: QParams,
    w: np.ndarray,
    wq: QParams,
    bias: np.ndarray | None,
    yq: QParams,
    activation: tuple[float, float] | None,
) -> QAct:
    """2-D ConvTranspose (group 1, no dilation) in integers: each output pixel gathers the input
    pixels that scatter onto it, int32 sum, ORT's float requantisation. ORT itself runs the group in
    float (it has no fused kernel), so rare values differ by 1 LSB (summation rounding)."""
    a = node_attrs(node)
    if len(x.shape) != 4 or w.ndim != 4:
        raise Unmappable("only 2-D ConvTranspose (4-D NCHW data, IOHW weights) is supported")
    if int(a.get("group", 1)) != 1 or any(int(d) != 1 for d in a.get("dilations", [1, 1])):
        raise Unmappable("ConvTranspose with group > 1 or dilation is not supported")
    if "output_shape" in a or attr_text(a, "auto_pad", "NOTSET") not in ("NOTSET", ""):
        raise Unmappable("ConvTranspose with output_shape or auto_pad is not supported (give pads)")
    n, cin, h, wd = x.shape
    w_in, cout, kh, kw = w.shape
    if w_in != cin:
        raise Unmappable(f"ConvTranspose weights {list(w.shape)} do not match {cin} input channels")
    strides = [int(v) for v in a.get("strides", [1, 1])]
    pads = [int(v) for v in a.get("pads", [0, 0, 0, 0])]
    extra = [int(v) for v in a.get("output_padding", [0, 0])]
    oh = strides[0] * (h - 1) + extra[0] + kh - pads[0] - pads[2]
    ow = strides[1] * (wd - 1) + extra[1] + kw - pads[1] - pads[3]
    ws = _symmetric_weights(w, wq, "ConvTranspose weights")
    wt = np.ascontiguousarray(ws.transpose(1, 2, 3, 0))  # IOHW -> [out_c, kh, kw, in_c]
    rq = FloatRequant.from_scales(f32(xq.scale) * _per_out(wq, cout) / f32(yq.scale))
    b = np.zeros(cout, np.int32) if bias is None else bias.astype(np.int32).reshape(-1)
    x = lw.nhwc(x)
    out_shape = (n, oh, ow, cout)
    func = kernels.transpose_conv2d(
        x.physical_shape,
        wt.shape,
        out_shape,
        (strides[0], strides[1]),
        (pads[0], pads[1]),
        xq.zero_point - xq.offset,
        yq.zero_point - yq.offset,
        rq,
        _act_range(activation, yq),
        "transpose_conv2d",
    )
    args = [x.expr, relax.const(wt), relax.const(b), *[relax.const(t) for t in rq.constant_tensors()]]
    out = lw.call(func, "transpose_conv2d", args, out_shape, "int8")
    return QAct(out, (n, cout, oh, ow), True, yq.offset)


def matmul(
    lw: LowererView,
    node: Any,
    x: QAct,
    xq: QParams,
    w: np.ndarray,
    wq: QParams,
    bias: np.ndarray | None,
    yq: QParams,
    activation: tuple[float, float] | None,
) -> QAct:
    """MatMul/Gemm with constant weights as a fully connected kernel."""
    a = node_attrs(node)
    if node.op_type in ("Gemm", "QGemm"):
        if float(a.get("alpha", 1.0)) != 1.0 or float(a.get("beta", 1.0)) != 1.0 or int(a.get("transA", 0)):
            raise Unmappable("Gemm with alpha/beta != 1 or transA is not supported")
        trans_b = int(a.get("transB", 0))
    else:
        trans_b = 0
    lead = x.shape[:-1]  # MatMul of an N-D input: its leading axes are rows (e.g. after Unsqueeze)
    if len(x.shape) > 2 and node.op_type in ("MatMul", "QLinearMatMul"):
        x = lw.nchw(x)
        x = QAct(
            lw.bb.emit(relax.op.reshape(x.expr, [int(np.prod(lead)), x.shape[-1]])),
            (int(np.prod(lead)), x.shape[-1]),
            False,
            x.offset,
        )
    if w.ndim != 2 or len(x.shape) != 2:
        raise Unmappable(
            f"needs a 2-D input and 2-D constant weights (got {list(x.shape)} x {list(w.shape)})"
        )
    units = w.shape[0] if trans_b else w.shape[1]
    ws = _symmetric_weights(w, wq, f"{node.op_type} weights")
    wt = np.ascontiguousarray(ws if trans_b else ws.T)  # [units, depth]
    batches, depth = x.shape
    if wt.shape[1] != depth:
        raise Unmappable(f"weights {list(w.shape)} do not match input {list(x.shape)}")
    rq = FloatRequant.from_scales(f32(xq.scale) * _per_out(wq, units) / f32(yq.scale))
    in_zp, out_zp = xq.zero_point - xq.offset, yq.zero_point - yq.offset
    folded = _fold_bias(bias, wt.astype(np.int64).sum(axis=1), in_zp, units)
    func = kernels.fully_connected(
        batches, depth, units, out_zp, rq, _act_range(activation, yq), "fully_connected"
    )
    args = [
        x.expr,
        relax.const(wt),
        relax.const(folded),
        *[relax.const(t) for t in rq.constant_tensors()],
    ]
    out = lw.call(func, "fully_connected", args, (batches, units), "int8")
    if len(lead) > 1:
        out = lw.bb.emit(relax.op.reshape(out, [*lead, units]))
    return QAct(out, (*lead, units) if len(lead) > 1 else (batches, units), False, yq.offset)


def matmul_act(lw: LowererView, a: QAct, aq: QParams, b: QAct, bq: QParams, yq: QParams) -> QAct:
    """MatMul of two activations (attention's Q.K^T and P.V): QLinearMatMul with B not constant."""
    for name, q in (("A", aq), ("B", bq), ("Y", yq)):
        if not q.per_tensor:
            raise Unmappable(f"MatMul input {name} is {q.describe()}; needs per-tensor")
    if len(a.shape) != 2 or len(b.shape) != 2 or a.shape[1] != b.shape[0]:
        raise Unmappable(
            f"a MatMul of two activations needs matching 2-D inputs (got {list(a.shape)} x {list(b.shape)})"
        )
    (m, k), n = a.shape, b.shape[1]
    scale = f32(f32(aq.scale) * f32(bq.scale)) / f32(yq.scale)
    func = onnx_kernels.matmul(
        m, k, n, aq.zero_point - a.offset, bq.zero_point - b.offset, yq.zero_point - yq.offset, "matmul"
    )
    fp = relax.const(onnx_kernels.fparams(scale))
    out = lw.call(func, "matmul", [a.expr, b.expr, fp], (m, n), "int8")
    return QAct(out, (m, n), False, yq.offset)


def _symmetric_weights(w: np.ndarray, wq: QParams, what: str) -> np.ndarray:
    """Weights as int8 with zero point 0 (uint8 with zero point 128 shifts exactly); else unsupported."""
    zps = set(int(z) for z in wq.zero_points.reshape(-1))
    if w.dtype == np.int8 and zps == {0}:
        return w
    if w.dtype == np.uint8 and zps == {128}:
        return (w.astype(np.int16) - 128).astype(np.int8)
    raise Unmappable(
        f"{what} are {wq.describe()}; the integer kernels need symmetric weights "
        "(int8 zero point 0, or uint8 zero point 128)"
    )


def _per_out(q: QParams, n: int) -> np.ndarray:
    s = q.scales.astype(np.float32).reshape(-1)
    if s.size not in (1, n):
        raise Unmappable(f"weights have {s.size} scales for {n} output channels")
    return np.broadcast_to(s, (n,)).astype(np.float32)


def _fold_bias(bias: np.ndarray | None, weight_sums: np.ndarray, in_zp: int, n: int) -> np.ndarray:
    """bias - in_zp * sum(w) per output channel, wrapped to int32 (ORT's int32 accumulator)."""
    b = np.zeros(n, np.int64) if bias is None else bias.astype(np.int64).reshape(-1)
    if b.size != n:
        raise Unmappable(f"bias has {b.size} values for {n} output channels")
    folded = b - in_zp * weight_sums.astype(np.int64)
    return ((folded + (1 << 31)) % (1 << 32) - (1 << 31)).astype(np.int32)


def _act_range(activation: tuple[float, float] | None, yq: QParams) -> tuple[int, int]:
    """Relu/Clip fused into Conv/Gemm: the real bounds quantised with the output's parameters."""
    lo, hi = -128, 127
    if activation is None:
        return lo, hi
    zp = yq.zero_point - yq.offset
    if np.isfinite(activation[0]):
        lo = max(lo, zp + int(np.rint(np.float32(activation[0]) / yq.scale)))
    if np.isfinite(activation[1]):
        hi = min(hi, zp + int(np.rint(np.float32(activation[1]) / yq.scale)))
    return lo, hi


# --- QDQ groups -------------------------------------------------------------------------------------


def _weighted_group(lw: LowererView, p: Pending, out_q: QParams) -> QAct:
    """DequantizeLinear(x), DequantizeLinear(constant weights) [, DequantizeLinear(int32 bias)] -> op."""
    op = p.node.op_type
    xa, xq = group_input(p, 0)
    w = p.args[1]
    if op == "MatMul" and isinstance(w, Deq) and isinstance(w.src, QAct) and len(p.args) == 2:
        return matmul_act(lw, xa, xq, w.src, w.q, out_q)
    if not isinstance(w, Deq) or not isinstance(w.src, np.ndarray):
        raise Unmappable(f"{op} weights are not a DequantizeLinear of a constant")
    bias = None
    if len(p.args) > 2 and p.args[2] is not None:
        b = p.args[2]
        if not isinstance(b, Deq) or not isinstance(b.src, np.ndarray) or b.src.dtype != np.int32:
            raise Unmappable(f"{op} bias is not a DequantizeLinear of an int32 constant")
        bias = b.src
    if op == "Conv":
        return conv(lw, p.node, xa, xq, w.src, w.q, bias, out_q, p.activation)
    if op == "ConvTranspose":
        return conv_transpose(lw, p.node, xa, xq, w.src, w.q, bias, out_q, p.activation)
    return matmul(lw, p.node, xa, xq, w.src, w.q, bias, out_q, p.activation)


CONV_GROUP_CONVERTERS: dict[str, GroupConverter] = {
    "Conv": _weighted_group,
    "ConvTranspose": _weighted_group,
    "MatMul": _weighted_group,
    "Gemm": _weighted_group,
}


# --- QOperator nodes (all parameters are inputs) ------------------------------------------------------


def _qlinear_conv(lw: LowererView, node: Any) -> None:
    i = list(node.input) + [""] * (9 - len(node.input))
    xq, wq, yq = lw.qparams(i[1], i[2]), lw.qparams(i[4], i[5], axis=0), lw.qparams(i[6], i[7])
    x = lw.act_input(lw.get(i[0]), xq, "QLinearConv input")
    w = lw.get(i[3])
    if not isinstance(w, np.ndarray):
        raise Unmappable("QLinearConv weights are computed at run time")
    wq.dtype = str(w.dtype)
    bias = lw.get(i[8]) if i[8] else None
    lw.values[node.output[0]] = conv(lw, node, x, xq, w, wq, bias, yq, None)


def _qlinear_matmul(lw: LowererView, node: Any) -> None:
    i = list(node.input)
    xq, wq, yq = lw.qparams(i[1], i[2]), lw.qparams(i[4], i[5], axis=1), lw.qparams(i[6], i[7])
    x = lw.act_input(lw.get(i[0]), xq, "QLinearMatMul input A")
    w = lw.get(i[3])
    if isinstance(w, QAct):
        b = lw.act_input(w, wq, "QLinearMatMul input B")
        lw.values[node.output[0]] = matmul_act(lw, x, xq, b, wq, yq)
        return
    if not isinstance(w, np.ndarray):
        raise Unmappable("QLinearMatMul input B is neither a constant nor an integer activation")
    wq.dtype = str(w.dtype)
    lw.values[node.output[0]] = matmul(lw, node, x, xq, w, wq, None, yq, None)


def _qgemm(lw: LowererView, node: Any) -> None:
    """com.microsoft QGemm (A, a_scale, a_zp, B, b_scale, b_zp, C, y_scale, y_zp): the QOperator Gemm."""
    i = list(node.input) + [""] * (9 - len(node.input))
    if not i[7]:
        raise Unmappable("QGemm without y_scale has a float output; only quantised outputs are supported")
    a = node_attrs(node)
    xq, yq = lw.qparams(i[1], i[2]), lw.qparams(i[7], i[8])
    wq = lw.qparams(i[4], i[5], axis=0 if int(a.get("transB", 0)) else 1)
    x = lw.act_input(lw.get(i[0]), xq, "QGemm input A")
    w = lw.get(i[3])
    if not isinstance(w, np.ndarray):
        raise Unmappable("QGemm input B is computed at run time; only constant B is supported")
    wq.dtype = str(w.dtype)
    bias = lw.get(i[6]) if i[6] else None
    if bias is not None and (not isinstance(bias, np.ndarray) or bias.dtype != np.int32):
        raise Unmappable("QGemm input C must be a constant int32 bias")
    lw.values[node.output[0]] = matmul(lw, node, x, xq, w, wq, bias, yq, None)


CONV_QOPERATOR_CONVERTERS: dict[str, QOperatorConverter] = {
    "QLinearConv": _qlinear_conv,
    "QLinearMatMul": _qlinear_matmul,
    "QGemm": _qgemm,
}
