"""A real RPC tracker and two `tvmc micro rpc-worker` processes on 127.0.0.1, crt_host devices."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.conftest import model_path

pytestmark = pytest.mark.slow
pytest.importorskip("tornado")
pytest.importorskip("cloudpickle")
pytest.importorskip("psutil")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _workers(port: int, key: str) -> int:
    from tvmc_micro.tune.farm import FarmMeasurer

    return FarmMeasurer(("127.0.0.1", port), key).workers()


def test_two_workers_behind_a_tracker(tmp_path: Path) -> None:
    port = _free_port()
    key = "crt_host.test"
    procs = [
        subprocess.Popen(
            [
                sys.executable,
                "-m",
                "tvm.exec.rpc_tracker",
                "--host",
                "127.0.0.1",
                "--port",
                str(port),
                "--port-end",
                str(port + 1),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
    ]
    try:
        time.sleep(1.5)
        for n in range(2):
            procs.append(
                subprocess.Popen(
                    [
                        sys.executable,
                        "-m",
                        "tvmc_micro",
                        "micro",
                        "rpc-worker",
                        "crt_host",
                        "--tracker",
                        f"127.0.0.1:{port}",
                        "--key",
                        key,
                        "--port",
                        str(port + 10 + 20 * n),
                        "--port-end",
                        str(port + 29 + 20 * n),
                    ],
                    stdout=subprocess.DEVNULL,
                    stderr=subprocess.DEVNULL,
                    start_new_session=True,
                )
            )
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and _workers(port, key) < 2:
            time.sleep(0.5)
        assert _workers(port, key) == 2
        out = tmp_path / "r.jsonl"
        r = subprocess.run(
            [
                sys.executable,
                "-m",
                "tvmc_micro",
                "tune",
                str(model_path("hello_world_float.tflite")),
                "--rpc-tracker",
                f"127.0.0.1:{port}",
                "--rpc-key",
                key,
                "-o",
                str(out),
                "--trials",
                "2",
            ],
            capture_output=True,
            text=True,
            timeout=240,
        )
        assert r.returncode == 0, r.stderr
        records = [json.loads(x) for x in out.read_text().splitlines()]
        assert len(records) == 9 and all(x["worker"].startswith("crt_host") for x in records)
        assert all(x["error"] is None for x in records)
        # No worker under this key: a clear error before anything is compiled for measuring.
        r = subprocess.run(
            [
                sys.executable,
                "-m",
                "tvmc_micro",
                "tune",
                str(model_path("hello_world_float.tflite")),
                "--rpc-tracker",
                f"127.0.0.1:{port}",
                "--rpc-key",
                "nobody",
                "-o",
                str(out),
                "--trials",
                "1",
            ],
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert r.returncode == 2 and "no worker is registered" in r.stderr, r.stderr
    finally:
        for p in reversed(procs):
            try:
                os.killpg(p.pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
        for p in procs:
            try:
                p.wait(timeout=10)
            except subprocess.TimeoutExpired:
                os.killpg(p.pid, signal.SIGKILL)
