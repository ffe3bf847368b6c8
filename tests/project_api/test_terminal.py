"""A person debugging a server types a request on a terminal: the server answers on that terminal."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

from microtvm_api.client import _library_root
from microtvm_api.errors import IoTimeoutError
from microtvm_api.transport import deadline_after, fd_read


def _read_until(fd: int, needle: bytes, timeout_sec: float) -> bytes:
    deadline = deadline_after(timeout_sec)
    seen = b""
    while needle not in seen:
        try:
            seen += fd_read(fd, 4096, deadline)
        except IoTimeoutError:
            raise AssertionError(
                f"no {needle!r} on the terminal within {timeout_sec} s; saw {seen!r}"
            ) from None
    return seen


def test_hand_typed_request_on_a_real_pty(repo_root: Path) -> None:
    master, slave = os.openpty()
    env = dict(os.environ, PYTHONPATH=_library_root())
    server = repo_root / "template_projects" / "crt_host" / "microtvm_api_server.py"
    process = subprocess.Popen(
        [sys.executable, str(server)],
        stdin=slave,
        stdout=slave,
        stderr=subprocess.PIPE,
        env=env,
        start_new_session=True,
    )
    os.close(slave)
    try:
        time.sleep(0.1)
        # Typed as a person would: with spaces, then Enter (the terminal sends the line on newline).
        typed = (
            b'{"jsonrpc": "2.0", "id": 1, "method": "server_info_query", "params": {"tvm_version": "0.27"}}\n'
        )
        os.write(master, typed)
        screen = _read_until(master, b'"id": 1}', 20)
        reply_line = [line for line in screen.splitlines() if b'"result"' in line][-1]
        reply = json.loads(reply_line)
        assert reply["result"]["platform_name"] == "crt_host"
        # A typo gets an answer on the terminal too, and the server keeps going.
        os.write(master, b'{"jsonrpc": "2.0", "id": 2, "method": "server_info_query", "params": {\n')
        screen = _read_until(master, b"-32700", 20)
        os.write(master, b'{"jsonrpc": "2.0", "id": 3, "method": "nope"}\n')
        screen = _read_until(master, b"-32601", 20)
        assert b"unknown method 'nope'" in screen
        os.write(master, b"\x04")  # Ctrl-D: end of input
        assert process.wait(timeout=20) == 0
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
        os.close(master)
        assert process.stderr is not None
        process.stderr.close()
