"""Line framing: one JSON value per line, UTF-8 with every non-ASCII character escaped (`ensure_ascii`)."""

from __future__ import annotations

import json
import os
from typing import Any

from microtvm_api.errors import TransportClosedError
from microtvm_api.transport import fd_read

# A request or reply larger than this is refused: it is junk, not a message (write_transport chunks data).
MAX_LINE_BYTES = 64 * 1024 * 1024


class LineTooLongError(ValueError):
    """A line exceeded the limit; the reader skipped it up to its newline so the next line is clean."""


def encode(message: Any) -> bytes:
    """One message as a line. ASCII only, so a terminal or a byte-oriented pipe cannot mangle it."""
    return json.dumps(message, ensure_ascii=True, allow_nan=False, separators=(", ", ": ")).encode() + b"\n"


def decode(line: bytes) -> Any:
    """Parse one line; raises ValueError (UnicodeDecodeError or json.JSONDecodeError) when it is not JSON."""
    return json.loads(line.decode("utf-8"))


def json_depth(value: Any, limit: int) -> int:
    """How deeply arrays and objects nest in a parsed JSON value (a scalar is 0), computed without
    recursion; counting stops a level past `limit`, so the answer is exact up to limit + 1."""
    deepest = 0
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        item, level = stack.pop()
        if isinstance(item, dict | list):
            deepest = max(deepest, level)
            if level <= limit:
                children = item.values() if isinstance(item, dict) else item
                stack.extend((child, level + 1) for child in children)
    return deepest


class LineReader:
    """Reads newline-terminated lines from a file descriptor, with a deadline per line."""

    def __init__(self, fd: int, max_line_bytes: int = MAX_LINE_BYTES) -> None:
        self.fd = fd
        self.max_line_bytes = max_line_bytes
        self._buffer = bytearray()
        self._eof = False
        self._skipping = False

    def read_line(self, deadline: float | None) -> bytes | None:
        """The next line without its line ending, or None at end of file.

        Raises `IoTimeoutError` at the deadline (buffered bytes are kept for the next call) and
        `LineTooLongError` for an over-long line (after discarding it). A last line without a newline
        before end of file is returned as a line.
        """
        while True:
            newline = self._buffer.find(b"\n")
            if newline >= 0:
                line = bytes(self._buffer[:newline])
                del self._buffer[: newline + 1]
                if self._skipping or newline > self.max_line_bytes:
                    self._skipping = False
                    raise LineTooLongError(f"a line exceeded {self.max_line_bytes} bytes and was skipped")
                return line.rstrip(b"\r")
            if len(self._buffer) > self.max_line_bytes:
                self._buffer.clear()
                self._skipping = True
            if self._eof:
                if self._buffer and not self._skipping:
                    line = bytes(self._buffer)
                    self._buffer.clear()
                    return line.rstrip(b"\r")
                return None
            try:
                self._buffer += fd_read(self.fd, 65536, deadline)
            except TransportClosedError:
                self._eof = True

    def close(self) -> None:
        os.close(self.fd)
