"""More int8 operators (data movement, elementwise, TRANSPOSE_CONV ...), each a single-operator model built
with tflite_builder, bit-exact against TFLite Micro on random inputs, and each refusal named."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pytest
from qharness import Tflm, compile_host
from tflite_builder import ModelBuilder
from tflite_micro.tensorflow.lite.micro.python import schema_py_generated as schema
from tvmc_micro.compiler.quantized import UnsupportedQuantizedModel, import_tflite_quantized

pytestmark = pytest.mark.usefixtures("tvm_available")

N_RANDOM = 20


def _inputs(rng: np.random.Generator, shapes: list[tuple[int, ...]], dtype: str = "int8") -> list[np.ndarray]:
    info = np.iinfo(dtype)
    return [rng.integers(int(info.min), int(info.max) + 1, size=s).astype(dtype) for s in shapes]


def assert_bit_exact(model: bytes, shapes: list[tuple[int, ...]], seed: int = 0, dtype: str = "int8") -> None:
    """N_RANDOM random inputs through TFLM and through our host build: every output byte equal."""
    ours, ref = compile_host(model, "more_ops"), Tflm(model)
    rng = np.random.default_rng(seed)
    for k in range(N_RANDOM):
        xs = _inputs(rng, shapes, dtype)
        for j, (r, o) in enumerate(zip(ref(*xs), ours(*xs), strict=True)):
            assert r.shape == o.shape and r.dtype == o.dtype, (j, r.shape, o.shape, r.dtype, o.dtype)
            if not np.array_equal(r, o):
                diff = int(np.abs(r.astype(np.int64) - o.astype(np.int64)).max())
                raise AssertionError(f"sample {k} output {j}: differs from TFLite Micro by up to {diff} LSB")


def refused(model: bytes, match: str) -> None:
    with pytest.raises(UnsupportedQuantizedModel, match=match):
        import_tflite_quantized(model, "refused")


def single_op(
    opname: str,
    in_shapes: list[tuple[int, ...]],
    out_shapes: list[tuple[int, ...]],
    consts: Callable[[ModelBuilder], list[int]] | None = None,
    options: object = None,
    kind: str | None = None,
    in_q: list[tuple[float, int]] | None = None,
    out_q: list[tuple[float, int]] | None = None,
    dtype: str = "int8",
    const_first: bool = False,
    version: int = 1,
) -> bytes:
    """One operator: activations first (or after the constants with `const_first`), then constants."""
    b = ModelBuilder()
    in_q = in_q or [(0.05, 3)] * len(in_shapes)
    out_q = out_q or [in_q[0]] * len(out_shapes)
    xs = [
        b.tensor(f"x{i}", list(s), dtype, scale=q[0], zero_point=q[1])
        for i, (s, q) in enumerate(zip(in_shapes, in_q, strict=True))
    ]
    cs = consts(b) if consts else []
    ys = [
        b.tensor(f"y{i}", list(s), dtype, scale=q[0], zero_point=q[1])
        for i, (s, q) in enumerate(zip(out_shapes, out_q, strict=True))
    ]
    b.op(opname, (cs + xs) if const_first else (xs + cs), ys, options, kind, version)
    return b.build(xs, ys)


# --- TRANSPOSE -------------------------------------------------------------------------------------------


def _transpose(shape: tuple[int, ...], perm: list[int], dtype: str = "int8") -> bytes:
    out = tuple(shape[p] for p in perm)
    return single_op(
        "TRANSPOSE",
        [shape],
        [out],
        lambda b: [b.const_int32("perm", perm)],
        schema.TransposeOptionsT(),
        dtype=dtype,
    )


@pytest.mark.parametrize(
    "shape,perm",
    [
        ((1, 3, 6, 5), [0, 2, 3, 1]),
        ((2, 3, 4), [2, 0, 1]),
        ((4, 7), [1, 0]),
        ((2, 3, 1, 4, 5), [4, 2, 0, 3, 1]),
        ((1, 5, 1, 6), [2, 0, 1, 3]),  # only unit dimensions move: a view
    ],
)
def test_transpose(shape: tuple[int, ...], perm: list[int]) -> None:
    assert_bit_exact(_transpose(shape, perm), [shape])


def _needs_int16_io(model: bytes) -> None:
    """int16 model inputs/outputs come with the int16 path (another change); until then skip, naming why."""
    try:
        import_tflite_quantized(model, "probe")
    except UnsupportedQuantizedModel as err:
        if "model inputs must be" in str(err):
            pytest.skip("int16 model inputs are not supported by the importer yet")
        raise


def test_transpose_int16() -> None:
    _needs_int16_io(_transpose((3, 4, 5), [1, 2, 0], "int16"))
    assert_bit_exact(_transpose((3, 4, 5), [1, 2, 0], "int16"), [(3, 4, 5)], dtype="int16")


def test_transpose_refusals() -> None:
    refused(_transpose((1, 2, 1, 2, 1, 2), [5, 4, 3, 2, 1, 0]), r"#0 TRANSPOSE: .*ranks 1 to 5")
    b = ModelBuilder()
    x = b.tensor("x", [2, 3], scale=0.1, zero_point=0)
    y = b.tensor("y", [3, 2], scale=0.2, zero_point=0)
    b.op("TRANSPOSE", [x, b.const_int32("perm", [1, 0])], [y])
    refused(b.build([x], [y]), r"TRANSPOSE: input int8 per-tensor .* quantized alike")


# --- SUB ----------------------------------------------------------------------------------------------


def _sub(
    a: tuple[int, ...], b: tuple[int, ...], q: list[tuple[float, int]], activation: str = "NONE"
) -> bytes:
    o = schema.SubOptionsT()
    o.fusedActivationFunction = getattr(schema.ActivationFunctionType, activation)
    out = tuple(np.broadcast_shapes(a, b))
    return single_op("SUB", [a, b], [out], options=o, kind="SubOptions", in_q=q[:2], out_q=q[2:])


@pytest.mark.parametrize(
    "a,b,q,act",
    [
        ((1, 4, 4, 3), (1, 4, 4, 3), [(0.05, 3), (0.07, -5), (0.1, 2)], "NONE"),
        ((2, 3, 5), (5,), [(0.013, -128), (0.2, 10), (0.07, -3)], "RELU"),
        ((1, 1, 6), (4, 1), [(0.3, 0), (0.3, 0), (0.011, 7)], "RELU6"),
        ((1, 8), (1, 8), [(0.0123, 100), (0.0456, -100), (0.00789, 0)], "RELU_N1_TO_1"),
    ],
)
def test_sub(a: tuple[int, ...], b: tuple[int, ...], q: list[tuple[float, int]], act: str) -> None:
    assert_bit_exact(_sub(a, b, q, act), [a, b], seed=len(a))


def test_sub_refuses_mismatched_broadcast() -> None:
    b = ModelBuilder()
    x = b.tensor("x", [2, 3], scale=0.1, zero_point=0)
    z = b.tensor("z", [4, 3], scale=0.1, zero_point=0)
    y = b.tensor("y", [2, 3], scale=0.2, zero_point=0)
    b.op("SUB", [x, z], [y])
    refused(b.build([x, z], [y]), r"#0 SUB: input shapes \[\[2, 3\], \[4, 3\]\] do not broadcast")
