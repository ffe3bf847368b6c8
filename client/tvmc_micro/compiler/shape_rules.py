"""Every operator's output shapes, computed from its inputs and options as TFLite does, against the file.

Code generation trusts the shapes stored in the flatbuffer; TFLite Micro recomputes them in each
kernel's Prepare. A damaged stored shape (one byte: batch 1 -> 18) therefore makes a kernel that reads
past its input. Each rule here computes what TFLite would, raising ShapeError on inputs the operator
cannot take; `check_shapes` refuses a stored shape that differs.

Why refuse rather than use the computed shape: the stored shapes are read by TVM's frontend and by the
integer importer, and a file whose shapes contradict its operators is damaged — the computed shape may be
unambiguous for one operator while the damage went elsewhere (a weight, an option). Refusing names the
tensor, the operator and both shapes, and the user re-exports.

Operators without a rule here (STRIDED_SLICE, SVDF, LSTM, ...) keep their stored shapes; their own
converters check their inputs.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

Shape = tuple[int, ...]
_SAME, _VALID = 0, 1  # tflite.Padding


@dataclass
class STensor:
    index: int
    name: str
    shape: Shape
    data: np.ndarray | None  # contents of integer constants (shapes, axes, paddings), else None


@dataclass
class SOperator:
    index: int
    name: str  # BuiltinOperator name
    inputs: list[int]
    outputs: list[int]
    options: Any  # the tflite *Options object (accessors StrideW(), Padding(), ...) or None


@dataclass
class SGraph:
    tensors: list[STensor]
    operators: list[SOperator]


def read_subgraph(model: Any, s: int = 0) -> SGraph:
    """The shapes, integer constants and operators of subgraph `s` of a verified, value-checked model
    (model_checks.py), read without TVM."""
    import tflite

    op_names = {v: k for k, v in vars(tflite.BuiltinOperator).items() if not k.startswith("_")}
    option_kinds = {v: k for k, v in vars(tflite.BuiltinOptions).items() if not k.startswith("_")}
    sub = model.Subgraphs(s)
    tensors = []
    for i in range(sub.TensorsLength()):
        t = sub.Tensors(i)
        shape = tuple(int(d) for d in t.ShapeAsNumpy()) if t.ShapeLength() else ()
        buf = model.Buffers(t.Buffer())
        data = None
        if buf.DataLength() and t.Type() in _INT_TYPES:
            data = np.frombuffer(bytes(buf.DataAsNumpy().tobytes()), dtype=_INT_TYPES[t.Type()])
        name = t.Name().decode("utf-8", "replace") if t.Name() else f"tensor_{i}"
        tensors.append(STensor(i, name, shape, data))
    ops = []
    for k in range(sub.OperatorsLength()):
        op = sub.Operators(k)
        code = model.OperatorCodes(op.OpcodeIndex())
        name = op_names.get(max(code.BuiltinCode(), code.DeprecatedBuiltinCode()), "?")
        options = None
        table, kind = op.BuiltinOptions(), option_kinds.get(op.BuiltinOptionsType())
        if table is not None and kind not in (None, "NONE") and hasattr(tflite, kind):
            options = getattr(tflite, kind)()
            options.Init(table.Bytes, table.Pos)
        ins = [int(v) for v in op.InputsAsNumpy()] if op.InputsLength() else []
        outs = [int(v) for v in op.OutputsAsNumpy()] if op.OutputsLength() else []
        ops.append(SOperator(k, name, ins, outs, options))
    return SGraph(tensors, ops)


_INT_TYPES: dict[int, np.dtype[Any]] = {2: np.dtype("<i4"), 4: np.dtype("<i8")}  # TensorType INT32, INT64


class ShapeError(ValueError):
    """An operator's inputs or stored output shapes contradict TFLite's rules for it."""


def _fail(op: SOperator, what: str) -> ShapeError:
    return ShapeError(f"{op.name} (operator {op.index}) {what}")


def _in(g: SGraph, op: SOperator, k: int, rank: int | None = None) -> Shape:
    if k >= len(op.inputs) or op.inputs[k] < 0:
        raise _fail(op, f"has no input {k}")
    shape = g.tensors[op.inputs[k]].shape
    if rank is not None and len(shape) != rank:
        t = g.tensors[op.inputs[k]]
        raise _fail(op, f"input {k} (tensor {t.index} '{t.name}') has shape {list(shape)}, not rank {rank}")
    return shape


def _const(g: SGraph, op: SOperator, k: int) -> list[int] | None:
    """The integer contents of constant input k, or None (omitted or computed at run time)."""
    if k >= len(op.inputs) or op.inputs[k] < 0 or g.tensors[op.inputs[k]].data is None:
        return None
    return [int(v) for v in np.asarray(g.tensors[op.inputs[k]].data).reshape(-1)]


def _opt(op: SOperator, name: str, default: Any = 0) -> Any:
    """An option's value; the schema default when the operator has no options table (as TFLite reads it)."""
    accessor = getattr(op.options, name, None)
    return accessor() if accessor is not None else default


def _axis(op: SOperator, axis: int, rank: int) -> int:
    if not -rank <= axis < rank:
        raise _fail(op, f"has axis {axis} for a rank-{rank} input")
    return axis % rank


def _window(op: SOperator, size: int, k: int, stride: int, dilation: int, what: str) -> int:
    """TFLite's ComputeOutSize."""
    if stride <= 0 or dilation <= 0 or k <= 0:
        raise _fail(op, f"has {what} filter {k}, stride {stride}, dilation {dilation}; all must be positive")
    eff = (k - 1) * dilation + 1
    padding = _opt(op, "Padding", _SAME)
    out = (size + stride - 1) // stride if padding == _SAME else (size + stride - eff) // stride
    if out <= 0:
        raise _fail(op, f"gives a {what} output of {out} (input {size}, filter {eff}, stride {stride})")
    return out


def _spatial(op: SOperator, x: Shape, kh: int, kw: int, dil: bool = True) -> tuple[int, int]:
    dh, dw = (_opt(op, "DilationHFactor", 1), _opt(op, "DilationWFactor", 1)) if dil else (1, 1)
    return (
        _window(op, x[1], kh, _opt(op, "StrideH"), dh, "height"),
        _window(op, x[2], kw, _opt(op, "StrideW"), dw, "width"),
    )


def _bias(g: SGraph, op: SOperator, k: int, channels: int) -> None:
    if k < len(op.inputs) and op.inputs[k] >= 0:
        n = int(np.prod(g.tensors[op.inputs[k]].shape, dtype=np.int64))
        if n != channels:
            raise _fail(op, f"has a bias of {n} elements for {channels} output channels")


def _conv(g: SGraph, op: SOperator) -> list[Shape | None]:
    x, w = _in(g, op, 0, 4), _in(g, op, 1, 4)
    if w[3] <= 0 or x[3] % w[3]:
        raise _fail(op, f"has {x[3]} input channels, not a multiple of the filter's {w[3]}")
    _bias(g, op, 2, w[0])
    return [(x[0], *_spatial(op, x, w[1], w[2]), w[0])]


def _depthwise(g: SGraph, op: SOperator) -> list[Shape | None]:
    x, w = _in(g, op, 0, 4), _in(g, op, 1, 4)
    if w[0] != 1 or w[3] % x[3]:
        raise _fail(op, f"has filter {list(w)} for {x[3]} input channels (needs [1, h, w, C x multiplier])")
    _bias(g, op, 2, w[3])
    return [(x[0], *_spatial(op, x, w[1], w[2]), w[3])]


def _pool(g: SGraph, op: SOperator) -> list[Shape | None]:
    x = _in(g, op, 0, 4)
    return [(x[0], *_spatial(op, x, _opt(op, "FilterHeight"), _opt(op, "FilterWidth"), dil=False), x[3])]


def _fully_connected(g: SGraph, op: SOperator) -> list[Shape | None]:
    x, w = _in(g, op, 0), _in(g, op, 1, 2)
    n = int(np.prod(x, dtype=np.int64))
    if w[1] <= 0 or n % w[1]:
        raise _fail(op, f"has an input of {n} elements, not a multiple of the weights' {w[1]} columns")
    _bias(g, op, 2, w[0])
    if _opt(op, "KeepNumDims", False):
        if not x or x[-1] != w[1]:
            raise _fail(op, f"keeps dims but its input's last dimension is not the weights' {w[1]}")
        return [(*x[:-1], w[0])]
    return [(n // w[1], w[0])]


def _same(g: SGraph, op: SOperator) -> list[Shape | None]:
    return [_in(g, op, 0)]


def _broadcast(g: SGraph, op: SOperator) -> list[Shape | None]:
    a, b = _in(g, op, 0), _in(g, op, 1)
    try:
        return [tuple(int(d) for d in np.broadcast_shapes(a, b))]
    except ValueError:
        raise _fail(op, f"cannot broadcast {list(a)} with {list(b)}") from None


def _same_elements(g: SGraph, op: SOperator) -> list[Shape | None]:
    return [None]  # element count is checked for every reshaping operator in check_shapes


def _concat(g: SGraph, op: SOperator) -> list[Shape | None]:
    shapes = [_in(g, op, k) for k in range(len(op.inputs))]
    rank = len(shapes[0])
    axis = _axis(op, _opt(op, "Axis"), rank)
    for s in shapes:
        if len(s) != rank or any(d != e for i, (d, e) in enumerate(zip(s, shapes[0])) if i != axis):  # noqa: B905
            raise _fail(op, f"concatenates {[list(s) for s in shapes]} along axis {axis}")
    out = list(shapes[0])
    out[axis] = sum(s[axis] for s in shapes)
    return [tuple(out)]


def _pack(g: SGraph, op: SOperator) -> list[Shape | None]:
    shapes = [_in(g, op, k) for k in range(len(op.inputs))]
    if any(s != shapes[0] for s in shapes):
        raise _fail(op, f"packs inputs of different shapes {[list(s) for s in shapes]}")
    axis = _axis(op, _opt(op, "Axis"), len(shapes[0]) + 1)
    return [(*shapes[0][:axis], len(shapes), *shapes[0][axis:])]


def _unpack(g: SGraph, op: SOperator) -> list[Shape | None]:
    x = _in(g, op, 0)
    axis = _axis(op, _opt(op, "Axis"), len(x))
    if x[axis] != len(op.outputs):
        raise _fail(op, f"unpacks dimension {axis} of {list(x)} into {len(op.outputs)} outputs")
    return [(*x[:axis], *x[axis + 1 :])] * len(op.outputs)


def _reduce(g: SGraph, op: SOperator) -> list[Shape | None]:
    x, axes = _in(g, op, 0), _const(g, op, 1)
    if axes is None:
        return [None]
    keep = {_axis(op, a, len(x)) for a in axes}
    if _opt(op, "KeepDims", False):
        return [tuple(1 if i in keep else d for i, d in enumerate(x))]
    return [tuple(d for i, d in enumerate(x) if i not in keep)]


def _pad(g: SGraph, op: SOperator) -> list[Shape | None]:
    x, pads = _in(g, op, 0), _const(g, op, 1)
    if pads is None:
        return [None]
    if len(pads) != 2 * len(x) or any(p < 0 for p in pads):
        raise _fail(op, f"has paddings {pads} for a rank-{len(x)} input")
    return [tuple(d + pads[2 * i] + pads[2 * i + 1] for i, d in enumerate(x))]


def _transpose(g: SGraph, op: SOperator) -> list[Shape | None]:
    x, perm = _in(g, op, 0), _const(g, op, 1)
    if perm is None:
        return [None]
    if sorted(perm) != list(range(len(x))):
        raise _fail(op, f"has permutation {perm} for a rank-{len(x)} input")
    return [tuple(x[p] for p in perm)]


def _split(g: SGraph, op: SOperator) -> list[Shape | None]:
    axis_c, x = _const(g, op, 0), _in(g, op, 1)
    if axis_c is None:
        return [None] * len(op.outputs)
    axis = _axis(op, axis_c[0], len(x))
    n = len(op.outputs)
    if x[axis] % n:
        raise _fail(op, f"splits dimension {axis} of {list(x)} into {n} equal parts")
    return [tuple(x[axis] // n if i == axis else d for i, d in enumerate(x))] * n


def _split_v(g: SGraph, op: SOperator) -> list[Shape | None]:
    x, sizes, axis_c = _in(g, op, 0), _const(g, op, 1), _const(g, op, 2)
    if sizes is None or axis_c is None:
        return [None] * len(op.outputs)
    axis = _axis(op, axis_c[0], len(x))
    if sizes.count(-1) == 1:
        sizes[sizes.index(-1)] = x[axis] - (sum(sizes) + 1)
    if len(sizes) != len(op.outputs) or sum(sizes) != x[axis] or any(s < 0 for s in sizes):
        raise _fail(op, f"splits dimension {axis} of {list(x)} into sizes {sizes}")
    return [tuple(s if i == axis else d for i, d in enumerate(x)) for s in sizes]


def _gather(g: SGraph, op: SOperator) -> list[Shape | None]:
    x, idx = _in(g, op, 0), _in(g, op, 1)
    if _opt(op, "BatchDims"):
        return [None]
    axis = _axis(op, _opt(op, "Axis"), len(x))
    return [(*x[:axis], *idx, *x[axis + 1 :])]


def _arg(g: SGraph, op: SOperator) -> list[Shape | None]:
    x, axis_c = _in(g, op, 0), _const(g, op, 1)
    if axis_c is None:
        return [None]
    axis = _axis(op, axis_c[0], len(x))
    return [(*x[:axis], *x[axis + 1 :])]


def _slice(g: SGraph, op: SOperator) -> list[Shape | None]:
    x, begin, size = _in(g, op, 0), _const(g, op, 1), _const(g, op, 2)
    if begin is None or size is None:
        return [None]
    if len(begin) != len(x) or len(size) != len(x):
        raise _fail(op, f"has begin {begin} and size {size} for a rank-{len(x)} input")
    out = tuple(d - b if s == -1 else s for d, b, s in zip(x, begin, size, strict=True))
    if any(b < 0 or o <= 0 or b + o > d for d, b, o in zip(x, begin, out, strict=True)):
        raise _fail(op, f"slices begin {begin} size {size} out of an input of shape {list(x)}")
    return [out]


def _resize(g: SGraph, op: SOperator) -> list[Shape | None]:
    x, size = _in(g, op, 0, 4), _const(g, op, 1)
    if size is None:
        return [None]
    if len(size) != 2 or min(size) <= 0:
        raise _fail(op, f"has output size {size}")
    return [(x[0], size[0], size[1], x[3])]


def _space_to_depth(g: SGraph, op: SOperator) -> list[Shape | None]:
    x, bs = _in(g, op, 0, 4), _opt(op, "BlockSize")
    if bs <= 0 or x[1] % bs or x[2] % bs:
        raise _fail(op, f"has block size {bs} for input {list(x)}")
    return [(x[0], x[1] // bs, x[2] // bs, x[3] * bs * bs)]


def _depth_to_space(g: SGraph, op: SOperator) -> list[Shape | None]:
    x, bs = _in(g, op, 0, 4), _opt(op, "BlockSize")
    if bs <= 0 or x[3] % (bs * bs):
        raise _fail(op, f"has block size {bs} for input {list(x)}")
    return [(x[0], x[1] * bs, x[2] * bs, x[3] // (bs * bs))]


def _transpose_conv(g: SGraph, op: SOperator) -> list[Shape | None]:
    out, w, x = _const(g, op, 0), _in(g, op, 1, 4), _in(g, op, 2, 4)
    if w[3] != x[3]:
        raise _fail(op, f"has filter {list(w)} for {x[3]} input channels")
    _bias(g, op, 3, w[0])
    if out is None:
        return [None]
    if len(out) != 4 or out[3] != w[0] or out[0] != x[0]:
        raise _fail(op, f"has output_shape {out} for input {list(x)} and filter {list(w)}")
    return [tuple(out)]


def _space_to_batch(g: SGraph, op: SOperator) -> list[Shape | None]:
    x, block, pads = _in(g, op, 0), _const(g, op, 1), _const(g, op, 2)
    if block is None or pads is None or len(x) != 4:  # TFLite also takes rank 3: left unchecked
        return [None]
    if len(block) != 2 or len(pads) != 4 or min(block) <= 0 or min(pads) < 0:
        raise _fail(op, f"has block {block} and paddings {pads}")
    h, w = x[1] + pads[0] + pads[1], x[2] + pads[2] + pads[3]
    if h % block[0] or w % block[1]:
        raise _fail(op, f"pads {list(x)} to {h}x{w}, not a multiple of block {block}")
    return [(x[0] * block[0] * block[1], h // block[0], w // block[1], x[3])]


def _batch_to_space(g: SGraph, op: SOperator) -> list[Shape | None]:
    x, block, crops = _in(g, op, 0), _const(g, op, 1), _const(g, op, 2)
    if block is None or crops is None or len(x) != 4:  # TFLite also takes rank 3: left unchecked
        return [None]
    bad = len(block) != 2 or len(crops) != 4 or min(block) <= 0 or min(crops) < 0
    if bad or x[0] % (block[0] * block[1]):
        raise _fail(op, f"has block {block} and crops {crops} for input {list(x)}")
    h, w = x[1] * block[0] - crops[0] - crops[1], x[2] * block[1] - crops[2] - crops[3]
    if h <= 0 or w <= 0:
        raise _fail(op, f"crops {crops} leave nothing of {list(x)}")
    return [(x[0] // (block[0] * block[1]), h, w, x[3])]


Rule = Callable[[SGraph, SOperator], list[Shape | None]]
_UNARY = ("RELU", "RELU6", "RELU_N1_TO_1", "RELU_0_TO_1", "LOGISTIC", "TANH", "HARD_SWISH", "LEAKY_RELU",
          "QUANTIZE", "DEQUANTIZE", "SOFTMAX", "LOG_SOFTMAX", "ABS", "NEG", "EXP", "LOG", "SQRT", "RSQRT",
          "SQUARE", "SIN", "COS", "FLOOR", "CEIL", "ROUND", "ELU", "GELU", "L2_NORMALIZATION",
          "LOCAL_RESPONSE_NORMALIZATION", "LOGICAL_NOT", "ZEROS_LIKE", "ONES_LIKE", "CAST")  # fmt: skip
_BINARY = ("ADD", "SUB", "MUL", "DIV", "SQUARED_DIFFERENCE", "MAXIMUM", "MINIMUM", "PRELU", "POW",
           "FLOOR_DIV", "FLOOR_MOD", "LESS", "LESS_EQUAL", "GREATER", "GREATER_EQUAL", "EQUAL", "NOT_EQUAL",
           "LOGICAL_AND", "LOGICAL_OR")  # fmt: skip
# Operators whose output holds exactly the input's elements in another shape.
RESHAPING = ("RESHAPE", "SQUEEZE", "EXPAND_DIMS")

RULES: dict[str, Rule] = {
    "CONV_2D": _conv,
    "DEPTHWISE_CONV_2D": _depthwise,
    "AVERAGE_POOL_2D": _pool,
    "MAX_POOL_2D": _pool,
    "L2_POOL_2D": _pool,
    "FULLY_CONNECTED": _fully_connected,
    "CONCATENATION": _concat,
    "PACK": _pack,
    "UNPACK": _unpack,
    "MEAN": _reduce,
    "SUM": _reduce,
    "REDUCE_MAX": _reduce,
    "REDUCE_MIN": _reduce,
    "REDUCE_PROD": _reduce,
    "PAD": _pad,
    "PADV2": _pad,
    "MIRROR_PAD": _pad,
    "TRANSPOSE": _transpose,
    "SPLIT": _split,
    "SPLIT_V": _split_v,
    "GATHER": _gather,
    "ARG_MAX": _arg,
    "ARG_MIN": _arg,
    "SLICE": _slice,
    "RESIZE_BILINEAR": _resize,
    "RESIZE_NEAREST_NEIGHBOR": _resize,
    "SPACE_TO_DEPTH": _space_to_depth,
    "DEPTH_TO_SPACE": _depth_to_space,
    "TRANSPOSE_CONV": _transpose_conv,
    "SPACE_TO_BATCH_ND": _space_to_batch,
    "BATCH_TO_SPACE_ND": _batch_to_space,
    **{name: _same for name in _UNARY},
    **{name: _broadcast for name in _BINARY},
    **{name: _same_elements for name in RESHAPING},
}


def _describe(g: SGraph, t: int) -> str:
    return f"tensor {t} '{g.tensors[t].name}'"


def check_shapes(g: SGraph) -> None:
    """Raise ShapeError at the first operator whose stored output shape differs from TFLite's."""
    for op in g.operators:
        if not op.outputs:
            raise _fail(op, "has no output")
        if op.name in RESHAPING:
            n_in = int(np.prod(_in(g, op, 0), dtype=np.int64))
            out = op.outputs[0]
            n_out = int(np.prod(g.tensors[out].shape, dtype=np.int64))
            if n_in != n_out:
                raise ShapeError(
                    f"{_describe(g, out)} has shape {list(g.tensors[out].shape)} ({n_out} elements) but "
                    f"{op.name} (operator {op.index}) reshapes {n_in} elements"
                )
            continue
        rule = RULES.get(op.name)
        if rule is None:
            continue
        for t, want in zip(op.outputs, rule(g, op), strict=False):
            have = g.tensors[t].shape
            if want is None or tuple(have) == tuple(want):
                continue
            if len(have) != len(want):
                raise ShapeError(
                    f"{_describe(g, t)} has shape {list(have)} but {op.name} (operator {op.index}) "
                    f"computes {list(want)}"
                )
            i = next(i for i, (a, b) in enumerate(zip(have, want, strict=True)) if a != b)
            raise ShapeError(
                f"{_describe(g, t)} shape[{i}] is {have[i]} but {op.name} (operator {op.index}) computes "
                f"{want[i]} (stored {list(have)}, computed {list(want)})"
            )
