"""Walk the flat Relax `main` into an executor graph: tensors and the ordered list of kernel calls.

`main` after the pass list (relax_passes.py) is destination-passing: allocations, then calls of PrimFuncs
whose trailing arguments are outputs. We keep the call order and throw away Relax's storage plan (it
reuses memory only within one dtype and ignores kernel workspaces); planner.py makes ours.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import tvm
from tvm import relax
from tvm.ir.expr import Constant as _Constant

from tvmc_micro.compiler.errors import LoweringError

_UNSUPPORTED_HINT = (
    "the model needs a runtime feature our static C executor does not have (dynamic shapes, control flow, "
    "packed runtime functions); report it with the model, or fix all shapes with --input-shapes"
)


@dataclass
class Tensor:
    id: int
    shape: tuple[int, ...]
    dtype: str
    # "input" (user buffer), "output" (user buffer, written by a kernel), "intermediate" (arena),
    # "constant" (const array in flash), "workspace" (arena, live during one call), "state" (model
    # state: a persistent buffer outside the arena, at `state_offset`; see driver.bind_state).
    kind: str
    name: str
    io_index: int = -1
    constant: np.ndarray | None = field(default=None, repr=False)
    state_offset: int = -1

    @property
    def nbytes(self) -> int:
        return int(np.prod(self.shape, dtype=np.int64)) * np.dtype(self.dtype).itemsize


@dataclass
class KernelCall:
    func: str  # the PrimFunc's name in the IRModule
    args: list[int]  # tensor ids in parameter order (workspaces get appended by codegen)
    writes: list[int]


@dataclass
class ExecutorGraph:
    tensors: list[Tensor]
    calls: list[KernelCall]
    inputs: list[int]
    outputs: list[int]  # tensor id per model output; copied at the end unless kind == "output"
    # The shape `main` declares for each returned value. It differs from the tensor's own shape when the
    # value is a reshape view of it (a model output made by RESHAPE/squeeze): same bytes, the model's shape.
    output_shapes: list[tuple[int, ...]] = field(default_factory=list)

    def add(self, **kw: Any) -> int:
        t = Tensor(id=len(self.tensors), **kw)
        self.tensors.append(t)
        return t.id


def _shape_dtype(expr: Any) -> tuple[tuple[int, ...], str]:
    ty = expr.ty
    if not isinstance(ty, relax.TensorType) or ty.shape is None:
        raise LoweringError(f"value {expr} has no static tensor type ({ty})", _UNSUPPORTED_HINT)
    try:
        shape = tuple(int(d) for d in ty.shape)
    except Exception as err:
        raise LoweringError(f"tensor shape {ty.shape} is not static", _UNSUPPORTED_HINT) from err
    return shape, str(ty.dtype)


def _name(var: Any) -> str:
    return str(getattr(var, "name_hint", None) or getattr(var, "name", "t"))


def build_executor_graph(mod: tvm.IRModule) -> ExecutorGraph:
    main = mod["main"]
    g = ExecutorGraph(tensors=[], calls=[], inputs=[], outputs=[])
    env: dict[Any, int] = {}
    builtin_allocs: set[int] = set()
    written: set[int] = set()
    constants: dict[Any, int] = {}
    tuples: dict[Any, list[Any]] = {}  # a var bound to a tuple of values (a multi-output kernel's results)
    op_alloc_storage = tvm.ir.Op.get("relax.memory.alloc_storage")
    op_alloc_tensor = tvm.ir.Op.get("relax.memory.alloc_tensor")
    op_builtin_alloc = tvm.ir.Op.get("relax.builtin.alloc_tensor")
    op_reshape = tvm.ir.Op.get("relax.reshape")
    ignored = {tvm.ir.Op.get(n) for n in ("relax.memory.kill_storage", "relax.memory.kill_tensor")}

    for i, p in enumerate(main.params):
        shape, dtype = _shape_dtype(p)
        env[p] = g.add(shape=shape, dtype=dtype, kind="input", name=_name(p), io_index=i)
        g.inputs.append(env[p])

    def tensor_of(expr: Any) -> int:
        if isinstance(expr, relax.Var):
            if expr not in env:
                raise LoweringError(f"variable {_name(expr)} is not a tensor we can place", _UNSUPPORTED_HINT)
            return env[expr]
        if isinstance(expr, _Constant):
            key = expr
            if key not in constants:
                shape, dtype = _shape_dtype(expr)
                data = np.ascontiguousarray(expr.value.numpy())
                constants[key] = g.add(
                    shape=shape, dtype=dtype, kind="constant", name=f"const{len(constants)}", constant=data
                )
            return constants[key]
        raise LoweringError(f"unsupported argument {type(expr).__name__} in a kernel call", _UNSUPPORTED_HINT)

    body = main.body
    for block in body.blocks:
        for binding in block.bindings:
            if not isinstance(binding, relax.VarBinding):
                raise LoweringError("match_cast in the compiled graph (dynamic shapes)", _UNSUPPORTED_HINT)
            var, value = binding.var, binding.value
            if isinstance(value, relax.Var | _Constant):
                env[var] = tensor_of(value)
                continue
            if isinstance(value, relax.Tuple):
                tuples[var] = list(value.fields)  # the returned tuple, or a multi-output kernel's results
                continue
            if isinstance(value, relax.TupleGetItem):
                if value.tuple_value not in tuples:
                    raise LoweringError("tuple values inside the graph", _UNSUPPORTED_HINT)
                env[var] = tensor_of(tuples[value.tuple_value][int(value.index)])
                continue
            if not isinstance(value, relax.Call):
                raise LoweringError(f"unsupported binding {type(value).__name__}", _UNSUPPORTED_HINT)
            op = value.op
            if isinstance(op, tvm.ir.Op):
                if op.same_as(op_alloc_storage) or op in ignored:
                    continue
                if op.same_as(op_alloc_tensor) or op.same_as(op_builtin_alloc):
                    shape, dtype = _shape_dtype(var)
                    tid = g.add(shape=shape, dtype=dtype, kind="intermediate", name=_name(var))
                    env[var] = tid
                    if op.same_as(op_builtin_alloc):
                        builtin_allocs.add(tid)
                    continue
                if op.same_as(op_reshape):
                    env[var] = tensor_of(value.args[0])  # a view: same bytes, new shape
                    continue
                raise LoweringError(f"operator {op.name} survived lowering", _UNSUPPORTED_HINT)
            if isinstance(op, tvm.ir.GlobalVar):
                func = mod[op]
                if not isinstance(func, tvm.tirx.PrimFunc):
                    raise LoweringError(f"call of non-PrimFunc {op.name_hint}", _UNSUPPORTED_HINT)
                args = [tensor_of(a) for a in value.args]
                # Destination passing: the trailing arguments never written before are the outputs.
                writes = []
                for tid in reversed(args):
                    t = g.tensors[tid]
                    if t.kind == "intermediate" and tid not in written:
                        writes.append(tid)
                    else:
                        break
                if not writes:
                    raise LoweringError(f"cannot tell the outputs of {op.name_hint}", _UNSUPPORTED_HINT)
                written.update(writes)
                g.calls.append(KernelCall(func=op.name_hint, args=args, writes=list(reversed(writes))))
                env[var] = writes[0]
                continue
            raise LoweringError(f"unsupported call of {op}", _UNSUPPORTED_HINT)

    result = body.body
    results = list(result.fields) if isinstance(result, relax.Tuple) else [result]
    if isinstance(result, relax.Var) and result not in env:
        # A returned tuple bound to a variable.
        for block in body.blocks:
            for b in block.bindings:
                if b.var.same_as(result) and isinstance(b.value, relax.Tuple):
                    results = list(b.value.fields)
    seen: set[int] = set()
    for k, r in enumerate(results):
        tid = tensor_of(r)
        t = g.tensors[tid]
        if tid in builtin_allocs and tid not in seen:
            t.kind, t.io_index = "output", k
        seen.add(tid)
        g.outputs.append(tid)
        view_shape = _shape_dtype(r)[0] if isinstance(r, relax.Var) else t.shape
        g.output_shapes.append(view_shape)
    return g


# Function attribute on `main` of a model with state: a JSON list, one row per state tensor ({name, dtype,
# shape, quantization, reset_byte}), in the order of the extra parameters (after the model's inputs) and
# the extra results (after the model's outputs). Written by the importer (quantized/stateful.py).
STATE_ATTR = "tvmc_micro.state"


def parse_state_attr(func: Any) -> list[dict[str, Any]]:
    """The state rows of `main` ([] when the model has no state)."""
    attrs = getattr(func, "attrs", None)
    if attrs is None or STATE_ATTR not in attrs:
        return []
    return list(json.loads(str(attrs[STATE_ATTR])))


def bind_state(g: ExecutorGraph, names: list[str]) -> list[tuple[int, int]]:
    """Move model state out of the I/O lists into one persistent buffer; (offset, tensor id) per state.

    The importer appends one parameter (the state before the run) and one result (after it) per state
    tensor, in the order of `names`. Both become kind "state" at the same offset of the executor's
    static state buffer, so the kernel updates the state in place and the next run continues from it;
    the arena planner never sees them.
    """
    n = len(names)
    if n == 0:
        return []
    if len(g.inputs) < n or len(g.outputs) < n:
        raise LoweringError(f"main has fewer parameters/results than {n} state tensors", _UNSUPPORTED_HINT)
    placed: list[tuple[int, int]] = []
    offset = 0
    model_outputs = set(g.outputs[:-n])
    for k, (before, after) in enumerate(zip(g.inputs[-n:], g.outputs[-n:], strict=True)):
        t_in, t_out = g.tensors[before], g.tensors[after]
        if after != before and (t_out.kind != "output" or after in model_outputs):
            raise LoweringError(
                f"state tensor {names[k]!r} is not updated by one kernel writing it directly",
                "report this model: its state update did not survive lowering as an in-place write",
            )
        if (t_in.shape, t_in.dtype) != (t_out.shape, t_out.dtype):
            raise LoweringError(
                f"state tensor {names[k]!r} changes from {t_in.dtype}{list(t_in.shape)} to "
                f"{t_out.dtype}{list(t_out.shape)}",
                "report this model (internal error)",
            )
        offset = -(-offset // 16) * 16  # each state tensor 16-byte aligned, like arena tensors
        for t in (t_in, t_out):
            t.kind, t.state_offset, t.io_index = "state", offset, k
        placed.append((offset, before))
        offset += t_in.nbytes
    del g.inputs[-n:]
    del g.outputs[-n:]
    del g.output_shapes[-n:]
    return placed


def apply_weight_layouts(graph: ExecutorGraph, kernels: Mapping[str, Any]) -> None:
    """Rewrite the constants a kernel reads in its own layout (`weight_layout` of a LoweredKernel:
    --kernel-weights int16; `rq_layout`: requantisation tables precomputed for the epilogue) before they are
    emitted: in place when only that kernel's parameter reads the
    constant, else as a new constant beside it."""
    uses: dict[int, set[tuple[str, int]]] = {}
    for call in graph.calls:
        for i, tid in enumerate(call.args):
            uses.setdefault(tid, set()).add((call.func, i))
    done: dict[tuple[int, str], int] = {}
    for call in graph.calls:
        ker = kernels[call.func]
        for laid in (ker.weight_layout, getattr(ker, "rq_layout", None)):
            if laid is not None:
                _apply_layout(graph, call, ker, laid, uses, done)


def _apply_layout(
    graph: ExecutorGraph,
    call: Any,
    ker: Any,
    laid: tuple[int, Any],
    uses: dict[int, set[tuple[str, int]]],
    done: dict[tuple[int, str], int],
) -> None:
    """One (param index, layout) of apply_weight_layouts."""
    i, layout = laid
    tid = call.args[i]
    if (tid, call.func) in done:
        call.args[i] = done[tid, call.func]
        return
    t = graph.tensors[tid]
    if t.kind != "constant" or t.constant is None:
        raise LoweringError(
            f"kernel {ker.symbol} reads argument {i} ({t.name}) as a constant laid out at compile time, "
            f"but it is a {t.kind} tensor, not a constant",
            "compile with --kernel-weights int8 (the default)"
            if ker.weight_layout is not None and laid is ker.weight_layout
            else "report this model: its requantisation tables are not constants",
        )
    data = np.ascontiguousarray(layout(t.constant))
    if uses[tid] == {(call.func, i)} and tid not in graph.outputs:
        graph.tensors[tid] = dataclasses.replace(
            t, shape=data.shape, dtype=str(data.dtype), constant=data
        )
        new = tid
    else:
        new = graph.add(
            shape=data.shape, dtype=str(data.dtype), kind="constant", name=f"{t.name}_w", constant=data
        )
    done[tid, call.func] = call.args[i] = new
