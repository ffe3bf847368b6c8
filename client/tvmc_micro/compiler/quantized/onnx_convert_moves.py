"""ONNX converters for ops that only move stored values (and ArgMax, which only compares them).

A move keeps its input's quantisation: Reshape, Flatten, Squeeze, Unsqueeze, Transpose, MaxPool,
GlobalMaxPool, Slice, Split, Pad (constant), Resize (nearest), Gather (constant indices) copy int8
storage, so the QLinear form (on the integer tensor) and the QDQ form (between DequantizeLinear and
QuantizeLinear with the same parameters) lower alike. Max commutes with the non-decreasing
DequantizeLinear, so MaxPool and GlobalMaxPool (which quantize_static leaves float, in QDQ and QOperator
models alike) are moves too. A QDQ group whose QuantizeLinear has other parameters moves the stored
values, then requantises them with the table of ORT's float DequantizeLinear -> QuantizeLinear: exact.
Concat (and QLinearConcat) requantises each input that is quantised unlike the output, then copies.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from tvm import relax

from tvmc_micro.compiler.quantized import kernels, kernels_moves, kernels_reduce, onnx_kernels
from tvmc_micro.compiler.quantized.onnx_tables import linear_sources, nearest_sources
from tvmc_micro.compiler.quantized.onnx_values import (
    Deq,
    FloatIn,
    IndexOut,
    Pending,
    QAct,
    QParams,
    Unmappable,
    group_input,
    node_attrs,
    same_quantization,
    window_pads,
)
from tvmc_micro.compiler.quantized.onnx_view import GroupConverter, LowererView, QOperatorConverter

# Ops that only move stored values: the output keeps the input's quantisation (QDQ groups must agree).
MOVE_OPS = (
    "Reshape",
    "Flatten",
    "MaxPool",
    "Transpose",
    "Squeeze",
    "Unsqueeze",
    "Slice",
    "Split",
    "Pad",
    "Resize",
    "Gather",
    "GlobalMaxPool",
)


def move(lw: LowererView, p: Pending, x: QAct, xq: QParams | None = None) -> QAct:
    """An op that only moves (or repeats, or pads with the zero point) stored values: the output has
    the input's quantisation. `xq` is the DequantizeLinear's in the QDQ form (for a float pad value)."""
    op = p.node.op_type
    if op == "Transpose":
        return transpose(lw, p.node, x)
    if op == "MaxPool":
        return max_pool(lw, p.node, x, x.offset)
    if op in ("Reshape", "Flatten", "Squeeze", "Unsqueeze"):
        return reshape(lw, p, x)
    if op in ("Slice", "Split"):
        return slice_(lw, p, x)
    if op == "Pad":
        return pad(lw, p, x, xq)
    if op == "Resize":
        return resize(lw, p, x)
    if op == "GlobalMaxPool":
        return global_max_pool(lw, x)
    return gather(lw, p, x)  # the last of MOVE_OPS


def const_input(p: Pending, index: int, what: str) -> np.ndarray | None:
    if len(p.args) <= index or p.args[index] is None:
        return None
    value = p.args[index]
    if not isinstance(value, np.ndarray):
        raise Unmappable(f"the {p.node.op_type} {what} are not a constant tensor")
    return value


def axes_of(p: Pending, rank: int, attr_name: str = "axes", index: int = 1) -> list[int] | None:
    """An axes list from the attribute (older opsets) or the constant input, made non-negative."""
    a = node_attrs(p.node)
    if attr_name in a:
        values = [int(v) for v in a[attr_name]]
    else:
        const = const_input(p, index, attr_name)
        if const is None:
            return None
        values = [int(v) for v in const.reshape(-1)]
    if rank < 0:  # Unsqueeze: relative to the output rank, input rank - rank_in
        rank = -rank + len(values)
    return [v % rank for v in values]


def slice_(lw: LowererView, p: Pending, x: QAct) -> QAct:
    """Slice (constant starts/ends/axes/steps) and Split (one output per `output_index`)."""
    x = lw.nchw(x)
    rank = len(x.shape)
    begin, steps, out = [0] * rank, [1] * rank, list(x.shape)
    if p.node.op_type == "Slice":
        starts = const_input(p, 1, "starts")
        ends = const_input(p, 2, "ends")
        if starts is None or ends is None:
            raise Unmappable("Slice needs constant starts and ends (opset >= 10)")
        axes = axes_of(p, rank, "axes", 3) or list(range(starts.size))
        step_arr = const_input(p, 4, "steps")
        step_list = [1] * len(axes) if step_arr is None else [int(v) for v in step_arr.reshape(-1)]
        for ax, st, en, sp in zip(axes, starts.reshape(-1), ends.reshape(-1), step_list, strict=True):
            lo, hi, stride = slice(int(st), int(en), sp).indices(x.shape[ax])
            begin[ax], steps[ax], out[ax] = lo, stride, len(range(lo, hi, stride))
    else:
        a = node_attrs(p.node)
        axis = int(a.get("axis", 0)) % rank
        sizes_arr = const_input(p, 1, "split sizes")
        n_out = len(p.node.output)
        if "split" in a:
            sizes = [int(v) for v in a["split"]]
        elif sizes_arr is not None:
            sizes = [int(v) for v in sizes_arr.reshape(-1)]
        else:  # equal parts, the last one smaller (opset 18 num_outputs)
            part = -(-x.shape[axis] // n_out)
            sizes = [min(part, x.shape[axis] - k * part) for k in range(n_out)]
        begin[axis], out[axis] = sum(sizes[: p.output_index]), sizes[p.output_index]
    shape = tuple(out)
    if any(d <= 0 for d in shape):
        raise Unmappable(f"{p.node.op_type} gives an empty tensor {list(shape)}")
    func = kernels_moves.strided_slice(x.shape, begin, steps, shape, "int8", "slice")
    return QAct(lw.call(func, "slice", [x.expr], shape, "int8"), shape, False, x.offset)


def pad(lw: LowererView, p: Pending, x: QAct, xq: QParams | None) -> QAct:
    a = node_attrs(p.node)
    mode = a.get("mode", b"constant")
    mode = mode.decode() if isinstance(mode, bytes) else str(mode)
    if mode != "constant":
        raise Unmappable(f"Pad mode {mode!r} is not supported (only 'constant')")
    x = lw.nchw(x)
    rank = len(x.shape)
    pads_arr = const_input(p, 1, "pads")
    pads = [
        int(v) for v in (a["pads"] if "pads" in a else pads_arr.reshape(-1) if pads_arr is not None else [])
    ]
    axes = axes_of(p, rank, "axes", 3) or list(range(rank))
    if len(pads) != 2 * len(axes) or any(v < 0 for v in pads):
        raise Unmappable(f"Pad pads {pads} are not {2 * len(axes)} non-negative values")
    before, after = [0] * rank, [0] * rank
    for k, ax in enumerate(axes):
        before[ax], after[ax] = pads[k], pads[k + len(axes)]
    arg = p.args[2] if len(p.args) > 2 else None
    if xq is not None:  # QDQ: a real pad value (default 0.0), quantised with the input's parameters
        real = np.float32(0.0)
        if isinstance(arg, Deq) and isinstance(arg.src, np.ndarray):
            real = np.float32(int(arg.src.reshape(-1)[0]) - arg.q.zero_point) * arg.q.scale
        elif isinstance(arg, np.ndarray):
            real = np.float32(arg.reshape(-1)[0])
        elif arg is not None:
            raise Unmappable("the Pad constant value is not a constant")
        raw = int(np.clip(xq.zero_point + int(np.rint(real / xq.scale)), x.offset - 128, x.offset + 127))
    else:  # an integer tensor padded with a raw integer (default 0), as ORT's Pad does
        value = const_input(p, 2, "constant value")
        raw = 0 if value is None else int(value.reshape(-1)[0])
    stored = raw - x.offset
    shape = tuple(d + b + e for d, b, e in zip(x.shape, before, after, strict=True))
    func = kernels_moves.pad(x.shape, shape, before, stored, "int8", "pad")
    return QAct(lw.call(func, "pad", [x.expr], shape, "int8"), shape, False, x.offset)


def _attr_text(p: Pending, key: str, default: str) -> str:
    v = node_attrs(p.node).get(key, default)
    return v.decode() if isinstance(v, bytes) else str(v)


def _resize_geometry(p: Pending, x: QAct) -> tuple[tuple[int, int], tuple[np.float32, np.float32]]:
    """A 4-D Resize's output (H, W) and its float32 scales, from the constant scales or sizes."""
    scales = const_input(p, 2, "scales")
    sizes = const_input(p, 3, "sizes")
    n, c, h, w = x.shape
    if sizes is not None and sizes.size == 4:
        out_hw = (int(sizes[2]), int(sizes[3]))
        scale_hw = (np.float32(out_hw[0]) / np.float32(h), np.float32(out_hw[1]) / np.float32(w))
        if (int(sizes[0]), int(sizes[1])) != (n, c):
            raise Unmappable("Resize may only change H and W")
    elif scales is not None and scales.size == 4:
        if float(scales[0]) != 1.0 or float(scales[1]) != 1.0:
            raise Unmappable("Resize may only change H and W")
        scale_hw = (np.float32(scales[2]), np.float32(scales[3]))
        out_hw = (int(np.floor(h * scale_hw[0])), int(np.floor(w * scale_hw[1])))
    else:
        raise Unmappable("Resize needs constant 4-D scales or sizes")
    return out_hw, scale_hw


def resize(lw: LowererView, p: Pending, x: QAct) -> QAct:
    """Resize, mode 'nearest', on H and W of a 4-D tensor: the source pixel of every output row and
    column computed here in float32 as ORT does (coordinate transformation, then nearest mode).
    (Mode 'linear' computes new values: only its QDQ group is mapped, by resize_linear.)"""
    mode = _attr_text(p, "mode", "nearest")
    if mode != "nearest" or len(x.shape) != 4:
        where = " outside a DequantizeLinear -> Resize -> QuantizeLinear group" if mode == "linear" else ""
        raise Unmappable(f"only 4-D Resize with mode 'nearest' is supported{where} (got {mode!r})")
    n, c, h, w = x.shape
    out_hw, scale_hw = _resize_geometry(p, x)
    transform = _attr_text(p, "coordinate_transformation_mode", "half_pixel")
    nearest = _attr_text(p, "nearest_mode", "round_prefer_floor")
    rows = nearest_sources(out_hw[0], h, scale_hw[0], transform, nearest)
    cols = nearest_sources(out_hw[1], w, scale_hw[1], transform, nearest)
    x = lw.nhwc(x)
    out_phys = (n, out_hw[0], out_hw[1], c)
    func = kernels_moves.resize_nearest(x.physical_shape, out_phys, rows, cols, "resize_nearest")
    args = [x.expr]
    for values, size in ((rows, h), (cols, w)):
        if not kernels_moves.is_integer_ratio(values, size):
            args.append(relax.const(np.array(values, np.int32)))
    out = lw.call(func, "resize_nearest", args, out_phys, "int8")
    return QAct(out, (n, c, *out_hw), True, x.offset)


def resize_linear(lw: LowererView, p: Pending, x: QAct, xq: QParams, yq: QParams) -> QAct:
    """DequantizeLinear -> Resize (mode 'linear', H and W of a 4-D tensor) -> QuantizeLinear: ORT keeps
    the float Resize between the two (no integer kernel), so this computes it in float32 as ORT does,
    with ORT's source indices and distances (onnx_tables.linear_sources), then quantises. (Per-channel
    DequantizeLinear/QuantizeLinear of activations are refused before a group is converted.)"""
    if len(x.shape) != 4:
        raise Unmappable("only 4-D Resize with mode 'linear' is supported")
    for key, allowed in (("antialias", "0"), ("exclude_outside", "0")):
        if _attr_text(p, key, "0") != allowed:
            raise Unmappable(f"Resize {key}={_attr_text(p, key, '0')} is not supported")
    n, c, h, w = x.shape
    out_hw, scale_hw = _resize_geometry(p, x)
    transform = _attr_text(p, "coordinate_transformation_mode", "half_pixel")
    y1, y2, dy1, dy2 = linear_sources(out_hw[0], h, scale_hw[0], transform)
    x1, x2, dx1, dx2 = linear_sources(out_hw[1], w, scale_hw[1], transform)
    x = lw.nhwc(x)
    out_phys = (n, out_hw[0], out_hw[1], c)
    func = onnx_kernels.resize_linear(
        x.physical_shape, out_phys, xq.zero_point - x.offset, yq.zero_point - yq.offset, "resize_linear"
    )
    args = [
        x.expr,
        relax.const(np.array([y1, y2], np.int32)),
        relax.const(np.array([x1, x2], np.int32)),
        relax.const(np.stack([dy1, dy2])),
        relax.const(np.stack([dx1, dx2])),
        relax.const(onnx_kernels.fparams(xq.scale, yq.scale)),
    ]
    out = lw.call(func, "resize_linear", args, out_phys, "int8")
    return QAct(out, (n, c, *out_hw), True, yq.offset)


def gather(lw: LowererView, p: Pending, x: QAct) -> QAct:
    indices = const_input(p, 1, "indices")
    if indices is None:
        raise Unmappable("Gather needs its indices")
    x = lw.nchw(x)
    axis = int(node_attrs(p.node).get("axis", 0)) % len(x.shape)
    flat = indices.astype(np.int64).reshape(-1) % x.shape[axis]
    func = kernels_moves.gather(x.shape, axis, flat.size, "int8", "gather")
    flat_shape = (*x.shape[:axis], flat.size, *x.shape[axis + 1 :])
    out = lw.call(func, "gather", [x.expr, relax.const(flat.astype(np.int32))], flat_shape, "int8")
    shape = (*x.shape[:axis], *indices.shape, *x.shape[axis + 1 :])
    if shape != flat_shape:
        out = lw.bb.emit(relax.op.reshape(out, list(shape)))
    return QAct(out, tuple(int(d) for d in shape), False, x.offset)


def argmax(lw: LowererView, node: Any, x: Any) -> IndexOut:
    """ArgMax of an integer tensor or of its DequantizeLinear (as ORT, which drops that
    DequantizeLinear): int64 indices, exact."""
    if isinstance(x, Deq) and isinstance(x.src, QAct) and x.q.per_tensor and x.q.scale > 0:
        x = x.src  # dequantising keeps the order (and the ties): the indices are the integer ones
    if not isinstance(x, QAct):
        raise Unmappable("ArgMax reads a tensor that is not an integer activation")
    a = node_attrs(node)
    x = lw.nchw(x)
    axis = int(a.get("axis", 0)) % len(x.shape)
    kept = tuple(1 if i == axis else d for i, d in enumerate(x.shape))
    func = onnx_kernels.argmax(x.shape, axis, bool(int(a.get("select_last_index", 0))), "argmax")
    out = lw.call(func, "argmax", [x.expr], kept, "int64")
    if int(a.get("keepdims", 1)):
        return IndexOut(out, kept)
    shape = tuple(d for i, d in enumerate(x.shape) if i != axis)
    return IndexOut(lw.bb.emit(relax.op.reshape(out, list(shape))), shape)


def reshape(lw: LowererView, p: Pending, x: QAct) -> QAct:
    """Reshape, Flatten, Squeeze, Unsqueeze: the ONNX (NCHW) order of the values is kept."""
    rank = len(x.shape)
    if p.node.op_type == "Flatten":
        axis = int(node_attrs(p.node).get("axis", 1)) % max(rank, 1)
        shape: tuple[int, ...] = (int(np.prod(x.shape[:axis])), int(np.prod(x.shape[axis:])))
    elif p.node.op_type == "Squeeze":
        axes = axes_of(p, rank)
        drop = set(axes) if axes is not None else {k for k, d in enumerate(x.shape) if d == 1}
        if any(x.shape[k] != 1 for k in drop):
            raise Unmappable(f"Squeeze of axes {sorted(drop)} that are not 1 in {list(x.shape)}")
        shape = tuple(d for k, d in enumerate(x.shape) if k not in drop)
    elif p.node.op_type == "Unsqueeze":
        axes = axes_of(p, -rank)
        if axes is None:
            raise Unmappable("Unsqueeze needs its axes")
        dims = iter(x.shape)
        shape = tuple(1 if k in axes else next(dims) for k in range(rank + len(axes)))
    else:
        target = p.args[1]
        if not isinstance(target, np.ndarray):
            raise Unmappable("the target shape is computed at run time")
        shape = _resolve_shape(x.shape, [int(d) for d in target.reshape(-1)])
    x = lw.nchw(x)
    return QAct(lw.bb.emit(relax.op.reshape(x.expr, list(shape))), shape, False, x.offset)


def _resolve_shape(shape: tuple[int, ...], target: list[int]) -> tuple[int, ...]:
    """Reshape's target with its 0 (copy the dimension) and -1 (the rest) resolved."""
    out = [shape[k] if d == 0 else d for k, d in enumerate(target)]
    if -1 in out:
        known = int(np.prod([d for d in out if d != -1]))
        out[out.index(-1)] = int(np.prod(shape)) // max(known, 1)
    if int(np.prod(out)) != int(np.prod(shape)):
        raise Unmappable(f"cannot reshape {list(shape)} to {target}")
    return tuple(out)


def transpose(lw: LowererView, node: Any, x: QAct) -> QAct:
    rank = len(x.shape)
    perm = tuple(int(p) for p in node_attrs(node).get("perm", list(range(rank))[::-1]))
    x = lw.nchw(x)
    shape = tuple(x.shape[p] for p in perm)
    # Only unit axes move (the others keep their order): the same bytes, so a reshape.
    if [x.shape[p] for p in perm if x.shape[p] != 1] == [d for d in x.shape if d != 1] and sorted(
        p for p in perm if x.shape[p] != 1
    ) == [p for p in perm if x.shape[p] != 1]:
        return QAct(lw.bb.emit(relax.op.reshape(x.expr, list(shape))), shape, False, x.offset)
    func = kernels_moves.transpose(x.shape, perm, "int8", "transpose")
    return QAct(lw.call(func, "transpose", [x.expr], shape, "int8"), shape, False, x.offset)


def max_pool(lw: LowererView, node: Any, x: QAct, offset: int) -> QAct:
    a = node_attrs(node)
    if len(x.shape) != 4 or int(a.get("ceil_mode", 0)) or len(node.output) > 1:
        raise Unmappable("only 2-D MaxPool with ceil_mode=0 and one output is supported")
    kh, kw = (int(k) for k in a["kernel_shape"])
    strides = tuple(int(s) for s in a.get("strides", [1, 1]))
    dil = tuple(int(d) for d in a.get("dilations", [1, 1]))
    if dil != (1, 1):
        raise Unmappable("dilated MaxPool is not supported")
    n, c, h, w = x.shape
    pads = window_pads(a, (h, w), (kh, kw), strides, (1, 1))
    oh = (h + pads[0] + pads[2] - kh) // strides[0] + 1
    ow = (w + pads[1] + pads[3] - kw) // strides[1] + 1
    x = lw.nhwc(x)
    geo = kernels.ConvGeometry((strides[0], strides[1]), (1, 1), (pads[0], pads[1]))
    # Max is order-preserving, so the int8 storage values pool like the real ones: no requantisation.
    func = kernels.max_pool2d(x.physical_shape, (n, oh, ow, c), (kh, kw), geo, (-128, 127), "max_pool2d")
    out = lw.call(func, "max_pool2d", [x.expr], (n, oh, ow, c), "int8")
    return QAct(out, (n, c, oh, ow), True, offset)


def global_max_pool(lw: LowererView, x: QAct) -> QAct:
    """GlobalMaxPool on the stored values (any layout): the spatial axes reduced to 1."""
    if len(x.shape) < 3:
        raise Unmappable(f"GlobalMaxPool needs an N x C x spatial input (got {list(x.shape)})")
    phys = x.physical_shape
    axes = (1, 2) if x.nhwc and len(phys) == 4 else tuple(range(2, len(phys)))
    out_phys = tuple(1 if i in axes else d for i, d in enumerate(phys))
    func = kernels_reduce.reduce_max_min(phys, axes, True, "int8", "global_max_pool")
    out = lw.call(func, "global_max_pool", [x.expr], out_phys, "int8")
    logical = (*x.shape[:2], *[1] * (len(x.shape) - 2))
    return QAct(out, logical, x.nhwc and len(phys) == 4, x.offset)


def concat(lw: LowererView, parts: list[tuple[QAct, QParams]], yq: QParams, axis: int) -> QAct:
    acts = []
    for act, q in parts:
        if not same_quantization(q, yq):
            act = lw.lut(act, q, yq, lambda v: v, "requantize")
        acts.append(act)
    rank = len(acts[0].shape)
    axis %= rank
    nhwc = rank == 4 and all(a.nhwc for a in acts)
    acts = [lw.nhwc(a) if nhwc else lw.nchw(a) for a in acts]
    phys_axis = {0: 0, 1: 3, 2: 1, 3: 2}[axis] if nhwc else axis
    shapes = [a.physical_shape for a in acts]
    out_phys = list(shapes[0])
    out_phys[phys_axis] = sum(s[phys_axis] for s in shapes)
    func = kernels_moves.concatenate(shapes, tuple(out_phys), phys_axis, "int8", "concatenation")
    out = lw.call(func, "concatenation", [a.expr for a in acts], tuple(out_phys), "int8")
    logical = list(acts[0].shape)
    logical[axis] = sum(a.shape[axis] for a in acts)
    return QAct(out, tuple(logical), nhwc, yq.offset)


# --- QDQ groups -------------------------------------------------------------------------------------


def _move_group(lw: LowererView, p: Pending, out_q: QParams) -> QAct:
    op = p.node.op_type
    x = p.args[0]
    if isinstance(x, Pending):  # a move of a float op's output: quantise that op, then move
        return move(lw, p, lw.lower_group(x, out_q), out_q)
    if isinstance(x, FloatIn):  # a float model input moved before its QuantizeLinear: likewise
        return move(lw, p, lw.quantize_input(x, out_q), out_q)
    xa, xq = group_input(p, 0)
    if op == "Resize" and _attr_text(p, "mode", "nearest") == "linear":
        return resize_linear(lw, p, xa, xq, out_q)
    if same_quantization(xq, out_q):
        return move(lw, p, xa, xq)
    if op == "Pad" or not out_q.per_tensor:  # a requantised pad value is not the float one
        raise Unmappable(f"{op} changes the quantisation ({xq.describe()} -> {out_q.describe()})")
    # Moving values commutes with the monotonic DequantizeLinear -> QuantizeLinear map: move the
    # stored values, then requantise them as ORT's float op and QuantizeLinear do.
    return lw.lut(move(lw, p, xa, xq), xq, out_q, lambda v: v, "requantize")


def _concat_group(lw: LowererView, p: Pending, out_q: QParams) -> QAct:
    parts = [group_input(p, i) for i in range(len(p.args))]
    return concat(lw, parts, out_q, int(node_attrs(p.node).get("axis", 0)))


MOVE_GROUP_CONVERTERS: dict[str, GroupConverter] = {
    **{op: _move_group for op in MOVE_OPS},
    "Concat": _concat_group,
}


# --- QOperator nodes (all parameters are inputs) ------------------------------------------------------


def _qlinear_concat(lw: LowererView, node: Any) -> None:
    i = list(node.input)
    yq = lw.qparams(i[0], i[1])
    parts = []
    for k in range(2, len(i), 3):
        q = lw.qparams(i[k + 1], i[k + 2])
        parts.append((lw.act_input(lw.get(i[k]), q, f"QLinearConcat input {(k - 2) // 3}"), q))
    lw.values[node.output[0]] = concat(lw, parts, yq, int(node_attrs(node).get("axis", 0)))


MOVE_QOPERATOR_CONVERTERS: dict[str, QOperatorConverter] = {
    "QLinearConcat": _qlinear_concat,
}
