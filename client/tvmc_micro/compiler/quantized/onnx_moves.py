"""Lowering of ONNX ops that only move stored values (and ArgMax, which only compares them).

A move keeps its input's quantisation: Slice, Split, Pad (constant), Resize (nearest), Gather (constant
indices) copy int8 storage, so the QLinear form (on the integer tensor) and the QDQ form (between
DequantizeLinear and QuantizeLinear with the same parameters) lower alike. The functions take the
`OnnxLowerer` whose block builder and layout helpers they use.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np
from tvm import relax

from tvmc_micro.compiler.quantized import kernels, onnx_kernels
from tvmc_micro.compiler.quantized.onnx_tables import nearest_sources
from tvmc_micro.compiler.quantized.onnx_values import (
    Deq,
    IndexOut,
    Pending,
    QAct,
    QParams,
    Unmappable,
    node_attrs,
)

if TYPE_CHECKING:
    from tvmc_micro.compiler.quantized.onnx_importer import OnnxLowerer


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


def slice_(lw: OnnxLowerer, p: Pending, x: QAct) -> QAct:
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
    func = kernels.strided_slice(x.shape, begin, steps, shape, "int8", "slice")
    return QAct(lw.call(func, "slice", [x.expr], shape, "int8"), shape, False, x.offset)


def pad(lw: OnnxLowerer, p: Pending, x: QAct, xq: QParams | None) -> QAct:
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
    func = kernels.pad(x.shape, shape, before, stored, "int8", "pad")
    return QAct(lw.call(func, "pad", [x.expr], shape, "int8"), shape, False, x.offset)


def resize(lw: OnnxLowerer, p: Pending, x: QAct) -> QAct:
    """Resize, mode 'nearest', on H and W of a 4-D tensor: the source pixel of every output row and
    column computed here in float32 as ORT does (coordinate transformation, then nearest mode)."""
    a = node_attrs(p.node)

    def text(key: str, default: str) -> str:
        v = a.get(key, default)
        return v.decode() if isinstance(v, bytes) else str(v)

    mode = text("mode", "nearest")
    if mode != "nearest" or len(x.shape) != 4:
        raise Unmappable(f"only 4-D Resize with mode 'nearest' is supported (got {mode!r})")
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
    transform = text("coordinate_transformation_mode", "half_pixel")
    nearest = text("nearest_mode", "round_prefer_floor")
    rows = nearest_sources(out_hw[0], h, scale_hw[0], transform, nearest)
    cols = nearest_sources(out_hw[1], w, scale_hw[1], transform, nearest)
    x = lw.nhwc(x)
    out_phys = (n, out_hw[0], out_hw[1], c)
    func = kernels.resize_nearest(x.physical_shape, out_phys, rows, cols, "resize_nearest")
    args = [x.expr]
    for values, size in ((rows, h), (cols, w)):
        if not kernels.is_integer_ratio(values, size):
            args.append(relax.const(np.array(values, np.int32)))
    out = lw.call(func, "resize_nearest", args, out_phys, "int8")
    return QAct(out, (n, c, *out_hw), True, x.offset)


def gather(lw: OnnxLowerer, p: Pending, x: QAct) -> QAct:
    indices = const_input(p, 1, "indices")
    if indices is None:
        raise Unmappable("Gather needs its indices")
    x = lw.nchw(x)
    axis = int(node_attrs(p.node).get("axis", 0)) % len(x.shape)
    flat = indices.astype(np.int64).reshape(-1) % x.shape[axis]
    func = kernels.gather(x.shape, axis, flat.size, "int8", "gather")
    flat_shape = (*x.shape[:axis], flat.size, *x.shape[axis + 1 :])
    out = lw.call(func, "gather", [x.expr, relax.const(flat.astype(np.int32))], flat_shape, "int8")
    shape = (*x.shape[:axis], *indices.shape, *x.shape[axis + 1 :])
    if shape != flat_shape:
        out = lw.bb.emit(relax.op.reshape(out, list(shape)))
    return QAct(out, tuple(int(d) for d in shape), False, x.offset)


def argmax(lw: OnnxLowerer, node: Any, x: Any) -> IndexOut:
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
