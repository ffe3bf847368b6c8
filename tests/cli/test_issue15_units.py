"""Issue 15 pieces that need no compile: what the timer counts, estimates, sample loading, validation metrics,
the JSON schema checker and the MAC/attribution helpers."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import yaml
from tvmc_micro.compiler.op_report import CallView, SourceGraph, SourceOp, attribute, live_bytes
from tvmc_micro.device.counter import Counter, describe_counter, estimate_ms, icount_shift
from tvmc_micro.errors import TvmcError
from tvmc_micro.json_output import RUN_SCHEMA, check
from tvmc_micro.runner import load_samples
from tvmc_micro.validate import compare

REPO = Path(__file__).resolve().parents[2]
IN = [{"name": "x", "shape": [1, 4], "dtype": "float32"}]


def _project(tmp: Path, template: str, board: str) -> Path:
    shutil.copy(REPO / "template_projects" / template / "boards.yaml", tmp / "boards.yaml")
    from microtvm_api.options import SAVED_OPTIONS_FILE

    (tmp / SAVED_OPTIONS_FILE).write_text(json.dumps({"board": board}))
    return tmp


def test_cortex_m_qemu_counts_instructions(tmp_path: Path) -> None:
    c = describe_counter("cortex_m", _project(tmp_path, "cortex_m", "mps2_an386"), {}, 25_000_000)
    assert (c.unit, c.exact, c.per_tick, c.clock_hz) == ("instructions", True, 40.0, 25_000_000)
    assert "-icount shift=0" in c.basis and "mps2-an386" in c.basis
    assert estimate_ms(c, 4_000_000, 80e6) == (50.0, 80e6)  # 4 M instructions at 80 MHz
    assert estimate_ms(c, 4_000_000, None) == (160.0, 25e6)  # the board's clock_hz
    off = describe_counter("cortex_m", tmp_path, {"qemu_icount": "false"}, 25_000_000)
    assert off.unit == "seconds" and not off.exact and estimate_ms(off, 1.0, 80e6) is None


def test_zephyr_qemu_shift_and_real_board_cycles(tmp_path: Path) -> None:
    c = describe_counter("zephyr", _project(tmp_path, "zephyr", "qemu_cortex_m3"), {}, 12_000_000)
    # shift=6: 64 ns per instruction; 1 tick = 1e9 / 12e6 ns = 1.302 instructions.
    assert c.unit == "instructions" and c.per_tick == pytest.approx(1e9 / 64 / 12e6)
    real = describe_counter("zephyr", tmp_path, {"board": "nucleo_l4r5zi"}, 120_000_000)
    assert (real.unit, real.per_tick, real.clock_hz) == ("cycles", 1.0, 120_000_000)
    native = describe_counter("zephyr", tmp_path, {"board": "native_sim"}, 1_000_000)
    assert native.unit == "seconds"
    host = describe_counter("crt_host", tmp_path, {}, 1_000_000_000)
    assert host.unit == "seconds" and host.per_tick == 1e-9
    with pytest.raises(ValueError):
        describe_counter("crt_host", tmp_path, {}, 0)
    assert icount_shift(["-icount", "shift=7,align=off"]) == 7 and icount_shift(["-M", "x"]) is None


def test_every_board_has_a_clock() -> None:
    cm = yaml.safe_load((REPO / "template_projects/cortex_m/boards.yaml").read_text())
    assert all(isinstance(b["clock_hz"], int) and b["clock_hz"] > 0 for b in cm.values())
    zb = yaml.safe_load((REPO / "template_projects/zephyr/boards.yaml").read_text())["boards"]
    assert all("clock_hz" in b for b in zb.values())
    assert Counter("cycles", 1.0, True, "x", 10).resolution() == "1 cycles per timer tick"


def test_samples_from_batch_directory_and_fill(tmp_path: Path) -> None:
    batch = np.arange(12, dtype=np.float32).reshape(3, 1, 4)
    np.savez(tmp_path / "b.npz", x=batch)
    got = load_samples(IN, str(tmp_path / "b.npz"))
    assert len(got) == 3 and np.array_equal(got[2][0], batch[2])
    np.savez(tmp_path / "lead.npz", x=batch.reshape(3, 4))  # leading N replaces the model's 1
    assert len(load_samples(IN, str(tmp_path / "lead.npz"))) == 3
    d = tmp_path / "dir"
    d.mkdir()
    np.savez(d / "a.npz", x=np.ones((1, 4), np.float32))
    np.savez(d / "b.npz", x=batch)
    assert len(load_samples(IN, str(d))) == 4
    assert len(load_samples(IN, None, samples=20, seed=1)) == 20
    with pytest.raises(TvmcError, match="cannot be combined"):
        load_samples(IN, str(d), samples=2)
    (tmp_path / "empty").mkdir()
    with pytest.raises(TvmcError, match=r"no \.npz files"):
        load_samples(IN, str(tmp_path / "empty"))
    two = [*IN, {"name": "y", "shape": [1, 2], "dtype": "float32"}]
    np.savez(tmp_path / "uneven.npz", x=batch, y=np.zeros((2, 1, 2), np.float32))
    with pytest.raises(TvmcError, match="batches differ"):
        load_samples(two, str(tmp_path / "uneven.npz"))


def test_metrics() -> None:
    model = {"outputs": [{"name": "y"}], "compute_path": "float"}
    want = np.array([1.0, 2.0, 3.0, 4.0], np.float32)
    got = want.copy()
    got[1] = 2.5
    (c,) = compare({"y": got}, [want], model, "onnx", 1e-5)
    assert c.mismatched == 1 and c.first_mismatches == [1]
    assert c.max_abs_diff == pytest.approx(0.5) and c.max_rel_diff == pytest.approx(0.25)
    assert c.rmse == pytest.approx(0.25) and c.mae == pytest.approx(0.125)
    assert c.l2r == pytest.approx(0.5 / np.linalg.norm(want)) and c.top1_agree and 0.99 < c.cosine < 1
    (same,) = compare({"y": want}, [want], model, "onnx", None)
    assert same.mismatched == 0 and same.cosine == 1.0 and same.l2r == 0.0
    q = {"outputs": [{"name": "y"}], "compute_path": "integer"}
    (i,) = compare({"y": np.array([5, 1], np.int8)}, [np.array([1, 5], np.int8)], q, "tflite", None)
    assert not i.top1_agree and i.mismatched == 2


def test_schema_checker_finds_problems() -> None:
    assert check({}, RUN_SCHEMA)[:1] == ["$: missing 'schema'"]
    assert check({"schema": "other"}, {"properties": {"schema": {"enum": ["a"]}}}) == [
        "$.schema: 'other' is not one of ['a']"
    ]
    assert check(True, {"type": "integer"}) == ["$: bool is not integer"]
    assert check([1, -1], {"type": "array", "items": {"type": "integer", "minimum": 0}}) == ["$[1]: -1 < 0"]


def test_attribution_by_dataflow_and_names() -> None:
    """conv -> relu -> conv -> add(skip) -> relu as two kernels: the first must not take the second conv."""
    ops = [
        SourceOp(0, "Conv", "c0", ["x"], ["a"]),
        SourceOp(1, "Relu", "r0", ["a"], ["b"]),
        SourceOp(2, "Conv", "c1", ["b"], ["c"]),
        SourceOp(3, "Add", "add", ["c", "x"], ["d"]),
        SourceOp(4, "Relu", "r1", ["d"], ["y"]),
    ]
    src = SourceGraph(ops, ["x"], ["y"], dict.fromkeys("xabcdy", 16))
    calls = [
        CallView("fused_conv2d_add_relu", [0], [1]),
        CallView("fused_conv2d1_add_add1_relu", [1, 0], [2]),
    ]
    assert attribute(src, calls, {0: 16, 1: 16, 2: 16}, [0], [2]) == [[0, 1], [2, 3, 4]]
    timeline = [
        {"offset": 0, "size_bytes": 8, "first_step": 0, "last_step": 1},
        {"offset": 4, "size_bytes": 8, "first_step": 1, "last_step": 2},
    ]
    assert live_bytes(timeline, 1) == 12 and live_bytes(timeline, 0) == 8 and live_bytes(timeline, 5) == 0
