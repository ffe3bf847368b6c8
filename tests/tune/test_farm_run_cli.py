"""`tvmc run`'s farm flags: usage errors are refused (exit 2, a message naming the flag) before the
project or the network is touched."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest


def _run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "tvmc_micro", "run", *args], capture_output=True, text=True, timeout=120
    )


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        (["--rpc-tracker", "127.0.0.1:9190"], "--rpc-tracker and --rpc-key go together"),
        (["--rpc-key", "cortex_m.mps2_an386"], "--rpc-tracker and --rpc-key go together"),
        (["--rpc-tracker", "localhost", "--rpc-key", "k"], "--rpc-tracker 'localhost' is not HOST:PORT"),
        (["--rpc-tracker", "127.0.0.1:70000", "--rpc-key", "k"], "is not HOST:PORT"),
        (["--rpc-tracker", "127.0.0.1:9190", "--rpc-key", " "], "--rpc-key must not be empty"),
        (
            ["--rpc-tracker", "127.0.0.1:9190", "--rpc-key", "k", "--rpc-timeout", "0"],
            "--rpc-timeout must be",
        ),
        (
            ["--rpc-tracker", "127.0.0.1:9190", "--rpc-key", "k", "--rpc-timeout", "nan"],
            "--rpc-timeout must be",
        ),
    ],
)
def test_bad_farm_flags_are_refused(tmp_path: Path, flags: list[str], message: str) -> None:
    r = _run(str(tmp_path / "no_project"), *flags)
    assert r.returncode == 2, r.stderr
    assert message in r.stderr, r.stderr
    assert "Traceback" not in r.stderr


def test_help_documents_the_farm_run() -> None:
    r = _run("--help")
    assert r.returncode == 0
    for flag in ("--rpc-tracker HOST:PORT", "--rpc-key KEY", "--rpc-timeout SEC", "board-farm worker"):
        assert flag in " ".join(r.stdout.split()), flag
