"""Ctrl-C, SIGTERM and SIGKILL of a real `tvmc` process: it ends at once with the right status and leaves no
process behind (Project API server, crt_host firmware, QEMU, compiler).

Each `tvmc` runs in a session of its own so the test can find everything it started by walking /proc
from its pid (QEMU moves to yet another session; the walk follows parents, not sessions).
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import tarfile
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.cli.proc_tree import Proc, descendants, kill_all, wait_for_descendant, wait_gone

REPO_ROOT = Path(__file__).resolve().parents[2]
LONG_RUN = ("--print-time", "--repeat", "1000000000")  # minutes of device time: interrupted mid-run


def _tvmc(*args: str) -> None:
    r = subprocess.run([sys.executable, "-m", "tvmc_micro", *args], capture_output=True, text=True)
    assert r.returncode == 0, f"tvmc {' '.join(args)}:\n{r.stderr}"


def _host_mlf(root: Path) -> Path:
    """The device protocol's tiny model as an MLF tar with the runtime/ inside (as the compiler makes)."""
    from tvmc_micro.device.reference_model import write_tiny_mlf

    model = write_tiny_mlf(root / "tiny", n=4)
    runtime = REPO_ROOT / "runtime"
    tar_path = root / "tiny.tar"
    with tarfile.open(tar_path, "w") as tar:
        for f in sorted(model.rglob("*")):
            if f.is_file():
                tar.add(f, arcname=f.relative_to(model).as_posix())
        for f in sorted(runtime.rglob("*")):
            if f.is_file() and f.relative_to(runtime).parts[0] != "test":
                tar.add(f, arcname=f"runtime/{f.relative_to(runtime).as_posix()}")
    return tar_path


@pytest.fixture(scope="module")
def host_project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("intr_host")
    project = root / "host"
    _tvmc("micro", "create-project", str(project), str(_host_mlf(root)), "crt_host")
    _tvmc("micro", "build", str(project))
    _tvmc("micro", "flash", str(project))
    return project


@pytest.fixture(scope="module")
def cortex_m_project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    for tool, package in (("arm-none-eabi-gcc", "gcc-arm-none-eabi"), ("qemu-system-arm", "qemu-system-arm")):
        if shutil.which(tool) is None:
            pytest.skip(f"{tool} is not installed (apt-get install {package})")
    from tests.templates.cortex_m.cortex_m_tiny_mlf import write_tiny_mlf

    root = tmp_path_factory.mktemp("intr_cm")
    project = root / "cm"
    mlf = write_tiny_mlf(root / "tiny.tar")
    board = ("--project-option", "board=mps2_an386")
    _tvmc("micro", "create-project", str(project), str(mlf), "cortex_m", *board)
    _tvmc("micro", "build", str(project))
    _tvmc("micro", "flash", str(project))
    return project


PLATFORMS = {"crt_host": ("host_project", "firmware"), "cortex_m": ("cortex_m_project", "qemu-system-arm")}


class Tvmc:
    """A `tvmc` subprocess in its own session, and what it started."""

    def __init__(self, *args: str) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "tvmc_micro", *args],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
            start_new_session=True,
        )
        self.started: list[Proc] = []

    def wait_for(self, name: str, settle_sec: float) -> None:
        """Until `name` runs under tvmc (the run is under way), then `settle_sec` more."""
        wait_for_descendant(self.proc.pid, name, timeout_sec=30.0)
        time.sleep(settle_sec)
        self.started = descendants(self.proc.pid)
        assert any(p.name == name for p in self.started)

    def signal(self, sig: int, timeout_sec: float = 10.0) -> tuple[int, float, str]:
        start = time.monotonic()
        os.kill(self.proc.pid, sig)
        try:
            _, stderr = self.proc.communicate(timeout=timeout_sec)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            _, stderr = self.proc.communicate()
        return self.proc.returncode, time.monotonic() - start, stderr

    def cleanup(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        kill_all(self.started)


@pytest.fixture
def tvmc_proc() -> Iterator[list[Tvmc]]:
    started: list[Tvmc] = []
    yield started
    for t in started:
        t.cleanup()


def _start_run(request: pytest.FixtureRequest, platform: str, started: list[Tvmc]) -> Tvmc:
    fixture, device_process = PLATFORMS[platform]
    project: Path = request.getfixturevalue(fixture)
    t = Tvmc("run", "--device", "micro", str(project), *LONG_RUN)
    started.append(t)
    t.wait_for(device_process, settle_sec=0.5)
    return t


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
@pytest.mark.parametrize("platform", sorted(PLATFORMS))
def test_interrupted_run_exits_at_once_and_leaves_nothing_running(
    request: pytest.FixtureRequest, tvmc_proc: list[Tvmc], platform: str, sig: int
) -> None:
    t = _start_run(request, platform, tvmc_proc)
    names = sorted(p.name for p in t.started)
    status, took, stderr = t.signal(sig)
    assert status == 128 + sig, stderr
    assert took < 3.0, f"tvmc took {took:.1f} s to stop:\n{stderr}"
    own = [line for line in stderr.splitlines() if not line.startswith("[server]")]
    expected = "tvmc: interrupted" if sig == signal.SIGINT else "tvmc: interrupted by SIGTERM"
    assert own == [expected], stderr  # one line: no traceback, no blame on the server
    assert wait_gone(t.started, 2.0) == [], f"left running after {names}"


@pytest.mark.parametrize("platform", sorted(PLATFORMS))
def test_sigkill_of_tvmc_takes_its_server_and_device_process_along(
    request: pytest.FixtureRequest, tvmc_proc: list[Tvmc], platform: str
) -> None:
    t = _start_run(request, platform, tvmc_proc)
    status, _, _ = t.signal(signal.SIGKILL)
    assert status == -signal.SIGKILL
    # PR_SET_PDEATHSIG: the server gets SIGTERM, stops its firmware/QEMU (which also has PDEATHSIG).
    assert wait_gone(t.started, 3.0) == [], f"orphans of {sorted(p.name for p in t.started)}"


def test_ctrl_c_during_build_stops_the_compiler(
    host_project: Path, tmp_path: Path, tvmc_proc: list[Tvmc]
) -> None:
    slow_cc = tmp_path / "slow_cc"
    slow_cc.write_text("#!/bin/sh\nexec sleep 120\n")
    slow_cc.chmod(0o755)
    t = Tvmc("micro", "build", str(host_project), "--project-option", f"cc={slow_cc}")
    tvmc_proc.append(t)
    t.wait_for("sleep", settle_sec=0.2)
    status, took, stderr = t.signal(signal.SIGINT)
    assert status == 130 and took < 3.0, stderr
    assert "tvmc: interrupted" in stderr and "Traceback" not in stderr
    assert wait_gone(t.started, 2.0) == []


def test_server_of_a_client_started_in_a_thread_notices_its_parent_died(
    host_project: Path, tmp_path: Path
) -> None:
    """PDEATHSIG follows the launching thread, so it is not armed there: the server's own watchdog
    (microtvm_api.lifeline) sees it was re-parented and stops itself and the firmware."""
    script = tmp_path / "thread_launcher.py"
    script.write_text(
        textwrap.dedent(
            f"""
            import sys, threading, time
            from microtvm_api.client import ProjectAPIClient, ServerTransport

            kept = []

            def work():
                client = ProjectAPIClient.launch({str(host_project)!r}, stderr_sink=None)
                client.server_info_query()
                kept.append((client, ServerTransport(client, {{}})))
                print("ready", flush=True)

            worker = threading.Thread(target=work)
            worker.start()
            worker.join()
            time.sleep(120)
            """
        )
    )
    helper = subprocess.Popen(
        [sys.executable, str(script)], stdout=subprocess.PIPE, text=True, start_new_session=True
    )
    started: list[Proc] = []
    try:
        assert helper.stdout is not None and helper.stdout.readline().strip() == "ready"
        started = descendants(helper.pid)
        assert {"firmware"} <= {p.name for p in started}, started
        helper.kill()
        helper.wait()
        assert wait_gone(started, 3.0) == []
    finally:
        helper.kill()
        helper.wait()
        kill_all(started)
