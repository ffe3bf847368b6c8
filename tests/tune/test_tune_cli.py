"""`tvmc tune` and `tvmc compile --tuning-records` through the real CLI: error paths, crt_host end to end
(with resume), cortex_m mps2_an386 under QEMU (tuned instruction count <= untuned, outputs still match)."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import model_path


def tvmc(*args: str, ok: bool = True, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    r = subprocess.run(
        [sys.executable, "-m", "tvmc_micro", *args], capture_output=True, text=True, timeout=timeout
    )
    if ok:
        assert r.returncode == 0, f"tvmc {' '.join(args)} failed:\n{r.stderr}"
    return r


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["tune", "nope.tflite", "crt_host", "-o", "r.jsonl"], "does not exist"),
        (["tune", "{model}", "-o", "r.jsonl"], "say where to measure"),
        (["tune", "{model}", "crt_host"], "-o/--output RECORDS is required"),
        (["tune", "{model}", "crt_host", "-o", "r.jsonl", "--trials", "0"], "--trials must be at least 1"),
        (["tune", "{model}", "crt_host", "-o", "r.jsonl", "--early-stopping", "0"], "--early-stopping"),
        (["tune", "{model}", "crt_host", "-o", "r.jsonl", "--timeout", "0"], "--timeout must be positive"),
        (["tune", "{model}", "-o", "r.jsonl", "--rpc-tracker", "127.0.0.1:9"], "go together"),
        (
            ["tune", "{model}", "-o", "r.jsonl", "--rpc-tracker", "nohost", "--rpc-key", "k"],
            "is not HOST:PORT",
        ),
        (
            [
                "tune",
                "{model}",
                "crt_host",
                "-o",
                "r.jsonl",
                "--rpc-tracker",
                "127.0.0.1:9",
                "--rpc-key",
                "k",
            ],
            "drop PLATFORM",
        ),
        (["tune", "{model}", "crt_host", "-o", "/no/such/dir/r.jsonl"], "cannot write records"),
        (
            ["tune", "{model}", "crt_host", "-o", "r.jsonl", "--tuning-records", "none.jsonl"],
            "does not exist",
        ),
        (["tune", "{model}", "template", "-o", "r.jsonl"], "needs --template-dir"),
        (["compile", "{model}", "-o", "m.tar", "--tuning-records", "none.jsonl"], "does not exist"),
        (["micro", "rpc-worker", "crt_host", "--tracker", "x", "--key", "k"], "is not HOST:PORT"),
        (["micro", "rpc-worker", "crt_host", "--tracker", "127.0.0.1:9", "--key", " "], "must not be empty"),
        (
            [
                "micro",
                "rpc-worker",
                "crt_host",
                "--tracker",
                "127.0.0.1:9",
                "--key",
                "k",
                "--port",
                "5",
                "--port-end",
                "4",
            ],
            "not a port range",
        ),
    ],
)
def test_usage_errors(tmp_path: Path, args: list[str], message: str) -> None:
    model = str(model_path("hello_world_float.tflite"))
    args = [a.replace("{model}", model) for a in args]
    args = [str(tmp_path / a) if a.endswith((".jsonl", ".tar")) and "/" not in a else a for a in args]
    r = tvmc(*args, ok=False, timeout=120)
    assert r.returncode == 2, r.stderr
    assert message in r.stderr, r.stderr


def test_unreachable_tracker_is_a_clear_error(tmp_path: Path) -> None:
    model = str(model_path("hello_world_float.tflite"))
    r = tvmc(
        "tune",
        model,
        "-o",
        str(tmp_path / "r.jsonl"),
        "--rpc-tracker",
        "127.0.0.1:1",
        "--rpc-key",
        "k",
        ok=False,
    )
    assert r.returncode == 2 and "cannot reach the RPC tracker" in r.stderr, r.stderr


def test_list_tasks() -> None:
    r = tvmc("tune", str(model_path("hello_world_float.tflite")), "--list-tasks")
    assert "3 task(s) of hello_world_float" in r.stdout
    assert "tile_f in [1, 2, 4, 8, 16]" in r.stdout and "hand-set: tile_f=16" in r.stdout


def test_records_of_another_target_are_ignored_with_a_note(tmp_path: Path) -> None:
    model = str(model_path("hello_world_float.tflite"))
    rec = {
        "format": "tvmc-micro/tune-record/1",
        "task": "t-0",
        "config": {"tile_f": 2},
        "cost": 1.0,
        "unit": "seconds",
        "target": "{}",
        "platform": "crt_host",
        "board": "",
        "tool_version": "0.1.0",
    }
    (tmp_path / "r.jsonl").write_text(json.dumps(rec) + "\n")
    r = tvmc("compile", model, "-o", str(tmp_path / "m.tar"), "--tuning-records", str(tmp_path / "r.jsonl"))
    assert "ignored 1 record(s) of another target" in r.stderr
    assert "applied the best config to 0 of 3 task(s)" in r.stderr


def _records(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


@pytest.mark.slow
def test_crt_host_tune_compile_and_resume(tmp_path: Path) -> None:
    model = str(model_path("hello_world_float.tflite"))
    out = tmp_path / "r.jsonl"
    r = tvmc("tune", model, "crt_host", "-o", str(out), "--trials", "2", "--seed", "3")
    first = _records(out)
    assert len(first) == 3 + 3 * 2  # the baseline of 3 tasks, then 2 candidates each
    assert all(x["platform"] == "crt_host" and x["unit"] == "seconds" for x in first)
    assert "tuned 3 task(s)" in r.stdout and "next: tvmc compile" in r.stdout
    # Resume: nothing measured before is measured again (the baseline is not re-recorded).
    r = tvmc("tune", model, "crt_host", "-o", str(out), "--trials", "1", "--seed", "3")
    assert "resuming from 9 record(s)" in r.stderr
    second = _records(out)[len(first) :]
    assert len(second) == 3
    seen = {(x["task"], json.dumps(x["config"], sort_keys=True)) for x in first}
    assert not any((x["task"], json.dumps(x["config"], sort_keys=True)) in seen for x in second)
    r = tvmc("compile", model, "-o", str(tmp_path / "m.tar"), "--tuning-records", str(out))
    assert "applied the best config to 3 of 3 task(s)" in r.stderr
    project = tmp_path / "p"
    tvmc("micro", "create-project", str(project), str(tmp_path / "m.tar"), "crt_host")
    tvmc("micro", "build", str(project))
    tvmc("micro", "flash", str(project))
    pytest.importorskip("ai_edge_litert")
    tvmc("run", "--device", "micro", str(project), "--validate", model)


def _instructions(tmp_path: Path, mlf: Path, name: str, model: str) -> int:
    project = tmp_path / name
    tvmc(
        "micro", "create-project", str(project), str(mlf), "cortex_m", "--project-option", "board=mps2_an386"
    )
    tvmc("micro", "build", str(project))
    tvmc("micro", "flash", str(project))
    js = tmp_path / f"{name}.json"
    args = ["run", "--device", "micro", str(project), "--print-time", "--json", str(js)]
    try:
        import ai_edge_litert  # noqa: F401

        args += ["--validate", model]
    except ImportError:
        pass
    tvmc(*args)
    return int(json.loads(js.read_text())["timing"]["mean"])


@pytest.mark.slow
@pytest.mark.skipif(
    shutil.which("qemu-system-arm") is None or shutil.which("arm-none-eabi-gcc") is None,
    reason="needs qemu-system-arm and arm-none-eabi-gcc",
)
def test_cortex_m_tuned_is_not_slower_and_still_correct(tmp_path: Path) -> None:
    model = str(model_path("hello_world_float.tflite"))
    out = tmp_path / "r.jsonl"
    target = "c -mcpu=cortex-m4"
    tvmc(
        "tune",
        model,
        "cortex_m",
        "--project-option",
        "board=mps2_an386",
        "--target",
        target,
        "-o",
        str(out),
        "--trials",
        "2",
    )
    recs = _records(out)
    assert all(x["unit"] == "instructions" and x["board"] == "mps2_an386" for x in recs)
    tvmc("compile", model, "--target", target, "-o", str(tmp_path / "plain.tar"))
    tvmc(
        "compile", model, "--target", target, "-o", str(tmp_path / "tuned.tar"), "--tuning-records", str(out)
    )
    untuned = _instructions(tmp_path, tmp_path / "plain.tar", "plain", model)
    tuned = _instructions(tmp_path, tmp_path / "tuned.tar", "tuned", model)
    assert tuned <= untuned, (tuned, untuned)


@pytest.mark.slow
@pytest.mark.skipif(
    shutil.which("qemu-system-arm") is None or shutil.which("arm-none-eabi-gcc") is None,
    reason="needs qemu-system-arm and arm-none-eabi-gcc",
)
def test_cortex_m_int8_c_kernel_knobs_are_bit_exact(tmp_path: Path) -> None:
    """The int8 DSP kernels' knobs measured on mps2_an386: every candidate firmware's outputs equal the
    hand-set kernels' bit for bit (a record carries an error otherwise), and the tuned compile still
    matches the TFLite reference."""
    model = str(model_path("hello_world_int8.tflite"))
    out = tmp_path / "r.jsonl"
    target = "c -mcpu=cortex-m4"
    tvmc(
        "tune", model, "cortex_m", "--project-option", "board=mps2_an386", "--target", target,
        "-o", str(out), "--trials", "3",
    )  # fmt: skip
    recs = _records(out)
    assert {tuple(x["config"]) for x in recs} == {("fc_block",)}, recs
    assert len(recs) >= 3 + 3 and all(x["error"] is None and x["cost"] for x in recs), recs
    tvmc(
        "compile", model, "--target", target, "-o", str(tmp_path / "tuned.tar"), "--tuning-records", str(out)
    )
    _instructions(tmp_path, tmp_path / "tuned.tar", "tuned", model)
