"""The static per-operator facts of a compiled model, for metadata.json's `operators` and the arena timeline.

For each kernel call of the executor: which source operators it computes (TFLite op types with their
indices, ONNX node names), output shape, MACs, weight bytes and arena bytes live during it; for the arena:
which tensor occupies which bytes from which step to which.

Source operators are found by dataflow, not by names (TVM's frontends and our integer importers name
kernels differently and keep no spans through fusion): the compiled graph's tensors are matched with the
source model's, starting from the model's inputs and outputs. A kernel whose inputs correspond to source
tensors computes a closed region of the source graph downstream of them; its output is the source tensor
in that region with the same number of elements whose region best agrees with the kernel's name (a kernel
called `fused_conv2d_add_relu` covers CONV_2D and maybe ADD/RELU, not the next layer's ops). Where nothing
matches, the kernel keeps no source operators and reports carry its name (`source_ops` is then empty).

MACs come from the kernel's TIR: every reduction block whose update multiplies two loaded values (a
multiply-accumulate) counts its iteration space (the product of its block iterator extents); pools,
max/sum reductions and elementwise kernels count zero.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

# Source op types that never become work of their own (views, quantization boundaries): neutral in scoring.
_NEUTRAL = {
    "reshape",
    "squeeze",
    "expanddims",
    "unsqueeze",
    "flatten",
    "identity",
    "dropout",
    "quantize",
    "dequantize",
    "quantizelinear",
    "dequantizelinear",
    "cast",
}
# Normalized source op type -> substrings of kernel names that mean the kernel computes it.
_SYNONYMS: dict[str, tuple[str, ...]] = {
    "conv2d": ("conv",),
    "conv": ("conv",),
    "qlinearconv": ("conv",),
    "depthwiseconv2d": ("conv",),
    "transposeconv": ("conv",),
    "convtranspose": ("conv",),
    "fullyconnected": ("fully", "matmul", "dense"),
    "gemm": ("matmul", "dense", "gemm", "fully"),
    "matmul": ("matmul", "dense", "fully"),
    "qlinearmatmul": ("matmul", "dense", "fully"),
    "batchmatmul": ("matmul",),
    "averagepool2d": ("pool",),
    "maxpool2d": ("pool",),
    "averagepool": ("pool",),
    "maxpool": ("pool",),
    "globalaveragepool": ("pool", "mean"),
    "qlinearglobalaveragepool": ("pool", "mean"),
    "mean": ("mean", "pool", "sum"),
    "reducemean": ("mean", "pool", "sum"),
    "softmax": ("softmax",),
    "relu": ("relu", "clip", "maximum"),
    "relu6": ("relu", "clip", "minimum"),
    "clip": ("clip", "relu", "minimum", "maximum"),
    "add": ("add",),
    "qlinearadd": ("add",),
    "sub": ("subtract", "sub"),
    "mul": ("multiply", "mul"),
    "qlinearmul": ("multiply", "mul"),
    "div": ("divide", "div"),
    "logistic": ("sigmoid", "logistic"),
    "sigmoid": ("sigmoid", "logistic"),
    "concatenation": ("concat",),
    "concat": ("concat",),
    "batchnormalization": ("batch", "multiply", "add"),
    "leakyrelu": ("leaky", "relu"),
    "hardswish": ("hard", "hardswish"),
}


@dataclass
class SourceOp:
    index: int
    type: str  # TFLite builtin name (CONV_2D) or ONNX op_type (Conv)
    name: str  # ONNX node name; TFLite: the first output tensor's name (TFLite ops have none)
    inputs: list[str]  # activation tensors (constants left out)
    outputs: list[str]

    def as_json(self) -> dict[str, Any]:
        return {"index": self.index, "type": self.type, "name": self.name}


@dataclass
class SourceGraph:
    ops: list[SourceOp]
    inputs: list[str]
    outputs: list[str]
    elements: dict[str, int | None] = field(default_factory=dict)  # tensor -> element count (None: unknown)


# ----------------------------------------------------------------------------------------- source graph


def source_graph(model_format: str, parsed: Any) -> SourceGraph:
    """The operators of a parsed model (tflite.Model or onnx.ModelProto) with their activation tensors."""
    if model_format == "tflite":
        return _tflite_graph(parsed)
    return _onnx_graph(parsed)


def _tflite_graph(model: Any) -> SourceGraph:
    from tvm.relax.frontend.tflite.tflite_frontend import OperatorConverter

    sub = model.Subgraphs(0)
    converter = OperatorConverter(model, sub, None, None)

    def constant(i: int) -> bool:
        buf = model.Buffers(sub.Tensors(i).Buffer())
        return bool(buf.DataLength()) or (hasattr(buf, "Size") and buf.Size() > 0)

    def tname(i: int) -> str:
        return f"t{i}"

    elements: dict[str, int | None] = {}
    for i in range(sub.TensorsLength()):
        t = sub.Tensors(i)
        shape = [int(x) for x in t.ShapeAsNumpy()] if t.ShapeLength() else []
        elements[tname(i)] = None if any(d < 0 for d in shape) else int(np.prod(shape, dtype=np.int64))
    ops = []
    for k in range(sub.OperatorsLength()):
        op = sub.Operators(k)
        try:
            kind = str(converter.get_op_code_str(op))
        except Exception:  # a custom op the census already refused; keep the walk total
            kind = "CUSTOM"
        ins = [int(x) for x in (op.InputsAsNumpy() if op.InputsLength() else []) if x >= 0]
        outs = [int(x) for x in (op.OutputsAsNumpy() if op.OutputsLength() else [])]
        variable = {i for i in ins if sub.Tensors(i).IsVariable()}
        name = sub.Tensors(outs[0]).Name().decode("utf-8", "replace") if outs else ""
        ops.append(
            SourceOp(
                k,
                kind,
                name.split(";")[0][:80],
                [tname(i) for i in ins if not constant(i) and i not in variable],
                [tname(i) for i in outs],
            )
        )
    return SourceGraph(
        ops,
        [tname(int(i)) for i in sub.InputsAsNumpy()],
        [tname(int(i)) for i in sub.OutputsAsNumpy()],
        elements,
    )


def _onnx_graph(model: Any) -> SourceGraph:
    import onnx

    try:
        inferred = onnx.shape_inference.infer_shapes(model)
    except Exception:  # shape inference is a nicety here: unknown sizes only weaken the matching
        inferred = model
    g = inferred.graph
    constants = {t.name for t in g.initializer}
    constants |= {o for n in g.node if n.op_type == "Constant" for o in n.output}
    elements: dict[str, int | None] = {}
    for vi in [*g.input, *g.value_info, *g.output]:
        dims = vi.type.tensor_type.shape.dim
        known = [d.dim_value for d in dims if d.HasField("dim_value")]
        elements[vi.name] = int(np.prod(known, dtype=np.int64)) if len(known) == len(dims) else None
    ops = []
    for k, node in enumerate(g.node):
        if node.op_type == "Constant":
            continue
        ops.append(
            SourceOp(
                k,
                node.op_type,
                node.name or f"{node.op_type}_{k}",
                [i for i in node.input if i and i not in constants],
                [o for o in node.output if o],
            )
        )
    real_inputs = [i.name for i in g.input if i.name not in constants]
    return SourceGraph(ops, real_inputs, [o.name for o in g.output], elements)


# ------------------------------------------------------------------------------------------ attribution


def _norm(text: str) -> str:
    return re.sub(r"[^a-z0-9]", "", text.lower())


def _kernel_tokens(kernel: str) -> list[str]:
    """`fused_conv2d1_add_add1_relu` -> [conv2d, add, add, relu] (numbering suffixes dropped)."""
    return [t.rstrip("0123456789") for t in kernel.lower().split("_") if t and t != "fused"]


def _score(ops: Sequence[SourceOp], kernel: str) -> int:
    """How well a set of source ops agrees with a kernel's name: each op whose type the name mentions uses
    up one mention (+1); an op it does not mention (or mentions fewer times than such ops) counts -2;
    views and quantization boundaries count 0."""
    tokens = _kernel_tokens(kernel)
    score = 0
    for op in ops:
        kind = _norm(op.type)
        if kind in _NEUTRAL:
            continue
        words = _SYNONYMS.get(kind, (kind,))
        hit = next((k for k, t in enumerate(tokens) if any(w in t for w in words)), None)
        if hit is None:
            score -= 2  # more than a match gains: a kernel does not swallow the next layer's op
        else:
            tokens.pop(hit)
            score += 1
    return score


@dataclass
class CallView:
    """What attribution needs of one kernel call: its name, activation inputs, outputs (with sizes)."""

    name: str
    inputs: list[int]
    outputs: list[int]


def attribute(
    src: SourceGraph,
    calls: Sequence[CallView],
    elements: dict[int, int],
    graph_inputs: Sequence[int],
    graph_outputs: Sequence[int],
) -> list[list[int]]:
    """For each call, the positions (in `src.ops`) of the source operators it computes, in source order."""
    producer = {t: k for k, op in enumerate(src.ops) for t in op.outputs}
    mapped: dict[int, str] = {}
    for g, s in zip(graph_inputs, src.inputs, strict=False):
        mapped[g] = s
    fixed_outputs = dict(zip(graph_outputs, src.outputs, strict=False))
    assigned: set[int] = set()
    result: list[list[int]] = []
    for call in calls:
        avail = {mapped[t] for t in call.inputs if t in mapped}
        region = _closed_region(src, avail, assigned)
        cone: set[int] = set()
        for w in call.outputs:
            target = fixed_outputs.get(w)
            if target is None:
                target = _best_target(src, region, producer, avail, elements.get(w), call.name, cone)
            if target is None:
                # A kernel with no source tensor of its own (a layout move, one half of a split op): its
                # output stands for its input's source tensor.
                firsts = [mapped[t] for t in call.inputs if t in mapped]
                if firsts and src.elements.get(firsts[0]) == elements.get(w):
                    mapped[w] = firsts[0]
                continue
            mapped[w] = target
            cone |= _ancestors(src, producer, target, avail, region)
        assigned |= cone
        result.append(sorted(cone))
    return result


def _closed_region(src: SourceGraph, avail: set[str], assigned: set[int]) -> list[int]:
    """Unassigned source ops computable from `avail` alone (plus constants), in source order."""
    have = set(avail)
    region: list[int] = []
    if not have:
        return region
    for k, op in enumerate(src.ops):
        if k in assigned or not op.inputs:
            continue
        if all(i in have for i in op.inputs):
            region.append(k)
            have.update(op.outputs)
    return region


def _ancestors(
    src: SourceGraph, producer: dict[str, int], target: str, avail: set[str], region: list[int]
) -> set[int]:
    allowed = set(region)
    cone: set[int] = set()
    todo = [target]
    while todo:
        t = todo.pop()
        if t in avail:
            continue
        k = producer.get(t)
        if k is None or k in cone or k not in allowed:
            continue
        cone.add(k)
        todo.extend(src.ops[k].inputs)
    return cone


def _best_target(
    src: SourceGraph,
    region: list[int],
    producer: dict[str, int],
    avail: set[str],
    size: int | None,
    kernel: str,
    taken: set[int],
) -> str | None:
    best: tuple[int, int, str] | None = None
    for k in region:
        for t in src.ops[k].outputs:
            if size is None or src.elements.get(t) != size:
                continue
            cone = _ancestors(src, producer, t, avail, region)
            if not cone or cone & taken:
                continue
            key = (_score([src.ops[j] for j in sorted(cone)], kernel), len(cone), t)
            if best is None or key[:2] > best[:2]:
                best = key
    return None if best is None else best[2]


# ----------------------------------------------------------------------------------------------- MACs


def kernel_macs(func: Any) -> int:
    """Multiply-accumulates of one PrimFunc: the iteration space of each reduction block whose update
    multiplies two loaded values (0 for pools, max/sum reductions and elementwise kernels)."""
    from tvm import tirx

    total = 0

    def has_mac(stmt: Any) -> bool:
        return any(_kind(n) == "Mul" and _has_load(n.a) and _has_load(n.b) for n in _nodes(stmt))

    for node in _nodes(func.body):
        if _kind(node) != "SBlock":
            continue
        if any(iv.iter_type == tirx.IterVar.CommReduce for iv in node.iter_vars) and has_mac(node.body):
            extents = [iv.dom.extent for iv in node.iter_vars]
            if all(isinstance(e, tirx.IntImm) for e in extents):
                total += int(np.prod([int(e) for e in extents], dtype=np.int64))
    return total


def _kind(node: Any) -> str:
    return type(node).__name__


_CHILDREN = (
    "block",
    "body",
    "seq",
    "value",
    "a",
    "b",
    "indices",
    "args",
    "condition",
    "true_value",
    "false_value",
    "then_case",
    "else_case",
    "init",
)


def _nodes(root: Any) -> Iterable[Any]:
    """Every TIR statement and expression under `root` (pre-order)."""
    stack = [root]
    while stack:
        n = stack.pop()
        if n is None or isinstance(n, int | float | str):
            continue
        yield n
        for attr in _CHILDREN:
            try:
                child = getattr(n, attr, None)
            except Exception:  # an FFI property that does not apply to this node
                continue
            if child is None:
                continue
            if isinstance(child, list | tuple) or _kind(child) == "Array":
                stack.extend(list(child))
            elif hasattr(child, "same_as"):
                stack.append(child)


def _has_load(expr: Any) -> bool:
    return any(_kind(n) in ("BufferLoad", "TensorLoad") for n in _nodes(expr))


# -------------------------------------------------------------------------------------------- records


def arena_timeline(
    tensors: Sequence[Any],
    calls: Sequence[Any],
    workspace_ids: Sequence[Sequence[int]],
    outputs: Iterable[int],
    offsets: dict[int, int],
    inputs: Iterable[int] = (),
) -> list[dict[str, Any]]:
    """Every arena tensor with its placement and the steps (kernel call indices) it is live over; a model
    output computed in the arena stays live to the end (step = number of calls, the copy-out), a model
    input in the arena from step 0 (io_buffers "arena")."""
    first: dict[int, int] = {}
    last: dict[int, int] = {}
    for tid in inputs:
        if tid in offsets:
            first[tid] = last[tid] = 0
    for k, call in enumerate(calls):
        for tid in [*call.args, *workspace_ids[k]]:
            if tid in offsets:
                first.setdefault(tid, k)
                last[tid] = k
    for tid in outputs:
        if tid in offsets:
            last[tid] = len(calls)
            first.setdefault(tid, len(calls))
    rows = []
    for tid in sorted(first, key=lambda t: (first[t], offsets.get(t, 0))):
        t = tensors[tid]
        rows.append(
            {
                "tensor": tid,
                "name": t.name,
                "kind": t.kind,
                "dtype": t.dtype,
                "shape": [int(d) for d in t.shape],
                "offset": int(offsets[tid]),
                "size_bytes": int(t.nbytes),
                "first_step": first[tid],
                "last_step": last[tid],
            }
        )
    return rows


def live_bytes(timeline: Sequence[dict[str, Any]], step: int) -> int:
    """Bytes of the arena's tensors live during `step` (tensors sharing memory in place counted once)."""
    spans = {
        (r["offset"], r["offset"] + r["size_bytes"])
        for r in timeline
        if r["first_step"] <= step <= r["last_step"]
    }
    covered = 0
    end = -1
    for lo, hi in sorted(spans):
        if hi <= end:
            continue
        covered += hi - max(lo, end)
        end = hi
    return covered


def operator_records(c: Any) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """(metadata.json `operators`, `memory.arena_timeline`) of a compilation after bind_interface."""
    graph, plan, mf = c.graph, c.plan, c.model
    calls = graph.calls
    outputs = c.output_slots or graph.outputs  # each output's arena tensor when I/O is in the arena
    timeline = arena_timeline(graph.tensors, calls, c.workspace_ids, outputs, plan.offsets, graph.inputs)
    activation = ("input", "intermediate", "output")
    views = []
    for call in calls:
        outs = list(call.writes)
        ins = [t for t in dict.fromkeys(call.args) if graph.tensors[t].kind in activation and t not in outs]
        views.append(CallView(call.func, ins, outs))
    try:
        src: SourceGraph | None = source_graph(mf.format, mf.parsed)
    except Exception:  # attribution is best effort: a model we cannot walk keeps kernel names only
        src = None
    elements = {t.id: int(np.prod(t.shape, dtype=np.int64)) for t in graph.tensors}
    covered = (
        attribute(src, views, elements, graph.inputs, graph.outputs)
        if src is not None
        else [[] for _ in calls]
    )
    macs_of = {fn: kernel_macs(c.flat[fn]) for fn in dict.fromkeys(call.func for call in calls)}
    seen_constants: set[int] = set()
    rows = []
    for k, call in enumerate(calls):
        constants = [t for t in dict.fromkeys(call.args) if graph.tensors[t].kind == "constant"]
        new = [t for t in constants if t not in seen_constants]
        seen_constants.update(constants)
        out = graph.tensors[call.writes[0]]
        rows.append(
            {
                "index": k,
                "name": call.func,
                "function": c.kernels[call.func].symbol,
                "source_ops": [src.ops[j].as_json() for j in covered[k]] if src is not None else [],
                "output_shape": [int(d) for d in out.shape],
                "output_dtype": out.dtype,
                "macs": macs_of[call.func],
                "weight_bytes": sum(graph.tensors[t].nbytes for t in constants),
                "new_weight_bytes": sum(graph.tensors[t].nbytes for t in new),
                "workspace_bytes": sum(graph.tensors[t].nbytes for t in c.workspace_ids[k]),
                "live_arena_bytes": live_bytes(timeline, k),
            }
        )
    return rows, timeline
