"""Requests that used to kill the template servers (issue 12), sent as raw lines to each real template
server over its stdin/stdout: each gets a JSON-RPC error and the server goes on serving."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from microtvm_api.client import ProjectAPIClient

TEMPLATES = ("crt_host", "cortex_m", "zephyr")


@pytest.fixture(scope="module", params=TEMPLATES)
def server(request: pytest.FixtureRequest, repo_root: Path) -> Iterator[ProjectAPIClient]:
    """One real template server per template, shared by the module: no bad line may cost it its health."""
    client = ProjectAPIClient.launch(repo_root / "template_projects" / request.param, stderr_sink=None)
    yield client
    assert client.close(timeout_sec=5) == 0, client.stderr_tail()


def _raw(client: ProjectAPIClient, line: str) -> dict[str, Any]:
    client.send_line(line.encode(), 10)
    return client.read_reply(10)


def _line(method: str, params: str, rid: str = "1") -> str:
    """A request line with `params` and `rid` as raw JSON text (so it can hold NaN, 1e999, deep nesting)."""
    return '{"jsonrpc": "2.0", "id": ' + rid + ', "method": "' + method + '", "params": ' + params + "}"


def _still_serving(client: ProjectAPIClient) -> None:
    reply = _raw(client, _line("server_info_query", '{"tvm_version": "0.27"}', rid="7"))
    assert reply["id"] == 7 and reply["result"]["is_template"] is True, reply


@pytest.mark.parametrize("rid", ["NaN", "Infinity", "-Infinity", "1e999", "true", "[1]", '{"a": 1}'])
def test_an_id_that_is_not_a_json_rpc_id_gets_invalid_request(server: ProjectAPIClient, rid: str) -> None:
    reply = _raw(server, _line("server_info_query", '{"tvm_version": "0.27"}', rid=rid))
    assert reply["error"]["code"] == -32600 and reply["id"] is None, reply
    assert '"id" must be a string, a finite number or null' in reply["error"]["message"]
    _still_serving(server)


@pytest.mark.parametrize("depth", [1000, 100_000])
def test_json_nested_past_the_parser_gets_parse_error(server: ProjectAPIClient, depth: int) -> None:
    reply = _raw(server, "[" * depth + "]" * depth)
    assert reply["error"]["code"] == -32700 and "nests more than" in reply["error"]["message"], reply
    _still_serving(server)


@pytest.mark.parametrize("depth", [40, 500])
def test_deeply_nested_params_get_invalid_request(server: ProjectAPIClient, depth: int) -> None:
    nested = "[" * depth + "]" * depth
    reply = _raw(server, _line("build", '{"options": ' + nested + "}", rid="3"))
    assert reply["error"]["code"] == -32600 and reply["id"] == 3, reply
    assert "nests more than 32 levels" in reply["error"]["message"]
    _still_serving(server)


@pytest.mark.parametrize(
    ("params", "words"),
    [
        ({"n": -1, "timeout_sec": 1}, "parameter 'n' must be between 1 and 16,777,216, got -1"),
        ({"n": 0, "timeout_sec": 1}, "parameter 'n' must be between 1 and 16,777,216, got 0"),
        ({"n": 10**30, "timeout_sec": 1}, "parameter 'n' must be between 1 and 16,777,216, got 1.00e+30"),
        ({"n": True, "timeout_sec": 1}, "parameter 'n' must be an integer, got boolean"),
        ({"n": "4", "timeout_sec": 1}, "parameter 'n' must be an integer, got string"),
        ({"n": 4, "timeout_sec": -1}, "parameter 'timeout_sec' must be between 0 and 86,400, got -1"),
        ({"n": 4, "timeout_sec": 10**30}, "'timeout_sec' must be between 0 and 86,400, got 1.00e+30"),
        ({"n": 4, "timeout_sec": 10**400}, "parameter 'timeout_sec' must be a finite number"),
        ({"n": 4, "timeout_sec": False}, "parameter 'timeout_sec' must be a number, got boolean"),
        ({"n": 4, "timeout_sec": "soon"}, "parameter 'timeout_sec' must be a number, got string"),
    ],
)
def test_out_of_range_read_transport_params_are_invalid_params(
    server: ProjectAPIClient, params: dict[str, Any], words: str
) -> None:
    reply = _raw(server, _line("read_transport", json.dumps(params), rid="4"))
    assert reply["error"]["code"] == -32602, reply
    assert words in reply["error"]["message"]
    _still_serving(server)


@pytest.mark.parametrize("value", ["NaN", "Infinity", "-Infinity", "1e999"])
@pytest.mark.parametrize("method", ["read_transport", "write_transport"])
def test_non_finite_timeouts_are_invalid_params(server: ProjectAPIClient, method: str, value: str) -> None:
    first = '"n": 4' if method == "read_transport" else '"data": "Xk~0{"'
    reply = _raw(server, _line(method, "{" + first + ', "timeout_sec": ' + value + "}", rid="5"))
    assert reply["error"]["code"] == -32602 and reply["id"] == 5, reply
    assert "parameter 'timeout_sec' must be" in reply["error"]["message"]
    _still_serving(server)


def test_relative_paths_are_invalid_params_and_nothing_lands_in_the_template(
    server: ProjectAPIClient, repo_root: Path, tmp_path: Path
) -> None:
    before = sorted(p.name for p in (repo_root / "template_projects").rglob("*"))
    for param, value in (("project_dir", "relative_project"), ("model_library_format_path", "model.tar")):
        params = {
            "model_library_format_path": str(tmp_path / "model.tar"),
            "standalone_crt_dir": None,
            "project_dir": str(tmp_path / "p"),
            "options": {"board": "mps2_an386"},
        }
        params[param] = value
        reply = _raw(server, _line("generate_project", json.dumps(params), rid="6"))
        assert reply["error"]["code"] == -32602, reply
        assert f"parameter '{param}' must be an absolute path, got '{value}'" in reply["error"]["message"]
    assert sorted(p.name for p in (repo_root / "template_projects").rglob("*")) == before


def test_a_server_whose_reply_cannot_be_encoded_answers_and_goes_on(servers: Path) -> None:
    client = ProjectAPIClient.launch(servers / "unencodable_result_server.py", stderr_sink=None)
    try:
        reply = _raw(client, _line("build", '{"options": {"board": "alpha"}}'))
        assert reply["error"]["code"] == -32603, reply
        assert "this result cannot be encoded" in reply["error"]["message"]
        reply = _raw(client, _line("flash", '{"options": {}}', rid="2"))
        assert reply["id"] == 2 and "result" in reply
    finally:
        assert client.close(timeout_sec=5) == 0


def test_the_dispatcher_does_not_import_the_server_module() -> None:
    """The import graph runs one way: server -> dispatch -> handler (no circle, not even a lazy one)."""
    code = "import sys, microtvm_api.dispatch; print(sorted(m for m in sys.modules if 'microtvm_api' in m))"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=30)
    assert done.returncode == 0, done.stderr
    assert "microtvm_api.handler" in done.stdout and "microtvm_api.server" not in done.stdout
