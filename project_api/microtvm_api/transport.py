"""Byte I/O with deadlines on file descriptors (pipes, ptys) and serial ports.

A deadline is an absolute `time.monotonic()` value or None (wait forever). Reads return 1..n bytes as soon
as any are available, raise `IoTimeoutError` at the deadline and `TransportClosedError` at end of file.
`FdTransport` and `SerialTransport` wrap these as the transport object the host device session uses:
``write(data, timeout_sec)``, ``read(n, timeout_sec)``, ``close()``.
"""

from __future__ import annotations

import errno
import os
import select
import time
from typing import Any, Protocol

from microtvm_api.errors import IoTimeoutError, TransportClosedError


def deadline_after(timeout_sec: float | None) -> float | None:
    """Absolute deadline `timeout_sec` from now (None stays None: no deadline)."""
    return None if timeout_sec is None else time.monotonic() + max(0.0, timeout_sec)


def remaining(deadline: float | None) -> float | None:
    """Seconds left before `deadline` (never negative), or None when there is no deadline."""
    return None if deadline is None else max(0.0, deadline - time.monotonic())


def _wait(fd: int, for_write: bool, deadline: float | None, what: str) -> None:
    while True:
        left = remaining(deadline)
        try:
            if for_write:
                ready = select.select([], [fd], [], left)[1]
            else:
                ready = select.select([fd], [], [], left)[0]
        except InterruptedError:  # pragma: no cover - PEP 475 retries select itself
            continue
        if ready:
            return
        raise IoTimeoutError(f"{what} timed out", "the other side is not answering; check it is running")


def fd_read(fd: int, n: int, deadline: float | None) -> bytes:
    """Read 1..n bytes from `fd` (blocking or not), waiting at most until `deadline`."""
    if n <= 0:
        raise ValueError(f"fd_read needs n >= 1, got {n}")
    while True:
        _wait(fd, False, deadline, f"reading from fd {fd}")
        try:
            data = os.read(fd, n)
        except BlockingIOError:
            continue
        except OSError as err:
            # A pty master reports EIO once the slave side has closed: that is end of file.
            if err.errno == errno.EIO:
                data = b""
            else:
                raise
        if not data:
            raise TransportClosedError(f"fd {fd} reached end of file", "the other side closed or exited")
        return data


def fd_write(fd: int, data: bytes, deadline: float | None) -> None:
    """Write all of `data` to `fd`, waiting at most until `deadline` for room in the pipe."""
    view = memoryview(data)
    while view:
        _wait(fd, True, deadline, f"writing to fd {fd}")
        try:
            written = os.write(fd, view)
        except BlockingIOError:
            continue
        except (BrokenPipeError, ConnectionResetError) as err:
            raise TransportClosedError(
                f"fd {fd} was closed by the reader", "the other side exited; look at its output"
            ) from err
        view = view[written:]


class SerialPort(Protocol):
    """The part of `serial.Serial` (pyserial) the helpers use; a real port or pyserial's loop:// fits."""

    timeout: float | None
    write_timeout: float | None

    def read(self, size: int = ...) -> bytes: ...

    def write(self, data: bytes, /) -> int | None: ...

    def flush(self) -> None: ...

    @property
    def in_waiting(self) -> int: ...


def serial_read(port: SerialPort, n: int, deadline: float | None) -> bytes:
    """Read 1..n bytes from a serial port, waiting at most until `deadline`."""
    if n <= 0:
        raise ValueError(f"serial_read needs n >= 1, got {n}")
    while True:
        left = remaining(deadline)
        # Read what is there, else block for one byte up to the deadline (pyserial's timeout is per call).
        waiting = port.in_waiting
        port.timeout = 0 if waiting else left
        data = port.read(max(1, min(n, waiting)))
        if data:
            return bytes(data)
        if left is not None and remaining(deadline) == 0.0:
            raise IoTimeoutError(
                f"reading from serial port {getattr(port, 'port', '?')} timed out",
                "the device sent nothing: check it is flashed, powered and the baud rate matches",
            )


def serial_write(port: SerialPort, data: bytes, deadline: float | None) -> None:
    """Write all of `data` to a serial port, waiting at most until `deadline`."""
    name = getattr(port, "port", "?")
    try:
        port.write_timeout = remaining(deadline)  # pyserial reconfigures the tty here: it can fail too
        written = port.write(data)
    except Exception as err:
        if type(err).__name__ == "SerialTimeoutException":
            raise IoTimeoutError(
                f"writing to serial port {name} timed out",
                "the device is not reading: check flow control and that the firmware is running",
            ) from err
        if _is_hangup(err):
            raise TransportClosedError(
                f"serial port {name} was closed by the other side", "the device (or emulator) went away"
            ) from err
        raise
    try:
        port.flush()
    except Exception as err:
        # The bytes are already with the kernel; a peer that hung up meanwhile (a pty whose emulator
        # exited after reading them) shows on the next read, not as a failure of this completed write.
        if not _is_hangup(err):
            raise
    if written is not None and written != len(data):
        raise IoTimeoutError(f"serial port accepted {written} of {len(data)} bytes before the deadline")


def _is_hangup(err: BaseException) -> bool:
    """EIO from a pty/tty whose other side is gone. pyserial wraps termios.error (raised as (errno, text))
    in SerialException, so the chain of causes is searched."""
    seen: BaseException | None = err
    while seen is not None:
        code = getattr(seen, "errno", None)
        if code is None and seen.args and isinstance(seen.args[0], int):
            code = seen.args[0]
        if code == errno.EIO:
            return True
        seen = seen.__cause__ or seen.__context__
    return False


class FdTransport:
    """A transport over a read fd and a write fd (a child's pipes, or the same fd twice for a pty)."""

    def __init__(self, read_fd: int, write_fd: int, *, owns_fds: bool = True) -> None:
        self.read_fd = read_fd
        self.write_fd = write_fd
        self._owns = owns_fds
        self._closed = False

    def write(self, data: bytes, timeout_sec: float | None) -> None:
        self._check_open()
        fd_write(self.write_fd, data, deadline_after(timeout_sec))

    def read(self, n: int, timeout_sec: float | None) -> bytes:
        self._check_open()
        return fd_read(self.read_fd, n, deadline_after(timeout_sec))

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        if self._owns:
            for fd in {self.read_fd, self.write_fd}:
                try:
                    os.close(fd)
                except OSError:
                    pass

    def _check_open(self) -> None:
        if self._closed:
            raise TransportClosedError("the transport is already closed", "open it again (open_transport)")


class SerialTransport:
    """A transport over a pyserial port (or anything shaped like one)."""

    def __init__(self, port: Any) -> None:
        self.port = port
        self._closed = False

    def write(self, data: bytes, timeout_sec: float | None) -> None:
        self._check_open()
        serial_write(self.port, data, deadline_after(timeout_sec))

    def read(self, n: int, timeout_sec: float | None) -> bytes:
        self._check_open()
        return serial_read(self.port, n, deadline_after(timeout_sec))

    def close(self) -> None:
        if not self._closed:
            self._closed = True
            self.port.close()

    def _check_open(self) -> None:
        if self._closed:
            raise TransportClosedError("the serial transport is already closed", "open it again")
