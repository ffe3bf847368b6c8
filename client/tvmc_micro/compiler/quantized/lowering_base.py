"""The integer path's shared pieces: the Relax builder state (`Lowerer`), the `Converter` record
(check, lower) every TFLite operator has, and the checks and descriptions converters share."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
from tvm import relax, tirx

from tvmc_micro.compiler.quantized.graph import QGraph, QOperator, QTensor

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

    def define_reduction(self, op: QOperator, func: tirx.PrimFunc, kind: str, axes: Sequence[int]) -> None:
        """Call a reduction kernel (reduced `axes` kept as 1) on the operator's first input and define its
        output, reshaped to the model's output shape when that drops the axes (keep_dims=False)."""
        inp, out = self.t(op.inputs[0]), self.t(op.outputs[0])
        kept = tuple(1 if i in axes else d for i, d in enumerate(inp.shape))
        result = self.call(func, kind, [self.value(op.inputs[0])], out, kept)
        if tuple(out.shape) != kept:
            result = self.reshape(result, out.shape)
        self.define(op.outputs[0], result)


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


def _same_quantization(a: QTensor, b: QTensor) -> bool:
    return (
        a.dtype == b.dtype
        and np.array_equal(a.scales, b.scales)
        and np.array_equal(a.zero_points, b.zero_points)
    )


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


def _check_broadcast(g: QGraph, op: QOperator) -> str | None:
    """A binary operator's two inputs broadcast to exactly its output's shape."""
    shapes = [g.tensors[i].shape for i in op.inputs[:2]]
    try:
        full = np.broadcast_shapes(*shapes)
    except ValueError:
        return f"input shapes {[list(s) for s in shapes]} do not broadcast"
    if tuple(full) != tuple(g.tensors[op.outputs[0]].shape):
        return f"broadcast shape {list(full)} differs from the output shape"
    return None


def _const_ints(g: QGraph, index: int) -> list[int] | None:
    data = g.tensors[index].data
    return None if data is None else [int(v) for v in np.asarray(data).reshape(-1)]


def _check_int8_only(g: QGraph, op: QOperator) -> str | None:
    """For copies TFLM implements for int8 (and float) only: refuse int16 rather than guess."""
    t = g.tensors[op.inputs[0]]
    if t.dtype != "INT8":
        return f"input is {t.describe_quantization()}; TFLite Micro's {op.name} supports int8 only"
    return None


def describe_operator(g: QGraph, op: QOperator) -> str:
    return _describe(g, op)
