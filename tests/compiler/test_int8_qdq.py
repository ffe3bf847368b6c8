"""int8 models through the float (QDQ) path: distance from TFLite Micro in LSB and top-1 agreement.

Not bit-exact by design (float requantisation); the integer path has its own tests. The thresholds are
the measured figures with a little headroom, so a regression (e.g. AVERAGE_POOL truncating again: KWS
max 54 LSB, top-1 191/200) fails.
"""

from __future__ import annotations

import numpy as np
import pytest

N = 200


def _tflm(model_file, samples):
    from tflite_micro.python.tflite_micro import runtime

    interp = runtime.Interpreter.from_file(str(model_file))
    out = []
    for s in samples:
        for i, x in enumerate(s):
            interp.set_input(x, i)
        interp.invoke()
        out.append([interp.get_output(0).copy()])
    return out


def _int8_samples(model: dict, n: int, seed: int) -> list[list[np.ndarray]]:
    rng = np.random.default_rng(seed)
    return [
        [rng.integers(-128, 128, size=i["shape"], dtype=np.int64).astype(np.int8) for i in model["inputs"]]
        for _ in range(n)
    ]


@pytest.mark.slow
@pytest.mark.parametrize(
    "key, file, max_lsb, min_top1",
    [
        ("hello_int8_qdq", "hello_world_int8.tflite", 4, None),
        ("kws_qdq", "kws_ref_model.tflite", 24, 0.98),
    ],
)
def test_qdq_distance_from_tflm(compiled, models_dir, tmp_path, key, file, max_lsb, min_top1) -> None:
    built = compiled.built(key)
    assert built.model["compute_path"] == "qdq"
    samples = _int8_samples(built.model, N, seed=11)
    ours = np.stack([o[0].astype(np.int32) for o in built.run(samples, tmp_path)])
    ref = np.stack([o[0].astype(np.int32) for o in _tflm(models_dir / file, samples)])
    lsb = np.abs(ours - ref)
    flat_ours, flat_ref = ours.reshape(N, -1), ref.reshape(N, -1)
    top1 = float(np.mean(np.argmax(flat_ours, axis=1) == np.argmax(flat_ref, axis=1)))
    print(
        f"{key}: max {lsb.max()} LSB, mean {lsb.mean():.2f} LSB, exact {np.mean(lsb == 0) * 100:.1f}%, "
        f"top-1 agreement {top1 * N:.0f}/{N}"
    )
    assert lsb.max() <= max_lsb
    if min_top1 is not None:
        assert top1 >= min_top1


@pytest.mark.slow
@pytest.mark.parametrize(
    "key, file", [("hello_int8", "hello_world_int8.tflite"), ("kws_int8", "kws_ref_model.tflite")]
)
def test_integer_path_through_generic_harness(compiled, models_dir, tmp_path, key, file) -> None:
    """When the integer importer is installed, its MLF runs in the same harness, bit-exact with TFLM."""
    try:
        from tvmc_micro.compiler.quantized import import_tflite_quantized  # noqa: F401
    except ImportError:
        pytest.skip("integer int8 path (tvmc_micro.compiler.quantized) not installed")
    built = compiled.built(key)
    assert built.model["compute_path"] == "integer"
    mem = built.model["memory"]
    assert mem["arena_bytes"] <= 1.1 * mem["activation_lower_bound_bytes"]
    samples = _int8_samples(built.model, 100, seed=5)
    ours = np.stack([o[0] for o in built.run(samples, tmp_path)])
    ref = np.stack([o[0] for o in _tflm(models_dir / file, samples)])
    assert np.array_equal(ours, ref), f"max {np.abs(ours.astype(int) - ref).max()} LSB from TFLM"
