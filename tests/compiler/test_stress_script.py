"""scripts/stress_models.py itself: `--samples` (consecutive runs with the model state carried) end to end
on a stateful model, and its bad-value error."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

# test_q_stateful imports tflite_builder from tests/quantized (as test_stress_regressions does).
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "quantized"))
from tests.quantized.test_q_stateful import lstm_converter_scales

REPO = Path(__file__).resolve().parents[2]
SCRIPT = REPO / "scripts" / "stress_models.py"


def _env() -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(
        [str(REPO / "client"), str(REPO / "project_api"), env.get("PYTHONPATH", "")]
    )
    return env


def test_run_one_carries_lstm_state_over_the_requested_samples(tmp_path: Path) -> None:
    model = tmp_path / "lstm.tflite"
    model.write_bytes(lstm_converter_scales(8))
    proc = subprocess.run(
        [sys.executable, str(SCRIPT), "run-one", str(model), "--samples", "6"],
        capture_output=True,
        text=True,
        env=_env(),
        timeout=600,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    result = json.loads([ln for ln in proc.stdout.splitlines() if ln.startswith("{")][-1])
    assert result["outcome"] == "exact" and result["reference"] == "tflm", result


def test_samples_below_one_is_a_clear_error(tmp_path: Path) -> None:
    proc = subprocess.run(
        [sys.executable, str(SCRIPT), "run", str(tmp_path), "--samples", "0"],
        capture_output=True,
        text=True,
        env=_env(),
        timeout=120,
    )
    assert proc.returncode == 2
    assert "--samples: must be at least 1 (got 0)" in proc.stderr
    assert "Traceback" not in proc.stderr
