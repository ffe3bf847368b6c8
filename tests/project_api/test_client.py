"""The client against real server subprocesses: normal calls, and servers that die, hang or print junk."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from microtvm_api import errors
from microtvm_api.client import ProjectAPIClient, ServerTransport, detect_style, find_server

Launch = Callable[..., ProjectAPIClient]


def test_calls_round_trip_with_typed_helpers(launch: Launch, servers: Path) -> None:
    client = launch(servers / "echo_server.py")
    info = client.server_info_query("0.27.0.post1")
    assert info["platform_name"] == "echo" and info["protocol_version"] == 1
    assert client.build({"board": "alpha"})["board"] == "alpha"
    transport = ServerTransport(client)
    assert transport.timeouts["session_start_timeout_sec"] == 5.0
    transport.write(bytes(range(256)), 1.0)
    assert transport.read(200, 1.0) + transport.read(100, 1.0) == bytes(range(256))
    with pytest.raises(errors.IoTimeoutError, match="no data"):
        transport.read(1, 0.01)
    transport.close()
    assert client.close() == 0


def test_server_errors_rebuild_their_class_with_remote_traceback(launch: Launch, servers: Path) -> None:
    client = launch(servers / "echo_server.py")
    with pytest.raises(errors.TransportClosedError) as info:
        client.read_transport(4, 0.1)
    assert info.value.hint == "call open_transport first"
    assert info.value.remote_traceback and "read_transport" in info.value.remote_traceback
    # The server is still fine after an error reply.
    assert client.server_info_query()["platform_name"] == "echo"


def test_printing_handlers_and_child_tools_cannot_corrupt_the_channel(launch: Launch, servers: Path) -> None:
    client = launch(servers / "echo_server.py")
    result = client.build({"board": "alpha", "chatter": True})
    assert result["chatter"] is True
    client.close()
    tail = client.stderr_tail()
    assert "compiling... (print)" in tail and "raw write to fd 1" in tail and "child tool output" in tail


def test_server_that_exits_at_start_is_reported_with_its_stderr(launch: Launch, servers: Path) -> None:
    client = launch(servers / "exits_at_start.py")
    with pytest.raises(errors.ServerExitedError) as info:
        client.server_info_query()
    text = str(info.value)
    assert "exit code 4" in text and "at start-up" in text
    assert "No module named 'vendor_sdk'" in text
    assert "tvmc micro rpc" in (info.value.hint or "")
    # Later calls say the server is gone instead of hanging.
    with pytest.raises(errors.ServerExitedError, match="no longer usable"):
        client.build({})


def test_server_that_crashes_mid_call(launch: Launch, servers: Path) -> None:
    client = launch(servers / "echo_server.py")
    client.server_info_query()
    with pytest.raises(errors.ServerExitedError) as info:
        client.build({"board": "alpha", "crash": True})
    assert "exit code 3" in str(info.value) and "while handling build" in str(info.value)
    assert "about to crash" in str(info.value)
    assert client.process.returncode == 3


def test_server_that_hangs_past_the_deadline_is_stopped(launch: Launch, servers: Path) -> None:
    client = launch(servers / "echo_server.py")
    client.server_info_query()
    start = time.monotonic()
    with pytest.raises(errors.ServerTimeoutError) as info:
        client.build({"board": "alpha", "sleep_sec": 60}, timeout_sec=0.5)
    assert time.monotonic() - start < 10
    assert "did not answer build within 0.5 s" in str(info.value)
    hint = info.value.hint or ""
    assert "raise the deadline" in hint
    # Every flag the hint names exists where it says (once it named a `--timeout` tvmc run never had).
    rpc_help = subprocess.run(
        [sys.executable, "-m", "tvmc_micro", "micro", "rpc", "--help"], capture_output=True, text=True
    ).stdout
    assert "tvmc micro rpc DIR build --timeout SECONDS" in hint and "--timeout" in rpc_help
    server_help = subprocess.run(  # a server's fd 1 is its stderr: help text goes there
        [sys.executable, str(servers / "echo_server.py"), "--help"], capture_output=True, text=True
    ).stderr
    assert "--debug" in hint and "--debug" in server_help
    assert client.process.poll() is not None  # reaped, not left running


def test_server_that_prints_junk_on_stdout(launch: Launch, servers: Path) -> None:
    client = launch(servers / "junk_stdout_server.py")
    with pytest.raises(errors.ServerProtocolError) as info:
        client.server_info_query()
    assert "not a JSON-RPC reply" in str(info.value) and "Vendor board server v1.0 ready" in str(info.value)
    assert "fd 1 at stderr" in (info.value.hint or "")
    assert client.process.poll() is not None


def test_protocol_major_mismatch_names_both_versions(launch: Launch, servers: Path) -> None:
    client = launch(servers / "echo_server.py", expected_protocol_major=2)
    with pytest.raises(errors.UnsupportedProtocolVersionError) as info:
        client.server_info_query()
    assert "speaks Project API protocol version 1" in info.value.message
    assert "this client speaks version 2" in info.value.message
    bad = launch(servers / "bad_info_server.py")
    with pytest.raises(
        errors.UnsupportedProtocolVersionError, match="version 2; this client speaks version 1"
    ):
        bad.server_info_query()


def test_v018_server_over_read_write_fd_pipes(launch: Launch, servers: Path) -> None:
    path = servers / "v018_server.py"
    assert detect_style(path) == "fds"
    client = launch(path)
    assert client.style == "fds"
    info = client.server_info_query()
    assert info["platform_name"] == "host"
    assert client.call("write_transport", {"data": "Xk~0{", "timeout_sec": 1}) == {"echo": "hell"}
    # v0.18 puts the class name in `message`: rebuilt as that class, text from the traceback's last line.
    with pytest.raises(errors.IoTimeoutError):
        client.read_transport(4, 1.0)
    with pytest.raises(errors.ServerError, match="RuntimeError: make failed"):
        client.build({})
    assert "stdout is only a log here" in client.stderr_tail()


def test_our_servers_accept_v018_fd_pipes_too(launch: Launch, servers: Path) -> None:
    client = launch(servers / "echo_server.py", style="fds")
    assert client.server_info_query()["platform_name"] == "echo"
    assert client.close() == 0


def test_another_interpreter_can_import_the_library(launch: Launch, servers: Path, tmp_path: Path) -> None:
    other = Path("/usr/bin/python3")
    if not other.exists() or Path(sys.executable).resolve() == other.resolve():
        pytest.skip("needs a second Python interpreter at /usr/bin/python3")
    client = launch(servers / "v018_server.py", interpreter=other)  # stdlib only: runs anywhere
    assert client.server_info_query()["platform_name"] == "host"
    # A microtvm_api server finds the library through PYTHONPATH; a missing jsonrpcserver is reported plainly.
    probe = launch(servers / "echo_server.py", interpreter=other)
    try:
        probe.server_info_query()
    except errors.ServerExitedError as err:
        assert "jsonrpcserver" in str(err) and "pip install" in (err.hint or "")
        assert "No module named 'microtvm_api'" not in str(err)
        assert f"{other} -m pip install" in str(err)


def test_missing_server_and_interpreter(tmp_path: Path, launch: Launch, servers: Path) -> None:
    with pytest.raises(errors.ServerNotFoundError, match=r"has no microtvm_api_server\.py"):
        find_server(tmp_path)
    with pytest.raises(errors.ServerNotFoundError, match="does not exist"):
        find_server(tmp_path / "nope.py")
    with pytest.raises(errors.ServerNotFoundError, match="cannot start"):
        launch(servers / "echo_server.py", interpreter=tmp_path / "no-python")


def test_close_reaps_and_is_idempotent(servers: Path) -> None:
    client = ProjectAPIClient.launch(servers / "echo_server.py", stderr_sink=None)
    client.server_info_query()
    pid = client.process.pid
    assert client.close() == 0
    assert client.close() == 0
    with pytest.raises(ChildProcessError):
        os.waitpid(pid, os.WNOHANG)
    with pytest.raises(errors.ServerExitedError, match="closed"):
        client.server_info_query()


def test_server_in_a_directory_with_a_launcher_script(tmp_path: Path, launch: Launch, servers: Path) -> None:
    project = tmp_path / "old_project"
    project.mkdir()
    shutil.copy(servers / "v018_server.py", project / "microtvm_api_server.py")
    launcher = project / "launch_microtvm_api_server.sh"
    launcher.write_text(f'#!/bin/sh\necho "launcher ran" >&2\nexec {sys.executable} "$@"\n')
    launcher.chmod(0o755)
    client = launch(project)
    assert client.style == "fds"
    assert client.server_info_query()["platform_name"] == "host"
    client.close()
    assert "launcher ran" in client.stderr_tail()


def test_request_ids_count_up_from_one_and_a_wrong_id_is_refused(tmp_path: Path, launch: Launch) -> None:
    server = tmp_path / "id_server.py"
    server.write_text(
        "import json, sys\n"
        "for n, line in enumerate(sys.stdin):\n"
        "    rid = json.loads(line)['id']\n"
        "    reply_id = rid if n < 2 else rid + 100\n"
        "    print(json.dumps({'jsonrpc': '2.0', 'id': reply_id, 'result': {'seen': rid}}), flush=True)\n"
    )
    client = launch(server)
    assert client.call("anything", {}) == {"seen": 1}
    assert client.call("anything", {}) == {"seen": 2}
    with pytest.raises(errors.ServerProtocolError, match=r"\(request id 3\) with id 103"):
        client.call("anything", {})
