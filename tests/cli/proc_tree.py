"""Processes by /proc (psutil is not a dependency): a process's descendants, and whether they still run.

A process is identified by (pid, start time) so a recycled pid is never mistaken for a survivor.
"""

from __future__ import annotations

import os
import signal
import time
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Proc:
    pid: int
    ppid: int
    state: str
    start: int
    name: str
    session: int


def snapshot() -> dict[int, Proc]:
    procs = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        name = stat[stat.index("(") + 1 : stat.rindex(")")]
        fields = stat[stat.rindex(")") + 2 :].split()
        procs[int(entry.name)] = Proc(
            int(entry.name), int(fields[1]), fields[0], int(fields[19]), name, int(fields[3])
        )
    return procs


def descendants(pid: int) -> list[Proc]:
    """Every living descendant of `pid` (children, grandchildren ...), whatever session they moved to."""
    procs = snapshot()
    found: dict[int, Proc] = {}
    todo = [pid]
    while todo:
        parent = todo.pop()
        for proc in procs.values():
            if proc.ppid == parent and proc.pid not in found and proc.state != "Z":
                found[proc.pid] = proc
                todo.append(proc.pid)
    return list(found.values())


def alive(procs: list[Proc]) -> list[Proc]:
    """Those of `procs` still running (zombies count as gone: they no longer execute)."""
    now = snapshot()
    return [p for p in procs if p.pid in now and now[p.pid].start == p.start and now[p.pid].state != "Z"]


def wait_gone(procs: list[Proc], timeout_sec: float) -> list[Proc]:
    """Wait up to `timeout_sec` for `procs` to end; returns those still running."""
    deadline = time.monotonic() + timeout_sec
    while True:
        left = alive(procs)
        if not left or time.monotonic() > deadline:
            return left
        time.sleep(0.05)


def wait_for_descendant(pid: int, name: str, timeout_sec: float) -> list[Proc]:
    """Wait until `pid` has a descendant called `name`; returns all its descendants then."""
    deadline = time.monotonic() + timeout_sec
    while time.monotonic() < deadline:
        found = descendants(pid)
        if any(p.name == name for p in found):
            return found
        time.sleep(0.05)
    raise AssertionError(f"no {name!r} process under pid {pid} after {timeout_sec} s: {descendants(pid)}")


def kill_all(procs: list[Proc]) -> None:
    """Test cleanup: SIGKILL whatever of `procs` still runs."""
    for proc in alive(procs):
        try:
            os.kill(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
