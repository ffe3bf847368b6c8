"""Entry points: decide whether a TFLite model is fully quantized, and import it as integer Relax."""

from __future__ import annotations

import json
import logging

import numpy as np
import tvm
from tvm import relax

from tvmc_micro.compiler.executor import STATE_ATTR
from tvmc_micro.compiler.model_checks import check_tflite
from tvmc_micro.compiler.naming import claim_unique
from tvmc_micro.compiler.quantized.errors import QuantizedModelError, UnsupportedOp, UnsupportedQuantizedModel
from tvmc_micro.compiler.quantized.fixedpoint import RequantRangeError
from tvmc_micro.compiler.quantized.float_island import (
    FLOAT_CONVERTERS,
    FLOAT_OPERATORS_ATTR,
    float_operators,
    is_float_op,
    note,
)
from tvmc_micro.compiler.quantized.graph import QGraph, QOperator, read_graph
from tvmc_micro.compiler.quantized.lowering16 import converter_for as _table_converter
from tvmc_micro.compiler.quantized.lowering_base import Converter, Lowerer, describe_operator
from tvmc_micro.compiler.quantized.lowering_math import REFUSED_INT8
from tvmc_micro.compiler.quantized.stateful import (
    STATEFUL_CONVERTERS,
    state_description,
    state_problems,
    state_tensors,
)

# Operators that only convert between float and integer at the model's edges.
_BOUNDARY_OPS = ("QUANTIZE", "DEQUANTIZE")
_INTEGER_TYPES = ("INT8", "UINT8", "INT16")
_IO_DTYPES = {"INT8": "int8", "UINT8": "uint8", "INT16": "int16", "INT32": "int32", "FLOAT32": "float32"}

log = logging.getLogger(__name__)


def _read(model_bytes: bytes) -> QGraph:
    """The graph of a model that passed the flatbuffer verifier and the value and shape checks."""
    try:
        # Structure and values only: `tvmc compile` has checked shapes already (model_file.py), and the
        # converters below name unsupported operands by operator (UnsupportedQuantizedModel).
        check_tflite(model_bytes, shapes=False)
        return read_graph(model_bytes)
    except ValueError as err:
        raise QuantizedModelError(
            f"cannot read the TFLite model, it is truncated or damaged: {err}",
            "re-export the model; check that the file is complete",
        ) from err


def is_quantized_tflite(model_bytes: bytes) -> bool:
    """True when the model computes on quantized integer activations: every computing operator is an
    integer one or a float32 one (a float island between DEQUANTIZE and QUANTIZE, which the integer path
    runs in float as TFLite Micro does), and some activation is integer.

    Float models and hybrid (dynamic-range) models — float activations, int8 weights in one operator —
    are False; a float model wrapped in QUANTIZE/DEQUANTIZE at its edges is True. Unreadable bytes are
    False.
    """
    try:
        check_tflite(model_bytes, shapes=False)
        g = read_graph(model_bytes)
    except ValueError:
        return False
    computing = [op for op in g.operators if op.name not in _BOUNDARY_OPS]
    if not computing:
        return False
    integer = [op for op in computing if _is_integer_op(g, op)]
    if not integer and not _has_integer_activation(g):
        return False
    return all(op in integer or is_float_op(g, op) for op in computing)


def _has_integer_activation(g: QGraph) -> bool:
    """Some operator reads a quantized integer tensor computed at run time (or a model input)."""
    for op in g.operators:
        for i in op.inputs:
            t = g.tensors[i] if i >= 0 else None
            if t is not None and t.data is None and t.dtype in _INTEGER_TYPES and t.is_quantized:
                return True
    return False


def _is_integer_op(g: QGraph, op: QOperator) -> bool:
    for idx in (*op.inputs, *op.outputs):
        if idx < 0:
            continue
        t = g.tensors[idx]
        if t.data is not None and t.dtype in ("INT32", "INT64"):
            continue  # biases, shapes, axes
        if t.dtype not in _INTEGER_TYPES or not t.is_quantized:
            return False
    return True


def converter_for(g: QGraph, op: QOperator) -> Converter | None:
    """The operator's converter: float kernels for a float32 operator (a float island), else the
    int16/int8 tables, then the stateful operators (SVDF, LSTM)."""
    if _in_float_island(g, op):
        return FLOAT_CONVERTERS.get(op.name)
    return _table_converter(g, op) or STATEFUL_CONVERTERS.get(op.name)


def _in_float_island(g: QGraph, op: QOperator) -> bool:
    """A float32 operator of a model that has integer activations (a float model's operators are not)."""
    return is_float_op(g, op) and _has_integer_activation(g)


def _no_kernel_reason(g: QGraph, op: QOperator) -> str:
    if _in_float_island(g, op):
        return (
            "float32 operator inside the integer model (between DEQUANTIZE and QUANTIZE) and the integer "
            "path has no float kernel for it; float kernels: " + ", ".join(sorted(FLOAT_CONVERTERS))
        )
    return REFUSED_INT8.get(op.name, "no integer kernel for this operator")


def find_unsupported(g: QGraph) -> list[UnsupportedOp]:
    problems = state_problems(g)
    for op in g.operators:
        conv = converter_for(g, op)  # int16 operators have their own table
        try:
            quant = describe_operator(g, op)
        except Exception:  # a malformed operator (bad tensor index) is described by the check below
            quant = "tensors unreadable"
        if conv is None:
            problems.append(UnsupportedOp(op.index, op.name, quant, _no_kernel_reason(g, op)))
            continue
        try:
            reason = conv.check(g, op)
        except (IndexError, KeyError, TypeError, ValueError) as err:
            reason = f"malformed operator ({type(err).__name__}: {err})"
        if reason:
            problems.append(UnsupportedOp(op.index, op.name, quant, reason))
    for role, idxs in (("input", g.inputs), ("output", g.outputs)):
        for i in idxs:
            t = g.tensors[i]
            if t.dtype not in _IO_DTYPES:
                problems.append(
                    UnsupportedOp(
                        -1,
                        f"model {role} {t.name!r}",
                        t.describe_quantization(),
                        f"model {role}s must be int8, uint8, int16, int32 or float32",
                    )
                )
    return problems


def import_tflite_quantized(model_bytes: bytes, model_name: str) -> tvm.IRModule:
    """A Relax module computing the model in integers, bit-exact with TFLite Micro's reference kernels.

    `main` takes the model inputs (int8, or float32 where the model quantizes at its edge) in model
    order and returns its output (a tuple when there are several). A model with state (variable tensors)
    also takes each state tensor after the inputs and returns its updated value after the outputs; the
    function attribute `STATE_ATTR` describes them (stateful.py). Each operator is one `R.call_tir`
    of an integer PrimFunc; weights are int8 constants, biases int32 with Σw·zp folded in.
    Raises UnsupportedQuantizedModel listing every operator it cannot compile.
    """
    g = _read(model_bytes)
    problems = find_unsupported(g)
    if problems:
        raise UnsupportedQuantizedModel(problems)
    lw = Lowerer(g)
    used: set[str] = set()
    params = []
    for i in g.inputs:
        t = g.tensors[i]
        var = relax.Var(claim_unique(t.name, used), relax.TensorType(list(t.shape), _IO_DTYPES[t.dtype]))
        lw.define(i, var)
        params.append(var)
    # Model state (TFLite variable tensors): one extra input (the state before this run) and one extra
    # output (after it) per tensor, after the model's own; the executor binds both to one persistent buffer.
    states = state_tensors(g)
    for i in states:
        t = g.tensors[i]
        var = relax.Var(claim_unique(t.name, used), relax.TensorType(list(t.shape), _IO_DTYPES[t.dtype]))
        lw.define(i, var)
        params.append(var)
    attrs = {"global_symbol": "main", "tvmc_micro.model_name": model_name}
    if states:
        attrs[STATE_ATTR] = state_description(g, states)
    in_float = float_operators(g)
    if in_float:
        # Read by the driver for its progress note and metadata.json (models[0].float_operators).
        attrs[FLOAT_OPERATORS_ATTR] = json.dumps(in_float)
        log.info("%s", note(in_float))
    with lw.bb.function("main", params, attrs=attrs):
        with lw.bb.dataflow():
            for op in g.operators:
                conv = converter_for(g, op)
                assert conv is not None  # find_unsupported refused the model otherwise
                try:
                    conv.lower(lw, op)
                except RequantRangeError as err:  # scales only a damaged model has: refused, never wrapped
                    raise UnsupportedQuantizedModel(
                        [UnsupportedOp(op.index, op.name, describe_operator(g, op), str(err))]
                    ) from None
            outs = [lw.value(i) for i in g.outputs]
            outs += [lw.state_updates.get(i, lw.value(i)) for i in states]
            result = outs[0] if len(outs) == 1 else relax.Tuple(outs)
            out_var = lw.bb.emit_output(result)
        lw.bb.emit_func_output(out_var)
    mod = lw.bb.get()
    return relax.transform.Normalize()(mod)


def weight_bytes(model_bytes: bytes) -> int:
    """Bytes of constant data the model's computing operators read (weights, biases, tables excluded)."""
    g = _read(model_bytes)
    seen: set[int] = set()
    total = 0
    for op in g.operators:
        for i in op.inputs:
            if i >= 0 and i not in seen and g.tensors[i].data is not None:
                seen.add(i)
                total += int(np.asarray(g.tensors[i].data).nbytes)
    return total
