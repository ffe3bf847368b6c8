"""Board bring-up under real QEMU: every board's UART, timer and semihosting exit, through the library's
QEMU transport (UART on a pty opened with pyserial), plus that transport's error paths."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import cortex_m_firmware as fw
import pytest
from cortex_m_support import BOARD_NAMES, require_qemu
from microtvm_api.errors import CommandFailedError, IoTimeoutError, ToolNotFoundError, TransportClosedError
from microtvm_api.qemu import QemuTransport, qemu_argv


def _read_exactly(q: QemuTransport, n: int) -> bytes:
    got = b""
    while len(got) < n:
        got += q.read(n - len(got), 10.0)
    return got


def _read_line(q: QemuTransport) -> bytes:
    line = b""
    while not line.endswith(b"\n"):
        line += q.read(64, 10.0)
    return line


@pytest.mark.slow
@pytest.mark.parametrize("board_name", BOARD_NAMES)
def test_board_bring_up(board_name: str, echo_firmware: Callable[[str], Path], tmp_path: Path) -> None:
    require_qemu()
    board = fw.load_boards()[board_name]
    assert board.qemu_machine is not None
    argv = qemu_argv(board.qemu_machine, echo_firmware(board_name))
    assert "-icount" in argv and "shift=0,align=off,sleep=off" in argv
    q = QemuTransport(argv, tmp_path / "qemu.log")
    try:
        assert q.pty_path is not None and q.pty_path.startswith("/dev/pts/")
        payload = bytes(range(256))[1:201]
        q.write(b"e" + bytes([len(payload)]) + payload, 5.0)
        assert _read_exactly(q, len(payload)) == payload

        # Timer calibration: under -icount shift=0 one instruction is 1 ns, so a 2,000,000-instruction
        # loop must read as 2 ms of the board's timer clock, to one tick, every time.
        readings = []
        for _ in range(2):
            q.write(b"t", 5.0)
            word, ticks, hz = _read_line(q).split()
            assert word == b"T" and int(hz) == board.timer_clock_hz
            readings.append(int(ticks))
        expected = 2_000_000 * board.timer_clock_hz / 1e9
        assert abs(readings[0] - expected) <= 1, (readings, expected)
        assert readings[0] == readings[1]

        # Semihosting exit: QEMU ends with the firmware's status and the transport says so.
        q.write(b"x\x2a", 5.0)
        with pytest.raises(TransportClosedError, match="QEMU exited with status 42"):
            q.read(1, 10.0)
        assert q.returncode == 42
    finally:
        q.close()


@pytest.mark.slow
def test_close_kills_and_reaps_qemu(echo_firmware: Callable[[str], Path], tmp_path: Path) -> None:
    require_qemu()
    q = QemuTransport(qemu_argv("mps2-an385", echo_firmware("mps2_an385")), tmp_path / "qemu.log")
    pid = q.pid
    assert pid is not None
    # The firmware answers nothing to silence: a read hits its deadline as IoTimeoutError.
    with pytest.raises(IoTimeoutError):
        q.read(1, 0.3)
    status = q.close()
    assert status == -9  # SIGKILL
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)  # reaped: not even a zombie left
    with pytest.raises(TransportClosedError, match="closed"):
        q.read(1, 0.1)
    with pytest.raises(TransportClosedError, match="closed"):
        q.write(b"x", 0.1)
    assert q.close() is None  # closing twice is harmless


def test_missing_qemu_names_the_package(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", "")
    with pytest.raises(ToolNotFoundError, match="qemu-system-arm not found") as info:
        QemuTransport(qemu_argv("mps2-an385", tmp_path / "x.elf"), tmp_path / "qemu.log")
    assert info.value.hint is not None and "apt-get install qemu-system-arm" in info.value.hint


def test_qemu_failing_to_start_shows_its_output(tmp_path: Path) -> None:
    require_qemu()
    with pytest.raises(
        CommandFailedError, match="QEMU exited with status 1 before opening the UART pty"
    ) as info:
        QemuTransport(qemu_argv("no-such-machine", tmp_path / "x.elf"), tmp_path / "qemu.log")
    assert "no-such-machine" in info.value.message  # QEMU's own complaint, quoted from its log


@pytest.mark.slow
def test_write_after_firmware_exit_is_transport_closed(
    echo_firmware: Callable[[str], Path], tmp_path: Path
) -> None:
    require_qemu()
    with QemuTransport(qemu_argv("mps2-an386", echo_firmware("mps2_an386")), tmp_path / "qemu.log") as q:
        q.write(b"x\x03", 5.0)
        with pytest.raises(TransportClosedError, match="status 3"):
            q.read(1, 10.0)
        with pytest.raises(
            TransportClosedError, match="cannot write to the QEMU UART: QEMU exited with status 3"
        ):
            q.write(b"e\x01a", 1.0)


@pytest.mark.slow
@pytest.mark.parametrize("board_name", ["mps2_an386", "lm3s6965evb"])
def test_abort_and_fault_stop_qemu_with_a_status_and_message(
    board_name: str, echo_firmware: Callable[[str], Path], tmp_path: Path
) -> None:
    require_qemu()
    machine = fw.load_boards()[board_name].qemu_machine
    assert machine is not None
    # tvmrt_platform_abort(7): QEMU exits with 100 + 7, the code is on QEMU's console (the log).
    with QemuTransport(qemu_argv(machine, echo_firmware(board_name)), tmp_path / "abort.log") as q:
        q.write(b"a\x07", 5.0)
        with pytest.raises(TransportClosedError, match="QEMU exited with status 107") as info:
            q.read(1, 10.0)
    assert "tvmrt: firmware abort, code 7" in info.value.message
    # An undefined instruction: a UsageFault (exception 6; startup.c enables it rather than let it
    # escalate to HardFault), status 70 + 6, named on QEMU's console.
    with QemuTransport(qemu_argv(machine, echo_firmware(board_name)), tmp_path / "fault.log") as q:
        q.write(b"f", 5.0)
        with pytest.raises(TransportClosedError, match="QEMU exited with status 76") as info:
            q.read(1, 10.0)
    assert "cortex_m firmware: UsageFault exception" in info.value.message
