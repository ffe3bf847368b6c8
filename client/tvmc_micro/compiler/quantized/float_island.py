"""Float islands: the float32 operators a converter leaves between DEQUANTIZE and QUANTIZE inside an int8
model (ELU, a LayerNorm's SQUARE/NEG/MEAN/RSQRT, ...). TFLite Micro runs them in float inside the int8
graph; so does the integer path: every integer operator keeps its integer kernel, only these run in
float32 (kernels_float), and the compile says which.

An operator is a float operator when every tensor it computes on is float32 and not quantized (constant
int32 axes aside). `FLOAT_CONVERTERS` has the ones with a float kernel; any other float operator in an
integer model is refused by name (never a silent switch of the whole model to float).
"""

from __future__ import annotations

import json
from collections.abc import Callable

import numpy as np

from tvmc_micro.compiler.quantized import kernels_float
from tvmc_micro.compiler.quantized.graph import QGraph, QOperator, QTensor
from tvmc_micro.compiler.quantized.lowering_base import (
    Converter,
    Lowerer,
    _activation,
    _check_broadcast,
    _const_ints,
)

# Function attribute on the integer module's `main`: JSON list of {"index", "type"} of the operators
# computed in float32 (absent when there are none).
FLOAT_OPERATORS_ATTR = "tvmc_micro.float_operators"

_BOUNDARY = ("QUANTIZE", "DEQUANTIZE")


def _is_float(t: QTensor) -> bool:
    return t.dtype == "FLOAT32" and not t.is_quantized


def is_float_op(g: QGraph, op: QOperator) -> bool:
    """True for an operator computing on float32 values only (QUANTIZE/DEQUANTIZE excluded)."""
    if op.name in _BOUNDARY:
        return False
    outs = [g.tensors[i] for i in op.outputs if i >= 0]
    if not outs or not all(_is_float(t) for t in outs):
        return False
    for i in op.inputs:
        if i < 0:
            continue
        t = g.tensors[i]
        if _is_float(t):
            continue
        if t.data is not None and t.dtype in ("INT32", "INT64") and not t.is_quantized:
            continue  # axes, shapes
        return False
    return True


def float_operators(g: QGraph) -> list[dict[str, int | str]]:
    return [{"index": op.index, "type": op.name} for op in g.operators if is_float_op(g, op)]


def float_operators_json(g: QGraph) -> str:
    return json.dumps(float_operators(g))


def note(ops: list[dict[str, int | str]]) -> str:
    """The compile's progress note for a model with a float island."""
    names = ", ".join(f"#{o['index']} {o['type']}" for o in ops)
    return (
        f"{len(ops)} operator(s) run in float32 ({names}): the model computes them on float tensors "
        "between DEQUANTIZE and QUANTIZE, as TFLite Micro does; every other operator is integer"
    )


# --- converters -----------------------------------------------------------------------------------------


def _need_float(g: QGraph, op: QOperator, n_inputs: int) -> str | None:
    for role, i in [*(("input", i) for i in op.inputs[:n_inputs]), ("output", op.outputs[0])]:
        t = g.tensors[i]
        if not _is_float(t):
            return f"{role} {t.name!r} is {t.describe_quantization()}; the float kernel needs float32"
    return None


def _check_unary(g: QGraph, op: QOperator) -> str | None:
    problem = _need_float(g, op, 1)
    if problem is None and tuple(g.tensors[op.inputs[0]].shape) != tuple(g.tensors[op.outputs[0]].shape):
        return "input and output shapes differ"
    return problem


def _lower_unary(kind: str) -> Callable[[Lowerer, QOperator], None]:
    def lower(lw: Lowerer, op: QOperator) -> None:
        inp, out = lw.t(op.inputs[0]), lw.t(op.outputs[0])
        name = f"float_{kind.lower()}"
        func = kernels_float.unary(inp.shape, kind, name)
        lw.define(op.outputs[0], lw.call(func, name, [lw.value(op.inputs[0])], out))

    return lower


def _check_binary(g: QGraph, op: QOperator) -> str | None:
    problem = _need_float(g, op, 2) or _check_broadcast(g, op)
    if problem:
        return problem
    act = _activation(op)
    if act not in ("NONE", "RELU", "RELU6", "RELU_N1_TO_1"):
        return f"fused activation {act} is not supported"
    return None


def _lower_binary(kind: str) -> Callable[[Lowerer, QOperator], None]:
    def lower(lw: Lowerer, op: QOperator) -> None:
        a, b, out = lw.t(op.inputs[0]), lw.t(op.inputs[1]), lw.t(op.outputs[0])
        name = f"float_{kind.lower()}"
        func = kernels_float.binary(a.shape, b.shape, out.shape, kind, _activation(op), name)
        lw.define(op.outputs[0], lw.call(func, name, [lw.value(op.inputs[0]), lw.value(op.inputs[1])], out))

    return lower


def _axes(g: QGraph, op: QOperator) -> list[int]:
    rank = len(g.tensors[op.inputs[0]].shape)
    return sorted(set(a % rank for a in _const_ints(g, op.inputs[1]) or []))


def _check_reduce(g: QGraph, op: QOperator) -> str | None:
    problem = _need_float(g, op, 1)
    if problem:
        return problem
    inp, out = g.tensors[op.inputs[0]], g.tensors[op.outputs[0]]
    values = _const_ints(g, op.inputs[1])
    if values is None:
        return "the reduction axes are computed at run time; only constant axes are supported"
    if any(not -len(inp.shape) <= a < len(inp.shape) for a in values):
        return f"axes {values} are outside the input's {len(inp.shape)} dimensions"
    kept = [1 if i in _axes(g, op) else d for i, d in enumerate(inp.shape)]
    if not values or int(np.prod(kept)) != int(np.prod(out.shape)):
        return f"output shape {list(out.shape)} does not match reducing axes {values}"
    return None


def _lower_reduce(mean: bool) -> Callable[[Lowerer, QOperator], None]:
    name = "float_mean" if mean else "float_sum"

    def lower(lw: Lowerer, op: QOperator) -> None:
        inp = lw.t(op.inputs[0])
        axes = _axes(lw.graph, op)
        func = kernels_float.reduce_sum(inp.shape, axes, mean, name)
        lw.define_reduction(op, func, name, axes)

    return lower


FLOAT_CONVERTERS: dict[str, Converter] = {
    **{k: Converter(_check_unary, _lower_unary(k)) for k in kernels_float.UNARY},
    **{k: Converter(_check_binary, _lower_binary(k)) for k in kernels_float.BINARY},
    "MEAN": Converter(_check_reduce, _lower_reduce(True)),
    "SUM": Converter(_check_reduce, _lower_reduce(False)),
}
