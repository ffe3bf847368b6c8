"""Every shared model, for the portable `c` target and for `c -mcpu=cortex-m4` (whose int8 kernels are the
hand-written DSP C kernels, built here with their portable intrinsic twins), built against the generic
harness with AddressSanitizer and UndefinedBehaviorSanitizer (every report fatal) and with the executor's
arena checks (-DTVMGEN_ARENA_CHECKS: the arena starts each run filled with a pattern, and only the running
kernel's tensors are addressable, so an overrun into a neighbouring tensor of the one static arena is
reported too). A few seeded random inputs each: no sanitizer report, and the outputs equal the reference
interpreter's (TFLite Micro bit for bit on the integer path; LiteRT / onnxruntime within 1e-5 of
max(1, the largest output) for float).

The MLFs come from the session cache `compiled_mlf`, compiled two at a time by the first test; the
sanitized build is -O0 (the DSP kernels take twenty seconds at -O2 under the sanitizers, three at -O0,
and nothing the sanitizers check depends on the optimisation level)."""

from __future__ import annotations

import zlib
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from compiler_harness import build, extract

from tests.conftest import MODELS_DIR, MlfCache

# The shared models (../shared/models/SOURCES.md) plus any other .tflite/.onnx found there.
KNOWN = [
    "ad01_fp32.tflite",
    "ad01_int8.tflite",
    "hello_world_float.onnx",
    "hello_world_float.tflite",
    "hello_world_int8.tflite",
    "kws_ref_model.tflite",
    "person_detect.tflite",
    "pretrainedResnet.onnx",
    "pretrainedResnet.tflite",
    "pretrainedResnet_quant.tflite",
    "str_ww_ref_model.tflite",
    "vww_96_float.tflite",
    "vww_96_int8.tflite",
]
FOUND = (
    sorted(p.name for p in MODELS_DIR.glob("*") if p.suffix in (".tflite", ".onnx"))
    if MODELS_DIR.is_dir()
    else []
)
MODELS = sorted(set(KNOWN) | set(FOUND))
# The options each target is compiled with: the same keys the other users of `compiled_mlf` ask for, so
# the cache serves them all ("c" is compile_model's default target).
TARGETS: dict[str, dict[str, object]] = {"c": {}, "m4": {"target": "c -mcpu=cortex-m4"}}
N_SAMPLES = 12
REL_TOL = 1e-5


def _options(target: str) -> dict[str, object]:
    return dict(TARGETS[target])


@pytest.fixture(scope="module")
def mlfs(compiled_mlf: MlfCache, models_dir: Path) -> MlfCache:
    """The session cache, with every model of this module compiled (in parallel) up front."""
    pytest.importorskip("tvm")
    compiled_mlf.prefetch([(m, _options(t)) for m in MODELS for t in TARGETS])
    return compiled_mlf


def _samples(model: str, spec: dict[str, Any]) -> list[list[np.ndarray]]:
    """N_SAMPLES inputs, seeded by the model's name: each sample and each input different."""
    rng = np.random.default_rng(zlib.crc32(model.encode()))
    samples = []
    for _ in range(N_SAMPLES):
        row = []
        for t in spec["inputs"]:
            dtype = np.dtype(t["dtype"])
            if dtype.kind == "f":
                row.append(rng.uniform(-1.0, 1.0, size=t["shape"]).astype(dtype))
            else:
                info = np.iinfo(dtype)
                row.append(rng.integers(info.min, info.max, size=t["shape"], endpoint=True).astype(dtype))
        samples.append(row)
    return samples


def _reference(model_file: Path, samples: list[list[np.ndarray]], integer: bool) -> list[list[np.ndarray]]:
    if model_file.suffix == ".onnx":
        import onnxruntime as ort

        sess = ort.InferenceSession(str(model_file), providers=["CPUExecutionProvider"])
        names = [i.name for i in sess.get_inputs()]
        return [list(sess.run(None, dict(zip(names, s, strict=True)))) for s in samples]
    if integer:
        from tests.quantized.qharness import Tflm

        tflm = Tflm(model_file.read_bytes())
        return [tflm(*s) for s in samples]  # in order: a stateful model carries its state like ours
    from ai_edge_litert.interpreter import Interpreter

    interp = Interpreter(model_path=str(model_file))
    interp.allocate_tensors()
    out = []
    for s in samples:
        for d, x in zip(interp.get_input_details(), s, strict=True):
            interp.set_tensor(d["index"], x)
        interp.invoke()
        out.append([interp.get_tensor(d["index"]).copy() for d in interp.get_output_details()])
    return out


def _compare(got: np.ndarray, want: np.ndarray, exact: bool, what: str) -> None:
    want = np.asarray(want)
    assert got.dtype == want.dtype and got.size == want.size, (
        what,
        got.dtype,
        got.shape,
        want.dtype,
        want.shape,
    )
    got = got.reshape(want.shape)
    if exact or want.dtype.kind != "f":
        np.testing.assert_array_equal(got, want, err_msg=what)
        return
    # Relative to the largest value, and absolute below 1 (a sine output near zero has no relative scale).
    scale = max(float(np.max(np.abs(want))), 1.0)
    err = float(np.max(np.abs(got.astype(np.float64) - want))) / scale
    assert err <= REL_TOL, f"{what}: relative error {err:.2e}"


@pytest.mark.slow
@pytest.mark.parametrize("target", list(TARGETS))
@pytest.mark.parametrize("model", MODELS)
def test_model_clean_under_sanitizers(mlfs: MlfCache, model: str, target: str, tmp_path: Path) -> None:
    tar = mlfs(model, **_options(target))  # skips when the model file is absent
    mlf = extract(tar, tmp_path / "mlf")
    built = build(mlf, sanitize=True, extra_cflags=["-O0"])
    spec = built.model
    if target == "m4" and spec["compute_path"] == "integer":
        source = "".join(p.read_text() for p in (mlf / "codegen" / "host" / "src").glob("*lib0.c"))
        assert "tvmc_smlad" in source or "tvmc_rq" in source, "the DSP kernels were not selected"
    samples = _samples(model, spec)
    ours = built.run(samples, tmp_path)  # fails on any sanitizer report, showing it
    integer = spec["compute_path"] == "integer"
    ref = _reference(MODELS_DIR / model, samples, integer)
    for k, (got, want) in enumerate(zip(ours, ref, strict=True)):
        for j, (g, w) in enumerate(zip(got, want, strict=True)):
            _compare(g, w, integer, f"{model} [{target}] sample {k} output {j}")


def _left_shift_model() -> bytes:
    """int8 FULLY_CONNECTED whose real multiplier is > 1 (input·weight/output scale = 3.2: TFLite shift +2,
    so MultiplyByQuantizedMultiplier shifts negative accumulators left), then ADD (which shifts
    x - zp left by 20)."""
    from tests.quantized.tflite_builder import ModelBuilder, add_options, fc_options

    rng = np.random.default_rng(11)
    b = ModelBuilder()
    x = b.tensor("x", [1, 16], "int8", 0.08, -5)
    w = b.tensor("w", [8, 16], "int8", 0.01, 0, data=rng.integers(-127, 128, (8, 16)).astype(np.int8))
    bias = b.tensor("b", [8], "int32", 0.0008, 0, data=rng.integers(-300, 300, 8).astype(np.int32))
    h = b.tensor("h", [1, 8], "int8", 0.00025, 3)
    b.op("FULLY_CONNECTED", [x, w, bias], [h], fc_options(), "FullyConnectedOptions")
    y = b.tensor("y", [1, 8], "int8", 0.0004, -7)
    b.op("ADD", [h, h], [y], add_options(), "AddOptions")
    return b.build([x], [y])


@pytest.mark.slow
@pytest.mark.parametrize("target", list(TARGETS))
def test_left_shifted_requantisation_clean_under_sanitizers(tmp_path: Path, target: str) -> None:
    """Negative values shifted left (undefined in C99) used to be in every requantisation with a
    multiplier above 1 and in every ADD: now defined, and still bit-exact with TFLite Micro."""
    pytest.importorskip("tflite_micro")
    from tvmc_micro.compiler import compile_model

    from tests.quantized.qharness import Tflm

    model = _left_shift_model()
    (tmp_path / "ls.tflite").write_bytes(model)
    compile_model(tmp_path / "ls.tflite", tmp_path / "ls.tar", **_options(target))  # type: ignore[arg-type]
    built = build(extract(tmp_path / "ls.tar", tmp_path / "mlf"), sanitize=True, extra_cflags=["-O0"])
    assert built.model["compute_path"] == "integer"
    rng = np.random.default_rng(12)
    xs = [rng.integers(-128, 128, (1, 16)).astype(np.int8) for _ in range(N_SAMPLES)]
    tflm = Tflm(model)
    for got, x in zip(built.run([[x] for x in xs], tmp_path), xs, strict=True):
        np.testing.assert_array_equal(got[0], tflm(x)[0])
