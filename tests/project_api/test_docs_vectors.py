"""Replays the request/response vectors of docs/project-api.md against real server subprocesses."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
from microtvm_api.client import ProjectAPIClient

ANY = "<any>"


def _sessions(doc: Path) -> list[tuple[str, list[tuple[str, str]]]]:
    """(server path, [(direction, line)]) for every ```jsonrpc-vectors block."""
    blocks = re.findall(r"```jsonrpc-vectors\n(.*?)```", doc.read_text(), flags=re.S)
    sessions = []
    for block in blocks:
        server, steps = "", []
        for line in block.splitlines():
            if line.startswith("# server:"):
                server = line.split(":", 1)[1].strip()
            elif line.startswith(("--> ", "<-- ")):
                steps.append((line[:3], line[4:]))
            elif line.strip():
                raise AssertionError(f"unexpected line in a vector block: {line!r}")
        sessions.append((server, steps))
    return sessions


def _matches(expected: Any, actual: Any, where: str = "reply") -> None:
    if expected == ANY:
        return
    if isinstance(expected, dict):
        assert isinstance(actual, dict), f"{where}: expected an object, got {actual!r}"
        for key, value in expected.items():
            assert key in actual, f"{where}: missing key {key!r} in {actual!r}"
            _matches(value, actual[key], f"{where}.{key}")
    elif isinstance(expected, list):
        assert isinstance(actual, list) and len(actual) == len(expected), (
            f"{where}: {actual!r} != {expected!r}"
        )
        for i, (e, a) in enumerate(zip(expected, actual, strict=True)):
            _matches(e, a, f"{where}[{i}]")
    elif isinstance(expected, str) and expected.endswith("..."):
        assert isinstance(actual, str) and actual.startswith(expected[:-3]), f"{where}: {actual!r}"
    else:
        assert actual == expected and type(actual) is type(expected), f"{where}: {actual!r} != {expected!r}"


DOC = Path(__file__).resolve().parents[2] / "docs" / "project-api.md"
SESSIONS = _sessions(DOC)


def test_the_document_has_vectors() -> None:
    assert len(SESSIONS) >= 3
    assert sum(1 for _, steps in SESSIONS for d, _ in steps if d == "<--") >= 20


@pytest.mark.parametrize(("server", "steps"), SESSIONS, ids=[f"session{i}" for i in range(len(SESSIONS))])
def test_vectors_replay(repo_root: Path, server: str, steps: list[tuple[str, str]]) -> None:
    client = ProjectAPIClient.launch(repo_root / server, stderr_sink=None)
    try:
        for number, (direction, text) in enumerate(steps):
            if direction == "-->":
                client.send_line(text.encode(), 10)
            else:
                reply = client.read_reply(10)
                _matches(json.loads(text), reply, f"step {number} reply")
    finally:
        assert client.close(timeout_sec=5) == 0
