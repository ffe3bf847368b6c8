"""Integer kernels that only move values, as TIR PrimFuncs: PAD, CONCATENATION, TRANSPOSE, STRIDED_SLICE,
RESIZE_NEAREST_NEIGHBOR / RESIZE_BILINEAR, DEPTH_TO_SPACE / SPACE_TO_DEPTH, GATHER, BATCH_TO_SPACE_ND /
SPACE_TO_BATCH_ND and MIRROR_PAD. Any element type: like TFLite Micro's kernels they copy (or, for
bilinear resize, interpolate in integers) without requantising. Shared helpers live in kernels.py.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
from tvm import te, tirx

from tvmc_micro.compiler.quantized.kernels import (
    _finish,
)
from tvmc_micro.compiler.quantized.tir_fixedpoint import PrimExpr


def pad(
    data_shape: tuple[int, ...],
    out_shape: tuple[int, ...],
    before: Sequence[int],
    pad_value: int,
    dtype: str,
    name: str,
) -> tirx.PrimFunc:
    data = te.placeholder(data_shape, dtype, name="data")

    def body(*idx: tirx.Var) -> PrimExpr:
        src = [i - b for i, b in zip(idx, before, strict=True)]
        inside = tirx.all(*[tirx.all(s >= 0, s < d) for s, d in zip(src, data_shape, strict=True)])
        return tirx.if_then_else(inside, data[tuple(src)], tirx.const(pad_value, dtype))

    out = te.compute(out_shape, body, name="out")
    return _finish([data, out], name)


def concatenate(
    shapes: Sequence[tuple[int, ...]], out_shape: tuple[int, ...], axis: int, dtype: str, name: str
) -> tirx.PrimFunc:
    inputs = [te.placeholder(s, dtype, name=f"in{i}") for i, s in enumerate(shapes)]
    offsets = np.cumsum([0] + [s[axis] for s in shapes])

    def body(*idx: tirx.Var) -> PrimExpr:
        result: PrimExpr = tirx.const(0, dtype)
        for k in range(len(inputs) - 1, -1, -1):
            src = list(idx)
            src[axis] = idx[axis] - int(offsets[k])
            # Clamp so every branch's (unselected) load stays in bounds for the C backend.
            src[axis] = tirx.max(tirx.min(src[axis], shapes[k][axis] - 1), 0)
            value = inputs[k][tuple(src)]
            result = (
                value if k == len(inputs) - 1 else tirx.Select(idx[axis] < int(offsets[k + 1]), value, result)
            )
        return result

    out = te.compute(out_shape, body, name="out")
    return _finish([*inputs, out], name)


def transpose(shape: tuple[int, ...], perm: Sequence[int], dtype: str, name: str) -> tirx.PrimFunc:
    """TRANSPOSE: output dimension i is input dimension perm[i]."""
    data = te.placeholder(shape, dtype, name="data")
    out_shape = tuple(shape[p] for p in perm)

    def body(*idx: tirx.Var) -> PrimExpr:
        src: list[PrimExpr] = [tirx.const(0, "int32")] * len(shape)
        for i, p in enumerate(perm):
            src[p] = idx[i]
        return data[tuple(src)]

    out = te.compute(out_shape, body, name="out")
    return _finish([data, out], name)


def strided_slice(
    shape: tuple[int, ...],
    begin: Sequence[int],
    strides: Sequence[int],
    out_shape: tuple[int, ...],
    dtype: str,
    name: str,
) -> tirx.PrimFunc:
    """out[i] = in[begin + i * stride] per dimension (STRIDED_SLICE, SLICE, SPLIT, UNPACK); `out_shape`
    has the input's rank (shrunk axes are extent 1 here, the caller reshapes)."""
    data = te.placeholder(shape, dtype, name="data")

    def body(*idx: tirx.Var) -> PrimExpr:
        src = []
        for i, b, s, n in zip(idx, begin, strides, out_shape, strict=True):
            src.append(tirx.const(int(b), "int32") if n == 1 else i * int(s) + int(b))
        return data[tuple(src)]

    out = te.compute(out_shape, body, name="out")
    return _finish([data, out], name)


def is_integer_ratio(values: Sequence[int], in_size: int) -> bool:
    """True when source index i is i * in_size // len(values) for all i (no table needed)."""
    return all(v == (i * in_size) // len(values) for i, v in enumerate(values))


def resize_nearest(
    data_shape: tuple[int, ...],
    out_shape: tuple[int, ...],
    rows: Sequence[int],
    cols: Sequence[int],
    name: str,
) -> tirx.PrimFunc:
    """RESIZE_NEAREST_NEIGHBOR (NHWC): out[n, y, x, c] = in[n, rows[y], cols[x], c].

    The source row/column of every output row/column is computed at import time (it depends only on the
    sizes and flags); a mapping that is a plain integer ratio (`is_integer_ratio`) is an index expression,
    any other one a small int32 table argument (rows table, then columns table, before the output)."""
    data = te.placeholder(data_shape, "int8", name="data")
    args = [data]

    def source(values: Sequence[int], in_size: int, tname: str) -> Callable[[PrimExpr], PrimExpr]:
        if is_integer_ratio(values, in_size):
            return lambda i: tirx.floordiv(i * in_size, len(values))
        table = te.placeholder((len(values),), "int32", name=tname)
        args.append(table)
        return lambda i: table[i]

    row_of = source(rows, data_shape[1], "rows")
    col_of = source(cols, data_shape[2], "cols")
    out = te.compute(out_shape, lambda n, y, x, c: data[n, row_of(y), col_of(x), c], name="out")
    return _finish([*args, out], name)


def depth_to_space(shape: tuple[int, ...], block: int, dtype: str, name: str) -> tirx.PrimFunc:
    """DEPTH_TO_SPACE (NHWC, TFLite's DCR order):
    out[b, y, x, c] = in[b, y / s, x / s, ((y % s) s + x % s) C + c]."""
    n, h, w, c = shape
    oc = c // (block * block)
    data = te.placeholder(shape, dtype, name="data")
    out = te.compute(
        (n, h * block, w * block, oc),
        lambda b, y, x, k: data[b, y // block, x // block, ((y % block) * block + x % block) * oc + k],
        name="out",
    )
    return _finish([data, out], name)


def space_to_depth(shape: tuple[int, ...], block: int, dtype: str, name: str) -> tirx.PrimFunc:
    """SPACE_TO_DEPTH (NHWC): out[b, y, x, (dy s + dx) C + c] = in[b, y s + dy, x s + dx, c]."""
    n, h, w, c = shape
    data = te.placeholder(shape, dtype, name="data")

    def body(b: tirx.Var, y: tirx.Var, x: tirx.Var, k: tirx.Var) -> PrimExpr:
        sub, ch = k // c, k % c
        return data[b, y * block + sub // block, x * block + sub % block, ch]

    out = te.compute((n, h // block, w // block, c * block * block), body, name="out")
    return _finish([data, out], name)


def gather(data_shape: tuple[int, ...], axis: int, count: int, dtype: str, name: str) -> tirx.PrimFunc:
    """GATHER with constant indices, flattened to `count` entries of an int32 table argument (checked
    in range at import): out[pre, k, post] = data[pre, table[k], post]; the caller reshapes to the
    indices' shape."""
    data = te.placeholder(data_shape, dtype, name="data")
    table = te.placeholder((count,), "int32", name="indices")
    out_shape = (*data_shape[:axis], count, *data_shape[axis + 1 :])

    def body(*idx: tirx.Var) -> PrimExpr:
        src = list(idx)
        src[axis] = table[idx[axis]]
        return data[tuple(src)]

    return _finish([data, table, te.compute(out_shape, body, name="out")], name)


def batch_to_space(
    in_shape: tuple[int, int, int, int],
    out_shape: tuple[int, int, int, int],
    block: tuple[int, int],
    crop: tuple[int, int],
    dtype: str,
    name: str,
) -> tirx.PrimFunc:
    """BATCH_TO_SPACE_ND (NHWC, 3-D inputs extended to N, H, 1, C by the caller): output pixel (b, y, x)
    is input batch ((Y % bh) bw + X % bw) B + b at (Y / bh, X / bw), where (Y, X) = (y + crop top,
    x + crop left)."""
    bh, bw = block
    batches = out_shape[0]
    data = te.placeholder(in_shape, dtype, name="data")

    def body(b: tirx.Var, y: tirx.Var, x: tirx.Var, c: tirx.Var) -> PrimExpr:
        yy, xx = y + crop[0], x + crop[1]
        src_batch = ((yy % bh) * bw + xx % bw) * batches + b
        return data[src_batch, yy // bh, xx // bw, c]

    return _finish([data, te.compute(out_shape, body, name="out")], name)


def space_to_batch(
    in_shape: tuple[int, int, int, int],
    out_shape: tuple[int, int, int, int],
    block: tuple[int, int],
    pad: tuple[int, int],
    pad_value: int,
    dtype: str,
    name: str,
) -> tirx.PrimFunc:
    """SPACE_TO_BATCH_ND (NHWC, 3-D extended to N, H, 1, C): output batch ob reads input batch ob % B at
    row y bh + (ob / B) / bw - pad top and column x bw + (ob / B) % bw - pad left; outside the input it
    holds `pad_value`: the output zero point, as LiteRT fills it (TFLite Micro's reference kernel fills an
    `output_offset` its Prepare never sets)."""
    bh, bw = block
    _, h, w, _ = in_shape
    batches = in_shape[0]
    data = te.placeholder(in_shape, dtype, name="data")

    def body(ob: tirx.Var, y: tirx.Var, x: tirx.Var, c: tirx.Var) -> PrimExpr:
        shift = ob // batches
        iy = y * bh + shift // bw - pad[0]
        ix = x * bw + shift % bw - pad[1]
        inside = tirx.all(iy >= 0, iy < h, ix >= 0, ix < w)
        return tirx.if_then_else(inside, data[ob % batches, iy, ix, c], tirx.const(pad_value, dtype))

    return _finish([data, te.compute(out_shape, body, name="out")], name)


def mirror_pad(
    shape: tuple[int, ...], pads: Sequence[tuple[int, int]], offset: int, dtype: str, name: str
) -> tirx.PrimFunc:
    """MIRROR_PAD (offset 1: REFLECT, the edge not repeated; 0: SYMMETRIC): per axis, output index o reads
    L + offset - 1 - o before the data (L the leading pad), o - L inside, and n - 1 - offset - (o - L - n)
    after it (n the axis size); the import checks the pads are within TFLite's limits."""
    out_shape = tuple(n + a + b for n, (a, b) in zip(shape, pads, strict=True))
    data = te.placeholder(shape, dtype, name="data")

    def source(o: PrimExpr, n: int, lead: int) -> PrimExpr:
        inner = o - lead
        before = tirx.const(lead + offset - 1, "int32") - o
        after = tirx.const(2 * n - 1 - offset, "int32") - inner
        return tirx.Select(inner < 0, before, tirx.Select(inner >= n, after, inner))

    def body(*idx: tirx.Var) -> PrimExpr:
        src = [
            o if a == 0 and b == 0 else source(o, n, a) for o, n, (a, b) in zip(idx, shape, pads, strict=True)
        ]
        return data[tuple(src)]

    return _finish([data, te.compute(out_shape, body, name="out")], name)


def resize_bilinear(
    data_shape: tuple[int, ...],
    out_shape: tuple[int, ...],
    scale_10: tuple[int, int],
    half_pixel: bool,
    name: str,
) -> tirx.PrimFunc:
    """RESIZE_BILINEAR int8 as TFLM's ResizeBilinearInteger: source coordinates in 1/1024 units
    (value * scale_10, or value * scale_10 + scale_10 / 2 - 512 with half-pixel centres), the four
    neighbours weighted by their 10-bit distances, the 2^20-scaled sum rounded half away from zero
    (TFLM's default double-rounding build) and truncated. Every term fits int32: |weight| <= 2048 per
    axis, |value| <= 128."""
    _, in_h, in_w, _ = data_shape
    data = te.placeholder(data_shape, "int8", name="data")
    one = tirx.const(1 << 10, "int32")

    def coords(o: PrimExpr, scale: int, size: int) -> tuple[PrimExpr, PrimExpr, PrimExpr]:
        v = o * scale + (scale // 2 - (1 << 9) if half_pixel else 0)
        lo = tirx.max(tirx.truncdiv(v, one), 0)
        hi = tirx.min(tirx.truncdiv(v + (1 << 10) - 1, one), size - 1)
        return lo, hi, v - lo * one

    def body(n: tirx.Var, y: tirx.Var, x: tirx.Var, c: tirx.Var) -> PrimExpr:
        y0, y1, dy = coords(y, scale_10[0], in_h)
        x0, x1, dx = coords(x, scale_10[1], in_w)

        def px(yy: PrimExpr, xx: PrimExpr) -> PrimExpr:
            return data[n, yy, xx, c].astype("int32")

        total = (
            px(y0, x0) * (one - dy) * (one - dx)
            + px(y1, x0) * dy * (one - dx)
            + px(y0, x1) * (one - dy) * dx
            + px(y1, x1) * dy * dx
        )
        rounded = tirx.Select(total > 0, total + (1 << 19), total - (1 << 19))
        return tirx.truncdiv(rounded, tirx.const(1 << 20, "int32")).astype("int8")

    return _finish([data, te.compute(out_shape, body, name="out")], name)
