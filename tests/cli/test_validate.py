"""`tvmc run --validate MODEL`: the device's outputs against the model's reference interpreter, through the
real CLI on crt_host projects (gcc builds): a float ONNX model (onnxruntime), KWS on the integer path
(tflite-micro, bit-exact), a model with other weights (mismatch → exit 1), and every refusal."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import numpy_helper

REPO = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.slow


def tvmc(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "tvmc_micro", *args], capture_output=True, text=True, timeout=300, env=env
    )


def _flashed_project(tmp: Path, model: Path) -> Path:
    project = tmp / "project"
    for step in (
        ("compile", str(model), "-o", str(tmp / "m.tar")),
        ("micro", "create-project", str(project), str(tmp / "m.tar"), "crt_host"),
        ("micro", "build", str(project)),
        ("micro", "flash", str(project)),
    ):
        r = tvmc(*step)
        assert r.returncode == 0, r.stderr
    return project


@pytest.fixture(scope="module")
def mlp(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """(model, flashed crt_host project) for the quickstart's generated ONNX classifier."""
    tmp = tmp_path_factory.mktemp("validate_mlp")
    sys.path.insert(0, str(REPO / "scripts"))
    from make_demo_model import make_model

    make_model(str(tmp / "mlp.onnx"))
    return tmp / "mlp.onnx", _flashed_project(tmp, tmp / "mlp.onnx")


def test_float_onnx_matches_onnxruntime(mlp: tuple[Path, Path]) -> None:
    model, project = mlp
    r = tvmc("run", str(project), "--fill-mode", "random", "--seed", "3", "--validate", str(model))
    assert r.returncode == 0, r.stderr
    assert "validation against onnxruntime:" in r.stdout and "PASSED" in r.stdout
    assert "is not the file the project was compiled from" not in r.stderr
    assert "output 'probs' float32[10]:" in r.stdout


def test_other_weights_fail_with_exit_1(mlp: tuple[Path, Path], tmp_path: Path) -> None:
    model, project = mlp
    other = onnx.load(str(model))
    w = other.graph.initializer[0]
    w.CopyFrom(numpy_helper.from_array(numpy_helper.to_array(w) * np.float32(1.5), w.name))
    onnx.save(other, str(tmp_path / "other.onnx"))
    r = tvmc("run", str(project), "--seed", "3", "--validate", str(tmp_path / "other.onnx"))
    assert r.returncode == 1, r.stderr
    assert "MISMATCH:" in r.stdout and "FAILED" in r.stdout
    assert "note: other.onnx is not the file the project was compiled from (mlp.onnx" in r.stderr
    # A tolerance wide enough for any softmax output accepts it.
    r = tvmc(
        "run",
        str(project),
        "--seed",
        "3",
        "--validate",
        str(tmp_path / "other.onnx"),
        "--validate-tolerance",
        "1",
    )
    assert r.returncode == 0 and "PASSED" in r.stdout, r.stdout + r.stderr


def test_kws_integer_path_is_bit_exact(models_dir: Path, tmp_path: Path) -> None:
    model = models_dir / "kws_ref_model.tflite"
    project = _flashed_project(tmp_path, model)
    r = tvmc("run", str(project), "--seed", "0", "--validate", str(model))
    assert r.returncode == 0, r.stderr
    assert "validation against tflite-micro:" in r.stdout
    assert "int8[12]: bit-exact" in r.stdout and "PASSED" in r.stdout


def _assert_refused(r: subprocess.CompletedProcess[str], *needles: str) -> None:
    assert r.returncode == 2, r.stdout + r.stderr
    assert "Traceback" not in r.stderr and "hint:" in r.stderr
    for needle in needles:
        assert needle in r.stderr, r.stderr


def test_model_that_does_not_fit_the_project(mlp: tuple[Path, Path], tmp_path: Path) -> None:
    _, project = mlp
    other = onnx.helper.make_model(
        onnx.helper.make_graph(
            [onnx.helper.make_node("Relu", ["x"], ["y"])],
            "wide",
            [onnx.helper.make_tensor_value_info("x", onnx.TensorProto.FLOAT, [1, 32])],
            [onnx.helper.make_tensor_value_info("y", onnx.TensorProto.FLOAT, [1, 32])],
        ),
        opset_imports=[onnx.helper.make_opsetid("", 13)],
    )
    onnx.save(other, str(tmp_path / "wide.onnx"))
    r = tvmc("run", str(project), "--validate", str(tmp_path / "wide.onnx"))
    _assert_refused(r, "its input #0 has shape [1, 32], the project's model [1, 16]")


def test_refusals_before_the_device_is_touched(mlp: tuple[Path, Path], tmp_path: Path) -> None:
    model, project = mlp
    _assert_refused(tvmc("run", str(project), "--validate", str(tmp_path / "nope.onnx")), "no such file")
    (tmp_path / "notes.txt").write_text("not a model\n")
    _assert_refused(
        tvmc("run", str(project), "--validate", str(tmp_path / "notes.txt")), "not a TFLite flatbuffer"
    )
    r = tvmc("run", str(project), "--validate-tolerance", "1")
    assert r.returncode == 2 and "--validate-tolerance needs --validate MODEL" in r.stderr
    r = tvmc("run", str(project), "--validate", str(model), "--validate-tolerance", "-1")
    assert r.returncode == 2 and "must be >= 0" in r.stderr


def test_missing_reference_interpreter_names_the_package(mlp: tuple[Path, Path], tmp_path: Path) -> None:
    """An onnxruntime that cannot be imported (a package that raises ImportError first on the path)."""
    model, project = mlp
    broken = tmp_path / "shadow" / "onnxruntime"
    broken.mkdir(parents=True)
    (broken / "__init__.py").write_text("raise ImportError('onnxruntime is not usable here')\n")
    env = dict(
        os.environ, PYTHONPATH=os.pathsep.join([str(tmp_path / "shadow"), os.environ.get("PYTHONPATH", "")])
    )
    r = tvmc("run", str(project), "--validate", str(model), env=env)
    _assert_refused(r, "--validate needs onnxruntime", "pip install onnxruntime")
