"""The zephyr template's one seam to the outside world: commands (west), emulators (QEMU, native_sim) and
serial ports. The server does all such work through a `Tools` object, so tests swap in a subclass that
records the exact argv instead of running it (a real object, not a mock).
"""

from __future__ import annotations

import logging
import re
import shlex
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from microtvm_api.commands import run_command
from microtvm_api.errors import CommandFailedError
from microtvm_api.qemu import QemuTransport
from microtvm_api.transport import SerialTransport
from zephyr_boards import PortInfo

_LOG = logging.getLogger("zephyr")


class NativeSimTransport(QemuTransport):
    """A native_sim executable whose UART is a pty it names on stdout; same life cycle as a QEMU process.

    Only the line announcing the pty differs from QEMU's, so the library's QEMU transport is reused.
    """

    PTY_LINE = re.compile(r"connected to pseudotty: (/dev/\S+)")

    def _wait_for_pty(self, timeout_sec: float) -> str:
        deadline = time.monotonic() + timeout_sec
        assert self._proc is not None
        while True:
            match = self.PTY_LINE.search(self.log_path.read_text(encoding="utf-8", errors="replace"))
            if match:
                return match.group(1)
            if self._proc.poll() is not None or time.monotonic() > deadline:
                state = (
                    f"exited with status {self._proc.returncode}"
                    if self._proc.poll() is not None
                    else f"did not name its UART pty within {timeout_sec:.0f} s"
                )
                raise CommandFailedError(
                    f"the native_sim executable {state}:\n{self.log_tail()}",
                    f"rebuild and flash the project; full log in {self.log_path}",
                )
            time.sleep(0.01)


class Tools:
    """Runs commands and opens transports for real. Every method takes the exact argv / device it uses."""

    def run(self, argv: Sequence[str], *, cwd: Path, env: Mapping[str, str]) -> None:
        """Run a command to completion (logged, output streamed); CommandFailedError if it fails."""
        run_command(argv, cwd=cwd, env=env)

    def start_emulator(self, kind: str, argv: Sequence[str], log_path: Path) -> Any:
        """Start QEMU (`kind` "qemu") or a native_sim executable ("native"); returns its pty transport."""
        _LOG.info("$ %s", shlex.join(argv))
        cls = QemuTransport if kind == "qemu" else NativeSimTransport
        return cls(argv, log_path)

    def run_until_marker(
        self, argv: Sequence[str], marker: str, *, timeout_sec: float, log_path: Path
    ) -> Any:
        """Run an emulator whose UART is its stdout until a line starting with `marker` (a standalone
        image's end line); returns microtvm_api.project_types.CapturedRun."""
        from microtvm_api.project_types import run_until_marker

        _LOG.info("$ %s", shlex.join(argv))
        return run_until_marker(argv, marker, timeout_sec=timeout_sec, log_path=log_path)

    def list_serial_ports(self) -> list[PortInfo]:
        from serial.tools import list_ports

        return [PortInfo(p.device, p.vid, p.pid, p.serial_number) for p in list_ports.comports()]

    def open_serial(self, device: str, baud: int) -> Any:
        import serial

        _LOG.info("opening serial port %s at %d baud", device, baud)
        try:
            port = serial.Serial(device, baudrate=baud, timeout=0, exclusive=True)
        except serial.SerialException as err:
            raise CommandFailedError(
                f"cannot open serial port {device}: {err}",
                "check no other program (a terminal, a debugger) holds it and that you may open it "
                "(the dialout group)",
            ) from None
        return SerialTransport(port)
