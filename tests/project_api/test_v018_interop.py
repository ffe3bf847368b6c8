"""v0.18 interoperability (issue 13): our client driving v0.18-style servers, v0.18-style clients driving
ours, the compatibility module microtvm_api.compat.v018, and conformance on v0.18-style servers.

The servers are real subprocesses written here in v0.18's style (servers/v018_ported_server.py is a v0.18
server whose import line points at microtvm_api.compat.v018)."""

from __future__ import annotations

import base64
import hashlib
import io
import json
import math
import shutil
import stat
import tarfile
from collections.abc import Callable
from pathlib import Path

import pytest
from microtvm_api import errors
from microtvm_api.client import (
    MLF_LAYOUT_DIFFERENCE,
    ProjectAPIClient,
    ServerTransport,
    effective_timeouts,
)
from microtvm_api.compat import v018
from microtvm_api.compat.v018 import client as v018_client
from microtvm_api.compat.v018 import server as v018_server
from microtvm_api.conformance import FAIL, PASS, V018, _minimal_mlf, format_table, run_checks
from microtvm_api.dispatch import is_v018_tvm_version

Launch = Callable[..., ProjectAPIClient]


def _template(tmp_path: Path, servers: Path) -> Path:
    """A template directory whose server is the ported v0.18 server."""
    template = tmp_path / "v018_template"
    template.mkdir()
    shutil.copy2(servers / "v018_ported_server.py", template / "microtvm_api_server.py")
    return template


def _loopback_project(tmp_path: Path, servers: Path) -> Path:
    """A 'generated project' of the ported server whose firmware is `cat` (bytes come back as sent)."""
    project = tmp_path / "v018_project"
    (project / "flashed").mkdir(parents=True)
    shutil.copy2(servers / "v018_ported_server.py", project / "microtvm_api_server.py")
    (project / "model.tar").write_bytes(b"")
    firmware = project / "flashed" / "firmware"
    firmware.write_text("#!/bin/sh\nexec cat\n")
    firmware.chmod(firmware.stat().st_mode | stat.S_IXUSR)
    return project


def _tree_digest(root: Path) -> str:
    digest = hashlib.sha256()
    for path in sorted(root.rglob("*")):
        digest.update(str(path.relative_to(root)).encode())
        if path.is_file():
            digest.update(path.read_bytes())
    return digest.hexdigest()


# ---- our client driving v0.18-style servers ---------------------------------------------------------------


def test_client_fills_options_and_gives_an_empty_crt_dir(
    tmp_path: Path, servers: Path, launch: Launch
) -> None:
    template = _template(tmp_path, servers)
    mlf = _minimal_mlf(tmp_path / "model.tar")
    notes = io.StringIO()
    client = launch(template, stderr_sink=notes)
    info = client.server_info_query("0.27.0")
    assert client.is_v018_server and info["model_library_format_path"] is None  # "" from the template
    project = tmp_path / "project"
    client.generate_project(mlf, None, project, {"verbose": "true"})
    # The handler (parameters named mlf/crt/project/opts, wrapped without functools.wraps) ran: it got an
    # empty CRT directory, every declared option, the given one typed.
    assert (project / "crt_listing.txt").read_text() == ""
    assert (project / "options.txt").read_text() == "verbose=True workspace_size_bytes=2097152\n"
    assert "is a v0.18-style server: it gets an empty standalone_crt_dir" in notes.getvalue()
    assert not list(
        Path(notes.getvalue().split("(")[1].split(")")[0]).parent.glob("tvmc_no_standalone_crt_*")
    )


@pytest.mark.parametrize(
    ("board", "cause"),
    [("read_modules", "it reads metadata.json as v0.18's (`modules`)"), ("copy_crt", "standalone CRT")],
)
def test_v018_generate_failure_on_our_mlf_says_why(
    tmp_path: Path, servers: Path, launch: Launch, board: str, cause: str
) -> None:
    client = launch(_template(tmp_path, servers))
    client.server_info_query("0.27.0")
    with pytest.raises(errors.ServerError) as caught:
        client.generate_project(_minimal_mlf(tmp_path / "m.tar"), None, tmp_path / "p", {"board": board})
    assert "cannot generate a project from this MLF" in caught.value.message
    assert cause in caught.value.message and MLF_LAYOUT_DIFFERENCE in caught.value.message
    assert caught.value.remote_traceback  # the server's own traceback is kept (shown with -v)


def test_v018_failure_for_another_reason_is_not_blamed_on_the_mlf(
    tmp_path: Path, servers: Path, launch: Launch
) -> None:
    project = _loopback_project(tmp_path, servers)
    client = launch(project)
    client.server_info_query("0.27.0")
    with pytest.raises(errors.ServerError, match="the board exploded"):
        client.build({"board": "explode"})
    # A plain ServerError(message=...) of the compat module travels as ServerError with its text.


def test_zero_timeouts_mean_no_limit_through_a_v018_server(
    tmp_path: Path, servers: Path, launch: Launch
) -> None:
    client = launch(_loopback_project(tmp_path, servers))
    client.server_info_query("0.27.0")
    transport = ServerTransport(client)
    assert transport.raw_timeouts == {
        "session_start_retry_timeout_sec": 0,
        "session_start_timeout_sec": 0,
        "session_established_timeout_sec": 0,
    }
    assert transport.timeouts == {
        "session_start_retry_timeout_sec": 1.0,
        "session_start_timeout_sec": math.inf,
        "session_established_timeout_sec": math.inf,
    }
    transport.write(b"hello", 5.0)  # through read_with_timeout/write_with_timeout of the compat module
    assert transport.read(5, 5.0) == b"hello"
    with pytest.raises(errors.IoTimeoutError):
        transport.read(1, 0.05)
    transport.close()


def test_effective_timeouts_keeps_numbers_and_drops_junk() -> None:
    raw = {"session_start_retry_timeout_sec": 2, "session_start_timeout_sec": -1, "other": "x", "flag": True}
    assert effective_timeouts(raw) == {"session_start_retry_timeout_sec": 2.0}


# ---- v0.18-style clients driving our servers -----------------------------------------------------------


def _raw_error(client: ProjectAPIClient, method: str, params: dict[str, object]) -> dict[str, object]:
    client.send_line(json.dumps({"jsonrpc": "2.0", "id": 9, "method": method, "params": params}).encode())
    error = client.read_reply()["error"]
    assert isinstance(error, dict)
    return error


def test_error_shape_is_negotiated_by_tvm_version(servers: Path, launch: Launch) -> None:
    ours = launch(servers / "echo_server.py")
    ours.call("server_info_query", {"tvm_version": "0.27.0"})
    error = _raw_error(ours, "read_transport", {"n": 1, "timeout_sec": 0.1})
    assert error["message"] == "the transport is not open"
    assert error["data"]["type"] == "TransportClosedError"  # type: ignore[index]

    old = launch(servers / "echo_server.py")
    old.call("server_info_query", {"tvm_version": "0.18.0"})
    error = _raw_error(old, "read_transport", {"n": 1, "timeout_sec": 0.1})
    assert error["message"] == "TransportClosedError"  # what v0.18's client rebuilds the class from
    assert error["data"]["message"] == "the transport is not open"  # type: ignore[index]
    # Other errors keep their text; our client reads both shapes alike.
    assert _raw_error(old, "flash_it", {})["code"] == -32601
    with pytest.raises(errors.TransportClosedError, match="TransportClosedError"):
        old.read_transport(1, 0.1)


@pytest.mark.parametrize(
    ("version", "expected"),
    [
        ("0.18.0", True),
        ("0.17.dev0", True),
        ("v0.18", True),
        ("0.19.0", False),
        ("0.27.0", False),
        ("", False),
    ],
)
def test_v018_versions(version: str, expected: bool) -> None:
    assert is_v018_tvm_version(version) is expected


def test_none_options_are_unset_and_serverinfo_options_are_honoured(servers: Path, launch: Launch) -> None:
    echo = launch(servers / "echo_server.py")
    echo.server_info_query("0.18.0")
    # A v0.18 client sends every declared option, None for the unset ones.
    result = echo.call("build", {"options": {"board": "beta", "verbose": None, "sleep_sec": None}})
    assert result["verbose"] is False and result["board"] == "beta"

    declared = launch(servers / "info_options_server.py")
    declared.server_info_query()
    assert declared.build({"board": "beta", "jobs": "4"}) == {"board": "beta", "jobs": 4}
    with pytest.raises(errors.InvalidOptionError, match="unknown project option 'color'"):
        declared.build({"color": "red"})
    with pytest.raises(errors.InvalidOptionError, match="not one of: alpha, beta"):
        declared.build({"board": "gamma"})


def test_options_from_serverinfo_before_any_server_info_query(servers: Path, launch: Launch) -> None:
    declared = launch(servers / "info_options_server.py")
    with pytest.raises(errors.InvalidOptionError, match="'jobs' must be an integer"):
        declared.build({"jobs": "many"})


def test_compat_client_drives_our_template_over_fds(repo_root: Path) -> None:
    api = v018_client.instantiate_from_dir(repo_root / "template_projects" / "crt_host")
    try:
        info = api.server_info_query("0.18.0")
        assert info["platform_name"] == "crt_host"
        choices = {o["name"]: o["choices"] for o in info["project_options"]}
        assert choices["opt_level"] == ["O0", "O1", "O2", "O3", "Os"]
        with pytest.raises(v018_server.TransportClosedError):
            api.read_transport(4, 0.1)
        with pytest.raises(v018_server.JSONRPCError) as caught:
            api.build({"nope": 1})
        assert caught.value.code == v018_server.ErrorCode.INVALID_PARAMS
    finally:
        api.shutdown()
        assert api.process is not None and api.process.wait(timeout=10) == 0


# ---- the compatibility module -----------------------------------------------------------------------------


def test_compat_names_and_namedtuples() -> None:
    info = v018.ServerInfo("p", True, "", [])
    assert info._fields == ("platform_name", "is_template", "model_library_format_path", "project_options")
    assert v018.TransportTimeouts(0, 0, 0)._asdict()["session_start_timeout_sec"] == 0
    option = v018.ProjectOption("board", required=["build"], type="str", help="the board")
    assert option._asdict() == {
        "name": "board",
        "choices": None,
        "default": None,
        "type": "str",
        "required": ["build"],
        "optional": None,
        "help": "the board",
    }
    assert option.replace({"choices": ["a"]}).choices == ["a"]
    with pytest.raises(TypeError, match="required= or optional="):
        v018.ProjectOption("x", type="str")
    with pytest.raises(TypeError, match="give type="):
        v018.ProjectOption("x", optional=["build"])
    with pytest.raises(TypeError, match="unknown fields"):
        v018.ProjectOption("x", optional=["build"], type="str", color="red")
    names = [o.name for o in v018.default_project_options(board={"choices": ["b1"]})]
    assert names[:3] == ["verbose", "project_type", "board"]
    with pytest.raises(ValueError, match="was not found"):
        v018.default_project_options(nope={})
    assert issubclass(v018.IoTimeoutError, errors.IoTimeoutError)
    assert issubclass(v018.TransportClosedError, v018.ServerError)
    assert str(v018.JSONRPCError(-32601, "no such method", None)) == "JSON-RPC error # -32601: no such method"
    made = v018.ServerError.from_exception(KeyError("k"), message="calling method build")
    assert "KeyError" in str(made) and made.data["traceback"]


def test_compat_read_and_write_with_timeout(tmp_path: Path) -> None:
    import os

    r, w = os.pipe()
    os.set_blocking(r, False)
    assert v018.write_with_timeout(w, b"abc", 1.0) == 3
    assert v018.read_with_timeout(r, 10, 1.0) == b"abc"
    with pytest.raises(v018.IoTimeoutError):
        v018.read_with_timeout(r, 1, 0.02)
    os.close(w)
    with pytest.raises(v018.TransportClosedError):
        v018.read_with_timeout(r, 1, 1.0)  # end of file: the fd is closed, as in v0.18
    with pytest.raises(OSError):
        os.fstat(r)


def test_compat_server_in_process_v018_wording_and_positional_calls() -> None:
    calls: list[tuple[str, tuple[object, ...], dict[str, object]]] = []

    class Handler(v018.ProjectAPIHandler):
        def server_info_query(self, version):  # type: ignore[no-untyped-def]
            return v018.ServerInfo("p", True, "", [v018.ProjectOption("b", optional=["build"], type="str")])

        def generate_project(self, *args, **kwargs):  # type: ignore[no-untyped-def]
            calls.append(("generate_project", args, kwargs))

        def build(self, *args, **kwargs):  # type: ignore[no-untyped-def]
            calls.append(("build", args, kwargs))

        def flash(self, options):  # type: ignore[no-untyped-def]
            raise v018.UnsupportedTVMVersionError()

        def open_transport(self, *args, **kwargs):  # type: ignore[no-untyped-def]
            return v018.TransportTimeouts(0, 0, 0)

        def close_transport(self):  # type: ignore[no-untyped-def]
            pass

        def read_transport(self, count, wait):  # type: ignore[no-untyped-def]
            return b"ab"

        def write_transport(self, payload, wait):  # type: ignore[no-untyped-def]
            calls.append(("write_transport", (payload, wait), {}))

    requests = io.BytesIO()
    lines = [
        {"method": "server_info_query", "params": {"tvm_version": "0.18.0"}},
        {
            "method": "generate_project",
            "params": {
                "model_library_format_path": "/m.tar",
                "standalone_crt_dir": "/crt",
                "project_dir": "/p",
                "options": {"b": None},
            },
        },
        {"method": "build", "params": {"options": {"b": "x", "undeclared": 1}}},
        {"method": "build", "params": {}},
        {"method": "build", "params": {"options": None}},
        {"method": "build", "params": {"options": {}, "extra": 1}},
        {"method": "flash", "params": {"options": {}}},
        {"method": "open_transport", "params": {"options": {}}},
        {"method": "read_transport", "params": {"n": 2, "timeout_sec": None}},
        {"method": "write_transport", "params": {"data": base64.b85encode(b"ab").decode(), "timeout_sec": 1}},
    ]
    for i, line in enumerate(lines):
        requests.write(json.dumps({"jsonrpc": "2.0", "id": i, **line}).encode() + b"\n")
    requests.write(b"not json\n")
    requests.seek(0)
    replies = io.BytesIO()
    api = v018.ProjectAPIServer(requests, replies, Handler())
    api.serve_forever()
    got = [json.loads(line) for line in replies.getvalue().splitlines()]
    assert got[0]["result"]["model_library_format_path"] == ""
    assert calls[0] == ("generate_project", (Path("/m.tar"), Path("/crt"), Path("/p"), {"b": None}), {})
    assert calls[1] == ("build", (), {"options": {"b": "x", "undeclared": 1}})  # as sent, by keyword
    assert got[3]["error"]["message"] == "method build: parameter options not given"
    assert (
        got[4]["error"]["message"]
        == "method build: parameter options: want <class 'dict'>, got <class 'NoneType'>"
    )
    assert got[5]["error"]["message"] == "build: extra parameters: extra"
    assert got[6]["error"]["message"] == "UnsupportedTVMVersionError"  # the client said it is v0.18
    assert got[7]["result"] == {
        "timeouts": {
            "session_start_retry_timeout_sec": 0,
            "session_start_timeout_sec": 0,
            "session_established_timeout_sec": 0,
        }
    }
    assert got[8]["result"] == {"data": base64.b85encode(b"ab").decode()}
    assert calls[2] == ("write_transport", (b"ab", 1), {})
    assert got[10]["error"]["code"] == -32700  # unlike v0.18's, it answers and goes on
    assert hasattr(api, "_dispatch_open_transport") and not hasattr(api, "_dispatch_build")


# ---- conformance on v0.18-style servers -----------------------------------------------------------------


def test_conformance_on_a_ported_v018_template(tmp_path: Path, servers: Path) -> None:
    template = _template(tmp_path, servers)
    before = _tree_digest(template)
    results = {r.name: r for r in run_checks(template, timeout_sec=20)}
    table = format_table(list(results.values()))
    assert _tree_digest(template) == before, "conformance changed the template directory"
    assert results["v0.18-style server"].status == V018
    assert results["server_info_query reply shape"].status == V018
    assert results["malformed JSON → -32700, then keeps serving"].status == PASS  # the compat server goes on
    assert results["unknown project option → -32602"].status == V018, table
    assert results["template: generate_project makes a generated project"].status == PASS, table
    # It copies the tar without opening it: accepting '..' members is reported, never passed.
    unsafe = results["template: refuses an MLF with '..' members"]
    assert unsafe.status == FAIL and "accepted" in unsafe.detail
    assert "v0.18 differences" in table.splitlines()[-1]


def test_conformance_skips_the_escape_check_when_generate_fails_first(tmp_path: Path, servers: Path) -> None:
    template = _template(tmp_path, servers)
    results = {r.name: r for r in run_checks(template, timeout_sec=20, options={"board": "read_modules"})}
    assert results["template: generate_project makes a generated project"].status == V018
    unsafe = results["template: refuses an MLF with '..' members"]
    assert unsafe.status == "SKIP" and "failed for another reason" in unsafe.detail


def test_conformance_refuses_a_directory_too_large_to_copy(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, servers: Path
) -> None:
    from microtvm_api import conformance

    monkeypatch.setattr(conformance, "MAX_COPY_FILES", 1)
    template = _template(tmp_path, servers)
    (template / "extra.txt").write_text("x")
    with pytest.raises(errors.ServerNotFoundError, match="too large to check"):
        run_checks(template)


def test_minimal_mlf_tar_is_readable(tmp_path: Path) -> None:
    with tarfile.open(_minimal_mlf(tmp_path / "m.tar")) as tar:
        assert "models" in json.load(tar.extractfile("metadata.json"))  # type: ignore[arg-type]
