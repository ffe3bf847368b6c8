"""`tvmc` entry point: builds the argument parser from one module per subcommand.

Nothing heavy is imported here or in the subcommand modules at parse time (no TVM, no server launch),
so `tvmc --help` answers immediately; each handler imports what it needs when it runs.
"""

from __future__ import annotations

import argparse
import logging
import signal
import sys
import threading
import traceback
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from types import FrameType

from microtvm_api.errors import ProjectAPIError

from tvmc_micro import __version__
from tvmc_micro.cli import analyze_cmd, compile_cmd, micro_cmd, run_cmd, tune_cmd
from tvmc_micro.cli.v018_flags import normalize_argv
from tvmc_micro.errors import TvmcError

EXIT_OK, EXIT_MISMATCH, EXIT_USAGE, EXIT_INTERNAL = 0, 1, 2, 3


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="tvmc",
        description="Compile TFLite/ONNX models for microcontrollers and run them on a device "
        "(apache-tvm 0.27, Model Library Format, Project API).",
        epilog="Workflow: tvmc compile MODEL -o model.tar; tvmc micro create-project DIR model.tar crt_host; "
        "tvmc micro build DIR; tvmc micro flash DIR; tvmc run --device micro DIR --print-time --print-top 3",
    )
    parser.add_argument("-v", "--verbose", action="count", default=0, help="more output; tracebacks on error")
    parser.add_argument(
        "-q", "--quiet", action="store_true", help="no progress lines (results and errors are still printed)"
    )
    parser.add_argument("--version", action="version", version=f"tvmc-micro {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True
    for module in (compile_cmd, micro_cmd, run_cmd, analyze_cmd, tune_cmd):
        module.add_parser(sub)
    return parser


class Terminated(KeyboardInterrupt):
    """SIGTERM or SIGHUP, raised where the program is so the same cleanup as Ctrl-C runs (the servers and
    emulators the command started are stopped) before tvmc exits 128 + the signal number."""

    def __init__(self, signum: int) -> None:
        super().__init__(signal.Signals(signum).name)
        self.signum = signum


def _raise_terminated(signum: int, _frame: FrameType | None) -> None:
    raise Terminated(signum)


@contextmanager
def _terminate_like_interrupt() -> Iterator[None]:
    """SIGTERM/SIGHUP raise Terminated while the command runs (main thread only; handlers restored)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = {sig: signal.signal(sig, _raise_terminated) for sig in (signal.SIGTERM, signal.SIGHUP)}
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(normalize_argv(sys.argv[1:] if argv is None else argv))
    logging.basicConfig(
        level=logging.DEBUG if args.verbose >= 2 else logging.INFO if args.verbose else logging.WARNING,
        format="%(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    try:
        with _terminate_like_interrupt():
            result: int = args.func(args)
        return result
    except KeyboardInterrupt as err:
        # One line, no traceback: whatever the command started was stopped on the way out (the Project
        # API client stops its server, which stops its emulator and tools).
        signum = err.signum if isinstance(err, Terminated) else signal.SIGINT
        how = "" if signum == signal.SIGINT else f" by {signal.Signals(signum).name}"
        print(f"tvmc: interrupted{how}", file=sys.stderr)
        return 128 + signum
    except Exception as err:  # the one place errors become messages and exit codes
        if args.verbose:
            traceback.print_exc()
            remote = getattr(err, "remote_traceback", None)
            if remote:
                print("--- server-side traceback ---\n" + remote.rstrip(), file=sys.stderr)
        command = " ".join(c for c in (args.command, getattr(args, "micro_command", None)) if c)
        print(f"tvmc {command}: error: {_describe(err)}", file=sys.stderr)
        expected = isinstance(err, TvmcError | ProjectAPIError)
        if not args.verbose and not expected and not isinstance(err, OSError):
            print("  (run with -v for the traceback)", file=sys.stderr)
        # Exit status (docs/exit-codes.md): 0 success/pass, 1 validation mismatch (returned by the command),
        # 2 a problem the message explains (bad usage or input, a failed step), 3 something unexpected broke.
        return EXIT_USAGE if expected else EXIT_INTERNAL


def _describe(err: BaseException) -> str:
    """User-facing text for an error: our own errors carry their hint; others their type and text."""
    if isinstance(err, TvmcError):
        return str(err)
    if isinstance(err, OSError) and err.filename is not None:
        return f"{err.strerror}: {err.filename}"
    text = str(err) or type(err).__name__
    module = type(err).__module__
    return text if module.startswith("microtvm_api") else f"{type(err).__name__}: {text}"


if __name__ == "__main__":
    raise SystemExit(main())
