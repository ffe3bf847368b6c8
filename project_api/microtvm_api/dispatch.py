"""JSON-RPC 2.0 envelope and dispatch on `jsonrpcserver`: one request line in, one reply line out.

Our layer does what jsonrpcserver leaves open: a parse error or a bad request gets a reply and the server
keeps serving; batches are refused (the protocol is one object per line); every error object is built by
`errors.to_wire` so codes and `data.type` are uniform. jsonrpcserver checks the request schema, finds the
method and binds the parameters to the handler method's signature (missing/extra → -32602 naming the
parameter); the wrapper then checks each parameter against its annotation, converts wire forms (paths,
base85 bytes), resolves project options, calls the handler and encodes its result.

Error shape negotiation: a client that says it is TVM v0.18 or older (`server_info_query(tvm_version=
"0.18.0")`) gets errors in v0.18's shape from then on: for the classes v0.18's client knows
(`V018_ERROR_CLASSES`) the class name is the `message` (our text moves to `data.message`), which is
how v0.18's client picks the exception class. Any other client gets today's shape.
"""

from __future__ import annotations

import base64
import binascii
import dataclasses
import inspect
import json
import logging
import math
import re
import types
import typing
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from jsonrpcserver import Success
from jsonrpcserver.exceptions import JsonRpcError
from jsonrpcserver.main import dispatch_to_serializable

from microtvm_api import errors, framing
from microtvm_api.errors import InvalidParamsError, InvalidRequestError, ParseError, ProjectAPIError
from microtvm_api.handler import ProjectAPIHandler
from microtvm_api.options import ProjectOption, resolve
from microtvm_api.protocol import METHODS

_LOG = logging.getLogger("microtvm_api.dispatch")
_REQUEST_KEYS = {"jsonrpc", "method", "params", "id"}
# Real requests nest 4 levels ({"params": {"options": {...}}}); far deeper is an attack on the parser,
# the schema check or the encoder (each recursive), and gets -32600 instead of a crash.
MAX_REQUEST_DEPTH = 32
# Bounds of the numeric parameters, by name (whatever method takes them). read_transport's reply carries n
# bytes as base85 (5 characters per 4 bytes) on one line, which must stay under framing.MAX_LINE_BYTES.
MAX_READ_BYTES = 16 * 1024 * 1024
MAX_TIMEOUT_SEC = 24 * 3600.0
PARAM_BOUNDS: dict[str, tuple[float, float, str]] = {
    "n": (1, MAX_READ_BYTES, "ask for at least 1 and at most 16 MiB per read_transport call"),
    "timeout_sec": (0.0, MAX_TIMEOUT_SEC, "pass the seconds to wait, at most a day (null: no deadline)"),
}
# The -32000 error classes v0.18's client rebuilds from `error.message` (its ServerError subclasses).
V018_ERROR_CLASSES = ("IoTimeoutError", "TransportClosedError", "UnsupportedTVMVersionError")
_VERSION_RE = re.compile(r"\s*v?(\d+)\.(\d+)")


def is_v018_tvm_version(version: Any) -> bool:
    """True for a `tvm_version` of TVM 0.18 or older (microTVM's last release): "0.18.0", "0.17.dev0"."""
    match = _VERSION_RE.match(version) if isinstance(version, str) else None
    return bool(match) and int(match.group(1)) == 0 and int(match.group(2)) <= 18  # type: ignore[union-attr]


def v018_error(error: dict[str, Any]) -> dict[str, Any]:
    """`error` in v0.18's shape: the class name as `message` for the classes v0.18's client knows."""
    data = error.get("data")
    if error.get("code") != errors.SERVER_ERROR or not isinstance(data, dict):
        return error
    type_name = data.get("type")
    if type_name not in V018_ERROR_CLASSES or error.get("message") == type_name:
        return error
    return {"code": error["code"], "message": type_name, "data": {**data, "message": error.get("message")}}


class Dispatcher:
    """Turns request lines into reply lines for one handler object."""

    def __init__(self, handler: ProjectAPIHandler, *, include_tracebacks: bool = True) -> None:
        self.handler = handler
        self.include_tracebacks = include_tracebacks
        self.methods = {name: self._wrap(name) for name in METHODS}
        # Set by server_info_query: the client is TVM v0.18 (or older) and wants v0.18's error shape.
        self.v018_client = False
        self._tvm_version = ""
        # Options declared only in the ServerInfo the handler returns (the v0.18 way), once seen.
        self._info_options: list[ProjectOption] | None = None

    def handle_line(self, line: bytes) -> bytes | None:
        """The reply to one request line, or None when no reply is due (a notification, a blank line).

        Never raises: whatever the line holds, the reply is a JSON-RPC response and the server goes on."""
        if not line.strip():
            return None
        try:
            request = framing.decode(line)
        except RecursionError:
            too_deep = f"parse error: the request nests more than {MAX_REQUEST_DEPTH} levels"
            return self._error_reply(ParseError(too_deep, _PARSE_HINT), None)
        except ValueError as err:
            return self._error_reply(ParseError(f"parse error: {err}", _PARSE_HINT), None)
        request_id = request.get("id") if isinstance(request, dict) else None
        if not _valid_id(request_id):
            request_id = None
        problem = _request_problem(request)
        if problem:
            return self._error_reply(
                InvalidRequestError(f"invalid request: {problem}", _REQUEST_HINT), request_id
            )
        if request["method"] == "server_info_query":
            self._negotiate(request.get("params"))
        try:
            self.handler.check_request(request["method"], request.get("params"))
        except ProjectAPIError as err:
            return None if "id" not in request else self._error_reply(err, request_id)
        reply = dispatch_to_serializable(json.dumps(request), self.methods)
        if reply is None:
            return None
        assert isinstance(reply, dict)  # batches were refused above
        if "error" in reply:
            reply["error"] = self._shape(self._normalise_error(request["method"], reply["error"]))
        try:
            return framing.encode(reply)
        except (TypeError, ValueError, RecursionError) as err:
            bad = errors.InternalError(
                f"{request['method']} returned a value that cannot be sent as JSON: {err}",
                "the server's handler must return JSON types (dict, list, str, int, float, bool, None)",
            )
            return self._error_reply(bad, request_id)

    def _error_reply(self, exc: ProjectAPIError, request_id: Any) -> bytes:
        error = self._shape(errors.to_wire(exc, include_traceback=False))
        return framing.encode({"jsonrpc": "2.0", "error": error, "id": request_id})

    def _shape(self, error: dict[str, Any]) -> dict[str, Any]:
        return v018_error(error) if self.v018_client else error

    def _negotiate(self, params: Any) -> None:
        """A server_info_query says which client this is: v0.18 (or older) gets v0.18's error shape."""
        version = params.get("tvm_version") if isinstance(params, dict) else None
        if isinstance(params, list) and params:
            version = params[0]
        if isinstance(version, str):
            self._tvm_version = version
            self.v018_client = is_v018_tvm_version(version)

    def declared_options(self) -> Sequence[ProjectOption]:
        """The handler's options: its `project_options`, else those in the ServerInfo it returns."""
        declared = self.handler.declared_options()
        if declared:
            return declared
        if self._info_options is None:
            try:
                self._info_options = _info_options(self.handler.server_info_query(self._tvm_version))
            except Exception:  # it refused (e.g. an unknown version): no declarations
                _LOG.debug("server_info_query failed while looking for option declarations", exc_info=True)
                return ()
        return self._info_options

    def _normalise_error(self, method: str, error: dict[str, Any]) -> dict[str, Any]:
        """Errors jsonrpcserver made itself (plain `data` text) get our message, hint and data.type."""
        data = error.get("data")
        if isinstance(data, dict) and "type" in data:
            return error
        code = error.get("code")
        exc: ProjectAPIError
        if code == errors.METHOD_NOT_FOUND:
            exc = errors.MethodNotFoundError(
                f"unknown method {method!r}", f"this server answers: {', '.join(METHODS)}"
            )
        elif code == errors.INVALID_PARAMS:
            exc = InvalidParamsError(
                f"invalid params for {method}: {data}", _signature_hint(self.handler, method)
            )
        elif code == errors.INVALID_REQUEST:
            exc = InvalidRequestError(f"invalid request: {data}", _REQUEST_HINT)
        else:
            exc = errors.InternalError(f"internal error handling {method}: {data}")
        return errors.to_wire(exc, include_traceback=False)

    def _wrap(self, name: str) -> Callable[..., Any]:
        bound = getattr(self.handler, name)
        signature = inspect.signature(bound)
        hints = _type_hints(type(self.handler), name)

        def call(*args: Any, **kwargs: Any) -> Any:
            try:
                arguments = signature.bind(*args, **kwargs).arguments
                converted = {p: _convert_param(name, p, v, hints.get(p, Any)) for p, v in arguments.items()}
                if "options" in converted and self.handler.resolves_options:
                    converted["options"] = resolve(
                        self.declared_options(),
                        name,
                        converted["options"],
                        saved=self.handler.saved_option_values(),
                    )
                _LOG.debug("calling %s(%s)", name, ", ".join(converted))
                result = bound(**converted)
                if name == "server_info_query" and self.handler.resolves_options:
                    if not self.handler.declared_options():
                        self._info_options = _info_options(result)
                encoded = _encode_result(name, result)
                if name == "server_info_query" and self.v018_client:
                    encoded = _v018_info(encoded)
                return Success(encoded)
            except Exception as exc:
                if not isinstance(exc, ProjectAPIError) or exc.code == errors.SERVER_ERROR:
                    _LOG.debug("%s failed", name, exc_info=True)
                # handle_line puts it in the client's shape.
                raise JsonRpcError(**errors.to_wire(exc, include_traceback=self.include_tracebacks)) from exc

        # jsonrpcserver binds the request's params against this signature: the handler's own.
        call.__signature__ = signature  # type: ignore[attr-defined]
        call.__name__ = name
        return call


def _info_options(info: Any) -> list[ProjectOption]:
    """The option declarations in a server_info_query result (a ServerInfo, a namedtuple or a dict)."""
    raw = getattr(info, "project_options", None)
    if raw is None and isinstance(info, Mapping):
        raw = info.get("project_options")
    found: list[ProjectOption] = []
    for item in raw or ():
        if isinstance(item, ProjectOption):
            found.append(item)
            continue
        as_dict = item._asdict() if hasattr(item, "_asdict") else item
        try:
            found.append(ProjectOption.from_json(as_dict))
        except ValueError:
            _LOG.warning("ignoring a project option declaration that cannot be read: %r", item)
    return found


def _v018_info(info: Any) -> Any:
    """server_info for a v0.18 client: choices as strings, which it compares its string values with."""
    if not isinstance(info, dict) or not isinstance(info.get("project_options"), list):
        return info
    options = []
    for option in info["project_options"]:
        if isinstance(option, dict) and isinstance(option.get("choices"), list):
            option = {**option, "choices": [_v018_text(c) for c in option["choices"]]}
        options.append(option)
    return {**info, "project_options": options}


def _v018_text(value: Any) -> str:
    return json.dumps(value) if isinstance(value, bool) else str(value)


_PARSE_HINT = 'send one JSON object per line, e.g. {"jsonrpc": "2.0", "id": 1, "method": ...}'
_REQUEST_HINT = (
    'a request is one object per line: {"jsonrpc": "2.0", "id": 1, "method": "server_info_query", '
    '"params": {"tvm_version": "0.27"}}'
)


def _valid_id(value: Any) -> bool:
    """A JSON-RPC id we can echo: a string, an integer, a finite number (null is handled by the caller)."""
    if isinstance(value, bool):
        return False
    if isinstance(value, float):
        return math.isfinite(value)
    return isinstance(value, str | int)


def _request_problem(request: Any) -> str | None:
    """What makes `request` not a single JSON-RPC 2.0 request object, in words; None if it is one."""
    if framing.json_depth(request, MAX_REQUEST_DEPTH) > MAX_REQUEST_DEPTH:
        return f"the request nests more than {MAX_REQUEST_DEPTH} levels of arrays and objects"
    if isinstance(request, list):
        return "batch requests are not supported; send one request object per line"
    if not isinstance(request, dict):
        shown = json.dumps(request, allow_nan=True)[:60]
        return f"a request must be a JSON object, got {type(request).__name__} {shown}"
    if "id" in request and request["id"] is not None and not _valid_id(request["id"]):
        shown = json.dumps(request["id"], allow_nan=True)[:60]
        return f'"id" must be a string, a finite number or null, got {shown}'
    if request.get("jsonrpc") != "2.0":
        return 'the request must have "jsonrpc": "2.0"'
    if not isinstance(request.get("method"), str):
        return 'the request must have a string "method"'
    if "params" in request and not isinstance(request["params"], dict | list):
        return '"params" must be an object (or an array)'
    extra = sorted(set(request) - _REQUEST_KEYS)
    if extra:
        return f"unexpected member{'s' if len(extra) > 1 else ''} {', '.join(extra)}"
    return None


def _type_hints(cls: type, name: str) -> dict[str, Any]:
    try:
        return typing.get_type_hints(getattr(cls, name))
    except Exception:  # an annotation we cannot evaluate: skip type checks rather than refuse to serve
        return {}


def _signature_hint(handler: object, method: str) -> str:
    params = ", ".join(inspect.signature(getattr(handler, method)).parameters)
    return f"{method} takes ({params}); see docs/project-api.md"


def _json_type(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int | float):
        return "number"
    if isinstance(value, str):
        return "string"
    return "array" if isinstance(value, list) else "object"


def _convert_param(method: str, param: str, value: Any, hint: Any) -> Any:
    """`value` from the wire as the type the handler declared; InvalidParamsError naming `param` if not."""
    origin = typing.get_origin(hint)
    if origin in (typing.Union, types.UnionType):
        members = typing.get_args(hint)
        if value is None and type(None) in members:
            return None
        others = [m for m in members if m is not type(None)]
        hint = others[0] if len(others) == 1 else Any
        origin = typing.get_origin(hint)
    if hint is Any:
        return value
    base = origin or hint
    ok: Any = _MISSING
    if base is str and isinstance(value, str):
        ok = value
    elif base is bool and isinstance(value, bool):
        ok = value
    elif base is int and isinstance(value, int) and not isinstance(value, bool):
        ok = value
    elif base is float and isinstance(value, int | float) and not isinstance(value, bool):
        ok = _finite(method, param, value)
    elif base in (Path, Path().__class__) and isinstance(value, str) and value:
        ok = Path(value)
        if not ok.is_absolute():
            raise InvalidParamsError(
                f"invalid params for {method}: parameter {param!r} must be an absolute path, got {value!r}",
                "resolve it against the client's working directory before sending it: the server runs "
                "in the template or project directory",
                data={"param": param},
            )
    elif base is bytes and isinstance(value, str):
        try:
            ok = base64.b85decode(value)
        except (ValueError, binascii.Error):
            raise InvalidParamsError(
                f"invalid params for {method}: parameter {param!r} is not valid base85 text",
                "encode transport bytes with base64.b85encode (see docs/project-api.md)",
                data={"param": param},
            ) from None
    elif isinstance(base, type) and issubclass(base, Mapping | dict) and isinstance(value, dict):
        ok = value
    elif base in (list, tuple) and isinstance(value, list):
        ok = value
    elif not isinstance(base, type):
        return value  # an annotation we do not model: no check
    if ok is _MISSING:
        wanted = {Path: "a non-empty path string", bytes: "base85 text"}.get(
            base, _JSON_NAMES.get(base, str(hint))
        )
        raise InvalidParamsError(
            f"invalid params for {method}: parameter {param!r} must be {wanted}, got {_json_type(value)} "
            f"{json.dumps(value)[:60]}",
            "see docs/project-api.md for the parameter types",
            data={"param": param},
        )
    bounds = PARAM_BOUNDS.get(param)
    if bounds is not None and isinstance(ok, int | float) and not isinstance(ok, bool):
        low, high, hint = bounds
        if not low <= ok <= high:
            raise InvalidParamsError(
                f"invalid params for {method}: parameter {param!r} must be between {_number(low)} and "
                f"{_number(high)}, got {_number(ok)}",
                hint,
                data={"param": param},
            )
    return ok


def _finite(method: str, param: str, value: int | float) -> float:
    try:
        number = float(value)
    except OverflowError:  # an integer beyond any float
        number = math.inf
    if not math.isfinite(number):
        raise InvalidParamsError(
            f"invalid params for {method}: parameter {param!r} must be a finite number, got {value!r:.60}",
            "see docs/project-api.md for the parameter types",
            data={"param": param},
        )
    return number


def _number(value: float) -> str:
    if isinstance(value, int) or value.is_integer():
        digits = str(abs(int(value)))
        if len(digits) > 20:
            return f"{'-' if value < 0 else ''}{digits[0]}.{digits[1:3]}e+{len(digits) - 1}"
        return f"{int(value):,}"
    return f"{value:g}"


_MISSING = object()
_JSON_NAMES: dict[Any, str] = {
    str: "a string",
    bool: "a boolean",
    int: "an integer",
    float: "a number",
    dict: "an object",
    Mapping: "an object",
    list: "an array",
}


def _encode_result(method: str, result: Any) -> Any:
    """Handler results in wire form: dataclasses as objects, read_transport's bytes as {"data": base85}."""
    if method == "read_transport" and isinstance(result, bytes | bytearray):
        return {"data": base64.b85encode(bytes(result)).decode("ascii")}
    if method == "open_transport" and dataclasses.is_dataclass(result) and not isinstance(result, type):
        return {"timeouts": dataclasses.asdict(result)}
    if method == "open_transport" and isinstance(result, tuple) and hasattr(result, "_asdict"):
        return {"timeouts": dict(result._asdict())}  # a v0.18 TransportTimeouts namedtuple
    to_json = getattr(result, "to_json", None)
    if callable(to_json):
        return to_json()
    if dataclasses.is_dataclass(result) and not isinstance(result, type):
        return dataclasses.asdict(result)
    if isinstance(result, Path):
        return str(result)
    return result
