"""Quantized ONNX (QDQ and QLinear* operators) to a Relax module of integer kernels, ORT's arithmetic.

Entry points: `is_quantized_onnx(model)` and `import_onnx_quantized(model, model_name)`. The reference is
onnxruntime's CPU kernels (MLAS): requantisation in float32 (`FloatRequant`), rounding half to even. A QDQ
model is compared with ORT at its default optimisation level, where ORT fuses each DequantizeLinear -> op ->
QuantizeLinear group into the QLinear kernel this importer also emits; a QLinear model is the same at every
level (tests run it at ORT_DISABLE_ALL). Groups ORT does not fuse run in float32 there, and are reproduced
as ORT computes them: elementwise ones (HardSwish as its function body x * HardSigmoid(x), HardSigmoid,
Tanh, LeakyRelu, Exp, Erf, Elu, Abs, ..., requantisation) as tables; ReduceMean, Sub, Div and
BatchNormalization as float32 kernels; ops that only move values (Pad, Resize nearest, Slice, Split, Gather,
Squeeze, ...) copy the stored integers; a Q -> DQ -> Q -> DQ chain is first merged the way ORT's
DoubleQDQPairsRemover does (`onnx_rewrite`). Known inexact cases, measured against ORT 1.32 on x86-64: its
MLAS QLinearSoftmax rounds about 1 value in 10^5 the other way (1 LSB); groups ORT leaves in float and
computes with float sums (ConvTranspose; in int8 QDQ models a Conv/MatMul whose output feeds several
DequantizeLinear nodes) round rare values 1 LSB away from the exact integer sum. Every pattern the importer
cannot map is listed in one `UnsupportedQuantizedModel` (node, op, quantisation), never computed in float
behind the user's back.

This module reads the model and walks its nodes; the conversions are tables of functions by operator
family (`onnx_convert_conv`, `_elementwise`, `_pool`, `_moves`, `_qdq`), written against the lowering
state's `onnx_view.LowererView` and looked up here: a QOperator node (QLinear*, QuantizeLinear,
DequantizeLinear) converts when visited; a float op is recorded as `Pending` and converted, with its
group, by the QuantizeLinear that reads it.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import tvm
from tvm import relax

from tvmc_micro.compiler.naming import claim_unique
from tvmc_micro.compiler.quantized import onnx_kernels
from tvmc_micro.compiler.quantized.errors import QuantizedModelError, UnsupportedOp, UnsupportedQuantizedModel
from tvmc_micro.compiler.quantized.onnx_convert_conv import CONV_GROUP_CONVERTERS, CONV_QOPERATOR_CONVERTERS
from tvmc_micro.compiler.quantized.onnx_convert_elementwise import (
    ELEMENTWISE_GROUP_CONVERTERS,
    ELEMENTWISE_QOPERATOR_CONVERTERS,
)
from tvmc_micro.compiler.quantized.onnx_convert_moves import (
    MOVE_GROUP_CONVERTERS,
    MOVE_OPS,
    MOVE_QOPERATOR_CONVERTERS,
    argmax,
    move,
)
from tvmc_micro.compiler.quantized.onnx_convert_pool import POOL_GROUP_CONVERTERS, POOL_QOPERATOR_CONVERTERS
from tvmc_micro.compiler.quantized.onnx_convert_qdq import BOUNDARY_CONVERTERS, model_output
from tvmc_micro.compiler.quantized.onnx_lowerer import OnnxLowerer
from tvmc_micro.compiler.quantized.onnx_rewrite import remove_double_qdq
from tvmc_micro.compiler.quantized.onnx_values import (
    QDQ_OPS,
    QLINEAR_OPS,
    Deq,
    FloatIn,
    Pending,
    QAct,
    Unmappable,
    node_attrs,
    node_label,
)
from tvmc_micro.compiler.quantized.onnx_view import GroupConverter, QOperatorConverter

# Nodes converted as they are visited: QuantizeLinear, DequantizeLinear and the QLinear* operators.
QOPERATOR_CONVERTERS: dict[str, QOperatorConverter] = {
    **BOUNDARY_CONVERTERS,
    **CONV_QOPERATOR_CONVERTERS,
    **ELEMENTWISE_QOPERATOR_CONVERTERS,
    **POOL_QOPERATOR_CONVERTERS,
    **MOVE_QOPERATOR_CONVERTERS,
}
# Float ops that may sit between DequantizeLinear and QuantizeLinear, converted with their group.
QDQ_GROUP_CONVERTERS: dict[str, GroupConverter] = {
    **CONV_GROUP_CONVERTERS,
    **ELEMENTWISE_GROUP_CONVERTERS,
    **POOL_GROUP_CONVERTERS,
    **MOVE_GROUP_CONVERTERS,
}
# Float ops a following Relu/Clip folds into (before the group's QuantizeLinear).
_ACT_FUSIBLE = (
    "Conv",
    "ConvTranspose",
    "MatMul",
    "Gemm",
    "BatchNormalization",
    "Add",
    "Mul",
    "Sub",
    "Div",
    "ReduceMean",
    "AveragePool",
    "GlobalAveragePool",
)


def _load(model: Any) -> Any:
    import onnx

    if isinstance(model, (bytes, bytearray)):
        try:
            return onnx.load_from_string(bytes(model))
        except Exception as err:
            raise QuantizedModelError(
                f"cannot read the ONNX model: {err}", "re-export the model; check that the file is complete"
            ) from err
    return model


def is_quantized_onnx(model: Any) -> bool:
    """True when the graph has QuantizeLinear/DequantizeLinear or QLinear* operators."""
    try:
        m = _load(model)
    except QuantizedModelError:
        return False
    return any(n.op_type in QDQ_OPS or n.op_type in QLINEAR_OPS for n in m.graph.node)


def import_onnx_quantized(model: Any, model_name: str) -> tvm.IRModule:
    """A Relax module computing a QDQ/QLinear ONNX model in integers with ORT's arithmetic.

    `model` is an onnx ModelProto or its bytes. Raises UnsupportedQuantizedModel listing every node
    that cannot be mapped (op, location, quantisation)."""
    m = _load(model)
    if not any(n.op_type in QLINEAR_OPS for n in m.graph.node):
        # A QDQ model: ORT's reference run merges double Q/DQ pairs first (their values change).
        m = remove_double_qdq(m)
    lw = OnnxLowerer(m, QDQ_GROUP_CONVERTERS)
    try:
        return _lower_main(lw, model_name)
    except Unmappable as err:
        raise UnsupportedQuantizedModel([UnsupportedOp(-1, "model", "-", str(err))]) from err


# --- the walk -------------------------------------------------------------------------------------------


def _lower_main(lw: OnnxLowerer, model_name: str) -> tvm.IRModule:
    """`main`: the model inputs as parameters, every node visited, the outputs in their ONNX types."""
    graph = lw.model.graph
    params = []
    used: set[str] = set()
    inits = set(lw.consts)
    for vi in graph.input:
        if vi.name in inits:
            continue
        tt = vi.type.tensor_type
        shape = tuple(int(d.dim_value) for d in tt.shape.dim)
        if any(d <= 0 for d in shape):
            raise Unmappable(f"input {vi.name!r} has symbolic dimensions; fix them (--input-shapes)")
        dtype = {1: "float32", 2: "uint8", 3: "int8"}.get(tt.elem_type)
        if dtype is None:
            raise Unmappable(f"input {vi.name!r} has ONNX element type {tt.elem_type}")
        var = relax.Var(claim_unique(vi.name, used), relax.TensorType(list(shape), dtype))
        params.append((vi.name, var, dtype, shape))
    # Every node that cannot be mapped, collected so that one error lists them all.
    problems: list[UnsupportedOp] = []
    with lw.bb.function(
        "main",
        [p[1] for p in params],
        attrs={"global_symbol": "main", "tvmc_micro.model_name": model_name},
    ):
        with lw.bb.dataflow():
            for name, var, dtype, shape in params:
                if dtype == "float32":
                    lw.values[name] = FloatIn(var, shape)
                elif dtype == "uint8":
                    func = onnx_kernels.shift_storage(shape, "uint8", "int8", "from_uint8")
                    lw.values[name] = QAct(
                        lw.call(func, "from_uint8", [var], shape, "int8"), shape, False, 128
                    )
                else:
                    lw.values[name] = QAct(var, shape, False, 0)
            for index, node in enumerate(graph.node):
                try:
                    _visit(lw, node)
                except Unmappable as err:
                    problems.append(UnsupportedOp(index, node_label(node), _describe(lw, node), str(err)))
            outs = []
            for vi in graph.output:
                try:
                    outs.append(model_output(lw, vi.name))
                except Unmappable as err:
                    problems.append(UnsupportedOp(-1, f"model output {vi.name!r}", "-", str(err)))
            if problems:
                raise UnsupportedQuantizedModel(problems)
            result = outs[0] if len(outs) == 1 else relax.Tuple(outs)
            out_var = lw.bb.emit_output(result)
        lw.bb.emit_func_output(out_var)
    return relax.transform.Normalize()(lw.bb.get())


def _visit(lw: OnnxLowerer, node: Any) -> None:
    op = node.op_type
    if node.domain not in ("", "ai.onnx", "com.microsoft"):
        raise Unmappable(f"operator domain {node.domain!r} is not supported")
    if op == "Constant":
        return
    convert = QOPERATOR_CONVERTERS.get(op)
    if convert is not None:
        convert(lw, node)
        return
    if op == "ArgMax":
        lw.values[node.output[0]] = argmax(lw, node, lw.get(node.input[0]))
        return
    if op in ("Identity", "Dropout"):
        # Inference no-ops, whatever the value is (integer, DequantizeLinear view, pending float op).
        if op == "Dropout" and (len(node.output) > 1 and node.output[1]):
            raise Unmappable("Dropout's mask output is not supported (inference has no mask)")
        if op == "Dropout" and len(node.input) > 2 and node.input[2]:
            mode = lw.get(node.input[2])
            if not isinstance(mode, np.ndarray) or bool(mode.reshape(-1)[0]):
                raise Unmappable("Dropout in training mode is not supported")
        lw.values[node.output[0]] = lw.get(node.input[0])
        return
    if op in MOVE_OPS and isinstance(lw.get(node.input[0]), QAct):
        # Data movement on an integer tensor (QLinear models): ORT runs these on int8/uint8 directly.
        x = lw.get(node.input[0])
        args = [x, *[lw.get(n) if n else None for n in node.input[1:]]]
        for k, name in enumerate(node.output):
            if name:
                lw.values[name] = move(lw, Pending(node, args, output_index=k), x)
        return
    if op in QDQ_GROUP_CONVERTERS:
        lw.values[node.output[0]] = _record_float_op(lw, node)
        return
    raise Unmappable("no integer kernel for this operator")


def _record_float_op(lw: OnnxLowerer, node: Any) -> Pending:
    """A float op of a QDQ group, kept until the QuantizeLinear after it gives its output quantisation
    (a Relu/Clip is folded into the op before it where that op's kernel can clamp)."""
    args = [lw.get(n) if n else None for n in node.input]
    if node.op_type in ("Relu", "Clip"):
        lo, hi = 0.0 if node.op_type == "Relu" else -np.inf, np.inf
        if node.op_type == "Clip":
            a = node_attrs(node)
            lo = (
                float(a.get("min", -np.inf))
                if len(args) < 2 or args[1] is None
                else float(np.asarray(args[1]))
            )
            hi = (
                float(a.get("max", np.inf))
                if len(args) < 3 or args[2] is None
                else float(np.asarray(args[2]))
            )
        src = args[0]
        if isinstance(src, Pending) and src.node.op_type in _ACT_FUSIBLE and src.activation is None:
            return Pending(src.node, src.args, (lo, hi), [node.name], src.output_index)
        return Pending(node, [src], (lo, hi))
    if node.op_type in MOVE_OPS and args and isinstance(args[0], FloatIn):
        # A float model input moved (e.g. padded) before its QuantizeLinear: quantising commutes with
        # moving values, so the group is quantise-then-move (the pad value quantised the same way).
        return Pending(node, args)
    # A move of a float op's output (DequantizeLinear -> Sub -> Resize -> QuantizeLinear): quantising
    # commutes with moving values, so the float op is lowered with the QuantizeLinear after the move.
    moves_float = node.op_type in MOVE_OPS and bool(args) and isinstance(args[0], Pending)
    # Sub/Div of a float model input and a dequantised activation: ORT computes it in float32 too.
    float_in_ok = node.op_type in ("Sub", "Div") and any(isinstance(a, Deq) for a in args)
    for arg in args[1:] if moves_float else args:
        if isinstance(arg, (Pending, QAct)) or (isinstance(arg, FloatIn) and not float_in_ok):
            raise Unmappable(
                f"{node.op_type} reads a tensor that is not a DequantizeLinear output; "
                "only DequantizeLinear -> op -> QuantizeLinear groups are integer"
            )
    for k, name in enumerate(node.output[1:], start=1):  # Split: one group per output
        if name:
            lw.values[name] = Pending(node, args, output_index=k)
    return Pending(node, args)


def _describe(lw: OnnxLowerer, node: Any) -> str:
    """The quantisation of a refused node's inputs and output, for the error listing it."""
    parts = []
    for name in node.input:
        v = lw.values.get(name)
        deqs = [a for a in v.args if isinstance(a, Deq)] if isinstance(v, Pending) else [v]
        for d in deqs:
            if isinstance(d, Deq):
                is_const = isinstance(d.src, np.ndarray)
                kind = ("bias" if d.q.dtype == "int32" else "weights") if is_const else "input"
                parts.append(f"{kind} {d.q.describe()}")
    if node.op_type in ("QuantizeLinear", *QLINEAR_OPS):
        try:
            k = {"QuantizeLinear": 1, "QLinearConv": 6, "QLinearMatMul": 6, "QGemm": 7}.get(node.op_type, -2)
            q = lw.qparams(node.input[k], node.input[k + 1] if len(node.input) > k + 1 else None)
            parts.append(f"output {q.describe()}")
        except (Unmappable, IndexError):
            pass
    return "; ".join(parts) or "no quantised inputs"
