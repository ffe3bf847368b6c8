"""The one subprocess seam for template servers: run a tool, log the exact command, stream its output.

Never a shell: argv is a list, so option values cannot be interpreted by one. The command is logged
shell-quoted to stderr (a server's stdout is the protocol channel; `main()` points fd 1 at stderr anyway),
output is streamed as it comes, and a failure raises an error carrying the exit code and the output tail.
"""

from __future__ import annotations

import collections
import os
import shlex
import signal
import subprocess
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TextIO

from microtvm_api import lifeline
from microtvm_api.errors import CommandFailedError, ToolNotFoundError


@dataclass(frozen=True)
class CommandResult:
    argv: tuple[str, ...]
    returncode: int
    output: str  # everything the command printed (stdout and stderr interleaved)


def quote_command(argv: Sequence[str | Path], cwd: str | Path | None = None) -> str:
    """The command as a user could paste it into a shell."""
    text = shlex.join(str(a) for a in argv)
    return f"cd {shlex.quote(str(cwd))} && {text}" if cwd else text


def run_command(
    argv: Sequence[str | Path],
    *,
    cwd: str | Path | None = None,
    env: Mapping[str, str] | None = None,
    package: str | None = None,
    timeout_sec: float | None = None,
    log: TextIO | None = None,
    echo_output: bool = True,
) -> CommandResult:
    """Run `argv` to completion; raise CommandFailedError on a non-zero exit or timeout.

    `env` adds to (does not replace) the current environment. `package` names what provides argv[0]
    (e.g. "gcc-arm-none-eabi") for the "not found" hint. Output goes to `log` (default stderr) line by
    line unless `echo_output` is False; it is always returned in the result.
    """
    if isinstance(argv, str | bytes) or not argv:
        raise TypeError("run_command takes a non-empty list of arguments (never a shell string)")
    args = [os.fspath(a) for a in argv]
    stream = log if log is not None else sys.stderr
    stream.write(f"+ {quote_command(args, cwd)}\n")
    stream.flush()
    full_env = dict(os.environ)
    full_env.update(env or {})
    try:
        process = subprocess.Popen(
            args,
            cwd=cwd,
            env=full_env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            # Its own group (so a timeout kills make and its compilers together): the server's signal
            # cleanup and the kernel's parent-death signal stop it when the server goes away.
            preexec_fn=lifeline.die_with_parent(signal.SIGTERM),
        )
    except FileNotFoundError as err:
        if cwd is not None and not Path(cwd).is_dir():
            raise CommandFailedError(f"cannot run {args[0]}: directory {cwd} does not exist") from err
        how = f"apt-get install {package}" if package else f"install {args[0]} or put it on PATH"
        raise ToolNotFoundError(f"{args[0]} not found", how, data={"tool": args[0]}) from err
    except PermissionError as err:
        raise ToolNotFoundError(f"{args[0]} is not executable", f"chmod +x {args[0]}") from err
    assert process.stdout is not None
    lines: list[str] = []
    tail: collections.deque[str] = collections.deque(maxlen=25)
    timer = _Watchdog(process, timeout_sec)
    token = lifeline.add_cleanup(lambda: _kill_group(process))
    try:
        for raw in process.stdout:
            text = raw.decode("utf-8", "replace")
            lines.append(text)
            tail.append(text.rstrip("\n"))
            if echo_output:
                stream.write(text)
                stream.flush()
        returncode = process.wait()
    finally:
        lifeline.remove_cleanup(token)
        timer.cancel()
        process.stdout.close()
    output = "".join(lines)
    if timer.fired:
        raise CommandFailedError(
            f"`{quote_command(args, cwd)}` did not finish within {timeout_sec:g} s and was stopped",
            "the tool hung; run the command above by hand to see where",
            data={"returncode": returncode, "output_tail": "\n".join(tail)},
        )
    if returncode != 0:
        last = "\n".join(tail)
        raise CommandFailedError(
            f"`{quote_command(args, cwd)}` failed with exit code {returncode}"
            + (f"; its output ended with:\n{last}" if last else " and printed nothing"),
            "fix the error shown above, or run the command by hand",
            data={"returncode": returncode, "output_tail": last},
        )
    return CommandResult(tuple(args), returncode, output)


def _kill_group(process: subprocess.Popen[bytes]) -> None:
    try:
        os.killpg(process.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass


class _Watchdog:
    """Kills the command's process group after `timeout_sec` (a reader loop cannot time out on its own)."""

    def __init__(self, process: subprocess.Popen[bytes], timeout_sec: float | None) -> None:
        import threading

        self.fired = False
        self._timer: threading.Timer | None = None
        if timeout_sec is not None:
            self._timer = threading.Timer(timeout_sec, self._kill, args=(process,))
            self._timer.daemon = True
            self._timer.start()

    def _kill(self, process: subprocess.Popen[bytes]) -> None:
        self.fired = True
        _kill_group(process)

    def cancel(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
