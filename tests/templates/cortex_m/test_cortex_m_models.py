"""Real models, compiled by `tvmc_micro.compiler` (the session-wide MLF cache), on every emulated board
under QEMU: outputs bit-exact with the reference interpreter (TFLite Micro), instruction counts exactly
repeatable under -icount, per-operator profiles that add up."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import cortex_m_firmware as fw
import numpy as np
import pytest
from cortex_m_device import make_project, open_session
from cortex_m_support import BOARD_NAMES, require_qemu, require_toolchain

from tests.conftest import model_path

KWS = "kws_ref_model.tflite"
SINE = "hello_world_int8.tflite"


def tflm_outputs(model_file: str, inputs: list[np.ndarray]) -> list[np.ndarray]:
    """The reference interpreter for int8 models: TensorFlow Lite Micro's reference kernels."""
    from tflite_micro.python.tflite_micro import runtime

    interpreter = runtime.Interpreter.from_file(str(model_path(model_file)))
    results = []
    for x in inputs:
        interpreter.set_input(x.reshape(interpreter.get_input_details(0)["shape"]), 0)
        interpreter.invoke()
        results.append(interpreter.get_output(0).copy())
    return results


def _int8_samples(size: int, count: int) -> list[np.ndarray]:
    rng = np.random.default_rng(0)
    samples = [np.zeros(size, np.int8), rng.integers(-128, 128, size=size, dtype=np.int16).astype(np.int8)]
    samples += [rng.integers(-128, 128, size=size, dtype=np.int16).astype(np.int8) for _ in range(count - 2)]
    return samples


def _run_all(session: Any, samples: list[np.ndarray]) -> list[np.ndarray]:
    outputs = []
    for x in samples:
        session.set_input(0, x.tobytes())
        session.run()
        outputs.append(np.frombuffer(session.get_output(0), np.int8))
    return outputs


def _timed_twice(session: Any, x: np.ndarray) -> tuple[Any, Any]:
    """Two timed runs of one input. A run consumes its inputs (they live in the arena), so each timed run
    gets them set again: the count is then exactly repeatable even where a kernel's path depends on the
    data (Cortex-M3's kernels, float compares)."""
    timed = []
    for _ in range(2):
        session.set_input(0, x.tobytes())
        timed.append(session.time_runs(1))
    return timed[0], timed[1]


@pytest.mark.slow
@pytest.mark.parametrize("board", BOARD_NAMES)
def test_sine_model_on_every_board(board: str, compiled_mlf: Any, tmp_path: Path) -> None:
    require_toolchain()
    require_qemu()
    handler = make_project(compiled_mlf(SINE), tmp_path / "proj", board)
    samples = [np.array([v], np.int8) for v in range(-128, 128, 5)]  # the input range, every 5th value
    with open_session(handler) as session:
        info = session.info()
        assert info.timer_hz == fw.load_boards()[board].timer_clock_hz
        got = _run_all(session, samples)
        first, second = _timed_twice(session, samples[-1])
    for x, out, want in zip(samples, got, tflm_outputs(SINE, samples), strict=True):
        np.testing.assert_array_equal(out, want.reshape(-1), err_msg=f"input {x}")
    # -icount shift=0: 1 instruction = 1 ns, so timer counts are exact and repeat run after run.
    assert first.total_ticks == second.total_ticks and first.min_ticks == first.max_ticks > 0


@pytest.mark.slow
@pytest.mark.parametrize("board", BOARD_NAMES)
def test_kws_on_every_board(board: str, compiled_mlf: Any, tmp_path: Path) -> None:
    """KWS (int8, 12 operators) bit-exact with TFLite Micro on each board, with a repeatable count and a
    per-operator profile that adds up to the whole run."""
    require_toolchain()
    require_qemu()
    # Compiled for the board's own CPU, as a user would: the DSP boards (M4F, M7) get the SMLAD kernels.
    target = f"c -mcpu={fw.load_boards()[board].cpu}"
    handler = make_project(compiled_mlf(KWS, target=target), tmp_path / "proj", board)
    samples = _int8_samples(490, 3)
    with open_session(handler) as session:
        info = session.info()
        assert info.inputs[0].shape == (1, 49, 10, 1) and info.outputs[0].dtype == "int8"
        got = _run_all(session, samples)
        first, second = _timed_twice(session, samples[-1])
        session.set_input(0, samples[-1].tobytes())
        profile = session.profile_ops()
    for out, want in zip(got, tflm_outputs(KWS, samples), strict=True):
        np.testing.assert_array_equal(out, want.reshape(-1))
    assert first.total_ticks == second.total_ticks and first.min_ticks == first.max_ticks
    assert len(profile.op_ticks) == len(info.op_names) > 5
    # The profiled run differs from a plain one only by the hook calls at the operator boundaries.
    assert abs(profile.total_ticks - first.min_ticks) <= 2 * len(info.op_names)
    assert sum(profile.op_ticks) <= profile.total_ticks
