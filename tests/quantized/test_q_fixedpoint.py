"""TFLite's integer arithmetic: the Python definitions, their TIR twins, and the activation tables."""

from __future__ import annotations

import numpy as np
import pytest
from qharness import Tflm
from tvmc_micro.compiler.quantized import fixedpoint as fp

INT32_MIN, INT32_MAX = -(1 << 31), (1 << 31) - 1


def test_quantize_multiplier_matches_tflite_edge_cases() -> None:
    assert fp.quantize_multiplier(0.0) == (0, 0)
    assert fp.quantize_multiplier(0.5) == (1 << 30, 0)
    assert fp.quantize_multiplier(1.0) == (1 << 30, 1)
    # Mantissa rounding up to 2^31 renormalises (TFLite: q_fixed /= 2, ++shift).
    assert fp.quantize_multiplier(1.0 - 2.0**-40) == (1 << 30, 1)
    # Below 2^-31 flushes to zero.
    assert fp.quantize_multiplier(2.0**-40) == (0, 0)
    m, s = fp.quantize_multiplier(0.0787254 * 0.00133184 / 0.0787254)
    assert (1 << 30) <= m < (1 << 31) and s < 0


def test_rounding_is_tflites_double_rounding_not_single() -> None:
    # 1 * 0.25: SRDHM rounds 0.5 up to 1, then RoundingDivideByPOT(1, 1) rounds 0.5 away from zero to 1.
    # A single rounding (tvm.tirx.q_multiply_shift) gives round(0.25) = 0.
    assert fp.multiply_by_quantized_multiplier(1, 1 << 30, -1) == 1
    assert (1 * (1 << 30) + (1 << 31)) >> 32 == 0
    # Ties away from zero in RoundingDivideByPOT, on both signs.
    assert [fp.rounding_divide_by_pot(v, 1) for v in (-3, -1, 1, 3)] == [-2, -1, 1, 2]
    assert fp.saturating_rounding_doubling_high_mul(INT32_MIN, INT32_MIN) == INT32_MAX


def test_tflite_round_is_half_away_from_zero() -> None:
    assert [fp.tflite_round(v) for v in (-2.5, -0.5, 0.5, 1.5, 2.5, 0.49999999999999994)] == [
        -3,
        -1,
        1,
        2,
        3,
        0,
    ]


def _edge_and_random_int32(rng: np.random.Generator, n: int) -> np.ndarray:
    edges = [0, 1, -1, INT32_MAX, INT32_MIN, 1 << 30, -(1 << 30), (1 << 30) - 1, -(1 << 30) - 1, 3, -3, 5, -5]
    small = rng.integers(-5000, 5000, size=n // 2)
    big = rng.integers(INT32_MIN, INT32_MAX, size=n - n // 2 - len(edges), dtype=np.int64)
    return np.concatenate([edges, small, big]).astype(np.int32)


@pytest.mark.usefixtures("tvm_available")
def test_tir_requantisation_equals_python_reference() -> None:
    """The TIR expressions (what every kernel computes) against the Python definitions, bit for bit:
    per-channel (run-time shifts, including 0 and left shifts) and per-tensor (immediates)."""
    import tvm
    from tvm import te
    from tvmc_micro.compiler.quantized import tir_fixedpoint as tfp

    rng = np.random.default_rng(7)
    n = 4000
    x = _edge_and_random_int32(rng, n)
    mult = rng.integers(1 << 30, (1 << 31) - 1, size=n).astype(np.int32)
    shift = rng.integers(-31, 8, size=n).astype(np.int32)
    shift[:40] = 0
    xt = te.placeholder((n,), "int32", name="x")
    mt = te.placeholder((n,), "int32", name="m")
    lt = te.placeholder((n,), "int32", name="l")
    rt = te.placeholder((n,), "int32", name="r")
    out = te.compute(
        (n,), lambda i: tfp.multiply_by_quantized_multiplier(xt[i], mt[i], lt[i], rt[i]), name="o"
    )
    static = te.compute(
        (n,), lambda i: tfp.multiply_by_quantized_multiplier(xt[i], 1518500250, 0, 7), name="s"
    )
    clz = te.compute((n,), lambda i: tfp.count_leading_zeros_u32(xt[i]), name="c")
    func = te.create_prim_func([xt, mt, lt, rt, out, static, clz]).with_attr("global_symbol", "rq")
    lib = tvm.tirx.build(tvm.IRModule({"rq": func}), target="llvm")
    left = np.maximum(shift, 0).astype(np.int32)
    right = np.maximum(-shift, 0).astype(np.int32)
    # Left shifts of large values overflow int32 in TFLite too; keep the shifted inputs in range.
    x_l = np.where(left > 0, (x.astype(np.int64) >> 8).astype(np.int32), x)
    bufs = [tvm.runtime.tensor(a) for a in (x_l, mult, left, right)]
    res = [tvm.runtime.tensor(np.zeros(n, np.int32)) for _ in range(3)]
    lib["rq"](*bufs, *res)
    want = [
        fp.multiply_by_quantized_multiplier(int(a), int(m), int(s))
        for a, m, s in zip(x_l, mult, shift, strict=True)
    ]
    assert res[0].numpy().tolist() == want
    want_static = [fp.multiply_by_quantized_multiplier(int(a), 1518500250, -7) for a in x_l]
    assert res[1].numpy().tolist() == want_static
    assert res[2].numpy().tolist() == [fp.count_leading_zeros32(int(a)) for a in x_l]


def _unary_model(op: str, in_scale: float, in_zp: int, out_q: tuple[float, int]) -> bytes:
    from tflite_builder import ModelBuilder

    b = ModelBuilder()
    i = b.tensor("x", [1, 256], scale=in_scale, zero_point=in_zp)
    o = b.tensor("y", [1, 256], scale=out_q[0], zero_point=out_q[1])
    b.op(op, [i], [o])
    return b.build([i], [o])


@pytest.mark.parametrize(("scale", "zp"), [(0.05, 3), (0.0123, -128), (0.2, 100), (0.5847029, 83), (1.0, 0)])
def test_logistic_and_tanh_tables_equal_tflm_for_every_int8_input(scale: float, zp: int) -> None:
    pytest.importorskip("tflite_micro")
    x = np.arange(-128, 128, dtype=np.int8).reshape(1, 256)
    s = float(np.float32(scale))
    for op, out_q, table in (
        ("LOGISTIC", (1 / 256, -128), fp.logistic_table(s, zp)),
        ("TANH", (1 / 128, 0), fp.tanh_table(s, zp)),
    ):
        ref = Tflm(_unary_model(op, scale, zp, out_q))(x)[0].reshape(-1)
        assert ref.tolist() == table.tolist(), op
