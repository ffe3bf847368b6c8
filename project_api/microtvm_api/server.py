"""`main()`: serve a handler over stdio (or v0.18 fds). The handler contract itself lives in
`microtvm_api.handler` and is re-exported here, where template servers have always imported it from.

A template's `microtvm_api_server.py` subclasses `ProjectAPIHandler` and ends with::

    if __name__ == "__main__":
        main(MyHandler)

`main` first keeps a private handle on the real stdout (and stdin) and points file descriptor 1 at stderr
(0 at /dev/null), so `print()`, logging and child tools (make, west, cmake, qemu) can never write into —
or read from — the protocol channel. Then it reads one JSON-RPC request per line and writes one reply per
line until end of input.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from collections.abc import Callable, Sequence

from microtvm_api import lifeline
from microtvm_api.errors import InternalError, ParseError, to_wire
from microtvm_api.framing import LineReader, LineTooLongError, encode
from microtvm_api.handler import ProjectAPIHandler, ServerInfo, TransportTimeouts
from microtvm_api.transport import fd_write

# Templates import these from here (`from microtvm_api.server import TransportTimeouts, main`).
__all__ = ["ProjectAPIHandler", "ServerInfo", "TransportTimeouts", "main", "protect_stdio", "serve"]

_LOG = logging.getLogger("microtvm_api.server")


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
    """Answer requests from `read_fd` on `write_fd` until end of input. No request ends the loop: a line
    the dispatcher cannot even answer (a bug) gets an internal error reply and the next line is read."""
    # Imported here, not at the top: jsonrpcserver is needed only to serve, and main() checks it first.
    from microtvm_api.dispatch import Dispatcher

    dispatcher = Dispatcher(handler)
    reader = LineReader(read_fd)
    while True:
        reply: bytes | None
        try:
            line = reader.read_line(None)
        except LineTooLongError as err:
            reply = _error_line(ParseError(f"parse error: {err}"))
        else:
            if line is None:
                return
            try:
                reply = dispatcher.handle_line(line)
            except Exception as exc:  # the dispatcher answers every line itself; this is the last net
                _LOG.exception("internal error answering a request")
                reply = _error_line(InternalError(f"internal error answering the request: {exc!r:.200}"))
        if reply is not None:
            fd_write(write_fd, reply, None)


def _error_line(exc: ParseError | InternalError) -> bytes:
    return encode({"jsonrpc": "2.0", "error": to_wire(exc, include_traceback=False), "id": None})


def main(
    handler: ProjectAPIHandler | Callable[[], ProjectAPIHandler],
    argv: Sequence[str] | None = None,
) -> None:
    """Serve `handler` (an instance, or a class/factory called after stdio is protected). Exits."""
    stdin_fd, stdout_fd = protect_stdio()
    # A signal, or the client's death, stops the server and everything it started (QEMU, build tools,
    # firmware processes): no orphans (lifeline.py).
    lifeline.install()
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
