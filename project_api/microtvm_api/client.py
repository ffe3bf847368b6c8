"""The client: launch a Project API server, call it with a deadline per call, reap it.

Stdio servers (ours) get requests on stdin and answer on stdout. Servers written for microTVM v0.18 get
two extra pipes, ``--read-fd N --write-fd M`` (chosen automatically for a `launch_microtvm_api_server.sh`
launcher or a server importing `tvm.micro.project_api`). The server's stderr is forwarded to a sink and its
tail kept, so when a server exits, hangs or writes junk the error says so with what it last printed.

Servers written for v0.18 (recognised by a server_info without `capabilities`) are driven as v0.18's
tvmc drove them: every declared option is sent (its default, or None, when not given), generate_project
gets a real (empty) `standalone_crt_dir`, a template's `model_library_format_path: ""` reads as null,
and `0` transport timeouts mean "no limit". When such a server then fails in generate_project on this
project's Model Library Format (metadata.json with `models`, not v0.18's `modules`; no v0.18 standalone
CRT), the error says so.
"""

from __future__ import annotations

import base64
import binascii
import collections
import math
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Literal, TextIO

import microtvm_api
from microtvm_api import errors, framing, lifeline
from microtvm_api.errors import (
    InvalidOptionError,
    IoTimeoutError,
    ProjectAPIError,
    ServerExitedError,
    ServerNotFoundError,
    ServerProtocolError,
    ServerTimeoutError,
    TransportClosedError,
    UnsupportedProtocolVersionError,
)
from microtvm_api.framing import LineReader
from microtvm_api.options import ProjectOption, convert
from microtvm_api.protocol import PROTOCOL_VERSION, protocol_major
from microtvm_api.transport import deadline_after, fd_write

SERVER_FILE = "microtvm_api_server.py"
V018_LAUNCHER = "launch_microtvm_api_server.sh"
Style = Literal["auto", "stdio", "fds"]

# Default deadline per method (seconds). Long steps get long deadlines; every call gets one.
DEFAULT_TIMEOUTS: dict[str, float] = {
    "server_info_query": 60.0,
    "generate_project": 600.0,
    "build": 3600.0,
    "flash": 900.0,
    "open_transport": 300.0,
    "close_transport": 60.0,
}
# Deadline for read/write_transport: the server-side timeout plus this margin.
TRANSPORT_MARGIN_SEC = 10.0
_UNSET: Any = object()


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


class _StderrPump(threading.Thread):
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


class ProjectAPIClient:
    """A running server and the calls made to it. Use `launch`; close (or use `with`) to reap it."""

    def __init__(
        self,
        process: subprocess.Popen[bytes],
        read_fd: int,
        write_fd: int,
        pump: _StderrPump,
        *,
        server: Path,
        style: str,
        expected_protocol_major: int = PROTOCOL_VERSION,
    ) -> None:
        self.process = process
        self.server = server
        self.style = style
        self.expected_protocol_major = expected_protocol_major
        self._reader = LineReader(read_fd)
        self._write_fd = write_fd
        self._pump = pump
        self._next_id = 1
        self._closed = False
        self._broken: ProjectAPIError | None = None
        self.server_info: dict[str, Any] | None = None

    # ---- lifecycle ---------------------------------------------------------------------------------

    @classmethod
    def launch(
        cls,
        server: str | Path,
        *,
        interpreter: str | Path | None = None,
        cwd: str | Path | None = None,
        style: Style = "auto",
        env: Mapping[str, str] | None = None,
        debug: bool = False,
        stderr_sink: TextIO | None = sys.stderr,
        expected_protocol_major: int = PROTOCOL_VERSION,
    ) -> ProjectAPIClient:
        """Start the server at `server` (file or directory). Python files run under `interpreter`
        (default: this one); the working directory defaults to the server's directory."""
        path = find_server(server).resolve()
        chosen = detect_style(path) if style == "auto" else style
        if path.suffix == ".py":
            argv = [str(interpreter or sys.executable), str(path)]
        elif path.name == V018_LAUNCHER:
            argv = [str(path), str(path.parent / SERVER_FILE)]
        else:
            argv = [str(path)]
        if (
            chosen == "fds"
            and (path.parent / V018_LAUNCHER).is_file()
            and path.suffix == ".py"
            and not interpreter
        ):
            argv = [str(path.parent / V018_LAUNCHER), str(path)]
        child_env = dict(os.environ if env is None else env)
        child_env["PYTHONPATH"] = os.pathsep.join(
            [p for p in (_library_root(), child_env.get("PYTHONPATH", "")) if p]
        )
        child_env.setdefault("PYTHONUNBUFFERED", "1")
        if debug:
            argv.append("--debug")
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
        pump = _StderrPump(log_r, stderr_sink, prefix="[server] ")
        pump.start()
        return cls(
            process,
            read_fd,
            write_fd,
            pump,
            server=path,
            style=chosen,
            expected_protocol_major=expected_protocol_major,
        )

    def close(self, timeout_sec: float = 10.0) -> int | None:
        """End of input tells the server to exit; stop it if it does not. Returns its exit code."""
        if self._closed:
            return self.process.returncode
        self._closed = True
        self.close_input()
        try:
            os.close(self._reader.fd)
        except OSError:
            pass
        try:
            self.process.wait(timeout=timeout_sec)
        except subprocess.TimeoutExpired:
            self._stop()
        self._pump.join(timeout=2.0)
        return self.process.returncode

    def __enter__(self) -> ProjectAPIClient:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    @property
    def usable(self) -> bool:
        """False once the client was closed or gave up on the server (it died, hung or broke protocol)."""
        return not self._closed and self._broken is None and self._write_fd >= 0

    def close_input(self) -> None:
        """Close the request channel: a conforming server exits at end of input."""
        if self._write_fd >= 0:
            try:
                os.close(self._write_fd)
            except OSError:
                pass
            self._write_fd = -1

    @property
    def reply_fd(self) -> int:
        """The fd replies are read from (to compare with what the server holds)."""
        return self._reader.fd

    def stderr_tail(self, n: int = 15) -> str:
        return self._pump.tail(n)

    # ---- calls -------------------------------------------------------------------------------------

    def call(
        self,
        method: str,
        params: Mapping[str, Any] | Sequence[Any] | None = None,
        *,
        timeout_sec: float | None = _UNSET,
    ) -> Any:
        """Call `method` and return its result; raises the rebuilt server exception on an error reply."""
        if timeout_sec is _UNSET:
            timeout_sec = DEFAULT_TIMEOUTS.get(method, 120.0)
        deadline = deadline_after(timeout_sec)
        request_id = self._next_id
        self._next_id += 1
        request = {
            "jsonrpc": "2.0",
            "id": request_id,
            "method": method,
            "params": list(params) if isinstance(params, Sequence) else dict(params or {}),
        }
        with self._interruptible(method):
            self._send(framing.encode(request), method, deadline, timeout_sec)
            reply = self._receive(method, deadline, timeout_sec)
        if reply.get("id") != request_id:
            raise self._fail(
                ServerProtocolError(
                    f"the server answered {method} (request id {request_id}) with id {reply.get('id')!r}",
                    "the server must answer each request with the same id, in order",
                )
            )
        if "error" in reply:
            raise errors.from_wire(reply["error"])
        return reply["result"]

    def send_line(self, line: bytes, timeout_sec: float | None = 30.0) -> None:
        """Send raw bytes as one request line (the conformance checker sends malformed ones)."""
        with self._interruptible("a raw request"):
            self._send(line.rstrip(b"\n") + b"\n", "a raw request", deadline_after(timeout_sec), timeout_sec)

    def read_reply(self, timeout_sec: float | None = 30.0, what: str = "a raw request") -> dict[str, Any]:
        """The next reply object, whatever its id or kind (error replies are returned, not raised)."""
        with self._interruptible(what):
            return self._receive(what, deadline_after(timeout_sec), timeout_sec)

    @contextmanager
    def _interruptible(self, method: str) -> Iterator[None]:
        """On Ctrl-C (or any KeyboardInterrupt) during a call, stop the server at once and re-raise.

        The call's reply is still due, so the channel is out of step and the server may be blocked in a
        long read; waiting for a polite close_transport would cost that call's whole deadline. Stopping the
        server (SIGTERM to its process group; servers then close what they opened, QEMU included) takes
        milliseconds. The client is unusable afterwards.
        """
        try:
            yield
        except KeyboardInterrupt:
            self.abandon(f"interrupted during {method}")
            raise

    def abandon(self, why: str) -> None:
        """Stop the server now without the end-of-input handshake (after an interrupt); idempotent."""
        blocked = {signal.SIGINT, signal.SIGTERM, signal.SIGHUP}
        on_main = threading.current_thread() is threading.main_thread()
        old = signal.pthread_sigmask(signal.SIG_BLOCK, blocked) if on_main else None
        try:
            if self._broken is None:
                self._broken = ServerExitedError(
                    f"the Project API client was {why}; the server was stopped", "launch it again"
                )
            self.close_input()
            self._stop(term_wait_sec=1.0)
            self.close(timeout_sec=0.0)
        finally:
            if old is not None:
                signal.pthread_sigmask(signal.SIG_SETMASK, old)

    def _send(self, line: bytes, method: str, deadline: float | None, timeout_sec: float | None) -> None:
        if self._broken is not None:
            raise type(self._broken)(
                f"the server is no longer usable after an earlier failure: {self._broken.message}",
                self._broken.hint,
            )
        if self._closed or self._write_fd < 0:
            raise ServerExitedError("the Project API client is closed", "launch the server again")
        try:
            fd_write(self._write_fd, line, deadline)
        except TransportClosedError:
            raise self._fail_exited(method) from None
        except IoTimeoutError:
            raise self._fail_hung(method, timeout_sec) from None

    def _receive(self, method: str, deadline: float | None, timeout_sec: float | None) -> dict[str, Any]:
        while True:
            try:
                line = self._reader.read_line(deadline)
            except IoTimeoutError:
                raise self._fail_hung(method, timeout_sec) from None
            except framing.LineTooLongError:
                raise self._fail_junk(method, "an over-long line") from None
            if line is None:
                raise self._fail_exited(method)
            if not line.strip():
                continue
            try:
                reply = framing.decode(line)
            except ValueError:
                raise self._fail_junk(method, repr(line[:200].decode("utf-8", "replace"))) from None
            if (
                not isinstance(reply, dict)
                or reply.get("jsonrpc") != "2.0"
                or ("result" in reply) == ("error" in reply)
            ):
                raise self._fail_junk(method, repr(line[:200].decode("utf-8", "replace")))
            return reply

    def server_info_query(
        self, tvm_version: str | None = None, *, timeout_sec: float | None = _UNSET
    ) -> dict[str, Any]:
        """Ask the server who it is; refuses a server of another protocol major version."""
        info = self.call(
            "server_info_query", {"tvm_version": tvm_version or _tvm_version()}, timeout_sec=timeout_sec
        )
        if not isinstance(info, dict):
            raise self._fail(ServerProtocolError(f"server_info_query returned {info!r:.100}, not an object"))
        missing = [
            k
            for k in ("platform_name", "is_template", "project_options", "protocol_version")
            if k not in info
        ]
        if missing:
            raise ServerProtocolError(
                f"server_info_query reply lacks {', '.join(missing)}", "see docs/project-api.md for its shape"
            )
        major = protocol_major(info["protocol_version"])
        if major != self.expected_protocol_major:
            raise UnsupportedProtocolVersionError(
                f"{self.server} speaks Project API protocol version {info['protocol_version']!r}; "
                f"this client speaks version {self.expected_protocol_major}",
                "use a tvmc and a template from the same release (update whichever side is older)",
            )
        if info.get("is_template") and info.get("model_library_format_path") == "":
            info["model_library_format_path"] = None  # v0.18 templates report ""
        self.server_info = info
        return info

    @property
    def is_v018_server(self) -> bool:
        """The server was written for v0.18 (its server_info has no `capabilities`): it expects every
        declared option, a real standalone_crt_dir, and uses 0 for "no timeout"."""
        return self.server_info is not None and "capabilities" not in self.server_info

    def options_for(self, options: Mapping[str, Any] | None) -> dict[str, Any]:
        """The options to send. Our servers fill in defaults themselves (and saved values take precedence
        over them), so they get what was given. A v0.18 server gets what v0.18's tvmc sent: every declared
        option, the given value converted to its declared type, else the default (None when it has none)."""
        given = dict(options or {})
        if not self.is_v018_server:
            return given
        assert self.server_info is not None
        filled: dict[str, Any] = {}
        for raw in self.server_info.get("project_options") or []:
            try:
                option = ProjectOption.from_json(raw)
            except ValueError:
                if isinstance(raw, Mapping) and isinstance(raw.get("name"), str):
                    filled[raw["name"]] = raw.get("default")
                continue
            value = given.get(option.name)
            if value is None:
                filled[option.name] = option.default
            else:
                try:
                    filled[option.name] = convert(option, value)
                except InvalidOptionError:
                    filled[option.name] = value  # the server judges it, as v0.18's did
        filled.update({k: v for k, v in given.items() if k not in filled})
        return filled

    def _note(self, text: str) -> None:
        sink = self._pump.sink
        if sink is not None:
            try:
                sink.write(f"note: {text}\n")
                sink.flush()
            except (OSError, ValueError):
                pass

    def generate_project(
        self,
        model_library_format_path: str | Path,
        standalone_crt_dir: str | Path | None,
        project_dir: str | Path,
        options: Mapping[str, Any] | None = None,
        *,
        timeout_sec: float | None = _UNSET,
    ) -> Any:
        # Paths are resolved here, against the client's working directory: the server runs with its cwd
        # in the template, where a relative project_dir would land (servers refuse relative paths).
        empty_crt: str | None = None
        if standalone_crt_dir is None and self.is_v018_server:
            # v0.18's server.py makes a Path of it before the handler runs: null would crash it.
            empty_crt = tempfile.mkdtemp(prefix="tvmc_no_standalone_crt_")
            standalone_crt_dir = empty_crt
            self._note(
                f"{self.server.name} is a v0.18-style server: it gets an empty standalone_crt_dir "
                f"({empty_crt}); tvmc-micro has no v0.18 standalone CRT (the C runtime is in the MLF's "
                "runtime/)"
            )
        params = {
            "model_library_format_path": os.path.abspath(model_library_format_path),
            "standalone_crt_dir": None if standalone_crt_dir is None else os.path.abspath(standalone_crt_dir),
            "project_dir": os.path.abspath(project_dir),
            "options": self.options_for(options),
        }
        try:
            return self.call("generate_project", params, timeout_sec=timeout_sec)
        except errors.ServerError as err:
            if self.is_v018_server:
                _explain_v018_generate_failure(err, empty_crt)
            raise
        finally:
            if empty_crt is not None:
                shutil.rmtree(empty_crt, ignore_errors=True)

    def build(self, options: Mapping[str, Any] | None = None, *, timeout_sec: float | None = _UNSET) -> Any:
        return self.call("build", {"options": self.options_for(options)}, timeout_sec=timeout_sec)

    def flash(self, options: Mapping[str, Any] | None = None, *, timeout_sec: float | None = _UNSET) -> Any:
        return self.call("flash", {"options": self.options_for(options)}, timeout_sec=timeout_sec)

    def open_transport(
        self, options: Mapping[str, Any] | None = None, *, timeout_sec: float | None = _UNSET
    ) -> dict[str, Any]:
        """The server's `timeouts`, as it sent them (ServerTransport reads 0 as "no limit")."""
        reply = self.call("open_transport", {"options": self.options_for(options)}, timeout_sec=timeout_sec)
        timeouts = reply.get("timeouts") if isinstance(reply, dict) else None
        return dict(timeouts) if isinstance(timeouts, dict) else {}

    def close_transport(self, *, timeout_sec: float | None = _UNSET) -> Any:
        return self.call("close_transport", {}, timeout_sec=timeout_sec)

    def read_transport(self, n: int, timeout_sec: float | None) -> bytes:
        reply = self.call(
            "read_transport",
            {"n": n, "timeout_sec": timeout_sec},
            timeout_sec=_transport_deadline(timeout_sec),
        )
        data = reply.get("data") if isinstance(reply, dict) else None
        try:
            return base64.b85decode(data) if isinstance(data, str) else _raise_bad_data(reply)
        except (ValueError, binascii.Error):
            raise ServerProtocolError(
                f"read_transport returned data that is not base85: {data!r:.80}"
            ) from None

    def write_transport(self, data: bytes, timeout_sec: float | None) -> None:
        self.call(
            "write_transport",
            {"data": base64.b85encode(data).decode("ascii"), "timeout_sec": timeout_sec},
            timeout_sec=_transport_deadline(timeout_sec),
        )

    # ---- failure reports ---------------------------------------------------------------------------

    def _stop(self, term_wait_sec: float = 3.0) -> None:
        """Stop the server and anything it started (it runs in its own session/process group)."""
        if self.process.poll() is not None:
            return
        for sig, wait in ((signal.SIGTERM, term_wait_sec), (signal.SIGKILL, 5.0)):
            try:
                os.killpg(self.process.pid, sig)
            except (ProcessLookupError, PermissionError):
                pass
            try:
                self.process.wait(timeout=wait)
                return
            except subprocess.TimeoutExpired:
                continue

    def _with_tail(self, text: str) -> str:
        self._pump.join(timeout=1.0)
        tail = self._pump.tail()
        return (
            f"{text}\n--- last lines of the server's stderr ---\n{tail}"
            if tail
            else f"{text} (its stderr was empty)"
        )

    def _fail(self, exc: ProjectAPIError) -> ProjectAPIError:
        """Stop the server (it can no longer be trusted) and keep `exc` for later calls."""
        self._stop()
        self.close(timeout_sec=1.0)
        exc.message = self._with_tail(exc.message)
        exc.args = (exc.message,)
        self._broken = exc
        return exc

    def _fail_exited(self, method: str) -> ProjectAPIError:
        try:
            code = self.process.wait(timeout=5.0)
            how = f"killed by signal {signal.Signals(-code).name}" if code < 0 else f"exit code {code}"
        except (subprocess.TimeoutExpired, ValueError):
            how = "closed its output"
        self._pump.join(timeout=1.0)
        when = "at start-up, before answering" if self._next_id == 2 else "while handling"
        hint = f"run it by hand to see why: tvmc micro rpc {self.server} {method} -v"
        if "No module named 'jsonrpcserver'" in self._pump.tail(50):
            hint = (
                "install jsonrpcserver into the server's interpreter: "
                "<python> -m pip install 'jsonrpcserver>=5,<6'"
            )
        return self._fail(
            ServerExitedError(f"the Project API server {self.server} exited ({how}) {when} {method}", hint)
        )

    def _fail_hung(self, method: str, timeout_sec: float | None) -> ProjectAPIError:
        return self._fail(
            ServerTimeoutError(
                f"the Project API server {self.server} did not answer {method} within "
                f"{timeout_sec or 0:g} s; stopped it",
                f"if the step is legitimately slow, raise the deadline (`tvmc micro rpc DIR {method} "
                "--timeout SECONDS`, or timeout_sec= in Python); otherwise the server is stuck: run it by "
                f"hand to see where: python3 {self.server} --debug",
            )
        )

    def _fail_junk(self, method: str, what: str) -> ProjectAPIError:
        return self._fail(
            ServerProtocolError(
                f"the Project API server {self.server} wrote something that is not a JSON-RPC reply on its "
                f"protocol channel while handling {method}: {what}",
                "a server must keep stdout for replies: end it with microtvm_api.server.main(), which points "
                "fd 1 at stderr, and print diagnostics to stderr",
            )
        )


# v0.18's Model Library Format and CRT, as its template servers read them; what tvmc-micro's lack.
MLF_LAYOUT_DIFFERENCE = (
    "tvmc-micro's Model Library Format is not v0.18's: its metadata.json lists `models` (v0.18's lists "
    "`modules`), and there is no v0.18 standalone CRT (include/, src/, CMakeLists.txt) to give as "
    "standalone_crt_dir"
)


def _explain_v018_generate_failure(err: ProjectAPIError, empty_crt: str | None) -> None:
    """Reword a v0.18 server's generate_project failure when it comes from the MLF layout or the missing
    standalone CRT (the server's own text and traceback are kept)."""
    trace = err.remote_traceback or ""
    last = trace.strip().splitlines()[-1] if trace.strip() else err.message
    port = (
        "port the server to tvmc-micro's MLF (docs/model-library-format.md) and import "
        "microtvm_api.compat.v018, or use a tvmc-micro template (crt_host, cortex_m, zephyr)"
    )
    if "'modules'" in last:
        cause = "it reads metadata.json as v0.18's (`modules`)"
    elif empty_crt is not None and empty_crt in trace:
        cause = f"it copies v0.18's standalone CRT from standalone_crt_dir ({last})"
    else:
        err.message = f"the v0.18 template server failed in generate_project: {last}"
        err.hint = f"if it reads the MLF or the CRT as v0.18's: {MLF_LAYOUT_DIFFERENCE}; {port}"
        err.args = (err.message,)
        return
    err.message = (
        f"the v0.18 template server cannot generate a project from this MLF: {cause}. {MLF_LAYOUT_DIFFERENCE}"
    )
    err.hint = port
    err.args = (err.message,)


def effective_timeouts(timeouts: Mapping[str, Any]) -> dict[str, float]:
    """open_transport's timeouts as the session uses them. 0 means "no limit" (v0.18's TransportTimeouts
    semantics): the retry interval then falls back to 1 s (lost frames are still resent), the others to
    infinity. Values that are not non-negative numbers are dropped (the session uses its defaults)."""
    result: dict[str, float] = {}
    for key, value in timeouts.items():
        if isinstance(value, bool) or not isinstance(value, int | float) or not value >= 0:
            continue
        if value == 0:
            result[key] = DEFAULT_RETRY_SEC if key == "session_start_retry_timeout_sec" else math.inf
        else:
            result[key] = float(value)
    return result


DEFAULT_RETRY_SEC = 1.0


def _raise_bad_data(reply: Any) -> bytes:
    raise ServerProtocolError(f'read_transport returned {reply!r:.100}, not {{"data": <base85>}}')


def _transport_deadline(timeout_sec: float | None) -> float | None:
    return None if timeout_sec is None else timeout_sec + TRANSPORT_MARGIN_SEC


def _library_root() -> str:
    """The directory holding the microtvm_api package, so a server in any interpreter can import it."""
    return str(Path(microtvm_api.__file__).resolve().parent.parent)


def _tvm_version() -> str:
    """The installed apache-tvm version, read from package metadata (importing tvm would take seconds)."""
    from importlib import metadata

    try:
        return metadata.version("apache-tvm")
    except metadata.PackageNotFoundError:
        return "unknown"


class ServerTransport:
    """The C3 transport over a server's open/read/write_transport methods (a host session can use it)."""

    def __init__(self, client: ProjectAPIClient, options: Mapping[str, Any] | None = None) -> None:
        self.client = client
        self.raw_timeouts = client.open_transport(options)
        # 0 means "no limit" (v0.18); see effective_timeouts.
        self.timeouts = effective_timeouts(self.raw_timeouts)
        self._open = True

    def write(self, data: bytes, timeout_sec: float | None) -> None:
        self.client.write_transport(data, timeout_sec)

    def read(self, n: int, timeout_sec: float | None) -> bytes:
        return self.client.read_transport(n, timeout_sec)

    def close(self) -> None:
        """close_transport, unless the client already gave up on the server (it was stopped, died or was
        interrupted): then there is nothing to close politely, and trying would only wait."""
        if self._open:
            self._open = False
            if self.client.usable:
                self.client.close_transport()
