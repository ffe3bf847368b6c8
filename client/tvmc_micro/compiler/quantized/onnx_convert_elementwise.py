"""Elementwise ONNX converters: Add and Mul (ORT's QLinearAdd/QLinearMul arithmetic), Sub, Div and
BatchNormalization (float32 kernels, as ORT leaves those groups in float), and every function of one
input (Relu, Clip, Sigmoid, LeakyRelu, HardSwish, Tanh, ... from `onnx_tables.LUT_FUNCS`) as a
256-entry table; with the QOperator forms QLinearAdd, QLinearMul, QLinearSigmoid and QLinearLeakyRelu.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from tvm import relax

from tvmc_micro.compiler.quantized import onnx_kernels
from tvmc_micro.compiler.quantized.onnx_tables import LUT_FUNCS, sigmoid
from tvmc_micro.compiler.quantized.onnx_values import (
    Deq,
    FloatIn,
    Pending,
    QAct,
    QParams,
    Unmappable,
    f32,
    group_input,
    node_attrs,
)
from tvmc_micro.compiler.quantized.onnx_view import GroupConverter, LowererView, QOperatorConverter

# --- the kernels ------------------------------------------------------------------------------------


def add(
    lw: LowererView, a: QAct | np.ndarray, aq: QParams, b: QAct | np.ndarray, bq: QParams, yq: QParams
) -> QAct:
    """QLinearAdd; one operand may be a quantised constant (uint8/int8, kept in int8 storage)."""
    for name, q in (("A", aq), ("B", bq), ("C", yq)):
        if not q.per_tensor:
            raise Unmappable(f"Add input {name} is {q.describe()}; needs per-tensor")
    if isinstance(a, QAct) and isinstance(b, QAct):
        a, b = _same_layout(lw, a, b)
    elif isinstance(a, np.ndarray) and isinstance(b, np.ndarray):
        raise Unmappable("Add of two constants")
    elif any(isinstance(v, np.ndarray) and v.size > 1 for v in (a, b)):
        # A constant with several values broadcasts against the ONNX (NCHW) layout.
        a, b = (lw.nchw(v) if isinstance(v, QAct) else v for v in (a, b))
    a_op, b_op = _int8_operand(a), _int8_operand(b)
    (a_expr, shape_a, a_logical, a_offset), (b_expr, shape_b, b_logical, b_offset) = a_op, b_op
    act = a if isinstance(a, QAct) else b
    assert isinstance(act, QAct)
    try:
        out_shape = tuple(int(d) for d in np.broadcast_shapes(shape_a, shape_b))
    except ValueError as err:
        raise Unmappable(f"input shapes {list(a_logical)} and {list(b_logical)} do not broadcast") from err
    ratio_a = f32(aq.scale) / f32(yq.scale)
    ratio_b = f32(bq.scale) / f32(yq.scale)
    # MLAS (built with FMA contraction): zpC - fma(ratio_a, zpA, ratio_b * zpB), all float32.
    inner = np.float32(
        np.float64(ratio_a) * aq.zero_point + np.float64(np.float32(ratio_b * np.float32(bq.zero_point)))
    )
    fixed = np.float32(np.float32(yq.zero_point) - inner)
    func = onnx_kernels.add(shape_a, shape_b, out_shape, a_offset, b_offset, yq.offset, "add")
    fp = relax.const(onnx_kernels.fparams(ratio_a, ratio_b, fixed))
    out = lw.call(func, "add", [a_expr, b_expr, fp], out_shape, "int8")
    logical = tuple(int(d) for d in np.broadcast_shapes(a_logical, b_logical))
    return QAct(out, logical, act.nhwc and len(logical) == 4 and len(out_shape) == 4, yq.offset)


def mul(lw: LowererView, a: QAct, aq: QParams, b: QAct | np.ndarray, bq: QParams, yq: QParams) -> QAct:
    for name, q in (("A", aq), ("B", bq), ("C", yq)):
        if not q.per_tensor:
            raise Unmappable(f"Mul input {name} is {q.describe()}; needs per-tensor")
    if isinstance(b, np.ndarray):
        if b.dtype not in (np.int8, np.uint8):
            raise Unmappable(f"Mul constant B is {b.dtype}; needs int8 or uint8")
        b_offset = 128 if b.dtype == np.uint8 else 0
        stored = (b.astype(np.int16) - b_offset).astype(np.int8)
        if stored.size > 1:
            a = lw.nchw(a)  # a constant with more than one value broadcasts against the ONNX layout
        b_expr, b_phys, b_logical, b_zp = (
            relax.const(stored),
            stored.shape,
            stored.shape,
            bq.zero_point - b_offset,
        )
    else:
        a, b = _same_layout(lw, a, b)
        b_expr, b_phys, b_logical, b_zp = b.expr, b.physical_shape, b.shape, bq.zero_point - b.offset
    shape_a = a.physical_shape
    try:
        out_shape = tuple(int(d) for d in np.broadcast_shapes(shape_a, b_phys))
        logical = tuple(int(d) for d in np.broadcast_shapes(a.shape, b_logical))
    except ValueError as err:
        raise Unmappable(f"input shapes {list(a.shape)} and {list(b_logical)} do not broadcast") from err
    ratio = f32(f32(aq.scale) * f32(bq.scale)) / f32(yq.scale)
    func = onnx_kernels.mul(
        shape_a,
        tuple(b_phys),
        out_shape,
        aq.zero_point - a.offset,
        b_zp,
        yq.zero_point - yq.offset,
        "mul",
    )
    fp = relax.const(onnx_kernels.fparams(ratio))
    out = lw.call(func, "mul", [a.expr, b_expr, fp], out_shape, "int8")
    return QAct(out, logical, a.nhwc and len(logical) == 4 and len(out_shape) == 4, yq.offset)


def binary_float(lw: LowererView, p: Pending, yq: QParams) -> QAct:
    """Sub/Div in float32 between DequantizeLinear and QuantizeLinear; an operand may be a constant
    (quantised, dequantised here as ORT would, or left float by the quantizer)."""
    op = p.node.op_type
    if len(p.args) != 2:
        raise Unmappable(f"{op} needs two inputs")
    # (value, shape, zero point, scale, activation): the zero point and scale dequantise an activation.
    operands: list[tuple[Any, tuple[int, ...], int | None, np.float32, QAct | None]] = []
    for k, v in enumerate(p.args):
        if isinstance(v, Deq) and isinstance(v.src, QAct):
            act = v.src
            operands.append((act, act.shape, v.q.zero_point - act.offset, f32(v.q.scale), act))
        elif isinstance(v, Deq) and isinstance(v.src, np.ndarray) and v.q.per_tensor:
            real = (v.src.astype(np.int64) - v.q.zero_point).astype(np.float32) * f32(v.q.scale)
            operands.append((real.astype(np.float32), real.shape, None, f32(1.0), None))
        elif isinstance(v, np.ndarray) and v.dtype == np.float32:
            operands.append((v, v.shape, None, f32(1.0), None))
        elif isinstance(v, FloatIn):  # a float model input, used as is (NCHW)
            operands.append((v.expr, v.shape, None, f32(1.0), None))
        else:
            raise Unmappable(f"input {k} of {op} is neither a dequantised activation nor a constant")
    acts = [o[4] for o in operands if o[4] is not None]
    if not acts:
        raise Unmappable(f"{op} has no activation input")
    if len(acts) == 2:
        a, b = _same_layout(lw, acts[0], acts[1])
        operands = [(a, *operands[0][1:4], a), (b, *operands[1][1:4], b)]
    elif any(o[4] is None and (not isinstance(o[0], np.ndarray) or o[0].size > 1) for o in operands):
        # A constant with more than one value is laid out like the ONNX (NCHW) tensor.
        operands = [(lw.nchw(o[4]), *o[1:4], lw.nchw(o[4])) if o[4] is not None else o for o in operands]
    exprs, phys, logical = [], [], []
    for value, shape, _zp, _scale, operand in operands:
        if operand is not None:
            exprs.append(operand.expr)
            phys.append(operand.physical_shape)
            logical.append(operand.shape)
        else:
            exprs.append(
                value if isinstance(value, relax.Expr) else relax.const(np.asarray(value, np.float32))
            )
            phys.append(tuple(shape))
            logical.append(tuple(shape))
    try:
        out_phys = tuple(int(d) for d in np.broadcast_shapes(*phys))
        out_logical = tuple(int(d) for d in np.broadcast_shapes(*logical))
    except ValueError as err:
        raise Unmappable(f"{op} input shapes {logical} do not broadcast") from err
    act0 = next(o[4] for o in operands if o[4] is not None)
    nhwc = act0.nhwc and len(out_logical) == 4 and len(out_phys) == 4
    func = onnx_kernels.binary_float(
        phys[0],
        phys[1],
        out_phys,
        operands[0][2],
        operands[1][2],
        yq.zero_point - yq.offset,
        op,
        op.lower(),
    )
    fp = relax.const(onnx_kernels.fparams(operands[0][3], operands[1][3], yq.scale))
    out = lw.call(func, op.lower(), [*exprs, fp], out_phys, "int8")
    return QAct(out, out_logical, nhwc, yq.offset)


def batch_norm(lw: LowererView, p: Pending, x: QAct, xq: QParams, yq: QParams) -> QAct:
    """Inference BatchNormalization between DequantizeLinear and QuantizeLinear (ORT runs it in
    float32; quantize_static leaves it there unless the model was pre-processed)."""
    if (len(p.node.output) > 1 and any(p.node.output[1:])) or int(node_attrs(p.node).get("training_mode", 0)):
        raise Unmappable("BatchNormalization in training mode is not supported")
    params = []
    for k, what in ((1, "scale"), (2, "B"), (3, "mean"), (4, "var")):
        v = p.args[k] if len(p.args) > k else None
        if isinstance(v, Deq) and isinstance(v.src, np.ndarray) and v.q.per_tensor:
            v = (v.src.astype(np.int64) - v.q.zero_point).astype(np.float32) * f32(v.q.scale)
        if not isinstance(v, np.ndarray) or v.dtype != np.float32 or v.size != x.shape[1]:
            raise Unmappable(
                f"BatchNormalization {what} is not a float32 constant with one value per channel"
            )
        params.append(v.reshape(-1))
    gamma, beta, mean, var = params
    eps = f32(node_attrs(p.node).get("epsilon", 1e-5))
    # ORT (Eigen): inv_std = 1 / sqrt(var + eps); scale = inv_std * gamma; bias = beta - mean * scale.
    inv_std = (np.float32(1) / np.sqrt((var + eps).astype(np.float32))).astype(np.float32)
    scale = (inv_std * gamma).astype(np.float32)
    bias = (beta - (mean * scale).astype(np.float32)).astype(np.float32)
    axis = 3 if x.nhwc and len(x.shape) == 4 else 1
    func = onnx_kernels.batch_norm(
        x.physical_shape, axis, xq.zero_point - xq.offset, yq.zero_point - yq.offset, "batch_norm"
    )
    fp = relax.const(onnx_kernels.fparams(xq.scale, yq.scale))
    args = [x.expr, relax.const(scale), relax.const(bias), fp]
    out = lw.call(func, "batch_norm", args, x.physical_shape, "int8")
    return QAct(out, x.shape, x.nhwc, yq.offset)


def _int8_operand(v: QAct | np.ndarray) -> tuple[Any, tuple[int, ...], tuple[int, ...], int]:
    """(expression, physical shape, ONNX shape, offset) of an activation or of a uint8/int8 constant
    (stored as int8: uint8 minus 128)."""
    if isinstance(v, QAct):
        return v.expr, v.physical_shape, v.shape, v.offset
    if v.dtype not in (np.int8, np.uint8):
        raise Unmappable(f"a {v.dtype} constant operand; needs int8 or uint8")
    offset = 128 if v.dtype == np.uint8 else 0
    stored = (v.astype(np.int16) - offset).astype(np.int8)
    return relax.const(stored), stored.shape, stored.shape, offset


def _same_layout(lw: LowererView, a: QAct, b: QAct) -> tuple[QAct, QAct]:
    """Two activations in one layout: NHWC if both are 4-D, else NCHW for the one that is 4-D."""
    if len(a.shape) == 4 and len(b.shape) == 4 and a.nhwc != b.nhwc:
        return lw.nhwc(a), lw.nhwc(b)
    if (len(a.shape) == 4 and a.nhwc and len(b.shape) != 4) or (
        len(b.shape) == 4 and b.nhwc and len(a.shape) != 4
    ):
        return lw.nchw(a), lw.nchw(b)
    return a, b


# --- QDQ groups -------------------------------------------------------------------------------------


def _add_group(lw: LowererView, p: Pending, out_q: QParams) -> QAct:
    args: list[tuple[QAct | np.ndarray, QParams]] = []
    for k in (0, 1):
        v = p.args[k] if len(p.args) > k else None
        if isinstance(v, Deq) and isinstance(v.src, np.ndarray):
            args.append((v.src, v.q))  # a quantised constant
        else:
            args.append(group_input(p, k))
    return add(lw, args[0][0], args[0][1], args[1][0], args[1][1], out_q)


def _mul_group(lw: LowererView, p: Pending, out_q: QParams) -> QAct:
    """An activation first, then an activation or a quantised constant."""
    if len(p.args) != 2:
        raise Unmappable(f"{p.node.op_type} needs two inputs")
    order = (0, 1)
    if isinstance(p.args[0], Deq) and isinstance(p.args[0].src, np.ndarray):
        order = (1, 0)  # constant first: the product commutes
    a, aq = group_input(p, order[0])
    b = p.args[order[1]]
    if not isinstance(b, Deq):
        raise Unmappable(f"input {order[1]} of {p.node.op_type} is not a DequantizeLinear output")
    return mul(lw, a, aq, b.src, b.q, out_q)


def _batch_norm_group(lw: LowererView, p: Pending, out_q: QParams) -> QAct:
    xa, xq = group_input(p, 0)
    return batch_norm(lw, p, xa, xq, out_q)


def _table_group(lw: LowererView, p: Pending, out_q: QParams) -> QAct:
    op = p.node.op_type
    xa, xq = group_input(p, 0)
    return lw.lut(xa, xq, out_q, LUT_FUNCS[op](node_attrs(p.node)), op.lower())


def _sigmoid_group(lw: LowererView, p: Pending, out_q: QParams) -> QAct:
    xa, xq = group_input(p, 0)
    return lw.lut(xa, xq, out_q, sigmoid, "sigmoid")


def _clamp_group(lw: LowererView, p: Pending, out_q: QParams) -> QAct:
    """Relu/Clip left alone (no op before it to fuse into): the bounds the walk recorded, as a table."""
    xa, xq = group_input(p, 0)
    lo, hi = p.activation or (-np.inf, np.inf)
    return lw.lut(xa, xq, out_q, lambda v: np.clip(v, np.float32(lo), np.float32(hi)), p.node.op_type.lower())


ELEMENTWISE_GROUP_CONVERTERS: dict[str, GroupConverter] = {
    "Add": _add_group,
    "Mul": _mul_group,
    "Sub": binary_float,
    "Div": binary_float,
    "BatchNormalization": _batch_norm_group,
    "Relu": _clamp_group,
    "Clip": _clamp_group,
    "Sigmoid": _sigmoid_group,
    **{op: _table_group for op in LUT_FUNCS},
}


# --- QOperator nodes (all parameters are inputs) ------------------------------------------------------


def _qlinear_add(lw: LowererView, node: Any) -> None:
    i = list(node.input)
    aq, bq, yq = (
        lw.qparams(i[1], i[2]),
        lw.qparams(i[4], i[5]),
        lw.qparams(i[6], i[7] if len(i) > 7 else None),
    )
    a, b = lw.get(i[0]), lw.get(i[3])
    if not isinstance(a, np.ndarray):
        a = lw.act_input(a, aq, "QLinearAdd input A")
    if not isinstance(b, np.ndarray):
        b = lw.act_input(b, bq, "QLinearAdd input B")
    lw.values[node.output[0]] = add(lw, a, aq, b, bq, yq)


def _qlinear_mul(lw: LowererView, node: Any) -> None:
    i = list(node.input)
    aq, bq = lw.qparams(i[1], i[2]), lw.qparams(i[4], i[5])
    yq = lw.qparams(i[6], i[7] if len(i) > 7 else None)
    a, b = lw.get(i[0]), lw.get(i[3])
    if isinstance(a, np.ndarray):  # constant first: the product commutes
        a, aq, b, bq = b, bq, a, aq
    a = lw.act_input(a, aq, "QLinearMul input A")
    if not isinstance(b, np.ndarray):
        b = lw.act_input(b, bq, "QLinearMul input B")
    lw.values[node.output[0]] = mul(lw, a, aq, b, bq, yq)


def _qlinear_sigmoid(lw: LowererView, node: Any) -> None:
    i = list(node.input)
    xq, yq = lw.qparams(i[1], i[2]), lw.qparams(i[3], i[4] if len(i) > 4 else None)
    x = lw.act_input(lw.get(i[0]), xq, "QLinearSigmoid input")
    lw.values[node.output[0]] = lw.lut(x, xq, yq, sigmoid, "sigmoid")


def _qlinear_leaky_relu(lw: LowererView, node: Any) -> None:
    i = list(node.input)
    xq, yq = lw.qparams(i[1], i[2]), lw.qparams(i[3], i[4] if len(i) > 4 else None)
    x = lw.act_input(lw.get(i[0]), xq, "QLinearLeakyRelu input")
    lw.values[node.output[0]] = lw.lut(x, xq, yq, LUT_FUNCS["LeakyRelu"](node_attrs(node)), "leaky_relu")


ELEMENTWISE_QOPERATOR_CONVERTERS: dict[str, QOperatorConverter] = {
    "QLinearAdd": _qlinear_add,
    "QLinearMul": _qlinear_mul,
    "QLinearSigmoid": _qlinear_sigmoid,
    "QLinearLeakyRelu": _qlinear_leaky_relu,
}
