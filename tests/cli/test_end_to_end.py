"""The README's main job through the real CLI on crt_host: compile → create-project → build → flash → run,
with outputs compared against the reference interpreters (LiteRT for float, TFLite Micro for int8)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from tests.conftest import model_path

pytestmark = pytest.mark.slow


def tvmc(*args: str) -> subprocess.CompletedProcess[str]:
    r = subprocess.run(
        [sys.executable, "-m", "tvmc_micro", *args], capture_output=True, text=True, timeout=300
    )
    assert r.returncode == 0, f"tvmc {' '.join(args)} failed:\n{r.stderr}"
    return r


def _project(tmp_path: Path, mlf: Path) -> Path:
    project = tmp_path / "project"
    tvmc("micro", "create-project", str(project), str(mlf), "crt_host")
    tvmc("micro", "build", str(project))
    tvmc("micro", "flash", str(project))
    return project


def _litert(model: Path, inputs: list[np.ndarray]) -> list[np.ndarray]:
    from ai_edge_litert.interpreter import Interpreter

    interp = Interpreter(model_path=str(model))
    interp.allocate_tensors()
    for detail, array in zip(interp.get_input_details(), inputs, strict=True):
        interp.set_tensor(detail["index"], array)
    interp.invoke()
    return [interp.get_tensor(d["index"]) for d in interp.get_output_details()]


def _tflm(model: Path, inputs: list[np.ndarray]) -> list[np.ndarray]:
    from tflite_micro.python.tflite_micro import runtime

    interp = runtime.Interpreter.from_file(str(model))
    for i, array in enumerate(inputs):
        interp.set_input(array, i)
    interp.invoke()
    return [interp.get_output(0)]  # the reference models here have one output


def _run(project: Path, tmp_path: Path, inputs: dict[str, np.ndarray], *extra: str) -> tuple[dict, str]:
    np.savez(tmp_path / "in.npz", **inputs)
    r = tvmc(
        "run",
        "--device",
        "micro",
        str(project),
        "-i",
        str(tmp_path / "in.npz"),
        "-o",
        str(tmp_path / "out.npz"),
        *extra,
    )
    with np.load(tmp_path / "out.npz") as out:
        return {k: out[k] for k in out.files}, r.stdout


def _metadata(project: Path) -> dict:
    return json.loads((project / "model" / "metadata.json").read_text())["models"][0]


def test_sine_float_matches_litert(tmp_path: Path, compiled_mlf) -> None:
    model = model_path("hello_world_float.tflite")
    project = _project(tmp_path, compiled_mlf("hello_world_float.tflite"))
    meta = _metadata(project)
    rng = np.random.default_rng(7)
    for x in rng.uniform(0, 2 * np.pi, 5):
        array = np.array([[x]], np.float32)
        outputs, _ = _run(project, tmp_path, {meta["inputs"][0]["name"]: array})
        (want,) = _litert(model, [array])
        got = outputs[meta["outputs"][0]["name"]]
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)


def test_kws_int8_bit_exact_with_tflm_and_prints_top_and_time(tmp_path: Path, compiled_mlf) -> None:
    model = model_path("kws_ref_model.tflite")
    project = _project(tmp_path, compiled_mlf("kws_ref_model.tflite"))
    meta = _metadata(project)
    (inp,), (outp,) = meta["inputs"], meta["outputs"]
    rng = np.random.default_rng(0)
    compared = 0
    for _ in range(3):
        array = rng.integers(-128, 128, size=inp["shape"], dtype=np.int16).astype(np.int8)
        outputs, stdout = _run(project, tmp_path, {inp["name"]: array}, "--print-top", "3", "--print-time")
        (want,) = _tflm(model, [array])
        np.testing.assert_array_equal(outputs[outp["name"]], want.reshape(outp["shape"]))
        compared += 1
        assert "top 3" in stdout and "on-device time over 1 run(s)" in stdout
    assert compared == 3


def test_run_refuses_a_device_running_another_model(tmp_path: Path, compiled_mlf) -> None:
    """Rebuild a project with another model's MLF but do not flash: run must refuse (signature)."""
    project = _project(tmp_path, compiled_mlf("hello_world_float.tflite"))
    other = tmp_path / "other"
    tvmc("micro", "create-project", str(other), str(compiled_mlf("hello_world_int8.tflite")), "crt_host")
    tvmc("micro", "build", str(other))
    # Put the other model's firmware where this project's flash would be (a board flashed with another model).
    flashed = sorted((project / "flashed").iterdir())
    assert flashed, "crt_host flash records the image under flashed/"
    (flashed[0]).write_bytes((other / "build" / "firmware").read_bytes())
    r = subprocess.run(
        [sys.executable, "-m", "tvmc_micro", "run", str(project)], capture_output=True, text=True, timeout=120
    )
    assert r.returncode == 2
    assert "this board runs model" in r.stderr and f"flash {project}" in r.stderr


def test_run_without_flash_says_to_flash(tmp_path: Path, compiled_mlf) -> None:
    project = tmp_path / "p"
    tvmc("micro", "create-project", str(project), str(compiled_mlf("hello_world_float.tflite")), "crt_host")
    tvmc("micro", "build", str(project))
    r = subprocess.run(
        [sys.executable, "-m", "tvmc_micro", "run", str(project)], capture_output=True, text=True, timeout=120
    )
    assert r.returncode != 0 and "flash" in r.stderr


def test_profile_lists_every_operator(tmp_path: Path, compiled_mlf) -> None:
    project = _project(tmp_path, compiled_mlf("hello_world_float.tflite"))
    meta = _metadata(project)
    r = tvmc("run", str(project), "--fill-mode", "zeros", "--profile")
    # Each operator's row names the model operators it computes (the kernel's name when none matched).
    for op in meta["operators"]:
        shown = [f"{s['type']}#{s['index']}" for s in op["source_ops"]] or [op["name"]]
        assert all(label in r.stdout for label in shown), (shown, r.stdout)
    assert "total" in r.stdout
