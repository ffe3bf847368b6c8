"""The boundaries of the integer graph: QuantizeLinear and DequantizeLinear nodes, and the model outputs.

DequantizeLinear is not computed: it becomes a `Deq` view of its integer input. QuantizeLinear is where a
QDQ group is lowered: it fixes the output quantisation of the float op it reads (a `Pending`), quantises
a float model input, or requantises a DequantizeLinear output (ORT's float DequantizeLinear ->
QuantizeLinear, as a table).

A model output is converted back to its ONNX type: uint8 storage restored, a DequantizeLinear computed.
A float op at a model output, after DequantizeLinear and with no QuantizeLinear after it (quantize_static
does not quantize Sub/Div, so a model ending in Sub ends in float): a move (GlobalMaxPool, MaxPool,
Reshape, ...) runs on the stored values and is dequantised once (exact: moving commutes with the
non-decreasing DequantizeLinear); Add/Sub/Mul/Div dequantise both operands as ORT's DequantizeLinear
does, float(x - zp) * scale, and combine them in float32 (one IEEE operation, as ORT's float kernel):
exact.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
from tvm import relax, te, tirx

from tvmc_micro.compiler.quantized import kernels, kernels_elementwise, onnx_kernels
from tvmc_micro.compiler.quantized.onnx_convert_moves import MOVE_OPS, move
from tvmc_micro.compiler.quantized.onnx_tables import LUT_FUNCS, sigmoid
from tvmc_micro.compiler.quantized.onnx_values import (
    Deq,
    FloatIn,
    IndexOut,
    Pending,
    QAct,
    QParams,
    Unmappable,
    f32,
    node_attrs,
    node_label,
)
from tvmc_micro.compiler.quantized.onnx_view import LowererView, QOperatorConverter

_BINARY = ("Add", "Sub", "Mul", "Div")


# --- QuantizeLinear / DequantizeLinear ----------------------------------------------------------------


def _quantize_linear(lw: LowererView, node: Any) -> None:
    a = node_attrs(node)
    q = lw.qparams(node.input[1], node.input[2] if len(node.input) > 2 else None, int(a.get("axis", 1)))
    if not q.per_tensor or q.dtype not in ("int8", "uint8"):
        raise Unmappable(f"output is {q.describe()}; needs int8/uint8 per-tensor")
    x = lw.get(node.input[0])
    if isinstance(x, FloatIn):
        lw.values[node.output[0]] = lw.quantize_input(x, q)
    elif isinstance(x, Pending):
        try:
            lw.values[node.output[0]] = lw.lower_group(x, q)
        except Unmappable as err:  # name the float op the group is built around
            raise Unmappable(f"the group around {node_label(x.node)}: {err}") from err
    elif isinstance(x, Deq) and isinstance(x.src, QAct):
        lw.values[node.output[0]] = lw.lut(x.src, x.q, q, lambda v: v, "requantize")
    else:
        raise Unmappable("QuantizeLinear of a value that is neither a model input nor a quantised op")


def _dequantize_linear(lw: LowererView, node: Any) -> None:
    a = node_attrs(node)
    q = lw.qparams(node.input[1], node.input[2] if len(node.input) > 2 else None, int(a.get("axis", 1)))
    x = lw.get(node.input[0])
    if isinstance(x, np.ndarray):
        q.dtype = str(x.dtype)
        lw.values[node.output[0]] = Deq(x, q)
    elif isinstance(x, QAct):
        lw.values[node.output[0]] = Deq(lw.act_input(x, q, "the DequantizeLinear input"), q)
    else:
        raise Unmappable("DequantizeLinear of a value that is not an integer tensor")


BOUNDARY_CONVERTERS: dict[str, QOperatorConverter] = {
    "QuantizeLinear": _quantize_linear,
    "DequantizeLinear": _dequantize_linear,
}


# --- model outputs ------------------------------------------------------------------------------------


def model_output(lw: LowererView, name: str) -> Any:
    """The Relax value of a model output, in its ONNX type and layout."""
    v = lw.get(name)
    if isinstance(v, IndexOut):
        return v.expr
    if isinstance(v, QAct):
        v = lw.nchw(v)
        if v.offset:
            func = onnx_kernels.shift_storage(v.shape, "int8", "uint8", "to_uint8")
            return lw.call(func, "to_uint8", [v.expr], v.shape, "uint8")
        return v.expr
    if isinstance(v, Deq) and isinstance(v.src, QAct):
        if not v.q.per_tensor:
            raise Unmappable("a per-channel DequantizeLinear of an activation is not supported")
        return lw.dequantized(v.src, v.q)
    if isinstance(v, Pending):  # a float op ending the model (no QuantizeLinear after it)
        return _float_output(lw, v)
    raise Unmappable("it is not computed by the integer graph")


def _float_output(lw: LowererView, p: Pending) -> Any:
    op = p.node.op_type
    d = p.args[0] if p.args else None
    if op in MOVE_OPS and isinstance(d, Deq) and isinstance(d.src, QAct):
        if not d.q.per_tensor:
            raise Unmappable(f"{op} reads a per-channel DequantizeLinear")
        return lw.dequantized(move(lw, p, d.src, d.q), d.q)
    if op in _BINARY and len(p.args) == 2:
        return _binary_float_output(lw, p)
    if op in _FLOAT_TABLE_OPS and len(p.args) == 1 and isinstance(d, Deq) and isinstance(d.src, QAct):
        return _unary_float_output(lw, p, d.src, d.q)
    raise Unmappable(f"it is computed by a float {op} with no QuantizeLinear after it")


# Elementwise float ops that may end the model after a DequantizeLinear: ORT computes them on the 256
# possible dequantised values, so a float32 table of those values is the op (within a float32 ulp of
# ORT's own implementation of the function).
_FLOAT_TABLE_OPS: dict[str, Callable[[dict[str, Any]], Callable[[np.ndarray], np.ndarray]]] = {
    **LUT_FUNCS,
    "Sigmoid": lambda _a: sigmoid,
    "Relu": lambda _a: lambda v: np.maximum(v, np.float32(0)),
}


def _unary_float_output(lw: LowererView, p: Pending, x: QAct, q: QParams) -> Any:
    if not q.per_tensor:
        raise Unmappable(f"{p.node.op_type} reads a per-channel DequantizeLinear")
    x = lw.nchw(x)
    stored = np.arange(-128, 128, dtype=np.int32)
    real = (stored + x.offset - q.zero_point).astype(np.float32) * f32(q.scale)
    table = np.asarray(_FLOAT_TABLE_OPS[p.node.op_type](node_attrs(p.node))(real), np.float32)
    func = kernels_elementwise.lookup_table(x.shape, "float_output", "int8", "float32")
    return lw.call(func, "float_output", [x.expr, relax.const(table)], x.shape, "float32")


def _float_operand(lw: LowererView, v: Any, k: int, op: str) -> tuple[Any, tuple[int, ...]]:
    if isinstance(v, Deq) and isinstance(v.src, QAct) and v.q.per_tensor:
        return lw.dequantized(v.src, v.q), v.src.shape
    if isinstance(v, Deq) and isinstance(v.src, np.ndarray) and v.q.per_tensor:
        real = (v.src.astype(np.int64) - v.q.zero_point).astype(np.float32) * f32(v.q.scale)
        return relax.const(real.astype(np.float32)), tuple(real.shape)
    if isinstance(v, np.ndarray) and v.dtype == np.float32:
        return relax.const(v), tuple(v.shape)
    raise Unmappable(f"input {k} of {op} is neither a per-tensor dequantised activation nor a constant")


def _binary_float_output(lw: LowererView, p: Pending) -> Any:
    op = p.node.op_type
    if not any(isinstance(v, Deq) and isinstance(v.src, QAct) for v in p.args):
        raise Unmappable(f"{op} has no activation input")
    (ea, sa), (eb, sb) = (_float_operand(lw, v, k, op) for k, v in enumerate(p.args))
    try:
        out_shape = tuple(int(d) for d in np.broadcast_shapes(sa, sb))
    except ValueError as err:
        raise Unmappable(f"{op} input shapes {[list(sa), list(sb)]} do not broadcast") from err
    func = float_binary(sa, sb, out_shape, op, op.lower() + "_float")
    return lw.call(func, op.lower() + "_float", [ea, eb], out_shape, "float32")


def float_binary(
    shape_a: tuple[int, ...], shape_b: tuple[int, ...], out_shape: tuple[int, ...], op: str, name: str
) -> tirx.PrimFunc:
    """One float32 Add/Sub/Mul/Div with ONNX (numpy) broadcasting."""
    a = te.placeholder(shape_a, "float32", name="a")
    b = te.placeholder(shape_b, "float32", name="b")

    def body(*idx: tirx.Var) -> Any:
        va = a[tuple(kernels._broadcast_index(shape_a, out_shape, idx))]
        vb = b[tuple(kernels._broadcast_index(shape_b, out_shape, idx))]
        return {"Add": va + vb, "Sub": va - vb, "Mul": va * vb, "Div": va / vb}[op]

    out = te.compute(out_shape, body, name="out")
    return kernels._finish([a, b, out], name)
