"""Float islands in int8 models (DEQUANTIZE -> float ops -> QUANTIZE, as converters leave ELU, SQUARE or a
LayerNorm's NEG): the integer path keeps every integer operator, runs only the island in float32, names
it, and is bit-exact with TFLite Micro — on the host (LLVM) and through the generated C (UBSan on)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from qharness import Tflm, compile_host
from tflite_builder import ModelBuilder
from tflite_micro.tensorflow.lite.micro.python import schema_py_generated as schema
from tvmc_micro.compiler.quantized import (
    UnsupportedQuantizedModel,
    import_tflite_quantized,
    is_quantized_tflite,
)
from tvmc_micro.compiler.quantized.float_island import FLOAT_OPERATORS_ATTR

pytestmark = pytest.mark.usefixtures("tvm_available")

SEEDS = (0, 1, 2, 3)


def _elu(shape: tuple[int, ...] = (2, 16)) -> bytes:
    b = ModelBuilder()
    x = b.tensor("x", list(shape), scale=0.05, zero_point=3)
    f = b.tensor("f", list(shape), "float32")
    b.op("DEQUANTIZE", [x], [f])
    e = b.tensor("e", list(shape), "float32")
    b.op("ELU", [f], [e])
    y = b.tensor("y", list(shape), scale=0.03, zero_point=-40)
    b.op("QUANTIZE", [e], [y])
    return b.build([x], [y])


def _layernorm(rows: int = 4, width: int = 8, with_neg: bool = True) -> bytes:
    """int8 FULLY_CONNECTED -> DEQUANTIZE -> LayerNorm in float (MEAN, NEG + ADD or SUB, SQUARE, MEAN, ADD
    eps, RSQRT, MUL, MUL gamma, ADD beta) -> QUANTIZE -> int8 TRANSPOSE."""
    rng = np.random.default_rng(rows * width)
    b = ModelBuilder()
    x = b.tensor("x", [rows, width], scale=0.05, zero_point=3)
    w = b.tensor(
        "w", [width, width], scale=0.01, data=rng.integers(-127, 128, (width, width)).astype(np.int8)
    )
    h = b.tensor("h", [rows, width], scale=0.08, zero_point=-2)
    b.op("FULLY_CONNECTED", [x, w, -1], [h], schema.FullyConnectedOptionsT())
    shape = [1, rows, width]
    h3 = b.tensor("h3", shape, scale=0.08, zero_point=-2)
    b.op("RESHAPE", [h, b.const_int32("shape", shape)], [h3])
    f = b.tensor("f", shape, "float32")
    b.op("DEQUANTIZE", [h3], [f])
    axis = b.const_int32("axis", [-1])
    ro = schema.ReducerOptionsT()
    ro.keepDims = True
    m = b.tensor("m", [1, rows, 1], "float32")
    b.op("MEAN", [f, axis], [m], ro, "ReducerOptions")
    d = b.tensor("d", shape, "float32")
    if with_neg:
        nm = b.tensor("nm", [1, rows, 1], "float32")
        b.op("NEG", [m], [nm])
        b.op("ADD", [f, nm], [d], schema.AddOptionsT())
    else:
        b.op("SUB", [f, m], [d], schema.SubOptionsT())
    sq = b.tensor("sq", shape, "float32")
    b.op("SQUARE", [d], [sq])
    v = b.tensor("v", [1, rows, 1], "float32")
    b.op("MEAN", [sq, axis], [v], ro, "ReducerOptions")
    eps = b.tensor("eps", [], "float32", data=np.array(1e-3, np.float32))
    ve = b.tensor("ve", [1, rows, 1], "float32")
    b.op("ADD", [v, eps], [ve], schema.AddOptionsT())
    r = b.tensor("r", [1, rows, 1], "float32")
    b.op("RSQRT", [ve], [r])
    n = b.tensor("n", shape, "float32")
    b.op("MUL", [d, r], [n], schema.MulOptionsT())
    gamma = b.tensor("gamma", [width], "float32", data=rng.uniform(0.5, 1.5, width).astype(np.float32))
    g = b.tensor("g", shape, "float32")
    b.op("MUL", [n, gamma], [g], schema.MulOptionsT())
    beta = b.tensor("beta", [width], "float32", data=rng.uniform(-0.5, 0.5, width).astype(np.float32))
    yf = b.tensor("yf", shape, "float32")
    b.op("ADD", [g, beta], [yf], schema.AddOptionsT())
    y = b.tensor("y", shape, scale=0.02, zero_point=-5)
    b.op("QUANTIZE", [yf], [y])
    t = b.tensor("t", [1, width, rows], scale=0.02, zero_point=-5)
    b.op("TRANSPOSE", [y, b.const_int32("perm", [0, 2, 1])], [t], schema.TransposeOptionsT())
    return b.build([x], [t])


def _every_float_kernel() -> bytes:
    """One DEQUANTIZE feeding every other float kernel; each result quantized to its own int8 output."""
    b = ModelBuilder()
    x = b.tensor("x", [3, 8], scale=0.04, zero_point=-6)
    f = b.tensor("f", [3, 8], "float32")
    b.op("DEQUANTIZE", [x], [f])
    z = b.tensor("z", [3, 8], scale=0.03, zero_point=10)
    g = b.tensor("g", [3, 8], "float32")
    b.op("DEQUANTIZE", [z], [g])
    outs: list[int] = []

    def quantized(src: int, shape: list[int], scale: float, zp: int) -> None:
        y = b.tensor(f"y{len(outs)}", shape, scale=scale, zero_point=zp)
        b.op("QUANTIZE", [src], [y])
        outs.append(y)

    def unary(opname: str, src: int, scale: float, zp: int = 0) -> int:
        t = b.tensor(f"{opname.lower()}_{len(outs)}", [3, 8], "float32")
        b.op(opname, [src], [t])
        quantized(t, [3, 8], scale, zp)
        return t

    def binary(opname: str, a: int, c: int, scale: float, act: str = "NONE") -> int:
        t = b.tensor(f"{opname.lower()}_{len(outs)}", [3, 8], "float32")
        o = getattr(schema, opname.capitalize() + "OptionsT")()
        o.fusedActivationFunction = getattr(schema.ActivationFunctionType, act)
        b.op(opname, [a, c], [t], o, opname.capitalize() + "Options")
        quantized(t, [3, 8], scale, 0)
        return t

    pos = unary("ABS", f, 0.04, -128)
    for opname, scale in (("SQRT", 0.02), ("RSQRT", 0.5), ("LOG", 0.05), ("EXP", 0.5)):
        unary(opname, pos, scale)
    for opname, scale in (
        ("TANH", 1 / 128),
        ("LOGISTIC", 1 / 256),
        ("ELU", 0.04),
        ("NEG", 0.04),
        ("SQUARE", 0.1),
    ):
        unary(opname, f, scale)
    binary("ADD", f, g, 0.05, "RELU")
    binary("SUB", f, g, 0.05, "RELU6")
    binary("MUL", f, g, 0.05, "RELU_N1_TO_1")
    binary("DIV", f, g, 0.5)
    ro = schema.ReducerOptionsT()
    ro.keepDims = False
    s = b.tensor("sum", [3], "float32")
    b.op("SUM", [f, b.const_int32("axis", [1])], [s], ro, "ReducerOptions")
    quantized(s, [3], 0.2, 0)
    return b.build([x, z], outs)


def _check(
    model: bytes, shapes: list[tuple[int, ...]], avoid: tuple[int, ...] = (), seeds: tuple[int, ...] = SEEDS
) -> None:
    """Random inputs; values in `avoid` (per input) are moved one up."""
    ours, ref = compile_host(model, "island"), Tflm(model)
    for seed in seeds:
        rng = np.random.default_rng(seed)
        for k in range(10):
            xs = [rng.integers(-128, 127, size=s).astype(np.int8) for s in shapes]
            for x, bad in zip(xs, avoid, strict=False):
                x[x == bad] += 1
            for j, (r, o) in enumerate(zip(ref(*xs), ours(*xs), strict=True)):
                assert np.array_equal(r, o), f"seed {seed} sample {k} output {j}: differs from TFLite Micro"


def test_elu_island() -> None:
    model = _elu()
    assert is_quantized_tflite(model)
    _check(model, [(2, 16)])


@pytest.mark.parametrize("rows,width,with_neg", [(4, 8, True), (3, 16, False), (1, 5, True)])
def test_layernorm_island(rows: int, width: int, with_neg: bool) -> None:
    model = _layernorm(rows, width, with_neg)
    assert is_quantized_tflite(model)
    _check(model, [(rows, width)])


def test_every_float_kernel() -> None:
    """Inputs avoid the values dequantizing to 0: RSQRT(0) = inf and x / 0 give infinities and NaN, which
    TFLite Micro's QUANTIZE converts to int32 with undefined behaviour (x86 gives INT32_MIN: -128 for
    +inf); the integer path saturates them (+inf -> 127), see docs/quantized-models.md."""
    _check(_every_float_kernel(), [(3, 8), (3, 8)], avoid=(-6, 10))


def test_island_is_named_on_the_module() -> None:
    mod = import_tflite_quantized(_layernorm(), "ln")
    listed = json.loads(str(mod["main"].attrs[FLOAT_OPERATORS_ATTR]))
    types = [o["type"] for o in listed]
    assert types == ["MEAN", "NEG", "ADD", "SQUARE", "MEAN", "ADD", "RSQRT", "MUL", "MUL", "ADD"]
    assert [o["index"] for o in listed] == list(range(3, 13))
    plain = import_tflite_quantized(_elu(), "elu")["main"].attrs
    assert json.loads(str(plain[FLOAT_OPERATORS_ATTR])) == [{"index": 1, "type": "ELU"}]


def test_float_operator_without_kernel_is_refused_by_name() -> None:
    b = ModelBuilder()
    x = b.tensor("x", [4], scale=0.05, zero_point=0)
    f = b.tensor("f", [4], "float32")
    b.op("DEQUANTIZE", [x], [f])
    s = b.tensor("s", [4], "float32")
    b.op("SIN", [f], [s])
    y = b.tensor("y", [4], scale=0.01, zero_point=0)
    b.op("QUANTIZE", [s], [y])
    model = b.build([x], [y])
    assert is_quantized_tflite(model)  # the integer path takes it, and names what it cannot do
    with pytest.raises(UnsupportedQuantizedModel, match=r"#1 SIN: float32 operator inside the integer model"):
        import_tflite_quantized(model, "sin")


def test_hybrid_operator_is_not_an_island() -> None:
    """float activations with int8 weights in one operator (dynamic range) stay off the integer path."""
    b = ModelBuilder()
    x = b.tensor("x", [1, 4], "float32")
    w = b.tensor("w", [3, 4], scale=0.1, data=np.ones((3, 4), np.int8))
    y = b.tensor("y", [1, 3], "float32")
    b.op("FULLY_CONNECTED", [x, w, -1], [y], schema.FullyConnectedOptionsT())
    assert not is_quantized_tflite(b.build([x], [y]))


def test_layernorm_through_c_with_ubsan(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from tvmc_micro.compiler import compile_model

    from tests.compiler import compiler_harness as harness

    monkeypatch.setattr(
        harness, "CFLAGS", [*harness.CFLAGS, "-fsanitize=undefined", "-fno-sanitize-recover=undefined"]
    )
    model = _layernorm()
    (tmp_path / "ln.tflite").write_bytes(model)
    result = compile_model(tmp_path / "ln.tflite", tmp_path / "ln.tar")
    assert result.metadata["models"][0]["compute_path"] == "integer"
    built = harness.build(harness.extract(tmp_path / "ln.tar", tmp_path / "mlf"))
    rng = np.random.default_rng(5)
    samples = [[rng.integers(-128, 128, size=(4, 8)).astype(np.int8)] for _ in range(40)]
    ref = Tflm(model)
    for k, (sample, got) in enumerate(zip(samples, built.run(samples, tmp_path), strict=True)):
        want = ref(*sample)[0]
        assert got[0].tobytes() == want.reshape(got[0].shape).tobytes(), f"sample {k} differs"


def test_compile_names_the_float_operators_and_metadata_lists_them(tmp_path: Path) -> None:
    import subprocess
    import sys
    import tarfile

    model = tmp_path / "ln.tflite"
    model.write_bytes(_layernorm())
    r = subprocess.run(
        [sys.executable, "-m", "tvmc_micro", "compile", str(model), "-o", str(tmp_path / "ln.tar")],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert r.returncode == 0, r.stderr
    assert "run in float32 (#3 MEAN, #4 NEG" in r.stderr
    with tarfile.open(tmp_path / "ln.tar") as tar:
        meta = json.load(tar.extractfile("metadata.json"))["models"][0]  # type: ignore[arg-type]
    assert meta["compute_path"] == "integer"
    assert [o["type"] for o in meta["float_operators"]][:3] == ["MEAN", "NEG", "ADD"]
