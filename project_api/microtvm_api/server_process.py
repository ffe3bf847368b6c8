"""The Project API server as a child process: find it, start it, copy its stderr, stop it.

Stdio servers (ours) get requests on stdin and answer on stdout. Servers written for microTVM v0.18 get
two extra pipes, ``--read-fd N --write-fd M`` (chosen automatically for a `launch_microtvm_api_server.sh`
launcher or a server importing `tvm.micro.project_api`). Either way the caller gets a pair of raw fds
(replies in, requests out) and the server's stderr arrives through a `StderrPump`, which keeps its tail
for error messages. Nothing here speaks JSON-RPC (that is `microtvm_api.rpc_connection`).
"""

from __future__ import annotations

import collections
import os
import signal
import subprocess
import sys
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Literal, TextIO

import microtvm_api
from microtvm_api import lifeline
from microtvm_api.errors import ServerNotFoundError

SERVER_FILE = "microtvm_api_server.py"
V018_LAUNCHER = "launch_microtvm_api_server.sh"
Style = Literal["auto", "stdio", "fds"]


def find_server(path: str | Path) -> Path:
    """The server file for a path that is a server file, or a project / template directory holding one."""
    p = Path(path)
    if p.is_dir():
        for name in (SERVER_FILE, V018_LAUNCHER):
            if (p / name).is_file():
                return (p / SERVER_FILE) if (p / SERVER_FILE).is_file() else p / name
        raise ServerNotFoundError(
            f"{p} has no {SERVER_FILE}",
            "pass a project directory, a template directory or the path of a microtvm_api_server.py",
        )
    if p.is_file():
        return p
    raise ServerNotFoundError(
        f"{p} does not exist", "pass a project directory or a microtvm_api_server.py path"
    )


def detect_style(server: Path) -> Literal["stdio", "fds"]:
    """v0.18 servers (a launcher script beside them, or importing tvm.micro.project_api) want fd pipes."""
    if (server.parent / V018_LAUNCHER).is_file() or server.name == V018_LAUNCHER:
        return "fds"
    try:
        text = server.read_text(errors="replace")
    except OSError:
        return "stdio"
    return "fds" if "tvm.micro.project_api" in text and "microtvm_api" not in text else "stdio"


class StderrPump(threading.Thread):
    """Copies the server's stderr to a sink line by line and keeps the last lines for error messages."""

    def __init__(self, fd: int, sink: TextIO | None, prefix: str) -> None:
        super().__init__(daemon=True, name="project-api-stderr")
        self.fd = fd
        self.sink = sink
        self.prefix = prefix
        self.lines: collections.deque[str] = collections.deque(maxlen=30)

    def run(self) -> None:
        with os.fdopen(self.fd, "rb", buffering=0) as stream:
            pending = b""
            while True:
                try:
                    chunk = stream.read(65536)
                except OSError:
                    chunk = b""
                if not chunk:
                    break
                pending += chunk
                *complete, pending = pending.split(b"\n")
                for raw in complete:
                    self._emit(raw)
            if pending:
                self._emit(pending)

    def _emit(self, raw: bytes) -> None:
        text = raw.decode("utf-8", "replace").rstrip("\r")
        self.lines.append(text)
        if self.sink is not None:
            try:
                self.sink.write(f"{self.prefix}{text}\n")
                self.sink.flush()
            except (OSError, ValueError):
                pass

    def tail(self, n: int = 15) -> str:
        return "\n".join(list(self.lines)[-n:])


@dataclass(frozen=True)
class ServerProcess:
    """A started server: the process, the fds its replies are read from and requests written to (the
    request fd is non-blocking, for writes with a deadline), and the pump carrying its stderr."""

    process: subprocess.Popen[bytes]
    read_fd: int
    write_fd: int
    pump: StderrPump
    server: Path
    style: Literal["stdio", "fds"]


def server_argv(
    path: Path, style: Literal["stdio", "fds"], interpreter: str | Path | None, debug: bool
) -> list[str]:
    """The command starting the server at `path` (without the fd arguments an fds-style launch adds)."""
    if path.suffix == ".py":
        argv = [str(interpreter or sys.executable), str(path)]
    elif path.name == V018_LAUNCHER:
        argv = [str(path), str(path.parent / SERVER_FILE)]
    else:
        argv = [str(path)]
    # A v0.18 template's launcher sets up the interpreter it expects (a venv, its own checks), as v0.18's
    # tvmc ran it, unless the caller chose an interpreter explicitly.
    if (
        style == "fds"
        and (path.parent / V018_LAUNCHER).is_file()
        and path.suffix == ".py"
        and not interpreter
    ):
        argv = [str(path.parent / V018_LAUNCHER), str(path)]
    if debug:
        argv.append("--debug")
    return argv


def server_env(env: Mapping[str, str] | None) -> dict[str, str]:
    """The server's environment: `env` (default: ours) with this library first on PYTHONPATH."""
    child_env = dict(os.environ if env is None else env)
    child_env["PYTHONPATH"] = os.pathsep.join(
        [p for p in (library_root(), child_env.get("PYTHONPATH", "")) if p]
    )
    child_env.setdefault("PYTHONUNBUFFERED", "1")
    return child_env


def start_server(
    server: str | Path,
    *,
    interpreter: str | Path | None = None,
    cwd: str | Path | None = None,
    style: Style = "auto",
    env: Mapping[str, str] | None = None,
    debug: bool = False,
    stderr_sink: TextIO | None = sys.stderr,
) -> ServerProcess:
    """Start the server at `server` (file or directory) in its own process group. Python files run under
    `interpreter` (default: this one); the working directory defaults to the server's directory."""
    path = find_server(server).resolve()
    chosen = detect_style(path) if style == "auto" else style
    argv = server_argv(path, chosen, interpreter, debug)
    child_env = server_env(env)
    # The server (and through it what it starts) gets SIGTERM when this thread ends, even on SIGKILL
    # of the client. PDEATHSIG follows the launching thread, so it is only armed from the main thread;
    # servers also watch for their parent's death themselves (microtvm_api.lifeline).
    preexec = (
        lifeline.die_with_parent(signal.SIGTERM)
        if threading.current_thread() is threading.main_thread()
        else None
    )
    log_r, log_w = os.pipe()
    try:
        if chosen == "fds":
            req_r, req_w = os.pipe()  # client → server
            rep_r, rep_w = os.pipe()  # server → client
            argv += ["--read-fd", str(req_r), "--write-fd", str(rep_w)]
            process = subprocess.Popen(
                argv,
                stdin=subprocess.DEVNULL,
                stdout=log_w,
                stderr=log_w,
                cwd=cwd or path.parent,
                env=child_env,
                pass_fds=(req_r, rep_w),
                start_new_session=True,
                preexec_fn=preexec,
            )
            os.close(req_r)
            os.close(rep_w)
            read_fd, write_fd = rep_r, req_w
        else:
            process = subprocess.Popen(
                argv,
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=log_w,
                cwd=cwd or path.parent,
                env=child_env,
                start_new_session=True,
                preexec_fn=preexec,
            )
            assert process.stdin is not None and process.stdout is not None
            read_fd, write_fd = os.dup(process.stdout.fileno()), os.dup(process.stdin.fileno())
            process.stdout.close()
            process.stdin.close()
    except FileNotFoundError as err:
        os.close(log_r)
        os.close(log_w)
        raise ServerNotFoundError(
            f"cannot start the Project API server: {err.strerror}: {err.filename}",
            "check the interpreter path (--interpreter) and that the server file is executable",
        ) from err
    except PermissionError as err:
        os.close(log_r)
        os.close(log_w)
        raise ServerNotFoundError(
            f"cannot start {argv[0]}: permission denied",
            f"chmod +x {argv[0]}, or run it with an interpreter",
        ) from err
    os.close(log_w)
    os.set_blocking(write_fd, False)
    pump = StderrPump(log_r, stderr_sink, prefix="[server] ")
    pump.start()
    return ServerProcess(process, read_fd, write_fd, pump, path, chosen)


def stop_process_group(process: subprocess.Popen[bytes], term_wait_sec: float = 3.0) -> None:
    """Stop the server and anything it started (it runs in its own session/process group): SIGTERM, so
    it can close what it opened, then SIGKILL if it is still there."""
    if process.poll() is not None:
        return
    for sig, wait in ((signal.SIGTERM, term_wait_sec), (signal.SIGKILL, 5.0)):
        try:
            os.killpg(process.pid, sig)
        except (ProcessLookupError, PermissionError):
            pass
        try:
            process.wait(timeout=wait)
            return
        except subprocess.TimeoutExpired:
            continue


def library_root() -> str:
    """The directory holding the microtvm_api package, so a server in any interpreter can import it."""
    return str(Path(microtvm_api.__file__).resolve().parent.parent)
