"""int16 ("16x8") LOGISTIC, TANH, SOFTMAX, MEAN and RESIZE_NEAREST_NEIGHBOR on the integer path, bit-exact
with TFLite Micro: LOGISTIC/TANH on every int16 value, the others on random inputs over several seeds;
what TFLite Micro refuses (and what its arithmetic would overflow on) is refused by name."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import int16_act_models as m
import numpy as np
import pytest
from qharness import bit_difference, compile_host

pytestmark = pytest.mark.usefixtures("tvm_available")

SEEDS = range(4)
_EVERY_INT16 = np.arange(-(1 << 15), 1 << 15, dtype=np.int16).reshape(256, 256)


def _reference(model: bytes) -> object:
    from tflite_micro.python.tflite_micro import runtime

    return runtime.Interpreter.from_bytes(model, arena_size=1 << 20)


def _worst(model: bytes, name: str, inputs: list[np.ndarray]) -> int:
    ours = compile_host(model, name)
    ref = _reference(model)
    worst = 0
    for x in inputs:
        ref.set_input(x, 0)  # type: ignore[attr-defined]
        ref.invoke()  # type: ignore[attr-defined]
        want = np.array(ref.get_output(0))  # type: ignore[attr-defined]
        worst = max(worst, bit_difference(want, ours(x)[0]))
    return worst


def _random(seed: int, shape: tuple[int, ...], spread: int = 1 << 15) -> np.ndarray:
    """int16 values around a random centre: full range (spread 2^15) or narrow rows, where softmax's exps
    do not all underflow."""
    rng = np.random.default_rng(seed)
    centre = int(rng.integers(-(1 << 15) + spread, (1 << 15) - spread + 1)) if spread < (1 << 15) else 0
    values = rng.integers(centre - spread, centre + spread, size=shape, dtype=np.int64)
    return np.clip(values, -(1 << 15), (1 << 15) - 1).astype(np.int16)


# --- LOGISTIC / TANH: exhaustive -------------------------------------------------------------------

# Power-of-two input scales TFLite handles exactly (2^-12; 2^-11 for TANH), others on the general path.
_SCALES = [2.0**-12, 2.0**-11, 2.0**-13, 3.0517578e-05, 0.000377, 0.0021, 0.05, 1.7]


@pytest.mark.parametrize("kind", ["LOGISTIC", "TANH"])
def test_logistic_tanh_every_int16_value(kind: str) -> None:
    for scale in _SCALES:
        model = m.activation(kind, scale, shape=(256, 256))
        assert _worst(model, f"{kind}_{scale}", [_EVERY_INT16]) == 0, scale


@pytest.mark.parametrize("kind", ["LOGISTIC", "TANH"])
def test_logistic_tanh_random_scales(kind: str) -> None:
    """Random float32 input scales over five decades, each on every int16 value."""
    rng = np.random.default_rng(7 if kind == "TANH" else 8)
    for k in range(6):
        scale = float(np.float32(np.exp(rng.uniform(np.log(1e-6), np.log(0.5)))))
        model = m.activation(kind, scale, shape=(256, 256))
        assert _worst(model, f"{kind}_r{k}", [_EVERY_INT16]) == 0, scale


# --- SOFTMAX, MEAN, RESIZE_NEAREST_NEIGHBOR: random inputs ----------------------------------------

MODELS: dict[str, tuple[Callable[[], bytes], int]] = {
    # name: (model, spread of the random inputs)
    "softmax_rows": (lambda: m.softmax(1, (3, 10)), 1 << 15),
    "softmax_narrow": (lambda: m.softmax(2, (4, 16)), 2000),
    "softmax_4d_beta": (lambda: m.softmax(3, (1, 2, 5, 33), beta=0.37), 6000),
    "softmax_wide_row": (lambda: m.softmax(4, (2, 700), beta=2.5), 1500),
    "softmax_big_scale": (lambda: m.softmax(5, (2, 9), input_scale=0.02), 300),
    "softmax_1d": (lambda: m.softmax(6, (12,), input_scale=1.3e-4), 1 << 14),
    "mean_hw_keep": (lambda: m.mean(10, (1, 5, 7, 3), [1, 2], True), 1 << 15),
    "mean_last_drop": (lambda: m.mean(11, (2, 3, 4, 9), [-1], False), 1 << 15),
    "mean_all_axes": (lambda: m.mean(12, (2, 3, 4, 5), [3, 0, 1, 2, 1], False), 1 << 15),
    "mean_zero_points": (lambda: m.mean(13, (1, 4, 6, 2), [2], True, (25, -40)), 1 << 15),
    "resize_nearest_up": (lambda: m.resize("RESIZE_NEAREST_NEIGHBOR", (1, 3, 4, 2), (5, 7)), 1 << 15),
    "resize_nearest_ratio": (lambda: m.resize("RESIZE_NEAREST_NEIGHBOR", (2, 3, 4, 3), (6, 8)), 1 << 15),
    "resize_nearest_align": (
        lambda: m.resize("RESIZE_NEAREST_NEIGHBOR", (1, 4, 5, 2), (7, 9), align_corners=True),
        1 << 15,
    ),
    "resize_nearest_half_down": (
        lambda: m.resize("RESIZE_NEAREST_NEIGHBOR", (1, 6, 5, 2), (4, 3), half_pixel=True),
        1 << 15,
    ),
}


@pytest.mark.parametrize("name", sorted(MODELS))
def test_int16_operator_bit_exact(name: str) -> None:
    build, spread = MODELS[name]
    model = build()
    shape = tuple(int(d) for d in _reference(model).get_input_details(0)["shape"])  # type: ignore[attr-defined]
    inputs = [_random(100 * seed + 7, shape, spread) for seed in SEEDS for _ in range(3)]
    assert _worst(model, name, inputs) == 0


@pytest.mark.parametrize("seed", SEEDS)
def test_softmax_random_scales_and_betas(seed: int) -> None:
    rng = np.random.default_rng(50 + seed)
    scale = float(np.float32(np.exp(rng.uniform(np.log(2e-5), np.log(3e-3)))))
    beta = float(np.float32(rng.uniform(0.2, 3.0)))
    model = m.softmax(60 + seed, (8, 24), beta=beta, input_scale=scale)
    spread = int(min(1 << 15, 12.0 / (scale * beta)))  # differences reaching exp(-12)
    assert _worst(model, f"softmax_s{seed}", [_random(seed * 31 + k, (8, 24), spread) for k in range(4)]) == 0


def test_int8_to_int16_softmax_still_takes_the_int8_kernel() -> None:
    from tflite_builder import ModelBuilder, softmax_options

    b = ModelBuilder()
    x = b.tensor("x", [2, 12], "int8", 0.05, 3)
    y = b.tensor("y", [2, 12], "int16", 1.0 / 65536, -32768)
    b.op("SOFTMAX", [x], [y], softmax_options(), "SoftmaxOptions")
    model = b.build([x], [y])
    rng = np.random.default_rng(3)
    inputs = [rng.integers(-128, 128, size=(2, 12)).astype(np.int8) for _ in range(8)]
    assert _worst(model, "softmax_8_16", inputs) == 0


# --- refusals ------------------------------------------------------------------------------------


def _refused() -> list[tuple[bytes, str, bool]]:
    """(model, expected reason, whether TFLite Micro refuses it too)."""
    return [
        (m.activation("LOGISTIC", 2.0**-12, output_scale=2.0**-14), "needs 2^-15", True),
        (m.activation("TANH", 0.0003, input_zero_point=7), "TFLite Micro needs zero point 0", True),
        (m.activation("TANH", 3.0), "input multiplier 36864 exceeds 32767", False),
        (m.softmax(1, (2, 5), output_scale=1.0 / 256), "int16 SOFTMAX needs 1/32768", True),
        (m.softmax(1, (2, 5), input_scale=60.0), "> 15 overflows", False),
        (m.softmax(1, (2, 5), input_scale=1e-30), "its multiplier is 0", False),
        (m.mean(1, (1, 300, 300, 1), [1, 2], True), "overflows TFLite's int32 accumulator", False),
        (m.resize("RESIZE_BILINEAR", (1, 3, 4, 2), (5, 7)), "supports int8 only", True),
    ]


def _tflm_refuses(model: bytes) -> bool:
    try:
        ref = _reference(model)
        shape = tuple(int(d) for d in ref.get_input_details(0)["shape"])  # type: ignore[attr-defined]
        ref.set_input(np.zeros(shape, np.int16), 0)  # type: ignore[attr-defined]
        ref.invoke()  # type: ignore[attr-defined]
    except Exception:
        return True
    return False


@pytest.mark.parametrize("case", range(8))
def test_refusals_name_the_requirement(case: int) -> None:
    from tvmc_micro.compiler.quantized import UnsupportedQuantizedModel, import_tflite_quantized

    model, reason, tflm_refuses = _refused()[case]
    with pytest.raises(UnsupportedQuantizedModel) as info:
        import_tflite_quantized(model, "refused")
    (problem,) = info.value.problems
    assert reason in problem.reason, problem.reason
    if tflm_refuses:  # the requirement is TFLite Micro's own
        assert _tflm_refuses(model)


def test_mixed_int8_int16_logistic_is_refused() -> None:
    from tflite_builder import ModelBuilder
    from tvmc_micro.compiler.quantized import UnsupportedQuantizedModel, import_tflite_quantized

    b = ModelBuilder()
    x = b.tensor("x", [4], "int8", 0.05, 0)
    y = b.tensor("y", [4], "int16", 2.0**-15, 0)
    b.op("LOGISTIC", [x], [y])
    with pytest.raises(UnsupportedQuantizedModel, match=r"input 'x' is int8 .* needs int16 per-tensor"):
        import_tflite_quantized(b.build([x], [y]), "mixed")


# --- through the C backend, under UndefinedBehaviorSanitizer --------------------------------------


def _five_ops() -> bytes:
    from tflite_builder import ModelBuilder, reducer_options, softmax_options
    from tflite_micro.tensorflow.lite.micro.python import schema_py_generated as schema

    shape = [1, 4, 6, 8]
    b = ModelBuilder()
    x = b.tensor("x", shape, "int16", 0.00041, 0)
    outs = []
    for kind in ("LOGISTIC", "TANH"):
        outs.append(b.tensor(kind.lower(), shape, "int16", 2.0**-15, 0))
        b.op(kind, [x], [outs[-1]])
    outs.append(b.tensor("softmax", shape, "int16", 1.0 / 32768, 0))
    b.op("SOFTMAX", [x], [outs[-1]], softmax_options(0.8), "SoftmaxOptions")
    outs.append(b.tensor("mean", [1, 8], "int16", 0.0003, 0))
    b.op("MEAN", [x, b.const_int32("axes", [1, 2])], [outs[-1]], reducer_options(False), "ReducerOptions")
    outs.append(b.tensor("resized", [1, 7, 9, 8], "int16", 0.00041, 0))
    o = schema.ResizeNearestNeighborOptionsT()
    o.halfPixelCenters = True
    b.op("RESIZE_NEAREST_NEIGHBOR", [x, b.const_int32("size", [7, 9])], [outs[-1]], o)
    return b.build([x], outs)


@pytest.mark.slow
def test_through_c_with_ubsan(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from tvmc_micro.compiler import compile_model

    from tests.compiler import compiler_harness as harness

    monkeypatch.setattr(
        harness, "CFLAGS", [*harness.CFLAGS, "-fsanitize=undefined", "-fno-sanitize-recover=undefined"]
    )
    model = _five_ops()
    (tmp_path / "five.tflite").write_bytes(model)
    result = compile_model(tmp_path / "five.tflite", tmp_path / "five.tar")
    assert result.metadata["models"][0]["compute_path"] == "integer"
    built = harness.build(harness.extract(tmp_path / "five.tar", tmp_path / "five"))
    samples = [[_random(k, (1, 4, 6, 8), 1 << 15 if k % 2 else 3000)] for k in range(12)]
    got = built.run(samples, tmp_path)
    ref = _reference(model)
    for sample, outputs in zip(samples, got, strict=True):
        ref.set_input(sample[0], 0)  # type: ignore[attr-defined]
        ref.invoke()  # type: ignore[attr-defined]
        for k, out in enumerate(outputs):
            want = np.array(ref.get_output(k)).reshape(out.shape)  # type: ignore[attr-defined]
            assert out.tobytes() == want.tobytes(), f"output {k} differs"
