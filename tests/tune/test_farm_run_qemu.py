"""`tvmc run --rpc-tracker --rpc-key`: a real `python -m tvm.exec.rpc_tracker` on 127.0.0.1 and real
`tvmc micro rpc-worker cortex_m` workers (QEMU mps2_an386). The farm run's outputs, timing and JSON equal a
local `tvmc run` of the same project; each refusal (no tracker, unknown key, busy worker, a worker that is
not ours, a project of another platform, a failure on the worker, a worker killed mid-run) is triggered
for real."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from tests.conftest import MlfCache, model_path
from tests.tune.farm_procs import free_port, spawn, stop

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        shutil.which("qemu-system-arm") is None or shutil.which("arm-none-eabi-gcc") is None,
        reason="needs qemu-system-arm and arm-none-eabi-gcc",
    ),
]
psutil = pytest.importorskip("psutil")
pytest.importorskip("tornado")
pytest.importorskip("cloudpickle")

KEY = "cortex_m.mps2_an386.runtest"
MODEL = "hello_world_int8.tflite"
TARGET = "c -mcpu=cortex-m4"


def _keys(port: int) -> dict[str, int]:
    from tvm import rpc
    from tvmc_micro.tune.farm_run import tracker_keys

    keys: dict[str, int] = tracker_keys(rpc.connect_tracker("127.0.0.1", port).summary())
    return keys


def _worker(port: int, key: str, slot: int) -> subprocess.Popen[bytes]:
    return spawn(
        "-m",
        "tvmc_micro",
        "micro",
        "rpc-worker",
        "cortex_m",
        "--project-option",
        "board=mps2_an386",
        "--tracker",
        f"127.0.0.1:{port}",
        "--key",
        key,
        "--port",
        str(port + 10 + 20 * slot),
        "--port-end",
        str(port + 29 + 20 * slot),
    )


def _wait_key(port: int, key: str, n: int = 1) -> None:
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline and _keys(port).get(key, 0) < n:
        time.sleep(0.3)
    assert _keys(port).get(key, 0) >= n, _keys(port)


@pytest.fixture(scope="module")
def farm() -> Iterator[tuple[int, list[subprocess.Popen[bytes]]]]:
    """A tracker and one worker under KEY; yields the tracker port and the process list (tests may add)."""
    port = free_port()
    procs = [
        spawn(
            "-m",
            "tvm.exec.rpc_tracker",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--port-end",
            str(port + 1),
        )
    ]
    try:
        time.sleep(1.5)
        procs.append(_worker(port, KEY, 0))
        _wait_key(port, KEY)
        yield port, procs
    finally:
        stop(procs)


def _tvmc(*args: str, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "tvmc_micro", *args], capture_output=True, text=True, timeout=timeout
    )


@pytest.fixture(scope="module")
def projects(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """A cortex_m mps2_an386 project of the model, built and flashed (for the local run), and a crt_host
    project of the same MLF (never built: it is refused before anything is sent)."""
    root = tmp_path_factory.mktemp("farm_run")
    mlf = MlfCache(root)(MODEL, target=TARGET)
    made = {}
    for name, platform in (
        ("cortex_m", ["cortex_m", "--project-option", "board=mps2_an386"]),
        ("crt_host", ["crt_host"]),
    ):
        made[name] = root / name
        r = _tvmc("micro", "create-project", str(made[name]), str(mlf), *platform)
        assert r.returncode == 0, r.stderr
    for step in ("build", "flash"):
        r = _tvmc("micro", step, str(made["cortex_m"]))
        assert r.returncode == 0, r.stderr
    return made


def _rpc(port: int, key: str = KEY) -> list[str]:
    return ["--rpc-tracker", f"127.0.0.1:{port}", "--rpc-key", key]


def test_farm_run_equals_local_run(
    farm: tuple[int, list[subprocess.Popen[bytes]]], projects: dict[str, Path], tmp_path: Path
) -> None:
    port, _ = farm
    model = model_path(MODEL)
    # A batch of 4 samples by input name, as a user passes it (-i in.npz).
    meta = json.loads((projects["cortex_m"] / "model" / "metadata.json").read_text())["models"][0]
    rng = np.random.default_rng(7)
    batch = {
        t["name"]: rng.integers(-128, 128, size=(4, *t["shape"])).astype(t["dtype"]) for t in meta["inputs"]
    }
    savez: Any = np.savez  # numpy's stub types **arrays as the allow_pickle flag
    savez(tmp_path / "in.npz", **batch)
    common = [
        "-i",
        str(tmp_path / "in.npz"),
        "--print-time",
        "--repeat",
        "3",
        "--profile",
        "--validate",
        str(model),
    ]
    local = _tvmc(
        "run",
        str(projects["cortex_m"]),
        *common,
        "-o",
        str(tmp_path / "l.npz"),
        "--json",
        str(tmp_path / "l.json"),
    )
    assert local.returncode == 0, local.stderr
    remote = _tvmc(
        "run",
        str(projects["cortex_m"]),
        *common,
        "-o",
        str(tmp_path / "r.npz"),
        "--json",
        str(tmp_path / "r.json"),
        *_rpc(port),
    )
    assert remote.returncode == 0, remote.stderr
    assert f"a worker of {KEY!r}" in remote.stderr
    # Same printing (outputs' validation, timing in exact QEMU instructions, profile table).
    assert remote.stdout == local.stdout
    assert "instructions" in remote.stdout and "FULLY_CONNECTED" in remote.stdout
    lo, ro = np.load(tmp_path / "l.npz"), np.load(tmp_path / "r.npz")
    assert sorted(lo) == sorted(ro)
    for name in lo:
        assert lo[name].shape[0] == 4
        np.testing.assert_array_equal(lo[name], ro[name])
    lj, rj = json.loads((tmp_path / "l.json").read_text()), json.loads((tmp_path / "r.json").read_text())
    from tvmc_micro.json_output import RUN_SCHEMA, check

    assert check(lj, RUN_SCHEMA) == [] and check(rj, RUN_SCHEMA) == []
    assert lj.pop("worker") is None
    worker = rj.pop("worker")
    assert worker.startswith("cortex_m:mps2_an386@") and worker.endswith(f"/{farm[1][1].pid}")
    assert lj == rj


def test_unreachable_tracker_is_named_fast(projects: dict[str, Path]) -> None:
    port = free_port()  # nothing listens there
    started = time.monotonic()
    r = _tvmc("run", str(projects["cortex_m"]), *_rpc(port))
    assert r.returncode == 2, r.stderr
    assert f"cannot reach the RPC tracker at 127.0.0.1:{port}" in r.stderr
    assert "python -m tvm.exec.rpc_tracker" in r.stderr and "Traceback" not in r.stderr
    assert time.monotonic() - started < 30  # not TVM's minute of retries


def test_unknown_key_lists_the_trackers_keys(
    farm: tuple[int, list[subprocess.Popen[bytes]]], projects: dict[str, Path]
) -> None:
    port, _ = farm
    started = time.monotonic()
    r = _tvmc("run", str(projects["cortex_m"]), *_rpc(port, "no.such.key"), "--rpc-timeout", "2")
    assert r.returncode == 2, r.stderr
    assert "no worker is registered" in r.stderr and "'no.such.key'" in r.stderr
    assert f"{KEY!r} (1)" in r.stderr, r.stderr
    assert time.monotonic() - started < 30


def test_busy_worker_times_out(
    farm: tuple[int, list[subprocess.Popen[bytes]]], projects: dict[str, Path]
) -> None:
    from tvm import rpc

    port, _ = farm
    held = rpc.connect_tracker("127.0.0.1", port).request(KEY, session_timeout=120)  # the only worker, taken
    try:
        r = _tvmc("run", str(projects["cortex_m"]), *_rpc(port), "--rpc-timeout", "3")
        assert r.returncode == 2, r.stderr
        assert "stayed busy for 3 s" in r.stderr, r.stderr
    finally:
        del held
    _wait_key(port, KEY)


def test_other_platform_project_is_refused(
    farm: tuple[int, list[subprocess.Popen[bytes]]], projects: dict[str, Path]
) -> None:
    port, _ = farm
    r = _tvmc("run", str(projects["crt_host"]), *_rpc(port))
    assert r.returncode == 2, r.stderr
    assert "is a 'crt_host' project, but the workers of key" in r.stderr
    assert "'cortex_m' board 'mps2_an386'" in r.stderr


def test_failure_on_the_worker_is_reported(
    farm: tuple[int, list[subprocess.Popen[bytes]]], projects: dict[str, Path]
) -> None:
    port, _ = farm
    r = _tvmc("run", str(projects["cortex_m"]), *_rpc(port), "--project-option", "stack_bytes=lots")
    assert r.returncode == 2, r.stderr
    assert "on worker cortex_m:mps2_an386@" in r.stderr and "stack_bytes" in r.stderr, r.stderr


def test_plain_tvm_server_is_not_a_worker(
    farm: tuple[int, list[subprocess.Popen[bytes]]], projects: dict[str, Path]
) -> None:
    port, procs = farm
    key = "plain.tvm.server"
    procs.append(
        spawn(
            "-m",
            "tvm.exec.rpc_server",
            "--tracker",
            f"127.0.0.1:{port}",
            "--key",
            key,
            "--host",
            "127.0.0.1",
            "--port",
            str(port + 60),
            "--port-end",
            str(port + 69),
        )
    )
    _wait_key(port, key)
    r = _tvmc("run", str(projects["cortex_m"]), *_rpc(port, key))
    assert r.returncode == 2, r.stderr
    assert "did not say which device it serves" in r.stderr, r.stderr


def test_killed_worker_fails_the_run_clearly(
    farm: tuple[int, list[subprocess.Popen[bytes]]], projects: dict[str, Path], tmp_path: Path
) -> None:
    port, procs = farm
    key = KEY + ".victim"
    victim = _worker(port, key, 1)
    procs.append(victim)
    _wait_key(port, key)
    log = tmp_path / "run.log"
    with open(log, "w") as err:
        run = subprocess.Popen(
            [sys.executable, "-m", "tvmc_micro", "run", str(projects["cortex_m"]), *_rpc(port, key)],
            stdout=subprocess.DEVNULL,
            stderr=err,
        )
        # Kill the worker's whole process group as soon as it builds or runs (the compiler or QEMU shows).
        deadline, seen = time.monotonic() + 120, []
        while time.monotonic() < deadline and run.poll() is None:
            try:
                seen = [c.name() for c in psutil.Process(victim.pid).children(recursive=True)]
            except psutil.Error:
                seen = []
            if any(n.startswith(("arm-none-eabi", "cc1", "make", "qemu-system")) for n in seen):
                break
            time.sleep(0.05)
        assert run.poll() is None, log.read_text()
        os.killpg(victim.pid, signal.SIGKILL)
        victim.wait(timeout=15)
        assert run.wait(timeout=120) == 2
    text = log.read_text()
    assert f"of {key!r} stopped while running" in text and "the connection to it closed mid-run" in text, text
    assert "Traceback" not in text
