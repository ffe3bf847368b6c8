"""A real RPC tracker and two `tvmc micro rpc-worker cortex_m` workers (QEMU mps2_an386) on 127.0.0.1:
one worker is SIGKILLed while it measures a candidate; the candidate is retried on the other worker and
every candidate of the run has its record (none lost, none failed)."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.conftest import model_path
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

KEY = "cortex_m.mps2_an386.test"
TARGET = "c -mcpu=cortex-m4"


def _workers(port: int) -> int:
    from tvmc_micro.tune.farm import FarmMeasurer

    return FarmMeasurer(("127.0.0.1", port), KEY).workers()


def _qemu_under(pid: int) -> int | None:
    """The pid of a qemu-system-arm process descended from `pid`, if one runs now."""
    try:
        for child in psutil.Process(pid).children(recursive=True):
            if child.name().startswith("qemu-system"):
                return int(child.pid)
    except psutil.Error:
        pass
    return None


def test_killed_worker_loses_no_record(tmp_path: Path) -> None:
    from tvmc_micro.tune.tasks import extract_tasks

    model = model_path("hello_world_float.tflite")
    trials = 3
    mt = extract_tasks(model, TARGET)
    expected = sum(1 + min(trials, t.size - 1) for t in mt.tasks if t.space)
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
    workers: list[subprocess.Popen[bytes]] = []
    try:
        time.sleep(1.5)
        for n in range(2):
            workers.append(
                spawn(
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
                    KEY,
                    "--port",
                    str(port + 10 + 20 * n),
                    "--port-end",
                    str(port + 29 + 20 * n),
                )
            )
        procs += workers
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline and _workers(port) < 2:
            time.sleep(0.5)
        assert _workers(port) == 2
        out = tmp_path / "r.jsonl"
        log = tmp_path / "tune.log"
        with open(log, "w") as err:
            tune = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "tvmc_micro",
                    "tune",
                    str(model),
                    "--target",
                    TARGET,
                    "--rpc-tracker",
                    f"127.0.0.1:{port}",
                    "--rpc-key",
                    KEY,
                    "-o",
                    str(out),
                    "--trials",
                    str(trials),
                ],
                stdout=subprocess.DEVNULL,
                stderr=err,
                start_new_session=True,
            )
            procs.append(tune)
            # Once the baseline is recorded, candidates are on both workers: kill the first worker seen
            # running QEMU (a candidate in flight) with SIGKILL, its whole process group.
            victim, qemu = None, None
            deadline = time.monotonic() + 300
            while victim is None and time.monotonic() < deadline and tune.poll() is None:
                if out.exists() and out.read_text().strip():
                    for w in workers:
                        qemu = _qemu_under(w.pid)
                        if qemu is not None:
                            victim = w
                            break
                time.sleep(0.1)
            assert victim is not None, "no candidate was seen running on a worker"
            killed_at = len(out.read_text().splitlines())
            os.killpg(victim.pid, signal.SIGKILL)
            victim.wait(timeout=15)
            assert tune.wait(timeout=600) == 0, log.read_text()
        text = log.read_text()
        assert "retrying on another" in text, text
        assert "not measured" not in text, text
        records = [json.loads(x) for x in out.read_text().splitlines()]
        # Every candidate of the run has its measured record: the killed worker's one too.
        assert len(records) == expected, (len(records), expected, text)
        assert all(r["error"] is None and r["cost"] is not None for r in records), records
        assert len({(r["task"], json.dumps(r["config"], sort_keys=True)) for r in records}) == expected
        survivor = next(w for w in workers if w is not victim)
        after = records[killed_at:]
        assert after and all(r["worker"].endswith(f"/{survivor.pid}") for r in after), after
        # The killed worker's QEMU went with it (no orphan emulator left running).
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline and psutil.pid_exists(qemu):
            if psutil.Process(qemu).status() == psutil.STATUS_ZOMBIE:
                break
            time.sleep(0.2)
        alive = psutil.pid_exists(qemu) and psutil.Process(qemu).status() != psutil.STATUS_ZOMBIE
        if alive:
            os.kill(qemu, signal.SIGKILL)
        assert not alive, "the killed worker's QEMU was left running"
    finally:
        stop(procs)
