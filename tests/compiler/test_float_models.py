"""Float models: the MLF, built with gcc against the generic harness, equals LiteRT / onnxruntime."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

REL_TOL = 1e-5
N_SAMPLES = 20


def _litert(model_file: Path, samples: list[list[np.ndarray]]) -> list[list[np.ndarray]]:
    from ai_edge_litert.interpreter import Interpreter

    interp = Interpreter(model_path=str(model_file))
    interp.allocate_tensors()
    ins, outs = interp.get_input_details(), interp.get_output_details()
    result = []
    for sample in samples:
        for d, x in zip(ins, sample, strict=True):
            interp.set_tensor(d["index"], x)
        interp.invoke()
        result.append([interp.get_tensor(d["index"]).copy() for d in outs])
    return result


def _onnxruntime(model_file: Path, samples: list[list[np.ndarray]]) -> list[list[np.ndarray]]:
    import onnxruntime as ort

    sess = ort.InferenceSession(str(model_file), providers=["CPUExecutionProvider"])
    names = [i.name for i in sess.get_inputs()]
    return [list(sess.run(None, dict(zip(names, s, strict=True)))) for s in samples]


def _samples(model: dict, n: int, seed: int) -> list[list[np.ndarray]]:
    rng = np.random.default_rng(seed)
    return [
        [rng.uniform(-1.0, 1.0, size=i["shape"]).astype(i["dtype"]) for i in model["inputs"]]
        for _ in range(n)
    ]


@pytest.mark.slow
@pytest.mark.parametrize(
    "key, file, reference",
    [
        ("hello_float_tflite", "hello_world_float.tflite", _litert),
        ("hello_float_onnx", "hello_world_float.onnx", _onnxruntime),
        ("resnet_tflite", "pretrainedResnet.tflite", _litert),
        ("resnet_onnx", "pretrainedResnet.onnx", _onnxruntime),
        ("resnet_onnx_nhwc", "pretrainedResnet.onnx", _onnxruntime),  # --desired-layout NHWC
    ],
)
def test_float_model_matches_reference(compiled, models_dir, tmp_path, key, file, reference) -> None:
    built = compiled.built(key)
    samples = _samples(built.model, N_SAMPLES, seed=7)
    ours = built.run(samples, tmp_path)
    ref = reference(models_dir / file, samples)
    worst = 0.0
    for got, want in zip(ours, ref, strict=True):
        for g, w in zip(got, want, strict=True):
            assert g.shape == w.shape and g.dtype == w.dtype
            scale = max(float(np.max(np.abs(w))), 1e-30)
            worst = max(worst, float(np.max(np.abs(g.astype(np.float64) - w))) / scale)
    print(f"{key}: relative max error {worst:.2e} over {N_SAMPLES} random inputs")
    assert worst <= REL_TOL


@pytest.mark.slow
@pytest.mark.parametrize("key", ["hello_float_tflite", "resnet_tflite"])
def test_float_arena_within_bound(compiled, key) -> None:
    mem = compiled.built(key).model["memory"]
    assert mem["arena_bytes"] <= 1.1 * mem["activation_lower_bound_bytes"], mem
