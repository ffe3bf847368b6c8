"""An int16-activation model through the real pipeline: compile_model -> MLF (int16 I/O: 2-byte elements in
metadata, header and arena) -> gcc harness, and `tvmc run` on crt_host reading and writing int16 tensors;
every output bit-exact with TFLite Micro."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from tflite_builder import ModelBuilder, conv_options, random_weights
from tflite_micro.tensorflow.lite.micro.python import schema_py_generated as schema

from tests.compiler import compiler_harness as harness

pytestmark = pytest.mark.usefixtures("tvm_available")


def _model() -> bytes:
    """x int16 -> CONV_2D 16x8 -> LEAKY_RELU -> y int16, and y -> QUANTIZE -> z int8."""
    rng = np.random.default_rng(5)
    b = ModelBuilder()
    x = b.tensor("x", [1, 6, 9, 3], "int16", 0.0007, 0)
    scales = [float(s) for s in rng.uniform(0.004, 0.01, 4)]
    w = b.tensor("w", [4, 3, 3, 3], "int8", scales, 0, data=random_weights(rng, [4, 3, 3, 3]))
    bias = b.tensor("b", [4], "int64", [0.0007 * s for s in scales], 0, data=np.arange(-2, 2) * 100_000)
    c = b.tensor("conv", [1, 6, 9, 4], "int16", 0.03, 0)
    b.op("CONV_2D", [x, w, bias], [c], conv_options("SAME"), version=3)
    y = b.tensor("y", [1, 6, 9, 4], "int16", 0.025, 0)
    o = schema.LeakyReluOptionsT()
    o.alpha = 0.2
    b.op("LEAKY_RELU", [c], [y], o, "LeakyReluOptions", version=2)
    z = b.tensor("z", [1, 6, 9, 4], "int8", 3.0, -3)
    b.op("QUANTIZE", [y], [z])
    return b.build([x], [y, z])


def _reference(model: bytes, xs: list[np.ndarray]) -> list[list[np.ndarray]]:
    from tflite_micro.python.tflite_micro import runtime

    interp = runtime.Interpreter.from_bytes(model, arena_size=1 << 20)
    out = []
    for x in xs:
        interp.set_input(x, 0)
        interp.invoke()
        out.append([np.array(interp.get_output(k)) for k in range(2)])
    return out


@pytest.fixture(scope="module")
def compiled(tmp_path_factory: pytest.TempPathFactory) -> tuple[bytes, Path]:
    from tvmc_micro.compiler import compile_model

    d = tmp_path_factory.mktemp("int16")
    model = _model()
    (d / "m.tflite").write_bytes(model)
    result = compile_model(d / "m.tflite", d / "m.tar")
    assert result.metadata["models"][0]["compute_path"] == "integer"
    return model, d / "m.tar"


def _inputs(n: int, seed: int) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    return [rng.integers(-(1 << 15), 1 << 15, size=(1, 6, 9, 3)).astype(np.int16) for _ in range(n)]


def test_mlf_declares_int16_and_runs_bit_exact(compiled: tuple[bytes, Path], tmp_path: Path) -> None:
    model, tar = compiled
    built = harness.build(harness.extract(tar, tmp_path / "mlf"))
    meta = built.model
    assert [(t["dtype"], t["size_bytes"]) for t in meta["inputs"]] == [("int16", 6 * 9 * 3 * 2)]
    assert [(t["dtype"], t["size_bytes"]) for t in meta["outputs"]] == [("int16", 432), ("int8", 216)]
    header = "\n".join(p.read_text() for p in (tmp_path / "mlf").rglob("*.h"))
    assert "int16_t" in header
    xs = _inputs(20, 1)
    got = built.run([[x] for x in xs], tmp_path)
    want = _reference(model, xs)
    for g, w in zip(got, want, strict=True):
        assert g[0].tobytes() == w[0].tobytes()
        assert g[1].tobytes() == w[1].tobytes()
    # The outputs are not saturated, so the comparison means something.
    assert len(np.unique(np.concatenate([w[0].ravel() for w in want]))) > 500


def _tvmc(*args: str) -> subprocess.CompletedProcess[str]:
    r = subprocess.run(
        [sys.executable, "-m", "tvmc_micro", *args], capture_output=True, text=True, timeout=300
    )
    assert r.returncode == 0, f"tvmc {' '.join(args)} failed:\n{r.stderr}"
    return r


def test_tvmc_run_on_crt_host_reads_and_writes_int16(compiled: tuple[bytes, Path], tmp_path: Path) -> None:
    model, tar = compiled
    project = tmp_path / "project"
    _tvmc("micro", "create-project", str(project), str(tar), "crt_host")
    _tvmc("micro", "build", str(project))
    _tvmc("micro", "flash", str(project))
    meta = json.loads((project / "model" / "metadata.json").read_text())["models"][0]
    (x,) = _inputs(1, 7)
    np.savez(tmp_path / "in.npz", **{meta["inputs"][0]["name"]: x})
    _tvmc(
        "run",
        "--device",
        "micro",
        str(project),
        "-i",
        str(tmp_path / "in.npz"),
        "-o",
        str(tmp_path / "o.npz"),
    )
    (want,) = _reference(model, [x])
    with np.load(tmp_path / "o.npz") as out:
        for k, t in enumerate(meta["outputs"]):
            got = out[t["name"]]
            assert got.dtype == want[k].dtype
            np.testing.assert_array_equal(got.reshape(want[k].shape), want[k])


def _float_edged_model() -> bytes:
    """float32 -> QUANTIZE int16 -> CONV_2D 16x8 (stride 2) -> DEQUANTIZE -> float32, as TFLite's 16x8
    converter writes a model whose interface stays float."""
    rng = np.random.default_rng(8)
    b = ModelBuilder()
    f = b.tensor("f", [1, 8, 8, 2], "float32")
    x = b.tensor("x", [1, 8, 8, 2], "int16", 0.0002, 0)
    b.op("QUANTIZE", [f], [x])
    scales = [float(s) for s in rng.uniform(0.004, 0.01, 3)]
    w = b.tensor("w", [3, 3, 3, 2], "int8", scales, 0, data=random_weights(rng, [3, 3, 3, 2]))
    bias = b.tensor("b", [3], "int64", [0.0002 * s for s in scales], 0, data=np.array([5000, -7000, 0]))
    c = b.tensor("conv", [1, 4, 4, 3], "int16", 0.0005, 0)
    b.op("CONV_2D", [x, w, bias], [c], conv_options("SAME", (2, 2)), version=3)
    y = b.tensor("y", [1, 4, 4, 3], "float32")
    b.op("DEQUANTIZE", [c], [y])
    return b.build([f], [y])


def test_float_edged_int16_model_takes_the_integer_path(tmp_path: Path) -> None:
    from tflite_micro.python.tflite_micro import runtime
    from tvmc_micro.compiler import compile_model

    model = _float_edged_model()
    (tmp_path / "f.tflite").write_bytes(model)
    result = compile_model(tmp_path / "f.tflite", tmp_path / "f.tar")
    assert result.metadata["models"][0]["compute_path"] == "integer"
    built = harness.build(harness.extract(tmp_path / "f.tar", tmp_path / "mlf"))
    rng = np.random.default_rng(2)
    xs = [rng.uniform(-8, 8, size=(1, 8, 8, 2)).astype(np.float32) for _ in range(20)]
    got = built.run([[x] for x in xs], tmp_path)
    interp = runtime.Interpreter.from_bytes(model, arena_size=1 << 20)
    for x, g in zip(xs, got, strict=True):
        interp.set_input(x, 0)
        interp.invoke()
        assert g[0].tobytes() == np.array(interp.get_output(0)).tobytes()


def _chain_model() -> bytes:
    """A SEANet-like int16 block, every intermediate exposed as an output:
    PAD -> CONV_2D (VALID) -> LEAKY_RELU -> STRIDED_SLICE -> ADD (second model input)
    -> TRANSPOSE_CONV (stride 1x2) -> SUB (a per-channel model input, broadcast)."""
    rng = np.random.default_rng(11)
    b = ModelBuilder()
    x = b.tensor("x", [1, 2, 12, 4], "int16", 0.0009, 0)
    skip = b.tensor("skip", [1, 1, 10, 6], "int16", 0.0011, 0)
    offs = b.tensor("offs", [3], "int16", 0.0004, 0)
    p = b.tensor("pad", [1, 2, 16, 4], "int16", 0.0009, 0)
    b.op("PAD", [x, b.const_int32("pads", [[0, 0], [0, 0], [2, 2], [0, 0]])], [p])
    scales = [float(s) for s in rng.uniform(0.003, 0.008, 6)]
    w = b.tensor("w", [6, 2, 7, 4], "int8", scales, 0, data=random_weights(rng, [6, 2, 7, 4]))
    bias = b.tensor("b", [6], "int64", [0.0009 * s for s in scales], 0, data=rng.integers(-9000, 9000, 6))
    c = b.tensor("conv", [1, 1, 10, 6], "int16", 0.004, 0)
    b.op("CONV_2D", [p, w, bias], [c], conv_options("VALID"), version=3)
    lr = b.tensor("leaky", [1, 1, 10, 6], "int16", 0.0035, 0)
    o = schema.LeakyReluOptionsT()
    o.alpha = 0.3
    b.op("LEAKY_RELU", [c], [lr], o, "LeakyReluOptions", version=2)
    sl = b.tensor("slice", [1, 1, 10, 6], "int16", 0.0035, 0)
    so = schema.StridedSliceOptionsT()
    so.beginMask, so.endMask = 15, 15
    ins = [lr, b.const_int32("begin", [0] * 4), b.const_int32("end", [0] * 4), b.const_int32("st", [1] * 4)]
    b.op("STRIDED_SLICE", ins, [sl], so, "StridedSliceOptions")
    a = b.tensor("add", [1, 1, 10, 6], "int16", 0.005, 0)
    ao = schema.AddOptionsT()
    ao.potScaleInt16 = False
    b.op("ADD", [sl, skip], [a], ao, "AddOptions", version=2)
    t_scales = [float(s) for s in rng.uniform(0.003, 0.008, 3)]
    tw = b.tensor("tw", [3, 1, 4, 6], "int8", t_scales, 0, data=random_weights(rng, [3, 1, 4, 6]))
    tb = b.tensor("tb", [3], "int64", [0.005 * s for s in t_scales], 0, data=np.array([100, -200, 300]))
    t = b.tensor("tconv", [1, 1, 20, 3], "int16", 0.01, 0)
    to = schema.TransposeConvOptionsT()
    to.padding, to.strideH, to.strideW = 0, 1, 2
    b.op(
        "TRANSPOSE_CONV",
        [b.const_int32("oshape", [1, 1, 20, 3]), tw, a, tb],
        [t],
        to,
        "TransposeConvOptions",
        3,
    )
    s = b.tensor("sub", [1, 1, 20, 3], "int16", 0.012, 0)
    sub_o = schema.SubOptionsT()
    sub_o.potScaleInt16 = False
    b.op("SUB", [t, offs], [s], sub_o, "SubOptions", version=2)
    return b.build([x, skip, offs], [c, lr, sl, a, t, s])


def test_int16_block_every_tensor_bit_exact_through_c(tmp_path: Path) -> None:
    from tflite_micro.python.tflite_micro import runtime
    from tvmc_micro.compiler import compile_model

    model = _chain_model()
    (tmp_path / "c.tflite").write_bytes(model)
    compile_model(tmp_path / "c.tflite", tmp_path / "c.tar")
    built = harness.build(harness.extract(tmp_path / "c.tar", tmp_path / "mlf"))
    rng = np.random.default_rng(4)
    samples = [
        [
            rng.integers(-(1 << 15), 1 << 15, size=s).astype(np.int16)
            for s in ((1, 2, 12, 4), (1, 1, 10, 6), (3,))
        ]
        for _ in range(20)
    ]
    got = built.run(samples, tmp_path)
    interp = runtime.Interpreter.from_bytes(model, arena_size=1 << 20)
    names = ["conv", "leaky", "slice", "add", "tconv", "sub"]
    seen: list[list[np.ndarray]] = [[] for _ in names]
    for sample, outs in zip(samples, got, strict=True):
        for i, arr in enumerate(sample):
            interp.set_input(arr, i)
        interp.invoke()
        for k, out in enumerate(outs):
            want = np.array(interp.get_output(k))
            assert out.tobytes() == want.tobytes(), f"{names[k]} differs from TFLite Micro"
            seen[k].append(want.ravel())
    for k, values in enumerate(seen):  # each tensor varies: the comparison is not between constants
        assert len(np.unique(np.concatenate(values))) > 100, names[k]
