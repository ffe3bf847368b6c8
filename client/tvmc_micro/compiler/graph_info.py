"""What the source model says about itself, read straight from the file (no TVM conversion).

- the model's inputs/outputs (original names, shapes, dtypes, TFLite quantization),
- an operator census that names every unsupported operator at once, with where it is and how often,
- the activation lower bound: the largest set of tensors live at once in the model's own operator order,
  inputs and outputs included (what TFLite Micro's planner reaches; our arena is measured against it).
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass
from typing import Any

import numpy as np

from tvmc_micro.compiler.errors import InputShapeError, UnsupportedOperatorsError
from tvmc_micro.compiler.model_file import ModelFile

# tflite.TensorType values -> numpy dtype names (only the ones that can be tensors we compute on).
_TFLITE_DTYPES = {
    0: "float32",
    1: "float16",
    2: "int32",
    3: "uint8",
    4: "int64",
    6: "bool",
    7: "int16",
    9: "int8",
    10: "float64",
    12: "uint64",
    15: "uint32",
    16: "uint16",
}


@dataclass
class TensorInfo:
    name: str
    shape: list[int]
    dtype: str
    quantization: dict[str, Any] | None = None

    @property
    def size_bytes(self) -> int:
        return int(np.prod(self.shape, dtype=np.int64)) * np.dtype(self.dtype).itemsize


@dataclass
class GraphInfo:
    inputs: list[TensorInfo]
    outputs: list[TensorInfo]
    operator_count: int
    activation_lower_bound_bytes: int
    is_quantized: bool  # every activation the graph computes on is integer (an int8 model)


@dataclass
class _OpUse:
    location: str


def _raise_unsupported(kind: str, found: OrderedDict[str, list[str]], total_ops: int, hint: str) -> None:
    count = sum(len(v) for v in found.values())
    parts = []
    for op, where in found.items():
        shown = ", ".join(where[:4]) + (f", ... ({len(where) - 4} more)" if len(where) > 4 else "")
        parts.append(f"  {op} x{len(where)}: {shown}")
    raise UnsupportedOperatorsError(
        f"{count} of the model's {total_ops} operators cannot be converted by the {kind} frontend "
        f"({len(found)} kind{'s' if len(found) != 1 else ''}):\n" + "\n".join(parts),
        hint,
    )


# --------------------------------------------------------------------------------------------- TFLite


def _tflite_tensor(model: Any, sub: Any, index: int) -> TensorInfo:
    t = sub.Tensors(index)
    name = t.Name().decode("utf-8", "replace") if t.Name() else f"tensor_{index}"
    shape = [int(x) for x in t.ShapeAsNumpy()] if t.ShapeLength() else []
    dtype = _TFLITE_DTYPES.get(t.Type(), f"tflite_type_{t.Type()}")
    quant = None
    q = t.Quantization()
    if q is not None and q.ScaleLength() == 1 and q.ZeroPointLength() == 1:
        quant = {"scale": float(q.ScaleAsNumpy()[0]), "zero_point": int(q.ZeroPointAsNumpy()[0])}
    return TensorInfo(name=name, shape=shape, dtype=dtype, quantization=quant)


def _tflite_is_constant(model: Any, sub: Any, index: int) -> bool:
    buf = model.Buffers(sub.Tensors(index).Buffer())
    return bool(buf.DataLength()) or (hasattr(buf, "Size") and buf.Size() > 0)


_TFLITE_CUSTOM = 32  # BuiltinOperator.CUSTOM


def _tflite_op_name(model: Any, op: Any, converter: Any) -> str:
    """The operator's name as the frontend knows it; custom operators (which TVM's frontend raises on
    before any census could name them) become CUSTOM(<custom code>) so they are listed like any other."""
    code = model.OperatorCodes(op.OpcodeIndex())
    if max(code.BuiltinCode(), code.DeprecatedBuiltinCode()) == _TFLITE_CUSTOM:
        custom = code.CustomCode()
        return f"CUSTOM({custom.decode('utf-8', 'replace') if custom else '?'})"
    return str(converter.get_op_code_str(op))


def tflite_census(mf: ModelFile) -> GraphInfo:
    from tvm.relax.frontend.tflite.tflite_frontend import OperatorConverter

    model = mf.parsed
    sub = model.Subgraphs(0)
    converter = OperatorConverter(model, sub, None, None)
    supported = converter.convert_map
    unsupported: OrderedDict[str, list[str]] = OrderedDict()
    hybrid: OrderedDict[str, list[str]] = OrderedDict()
    n_ops = sub.OperatorsLength()
    for i in range(n_ops):
        op = sub.Operators(i)
        name = _tflite_op_name(model, op, converter)
        outs = op.OutputsAsNumpy() if op.OutputsLength() else []
        out_name = _tflite_tensor(model, sub, int(outs[0])).name if len(outs) else "?"
        # TFLite joins fused names with ';' (hundreds of characters): the first part locates the op.
        short = out_name.split(";")[0]
        short = short if len(short) <= 60 else short[:57] + "..."
        where = f"op #{i} (output '{short}')"
        if name not in supported:
            unsupported.setdefault(name, []).append(where)
            continue
        ins = [int(x) for x in (op.InputsAsNumpy() if op.InputsLength() else []) if x >= 0]
        q_act = [
            _tflite_tensor(model, sub, x).quantization is not None
            for x in ins
            if not _tflite_is_constant(model, sub, x)
        ]
        q_w = [
            _tflite_tensor(model, sub, x).quantization is not None
            and _tflite_tensor(model, sub, x).dtype in ("int8", "uint8")
            for x in ins
            if _tflite_is_constant(model, sub, x)
        ]
        q_out = [_tflite_tensor(model, sub, int(x)).quantization is not None for x in outs]
        if any(q_w) and not any(q_act) and not any(q_out):
            hybrid.setdefault(name, []).append(where)
    if sub.OperatorsLength() and model.SubgraphsLength() > 1:
        pass  # control flow subgraphs are converted by the frontend itself; census covers the main graph
    if unsupported:
        _raise_unsupported(
            "TFLite",
            unsupported,
            n_ops,
            "replace these operators when exporting the model (e.g. TFLite builtins only, no SELECT_TF_OPS "
            "or custom ops), or split the model",
        )
    if hybrid:
        _raise_unsupported(
            "TFLite (hybrid/dynamic-range quantized: int8 weights, float activations)",
            hybrid,
            n_ops,
            "export with full integer quantization (representative dataset) or as float32",
        )

    inputs = [_tflite_tensor(model, sub, int(i)) for i in sub.InputsAsNumpy()]
    outputs = [_tflite_tensor(model, sub, int(i)) for i in sub.OutputsAsNumpy()]

    # Lifetimes over the model's own operator order: [first op that touches it, last op that reads it].
    first: dict[int, int] = {int(i): 0 for i in sub.InputsAsNumpy()}
    last: dict[int, int] = {}
    for i in range(n_ops):
        op = sub.Operators(i)
        for x in op.InputsAsNumpy() if op.InputsLength() else []:
            x = int(x)
            if x >= 0 and not _tflite_is_constant(model, sub, x):
                first.setdefault(x, i)
                last[x] = i
        for x in op.OutputsAsNumpy() if op.OutputsLength() else []:
            first.setdefault(int(x), i)
            last.setdefault(int(x), i)
    for x in sub.OutputsAsNumpy():
        last[int(x)] = max(n_ops - 1, 0)
    sizes = {x: _safe_size(_tflite_tensor(model, sub, x)) for x in first}
    bound = _max_live(first, last, sizes, n_ops)
    activations = [_tflite_tensor(model, sub, x) for x in first if x < sub.TensorsLength()]
    is_quantized = (
        bool(activations)
        and all(t.dtype in ("int8", "uint8", "int16", "int32") for t in activations)
        and any(t.quantization is not None for t in activations)
    )
    return GraphInfo(inputs, outputs, n_ops, bound, is_quantized)


def _safe_size(t: TensorInfo) -> int:
    if any(d < 0 for d in t.shape):
        return 0
    try:
        return t.size_bytes
    except TypeError:
        return 0


def _max_live(first: dict[Any, int], last: dict[Any, int], sizes: dict[Any, int], n_ops: int) -> int:
    best = 0
    for i in range(max(n_ops, 1)):
        live = sum(sizes[t] for t in first if first[t] <= i <= last.get(t, first[t]))
        best = max(best, live)
    return best


def check_tflite_input_shapes(info: GraphInfo, input_shapes: dict[str, list[int]]) -> None:
    """TFLite stores every input shape, and neither TVM's frontend nor the integer importer can change
    one: `--input-shapes` may only repeat it (anything else was silently ignored)."""
    by_name = {t.name: t for t in info.inputs}
    for name, shape in input_shapes.items():
        if name not in by_name:
            raise InputShapeError(
                f"--input-shapes names {name!r}, which is not an input of the model",
                "the model's inputs are: " + ", ".join(repr(n) for n in by_name),
            )
        if list(shape) != list(by_name[name].shape):
            raise InputShapeError(
                f"--input-shapes gives {name!r} shape {list(shape)}, but this TFLite model fixes it to "
                f"{by_name[name].shape}; TFLite input shapes cannot be changed at compile time",
                "drop --input-shapes, or re-export the model with the shape you need",
            )


# ----------------------------------------------------------------------------------------------- ONNX


def parse_input_shapes(specs: list[str] | None) -> dict[str, list[int]]:
    """`--input-shapes name:[1,2,3]` (repeatable; also "a:[1,2] b:[3]" in one argument)."""
    import re

    result: dict[str, list[int]] = {}
    for spec in specs or []:
        for item in re.findall(r"\S+?:\[[^\]]*\]|\S+", spec):
            m = re.fullmatch(r"(.+):\[\s*(-?\d+(?:\s*,\s*-?\d+)*)?\s*\]", item)
            if not m:
                raise InputShapeError(
                    f"cannot parse --input-shapes {item!r}",
                    "write it as NAME:[D0,D1,...], e.g. --input-shapes input_1:[1,49,10,1]",
                )
            dims = [int(d) for d in m.group(2).split(",")] if m.group(2) else []
            if any(d <= 0 for d in dims):
                raise InputShapeError(
                    f"--input-shapes {item!r} has a dimension that is not positive",
                    "every dimension must be a fixed positive size (microcontroller code is static)",
                )
            result[m.group(1)] = dims
    return result


def _onnx_dtype(elem_type: int) -> str:
    from onnx import helper

    return str(np.dtype(helper.tensor_dtype_to_np_dtype(elem_type)))


def onnx_census(mf: ModelFile, input_shapes: dict[str, list[int]]) -> GraphInfo:
    import onnx
    from tvm.relax.frontend.onnx.onnx_frontend import _get_convert_map

    model = mf.parsed
    graph = model.graph
    from tvmc_micro.compiler import onnx_converters

    supported = set(_get_convert_map()) | {"Constant", "If"} | set(onnx_converters.OPS)
    # Sequence and optional values: TVM converts some of these ops, but the results were wrong on onnx's
    # own sequence test models, and the static C executor has no such values: refused by name.
    supported -= {op for op in supported if "Sequence" in op or op.startswith("Optional")}
    # QDQ/QLinear models go to the integer importer, which maps the QLinear* ops TVM's frontend lacks.
    from tvmc_micro.compiler.quantized.onnx_values import QDQ_OPS, QLINEAR_OPS

    quantized = any(n.op_type in QDQ_OPS or n.op_type in QLINEAR_OPS for n in graph.node)
    if quantized:
        supported |= set(QLINEAR_OPS)
    unsupported: OrderedDict[str, list[str]] = OrderedDict()
    for i, node in enumerate(graph.node):
        qlinear = quantized and node.op_type in QLINEAR_OPS
        domains = ("", "ai.onnx", "com.microsoft") if qlinear else ("", "ai.onnx")
        if node.op_type not in supported or node.domain not in domains:
            key = node.op_type if node.domain in ("", "ai.onnx") else f"{node.domain}.{node.op_type}"
            unsupported.setdefault(key, []).append(f"node #{i} ('{node.name or node.output[0]}')")
    if unsupported:
        _raise_unsupported(
            "ONNX",
            unsupported,
            len(graph.node),
            "re-export the model with standard ONNX operators (a different opset may help), or split it",
        )

    initializers = {t.name for t in graph.initializer}
    real_inputs = [i for i in graph.input if i.name not in initializers]
    names = [i.name for i in real_inputs]
    for name in input_shapes:
        if name not in names:
            raise InputShapeError(
                f"--input-shapes names {name!r}, which is not an input of the model",
                "the model's inputs are: " + ", ".join(repr(n) for n in names),
            )
    inputs = []
    for vi in real_inputs:
        dims = vi.type.tensor_type.shape.dim
        if vi.name in input_shapes:
            shape = input_shapes[vi.name]
            if len(shape) != len(dims):
                raise InputShapeError(
                    f"--input-shapes gives {vi.name!r} {len(shape)} dimensions; the model says {len(dims)}",
                    f"pass all {len(dims)} dimensions",
                )
            fixed = [int(d.dim_value) if d.HasField("dim_value") and d.dim_value > 0 else None for d in dims]
            clash = [i for i, (f, g) in enumerate(zip(fixed, shape, strict=True)) if f is not None and f != g]
            if clash:
                model_shape = "[" + ",".join(str(f) if f is not None else "?" for f in fixed) + "]"
                raise InputShapeError(
                    f"--input-shapes gives {vi.name!r} shape {shape}, but the model fixes it to "
                    f"{model_shape} "
                    f"(dimension {clash[0]} is {fixed[clash[0]]}, not {shape[clash[0]]})",
                    "only symbolic dimensions (shown as ?) can be set; drop --input-shapes or re-export the "
                    "model with the shape you need",
                )
        else:
            symbolic = [d.dim_param or "?" for d in dims if not d.HasField("dim_value") or d.dim_value <= 0]
            if symbolic:
                example = ",".join(str(d.dim_value) if d.dim_value > 0 else "1" for d in dims)
                raise InputShapeError(
                    f"input {vi.name!r} has symbolic dimension(s) {', '.join(symbolic)}; microcontroller "
                    "code needs every shape fixed",
                    f"pass --input-shapes {vi.name}:[{example}] (with the sizes you need)",
                )
            shape = [int(d.dim_value) for d in dims]
        inputs.append(TensorInfo(vi.name, shape, _onnx_dtype(vi.type.tensor_type.elem_type)))

    # Shapes of every tensor (for the lower bound), with the user's input shapes pinned first.
    pinned = onnx.ModelProto()
    pinned.CopyFrom(model)
    for vi in pinned.graph.input:
        if vi.name in input_shapes:
            for d, size in zip(vi.type.tensor_type.shape.dim, input_shapes[vi.name], strict=True):
                d.Clear()
                d.dim_value = size
    try:
        inferred = onnx.shape_inference.infer_shapes(pinned)
    except Exception:
        inferred = pinned
    sizes_by_name: dict[str, int] = {}
    for vi in list(inferred.graph.value_info) + list(inferred.graph.input) + list(inferred.graph.output):
        tt = vi.type.tensor_type
        if not vi.type.HasField("tensor_type") or tt.elem_type == 0:
            continue  # a sequence, map or optional value (the ops making it are refused by name)
        if all(d.HasField("dim_value") for d in tt.shape.dim):
            info = TensorInfo(vi.name, [int(d.dim_value) for d in tt.shape.dim], _onnx_dtype(tt.elem_type))
            sizes_by_name[vi.name] = info.size_bytes
    outputs = []
    for vi in inferred.graph.output:
        tt = vi.type.tensor_type
        outputs.append(
            TensorInfo(vi.name, [int(d.dim_value) for d in tt.shape.dim], _onnx_dtype(tt.elem_type))
        )

    constants = initializers | {o for n in graph.node if n.op_type == "Constant" for o in n.output}
    n_ops = len(graph.node)
    first: dict[str, int] = {n: 0 for n in names}
    last: dict[str, int] = {}
    for i, node in enumerate(graph.node):
        for x in node.input:
            if x and x not in constants:
                first.setdefault(x, i)
                last[x] = i
        for x in node.output:
            if x not in constants:
                first.setdefault(x, i)
                last.setdefault(x, i)
    for vi in graph.output:
        last[vi.name] = max(n_ops - 1, 0)
    sizes = {x: sizes_by_name.get(x, 0) for x in first}
    bound = _max_live(first, last, sizes, n_ops)
    return GraphInfo(inputs, outputs, n_ops, bound, is_quantized=quantized)
