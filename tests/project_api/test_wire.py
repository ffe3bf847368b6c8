"""Every bad request of the issue, sent as raw bytes to a real server subprocess over real pipes."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from microtvm_api.client import ProjectAPIClient


@pytest.fixture(scope="module")
def echo(servers: Path) -> Iterator[ProjectAPIClient]:
    """One server for the whole module: a bad request must never cost the server its health anyway."""
    client = ProjectAPIClient.launch(servers / "echo_server.py", stderr_sink=None)
    yield client
    assert client.close(timeout_sec=5) == 0


def _raw(client: ProjectAPIClient, line: bytes | str) -> dict[str, Any]:
    client.send_line(line.encode() if isinstance(line, str) else line, 10)
    return client.read_reply(10)


def _request(method: str, params: Any = None, rid: Any = 1) -> str:
    body: dict[str, Any] = {"jsonrpc": "2.0", "id": rid, "method": method}
    if params is not None:
        body["params"] = params
    return json.dumps(body)


def _info_ok(client: ProjectAPIClient) -> None:
    reply = _raw(client, _request("server_info_query", {"tvm_version": "0.27"}, rid=99))
    assert reply["id"] == 99 and reply["result"]["platform_name"] == "echo"


@pytest.mark.parametrize("line", [b'{"jsonrpc": "2.0", "id": 1, "method": ', b"\xff\xfe not utf-8", b"{]"])
def test_malformed_json_gets_parse_error_and_server_keeps_serving(
    echo: ProjectAPIClient, line: bytes
) -> None:
    reply = _raw(echo, line)
    assert reply["id"] is None
    assert reply["error"]["code"] == -32700
    assert reply["error"]["message"].startswith("parse error")
    assert reply["error"]["data"]["type"] == "ParseError"
    _info_ok(echo)


@pytest.mark.parametrize(
    ("line", "words"),
    [
        ("42", "must be a JSON object"),
        ('"server_info_query"', "must be a JSON object"),
        ("null", "must be a JSON object"),
        (
            '[{"jsonrpc": "2.0", "id": 1, "method": "server_info_query", "params": {"tvm_version": "x"}}]',
            "batch requests are not supported",
        ),
        ("[]", "batch"),
        ('{"id": 1, "method": "server_info_query"}', '"jsonrpc": "2.0"'),
        ('{"jsonrpc": "2.0", "id": 1, "method": 5}', 'string "method"'),
        ('{"jsonrpc": "2.0", "id": 1, "method": "build", "params": "x"}', '"params" must be'),
        (
            '{"jsonrpc": "2.0", "id": 1, "method": "build", "params": {}, "extra": 1}',
            "unexpected member extra",
        ),
    ],
)
def test_non_requests_get_invalid_request(echo: ProjectAPIClient, line: str, words: str) -> None:
    reply = _raw(echo, line)
    assert reply["error"]["code"] == -32600, reply
    assert words in reply["error"]["message"]
    assert reply["error"]["data"]["type"] == "InvalidRequestError"
    _info_ok(echo)


def test_invalid_request_keeps_a_usable_id(echo: ProjectAPIClient) -> None:
    reply = _raw(echo, '{"jsonrpc": "1.0", "id": 5, "method": "build"}')
    assert reply["id"] == 5 and reply["error"]["code"] == -32600


def test_unknown_method_lists_the_methods(echo: ProjectAPIClient) -> None:
    reply = _raw(echo, _request("buidl", {}))
    assert reply["error"]["code"] == -32601
    assert "'buidl'" in reply["error"]["message"] and "build" in reply["error"]["data"]["hint"]
    # Handler internals are not methods.
    assert _raw(echo, _request("declared_options", {}))["error"]["code"] == -32601


@pytest.mark.parametrize(
    ("method", "params", "words"),
    [
        ("server_info_query", {}, "missing a required argument: 'tvm_version'"),
        ("server_info_query", {"tvm_version": "1", "colour": 2}, "unexpected keyword argument 'colour'"),
        ("server_info_query", {"tvm_version": 0.27}, "parameter 'tvm_version' must be a string, got number"),
        ("read_transport", {"n": "4", "timeout_sec": 1}, "parameter 'n' must be an integer"),
        ("read_transport", {"n": True, "timeout_sec": 1}, "parameter 'n' must be an integer, got boolean"),
        ("read_transport", {"n": 4, "timeout_sec": "soon"}, "parameter 'timeout_sec' must be a number"),
        ("write_transport", {"data": 'not "base85"', "timeout_sec": 1}, "'data' is not valid base85"),
        ("build", {"options": []}, "parameter 'options' must be an object"),
        (
            "generate_project",
            {
                "model_library_format_path": "",
                "standalone_crt_dir": None,
                "project_dir": "/tmp/x",
                "options": {},
            },
            "'model_library_format_path' must be a non-empty path",
        ),
        ("server_info_query", ["a", "b"], "too many positional arguments"),
    ],
)
def test_bad_params_name_the_parameter(echo: ProjectAPIClient, method: str, params: Any, words: str) -> None:
    reply = _raw(echo, _request(method, params))
    assert reply["error"]["code"] == -32602, reply
    assert words in reply["error"]["message"]
    assert reply["error"]["data"]["type"] == "InvalidParamsError"
    assert method in reply["error"]["data"]["hint"] or "docs/project-api.md" in reply["error"]["data"]["hint"]


def test_positional_params_are_bound_too(echo: ProjectAPIClient) -> None:
    reply = _raw(echo, _request("server_info_query", ["0.27"]))
    assert reply["result"]["platform_name"] == "echo"


@pytest.mark.parametrize(
    ("options", "words"),
    [
        ({"board": "gamma"}, "not one of: alpha, beta"),
        ({"board": "alpha", "verbose": "perhaps"}, "true or false"),
        ({"board": "alpha", "bord": "x"}, "unknown project option 'bord'"),
        ({}, "'board' is required by build"),
        ({"board": "alpha", "retries": "many"}, "'retries' must be an integer"),
    ],
)
def test_bad_options_are_refused_before_the_handler_runs(
    echo: ProjectAPIClient, options: Any, words: str
) -> None:
    reply = _raw(echo, _request("build", {"options": options}))
    assert reply["error"]["code"] == -32602, reply
    assert words in reply["error"]["message"]
    assert reply["error"]["data"]["type"] == "InvalidOptionError"


def test_each_method_receives_only_its_options_typed(echo: ProjectAPIClient) -> None:
    given = {"board": "beta", "verbose": "true", "retries": "5", "sleep_sec": "0"}
    built = _raw(echo, _request("build", {"options": given}))["result"]
    assert built == {"board": "beta", "verbose": True, "sleep_sec": 0.0, "crash": False, "chatter": False}
    flashed = _raw(echo, _request("flash", {"options": given}))["result"]
    assert flashed == {"verbose": True, "retries": 5}


def test_notifications_get_no_reply_and_blank_lines_are_ignored(echo: ProjectAPIClient) -> None:
    echo.send_line(b'{"jsonrpc": "2.0", "method": "close_transport", "params": {}}')
    echo.send_line(b"   ")
    _info_ok(echo)


def test_handler_errors_carry_type_hint_and_traceback(echo: ProjectAPIClient) -> None:
    reply = _raw(echo, _request("read_transport", {"n": 4, "timeout_sec": 0.01}))
    error = reply["error"]
    assert error["code"] == -32000
    assert error["data"]["type"] == "TransportClosedError"
    assert error["data"]["hint"] == "call open_transport first"
    assert "Traceback" in error["data"]["traceback"] and "echo_server.py" in error["data"]["traceback"]


def test_transport_bytes_travel_as_base85(echo: ProjectAPIClient) -> None:
    assert _raw(echo, _request("open_transport", {"options": {}}))["result"] == {
        "timeouts": {
            "session_start_retry_timeout_sec": 1.0,
            "session_start_timeout_sec": 5.0,
            "session_established_timeout_sec": 10.0,
        }
    }
    _raw(echo, _request("write_transport", {"data": "Xk~0{", "timeout_sec": 1}))  # b85 of b"hell"
    assert _raw(echo, _request("read_transport", {"n": 3, "timeout_sec": 1}))["result"] == {"data": "Xk}~"}
    assert _raw(echo, _request("close_transport", {}))["result"] is None
