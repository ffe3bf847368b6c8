"""Run a firmware image under `qemu-system-arm` with its UART on a pseudo-terminal, as a transport.

QEMU creates the pty (`-serial pty`) and says where on its stdout ("char device redirected to /dev/pts/N");
the pty is then opened through pyserial like any serial port, so the device session sees the same kind
of transport as a real board. QEMU's own output (the pty line, semihosting messages, its errors) goes to
a log file whose tail is quoted when QEMU fails or exits. `close()` kills QEMU and reaps it.

QEMU runs in a session of its own (a terminal's Ctrl-C must not reach it), so killing the server's process
group misses it: it gets SIGKILL from the kernel when the thread that started it ends (PR_SET_PDEATHSIG),
and `close` is registered to run when a server with `lifeline.install()` is signalled.

With `icount=True` QEMU runs `-icount shift=0,align=off,sleep=off`: one guest instruction is exactly one
nanosecond of virtual time, so device timer counts are repeatable instruction counts.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from microtvm_api import lifeline
from microtvm_api.errors import (
    CommandFailedError,
    IoTimeoutError,
    ServerError,
    ToolNotFoundError,
    TransportClosedError,
)
from microtvm_api.transport import deadline_after, serial_read, serial_write

QEMU_BINARY = "qemu-system-arm"
QEMU_APT_PACKAGE = "qemu-system-arm"
ICOUNT_ARGS = ("-icount", "shift=0,align=off,sleep=off")
_PTY_LINE = re.compile(r"char device redirected to (\S+) \(label serial0\)")


def qemu_argv(
    machine: str,
    image: Path,
    *,
    icount: bool = True,
    semihosting: bool = True,
    extra_args: Sequence[str] = (),
    binary: str = QEMU_BINARY,
) -> list[str]:
    """The argv that boots `image` on `machine` with serial0 on a new pty and no monitor."""
    argv = [binary, "-M", machine, "-nographic", "-monitor", "none", "-serial", "pty", "-kernel", str(image)]
    if semihosting:
        # target=native: SYS_EXIT ends QEMU with the firmware's status; messages go to QEMU's stderr.
        argv += ["-semihosting-config", "enable=on,target=native"]
    if icount:
        argv += list(ICOUNT_ARGS)
    return argv + list(extra_args)


def _log_tail(path: Path, lines: int = 15) -> str:
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return ""
    return "\n".join(text.strip().splitlines()[-lines:])


class QemuTransport:
    """One QEMU process and its UART pty opened with pyserial; a transport (read/write/close)."""

    def __init__(
        self,
        argv: Sequence[str],
        log_path: Path,
        *,
        start_timeout_sec: float = 10.0,
        explain_exit: Callable[[int], tuple[str, str] | None] | None = None,
    ) -> None:
        """`explain_exit(status)` turns a firmware's exit status (e.g. through semihosting) into
        (what happened, what to do) for the error raised when the UART closes; None: no explanation."""
        self.argv = list(argv)
        self.explain_exit = explain_exit
        self.log_path = log_path
        self.pty_path: str | None = None
        self._port: Any = None
        self._proc: subprocess.Popen[bytes] | None = None
        self._last_status: int | None = None
        self._cleanup_token: int | None = None
        if shutil.which(self.argv[0]) is None:
            raise ToolNotFoundError(
                f"{self.argv[0]} not found on PATH",
                f"install QEMU with `apt-get install {QEMU_APT_PACKAGE}`",
            )
        log_path.parent.mkdir(parents=True, exist_ok=True)
        with open(log_path, "wb") as log:
            log.write(("$ " + " ".join(self.argv) + "\n").encode())
            log.flush()
            # Its own session, so killing QEMU never reaches our process group; stdin detached so a
            # terminal's ^C goes to us, not to QEMU.
            self._proc = subprocess.Popen(
                self.argv,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=log,
                start_new_session=True,
                preexec_fn=lifeline.die_with_parent(signal.SIGKILL),
            )
        self._cleanup_token = lifeline.add_cleanup(self.close)
        try:
            self.pty_path = self._wait_for_pty(start_timeout_sec)
            self._port = self._open_port(self.pty_path)
        except BaseException:
            self.close()
            raise

    @property
    def pid(self) -> int | None:
        return None if self._proc is None else self._proc.pid

    @property
    def returncode(self) -> int | None:
        """QEMU's exit status once it has exited (semihosting exit codes show here), else None."""
        return self._last_status if self._proc is None else self._proc.poll()

    def log_tail(self, lines: int = 15) -> str:
        return _log_tail(self.log_path, lines)

    def _wait_for_pty(self, timeout_sec: float) -> str:
        deadline = time.monotonic() + timeout_sec
        assert self._proc is not None
        while True:
            match = _PTY_LINE.search(self.log_path.read_text(encoding="utf-8", errors="replace"))
            if match:
                return match.group(1)
            if self._proc.poll() is not None:
                raise CommandFailedError(
                    f"QEMU exited with status {self._proc.returncode} before opening the UART pty:\n"
                    f"{self.log_tail()}",
                    f"check the machine name and the image; full log in {self.log_path}",
                )
            if time.monotonic() > deadline:
                raise CommandFailedError(
                    f"QEMU did not report its UART pty within {timeout_sec:.0f} s:\n{self.log_tail()}",
                    f"full log in {self.log_path}",
                )
            time.sleep(0.01)

    @staticmethod
    def _open_port(path: str) -> Any:
        import serial  # pyserial; imported here so the library's import stays stdlib-only

        # A pty ignores the baud rate; pyserial puts the line in raw mode (no echo, no CR/LF mapping).
        return serial.Serial(path, baudrate=115200, timeout=0, exclusive=True)

    def _closed_error(self, what: str) -> TransportClosedError:
        status = self.returncode
        if status is None and self._proc is not None:
            try:  # the pty closes a moment before the process is gone
                status = self._proc.wait(timeout=5.0)
            except subprocess.TimeoutExpired:
                status = None
        state = f"QEMU exited with status {status}" if status is not None else "the QEMU pty closed"
        explained = None if status is None or self.explain_exit is None else self.explain_exit(status)
        if explained is not None:
            happened, todo = explained
            return TransportClosedError(
                f"{happened} ({what}: {state})\n{self.log_tail()}",
                f"{todo}; full QEMU log in {self.log_path}",
            )
        return TransportClosedError(
            f"{what}: {state}\n{self.log_tail()}",
            f"the firmware stopped (abort, fault or semihosting exit); full QEMU log in {self.log_path}",
        )

    def read(self, n: int, timeout_sec: float | None) -> bytes:
        if self._port is None:
            raise TransportClosedError("the QEMU transport is closed", "open it again (open_transport)")
        import serial

        try:
            return serial_read(self._port, n, deadline_after(timeout_sec))
        except TransportClosedError as err:  # the pty hung up: say how QEMU ended, not just that
            raise self._closed_error("reading the QEMU UART failed") from err
        except serial.SerialException as err:
            raise self._closed_error("reading the QEMU UART failed") from err
        except OSError as err:
            raise self._closed_error(f"reading the QEMU UART failed ({err})") from err
        except IoTimeoutError:
            if self.returncode is not None:
                raise self._closed_error("no reply from the QEMU UART") from None
            raise

    def write(self, data: bytes, timeout_sec: float | None) -> None:
        if self._port is None:
            raise TransportClosedError("the QEMU transport is closed", "open it again (open_transport)")
        if self.returncode is not None:
            raise self._closed_error("cannot write to the QEMU UART")
        import serial

        try:
            serial_write(self._port, data, deadline_after(timeout_sec))
        except TransportClosedError as err:  # the pty hung up: say how QEMU ended, not just that
            raise self._closed_error("writing the QEMU UART failed") from err
        except serial.SerialException as err:
            raise self._closed_error("writing the QEMU UART failed") from err
        except OSError as err:
            raise self._closed_error(f"writing the QEMU UART failed ({err})") from err

    def close(self) -> int | None:
        """Closes the pty, kills QEMU (its whole session) and reaps it; returns its exit status."""
        if self._port is not None:
            try:
                self._port.close()
            except Exception:  # closing a pty whose master is gone must not mask the kill
                pass
            self._port = None
        proc, self._proc = self._proc, None
        if self._cleanup_token is not None:
            lifeline.remove_cleanup(self._cleanup_token)
            self._cleanup_token = None
        if proc is None:
            return None
        if proc.poll() is None:
            try:
                os.killpg(proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        try:
            status = proc.wait(timeout=10.0)
        except subprocess.TimeoutExpired as err:  # pragma: no cover - SIGKILL cannot be ignored
            raise ServerError(f"QEMU (pid {proc.pid}) did not exit after SIGKILL") from err
        self._last_status = status
        return status

    def __enter__(self) -> QemuTransport:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
