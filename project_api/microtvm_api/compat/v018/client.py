"""v0.18's Project API client names (`tvm.micro.project_api.client`) on this library.

`ProjectAPIClient(read_file, write_file)` sends one request per line and returns each reply's result;
an error reply raises `server.JSONRPCError.from_json(...)` (the class named by the reply, in v0.18's shape
or this library's). `instantiate_from_dir(dir)` launches a directory's server as v0.18 did (`--read-fd`
/`--write-fd` pipes, cwd at the directory). New code should use `microtvm_api.client.ProjectAPIClient`,
which adds deadlines, reaping and stderr tails.
"""

from __future__ import annotations

import base64
import io
import json
import logging
import os
import pathlib
import subprocess
import sys
from collections.abc import Callable
from typing import IO, Any

from microtvm_api.compat.v018 import server
from microtvm_api.protocol import PROTOCOL_VERSION

_LOG = logging.getLogger(__name__)

SERVER_LAUNCH_SCRIPT_FILENAME = "launch_microtvm_api_server.sh"
SERVER_PYTHON_FILENAME = "microtvm_api_server.py"


class ProjectAPIErrorBase(Exception):
    """Base of the client's own errors."""


class ConnectionShutdownError(ProjectAPIErrorBase):
    """A request on a closed connection, or the server closed it."""


class MalformedReplyError(ProjectAPIErrorBase):
    """The reply is not a JSON-RPC 2.0 reply."""


class MismatchedIdError(ProjectAPIErrorBase):
    """The reply's id is not the request's."""


class ProjectAPIServerNotFoundError(ProjectAPIErrorBase):
    """The directory has no Project API server."""


class UnsupportedProtocolVersionError(ProjectAPIErrorBase):
    """The server speaks another protocol version."""


class RPCError(ProjectAPIErrorBase):
    def __init__(self, request: dict[str, Any], error: Any) -> None:
        super().__init__(request, error)
        self.request = request
        self.error = error

    def __str__(self) -> str:
        return f"Calling project API method {self.request['method']}:\n{self.error}"


class ProjectAPIClient:
    """Calls a server over two file objects (v0.18's class and methods)."""

    def __init__(
        self,
        read_file: IO[bytes],
        write_file: IO[bytes],
        testonly_did_write_request: Callable[[], None] | None = None,
    ) -> None:
        self.read_file = io.TextIOWrapper(read_file, encoding="utf-8", errors="strict")
        self.write_file = io.TextIOWrapper(write_file, encoding="utf-8", write_through=True)
        self.testonly_did_write_request = testonly_did_write_request
        self.next_request_id = 1
        # The server process, when instantiate_from_dir started it.
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def is_shutdown(self) -> bool:
        return self.read_file.closed

    def shutdown(self) -> None:
        if not self.is_shutdown:
            self.read_file.close()
            self.write_file.close()

    def _request_reply(self, method: str, params: dict[str, Any]) -> Any:
        if self.is_shutdown:
            raise ConnectionShutdownError("connection already closed")
        request = {"jsonrpc": "2.0", "method": method, "params": params, "id": self.next_request_id}
        self.next_request_id += 1
        line = json.dumps(request)
        _LOG.debug("send -> %s", line)
        self.write_file.write(line + "\n")
        if self.testonly_did_write_request:
            self.testonly_did_write_request()
        reply_line = self.read_file.readline()
        _LOG.debug("recv <- %s", reply_line)
        if not reply_line:
            self.shutdown()
            raise ConnectionShutdownError("got EOF reading reply from API server")
        try:
            reply = json.loads(reply_line)
        except ValueError as err:
            raise MalformedReplyError(f"the server's reply is not JSON: {reply_line[:200]!r}") from err
        if not isinstance(reply, dict) or reply.get("jsonrpc") != "2.0":
            raise MalformedReplyError(f"Server reply should include 'jsonrpc': '2.0'; saw {reply!r:.200}")
        if reply.get("id") != request["id"]:
            raise MismatchedIdError(
                f"Reply id ({reply.get('id')}) does not equal request id ({request['id']})"
            )
        if "error" in reply:
            raise server.JSONRPCError.from_json(f"calling method {method}", reply["error"])
        if "result" not in reply:
            raise MalformedReplyError(f"Expected 'result' key in server reply, got {reply!r:.200}")
        return reply["result"]

    def server_info_query(self, tvm_version: str) -> Any:
        reply = self._request_reply("server_info_query", {"tvm_version": tvm_version})
        if reply.get("protocol_version") != PROTOCOL_VERSION:
            raise UnsupportedProtocolVersionError(
                f"microTVM API Server supports protocol version {reply.get('protocol_version')}; "
                f"want {PROTOCOL_VERSION}"
            )
        return reply

    def generate_project(
        self,
        model_library_format_path: str,
        standalone_crt_dir: str,
        project_dir: str,
        options: dict[str, Any] | None = None,
    ) -> Any:
        params = {
            "model_library_format_path": model_library_format_path,
            "standalone_crt_dir": standalone_crt_dir,
            "project_dir": project_dir,
            "options": options if options is not None else {},
        }
        return self._request_reply("generate_project", params)

    def build(self, options: dict[str, Any] | None = None) -> Any:
        return self._request_reply("build", {"options": options if options is not None else {}})

    def flash(self, options: dict[str, Any] | None = None) -> Any:
        return self._request_reply("flash", {"options": options if options is not None else {}})

    def open_transport(self, options: dict[str, Any] | None = None) -> Any:
        return self._request_reply("open_transport", {"options": options if options is not None else {}})

    def close_transport(self) -> Any:
        return self._request_reply("close_transport", {})

    def read_transport(self, n: int, timeout_sec: float | None) -> dict[str, Any]:
        reply: dict[str, Any] = self._request_reply("read_transport", {"n": n, "timeout_sec": timeout_sec})
        reply["data"] = base64.b85decode(reply["data"])
        return reply

    def write_transport(self, data: bytes, timeout_sec: float | None) -> Any:
        encoded = base64.b85encode(data).decode("ascii")
        return self._request_reply("write_transport", {"data": encoded, "timeout_sec": timeout_sec})


def instantiate_from_dir(project_dir: pathlib.Path | str, debug: bool = False) -> ProjectAPIClient:
    """Launch the server in `project_dir` (its launch script if it has one) on fd pipes; a client for it."""
    directory = pathlib.Path(project_dir)
    script = directory / SERVER_PYTHON_FILENAME
    launcher = directory / SERVER_LAUNCH_SCRIPT_FILENAME
    if launcher.is_file():
        argv = [str(launcher), str(script)]
    elif script.is_file():
        argv = [sys.executable, str(script)]
    else:
        raise ProjectAPIServerNotFoundError(
            f"No Project API server found in project directory: {directory}\n"
            f"Tried: {SERVER_LAUNCH_SCRIPT_FILENAME}, {SERVER_PYTHON_FILENAME}"
        )
    server_read, client_write = os.pipe()
    client_read, server_write = os.pipe()
    argv += ["--read-fd", str(server_read), "--write-fd", str(server_write)]
    if debug:
        argv.append("--debug")
    env = dict(os.environ)
    # A server ported to microtvm_api.compat imports this library, wherever it was launched from.
    library = str(pathlib.Path(__file__).resolve().parents[3])
    env["PYTHONPATH"] = os.pathsep.join(p for p in (library, env.get("PYTHONPATH", "")) if p)
    process = subprocess.Popen(argv, bufsize=0, pass_fds=(server_read, server_write), cwd=directory, env=env)
    os.close(server_read)
    os.close(server_write)
    client = ProjectAPIClient(
        os.fdopen(client_read, "rb", buffering=0), os.fdopen(client_write, "wb", buffering=0)
    )
    client.process = process  # reap it with client.process.wait() after shutdown()
    return client
