"""The real side of the seam: Tools runs commands and starts native_sim-style processes for real.

A small Python program stands in for a native_sim executable (a real process with a real pty that names
it on stdout the way Zephyr's native pty UART does, then echoes), so the transport's life cycle and error
paths run without a Zephyr build.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
from microtvm_api.errors import CommandFailedError, IoTimeoutError, ToolNotFoundError, TransportClosedError
from zephyr_io import NativeSimTransport, Tools

FAKE_NATIVE_SIM = r"""
import os, sys, time, tty
master, slave = os.openpty()
tty.setraw(master)
print("uart connected to pseudotty: " + os.ttyname(slave), flush=True)
if len(sys.argv) > 1 and sys.argv[1] == "exit-after-one":
    data = os.read(master, 1)
    os.write(master, data)
    # Closing the pty master at once makes Linux discard what the other side has not read yet
    # (hangup flushes the line discipline): give the reader time to take the echo, as a real board would.
    time.sleep(0.5)
    sys.exit(7)
while True:
    data = os.read(master, 256)
    os.write(master, data.upper())
"""


@pytest.fixture
def fake_exe(tmp_path: Path) -> list[str]:
    script = tmp_path / "zephyr_exe.py"
    script.write_text(FAKE_NATIVE_SIM)
    return [sys.executable, str(script)]


def test_native_transport_finds_the_pty_and_carries_bytes(fake_exe: list[str], tmp_path: Path) -> None:
    transport = Tools().start_emulator("native", fake_exe, tmp_path / "native.log")
    try:
        assert isinstance(transport, NativeSimTransport) and transport.pty_path.startswith("/dev/")
        transport.write(b"hello \x7e\x00\x01", 2.0)
        got = b""
        while len(got) < 9:
            got += transport.read(64, 2.0)
        assert got == b"HELLO \x7e\x00\x01"
    finally:
        status = transport.close()
    assert status is not None  # killed and reaped
    assert "uart connected to pseudotty" in (tmp_path / "native.log").read_text()


def test_native_transport_reports_the_exit_of_the_process(fake_exe: list[str], tmp_path: Path) -> None:
    transport = NativeSimTransport([*fake_exe, "exit-after-one"], tmp_path / "n.log")
    transport.write(b"x", 2.0)
    assert transport.read(1, 2.0) == b"x"
    with pytest.raises(TransportClosedError, match="exited with status 7"):
        for _ in range(50):  # the process exits about 0.5 s after its echo
            try:
                transport.read(1, 0.2)
            except IoTimeoutError:
                continue
    transport.close()


def test_native_exe_that_dies_before_naming_its_pty(tmp_path: Path) -> None:
    argv = [sys.executable, "-c", "print('zephyr.exe: bad option'); raise SystemExit(3)"]
    with pytest.raises(CommandFailedError) as err:
        NativeSimTransport(argv, tmp_path / "n.log")
    assert "exited with status 3" in err.value.message and "bad option" in err.value.message


def test_native_exe_that_never_names_its_pty(tmp_path: Path) -> None:
    argv = [sys.executable, "-c", "import time; time.sleep(30)"]
    with pytest.raises(CommandFailedError, match="did not name its UART pty within 1 s"):
        NativeSimTransport(argv, tmp_path / "n.log", start_timeout_sec=1.0)


def test_missing_emulator_binary(tmp_path: Path) -> None:
    with pytest.raises(ToolNotFoundError, match="qemu-system-nonexistent not found"):
        Tools().start_emulator("qemu", ["qemu-system-nonexistent", "-M", "x"], tmp_path / "q.log")


def test_run_streams_and_reports_failures(tmp_path: Path) -> None:
    Tools().run([sys.executable, "-c", "print('built')"], cwd=tmp_path, env={})
    with pytest.raises(CommandFailedError) as err:
        Tools().run(
            [sys.executable, "-c", "print('No board named x'); raise SystemExit(2)"], cwd=tmp_path, env={}
        )
    assert "exit code 2" in err.value.message and "No board named x" in err.value.message
    with pytest.raises(ToolNotFoundError, match="west-not-installed not found"):
        Tools().run(["west-not-installed", "build"], cwd=tmp_path, env={})


def test_open_serial_on_a_missing_device() -> None:
    with pytest.raises(CommandFailedError) as err:
        Tools().open_serial("/dev/ttyDOES_NOT_EXIST", 115200)
    assert "cannot open serial port /dev/ttyDOES_NOT_EXIST" in err.value.message
    assert "dialout" in (err.value.hint or "")


def test_list_serial_ports_returns_port_infos() -> None:
    for port in Tools().list_serial_ports():  # whatever this machine has; often none
        assert port.device.startswith("/dev/")
