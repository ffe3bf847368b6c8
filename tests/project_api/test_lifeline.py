"""Processes that die with their parent (microtvm_api.lifeline) and a client interrupted mid-call: real
processes and real signals."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from microtvm_api import errors, lifeline
from microtvm_api.client import ProjectAPIClient, ServerTransport

Launch = Callable[..., ProjectAPIClient]
linux_only = pytest.mark.skipif(not lifeline.pdeathsig_supported(), reason="PR_SET_PDEATHSIG is Linux-only")


def _gone(pid: int, timeout_sec: float) -> bool:
    deadline = time.monotonic() + timeout_sec
    while time.monotonic() < deadline:
        try:
            state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
        except OSError:
            return True
        if state == "Z":
            return True
        time.sleep(0.02)
    return False


@linux_only
def test_child_dies_when_its_parent_is_killed(tmp_path: Path) -> None:
    script = tmp_path / "parent.py"
    script.write_text(
        textwrap.dedent(
            """
            import signal, subprocess, time
            from microtvm_api import lifeline
            child = subprocess.Popen(["sleep", "60"], preexec_fn=lifeline.die_with_parent(signal.SIGKILL))
            print(child.pid, flush=True)
            time.sleep(60)
            """
        )
    )
    parent = subprocess.Popen([sys.executable, str(script)], stdout=subprocess.PIPE, text=True)
    assert parent.stdout is not None
    child = int(parent.stdout.readline())
    try:
        parent.kill()
        parent.wait()
        assert _gone(child, 3.0), "the child outlived its SIGKILLed parent"
    finally:
        if not _gone(child, 0):
            os.kill(child, signal.SIGKILL)


@linux_only
def test_child_whose_parent_died_before_prctl_ends_itself() -> None:
    # As if the parent had died between fork and prctl: the child is no longer the expected one's child.
    wrong_parent = os.getppid()
    preexec = lifeline.die_with_parent(signal.SIGKILL, wrong_parent)
    child = subprocess.Popen(["sleep", "60"], preexec_fn=preexec)
    assert child.wait(timeout=5) == -signal.SIGKILL


def test_signalled_server_runs_every_cleanup_stops_its_group_and_exits_128_plus_sig(tmp_path: Path) -> None:
    marker = tmp_path / "cleaned"
    script = tmp_path / "server.py"
    script.write_text(
        textwrap.dedent(
            f"""
            import pathlib, subprocess, time
            from microtvm_api import lifeline
            lifeline.install()
            tool = subprocess.Popen(["sleep", "60"])  # same process group, like make or a crt_host firmware
            def broken():
                raise RuntimeError("a cleanup that fails must not stop the others")
            lifeline.add_cleanup(lambda: pathlib.Path({str(marker)!r}).write_text("done"))
            lifeline.add_cleanup(broken)
            removed = lifeline.add_cleanup(lambda: pathlib.Path({str(marker)!r}).write_text("removed ran"))
            lifeline.remove_cleanup(removed)
            print(tool.pid, flush=True)
            time.sleep(60)
            """
        )
    )
    server = subprocess.Popen(
        [sys.executable, str(script)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        start_new_session=True,
    )
    assert server.stdout is not None
    tool = int(server.stdout.readline())
    server.send_signal(signal.SIGTERM)
    _, stderr = server.communicate(timeout=5)
    assert server.returncode == 128 + signal.SIGTERM
    assert "got SIGTERM" in stderr
    assert marker.read_text() == "done"
    assert _gone(tool, 3.0)


def test_install_outside_the_main_thread_does_nothing() -> None:
    before = signal.getsignal(signal.SIGTERM)
    worker = threading.Thread(target=lifeline.install)
    worker.start()
    worker.join()
    assert signal.getsignal(signal.SIGTERM) is before


def test_interrupted_call_stops_the_server_at_once_and_skips_close_transport(
    launch: Launch, servers: Path
) -> None:
    """Ctrl-C while the server is busy in a long call: no waiting for close_transport's deadline."""
    client = launch(servers / "echo_server.py")
    client.server_info_query()
    transport = ServerTransport(client)
    timer = threading.Timer(0.3, os.kill, args=(os.getpid(), signal.SIGINT))
    start = time.monotonic()
    timer.start()
    try:
        with pytest.raises(KeyboardInterrupt):
            client.build({"board": "alpha", "sleep_sec": 60})
    finally:
        timer.cancel()
    transport.close()  # the client gave up on the server: nothing to close, and no 60 s wait
    assert time.monotonic() - start < 3.0
    assert client.process.poll() is not None and not client.usable
    with pytest.raises(errors.ServerExitedError, match="interrupted during build"):
        client.flash({})
