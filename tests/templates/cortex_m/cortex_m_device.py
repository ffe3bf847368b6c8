"""Helpers for the cortex_m model and fault tests: a project made and flashed from an MLF, and the
device session over the template server's own transport methods (in process: the subprocess path is
covered by test_cortex_m_server.py)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from cortex_m_support import TEMPLATE_DIR, cm_server
from microtvm_api.options import resolve
from tvmc_micro.device import DeviceSession


def _opts(handler: cm_server.CortexMHandler | None, method: str, **given: Any) -> dict[str, Any]:
    saved = handler.saved_option_values() if handler is not None else None
    return resolve(cm_server.PROJECT_OPTIONS, method, given, saved=saved)


def make_project(mlf: Path, project_dir: Path, board: str, **build_options: Any) -> cm_server.CortexMHandler:
    """generate_project + build + flash; returns the project's handler."""
    template = cm_server.CortexMHandler(TEMPLATE_DIR)
    template.generate_project(mlf, None, project_dir, _opts(None, "generate_project", board=board))
    handler = cm_server.CortexMHandler(project_dir)
    handler.build(_opts(handler, "build", **build_options))
    handler.flash(_opts(handler, "flash"))
    return handler


class HandlerTransport:
    """The C3 transport over a handler's read/write/close_transport (what the server exposes over RPC).

    `on_write` / `on_read` may rewrite the bytes passing through: the fault tests use them to corrupt
    or drop what crosses the real QEMU UART.
    """

    def __init__(self, handler: cm_server.CortexMHandler, **open_options: Any) -> None:
        self.handler = handler
        self.timeouts = handler.open_transport(_opts(handler, "open_transport", **open_options))
        self.on_write: Callable[[bytes], bytes] | None = None
        self.on_read: Callable[[bytes], bytes] | None = None

    def write(self, data: bytes, timeout_sec: float | None) -> None:
        if self.on_write is not None:
            data = self.on_write(data)
        if data:
            self.handler.write_transport(data, timeout_sec)

    def read(self, n: int, timeout_sec: float | None) -> bytes:
        data = self.handler.read_transport(n, timeout_sec)
        return self.on_read(data) if self.on_read is not None else data

    def close(self) -> None:
        self.handler.close_transport()


@contextmanager
def open_session(
    handler: cm_server.CortexMHandler, *, qemu_icount: bool = True, **session_args: Any
) -> Iterator[DeviceSession]:
    transport = HandlerTransport(handler, qemu_icount=qemu_icount)
    session = DeviceSession(
        transport, transport_name=f"QEMU UART of {handler.project_dir.name}", **session_args
    )
    try:
        session.open()
        yield session
    finally:
        session.close()
