"""More ONNX patterns onnxruntime.quantization.quantize_static writes, kept on the integer path:

* GlobalMaxPool: quantize_static leaves it float (DequantizeLinear -> GlobalMaxPool -> QuantizeLinear, in
  QDQ and QOperator models alike). Max commutes with the non-decreasing DequantizeLinear, so the stored
  values are max-reduced and, where the output quantisation differs, requantised by the importer's table
  of ORT's float DequantizeLinear -> QuantizeLinear: exact.
* A float op at a model output, after DequantizeLinear and with no QuantizeLinear after it (quantize_static
  does not quantize Sub/Div, so a model ending in Sub ends in float): a move (GlobalMaxPool, MaxPool,
  Reshape, ...) runs on the stored values and is dequantised once (exact, as above); Add/Sub/Mul/Div
  dequantise both operands as ORT's DequantizeLinear does, float(x - zp) * scale, and combine them in
  float32 (one IEEE operation, as ORT's float kernel): exact.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np
from tvm import relax, te, tirx

from tvmc_micro.compiler.quantized import kernels, onnx_kernels
from tvmc_micro.compiler.quantized.onnx_values import Deq, Pending, QAct, Unmappable, f32

if TYPE_CHECKING:
    from tvmc_micro.compiler.quantized.onnx_importer import OnnxLowerer

_BINARY = ("Add", "Sub", "Mul", "Div")


def global_max_pool(lw: OnnxLowerer, x: QAct) -> QAct:
    """GlobalMaxPool on the stored values (any layout): the spatial axes reduced to 1."""
    if len(x.shape) < 3:
        raise Unmappable(f"GlobalMaxPool needs an N x C x spatial input (got {list(x.shape)})")
    phys = x.physical_shape
    axes = (1, 2) if x.nhwc and len(phys) == 4 else tuple(range(2, len(phys)))
    out_phys = tuple(1 if i in axes else d for i, d in enumerate(phys))
    func = kernels.reduce_max_min(phys, axes, True, "int8", "global_max_pool")
    out = lw.call(func, "global_max_pool", [x.expr], out_phys, "int8")
    logical = (*x.shape[:2], *[1] * (len(x.shape) - 2))
    return QAct(out, logical, x.nhwc and len(phys) == 4, x.offset)


def _dequantized(lw: OnnxLowerer, act: QAct, zero_point: int, scale: float) -> Any:
    """ORT's DequantizeLinear of an activation, in the ONNX (NCHW) layout."""
    src = lw.nchw(act)
    func = onnx_kernels.dequantize(src.shape, zero_point - src.offset, "dequantize")
    fp = relax.const(onnx_kernels.fparams(scale))
    return lw.call(func, "dequantize", [src.expr, fp], src.shape, "float32")


def float_output(lw: OnnxLowerer, p: Pending) -> Any:
    """A model output computed by a float op over DequantizeLinear outputs (see the module docstring)."""
    from tvmc_micro.compiler.quantized.onnx_importer import _MOVE_OPS

    op = p.node.op_type
    d = p.args[0] if p.args else None
    if op in _MOVE_OPS and isinstance(d, Deq) and isinstance(d.src, QAct):
        if not d.q.per_tensor:
            raise Unmappable(f"{op} reads a per-channel DequantizeLinear")
        moved = lw.move(p, d.src, d.q)
        return _dequantized(lw, moved, d.q.zero_point, float(d.q.scale))
    if op in _BINARY and len(p.args) == 2:
        return _binary_float_output(lw, p)
    raise Unmappable(f"it is computed by a float {op} with no QuantizeLinear after it")


def _operand(lw: OnnxLowerer, v: Any, k: int, op: str) -> tuple[Any, tuple[int, ...]]:
    if isinstance(v, Deq) and isinstance(v.src, QAct) and v.q.per_tensor:
        return _dequantized(lw, v.src, v.q.zero_point, float(v.q.scale)), v.src.shape
    if isinstance(v, Deq) and isinstance(v.src, np.ndarray) and v.q.per_tensor:
        real = (v.src.astype(np.int64) - v.q.zero_point).astype(np.float32) * f32(v.q.scale)
        return relax.const(real.astype(np.float32)), tuple(real.shape)
    if isinstance(v, np.ndarray) and v.dtype == np.float32:
        return relax.const(v), tuple(v.shape)
    raise Unmappable(f"input {k} of {op} is neither a per-tensor dequantised activation nor a constant")


def _binary_float_output(lw: OnnxLowerer, p: Pending) -> Any:
    op = p.node.op_type
    if not any(isinstance(v, Deq) and isinstance(v.src, QAct) for v in p.args):
        raise Unmappable(f"{op} has no activation input")
    (ea, sa), (eb, sb) = (_operand(lw, v, k, op) for k, v in enumerate(p.args))
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
