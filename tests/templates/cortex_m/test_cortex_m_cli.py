"""The user's workflow on the emulated Cortex-M4F, through the real `tvmc` CLI: create-project, build,
flash, `tvmc run --device micro`; outputs bit-identical with the same MLF on crt_host and with TFLite
Micro, and `--print-time` giving the same tick count on every run (QEMU -icount)."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from cortex_m_support import require_qemu, require_toolchain

from tests.conftest import model_path

pytestmark = pytest.mark.slow


def tvmc(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(
        [sys.executable, "-m", "tvmc_micro", *args], capture_output=True, text=True, timeout=300
    )
    if check:
        assert result.returncode == 0, f"tvmc {' '.join(args)} failed:\n{result.stdout}\n{result.stderr}"
    return result


def _project(mlf: Path, project: Path, platform: str, *options: str) -> Path:
    tvmc("micro", "create-project", str(project), str(mlf), platform, *options)
    tvmc("micro", "build", str(project))
    tvmc("micro", "flash", str(project))
    return project


def _run(project: Path, inputs: dict[str, np.ndarray], workdir: Path, *extra: str) -> tuple[np.ndarray, str]:
    workdir.mkdir(parents=True, exist_ok=True)
    np.savez(workdir / "in.npz", **inputs)
    r = tvmc(
        "run",
        "--device",
        "micro",
        str(project),
        "-i",
        str(workdir / "in.npz"),
        "-o",
        str(workdir / "out.npz"),
        *extra,
    )
    with np.load(workdir / "out.npz") as out:
        (name,) = out.files
        return out[name], r.stdout


def _ticks(stdout: str) -> int:
    match = re.search(r"\(([\d,]+) ticks per run\)", stdout)
    assert match, stdout
    return int(match.group(1).replace(",", ""))


@pytest.mark.parametrize("model", ["hello_world_int8.tflite", "kws_ref_model.tflite"])
def test_tvmc_run_on_mps2_an386_equals_crt_host_and_tflm(
    model: str, compiled_mlf: Any, tmp_path: Path
) -> None:
    require_toolchain()
    require_qemu()
    from tflite_micro.python.tflite_micro import runtime

    mlf = compiled_mlf(model)
    board = _project(mlf, tmp_path / "cortex_m", "cortex_m", "--project-option", "board=mps2_an386")
    host = _project(mlf, tmp_path / "crt_host", "crt_host")
    import json

    meta = json.loads((board / "model" / "metadata.json").read_text())["models"][0]
    (inp,) = meta["inputs"]
    rng = np.random.default_rng(0)
    reference = runtime.Interpreter.from_file(str(model_path(model)))
    for i in range(2):
        x = rng.integers(-128, 128, size=inp["shape"], dtype=np.int16).astype(np.int8)
        on_board, stdout = _run(board, {inp["name"]: x}, tmp_path / f"b{i}", "--print-time", "--repeat", "2")
        on_host, _ = _run(host, {inp["name"]: x}, tmp_path / f"h{i}")
        reference.set_input(x, 0)
        reference.invoke()
        np.testing.assert_array_equal(on_board, on_host)  # same MLF, same bits
        np.testing.assert_array_equal(on_board, reference.get_output(0).reshape(on_board.shape))
        assert "on-device time over 2 run(s) (timer 25,000,000 Hz)" in stdout
        if i == 0:
            first, x0 = _ticks(stdout), x
    # The same input in a separate `tvmc run` (another QEMU boot): the same instruction count, to the tick.
    again = _ticks(_run(board, {inp["name"]: x0}, tmp_path / "again", "--print-time")[1])
    assert first == again > 0


def test_run_refuses_a_board_flashed_with_another_model(compiled_mlf: Any, tmp_path: Path) -> None:
    """A project whose emulated board holds another model's image: the signature check refuses to run."""
    require_toolchain()
    require_qemu()
    sine = _project(
        compiled_mlf("hello_world_int8.tflite"),
        tmp_path / "sine",
        "cortex_m",
        "--project-option",
        "board=mps2_an385",
    )
    other = tmp_path / "other"
    tvmc(
        "micro",
        "create-project",
        str(other),
        str(compiled_mlf("hello_world_float.tflite")),
        "cortex_m",
        "--project-option",
        "board=mps2_an385",
    )
    tvmc("micro", "build", str(other))
    # The board "holds" the other model: what a stale flash looks like.
    (sine / "build" / "flashed.elf").write_bytes((other / "build" / "firmware.elf").read_bytes())
    r = tvmc("run", str(sine), "--fill-mode", "zeros", check=False)
    assert r.returncode == 2
    assert "this board runs model 'hello_world_float'" in r.stderr and f"flash {sine}" in r.stderr


def test_create_project_notes_a_target_that_is_not_the_boards_cpu(compiled_mlf: Any, tmp_path: Path) -> None:
    """A generic-`c` MLF runs on the board but misses its specialised kernels: create-project says which
    --target to compile with; an MLF for the board's own -mcpu gets no note."""
    generic = tvmc(
        "micro", "create-project", str(tmp_path / "a"), str(compiled_mlf("hello_world_int8.tflite")),
        "cortex_m", "--project-option", "board=mps2_an386",
    )
    assert "note: the model was compiled for 'c'; mps2_an386 is a cortex-m4" in generic.stderr
    assert '--target "c -mcpu=cortex-m4"' in generic.stderr
    matched = tvmc(
        "micro", "create-project", str(tmp_path / "b"),
        str(compiled_mlf("hello_world_int8.tflite", target="c -mcpu=cortex-m4")),
        "cortex_m", "--project-option", "board=mps2_an386",
    )
    assert "note: the model was compiled for" not in matched.stderr
