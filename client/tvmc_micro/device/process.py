"""A host firmware process (crt_host style) whose stdin/stdout are the device transport."""

from __future__ import annotations

import os
import subprocess
import tempfile
from collections.abc import Sequence

from microtvm_api.errors import TransportClosedError
from microtvm_api.transport import deadline_after, fd_read, fd_write


class ProcessTransport:
    """Starts `argv` with pipes for stdin/stdout (stderr kept in a temporary file for diagnostics)."""

    def __init__(self, argv: Sequence[str], *, cwd: str | os.PathLike[str] | None = None) -> None:
        self.argv = list(argv)
        self._stderr = tempfile.TemporaryFile()
        self.proc = subprocess.Popen(
            self.argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=self._stderr, cwd=cwd, bufsize=0
        )
        assert self.proc.stdin is not None and self.proc.stdout is not None
        self._in = self.proc.stdin
        self._out = self.proc.stdout
        self._closed = False

    def write(self, data: bytes, timeout_sec: float | None) -> None:
        self._check_open()
        fd_write(self._in.fileno(), data, deadline_after(timeout_sec))

    def read(self, n: int, timeout_sec: float | None) -> bytes:
        self._check_open()
        return bytes(fd_read(self._out.fileno(), n, deadline_after(timeout_sec)))

    def close(self, timeout_sec: float = 5.0) -> int | None:
        """Close stdin (the firmware exits on end of file), reap it; kill it if it does not stop."""
        if self._closed:
            return self.proc.returncode
        self._closed = True
        for stream in (self._in, self._out):
            try:
                stream.close()
            except OSError:
                pass
        try:
            self.proc.wait(timeout_sec)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        return self.proc.returncode

    def kill(self) -> None:
        """Stop the process at once (a power cut, as far as the host can tell)."""
        self.proc.kill()
        self.close()

    def stderr_tail(self, limit: int = 4000) -> str:
        self._stderr.seek(0, os.SEEK_END)
        size = self._stderr.tell()
        self._stderr.seek(max(0, size - limit))
        return self._stderr.read().decode("utf-8", "replace")

    def _check_open(self) -> None:
        if self._closed:
            raise TransportClosedError("the firmware process transport is closed", "start the process again")
