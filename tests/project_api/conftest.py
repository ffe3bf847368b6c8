"""Fixtures for the Project API tests: the test servers, a client launcher that always reaps, a deadline."""

from __future__ import annotations

import signal
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from microtvm_api.client import ProjectAPIClient

SERVERS = Path(__file__).resolve().parent / "servers"
TEST_DEADLINE_SEC = 90


@pytest.fixture(autouse=True)
def _deadline() -> Iterator[None]:
    """Nothing may hang: every test in this folder is interrupted after TEST_DEADLINE_SEC."""

    def expire(signum: int, frame: Any) -> None:
        raise TimeoutError(f"test exceeded its {TEST_DEADLINE_SEC} s deadline")

    previous = signal.signal(signal.SIGALRM, expire)
    signal.alarm(TEST_DEADLINE_SEC)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)


@pytest.fixture(scope="session")
def servers() -> Path:
    return SERVERS


@pytest.fixture
def launch() -> Iterator[Callable[..., ProjectAPIClient]]:
    """Launch a server (quietly: its stderr is kept for error messages, not echoed) and reap it after."""
    started: list[ProjectAPIClient] = []

    def _launch(server: str | Path, **kwargs: Any) -> ProjectAPIClient:
        kwargs.setdefault("stderr_sink", None)
        client = ProjectAPIClient.launch(server, **kwargs)
        started.append(client)
        return client

    yield _launch
    for client in started:
        client.close(timeout_sec=5)
        assert client.process.poll() is not None, "a server outlived its test"


PYTHON = sys.executable
