"""benchmarks/tune_gain.py on one small model with few trials: it runs end to end under QEMU and its
--json has the documented schema, with figures that agree with the records it tuned."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import model_path

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        shutil.which("qemu-system-arm") is None or shutil.which("arm-none-eabi-gcc") is None,
        reason="needs qemu-system-arm and arm-none-eabi-gcc",
    ),
]

SCRIPT = Path(__file__).resolve().parents[2] / "benchmarks" / "tune_gain.py"


def test_tune_gain_json_schema(tmp_path: Path) -> None:
    model = model_path("hello_world_float.tflite")
    out = tmp_path / "gain.json"
    keep = tmp_path / "work"
    r = subprocess.run(
        [
            sys.executable,
            str(SCRIPT),
            "--models",
            str(model),
            "--trials",
            "1",
            "--keep",
            str(keep),
            "--json",
            str(out),
        ],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert r.returncode == 0, r.stderr
    assert "hello_world_float" in r.stdout and "untuned" in r.stdout
    doc = json.loads(out.read_text())
    entry = doc["models"]["hello_world_float"]
    for name in ("untuned_instructions", "tuned_instructions", "trials"):
        assert isinstance(entry[name], int) and entry[name] > 0, (name, entry)
    assert entry["trials"] == 1
    # Tuning from scratch: 3 tasks, the hand-set baseline plus one candidate each.
    records = [json.loads(x) for x in (keep / "hello_world_float.records.jsonl").read_text().splitlines()]
    assert len(records) == 6 and all(x["unit"] == "instructions" for x in records)
    # The tuned compile applies the best record per task: it is never the slower one by more than the
    # device timer's resolution (the cost of the per-operator profiler's instrumentation is not in it).
    assert entry["tuned_instructions"] <= entry["untuned_instructions"] + 40, entry


def test_tune_gain_rejects_an_unknown_model(tmp_path: Path) -> None:
    r = subprocess.run(
        [sys.executable, str(SCRIPT), "--models", str(tmp_path / "nope.tflite")],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert r.returncode == 2 and "not found" in r.stderr, r.stderr
