"""The client: launch a Project API server, call its methods with a deadline per call, reap it.

The layers below, each with one job: `server_process` starts the server (stdio, or v0.18's
``--read-fd/--write-fd`` pipes), forwards its stderr and stops its process group; `rpc_connection` makes
JSON-RPC calls over it with ids and deadlines and turns a dead, hung or junk-writing server into a plain
error with the tail of its stderr; `v018_servers` says how a server written for v0.18 is driven. This
module adds the typed Project API methods and `ServerTransport`, and re-exports the names callers import
from `microtvm_api.client`.

Servers written for v0.18 (recognised by a server_info without `capabilities`) are driven as v0.18's
tvmc drove them (see `microtvm_api.v018_servers`), and a template's `model_library_format_path: ""`
reads as null.
"""

from __future__ import annotations

import base64
import binascii
import os
import subprocess
import sys
from collections.abc import Mapping
from contextlib import ExitStack
from pathlib import Path
from typing import Any, TextIO

from microtvm_api import errors
from microtvm_api.errors import ServerProtocolError, UnsupportedProtocolVersionError
from microtvm_api.options import ProjectOption, absolute_paths
from microtvm_api.protocol import PROTOCOL_VERSION, protocol_major
from microtvm_api.rpc_connection import DEFAULT_TIMEOUTS, UNSET, RPCConnection
from microtvm_api.server_process import (
    SERVER_FILE,
    V018_LAUNCHER,
    StderrPump,
    Style,
    detect_style,
    find_server,
    library_root,
    start_server,
)
from microtvm_api.v018_servers import (
    DEFAULT_RETRY_SEC,
    MLF_LAYOUT_DIFFERENCE,
    effective_timeouts,
    empty_standalone_crt_dir,
    explain_generate_failure,
    is_v018_server_info,
    v018_options,
)

__all__ = [
    "DEFAULT_RETRY_SEC",
    "DEFAULT_TIMEOUTS",
    "MLF_LAYOUT_DIFFERENCE",
    "SERVER_FILE",
    "TRANSPORT_MARGIN_SEC",
    "V018_LAUNCHER",
    "ProjectAPIClient",
    "ServerTransport",
    "Style",
    "detect_style",
    "effective_timeouts",
    "find_server",
]

# Deadline for read/write_transport: the server-side timeout plus this margin.
TRANSPORT_MARGIN_SEC = 10.0

# Its name from when it was defined here (a test imports it).
_library_root = library_root


class ProjectAPIClient(RPCConnection):
    """A running server and the Project API calls made to it. Use `launch`; close (or use `with`) to reap
    it."""

    def __init__(
        self,
        process: subprocess.Popen[bytes],
        read_fd: int,
        write_fd: int,
        pump: StderrPump,
        *,
        server: Path,
        style: str,
        expected_protocol_major: int = PROTOCOL_VERSION,
    ) -> None:
        super().__init__(process, read_fd, write_fd, pump, server=server, style=style)
        self.expected_protocol_major = expected_protocol_major
        self.server_info: dict[str, Any] | None = None

    @classmethod
    def launch(
        cls,
        server: str | Path,
        *,
        interpreter: str | Path | None = None,
        cwd: str | Path | None = None,
        style: Style = "auto",
        env: Mapping[str, str] | None = None,
        debug: bool = False,
        stderr_sink: TextIO | None = sys.stderr,
        expected_protocol_major: int = PROTOCOL_VERSION,
    ) -> ProjectAPIClient:
        """Start the server at `server` (file or directory). Python files run under `interpreter`
        (default: this one); the working directory defaults to the server's directory."""
        started = start_server(
            server,
            interpreter=interpreter,
            cwd=cwd,
            style=style,
            env=env,
            debug=debug,
            stderr_sink=stderr_sink,
        )
        return cls(
            started.process,
            started.read_fd,
            started.write_fd,
            started.pump,
            server=started.server,
            style=started.style,
            expected_protocol_major=expected_protocol_major,
        )

    # ---- the Project API methods -------------------------------------------------------------------

    def server_info_query(
        self, tvm_version: str | None = None, *, timeout_sec: float | None = UNSET
    ) -> dict[str, Any]:
        """Ask the server who it is; refuses a server of another protocol major version."""
        info = self.call(
            "server_info_query", {"tvm_version": tvm_version or _tvm_version()}, timeout_sec=timeout_sec
        )
        if not isinstance(info, dict):
            raise self._fail(ServerProtocolError(f"server_info_query returned {info!r:.100}, not an object"))
        missing = [
            k
            for k in ("platform_name", "is_template", "project_options", "protocol_version")
            if k not in info
        ]
        if missing:
            raise ServerProtocolError(
                f"server_info_query reply lacks {', '.join(missing)}", "see docs/project-api.md for its shape"
            )
        major = protocol_major(info["protocol_version"])
        if major != self.expected_protocol_major:
            raise UnsupportedProtocolVersionError(
                f"{self.server} speaks Project API protocol version {info['protocol_version']!r}; "
                f"this client speaks version {self.expected_protocol_major}",
                "use a tvmc and a template from the same release (update whichever side is older)",
            )
        if info.get("is_template") and info.get("model_library_format_path") == "":
            info["model_library_format_path"] = None  # v0.18 templates report ""
        self.server_info = info
        return info

    @property
    def is_v018_server(self) -> bool:
        """The server was written for v0.18 (its server_info has no `capabilities`): it expects every
        declared option, a real standalone_crt_dir, and uses 0 for "no timeout"."""
        return is_v018_server_info(self.server_info)

    def declared_options(self) -> list[ProjectOption]:
        """The options the server declared in server_info (those it declared unreadably are left out)."""
        declared = []
        for raw in (self.server_info or {}).get("project_options") or []:
            try:
                declared.append(ProjectOption.from_json(raw))
            except ValueError:
                continue
        return declared

    def options_for(self, options: Mapping[str, Any] | None) -> dict[str, Any]:
        """The options to send. Our servers fill in defaults themselves (and saved values take precedence
        over them), so they get what was given, with the relative values of path options (`path: true`)
        made absolute against this process's working directory (the server runs in its own directory).
        A v0.18 server gets what v0.18's tvmc sent: every declared option, the given value converted to its
        declared type, else the default (None when it has none)."""
        given = absolute_paths(self.declared_options(), options or {})
        if not self.is_v018_server:
            return given
        assert self.server_info is not None
        return v018_options(self.server_info, given)

    def generate_project(
        self,
        model_library_format_path: str | Path,
        standalone_crt_dir: str | Path | None,
        project_dir: str | Path,
        options: Mapping[str, Any] | None = None,
        *,
        timeout_sec: float | None = UNSET,
    ) -> Any:
        # Paths are resolved here, against the client's working directory: the server runs with its cwd
        # in the template, where a relative project_dir would land (servers refuse relative paths).
        with ExitStack() as cleanup:
            empty_crt: str | None = None
            if standalone_crt_dir is None and self.is_v018_server:
                # v0.18's server.py makes a Path of it before the handler runs: null would crash it.
                empty_crt = cleanup.enter_context(empty_standalone_crt_dir())
                standalone_crt_dir = empty_crt
                self._note(
                    f"{self.server.name} is a v0.18-style server: it gets an empty standalone_crt_dir "
                    f"({empty_crt}); tvmc-micro has no v0.18 standalone CRT (the C runtime is in the MLF's "
                    "runtime/)"
                )
            params = {
                "model_library_format_path": os.path.abspath(model_library_format_path),
                "standalone_crt_dir": (
                    None if standalone_crt_dir is None else os.path.abspath(standalone_crt_dir)
                ),
                "project_dir": os.path.abspath(project_dir),
                "options": self.options_for(options),
            }
            try:
                return self.call("generate_project", params, timeout_sec=timeout_sec)
            except errors.ServerError as err:
                if self.is_v018_server:
                    explain_generate_failure(err, empty_crt)
                raise

    def build(self, options: Mapping[str, Any] | None = None, *, timeout_sec: float | None = UNSET) -> Any:
        return self.call("build", {"options": self.options_for(options)}, timeout_sec=timeout_sec)

    def flash(self, options: Mapping[str, Any] | None = None, *, timeout_sec: float | None = UNSET) -> Any:
        return self.call("flash", {"options": self.options_for(options)}, timeout_sec=timeout_sec)

    def open_transport(
        self, options: Mapping[str, Any] | None = None, *, timeout_sec: float | None = UNSET
    ) -> dict[str, Any]:
        """The server's `timeouts`, as it sent them (ServerTransport reads 0 as "no limit")."""
        reply = self.call("open_transport", {"options": self.options_for(options)}, timeout_sec=timeout_sec)
        timeouts = reply.get("timeouts") if isinstance(reply, dict) else None
        return dict(timeouts) if isinstance(timeouts, dict) else {}

    def close_transport(self, *, timeout_sec: float | None = UNSET) -> Any:
        return self.call("close_transport", {}, timeout_sec=timeout_sec)

    def read_transport(self, n: int, timeout_sec: float | None) -> bytes:
        reply = self.call(
            "read_transport",
            {"n": n, "timeout_sec": timeout_sec},
            timeout_sec=_transport_deadline(timeout_sec),
        )
        data = reply.get("data") if isinstance(reply, dict) else None
        try:
            return base64.b85decode(data) if isinstance(data, str) else _raise_bad_data(reply)
        except (ValueError, binascii.Error):
            raise ServerProtocolError(
                f"read_transport returned data that is not base85: {data!r:.80}"
            ) from None

    def write_transport(self, data: bytes, timeout_sec: float | None) -> None:
        self.call(
            "write_transport",
            {"data": base64.b85encode(data).decode("ascii"), "timeout_sec": timeout_sec},
            timeout_sec=_transport_deadline(timeout_sec),
        )

    def _note(self, text: str) -> None:
        """A line for the user on the stderr sink (where the server's own lines go)."""
        sink = self._pump.sink
        if sink is not None:
            try:
                sink.write(f"note: {text}\n")
                sink.flush()
            except (OSError, ValueError):
                pass


def _raise_bad_data(reply: Any) -> bytes:
    raise ServerProtocolError(f'read_transport returned {reply!r:.100}, not {{"data": <base85>}}')


def _transport_deadline(timeout_sec: float | None) -> float | None:
    return None if timeout_sec is None else timeout_sec + TRANSPORT_MARGIN_SEC


def _tvm_version() -> str:
    """The installed apache-tvm version, read from package metadata (importing tvm would take seconds)."""
    from importlib import metadata

    try:
        return metadata.version("apache-tvm")
    except metadata.PackageNotFoundError:
        return "unknown"


class ServerTransport:
    """The C3 transport over a server's open/read/write_transport methods (a host session can use it)."""

    def __init__(self, client: ProjectAPIClient, options: Mapping[str, Any] | None = None) -> None:
        self.client = client
        self.raw_timeouts = client.open_transport(options)
        # 0 means "no limit" (v0.18); see effective_timeouts.
        self.timeouts = effective_timeouts(self.raw_timeouts)
        self._open = True

    def write(self, data: bytes, timeout_sec: float | None) -> None:
        self.client.write_transport(data, timeout_sec)

    def read(self, n: int, timeout_sec: float | None) -> bytes:
        return self.client.read_transport(n, timeout_sec)

    def close(self) -> None:
        """close_transport, unless the client already gave up on the server (it was stopped, died or was
        interrupted): then there is nothing to close politely, and trying would only wait."""
        if self._open:
            self._open = False
            if self.client.usable:
                self.client.close_transport()
