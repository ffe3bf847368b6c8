"""float32 kernels for the float islands of integer models (DEQUANTIZE -> float ops -> QUANTIZE), each the
arithmetic of TFLite Micro's float reference kernel in the same order, so results are bit-identical on
the same C library: one float32 operation per step (the generated C is compiled with fp-contract off, so
no fused multiply-add), libm's float functions called by name (`expf`, `logf`, `expm1f`, `tanhf`,
`sqrtf`), std::min/std::max semantics spelled out (a NaN passes through, an infinity clamps to
±FLT_MAX), reductions summed in the reference's order."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
from tvm import te, tirx

from tvmc_micro.compiler.quantized.kernels import _broadcast_index, _finish, _fuse_epilogue
from tvmc_micro.compiler.quantized.tir_fixedpoint import PrimExpr

FLT_MAX = float(np.finfo(np.float32).max)


def f32(v: float) -> PrimExpr:
    return tirx.const(float(np.float32(v)), "float32")


def libm(name: str, x: PrimExpr) -> PrimExpr:
    """A float32 libm function by name: the same call TFLM's std::<fn>(float) makes (never TVM's own
    expansion, e.g. its LLVM tanh formula)."""
    return tirx.call_pure_extern("float32", name, x)


def std_max(x: PrimExpr, lo: PrimExpr) -> PrimExpr:
    """std::max(x, lo): (x < lo) ? lo : x."""
    return tirx.Select(x < lo, lo, x)


def std_min(x: PrimExpr, hi: PrimExpr) -> PrimExpr:
    """std::min(x, hi): (hi < x) ? hi : x."""
    return tirx.Select(hi < x, hi, x)


def activation(x: PrimExpr, act: str) -> PrimExpr:
    """ActivationFunctionWithMinMax with CalculateActivationRange's float bounds (NONE: ±FLT_MAX)."""
    lo, hi = {"NONE": (-FLT_MAX, FLT_MAX), "RELU": (0.0, FLT_MAX), "RELU6": (0.0, 6.0)}.get(act, (-1.0, 1.0))
    return std_min(std_max(x, f32(lo)), f32(hi))


def _logistic(x: PrimExpr) -> PrimExpr:
    """reference_ops::Logistic (float): 1 above 16.619047164916992188, exp(x) below -9, else 1/(1+exp(-x))."""
    middle = f32(1.0) / (f32(1.0) + libm("expf", -x))
    return tirx.Select(
        x > f32(16.619047164916992188), f32(1.0), tirx.Select(x < f32(-9.0), libm("expf", x), middle)
    )


UNARY: dict[str, Callable[[PrimExpr], PrimExpr]] = {
    "ABS": lambda x: libm("fabsf", x),
    "NEG": lambda x: -x,
    "SQUARE": lambda x: x * x,
    "SQRT": lambda x: libm("sqrtf", x),
    "RSQRT": lambda x: f32(1.0) / libm("sqrtf", x),
    "EXP": lambda x: libm("expf", x),
    "LOG": lambda x: libm("logf", x),
    "TANH": lambda x: libm("tanhf", x),
    "LOGISTIC": _logistic,
    "ELU": lambda x: tirx.Select(x < f32(0.0), libm("expm1f", x), x),
}

BINARY: dict[str, Callable[[PrimExpr, PrimExpr], PrimExpr]] = {
    "ADD": lambda a, b: a + b,
    "SUB": lambda a, b: a - b,
    "MUL": lambda a, b: a * b,
    "DIV": lambda a, b: a / b,
}


def unary(shape: tuple[int, ...], kind: str, name: str) -> tirx.PrimFunc:
    data = te.placeholder(shape, "float32", name="data")
    fn = UNARY[kind]
    out = te.compute(shape, lambda *i: fn(data[i]), name="out")
    return _finish([data, out], name)


def binary(
    shape_a: tuple[int, ...],
    shape_b: tuple[int, ...],
    out_shape: tuple[int, ...],
    kind: str,
    act: str,
    name: str,
) -> tirx.PrimFunc:
    """ADD/SUB/MUL/DIV (numpy broadcasting) then the fused activation, as TFLM's float reference kernels."""
    a = te.placeholder(shape_a, "float32", name="a")
    b = te.placeholder(shape_b, "float32", name="b")
    fn = BINARY[kind]

    def body(*idx: tirx.Var) -> PrimExpr:
        va = a[tuple(_broadcast_index(shape_a, out_shape, idx))]
        vb = b[tuple(_broadcast_index(shape_b, out_shape, idx))]
        return activation(fn(va, vb), act)

    out = te.compute(out_shape, body, name="out")
    return _finish([a, b, out], name)


def reduce_sum(data_shape: tuple[int, ...], axes: Sequence[int], mean: bool, name: str) -> tirx.PrimFunc:
    """SUM / MEAN over `axes` (kept as 1): starting from 0, adding the values in the input's row-major
    order (TFLM's Reduce loop), the mean then one float32 division by the count."""
    data = te.placeholder(data_shape, "float32", name="data")
    axes = sorted(set(axes))
    count = int(np.prod([data_shape[a] for a in axes]))
    out_shape = tuple(1 if i in axes else d for i, d in enumerate(data_shape))
    reduce_axes = {a: te.reduce_axis((0, data_shape[a]), name=f"r{a}") for a in axes}

    def acc_body(*idx: tirx.Var) -> PrimExpr:
        src = [reduce_axes[i] if i in reduce_axes else v for i, v in enumerate(idx)]
        return te.sum(data[tuple(src)], axis=[reduce_axes[a] for a in axes])

    acc = te.compute(out_shape, acc_body, name="acc")
    if not mean:
        return _finish([data, acc], name)
    out = te.compute(out_shape, lambda *i: acc[i] / f32(float(count)), name="out")
    return _finish([data, out], name, _fuse_epilogue("acc", "out", len(out_shape)))
