"""Issue 15 through the real CLI: compile/analyze/run --json against their schemas, analyze's totals equal
the metadata's, validation over 20 random samples (pass, then exit 1 on a model with one weight byte
changed), exit codes 2 for bad usage, and instruction counts with an estimate on cortex_m under QEMU."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import tarfile
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import numpy_helper
from tvmc_micro.json_output import SCHEMAS, check

pytestmark = pytest.mark.slow


def tvmc(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "tvmc_micro", *args], capture_output=True, text=True, timeout=300
    )


def _ok(r: subprocess.CompletedProcess[str]) -> subprocess.CompletedProcess[str]:
    assert r.returncode == 0, r.stdout + r.stderr
    return r


@pytest.fixture(scope="module")
def hello(models_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, Path]:
    """(model, MLF, flashed crt_host project) of the float ONNX hello-world model."""
    tmp = tmp_path_factory.mktemp("issue15")
    model = tmp / "hello.onnx"
    shutil.copy(models_dir / "hello_world_float.onnx", model)
    _ok(tvmc("compile", str(model), "-o", str(tmp / "m.tar"), "--json", str(tmp / "compile.json")))
    project = tmp / "p"
    _ok(tvmc("-q", "micro", "create-project", str(project), str(tmp / "m.tar"), "crt_host"))
    _ok(tvmc("-q", "micro", "build", str(project)))
    _ok(tvmc("-q", "micro", "flash", str(project)))
    return model, tmp / "m.tar", project


def _metadata(mlf: Path) -> dict:  # type: ignore[type-arg]
    with tarfile.open(mlf) as tar:
        member = tar.extractfile("metadata.json")
        assert member is not None
        return json.load(member)["models"][0]  # type: ignore[no-any-return]


def test_compile_and_analyze_json_match_metadata(hello: tuple[Path, Path, Path], tmp_path: Path) -> None:
    _, mlf, _ = hello
    meta = _metadata(mlf)
    compiled = json.loads((mlf.parent / "compile.json").read_text())
    assert check(compiled, SCHEMAS["compile"]) == []
    assert compiled["memory"] == meta["memory"]
    r = _ok(
        tvmc(
            "-q", "analyze", str(mlf), "--json", str(tmp_path / "a.json"), "--html", str(tmp_path / "a.html")
        )
    )
    doc = json.loads((tmp_path / "a.json").read_text())
    assert check(doc, SCHEMAS["analyze"]) == []
    t = doc["totals"]
    assert t["macs"] == sum(op["macs"] for op in meta["operators"]) == compiled["macs"] > 0
    assert t["weight_bytes"] == meta["memory"]["constants_bytes"]
    assert t["arena_bytes"] == meta["memory"]["arena_bytes"]
    assert [op["source_ops"] for op in doc["operators"]] == [op["source_ops"] for op in meta["operators"]]
    assert {s["type"] for op in doc["operators"] for s in op["source_ops"]} == {"Gemm", "Relu"}
    assert f"{t['macs']:,}" in r.stdout and "activation lower bound" in r.stdout
    page = (tmp_path / "a.html").read_text()
    assert "<svg" in page and "http://" not in page.replace("http://www.w3.org/2000/svg", "")
    assert "<script" not in page and 'src="' not in page
    r = tvmc("analyze", str(mlf), "--png", str(tmp_path / "a.png"))  # matplotlib: the [test] extra
    assert r.returncode == 0 and (tmp_path / "a.png").read_bytes()[:4] == b"\x89PNG", r.stderr


def test_analyze_refusals(tmp_path: Path) -> None:
    r = tvmc("analyze", str(tmp_path / "nope.tar"))
    assert r.returncode == 2 and "does not exist" in r.stderr
    r = tvmc("analyze", str(tmp_path / "nope.tar"), "--json", str(tmp_path / "no" / "x.json"))
    assert r.returncode == 2 and "does not exist" in r.stderr


def test_validation_over_20_samples_and_one_changed_weight(
    hello: tuple[Path, Path, Path], tmp_path: Path
) -> None:
    model, _, project = hello
    out = tmp_path / "run.json"
    r = tvmc(
        "run",
        str(project),
        "--samples",
        "20",
        "--seed",
        "1",
        "--validate",
        str(model),
        "--profile",
        "--print-time",
        "--repeat",
        "3",
        "--json",
        str(out),
    )
    assert r.returncode == 0, r.stdout + r.stderr
    assert "over 20 samples" in r.stdout and "PASSED" in r.stdout
    for metric in ("max abs", "max rel", "rmse", "mae", "cosine", "l2r", "top-1 agreement 100.0%"):
        assert metric in r.stdout
    assert "ran sample 20/20" in r.stderr and "validated 20/20" in r.stderr
    doc = json.loads(out.read_text())
    assert check(doc, SCHEMAS["run"]) == [] and doc["samples"] == 20 and doc["exit_status"] == 0
    assert sum(op["macs"] for op in doc["profile"]["operators"]) == doc["profile"]["total"]["macs"]
    assert doc["profile"]["operators"][0]["source_ops"][0]["type"] == "Gemm"
    # One byte of one weight changed (the high byte of a float: a different value, not a rounding).
    m = onnx.load(str(model))
    init = max(m.graph.initializer, key=lambda t: int(np.prod(t.dims)))
    w = numpy_helper.to_array(init).copy()
    w.view(np.uint8).reshape(-1)[3] ^= 0x40
    init.CopyFrom(numpy_helper.from_array(w, init.name))
    onnx.save(m, str(tmp_path / "changed.onnx"))
    r = tvmc(
        "run",
        str(project),
        "-q",
        "--samples",
        "20",
        "--seed",
        "1",
        "--validate",
        str(tmp_path / "changed.onnx"),
        "--json",
        str(out),
    )
    assert r.returncode == 1, r.stdout + r.stderr
    assert "MISMATCH in" in r.stdout and "FAILED" in r.stdout and "off at" in r.stdout
    assert "ran sample" not in r.stderr  # -q
    doc = json.loads(out.read_text())
    assert check(doc, SCHEMAS["run"]) == [] and doc["exit_status"] == 1
    assert doc["validation"]["outputs"][0]["samples_failing"] > 0


def test_run_usage_errors_exit_2(hello: tuple[Path, Path, Path], tmp_path: Path) -> None:
    _, _, project = hello
    for args, needle in (
        (("--samples", "0"), "--samples must be at least 1"),
        (("--cpu-freq", "-5"), "--cpu-freq must be a clock"),
        (("--samples", "2", "-i", str(tmp_path)), "cannot be combined"),
        (("--json", str(tmp_path / "no" / "r.json")), "does not exist"),
        (("-i", str(tmp_path)), "has no .npz files"),
    ):
        r = tvmc("run", str(project), *args)
        assert r.returncode == 2 and needle in r.stderr, (args, r.stderr)


def test_cortex_m_kws_instructions_and_estimate(models_dir: Path, tmp_path: Path) -> None:
    if shutil.which("qemu-system-arm") is None or shutil.which("arm-none-eabi-gcc") is None:
        pytest.skip("needs qemu-system-arm and arm-none-eabi-gcc")
    mlf, project = tmp_path / "kws.tar", tmp_path / "p"
    _ok(
        tvmc(
            "-q",
            "compile",
            str(models_dir / "kws_ref_model.tflite"),
            "--target",
            "c -mcpu=cortex-m4",
            "-o",
            str(mlf),
        )
    )
    _ok(
        tvmc(
            "-q",
            "micro",
            "create-project",
            str(project),
            str(mlf),
            "cortex_m",
            "--project-option",
            "board=mps2_an386",
        )
    )
    _ok(tvmc("-q", "micro", "build", str(project)))
    # The firmware probes DWT CYCCNT at run time; under QEMU it does not count, so the figures below are
    # the board timer's, read as instructions (docs/timing.md, "Cycle counters").
    assert "#define BOARD_HAS_DWT 1" in (project / "generated" / "board_config.h").read_text()
    _ok(tvmc("-q", "micro", "flash", str(project)))
    r = _ok(
        tvmc(
            "run",
            str(project),
            "--print-time",
            "--profile",
            "--cpu-freq",
            "80e6",
            "--json",
            str(tmp_path / "r.json"),
        )
    )
    assert "instructions" in r.stdout and "-icount shift=0" in r.stdout
    assert "ESTIMATE from --cpu-freq" in r.stdout and "at 80 MHz" in r.stdout
    doc = json.loads((tmp_path / "r.json").read_text())
    assert check(doc, SCHEMAS["run"]) == []
    t = doc["timing"]
    assert t["unit"] == "instructions" and t["counter"]["exact"] and t["mean"] == t["ticks"]["mean"] * 40
    assert t["estimate"]["ms"] == pytest.approx(t["mean"] / 80e6 * 1e3)
    meta = _metadata(mlf)
    assert doc["profile"]["total"]["macs"] == sum(op["macs"] for op in meta["operators"]) == 2_656_768
    kinds = [s["type"] for op in doc["profile"]["operators"] for s in op["source_ops"]]
    assert kinds.count("CONV_2D") == 5 and kinds.count("DEPTHWISE_CONV_2D") == 4 and "SOFTMAX" in kinds
