"""Child processes that die with their parent: the client's server, the server's emulator and tools.

Three mechanisms, because no single one covers every way a parent goes away:

- `die_with_parent` (Linux ``prctl(PR_SET_PDEATHSIG)``), run in the child between fork and exec: the
  kernel signals the child when the thread that started it ends, even on SIGKILL of the parent. The
  client uses it for its server, the server for QEMU.
- `install` (in a server process): SIGTERM, SIGHUP and SIGINT run the registered cleanups (close the
  transport, i.e. kill QEMU, which runs in a session of its own), then signal the server's own process
  group (make, gcc, west, a crt_host firmware) and exit 128 + the signal number.
- a watchdog thread started by `install` that does the same when the parent process is gone (the
  server was re-parented), for parents that started the server from a thread other than their main one
  (PDEATHSIG follows the thread) and for platforms without prctl.

Everything here is stdlib and safe to import in any interpreter a template server runs under.
"""

from __future__ import annotations

import ctypes
import os
import signal
import sys
import threading
import time
from collections.abc import Callable
from types import FrameType

PR_SET_PDEATHSIG = 1
_HANDLED_SIGNALS = (signal.SIGTERM, signal.SIGHUP, signal.SIGINT)
_WATCH_INTERVAL_SEC = 0.25


def _load_prctl() -> Callable[..., int] | None:
    if not sys.platform.startswith("linux"):
        return None
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        prctl: Callable[..., int] = libc.prctl
    except (OSError, AttributeError):
        return None
    return prctl


# Resolved once in the parent, so the code run between fork and exec only makes the call.
_PRCTL = _load_prctl()


def die_with_parent(sig: int = signal.SIGKILL, parent: int | None = None) -> Callable[[], None]:
    """A `preexec_fn` for `subprocess.Popen`: the child gets `sig` when its parent (thread) dies.

    The parent's pid (`parent`, default this process) is taken now, before the fork: if the parent died
    before prctl took effect the child is already re-parented, and then it sends itself `sig` rather
    than run as an orphan.
    """
    parent = os.getpid() if parent is None else parent
    prctl = _PRCTL

    def preexec() -> None:
        if prctl is not None:
            prctl(PR_SET_PDEATHSIG, int(sig), 0, 0, 0)
        if os.getppid() != parent:
            os.kill(os.getpid(), sig)

    return preexec


def pdeathsig_supported() -> bool:
    """True where `die_with_parent` has an effect (Linux)."""
    return _PRCTL is not None


class _Lifeline:
    def __init__(self) -> None:
        self.installed = False
        self.parent = os.getppid()
        self.cleanups: dict[int, Callable[[], object]] = {}
        self._next = 0
        self._lock = threading.Lock()
        self._ending = False

    def add(self, cleanup: Callable[[], object]) -> int:
        with self._lock:
            self._next += 1
            self.cleanups[self._next] = cleanup
            return self._next

    def remove(self, token: int) -> None:
        with self._lock:
            self.cleanups.pop(token, None)

    def end(self, status: int, why: str) -> None:
        """Run the cleanups, signal our process group (when we lead it), exit `status`. Never returns."""
        with self._lock:
            if self._ending:  # a second signal while cleaning up: the first one finishes the job
                return
            self._ending = True
            cleanups = list(self.cleanups.values())[::-1]
        try:
            sys.stderr.write(f"microtvm_api: {why}: stopping the server and what it started\n")
            sys.stderr.flush()
        except (OSError, ValueError):
            pass
        for cleanup in cleanups:
            try:
                cleanup()
            except BaseException:
                pass
        if os.getpgrp() == os.getpid():  # our group holds only what we started (the client made it)
            signal.signal(signal.SIGTERM, signal.SIG_IGN)
            try:
                os.killpg(os.getpid(), signal.SIGTERM)
            except OSError:
                pass
        os._exit(status)

    def on_signal(self, signum: int, _frame: FrameType | None) -> None:
        self.end(128 + signum, f"got {signal.Signals(signum).name}")

    def watch_parent(self) -> None:
        while True:
            time.sleep(_WATCH_INTERVAL_SEC)
            if os.getppid() != self.parent:
                self.end(128 + signal.SIGHUP, f"the parent process (pid {self.parent}) is gone")


_STATE = _Lifeline()


def install() -> None:
    """In a server process (main thread): end cleanly on SIGTERM/SIGHUP/SIGINT and when the parent dies.

    Idempotent; does nothing when called from another thread (signal handlers need the main thread).
    """
    if _STATE.installed or threading.current_thread() is not threading.main_thread():
        return
    _STATE.installed = True
    _STATE.parent = os.getppid()
    for sig in _HANDLED_SIGNALS:
        signal.signal(sig, _STATE.on_signal)
    threading.Thread(target=_STATE.watch_parent, name="lifeline-parent-watch", daemon=True).start()


def add_cleanup(cleanup: Callable[[], object]) -> int:
    """Run `cleanup` (e.g. kill an emulator) before the server exits on a signal; returns a token."""
    return _STATE.add(cleanup)


def remove_cleanup(token: int) -> None:
    _STATE.remove(token)
