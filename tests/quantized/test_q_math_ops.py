"""int8 ABS, RSQRT, DIV, SUM, BATCH_MATMUL on the integer path, bit-exact with TFLite Micro (exhaustively
where the operator is a function of one or two int8 values, else random inputs over several seeds), and
the int8 operators TFLite Micro does not run (EXP, LOG, GELU) refused by name."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from qharness import Tflm, compile_host
from tflite_builder import ModelBuilder
from tflite_micro.tensorflow.lite.micro.python import schema_py_generated as schema
from tvmc_micro.compiler.quantized import UnsupportedQuantizedModel, import_tflite_quantized

pytestmark = pytest.mark.usefixtures("tvm_available")

SEEDS = (0, 1, 2, 3)
Q = tuple[float, int]


def _model(
    opname: str,
    shapes: list[tuple[int, ...]],
    out_shape: tuple[int, ...],
    qs: list[Q],
    qo: Q,
    options: object = None,
    kind: str | None = None,
    axes: list[int] | None = None,
) -> bytes:
    b = ModelBuilder()
    xs = [
        b.tensor(f"x{i}", list(s), scale=q[0], zero_point=q[1])
        for i, (s, q) in enumerate(zip(shapes, qs, strict=True))
    ]
    consts = [b.const_int32("axes", axes)] if axes is not None else []
    y = b.tensor("y", list(out_shape), scale=qo[0], zero_point=qo[1])
    b.op(opname, xs + consts, [y], options, kind)
    return b.build(xs, [y])


def _same(model: bytes, inputs: list[np.ndarray], arena: int = 0) -> None:
    ours = compile_host(model, "math_ops")
    if arena:
        from tflite_micro.python.tflite_micro import runtime

        interp = runtime.Interpreter.from_bytes(model, arena_size=arena)
        for i, x in enumerate(inputs):
            interp.set_input(x, i)
        interp.invoke()
        ref = [np.array(interp.get_output(0))]
    else:
        ref = Tflm(model)(*inputs)
    got = ours(*inputs)
    for r, o in zip(ref, got, strict=True):
        assert r.dtype == o.dtype and r.shape == o.shape, (r.dtype, o.dtype, r.shape, o.shape)
        if not np.array_equal(r, o):
            diff = int(np.abs(r.astype(np.int64) - o.astype(np.int64)).max())
            raise AssertionError(
                f"{int(np.sum(r != o))} values differ from TFLite Micro, by up to {diff} LSB"
            )


def _random(seed: int, shapes: list[tuple[int, ...]], low: int = -128) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    return [rng.integers(low, 128, size=s).astype(np.int8) for s in shapes]


ALL_INT8 = np.arange(-128, 128).astype(np.int8).reshape(4, 64)


@pytest.mark.parametrize(
    "qi,qo",
    [
        ((0.05, 3), (0.05, 3)),
        ((0.05, 3), (0.03, -20)),
        ((0.0123, -100), (0.0456, -128)),
        ((0.3, 0), (0.001, 5)),
    ],
)
def test_abs_every_value(qi: Q, qo: Q) -> None:
    _same(_model("ABS", [(4, 64)], (4, 64), [qi], qo), [ALL_INT8])


@pytest.mark.parametrize(
    "qi,qo", [((0.05, 3), (0.03, -20)), ((0.0123, -100), (0.02, -128)), ((0.3, 0), (0.5, 0))]
)
def test_rsqrt_every_non_negative_value(qi: Q, qo: Q) -> None:
    """Every value from the zero point up (TFLite Micro stops with an error below it)."""
    values = np.arange(qi[1], 128).astype(np.int8)
    model = _model("RSQRT", [values.shape], values.shape, [qi], qo)
    _same(model, [values])


def _div(shape_a: tuple[int, ...], shape_b: tuple[int, ...], q: list[Q], act: str = "NONE") -> bytes:
    o = schema.DivOptionsT()
    o.fusedActivationFunction = getattr(schema.ActivationFunctionType, act)
    try:
        out = tuple(np.broadcast_shapes(shape_a, shape_b))
    except ValueError:  # for the refusal test
        out = shape_a
    return _model("DIV", [shape_a, shape_b], out, q[:2], q[2], o, "DivOptions")


@pytest.mark.parametrize(
    "q",
    [
        [(0.05, 3), (0.05, -2), (0.05, 1)],
        [(0.1, 0), (0.02, 5), (0.3, -7)],
        [(0.013, -100), (0.07, 30), (0.021, 12)],
    ],
)
def test_div_every_pair(q: list[Q]) -> None:
    """All 65,536 operand pairs, the denominator's zero point included."""
    a = np.repeat(np.arange(-128, 128, dtype=np.int8)[:, None], 256, axis=1)
    _same(_div((256, 256), (256, 256), q), [a, np.ascontiguousarray(a.T)], arena=1 << 20)


@pytest.mark.parametrize(
    "shape_a,shape_b,act",
    [((2, 3, 4), (3, 1), "NONE"), ((1, 5), (4, 1), "RELU"), ((6,), (1, 6), "RELU6")],
)
def test_div_broadcast(shape_a: tuple[int, ...], shape_b: tuple[int, ...], act: str) -> None:
    model = _div(shape_a, shape_b, [(0.08, -4), (0.03, 9), (0.2, -10)], act)
    for seed in SEEDS:
        _same(model, _random(seed, [shape_a, shape_b]))


def _sum(shape: tuple[int, ...], axes: list[int], keep: bool, qi: Q, qo: Q) -> tuple[bytes, tuple[int, ...]]:
    o = schema.ReducerOptionsT()
    o.keepDims = keep
    rank = len(shape)
    kept = [1 if i in [a % rank for a in axes] else d for i, d in enumerate(shape)]
    out = tuple(kept) if keep else tuple(d for i, d in enumerate(shape) if i not in [a % rank for a in axes])
    return _model("SUM", [shape], out, [qi], qo, o, "ReducerOptions", axes), shape


@pytest.mark.parametrize(
    "shape,axes,keep,qi,qo",
    [
        ((2, 3, 4), [1], False, (0.05, 3), (0.3, -7)),
        ((1, 4, 4, 3), [1, 2], True, (0.02, -10), (0.2, 5)),
        ((5, 6), [-1, 0], False, (0.1, 0), (1.5, 0)),
        ((3, 7), [1], True, (0.4, 2), (0.1, -1)),  # output scale below the input's: a left shift
    ],
)
def test_sum(shape: tuple[int, ...], axes: list[int], keep: bool, qi: Q, qo: Q) -> None:
    model, _ = _sum(shape, axes, keep, qi, qo)
    for seed in SEEDS:
        _same(model, _random(seed, [shape]))


def _bmm(lhs: tuple[int, ...], rhs: tuple[int, ...], adj_x: bool, adj_y: bool, q: list[Q]) -> bytes:
    o = schema.BatchMatMulOptionsT()
    o.adjX, o.adjY = adj_x, adj_y
    rows = lhs[-1] if adj_x else lhs[-2]
    cols = rhs[-2] if adj_y else rhs[-1]
    out = (*np.broadcast_shapes(lhs[:-2], rhs[:-2]), rows, cols)
    return _model("BATCH_MATMUL", [lhs, rhs], out, q[:2], q[2], o, "BatchMatMulOptions")


@pytest.mark.parametrize(
    "lhs,rhs,adj_x,adj_y",
    [
        ((2, 3, 4), (2, 4, 5), False, False),
        ((2, 3, 4), (1, 4, 5), False, False),  # broadcast rhs batch
        ((2, 1, 4, 3), (3, 5, 4), True, True),
        ((3, 6), (5, 6), False, True),
        ((1, 2, 2, 5, 3), (2, 1, 5, 4), True, False),
    ],
)
def test_batch_matmul(lhs: tuple[int, ...], rhs: tuple[int, ...], adj_x: bool, adj_y: bool) -> None:
    model = _bmm(lhs, rhs, adj_x, adj_y, [(0.05, 3), (0.04, -3), (0.2, 7)])
    for seed in SEEDS:
        _same(model, _random(seed, [lhs, rhs]))


def test_batch_matmul_constant_rhs() -> None:
    b = ModelBuilder()
    x = b.tensor("x", [2, 3, 6], scale=0.03, zero_point=-8)
    w = b.tensor("w", [6, 4], scale=0.02, zero_point=2, data=_random(9, [(6, 4)])[0])
    y = b.tensor("y", [2, 3, 4], scale=0.1, zero_point=0)
    b.op("BATCH_MATMUL", [x, w], [y], schema.BatchMatMulOptionsT(), "BatchMatMulOptions")
    model = b.build([x], [y])
    for seed in SEEDS:
        _same(model, _random(seed, [(2, 3, 6)]))


# --- refusals -----------------------------------------------------------------------------------------------


def _refused(model: bytes, match: str) -> None:
    with pytest.raises(UnsupportedQuantizedModel, match=match):
        import_tflite_quantized(model, "refused")


@pytest.mark.parametrize("opname", ["EXP", "LOG", "GELU"])
def test_int8_operators_tflm_does_not_run_are_refused(opname: str) -> None:
    model = _model(opname, [(2, 3)], (2, 3), [(0.05, 3)], (0.05, 3))
    reason = "has no GELU kernel" if opname == "GELU" else f"{opname} runs on float32 only"
    _refused(model, rf"#0 {opname}: TFLite Micro('s)? .*{reason}")


def test_refusals() -> None:
    _refused(
        _div((2, 3), (4, 3), [(0.1, 0)] * 3), r"#0 DIV: input shapes \[\[2, 3\], \[4, 3\]\] do not broadcast"
    )
    _refused(_div((4,), (4,), [(1.0, 0), (1e-4, 0), (1e-4, 0)]), r"#0 DIV: .*multiplier above 2\^22")
    _refused(
        _bmm((2, 3, 4), (2, 5, 6), False, False, [(0.1, 0)] * 3),
        r"#0 BATCH_MATMUL: shapes .* do not multiply",
    )
    model, _ = _sum((2, 3), [5], False, (0.1, 0), (0.1, 0))
    _refused(model, r"#0 SUM: axes \[5\] are outside")
    b = ModelBuilder()
    x = b.tensor("x", [4], scale=0.1, zero_point=0)
    y = b.tensor("y", [4], "int16", scale=0.1, zero_point=0)
    b.op("ABS", [x], [y])
    _refused(b.build([x], [y]), r"#0 ABS: output 'y' is int16 .* needs int8 per-tensor")


def test_div_and_batch_matmul_through_c_with_ubsan(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The generated C (every DIV operand pair; a broadcast BATCH_MATMUL) under -fsanitize=undefined."""
    from tvmc_micro.compiler import compile_model

    from tests.compiler import compiler_harness as harness

    monkeypatch.setattr(
        harness, "CFLAGS", [*harness.CFLAGS, "-fsanitize=undefined", "-fno-sanitize-recover=undefined"]
    )
    a = np.repeat(np.arange(-128, 128, dtype=np.int8)[:, None], 256, axis=1)
    cases = [
        (
            "div",
            _div((256, 256), (256, 256), [(0.1, 0), (0.02, 5), (0.3, -7)]),
            [a, np.ascontiguousarray(a.T)],
        ),
        (
            "bmm",
            _bmm((2, 3, 4), (1, 4, 5), False, False, [(0.05, 3), (0.04, -3), (0.2, 7)]),
            _random(7, [(2, 3, 4), (1, 4, 5)]),
        ),
    ]
    from tflite_micro.python.tflite_micro import runtime

    for name, model, inputs in cases:
        (tmp_path / f"{name}.tflite").write_bytes(model)
        compile_model(tmp_path / f"{name}.tflite", tmp_path / f"{name}.tar")
        built = harness.build(harness.extract(tmp_path / f"{name}.tar", tmp_path / name))
        got = built.run([inputs], tmp_path)[0][0]
        interp = runtime.Interpreter.from_bytes(model, arena_size=1 << 20)
        for i, x in enumerate(inputs):
            interp.set_input(x, i)
        interp.invoke()
        assert got.tobytes() == np.array(interp.get_output(0)).reshape(got.shape).tobytes(), name
