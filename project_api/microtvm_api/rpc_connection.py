"""The JSON-RPC call layer over a started server: request ids, a deadline per call, reply checking.

An error reply becomes the server's exception class again (`errors.from_wire`). Anything else going wrong
(the server exits, hangs past the deadline, writes something that is not a reply, answers with the wrong
id) makes the connection stop the server, since the channel can no longer be trusted, and raise an error
that says so with the tail of the server's stderr; later calls raise that error again. Method names and
parameters are the caller's business (`microtvm_api.client` has the typed methods).
"""

from __future__ import annotations

import os
import signal
import subprocess
import threading
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Self

from microtvm_api import errors, framing
from microtvm_api.errors import (
    IoTimeoutError,
    ProjectAPIError,
    ServerExitedError,
    ServerProtocolError,
    ServerTimeoutError,
    TransportClosedError,
)
from microtvm_api.framing import LineReader
from microtvm_api.server_process import StderrPump, stop_process_group
from microtvm_api.transport import deadline_after, fd_write

# Default deadline per method (seconds). Long steps get long deadlines; every call gets one.
DEFAULT_TIMEOUTS: dict[str, float] = {
    "server_info_query": 60.0,
    "generate_project": 600.0,
    "build": 3600.0,
    "flash": 900.0,
    "open_transport": 300.0,
    "close_transport": 60.0,
}
# Between an error's message and the server's last stderr lines (the conformance table splits there).
STDERR_TAIL_MARKER = "\n--- last lines of the server's stderr ---\n"
# A timeout_sec default meaning "the method's default deadline" (None already means "no deadline").
UNSET: Any = object()


class RPCConnection:
    """JSON-RPC calls to a running server, which this object owns: close (or use `with`) to reap it."""

    def __init__(
        self,
        process: subprocess.Popen[bytes],
        read_fd: int,
        write_fd: int,
        pump: StderrPump,
        *,
        server: Path,
        style: str,
    ) -> None:
        self.process = process
        self.server = server
        self.style = style
        self._reader = LineReader(read_fd)
        self._write_fd = write_fd
        self._pump = pump
        self._next_id = 1
        self._closed = False
        self._broken: ProjectAPIError | None = None

    # ---- lifecycle ---------------------------------------------------------------------------------

    def close(self, timeout_sec: float = 10.0) -> int | None:
        """End of input tells the server to exit; stop it if it does not. Returns its exit code."""
        if self._closed:
            return self.process.returncode
        self._closed = True
        self.close_input()
        try:
            os.close(self._reader.fd)
        except OSError:
            pass
        try:
            self.process.wait(timeout=timeout_sec)
        except subprocess.TimeoutExpired:
            self._stop()
        self._pump.join(timeout=2.0)
        return self.process.returncode

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    @property
    def usable(self) -> bool:
        """False once the client was closed or gave up on the server (it died, hung or broke protocol)."""
        return not self._closed and self._broken is None and self._write_fd >= 0

    def close_input(self) -> None:
        """Close the request channel: a conforming server exits at end of input."""
        if self._write_fd >= 0:
            try:
                os.close(self._write_fd)
            except OSError:
                pass
            self._write_fd = -1

    @property
    def reply_fd(self) -> int:
        """The fd replies are read from (to compare with what the server holds)."""
        return self._reader.fd

    def stderr_tail(self, n: int = 15) -> str:
        return self._pump.tail(n)

    def abandon(self, why: str) -> None:
        """Stop the server now without the end-of-input handshake (after an interrupt); idempotent."""
        # Blocked so a second Ctrl-C (or the SIGTERM a launcher forwards) cannot cut the clean-up short
        # and leave the server running.
        blocked = {signal.SIGINT, signal.SIGTERM, signal.SIGHUP}
        on_main = threading.current_thread() is threading.main_thread()
        old = signal.pthread_sigmask(signal.SIG_BLOCK, blocked) if on_main else None
        try:
            if self._broken is None:
                self._broken = ServerExitedError(
                    f"the Project API client was {why}; the server was stopped", "launch it again"
                )
            self.close_input()
            self._stop(term_wait_sec=1.0)
            self.close(timeout_sec=0.0)
        finally:
            if old is not None:
                signal.pthread_sigmask(signal.SIG_SETMASK, old)

    def _stop(self, term_wait_sec: float = 3.0) -> None:
        stop_process_group(self.process, term_wait_sec)

    # ---- calls -------------------------------------------------------------------------------------

    def call(
        self,
        method: str,
        params: Mapping[str, Any] | Sequence[Any] | None = None,
        *,
        timeout_sec: float | None = UNSET,
    ) -> Any:
        """Call `method` and return its result; raises the rebuilt server exception on an error reply."""
        if timeout_sec is UNSET:
            timeout_sec = DEFAULT_TIMEOUTS.get(method, 120.0)
        deadline = deadline_after(timeout_sec)
        request_id = self._next_id
        self._next_id += 1
        request = {
            "jsonrpc": "2.0",
            "id": request_id,
            "method": method,
            "params": list(params) if isinstance(params, Sequence) else dict(params or {}),
        }
        with self._interruptible(method):
            self._send(framing.encode(request), method, deadline, timeout_sec)
            reply = self._receive(method, deadline, timeout_sec)
        if reply.get("id") != request_id:
            raise self._fail(
                ServerProtocolError(
                    f"the server answered {method} (request id {request_id}) with id {reply.get('id')!r}",
                    "the server must answer each request with the same id, in order",
                )
            )
        if "error" in reply:
            raise errors.from_wire(reply["error"])
        return reply["result"]

    def send_line(self, line: bytes, timeout_sec: float | None = 30.0) -> None:
        """Send raw bytes as one request line (the conformance checker sends malformed ones)."""
        with self._interruptible("a raw request"):
            self._send(line.rstrip(b"\n") + b"\n", "a raw request", deadline_after(timeout_sec), timeout_sec)

    def read_reply(self, timeout_sec: float | None = 30.0, what: str = "a raw request") -> dict[str, Any]:
        """The next reply object, whatever its id or kind (error replies are returned, not raised)."""
        with self._interruptible(what):
            return self._receive(what, deadline_after(timeout_sec), timeout_sec)

    @contextmanager
    def _interruptible(self, method: str) -> Iterator[None]:
        """On Ctrl-C (or any KeyboardInterrupt) during a call, stop the server at once and re-raise.

        The call's reply is still due, so the channel is out of step and the server may be blocked in a
        long read; waiting for a polite close_transport would cost that call's whole deadline. Stopping the
        server (SIGTERM to its process group; servers then close what they opened, QEMU included) takes
        milliseconds. The client is unusable afterwards.
        """
        try:
            yield
        except KeyboardInterrupt:
            self.abandon(f"interrupted during {method}")
            raise

    def _send(self, line: bytes, method: str, deadline: float | None, timeout_sec: float | None) -> None:
        if self._broken is not None:
            raise type(self._broken)(
                f"the server is no longer usable after an earlier failure: {self._broken.message}",
                self._broken.hint,
            )
        if self._closed or self._write_fd < 0:
            raise ServerExitedError("the Project API client is closed", "launch the server again")
        try:
            fd_write(self._write_fd, line, deadline)
        except TransportClosedError:
            raise self._fail_exited(method) from None
        except IoTimeoutError:
            raise self._fail_hung(method, timeout_sec) from None

    def _receive(self, method: str, deadline: float | None, timeout_sec: float | None) -> dict[str, Any]:
        while True:
            try:
                line = self._reader.read_line(deadline)
            except IoTimeoutError:
                raise self._fail_hung(method, timeout_sec) from None
            except framing.LineTooLongError:
                raise self._fail_junk(method, "an over-long line") from None
            if line is None:
                raise self._fail_exited(method)
            if not line.strip():
                continue
            try:
                reply = framing.decode(line)
            except ValueError:
                raise self._fail_junk(method, repr(line[:200].decode("utf-8", "replace"))) from None
            if (
                not isinstance(reply, dict)
                or reply.get("jsonrpc") != "2.0"
                or ("result" in reply) == ("error" in reply)
            ):
                raise self._fail_junk(method, repr(line[:200].decode("utf-8", "replace")))
            return reply

    # ---- failure reports ---------------------------------------------------------------------------

    def _with_tail(self, text: str) -> str:
        self._pump.join(timeout=1.0)
        tail = self._pump.tail()
        return f"{text}{STDERR_TAIL_MARKER}{tail}" if tail else f"{text} (its stderr was empty)"

    def _fail(self, exc: ProjectAPIError) -> ProjectAPIError:
        """Stop the server (it can no longer be trusted) and keep `exc` for later calls."""
        self._stop()
        self.close(timeout_sec=1.0)
        exc.message = self._with_tail(exc.message)
        exc.args = (exc.message,)
        self._broken = exc
        return exc

    def _fail_exited(self, method: str) -> ProjectAPIError:
        try:
            code = self.process.wait(timeout=5.0)
            how = f"killed by signal {signal.Signals(-code).name}" if code < 0 else f"exit code {code}"
        except (subprocess.TimeoutExpired, ValueError):
            how = "closed its output"
        self._pump.join(timeout=1.0)
        when = "at start-up, before answering" if self._next_id == 2 else "while handling"
        hint = f"run it by hand to see why: tvmc micro rpc {self.server} {method} -v"
        if "No module named 'jsonrpcserver'" in self._pump.tail(50):
            hint = (
                "install jsonrpcserver into the server's interpreter: "
                "<python> -m pip install 'jsonrpcserver>=5,<6'"
            )
        return self._fail(
            ServerExitedError(f"the Project API server {self.server} exited ({how}) {when} {method}", hint)
        )

    def _fail_hung(self, method: str, timeout_sec: float | None) -> ProjectAPIError:
        return self._fail(
            ServerTimeoutError(
                f"the Project API server {self.server} did not answer {method} within "
                f"{timeout_sec or 0:g} s; stopped it",
                f"if the step is legitimately slow, raise the deadline (`tvmc micro rpc DIR {method} "
                "--timeout SECONDS`, or timeout_sec= in Python); otherwise the server is stuck: run it by "
                f"hand to see where: python3 {self.server} --debug",
            )
        )

    def _fail_junk(self, method: str, what: str) -> ProjectAPIError:
        return self._fail(
            ServerProtocolError(
                f"the Project API server {self.server} wrote something that is not a JSON-RPC reply on its "
                f"protocol channel while handling {method}: {what}",
                "a server must keep stdout for replies: end it with microtvm_api.server.main(), which points "
                "fd 1 at stderr, and print diagnostics to stderr",
            )
        )
