"""The one error hierarchy of the Project API, and the one place it is mapped to JSON-RPC error objects.

Every class carries its JSON-RPC `code`. On the wire an error is
``{"code": c, "message": text, "data": {"type": ClassName, "hint": ..., "traceback": ...}}``; the client
rebuilds the class named by ``data.type`` (falling back to the base class of that code) and also accepts
v0.18 servers, which put the class name in ``message`` and the traceback in ``data.traceback``.
"""

from __future__ import annotations

import traceback as _traceback
from collections.abc import Mapping
from typing import Any, ClassVar

PARSE_ERROR = -32700
INVALID_REQUEST = -32600
METHOD_NOT_FOUND = -32601
INVALID_PARAMS = -32602
INTERNAL_ERROR = -32603
SERVER_ERROR = -32000


class ProjectAPIError(Exception):
    """Base of every Project API error. `message` names the problem, `hint` says what to try."""

    code: ClassVar[int] = SERVER_ERROR
    default_message: ClassVar[str] = "Project API error"

    def __init__(
        self,
        message: str | None = None,
        hint: str | None = None,
        *,
        data: Mapping[str, Any] | None = None,
        remote_type: str | None = None,
        remote_traceback: str | None = None,
    ) -> None:
        self.message = message if message else self.default_message
        super().__init__(self.message)
        self.hint = hint
        # Extra machine-readable fields (e.g. the offending option), sent in error.data.
        self.data: dict[str, Any] = dict(data or {})
        # Set on the client: the class name the server sent and the server-side traceback.
        self.remote_type = remote_type
        self.remote_traceback = remote_traceback

    def __str__(self) -> str:
        return self.message if not self.hint else f"{self.message}\n  hint: {self.hint}"


# ---- errors the dispatcher produces for a request it cannot route (standard JSON-RPC codes) ----------


class ParseError(ProjectAPIError):
    code = PARSE_ERROR
    default_message = "parse error: the request line is not valid JSON"


class InvalidRequestError(ProjectAPIError):
    code = INVALID_REQUEST
    default_message = "invalid request: not a JSON-RPC 2.0 request object"


class MethodNotFoundError(ProjectAPIError):
    code = METHOD_NOT_FOUND
    default_message = "method not found"


class InvalidParamsError(ProjectAPIError):
    code = INVALID_PARAMS
    default_message = "invalid params"


class InvalidOptionError(InvalidParamsError):
    """A project option that is unknown, mistyped, outside its choices, or required and missing."""

    default_message = "invalid project option"


class InternalError(ProjectAPIError):
    code = INTERNAL_ERROR
    default_message = "internal error in the Project API server"


# ---- errors raised by a handler (code -32000; the class travels in error.data.type) ------------------


class ServerError(ProjectAPIError):
    """Base of the errors a handler raises; unknown remote types are rebuilt as this class."""

    default_message = "the Project API server failed"


class IoTimeoutError(ServerError):
    default_message = "transport I/O timed out"


class TransportClosedError(ServerError):
    default_message = "the transport was closed"


class UnsupportedTVMVersionError(ServerError):
    default_message = "this server does not support the client's TVM version"


class NotImplementedInTemplateError(ServerError):
    default_message = "this template does not implement the method yet"


class ArchiveError(ServerError):
    default_message = "cannot read the archive"


class UnsafeArchiveError(ArchiveError):
    default_message = "the archive has a member that would be written outside the project"


class ProjectExistsError(ServerError):
    default_message = "the project directory already exists"


class ToolNotFoundError(ServerError):
    default_message = "a required tool is not installed"


class CommandFailedError(ServerError):
    default_message = "a command failed"


# ---- errors only the client raises (never sent by a server) ----------------------------------------


class ClientError(ProjectAPIError):
    default_message = "the Project API client failed"


class ServerNotFoundError(ClientError):
    default_message = "no Project API server found"


class ServerExitedError(ClientError):
    default_message = "the Project API server exited"


class ServerTimeoutError(ClientError):
    default_message = "the Project API server did not answer in time"


class ServerProtocolError(ClientError):
    default_message = "the Project API server broke the protocol"


class UnsupportedProtocolVersionError(ClientError):
    default_message = "the server speaks another Project API protocol version"


# ---- the one mapping between exceptions and JSON-RPC error objects -----------------------------------

_BASE_FOR_CODE: dict[int, type[ProjectAPIError]] = {
    PARSE_ERROR: ParseError,
    INVALID_REQUEST: InvalidRequestError,
    METHOD_NOT_FOUND: MethodNotFoundError,
    INVALID_PARAMS: InvalidParamsError,
    INTERNAL_ERROR: InternalError,
    SERVER_ERROR: ServerError,
}


def _known_classes() -> dict[str, type[ProjectAPIError]]:
    """Every ProjectAPIError subclass currently imported (templates may add their own), by class name.
    A name defined here wins over a class of the same name elsewhere (microtvm_api.compat.v018's)."""
    found: dict[str, type[ProjectAPIError]] = {}
    stack: list[type[ProjectAPIError]] = [ProjectAPIError]
    while stack:
        cls = stack.pop()
        if cls.__name__ not in found or cls.__module__ == __name__:
            found[cls.__name__] = cls
        stack.extend(cls.__subclasses__())
    return found


def to_wire(exc: BaseException, *, include_traceback: bool = True) -> dict[str, Any]:
    """The JSON-RPC error object for `exc`. Foreign exceptions become -32000 with their own type name."""
    data: dict[str, Any]
    if isinstance(exc, ProjectAPIError):
        code, message = exc.code, exc.message
        data = dict(exc.data)
        data["type"] = type(exc).__name__
        if exc.hint:
            data["hint"] = exc.hint
    else:
        # A bug or an unexpected failure in a handler: keep its type name so the user sees what it was.
        code, message = SERVER_ERROR, f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
        data = {"type": type(exc).__name__}
    if include_traceback and exc.__traceback__ is not None and code == SERVER_ERROR:
        data["traceback"] = "".join(_traceback.format_exception(exc))
    return {"code": code, "message": message, "data": data}


def from_wire(error: Any) -> ProjectAPIError:
    """Rebuild the exception a server sent. Never raises: malformed error objects become a plain error."""
    if not isinstance(error, Mapping):
        return ServerProtocolError(f"the server sent a malformed error object: {error!r:.200}")
    code = error.get("code")
    message = error.get("message")
    raw_data = error.get("data")
    data: dict[str, Any] = dict(raw_data) if isinstance(raw_data, Mapping) else {}
    if raw_data is not None and not isinstance(raw_data, Mapping):
        data["detail"] = raw_data
    base = _BASE_FOR_CODE.get(code, ServerError) if isinstance(code, int) else ServerError
    known = _known_classes()
    type_name = data.pop("type", None)
    hint = data.pop("hint", None)
    remote_tb = data.pop("traceback", None)
    text = message if isinstance(message, str) else ""
    if not isinstance(type_name, str) and code == SERVER_ERROR and text in known:
        # A v0.18 server: the class name is the message; the real text is the traceback's last line.
        type_name = text
        last = str(remote_tb).strip().splitlines()[-1:] if remote_tb else []
        text = last[0] if last else ""
    cls = known.get(type_name) if isinstance(type_name, str) else None
    if cls is None or not issubclass(cls, base) or issubclass(cls, ClientError):
        cls = base
    if "detail" in data and text in ("", "Invalid params", "Method not found", "Internal error"):
        text = f"{text or 'error'}: {data['detail']}"
    exc = cls(
        text or None,
        hint if isinstance(hint, str) else None,
        data=data,
        remote_type=type_name if isinstance(type_name, str) else None,
        remote_traceback=remote_tb if isinstance(remote_tb, str) else None,
    )
    if type_name and cls.__name__ != type_name and not exc.message.startswith(type_name):
        # Keep the server's own class name visible when we could only rebuild the base class.
        exc.message = f"{type_name}: {exc.message}"
        exc.args = (exc.message,)
    return exc
