"""v0.18's server-side Project API names (`tvm.micro.project_api.server`), served by this library.

What a v0.18 server uses is here under the same names with the same behaviour: `ProjectAPIHandler` (the
abstract interface, v0.18's method signatures), `ProjectAPIServer(read_file, write_file, handler)` with
`serve_one_request`/`serve_forever`, `ServerInfo`/`TransportTimeouts`/`ProjectOption` namedtuples,
`default_project_options`, `read_with_timeout`/`write_with_timeout`, `JSONRPCError`, `ServerError` and its
subclasses, `ErrorCode`, and `main(handler)`.

Underneath, requests go through this library's dispatcher (`microtvm_api.dispatch`): the channel, framing,
error replies and the v0.18 error shape negotiation are the same as for any server here. A v0.18 handler
is wrapped (`V018Handler`) so it is called as v0.18 called it: generate_project, server_info_query,
open/read/write_transport with positional arguments, build/flash by keyword, `options` as the client sent
them, and parameter errors worded as v0.18 worded them. So handlers decorated without functools.wraps
(`*args, **kwargs`) or naming their parameters differently work as they did.
"""

from __future__ import annotations

import abc
import enum
import io
import os
import pathlib
import select
import time
import traceback as _traceback
from collections.abc import Iterable, Mapping, Sequence
from typing import IO, Any, NamedTuple

from microtvm_api import errors
from microtvm_api import handler as _ours
from microtvm_api.dispatch import Dispatcher
from microtvm_api.errors import InvalidParamsError
from microtvm_api.protocol import PROTOCOL_VERSION

# ---- declarations (namedtuples, as v0.18 had them) ------------------------------------------------------


class _ProjectOptionFields(NamedTuple):
    name: str
    choices: Any
    default: Any
    type: Any
    required: Any
    optional: Any
    help: Any


_OPTION_FIELDS = _ProjectOptionFields._fields


class ProjectOption(_ProjectOptionFields):
    """One project option (a namedtuple). Everything but the name is given by keyword; `type` and at
    least one of `required`/`optional` must be given, as in v0.18; the others default to None."""

    __slots__ = ()

    def __new__(cls, name: str, **kw: Any) -> ProjectOption:
        if "required" not in kw and "optional" not in kw:
            raise TypeError(f"ProjectOption {name!r}: give at least one of required= or optional=")
        if "type" not in kw:
            raise TypeError(f"ProjectOption {name!r}: give type=")
        unknown = sorted(set(kw) - set(_OPTION_FIELDS))
        if unknown:
            raise TypeError(f"ProjectOption {name!r}: unknown fields {unknown}")
        values: dict[str, Any] = {field: kw.get(field) for field in _OPTION_FIELDS}
        values["name"] = name
        option: ProjectOption = super().__new__(cls, **values)
        return option

    def replace(self, attributes: Mapping[str, Any]) -> ProjectOption:
        """A copy with `attributes` changed (v0.18's name for namedtuple._replace)."""
        replaced: ProjectOption = self._replace(**dict(attributes))
        return replaced


class ServerInfo(NamedTuple):
    platform_name: str
    is_template: bool
    model_library_format_path: Any
    project_options: Any


class TransportTimeouts(NamedTuple):
    """Seconds; 0 means "no limit" for each of them (v0.18's semantics, which tvmc-micro's client keeps)."""

    session_start_retry_timeout_sec: float
    session_start_timeout_sec: float
    session_established_timeout_sec: float


# ---- errors ----------------------------------------------------------------------------------------------


class ErrorCode(enum.IntEnum):
    SERVER_ERROR = errors.SERVER_ERROR
    PARSE_ERROR = errors.PARSE_ERROR
    INVALID_REQUEST = errors.INVALID_REQUEST
    METHOD_NOT_FOUND = errors.METHOD_NOT_FOUND
    INVALID_PARAMS = errors.INVALID_PARAMS
    INTERNAL_ERROR = errors.INTERNAL_ERROR


class JSONRPCError(errors.ProjectAPIError):
    """A JSON-RPC error as v0.18 modelled it: `code`, `message`, `data`; also a ProjectAPIError here, so
    this library's dispatcher and client handle it like their own."""

    def __init__(self, code: int, message: str | None, data: Any, client_context: Any = None) -> None:
        errors.ProjectAPIError.__init__(self, message, data=data if isinstance(data, Mapping) else None)
        self.code = int(code)  # type: ignore[misc]  # per instance here, as in v0.18
        self.client_context = client_context
        # v0.18 kept `data` as sent (None included); ProjectAPIError keeps a dict for the wire.
        self.raw_data = data

    def to_json(self) -> dict[str, Any]:
        return {"code": self.code, "message": self.message, "data": self.raw_data}

    def __str__(self) -> str:
        detail = ""
        data = self.raw_data
        if isinstance(data, Mapping) and data.get("traceback"):
            detail = f"\n{data['traceback']}"
        elif data:
            detail = f"\n{data!r}"
        return f"JSON-RPC error # {self.code}: {self.message}{detail}"

    @classmethod
    def from_json(cls, client_context: Any, json_error: Mapping[str, Any]) -> JSONRPCError:
        """The exception for an error object from a server (v0.18's shape or this library's)."""
        if json_error.get("code") == ErrorCode.SERVER_ERROR:
            return ServerError.from_json(client_context, json_error)
        return cls(
            int(json_error.get("code", ErrorCode.INTERNAL_ERROR)),
            json_error.get("message"),
            json_error.get("data"),
            client_context=client_context,
        )


class ServerError(JSONRPCError, errors.ServerError):
    """An error while handling a valid request (-32000). Subclasses are rebuilt by name on the client."""

    def __init__(self, message: str | None = None, data: Any = None, client_context: Any = None) -> None:
        super().__init__(ErrorCode.SERVER_ERROR, message, data, client_context)

    @classmethod
    def from_exception(cls, exc: BaseException, **kw: Any) -> ServerError:
        made = cls(**kw)
        made.set_traceback(_traceback.TracebackException.from_exception(exc).format())
        return made

    def set_traceback(self, traceback: Iterable[str]) -> None:
        """Keep the formatted traceback in `data.traceback` (sent to the client)."""
        if not isinstance(self.raw_data, dict):
            self.raw_data = {}
        self.raw_data.setdefault("traceback", "".join(traceback))
        self.data.setdefault("traceback", self.raw_data["traceback"])

    def __str__(self) -> str:
        context = f"{self.client_context}: " if self.client_context is not None else ""
        return context + super().__str__()

    @classmethod
    def from_json(cls, client_context: Any, json_error: Mapping[str, Any]) -> ServerError:
        data = json_error.get("data")
        message = json_error.get("message")
        # v0.18's shape names the class in `message`; this library's in `data.type`.
        named = data.get("type") if isinstance(data, Mapping) else None
        for name in (message, named):
            sub = _server_error_classes().get(name) if isinstance(name, str) else None
            if sub is not None and sub is not ServerError:
                return sub(data=data, client_context=client_context)
        text = message if isinstance(message, str) and message else str(named or "server error")
        return cls(text, data=data, client_context=client_context)


class TransportClosedError(ServerError, errors.TransportClosedError):
    """The transport can no longer be used (the other end closed, a cable was pulled, ...)."""


class IoTimeoutError(ServerError, errors.IoTimeoutError):
    """No data (read) or not all data (write) within the timeout."""


class UnsupportedTVMVersionError(ServerError, errors.UnsupportedTVMVersionError):
    """The client's TVM version (server_info_query's tvm_version) is not supported."""


def _server_error_classes() -> dict[str, type[ServerError]]:
    found: dict[str, type[ServerError]] = {}
    stack: list[type[ServerError]] = [ServerError]
    while stack:
        cls = stack.pop()
        found.setdefault(cls.__name__, cls)
        stack.extend(c for c in cls.__subclasses__() if issubclass(c, ServerError))
    return found


# ---- the handler interface, as v0.18 declared it ---------------------------------------------------------


class ProjectAPIHandler(metaclass=abc.ABCMeta):
    """v0.18's interface: implement each method in your microtvm_api_server.py."""

    @abc.abstractmethod
    def server_info_query(self, tvm_version: str) -> ServerInfo:
        raise NotImplementedError()

    @abc.abstractmethod
    def generate_project(
        self,
        model_library_format_path: pathlib.Path,
        standalone_crt_dir: pathlib.Path,
        project_dir: pathlib.Path,
        options: dict[str, Any],
    ) -> None:
        raise NotImplementedError()

    @abc.abstractmethod
    def build(self, options: dict[str, Any]) -> None:
        raise NotImplementedError()

    @abc.abstractmethod
    def flash(self, options: dict[str, Any]) -> None:
        raise NotImplementedError()

    @abc.abstractmethod
    def open_transport(self, options: dict[str, Any]) -> TransportTimeouts:
        raise NotImplementedError()

    @abc.abstractmethod
    def close_transport(self) -> None:
        raise NotImplementedError()

    @abc.abstractmethod
    def read_transport(self, n: int, timeout_sec: float | None) -> bytes:
        """Up to `n` bytes (at least 1); IoTimeoutError at the timeout, TransportClosedError at EOF."""
        raise NotImplementedError()

    @abc.abstractmethod
    def write_transport(self, data: bytes, timeout_sec: float | None) -> None:
        raise NotImplementedError()


# The parameters v0.18 required of each method, in order; build/flash/close_transport had no
# preprocessing in v0.18, so their parameter types were checked (options must be an object).
_V018_PARAMS: dict[str, tuple[str, ...]] = {
    "server_info_query": ("tvm_version",),
    "generate_project": ("model_library_format_path", "standalone_crt_dir", "project_dir", "options"),
    "build": ("options",),
    "flash": ("options",),
    "open_transport": ("options",),
    "close_transport": (),
    "read_transport": ("n", "timeout_sec"),
    "write_transport": ("data", "timeout_sec"),
}
_V018_TYPE_CHECKED = ("build", "flash")


class V018Handler(_ours.ProjectAPIHandler):
    """Serves a v0.18 handler on this library: calls it the way v0.18's server did."""

    resolves_options = False

    def __init__(self, v018: Any) -> None:
        self.v018 = v018

    def check_request(self, method: str, params: Any) -> None:
        """v0.18's parameter checks, in its words (a missing one, then a mistyped one, then extras)."""
        names = _V018_PARAMS.get(method)
        if names is None or not isinstance(params, dict):
            return  # an unknown method or positional params: the dispatcher answers
        for name in names:
            if name not in params:
                raise InvalidParamsError(f"method {method}: parameter {name} not given", data={"param": name})
            if method in _V018_TYPE_CHECKED and not isinstance(params[name], dict):
                raise InvalidParamsError(
                    f"method {method}: parameter {name}: want {dict!r}, got {type(params[name])!r}",
                    data={"param": name},
                )
        extra = [p for p in params if p not in names]
        if extra:
            raise InvalidParamsError(
                f"{method}: extra parameters: {', '.join(extra)}", data={"param": extra[0]}
            )

    def server_info_query(self, tvm_version: str) -> dict[str, Any]:  # type: ignore[override]
        reply = self.v018.server_info_query(tvm_version)
        info = dict(reply._asdict()) if hasattr(reply, "_asdict") else dict(reply)
        if info.get("model_library_format_path") is not None:
            info["model_library_format_path"] = str(info["model_library_format_path"])
        info.setdefault("protocol_version", PROTOCOL_VERSION)
        info["project_options"] = [_option_json(o) for o in info.get("project_options") or ()]
        return info

    def generate_project(
        self,
        model_library_format_path: pathlib.Path,
        standalone_crt_dir: pathlib.Path | None,
        project_dir: pathlib.Path,
        options: Mapping[str, Any],
    ) -> None:
        self.v018.generate_project(model_library_format_path, standalone_crt_dir, project_dir, options)

    def build(self, options: Mapping[str, Any]) -> None:
        self.v018.build(options=options)

    def flash(self, options: Mapping[str, Any]) -> None:
        self.v018.flash(options=options)

    def open_transport(self, options: Mapping[str, Any]) -> dict[str, Any]:  # type: ignore[override]
        reply = self.v018.open_transport(options)
        timeouts = reply._asdict() if hasattr(reply, "_asdict") else reply
        return {"timeouts": dict(timeouts)}

    def close_transport(self) -> None:
        self.v018.close_transport()

    def read_transport(self, n: int, timeout_sec: float | None) -> bytes:
        data: bytes = self.v018.read_transport(n, timeout_sec)
        return data

    def write_transport(self, data: bytes, timeout_sec: float | None) -> None:
        self.v018.write_transport(data, timeout_sec)


def _option_json(option: Any) -> Any:
    if hasattr(option, "_asdict"):
        return dict(option._asdict())
    to_json = getattr(option, "to_json", None)
    return to_json() if callable(to_json) else option


def serving_handler(handler: Any) -> _ours.ProjectAPIHandler:
    """`handler` as this library serves it: one of ours as it is, a v0.18 one wrapped."""
    return handler if isinstance(handler, _ours.ProjectAPIHandler) else V018Handler(handler)


# ---- the server -----------------------------------------------------------------------------------------


class ProjectAPIServer:
    """Serves `handler` on two file objects, one JSON-RPC request per line (v0.18's class and methods).

    Unlike v0.18's, a line that is not JSON or not a request gets an error reply and the server goes on
    (serve_one_request returns False only at end of input).
    """

    _PROTOCOL_VERSION = PROTOCOL_VERSION

    def __init__(self, read_file: IO[bytes], write_file: IO[bytes], handler: Any) -> None:
        # surrogateescape: bytes that are not UTF-8 reach the dispatcher unchanged (a parse error reply).
        self._read_file = io.TextIOWrapper(read_file, encoding="utf-8", errors="surrogateescape")
        self._write_file = io.TextIOWrapper(write_file, encoding="utf-8", write_through=True)
        self._handler = handler
        self._serving = serving_handler(handler)
        self._dispatcher = Dispatcher(self._serving)

    def serve_forever(self) -> None:
        while self.serve_one_request():
            pass

    def serve_one_request(self) -> bool:
        """Answer one request line; False at end of input."""
        line = self._read_file.readline()
        if not line:
            return False
        reply = self._dispatcher.handle_line(line.encode("utf-8", "surrogateescape"))
        if reply is not None:
            self._write_file.write(reply.decode("utf-8"))
        return True

    # v0.18 preprocessed these methods' parameters (and called the handler positionally).
    def _dispatch_server_info_query(self, tvm_version: str) -> dict[str, Any]:
        return self._v018().server_info_query(tvm_version)

    def _dispatch_generate_project(
        self,
        model_library_format_path: str,
        standalone_crt_dir: str,
        project_dir: str,
        options: dict[str, Any],
    ) -> None:
        self._v018().generate_project(
            pathlib.Path(model_library_format_path),
            pathlib.Path(standalone_crt_dir),
            pathlib.Path(project_dir),
            options,
        )

    def _dispatch_open_transport(self, options: dict[str, Any]) -> dict[str, Any]:
        return self._v018().open_transport(options)

    def _dispatch_read_transport(self, n: int, timeout_sec: float | None) -> dict[str, str]:
        import base64

        return {"data": base64.b85encode(self._v018().read_transport(n, timeout_sec)).decode("ascii")}

    def _dispatch_write_transport(self, data: str, timeout_sec: float | None) -> None:
        import base64

        self._v018().write_transport(base64.b85decode(data), timeout_sec)

    def _v018(self) -> V018Handler:
        return self._serving if isinstance(self._serving, V018Handler) else V018Handler(self._handler)


# ---- helpers for read_transport / write_transport ------------------------------------------------------


def _wait(fd: int, for_write: bool, end_time: float | None) -> None:
    timeout = None if end_time is None else max(0.0, end_time - time.monotonic())
    rlist, wlist = ([], [fd]) if for_write else ([fd], [])
    ready = select.select(rlist, wlist, [fd], timeout)
    if not any(ready):
        raise IoTimeoutError()


def read_with_timeout(fd: int, n: int, timeout_sec: float | None) -> bytes:
    """1..n bytes from `fd`; IoTimeoutError when none arrive within `timeout_sec` (None: wait). At end of
    file the fd is closed and TransportClosedError raised (as in v0.18)."""
    end_time = None if timeout_sec is None else time.monotonic() + timeout_sec
    while True:
        _wait(fd, False, end_time)
        try:
            data = os.read(fd, n)
        except BlockingIOError:
            continue
        if not data:
            os.close(fd)
            raise TransportClosedError()
        return data


def write_with_timeout(fd: int, data: bytes, timeout_sec: float | None) -> int:
    """Write `data` to `fd`; returns the bytes written. A timeout after some bytes returns their count; a
    timeout before any raises IoTimeoutError. A zero-byte write closes the fd: TransportClosedError."""
    end_time = None if timeout_sec is None else time.monotonic() + timeout_sec
    written = 0
    view = memoryview(data)
    while written < len(data):
        try:
            _wait(fd, True, end_time)
        except IoTimeoutError:
            if written:
                return written
            raise
        try:
            count = os.write(fd, view[written:])
        except BlockingIOError:
            continue
        if not count:
            os.close(fd)
            raise TransportClosedError()
        written += count
    return written


# ---- options --------------------------------------------------------------------------------------------


def default_project_options(**kw: Mapping[str, Any]) -> list[ProjectOption]:
    """The options most v0.18 templates shared; `name={"field": value}` changes a field of one of them,
    e.g. ``default_project_options(verbose={"optional": ["build"]})``. An unknown name is a ValueError."""
    generate = ["generate_project"]
    options = [
        ProjectOption(
            "verbose", optional=generate, type="bool", default=False, help="Run build with verbose output."
        ),
        ProjectOption("project_type", required=generate, type="str", help="Type of project to generate."),
        ProjectOption("board", required=generate, type="str", help="Name of the board to build for."),
        ProjectOption("cmsis_path", optional=generate, type="str", help="Path to the CMSIS directory."),
        ProjectOption(
            "warning_as_error",
            optional=generate,
            type="bool",
            default=False,
            help="Treat warnings as errors and raise an Exception.",
        ),
        ProjectOption(
            "compile_definitions",
            optional=generate,
            type="str",
            help="Extra definitions added project compile.",
        ),
        ProjectOption(
            "extra_files_tar",
            optional=generate,
            type="str",
            help="If given, during generate_project, uncompress the tarball at this path into the "
            "project dir.",
        ),
    ]
    by_name = {o.name: i for i, o in enumerate(options)}
    for name, changes in kw.items():
        if name not in by_name:
            raise ValueError(f"Option {name} was not found in default ProjectOptions.")
        options[by_name[name]] = options[by_name[name]].replace(changes)
    return options


# ---- entry point ----------------------------------------------------------------------------------------


def main(handler: Any, argv: Sequence[str] | None = None) -> None:
    """Serve `handler` (a v0.18 handler instance, or one of this library's): over stdin/stdout, or over
    `--read-fd N --write-fd M` as v0.18's client launches servers. Exits."""
    from microtvm_api.server import main as serve_main

    serve_main(serving_handler(handler), argv)
