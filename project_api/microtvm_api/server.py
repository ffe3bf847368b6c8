"""The handler contract template servers implement, and `main()` that serves it over stdio (or v0.18 fds).

A template's `microtvm_api_server.py` subclasses `ProjectAPIHandler` and ends with::

    if __name__ == "__main__":
        main(MyHandler)

`main` first keeps a private handle on the real stdout (and stdin) and points file descriptor 1 at stderr
(0 at /dev/null), so `print()`, logging and child tools (make, west, cmake, qemu) can never write into —
or read from — the protocol channel. Then it reads one JSON-RPC request per line and writes one reply per
line until end of input.
"""

from __future__ import annotations

import abc
import argparse
import logging
import os
import sys
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from microtvm_api.framing import LineReader, LineTooLongError, encode
from microtvm_api.options import ProjectOption
from microtvm_api.protocol import PROTOCOL_VERSION
from microtvm_api.transport import fd_write

_LOG = logging.getLogger("microtvm_api.server")


@dataclass(frozen=True)
class ServerInfo:
    """The reply to `server_info_query`."""

    platform_name: str
    is_template: bool
    model_library_format_path: str | None
    project_options: Sequence[ProjectOption]
    protocol_version: int = PROTOCOL_VERSION
    # Additive: what this server implements beyond server_info_query (e.g. "build", "flash", "transport").
    capabilities: Sequence[str] = field(default=())

    def to_json(self) -> dict[str, Any]:
        return {
            "platform_name": self.platform_name,
            "is_template": self.is_template,
            "model_library_format_path": self.model_library_format_path,
            "project_options": [o.to_json() for o in self.project_options],
            "protocol_version": self.protocol_version,
            "capabilities": list(self.capabilities),
        }


@dataclass(frozen=True)
class TransportTimeouts:
    """How long the host session should wait on this transport (the reply to `open_transport`)."""

    session_start_retry_timeout_sec: float
    session_start_timeout_sec: float
    session_established_timeout_sec: float


class ProjectAPIHandler(abc.ABC):
    """What a template server implements. Parameters arrive typed and checked; options arrive resolved.

    Raise `microtvm_api.errors` exceptions (message + hint) for failures the user should read; anything
    else is reported as a server error with its type name and traceback.
    """

    # Declared once; server_info_query reports them and the dispatcher resolves `options` against them.
    project_options: Sequence[ProjectOption] = ()

    def declared_options(self) -> Sequence[ProjectOption]:
        return self.project_options

    def saved_option_values(self) -> Mapping[str, Any]:
        """Option values stored in a generated project (defaults for this project); none by default."""
        return {}

    @abc.abstractmethod
    def server_info_query(self, tvm_version: str) -> ServerInfo: ...

    @abc.abstractmethod
    def generate_project(
        self,
        model_library_format_path: Path,
        standalone_crt_dir: Path | None,
        project_dir: Path,
        options: Mapping[str, Any],
    ) -> None: ...

    @abc.abstractmethod
    def build(self, options: Mapping[str, Any]) -> None: ...

    @abc.abstractmethod
    def flash(self, options: Mapping[str, Any]) -> None: ...

    @abc.abstractmethod
    def open_transport(self, options: Mapping[str, Any]) -> TransportTimeouts: ...

    @abc.abstractmethod
    def close_transport(self) -> None: ...

    @abc.abstractmethod
    def read_transport(self, n: int, timeout_sec: float | None) -> bytes:
        """Up to `n` bytes (at least 1); IoTimeoutError at the deadline, TransportClosedError at EOF."""

    @abc.abstractmethod
    def write_transport(self, data: bytes, timeout_sec: float | None) -> None: ...


def protect_stdio() -> tuple[int, int]:
    """Move the protocol channel off fds 0/1; returns (private stdin fd, private stdout fd). Idempotent."""
    global _PROTECTED
    if _PROTECTED is not None:
        return _PROTECTED
    try:
        sys.stdout.flush()
    except (OSError, ValueError):
        pass
    out_fd = os.dup(1)
    in_fd = os.dup(0)
    os.dup2(2, 1)
    null = os.open(os.devnull, os.O_RDONLY)
    os.dup2(null, 0)
    os.close(null)
    # Child tools must not inherit the protocol pipes: they would keep them open or read requests.
    os.set_inheritable(out_fd, False)
    os.set_inheritable(in_fd, False)
    # print() now reaches stderr; line buffering keeps it in order with logging.
    try:
        sys.stdout.reconfigure(line_buffering=True)  # type: ignore[union-attr]
    except (AttributeError, ValueError):
        pass
    _PROTECTED = (in_fd, out_fd)
    return _PROTECTED


_PROTECTED: tuple[int, int] | None = None


def serve(handler: ProjectAPIHandler, read_fd: int, write_fd: int) -> None:
    """Answer requests from `read_fd` on `write_fd` until end of input."""
    from microtvm_api.dispatch import Dispatcher  # jsonrpcserver is imported only by servers

    dispatcher = Dispatcher(handler)
    reader = LineReader(read_fd)
    while True:
        try:
            line = reader.read_line(None)
        except LineTooLongError as err:
            from microtvm_api.errors import ParseError, to_wire

            reply: bytes | None = encode(
                {"jsonrpc": "2.0", "error": to_wire(ParseError(f"parse error: {err}")), "id": None}
            )
        else:
            if line is None:
                return
            reply = dispatcher.handle_line(line)
        if reply is not None:
            fd_write(write_fd, reply, None)


def main(
    handler: ProjectAPIHandler | Callable[[], ProjectAPIHandler],
    argv: Sequence[str] | None = None,
) -> None:
    """Serve `handler` (an instance, or a class/factory called after stdio is protected). Exits."""
    stdin_fd, stdout_fd = protect_stdio()
    parser = argparse.ArgumentParser(
        description="microTVM Project API server (JSON-RPC, one object per line)"
    )
    parser.add_argument(
        "--read-fd", type=int, help="read requests from this fd (v0.18 style) instead of stdin"
    )
    parser.add_argument(
        "--write-fd", type=int, help="write replies to this fd (v0.18 style) instead of stdout"
    )
    parser.add_argument("--debug", action="store_true", help="log each call to stderr")
    args = parser.parse_args(argv)
    if (args.read_fd is None) != (args.write_fd is None):
        parser.error("--read-fd and --write-fd go together")
    logging.basicConfig(
        level=logging.DEBUG if args.debug else logging.INFO,
        format="%(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    read_fd, write_fd = (stdin_fd, stdout_fd) if args.read_fd is None else (args.read_fd, args.write_fd)
    try:
        import jsonrpcserver  # noqa: F401
    except ImportError:
        sys.stderr.write(
            f"microtvm_api: No module named 'jsonrpcserver' in {sys.executable}: "
            f"install it with: {sys.executable} -m pip install 'jsonrpcserver>=5,<6'\n"
        )
        sys.exit(3)
    instance = handler if isinstance(handler, ProjectAPIHandler) else handler()
    try:
        serve(instance, read_fd, write_fd)
    except KeyboardInterrupt:
        sys.exit(130)
    sys.exit(0)
