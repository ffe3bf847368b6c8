"""A seeded mutation loop over the Project API line handler (issue 12): valid request lines, damaged byte
by byte, go to each real template server over its stdin; every damaged line gets at most one reply, each
reply is a well-formed JSON-RPC 2.0 object, and the server answers the probe after it — it never dies,
hangs or goes out of step. Bounded: a few hundred mutants, seconds per template. A longer run:
TVMC_LINE_FUZZ_MUTANTS=20000 python3 -m pytest tests/project_api/test_line_fuzz.py."""

from __future__ import annotations

import json
import os
import random
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from microtvm_api.client import ProjectAPIClient

MUTANTS = int(os.environ.get("TVMC_LINE_FUZZ_MUTANTS", "300"))
PROBE_ID = 987654321
CODES = {-32700, -32600, -32601, -32602, -32603, -32000}


def _base_lines(tmp: Path) -> list[bytes]:
    """Requests a template answers without side effects (generate_project's MLF does not exist)."""
    requests: list[dict[str, Any]] = [
        {"method": "server_info_query", "params": {"tvm_version": "0.27"}},
        {"method": "build", "params": {"options": {"verbose": True}}},
        {"method": "flash", "params": {"options": {}}},
        {"method": "open_transport", "params": {"options": {}}},
        {"method": "read_transport", "params": {"n": 16, "timeout_sec": 0.5}},
        {"method": "write_transport", "params": {"data": "VPRomVPO", "timeout_sec": 1.5}},
        {"method": "close_transport", "params": {}},
        {
            "method": "generate_project",
            "params": {
                "model_library_format_path": str(tmp / "absent.tar"),
                "standalone_crt_dir": None,
                "project_dir": str(tmp / "never"),
                "options": {"cc": "gcc"},
            },
        },
    ]
    return [json.dumps({"jsonrpc": "2.0", "id": k + 1, **r}).encode() for k, r in enumerate(requests)]


def _mutate(rng: random.Random, line: bytes) -> bytes:
    data = bytearray(line)
    for _ in range(rng.randint(1, 3)):
        kind, pos = rng.random(), rng.randrange(len(data))
        if kind < 0.4:
            data[pos] = rng.randrange(256)
        elif kind < 0.6:
            data.insert(pos, rng.choice(b'{}[]",:0123456789-eE.\\ ntrufals\x00\xff'))
        elif kind < 0.8 and len(data) > 1:
            del data[pos]
        else:
            data[pos : pos + 1] = data[pos : pos + rng.randint(1, 8)] * 2  # repeat a span
    return bytes(data).replace(b"\n", b" ").replace(b"\r", b" ")  # one line stays one line


def _well_formed(reply: dict[str, Any]) -> None:
    assert reply.get("jsonrpc") == "2.0", reply
    assert ("result" in reply) != ("error" in reply), reply
    if "error" in reply:
        assert reply["error"]["code"] in CODES and isinstance(reply["error"]["message"], str), reply


@pytest.fixture(params=("crt_host", "cortex_m", "zephyr"))
def server(request: pytest.FixtureRequest, repo_root: Path) -> Iterator[ProjectAPIClient]:
    client = ProjectAPIClient.launch(repo_root / "template_projects" / request.param, stderr_sink=None)
    yield client
    assert client.close(timeout_sec=5) == 0, client.stderr_tail()


def test_damaged_request_lines_never_break_a_server(server: ProjectAPIClient, tmp_path: Path) -> None:
    rng = random.Random(f"line-fuzz:{MUTANTS}")
    bases = _base_lines(tmp_path)
    probe = json.dumps(
        {"jsonrpc": "2.0", "id": PROBE_ID, "method": "server_info_query", "params": {"tvm_version": "0.27"}}
    ).encode()
    answered = 0
    for _ in range(MUTANTS):
        mutant = _mutate(rng, rng.choice(bases))
        server.send_line(mutant, 10)
        server.send_line(probe, 10)
        replies = []
        while True:
            reply = server.read_reply(10)
            _well_formed(reply)
            if reply.get("id") == PROBE_ID and "result" in reply:
                break
            replies.append(reply)
        assert len(replies) <= 1, (mutant, replies)  # a notification gets none, a request exactly one
        answered += len(replies)
    assert not (tmp_path / "never").exists()
    assert answered > MUTANTS // 2  # most damaged lines are answered, not silently dropped
