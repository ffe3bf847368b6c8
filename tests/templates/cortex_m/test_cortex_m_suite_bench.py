"""benchmarks/cortex_m_suite.py: one model of the TFLM baseline note measured for real under QEMU (the
--json schema the issue specifies), and its error paths (unknown model, missing baseline, missing model
file)."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[3]
SUITE = REPO / "benchmarks" / "cortex_m_suite.py"
BASELINE = REPO.parent / "shared" / "baselines" / "tflm-cortex-m4.md"
KEYS = {"instructions", "macs", "tflm_instructions", "arena_bytes", "text_bytes", "rodata_bytes"}


def _suite(*args: str, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(REPO / "client"), str(REPO / "project_api")]))
    return subprocess.run(
        [sys.executable, str(SUITE), *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env=env,
        check=False,
    )


def _baseline_figure(key: str, stem: str) -> int:
    m = re.search(rf"^{key} {stem} = ([\d_]+)\s*$", BASELINE.read_text(encoding="utf-8"), re.M)
    assert m is not None
    return int(m.group(1).replace("_", ""))


def test_suite_measures_one_model_with_json(models_dir: Path, tmp_path: Path) -> None:
    if shutil.which("qemu-system-arm") is None or shutil.which("arm-none-eabi-gcc") is None:
        pytest.skip("needs qemu-system-arm and arm-none-eabi-gcc")
    if not BASELINE.is_file():
        pytest.skip(f"the TFLM baseline note {BASELINE} is absent")
    if not (models_dir / "ad01_int8.tflite").is_file():
        pytest.skip(f"{models_dir}/ad01_int8.tflite is absent")
    out = tmp_path / "suite.json"
    r = _suite("--models", "ad01_int8", "--models-dir", str(models_dir), "--json", str(out))
    assert r.returncode == 0, r.stderr[-3000:]
    doc = json.loads(out.read_text())
    assert list(doc["models"]) == ["ad01_int8"] and doc["skipped"] == {}
    row = doc["models"]["ad01_int8"]
    assert KEYS <= set(row)
    assert all(isinstance(row[k], int) and row[k] > 0 for k in KEYS)
    # the TFLM figure and the MAC count agree with the baseline note (ad01 is ten FULLY_CONNECTED layers)
    assert row["tflm_instructions"] == _baseline_figure("TFLM_CMSIS_NN_INSTRUCTIONS", "ad01_int8")
    assert row["macs"] == _baseline_figure("MACS", "ad01_int8") == 264_192
    assert row["repeatable"] is True
    # instructions are the whole inference: at least one per MAC pair (SMLAD) and below TFLM's count
    assert row["macs"] // 2 < row["instructions"] < row["tflm_instructions"]
    assert row["ratio_to_tflm"] == round(row["instructions"] / row["tflm_instructions"], 3)
    # the weights (≈270 KB) are in .rodata, the arena holds the 640-byte input
    assert row["rodata_bytes"] > 264_192 and row["arena_bytes"] >= 640
    assert re.search(r"^\s+ad01_int8\s+[\d,]+\s+264,192\s", r.stdout, re.M), r.stdout


def test_suite_refuses_a_model_not_in_the_baseline(tmp_path: Path) -> None:
    if not BASELINE.is_file():
        pytest.skip(f"the TFLM baseline note {BASELINE} is absent")
    r = _suite("--models", "no_such_model", "--json", str(tmp_path / "x.json"), timeout=60)
    assert r.returncode == 2 and "--models no_such_model: not in" in r.stderr and "kws_ref_model" in r.stderr
    assert not (tmp_path / "x.json").exists()
    r = _suite("--json", str(tmp_path / "no" / "x.json"), timeout=60)
    assert r.returncode == 2 and f"folder {tmp_path / 'no'} does not exist" in r.stderr


def test_suite_names_a_missing_baseline(tmp_path: Path) -> None:
    r = _suite("--baseline", str(tmp_path / "none.md"), timeout=60)
    assert r.returncode == 1 and f"cannot read the TFLM baseline {tmp_path / 'none.md'}" in r.stderr
    empty = tmp_path / "empty.md"
    empty.write_text("# no figures here\n")
    r = _suite("--baseline", str(empty), timeout=60)
    assert r.returncode == 1 and "has no 'TFLM_CMSIS_NN_INSTRUCTIONS <model> = N' line" in r.stderr


def test_suite_skips_a_missing_model_with_the_reason(tmp_path: Path) -> None:
    baseline = tmp_path / "b.md"
    baseline.write_text("TFLM_CMSIS_NN_INSTRUCTIONS absent_model = 1_000\n")
    out = tmp_path / "s.json"
    r = _suite("--baseline", str(baseline), "--models-dir", str(tmp_path), "--json", str(out), timeout=60)
    assert r.returncode == 0, r.stderr
    doc = json.loads(out.read_text())
    assert doc["models"] == {} and "absent_model.tflite not found" in doc["skipped"]["absent_model"]
    assert "docs/quantized-models.md" in doc["skipped"]["absent_model"]
    assert "absent_model: skipped:" in r.stdout
