"""Converters of the operators that move, select or rearrange int8/int16 values (reshapes, pads,
concatenation, transposes, slices, splits, packs, gathers, space/batch/depth rearrangements, resizes) and
MEAN: copies or views of the stored integers, requantised only where input and output quantisation
differ."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
from tvm import relax

from tvmc_micro.compiler.quantized import fixedpoint as fp
from tvmc_micro.compiler.quantized import kernels_moves, kernels_reduce
from tvmc_micro.compiler.quantized.graph import QGraph, QOperator
from tvmc_micro.compiler.quantized.lowering_base import (
    _NUMPY_DTYPE,
    Converter,
    Lowerer,
    _activation,
    _check_int8_only,
    _check_moves,
    _const_ints,
    _is_int8_per_tensor,
    _same_quantization,
)
from tvmc_micro.compiler.quantized.requant import Requant

# --- data movement ---------------------------------------------------------------------------------


def _lower_reshape(lw: Lowerer, op: QOperator) -> None:
    lw.define(op.outputs[0], lw.reshape(lw.value(op.inputs[0]), lw.t(op.outputs[0]).shape))


def _check_reshape(g: QGraph, op: QOperator) -> str | None:
    inp, out = g.tensors[op.inputs[0]], g.tensors[op.outputs[0]]
    if inp.dtype != out.dtype:
        return f"changes the type from {inp.dtype.lower()} to {out.dtype.lower()}"
    if int(np.prod(inp.shape)) != int(np.prod(out.shape)):
        return "element counts of input and output differ"
    if inp.is_quantized and not _same_quantization(inp, out):
        return "input and output quantization differ"
    return None


def _pad_amounts(g: QGraph, op: QOperator) -> np.ndarray:
    pads = g.tensors[op.inputs[1]].data
    assert pads is not None
    return np.asarray(pads, dtype=np.int64).reshape(-1, 2)


def _lower_pad(lw: Lowerer, op: QOperator) -> None:
    inp, out = lw.t(op.inputs[0]), lw.t(op.outputs[0])
    pads = _pad_amounts(lw.graph, op)
    value = out.zero_point
    if len(op.inputs) > 2 and op.inputs[2] >= 0:
        cv = lw.t(op.inputs[2]).data
        assert cv is not None
        value = int(np.asarray(cv).reshape(-1)[0])
    func = kernels_moves.pad(inp.shape, out.shape, [int(p) for p in pads[:, 0]], value, "int8", "pad")
    lw.define(op.outputs[0], lw.call(func, "pad", [lw.value(op.inputs[0])], out))


def _check_pad(g: QGraph, op: QOperator) -> str | None:
    inp, out = g.tensors[op.inputs[0]], g.tensors[op.outputs[0]]
    if not _is_int8_per_tensor(inp) or not _same_quantization(inp, out):
        return "needs int8 per-tensor input with the output's quantization"
    if g.tensors[op.inputs[1]].data is None:
        return "paddings are computed at run time; only constant paddings are supported"
    if len(op.inputs) > 2 and op.inputs[2] >= 0 and g.tensors[op.inputs[2]].data is None:
        return "the pad value is computed at run time"
    pads = _pad_amounts(g, op)
    if pads.shape[0] != len(inp.shape) or np.any(pads < 0):
        return "paddings must be non-negative, one pair per input dimension"
    return None


def _lower_concat(lw: Lowerer, op: QOperator) -> None:
    out = lw.t(op.outputs[0])
    axis = int(op.options.get("Axis", 0)) % len(out.shape)
    shapes = [lw.t(i).shape for i in op.inputs]
    func = kernels_moves.concatenate(shapes, out.shape, axis, "int8", "concatenation")
    lw.define(op.outputs[0], lw.call(func, "concatenation", [lw.value(i) for i in op.inputs], out))


def _check_concat(g: QGraph, op: QOperator) -> str | None:
    out = g.tensors[op.outputs[0]]
    if not _is_int8_per_tensor(out):
        return f"output is {out.describe_quantization()}, needs int8 per-tensor"
    for i in op.inputs:
        if not _same_quantization(g.tensors[i], out):
            return (
                f"input {g.tensors[i].name!r} is {g.tensors[i].describe_quantization()}; int8 CONCATENATION "
                "needs every input quantized like the output (TFLite Micro requires it)"
            )
    if _activation(op) != "NONE":
        return f"fused activation {_activation(op)} on CONCATENATION is not supported"
    return None


def _lower_mean(lw: Lowerer, op: QOperator) -> None:
    inp, out = lw.t(op.inputs[0]), lw.t(op.outputs[0])
    axes_data = lw.t(op.inputs[1]).data
    assert axes_data is not None
    axes = sorted(set(int(a) % len(inp.shape) for a in np.asarray(axes_data).reshape(-1)))
    count = int(np.prod([inp.shape[a] for a in axes]))
    m, s = fp.mean_multiplier(inp.scale, out.scale, count)
    rq = Requant(np.array([m], np.int32), np.array([s], np.int32))
    func = kernels_reduce.mean(inp.shape, axes, inp.zero_point, out.zero_point, rq, "mean")
    lw.define_reduction(op, func, "mean", axes)


def _check_mean(g: QGraph, op: QOperator) -> str | None:
    inp, out = g.tensors[op.inputs[0]], g.tensors[op.outputs[0]]
    if not _is_int8_per_tensor(inp) or not _is_int8_per_tensor(out):
        return "needs int8 per-tensor input and output"
    if g.tensors[op.inputs[1]].data is None:
        return "the reduction axes are computed at run time"
    return None


# --- more data movement: TRANSPOSE, slices, splits, packs (copies, or views where the bytes agree) -----


def _is_view(shape: Sequence[int], perm: Sequence[int]) -> bool:
    """True when a permutation only moves size-1 dimensions: the bytes stay in order, a reshape does it."""
    moved = [p for p in perm if shape[p] != 1]
    return moved == sorted(moved)


def _lower_transpose(lw: Lowerer, op: QOperator) -> None:
    inp, out = lw.t(op.inputs[0]), lw.t(op.outputs[0])
    perm = _const_ints(lw.graph, op.inputs[1])
    assert perm is not None
    if _is_view(inp.shape, perm):
        lw.define(op.outputs[0], lw.reshape(lw.value(op.inputs[0]), out.shape))
        return
    func = kernels_moves.transpose(inp.shape, perm, _NUMPY_DTYPE[inp.dtype], "transpose")
    lw.define(op.outputs[0], lw.call(func, "transpose", [lw.value(op.inputs[0])], out))


def _check_transpose(g: QGraph, op: QOperator) -> str | None:
    problem = _check_moves(g, op, op.inputs[:1], "TRANSPOSE")
    if problem:
        return problem
    inp, out = g.tensors[op.inputs[0]], g.tensors[op.outputs[0]]
    perm = _const_ints(g, op.inputs[1])
    if perm is None:
        return "the permutation is computed at run time; TFLite Micro needs a constant one"
    if not 1 <= len(inp.shape) <= 5:
        return f"input has rank {len(inp.shape)}; TFLite Micro's TRANSPOSE supports ranks 1 to 5"
    if sorted(perm) != list(range(len(inp.shape))):
        return f"permutation {perm} is not a permutation of the input's {len(inp.shape)} dimensions"
    if tuple(inp.shape[p] for p in perm) != tuple(out.shape):
        return f"output shape {list(out.shape)} does not match the permuted input shape"
    return None


def _emit_slice(
    lw: Lowerer,
    src: int,
    dst: int,
    begin: Sequence[int],
    strides: Sequence[int],
    kept: tuple[int, ...],
    kind: str,
) -> None:
    """Output `dst` = input `src` at begin + i * stride (`kept`: the slice's shape at the input's rank).

    A slice that keeps every element is a reshape view; otherwise one copy kernel (the arena has no
    views at an offset), reshaped to the output's shape (shrunk or unpacked axes dropped)."""
    inp, out = lw.t(src), lw.t(dst)
    if tuple(kept) == tuple(inp.shape) and all(b == 0 for b in begin) and all(s == 1 for s in strides):
        lw.define(dst, lw.reshape(lw.value(src), out.shape))
        return
    func = kernels_moves.strided_slice(inp.shape, begin, strides, kept, _NUMPY_DTYPE[inp.dtype], kind)
    result = lw.call(func, kind, [lw.value(src)], out, kept)
    if tuple(out.shape) != tuple(kept):
        result = lw.reshape(result, out.shape)
    lw.define(dst, result)


def _clamp(v: int, lo: int, hi: int) -> int:
    return hi if v > hi else lo if v < lo else v


def _strided_slice_plan(g: QGraph, op: QOperator) -> tuple[list[int], list[int], tuple[int, ...]]:
    """begin, strides and per-axis counts as TFLM's reference StridedSlice iterates them
    (StridedSliceStartForAxis / StridedSliceEndForAxis; TFLM never sets `offset`)."""
    shape = g.tensors[op.inputs[0]].shape
    starts, stops, strides = (_const_ints(g, i) or [] for i in op.inputs[1:4])
    o = op.options
    begin_mask, end_mask = int(o.get("BeginMask", 0)), int(o.get("EndMask", 0))
    shrink = int(o.get("ShrinkAxisMask", 0))
    begins, counts = [], []
    for axis, size in enumerate(shape):
        stride = strides[axis]
        start = starts[axis] + (size if starts[axis] < 0 else 0)
        start = _clamp(start, 0, size) if stride > 0 else _clamp(start, -1, size - 1)
        if begin_mask & (1 << axis):
            start = 0 if stride > 0 else size - 1
        if shrink & (1 << axis):
            end = start if start >= size else start + 1
        else:
            end = stops[axis] + (size if stops[axis] < 0 else 0)
            end = _clamp(end, 0, size) if stride > 0 else _clamp(end, -1, size - 1)
            if end_mask & (1 << axis):
                end = size if stride > 0 else -1
        n = -(-(end - start) // stride) if stride > 0 else -(-(start - end) // -stride)
        begins.append(start)
        counts.append(max(n, 0))
    return begins, strides, tuple(counts)


def _lower_strided_slice(lw: Lowerer, op: QOperator) -> None:
    begins, strides, counts = _strided_slice_plan(lw.graph, op)
    _emit_slice(lw, op.inputs[0], op.outputs[0], begins, strides, counts, "strided_slice")


def _check_strided_slice(g: QGraph, op: QOperator) -> str | None:
    problem = _check_moves(g, op, op.inputs[:1], "STRIDED_SLICE")
    if problem:
        return problem
    inp, out = g.tensors[op.inputs[0]], g.tensors[op.outputs[0]]
    values = [_const_ints(g, i) for i in op.inputs[1:4]]
    if any(v is None for v in values):
        return "begin, end or strides are computed at run time; TFLite Micro needs constants"
    if any(len(v or []) != len(inp.shape) for v in values):
        return f"begin/end/strides need one value per input dimension ({len(inp.shape)})"
    if not 1 <= len(inp.shape) <= 4:
        return f"input has rank {len(inp.shape)}; TFLite Micro's STRIDED_SLICE supports ranks 1 to 4"
    o = op.options
    for mask in ("EllipsisMask", "NewAxisMask"):
        if int(o.get(mask, 0)):
            return f"{mask} is set; TFLite Micro ignores it (re-export without ellipsis/new axes)"
    if bool(o.get("Offset", False)):
        return "offset=True (end relative to begin) is not supported by TFLite Micro"
    if any(s == 0 for s in values[2] or []):
        return "a stride is zero"
    _, _, counts = _strided_slice_plan(g, op)
    shrink = int(o.get("ShrinkAxisMask", 0))
    expected = tuple(c for a, c in enumerate(counts) if not shrink & (1 << a))
    if expected != tuple(out.shape) or 0 in counts:
        return f"the slice has shape {list(expected)} but the output is {list(out.shape)}"
    return None


def _lower_slice(lw: Lowerer, op: QOperator) -> None:
    begin = _const_ints(lw.graph, op.inputs[1])
    assert begin is not None
    out = lw.t(op.outputs[0])
    _emit_slice(lw, op.inputs[0], op.outputs[0], begin, [1] * len(begin), out.shape, "slice")


def _check_slice(g: QGraph, op: QOperator) -> str | None:
    problem = _check_moves(g, op, op.inputs[:1], "SLICE")
    if problem:
        return problem
    inp, out = g.tensors[op.inputs[0]], g.tensors[op.outputs[0]]
    begin, size = _const_ints(g, op.inputs[1]), _const_ints(g, op.inputs[2])
    if begin is None or size is None:
        return "begin or size is computed at run time; only constant slices are supported"
    if not 1 <= len(inp.shape) <= 5 or len(begin) != len(inp.shape) or len(out.shape) != len(inp.shape):
        return f"needs rank 1 to 5 and one begin/size per dimension (input rank {len(inp.shape)})"
    for b, n, d in zip(begin, out.shape, inp.shape, strict=True):
        if b < 0 or b + n > d or n <= 0:
            return (
                f"slice begin {begin} with output shape {list(out.shape)} leaves the input {list(inp.shape)}"
            )
    return None


def _split_axis(g: QGraph, index: int, rank: int) -> int:
    axis = _const_ints(g, index)
    assert axis is not None
    return axis[0] + rank if axis[0] < 0 else axis[0]


def _lower_split_along(lw: Lowerer, op: QOperator, src: int, axis: int, kind: str) -> None:
    """One copy kernel per output (the graph has no tuple values), each a slice along `axis`."""
    inp = lw.t(src)
    offset = 0
    for dst in op.outputs:
        out = lw.t(dst)
        begin = [offset if a == axis else 0 for a in range(len(inp.shape))]
        kept = tuple(out.shape[a] if a == axis else d for a, d in enumerate(inp.shape))
        _emit_slice(lw, src, dst, begin, [1] * len(inp.shape), kept, kind)
        offset += out.shape[axis]


def _check_split_outputs(g: QGraph, op: QOperator, src: int, axis: int, kind: str) -> str | None:
    problem = _check_moves(g, op, [src], kind)
    if problem:
        return problem
    inp = g.tensors[src]
    if not 0 <= axis < len(inp.shape):
        return f"axis {axis} is outside the input's {len(inp.shape)} dimensions"
    total = 0
    for dst in op.outputs:
        out = g.tensors[dst]
        same = len(out.shape) == len(inp.shape) and all(
            o == d for a, (o, d) in enumerate(zip(out.shape, inp.shape, strict=True)) if a != axis
        )
        if not same:
            return f"output shape {list(out.shape)} does not match input {list(inp.shape)} off axis {axis}"
        total += out.shape[axis]
    if total != inp.shape[axis]:
        return f"outputs cover {total} of the {inp.shape[axis]} elements along axis {axis}"
    return None


def _lower_split(lw: Lowerer, op: QOperator) -> None:
    src = op.inputs[1]
    _lower_split_along(lw, op, src, _split_axis(lw.graph, op.inputs[0], len(lw.t(src).shape)), "split")


def _check_split(g: QGraph, op: QOperator) -> str | None:
    if _const_ints(g, op.inputs[0]) is None:
        return "the split axis is computed at run time; TFLite Micro needs a constant"
    src = op.inputs[1]
    return _check_split_outputs(g, op, src, _split_axis(g, op.inputs[0], len(g.tensors[src].shape)), "SPLIT")


def _lower_split_v(lw: Lowerer, op: QOperator) -> None:
    src = op.inputs[0]
    _lower_split_along(lw, op, src, _split_axis(lw.graph, op.inputs[2], len(lw.t(src).shape)), "split_v")


def _check_split_v(g: QGraph, op: QOperator) -> str | None:
    if _const_ints(g, op.inputs[2]) is None:
        return "the split axis is computed at run time; TFLite Micro needs a constant"
    src = op.inputs[0]
    return _check_split_outputs(
        g, op, src, _split_axis(g, op.inputs[2], len(g.tensors[src].shape)), "SPLIT_V"
    )


def _unpack_axis(g: QGraph, op: QOperator) -> int:
    axis = int(op.options.get("Axis", 0))
    rank = len(g.tensors[op.inputs[0]].shape)
    return axis + rank if axis < 0 else axis


def _lower_unpack(lw: Lowerer, op: QOperator) -> None:
    inp = lw.t(op.inputs[0])
    axis = _unpack_axis(lw.graph, op)
    for k, dst in enumerate(op.outputs):
        begin = [k if a == axis else 0 for a in range(len(inp.shape))]
        kept = tuple(1 if a == axis else d for a, d in enumerate(inp.shape))
        _emit_slice(lw, op.inputs[0], dst, begin, [1] * len(inp.shape), kept, "unpack")


def _check_unpack(g: QGraph, op: QOperator) -> str | None:
    problem = _check_moves(g, op, op.inputs[:1], "UNPACK")
    if problem:
        return problem
    inp = g.tensors[op.inputs[0]]
    axis = _unpack_axis(g, op)
    if not 0 <= axis < len(inp.shape):
        return f"axis {op.options.get('Axis')} is outside the input's {len(inp.shape)} dimensions"
    if len(op.outputs) != inp.shape[axis]:
        return f"{len(op.outputs)} outputs for {inp.shape[axis]} elements along axis {axis}"
    want = tuple(d for a, d in enumerate(inp.shape) if a != axis)
    for dst in op.outputs:
        if tuple(g.tensors[dst].shape) != want:
            return f"output shape {list(g.tensors[dst].shape)} should be {list(want)}"
    return None


def _pack_axis(g: QGraph, op: QOperator) -> int:
    axis = int(op.options.get("Axis", 0))
    rank = len(g.tensors[op.outputs[0]].shape)
    return axis + rank if axis < 0 else axis


def _lower_pack(lw: Lowerer, op: QOperator) -> None:
    """PACK is CONCATENATION of the inputs, each viewed with a unit dimension at `axis`."""
    out = lw.t(op.outputs[0])
    axis = _pack_axis(lw.graph, op)
    unit = tuple(1 if a == axis else d for a, d in enumerate(out.shape))
    parts = [lw.reshape(lw.value(i), unit) for i in op.inputs]
    if len(parts) == 1:
        lw.define(op.outputs[0], lw.reshape(parts[0], out.shape))
        return
    func = kernels_moves.concatenate([unit] * len(parts), out.shape, axis, _NUMPY_DTYPE[out.dtype], "pack")
    lw.define(op.outputs[0], lw.call(func, "pack", parts, out))


def _check_pack(g: QGraph, op: QOperator) -> str | None:
    problem = _check_moves(g, op, op.inputs, "PACK")
    if problem:
        return problem
    out = g.tensors[op.outputs[0]]
    axis = _pack_axis(g, op)
    if not 0 <= axis < len(out.shape):
        return f"axis {op.options.get('Axis')} is outside the output's {len(out.shape)} dimensions"
    want = tuple(d for a, d in enumerate(out.shape) if a != axis)
    if out.shape[axis] != len(op.inputs):
        return f"{len(op.inputs)} inputs but the output has {out.shape[axis]} along axis {axis}"
    for i in op.inputs:
        if tuple(g.tensors[i].shape) != want:
            return f"input shape {list(g.tensors[i].shape)} should be {list(want)}"
    return None


def _nearest_sources(in_size: int, out_size: int, align_corners: bool, half_pixel: bool) -> list[int]:
    """GetNearestNeighbor for every output index, in float32 as the C++ computes it."""
    f32 = np.float32
    if align_corners and out_size > 1:
        scale = f32(in_size - 1) / f32(out_size - 1)
    else:
        scale = f32(in_size) / f32(out_size)
    offset = f32(0.5) if half_pixel else f32(0.0)
    result = []
    for i in range(out_size):
        v = (f32(i) + offset) * scale
        src = fp.tflite_round(float(v)) if align_corners else int(np.floor(v))
        src = min(src, in_size - 1)
        result.append(max(src, 0) if half_pixel else src)
    return result


def _lower_resize_nearest(lw: Lowerer, op: QOperator) -> None:
    inp, out = lw.t(op.inputs[0]), lw.t(op.outputs[0])
    align, half = bool(op.options.get("AlignCorners", False)), bool(op.options.get("HalfPixelCenters", False))
    rows = _nearest_sources(inp.shape[1], out.shape[1], align, half)
    cols = _nearest_sources(inp.shape[2], out.shape[2], align, half)
    func = kernels_moves.resize_nearest(inp.shape, out.shape, rows, cols, "resize_nearest")
    args: list[relax.Expr] = [lw.value(op.inputs[0])]
    for values, in_size in ((rows, inp.shape[1]), (cols, inp.shape[2])):
        if not kernels_moves.is_integer_ratio(values, in_size):
            args.append(relax.const(np.asarray(values, np.int32)))
    lw.define(op.outputs[0], lw.call(func, "resize_nearest", args, out))


def _check_resize_nearest(g: QGraph, op: QOperator) -> str | None:
    problem = _check_moves(g, op, op.inputs[:1], "RESIZE_NEAREST_NEIGHBOR")
    if problem:
        return problem
    inp, out = g.tensors[op.inputs[0]], g.tensors[op.outputs[0]]
    if inp.dtype != "INT8":
        return f"input is {inp.describe_quantization()}; only int8 is supported"
    size = _const_ints(g, op.inputs[1])
    if size is None:
        return "the output size is computed at run time; TFLite Micro needs a constant"
    if len(inp.shape) != 4 or len(out.shape) != 4:
        return "needs 4-D NHWC input and output"
    if list(size) != list(out.shape[1:3]) or inp.shape[0] != out.shape[0] or inp.shape[3] != out.shape[3]:
        return f"size {size} does not match the output shape {list(out.shape)}"
    return None


def _lower_space_depth(to_space: bool) -> Callable[[Lowerer, QOperator], None]:
    kind = "depth_to_space" if to_space else "space_to_depth"

    def lower(lw: Lowerer, op: QOperator) -> None:
        inp, out = lw.t(op.inputs[0]), lw.t(op.outputs[0])
        block = int(op.options.get("BlockSize", 1))
        builder = kernels_moves.depth_to_space if to_space else kernels_moves.space_to_depth
        func = builder(inp.shape, block, _NUMPY_DTYPE[inp.dtype], kind)
        lw.define(op.outputs[0], lw.call(func, kind, [lw.value(op.inputs[0])], out))

    return lower


def _check_space_depth(g: QGraph, op: QOperator) -> str | None:
    problem = _check_moves(g, op, op.inputs[:1], op.name) or _check_int8_only(g, op)
    if problem:
        return problem
    inp, out = g.tensors[op.inputs[0]], g.tensors[op.outputs[0]]
    block = int(op.options.get("BlockSize", 0))
    if len(inp.shape) != 4 or block < 1:
        return f"needs 4-D NHWC input and a block size >= 1 (got rank {len(inp.shape)}, block {block})"
    n, h, w, c = inp.shape
    if op.name == "DEPTH_TO_SPACE":
        want = (n, h * block, w * block, c // (block * block)) if c % (block * block) == 0 else None
    else:
        want = (n, h // block, w // block, c * block * block) if h % block == 0 and w % block == 0 else None
    if want is None or tuple(out.shape) != want:
        return f"input {list(inp.shape)} with block size {block} does not give the output {list(out.shape)}"
    return None


# --- GATHER, BATCH_TO_SPACE_ND / SPACE_TO_BATCH_ND, MIRROR_PAD, RESIZE_BILINEAR ---------------------------


def _lower_gather(lw: Lowerer, op: QOperator) -> None:
    inp, out = lw.t(op.inputs[0]), lw.t(op.outputs[0])
    axis = int(op.options.get("Axis", 0)) % len(inp.shape)
    indices = _const_ints(lw.graph, op.inputs[1])
    assert indices is not None
    func = kernels_moves.gather(inp.shape, axis, len(indices), _NUMPY_DTYPE[inp.dtype], "gather")
    args = [lw.value(op.inputs[0]), relax.const(np.asarray(indices, np.int32))]
    flat = (*inp.shape[:axis], len(indices), *inp.shape[axis + 1 :])
    result = lw.call(func, "gather", args, out, flat)
    lw.define(op.outputs[0], result if flat == tuple(out.shape) else lw.reshape(result, out.shape))


def _check_gather(g: QGraph, op: QOperator) -> str | None:
    problem = _check_moves(g, op, op.inputs[:1], "GATHER") or _check_int8_only(g, op)
    if problem:
        return problem
    inp, idx, out = g.tensors[op.inputs[0]], g.tensors[op.inputs[1]], g.tensors[op.outputs[0]]
    indices = _const_ints(g, op.inputs[1])
    if indices is None:
        return "the indices are computed at run time; only constant indices are supported"
    if int(op.options.get("BatchDims", 0)) != 0:
        return f"batch_dims {int(op.options.get('BatchDims', 0))} is not supported (only 0)"
    axis = int(op.options.get("Axis", 0))
    if not -len(inp.shape) <= axis < len(inp.shape):
        return f"axis {axis} is out of range for a rank-{len(inp.shape)} input"
    axis %= len(inp.shape)
    bad = [i for i in indices if not 0 <= i < inp.shape[axis]]
    if bad:  # TFLite Micro fails such a model at run time
        return f"index {bad[0]} is outside [0, {inp.shape[axis]}) on axis {axis}"
    want = (*inp.shape[:axis], *idx.shape, *inp.shape[axis + 1 :])
    if tuple(out.shape) != want:
        return f"output shape {list(out.shape)} does not match {list(want)}"
    return None


def _space_batch_4d(shape: Sequence[int]) -> tuple[int, int, int, int]:
    """TFLM runs 3-D inputs (N, H, C) of the space/batch ops as N, H, 1, C."""
    if len(shape) == 3:
        return (shape[0], shape[1], 1, shape[2])
    n, h, w, c = shape
    return (n, h, w, c)


def _space_batch_params(g: QGraph, op: QOperator) -> tuple[tuple[int, int], tuple[int, int, int, int]]:
    """(block height, width), (pad or crop top, bottom, left, right); width terms 1 / 0 for 3-D inputs."""
    block = _const_ints(g, op.inputs[1]) or []
    amounts = _const_ints(g, op.inputs[2]) or []
    if len(g.tensors[op.inputs[0]].shape) == 3:
        return (block[0], 1), (amounts[0], amounts[1], 0, 0)
    return (block[0], block[1]), (amounts[0], amounts[1], amounts[2], amounts[3])


def _lower_space_batch(to_batch: bool) -> Callable[[Lowerer, QOperator], None]:
    kind = "space_to_batch" if to_batch else "batch_to_space"

    def lower(lw: Lowerer, op: QOperator) -> None:
        inp, out = lw.t(op.inputs[0]), lw.t(op.outputs[0])
        block, (top, _, left, _) = _space_batch_params(lw.graph, op)
        in4, out4 = _space_batch_4d(inp.shape), _space_batch_4d(out.shape)
        dtype = _NUMPY_DTYPE[inp.dtype]
        if to_batch:
            func = kernels_moves.space_to_batch(in4, out4, block, (top, left), out.zero_point, dtype, kind)
        else:
            func = kernels_moves.batch_to_space(in4, out4, block, (top, left), dtype, kind)
        data = lw.value(op.inputs[0])
        if in4 != tuple(inp.shape):
            data = lw.reshape(data, in4)
        result = lw.call(func, kind, [data], out, out4)
        lw.define(op.outputs[0], result if out4 == tuple(out.shape) else lw.reshape(result, out.shape))

    return lower


def _check_space_batch(g: QGraph, op: QOperator) -> str | None:
    problem = _check_moves(g, op, op.inputs[:1], op.name) or _check_int8_only(g, op)
    if problem:
        return problem
    inp, out = g.tensors[op.inputs[0]], g.tensors[op.outputs[0]]
    if len(inp.shape) not in (3, 4) or len(out.shape) != len(inp.shape):
        return f"needs 3-D or 4-D input and output of one rank (got {list(inp.shape)} -> {list(out.shape)})"
    spatial = len(inp.shape) - 2
    block, amounts = _const_ints(g, op.inputs[1]), _const_ints(g, op.inputs[2])
    what = "paddings" if op.name == "SPACE_TO_BATCH_ND" else "crops"
    if block is None or amounts is None:
        return f"the block shape or {what} are computed at run time; only constants are supported"
    if len(block) != spatial or len(amounts) != 2 * spatial or min(block) < 1 or min(amounts) < 0:
        return f"block shape {block} and {what} {amounts} do not fit a rank-{len(inp.shape)} input"
    (bh, bw), (a_top, a_bottom, a_left, a_right) = _space_batch_params(g, op)
    n, h, w, c = _space_batch_4d(inp.shape)
    if op.name == "SPACE_TO_BATCH_ND":
        ph, pw = h + a_top + a_bottom, w + a_left + a_right
        ok = ph % bh == 0 and pw % bw == 0
        want = (n * bh * bw, ph // bh if ok else -1, pw // bw if ok else -1, c)
    else:
        ok = n % (bh * bw) == 0
        want = (n // (bh * bw), h * bh - a_top - a_bottom, w * bw - a_left - a_right, c)
    if not ok or min(want) <= 0 or _space_batch_4d(out.shape) != want:
        got = list(out.shape)
        return f"input {list(inp.shape)} with block {block} and {what} {amounts} does not give {got}"
    return None


def _lower_mirror_pad(lw: Lowerer, op: QOperator) -> None:
    inp, out = lw.t(op.inputs[0]), lw.t(op.outputs[0])
    pads = [(int(a), int(b)) for a, b in _pad_amounts(lw.graph, op)]
    offset = 1 if int(op.options.get("Mode", 0)) == 0 else 0  # REFLECT skips the edge, SYMMETRIC repeats it
    func = kernels_moves.mirror_pad(inp.shape, pads, offset, _NUMPY_DTYPE[inp.dtype], "mirror_pad")
    lw.define(op.outputs[0], lw.call(func, "mirror_pad", [lw.value(op.inputs[0])], out))


def _check_mirror_pad(g: QGraph, op: QOperator) -> str | None:
    problem = _check_moves(g, op, op.inputs[:1], "MIRROR_PAD") or _check_int8_only(g, op)
    if problem:
        return problem
    inp, out = g.tensors[op.inputs[0]], g.tensors[op.outputs[0]]
    if g.tensors[op.inputs[1]].data is None:
        return "paddings are computed at run time; only constant paddings are supported"
    pads = _pad_amounts(g, op)
    if pads.shape[0] != len(inp.shape) or np.any(pads < 0):
        return "paddings must be non-negative, one pair per input dimension"
    reflect = int(op.options.get("Mode", 0)) == 0
    limit = [n - 1 if reflect else n for n in inp.shape]
    for axis, ((a, b), most) in enumerate(zip(pads.tolist(), limit, strict=True)):
        if a > most or b > most:
            mode = "REFLECT" if reflect else "SYMMETRIC"
            size = inp.shape[axis]
            return f"padding ({a}, {b}) on axis {axis} exceeds {most}, the most {mode} allows for size {size}"
    if tuple(out.shape) != tuple(int(n + a + b) for n, (a, b) in zip(inp.shape, pads.tolist(), strict=True)):
        return f"output shape {list(out.shape)} does not match the paddings"
    return None


def _resize_scale_10(in_size: int, out_size: int, align: bool) -> int:
    """TFLM's ResizeBilinearInteger scale in 1/1024 units (rounded integer division)."""
    if align and out_size > 1:
        return ((1 << 10) * (in_size - 1) + (out_size - 1) // 2) // (out_size - 1)
    return ((1 << 10) * in_size + out_size // 2) // out_size


def _lower_resize_bilinear(lw: Lowerer, op: QOperator) -> None:
    inp, out = lw.t(op.inputs[0]), lw.t(op.outputs[0])
    align, half = bool(op.options.get("AlignCorners", False)), bool(op.options.get("HalfPixelCenters", False))
    scale = (
        _resize_scale_10(inp.shape[1], out.shape[1], align),
        _resize_scale_10(inp.shape[2], out.shape[2], align),
    )
    func = kernels_moves.resize_bilinear(inp.shape, out.shape, scale, half, "resize_bilinear")
    lw.define(op.outputs[0], lw.call(func, "resize_bilinear", [lw.value(op.inputs[0])], out))


def _check_resize_bilinear(g: QGraph, op: QOperator) -> str | None:
    problem = _check_moves(g, op, op.inputs[:1], "RESIZE_BILINEAR") or _check_int8_only(g, op)
    if problem:
        return problem
    inp, out = g.tensors[op.inputs[0]], g.tensors[op.outputs[0]]
    size = _const_ints(g, op.inputs[1])
    if size is None:
        return "the output size is computed at run time; TFLite Micro needs a constant"
    if len(inp.shape) != 4 or len(out.shape) != 4:
        return "needs 4-D NHWC input and output"
    if list(size) != list(out.shape[1:3]) or inp.shape[0] != out.shape[0] or inp.shape[3] != out.shape[3]:
        return f"size {size} does not match the output shape {list(out.shape)}"
    if bool(op.options.get("AlignCorners", False)) and bool(op.options.get("HalfPixelCenters", False)):
        return "align_corners and half_pixel_centers together (TFLite Micro refuses them)"
    return None


MOVE_CONVERTERS: dict[str, Converter] = {
    "RESHAPE": Converter(_check_reshape, _lower_reshape),
    "SQUEEZE": Converter(_check_reshape, _lower_reshape),
    "EXPAND_DIMS": Converter(_check_reshape, _lower_reshape),
    "CONCATENATION": Converter(_check_concat, _lower_concat),
    "PAD": Converter(_check_pad, _lower_pad),
    "PADV2": Converter(_check_pad, _lower_pad),
    "MEAN": Converter(_check_mean, _lower_mean),
    "TRANSPOSE": Converter(_check_transpose, _lower_transpose),
    "STRIDED_SLICE": Converter(_check_strided_slice, _lower_strided_slice),
    "SLICE": Converter(_check_slice, _lower_slice),
    "SPLIT": Converter(_check_split, _lower_split),
    "SPLIT_V": Converter(_check_split_v, _lower_split_v),
    "UNPACK": Converter(_check_unpack, _lower_unpack),
    "PACK": Converter(_check_pack, _lower_pack),
    "RESIZE_NEAREST_NEIGHBOR": Converter(_check_resize_nearest, _lower_resize_nearest),
    "DEPTH_TO_SPACE": Converter(_check_space_depth, _lower_space_depth(True)),
    "SPACE_TO_DEPTH": Converter(_check_space_depth, _lower_space_depth(False)),
    "GATHER": Converter(_check_gather, _lower_gather),
    "BATCH_TO_SPACE_ND": Converter(_check_space_batch, _lower_space_batch(False)),
    "SPACE_TO_BATCH_ND": Converter(_check_space_batch, _lower_space_batch(True)),
    "MIRROR_PAD": Converter(_check_mirror_pad, _lower_mirror_pad),
    "RESIZE_BILINEAR": Converter(_check_resize_bilinear, _lower_resize_bilinear),
}
